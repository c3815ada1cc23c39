"""Judging transferability estimators against fine-tuned performance, and the seed noise ceiling.

Pure functions on tables (pandas), no I/O: :mod:`ptmbench.stages.report` reads the tables and writes what
these return. Every measure is defined once, here.

Notation, for one task and one *scope* (``pooled``: every PTM; or one base model with its merged
PTMs): PTM ``i`` has the estimator's score ``s_i`` and the fine-tuned performance ``y_i`` (the task's
consumer metric, :func:`ptmbench.stages.report.consumer_performance`; with several seeds, the mean over
seeds). PTMs whose score is missing or not applicable (``applicable`` false, score NaN) are left out
of the scope, never counted as 0.

``kendall_tau_b``
    Kendall's tau-b of ``(s, y)`` (``scipy.stats.kendalltau``): (concordant - discordant pairs) /
    sqrt((n0 - ties in s) (n0 - ties in y)), n0 = n (n - 1) / 2.
``weighted_tau``
    ``scipy.stats.weightedtau(s, y)`` with its defaults (hyperbolic weight 1 / (r + 1) of the rank r,
    the average of the two coefficients ranked by ``s`` and by ``y``): the measure of the LogME paper
    (You et al., ICML 2021), which weighs disagreements among the top PTMs most.
``pearson``, ``spearman``
    Pearson's r and Spearman's rho of ``(s, y)``.
``top1_regret``
    ``max(y) - y[pick]``, ``pick`` the PTM with the highest ``s``, in the units of the consumer metric
    (0 is best). When several PTMs share the highest ``s`` the pick is a uniformly random one of
    them, and the regret is its expectation: ``max(y) - mean(y over the tied top)``.
``top3_hit``
    Whether a truly best PTM (one whose ``y`` equals ``max(y)``) is among the estimator's top 3 (the
    3 highest ``s``). Ties in ``s`` across the 3rd place are broken uniformly at random, and the value
    is the probability of a hit: with ``g`` PTMs strictly above the 3rd-highest score ``c`` and ``t``
    PTMs at ``c`` (``3 - g`` of them drawn), of which ``m`` are truly best, it is 1 if a truly best
    PTM is among the ``g``, else ``1 - C(t - m, 3 - g) / C(t, 3 - g)``. It needs more than 3 PTMs
    (with 3 or fewer every PTM is in the top 3).

Too few PTMs in a scope (fewer than :data:`MIN_PTMS`) make every measure NaN and ``note`` says why; a
constant side makes the correlations NaN (regret and hit stay defined); nothing raises.

The **leaderboard** averages each measure over tasks, per estimator: ``{measure}_pooled`` (the
pooled scope) and ``{measure}_within`` (per task the mean over base models, then the mean over
tasks); NaN values are skipped, and ``n_tasks`` counts the tasks with a defined pooled tau-b. It is
ranked by ``weighted_tau_pooled`` (highest first; ties share the lower rank).

The **noise ceiling** (several fine-tune seeds): per (PTM, task) the standard deviation (ddof 1) of
the consumer metric across seeds, and per task and scope the mean over seed pairs of Kendall's
tau-b between the PTM rankings of two seeds: how well one seed's ranking predicts another's. An
estimator whose tau-b reaches it is as good as a second fine-tune.
"""

from __future__ import annotations

import itertools
import math

POOLED = "pooled"
MIN_PTMS = 3  # fewer PTMs in a scope: every measure NaN
TOP_K = 3
REL_K = (1, 3, 5)  # top-k relative accuracy
MEASURES = ("kendall_tau_b", "weighted_tau", "pearson", "spearman", "top1_regret", "top3_hit", "mrr",
            *(f"top{k}_rel_acc" for k in REL_K))
CORRELATIONS = MEASURES[:4]
LOWER_IS_BETTER = ("top1_regret",)
RANK_BY = "weighted_tau"  # the leaderboard's ranking measure (pooled)
ESTIMATOR, BASELINE = "estimator", "baseline"  # the column ``kind``
RANDOM = "random"  # the random-ranking baseline: exact expected values, no scores
BASE_SCORE = "base_score"  # each merged PTM scored by its base model's own fine-tuned performance
PARAM_COUNT = "param_count"  # each PTM scored by its encoder's parameter count
BASELINES = (PARAM_COUNT, BASE_SCORE, RANDOM)
BOOTSTRAP = 1000  # default resamples (config judging.bootstrap)
CONFIDENCE = 0.95
CI_COLUMNS = tuple(f"{m}_ci_{side}" for m in MEASURES for side in ("low", "high"))
JUDGING_COLUMNS = ("eval_task", "metric", "estimator", "kind", "scope", "n", *MEASURES, *CI_COLUMNS, "kendall_p",
                   "note")
NOISE_COLUMNS = ("eval_task", "metric", "scope", "ptm", "n_seeds", "n_ptms", "sd", "seed_kendall_tau_b", "note")
ONE_SEED_NOTE = "one seed: the noise ceiling needs finetune.seeds with 2 or more seeds"
RANDOM_NOTE = "random ranking: exact expected values"


def _clean(s, y):
    import numpy as np

    s, y = np.asarray(s, dtype=float), np.asarray(y, dtype=float)
    if s.shape != y.shape:
        raise ValueError(f"scores and performance differ in length ({len(s)} vs {len(y)})")
    keep = np.isfinite(s) & np.isfinite(y)
    return s[keep], y[keep]


# --------------------------------------------------------------------------------- one scope, exact

def top1_regret(s, y) -> float:
    """Best performance minus the expected performance of the estimator's top pick (ties: random)."""
    s, y = _clean(s, y)
    if len(s) == 0:
        return math.nan
    return float(y.max() - y[s == s.max()].mean())


def topk_hit(s, y, k: int = TOP_K) -> float:
    """Probability that a truly best PTM is among the estimator's top ``k`` (ties broken at random);
    NaN with ``k`` or fewer PTMs."""
    s, y = _clean(s, y)
    if len(s) <= k:
        return math.nan
    best = y == y.max()
    c = sorted(s, reverse=True)[k - 1]
    above, at = s > c, s == c
    if (best & above).any():
        return 1.0
    g, t, m = int(above.sum()), int(at.sum()), int((best & at).sum())
    draw = k - g
    return float(1.0 - math.comb(t - m, draw) / math.comb(t, draw))


def reciprocal_rank(s, y) -> float:
    """1 / the rank, in the estimator's ranking (1 = highest score), of the first truly best PTM, its
    expectation over random tie breaks: with ``g`` PTMs scored above the best-scored truly best PTM and
    ``t`` PTMs at its score, ``m`` of them truly best, the first of those lands at ``g + j`` with
    probability C(t - j, m - 1) / C(t, m)."""
    s, y = _clean(s, y)
    if len(s) == 0:
        return math.nan
    best = y == y.max()
    c = s[best].max()
    g, t, m = int((s > c).sum()), int((s == c).sum()), int((best & (s == c)).sum())
    return float(sum(math.comb(t - j, m - 1) / math.comb(t, m) / (g + j) for j in range(1, t - m + 2)))


def topk_rel_acc(s, y, k: int) -> float:
    """The expected best performance among the estimator's top ``k`` (ties across the k-th place drawn
    at random) divided by the best performance; NaN with ``k`` or fewer PTMs (k > 1) or a best
    performance <= 0 (a ratio of a non-positive metric means nothing)."""
    s, y = _clean(s, y)
    n = len(s)
    if n == 0 or (k > 1 and n <= k) or y.max() <= 0:
        return math.nan
    c = sorted(s, reverse=True)[k - 1]
    above, at = s > c, s == c
    a = y[above].max() if above.any() else -math.inf
    r, tied = k - int(above.sum()), sorted(y[at])
    t = len(tied)
    # the best of r drawn from the tied values is the i-th smallest with probability C(i - 1, r - 1) / C(t, r)
    expect = sum(math.comb(i - 1, r - 1) / math.comb(t, r) * max(a, v) for i, v in enumerate(tied, 1))
    return float(expect / y.max())


def judge(s, y) -> dict:
    """Every measure of one scope (module docstring); ``n``: the PTMs with both values; ``note``: why
    measures are NaN ("" when none is)."""
    from scipy import stats

    s, y = _clean(s, y)
    n = len(s)
    out = {"n": n, **dict.fromkeys(MEASURES, math.nan), "kendall_p": math.nan, "note": ""}
    if n < MIN_PTMS:
        out["note"] = f"fewer than {MIN_PTMS} PTMs ({n})"
        return out
    out["top1_regret"] = top1_regret(s, y)
    out["top3_hit"] = topk_hit(s, y)
    out["mrr"] = reciprocal_rank(s, y)
    for k in REL_K:
        out[f"top{k}_rel_acc"] = topk_rel_acc(s, y, k)
    notes = [] if n > TOP_K else [f"top-{TOP_K} hit needs more than {TOP_K} PTMs ({n})"]
    if y.max() <= 0:
        notes.append("relative accuracy undefined: best performance <= 0")
    if s.max() == s.min():
        notes.append("constant estimator scores")
    elif y.max() == y.min():
        notes.append("constant performance")
    else:
        tau = stats.kendalltau(s, y)
        out.update(kendall_tau_b=float(tau.statistic), kendall_p=float(tau.pvalue),
                   weighted_tau=float(stats.weightedtau(s, y).statistic),
                   pearson=float(stats.pearsonr(s, y).statistic), spearman=float(stats.spearmanr(s, y).statistic))
    out["note"] = "; ".join(notes)
    return out


def _harmonic(n: int):
    import numpy as np

    return np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, n + 1))])  # H[k] = 1 + 1/2 + ... + 1/k


def random_weighted_tau(y) -> float:
    """The expected ``scipy.stats.weightedtau`` of a uniformly random ranking against ``y``: the mean of
    its two halves (ranked by the scores; ranked by ``y``). The ``y``-ranked half, exact: a group of
    ``t`` PTMs tied in ``y`` at ranks rho .. rho + t - 1 is ordered inside by the random scores, so
    E[numerator] = sum over groups of c (below - above), c = ((t + 1 + 2 rho)(H[rho + t] - H[rho]) - 2t)
    / (t + 1), over a denominator that does not depend on the scores (0 without ties). The
    score-ranked half: 0, exact without ties in ``y``; with ties its denominator varies with the
    ranking and its expectation is not 0 (docs/report.md: +0.007 for y = 0.1, 0.2, 0.2, 0.4, 0.4)."""
    import numpy as np

    y = np.asarray(y, dtype=float)
    y = y[np.isfinite(y)]
    n = len(y)
    if n < 2 or y.max() == y.min():
        return math.nan
    h = _harmonic(n)
    num = u = 0.0
    rho = 0
    for v in sorted(set(y.tolist()), reverse=True):
        t, below, above = int((y == v).sum()), int((y < v).sum()), int((y > v).sum())
        w = h[rho + t] - h[rho]
        num += ((t + 1 + 2 * rho) * w - 2 * t) / (t + 1) * (below - above)
        u += (t - 1) * w
        rho += t
    tot = (n - 1) * h[n]
    return float(num / math.sqrt(tot - u) / math.sqrt(tot) / 2)


def random_expectation(y) -> dict:
    """The expected value of every measure for a uniformly random ranking of the PTMs with performance
    ``y`` (the row of the ``random`` baseline): tau-b, Pearson and Spearman 0 (a random permutation's
    numerator averages to 0 over a fixed denominator), weighted tau :func:`random_weighted_tau`; regret,
    hit, MRR and relative accuracy are those of a constant score (every PTM tied, the ties broken at
    random: a random ranking), e.g. top-3 hit 3 / n with one best PTM, MRR H_n / n."""
    import numpy as np

    y = np.asarray(y, dtype=float)
    y = y[np.isfinite(y)]
    out = judge(np.zeros(len(y)), y)
    if out["n"] >= MIN_PTMS:
        notes = [x for x in out["note"].split("; ") if x and x != "constant estimator scores"]
        if y.max() > y.min():
            out.update(kendall_tau_b=0.0, pearson=0.0, spearman=0.0, weighted_tau=random_weighted_tau(y))
        else:
            notes.append("constant performance")
        out["note"] = "; ".join([RANDOM_NOTE, *notes])
    return out


# --------------------------------------------------------------------------------- many resamples at once

def _log_comb(a, b):
    """log C(a, b), elementwise; -inf where b < 0 or b > a."""
    import numpy as np
    from scipy.special import gammaln

    a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    ok = (b >= 0) & (a >= b)
    out = np.full(a.shape, -np.inf)
    out[ok] = gammaln(a[ok] + 1) - gammaln(b[ok] + 1) - gammaln(a[ok] - b[ok] + 1)
    return out


def _comb_small(a, r, k: int):
    """C(a, r) elementwise for integer-valued a >= 0 and 0 <= r <= k (small): a product of r factors."""
    import numpy as np

    a, r = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(r, dtype=float))
    out = np.ones(a.shape)
    for i in range(k):
        out = np.where(i < r, out * (a - i) / (i + 1), out)
    return np.where((r < 0) | (a < r), 0.0, out)


def _groups(v):
    """One-hot (n x groups) of the distinct values of ``v``, groups in increasing value."""
    import numpy as np

    _, inv = np.unique(v, return_inverse=True)
    g = np.zeros((len(v), inv.max() + 1 if len(v) else 0))
    g[np.arange(len(v)), inv] = 1.0
    return g


def _weighted_pearson(a, b, w, n):
    """Pearson's r of (a, b) with multiplicities ``w`` (rows: resamples); ``a``, ``b``: (B, n) or (n,)."""
    import numpy as np

    ma, mb = (w * a).sum(1) / n, (w * b).sum(1) / n
    da, db = a - ma[:, None], b - mb[:, None]
    va, vb = (w * da * da).sum(1), (w * db * db).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (w * da * db).sum(1) / np.sqrt(va * vb)
    return np.clip(r, -1.0, 1.0)


def _average_ranks(g, w):
    """Per resample the average rank (1-based, ties share the mean) of each point, from the one-hot
    groups ``g`` (increasing value) and the multiplicities ``w`` (B x n)."""
    cnt = w @ g
    below = cnt.cumsum(1) - cnt
    return (below + (cnt + 1) / 2) @ g.T


def batch_measures(s, y, w, random: bool = False) -> dict:
    """Every measure of :func:`judge` (``random``: of :func:`random_expectation`) for many resamples at
    once: ``w`` (B x n) holds how often each of the n PTMs (scores ``s``, performance ``y``, all finite)
    is drawn in each resample. Equal to :func:`judge` of the resampled arrays (``np.repeat(s, w[b])``)
    up to rounding: the pair sums of Kendall's and the weighted tau are quadratic forms in ``w``
    (copies of one PTM are tied with each other), ranks come from cumulative counts."""
    import numpy as np

    with np.errstate(invalid="ignore", divide="ignore"):
        return _batch_measures(s, y, w, random)


def _batch_measures(s, y, w, random):
    import numpy as np

    s, y, w = np.asarray(s, dtype=float), np.asarray(y, dtype=float), np.asarray(w, dtype=float)
    n_res, n = w.shape
    out = {m: np.full(n_res, np.nan) for m in MEASURES}
    N = w.sum(1)
    ok = N >= MIN_PTMS
    if n == 0 or not ok.any():
        return out
    rows = np.arange(n_res)
    if random:
        s = np.zeros(n)
    present = w > 0
    ymax = np.where(present, y, -np.inf).max(1)
    best = present & (y[None, :] == ymax[:, None])
    gy = _groups(y)
    cy = w @ gy
    y_varies = cy.max(1) < N
    # --- the top of the ranking: score levels, highest first
    lev = _groups(-s)
    level = lev.argmax(1)
    cnt, bcnt, ysum = w @ lev, (w * best) @ lev, (w * y) @ lev
    cum = cnt.cumsum(1)
    before = cum - cnt
    top = (cnt > 0).argmax(1)
    out["top1_regret"] = np.where(ok, ymax - ysum[rows, top] / np.maximum(cnt[rows, top], 1), np.nan)
    first = (bcnt > 0).argmax(1)  # the level of the best-scored truly best PTM
    g, t, m = before[rows, first], cnt[rows, first], bcnt[rows, first]
    j = np.arange(1, int((t - m).max()) + 2)[None, :]
    p = np.exp(_log_comb(t[:, None] - j, m[:, None] - 1) - _log_comb(t, m)[:, None])
    out["mrr"] = np.where(ok, (p / (g[:, None] + j)).sum(1), np.nan)
    by_level = np.lexsort((y, level))  # inside a level, performance increasing
    lv_sorted, y_sorted, w_sorted = level[by_level], y[by_level], w[:, by_level]
    for k in sorted({TOP_K, *REL_K}):
        if k > 1 and not (N > k).any():
            continue
        kth = (cum >= k).argmax(1)
        g, t = before[rows, kth], cnt[rows, kth]
        r = k - g
        if k == TOP_K:
            above_best = (bcnt.cumsum(1) - bcnt)[rows, kth] > 0
            miss = _comb_small(t - bcnt[rows, kth], r, k) / _comb_small(t, r, k)
            out["top3_hit"] = np.where(N > k, np.where(above_best, 1.0, 1.0 - miss), np.nan)
        if k in REL_K:
            a = np.where(present & (level[None, :] < kth[:, None]), y[None, :], -np.inf).max(1)
            inside = lv_sorted[None, :] == kth[:, None]
            wi = w_sorted * inside
            c = wi.cumsum(1)
            rr = r[:, None]
            prob = np.where(inside, (_comb_small(c, rr, k) - _comb_small(c - wi, rr, k))
                            / _comb_small(t, r, k)[:, None], 0.0)
            expect = (prob * np.maximum(a[:, None], y_sorted[None, :])).sum(1)
            defined = (N > k if k > 1 else N > 0) & (ymax > 0)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[f"top{k}_rel_acc"] = np.where(defined, expect / ymax, np.nan)
    for key in ("top1_regret", "mrr"):
        out[key] = np.where(ok, out[key], np.nan)
    for k in REL_K:
        out[f"top{k}_rel_acc"] = np.where(ok, out[f"top{k}_rel_acc"], np.nan)
    out["top3_hit"] = np.where(ok, out["top3_hit"], np.nan)
    # --- correlations
    if random:
        zero = np.where(ok & y_varies, 0.0, np.nan)
        out.update(kendall_tau_b=zero, pearson=zero, spearman=zero.copy())
        out["weighted_tau"] = np.where(ok & y_varies, _random_weighted_tau_batch(y, w, gy, cy, N), np.nan)
        return out
    gs = _groups(s)
    cs = w @ gs
    varies = ok & y_varies & (cs.max(1) < N)
    sk = np.sign(s[:, None] - s[None, :]) * np.sign(y[:, None] - y[None, :])
    wk = w @ sk
    n0 = N * (N - 1) / 2
    tx, ty = (cs * (cs - 1)).sum(1) / 2, (cy * (cy - 1)).sum(1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        out["kendall_tau_b"] = np.where(varies, (w * wk).sum(1) / 2 / np.sqrt((n0 - tx) * (n0 - ty)), np.nan)
    h = _harmonic(int(N.max()))

    def half(first, second, g_first, g_second):  # scipy's _weightedrankedtau, ranked by ``first``
        order = np.lexsort((-second, -first))
        wo = w[:, order]
        start = (wo.cumsum(1) - wo).astype(int)
        hw = np.empty_like(w)
        hw[:, order] = h[start + wo.astype(int)] - h[start]  # the weights 1 / (rank + 1) of a PTM's copies
        tot = (N - 1) * h[N.astype(int)]
        u = ((w @ g_first - 1) * (hw @ g_first)).sum(1)
        v = ((w @ g_second - 1) * (hw @ g_second)).sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.clip((hw * wk).sum(1) / np.sqrt(tot - u) / np.sqrt(tot - v), -1.0, 1.0)

    out["weighted_tau"] = np.where(varies, (half(s, y, gs, gy) + half(y, s, gy, gs)) / 2, np.nan)
    out["pearson"] = np.where(varies, _weighted_pearson(np.broadcast_to(s, w.shape), np.broadcast_to(y, w.shape),
                                                        w, N), np.nan)
    out["spearman"] = np.where(varies, _weighted_pearson(_average_ranks(gs, w), _average_ranks(gy, w), w, N), np.nan)
    return out


def _random_weighted_tau_batch(y, w, gy, cy, N):
    """:func:`random_weighted_tau` of every resample (groups of tied ``y`` with counts ``cy``)."""
    import numpy as np

    h = _harmonic(int(N.max()))
    desc = cy[:, ::-1]  # groups by decreasing y
    rho = desc.cumsum(1) - desc
    below = N[:, None] - rho - desc
    hi = h[(rho + desc).astype(int)] - h[rho.astype(int)]
    num = (((desc + 1 + 2 * rho) * hi - 2 * desc) / (desc + 1) * (below - rho)).sum(1)
    u = ((desc - 1) * hi).sum(1)
    tot = (N - 1) * h[N.astype(int)]
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / np.sqrt(tot - u) / np.sqrt(tot) / 2


def resample_counts(strata, n_resamples: int, rng):
    """Stratified bootstrap: (n_resamples x n) counts, each stratum (base model) of ``strata`` drawing
    its own number of PTMs with replacement from its PTMs."""
    import numpy as np

    strata = np.asarray(strata)
    out = np.zeros((n_resamples, len(strata)))
    for b in dict.fromkeys(strata.tolist()):
        idx = np.flatnonzero(strata == b)
        draws = rng.integers(0, len(idx), size=(n_resamples, len(idx)))
        for col in range(len(idx)):
            out[:, idx[col]] = (draws == col).sum(1)
    return out


def interval(values, confidence: float = CONFIDENCE):
    """The percentile interval of resampled ``values`` (NaN resamples skipped; NaN when none is left)."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return math.nan, math.nan
    lo, hi = np.percentile(v, [50 * (1 - confidence), 50 * (1 + confidence)])
    return float(lo), float(hi)


# --------------------------------------------------------------------------------- tables

def usable_estimates(est):
    """Rows of the tidy estimators table that have a score: applicable and finite (text or bool
    ``applicable``; an absent column counts as applicable)."""
    import numpy as np

    score = est["score"].astype(float)
    ok = np.isfinite(score)
    if "applicable" in est.columns:
        ok &= est["applicable"].astype(str).str.strip().str.lower().isin(("true", "1", "1.0", "yes"))
    return est[ok].assign(score=score[ok])


def mean_over_seeds(cons):
    """Per (PTM, eval task): the consumer metric averaged over seeds (a missing ``seed`` column is seed 0)."""
    id_cols = [c for c in cons.columns if c not in ("value", "seed", "diverged")]
    return cons.groupby(id_cols, sort=False, dropna=False, as_index=False)["value"].mean()


def baseline_scores(cons, tasks, parameters=None):
    """The scored baselines as rows of the tidy estimators table (``kind`` baseline), on ``tasks``:
    ``base_score``: a merged PTM scored by its base model's own fine-tuned performance on the task
    (the mean over seeds); a base model gets no score (its own performance is what is predicted: the
    oracle), so the baseline is judged on the merged PTMs. ``param_count`` (when ``parameters``, {PTM or
    base model: parameter count}, is given): the PTM's parameter count, else its base model's; PTMs
    with neither get no score. The ``random`` baseline has no scores (:func:`random_expectation`)."""
    import pandas as pd

    perf = mean_over_seeds(cons)
    perf = perf[perf["eval_task"].isin(list(tasks))]
    merged = perf["task_1"].astype(str) != ""
    own = perf[~merged].set_index(["ptm", "eval_task"])["value"]
    ids = ["ptm", "base", "task_1", "task_2", "ratio", "eval_task"]
    rows = perf[merged][ids].copy()
    rows["score"] = [own.get((b, t), math.nan) for b, t in zip(rows["base"], rows["eval_task"], strict=True)]
    parts = [rows.assign(estimator=BASE_SCORE)]
    if parameters is not None:
        p = perf[ids].copy()
        p["score"] = [float(parameters.get(a, parameters.get(b, math.nan)))
                      for a, b in zip(p["ptm"], p["base"], strict=True)]
        parts.append(p.assign(estimator=PARAM_COUNT))
    out = pd.concat(parts, ignore_index=True)
    return out.assign(applicable=out["score"].notna(), kind=BASELINE)


def judging_table(est, cons, order=None, baselines=None, n_boot: int = 0, seed: int = 0,
                  confidence: float = CONFIDENCE, replicates: dict | None = None):
    """Per eval task x estimator x scope (pooled, then each base model): :func:`judge` of the
    estimator's scores against the performance ``cons`` (one row per PTM and eval task, or per seed:
    averaged here). ``order``: the task order (default: sorted). ``baselines``: rows of
    :func:`baseline_scores` (judged after the estimators, on the estimators' tasks, with the ``random``
    baseline last); None: the estimators alone. ``n_boot`` > 0: every measure gets a ``confidence``
    interval from that many stratified bootstrap resamples of the task's PTMs (seeded by ``seed`` and
    the task's position; the same resamples for every estimator); ``replicates``, a dict, receives
    {(task, estimator): {"pooled": {measure: values}, "within": {measure: values}}} for
    :func:`leaderboard`."""
    import numpy as np
    import pandas as pd

    perf = mean_over_seeds(cons)[["ptm", "eval_task", "metric", "value"]]
    scored = usable_estimates(est)
    scored = scored.assign(kind=scored["kind"] if "kind" in scored.columns else ESTIMATOR)
    tasks_of_estimators = set(scored["eval_task"])
    if baselines is not None:
        b = usable_estimates(baselines)
        scored = pd.concat([scored, b[b["eval_task"].isin(tasks_of_estimators)]], ignore_index=True)
    joined = scored.merge(perf, on=["ptm", "eval_task"], how="inner")
    rows = []
    tasks = order(set(joined["eval_task"])) if order else sorted(set(joined["eval_task"]))
    for ti, task in enumerate(tasks):
        sub = joined[joined["eval_task"] == task]
        metric = sub["metric"].iloc[0]
        ptms = sub.drop_duplicates("ptm")[["ptm", "base", "value"]]
        if baselines is not None:  # the random baseline ranks every PTM of the task with a performance
            extra = cons_ptms(cons, task)
            ptms = pd.concat([ptms, extra[~extra["ptm"].isin(ptms["ptm"])]], ignore_index=True)
        bases = list(dict.fromkeys(ptms["base"]))
        ptms = ptms.assign(_b=ptms["base"].map(bases.index)).sort_values("_b", kind="stable").reset_index(drop=True)
        y = ptms["value"].to_numpy(float)
        w = (resample_counts(ptms["base"].to_numpy(), n_boot, np.random.default_rng([seed, ti]))
             if n_boot else None)
        scopes = [(POOLED, np.arange(len(ptms))), *((b, np.flatnonzero(ptms["base"].to_numpy() == b))
                                                    for b in bases)]
        names = list(dict.fromkeys(sub["estimator"])) + ([RANDOM] if baselines is not None else [])
        for name in names:
            is_random = name == RANDOM
            e = sub[sub["estimator"] == name]
            kind = BASELINE if is_random else e["kind"].iloc[0]
            score = (np.zeros(len(ptms)) if is_random else
                     ptms["ptm"].map(e.drop_duplicates("ptm").set_index("ptm")["score"]).to_numpy(float))
            reps = {}
            for scope, idx in scopes:
                keep = idx[np.isfinite(score[idx]) & np.isfinite(y[idx])]
                if scope != POOLED and len(keep) == 0:
                    continue
                row = random_expectation(y[keep]) if is_random else judge(score[keep], y[keep])
                cis = dict.fromkeys(CI_COLUMNS, math.nan)
                if w is not None:
                    rep = batch_measures(score[keep], y[keep], w[:, keep], random=is_random)
                    reps[scope] = rep
                    for m in MEASURES:
                        cis[f"{m}_ci_low"], cis[f"{m}_ci_high"] = interval(rep[m], confidence)
                rows.append({"eval_task": task, "metric": metric, "estimator": name, "kind": kind,
                             "scope": scope, **row, **cis})
            if replicates is not None and reps:
                within = [r for sc, r in reps.items() if sc != POOLED]
                wmean = {m: (_nanmean(np.stack([r[m] for r in within])) if within else np.full(n_boot, np.nan))
                         for m in MEASURES}
                replicates[(task, name)] = {"pooled": reps.get(POOLED), "within": wmean}
    return pd.DataFrame(rows, columns=list(JUDGING_COLUMNS))


def cons_ptms(cons, task):
    """The PTMs (``ptm``, ``base``, ``value``: mean over seeds) with a finite performance on ``task``."""
    perf = mean_over_seeds(cons[cons["eval_task"] == task])
    perf = perf[perf["value"].notna()]
    return perf[["ptm", "base", "value"]]


def _nanmean(values):
    import warnings

    import numpy as np

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=0)


def common_tasks(task_sets: dict) -> tuple[list, set]:
    """The estimators ranked and the tasks they share: every estimator with a task, less (fewest
    tasks first, then last listed) those that would leave no task in common."""
    ranked = [e for e, ts in task_sets.items() if ts]
    while ranked:
        shared = set.intersection(*(set(task_sets[e]) for e in ranked))
        if shared:
            return ranked, shared
        drop = min(reversed(ranked), key=lambda e: len(task_sets[e]))
        ranked.remove(drop)
    return [], set()


LEADERBOARD_FIXED = ("rank", "estimator", "kind", "n_tasks", "tasks", "best_indistinguishable",
                     f"{RANK_BY}_pooled_diff_ci_low", f"{RANK_BY}_pooled_diff_ci_high")


def leaderboard_columns() -> list[str]:
    cols = list(LEADERBOARD_FIXED)
    for m in MEASURES:
        cols += [f"{m}_pooled", f"{m}_within", f"{m}_within_bases", f"{m}_pooled_ci_low", f"{m}_pooled_ci_high",
                 f"{m}_within_ci_low", f"{m}_within_ci_high"]
    return cols


def leaderboard(judging, replicates: dict | None = None, confidence: float = CONFIDENCE, order=None):
    """Per estimator (and baseline): each measure's mean over tasks, pooled and within base models,
    on the tasks every ranked estimator has (module docstring), with its interval and the paired
    comparison with the best estimator when ``replicates`` (:func:`judging_table`) are given."""
    import numpy as np
    import pandas as pd

    if "kind" not in judging.columns:
        judging = judging.assign(kind=ESTIMATOR)
    pooled = judging[judging["scope"] == POOLED]
    within_rows = judging[judging["scope"] != POOLED]
    within = within_rows.groupby(["estimator", "eval_task"], sort=False)[list(MEASURES)]
    wmean, wcount = within.mean(), within.count()
    names = list(dict.fromkeys(judging["estimator"]))
    task_order = list(dict.fromkeys(judging["eval_task"]))
    task_sets = {e: [t for t in task_order if t in set(pooled.loc[(pooled["estimator"] == e)
                                                                  & pooled[RANK_BY].notna(), "eval_task"])]
                 for e in names}
    ranked, shared = common_tasks(task_sets)
    rows, rep_of = [], {}
    for name in names:
        ts = [t for t in task_order if t in shared] if name in ranked else task_sets[name]
        if not ts:  # nothing defined: its own tasks, every value NaN
            ts = list(dict.fromkeys(pooled.loc[pooled["estimator"] == name, "eval_task"]))
        p = pooled[(pooled["estimator"] == name) & pooled["eval_task"].isin(ts)]
        kind = p["kind"].iloc[0] if len(p) else ESTIMATOR
        row = {"estimator": name, "kind": kind, "n_tasks": len([t for t in ts if t in task_sets[name]]),
               "tasks": ";".join(ts)}
        keys = [(name, t) for t in ts if (name, t) in wmean.index]
        w = wmean.loc[keys] if keys else None
        for m in MEASURES:
            row[f"{m}_pooled"] = float(p[m].mean()) if p[m].notna().any() else math.nan
            row[f"{m}_within"] = float(w[m].mean()) if w is not None and w[m].notna().any() else math.nan
            row[f"{m}_within_bases"] = float(wcount.loc[keys, m].mean()) if keys else 0.0
            row.update(dict.fromkeys([f"{m}_{sc}_ci_{side}" for sc in ("pooled", "within") for side in ("low", "high")],
                                     math.nan))
        if replicates is not None:
            reps = [replicates.get((t, name)) for t in ts]
            reps = [r for r in reps if r is not None and r["pooled"] is not None]
            if reps:
                rep_of[name] = {sc: {m: _nanmean(np.stack([r[sc][m] for r in reps])) for m in MEASURES}
                                for sc in ("pooled", "within")}
                for m in MEASURES:
                    for sc in ("pooled", "within"):
                        row[f"{m}_{sc}_ci_low"], row[f"{m}_{sc}_ci_high"] = interval(rep_of[name][sc][m], confidence)
        rows.append(row)
    board = pd.DataFrame(rows)
    key = f"{RANK_BY}_pooled"
    rank = board[key].where(board["estimator"].isin(ranked)).rank(ascending=False, method="min")
    board.insert(0, "rank", rank)
    board["best_indistinguishable"] = pd.array([pd.NA] * len(board), dtype="boolean")
    board[f"{key}_diff_ci_low"] = math.nan
    board[f"{key}_diff_ci_high"] = math.nan
    if rank.notna().any():
        best = board.loc[rank.idxmin(), "estimator"]
        for i, name in board["estimator"].items():
            if name in ranked and name in rep_of and best in rep_of:
                diff = rep_of[best]["pooled"][RANK_BY] - rep_of[name]["pooled"][RANK_BY]
                lo, hi = interval(diff, confidence) if name != best else (0.0, 0.0)
                board.loc[i, [f"{key}_diff_ci_low", f"{key}_diff_ci_high"]] = [lo, hi]
                board.loc[i, "best_indistinguishable"] = bool(name == best or (np.isfinite(lo) and lo <= 0))
    board = board.sort_values(["rank", "estimator"], na_position="last", kind="stable").reset_index(drop=True)
    board["rank"] = board["rank"].astype("Int64")
    return board[leaderboard_columns()]


def ranked_tasks(board) -> list[str]:
    """The tasks the leaderboard ranks on (those of its ranked rows)."""
    r = board[board["rank"].notna()]
    return r["tasks"].iloc[0].split(";") if len(r) and r["tasks"].iloc[0] else []


def seed_rank_agreement(values) -> tuple[float, int]:
    """Mean over seed pairs of Kendall's tau-b between the seeds' PTM rankings, and the number of pairs
    with a defined tau. ``values``: PTMs x seeds (pandas DataFrame; NaN: no run); per pair only the
    PTMs with both seeds count, and pairs with fewer than :data:`MIN_PTMS` of them or a constant side
    are skipped."""
    import numpy as np
    from scipy import stats

    taus = []
    for a, b in itertools.combinations(values.columns, 2):
        x, y = _clean(values[a], values[b])
        if len(x) >= MIN_PTMS and np.ptp(x) > 0 and np.ptp(y) > 0:
            taus.append(float(stats.kendalltau(x, y).statistic))
    return (float(np.mean(taus)) if taus else math.nan), len(taus)


def noise_table(cons, order=None):
    """The seed noise ceiling (module docstring) of the performance ``cons`` (one row per PTM, eval
    task and seed; no ``seed`` column: one seed, 0). Per task and scope (pooled, each base) a row with
    ``ptm`` "" (``sd``: the mean over its PTMs of the per-PTM sd), then one row per PTM. With one seed
    only the per-scope rows, NaN, with ``note`` saying that 2+ seeds are needed."""
    import numpy as np
    import pandas as pd

    cons = cons if "seed" in cons.columns else cons.assign(seed=0)
    rows = []
    tasks = order(set(cons["eval_task"])) if order else sorted(set(cons["eval_task"]))
    for task in tasks:
        sub = cons[cons["eval_task"] == task]
        metric = sub["metric"].iloc[0]
        wide = sub.pivot_table(index="ptm", columns="seed", values="value", aggfunc="mean", dropna=False)
        base_of = sub.drop_duplicates("ptm").set_index("ptm")["base"]
        n_seeds = wide.shape[1]
        sd = wide.std(axis=1, ddof=1) if n_seeds > 1 else pd.Series(np.nan, index=wide.index)
        for scope, ptms in [(POOLED, list(wide.index)), *((b, list(g.index)) for b, g in
                                                           base_of.groupby(base_of, sort=False))]:
            w = wide.loc[ptms]
            if n_seeds < 2:
                tau, note = math.nan, ONE_SEED_NOTE
            else:
                tau, pairs = seed_rank_agreement(w)
                note = "" if pairs else f"no seed pair with {MIN_PTMS}+ PTMs and varying performance"
            rows.append({"eval_task": task, "metric": metric, "scope": scope, "ptm": "", "n_seeds": n_seeds,
                         "n_ptms": len(ptms), "sd": float(sd.loc[ptms].mean()) if sd.loc[ptms].notna().any()
                         else math.nan, "seed_kendall_tau_b": tau, "note": note})
        if n_seeds > 1:
            for ptm in wide.index:
                rows.append({"eval_task": task, "metric": metric, "scope": base_of[ptm], "ptm": ptm,
                             "n_seeds": int(wide.loc[ptm].notna().sum()), "n_ptms": 1, "sd": float(sd[ptm]),
                             "seed_kendall_tau_b": math.nan, "note": ""})
    return pd.DataFrame(rows, columns=list(NOISE_COLUMNS))
