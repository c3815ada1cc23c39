"""Graph features of the six published families are bit-identical to a committed reference.

``tests/reference/graph_features.json`` holds, per family, the SHA-256 of the tiny model's
``model.safetensors`` (built by ``build_tiny(family, dir, seed=0)``) and the SHA-256 of every
feature tensor's float32 bytes (:func:`ptmbench.stages.graph.attention_features`). It was computed with
the graph code of the three hard-coded weight layouts (BERT-like, DistilBERT, ALBERT), before the
features were found from the model's structure; any change to the features of these families is a
change to the published data and fails here. A weights hash that differs means the tiny model
changed (tokenizer, config, transformers' initialisation), not the graph code.

Regenerate (only on purpose, with a reason in the commit message)::

    PYTHONPATH=src python tests/test_graph_reference.py
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

REFERENCE = Path(__file__).resolve().parent / "reference" / "graph_features.json"
FAMILIES = ("bert", "roberta", "distilbert", "albert", "electra", "xlm-roberta")


def sha256_float32(t) -> str:
    import torch

    assert t.dtype == torch.float32
    return hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()


def digest(model_dir: Path) -> dict:
    from ptmbench.stages import graph

    feats = graph.attention_features(model_dir)
    return {"weights_sha256": hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest(),
            "features": {k: sha256_float32(v) for k, v in feats.items()}}


@pytest.mark.parametrize("family", FAMILIES)
def test_features_bit_identical_to_reference(tiny_model, family):
    ref = json.loads(REFERENCE.read_text())[family]
    got = digest(tiny_model(family))
    assert got["weights_sha256"] == ref["weights_sha256"], (
        f"the tiny {family} model itself changed (weights hash), so the feature reference cannot be compared")
    assert list(got["features"]) == list(ref["features"])
    changed = [k for k, v in ref["features"].items() if got["features"][k] != v]
    assert not changed, f"{family}: features differ from the reference: {changed}"


if __name__ == "__main__":
    import tempfile

    from ptmbench.data.tiny import build_tiny

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for family in FAMILIES:
            build_tiny(family, Path(tmp) / family, seed=0)
            out[family] = digest(Path(tmp) / family)
    REFERENCE.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {REFERENCE}", file=sys.stderr)
