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

The terms are added unweighted, as in the paper's sum. Everything runs on the examples
``x_1..x_n``, a seeded uniform subsample of at most ``max_examples`` (10,000) rows.

Kinds: classification (S_en + S_lda) and regression (S_en + S_svd). Cost: O(n D) for the energy,
O(n D^2 + D^3) for the scatter (or the least squares) and its Cholesky factorisation.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import cho_factor, cho_solve, lstsq
from scipy.special import logsumexp

from ._common import (
    class_stats,
    classification_inputs,
    is_regression,
    power_top,
    regression_inputs,
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
    X = (F if idx is None else F[idx]).astype(np.float64)
    if idx is not None:
        t = t[idx]
    n, D = X.shape
    neg_energy = logsumexp(X, axis=1)
    m = max(1, int(energy_fraction * n))
    s_en = np.partition(neg_energy, m - 1)[:m].mean()
    if regression:
        w = lstsq(X, t, check_finite=False)[0]
        r = X @ w - t
        return float(s_en - r @ r / n)
    classes, y = np.unique(t, return_inverse=True)
    K = len(classes)
    if K < 2:
        raise ValueError(f"etran: one class in the subsample of {n} examples; raise etran.max_examples")
    counts, means, _ = class_stats(X, y, K)
    priors = counts / n
    R = (X - means[y]) * np.sqrt(priors / counts)[y][:, None]
    Sw = R.T @ R  # sum_k pi_k Cov(X_k), biased covariances
    lam = max(np.exp(-5 * power_top(Sw)), 1e-10)
    S = (1 - lam) * Sw
    S[np.diag_indices(D)] += lam * np.trace(Sw) / D
    try:
        c = cho_factor(S, lower=True, check_finite=False)
    except np.linalg.LinAlgError as err:
        raise ValueError("etran: the regularised within-class scatter is singular (constant or duplicate "
                         "features with too few examples?)") from err
    coef = cho_solve(c, means.T, check_finite=False).T  # K x D: mu_k^T S^-1
    logits = X @ coef.T - 0.5 * np.einsum("kd,kd->k", means, coef) + np.log(priors)
    logits -= logits.max(axis=1, keepdims=True)
    P = np.exp(logits)
    P /= P.sum(axis=1, keepdims=True)
    s_lda = P[np.arange(n), y].mean()
    return float(s_en + s_lda)
