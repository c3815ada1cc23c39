"""SFDA, self-challenging Fisher discriminant analysis (Shao et al., "Not all models are equal: predicting
model transferability in a self-challenging Fisher space", ECCV 2022).

The function :func:`sfda` reads the shared statistics of one (PTM, task) (:class:`ptmbench.estimators.stats.Stats`:
validated features and labels, the class-grouped pass, seeded subsamples); its docstring gives the
definition in the paper's notation. The registry (:mod:`ptmbench.estimators.transferability`) registers it
with ``KINDS`` (the task kinds it is defined for), ``DEFAULTS`` (its parameters, config
``transferability.sfda``) and ``SHARED_PASS`` (whether it reads the pass over every example).

Kinds: classification only. Cost: two n x D scatter matrices and Cholesky factorisations on the subsample
(``max_examples`` = 2,000).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import cho_solve

from ._common import chol, class_codes, power_top, softmax
from .stats import Stats

KINDS = ("classification",)
DEFAULTS = {"max_examples": 2000, "seed": 0}
SHARED_PASS = True


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
    L = chol(Sw_l, "sfda", "the regularised within-class scatter")
    coef = cho_solve((L, True), means.T).T  # means Sw_l^-1  (K x D)
    intercept = -0.5 * np.einsum("kd,kd->k", means, coef) + np.log(priors)
    return softmax(X @ coef.T + intercept), shrinkage, means


def _class_means(X, y, K, counts):
    """K x D class means: one (K x n) @ (n x D) product."""
    onehot = np.zeros((K, len(y)))
    onehot[y, np.arange(len(y))] = 1.0
    return onehot @ X / counts[:, None]


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
    counts = class_codes(y, K, "sfda (in its subsample)")
    priors = counts / len(y)
    P1, lam, means = _fda_proba(X, y, K, priors)
    soft = softmax(P1)[np.arange(len(y)), y][:, None]
    others = (means.sum(axis=0) - means) / (K - 1)
    Xm = soft * X + (1 - soft) * others[y]
    P2, _, _ = _fda_proba(Xm, y, K, priors, lam)
    return P2[np.arange(len(y)), y].mean()
