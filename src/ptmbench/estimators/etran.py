"""ETran, energy-based transferability (Gholami et al., "ETran: energy-based transferability
estimation", ICCV 2023).

ETran sums scores read from the same features; this module implements the classification score
``S_en + S_lda`` and, for regression tasks, ``S_en + S_svd`` (the paper adds ``S_svd`` for the
regression part of object detection, the boxes):

- **energy** ``S_en``: with each feature vector read as logits, its negative free energy is
  ``-E(x) = logsumexp_d x_d`` (the energy of Liu et al.'s out-of-distribution detector);
  ``S_en`` is the mean of ``-E(x_i)`` over the fraction ``energy_fraction`` (0.5%, at least one
  example) of examples with the lowest ``-E`` (the authors' ``Energy_Score(X, 0.5, 'bot')``);
- **LDA** ``S_lda``: the posterior of the true class under linear discriminant analysis with the
  SFDA authors' adaptive shrinkage: priors ``pi_k = n_k / n``, class means ``mu_k``, within
  scatter ``S_w = sum_k pi_k Cov(X_k)`` (biased), ``lambda = max(exp(-5 a), 1e-10)`` with ``a`` the
  3-round power-iteration estimate of S_w's largest eigenvalue,
  ``S = (1 - lambda) S_w + lambda (tr S_w / D) I``,
  ``P(k | x) = softmax_k(mu_k^T S^-1 x - 1/2 mu_k^T S^-1 mu_k + ln pi_k)`` and
  ``S_lda = (1/n) sum_i P(y_i | x_i)``. (The authors' code takes the eigenvectors of the
  non-symmetric ``S^-1 S_b`` with a symmetric solver, an orthonormal basis E with E E^T = I, which
  turns its classifier into ``mu_k^T x``; this module computes the LDA the paper describes.)
- **SVD** ``S_svd`` (regression): the least-squares fit of the targets t on the features through
  the pseudo-inverse, ``w = X^+ t``, and ``S_svd = -(1/n) ||X w - t||^2`` (0 when n <= D: the fit
  interpolates).

The terms are added unweighted, as in the paper's sum. ``S_lda`` uses every example (in the registry,
:func:`from_stats`, its class means and within scatter are the shared pass's, so it costs one
N x D x K product); ``S_en`` and ``S_svd`` use the examples ``x_1..x_n``, a seeded uniform subsample
of at most ``max_examples`` (10,000) rows (the energy term is the mean of the lowest 0.5%: 50
examples of 10,000; the least squares are O(n D^2)). Before the speed work of issue 22 the LDA ran on
the subsample too (in-sample posteriors on fewer rows drift towards 1, as SFDA's).

Kinds: classification (S_en + S_lda) and regression (S_en + S_svd). Cost: O(n D) for the energy,
O(N D K) after the shared pass for the LDA (O(N D^2) standalone), O(n D^2) for the least squares.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import cho_factor, cho_solve, lstsq

from ._common import (
    class_sums,
    classification_inputs,
    is_regression,
    power_top,
    regression_inputs,
    scatter,
    subsample,
)

KINDS = ("classification", "regression")
DEFAULTS = {"energy_fraction": 0.005, "max_examples": 10000, "seed": 0}


def etran(features: np.ndarray, labels: np.ndarray, energy_fraction: float = 0.005,
          max_examples: int | None = 10000, seed: int = 0) -> float:
    """ETran of the N x D ``features`` for ``labels``: integer class labels (S_en + S_lda), or float
    targets of a regression task (S_en + S_svd); see the module docstring."""
    if not 0 < energy_fraction <= 1:
        raise ValueError(f"etran.energy_fraction must be in (0, 1], got {energy_fraction}")
    regression = is_regression(labels)
    if regression:
        F, t = regression_inputs(features, labels, "etran")
    else:
        F, t, _ = classification_inputs(features, labels, "etran")
    idx = subsample(F.shape[0], max_examples, seed, "etran")
    X = F if idx is None else F[idx]
    s_en = _energy(X, energy_fraction)
    if regression:
        return float(s_en + _svd_term(X.astype(np.float64), t if idx is None else t[idx]))
    K = int(t.max()) + 1  # the class codes of every example (classification_inputs)
    counts = np.bincount(t, minlength=K).astype(np.float64)
    means = class_sums(F, t, K) / counts[:, None]
    Sw = sum(scatter(F[t == k], means[k]) for k in range(K)) / len(t)  # sum_k pi_k Cov(X_k), biased
    return float(s_en + _lda_term(X, t if idx is None else t[idx], Sw, means, counts))


def from_stats(st, energy_fraction: float = 0.005, max_examples: int | None = 10000, seed: int = 0) -> float:
    """:func:`etran` from the shared statistics ``st`` (:class:`ptmbench.estimators.stats.Stats`): the LDA's
    class means and within scatter from the shared pass, the energy, the posteriors (and the least
    squares) on the same seeded rows as :func:`etran`."""
    if not 0 < energy_fraction <= 1:
        raise ValueError(f"etran.energy_fraction must be in (0, 1], got {energy_fraction}")
    st.require_variance("etran")
    idx = subsample(st.N, max_examples, seed, "etran")
    X, t = (st.F, st.y) if idx is None else (st.F[idx], st.y[idx])
    s_en = _energy(X, energy_fraction)
    if st.kind == "regression":
        return float(s_en + _svd_term(X.astype(np.float64), t))
    counts = st.counts.astype(np.float64)
    Sw = np.einsum("k,kij->ij", counts / st.N, st.class_cov())
    return float(s_en + _lda_term(X, t, (Sw + Sw.T) / 2, st.class_sum / counts[:, None], counts))


def _logsumexp_rows(X):
    """``logsumexp`` of each row (``scipy.special.logsumexp(X, axis=1)``, one temporary instead of its
    several), in the features' precision (float32 features: float32 exponentials, summed in float64;
    5e-8 relative), as a network's float32 logits are."""
    top = X.max(axis=1)
    E = X - top[:, None]
    np.exp(E, out=E)
    return np.log(E.sum(axis=1, dtype=np.float64)) + top.astype(np.float64)


def _energy(X, energy_fraction):
    """S_en: the mean of the lowest ``energy_fraction`` of the rows' -E(x) = logsumexp_d x_d."""
    neg_energy = _logsumexp_rows(X)
    m = max(1, int(energy_fraction * len(X)))
    return np.partition(neg_energy, m - 1)[:m].mean()


def _svd_term(X, t):
    """S_svd = -(1/n) ||X w - t||^2 of the least-squares fit w = X^+ t."""
    w = lstsq(X, t, check_finite=False)[0]
    r = X @ w - t
    return -(r @ r) / len(t)


def _lda_term(X, y, Sw, means, counts):
    """S_lda: the mean posterior of the true class y of the rows X under the shrinkage LDA fitted on
    every example (its within scatter Sw, D x D, its K x D class means and class sizes)."""
    D, n = Sw.shape[0], len(y)
    priors = counts / counts.sum()
    lam = max(np.exp(-5 * power_top(Sw)), 1e-10)
    S = (1 - lam) * Sw
    S[np.diag_indices(D)] += lam * np.trace(Sw) / D
    try:
        c = cho_factor(S, lower=True, check_finite=False)
    except np.linalg.LinAlgError as err:
        raise ValueError("etran: the regularised within-class scatter is singular (constant or duplicate "
                         "features with too few examples?)") from err
    coef = cho_solve(c, means.T, check_finite=False).T  # K x D: mu_k^T S^-1
    logits = X @ coef.T.astype(X.dtype) - 0.5 * np.einsum("kd,kd->k", means, coef) + np.log(priors)
    logits -= logits.max(axis=1, keepdims=True)
    P = np.exp(logits)
    P /= P.sum(axis=1, keepdims=True)
    return P[np.arange(n), y].mean()
