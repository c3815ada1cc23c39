"""Stage early_stop: the fine-tuning proxy as an estimator (Bai et al., Findings of EMNLP 2023).

:func:`early_stop` (rule ``early_stop``, one GPU job per PTM and LogME task) runs the fine-tune recipe
of the ``finetune`` rules (:func:`ptmbench.stages.finetune.finetune`: the same hyper-parameters,
tokenised data, seed and training-set subsample) for only ``early_stop.steps`` optimiser steps (default
500, as Bai et al.; the learning-rate schedule is the full run's, truncated) and reads the validation
consumer metric, the value the report judges every estimator against. Its JSON,
``results/early_stop/{ptm}/{task}.json``, is the fine-tune record plus ``estimator: "early_stop"``,
``steps`` and ``score``; the export puts it into ``results/tables/estimators.csv`` as estimator
``early_stop``, so the report judges it like the feature-based estimators. A run that diverges scores
the chance level, as a fine-tune does. The score is read on the same validation split as the
fine-tuned performance it is judged against, as in Bai et al.
"""

from __future__ import annotations

import logging

from ptmbench.core import tasks as registry
from ptmbench.io.provenance import write_json
from ptmbench.stages import finetune as ft

log = logging.getLogger(__name__)

ESTIMATOR = "early_stop"
DEFAULT_STEPS = 500  # Bai et al. (2023): the validation score after 500 fine-tuning steps


def consumer_score(task: str, metrics: dict) -> float:
    """The consumer metric of ``task`` (the value the report judges estimators against) in a fine-tune
    record's ``metrics`` (by split)."""
    entry = registry.get(task)
    split = metrics.get(entry.export_split)
    if split is None or entry.consumer_metric not in split:
        raise ValueError(f"early_stop on {task!r}: no {entry.consumer_metric!r} on split {entry.export_split!r} "
                         f"in the metrics (splits {sorted(metrics)})")
    return float(split[entry.consumer_metric]) * entry.consumer_scale


def early_stop(ptm: str, model_dir, tokenized_dir, task: str, hp, out_path, steps: int = DEFAULT_STEPS,
               batch_split: int = 1, base: str | None = None, report_to="none") -> dict:
    """Rule ``early_stop``: ``steps`` optimiser steps of the fine-tune recipe ``hp`` on ``task``, then
    the validation consumer metric; writes ``out_path`` (module docstring) and returns its record."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"config key 'early_stop.steps' must be an integer >= 1, got {steps!r}")
    if not registry.get(task).has_logme:
        raise ValueError(f"early_stop scores the tasks estimators score (classification, regression), not {task!r}")
    record = ft.finetune(ptm, model_dir, tokenized_dir, task, hp, out_path, batch_split=batch_split, base=base,
                         report_to=report_to, stop_after_steps=steps)
    record = {**record, "estimator": ESTIMATOR, "steps": steps,
              "score": consumer_score(task, record["metrics"]),
              "time_s": round(record["train_time_s"] + record["eval_time_s"], 3)}
    write_json(out_path, record)
    log.info("early_stop %s on %s after %d steps: %.4f", ptm, task, record["train_steps"], record["score"])
    return record
