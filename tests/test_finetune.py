"""Tokenisation contract, fine-tuning on every task type, batch split, divergence and kill safety."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ptmbench.core import tasks as registry
from ptmbench.data import schemas as data
from ptmbench.data import tokenized
from ptmbench.evaluation import metrics as M
from ptmbench.evaluation import squad
from ptmbench.io import provenance
from ptmbench.io.provenance import write_json
from ptmbench.stages import finetune, tokenize

GLUE_HP = {"learning_rate": 1e-3, "batch_size": 16, "epochs": 1, "max_length": 48, "lr_scheduler": "linear",
           "warmup_ratio": 0.0, "weight_decay": 0.0, "max_train_examples": None, "seed": 0}
SQUAD_HP = {**GLUE_HP, "max_length": 64, "doc_stride": 16, "n_best_size": 20, "max_answer_length": 30,
            "null_score_diff_threshold": 0.0}

pytestmark = pytest.mark.usefixtures("one_thread")


def make_data(root: Path, task: str, n_train=64, n_val=32):
    """Demo data of ``task`` in the acquired layout (GLUE save_to_disk dir or [train, dev] JSON)."""
    if task == "squad_v2":
        train, dev = data.demo_squad(0, n_train, n_val)
        write_json(root / "train-v2.0.json", train), write_json(root / "dev-v2.0.json", dev)
        return [root / "train-v2.0.json", root / "dev-v2.0.json"]
    out = root / "glue" / task
    data.demo_glue(task, 0, n_train, n_val).save_to_disk(str(out))
    return out


def prepare(root: Path, model_dir: Path, task: str, n_train=64, n_val=32, **hp):
    hp = {**(SQUAD_HP if task == "squad_v2" else GLUE_HP), **hp}
    src = make_data(root, task, n_train, n_val)
    tokenize.tokenize(model_dir, task, src, root / "tok" / task, hp)
    return root / "tok" / task, hp


# ------------------------------------------------------------------------------------ tokenisation


@pytest.mark.parametrize("family,task", [("bert", "sst2"), ("roberta", "mrpc"), ("bert", "stsb"),
                                         ("albert", "mnli")])
def test_tokenize_glue_contract(tmp_path, tiny_model, family, task):
    import datasets

    cut = {"sst2": 14, "mrpc": 57, "stsb": 27, "mnli": 39}[task]  # about the median length
    tok_dir, hp = prepare(tmp_path, tiny_model(family), task, n_train=40, n_val=20, max_length=cut)
    dd = datasets.load_from_disk(str(tok_dir))
    assert set(dd) == {"train", *tokenize.eval_splits(task)}
    tok = tokenize.load_tokenizer(tiny_model(family))  # as the tokenize job loads it (ALBERT: with token types)
    cols = {"input_ids", "attention_mask", "labels"} | ({"token_type_ids"} if "token_type_ids" in
                                                        tok.model_input_names else set())
    assert ("token_type_ids" in cols) == (family != "roberta")
    for split, ds in dd.items():
        assert set(ds.column_names) == cols, (split, ds.column_names)
        assert ds.features["labels"].dtype == ("float32" if task == "stsb" else "int64")
        lens = tokenized.lengths(ds)
        assert max(lens) == cut and min(lens) < cut  # truncated to max_length, not padded
        assert all(sum(m) == n for m, n in zip(ds["attention_mask"], lens, strict=True))
    raw = datasets.load_from_disk(str(tmp_path / "glue" / task))
    assert dd["train"]["labels"] == pytest.approx(raw["train"]["label"])
    info = json.loads((tok_dir / "info.json").read_text())
    assert info["task"] == task and info["hp"]["max_length"] == cut and "provenance" in info
    assert info["label_names"] == (None if task == "stsb" else raw["train"].features["label"].names)
    # tokenising never writes cache files into the acquired data directory (another rule's output)
    assert not list((tmp_path / "glue" / task).rglob("cache-*"))


def _squad_checks(tok, tok_dir: Path, json_paths, max_length: int):
    import datasets

    dd = datasets.load_from_disk(str(tok_dir))
    assert set(dd) == {"train", "validation", "validation_examples"}
    examples = tokenize.read_squad(json_paths[0])
    train = dd["train"]
    assert {"input_ids", "attention_mask", "start_positions", "end_positions"} <= set(train.column_names)
    assert max(tokenized.lengths(train)) <= max_length
    # the windows of an answerable question: the answer tokens decode to the answer text wherever
    # the window holds the whole answer; unanswerable questions point at CLS in every window.
    stride = int(json.loads((tok_dir / "info.json").read_text())["hp"]["doc_stride"])
    windows = [tok(q["question"].lstrip(), q["context"], truncation="only_second", max_length=max_length,
                   stride=stride, return_overflowing_tokens=True, return_offsets_mapping=True) for q in examples]
    feats = iter(zip(train["input_ids"], train["start_positions"], train["end_positions"], strict=True))
    exact = answered = 0
    for q, enc in zip(examples, windows, strict=True):
        hits = 0
        for w, offsets in zip(enc["input_ids"], enc["offset_mapping"], strict=True):
            ids, s, e = next(feats)
            assert ids == w
            cls = ids.index(tok.cls_token_id)
            if not q["answers"]["text"]:
                assert s == e == cls
                continue
            if s == cls:
                assert e == cls
                continue
            hits += 1
            assert s <= e
            span = q["context"][offsets[s][0]:offsets[e][1]]  # the characters of the answer tokens
            want = q["answers"]["text"][0]
            assert want in span and len(span) <= len(want) + 12, (span, want)
            exact += span == want
        if q["answers"]["text"]:
            answered += 1
            assert hits >= 1, f"answer of {q['id']} is in no window"
    assert exact >= 0.95 * answered
    # validation: offsets only inside the context, every window tied to a known question
    val, ex = dd["validation"], dd["validation_examples"]
    assert set(val["example_id"]) == set(ex["id"])
    for ids, offsets in zip(val["input_ids"], val["offset_mapping"], strict=True):
        assert len(ids) == len(offsets)
        assert offsets[0] is None and offsets[-1] is None  # CLS and the final SEP
        assert any(o is not None for o in offsets)


def test_tokenize_squad_positions_demo(tmp_path, tiny_model):
    from transformers import AutoTokenizer

    tok_dir, hp = prepare(tmp_path, tiny_model("bert"), "squad_v2", n_train=48, n_val=24, max_length=40)
    _squad_checks(AutoTokenizer.from_pretrained(str(tiny_model("bert"))), tok_dir,
                  [tmp_path / "train-v2.0.json"], 40)


def test_tokenize_squad_positions_real(tmp_path, minilm_dir, real_fixtures):
    from transformers import AutoTokenizer

    src = [real_fixtures / "squad_v2" / "train-v2.0.json", real_fixtures / "squad_v2" / "dev-v2.0.json"]
    hp = {**SQUAD_HP, "max_length": 128, "doc_stride": 32}
    tokenize.tokenize(minilm_dir, "squad_v2", src, tmp_path / "tok", hp)
    _squad_checks(AutoTokenizer.from_pretrained(str(minilm_dir)), tmp_path / "tok", src, 128)


def test_squad_postprocess_picks_span_and_null():
    feats = {"example_id": ["a", "b"], "offset_mapping": [[None, (0, 3), (4, 9), None],
                                                         [None, (0, 5), (6, 8), None]]}
    examples = [{"id": "a", "context": "the Paris"}, {"id": "b", "context": "hello yo"}]
    s = np.array([[0.0, 1.0, 5.0, -1.0], [3.0, 1.0, 0.0, 0.0]])
    e = np.array([[0.0, 0.0, 4.0, -1.0], [3.0, 0.0, 1.0, 0.0]])
    preds, na = squad.postprocess(examples, feats, s, e, [0, 0], 20, 30, 0.0)
    assert preds == {"a": "Paris", "b": ""}  # a: span 9 > null 0; b: null 6 > best span 1 + 1
    assert na["a"] == pytest.approx(1 / (1 + math.exp(9))) and na["b"] == pytest.approx(1 / (1 + math.exp(-4)))
    preds, _ = squad.postprocess(examples, feats, s, e, [0, 0], 20, 30, 10.0)
    assert preds["b"] == "hello yo"  # threshold 10: the span wins
    preds, _ = squad.postprocess(examples, feats, s, e, [0, 0], 20, 1, 0.0)
    assert preds["b"] == ""  # max_answer_length 1 excludes the 2-token span


# ------------------------------------------------------------------------------------ fine-tuning


def check_record(rec: dict, task: str):
    assert set(rec) >= {"ptm", "base", "task", "metrics", "diverged", "hyperparameters", "train_examples",
                        "train_time_s", "eval_time_s", "provenance"}
    assert set(rec["metrics"]) == set(tokenize.eval_splits(task))
    for values in rec["metrics"].values():
        if task == "squad_v2":
            assert set(values) == set(M.SQUAD_V2_KEYS)  # demo dev has answerable and unanswerable
            for k in ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1", "best_exact",
                      "best_f1"):
                assert 0.0 <= values[k] <= 100.0
            assert values["total"] == values["HasAns_total"] + values["NoAns_total"]
            assert 0.0 <= values["best_f1_thresh"] <= 1.0 and values["best_f1"] >= values["f1"] - 1e-9
        else:
            assert set(values) == set(registry.get(task).metric_keys)
            for k, v in values.items():
                assert (0.0 if k in ("eval_accuracy", "eval_acc", "eval_f1") else -1.0) <= v <= 1.0, k
    prov = rec["provenance"]
    assert prov["task"] == task and prov["seed"] == 0 and prov["wall_time_s"] > 0 and "versions" in prov


@pytest.mark.parametrize("family,task,save", [("bert", "sst2", True), ("albert", "sst2", True),
                                              ("bert", "stsb", False), ("roberta", "mnli", False),
                                              ("bert", "squad_v2", True)])
def test_finetune_every_task_type(tmp_path, tiny_model, family, task, save):
    from safetensors.torch import load_file
    from transformers import AutoModel

    model_dir = tiny_model(family)
    tok_dir, hp = prepare(tmp_path, model_dir, task)
    out = tmp_path / "out"
    rec = finetune.finetune(ptm=f"tiny-{family}", model_dir=model_dir, tokenized_dir=tok_dir, task=task,
                            hp=hp, metrics_path=out / "metrics.json", save_dir=out / "model" if save else None)
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(rec))
    check_record(rec, task)
    assert rec["ptm"] == rec["base"] == f"tiny-{family}" and rec["diverged"] is False
    assert rec["train_examples"] == 64 if task != "squad_v2" else rec["train_examples"] >= 64
    if not save:
        assert not (out / "model").exists()
        return
    assert (out / "model" / "model.safetensors").exists() and not list((out / "model").glob("*.bin"))
    assert (out / "model" / "tokenizer_config.json").exists()
    prov = json.loads((out / "model" / "provenance.json").read_text())  # checked by status --verify
    assert set(prov["sha256"]) == {p.name for p in (out / "model").iterdir()} - {"provenance.json"}
    assert prov["sha256"]["model.safetensors"] == provenance.sha256(out / "model" / "model.safetensors")
    keys = load_file(str(out / "model" / "model.safetensors"))
    if task == "squad_v2":
        assert not any("pooler" in k for k in keys)  # QA models have no pooler
    tuned, base = AutoModel.from_pretrained(str(out / "model")), AutoModel.from_pretrained(str(model_dir))
    assert type(tuned) is type(base)
    t_sd, b_sd = tuned.state_dict(), base.state_dict()
    name = next(k for k in t_sd if k.endswith("attention.self.query.weight") or k.endswith("query.weight"))
    saved = next(v for k, v in keys.items() if k.endswith(name))
    assert torch.equal(t_sd[name], saved)  # the encoder AutoModel loads is the fine-tuned one
    assert not torch.equal(t_sd[name], b_sd[name])


@pytest.mark.parametrize("source", ["demo", "real"])
def test_real_minilm_learns_sst2(tmp_path, minilm_dir, source):
    """The real pretrained MiniLM fine-tuned on sst2 rows is well above chance (50%) on validation."""
    import datasets

    if source == "real":
        real = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "real" / "glue" / "sst2"
        if not real.is_dir():
            pytest.skip(f"real SST-2 rows not found at {real}")

        def read(name, n):
            rows = [r.split("\t") for r in (real / name).read_text().splitlines()[1:]][:n]
            return datasets.Dataset.from_dict(
                {"sentence": [r[0] for r in rows], "label": [int(r[1]) for r in rows],
                 "idx": list(range(len(rows)))}, features=data.features("sst2"))

        datasets.DatasetDict({"train": read("train.tsv", 320), "validation": read("dev.tsv", 200)}).save_to_disk(
            str(tmp_path / "glue"))
        floor = 0.70
    else:
        data.demo_glue("sst2", 0, 192, 128).save_to_disk(str(tmp_path / "glue"))
        floor = 0.85
    hp = {**GLUE_HP, "learning_rate": 1e-4, "batch_size": 16, "epochs": 3, "max_length": 40}
    tokenize.tokenize(minilm_dir, "sst2", tmp_path / "glue", tmp_path / "tok", hp)
    rec = finetune.finetune(ptm="minilm", model_dir=minilm_dir, tokenized_dir=tmp_path / "tok", task="sst2",
                            hp=hp, metrics_path=tmp_path / "m.json")
    assert rec["metrics"]["validation"]["eval_accuracy"] >= floor, rec["metrics"]


# ------------------------------------------------------------------------------ batch split, OOM retry


def test_batch_split_keeps_effective_batch_and_batches(tmp_path, tiny_model):
    args1 = finetune.training_arguments({**GLUE_HP, "batch_size": 32}, tmp_path, 1)
    args2 = finetune.training_arguments({**GLUE_HP, "batch_size": 32}, tmp_path, 2)
    assert (args1.per_device_train_batch_size, args1.gradient_accumulation_steps) == (32, 1)
    assert (args2.per_device_train_batch_size, args2.gradient_accumulation_steps) == (16, 2)
    with pytest.raises(ValueError, match="divide batch_size"):
        finetune.training_arguments({**GLUE_HP, "batch_size": 32}, tmp_path, 3)
    # the same examples in the same effective batches, and the same training (fp32, up to rounding)
    tok_dir, hp = prepare(tmp_path, tiny_model("bert"), "sst2", n_train=64, n_val=32)
    recs = [finetune.finetune(ptm="tiny", model_dir=tiny_model("bert"), tokenized_dir=tok_dir, task="sst2",
                              hp={**hp, "precision": "fp32"}, metrics_path=tmp_path / f"m{k}.json", batch_split=k)
            for k in (1, 2)]
    h1, h2 = recs[0]["hyperparameters"], recs[1]["hyperparameters"]
    assert (h1["per_device_batch"], h1["grad_accum"]) == (16, 1)
    assert (h2["per_device_batch"], h2["grad_accum"]) == (8, 2)
    assert h1["effective_batch"] == h2["effective_batch"] == 16
    assert recs[0]["train_steps"] == recs[1]["train_steps"]
    # same batches and mean-loss gradients; only dropout masks (drawn per micro-batch) and rounding differ
    assert recs[1]["train_loss"] == pytest.approx(recs[0]["train_loss"], rel=1e-2)


def test_the_seed_draws_the_head_and_the_batch_order_not_the_subsample(tmp_path, tiny_model, monkeypatch):
    """An extra seed (rule finetune_seed: hp seed, subsample_seed = the primary seed) gets another new head
    and other batches, on the same max_train_examples subsample; metrics.json records it."""
    heads, orders, subsamples = [], [], []
    load, order, sub = finetune.load_task_model, finetune.length_grouped_indices, finetune.subsample

    def spy_load(*a, **kw):
        model = load(*a, **kw)
        heads.append(torch.cat([p.detach().flatten().clone() for n, p in model.named_parameters()
                                if n.startswith("classifier")]))
        return model

    def spy_order(*a, **kw):
        orders.append(order(*a, **kw))
        return orders[-1]

    def spy_sub(*a, **kw):
        subsamples.append(sub(*a, **kw).tolist())
        return np.asarray(subsamples[-1])

    monkeypatch.setattr(finetune, "load_task_model", spy_load)
    monkeypatch.setattr(finetune, "length_grouped_indices", spy_order)
    monkeypatch.setattr(finetune, "subsample", spy_sub)
    tok_dir, hp = prepare(tmp_path, tiny_model("bert"), "sst2", n_train=40, n_val=8, max_train_examples=32)
    recs = [finetune.finetune(ptm="tiny", model_dir=tiny_model("bert"), tokenized_dir=tok_dir, task="sst2",
                              hp={**h, "precision": "fp32"}, metrics_path=tmp_path / f"m{i}.json")
            for i, h in enumerate([hp, {**hp, "seed": 1, "subsample_seed": 0}])]
    assert [r["hyperparameters"]["seed"] for r in recs] == [r["provenance"]["seed"] for r in recs] == [0, 1]
    assert json.loads((tmp_path / "m1.json").read_text())["hyperparameters"]["seed"] == 1
    assert len(heads) == len(orders) == 2 and not torch.equal(heads[0], heads[1]) and orders[0] != orders[1]
    assert subsamples[0] == subsamples[1] != sub(40, 32, 1).tolist()  # the same 32 examples
    assert recs[0]["train_examples"] == recs[1]["train_examples"] == 32


def test_length_grouped_indices_groups_and_covers():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 60, size=1000).tolist()
    gen = torch.Generator().manual_seed(0)
    order = finetune.length_grouped_indices(lengths, 32, generator=gen)
    assert sorted(order) == list(range(1000))
    padded = sum(len(b) * max(lengths[i] for i in b) for b in (order[k:k + 32] for k in range(0, 1000, 32)))
    assert padded < 1.15 * sum(lengths)  # random batches: about 1.8x here
    again = finetune.length_grouped_indices(lengths, 32, generator=torch.Generator().manual_seed(0))
    assert again == order


# ------------------------------------------------------------------------------------- divergence


def test_divergence_recorded_at_chance_level(tmp_path, tiny_model):
    tok_dir, hp = prepare(tmp_path, tiny_model("bert"), "sst2", n_train=64, n_val=32, learning_rate=1e6)
    out = tmp_path / "out"
    rec = finetune.finetune(ptm="tiny", model_dir=tiny_model("bert"), tokenized_dir=tok_dir, task="sst2", hp=hp,
                            metrics_path=out / "metrics.json", save_dir=out / "model")
    assert rec["diverged"] is True and rec["train_loss"] is None and rec["diverged_at_step"] is not None
    import datasets

    dd = datasets.load_from_disk(str(tok_dir))
    train, val = np.asarray(dd["train"]["labels"]), np.asarray(dd["validation"]["labels"])
    majority = np.bincount(train).argmax()
    m = rec["metrics"]["validation"]
    assert m["eval_accuracy"] == pytest.approx(np.mean(val == majority))
    assert m["eval_matthews_correlation"] == m["eval_pearson"] == m["eval_spearman"] == 0.0
    # the saved model is usable (finite: the pre-trained encoder + fresh head), flagged in metrics.json
    from transformers import AutoModel

    assert all(torch.isfinite(p).all() for p in AutoModel.from_pretrained(str(out / "model")).parameters())
    assert rec["saved_weights"].startswith("initial")


def test_divergence_stsb_and_squad_chance(tmp_path, tiny_model):
    for task in ("stsb", "squad_v2"):
        tok_dir, hp = prepare(tmp_path / task, tiny_model("bert"), task, n_train=32, n_val=24, learning_rate=1e6)
        rec = finetune.finetune(ptm="tiny", model_dir=tiny_model("bert"), tokenized_dir=tok_dir, task=task, hp=hp,
                                metrics_path=tmp_path / task / "m.json")
        assert rec["diverged"] is True
        m = rec["metrics"]["validation"]
        if task == "stsb":
            assert m == {"eval_pearson": 0.0, "eval_spearman": 0.0}
        else:  # no answer everywhere: exact = f1 = share of unanswerable questions
            assert m["exact"] == m["f1"] == pytest.approx(100 * m["NoAns_total"] / m["total"])
            assert m["HasAns_exact"] == 0.0 and m["NoAns_exact"] == 100.0


# ------------------------------------------------------------------------------------ bad labels


def _poison_labels(tok_dir: Path, out: Path, split: str, row: int, value) -> Path:
    """A copy of tokenised features ``tok_dir`` with ``labels[row]`` of ``split`` set to ``value``."""
    import datasets

    dd = datasets.load_from_disk(str(tok_dir))
    rows = dd[split].to_dict()
    rows["labels"][row] = value
    dd[split] = datasets.Dataset.from_dict(rows, features=dd[split].features)
    dd.save_to_disk(str(out))
    (out / "info.json").write_bytes((tok_dir / "info.json").read_bytes())
    return out


@pytest.mark.parametrize("task, split, value, problem", [
    ("stsb", "train", float("nan"), "score nan is not finite"),
    ("stsb", "validation", float("inf"), "score inf is not finite"),
    ("sst2", "train", 7, "label 7 is not one of ['negative', 'positive']"),
])
def test_bad_labels_never_reach_training(tmp_path, tiny_model, task, split, value, problem):
    """NaN / out-of-range labels are bad data: an error before any training step, not a "diverged" run."""
    tok_dir, hp = prepare(tmp_path, tiny_model("bert"), task, n_train=24, n_val=12)
    bad = _poison_labels(tok_dir, tmp_path / "bad", split, 5, value)

    class NoTraining(finetune.BenchTrainer):
        def __init__(self, *args, **kw):
            raise AssertionError("a trainer was built for data with bad labels")

    out = tmp_path / "out"
    with pytest.raises(ValueError) as err:
        finetune.finetune(ptm="tiny", model_dir=tiny_model("bert"), tokenized_dir=bad, task=task, hp=hp,
                          metrics_path=out / "metrics.json", save_dir=out / "model", trainer_class=NoTraining)
    msg = str(err.value)
    assert f"tokenised {task} {bad}, split {split}, row 5 (0-based): {problem}" in msg
    assert f"delete resources/data/glue/{task}" in msg
    assert not out.exists()


def test_tokenize_refuses_bad_labels_in_cached_data(tmp_path, tiny_model):
    """GLUE data acquired before validation existed (or edited since) are checked again when tokenised."""
    import datasets

    src = make_data(tmp_path, "stsb", 24, 12)
    dd = datasets.load_from_disk(str(src))
    rows = dd["train"].to_dict()
    rows["label"][3] = float("nan")
    dd["train"] = datasets.Dataset.from_dict(rows, features=dd["train"].features)
    dd.save_to_disk(str(tmp_path / "bad" / "stsb"))
    with pytest.raises(ValueError, match=r"GLUE stsb data .*bad/stsb, split train, row 3 \(0-based\): score nan"):
        tokenize.tokenize(tiny_model("bert"), "stsb", tmp_path / "bad" / "stsb", tmp_path / "tok", GLUE_HP)
    assert not (tmp_path / "tok").exists()


def test_squad_question_too_long_for_the_stride(tmp_path, tiny_model):
    """doc_stride < max_length, but a question leaves no more than doc_stride tokens for the context: the
    tokenizer would panic ("stride must be strictly less than max_len"); we name the question instead."""
    from transformers import AutoTokenizer

    paths = make_data(tmp_path, "squad_v2", 16, 8)
    hp = {**SQUAD_HP, "max_length": 32, "doc_stride": 24}
    with pytest.raises(ValueError) as err:
        tokenize.tokenize(tiny_model("bert"), "squad_v2", paths, tmp_path / "tok", hp)
    first = tokenize.read_squad(paths[0])[0]
    n = len(AutoTokenizer.from_pretrained(str(tiny_model("bert")))(first["question"], add_special_tokens=False)
            ["input_ids"])
    msg = str(err.value)
    assert f"SQuAD v2 {paths[0]}: question {first['id']!r}" in msg
    assert f"has {n} tokens, which with 3 special tokens leaves {32 - n - 3} of max_length 32" in msg
    assert "more than doc_stride 24" in msg and "lower doc_stride" in msg
    assert not (tmp_path / "tok").exists()
    # no error where the tokenizer copes: a context short enough for one window (any stride), or a
    # stride one token below the room the question leaves
    tok = AutoTokenizer.from_pretrained(str(tiny_model("bert")))
    short = {"id": ["q"], "question": [first["question"]], "context": ["a short context ."]}
    tokenize.check_question_room(tok, short, short["question"], 32, 24)
    long = {**short, "context": ["a long context . " * 20]}
    tokenize.check_question_room(tok, long, long["question"], 32, 32 - n - 3 - 1)
    with pytest.raises(ValueError, match="more than doc_stride"):
        tokenize.check_question_room(tok, long, long["question"], 32, 32 - n - 3)


# ------------------------------------------------------------------------------- failure behaviour


def test_out_of_memory_is_retried_in_the_job_with_half_the_batch():
    import torch

    seen = []

    def run(split):
        seen.append(split)
        if split < 4:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return f"trained with split {split}"

    assert finetune.retry_out_of_memory(run, 1, 32) == ("trained with split 4", 2)
    assert seen == [1, 2, 4]
    seen.clear()
    with pytest.raises(torch.cuda.OutOfMemoryError):  # batch 2 cannot be halved twice
        finetune.retry_out_of_memory(run, 1, 2)
    assert seen == [1, 2]
    seen.clear()

    def other(split):
        seen.append(split)
        raise ValueError("not a memory error")

    with pytest.raises(ValueError):  # anything else is never retried
        finetune.retry_out_of_memory(other, 1, 32)
    assert seen == [1]


def test_bad_inputs_fail_clearly(tmp_path, tiny_model):
    with pytest.raises(FileNotFoundError, match="rule tokenize"):
        finetune.finetune(ptm="tiny", model_dir=tiny_model("bert"), tokenized_dir=tmp_path, task="sst2",
                          hp=GLUE_HP, metrics_path=tmp_path / "m.json")
    tok_dir, hp = prepare(tmp_path, tiny_model("bert"), "sst2", n_train=16, n_val=8)
    with pytest.raises(ValueError, match="holds task 'sst2'"):
        finetune.finetune(ptm="tiny", model_dir=tiny_model("bert"), tokenized_dir=tok_dir, task="cola",
                          hp=GLUE_HP, metrics_path=tmp_path / "m.json")
    with pytest.raises(ValueError, match="columns \\['premise', 'hypothesis'\\] missing"):
        tokenize.tokenize(tiny_model("bert"), "mnli", tmp_path / "glue" / "sst2", tmp_path / "t2", GLUE_HP)
    import datasets

    datasets.DatasetDict({"train": data.demo_glue("sst2", 0, 8, 4)["train"]}).save_to_disk(str(tmp_path / "only"))
    with pytest.raises(ValueError, match="split 'validation' missing"):
        tokenize.tokenize(tiny_model("bert"), "sst2", tmp_path / "only", tmp_path / "t2", GLUE_HP)
    assert not (tmp_path / "m.json").exists() and not (tmp_path / "t2").exists()


# ------------------------------------------------------------------------- GPU step-efficiency switches


def test_cuda_switches_are_off_on_the_cpu_and_chosen_by_name_on_cuda(monkeypatch):
    names = [sw.name for sw in finetune.CUDA_SWITCHES]
    monkeypatch.setenv(finetune.SWITCHES_ENV, "all")
    assert finetune.cuda_switches(False) == dict.fromkeys(names, False)  # the CPU path never changes
    assert finetune.cuda_switches(True, capability=9) == dict.fromkeys(names, True)
    assert finetune.cuda_switches(True, "none", capability=9) == dict.fromkeys(names, False)
    pre_ampere = finetune.cuda_switches(True, "all", capability=7)
    assert pre_ampere["tf32"] is False and pre_ampere["fused_adamw"] is True
    assert [n for n, on in finetune.cuda_switches(True, "-tf32,-sdpa", capability=9).items() if not on] == \
        ["tf32", "sdpa"]
    assert [n for n, on in finetune.cuda_switches(True, "pad8", capability=9).items() if on] == ["pad8"]
    with pytest.raises(ValueError, match="PTMBENCH_CUDA_SWITCHES='tf23'.*known switches: fused_adamw"):
        finetune.cuda_switches(True, "tf23", capability=9)
    with pytest.raises(ValueError, match="not both|to drop"):
        finetune.cuda_switches(True, "pad8,-tf32", capability=9)


def test_switches_reach_the_trainer_and_are_recorded(tmp_path, tiny_model):
    """On the CPU the arguments are the pre-switch ones; each switch changes exactly its setting, and
    metrics.json records which were on and the attention the model used."""
    hp = {**GLUE_HP, "batch_size": 16}
    from transformers import TrainingArguments

    plain = finetune.training_arguments(hp, tmp_path, 2)
    assert (plain.optim, plain.per_device_eval_batch_size, plain.dataloader_num_workers,
            plain.dataloader_pin_memory) == (TrainingArguments(str(tmp_path)).optim, 8, 0, False)
    on = {**finetune.cuda_switches(False), "fused_adamw": True, "eval_batch_x4": True, "loader": True}
    fast = finetune.training_arguments(hp, tmp_path, 2, switches=on)
    assert (fast.optim, fast.per_device_eval_batch_size, fast.dataloader_num_workers,
            fast.dataloader_persistent_workers) == ("adamw_torch_fused", 32, 2, True)
    assert fast.per_device_train_batch_size == 8 and fast.gradient_accumulation_steps == 2
    model_dir = tiny_model("bert")
    tok_dir, hp = prepare(tmp_path, model_dir, "sst2", n_train=32, n_val=16)
    sw = {**finetune.cuda_switches(False), "sdpa": True, "pad8": True, "eval_batch_x4": True}
    rec = finetune.finetune(ptm="tiny-bert", model_dir=model_dir, tokenized_dir=tok_dir, task="sst2", hp=hp,
                            metrics_path=tmp_path / "m.json", switches=sw)
    assert rec["provenance"]["cuda_switches"] == sw and rec["provenance"]["attn_implementation"] == "sdpa"
    # an attention the environment cannot provide falls back to the architecture's default
    model = finetune.load_task_model(model_dir, "sst2", attn_implementation="flash_attention_2")
    assert model.config._attn_implementation != "flash_attention_2"


def test_hyperparameters_are_typed_and_checked():
    """Every (base model, task) of the paper config resolves to a FinetuneParams; a key the dataclass does
    not know, or a missing one, is an error naming it and the config section."""
    from ptmbench.core import naming, paths
    from ptmbench.core.finetune_params import FinetuneParams
    from ptmbench.settings.config import load

    cfg = load(Path(__file__).resolve().parents[1] / "config" / "config.yaml")
    zoo = paths.Zoo.from_config(cfg)
    for base in zoo.bases:
        for task in zoo.tasks:
            hp = FinetuneParams.from_dict(naming.hyperparameters(cfg, base, task))
            assert hp.seed == cfg["finetune"]["seeds"][0] and hp.data_seed == hp.seed
            assert (hp.doc_stride is not None) == (task == "squad_v2")
    hp = FinetuneParams.from_dict({**GLUE_HP, "seed": 3, "subsample_seed": 0})
    assert hp.data_seed == 0 and hp.as_dict()["subsample_seed"] == 0 and "doc_stride" not in hp.as_dict()
    with pytest.raises(ValueError, match=r"unknown fine-tuning hyper-parameter\(s\) \['lr'\].*config 'finetune.glue'"):
        FinetuneParams.from_dict({**GLUE_HP, "lr": 0.1})
    with pytest.raises(ValueError, match=r"\['max_length'\] missing"):
        FinetuneParams.from_dict({k: v for k, v in GLUE_HP.items() if k != "max_length"})


# /proc/cpuinfo flags of the two kinds of x86-64 CPU the suite runs on (trimmed): an AMD EPYC with AVX2
# only, and a Sapphire Rapids Xeon with AVX512-BF16 and AMX.
AVX2_FLAGS = "flags : fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 bmi1 bmi2 sha_ni clzero"
BF16_FLAGS = AVX2_FLAGS + " avx512f avx512bw avx512vl avx_vnni avx512_bf16 amx_bf16 amx_tile amx_int8"


def test_auto_precision_from_the_cpu_flags():
    """auto: fp32 on a CPU without native bf16, bf16 with AVX512-BF16 or AMX (either alone); a pinned
    mode is used as it is, whatever the CPU; a flag is a whole word (no substring match)."""
    r = finetune.resolve_precision
    assert r("auto", cuda=False, cpu_flags=AVX2_FLAGS) == "fp32"
    assert r("auto", cuda=False, cpu_flags=BF16_FLAGS) == "bf16"
    assert r("auto", cuda=False, cpu_flags=AVX2_FLAGS + " avx512_bf16") == "bf16"
    assert r("auto", cuda=False, cpu_flags=AVX2_FLAGS + " amx_bf16") == "bf16"
    assert r("auto", cuda=False, cpu_flags=AVX2_FLAGS + " avx512_bf16x") == "fp32"
    for mode in ("fp32", "bf16", "fp16"):
        assert r(mode, cuda=False, cpu_flags=AVX2_FLAGS) == r(mode, cuda=False, cpu_flags=BF16_FLAGS) == mode
    with pytest.raises(ValueError, match="finetune.precision"):
        r("half", cuda=False, cpu_flags=AVX2_FLAGS)


def test_training_arguments_follow_the_precision(tmp_path):
    """hp["precision"] sets the Trainer's mixed precision; fp32 turns both off on any machine."""
    args = finetune.training_arguments({**GLUE_HP, "precision": "fp32"}, tmp_path)
    assert (args.bf16, args.fp16) == (False, False)
    args = finetune.training_arguments({**GLUE_HP, "precision": "bf16"}, tmp_path)
    assert (args.bf16, args.fp16) == (True, False)


def test_logme_feature_precision():
    """logme.precision auto: bf16 only on a CUDA device that supports it; the CPU always fp32."""
    from ptmbench.estimators.features import resolve_precision

    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("auto", "cuda", bf16_supported=True) == "bf16"
    assert resolve_precision("auto", "cuda", bf16_supported=False) == "fp32"
    assert resolve_precision("bf16", "cpu") == "bf16" and resolve_precision("fp32", "cuda", True) == "fp32"
    with pytest.raises(ValueError, match="logme.precision"):
        resolve_precision("fp16", "cuda", True)


def _slow_bert(fast, tmp_path):
    """The same WordPiece vocabulary as ``fast`` in a Python tokenizer (BertJapaneseTokenizer with BERT's
    basic word splitter: no offsets, no overflowing windows), as FlauBERT's and Japanese BERT's are."""
    from transformers import BertJapaneseTokenizer

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("".join(t + "\n" for t, _ in sorted(fast.get_vocab().items(), key=lambda kv: kv[1])))
    BertJapaneseTokenizer(str(vocab), do_lower_case=True, word_tokenizer_type="basic",
                          model_max_length=512).save_pretrained(str(tmp_path / "slow"))
    (tmp_path / "slow" / "config.json").write_text(json.dumps({"model_type": "bert", "type_vocab_size": 2}))
    slow = tokenize.load_tokenizer(tmp_path / "slow")  # as the workflow loads it: with token types
    assert not slow.is_fast and "token_type_ids" in slow.model_input_names
    return slow


def test_squad_windows_without_a_fast_tokenizer_equal_the_fast_tokenizers(tmp_path, minilm_dir, real_fixtures):
    """Real SQuAD v2 questions in windows of 64 tokens, stride 16: the windows made without offsets
    (tokenize.piece_offsets) hold the same tokens, token types, answer positions and context offsets as
    a fast tokenizer's overflowing windows."""
    from transformers import AutoTokenizer

    fast = AutoTokenizer.from_pretrained(str(minilm_dir))  # BERT's uncased WordPiece vocabulary
    slow = _slow_bert(fast, tmp_path)
    rows = tokenize.read_squad(real_fixtures / "squad_v2" / "dev-v2.0.json")[:40]
    batch = {k: [r[k] for r in rows] for k in rows[0]}
    got = {name: (tokenize.squad_train_features(tok, batch, 64, 16), tokenize.squad_eval_features(tok, batch, 64, 16))
           for name, tok in (("fast", fast), ("slow", slow))}
    (ftrain, feval), (strain, seval) = got["fast"], got["slow"]
    assert len(ftrain["input_ids"]) > len(rows)  # contexts were split into windows
    for key in ("input_ids", "token_type_ids", "attention_mask", "start_positions", "end_positions"):
        assert strain[key] == ftrain[key], key
    assert seval["example_id"] == feval["example_id"]
    assert seval["offset_mapping"] == feval["offset_mapping"]


@pytest.mark.parametrize("family, types", [("albert", True), ("funnel-base", True), ("bert-japanese", True),
                                           ("bert", True), ("roberta", False), ("distilbert", False)])
def test_models_with_token_type_embeddings_get_token_types(tiny_model, family, types):
    """A pair's second segment is type 1 (Funnel's <cls> 2) whenever the model has type embeddings, also where
    transformers 5's tokenizer would not return them by itself (ALBERT, Funnel, Japanese BERT)."""
    tok = tokenize.load_tokenizer(tiny_model(family))
    enc = tok("the film was good .", "a second sentence")
    assert ("token_type_ids" in enc) == types
    if types:
        ids, tt = enc["input_ids"], enc["token_type_ids"]
        assert tt[-1] == 1 and tt[1] == 0 and tt[0] == (2 if family == "funnel-base" else 0)
        assert sum(t == 1 for t in tt) == len(tok("a second sentence", add_special_tokens=False)["input_ids"]) + 1
        assert len(tt) == len(ids)
