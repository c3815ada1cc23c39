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
MEASURES = ("kendall_tau_b", "weighted_tau", "pearson", "spearman", "top1_regret", "top3_hit")
CORRELATIONS = MEASURES[:4]
JUDGING_COLUMNS = ("eval_task", "metric", "estimator", "scope", "n", *MEASURES, "kendall_p", "note")
NOISE_COLUMNS = ("eval_task", "metric", "scope", "ptm", "n_seeds", "n_ptms", "sd", "seed_kendall_tau_b", "note")
ONE_SEED_NOTE = "one seed: the noise ceiling needs finetune.seeds with 2 or more seeds"


def _clean(s, y):
    import numpy as np

    s, y = np.asarray(s, dtype=float), np.asarray(y, dtype=float)
    if s.shape != y.shape:
        raise ValueError(f"scores and performance differ in length ({len(s)} vs {len(y)})")
    keep = np.isfinite(s) & np.isfinite(y)
    return s[keep], y[keep]


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
    notes = [] if n > TOP_K else [f"top-{TOP_K} hit needs more than {TOP_K} PTMs ({n})"]
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


def judging_table(est, cons, order=None):
    """Per eval task x estimator x scope (pooled, then each base model): :func:`judge` of the
    estimator's scores against the performance ``cons`` (one row per PTM and eval task, or per seed:
    averaged here). ``order``: the task order (default: sorted)."""
    import pandas as pd

    perf = mean_over_seeds(cons)[["ptm", "eval_task", "metric", "value"]]
    joined = usable_estimates(est).merge(perf, on=["ptm", "eval_task"], how="inner")
    rows = []
    tasks = order(set(joined["eval_task"])) if order else sorted(set(joined["eval_task"]))
    for task in tasks:
        sub = joined[joined["eval_task"] == task]
        metric = sub["metric"].iloc[0]
        for name in dict.fromkeys(sub["estimator"]):
            e = sub[sub["estimator"] == name]
            for scope, g in [(POOLED, e), *e.groupby("base", sort=False)]:
                rows.append({"eval_task": task, "metric": metric, "estimator": name, "scope": scope,
                             **judge(g["score"], g["value"])})
    return pd.DataFrame(rows, columns=list(JUDGING_COLUMNS))


def leaderboard(judging):
    """Per estimator: each measure's mean over tasks, pooled and within base models (module docstring)."""
    import pandas as pd

    pooled = judging[judging["scope"] == POOLED]
    within = judging[judging["scope"] != POOLED].groupby(["estimator", "eval_task"], sort=False)[list(MEASURES)].mean()
    rows = []
    for name in dict.fromkeys(judging["estimator"]):
        p = pooled[pooled["estimator"] == name]
        row = {"estimator": name, "n_tasks": int(p["kendall_tau_b"].notna().sum())}
        w = within.loc[name] if name in within.index.get_level_values(0) else None
        for m in MEASURES:
            row[f"{m}_pooled"] = float(p[m].mean()) if p[m].notna().any() else math.nan
            row[f"{m}_within"] = float(w[m].mean()) if w is not None and w[m].notna().any() else math.nan
        rows.append(row)
    cols = ["rank", "estimator", "n_tasks", *(f"{m}_{s}" for m in MEASURES for s in ("pooled", "within"))]
    board = pd.DataFrame(rows, columns=cols[1:])
    board.insert(0, "rank", board["weighted_tau_pooled"].rank(ascending=False, method="min"))
    board = board.sort_values(["rank", "estimator"], na_position="last", kind="stable").reset_index(drop=True)
    board["rank"] = board["rank"].astype("Int64")
    return board[cols]


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
