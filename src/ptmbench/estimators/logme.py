"""LogME: the log maximum evidence of a PTM's features for a task's labels.

You et al., "LogME: Practical Assessment of Pre-trained Models for Transfer Learning" (ICML 2021),
with the fixed-point algorithm of You et al., "Ranking and Tuning Pre-trained Models" (arXiv 2110.10545).

Model. Features ``F`` (N x D, one row per training example), one target ``y`` (N). A Bayesian linear
model ``y = F w + e`` with prior ``w ~ N(0, alpha^-1 I_D)`` and noise ``e ~ N(0, beta^-1 I_N)``. With
``A = alpha I + beta F^T F`` and the posterior mean ``m = beta A^-1 F^T y`` the log evidence is

    L(alpha, beta) = D/2 log alpha + N/2 log beta - N/2 log 2 pi
                     - beta/2 ||F m - y||^2 - alpha/2 m^T m - 1/2 log |A|.

LogME = max over (alpha, beta) of L / N, the evidence per sample. Let ``F^T F = V diag(sigma) V^T``
(eigenvalues ``sigma_i``, rank k) and ``x_i = v_i^T F^T y / sqrt(sigma_i)`` (the projection of ``y``
on the i-th left singular vector of F). With ``t = alpha / beta``:

    gamma      = sum_i sigma_i / (sigma_i + t)                 (effective number of parameters)
    m^T m      = sum_i sigma_i x_i^2 / (sigma_i + t)^2
    ||Fm-y||^2 = sum_i x_i^2 t^2 / (sigma_i + t)^2 + (||y||^2 - sum_i x_i^2)

and the fixed point is ``alpha <- gamma / m^T m``, ``beta <- (N - gamma) / ||Fm - y||^2``, iterated until
``t`` changes by less than ``tol`` (relative). ``log|A| = sum_{i<=k} log(alpha + beta sigma_i)
+ (D - k) log alpha``: the null directions of F (N < D, duplicate or zero columns) cancel against
``D/2 log alpha``. The original code keeps ``D/2 log alpha`` with only k eigenvalues, which for a rank
deficient F (e.g. WNLI's 635 examples against D = 768/1024) adds ``(D - k)/2 log alpha``; we use the
exact evidence. The original also adds 1e-5 to the denominators of the updates; we do not, except
that an exact fit (||Fm - y|| -> 0, unbounded evidence) is held at ||Fm - y||^2 >= 1e-10 ||y||^2.

Targets: classification = one-vs-rest 0/1 indicators of every class present; regression (stsb) = the
float label. The score is the evidence per sample averaged over the targets.

The stage's job (:func:`ptmbench.stages.logme.score_ptm`) computes LogME together with the other
transferability estimators of config ``transferability`` (:func:`ptmbench.stages.logme.estimator_scores`,
:mod:`ptmbench.estimators.transferability`), all from one pass over the features.

Cost: one pass over F (:func:`gram_pass`, the one place the Gram matrix is computed) builds ``F^T F``
(chunked float64 symmetric rank-k updates) and ``F^T Y``; the eigendecomposition and the fixed point
work on D-vectors only.
"""

from __future__ import annotations

import logging
import math
from typing import NamedTuple

import numpy as np

from ptmbench.core import tasks as registry

log = logging.getLogger(__name__)

EPS = np.finfo(np.float64).eps
RES_FLOOR = 1e-10  # least ||Fm - y||^2 / ||y||^2 in the beta update (exact fits: see fixed_point)


def targets(labels, task: str) -> np.ndarray:
    """The N x C float64 target matrix of ``task``: one-vs-rest indicators, or the stsb score.

    Raises ValueError when fewer than two classes are present (LogME is undefined there).
    """
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) < 2:
        raise ValueError(f"LogME on task {task!r}: need a 1-D label vector of >= 2 examples, got shape {y.shape}")
    if registry.get(task).kind == "regression":
        y = y.astype(np.float64)
        if not np.isfinite(y).all():
            raise ValueError(f"LogME on task {task!r}: labels contain NaN/inf")
        if not np.any(y):
            raise ValueError(f"LogME on task {task!r}: every label is 0, the evidence is undefined")
        return y[:, None]
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise ValueError(f"LogME on task {task!r}: classification labels must be integers >= 0 "
                         f"(got dtype {y.dtype}, min {y.min()}); is this a test split with label -1?")
    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError(f"LogME on task {task!r}: only class {classes.tolist()} is present in the "
                         f"{len(y)} examples; one-vs-rest LogME needs at least two classes "
                         "(use more examples: raise logme.max_examples or set it to null)")
    return (y[:, None] == classes[None, :]).astype(np.float64)


CHUNK_BYTES = 1 << 26  # float64 bytes per chunk of rows of the Gram pass


class GramPass(NamedTuple):
    """What :func:`gram_pass` accumulates; K groups (1 without ``groups``), D features, C targets."""

    class_gram: np.ndarray  # K x D x D: F_k^T F_k of each group's rows
    class_sum: np.ndarray  # K x D: F_k^T 1
    counts: np.ndarray  # K: rows per group
    xty: np.ndarray | None  # D x C: F^T Y (None without Y)
    q4: float | None  # sum_i ||x_i - mean||^4 (None without moments)

    @property
    def gram(self) -> np.ndarray:
        """F^T F, the sum of the groups' Gram matrices."""
        return self.class_gram[0] if len(self.class_gram) == 1 else self.class_gram.sum(axis=0)


def gram_pass(F, Y=None, groups=None, K: int = 1, moments: bool = False,
              chunk_bytes: int = CHUNK_BYTES) -> GramPass:
    """The one pass over F that every Gram statistic comes from (LogME's and the other estimators').

    F (N x D, float32 or float64; never copied whole to float64) is read in chunks of consecutive rows,
    each converted into a reused float64 buffer ``A = [x | 1 (| q)]``; one symmetric rank-k update
    ``A^T A`` (BLAS syrk) per chunk and group gives the Gram matrix, the row sums and, with ``moments``,
    the sums the fourth moment needs. ``groups`` (N codes in [0, K), e.g. class indices): the chunk's
    rows are written into the buffer ordered by group (a stable order, scattered while converting), so
    each group's rows are one block and its ``F_k^T F_k`` one syrk. ``Y`` (N x C): ``F^T Y`` too.

    The q column does not change the other sums: BLAS computes the D x D and row-sum blocks of
    ``A^T A`` the same with or without it (a test checks it bit for bit), so LogME from a pass with
    moments equals LogME from one without.

    ``moments``: ``q4 = sum_i ||x_i - mean||^4`` (Ledoit-Wolf), accumulated about ``c``, the first
    chunk's mean (rounded to the features' precision), and moved to the overall mean exactly afterwards
    (no pass for the mean first); each row's ``q`` is computed in the features' own precision
    (:func:`_sq_dist`: float32 for float32 features, 1e-6 relative on q4 at worst): with
    ``u = x - c``, ``q = ||u||^2``, ``d = mean - c``, ``||x - mean||^2 = q - 2 u.d + d.d``, whose squares
    sum to ``sum q^2 + 4 d^T (sum u u^T) d + N (d.d)^2 - 4 d.sum(q u) + 2 (d.d) sum q - 4 (d.d) d.sum u``.

    NaN or inf in F raises ValueError naming the first such row and column.
    """
    N, D = F.shape
    if Y is not None and Y.shape[0] != N:
        raise ValueError(f"features have {N} rows but targets {Y.shape[0]}")
    if groups is not None and len(groups) != N:
        raise ValueError(f"features have {N} rows but groups {len(groups)}")
    W = D + 1 + bool(moments)  # [x | 1 | q]
    W += -W % 8  # zero columns up to a multiple of 8: BLAS syrk is up to 20% slower on odd widths (769, 770)
    G = np.zeros((K, D, D))
    S = np.zeros((K, D))
    counts = np.zeros(K, np.int64)
    B = None if Y is None else np.zeros((D, Y.shape[1]))
    sq2 = sq = 0.0
    squ = np.zeros(D)
    step = max(1, min(N, chunk_bytes // (8 * D)))
    buf = np.zeros((step, W))
    buf[:, D] = 1.0
    c = None
    for i in range(0, N, step):
        chunk = F[i:i + step]
        n = len(chunk)
        A = buf[:n]
        if groups is None:
            slot, bounds = None, [0, n]
        else:
            g = groups[i:i + step]
            order = np.argsort(g, kind="stable")
            slot = np.empty(n, np.intp)
            slot[order] = np.arange(n)  # rows of one group together
            bounds = np.searchsorted(g[order], np.arange(K + 1))
        rows = slice(None) if slot is None else slot
        A[rows, :D] = chunk  # converted to float64 on the way
        if moments:
            if c is None:  # the shift: the first chunk's mean, in the features' precision
                c = np.mean(chunk, axis=0, dtype=np.float64).astype(_moment_dtype(chunk)).astype(np.float64)
            A[rows, D + 1] = _sq_dist(chunk, c)  # q = ||x - c||^2
        Fc = A[:, :D]
        for k in range(K):
            lo, hi = bounds[k], bounds[k + 1]
            if hi == lo:
                continue
            Ak = A[lo:hi]
            GA = Ak.T @ Ak  # X^T X: BLAS syrk
            G[k] += GA[:D, :D]
            S[k] += GA[D, :D]
            counts[k] += hi - lo
            if moments:
                squ += GA[D + 1, :D] - GA[D + 1, D] * c  # sum q (x - c)
                sq += GA[D + 1, D]
                sq2 += GA[D + 1, D + 1]
        if B is not None:
            B += Fc.T @ (Y[i:i + step] if groups is None else Y[i:i + step][order])
    if not (np.isfinite(G).all() and np.isfinite(S).all()):
        bad = np.argwhere(~np.isfinite(F))
        where = f" (first at row {bad[0][0]}, column {bad[0][1]})" if len(bad) else ""
        raise ValueError(f"features contain NaN or inf{where}")
    q4 = None
    if moments:
        s = S.sum(axis=0)
        d = s / N - c
        e = d @ d
        Gd = G.sum(axis=0) @ d
        uud = d @ Gd - 2 * (s @ d) * (c @ d) + N * (c @ d) ** 2  # d^T (sum u u^T) d
        q4 = float(sq2 + 4 * uud + N * e**2 - 4 * (d @ squ) + 2 * e * sq - 4 * e * (d @ (s - N * c)))
    return GramPass(G, S, counts, B, q4)


MOMENT_BLOCK = 256  # rows at a time for the q column (a block stays in cache)


def _moment_dtype(chunk):
    return np.result_type(chunk.dtype, np.float32)  # float32 or float64


def _sq_dist(chunk, c):
    """``||x - c||^2`` of each row x of ``chunk``, in the features' own precision (float32 features:
    ``x - c`` rounded once to float32, then a float32 dot product; 0.15 ppm per row, and the errors
    average out in Ledoit-Wolf's sum of their squares), a block of rows at a time. ``c`` must be
    representable in that precision (:func:`gram_pass` rounds it)."""
    n, D = chunk.shape
    q = np.empty(n)
    dt = _moment_dtype(chunk)
    T = np.empty((min(n, MOMENT_BLOCK), D), dt)
    c = c.astype(dt)
    for j in range(0, n, MOMENT_BLOCK):
        Tb = T[:min(MOMENT_BLOCK, n - j)]
        np.subtract(chunk[j:j + MOMENT_BLOCK], c, out=Tb)
        q[j:j + len(Tb)] = np.vecdot(Tb, Tb)
    return q


def indicator_classes(Y) -> np.ndarray | None:
    """The class of each row when Y (N x C, C >= 2) holds one-vs-rest indicators (one 1 per row, zeros
    elsewhere: :func:`targets` of a classification task), else None."""
    if Y.shape[1] < 2 or not np.all((Y == 0) | (Y == 1)) or not np.all(Y.sum(axis=1) == 1):
        return None
    return Y.argmax(axis=1)


def gram(F, Y, chunk_bytes: int = CHUNK_BYTES):
    """``F^T F`` (D x D), ``F^T Y`` (D x C) and ``||y||^2`` per target, in float64 (:func:`gram_pass`).

    One-vs-rest indicator targets group the rows by class, and ``F^T Y`` is then the class sums: the
    same operations, in the same order, as the transferability estimators' shared pass
    (:class:`ptmbench.estimators.stats.Stats`), so LogME alone and the ``logme`` job's LogME are one
    computation. Other targets (stsb's score): one group, ``F^T Y`` accumulated in the pass.
    """
    classes = indicator_classes(Y)
    if classes is None:
        p = gram_pass(F, Y, chunk_bytes=chunk_bytes)
        B = p.xty
    else:
        p = gram_pass(F, None, classes, Y.shape[1], chunk_bytes=chunk_bytes)
        B = p.class_sum.T
    if not np.isfinite(B).all():
        raise ValueError("targets contain NaN or inf")
    return p.gram, B, np.einsum("nc,nc->c", Y, Y)


def spectrum(G, N: int, rcond: float | None = None):
    """Eigenvalues ``sigma`` (descending) and vectors V of ``F^T F``, truncated to its numerical rank.

    ``rcond`` (default ``max(N, D) * eps``): eigenvalues below ``rcond * sigma_max`` count as zero.
    """
    sigma, V = np.linalg.eigh(G)
    sigma, V = sigma[::-1], V[:, ::-1]
    rcond = max(N, G.shape[0]) * EPS if rcond is None else rcond
    k = int(np.sum(sigma > rcond * max(sigma[0], 0.0)))
    if k == 0:
        raise ValueError("features are all zero: LogME is undefined")
    return sigma[:k], V[:, :k]


def updates(sigma, x2, res0, t):
    """gamma, m^T m and ||Fm - y||^2 at t = alpha/beta, vectorised: sigma (k, 1), x2 (k, C), t (C,)."""
    st = sigma + t
    gamma = np.sum(sigma / st, axis=0)
    mm = np.sum(sigma * x2 / st**2, axis=0)
    res = np.sum(x2 * (t / st) ** 2, axis=0) + res0
    return gamma, mm, res


def evidence(N, D, sigma, alpha, beta, mm, res):
    """Log evidence per sample L(alpha, beta) / N (the module docstring's formula), sigma (k, 1)."""
    k = sigma.shape[0]
    return (k / 2 * np.log(alpha) + N / 2 * np.log(beta) - N / 2 * math.log(2 * math.pi)
            - beta / 2 * res - alpha / 2 * mm
            - 0.5 * np.sum(np.log(alpha + beta * sigma), axis=0)) / N


def fixed_point(N, D, sigma, yy, update, tol=1e-10, max_iter=1000):
    """Maximise the evidence of the targets (``yy`` = ||y||^2 of each): alpha = beta = 1, then the
    fixed-point updates.

    ``update(t)`` returns (gamma, m^T m, ||Fm - y||^2) at t = alpha/beta for every target. A target
    stops when t changes by at most ``tol`` (relative) or its evidence by at most ``tol**1.5``
    (relative): the latter ends the geometric drift to t -> inf (features that explain nothing,
    w -> 0) or t -> 0 (a noise-free fit), where the evidence converges to a finite limit but t does
    not. A target that F fits exactly has an unbounded evidence (beta -> inf); the beta update then
    uses ||Fm - y||^2 >= RES_FLOOR ||y||^2 (the original code adds 1e-5 to the denominators).
    Returns the evidence per sample (C,) at the final (alpha, beta) and the iterations made.
    """
    C = len(yy)
    floor = RES_FLOOR * np.asarray(yy)
    alpha, beta = np.ones(C), np.ones(C)
    gamma, mm, res = update(alpha / beta)
    L = evidence(N, D, sigma, alpha, beta, mm, res)
    done = np.zeros(C, bool)
    for it in range(1, max_iter + 1):  # noqa: B007 (returned)
        t = alpha / beta
        alpha_n, beta_n = gamma / mm, (N - gamma) / np.maximum(res, floor)
        gamma_n, mm_n, res_n = update(alpha_n / beta_n)
        L_n = evidence(N, D, sigma, alpha_n, beta_n, mm_n, res_n)
        conv = (np.abs(alpha_n / beta_n - t) <= tol * t) | (np.abs(L_n - L) <= tol**1.5 * np.abs(L))
        keep = ~done
        for old, new in ((alpha, alpha_n), (beta, beta_n), (gamma, gamma_n), (mm, mm_n), (res, res_n),
                         (L, L_n)):
            old[keep] = new[keep]
        done |= conv
        if done.all():
            break
    else:
        log.warning("LogME fixed point: %d of %d targets did not converge in %d iterations",
                    int((~done).sum()), C, max_iter)
    if not np.isfinite(L).all():
        raise ValueError(f"LogME evidence is not finite for targets {np.flatnonzero(~np.isfinite(L)).tolist()} "
                         "(a target orthogonal to every feature?)")
    return L, it


def logme(F, Y, *, rcond=None, tol=1e-10, max_iter=1000) -> np.ndarray:
    """LogME evidence per sample of features F (N x D) for every target column of Y (N x C).

    Fast path: statistics from one pass over F, then D-sized work only. Returns a (C,) array;
    the LogME score is its mean.
    """
    F = np.asarray(F)
    Y = np.asarray(Y, dtype=np.float64)
    Y = Y[:, None] if Y.ndim == 1 else Y
    if F.ndim != 2:
        raise ValueError(f"features must be N x D, got shape {F.shape}")
    N, D = F.shape
    G, B, yy = gram(F, Y)
    if np.any(yy == 0):
        raise ValueError("a target is identically zero: LogME is undefined")
    sigma, V = spectrum(G, N, rcond)
    x2 = (V.T @ B) ** 2 / sigma[:, None]  # squared projections on the left singular vectors
    res0 = np.maximum(yy - x2.sum(axis=0), 0.0)  # energy of y outside the column span of F
    sig = sigma[:, None]
    return fixed_point(N, D, sig, yy, lambda t: updates(sig, x2, res0, t), tol, max_iter)[0]


def logme_baseline(F, Y, *, rcond=None, tol=1e-10, max_iter=1000) -> np.ndarray:
    """The straightforward computation of the same evidence, for tests and ``bench/logme.py``.

    As in the original code (``truncated_svd`` + per-class loop): SVD of F^T F, U = F V S^-1 formed
    explicitly (N x k), then per target the fixed point with N-sized vectors (``x = U^T y``, the
    residual ``y - F m`` recomputed at every step).
    """
    F = np.asarray(F, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    Y = Y[:, None] if Y.ndim == 1 else Y
    N, D = F.shape
    V, sigma, _ = np.linalg.svd(F.T @ F)
    rcond = max(N, D) * EPS if rcond is None else rcond
    k = int(np.sum(sigma > rcond * sigma[0]))
    sigma, V = sigma[:k], V[:, :k]
    s = np.sqrt(sigma)
    U = F @ V
    U /= s
    out = []
    for y in Y.T:
        x = U.T @ y

        def update(t, y=y, x=x):
            m = V @ (s * x / (sigma + t[0]))
            r = F @ m - y
            gamma = np.sum(sigma / (sigma + t[0]))
            return np.array([gamma]), np.array([m @ m]), np.array([r @ r])

        out.append(fixed_point(N, D, sigma[:, None], np.array([y @ y]), update, tol, max_iter)[0][0])
    return np.array(out)


def evidence_from_stats(st) -> np.ndarray:
    """LogME's evidence per sample of every target (C,), from the shared pass of
    :class:`ptmbench.estimators.stats.Stats` ``st``; cached on ``st``.

    :func:`logme`'s algorithm (its spectrum and fixed point) on the shared statistics:
    ``F^T F`` is the sum of the per-class Gram matrices and ``F^T Y`` the class sums (one-vs-rest
    indicators) or, for regression, accumulated in the same pass: the very sums
    :func:`gram` makes, so the value is :func:`logme`'s.
    """
    if "_logme_evidence" not in st.__dict__:
        Y, B = st.Y, st.xty
        yy = np.einsum("nc,nc->c", Y, Y)
        sigma, V = spectrum(st.gram, st.N)
        x2 = (V.T @ B) ** 2 / sigma[:, None]
        res0 = np.maximum(yy - x2.sum(axis=0), 0.0)
        sig = sigma[:, None]
        st._logme_evidence, _ = fixed_point(st.N, st.D, sig, yy,
                                            lambda t: updates(sig, x2, res0, t))
    return st._logme_evidence


def from_stats(st) -> float:
    """LogME (You et al., ICML 2021), the registered estimator ``logme``: the mean over targets of the
    maximised log evidence per sample (:func:`evidence_from_stats`), the value the ``logme`` job publishes."""
    return float(evidence_from_stats(st).mean())

