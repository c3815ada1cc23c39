"""Local metrics on hand-checked cases: GLUE keys (docs/formats.md) and the official SQuAD v2 evaluation."""

from __future__ import annotations

import math

import pytest

from ptmbench.core import tasks as registry
from ptmbench.evaluation import metrics as M

# ------------------------------------------------------------------------------------------- GLUE


def test_binary_glue_hand_checked():
    # tp=2, tn=1, fp=1, fn=0: acc 3/4, F1 = 2*(2/3)*1/(2/3+1) = 0.8, MCC = 2/sqrt(3*2*2*1)
    out = M.glue("mrpc", [1, 0, 1, 1], [1, 0, 0, 1])
    assert set(out) == set(registry.get("mrpc").metric_keys)
    assert out["eval_accuracy"] == out["eval_acc"] == 0.75
    assert out["eval_f1"] == pytest.approx(0.8)
    mcc = 2 / math.sqrt(12)
    assert out["eval_matthews_correlation"] == pytest.approx(mcc)
    # for 0/1 labels Pearson (phi) and Spearman equal the Matthews correlation
    assert out["eval_pearson"] == pytest.approx(mcc)
    assert out["eval_spearman"] == pytest.approx(mcc)


def test_constant_prediction_is_zero_correlation():
    out = M.glue("cola", [1, 1, 1, 1], [1, 0, 0, 1])
    assert out["eval_accuracy"] == 0.5
    assert out["eval_matthews_correlation"] == 0.0
    assert out["eval_pearson"] == 0.0 and out["eval_spearman"] == 0.0
    assert out["eval_f1"] == pytest.approx(2 * 0.5 * 1 / 1.5)
    none_positive = M.glue("sst2", [0, 0, 0], [1, 0, 1])
    assert none_positive["eval_f1"] == 0.0  # no predicted positive: defined 0.0, no warning-NaN
    stsb = M.glue("stsb", [2.5, 2.5, 2.5], [0.0, 1.0, 5.0])
    assert stsb == {"eval_pearson": 0.0, "eval_spearman": 0.0}


def test_stsb_pearson_spearman_and_ties():
    out = M.glue("stsb", [1, 2, 3, 4], [1, 4, 9, 16])
    assert out["eval_spearman"] == pytest.approx(1.0)  # monotone
    assert out["eval_pearson"] == pytest.approx(25 / math.sqrt(5 * 129))  # not linear: 25 / sqrt(5 * 129)
    # ties get average ranks: ranks (1.5, 1.5, 3) vs (1, 2, 3) -> 1.5 / sqrt(1.5 * 2)
    assert M.spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(1.5 / math.sqrt(3))
    assert M.glue("stsb", [3, 2, 1], [1, 2, 3])["eval_pearson"] == pytest.approx(-1.0)


def test_mnli_keys_macro_f1():
    # classes 0,1,2; per-class F1: c0 p=1 r=1/2 -> 2/3; c1 p=1/2 r=1 -> 2/3; c2 p=1 r=1 -> 1
    out = M.glue("mnli", [0, 1, 1, 2], [0, 0, 1, 2])
    assert set(out) == set(registry.get("mnli").metric_keys)
    assert out["eval_accuracy"] == 0.75
    assert out["eval_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert -1 <= out["eval_matthews_correlation"] <= 1


def test_glue_bad_input():
    with pytest.raises(ValueError, match="squad_v2"):
        M.glue("squad_v2", [1], [1])
    with pytest.raises(ValueError, match="must be equal"):
        M.glue("sst2", [1, 0], [1])


# -------------------------------------------------------------------------------------- SQuAD v2


def test_normalize_and_token_f1():
    assert M.normalize_answer("The  Cat, sat!") == "cat sat"
    assert M.normalize_answer("An apple a day") == "apple day"
    assert M.normalize_answer("theatre") == "theatre"  # articles only as whole words
    # gold [cat, sat], pred [cat, sat, on, mat]: P = 1/2, R = 1 -> 2/3
    assert M.compute_f1("the cat sat", "cat sat on mat") == pytest.approx(2 / 3)
    assert M.compute_f1("", "") == 1.0 and M.compute_f1("", "x") == 0.0 and M.compute_f1("x", "") == 0.0
    assert M.compute_f1("x b b", "b b b") == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))  # counts clipped
    assert M.compute_exact("Paris!", "paris") == 1


REFS = {
    "q1": ["Paris", "the city of Paris"],  # answerable, prediction matches one gold answer
    "q2": [],                              # unanswerable, predicted no answer
    "q3": ["1990"],                        # answerable, predicted no answer
    "q4": [],                              # unanswerable, predicted an answer
    "q5": ["a"],                           # answerable in the data, gold normalises to "" (official quirk)
}
PREDS = {"q1": "the Paris", "q2": "", "q3": "", "q4": "something", "q5": ""}
NA = {"q1": 0.1, "q2": 0.9, "q3": 0.8, "q4": 0.7, "q5": 0.2}


def test_squad_v2_official_hand_checked():
    out = M.squad_v2(PREDS, REFS, NA)
    assert list(out) == list(M.SQUAD_V2_KEYS)
    assert out["total"] == 5 and out["HasAns_total"] == 3 and out["NoAns_total"] == 2
    assert out["exact"] == pytest.approx(60.0)  # q1, q2, q5 right
    assert out["f1"] == pytest.approx(60.0)
    assert out["HasAns_exact"] == pytest.approx(200 / 3)
    assert out["NoAns_exact"] == pytest.approx(50.0)
    # sweep by na_prob: start 2 (no-answer count); q1 +1 -> 3 @0.1; q5 +1 -> 4 @0.2; q4 -1; q3 0; q2 0
    assert out["best_exact"] == pytest.approx(80.0) and out["best_exact_thresh"] == pytest.approx(0.2)
    assert out["best_f1"] == pytest.approx(80.0) and out["best_f1_thresh"] == pytest.approx(0.2)


def test_squad_v2_partial_f1_and_threshold():
    refs = {"a": ["Denver Broncos"], "b": []}
    out = M.squad_v2({"a": "Broncos", "b": ""}, refs)
    assert out["exact"] == pytest.approx(50.0)
    assert out["f1"] == pytest.approx(100 * (2 / 3 + 1) / 2)  # P=1, R=1/2 -> 2/3
    assert "best_exact" not in out  # only with na_probs, as in the official script
    # na_prob above the threshold turns a prediction into "no answer"
    out = M.squad_v2({"a": "Broncos", "b": "x"}, refs, {"a": 0.0, "b": 0.9}, na_prob_thresh=0.5)
    assert out["NoAns_exact"] == 100.0 and out["HasAns_f1"] == pytest.approx(200 / 3)


def test_squad_v2_ties_keep_input_order():
    # a: answerable and right (+1), b: unanswerable but answered (-1), equal na_prob 0.5.
    refs = {"a": ["x"], "b": []}
    preds = {"a": "x", "b": "y"}
    ab = M.squad_v2(preds, refs, {"a": 0.5, "b": 0.5})
    ba = M.squad_v2(preds, refs, {"b": 0.5, "a": 0.5})
    assert (ab["best_exact"], ab["best_exact_thresh"]) == (100.0, 0.5)  # start 1, a -> 2
    assert (ba["best_exact"], ba["best_exact_thresh"]) == (50.0, 0.0)   # start 1, b -> 0, a -> 1


def test_squad_v2_subset_keys_omitted_and_errors():
    only_no = M.squad_v2({"a": "", "b": "z"}, {"a": [], "b": []}, {"a": 1.0, "b": 0.0})
    assert "HasAns_exact" not in only_no and only_no["NoAns_total"] == 2 and only_no["exact"] == 50.0
    only_has = M.squad_v2({"a": "x"}, {"a": ["x"]})
    assert "NoAns_total" not in only_has and only_has["HasAns_exact"] == 100.0
    with pytest.raises(ValueError, match="no prediction"):
        M.squad_v2({}, {"a": ["x"]})
