"""Transferability estimators beside LogME, all computed from the same features in one job.

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
=============  ==============  ==========================================================================

An estimator that does not apply to the task's kind raises :class:`NotApplicable`; :func:`score_all`
records it as ``score: None`` with the reason (never as 0). Bad input (NaN features, one class,
mismatched lengths, features constant over every example) raises ValueError naming the problem.

Shared work (:class:`Stats`): one float64 pass over F (:func:`ptmbench.estimators.logme.gram_pass`, the function
LogME alone uses too), in row chunks ordered by class, gives every class's ``F_k^T F_k`` and ``F_k^T 1``;
their sum is LogME's ``F^T F``, so LogME (computed first, the ``logme`` job's published score) needs no
pass of its own; the centred covariance and the class means give the H-score, the per-class Gram
matrices give TransRate and the covariance's eigenvectors give NLEEP's PCA. The estimators that are
superlinear in N (kNN: N^2, the Gaussian mixture and the probes: many passes) or that need a second
pass over reweighted features (SFDA) run on a seeded uniform subsample (``max_examples``, ``seed``;
None = every example); halving any cap makes the rankings measurably worse (``bench/estimator_caps.py``),
so they stay. All seven together cost 1.42-1.44x LogME alone (target 1.5x; ``bench/estimators.py``,
100,000 x 768, one BLAS thread on the 2-core development machine; docs/transferability.md). In the workflow
they run in the ``logme`` job (:func:`ptmbench.stages.logme.score_ptm`, config ``transferability``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import time

import numpy as np
from scipy.linalg import blas, cho_solve, eigh, lapack, solve_triangular

from ptmbench.core import tasks
from ptmbench.data.tokenized import subsample
from ptmbench.estimators import etran, gbc, lfc, ncti, pactran, parc, silhouette
from ptmbench.estimators import logme as logme_mod
from ptmbench.estimators._common import power_top

log = logging.getLogger(__name__)

KINDS = ("classification", "regression")

ESTIMATORS: dict = {}  # name -> function(features, labels, task, *, stats=None, **params) -> float
APPLIES: dict = {}  # name -> the task kinds it is defined for
DEFAULTS: dict = {}  # name -> its parameters and their defaults


class NotApplicable(ValueError):  # noqa: N818 (a result, not a failure)
    """The estimator is not defined for this task's kind (e.g. a class-based score on stsb)."""


@functools.cache
def _threads():
    """The process's BLAS / OpenMP thread pools (threadpoolctl), found once: finding them costs ~5 ms."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def estimator(name: str, kinds=KINDS, shared_pass=True, one_thread=True, **defaults):
    """Register ``fn`` under ``name`` in ESTIMATORS, defined for ``kinds``, with parameter ``defaults``.

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


def _class_codes(y, K, name, at_least=1, what="examples"):
    counts = np.bincount(y, minlength=K)
    if counts.min() < at_least:
        raise ValueError(f"{name}: a class has {counts.min()} {what}, needs at least {at_least} "
                         f"(counts per class {counts.tolist()}); use more examples (raise max_examples)")
    return counts


def _softmax(Z):
    Z = Z - Z.max(axis=1, keepdims=True)
    np.exp(Z, out=Z)
    return Z / Z.sum(axis=1, keepdims=True)


def _chol(A, name, what):
    """Lower Cholesky factor of the symmetric positive definite A (LAPACK potrf: twice as fast as
    ``np.linalg.cholesky`` at D = 768)."""
    L, info = lapack.dpotrf(A, lower=1, clean=1)  # reads A's lower triangle, factors a copy
    if info > 0:
        raise ValueError(f"{name}: {what} is singular (constant, duplicate or too few examples?)")
    if info < 0:
        raise ValueError(f"{name}: {what} has NaN or inf entries")
    return L


def _logdet_pd(A, name, what):
    return 2.0 * np.log(np.diag(_chol(A, name, what))).sum()


def _pearson(a, b, name):
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt((a @ a) * (b @ b))
    if den == 0:
        raise ValueError(f"{name}: the predictions (or the labels) are constant; Pearson r is undefined")
    return float(a @ b / den)


# ---------------------------------------------------------------------------------------------- LogME


def logme_evidence(st: Stats) -> np.ndarray:
    """LogME's evidence per sample of every target (C,), from the shared pass; cached on ``st``.

    :func:`ptmbench.estimators.logme.logme`'s algorithm (its spectrum and fixed point) on the shared statistics:
    ``F^T F`` is the sum of the per-class Gram matrices and ``F^T Y`` the class sums (one-vs-rest
    indicators) or, for regression, accumulated in the same pass: the very sums
    :func:`ptmbench.estimators.logme.gram` makes, so the value is :func:`ptmbench.estimators.logme.logme`'s.
    """
    if "_logme_evidence" not in st.__dict__:
        Y, B = st.Y, st.xty
        yy = np.einsum("nc,nc->c", Y, Y)
        sigma, V = logme_mod.spectrum(st.gram, st.N)
        x2 = (V.T @ B) ** 2 / sigma[:, None]
        res0 = np.maximum(yy - x2.sum(axis=0), 0.0)
        sig = sigma[:, None]
        st._logme_evidence, _ = logme_mod.fixed_point(st.N, st.D, sig, yy,
                                                      lambda t: logme_mod.updates(sig, x2, res0, t))
    return st._logme_evidence


@estimator("logme", one_thread=False)
def logme(st: Stats):
    """LogME (You et al., ICML 2021): mean over targets of the maximised log evidence per sample.

    The definition and algorithm are :func:`ptmbench.estimators.logme.logme`'s (see its module docstring), run on
    the shared pass (:func:`logme_evidence`). This is the value the ``logme`` job publishes.
    """
    return logme_evidence(st).mean()


# ------------------------------------------------------------------------------------------- H-score


def ledoit_wolf(cov, q4, N):
    """Ledoit-Wolf shrinkage ``alpha`` and ``mu = tr(S)/D`` of the empirical covariance S (centred, /N).

    scikit-learn's ``ledoit_wolf_shrinkage`` from sufficient statistics: with ``q4 = sum_i ||x_i -
    mean||^4``, ``b = (q4/N - ||S||_F^2) / (D N)``, ``d = ||S - mu I||_F^2 / D``, ``alpha = min(b, d) / d``
    (0 when b = 0).
    """
    D = cov.shape[0]
    mu = np.trace(cov) / D
    s2 = np.sum(cov * cov)
    b = (q4 / N - s2) / (D * N)
    d = (s2 - 2 * mu * np.trace(cov) + D * mu**2) / D
    b = min(b, d)
    return (0.0 if b == 0 else b / d), mu


@estimator("hscore", kinds=("classification",))
def hscore(st: Stats):
    """Shrinkage H-score (Ibrahim, Ponomareva and Mazumder, ICLR 2022).

    Features ``f`` centred; ``Sigma_alpha = (1 - alpha) S + alpha (tr S / D) I`` the Ledoit-Wolf
    estimate of their covariance (S centred, divided by N; alpha as scikit-learn's ``LedoitWolf``);
    ``G`` (N x D) replaces each row by its class mean. With ``N_c`` examples and mean ``g_c`` in class
    c, ``G^T G / N = sum_c (N_c / N) g_c g_c^T``, so

        H = tr(Sigma_alpha^-1 (1 - alpha) G^T G / N) = (1 - alpha) sum_c (N_c / N) ||L^-1 g_c||^2,

    ``L`` the Cholesky factor of Sigma_alpha. Every example; D x D work after the shared pass.
    """
    st.require_variance("hscore")
    alpha, mu = ledoit_wolf(st.cov, st.q4, st.N)
    sigma = (1 - alpha) * st.cov
    sigma[np.diag_indices_from(sigma)] += alpha * mu
    L = _chol(sigma, "hscore", "the shrunk feature covariance")
    g = st.class_sum / st.counts[:, None] - st.mean  # centred class means (K x D)
    W = solve_triangular(L, (g * np.sqrt(st.counts / st.N)[:, None]).T, lower=True)
    return (1 - alpha) * np.sum(W * W)


# ----------------------------------------------------------------------------------------- TransRate


def coding_rate(ZtZ, n, eps):
    """R(Z) = 1/2 log det(I + Z^T Z / (n eps)) from Z^T Z (D x D; only its lower triangle is read) and
    n = the rows of Z."""
    A = ZtZ / (n * eps)
    A[np.diag_indices_from(A)] += 1.0
    return 0.5 * _logdet_pd(A, "transrate", "I + Z^T Z / (n eps)")


@estimator("transrate", kinds=("classification",), eps=1e-4)
def transrate(st: Stats, eps):
    """TransRate (Huang, Huang, Ren and Wu, ICML 2022).

    Features Z centred (rows minus the mean over all N), ``Z_k`` the rows of class k, K the classes
    present, ``R(Z) = 1/2 log det(I + Z^T Z / (n eps))`` with n the rows of that Z:

        TransRate = R(Z) - (1/K) sum_k R(Z_k),    eps = 1e-4.

    ``Z_k^T Z_k = F_k^T F_k - s_k m^T - m s_k^T + N_k m m^T = F_k^T F_k - a m^T - m a^T`` with
    ``a = s_k - N_k m / 2`` (s_k the class sum, m the mean) from the shared pass: one symmetric rank-2
    update (BLAS syr2, lower triangle) each; K + 1 Cholesky log-determinants. Every example.
    """
    st.require_variance("transrate")
    mu = st.mean
    total = coding_rate(st.cov * st.N, st.N, eps)
    parts = [coding_rate(blas.dsyr2(-1.0, s - n / 2 * mu, mu, a=G, lower=1), n, eps)
             for G, s, n in zip(st.class_gram, st.class_sum, st.counts, strict=True)]
    return total - np.mean(parts)


# --------------------------------------------------------------------------------------------- NLEEP


@estimator("nleep", kinds=("classification",), variance=0.8, components_per_class=5,
           covariance_type="diag", max_examples=1000, seed=0)
def nleep(st: Stats, variance, components_per_class, covariance_type, max_examples, seed):
    """NLEEP (Li et al., "Ranking neural checkpoints", CVPR 2021): LEEP with a Gaussian mixture.

    PCA keeps the fewest leading components whose variance exceeds ``variance`` (80%) of the total (as
    scikit-learn's ``PCA(n_components=0.8)``; fitted on the covariance of every example). On the
    projected subsample ``x_1..x_n`` a Gaussian mixture with ``M = components_per_class * K`` components
    (scikit-learn ``GaussianMixture``, k-means init, ``random_state=seed``) gives the posteriors
    ``theta_i = P(z | x_i)``. With ``P(y, z) = (1/n) sum_{i: y_i = y} theta_iz`` and
    ``P(y | z) = P(y, z) / sum_y' P(y', z)``, the expected empirical prediction of example i is
    ``EEP_i = sum_z P(y_i | z) theta_iz`` and

        NLEEP = (1/n) sum_i log EEP_i.

    Subsample: the mixture is iterative and superlinear in practice (k-means init, EM passes), so it
    runs on at most ``max_examples`` (1,000) rows drawn uniformly with ``seed``. ``covariance_type``
    'diag' (default: with ~160 PCA dimensions and ~70 examples per component a full covariance is
    dominated by its regulariser) or 'full' (scikit-learn's default, as in the SFDA authors' code).

    Precision: the PCA directions and the 'diag' mixture are computed in float32, the precision of the
    features (scikit-learn's PCA and GaussianMixture keep float32 input in float32, as in the authors'
    pipeline on a network's float32 features); the mixture takes 35% less time than in float64. A
    'full' mixture stays in float64: with fewer examples per component than dimensions its covariances
    are singular but for the regulariser (1e-6), a condition number float32's Cholesky cannot take.
    """
    from sklearn.mixture import GaussianMixture

    st.require_variance("nleep")
    X, y = st.sample("nleep", max_examples, seed)
    Z = (X - st.mean) @ st.pca(variance)
    if covariance_type == "diag":
        Z = Z.astype(np.float32)  # the features' precision (see above)
    M = components_per_class * st.K
    if len(Z) < M:
        raise ValueError(f"nleep: {len(Z)} examples for a mixture of {M} components "
                         f"({components_per_class} per class x {st.K} classes); raise nleep.max_examples")
    gmm = GaussianMixture(M, covariance_type=covariance_type, random_state=seed).fit(Z)
    theta = gmm.predict_proba(Z).astype(np.float64)  # n x M
    onehot = np.eye(st.K)[y]
    pyz = onehot.T @ theta / len(y)  # K x M joint
    py_given_z = pyz / np.maximum(pyz.sum(axis=0, keepdims=True), np.finfo(float).tiny)
    eep = np.einsum("nm,nm->n", theta, py_given_z[y])
    return np.mean(np.log(np.maximum(eep, np.finfo(float).tiny)))


# ---------------------------------------------------------------------------------------------- SFDA


def _fda_proba(X, y, K, priors, shrinkage=None):
    """One SFDA pass: class means, within scatter S_w = sum_k prior_k Cov(X_k), shrinkage lambda
    (adaptive when None), the regularised Fisher classifier; returns (P(y | x) n x K, lambda, means)."""
    counts = np.bincount(y, minlength=K)
    means = _class_means(X, y, K, counts)
    Xc = X - means[y]
    Xc *= np.sqrt(priors / counts)[y][:, None]
    Sw = Xc.T @ Xc  # sum_k prior_k (1/N_k) (X_k - mu_k)^T (X_k - mu_k); X^T X: BLAS syrk
    if shrinkage is None:
        shrinkage = max(math.exp(-5 * power_top(Sw)), 1e-10)
    D = X.shape[1]
    Sw_l = (1 - shrinkage) * Sw
    Sw_l[np.diag_indices(D)] += shrinkage * np.trace(Sw) / D
    L = _chol(Sw_l, "sfda", "the regularised within-class scatter")
    coef = cho_solve((L, True), means.T).T  # means Sw_l^-1  (K x D)
    intercept = -0.5 * np.einsum("kd,kd->k", means, coef) + np.log(priors)
    return _softmax(X @ coef.T + intercept), shrinkage, means


def _class_means(X, y, K, counts):
    """K x D class means: one (K x n) @ (n x D) product."""
    onehot = np.zeros((K, len(y)))
    onehot[y, np.arange(len(y))] = 1.0
    return onehot @ X / counts[:, None]


@estimator("sfda", kinds=("classification",), max_examples=2000, seed=0)
def sfda(st: Stats, max_examples, seed):
    """SFDA (Shao et al., "Not all models are equal", ECCV 2022), as in the authors' code.

    Fisher discriminant with adaptive shrinkage: class means ``mu_k``, priors ``pi_k = N_k / n``,
    within scatter ``S_w = sum_k pi_k Cov(X_k)`` (biased covariances), ``lambda = max(exp(-5 a), 1e-10)``
    with ``a`` the authors' 3-round power-iteration estimate of S_w's largest eigenvalue, and
    ``S_w^lambda = (1 - lambda) S_w + lambda (tr S_w / D) I``. The authors project on all D generalised
    eigenvectors E of ``(S_b, S_w^lambda)`` (``E^T S_w^lambda E = I``) and classify with ``mu_k E E^T x``;
    since E is square, ``E E^T = (S_w^lambda)^-1`` and S_b drops out:

        P(k | x) = softmax_k( mu_k^T S_w^-1 x - 1/2 mu_k^T S_w^-1 mu_k + log pi_k ).

    ConfMix: ``p_i = softmax(P(. | x_i))_{y_i}`` (the probabilities softened by a second softmax),
    ``x_i <- p_i x_i + (1 - p_i) mu'_{y_i}`` with ``mu'_k`` the mean of the other classes' means. A
    second pass with the same lambda on the mixed features gives P_2, and

        SFDA = (1/n) sum_i P_2(y_i | x_i)        (no log, as in the authors' code).

    Subsample: the second pass reweights every row (a second Gram pass), so SFDA runs on at most
    ``max_examples`` (2,000) rows drawn uniformly with ``seed``; features are not standardised.
    """
    st.require_variance("sfda")
    X, y = st.sample("sfda", max_examples, seed)
    K = st.K
    counts = _class_codes(y, K, "sfda (in its subsample)")
    priors = counts / len(y)
    P1, lam, means = _fda_proba(X, y, K, priors)
    soft = _softmax(P1)[np.arange(len(y)), y][:, None]
    others = (means.sum(axis=0) - means) / (K - 1)
    Xm = soft * X + (1 - soft) * others[y]
    P2, _, _ = _fda_proba(Xm, y, K, priors, lam)
    return P2[np.arange(len(y)), y].mean()


# ----------------------------------------------------------------------------------------------- kNN


def _knn_neighbours(X, k):
    """Indices (n x k) of each row's k most cosine-similar other rows, after centring (float32)."""
    Z = (X - X.mean(axis=0)).astype(np.float32)
    norms = np.linalg.norm(Z, axis=1, keepdims=True)
    Z /= np.where(norms > 0, norms, 1.0)  # a row equal to the mean has similarity 0 to every row
    S = Z @ Z.T
    np.fill_diagonal(S, -np.inf)  # leave one out
    return np.argpartition(S, -k, axis=1)[:, -k:]


@estimator("knn", shared_pass=False, k=10, max_examples=2000, seed=0)
def knn(st: Stats, k, max_examples, seed):
    """Leave-one-out k-nearest-neighbour score, cosine similarity of centred features.

    On the subsample ``x_1..x_n`` (centred by its mean, each row scaled to unit length), ``N_k(i)`` are
    the k rows j != i of largest ``x_i . x_j`` (ties broken arbitrarily). Classification: the predicted
    label is the most frequent among N_k(i) (ties: the smallest class index) and the score is
    ``(1/n) sum_i [pred_i = y_i]``. Regression: ``pred_i = (1/k) sum_{j in N_k(i)} y_j`` and the score is
    Pearson's r(pred, y). k = 10. Subsample: O(n^2 D), at most ``max_examples`` (2,000) rows drawn
    uniformly with ``seed``.
    """
    X, y = st.sample("knn", max_examples, seed)
    if not 1 <= k < len(y):
        raise ValueError(f"knn.k must be in [1, {len(y) - 1}] for {len(y)} examples, got {k}")
    nb = _knn_neighbours(X, k)
    if st.kind == "regression":
        return _pearson(y[nb].mean(axis=1), y, "knn")
    votes = np.bincount((np.arange(len(y))[:, None] * st.K + y[nb]).ravel(),
                        minlength=len(y) * st.K).reshape(len(y), st.K)
    return np.mean(votes.argmax(axis=1) == y)


# -------------------------------------------------------------------------------------- linear probe


def folds_of(y, folds, seed, stratify):
    """Fold index (0..folds-1) of every example: within each class (or overall), a seeded permutation
    dealt round-robin, so the folds are fixed by ``seed`` and as balanced as the classes allow."""
    rng = np.random.default_rng(seed)
    out = np.empty(len(y), np.intp)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if stratify else [np.arange(len(y))]
    start = 0
    for idx in groups:
        out[rng.permutation(idx)] = (start + np.arange(len(idx))) % folds
        start += len(idx)
    return out


def _logistic_fit(X, y, K, C, max_iter, start=None, tol=1e-4):
    """Multinomial logistic regression: minimise ``(1/n) sum_i -log softmax(W^T x_i + b)_{y_i} +
    1/(2 C n) ||W||^2`` (scikit-learn's ``LogisticRegression(C=C)`` objective, divided by C n; the
    intercept is not penalised) with L-BFGS and scikit-learn's stopping rule (gtol ``tol`` = 1e-4).
    Returns W (D x K), b (K) and the flat solution (a warm start for the next fold)."""
    from scipy.optimize import minimize

    n, D = X.shape
    lam = 1.0 / (C * n)
    XT = np.ascontiguousarray(X.T)  # weights held as K x D: W^T X^T and R^T X are the fast products
    rows = (y, np.arange(n))
    Tt = np.zeros((K, n))
    Tt[rows] = 1.0

    def f(w):
        Wt, b = w[:D * K].reshape(K, D), w[D * K:]
        Z = Wt @ XT
        Z += b[:, None]
        zmax = Z.max(axis=0)
        E = np.exp(Z - zmax)
        s = E.sum(axis=0)
        loss = (np.sum(zmax + np.log(s)) - Z[rows].sum()) / n + 0.5 * lam * np.sum(Wt * Wt)
        R = E / s
        R -= Tt
        R /= n
        grad = np.empty(D * K + K)
        grad[:D * K] = (R @ X + lam * Wt).ravel()
        grad[D * K:] = R.sum(axis=1)
        return loss, grad

    w0 = np.zeros(D * K + K) if start is None else start
    res = minimize(f, w0, jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter, "gtol": tol, "ftol": 64 * np.finfo(float).eps})
    return res.x[:D * K].reshape(K, D).T, res.x[D * K:], res.x


@estimator("linear_probe", shared_pass=False, folds=5, C=1.0, alpha=1.0, max_iter=200, max_examples=1000, seed=0)
def linear_probe(st: Stats, folds, C, alpha, max_iter, max_examples, seed):
    """Cross-validated linear probe on the subsample ``x_1..x_n`` (``folds`` fixed by ``seed``).

    Each fold's training rows are standardised (their mean and standard deviation; a constant column
    is left unscaled) and the held-out rows scaled the same way. Classification: multinomial logistic
    regression ``min_W,b  C sum_i -log softmax(W^T x_i + b)_{y_i} + 1/2 ||W||^2`` (scikit-learn's
    ``LogisticRegression(C=1)`` objective and stopping rule, L-BFGS, at most ``max_iter`` iterations,
    each fold warm-started from the previous fold's solution), folds stratified by class; score = out-of-fold accuracy over all n. Regression: ridge ``min ||X w + b - y||^2 +
    alpha ||w||^2`` (closed form); score = Pearson's r between the out-of-fold predictions and y.
    Subsample: at most ``max_examples`` (1,000) rows drawn uniformly with ``seed``.
    """
    X, y = st.sample("linear_probe", max_examples, seed)
    if not 2 <= folds <= len(y):
        raise ValueError(f"linear_probe.folds must be in [2, {len(y)}], got {folds}")
    if st.kind == "classification":
        _class_codes(y, st.K, f"linear_probe (folds={folds}, in its subsample)", at_least=folds,
                     what="examples (fewer than folds)")
    fold = folds_of(y, folds, seed, st.kind == "classification")
    pred, w = np.empty(len(y)), None
    for f in range(folds):
        tr, te = fold != f, fold == f
        Xtr, Xte = X[tr], X[te]
        m, s = Xtr.mean(axis=0), Xtr.std(axis=0)
        s[s == 0] = 1.0
        Xtr -= m
        Xtr /= s
        Xte -= m
        Xte /= s
        if st.kind == "classification":
            W, b, w = _logistic_fit(Xtr, y[tr], st.K, C, max_iter, start=w)
            pred[te] = np.argmax(Xte @ W + b, axis=1)
        else:
            yc = y[tr] - y[tr].mean()  # features are centred: the intercept is the mean label
            w = np.linalg.solve(Xtr.T @ Xtr + alpha * np.eye(X.shape[1]), Xtr.T @ yc)
            pred[te] = Xte @ w + y[tr].mean()
    if st.kind == "regression":
        return _pearson(pred, y, "linear_probe")
    return np.mean(pred == y)


# ----------------------------------------------------------------------------------------- all at once


# The estimators of their own modules: one pure function of (features, labels) each, registered with
# the task kinds and the parameters the module declares (KINDS, DEFAULTS). They read the validated
# features and the labels (class codes, or regression targets as floats) and make no shared pass.
MODULES = (gbc, parc, lfc, silhouette, pactran, etran, ncti)


def _register_module(module) -> None:
    name = module.__name__.rsplit(".", 1)[1]
    fn = getattr(module, name)

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
