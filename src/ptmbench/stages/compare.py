"""Stage compare: a run's fine-tuned performance and LogME scores next to the published bench's, for
every (PTM, task) in both (rule ``compare``; docs/published.md).

A run's PTM is matched to the published record of the same name *and group* (``seen``: a base model
of config ``models``, ``merged``, ``unseen``: of ``unseen_models``; :func:`ptmbench.stages.export.ptm_group`),
so ``xlm-roberta-base`` is compared with the published run of the group the config gives it. The
performance compared is each task's consumer metric (:func:`ptmbench.stages.report.consumer_performance`):
the run's primary seed (what its export publishes: one run per PTM and task, as the published files).

Per task (:func:`task_rows`): the pairs matched, the run's PTMs the published bench lacks (listed,
not an error), Spearman and Kendall tau-b of the two rankings (:func:`ptmbench.stages.report.correlations`),
the mean absolute and the mean difference (run minus published), and the share of pairs within the
seed-noise band ``|difference| <= 2 sqrt(2) sd``: the 95% range of the difference of two runs that
differ only by their seed, each with standard deviation ``sd`` (normal approximation). ``sd`` is the
run's own seed noise when ``finetune.seeds`` has several seeds (the mean over PTMs of the per-PTM
standard deviation across seeds, the ``sd`` of :func:`ptmbench.evaluation.judging.noise_table`), else
:func:`default_sd`. LogME has no seed: its rows have no band (docs/published.md says why the scores
still differ).

A published run "at chance level" scored no better than a constant prediction (:func:`at_chance`).
"""

from __future__ import annotations

import html
import logging
import math
from pathlib import Path

from ptmbench.core import naming, paths
from ptmbench.core import tasks as registry
from ptmbench.evaluation import judging
from ptmbench.io.provenance import atomic_dir, atomic_file
from ptmbench.stages.export import ptm_group
from ptmbench.stages.published import scrolling as scroll
from ptmbench.stages.report import (
    OKABE_ITO,
    consumer_performance,
    correlations,
    html_table,
    metric_label,
    pyplot,
    read_tables,
    write_csv,
)
from ptmbench.stages.report import html_page as page

log = logging.getLogger(__name__)

BAND_SDS = 2 * math.sqrt(2)  # the band's half-width in sd: 95% of the differences of two seeds' runs

# The label counts of the evaluation split of published multi-class tasks without a Matthews correlation
# in their records: mnli's validation_mismatched (entailment, neutral, contradiction). A constant prediction
# scores 0.3522, 0.3182 or 0.3295 there: the values the published diverged mnli runs share exactly.
CLASS_COUNTS = {"mnli": (3_463, 3_129, 3_240)}
PERFORMANCE, LOGME = "performance", "logme"
PAIR_COLUMNS = ["quantity", "eval_task", "metric", "ptm", "group", "base", "ours", "published", "difference",
                "within_band", "published_at_chance", "status"]
TASK_COLUMNS = ["quantity", "eval_task", "metric", "n_run", "n_matched", "n_not_published", "spearman",
                "kendall_tau_b", "mean_abs_difference", "mean_difference", "noise_sd", "noise_source", "band",
                "share_within_band", "n_published_at_chance", "published_at_chance", "not_published", "note"]
MATCHED, NOT_PUBLISHED = "matched", "not in the published bench"


def eval_examples(task: str) -> float | None:
    """The evaluation examples of the exported split: the registry's published evaluation size
    (``published_size``), split evenly over the task's evaluation splits (mnli: 19,647 / 2, of which the
    mismatched split has 9,832). None for a task without a published size (a custom task)."""
    entry = registry.get(task)
    return entry.published_size[1] / len(entry.eval_splits) if entry.published_size else None


def default_sd(task: str) -> float:
    """The seed-noise sd assumed for ``task`` when the run has one seed: ``0.5 / sqrt(n)``, ``n`` its
    evaluation examples (:func:`eval_examples`): the largest standard error of a mean of ``n``
    per-example scores in [0, 1] (accuracy at 50%), the noise one evaluation set alone gives. A floor:
    seed noise on the small tasks (rte, mrpc, wnli, cola) is larger. NaN for a custom task (set
    ``finetune.seeds`` with 2+ seeds for a measured band)."""
    n = eval_examples(task)
    return 0.5 / math.sqrt(n) if n else math.nan


def at_chance(task: str, metrics: dict) -> bool:
    """Whether a published record (``{metric: value}``) scored no better than a constant prediction:
    a binary classification task's Matthews correlation <= 0 (0 is what every constant prediction
    gets); a multi-class task's accuracy <= the largest class share of its evaluation split
    (:data:`CLASS_COUNTS`); a regression's Pearson r undefined (constant predictions) or
    <= 0; squad_v2's f1 <= the share of unanswerable questions (answering none). Other tasks: False."""
    entry = registry.get(task)

    def v(key):
        x = metrics.get(key)
        return math.nan if x is None else float(x)

    if entry.kind == "qa":
        f1, total, no = v("f1"), v("total"), v("NoAns_total")
        return bool(f1 <= 100 * no / total) if all(map(math.isfinite, (f1, total, no))) and total else False
    if entry.kind == "regression":
        r = v("eval_pearson")
        return bool(not math.isfinite(r) or r <= 0)
    if "eval_matthews_correlation" in metrics:
        return bool(v("eval_matthews_correlation") <= 0)
    if task in CLASS_COUNTS:
        return bool(v("eval_accuracy") <= max(CLASS_COUNTS[task]) / sum(CLASS_COUNTS[task]) + 1e-9)
    return False


def _by_group(perf, fn):
    """``fn`` (a function of a tidy table) applied to each group's rows, the ``group`` column kept."""
    import pandas as pd

    parts = [fn(g).assign(group=name) for name, g in perf.groupby("group", sort=False)]
    return pd.concat(parts, ignore_index=True) if parts else fn(perf).assign(group="")


def published_values(pub_perf, pub_logme):
    """Published consumer values (with ``at_chance``) and LogME scores, one row per (PTM, group, task)."""

    cons = _by_group(pub_perf, consumer_performance)
    flags = {}
    for (ptm, group, task), g in pub_perf.groupby(["ptm", "group", "eval_task"], sort=False):
        flags[ptm, group, task] = at_chance(task, dict(zip(g["metric"], g["value"], strict=True)))
    cons["at_chance"] = [flags[k] for k in zip(cons["ptm"], cons["group"], cons["eval_task"], strict=True)]
    return cons, pub_logme


def pair_table(run_perf, run_logme, pub_perf, pub_logme, models, unseen, primary_seed: int,
               export_names: dict | None = None):
    """One row per (quantity, task, run PTM): the run's value, the published value of the same name and
    group, their difference, and ``status`` (matched, or not in the published bench). An unseen model
    with an ``export_name`` (config) is matched by that name (the one its export writes)."""
    export_names = export_names or {}
    import pandas as pd


    cons = consumer_performance(run_perf)
    cons = cons[cons["seed"] == primary_seed]
    pub_cons, pub_logme = published_values(pub_perf, pub_logme)
    rows = []
    for quantity, ours, pub, value in ((PERFORMANCE, cons, pub_cons, "value"), (LOGME, run_logme, pub_logme, "score")):
        chance = pub["at_chance"] if "at_chance" in pub.columns else [None] * len(pub)
        lookup = {(p, g, t): (v, c) for p, g, t, v, c in zip(pub["ptm"], pub["group"], pub["eval_task"], pub[value],
                                                              chance, strict=True)}
        for _, r in ours.iterrows():
            group = ptm_group(r["ptm"], models, unseen)
            hit = lookup.get((export_names.get(r["ptm"], r["ptm"]), group, r["eval_task"]))
            metric = registry.get(r["eval_task"]).consumer_metric if quantity == PERFORMANCE else "logme"
            rows.append({"quantity": quantity, "eval_task": r["eval_task"], "metric": metric, "ptm": r["ptm"],
                         "group": group, "base": r["base"], "ours": float(r[value]),
                         "published": hit[0] if hit else math.nan,
                         "difference": float(r[value]) - hit[0] if hit else math.nan, "within_band": None,
                         "published_at_chance": None if hit is None or hit[1] is None else bool(hit[1]),
                         "status": MATCHED if hit else NOT_PUBLISHED})
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def noise_sd(run_perf) -> dict[str, tuple[float, str]]:
    """Per task ``(sd, where it comes from)``: the run's seed noise with 2+ seeds, else :func:`default_sd`."""

    cons = consumer_performance(run_perf)
    noise = judging.noise_table(cons) if len(cons) else None
    out = {}
    for task in set(cons["eval_task"]):
        row = None if noise is None else noise[(noise["eval_task"] == task) & (noise["scope"] == judging.POOLED)
                                               & (noise["ptm"] == "")]
        if row is not None and len(row) and row.iloc[0]["n_seeds"] > 1 and math.isfinite(row.iloc[0]["sd"]):
            out[task] = (float(row.iloc[0]["sd"]), f"finetune.seeds ({int(row.iloc[0]['n_seeds'])} seeds)")
        else:
            n = eval_examples(task)
            out[task] = (default_sd(task), f"default 0.5/sqrt({n:g}) (one seed)" if n else
                         "none (one seed, no default for this task)")
    return out


def task_rows(pairs, sd: dict[str, tuple[float, str]]):
    """Per (quantity, task): the comparison's figures (module docstring); fills ``pairs.within_band``."""
    import numpy as np
    import pandas as pd


    rows = []
    for quantity in (PERFORMANCE, LOGME):
        q = pairs[pairs["quantity"] == quantity]
        for task in naming.ordered(set(q["eval_task"])):
            sub = q[q["eval_task"] == task]
            m = sub[sub["status"] == MATCHED]
            s, source = sd.get(task, (math.nan, "")) if quantity == PERFORMANCE else (math.nan, "none (LogME has no seed)")
            band = BAND_SDS * s if math.isfinite(s) else math.nan
            within = (m["difference"].abs() <= band) if math.isfinite(band) else pd.Series(np.nan, index=m.index)
            if math.isfinite(band):
                pairs.loc[m.index, "within_band"] = within
            c = correlations(m["ours"], m["published"])
            chance = m[m["published_at_chance"].fillna(False).astype(bool)]
            not_pub = sub[sub["status"] != MATCHED]["ptm"]
            note = "" if len(m) else "no PTM of the run is in the published bench"
            if len(m) and c["note"]:
                note = c["note"]
            rows.append({"quantity": quantity, "eval_task": task, "metric": sub["metric"].iloc[0], "n_run": len(sub),
                         "n_matched": len(m), "n_not_published": len(not_pub), "spearman": c["spearman"],
                         "kendall_tau_b": c["kendall_tau"],
                         "mean_abs_difference": float(m["difference"].abs().mean()) if len(m) else math.nan,
                         "mean_difference": float(m["difference"].mean()) if len(m) else math.nan,
                         "noise_sd": s, "noise_source": source, "band": band,
                         "share_within_band": float(within.mean()) if len(m) and math.isfinite(band) else math.nan,
                         "n_published_at_chance": len(chance), "published_at_chance": ";".join(chance["ptm"]),
                         "not_published": ";".join(not_pub), "note": note})
    return pd.DataFrame(rows, columns=TASK_COLUMNS)


def summary_text(tasks, pairs) -> str:
    """The comparison in a line or two for the report's summary."""
    perf = tasks[tasks["quantity"] == PERFORMANCE]
    run_ptms = pairs["ptm"].nunique()
    matched = pairs[pairs["status"] == MATCHED]
    if not len(matched):
        return (f"Comparison with the published bench: none of this run's {run_ptms} PTMs is a published PTM "
                "(same name and group), so nothing is compared (results/compare/tasks.csv). The published bench's "
                "PTMs are its 12 seen base models, their 540 merges and 32 unseen models.\n")
    p = matched[matched["quantity"] == PERFORMANCE]
    within = perf["share_within_band"]
    w = (perf["share_within_band"] * perf["n_matched"]).sum() / perf.loc[within.notna(), "n_matched"].sum() \
        if within.notna().any() else math.nan
    not_pub = run_ptms - matched["ptm"].nunique()  # PTMs matched on no task
    return (f"Comparison with the published bench: {p['ptm'].nunique()} of {run_ptms} PTMs matched, "
            f"{len(p)} (PTM, task) performance pairs over {p['eval_task'].nunique()} tasks; mean |run - published| "
            f"{_f(p['difference'].abs().mean())}, {_f(100 * w, 0)}% within the seed-noise band; "
            f"{int(perf['n_published_at_chance'].sum())} published run(s) at chance level; "
            f"{not_pub} PTM(s) not in the published bench (results/compare/tasks.csv).\n")


def _f(x, digits: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def plot_task(pairs, tasks, task, path) -> None:
    """Published (x) vs the run (y) on ``task``: performance (with the seed-noise band around y = x,
    published runs at chance level as crosses) and LogME, one panel each."""

    plt = pyplot()
    import numpy as np

    quantities = [q for q in (PERFORMANCE, LOGME) if len(pairs[(pairs["quantity"] == q) & (pairs["eval_task"] == task)
                                                                & (pairs["status"] == MATCHED)])]
    fig, axes = plt.subplots(1, len(quantities), figsize=(4.6 * len(quantities), 4.2), layout="constrained",
                             squeeze=False)
    for ax, q in zip(axes.flat, quantities, strict=True):
        m = pairs[(pairs["quantity"] == q) & (pairs["eval_task"] == task) & (pairs["status"] == MATCHED)]
        t = tasks[(tasks["quantity"] == q) & (tasks["eval_task"] == task)].iloc[0]
        x, y = m["published"].to_numpy(float), m["ours"].to_numpy(float)
        finite = np.isfinite(x) & np.isfinite(y)
        lo, hi = (float(min(x[finite].min(), y[finite].min())), float(max(x[finite].max(), y[finite].max()))) \
            if finite.any() else (0.0, 1.0)
        pad = 0.05 * (hi - lo or 1.0)
        line = np.array([lo - pad, hi + pad])
        ax.plot(line, line, color="0.3", linewidth=0.9, label="run = published")
        if math.isfinite(t["band"]):
            ax.fill_between(line, line - t["band"], line + t["band"], color=OKABE_ITO[2], alpha=0.2,
                            label=f"seed-noise band (+-{t['band']:.3f})")
        chance = m["published_at_chance"].fillna(False).astype(bool).to_numpy()
        ax.scatter(x[~chance], y[~chance], s=18, color=OKABE_ITO[4], label="PTM")
        if chance.any():
            ax.scatter(x[chance], y[chance], s=30, marker="x", color=OKABE_ITO[5], label="published at chance level")
        ax.set_xlim(*line)
        ax.set_ylim(*line)
        label = metric_label(task) if q == PERFORMANCE else "LogME score"
        ax.set_xlabel(f"published {label}", fontsize=8)
        ax.set_ylabel(f"this run's {label}", fontsize=8)
        ax.set_title(f"{task} {q}: n = {int(t['n_matched'])}, Spearman {_f(t['spearman'], 2)}, "
                     f"mean |diff| {_f(t['mean_abs_difference'])}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, loc="upper left", frameon=False)
    fig.savefig(path, dpi=110)
    plt.close(fig)


LOGME_REASONS = ("Why LogME scores differ from the published ones even for the same model (docs/logme.md): the "
                 "features average the last hidden state over the non-padding tokens only (the original averaged "
                 "padding too, so its features depended on the batch); rank-deficient features (N < D, as WNLI) "
                 "count the null directions; the fixed point runs to convergence instead of at most 11 steps; and "
                 "features in bf16 (logme.precision auto on a GPU) or a newer checkpoint of the hub model change "
                 "the scores further.")


LARGEST = 15  # the largest differences shown on the report page


def html_page(tasks, pairs, summary: str) -> str:
    """The report page of the comparison."""

    shown = tasks.drop(columns=["published_at_chance", "not_published"])
    parts = [f"<p>{html.escape(summary)}</p>",
             "<p>Each run PTM is matched to the published record of the same name and group (seen base model, "
             "merged, unseen). Performance: the task's consumer metric, the run's primary seed. The band is "
             "2&radic;2 sd around the published value: 95% of the differences between two runs that differ only "
             "by their seed (sd from finetune.seeds, or the default 0.5/&radic;n of the task's n evaluation "
             "examples: a floor). A published run at chance level scored no better than a constant "
             "prediction.</p>",
             scroll(html_table(shown, "per task", left=("quantity", "eval_task", "metric", "noise_source", "note"))),
             f"<p>{html.escape(LOGME_REASONS)}</p>"]
    matched = pairs[(pairs["status"] == MATCHED) & (pairs["quantity"] == PERFORMANCE)]
    if len(matched):
        top = matched.assign(size=matched["difference"].abs()).sort_values("size", ascending=False, kind="stable")
        parts.append(scroll(html_table(top.head(LARGEST)[["eval_task", "ptm", "group", "published", "ours", "difference",
                                                    "within_band", "published_at_chance"]],
                                f"the {min(LARGEST, len(top))} largest performance differences (all: pairs.csv)",
                                left=("eval_task", "ptm", "group"))))
    chance = pairs[(pairs["status"] == MATCHED) & pairs["published_at_chance"].fillna(False).astype(bool)]
    if len(chance):
        parts.append(scroll(html_table(chance[["eval_task", "ptm", "group", "published", "ours", "difference"]],
                                "matched PTMs whose published run is at chance level",
                                       left=("eval_task", "ptm", "group"))))
    missing = pairs[pairs["status"] != MATCHED].drop_duplicates("ptm")
    if len(missing):
        parts.append("<p>Not in the published bench (reported, not compared): "
                     + html.escape(", ".join(missing["ptm"])) + "</p>")
    return page("Comparison with the published bench", "\n".join(parts), here=paths.COMPARE_HTML)


def compare(run_performance_csv, run_logme_csv, published_performance_csv, published_logme_csv, models, unseen,
            seeds, pairs_csv, tasks_csv, plots_dir, html_file, summary_txt, export_names=None) -> None:
    """Rule ``compare``: the pair and task tables, a plot per task with matches, the HTML page and the
    summary line (module docstring)."""

    run_perf, run_logme = read_tables(run_performance_csv, run_logme_csv)
    pub_perf, pub_logme = read_tables(published_performance_csv, published_logme_csv)
    pairs = pair_table(run_perf, run_logme, pub_perf, pub_logme, list(models), list(unseen), int(seeds[0]),
                       export_names)
    tasks = task_rows(pairs, noise_sd(run_perf))
    text = summary_text(tasks, pairs)
    write_csv(pairs, pairs_csv)
    write_csv(tasks, tasks_csv)
    with atomic_dir(plots_dir) as tmp:
        for task in naming.ordered(set(pairs.loc[pairs["status"] == MATCHED, "eval_task"])):
            plot_task(pairs, tasks, task, Path(tmp) / f"compare_{task}.png")
    with atomic_file(html_file) as fh:
        fh.write(html_page(tasks, pairs, text))
    with atomic_file(summary_txt) as fh:
        fh.write(text)
    log.info("%s", text)
