"""PACTran-Gaussian (Ding et al., "PACTran: PAC-Bayesian metrics for estimating the transferability
of pretrained models to classification tasks", ECCV 2022).

Of the paper's three variants (PACTran-Dirichlet and PACTran-Gamma, which need the source model's
class probabilities, and PACTran-Gaussian on the features) this is **PACTran-Gaussian**, the one
that reads only the features; its definition follows the authors' code (google-research/
pactran_metrics, ``calculate_pac_gauss``).

On the examples ``x_1..x_n`` (a seeded uniform subsample of at most ``max_examples``, 2,000: the
rows SFDA, kNN, PARC and the silhouette use too; the authors' code caps at 8,000, which cost 1.25 s
of CPU against 0.19 s at 2,000 on the bench's 100,000 x 768 features, for -0.567 against -0.566)
with one-hot labels over the K classes present, a linear softmax classifier
``theta = (W, b)`` (W: D x K; the L2 term is the Gaussian prior's) is fitted by minimising

    L(theta) = (1/n) sum_i -log softmax(W^T x_i + b)_{y_i}  +  ||W||^2 / (2 beta),   beta = lambda n

(``lambda`` = ``lda_factor``; L-BFGS, at most ``max_iter`` iterations, tolerance ``tol``, as the
authors' ``maxiter=100, tol=1e-6``). With the softmax probabilities ``p_ik`` at the minimiser
theta*, the diagonal of the Hessian as the authors compute it,
``h_dk = sum_i x_id^2 p_ik (1 - p_ik) + 1/beta`` for the weights and
``h_k = sum_i p_ik (1 - p_ik)`` for the biases, gives the posterior precision
``sigma^-2 = beta (sum h) / (D K) + 1e-10``, and with the prior variance ``sigma_0^2 = s2 / D``
(``s2`` = ``prior_variance``):

    PACTran = L(theta*) + (D K / (2 beta)) sigma_0^2 ln(sigma^-2)

(the bound on the generalisation error: LOWER is better). This function returns **-PACTran**, so
that higher = more transferable, as for every estimator here.

The classifier is fitted on centred features (the same minimiser and L, with the bias absorbing the
mean: better conditioned) from theta = 0 (the authors start from N(0, 0.03^2) weights; at the
minimiser the score does not depend on the start); the Hessian uses the features as given, as the
authors'. Defaults: ``lda_factor`` = 1 and ``prior_variance`` = 10 (sigma_0^2 = 10 / D), one of the
authors' settings for lambda = 1 (they report s2 in {10, 1, 0.1}) and the one the ETran authors ran
as PACTran's baseline.

Kinds: classification only (a softmax classifier). Cost: O(n D K) per L-BFGS iteration, at most
``max_iter`` (100) iterations, on at most ``max_examples`` (2,000) rows.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from ._common import classification_inputs, subsample

KINDS = ("classification",)
DEFAULTS = {"lda_factor": 1.0, "prior_variance": 10.0, "max_iter": 100, "tol": 1e-6, "max_examples": 2000,
            "seed": 0}


def pactran(features: np.ndarray, labels: np.ndarray, lda_factor: float = 1.0, prior_variance: float = 10.0,
            max_iter: int = 100, tol: float = 1e-6, max_examples: int | None = 2000, seed: int = 0) -> float:
    """-PACTran-Gaussian of the N x D ``features`` for the integer ``labels`` (see the module docstring)."""
    if not lda_factor > 0 or not prior_variance > 0:
        raise ValueError(f"pactran: lda_factor and prior_variance must be > 0, got {lda_factor}, {prior_variance}")
    F, y, _ = classification_inputs(features, labels, "pactran")
    idx = subsample(F.shape[0], max_examples, seed, "pactran")
    X = (F if idx is None else F[idx]).astype(np.float64)
    return _pactran(X, y if idx is None else y[idx], lda_factor, prior_variance, max_iter, tol)


def from_stats(st, lda_factor: float = 1.0, prior_variance: float = 10.0, max_iter: int = 100, tol: float = 1e-6,
               max_examples: int | None = 2000, seed: int = 0) -> float:
    """:func:`pactran` on the shared statistics' subsample (``st.sample``: the same seeded rows)."""
    if not lda_factor > 0 or not prior_variance > 0:
        raise ValueError(f"pactran: lda_factor and prior_variance must be > 0, got {lda_factor}, {prior_variance}")
    st.require_variance("pactran")
    return _pactran(*st.sample("pactran", max_examples, seed), lda_factor, prior_variance, max_iter, tol)


def _pactran(X, y, lda_factor, prior_variance, max_iter, tol):
    """-PACTran of the rows of X (float64, not modified) for the class codes y."""
    classes, y = np.unique(y, return_inverse=True)
    K = len(classes)
    if K < 2:
        raise ValueError(f"pactran: one class in the subsample of {len(y)} examples; raise pactran.max_examples")
    n, D = X.shape
    beta = lda_factor * n
    Xc = X - X.mean(axis=0)
    XcT = np.ascontiguousarray(Xc.T)
    rows = (y, np.arange(n))
    T = np.zeros((K, n))
    T[rows] = 1.0

    def probs(w):
        Z = w[:D * K].reshape(K, D) @ XcT + w[D * K:, None]
        Z -= Z.max(axis=0)
        E = np.exp(Z)
        s = E.sum(axis=0)
        return Z, E / s, s

    def loss_grad(w):
        Wt = w[:D * K].reshape(K, D)
        Z, P, s = probs(w)
        loss = (np.log(s).sum() - Z[rows].sum()) / n + 0.5 * np.sum(Wt * Wt) / beta
        R = (P - T) / n
        return loss, np.concatenate([(R @ Xc + Wt / beta).ravel(), R.sum(axis=1)])

    res = minimize(loss_grad, np.zeros(D * K + K), jac=True, method="L-BFGS-B", tol=tol,
                   options={"maxiter": max_iter})
    loss = loss_grad(res.x)[0]
    _, P, _ = probs(res.x)
    V = P * (1 - P)  # K x n
    h = np.sum(V @ (X * X)) + D * K / beta + V.sum()
    sigma2_inv = h * beta / (D * K) + 1e-10
    pac = loss + 0.5 * D * K / beta * (prior_variance / D) * np.log(sigma2_inv)
    return float(-pac)
