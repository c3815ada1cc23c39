"""Shrinkage H-score (Ibrahim, Ponomareva and Mazumder, "Newer is not always better: rethinking
transferability metrics, their peculiarities, stability and performance", ICLR 2022).

The function :func:`hscore` reads the shared statistics of one (PTM, task) (:class:`ptmbench.estimators.stats.Stats`:
validated features and labels, the class-grouped pass, seeded subsamples); its docstring gives the
definition in the paper's notation. The registry (:mod:`ptmbench.estimators.transferability`) registers it
with ``KINDS`` (the task kinds it is defined for), ``DEFAULTS`` (its parameters, config
``transferability.hscore``) and ``SHARED_PASS`` (whether it reads the pass over every example).

Kinds: classification only. Cost: D x D work after the shared pass (every example); no subsample.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import solve_triangular

from ._common import chol
from .stats import Stats

KINDS = ("classification",)
DEFAULTS = {}
SHARED_PASS = True


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
    L = chol(sigma, "hscore", "the shrunk feature covariance")
    g = st.class_sum / st.counts[:, None] - st.mean  # centred class means (K x D)
    W = solve_triangular(L, (g * np.sqrt(st.counts / st.N)[:, None]).T, lower=True)
    return (1 - alpha) * np.sum(W * W)
