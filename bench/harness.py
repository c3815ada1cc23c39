"""What the bench/ scripts share: where their JSON goes, BLAS threads set before numpy loads, and the
synthetic GLUE-sized features of the estimator benchmarks.

Every script writes its JSON under ``bench/results/`` (git ignores it) unless told another path.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def result_path(name: str, given: str | Path | None = None) -> Path:
    """Where a script's JSON goes: ``given`` when the user names a file, else ``bench/results/<name>.json``."""
    return Path(given) if given else RESULTS / f"{name}.json"


def write_result(path: str | Path, obj) -> Path:
    """Write ``obj`` as indented JSON to ``path`` (its folder created); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    return path


def blas_threads(threads: int, script: str) -> None:
    """Give BLAS ``threads`` threads; they are read when numpy loads, so it must not be loaded yet."""
    if "numpy" in sys.modules:
        raise SystemExit(f"run {script} as a script: BLAS threads must be set before numpy loads")
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)


def features(N, D, C=3, seed=0, chunk=50_000):
    """Seeded float32 features with a realistic structure: a large common offset (transformer features are
    not centred), a decaying spectrum and ``C`` classes whose means differ in a few directions; and labels."""
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, N)
    scale = (1.0 + np.arange(D)) ** -0.5  # decaying spectrum
    offset = rng.standard_normal(D) * 2.0
    means = np.zeros((C, D))
    means[:, :8] = rng.standard_normal((C, 8)) * 0.3  # classes differ in a few directions
    F = np.empty((N, D), np.float32)
    for i in range(0, N, chunk):
        n = min(chunk, N - i)
        F[i:i + n] = (offset + means[labels[i:i + n]]
                      + rng.standard_normal((n, D), dtype=np.float32) * scale.astype(np.float32))
    return F, labels
