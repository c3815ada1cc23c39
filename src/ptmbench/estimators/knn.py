"""Leave-one-out k-nearest-neighbour score of the features (cosine similarity of centred features).

The function :func:`knn` reads the shared statistics of one (PTM, task) (:class:`ptmbench.estimators.stats.Stats`:
validated features and labels, the class-grouped pass, seeded subsamples); its docstring gives the
definition in the paper's notation. The registry (:mod:`ptmbench.estimators.transferability`) registers it
with ``KINDS`` (the task kinds it is defined for), ``DEFAULTS`` (its parameters, config
``transferability.knn``) and ``SHARED_PASS`` (whether it reads the pass over every example).

Kinds: classification (accuracy) and regression (Pearson r). Cost: O(n^2 D) on the subsample
(``max_examples`` = 2,000).
"""

from __future__ import annotations

import numpy as np

from ._common import pearson
from .stats import Stats

KINDS = ("classification", "regression")
DEFAULTS = {"k": 10, "max_examples": 2000, "seed": 0}
SHARED_PASS = False


def _knn_neighbours(X, k):
    """Indices (n x k) of each row's k most cosine-similar other rows, after centring (float32)."""
    Z = (X - X.mean(axis=0)).astype(np.float32)
    norms = np.linalg.norm(Z, axis=1, keepdims=True)
    Z /= np.where(norms > 0, norms, 1.0)  # a row equal to the mean has similarity 0 to every row
    S = Z @ Z.T
    np.fill_diagonal(S, -np.inf)  # leave one out
    return np.argpartition(S, -k, axis=1)[:, -k:]


def knn(st: Stats, k, max_examples, seed):
    """Leave-one-out k-nearest-neighbour score, cosine similarity of centred features.

    On the subsample ``x_1..x_n`` (centred by its mean, each row scaled to unit length), ``N_k(i)`` are
    the k rows j != i of largest ``x_i . x_j`` (ties broken arbitrarily). Classification: the predicted
    label is the most frequent among N_k(i) (ties: the smallest class index) and the score is
    ``(1/n) sum_i [pred_i = y_i]``. Regression: ``pred_i = (1/k) sum_{j in N_k(i)} y_j`` and the score is
    Pearson's r(pred, y). k = 10. Subsample: O(n^2 D), at most ``max_examples`` (2,000) rows drawn
    uniformly with ``seed``.
    """
    X, y = st.sample("knn", max_examples, seed)
    if not 1 <= k < len(y):
        raise ValueError(f"knn.k must be in [1, {len(y) - 1}] for {len(y)} examples, got {k}")
    nb = _knn_neighbours(X, k)
    if st.kind == "regression":
        return pearson(y[nb].mean(axis=1), y, "knn")
    votes = np.bincount((np.arange(len(y))[:, None] * st.K + y[nb]).ravel(),
                        minlength=len(y) * st.K).reshape(len(y), st.K)
    return np.mean(votes.argmax(axis=1) == y)
