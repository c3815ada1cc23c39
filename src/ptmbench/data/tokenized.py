"""Reading tokenised rows back: their token counts and seeded subsamples (fine-tune, LogME, estimators)."""

from __future__ import annotations

import numpy as np


def lengths(dataset) -> np.ndarray:
    """Token count of every row of a tokenised dataset (from the Arrow column, without decoding rows;
    the tokenisation is unpadded)."""
    import pyarrow.compute as pc

    col = dataset.with_format("arrow")["input_ids"]
    return pc.list_value_length(col).to_numpy(zero_copy_only=False).astype(np.int64)


def subsample(n: int, k: int | None, seed: int, key: str = "max_examples", minimum: int = 1) -> np.ndarray | None:
    """Sorted indices of a uniform random subsample of ``k`` of ``n`` rows (no replacement,
    ``numpy.random.default_rng(seed)``, not stratified); None when every row is used (``k`` None or
    >= ``n``). ``key`` names the setting in the error when ``k`` is below ``minimum``."""
    if k is None or k >= n:
        return None
    if k < minimum:
        raise ValueError(f"{key} must be >= {minimum} (or null for all), got {k}")
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))
