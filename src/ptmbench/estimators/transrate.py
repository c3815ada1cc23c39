"""TransRate (Huang, Huang, Ren and Wu, "Frustratingly easy transferability estimation", ICML 2022).

The function :func:`transrate` reads the shared statistics of one (PTM, task) (:class:`ptmbench.estimators.stats.Stats`:
validated features and labels, the class-grouped pass, seeded subsamples); its docstring gives the
definition in the paper's notation. The registry (:mod:`ptmbench.estimators.transferability`) registers it
with ``KINDS`` (the task kinds it is defined for), ``DEFAULTS`` (its parameters, config
``transferability.transrate``) and ``SHARED_PASS`` (whether it reads the pass over every example).

Kinds: classification only. Cost: K + 1 Cholesky factorisations of D x D matrices after the shared pass
(every example); no subsample.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import blas

from ._common import logdet_pd
from .stats import Stats

KINDS = ("classification",)
DEFAULTS = {"eps": 1e-4}
SHARED_PASS = True


def coding_rate(ZtZ, n, eps):
    """R(Z) = 1/2 log det(I + Z^T Z / (n eps)) from Z^T Z (D x D; only its lower triangle is read) and
    n = the rows of Z."""
    A = ZtZ / (n * eps)
    A[np.diag_indices_from(A)] += 1.0
    return 0.5 * logdet_pd(A, "transrate", "I + Z^T Z / (n eps)")


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
