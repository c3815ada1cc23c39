"""The registry of transferability estimators: LogME and the others, all computed from the same features in one job.

``ESTIMATORS`` maps a name to a function ``(features, labels, task, *, stats=None, **params) -> float``:
``features`` is the N x D feature matrix (float32 or float64), ``labels`` the N labels of the GLUE
``task`` (its name, e.g. ``"mnli"``; the task's kind decides what applies), ``params`` the estimator's
parameters (``DEFAULTS``; config ``transferability.<name>``). Classification labels are integers >= 0;
the classes are those present (a class of the task with no example is left out, as in LogME).

=============  ==============  ==========================================================================
name           kinds           score (higher = more transferable)
=============  ==============  ==========================================================================
logme          both            LogME evidence per sample (:mod:`ptmbench.estimators.logme`, wrapped)
hscore         classification  shrinkage H-score (Ibrahim et al., ICLR 2022), every example
transrate      classification  TransRate (Huang et al., ICML 2022), every example
nleep          classification  NLEEP (Li et al., CVPR 2021), subsample ``max_examples`` (1,000)
sfda           classification  SFDA (Shao et al., ECCV 2022), subsample ``max_examples`` (2,000)
knn            both            leave-one-out kNN accuracy / Pearson r, subsample ``max_examples`` (2,000)
linear_probe   both            cross-validated logistic-regression accuracy / ridge Pearson r,
                               subsample ``max_examples`` (1,000)
gbc            classification  GBC (Pándy et al., CVPR 2022), every example (shared pass)
parc           both            PARC (Bolya et al., NeurIPS 2021), subsample (1,000)
lfc            both            LFC (Deshpande et al., 2021), every example (shared pass)
silhouette     classification  mean silhouette (Meiseles and Rokach, 2020), subsample (2,000)
pactran        classification  -PACTran-Gaussian (Ding et al., ECCV 2022), subsample (2,000)
etran          both            ETran (Gholami et al., ICCV 2023), LDA on every example, energy on 10,000
ncti           classification  unnormalised NCTI (Wang et al., ICCV 2023), every example (shared pass)
=============  ==============  ==========================================================================

An estimator that does not apply to the task's kind raises :class:`NotApplicable`; :func:`score_all`
records it as ``score: None`` with the reason (never as 0). Bad input (NaN features, one class,
mismatched lengths, features constant over every example) raises ValueError naming the problem.

Each estimator is its own module of :mod:`ptmbench.estimators` (``hscore.py``, ``gbc.py``, ...: one function
with the paper's definition in its docstring, and the module's ``KINDS`` and ``DEFAULTS``); this module
imports them and registers each (:data:`MODULES`); none of them imports this module.

Shared work (:class:`ptmbench.estimators.stats.Stats`): one float64 pass over F (:func:`ptmbench.estimators.logme.gram_pass`, the function
LogME alone uses too), in row chunks ordered by class, gives every class's ``F_k^T F_k`` and ``F_k^T 1``;
their sum is LogME's ``F^T F``, so LogME (computed first, the ``logme`` job's published score) needs no
pass of its own; the centred covariance and the class means give the H-score, the per-class Gram
matrices give TransRate and the covariance's eigenvectors give NLEEP's PCA. The estimators that are
superlinear in N (kNN: N^2, the Gaussian mixture and the probes: many passes) or that need a second
pass over reweighted features (SFDA) run on a seeded uniform subsample (``max_examples``, ``seed``;
None = every example); halving any cap makes the rankings measurably worse (``bench/estimator_caps.py``),
so they stay. All fourteen together cost about 1.7-1.9x LogME alone by CPU time (target 2x;
``bench/estimators.py``, 100,000 x 768, one BLAS thread on the shared 2-core development machine;
docs/transferability.md). In the workflow
they run in the ``logme`` job (:func:`ptmbench.stages.logme.score_ptm`, config ``transferability``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import time

from ptmbench.core import tasks
from ptmbench.estimators import (
    etran,
    gbc,
    hscore,
    knn,
    lfc,
    linear_probe,
    ncti,
    nleep,
    pactran,
    parc,
    sfda,
    silhouette,
    transrate,
)
from ptmbench.estimators import logme as logme_mod
from ptmbench.estimators.stats import KINDS, Stats

log = logging.getLogger(__name__)

ESTIMATORS: dict = {}  # name -> function(features, labels, task, *, stats=None, **params) -> float
APPLIES: dict = {}  # name -> the task kinds it is defined for
DEFAULTS: dict = {}  # name -> its parameters and their defaults

# What the tests and the stage read under their old names (the functions live in their modules).
logme_evidence = logme_mod.evidence_from_stats
ledoit_wolf = hscore.ledoit_wolf
coding_rate = transrate.coding_rate
folds_of = linear_probe.folds_of
_logistic_fit = linear_probe.logistic_fit
__all__ = ["APPLIES", "DEFAULTS", "ESTIMATORS", "KINDS", "MODULES", "EstimatorError", "NotApplicable", "Stats",
           "estimator", "score_all"]


class NotApplicable(ValueError):  # noqa: N818 (a result, not a failure)
    """The estimator is not defined for this task's kind (e.g. a class-based score on stsb)."""


@functools.cache
def _threads():
    """The process's BLAS / OpenMP thread pools (threadpoolctl), found once: finding them costs ~5 ms."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def estimator(name: str, kinds=KINDS, shared_pass=True, one_thread=True, **defaults):
    """Register ``fn(stats, **params)`` under ``name`` in ESTIMATORS, defined for ``kinds``, with
    parameter ``defaults``.

    ``shared_pass``: the estimator reads :class:`Stats`' pass over every example, which is made first
    (with every BLAS thread). ``one_thread``: the estimator's own work (D x D factorisations, the
    subsample) runs with one BLAS / OpenMP thread: on a machine whose cores are shared, threads on
    matrices this small wait for each other more than they compute (SFDA: 10x slower with 2 threads
    on a loaded 2-core machine).
    """
    def register(fn):
        @functools.wraps(fn)
        def run(features, labels, task, *, stats=None, **params):
            unknown = set(params) - set(defaults)
            if unknown:
                raise TypeError(f"{name}: unknown parameter(s) {sorted(unknown)}; allowed: {sorted(defaults)}")
            kind = tasks.get(task).kind
            if kind not in kinds:
                raise NotApplicable(f"{name} is defined for {' and '.join(kinds)} tasks; "
                                    f"{task!r} is a {kind} task")
            stats = stats if stats is not None else Stats(features, labels, task)
            if shared_pass:
                stats.class_gram  # noqa: B018 (computed once, multi-threaded)
            with _threads().limit(limits=1) if one_thread else contextlib.nullcontext():
                return float(fn(stats, **{**defaults, **params}))

        ESTIMATORS[name] = run
        APPLIES[name] = tuple(kinds)
        DEFAULTS[name] = dict(defaults)
        return run
    return register


# LogME first: the ``logme`` job's published score, its time includes the shared pass.
estimator("logme", one_thread=False)(logme_mod.from_stats)

# The estimators of their own modules, in this order. The first six read the shared statistics
# (``fn(stats, **params)``, ``SHARED_PASS`` says whether they need the pass over every example); the
# others are pure functions of (features, labels): integer class codes, or a regression task's
# targets as floats.
MODULES = (hscore, transrate, nleep, sfda, knn, linear_probe, gbc, parc, lfc, silhouette, pactran, etran, ncti)


def _register_module(module) -> None:
    name = module.__name__.rsplit(".", 1)[1]
    fn = getattr(module, name)
    if hasattr(module, "SHARED_PASS"):  # a function of the shared statistics
        estimator(name, kinds=module.KINDS, shared_pass=module.SHARED_PASS, **module.DEFAULTS)(fn)
        return
    if hasattr(module, "from_stats"):  # the same value from the shared statistics (no pass of its own)
        fast = module.from_stats

        def shared(st: Stats, **params):
            return fast(st, **params)

        shared.__name__, shared.__doc__ = name, fn.__doc__
        estimator(name, kinds=module.KINDS, **module.DEFAULTS)(shared)
        return

    def run(st: Stats, **params):
        return fn(st.F, st.y, **params)

    run.__name__, run.__doc__ = name, fn.__doc__
    estimator(name, kinds=module.KINDS, shared_pass=False, **module.DEFAULTS)(run)


for _module in MODULES:
    _register_module(_module)


class EstimatorError(ValueError):
    """An estimator failed on its input (not :class:`NotApplicable`); the message names the estimator and
    the task, ``name`` holds the estimator."""

    def __init__(self, name: str, task: str, problem):
        super().__init__(f"transferability estimator {name!r} on task {task!r}: {problem}")
        self.name = name


def score_all(features, labels, task: str, names=None, params=None, stats: Stats | None = None) -> dict:
    """Every estimator in ``names`` (default: all of ESTIMATORS) on the same features, sharing one
    :class:`Stats` (``stats``, one built on ``features`` and ``labels`` for ``task``, or a new one).
    ``params``: ``{name: {param: value}}`` (config ``transferability``).

    Returns ``{name: {"score": float | None, "time_s": float, "applicable": bool, "note": str | None}}``:
    ``applicable`` False, ``score`` None and the reason in ``note`` when the estimator is not defined for
    the task's kind (never a score of 0). Bad input raises ValueError; an estimator that fails on it (or
    returns a NaN / infinite score) raises :class:`EstimatorError` naming it.
    """
    names = list(ESTIMATORS) if names is None else list(names)
    unknown = [n for n in names if n not in ESTIMATORS]
    if unknown:
        raise ValueError(f"unknown transferability estimator(s) {unknown}; known: {list(ESTIMATORS)}")
    params = params or {}
    st = stats if stats is not None else Stats(features, labels, task)
    out = {}
    for name in names:
        t0 = time.perf_counter()
        try:
            score, applicable, note = ESTIMATORS[name](features, labels, task, stats=st, **params.get(name, {})), True, None
        except NotApplicable as err:
            score, applicable, note = None, False, str(err)
        except (ValueError, ArithmeticError) as err:
            raise EstimatorError(name, task, err) from err
        if applicable and not math.isfinite(score):
            raise EstimatorError(name, task, f"the score is {score} (not finite)")
        out[name] = {"score": score, "time_s": time.perf_counter() - t0, "applicable": applicable, "note": note}
    return out
