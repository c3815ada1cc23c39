"""LogME evidence (against independent computations), features (batch independence) and score_ptm."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import minimize

from ptmbench.data import tokenized as rows
from ptmbench.estimators import features, logme
from ptmbench.stages import logme as logme_stage


def direct_logme(F, y):
    """Independent LogME: maximise the Gaussian marginal likelihood log N(y; 0, K / alpha + I / beta),
    K = F F^T (N x N, the dual form), numerically over (log alpha, log beta) with Nelder-Mead."""
    lam, Q = np.linalg.eigh(np.asarray(F, np.float64) @ np.asarray(F, np.float64).T)
    lam = np.maximum(lam, 0.0)
    z2 = (Q.T @ y) ** 2
    N = len(y)

    def nll(p):
        v = lam / np.exp(p[0]) + 1 / np.exp(p[1])  # eigenvalues of the covariance of y
        return 0.5 * (np.sum(np.log(v)) + np.sum(z2 / v) + N * np.log(2 * np.pi)) / N

    best = min((minimize(nll, x0, method="Nelder-Mead",
                         options={"xatol": 1e-11, "fatol": 1e-15, "maxiter": 4000})
                for x0 in ([0.0, 0.0], [3.0, 1.0])), key=lambda r: r.fun)
    return -best.fun


def make(N, D, C=3, seed=0, sep=1.0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, N)
    F = rng.standard_normal((N, D)) + 0.5
    F[:, :C] += sep * np.eye(C)[labels]
    return F, labels


@pytest.mark.parametrize("N,D", [(120, 10), (40, 60)], ids=["N>D", "N<D"])
def test_evidence_equals_direct_maximisation(N, D):
    F, labels = make(N, D)
    Y = logme.targets(labels, "mnli")
    ours = logme.logme(F, Y)
    ref = np.array([direct_logme(F, y) for y in Y.T])
    np.testing.assert_allclose(ours, ref, rtol=1e-6)


def test_regression_equals_direct_maximisation():
    F, _ = make(100, 8, seed=1)
    y = F[:, 0] * 0.7 - F[:, 1] + np.random.default_rng(2).standard_normal(100) * 0.5 + 2.5
    ours = logme.logme(F, logme.targets(y.astype(np.float32), "stsb"))
    assert ours.shape == (1,)
    np.testing.assert_allclose(ours[0], direct_logme(F, y.astype(np.float32).astype(np.float64)), rtol=1e-6)


@pytest.mark.parametrize("N,D,C", [(500, 30, 3), (30, 50, 2), (2000, 64, 2)])
def test_fast_equals_baseline(N, D, C):
    F, labels = make(N, D, C, seed=N)
    Y = logme.targets(labels, "qnli")
    np.testing.assert_allclose(logme.logme(F, Y), logme.logme_baseline(F, Y), rtol=1e-9)


def test_duplicate_constant_and_zero_columns():
    F, labels = make(80, 12, seed=3)
    F = np.hstack([F, F[:, :3], np.ones((80, 1)), np.zeros((80, 2))])  # rank 13 of D = 18
    Y = logme.targets(labels, "mnli")
    ours = logme.logme(F, Y)
    assert np.isfinite(ours).all()
    np.testing.assert_allclose(ours, [direct_logme(F, y) for y in Y.T], rtol=1e-6)
    np.testing.assert_allclose(ours, logme.logme_baseline(F, Y), rtol=1e-9)


def test_float32_input_is_computed_in_float64():
    F, labels = make(3000, 40, seed=4)
    F32 = (F * 100).astype(np.float32)  # large values: a float32 F^T F would lose digits
    Y = logme.targets(labels, "mnli")
    np.testing.assert_allclose(logme.logme(F32, Y), logme.logme(F32.astype(np.float64), Y), rtol=1e-12)


def test_gram_chunks_do_not_change_result():
    F, labels = make(1000, 16, seed=5)
    Y = logme.targets(labels, "mnli")
    G1, B1, yy1 = logme.gram(F, Y)
    G2, B2, yy2 = logme.gram(F, Y, chunk_bytes=8 * 16 * 7)  # 7-row chunks
    np.testing.assert_allclose(G1, G2, rtol=1e-12)
    np.testing.assert_allclose(B1, B2, rtol=1e-12)
    np.testing.assert_array_equal(yy1, yy2)


def test_separating_features_score_higher_than_random():
    rng = np.random.default_rng(6)
    labels = rng.integers(0, 3, 600)
    random = rng.standard_normal((600, 32))
    separating = random.copy()
    separating[:, :3] = 5 * np.eye(3)[labels]  # a linear read-out gives every label exactly
    Y = logme.targets(labels, "mnli")
    s_sep, s_rand = logme.logme(separating, Y).mean(), logme.logme(random, Y).mean()
    assert s_sep > s_rand + 0.5, (s_sep, s_rand)


def test_targets():
    Y = logme.targets(np.array([2, 0, 2, 2]), "mnli")  # class 1 absent: one target per present class
    np.testing.assert_array_equal(Y, [[0, 1], [1, 0], [0, 1], [0, 1]])
    Y = logme.targets(np.array([0.5, 4.0], np.float32), "stsb")
    assert Y.shape == (2, 1) and Y.dtype == np.float64


def test_bad_labels_give_clear_errors():
    with pytest.raises(ValueError, match=r"task 'rte'.*only class \[1\]"):
        logme.targets(np.ones(50, np.int64), "rte")
    with pytest.raises(ValueError, match="label -1"):
        logme.targets(np.array([0, 1, -1]), "cola")
    with pytest.raises(ValueError, match="every label is 0"):
        logme.targets(np.zeros(5, np.float32), "stsb")
    with pytest.raises(ValueError, match="NaN"):
        logme.logme(np.full((5, 2), np.nan), np.eye(5)[:, :2])


def test_subsample_is_deterministic():
    a, b = rows.subsample(1000, 100, 0), rows.subsample(1000, 100, 0)
    np.testing.assert_array_equal(a, b)
    assert len(np.unique(a)) == 100 and np.all(np.diff(a) > 0) and a.max() < 1000
    assert not np.array_equal(a, rows.subsample(1000, 100, 1))
    assert rows.subsample(50, 100, 0) is None and rows.subsample(50, None, 0) is None
    with pytest.raises(ValueError, match="logme.max_examples must be >= 2"):
        rows.subsample(50, 1, 0, key="logme.max_examples", minimum=2)


# ---- features and score_ptm on the packaged real MiniLM encoder ---------------------------------

WORDS = ("the film was a quiet and moving portrait of a family that never quite learns to talk "
         "about what matters while the city around them keeps changing").split()


def sentences(n, seed=0):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 30)))) for _ in range(n)]


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    from transformers import AutoTokenizer

    return minilm_dir, AutoTokenizer.from_pretrained(str(minilm_dir))


def tokenized(tokenizer, texts, labels):
    from datasets import Dataset

    enc = tokenizer(texts, truncation=True, max_length=512)
    return Dataset.from_dict({**enc, "labels": labels})


def test_features_do_not_depend_on_batching(minilm):
    import torch

    path, tok = minilm
    texts = sentences(21)
    ds = tokenized(tok, texts, list(range(21)))
    model = features.load_model(path, "cpu")
    feats = {bs: features.mean_pooled(model, ds, bs, tok.pad_token_id) for bs in (1, 3, 16)}
    assert feats[1].shape == (21, 384) and feats[1].dtype == np.float32
    for bs in (3, 16):
        np.testing.assert_allclose(feats[bs], feats[1], atol=2e-5, rtol=1e-4)
    # independent check of masking and of the order: each example alone, unpadded, plain mean
    with torch.inference_mode():
        for i in (0, 7, 20):
            enc = tok(texts[i], return_tensors="pt")
            ref = model(**enc).last_hidden_state[0].mean(0).numpy()
            np.testing.assert_allclose(feats[16][i], ref, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("family", ["roberta", "distilbert", "albert", "electra", "xlm-roberta", "flaubert",
                                    "funnel-base", "bert-japanese"])
def test_features_do_not_depend_on_batching_any_family(tiny_model, family):
    from transformers import AutoTokenizer

    path = tiny_model(family)
    tok = AutoTokenizer.from_pretrained(str(path))
    ds = tokenized(tok, sentences(13, seed=2), [0] * 13)
    if "token_type_ids" not in ds.column_names:  # a column the model may not take (DistilBERT) is skipped
        ds = ds.add_column("token_type_ids", [[0] * len(x) for x in ds["input_ids"]])
    F1 = features.extract(path, ds, batch_size=1, device="cpu")
    F5 = features.extract(path, ds, batch_size=5, device="cpu")
    assert F1.shape == (13, 64) and np.isfinite(F1).all()
    np.testing.assert_allclose(F5, F1, atol=2e-5, rtol=1e-4)
    assert np.abs(F1[0] - F1[1]).max() > 1e-3  # distinct sentences give distinct features


def test_funnel_features_average_its_shorter_output(tiny_model):
    """Funnel "-base": the last hidden state is about half as long as the input (one pooling in the tiny
    model); each feature is the plain mean of the example's own output, run alone and unpadded."""
    import torch
    from transformers import AutoModel

    from ptmbench.stages.tokenize import load_tokenizer

    path = tiny_model("funnel-base")
    tok = load_tokenizer(path)  # with the token types (<cls> is type 2)
    texts = sentences(9, seed=3)
    ds = tokenized(tok, texts, [0] * 9)
    assert ds[0]["token_type_ids"][0] == 2
    model = AutoModel.from_pretrained(str(path)).eval()
    assert type(model).__name__ == "FunnelBaseModel" and features.pools_sequence(model)
    F = features.mean_pooled(model, ds, batch_size=4, pad_token_id=tok.pad_token_id)
    with torch.inference_mode():
        for i in (0, 4, 8):
            enc = tok(texts[i], return_tensors="pt")
            out = model(**enc).last_hidden_state[0]
            assert out.shape[0] == (enc["input_ids"].shape[1] + 1) // 2
            np.testing.assert_allclose(F[i], out.mean(0).numpy(), atol=2e-5, rtol=1e-4)
        # a padded batch: the mask is pooled as the model pools it, to the output's length
        enc = tok([texts[0], texts[1]], padding=True, return_tensors="pt")
        hidden = model(**enc).last_hidden_state
        mask = features.output_mask(model, enc["attention_mask"], hidden.shape[1])
        assert mask.shape == hidden.shape[:2] and mask.sum(1).min() >= 1


def test_output_mask_of_a_shorter_output_without_pooling_is_an_error():
    import torch

    class Shrinks(torch.nn.Module):
        pass

    with pytest.raises(ValueError, match="Shrinks: the last hidden state has 3 positions for 6 input tokens"):
        features.output_mask(Shrinks(), torch.ones(2, 6, dtype=torch.long), 3)


def test_equal_length_batches():
    lens = np.array([5, 5, 5, 4, 4, 3, 3, 3, 3])
    order = np.arange(9)
    assert [b.tolist() for b in features.batches(order, lens, 2, equal_lengths=True)] == [
        [0, 1], [2], [3, 4], [5, 6], [7, 8]]
    assert [b.tolist() for b in features.batches(order, lens, 4)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8]]


def test_score_ptm_writes_result(minilm, tmp_path):
    from datasets import DatasetDict

    path, tok = minilm
    texts = sentences(40, seed=1)
    labels = [int("film" in t) for t in texts]
    tdir = tmp_path / "tokenized" / "minilm" / "sst2"
    DatasetDict({"train": tokenized(tok, texts, labels)}).save_to_disk(str(tdir))
    out = tmp_path / "logme" / "minilm" / "sst2.json"
    res = logme_stage.score_ptm("minilm", path, tdir, "sst2", out, max_examples=None, batch_size=8)
    saved = json.loads(out.read_text())
    assert saved["score"] == pytest.approx(res["score"]) and np.isfinite(saved["score"])
    assert {k: saved[k] for k in ("ptm", "base", "task", "n", "d", "num_targets", "max_examples")} == {
        "ptm": "minilm", "base": "minilm", "task": "sst2", "n": 40, "d": 384, "num_targets": 2,
        "max_examples": None}
    assert saved["time_s"] >= saved["logme_time_s"] > 0 and "versions" in saved["provenance"]
    # the encoder's parameter count (param_count baseline), against BERT's architecture arithmetic
    cfg = json.loads((Path(path) / "config.json").read_text())
    h, i, n_layers = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    embeddings = (cfg["vocab_size"] + cfg["max_position_embeddings"] + cfg["type_vocab_size"]) * h + 2 * h
    layer = 4 * (h * h + h) + 2 * h + (h * i + i) + (i * h + h) + 2 * h
    assert saved["parameters"] == embeddings + n_layers * layer + (h * h + h)  # + the pooler
    # the same features, scored directly
    F = features.extract(path, tokenized(tok, texts, labels), batch_size=5)
    assert saved["score"] == pytest.approx(logme.logme(F, logme.targets(np.array(labels), "sst2")).mean(),
                                           rel=1e-4)
    sub = logme_stage.score_ptm("minilm", path, tdir, "sst2", tmp_path / "sub.json", max_examples=25)
    assert sub["n"] == 25 and sub["max_examples"] == 25
    assert sub["score"] == logme_stage.score_ptm("minilm", path, tdir, "sst2", tmp_path / "sub2.json",
                                           max_examples=25)["score"]


def test_score_ptm_one_class_is_a_clear_error(minilm, tmp_path):
    from datasets import DatasetDict

    path, tok = minilm
    tdir = tmp_path / "tok"
    DatasetDict({"train": tokenized(tok, sentences(6), [1] * 6)}).save_to_disk(str(tdir))
    with pytest.raises(ValueError, match="task 'rte'"):
        logme_stage.score_ptm("minilm", path, tdir, "rte", tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


# ---- the other transferability estimators, in the same job ----------------------------------------


@pytest.fixture(scope="module")
def tiny_bert_tasks(tiny_model, tmp_path_factory):
    """A tiny BERT and 60 tokenised training examples of sst2 (two classes) and stsb (a float score)."""
    from datasets import DatasetDict
    from transformers import AutoTokenizer

    path = tiny_model("bert")
    tok = AutoTokenizer.from_pretrained(str(path))
    texts = sentences(60, seed=3)
    root = tmp_path_factory.mktemp("tokenized")
    labels = {"sst2": [i % 2 for i in range(60)], "stsb": [len(t.split()) / 6 for t in texts]}
    for task, y in labels.items():
        DatasetDict({"train": tokenized(tok, texts, y)}).save_to_disk(str(root / "tiny" / task))
    return path, root / "tiny", labels


@pytest.mark.parametrize("task", ["sst2", "stsb"])
def test_score_ptm_records_every_estimator(tiny_bert_tasks, tmp_path, task):
    """The JSON keeps LogME as ``score`` and adds every estimator on the same features: the values
    score_all gives on them, LogME's equal to ``score``, the classification-only ones not applicable
    (score null, a note) on the regression task, never 0."""
    from datasets import load_from_disk

    from ptmbench.estimators import transferability as tr

    path, root, labels = tiny_bert_tasks
    out = tmp_path / f"{task}.json"
    logme_stage.score_ptm("tiny", path, root / task, task, out, batch_size=16)
    saved = json.loads(out.read_text())
    assert {"ptm", "base", "task", "score", "n", "d", "num_targets", "time_s", "feature_time_s", "logme_time_s",
            "max_examples", "provenance"} < set(saved)
    ests = saved["estimators"]
    assert list(ests) == list(tr.ESTIMATORS)
    assert ests["logme"] == {"score": saved["score"], "time_s": saved["logme_time_s"], "applicable": True,
                             "note": None}
    F = features.extract(path, load_from_disk(str(root / task))["train"], batch_size=16)
    direct = tr.score_all(F, np.asarray(labels[task]), task, names=[n for n in tr.ESTIMATORS if n != "logme"])
    # one pass: the published LogME comes from score_all's shared statistics, equal to LogME alone
    alone = logme.logme(F, logme.targets(np.asarray(labels[task]), task))
    assert saved["score"] == pytest.approx(float(alone.mean()), rel=1e-12, abs=0)
    np.testing.assert_allclose(saved["provenance"]["evidence_per_target"], alone, rtol=1e-11)
    assert np.mean(saved["provenance"]["evidence_per_target"]) == saved["score"]
    kind = "regression" if task == "stsb" else "classification"
    for name, e in ests.items():
        assert set(e) == {"score", "time_s", "applicable", "note"} and e["time_s"] >= 0
        if kind in tr.APPLIES[name]:
            assert e["applicable"] and e["note"] is None and np.isfinite(e["score"])
            if name != "logme":
                assert e["score"] == pytest.approx(direct[name]["score"], rel=1e-9, abs=1e-12), name
        else:
            assert e == {"score": None, "time_s": e["time_s"], "applicable": False,
                         "note": f"{name} is defined for classification tasks; 'stsb' is a regression task"}
    if task == "stsb":
        assert [n for n, e in ests.items() if not e["applicable"]] == [
            "hscore", "transrate", "nleep", "sfda", "gbc", "silhouette", "pactran", "ncti"]


def test_score_ptm_estimators_follow_the_config(tiny_bert_tasks, tmp_path):
    from datasets import load_from_disk

    from ptmbench.estimators import transferability as tr

    path, root, labels = tiny_bert_tasks
    block = {"estimators": ["knn", "logme"], "knn": {"k": 3, "max_examples": None, "seed": 0}}
    res = logme_stage.score_ptm("tiny", path, root / "sst2", "sst2", tmp_path / "a.json", batch_size=16,
                          transferability=block)
    assert list(res["estimators"]) == ["knn", "logme"] and res["provenance"]["transferability"] == block
    # LogME is the job's score whether or not the block lists it; unlisted, it is not under estimators
    only = logme_stage.score_ptm("tiny", path, root / "sst2", "sst2", tmp_path / "c.json", batch_size=16,
                           transferability={"estimators": ["knn"], "knn": block["knn"]})
    assert list(only["estimators"]) == ["knn"] and only["score"] == res["score"] == res["estimators"]["logme"]["score"]
    F = features.extract(path, load_from_disk(str(root / "sst2"))["train"], batch_size=16)
    assert res["estimators"]["knn"]["score"] == tr.score_all(F, np.array(labels["sst2"]), "sst2", ["knn"],
                                                             {"knn": {"k": 3}})["knn"]["score"]
    # an estimator failing on its input fails the job, naming it, the PTM and the task; nothing is written
    bad = {"estimators": ["logme", "knn"], "knn": {"k": 100, "max_examples": None}}
    with pytest.raises(ValueError, match=r"PTM 'tiny', task 'sst2': transferability estimator 'knn' on task "
                                         r"'sst2': knn.k must be in \[1, 59\]"):
        logme_stage.score_ptm("tiny", path, root / "sst2", "sst2", tmp_path / "b.json", batch_size=16,
                        transferability=bad)
    assert not (tmp_path / "b.json").exists()
