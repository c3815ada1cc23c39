"""Input checks, the seeded subsample and the PCA the estimator modules of this package share.

Every estimator module is one pure function of an N x D feature matrix and N labels (integers >= 0
for classification, floats for regression); these helpers validate them the way
:mod:`ptmbench.estimators.transferability` does (bad input raises ValueError naming the problem).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import eigh, lapack

from ptmbench.data import tokenized


def features_matrix(features, name: str) -> np.ndarray:
    """``features`` as a 2-D float array (float32 and float64 kept, integers -> float64), checked finite."""
    F = np.asarray(features)
    if F.ndim != 2 or F.shape[0] < 2 or F.shape[1] < 1:
        raise ValueError(f"{name}: features must be an N x D matrix with N >= 2 rows, got shape {F.shape}")
    if not (np.issubdtype(F.dtype, np.floating) or np.issubdtype(F.dtype, np.integer)):
        raise ValueError(f"{name}: features must be numeric, got dtype {F.dtype}")
    if not np.issubdtype(F.dtype, np.floating):
        F = F.astype(np.float64)
    finite = np.isfinite(F)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        raise ValueError(f"{name}: features contain NaN or inf (first at row {row}, column {col}); "
                         "fix the feature extraction (a NaN in a PTM's forward pass?)")
    return F


def _check_length(F, labels, name):
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) != F.shape[0]:
        raise ValueError(f"{name}: {F.shape[0]} feature rows but labels of shape {y.shape}; "
                         "pass one label per feature row")
    return y


def _check_not_constant(F, name):
    if not np.any(F != F[0]):
        raise ValueError(f"{name}: the features are constant (every one of the {F.shape[0]} rows is the "
                         "same vector); the score is undefined")


def classification_inputs(features, labels, name: str):
    """Validated (F, y, K): F the features, y the class index 0..K-1 of each row among the classes
    present (a class with no example is left out, as in LogME), K >= 2 the classes present."""
    F = features_matrix(features, name)
    y = _check_length(F, labels, name)
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name}: classification labels must be integers >= 0, got dtype {y.dtype} "
                         "(a regression target? this estimator is defined for classification only)")
    if y.min() < 0:
        raise ValueError(f"{name}: classification labels must be >= 0, got {y.min()} "
                         "(a test split with label -1?)")
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"{name}: only class {classes.tolist()} is present in the {len(y)} examples; "
                         "the score needs at least two classes (use more examples)")
    _check_not_constant(F, name)
    return F, codes.astype(np.intp), len(classes)


def regression_inputs(features, targets, name: str):
    """Validated (F, t): F the features, t the float64 targets (finite, not all equal)."""
    F = features_matrix(features, name)
    t = _check_length(F, targets, name)
    if not (np.issubdtype(t.dtype, np.floating) or np.issubdtype(t.dtype, np.integer)):
        raise ValueError(f"{name}: regression targets must be numbers, got dtype {t.dtype}")
    t = t.astype(np.float64)
    if not np.isfinite(t).all():
        raise ValueError(f"{name}: targets contain NaN or inf (first at row {np.flatnonzero(~np.isfinite(t))[0]})")
    if not np.any(t != t[0]):
        raise ValueError(f"{name}: every target is {t[0]}; the score is undefined for a constant target")
    _check_not_constant(F, name)
    return F, t


def is_regression(labels) -> bool:
    """Float labels are regression targets, integer labels classes."""
    return np.issubdtype(np.asarray(labels).dtype, np.floating)


def subsample(n: int, max_examples, seed: int, name: str):
    """Sorted row indices of the seeded uniform subsample of ``max_examples`` of ``n`` rows, or None
    for every row: :func:`ptmbench.data.tokenized.subsample` (so estimators with the same cap and seed
    see the same rows), with the cap checked as the estimator's parameter ``{name}.max_examples``."""
    if max_examples is not None and (isinstance(max_examples, bool) or not isinstance(max_examples, int)
                                     or max_examples < 2):
        raise ValueError(f"{name}.max_examples must be an integer >= 2 or None, got {max_examples!r}")
    return tokenized.subsample(n, max_examples, seed, key=f"{name}.max_examples", minimum=2)


def scatter(F: np.ndarray, mean: np.ndarray, rows: int = 8192) -> np.ndarray:
    """The centred scatter matrix ``sum_i (x_i - mean)(x_i - mean)^T`` (D x D, float64), accumulated
    over blocks of ``rows`` rows so a float32 F is never copied whole to float64 (NumPy computes
    ``Z.T @ Z`` with BLAS syrk, half a full product)."""
    D = F.shape[1]
    S = np.zeros((D, D))
    for start in range(0, F.shape[0], rows):
        Z = F[start:start + rows].astype(np.float64) - mean
        S += Z.T @ Z
    return (S + S.T) / 2


def check_components(n_components, name: str) -> None:
    """ValueError naming ``{name}.n_components`` unless it is an integer >= 1."""
    if isinstance(n_components, bool) or not isinstance(n_components, int) or n_components < 1:
        raise ValueError(f"{name}.n_components must be an integer >= 1, got {n_components!r}")


def pca_basis(F: np.ndarray, n_components: int, name: str):
    """(mean, V): the feature mean and the D x d matrix of the d = min(n_components, D, N - 1) leading
    eigenvectors of the empirical covariance: scikit-learn's exact PCA components, signs included."""
    check_components(n_components, name)
    N, D = F.shape
    mean = F.mean(axis=0, dtype=np.float64)
    d = min(n_components, D, N - 1)
    if N - 1 < D:  # N < D: the eigenvectors of the N x N Gram matrix give those of the covariance
        Z = F.astype(np.float64) - mean
        w, U = np.linalg.eigh(Z @ Z.T)
        w, U = w[::-1][:d], U[:, ::-1][:, :d]
        keep = w > 1e-12 * w[0]  # directions of zero variance (duplicate rows) have no eigenvector here
        V = Z.T @ U[:, keep] / np.sqrt(w[keep])
    else:
        # the d leading eigenvectors only (LAPACK's subset driver: 55 ms for 64 of 768, 100 ms for all)
        _, V = eigh(scatter(F, mean), subset_by_index=[D - d, D - 1], driver="evr", check_finite=False)
        V = V[:, ::-1]
    # scikit-learn's sign convention (svd_flip on the components): each one's largest-magnitude loading
    # is positive. Most scores ignore signs; PARC's correlations between examples do not.
    V *= np.sign(V[np.abs(V).argmax(axis=0), np.arange(V.shape[1])])
    return mean, V


def project(F: np.ndarray, mean: np.ndarray, V: np.ndarray, rows: int = 2048) -> np.ndarray:
    """``(F - mean) @ V`` (N x d, float64), a block of ``rows`` rows at a time (F is never copied whole).

    In the features' precision: float32 features are centred and projected in float32 (as
    scikit-learn's PCA keeps float32 input in float32; 1e-6 relative on the bench's features, and
    2.5 times faster than converting every block to float64), float64 features in float64.
    """
    dtype = np.float32 if F.dtype == np.float32 else np.float64
    m, W = mean.astype(dtype), V.astype(dtype)
    out = np.empty((F.shape[0], V.shape[1]))
    for start in range(0, F.shape[0], rows):
        out[start:start + rows] = (F[start:start + rows].astype(dtype, copy=False) - m) @ W
    return out


def class_sums(F: np.ndarray, y: np.ndarray, K: int, rows: int = 8192) -> np.ndarray:
    """K x D float64 sums of each class's rows of F, a block of ``rows`` rows at a time."""
    out = np.zeros((K, F.shape[1]))
    for start in range(0, F.shape[0], rows):
        yb = y[start:start + rows]
        onehot = np.zeros((K, len(yb)))
        onehot[yb, np.arange(len(yb))] = 1.0
        out += onehot @ F[start:start + rows].astype(np.float64)
    return out


def class_stats(X: np.ndarray, y: np.ndarray, K: int):
    """(counts K, means K x d, biased variances K x d) of the rows of X (n x d, float64) by class,
    from one (K x n) @ (n x d) product each."""
    onehot = np.zeros((K, len(y)))
    onehot[y, np.arange(len(y))] = 1.0
    counts = onehot.sum(axis=1)
    means = onehot @ X / counts[:, None]
    R = X - means[y]
    return counts, means, onehot @ (R * R) / counts[:, None]


def power_top(A: np.ndarray, iterations: int = 3) -> float:
    """The SFDA authors' estimate of the largest eigenvalue of A (SFDA's shrinkage, ETran's LDA):
    ``x = A 1``, then ``iterations`` rounds of ``y = A x / ||A x||``, ``x = A y / ||A y||``; returns
    ``x^T A y``."""
    x = A.sum(axis=1)
    for _ in range(iterations):
        y = A @ x
        y /= np.linalg.norm(y)
        x = A @ y
        x /= np.linalg.norm(x)
    return x @ A @ y


def class_codes(y, K, name, at_least=1, what="examples"):
    """Examples per class (K,), checked: every class has at least ``at_least`` (the error names ``name``)."""
    counts = np.bincount(y, minlength=K)
    if counts.min() < at_least:
        raise ValueError(f"{name}: a class has {counts.min()} {what}, needs at least {at_least} "
                         f"(counts per class {counts.tolist()}); use more examples (raise max_examples)")
    return counts


def softmax(Z):
    """Row-wise softmax of the n x K matrix Z."""
    Z = Z - Z.max(axis=1, keepdims=True)
    np.exp(Z, out=Z)
    return Z / Z.sum(axis=1, keepdims=True)


def chol(A, name, what):
    """Lower Cholesky factor of the symmetric positive definite A (LAPACK potrf: twice as fast as
    ``np.linalg.cholesky`` at D = 768)."""
    L, info = lapack.dpotrf(A, lower=1, clean=1)  # reads A's lower triangle, factors a copy
    if info > 0:
        raise ValueError(f"{name}: {what} is singular (constant, duplicate or too few examples?)")
    if info < 0:
        raise ValueError(f"{name}: {what} has NaN or inf entries")
    return L


def logdet_pd(A, name, what):
    """log det A of the symmetric positive definite A, from its Cholesky factor."""
    return 2.0 * np.log(np.diag(chol(A, name, what))).sum()


def pearson(a, b, name):
    """Pearson r of a and b; ValueError naming ``name`` when either is constant."""
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt((a @ a) * (b @ b))
    if den == 0:
        raise ValueError(f"{name}: the predictions (or the labels) are constant; Pearson r is undefined")
    return float(a @ b / den)
