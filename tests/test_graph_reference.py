"""Graph features of the six published families, and merges of their tiny models, against a committed
reference that holds on any CPU.

``tests/reference/graph_features.json`` holds, per family, the SHA-256 of the tiny model's
``model.safetensors`` (``build_tiny(family, dir, seed=0)``), its head dimension, and every node's
eigenvalues (:func:`ptmbench.stages.graph.attention_features`, interleaved (re, im), without the padding); and,
under ``merges``, the SHA-256 of ``model.safetensors`` merged from tiny models of seeds 1 and 2 over
the base of seed 0 (``published`` method) at two ratios.

What is exact, and why (tests/tolerances.py has the whole argument):

- the tiny models' weights: built from a seed by transformers' initialisation, written by safetensors
  (the hash matches across the machines we run on; if it did not, the model changed, not the graph code);
- the merged weights: ``(1 - r) * a + r * b`` per element, each operation rounded once, on identical
  inputs: bit-identical on every CPU, so a merge that changes by one ulp anywhere fails;
- the feature keys and their order, the zero padding, and the canonical order of each head's
  eigenvalues (real part descending).

What agrees to a tolerance: the eigenvalues themselves, within ``EIGEN_RTOL`` of the head's spectral
scale after matching, because LAPACK / BLAS kernels for another instruction set round the products and
the eigen-solver differently in the last bits (a SHA-256 of float32 bytes was the reference before and
failed on every AVX2-only CPU). A change of the science (a head order, the products, a weight scaled by
1 + 1e-3) moves them by far more and fails here.

Regenerate (only on purpose, with a reason in the commit message)::

    PYTHONPATH=src python tests/test_graph_reference.py
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
from tolerances import compare_features, eigenvalue_parts, spectrum

REFERENCE = Path(__file__).resolve().parent / "reference" / "graph_features.json"
FAMILIES = ("bert", "roberta", "distilbert", "albert", "electra", "xlm-roberta")
MERGE_FAMILY, MERGE_RATIOS = "bert", (0.5, 0.3)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def head_dim(model_dir: Path) -> int:
    from ptmbench.stages import graph

    layers, heads, hidden = graph.model_shape(json.loads((model_dir / "config.json").read_text()))
    return hidden // heads


def digest(model_dir: Path) -> dict:
    from ptmbench.stages import graph

    dh = head_dim(model_dir)
    return {"weights_sha256": _sha256(model_dir / "model.safetensors"), "head_dim": dh,
            "eigenvalues": eigenvalue_parts(graph.attention_features(model_dir), dh)}


def merged_sha256(base: Path, a: Path, b: Path, ratio: float, out: Path) -> str:
    from ptmbench.stages import merge

    merge.merge_models(base, a, b, ratio, out)
    return _sha256(out / "model.safetensors")


@pytest.mark.parametrize("family", FAMILIES)
def test_features_match_the_reference(tiny_model, family):
    ref = json.loads(REFERENCE.read_text())[family]
    model = tiny_model(family)
    assert _sha256(model / "model.safetensors") == ref["weights_sha256"], (
        f"the tiny {family} model itself changed (weights hash), so the feature reference cannot be compared")
    from ptmbench.stages import graph

    got = graph.attention_features(model)
    assert {int(v.numel()) for v in got.values()} == {graph.FEATURE_LENGTH}
    problems = compare_features(got, ref["eigenvalues"], family)
    assert not problems, "\n".join(problems[:10])


@pytest.mark.parametrize("ratio", MERGE_RATIOS)
def test_merge_is_bit_identical_to_the_reference(tiny_model, tmp_path, ratio):
    ref = json.loads(REFERENCE.read_text())["merges"][str(ratio)]
    got = merged_sha256(tiny_model(MERGE_FAMILY, 0), tiny_model(MERGE_FAMILY, 1), tiny_model(MERGE_FAMILY, 2),
                        ratio, tmp_path / "merged")
    assert got == ref, f"merged weights at ratio {ratio} differ from the reference (exact: elementwise maths)"


def test_a_change_of_the_science_fails(tiny_model, tmp_path):
    """What the tolerance lets through and what it does not, on the bert reference: the features with
    two heads swapped, and with one layer's W_Q scaled by 1 + 1e-3, both fail; the reference's own
    values moved by 10x the rounding seen across CPUs pass."""
    import numpy as np
    import torch
    from safetensors.torch import load_file, save_file

    from ptmbench.stages import graph

    ref = json.loads(REFERENCE.read_text())["bert"]["eigenvalues"]
    model = tiny_model("bert")
    feats = graph.attention_features(model)
    swapped = dict(feats)
    swapped["E_self_0_QKt_0"], swapped["E_self_0_QKt_1"] = feats["E_self_0_QKt_1"], feats["E_self_0_QKt_0"]
    assert compare_features(swapped, ref, "bert")

    changed = tmp_path / "changed"
    changed.mkdir()
    for f in model.iterdir():
        if f.is_file():
            (changed / f.name).write_bytes(f.read_bytes())
    weights = load_file(str(model / "model.safetensors"))
    [wq] = [k for k in weights if k.endswith("layer.0.attention.self.query.weight")]
    weights[wq] = weights[wq] * (1 + 1e-3)
    save_file(weights, str(changed / "model.safetensors"), metadata={"format": "pt"})
    problems = compare_features(graph.attention_features(changed), ref, "bert")
    assert problems and all("E_self_0_QKt_" in p for p in problems)  # every head of that layer's QK^T

    rng = np.random.default_rng(0)
    jittered = {}
    for k, v in ref.items():  # each eigenvalue moved by up to 1.4e-4 of itself, then put in canonical order
        ev = spectrum(v) * (1 + 1e-4 * (rng.uniform(-1, 1, len(v) // 2) + 1j * rng.uniform(-1, 1, len(v) // 2)))
        ev = ev[np.lexsort((ev.imag, -ev.real))]
        jittered[k] = torch.tensor(np.stack([ev.real, ev.imag], 1).ravel(), dtype=torch.float32)
    assert not compare_features(jittered, ref, "bert")


if __name__ == "__main__":
    import tempfile

    from ptmbench.data.tiny import build_tiny

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for family in FAMILIES:
            build_tiny(family, Path(tmp) / family, seed=0)
            out[family] = digest(Path(tmp) / family)
        seeds = [Path(tmp) / f"{MERGE_FAMILY}-{s}" for s in (0, 1, 2)]
        for seed, d in enumerate(seeds):
            build_tiny(MERGE_FAMILY, d, seed=seed)
        out["merges"] = {str(r): merged_sha256(*seeds, r, Path(tmp) / f"merged-{r}") for r in MERGE_RATIOS}
    REFERENCE.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {REFERENCE}", file=sys.stderr)
