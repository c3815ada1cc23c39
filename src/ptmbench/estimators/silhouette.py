"""Mean silhouette coefficient of the target classes in feature space (Meiseles and Rokach, "Source
model selection for deep learning in the time series domain", IEEE Access 8, 2020).

On the examples ``x_1..x_n`` (a seeded uniform subsample of at most ``max_examples``), with Euclidean
distances ``d(i, j) = ||x_i - x_j||``, ``C(i)`` the class of example i and ``n_c`` the size of class c:

    a(i) = 1/(n_{C(i)} - 1) sum_{j in C(i), j != i} d(i, j)       (mean distance within its class)
    b(i) = min_{c != C(i)} 1/n_c sum_{j in c} d(i, j)              (mean distance to the nearest other class)
    s(i) = (b(i) - a(i)) / max(a(i), b(i)),   s(i) = 0 when i is alone in its class,

    silhouette = (1/n) sum_i s(i)          (in [-1, 1]; higher = classes better separated),

scikit-learn's ``silhouette_score(X, y, metric="euclidean")`` (also 0 where a(i) = b(i) = 0, i.e.
duplicate rows). Classes are those present in the subsample (at least two).

Kinds: classification only. Cost: O(n^2 D) for the distances, hence the subsample
(``max_examples`` = 2,000).
"""

from __future__ import annotations

import numpy as np

from ._common import classification_inputs, subsample

KINDS = ("classification",)
DEFAULTS = {"max_examples": 2000, "seed": 0}


def silhouette(features: np.ndarray, labels: np.ndarray, max_examples: int | None = 2000, seed: int = 0) -> float:
    """Mean silhouette coefficient of the N x D ``features`` for the integer ``labels`` (see the module
    docstring)."""
    F, y, _ = classification_inputs(features, labels, "silhouette")
    idx = subsample(F.shape[0], max_examples, seed, "silhouette")
    X = (F if idx is None else F[idx]).astype(np.float64)
    return _silhouette(X, y if idx is None else y[idx])


def from_stats(st, max_examples: int | None = 2000, seed: int = 0) -> float:
    """:func:`silhouette` on the shared statistics' subsample (``st.sample``: the same seeded rows, shared
    with the estimators of the same cap and seed)."""
    st.require_variance("silhouette")
    return _silhouette(*st.sample("silhouette", max_examples, seed))


def _silhouette(X, y):
    """The mean silhouette of the rows of X (float64, not modified) for the class codes y."""
    classes, y = np.unique(y, return_inverse=True)
    K, n = len(classes), len(y)
    if K < 2:
        raise ValueError(f"silhouette: one class in the subsample of {n} examples; raise silhouette.max_examples")
    X = X - X.mean(axis=0)  # distances are unchanged; the Gram trick below loses less to rounding
    sq = np.einsum("ij,ij->i", X, X)
    D2 = sq[:, None] + sq[None, :] - 2 * (X @ X.T)
    np.maximum(D2, 0, out=D2)
    np.fill_diagonal(D2, 0)
    dist = np.sqrt(D2, out=D2)
    onehot = np.zeros((n, K))
    onehot[np.arange(n), y] = 1.0
    counts = onehot.sum(axis=0)
    per_class = dist @ onehot  # n x K: sum of the distances to each class's rows
    own = counts[y] - 1
    a = per_class[np.arange(n), y] / np.maximum(own, 1)
    mean_other = per_class / counts
    mean_other[np.arange(n), y] = np.inf
    b = mean_other.min(axis=1)
    den = np.maximum(a, b)
    s = np.where((own > 0) & (den > 0), (b - a) / np.where(den > 0, den, 1.0), 0.0)
    return float(s.mean())
