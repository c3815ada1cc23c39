"""The embedded demo data: exact GLUE / SQuAD v2 schema, deterministic, learnable, tasks that differ."""

from __future__ import annotations

import json

import datasets
import numpy as np
import pytest

from ptmbench.core import tasks as registry
from ptmbench.data import schemas as data

GLUE = [t for t, e in registry.PUBLISHED.items() if e.glue_dir]
HUB_COLUMNS = {  # nyu-mll/glue on the Hugging Face Hub
    "cola": ["sentence", "label", "idx"], "sst2": ["sentence", "label", "idx"],
    "mrpc": ["sentence1", "sentence2", "label", "idx"], "qqp": ["question1", "question2", "label", "idx"],
    "stsb": ["sentence1", "sentence2", "label", "idx"], "mnli": ["premise", "hypothesis", "label", "idx"],
    "qnli": ["question", "sentence", "label", "idx"], "rte": ["sentence1", "sentence2", "label", "idx"],
    "wnli": ["sentence1", "sentence2", "label", "idx"],
}
HUB_LABELS = {
    "cola": ["unacceptable", "acceptable"], "sst2": ["negative", "positive"],
    "mrpc": ["not_equivalent", "equivalent"], "qqp": ["not_duplicate", "duplicate"],
    "mnli": ["entailment", "neutral", "contradiction"], "qnli": ["entailment", "not_entailment"],
    "rte": ["entailment", "not_entailment"], "wnli": ["not_entailment", "entailment"],
}


@pytest.fixture(scope="module")
def demo():
    return {t: data.demo_glue(t) for t in GLUE}


def test_schema_constants_match_the_hub():
    assert len(GLUE) == 9
    for task, feats in ((t, data.features(t)) for t in GLUE):
        assert list(feats) == HUB_COLUMNS[task]
        assert feats["idx"] == datasets.Value("int32")
        if task == "stsb":
            assert feats["label"] == datasets.Value("float32")
        else:
            assert feats["label"].names == HUB_LABELS[task]
    assert registry.get("mnli").splits == ("train", "validation_matched", "validation_mismatched",
                                        "test_matched", "test_mismatched")
    assert all(registry.get(t).splits == ("train", "validation", "test") for t in GLUE if t != "mnli")


@pytest.mark.parametrize("task", GLUE)
def test_demo_has_the_glue_schema(demo, task):
    dd = demo[task]
    assert tuple(dd) == registry.get(task).splits
    for split, ds in dd.items():
        assert ds.features == data.features(task), split
        assert ds["idx"] == list(range(len(ds)))
        assert all(isinstance(s, str) and s.strip() for c in registry.get(task).text for s in ds[c])
        labels = np.array(ds["label"])
        if split.startswith("test"):
            assert (labels == -1).all()
        elif task == "stsb":
            assert labels.min() >= 0 and labels.max() <= 5 and labels.std() > 1
        else:
            counts = np.bincount(labels, minlength=len(HUB_LABELS[task]))
            assert counts.min() > 0.6 * len(labels) / len(counts), (split, counts)  # roughly balanced
    assert len(dd["train"]) == 256
    assert len(dd["validation_matched" if task == "mnli" else "validation"]) == 128


def test_sizes_and_determinism():
    a = data.demo_glue("rte", seed=3, n_train=40, n_validation=16)
    b = data.demo_glue("rte", seed=3, n_train=40, n_validation=16)
    c = data.demo_glue("rte", seed=4, n_train=40, n_validation=16)
    assert {k: len(v) for k, v in a.items()} == {"train": 40, "validation": 16, "test": 8}
    assert a["train"].to_dict() == b["train"].to_dict()
    assert a["train"].to_dict() != c["train"].to_dict()
    assert a["train"]["sentence1"] != a["validation"]["sentence1"][:16]
    with pytest.raises(ValueError, match="no GLUE demo data"):
        data.demo_glue("squad_v2")


def test_mnli_mismatched_is_another_genre(demo):
    vocab = {s: {w for x in demo["mnli"][s]["premise"] for w in x.split()}
             for s in ("train", "validation_matched", "validation_mismatched")}
    assert len(vocab["validation_matched"] - vocab["train"]) < 3
    assert len(vocab["validation_mismatched"] - vocab["train"]) > 10


def test_tasks_differ(demo):
    """Each task has its own vocabulary: no two tasks share most of their words."""
    def words(task):
        ds = demo[task]["train"]
        return {w for c in registry.get(task).text for x in ds[c] for w in x.split() if len(w) > 3}
    vocab = {t: words(t) for t in GLUE}
    for i, a in enumerate(GLUE):
        for b in GLUE[i + 1:]:
            jaccard = len(vocab[a] & vocab[b]) / len(vocab[a] | vocab[b])
            assert jaccard < 0.2, (a, b, jaccard)


def _grams(text: str) -> set[str]:
    w = text.split()
    return set(w) | {f"{x}_{y}" for x, y in zip(w, w[1:], strict=False)}


def _docs(ds, cols):
    out = []
    for row in ds:
        if len(cols) == 1:
            out.append(" ".join(_grams(row[cols[0]])))
            continue
        a, b = _grams(row[cols[0]]), _grams(row[cols[1]])
        out.append(" ".join([f"A:{g}" for g in a] + [f"B:{g}" for g in b] + [f"S:{g}" for g in a & b]
                            + [f"D:{g}" for g in a ^ b]))
    return out


# task -> least validation score of a bag-of-n-grams linear model (accuracy; stsb: Pearson). Chance is
# about 0.5 (0.33 for mnli); wnli needs an XOR of two words, which a linear model cannot learn.
LEARNABLE = {"cola": 0.8, "sst2": 0.75, "mrpc": 0.58, "qqp": 0.85, "stsb": 0.9, "mnli": 0.8, "qnli": 0.85,
             "rte": 0.75}


@pytest.mark.parametrize("task", list(LEARNABLE))
def test_demo_is_learnable(demo, task):
    from scipy.stats import pearsonr
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression, Ridge

    dd, cols = demo[task], registry.get(task).text
    ev = dd["validation_matched" if task == "mnli" else "validation"]
    vec = CountVectorizer(token_pattern=r"\S+", binary=True)
    x, xv = vec.fit_transform(_docs(dd["train"], cols)), vec.transform(_docs(ev, cols))
    y, yv = np.array(dd["train"]["label"]), np.array(ev["label"])
    if task == "stsb":
        score = pearsonr(Ridge(alpha=1.0).fit(x, y).predict(xv), yv)[0]
    else:
        score = (LogisticRegression(max_iter=2000).fit(x, y).predict(xv) == yv).mean()
    assert score >= LEARNABLE[task], score


def test_demo_labels_follow_the_rules():
    """Spot checks of each task's decision rule on the clean (un-flipped) generator."""
    import random

    rng = random.Random(0)
    for _ in range(50):
        row = data._wnli(rng, 1, "matched")
        thing, box = next(pair for pair in data.LEXICON["wnli_pairs"]
                          if f"the {pair[0]} " in row["sentence1"] and f"the {pair[1]} " in row["sentence1"])
        assert row["sentence2"] == (f"the {thing} was too big ." if "too big" in row["sentence1"]
                                    else f"the {box} was too small .")
        row = data._rte(rng, 0, "matched")
        assert set(row["sentence2"].split()) <= set(row["sentence1"].split())
        row = data._qqp(rng, 1, "matched")
        goals = [g for g in data.LEXICON["qqp_goal"] if g in row["question1"]]
        assert any(g in row["question2"] for g in goals)


# ------------------------------------------------------------------------------------ GLUE validation


@pytest.mark.parametrize("task", GLUE)
def test_demo_passes_validate_glue(demo, task):
    data.validate_glue(task, demo[task], "demo")  # test splits (label -1) included


@pytest.mark.parametrize("task, split, label, problem", [
    ("stsb", "train", float("nan"), "score nan is not finite"),
    ("stsb", "validation", float("-inf"), "score -inf is not finite"),
    ("stsb", "train", 5.5, "score 5.5 is outside [0, 5]"),
    ("stsb", "train", -1.0, "score -1.0 is outside [0, 5]"),  # -1 means unlabelled only in test splits
    ("stsb", "test", 9.0, "score 9.0 is outside [0, 5]"),
    ("rte", "train", -1, "label -1 is not one of ['entailment', 'not_entailment'] (ids 0..1)"),
    ("mnli", "validation_matched", 3, "label 3 is not one of"),
    ("sst2", "train", "positive", "label 'positive' is not one of"),  # names are mapped before this check
])
def test_label_problem(task, split, label, problem):
    assert problem in (data.label_problem(task, split, label) or "")


@pytest.mark.parametrize("task, split, label", [("stsb", "train", 0.0), ("stsb", "train", 5.0),
                                                ("stsb", "test", -1.0), ("mnli", "test_matched", -1),
                                                ("mnli", "train", 2), ("cola", "validation", 0)])
def test_label_problem_accepts(task, split, label):
    assert data.label_problem(task, split, label) is None


def _with(dd, split, column, row, value):
    rows = dd[split].to_dict()
    rows[column][row] = value
    out = datasets.DatasetDict(dict(dd))
    out[split] = datasets.Dataset.from_dict(rows, features=dd[split].features)
    return out


@pytest.mark.parametrize("split, column, value, message", [
    ("train", "label", float("nan"), "GLUE stsb here, split train, data row 8 (idx 7): score nan is not finite"),
    ("validation", "label", 5.2, "split validation, data row 8 (idx 7): score 5.2 is outside [0, 5]"),
    ("train", "sentence2", None, "split train, data row 8 (idx 7): column 'sentence2' has no text (None)"),
])
def test_validate_glue_names_split_row_and_value(demo, split, column, value, message):
    with pytest.raises(ValueError, match="fix the source data") as err:
        data.validate_glue("stsb", _with(demo["stsb"], split, column, 7, value), "here")
    assert message in str(err.value)


def test_validate_glue_empty_splits(demo):
    dd = datasets.DatasetDict(dict(demo["rte"]))
    dd["test"] = dd["test"].select([])
    data.validate_glue("rte", dd, {"test": "file test.tsv"})  # test splits may be empty
    dd["validation"] = dd["validation"].select([])
    with pytest.raises(ValueError, match="GLUE rte file dev.tsv, split validation: no data rows"):
        data.validate_glue("rte", dd, {"validation": "file dev.tsv"})


@pytest.fixture(scope="module")
def squad():
    return data.demo_squad(seed=0, n_train=200, n_validation=100)


def test_squad_demo_is_valid_v2(squad):
    train, dev = squad
    for obj, n in ((train, 200), (dev, 100)):
        assert data.validate_squad(json.loads(json.dumps(obj))) is not None
        qas = [qa for a in obj["data"] for p in a["paragraphs"] for qa in p["qas"]]
        assert len(qas) == n and len({q["id"] for q in qas}) == n
        impossible = sum(q["is_impossible"] for q in qas)
        assert 0.2 * n < impossible < 0.5 * n
        for a in obj["data"]:
            for p in a["paragraphs"]:
                for qa in p["qas"]:
                    for ans in qa["answers"] + qa.get("plausible_answers", []):
                        assert p["context"][ans["answer_start"]:][:len(ans["text"])] == ans["text"]
    ids = {qa["id"] for o in squad for a in o["data"] for p in a["paragraphs"] for qa in p["qas"]}
    assert len(ids) == 300
    assert data.demo_squad(seed=0, n_train=200, n_validation=100) == squad
    assert data.demo_squad(seed=1, n_train=200, n_validation=100) != squad


def test_squad_answers_are_in_the_asked_fact(squad):
    """An answer is the value in the paragraph's fact about the attribute the question asks for."""
    n = 0
    for a in squad[0]["data"]:
        first, last = a["title"].lower().split("_")[:2]
        for p in a["paragraphs"]:
            for qa in p["qas"]:
                if not qa["answers"]:
                    continue
                attr = next(k for k, (_, qs) in data._SQ_FACTS.items()
                            if qa["question"] in [q.format(name=f"{first} {last}", first=first) for q in qs])
                fact = data._SQ_FACTS[attr][0].format(name=f"{first} {last}", first=first,
                                                      v=qa["answers"][0]["text"])
                assert fact in p["context"]
                n += 1
    assert n > 100


@pytest.mark.parametrize("breakage, message", [
    (lambda o: o.update(version="v1.1"), "version"),
    (lambda o: o["data"][0]["paragraphs"][0]["qas"][0]["answers"][0].update(answer_start=1), "not at 1"),
    (lambda o: o["data"][0]["paragraphs"][0]["qas"][0].update(is_impossible=True), "is_impossible"),
    (lambda o: o.update(data=[]), "no questions"),
])
def test_validate_squad_rejects(squad, breakage, message):
    obj = json.loads(json.dumps(squad[1]))
    qa = obj["data"][0]["paragraphs"][0]["qas"][0]
    if not qa["answers"]:  # make the first question answerable for the span checks
        obj["data"][0]["paragraphs"][0]["qas"] = [q for p in obj["data"][0]["paragraphs"] for q in p["qas"]
                                                  if q["answers"]] or pytest.skip("no answerable question")
    breakage(obj)
    with pytest.raises(ValueError, match=message):
        data.validate_squad(obj)


def test_corpus_is_fixed():
    lines = data.corpus()
    assert lines == data.corpus() and len(lines) > 100
    assert "wonderful" in lines and "valparaiso" in lines
