"""Gaussian Bhattacharyya Coefficient (GBC; Pándy et al., "Transferability estimation using
Bhattacharyya class separability", CVPR 2022).

Each class c of the target task is modelled as a Gaussian ``N(mu_c, Sigma_c)`` in the PCA-reduced
feature space (``n_components`` = 64 leading principal components of every example, as in the
paper), with ``Sigma_c`` diagonal (``gaussian_type="diagonal"``: the per-dimension variances
``sigma_c^2``) or spherical (``"spherical"``, the authors' default: ``s_c I`` with ``s_c`` the mean of
those variances). Variances are the biased ones (divided by N_c), each floored at 1e-4 before the
spherical mean, as in the authors' code (a class with one example, or a constant component, has
variance 0). With
``Sigma = (Sigma_i + Sigma_j) / 2`` the Bhattacharyya distance between classes i and j is

    D_B(i, j) = 1/8 (mu_i - mu_j)^T Sigma^-1 (mu_i - mu_j)
                + 1/2 ln( det Sigma / sqrt(det Sigma_i det Sigma_j) ),

the Bhattacharyya coefficient ``BC(i, j) = exp(-D_B(i, j))`` (1 for identical Gaussians, 0 for
separated ones), and

    GBC = - sum_{i != j} BC(i, j)          (ordered pairs; higher = more separable = more transferable).

The spherical log-determinant is ``d ln s`` for the d reduced dimensions (the paper's formula; the
authors' TensorFlow code sums the logarithm of the scalar once, without the factor d).

Kinds: classification only (classes are needed). Cost: one D x D scatter pass over every example
(O(N D^2)) and its eigendecomposition, then O(N d + K^2 d); no subsample. In the registry
(:func:`from_stats`) the scatter, the class means and the class covariances come from the shared pass
(:class:`ptmbench.estimators.stats.Stats`), which leaves the 64 leading eigenvectors and K products
``V^T (F_k^T F_k) V``: no pass of its own.
"""

from __future__ import annotations

import numpy as np

from ._common import check_components, class_stats, classification_inputs, pca_basis, project

KINDS = ("classification",)
DEFAULTS = {"n_components": 64, "gaussian_type": "spherical"}
VARIANCE_FLOOR = 1e-4  # the authors' floor on a class's variance


def gbc(features: np.ndarray, labels: np.ndarray, n_components: int = 64,
        gaussian_type: str = "spherical") -> float:
    """GBC of the N x D ``features`` for the integer ``labels`` (see the module docstring)."""
    if gaussian_type not in ("diagonal", "spherical"):
        raise ValueError(f"gbc.gaussian_type must be 'diagonal' or 'spherical', got {gaussian_type!r}")
    F, y, K = classification_inputs(features, labels, "gbc")
    mean, V = pca_basis(F, n_components, "gbc")
    X = project(F, mean, V)
    _, mu, var = class_stats(X, y, K)
    return _gbc(mu, var, gaussian_type)


def from_stats(st, n_components: int = 64, gaussian_type: str = "spherical") -> float:
    """:func:`gbc` from the shared statistics ``st`` (:class:`ptmbench.estimators.stats.Stats`): the PCA
    from the shared covariance, each class's mean and per-component variance ``diag(V^T Cov_k V)`` from
    its Gram matrix and sum. The same value as :func:`gbc` up to rounding (a test compares them); with
    fewer examples than dimensions (N <= D) it calls :func:`gbc` (the PCA then comes from the N x N
    Gram matrix)."""
    if gaussian_type not in ("diagonal", "spherical"):
        raise ValueError(f"gbc.gaussian_type must be 'diagonal' or 'spherical', got {gaussian_type!r}")
    check_components(n_components, "gbc")
    if st.N <= st.D:
        return gbc(st.F, st.y, n_components, gaussian_type)
    st.require_variance("gbc")
    _, V = st.leading(min(n_components, st.N - 1))
    mu = (st.class_sum / st.counts[:, None] - st.mean) @ V
    var = np.maximum(np.diagonal(st.class_cov(V), axis1=1, axis2=2), 0.0)
    return _gbc(mu, var, gaussian_type)


def _gbc(mu, var, gaussian_type):
    """GBC from the K x d class means and biased variances in the reduced space."""
    d = mu.shape[1]
    var = np.maximum(var, VARIANCE_FLOOR)  # per dimension, then averaged if spherical (the authors' order)
    if gaussian_type == "spherical":
        var = np.repeat(var.mean(axis=1, keepdims=True), d, axis=1)
    avg = (var[:, None, :] + var[None, :, :]) / 2  # K x K x d
    diff = mu[:, None, :] - mu[None, :, :]
    logv = np.log(var)
    db = (diff**2 / avg).sum(axis=2) / 8 + 0.5 * (np.log(avg).sum(axis=2)
                                                  - 0.5 * (logv.sum(axis=1)[:, None] + logv.sum(axis=1)[None, :]))
    bc = np.exp(-db)
    np.fill_diagonal(bc, 0.0)
    return float(-bc.sum())
