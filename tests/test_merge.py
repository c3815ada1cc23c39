"""ptmbench.stages.merge: each method's formula, the published merge on real task checkpoints of every family
(prefixed keys, heads, the QA model's missing pooler), loading with AutoModel, and input errors."""

from __future__ import annotations

import json
import math
import re
import shutil

import pytest
import torch
from safetensors import safe_open

from ptmbench.io import provenance
from ptmbench.stages import merge, merge_methods

FAMILIES = ("bert", "roberta", "distilbert", "albert", "electra", "xlm-roberta")


def read(path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as fh:
        return {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118


def finetune(base_dir, out_dir, head: str, seed: int, scale: float = 0.05):
    """A 'fine-tuned' task model of ``base_dir``: every parameter moved by seeded noise, save_pretrained."""
    from transformers import AutoModelForQuestionAnswering, AutoModelForSequenceClassification

    cls = AutoModelForQuestionAnswering if head == "qa" else AutoModelForSequenceClassification
    torch.manual_seed(seed)
    model = cls.from_pretrained(str(base_dir), **({} if head == "qa" else {"num_labels": 3}))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * scale)
    model.save_pretrained(str(out_dir))
    return out_dir


@pytest.fixture(scope="module")
def task_models(tiny_model, tmp_path_factory):
    """family -> (base_dir, cls_dir, qa_dir), built once per module."""
    built = {}

    def make(family):
        if family not in built:
            base = tiny_model(family)
            root = tmp_path_factory.mktemp(f"ft-{family}")
            built[family] = (base, finetune(base, root / "cls", "cls", 1), finetune(base, root / "qa", "qa", 2))
        return built[family]

    return make


def ft_tensor(ft: dict, name: str):
    """The base tensor ``name`` in a task checkpoint (any architecture prefix), or None."""
    hits = [v for k, v in ft.items() if k == name or k.split(".", 1)[-1] == name and "." in k]
    return hits[0] if hits else None


# --------------------------------------------------------------------------------------------------
# the published merge on real task checkpoints


@pytest.mark.parametrize("ratio", [0.5, 0.3])
def test_published_merge_is_the_formula_exactly(task_models, tmp_path, ratio):
    base_dir, a_dir, b_dir = task_models("bert")
    out = tmp_path / "merged"
    rec = merge.merge_models(base_dir, a_dir, b_dir, ratio, out)
    base, a, b = read(base_dir / "model.safetensors"), read(a_dir / "model.safetensors"), read(
        b_dir / "model.safetensors")
    merged = read(out / "model.safetensors")
    assert set(merged) == set(base)
    assert any(k.startswith("bert.") for k in a) and "qa_outputs.weight" in b  # real task layouts
    assert "pooler.dense.weight" in base and ft_tensor(b, "pooler.dense.weight") is None  # QA: no pooler
    n_weight = 0
    for name, t in merged.items():
        assert t.dtype == base[name].dtype and t.shape == base[name].shape
        if name.endswith(".weight"):
            n_weight += 1
            ta = ft_tensor(a, name)
            tb = ft_tensor(b, name)
            tb = base[name] if tb is None else tb  # missing in the QA checkpoint: the base's tensor
            assert torch.equal(t, (1 - ratio) * ta + ratio * tb), name
            assert not torch.equal(t, base[name]), name
        else:
            assert torch.equal(t, base[name]), name
    assert rec["tensors"]["merged"] == n_weight and rec["tensors"]["from_base"] == len(base) - n_weight
    assert rec["tensors"]["missing_in_b"] == ["pooler.dense.weight"] and rec["tensors"]["missing_in_a"] == []
    assert not any(k.startswith(("classifier", "qa_outputs")) for k in merged)


@pytest.mark.parametrize("family", FAMILIES)
def test_merged_model_loads_with_automodel_and_base_tokenizer(task_models, tmp_path, family):
    from transformers import AutoModel, AutoTokenizer

    base_dir, a_dir, b_dir = task_models(family)
    out = tmp_path / "merged"
    merge.merge_models(base_dir, a_dir, b_dir, 0.5, out)
    model, info = AutoModel.from_pretrained(str(out), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    merged = read(out / "model.safetensors")
    state = model.state_dict()
    for name, t in merged.items():
        assert torch.equal(state[name], t), name
    assert set(merged) == set(read(base_dir / "model.safetensors"))
    tok, base_tok = AutoTokenizer.from_pretrained(str(out)), AutoTokenizer.from_pretrained(str(base_dir))
    text = "The merged encoder reads this sentence."
    assert tok(text)["input_ids"] == base_tok(text)["input_ids"]
    with torch.no_grad():
        enc = tok(text, return_tensors="pt")
        assert torch.isfinite(model(**enc).last_hidden_state).all()
    assert json.loads((out / "config.json").read_text()) == json.loads((base_dir / "config.json").read_text())
    rec = json.loads((out / "merge.json").read_text())
    assert rec["method"] == "published" and rec["ratio"] == 0.5 and "provenance" in rec
    assert rec["inputs"] == {"base": str(base_dir), "a": str(a_dir), "b": str(b_dir)}
    # every file written beside merge.json is hashed there (python -m ptmbench.cli.status --verify)
    assert set(rec["sha256"]) == {p.name for p in out.iterdir()} - {"merge.json"}
    assert rec["sha256"]["model.safetensors"] == provenance.sha256(out / "model.safetensors")


def test_albert_shared_layer_survives(task_models, tmp_path):
    from transformers import AutoModel

    base_dir, a_dir, b_dir = task_models("albert")
    out = tmp_path / "merged"
    merge.merge_models(base_dir, a_dir, b_dir, 0.5, out)
    merged = read(out / "model.safetensors")
    shared = [k for k in merged if k.startswith("encoder.albert_layer_groups.0.albert_layers.0.")]
    assert shared and not any(k.startswith("encoder.albert_layer_groups.1") for k in merged)
    model = AutoModel.from_pretrained(str(out))
    layer = model.encoder.albert_layer_groups[0].albert_layers[0]
    assert torch.equal(layer.attention.query.weight,
                       merged["encoder.albert_layer_groups.0.albert_layers.0.attention.query.weight"])
    assert model.config.num_hidden_layers > 1  # one shared group used by every layer


def test_automodel_checkpoints_merge_too(tiny_model, tmp_path):
    """Inputs in the AutoModel layout (no prefix, e.g. a merged PTM) are accepted."""
    from transformers import AutoModel

    base_dir = tiny_model("distilbert")
    for i, name in enumerate("ab"):
        m = AutoModel.from_pretrained(str(base_dir))
        torch.manual_seed(10 + i)
        with torch.no_grad():
            for p in m.parameters():
                p.add_(torch.randn_like(p))
        m.save_pretrained(str(tmp_path / name))
    prov = {"ptm": "tiny", "task": "cola", "diverged": True, "provenance": {"x": 1}}
    (tmp_path / "a" / "provenance.json").write_text(json.dumps(prov))
    rec = merge.merge_models(base_dir, tmp_path / "a", tmp_path / "b", 0.25, tmp_path / "out")
    assert rec["finetunes"] == {"a": {"ptm": "tiny", "task": "cola", "diverged": True}, "b": {}}
    a, b = read(tmp_path / "a/model.safetensors"), read(tmp_path / "b/model.safetensors")
    out = read(tmp_path / "out/model.safetensors")
    k = "transformer.layer.0.attention.q_lin.weight"
    assert torch.equal(out[k], 0.75 * a[k] + 0.25 * b[k])


# --------------------------------------------------------------------------------------------------
# each method's formula on small tensors


T0 = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
TA = torch.tensor([[2.0, -2.5, 0.4], [0.3, 1.0, -1.0]])
TB = torch.tensor([[0.5, -1.0, 0.7], [-0.4, 3.5, -3.0]])


def test_published_and_linear_formulas():
    for r in (0.0, 0.3, 0.5, 0.7, 1.0):
        expected = (1 - r) * TA + r * TB  # bit-identical, as the original script computes it
        assert torch.equal(merge_methods.Published().merge(None, TA.clone(), TB.clone(), r), expected)
        assert torch.equal(merge_methods.Linear().merge(None, TA.clone(), TB.clone(), r), expected)
        big_a, big_b = torch.randn(257, 129), torch.randn(257, 129)
        assert torch.equal(merge_methods.Published().merge(None, big_a.clone(), big_b.clone(), r),
                           (1 - r) * big_a + r * big_b)
    pub, lin = merge_methods.Published(), merge_methods.Linear()
    f32, i64 = torch.float32, torch.int64
    assert pub.applies("encoder.layer.0.output.dense.weight", f32)
    assert pub.applies("embeddings.LayerNorm.weight", torch.bfloat16)
    assert not pub.applies("encoder.layer.0.output.dense.bias", f32)
    assert not pub.applies("embeddings.LayerNorm.bias", f32)
    assert lin.applies("embeddings.LayerNorm.bias", f32)
    assert not pub.applies("embeddings.position_ids.weight", i64) and not lin.applies("x.position_ids", i64)


def test_half_precision_goes_through_float32():
    a, b = TA.to(torch.bfloat16), TB.to(torch.bfloat16)
    out = merge_methods.Published().merge(None, a, b, 0.3)
    assert out.dtype == torch.bfloat16
    assert torch.equal(out, (0.7 * a.float() + 0.3 * b.float()).to(torch.bfloat16))


@pytest.mark.parametrize("r,scale", [(0.5, 1.0), (0.2, 1.0), (0.5, 0.4)])
def test_task_arithmetic_formula(r, scale):
    out = merge_methods.TaskArithmetic(scale=scale).merge(T0, TA, TB, r)
    expected = T0 + scale * (2 * (1 - r) * (TA - T0) + 2 * r * (TB - T0))
    assert torch.allclose(out, expected, atol=1e-6)
    if r == 0.5 and scale == 1.0:  # Ilharco et al.: the sum of the task vectors
        assert torch.allclose(out, T0 + (TA - T0) + (TB - T0), atol=1e-6)


def test_ties_trim_keeps_top_density_by_magnitude():
    tau = torch.tensor([0.1, -5.0, 0.3, 2.0, -0.2, 0.0, 1.0, -0.05, 0.4, 3.0])
    assert torch.equal(merge_methods.base.trim(tau, 0.3), torch.tensor([0, -5.0, 0, 2.0, 0, 0, 0, 0, 0, 3.0]))
    assert torch.equal(merge_methods.base.trim(tau, 0.25), merge_methods.base.trim(tau, 0.3))  # ceil(2.5) = 3 entries
    assert torch.equal(merge_methods.base.trim(tau, 1.0), tau)
    assert int((merge_methods.base.trim(torch.tensor([0.5]), 0.2) != 0).sum()) == 1  # a 1-element tensor keeps it


def test_ties_formula_by_hand():
    t0 = torch.zeros(6)
    ta = torch.tensor([1.0, -2.0, 3.0, 0.1, 0.0, -4.0])   # τ_a
    tb = torch.tensor([3.0, 1.0, -1.5, 0.2, -0.1, 2.0])   # τ_b
    # density 1 (no trim), r = 0.5 (equal weights): elect sgn(τ_a + τ_b), mean of the agreeing entries
    out = merge_methods.Ties(density=1.0).merge(t0, ta, tb, 0.5)
    expected = torch.tensor([2.0, -2.0, 3.0, 0.15, -0.1, -4.0])
    assert torch.allclose(out, expected)
    # density 0.5: top-3 |τ| of each; τ_a -> [0, -2, 3, 0, 0, -4], τ_b -> [3, 0, -1.5, 0, 0, 2]
    out = merge_methods.Ties(density=0.5).merge(t0, ta, tb, 0.5)
    assert torch.allclose(out, torch.tensor([3.0, -2.0, 3.0, 0.0, 0.0, -4.0]))
    # weights (1 - r, r): r = 0.8 -> sign of 0.2 τ_a + 0.8 τ_b; weighted mean of the agreeing entries
    out = merge_methods.Ties(density=1.0, scale=0.5).merge(t0 + 1, ta + 1, tb + 1, 0.8)
    w = torch.tensor([0.2, 0.8])
    taus = torch.stack([ta, tb])
    gamma = torch.sign((w[:, None] * taus).sum(0))
    agree = (torch.sign(taus) == gamma) & (taus != 0)
    tau = (w[:, None] * taus * agree).sum(0) / (w[:, None] * agree).sum(0)
    assert torch.allclose(out, 1 + 0.5 * tau)
    assert torch.allclose(tau, torch.tensor([(0.2 + 2.4) / 1.0, 0.8 / 0.8, -1.5 * 0.8 / 0.8, (0.02 + 0.16),
                                             -0.1, 1.6 / 0.8]))


@pytest.mark.parametrize("method", ["linear", "task_arithmetic", "ties"])
def test_other_methods_end_to_end(task_models, tmp_path, method):
    base_dir, a_dir, b_dir = task_models("bert")
    out = tmp_path / method
    rec = merge.merge_models(base_dir, a_dir, b_dir, 0.5, out, method=method, density=0.3)
    base, a, b = read(base_dir / "model.safetensors"), read(a_dir / "model.safetensors"), read(
        b_dir / "model.safetensors")
    merged = read(out / "model.safetensors")
    algo = merge_methods.make_method(method, density=0.3)
    for name in ("encoder.layer.0.attention.self.query.bias", "encoder.layer.1.output.dense.weight",
                 "pooler.dense.weight"):
        tb = ft_tensor(b, name)
        tb = base[name] if tb is None else tb
        expected = algo.merge(base[name], ft_tensor(a, name).clone(), tb.clone(), 0.5)
        assert torch.equal(merged[name], expected), name
        assert not torch.equal(merged[name], base[name])
    assert rec["method"] == method and rec["tensors"]["from_base"] == 0  # every tensor is floating
    assert (rec.get("density") == 0.3) == (method == "ties")


def test_each_method_declares_its_parameters():
    """A method takes the config's values of the parameters it declares, records them in declaration
    order, and refuses one it does not have (naming it and its own)."""
    assert {n: m.parameters for n, m in merge_methods.METHODS.items()} == {
        "published": {}, "linear": {}, "task_arithmetic": {"scale": 1.0}, "ties": {"density": 0.2, "scale": 1.0}}
    assert merge_methods.make_method("ties", density=0.3, scale=2).values() == {"density": 0.3, "scale": 2.0}
    assert merge_methods.make_method("task_arithmetic", density=0.3).values() == {"scale": 1.0}
    assert merge_methods.make_method("published", density=0.3, scale=2).values() == {}
    with pytest.raises(ValueError, match=r"'task_arithmetic' has no parameter\(s\) \['density'\]; its parameters: \['scale'\]"):
        merge_methods.TaskArithmetic(density=0.5)
    with pytest.raises(ValueError, match="ties density 0.0 must be in"):
        merge_methods.make_method("ties", density=0.0)
    with pytest.raises(ValueError, match="unknown merge method 'dare'"):
        merge_methods.make_method("dare")


# --------------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize("ratio", [-0.1, 1.5, math.nan])
def test_ratio_out_of_range(task_models, tmp_path, ratio):
    base_dir, a_dir, b_dir = task_models("bert")
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        merge.merge_models(base_dir, a_dir, b_dir, ratio, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unknown_method(task_models, tmp_path):
    base_dir, a_dir, b_dir = task_models("bert")
    with pytest.raises(ValueError, match="unknown merge method 'dare'"):
        merge.merge_models(base_dir, a_dir, b_dir, 0.5, tmp_path / "out", method="dare")


@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing", "no_dir"])
def test_corrupt_or_missing_checkpoint_names_the_file(task_models, tmp_path, damage):
    base_dir, a_dir, b_dir = task_models("bert")
    bad = tmp_path / "bad"
    shutil.copytree(b_dir, bad)
    weights = bad / "model.safetensors"
    if damage == "garbage":
        weights.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!" + b"\0" * 64)
    elif damage == "truncated":
        data = weights.read_bytes()
        weights.write_bytes(data[: len(data) // 2])
    elif damage == "missing":
        weights.unlink()
    else:
        shutil.rmtree(bad)
    with pytest.raises(merge.CheckpointError, match=re.escape(str(bad))) as err:
        merge.merge_models(base_dir, a_dir, bad, 0.5, tmp_path / "out")
    if damage in ("garbage", "truncated"):
        assert "model.safetensors: not a readable safetensors file" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_shape_mismatch_names_tensor_and_files(tmp_path, task_models):
    from transformers import AutoModelForSequenceClassification, BertConfig

    base_dir, a_dir, _ = task_models("bert")
    cfg = BertConfig.from_pretrained(str(base_dir))
    cfg.intermediate_size *= 2
    other = tmp_path / "other"
    AutoModelForSequenceClassification.from_config(cfg).save_pretrained(str(other))
    with pytest.raises(merge.CheckpointError, match=r"tensor 'encoder\.layer\.0\.intermediate\.dense\.weight'.*"
                       + re.escape(str(other))) as err:
        merge.merge_models(base_dir, a_dir, other, 0.5, tmp_path / "out")
    assert "shape [256, 64]" in str(err.value) and "same base model" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_fine_tune_of_another_family_is_refused(task_models, tmp_path):
    base_dir, a_dir, _ = task_models("bert")
    _, other, _ = task_models("distilbert")
    with pytest.raises(merge.CheckpointError, match="model_type 'distilbert'.*'bert'"):
        merge.merge_models(base_dir, a_dir, other, 0.5, tmp_path / "out")


def test_existing_output_is_replaced_atomically(task_models, tmp_path):
    base_dir, a_dir, b_dir = task_models("bert")
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    merge.merge_models(base_dir, a_dir, b_dir, 0.5, out)
    assert not (out / "stale.txt").exists() and (out / "model.safetensors").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left
    names = {p.name for p in out.iterdir()}
    assert "provenance.json" not in names and {"config.json", "merge.json"} <= names


def test_sharded_checkpoint_gives_the_same_merge(task_models, tmp_path):
    from transformers import AutoModelForSequenceClassification

    base_dir, a_dir, b_dir = task_models("bert")
    AutoModelForSequenceClassification.from_pretrained(str(a_dir)).save_pretrained(
        str(tmp_path / "a"), max_shard_size="100KB")
    assert (tmp_path / "a" / "model.safetensors.index.json").is_file()
    merge.merge_models(base_dir, tmp_path / "a", b_dir, 0.5, tmp_path / "sharded")
    merge.merge_models(base_dir, a_dir, b_dir, 0.5, tmp_path / "single")
    s, t = read(tmp_path / "sharded/model.safetensors"), read(tmp_path / "single/model.safetensors")
    assert s.keys() == t.keys() and all(torch.equal(s[k], t[k]) for k in s)
