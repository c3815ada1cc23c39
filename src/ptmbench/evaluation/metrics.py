"""Evaluation metrics computed locally: the GLUE keys of docs/formats.md and the official SQuAD v2 evaluation.

No ``evaluate.load`` (it needs the hub). Conventions that the published files do not fix:

* **Constant predictions.** Pearson/Spearman correlations are undefined when either side is constant
  (zero variance); we write ``0.0`` (no linear/rank association), as scikit-learn does for the
  Matthews correlation of a constant prediction. F1 with no predicted positive is ``0.0``.
* **Binary GLUE tasks** (cola, sst2, mrpc, qqp, qnli, rte, wnli): ``eval_f1`` is the F1 of label 1
  (scikit-learn's default ``pos_label=1``, as GLUE's mrpc/qqp metric); ``eval_acc`` = ``eval_accuracy``;
  ``eval_pearson``/``eval_spearman`` are the correlations of predicted and gold label ids, which for
  0/1 labels equal the Matthews correlation (the published files carry them).
* **mnli** (3 classes): ``eval_accuracy``, ``eval_acc``, ``eval_f1`` (macro F1 over the 3 classes) and
  ``eval_matthews_correlation`` (multi-class MCC); correlations of nominal class ids are meaningless
  and not written.
* **stsb**: ``eval_pearson``, ``eval_spearman`` of predicted and gold similarity scores.

SQuAD v2 follows ``evaluate-v2.0.py`` (the official script) line by line; see :func:`squad_v2`.
"""

from __future__ import annotations

import collections
import math
import re
import string
from collections.abc import Mapping, Sequence

import numpy as np

from ptmbench.core import tasks as registry
from ptmbench.core.tasks import SQUAD_V2_KEYS  # noqa: F401  (the keys squad_v2() writes)


# --------------------------------------------------------------------------------------------- GLUE
def pearson(x, y) -> float:
    """Pearson r of ``x`` and ``y``; 0.0 when either is constant (r undefined)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) != len(y):
        raise ValueError(f"pearson: {len(x)} predictions vs {len(y)} references")
    if len(x) < 2:
        return 0.0
    dx, dy = x - x.mean(), y - y.mean()
    den = math.sqrt(float(dx @ dx) * float(dy @ dy))
    if den == 0.0 or not math.isfinite(den):
        return 0.0
    return float(np.clip((dx @ dy) / den, -1.0, 1.0))


def _ranks(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x, method="average")


def spearman(x, y) -> float:
    """Spearman rho (Pearson of average ranks, ties averaged); 0.0 when either side is constant."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) != len(y):
        raise ValueError(f"spearman: {len(x)} predictions vs {len(y)} references")
    return pearson(_ranks(x), _ranks(y)) if len(x) else 0.0


def glue(task: str, predictions, references) -> dict[str, float]:
    """The keys (docs/formats.md) of GLUE-style ``task`` (its entry's ``metric_keys``) from predicted and
    gold labels (regression: float scores).

    ``predictions`` are class ids (argmax of the logits), or scores for a regression task.
    """
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    entry = registry.get(task)
    if entry.kind == "qa":
        raise ValueError(f"no GLUE metrics for task {task!r}: it is extractive QA (see squad_v2())")
    p, r = np.asarray(predictions), np.asarray(references)
    if p.shape != r.shape or p.ndim != 1 or len(p) == 0:
        raise ValueError(f"{task}: predictions {p.shape} and references {r.shape} must be equal, 1-D, non-empty")
    if entry.kind == "regression":
        return {"eval_pearson": pearson(p, r), "eval_spearman": spearman(p, r)}
    p, r = p.astype(np.int64), r.astype(np.int64)
    acc = float(accuracy_score(r, p))
    out = {"eval_accuracy": acc, "eval_acc": acc}
    if len(entry.labels) > 2:  # multi-class (mnli)
        out["eval_f1"] = float(f1_score(r, p, average="macro", labels=list(range(len(entry.labels))),
                                        zero_division=0))
        out["eval_matthews_correlation"] = float(matthews_corrcoef(r, p))
        return out
    out["eval_f1"] = float(f1_score(r, p, pos_label=1, average="binary", zero_division=0))
    out["eval_matthews_correlation"] = float(matthews_corrcoef(r, p))
    out["eval_pearson"] = pearson(p, r)
    out["eval_spearman"] = spearman(p, r)
    return out


# -------------------------------------------------------------------- SQuAD v2 (official evaluation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def normalize_answer(s: str) -> str:
    """Lower case, drop punctuation, drop articles (a, an, the), collapse white space (official)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def _tokens(s: str) -> list[str]:
    return normalize_answer(s).split() if s else []


def compute_exact(a_gold: str, a_pred: str) -> int:
    return int(normalize_answer(a_gold) == normalize_answer(a_pred))


def compute_f1(a_gold: str, a_pred: str) -> float:
    """Token-overlap F1 of normalised answers; 1 if both are empty (no-answer), 0 if only one is."""
    gold, pred = _tokens(a_gold), _tokens(a_pred)
    if not gold or not pred:
        return float(gold == pred)
    same = sum((collections.Counter(gold) & collections.Counter(pred)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def _best_thresh(preds, scores, na_probs, has_ans) -> tuple[float, float]:
    """Official ``find_best_thresh``: sweep questions by increasing no-answer probability.

    Starting from "answer nothing" (score = #no-answer questions), each question in turn keeps its
    prediction; the best running score and the ``na_prob`` where it is reached are returned. Ties in
    ``na_probs`` keep their input order (Python's stable sort, as the official script).
    """
    cur = best = sum(1 for q in has_ans if not has_ans[q])
    best_thresh = 0.0
    for q in sorted(na_probs, key=lambda k: na_probs[k]):
        if q not in scores:
            continue
        if has_ans[q]:
            diff = scores[q]
        else:
            diff = -1 if preds[q] else 0
        cur += diff
        if cur > best:
            best, best_thresh = cur, na_probs[q]
    return 100.0 * best / len(scores), float(best_thresh)


def squad_v2(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]],
             na_probs: Mapping[str, float] | None = None, na_prob_thresh: float = 1.0) -> dict[str, float]:
    """The official SQuAD v2.0 evaluation (``evaluate-v2.0.py``), 0-100 scale.

    ``predictions``: question id -> predicted text ("" = no answer). ``references``: question id ->
    list of gold answer texts (empty list = unanswerable). ``na_probs``: question id -> probability of
    "no answer" (the official ``--na-prob-file``); a prediction counts as "no answer" where
    ``na_prob > na_prob_thresh`` (official default 1.0). Per question the score is the max over gold
    answers whose normalised text is non-empty ("" if none). Keys: exact, f1, total, HasAns_* / NoAns_*
    (omitted when that subset is empty, as in the official script) and, when ``na_probs`` is given,
    best_exact, best_exact_thresh, best_f1, best_f1_thresh.
    """
    missing = [q for q in references if q not in predictions]
    if missing:
        raise ValueError(f"SQuAD v2: no prediction for {len(missing)} question(s), e.g. {missing[:3]}")
    if not references:
        raise ValueError("SQuAD v2: no questions to evaluate")
    has_ans = {q: bool(golds) for q, golds in references.items()}
    exact_raw, f1_raw = {}, {}
    for q, golds in references.items():
        golds = [a for a in golds if normalize_answer(a)] or [""]
        exact_raw[q] = max(compute_exact(a, predictions[q]) for a in golds)
        f1_raw[q] = max(compute_f1(a, predictions[q]) for a in golds)
    if na_probs is not None and any(q not in na_probs for q in references):
        raise ValueError("SQuAD v2: na_probs must give a no-answer probability for every question")
    probs = dict(na_probs) if na_probs is not None else {q: 0.0 for q in predictions}

    def thresholded(scores):
        return {q: float(not has_ans[q]) if probs[q] > na_prob_thresh else s for q, s in scores.items()}

    exact, f1 = thresholded(exact_raw), thresholded(f1_raw)

    def summary(qids):
        return {"exact": 100.0 * sum(exact[q] for q in qids) / len(qids),
                "f1": 100.0 * sum(f1[q] for q in qids) / len(qids), "total": len(qids)}

    out = summary(list(references))
    for prefix, want in (("HasAns", True), ("NoAns", False)):
        qids = [q for q, h in has_ans.items() if h is want]
        if qids:
            out.update({f"{prefix}_{k}": v for k, v in summary(qids).items()})
    if na_probs is not None:
        out["best_exact"], out["best_exact_thresh"] = _best_thresh(predictions, exact_raw, probs, has_ans)
        out["best_f1"], out["best_f1_thresh"] = _best_thresh(predictions, f1_raw, probs, has_ans)
    return out
