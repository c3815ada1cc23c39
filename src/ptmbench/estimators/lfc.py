"""Label-Feature Correlation (LFC; Deshpande et al., "A linearized framework and a new benchmark for
model selection for fine-tuning", arXiv:2102.00084, 2021).

The linearised model's kernel on the target examples is approximated by the features' Gram matrix
``Theta = F F^T`` (N x N), the labels' by ``Y``; each is centred by subtracting the mean of all its
N^2 entries (``Theta~ = Theta - mean(Theta)``, ``Y~ = Y - mean(Y)``) and

    LFC = <Theta~, Y~>_F / ( ||Theta~||_F ||Y~||_F ),

the correlation of the two kernels' entries (in [-1, 1]; higher = the feature similarity follows the
label similarity). Classification: ``Y_ij = +1`` if ``y_i = y_j`` else ``-1`` (the paper's label
similarity matrix). Regression (this project's choice): ``Y = t t^T`` with ``t`` the standardised
targets, which is the same matrix as the +-1 one for a two-class task whose labels are coded +-1.
(Bai et al.'s re-implementation divides by the matrices' spectral norms; the paper's correlation
uses Frobenius norms, as here.)

Nothing N x N is formed: with ``m`` the feature mean, ``Z = F - 1 m^T``, ``C = Z^T Z`` (D x D),
``z_c`` the sum of class c's rows of Z and ``N_c`` its size,
``Theta~ = 1 u^T + u 1^T + Z Z^T`` with ``u = Z m``, so ``||Theta~||_F^2 = ||C||_F^2 + 2 N m^T C m``,
``<Theta~, Y> = 2 sum_c ||z_c||^2 + 4 sum_c N_c z_c . m`` (classification; ``mean(Y)`` drops out
because ``Theta~`` sums to 0), ``||Y~||_F^2 = N^2 (1 - mean(Y)^2)`` with
``mean(Y) = (2 sum_c N_c^2 - N^2) / N^2``; regression: ``<Theta~, t t^T> = ||Z^T t||^2``,
``||t t^T||_F = ||t||^2 = N``.

Kinds: classification and regression. Cost: one D x D scatter pass over every example (O(N D^2),
or the N x N Gram matrix when N < D); no subsample. In the registry (:func:`from_stats`) ``C``, ``m``,
the class sums and ``F^T t`` come from the shared pass (:class:`ptmbench.estimators.stats.Stats`): D x D
work only.
"""

from __future__ import annotations

import numpy as np

from ._common import class_sums, classification_inputs, is_regression, regression_inputs, scatter

KINDS = ("classification", "regression")
DEFAULTS: dict = {}


def lfc(features: np.ndarray, labels: np.ndarray) -> float:
    """LFC of the N x D ``features`` for ``labels``: integer class labels, or float targets of a
    regression task (see the module docstring)."""
    regression = is_regression(labels)
    if regression:
        F, t = regression_inputs(features, labels, "lfc")
    else:
        F, y, K = classification_inputs(features, labels, "lfc")
    N, D = F.shape
    m = F.mean(axis=0, dtype=np.float64)
    if N < D:
        Z = F.astype(np.float64) - m
        G = Z @ Z.T  # ||Z^T Z||_F = ||Z Z^T||_F and m^T Z^T Z m = ||Z m||^2
        c2, mcm = np.sum(G * G), np.sum((Z @ m) ** 2)
    else:
        C = scatter(F, m)
        c2, mcm = np.sum(C * C), m @ C @ m
    theta2 = c2 + 2 * N * mcm
    if regression:
        t = (t - t.mean()) / t.std()
        zt = np.zeros(D)
        for start in range(0, N, 8192):
            zt += t[start:start + 8192] @ (F[start:start + 8192].astype(np.float64) - m)
        return _regression(theta2, zt, N)
    counts = np.bincount(y, minlength=K).astype(np.float64)
    return _classification(theta2, class_sums(F, y, K) - counts[:, None] * m, counts, m, N)


def from_stats(st) -> float:
    """:func:`lfc` from the shared statistics ``st`` (:class:`ptmbench.estimators.stats.Stats`): ``C = N cov``,
    the mean, the class sums and (regression) ``F^T t`` of the shared pass. The same value as :func:`lfc`
    up to rounding (a test compares them); with fewer examples than dimensions it calls :func:`lfc`."""
    if st.N < st.D:
        return lfc(st.F, st.y)
    N, m = st.N, st.mean
    C = st.cov * N
    theta2 = np.sum(C * C) + 2 * N * (m @ C @ m)
    if st.kind == "regression":
        t = st.y
        sd = t.std()
        if not sd > 0:
            raise ValueError(f"lfc: every target is {t[0]}; the score is undefined for a constant target")
        # Z^T t~ = Z^T (t - mean t) / sd = (F^T t - m sum t) / sd, F^T t from the pass
        return _regression(theta2, (st.xty[:, 0] - m * t.sum()) / sd, N)
    counts = st.counts.astype(np.float64)
    return _classification(theta2, st.class_sum - counts[:, None] * m, counts, m, N)


def _regression(theta2, zt, N):
    _check_kernel(theta2)
    return float(zt @ zt / (N * np.sqrt(theta2)))


def _check_kernel(theta2):
    if not theta2 > 0:
        raise ValueError("lfc: the centred feature kernel is 0 (constant features); LFC is undefined")


def _classification(theta2, zc, counts, m, N):
    """LFC from ||Theta~||_F^2, the centred class sums (K x D), the class sizes and the mean."""
    _check_kernel(theta2)
    inner = 2 * np.sum(zc * zc) + 4 * counts @ (zc @ m)
    ybar = (2 * counts @ counts - N * N) / N**2
    y2 = N * N * (1 - ybar * ybar)
    if not y2 > 0:
        raise ValueError("lfc: the label kernel is constant; LFC is undefined")
    return float(inner / np.sqrt(theta2 * y2))
