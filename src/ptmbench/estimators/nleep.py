"""NLEEP (Li et al., "Ranking neural checkpoints", CVPR 2021): LEEP with a Gaussian mixture.

The function :func:`nleep` reads the shared statistics of one (PTM, task) (:class:`ptmbench.estimators.stats.Stats`:
validated features and labels, the class-grouped pass, seeded subsamples); its docstring gives the
definition in the paper's notation. The registry (:mod:`ptmbench.estimators.transferability`) registers it
with ``KINDS`` (the task kinds it is defined for), ``DEFAULTS`` (its parameters, config
``transferability.nleep``) and ``SHARED_PASS`` (whether it reads the pass over every example).

Kinds: classification only. Cost: the PCA from the shared covariance (one D x D eigendecomposition), the
mixture on the subsample (``max_examples`` = 1,000).
"""

from __future__ import annotations

import numpy as np

from .stats import Stats

KINDS = ("classification",)
DEFAULTS = {"variance": 0.8, "components_per_class": 5, "covariance_type": "diag", "max_examples": 1000,
            "seed": 0}
SHARED_PASS = True


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
