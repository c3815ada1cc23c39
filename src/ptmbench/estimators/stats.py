"""The statistics the transferability estimators share: one validated (features, labels, task) and
one float64 pass over the features (:class:`Stats`).

Every statistic is computed once, on first use, and read by every estimator of the registry
(:mod:`ptmbench.estimators.transferability`) that needs it: the per-class Gram matrices and sums of one
pass grouped by class (:func:`ptmbench.estimators.logme.gram_pass`, the function LogME alone uses too),
the mean, the covariance and its eigendecomposition, and the seeded subsamples the subsampled
estimators share. This module imports no estimator and not the registry.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.linalg import eigh

from ptmbench.core import tasks
from ptmbench.data.tokenized import subsample
from ptmbench.estimators import logme as logme_mod

KINDS = ("classification", "regression")  # the task kinds transferability estimators score


class Stats:
    """Validated features and labels of one (PTM, task), and the statistics the estimators share.

    Every statistic is computed once, on first use: ``class_gram`` / ``class_sum`` / ``xty`` / ``q4``
    (one float64 pass grouped by class), ``mean``, ``cov`` (centred, divided by N) and its
    eigendecomposition (:meth:`pca`). Regression tasks have a single group (every row).
    """

    def __init__(self, features, labels, task: str):
        F = np.asarray(features)
        if F.ndim != 2:
            raise ValueError(f"features must be an N x D matrix, got shape {F.shape}")
        if not (np.issubdtype(F.dtype, np.floating) or np.issubdtype(F.dtype, np.integer)):
            raise ValueError(f"features must be numeric, got dtype {F.dtype}")
        if not np.issubdtype(F.dtype, np.floating):
            F = F.astype(np.float64)
        labels = np.asarray(labels)
        if labels.ndim != 1 or len(labels) != F.shape[0]:
            raise ValueError(f"task {task!r}: {F.shape[0]} feature rows but labels of shape {labels.shape}")
        self.task, self.kind = task, tasks.get(task).kind
        if self.kind not in KINDS:
            raise ValueError(f"transferability estimators score GLUE tasks, not {task!r} ({self.kind})")
        self.Y = logme_mod.targets(labels, task)  # LogME's targets; validates labels (>= 2 classes, ...)
        self.F, self.N, self.D = F, F.shape[0], F.shape[1]
        if self.kind == "classification":
            self.classes, self.y = np.unique(labels, return_inverse=True)
            self.K = len(self.classes)
        else:
            self.y, self.K, self.classes = labels.astype(np.float64), 1, None
        self.groups = self.y if self.kind == "classification" else np.zeros(self.N, np.intp)
        self._samples = {}

    @functools.cached_property
    def _pass(self) -> logme_mod.GramPass:
        """The one float64 pass over F (:func:`ptmbench.estimators.logme.gram_pass`), grouped by class: per class
        F_k^T F_k (K x D x D) and F_k^T 1 (K x D); F^T Y for regression (classification: the one-vs-rest
        indicators' F^T Y is the class sums); sum_i ||x_i - mean||^4 (Ledoit-Wolf)."""
        Y = self.Y if self.kind == "regression" else None
        return logme_mod.gram_pass(self.F, Y, self.groups, self.K, moments=True)

    @functools.cached_property
    def mean(self) -> np.ndarray:
        return self.class_sum.sum(axis=0) / self.N

    @property
    def class_gram(self) -> np.ndarray:
        return self._pass.class_gram

    @property
    def class_sum(self) -> np.ndarray:
        return self._pass.class_sum

    @property
    def xty(self) -> np.ndarray:
        """F^T Y (D x C) for LogME's targets."""
        return self._pass.xty if self._pass.xty is not None else self.class_sum.T

    @property
    def q4(self) -> float:
        """sum_i ||x_i - mean||^4 (Ledoit-Wolf)."""
        return self._pass.q4

    @property
    def counts(self) -> np.ndarray:
        return self._pass.counts

    @functools.cached_property
    def gram(self) -> np.ndarray:
        """F^T F (uncentred), the sum of the per-group Gram matrices."""
        return self._pass.gram

    @functools.cached_property
    def cov(self) -> np.ndarray:
        """The empirical covariance (centred, divided by N)."""
        C = self.gram / self.N - np.outer(self.mean, self.mean)
        return (C + C.T) / 2

    @functools.cached_property
    def _eig(self):
        """Eigenvalues (descending, >= 0) and eigenvectors of ``cov``, in float32 (as scikit-learn's PCA
        of float32 features): a PCA's leading directions need no more, and LAPACK's divide and conquer
        takes half the float64 time (60 vs 120 ms at D = 768)."""
        w, V = eigh(self.cov.astype(np.float32), driver="evd", check_finite=False)
        return np.maximum(w[::-1].astype(np.float64), 0.0), V[:, ::-1].astype(np.float64)

    def pca(self, variance: float):
        """The fewest leading eigenvectors of ``cov`` whose eigenvalues sum to more than ``variance`` of
        its trace (scikit-learn's ``PCA(n_components=variance)`` rule), as a D x d matrix."""
        w, V = self._eig
        ratio = np.cumsum(w) / w.sum()
        d = min(int(np.searchsorted(ratio, variance, side="right")) + 1, self.D)
        return V[:, :d]

    def leading(self, n_components: int):
        """(w, V): the d = min(n_components, D) largest eigenvalues of ``cov`` (descending, >= 0) and their
        eigenvectors (D x d, float64), with scikit-learn's sign convention (each one's largest-magnitude
        loading positive): the exact PCA of every example, as :func:`ptmbench.estimators._common.pca_basis`
        computes it, from the shared covariance (LAPACK's subset driver: 55 ms for 64 of 768, against
        100 ms for all). Cached per d (GBC and NCTI share theirs)."""
        d = min(n_components, self.D)
        key = ("leading", d)
        if key not in self._samples:
            w, V = eigh(self.cov, subset_by_index=[self.D - d, self.D - 1], driver="evr", check_finite=False)
            w, V = np.maximum(w[::-1], 0.0), V[:, ::-1]
            V = V * np.sign(V[np.abs(V).argmax(axis=0), np.arange(d)])
            self._samples[key] = w, V
        return self._samples[key]

    def class_cov(self, V=None) -> np.ndarray:
        """The biased covariance of each class (K x D x D), or of its projection ``V^T Cov_k V`` (K x d x d),
        from the shared per-class Gram matrices and sums."""
        means = self.class_sum / self.counts[:, None]
        out = []
        for G, mu, n in zip(self.class_gram, means, self.counts, strict=True):
            if V is None:
                C = G / n - np.outer(mu, mu)
            else:
                P, m = V.T @ (G @ V), mu @ V
                C = P / n - np.outer(m, m)
            out.append((C + C.T) / 2)
        return np.asarray(out)

    def require_variance(self, name: str):
        if not np.trace(self.cov) > 0:
            raise ValueError(f"{name} on task {self.task!r}: the features are constant (every one of the "
                             f"{self.N} rows is the same vector); the score is undefined")

    def sample(self, name: str, max_examples, seed: int):
        """Features (float64, read-only) and labels of the seeded subsample of at most ``max_examples``
        rows; made once per (max_examples, seed) (SFDA and kNN share theirs by default)."""
        if max_examples is not None and (not isinstance(max_examples, int) or max_examples < 2):
            raise ValueError(f"{name}.max_examples must be an integer >= 2 or None, got {max_examples!r}")
        key = (max_examples if max_examples is None else min(max_examples, self.N), seed)
        if key not in self._samples:
            idx = subsample(self.N, max_examples, seed)
            X, y = (self.F, self.y) if idx is None else (self.F[idx], self.y[idx])
            X = X.astype(np.float64)  # a copy
            X.flags.writeable = False
            self._samples[key] = X, y
        return self._samples[key]
