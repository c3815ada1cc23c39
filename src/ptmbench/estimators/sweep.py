"""Sweeps: every estimator re-scored on nested subsamples and on PCA projections of the same features.

How much data and how many dimensions does an estimator need? (Bai et al., Findings of EMNLP 2023, sweep
both.) :func:`sweep` scores the estimators of one (PTM, task) again:

- axis ``n``: on the first n rows of ONE seeded permutation of the N examples, for each n of
  ``sizes`` below N; the subsamples are nested (the 1,000 rows contain the 500), so a change along
  the axis is the extra data, not another draw;
- axis ``d``: on the projection of every example onto the d leading principal components of the
  features (exact PCA of the covariance of every example: :meth:`ptmbench.estimators.stats.Stats.leading`;
  the N x N Gram matrix when N <= D), for each d of ``dims`` below D.

A size at or above the data's own (n >= N, or d >= D: a zoo mixes 384-, 768- and 1024-dimensional
models) is the full data, scored again and marked in ``note``: every PTM has a row at every point of
the sweep, so the rank correlation at a point always compares the same PTMs (without them, d = 64
would rank only the PTMs wider than 64 against the full data's ranking of all of them).

Each point is the registry's :func:`ptmbench.estimators.transferability.score_all` on that data, one
estimator at a time with one shared :class:`ptmbench.estimators.stats.Stats` per point, so ``time_s``
is what the estimator costs there (the first one that needs the shared pass pays for it, as in the
job). An estimator that fails at a point (a subsample too small for its folds, a class missing from it)
is recorded with ``score`` None and the reason in ``note``, never 0; one not defined for the task's
kind is ``applicable`` False, as in the job. The rows go into the ``logme`` job's JSON (``sweep``) and
from there into ``results/tables/sweep.csv`` (the export).
"""

from __future__ import annotations

import time

import numpy as np

from ._common import pca_basis, project
from .stats import Stats
from .transferability import EstimatorError, score_all

AXES = ("n", "d")


def nested_order(N: int, seed: int) -> np.ndarray:
    """The seeded permutation of the N rows whose first n rows are the subsample of size n."""
    return np.random.default_rng(seed).permutation(N)


def _points(F, labels, task, sizes, dims, seed, stats):
    """(axis, size, data, note) of every point: ``data()`` gives its (features, labels)."""
    N, D = F.shape
    order = nested_order(N, seed)
    full = lambda: (F, labels)  # noqa: E731
    for n in sorted(set(sizes)):
        if n < N:
            idx = np.sort(order[:n])
            yield "n", n, lambda idx=idx: (F[idx], labels[idx]), ""
        else:
            yield "n", n, full, f"n >= N = {N}: all examples"
    big = [d for d in sorted(set(dims)) if d < D]
    if big:
        if N > D:
            _, V = (stats if stats is not None else Stats(F, labels, task)).leading(big[-1])
            mean = F.mean(axis=0, dtype=np.float64)
        else:
            mean, V = pca_basis(F, big[-1], "sweep")
        dtype = np.float32 if F.dtype == np.float32 else np.float64
    for d in sorted(set(dims)):
        if d >= D:
            yield "d", d, full, f"d >= D = {D}: the features themselves"
        elif d <= V.shape[1]:
            yield "d", d, lambda d=d: (project(F, mean, V[:, :d]).astype(dtype), labels), ""
        else:  # fewer principal components than d (N <= d < D): the Gram matrix has rank N at most
            yield "d", d, full, f"only {V.shape[1]} principal components (N = {N}): the features themselves"


def sweep(features, labels, task: str, names, params=None, sizes=(), dims=(), seed: int = 0,
          stats: Stats | None = None) -> list[dict]:
    """Rows ``{axis, size, estimator, score, time_s, applicable, note}`` of every estimator in ``names``
    (with ``params``, as :func:`ptmbench.estimators.transferability.score_all`) at every size of
    ``sizes`` (axis ``n``) and ``dims`` (axis ``d``); at or above the data's own, the full data (module docstring).
    ``stats``: the full data's :class:`Stats` if already built (its PCA is reused)."""
    F, labels = np.asarray(features), np.asarray(labels)
    for key, values in (("sizes", sizes), ("dims", dims)):
        bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int) or v < (2 if key == "sizes" else 1)]
        if bad:
            raise ValueError(f"transferability.sweep.{key}: {bad} are not integers >= "
                             f"{2 if key == 'sizes' else 1}")
    params = params or {}
    rows = []
    for axis, size, data, point_note in _points(F, labels, task, sizes, dims, seed, stats):
        X, y = data()
        try:
            st = Stats(X, y, task)
        except ValueError as err:  # e.g. one class in a small subsample: nothing is defined there
            rows += [{"axis": axis, "size": size, "estimator": name, "score": None, "time_s": 0.0,
                      "applicable": True, "note": str(err)} for name in names]
            continue
        for name in names:
            t0 = time.perf_counter()
            try:
                res = score_all(X, y, task, [name], {name: params.get(name, {})}, stats=st)[name]
            except (EstimatorError, ValueError, ArithmeticError) as err:
                res = {"score": None, "time_s": time.perf_counter() - t0, "applicable": True, "note": str(err)}
            note = "; ".join(filter(None, [point_note, res.get("note")]))
            rows.append({"axis": axis, "size": size, "estimator": name, **res, "note": note or res.get("note")})
    return rows
