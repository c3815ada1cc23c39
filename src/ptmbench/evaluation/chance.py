"""The chance-level learner: what a diverged fine-tune is scored as, and its metrics (report: the chance line)."""

from __future__ import annotations

import numpy as np

from ptmbench.core import tasks as registry
from ptmbench.evaluation import metrics as M
from ptmbench.evaluation import squad


def chance_predictions(task: str, train_labels):
    """What a diverged run is scored as: a chance-level learner that ignores its input.

    Classification: the most frequent training label (ties: the smallest id) for every example.
    stsb: the mean training score for every pair (so both correlations are 0.0 by convention).
    squad_v2: no answer for every question, with no-answer probability 1.0.
    """
    kind = registry.get(task).kind
    if kind == "qa":
        return None
    y = np.asarray(train_labels)
    if kind == "regression":
        return float(y.mean())
    values, counts = np.unique(y.astype(np.int64), return_counts=True)
    return int(values[np.argmax(counts)])


def chance_description(task: str) -> str:
    return {"qa": "no answer for every question (no-answer probability 1.0)",
            "regression": "the mean training score for every pair (correlations 0.0)"}.get(
        registry.get(task).kind, "the most frequent training label for every example")


def chance_metrics(task, dd, train_labels) -> dict:
    """The metrics of :func:`chance_predictions` on the evaluation split(s) of ``dd`` (their ``labels``;
    squad_v2: ``validation_examples``), per split, as a fine-tune's evaluation writes them."""
    if registry.get(task).kind == "qa":
        return {"validation": squad.no_answer_score(dd["validation_examples"])}
    const = chance_predictions(task, train_labels)
    out = {}
    for split in registry.get(task).eval_splits:
        gold = np.asarray(dd[split]["labels"])
        out[split] = M.glue(task, np.full(len(gold), const, dtype=gold.dtype), gold)
    return out
