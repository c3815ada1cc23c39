"""Cross-validated linear probe: logistic regression (classification) or ridge regression (regression)
on the features.

The function :func:`linear_probe` reads the shared statistics of one (PTM, task) (:class:`ptmbench.estimators.stats.Stats`:
validated features and labels, the class-grouped pass, seeded subsamples); its docstring gives the
definition in the paper's notation. The registry (:mod:`ptmbench.estimators.transferability`) registers it
with ``KINDS`` (the task kinds it is defined for), ``DEFAULTS`` (its parameters, config
``transferability.linear_probe``) and ``SHARED_PASS`` (whether it reads the pass over every example).

Kinds: classification (accuracy) and regression (Pearson r). Cost: ``folds`` L-BFGS fits (or ridge solves)
on the subsample (``max_examples`` = 1,000).
"""

from __future__ import annotations

import numpy as np

from ._common import class_codes, pearson
from .stats import Stats

KINDS = ("classification", "regression")
DEFAULTS = {"folds": 5, "C": 1.0, "alpha": 1.0, "max_iter": 200, "max_examples": 1000,
            "seed": 0}
SHARED_PASS = False


def folds_of(y, folds, seed, stratify):
    """Fold index (0..folds-1) of every example: within each class (or overall), a seeded permutation
    dealt round-robin, so the folds are fixed by ``seed`` and as balanced as the classes allow."""
    rng = np.random.default_rng(seed)
    out = np.empty(len(y), np.intp)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if stratify else [np.arange(len(y))]
    start = 0
    for idx in groups:
        out[rng.permutation(idx)] = (start + np.arange(len(idx))) % folds
        start += len(idx)
    return out


def logistic_fit(X, y, K, C, max_iter, start=None, tol=1e-4):
    """Multinomial logistic regression: minimise ``(1/n) sum_i -log softmax(W^T x_i + b)_{y_i} +
    1/(2 C n) ||W||^2`` (scikit-learn's ``LogisticRegression(C=C)`` objective, divided by C n; the
    intercept is not penalised) with L-BFGS and scikit-learn's stopping rule (gtol ``tol`` = 1e-4).
    Returns W (D x K), b (K) and the flat solution (a warm start for the next fold)."""
    from scipy.optimize import minimize

    n, D = X.shape
    lam = 1.0 / (C * n)
    XT = np.ascontiguousarray(X.T)  # weights held as K x D: W^T X^T and R^T X are the fast products
    rows = (y, np.arange(n))
    Tt = np.zeros((K, n))
    Tt[rows] = 1.0

    def f(w):
        Wt, b = w[:D * K].reshape(K, D), w[D * K:]
        Z = Wt @ XT
        Z += b[:, None]
        zmax = Z.max(axis=0)
        E = np.exp(Z - zmax)
        s = E.sum(axis=0)
        loss = (np.sum(zmax + np.log(s)) - Z[rows].sum()) / n + 0.5 * lam * np.sum(Wt * Wt)
        R = E / s
        R -= Tt
        R /= n
        grad = np.empty(D * K + K)
        grad[:D * K] = (R @ X + lam * Wt).ravel()
        grad[D * K:] = R.sum(axis=1)
        return loss, grad

    w0 = np.zeros(D * K + K) if start is None else start
    res = minimize(f, w0, jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter, "gtol": tol, "ftol": 64 * np.finfo(float).eps})
    return res.x[:D * K].reshape(K, D).T, res.x[D * K:], res.x


def linear_probe(st: Stats, folds, C, alpha, max_iter, max_examples, seed):
    """Cross-validated linear probe on the subsample ``x_1..x_n`` (``folds`` fixed by ``seed``).

    Each fold's training rows are standardised (their mean and standard deviation; a constant column
    is left unscaled) and the held-out rows scaled the same way. Classification: multinomial logistic
    regression ``min_W,b  C sum_i -log softmax(W^T x_i + b)_{y_i} + 1/2 ||W||^2`` (scikit-learn's
    ``LogisticRegression(C=1)`` objective and stopping rule, L-BFGS, at most ``max_iter`` iterations,
    each fold warm-started from the previous fold's solution), folds stratified by class; score = out-of-fold accuracy over all n. Regression: ridge ``min ||X w + b - y||^2 +
    alpha ||w||^2`` (closed form); score = Pearson's r between the out-of-fold predictions and y.
    Subsample: at most ``max_examples`` (1,000) rows drawn uniformly with ``seed``.
    """
    X, y = st.sample("linear_probe", max_examples, seed)
    if not 2 <= folds <= len(y):
        raise ValueError(f"linear_probe.folds must be in [2, {len(y)}], got {folds}")
    if st.kind == "classification":
        class_codes(y, st.K, f"linear_probe (folds={folds}, in its subsample)", at_least=folds,
                     what="examples (fewer than folds)")
    fold = folds_of(y, folds, seed, st.kind == "classification")
    pred, w = np.empty(len(y)), None
    for f in range(folds):
        tr, te = fold != f, fold == f
        Xtr, Xte = X[tr], X[te]
        m, s = Xtr.mean(axis=0), Xtr.std(axis=0)
        s[s == 0] = 1.0
        Xtr -= m
        Xtr /= s
        Xte -= m
        Xte /= s
        if st.kind == "classification":
            W, b, w = logistic_fit(Xtr, y[tr], st.K, C, max_iter, start=w)
            pred[te] = np.argmax(Xte @ W + b, axis=1)
        else:
            yc = y[tr] - y[tr].mean()  # features are centred: the intercept is the mean label
            w = np.linalg.solve(Xtr.T @ Xtr + alpha * np.eye(X.shape[1]), Xtr.T @ yc)
            pred[te] = Xte @ w + y[tr].mean()
    if st.kind == "regression":
        return pearson(pred, y, "linear_probe")
    return np.mean(pred == y)
