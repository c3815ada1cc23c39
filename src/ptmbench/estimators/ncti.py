"""NCTI, Neural Collapse informed Transferability Index (Wang et al., "How far pre-trained models
are from neural collapse on the target dataset informs their transferability", ICCV 2023).

Neural collapse at the end of fine-tuning has three signs, each measured on the pre-trained
features ``x_1..x_N`` of the target task, as in the authors' code (BUserName/NCTI, ``NCTI_Score``):

1. features are reduced to their ``n_components`` (64) leading principal components (exact PCA;
   ``ev_j`` the variances of the components, divided by N - 1 as scikit-learn's
   ``explained_variance_``);
2. linear discriminant analysis (scikit-learn's ``LinearDiscriminantAnalysis``) with shrinkage
   ``s = max(exp(-sum_{j <= shrink_components} ev_j), 1e-10)`` (``shrink_components`` = 32): priors
   ``pi_k``, class means ``mu_k``, within scatter ``S_w = sum_k pi_k Cov(X_k)`` shrunk to
   ``(1 - s) S_w + s (tr S_w / d) I``, the between scatter from the shrunk total covariance, the
   discriminant directions E (the generalised eigenvectors, ``E^T S_w E = I``) and the posteriors
   ``P(k | x) = softmax_k(mu_k^T S_w^-1 x - 1/2 mu_k^T S_w^-1 mu_k + ln pi_k)``. (At the floor
   s = 1e-10 the authors switch to scikit-learn's SVD solver, which gives the same posteriors and
   discriminant coordinates up to rounding and sign when the within-class scatter is regular, and
   keeps only its range when it is not (fewer than d + K examples); that solver is used here too.
   The test compares both regimes with scikit-learn.)
3. the three terms (higher = closer to collapse, except S_vc):
   - simplex ETF (class means spread apart): ``S_etf = ||H||_*``, the nuclear norm of the N x (K - 1)
     discriminant coordinates ``H = X E_{K-1}``, centred;
   - nearest-centre classifier (LDA is the nearest class centre in the whitened space):
     ``S_ncc = (1/N) sum_i P(y_i | x_i)``;
   - within-class variability: ``S_vc = ln sum_c ||P_c||_*``, ``P_c`` the N_c x K posteriors of
     class c's examples (lower = less variability).

The paper's NCTI is defined over a zoo of models on one task: each term is min-max normalised over
the models, ``NCTI = S_etf' + S_ncc' - S_vc'`` (:func:`ncti_zoo`). A single model's value, which
is what this registry's per-(PTM, task) estimators give, is the unnormalised
``S_etf + S_ncc - S_vc`` (:func:`ncti`); its three terms are :func:`ncti_terms`. The unnormalised
sum is dominated by S_etf (which grows as sqrt(N)); rank PTMs with :func:`ncti_zoo` where every
PTM's terms are at hand.

Kinds: classification only. Cost: one D x D scatter pass over every example (O(N D^2)) and its
eigendecomposition, then O(N d^2) with d = 64; no subsample. In the registry (:func:`from_stats`)
the PCA, the class means and the within and total scatter come from the shared pass
(:class:`ptmbench.estimators.stats.Stats`) and the LDA is solved on d x d matrices; the only work on
the rows is one N x D x (2K - 1) product for the posteriors and the discriminant coordinates.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.linalg import eigh, svd

from ._common import check_components, class_stats, classification_inputs, pca_basis, project

KINDS = ("classification",)
DEFAULTS = {"n_components": 64, "shrink_components": 32}
SHRINKAGE_FLOOR = 1e-10


class NCTITerms(NamedTuple):
    s_etf: float  # nuclear norm of the centred discriminant coordinates (higher = better)
    s_ncc: float  # mean LDA posterior of the true class (higher = better)
    s_vc: float  # log of the summed per-class nuclear norms of the posteriors (lower = better)


def _nuclear(A):
    """||A||_* from the eigenvalues of the small Gram matrix A^T A."""
    return float(np.sqrt(np.maximum(np.linalg.eigvalsh(A.T @ A), 0)).sum())


def _shrunk_eigvecs(Sw, St, s, d):
    """The generalised eigenvectors of (S_t - S_w, S_w) after shrinking both towards ``trace/d``
    (scikit-learn's 'eigen' solver), by decreasing eigenvalue."""
    Sw_s = (1 - s) * Sw
    Sw_s[np.diag_indices(d)] += s * np.trace(Sw) / d
    St_s = (1 - s) * St
    St_s[np.diag_indices(d)] += s * np.trace(St) / d
    try:
        w, E = eigh(St_s - Sw_s, Sw_s)
    except np.linalg.LinAlgError as err:
        raise ValueError("ncti: the within-class scatter is singular (constant or duplicate features with "
                         "too few examples?)") from err
    return E[:, np.argsort(w)[::-1]]


def _lda_eigen(X, y, K, counts, means, priors, s):
    """scikit-learn's LDA 'eigen' solver with shrinkage s: (logits N x K, discriminant coordinates)."""
    N, d = X.shape
    R = (X - means[y]) * np.sqrt(priors / counts)[y][:, None]
    Sw = R.T @ R  # sum_k pi_k Cov(X_k), biased
    St = X.T @ X / N  # X is centred
    E = _shrunk_eigvecs(Sw, St, s, d)
    coef = means @ E @ E.T  # mu_k^T S_w^-1
    logits = X @ coef.T - 0.5 * np.einsum("kd,kd->k", means, coef) + np.log(priors)
    return logits, X @ E[:, :min(K - 1, d)]


def _lda_svd(X, y, K, counts, means, priors, tol=1e-4):
    """scikit-learn's LDA 'svd' solver (no shrinkage; the authors' choice at the shrinkage floor): the
    within-class data standardised and whitened by its SVD, keeping singular values above ``tol``
    (so only the range of the within-class scatter when N < d + K), then the between-class SVD.
    Returns (logits N x K, discriminant coordinates)."""
    N, d = X.shape
    Xc = X - means[y]
    std = Xc.std(axis=0)
    std[std == 0] = 1.0
    _, S, Vt = svd(Xc / std / np.sqrt(N), full_matrices=False, check_finite=False)
    r = int(np.sum(S > tol))
    W = (Vt[:r] / std).T / S[:r]
    xbar = priors @ means
    _, S2, Vt2 = svd((np.sqrt(counts / (K - 1))[:, None] * (means - xbar)) @ W, full_matrices=False,
                     check_finite=False)
    scalings = W @ Vt2.T[:, :int(np.sum(S2 > tol * S2[0]))]
    coef = (means - xbar) @ scalings
    intercept = -0.5 * np.sum(coef**2, axis=1) + np.log(priors)
    coef = coef @ scalings.T
    logits = X @ coef.T + intercept - xbar @ coef.T
    return logits, (X - xbar) @ scalings[:, :min(K - 1, d)]


def ncti_terms(features: np.ndarray, labels: np.ndarray, n_components: int = 64,
               shrink_components: int = 32) -> NCTITerms:
    """The three NCTI terms of the N x D ``features`` for the integer ``labels`` (module docstring)."""
    if isinstance(shrink_components, bool) or not isinstance(shrink_components, int) or shrink_components < 1:
        raise ValueError(f"ncti.shrink_components must be an integer >= 1, got {shrink_components!r}")
    F, y, K = classification_inputs(features, labels, "ncti")
    N = F.shape[0]
    mean, V = pca_basis(F, n_components, "ncti")
    X = project(F, mean, V)
    ev = X.var(axis=0, ddof=1)  # the components' variances (descending)
    s = max(np.exp(-ev[:shrink_components].sum()), SHRINKAGE_FLOOR)
    counts, means, _ = class_stats(X, y, K)
    priors = counts / N
    if s == SHRINKAGE_FLOOR:
        logits, H = _lda_svd(X, y, K, counts, means, priors)
    else:
        logits, H = _lda_eigen(X, y, K, counts, means, priors, s)
    logits -= logits.max(axis=1, keepdims=True)
    P = np.exp(logits)
    P /= P.sum(axis=1, keepdims=True)
    H -= H.mean(axis=0)
    s_ncc = P[np.arange(N), y].mean()
    s_vc = np.log(sum(_nuclear(P[y == c]) for c in range(K)))
    return NCTITerms(_nuclear(H), float(s_ncc), float(s_vc))


def _terms_from_scatter(rows, Sw, St, means, priors, counts, y, s, K):
    """The three terms from d x d statistics: ``rows(M)`` = X M for a d x q matrix M (X the N x d
    centred PCA coordinates, never formed), ``Sw`` = sum_k pi_k Cov(X_k), ``St`` = X^T X / N, the K x d
    class means, priors and counts, the codes y and the shrinkage s (the floor: the SVD solver)."""
    d = Sw.shape[0]
    q = min(K - 1, d)
    if s == SHRINKAGE_FLOOR:  # scikit-learn's SVD solver, from the eigendecomposition of the scatter
        std = np.sqrt(np.maximum(np.diag(Sw), 0))
        std[std == 0] = 1.0
        lam, U = np.linalg.eigh(Sw / np.outer(std, std))  # = the squared singular values of Xc / std / sqrt(N)
        lam, U = lam[::-1], U[:, ::-1]
        S = np.sqrt(np.maximum(lam, 0))
        r = int(np.sum(S > 1e-4))
        W = (U[:, :r].T / std).T / S[:r]
        xbar = priors @ means
        _, S2, Vt2 = svd((np.sqrt(counts / (K - 1))[:, None] * (means - xbar)) @ W, full_matrices=False,
                         check_finite=False)
        scalings = W @ Vt2.T[:, :int(np.sum(S2 > 1e-4 * S2[0]))]
        coef = (means - xbar) @ scalings
        intercept = -0.5 * np.sum(coef**2, axis=1) + np.log(priors)
        coef = coef @ scalings.T
        intercept = intercept - xbar @ coef.T
        proj, shift = scalings[:, :q], xbar @ scalings[:, :q]
    else:
        E = _shrunk_eigvecs(Sw, St, s, d)
        coef = means @ E @ E.T
        intercept = -0.5 * np.einsum("kd,kd->k", means, coef) + np.log(priors)
        proj, shift = E[:, :q], np.zeros(q)
    out = rows(np.hstack([coef.T, proj]))
    logits = out[:, :K] + intercept
    H = out[:, K:] - shift
    logits -= logits.max(axis=1, keepdims=True)
    P = np.exp(logits)
    P /= P.sum(axis=1, keepdims=True)
    H -= H.mean(axis=0)
    N = len(y)
    s_ncc = P[np.arange(N), y].mean()
    s_vc = np.log(sum(_nuclear(P[y == c]) for c in range(K)))
    return NCTITerms(_nuclear(H), float(s_ncc), float(s_vc))


def terms_from_stats(st, n_components: int = 64, shrink_components: int = 32) -> NCTITerms:
    """:func:`ncti_terms` from the shared statistics ``st`` (:class:`ptmbench.estimators.stats.Stats`): the
    PCA from the shared covariance, the class means and the within scatter ``V^T (sum_k pi_k Cov_k) V``
    from the per-class Gram matrices, so the rows are read once, by one N x D x (2K - 1) product
    (posteriors and discriminant coordinates). The same terms as :func:`ncti_terms` up to rounding (a
    test compares them); with fewer examples than dimensions (N <= D) it calls :func:`ncti_terms`."""
    if isinstance(shrink_components, bool) or not isinstance(shrink_components, int) or shrink_components < 1:
        raise ValueError(f"ncti.shrink_components must be an integer >= 1, got {shrink_components!r}")
    check_components(n_components, "ncti")
    if st.N <= st.D:
        return ncti_terms(st.F, st.y, n_components, shrink_components)
    st.require_variance("ncti")
    N, K = st.N, st.K
    w, V = st.leading(min(n_components, N - 1))
    ev = w * N / (N - 1)
    s = max(np.exp(-ev[:shrink_components].sum()), SHRINKAGE_FLOOR)
    counts = st.counts.astype(np.float64)
    priors = counts / N
    means = (st.class_sum / counts[:, None] - st.mean) @ V
    Sw = np.einsum("k,kij->ij", priors, st.class_cov(V))
    St = V.T @ st.cov @ V
    dtype = np.float32 if st.F.dtype == np.float32 else np.float64  # the features' precision, as project()

    def rows(M):
        W = (V @ M).astype(dtype)
        out = np.empty((N, M.shape[1]))
        for start in range(0, N, 8192):
            out[start:start + 8192] = st.F[start:start + 8192] @ W
        return out - st.mean @ (V @ M)

    return _terms_from_scatter(rows, (Sw + Sw.T) / 2, (St + St.T) / 2, means, priors, counts, st.y, s, K)


def from_stats(st, n_components: int = 64, shrink_components: int = 32) -> float:
    """:func:`ncti` from the shared statistics (:func:`terms_from_stats`)."""
    t = terms_from_stats(st, n_components, shrink_components)
    return t.s_etf + t.s_ncc - t.s_vc


def ncti(features: np.ndarray, labels: np.ndarray, n_components: int = 64, shrink_components: int = 32) -> float:
    """One model's unnormalised NCTI, ``S_etf + S_ncc - S_vc`` (see the module docstring; the paper's
    score normalises each term over the models: :func:`ncti_zoo`)."""
    t = ncti_terms(features, labels, n_components, shrink_components)
    return t.s_etf + t.s_ncc - t.s_vc


def ncti_zoo(terms) -> np.ndarray:
    """The paper's NCTI of each model from their :class:`NCTITerms` (M >= 2 models, one task): every
    term min-max normalised over the models, ``S_etf' + S_ncc' - S_vc'`` (a term equal for every
    model contributes 0)."""
    T = np.asarray([tuple(t) for t in terms], dtype=np.float64)
    if T.ndim != 2 or T.shape[0] < 2 or T.shape[1] != 3:
        raise ValueError(f"ncti_zoo: need the three terms of at least two models, got shape {T.shape}")
    span = T.max(axis=0) - T.min(axis=0)
    Z = np.where(span > 0, (T - T.min(axis=0)) / np.where(span > 0, span, 1.0), 0.0)
    return Z[:, 0] + Z[:, 1] - Z[:, 2]
