"""Stage logme: LogME and the other transferability estimators of one PTM on one task's training set.

:func:`score_ptm` (rule ``logme``) extracts the PTM's features (:mod:`ptmbench.estimators.features`)
and scores them with every estimator of the config block ``transferability`` from one pass over them
(:func:`estimator_scores`; the maths: :mod:`ptmbench.estimators.logme` and
:mod:`ptmbench.estimators.transferability`).
"""

from __future__ import annotations

import logging
import time

import numpy as np

from ptmbench.core import tasks as registry
from ptmbench.data.tokenized import subsample
from ptmbench.estimators import features, sweep
from ptmbench.estimators import transferability as tr
from ptmbench.estimators.logme import targets
from ptmbench.io.provenance import provenance, write_json

log = logging.getLogger(__name__)


def estimator_scores(F, labels, task: str, transferability: dict | None = None, ptm: str = "?"):
    """LogME and every estimator the config block ``transferability`` lists (None: every estimator of
    :data:`ptmbench.estimators.transferability.ESTIMATORS` at its defaults) on the features ``F``, from ONE pass
    over F (:func:`ptmbench.estimators.transferability.score_all`).

    LogME is always computed, first (it is the job's ``score`` and its time includes the shared pass),
    and recorded under ``estimators`` only when the block lists it. Returns ``(estimators, evidence,
    logme_time)``: ``{name: {score, time_s, applicable, note}}`` in the block's order, LogME's evidence
    per target (its mean is ``score``) and LogME's time. Not-applicable estimators (the task's kind) have
    ``applicable`` False, ``score`` None and a ``note``; an estimator failing on the input raises
    ValueError naming it, the PTM and the task.
    """
    block = transferability or {}
    names = list(block.get("estimators", tr.ESTIMATORS))
    run = ["logme", *(n for n in names if n != "logme")]
    params = {n: block[n] for n in run if block.get(n)}
    try:
        st = tr.Stats(F, labels, task)
        scores = tr.score_all(F, labels, task, run, params, stats=st)
    except ValueError as err:
        raise ValueError(f"PTM {ptm!r}, task {task!r}: {err}") from err
    return {n: scores[n] for n in names}, tr.logme_evidence(st), scores["logme"]["time_s"]


def sweep_scores(F, labels, task: str, transferability: dict | None = None, ptm: str = "?") -> list[dict] | None:
    """The config block's sweep (``transferability.sweep``: ``sizes``, ``dims``, ``seed``) of every
    estimator the block lists, on nested subsamples and PCA projections of ``F``
    (:func:`ptmbench.estimators.sweep.sweep`); None when the sweep is off (no sizes and no dims)."""
    block = transferability or {}
    cfg = block.get("sweep") or {}
    if not (cfg.get("sizes") or cfg.get("dims")):
        return None
    names = list(block.get("estimators", tr.ESTIMATORS))
    params = {n: block[n] for n in names if block.get(n)}
    try:
        return sweep.sweep(F, labels, task, names, params, cfg.get("sizes") or (), cfg.get("dims") or (),
                           cfg.get("seed", 0))
    except ValueError as err:
        raise ValueError(f"PTM {ptm!r}, task {task!r}: {err}") from err


def score_ptm(ptm: str, model_dir, tokenized_dir, task: str, out_path, max_examples: int | None = None,
              batch_size: int = 64, base: str | None = None, seed: int = 0,
              transferability: dict | None = None, precision: str = "auto") -> dict:
    """LogME (and the other transferability estimators) of one PTM on one GLUE task's training set;
    writes ``results/logme/{ptm}/{task}.json``.

    Features: :func:`ptmbench.estimators.features.extract` (mean of the last hidden state over non-padding
    tokens) of the cached tokenisation ``tokenized_dir`` (split ``train``); ``max_examples`` takes a
    uniform random subsample without replacement (``seed``, not stratified), None = all (published);
    the forward pass in ``precision`` (config ``logme.precision``; the JSON's ``precision`` is the one
    that ran, :func:`ptmbench.estimators.features.resolve_precision`).
    ``score`` is LogME, computed with every estimator of the config block ``transferability`` from one
    pass over the features (:func:`estimator_scores`; the same sums as :func:`logme` on them, so the
    same value); ``estimators`` holds their scores.
    """
    from datasets import load_from_disk

    if not registry.get(task).has_logme:
        raise ValueError(f"LogME is computed on classification and regression tasks only, not {task!r}")
    base = base or ptm  # None: the PTM is a base model
    start = time.perf_counter()
    data = load_from_disk(str(tokenized_dir))
    if "train" not in data:
        raise ValueError(f"{tokenized_dir}: no 'train' split (has {list(data)}); expected the output "
                         "of the tokenize rule")
    train = data["train"]
    idx = subsample(len(train), max_examples, seed, key="logme.max_examples", minimum=2)
    if idx is not None:
        train = train.select(idx)
    labels = np.asarray(train["labels"])
    Y = targets(labels, task)
    F = features.extract(model_dir, train, batch_size=batch_size, precision=precision)
    feature_time = time.perf_counter() - start
    estimators, per_target, logme_time = estimator_scores(F, labels, task, transferability, ptm)
    sweep_start = time.perf_counter()
    swept = sweep_scores(F, labels, task, transferability, ptm)
    score = float(per_target.mean())
    result = {
        "ptm": ptm, "base": base, "task": task, "score": score,
        "n": int(F.shape[0]), "d": int(F.shape[1]), "num_targets": int(Y.shape[1]),
        "parameters": features.encoder_parameters(model_dir),
        "time_s": time.perf_counter() - start, "feature_time_s": feature_time,
        "logme_time_s": logme_time, "max_examples": max_examples,
        "precision": features.precision_on(precision),
        "estimators": estimators,
        **({} if swept is None else {"sweep": swept, "sweep_time_s": time.perf_counter() - sweep_start}),
        "provenance": provenance(model_dir=str(model_dir), tokenized_dir=str(tokenized_dir),
                                 batch_size=batch_size, seed=seed,
                                 evidence_per_target=per_target.tolist(), transferability=transferability),
    }
    write_json(out_path, result)
    log.info("LogME %s on %s: %.6f (N=%d, D=%d, %.1f s); %s", ptm, task, result["score"], *F.shape,
             result["time_s"], ", ".join(f"{n} {e['score']:.4g}" if e["applicable"] else f"{n} n/a"
                                        for n, e in estimators.items()))
    return result
