"""PARC, Pairwise Annotation Representation Comparison (Bolya, Mittapalli and Hoffman, "Scalable
diverse model selection for accessible transfer learning", NeurIPS 2021).

On the examples ``x_1..x_n`` (a seeded uniform subsample of at most ``max_examples``): the features
are reduced to their ``n_components`` (32, as in the authors' code) leading principal components
(exact PCA on the subsample; the authors use scikit-learn's randomized PCA) and each component is
standardised (zero mean, unit variance, as scikit-learn's ``StandardScaler``). The correlation
between two examples depends on the components' signs; they follow scikit-learn's convention (each
component's largest-magnitude loading is positive). The representation
dissimilarity matrix of the features is ``D_F = 1 - corr(f_i, f_j)`` (Pearson correlation between
two examples' standardised feature vectors) and that of the labels ``D_Y``:

- classification: ``D_Y = 1 - corr(e_{y_i}, e_{y_j})`` of one-hot label vectors (0 for the same
  class, ``K / (K - 1)`` otherwise), as in the authors' code, with its ties exact (computed in
  floating point, ``1 - corrcoef`` leaves +-1e-16 on equal rows, which splits the ties and can move
  rho by several percent);
- regression (this project's choice; the paper's label RDM needs label vectors): ``D_Y = |y_i - y_j|``,
  the distance between the targets (Spearman's rho only uses its order).

With ``T(.)`` the n(n-1)/2 entries above the diagonal,

    PARC = 100 * rho_Spearman( T(D_F), T(D_Y) ).

Kinds: classification and regression. Cost: O(n^2 d) for the dissimilarities and O(n^2 log n) for
the ranks of the n(n-1)/2 pairs, hence the subsample (``max_examples`` = 1,000: 0.5 million pairs, the
rows NLEEP and the linear probe use; this project's cap for cost: at 2,000 rows, 2.0 million pairs,
PARC cost more than a fifth of LogME on the bench's 100,000 x 768 features).
"""

from __future__ import annotations

import numpy as np

from ._common import classification_inputs, is_regression, pca_basis, project, regression_inputs, subsample

KINDS = ("classification", "regression")
DEFAULTS = {"n_components": 32, "max_examples": 1000, "seed": 0}


def parc(features: np.ndarray, labels: np.ndarray, n_components: int = 32, max_examples: int | None = 1000,
         seed: int = 0) -> float:
    """PARC of the N x D ``features`` for ``labels``: integer class labels, or float targets of a
    regression task (see the module docstring)."""
    regression = is_regression(labels)
    if regression:
        F, t = regression_inputs(features, labels, "parc")
    else:
        F, t, K = classification_inputs(features, labels, "parc")
    idx = subsample(F.shape[0], max_examples, seed, "parc")
    if idx is not None:
        F, t = F[idx], t[idx]
    return _parc(F, t, regression, n_components)


def from_stats(st, n_components: int = 32, max_examples: int | None = 1000, seed: int = 0) -> float:
    """:func:`parc` on the shared statistics' subsample (``st.sample``: the same seeded rows, in float64)."""
    st.require_variance("parc")
    X, t = st.sample("parc", max_examples, seed)
    return _parc(X, t, st.kind == "regression", n_components)


def _ranks(x):
    """Average ranks (1-based) of x, ties sharing their mean rank: ``scipy.stats.rankdata(x)``, from one
    quicksort (rankdata's stable sort took 4.5 times as long on 2 million pairs)."""
    order = np.argsort(x)
    xs = x[order]
    new = np.empty(len(x), bool)
    new[0] = True
    np.not_equal(xs[1:], xs[:-1], out=new[1:])
    out = np.empty(len(x))
    if new.all():  # no ties (the features' dissimilarities, in practice)
        out[order] = np.arange(1, len(x) + 1)
        return out
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], len(x))
    out[order] = ((starts + 1 + ends) / 2)[np.cumsum(new) - 1]
    return out


def _parc(F, t, regression, n_components):
    """PARC of the rows of F (not modified) for class codes or float targets t."""
    if not regression and len(np.unique(t)) < 2:
        raise ValueError(f"parc: one class in the subsample of {len(t)} examples; raise parc.max_examples")
    mean, V = pca_basis(F, n_components, "parc")
    X = project(F, mean, V)
    sd = X.std(axis=0)
    X = X[:, sd > 0] / sd[sd > 0]  # StandardScaler (the mean is 0 after PCA)
    X -= X.mean(axis=1, keepdims=True)  # each example's vector centred and scaled: rows' Pearson r
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    if not np.all(norms > 0):
        raise ValueError("parc: an example's reduced feature vector is constant (its correlation with the "
                         "others is undefined); are the features degenerate (rank <= 1)?")
    X /= norms
    iu = np.triu(np.ones((len(X), len(X)), bool), 1)  # the pairs above the diagonal (a mask: faster than indices)
    dist_f = 1.0 - (X @ X.T)[iu]
    if regression:
        dist_y = np.abs(t[:, None] - t[None, :])[iu]
    else:
        dist_y = (t[:, None] != t[None, :])[iu].astype(np.float64)  # same order as 1 - corr(one-hots)
    if not np.any(dist_y != dist_y[0]):
        raise ValueError("parc: the label dissimilarities are all equal (one example per class?)")
    rf = _ranks(dist_f)
    # Spearman's rho is Pearson's r of the ranks; the ranks of a two-valued D_Y (classification) are an
    # affine function of it, so D_Y itself gives the same r without ranking 2 million pairs
    ry = _ranks(dist_y) if regression else dist_y
    rf -= rf.mean()
    ry = ry - ry.mean()
    return float(100.0 * (rf @ ry) / np.sqrt((rf @ rf) * (ry @ ry)))
