"""Stage report: LogME vs fine-tuned performance over the zoo, from the export's tidy tables.

:func:`report` (rule ``report``) writes the rank correlations (Kendall tau, Pearson, Spearman) of
LogME scores and the consumer's metric per GLUE task, over all PTMs and per base model
(``correlations.csv``), a scatter plot per task and a heat map of the merged PTMs per base model
(``plots/``), and a plain-text summary (``summary.txt``). All appear in ``snakemake --report``.
The performance compared is the one the predictor reads (the ``consumer_metric`` of its entry in
:mod:`ptmbench.tasks`, from the exported split; squad_v2 f1 / 100).
"""

from __future__ import annotations

import logging
import math

from ptmbench import naming
from ptmbench import tasks as registry
from ptmbench.export import ID_COLUMNS
from ptmbench.provenance import atomic_dir, atomic_file, atomic_path

log = logging.getLogger(__name__)


def read_tables(performance_csv, logme_csv):
    import pandas as pd

    text = {c: str for c in ("ptm", "base", "task_1", "task_2", "ratio", "eval_task", "split", "metric")}
    return (pd.read_csv(performance_csv, dtype=text, keep_default_na=False, na_values={"value": ["", "NaN"]}),
            pd.read_csv(logme_csv, dtype=text, keep_default_na=False, na_values={"score": ["", "NaN"]}))


def consumer_performance(perf):
    """Per (PTM, eval task): the consumer's metric from the exported split (squad_v2 f1 / 100)."""
    import pandas as pd

    parts = []
    for task, group in perf.groupby("eval_task", sort=False):
        entry = registry.get(task)
        sel = group[(group["split"] == entry.export_split) & (group["metric"] == entry.consumer_metric)]
        sel = sel.assign(value=sel["value"] * entry.consumer_scale, metric=entry.consumer_metric)
        parts.append(sel)
    cols = [*ID_COLUMNS, "eval_task", "metric", "value", "diverged"]
    return pd.concat(parts)[cols].reset_index(drop=True) if parts else pd.DataFrame(columns=cols)


def correlations(x, y) -> dict:
    """Kendall tau(-b), Pearson r and Spearman rho (with p-values) of paired values.

    Pairs with a NaN are dropped. Fewer than 3 pairs, or a constant side, make every coefficient
    NaN, and ``note`` says why (scipy would warn and return NaN, or a meaningless +-1 for n = 2).
    """
    import numpy as np
    from scipy import stats

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    out = {"n": int(len(x))}
    names = ("kendall_tau", "kendall_p", "pearson", "pearson_p", "spearman", "spearman_p")
    note = ""
    if len(x) < 3:
        note = f"fewer than 3 PTMs ({len(x)})"
    elif np.ptp(x) == 0:
        note = "constant LogME scores"
    elif np.ptp(y) == 0:
        note = "constant performance"
    if note:
        return {**out, **dict.fromkeys(names, math.nan), "note": note}
    k, p = stats.pearsonr(x, y), stats.spearmanr(x, y)
    t = stats.kendalltau(x, y)
    return {**out, "kendall_tau": float(t.statistic), "kendall_p": float(t.pvalue),
            "pearson": float(k.statistic), "pearson_p": float(k.pvalue),
            "spearman": float(p.statistic), "spearman_p": float(p.pvalue), "note": ""}


def correlation_table(perf, logme):
    """Per GLUE task: LogME vs fine-tuned performance over all PTMs, then over each base model's."""
    import pandas as pd

    cons = consumer_performance(perf)
    joined = logme.merge(cons[["ptm", "eval_task", "value"]], on=["ptm", "eval_task"], how="inner")
    rows = []
    for task in naming.ordered(set(joined["eval_task"])):
        sub = joined[joined["eval_task"] == task]
        groups = [("(all)", sub)] + [(b, g) for b, g in sub.groupby("base", sort=False)]
        for name, g in groups:
            rows.append({"eval_task": task, "metric": registry.get(task).consumer_metric, "base": name,
                         **correlations(g["score"], g["value"])})
    return pd.DataFrame(rows, columns=["eval_task", "metric", "base", "n", "kendall_tau", "kendall_p",
                                       "pearson", "pearson_p", "spearman", "spearman_p", "note"])


def plot_logme_scatter(joined, task, corr_row, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    bases = list(dict.fromkeys(joined["base"]))
    cmap = plt.get_cmap("tab20" if len(bases) > 10 else "tab10")
    for i, base in enumerate(bases):
        g = joined[joined["base"] == base]
        merged = g["task_1"] != ""
        ax.scatter(g.loc[merged, "score"], g.loc[merged, "value"], s=14, alpha=0.75, color=cmap(i % cmap.N),
                   label=base)
        ax.scatter(g.loc[~merged, "score"], g.loc[~merged, "value"], s=90, marker="*", color=cmap(i % cmap.N),
                   edgecolor="black", linewidth=0.6)
    tau = corr_row.get("kendall_tau", math.nan) if corr_row is not None else math.nan
    entry = registry.get(task)
    ax.set_title(f"{task}: LogME vs fine-tuned {entry.consumer_metric}\n"
                 f"Kendall tau = {tau:.3f} (n = {len(joined)}; stars: base models)", fontsize=9)
    ax.set_xlabel("LogME score")
    ax.set_ylabel(entry.consumer_metric + (" (mismatched)" if entry.export_split.endswith("mismatched") else ""))
    if len(bases) > 1:
        ax.legend(fontsize=6, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_merge_heatmap(cons, base, path) -> None:
    """Merged PTMs of ``base`` (rows: pair @ ratio) x eval task: colour = gain over the base model's
    own fine-tune on that task, text = the consumer metric (squad_v2 f1 / 100)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    sub = cons[cons["base"] == base]
    merged = sub[sub["task_1"] != ""]
    tasks = naming.ordered(set(sub["eval_task"]))
    rows = list(dict.fromkeys(f"{a}+{b} @ {r}" for a, b, r in zip(merged["task_1"], merged["task_2"],
                                                                    merged["ratio"], strict=True)))
    values = np.full((len(rows), len(tasks)), np.nan)
    for a, b, r, t, v in zip(merged["task_1"], merged["task_2"], merged["ratio"], merged["eval_task"],
                             merged["value"], strict=True):
        values[rows.index(f"{a}+{b} @ {r}"), tasks.index(t)] = v
    own = sub[sub["task_1"] == ""].set_index("eval_task")["value"]
    ref = np.array([own.get(t, np.nan) for t in tasks])
    gain = values - ref
    lim = float(np.nanmax(np.abs(gain))) if np.isfinite(gain).any() else 1.0
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(tasks), 1.2 + 0.28 * max(len(rows), 1)))
    im = ax.imshow(gain, cmap="RdBu", vmin=-lim or -1, vmax=lim or 1, aspect="auto")
    ax.set_xticks(range(len(tasks)), tasks, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    if len(rows) * len(tasks) <= 600:
        for i in range(len(rows)):
            for j in range(len(tasks)):
                if np.isfinite(values[i, j]):
                    dark = np.isfinite(gain[i, j]) and abs(gain[i, j]) > 0.6 * lim
                    ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if dark else "black")
    fig.colorbar(im, ax=ax, label="difference to the base model's own fine-tune")
    ax.set_title(f"{base}: merged PTMs, fine-tuned performance", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def summary_text(perf, logme, corr) -> str:
    """A short plain-text table: per task the PTM count, the best PTM and its value, the best base
    model's value, and Kendall tau of LogME vs performance over all PTMs."""
    cons = consumer_performance(perf)
    lines = [f"ptm-bench summary: {cons['ptm'].nunique()} PTMs "
             f"({(cons.drop_duplicates('ptm')['task_1'] == '').sum()} base, "
             f"{(cons.drop_duplicates('ptm')['task_1'] != '').sum()} merged)", ""]
    header = f"{'task':<9} {'metric':<26} {'n':>4} {'best':>7} {'best base':>9} {'LogME tau':>9}  best PTM"
    lines.append(header)
    for task in naming.ordered(set(cons["eval_task"])):
        sub = cons[cons["eval_task"] == task].dropna(subset=["value"])
        if sub.empty:
            continue
        best = sub.loc[sub["value"].idxmax()]
        base_best = sub[sub["task_1"] == ""]["value"].max()
        tau = corr[(corr["eval_task"] == task) & (corr["base"] == "(all)")]
        tau_txt = "-" if tau.empty or math.isnan(tau.iloc[0]["kendall_tau"]) else f"{tau.iloc[0]['kendall_tau']:.3f}"
        entry = registry.get(task)
        metric = entry.consumer_metric + (f" / {1 / entry.consumer_scale:g}" if entry.consumer_scale != 1 else "")
        lines.append(f"{task:<9} {metric:<26} {len(sub):>4} {best['value']:>7.3f} {base_best:>9.3f} "
                     f"{tau_txt:>9}  {best['ptm']}")
    notes = corr[corr["note"].fillna("") != ""] if len(corr) else corr
    if len(notes):
        lines += ["", f"{len(notes)} correlation(s) undefined (see correlations.csv, column note)"]
    n_div = int(perf.drop_duplicates(["ptm", "eval_task"])["diverged"].astype(str).str.lower().eq("true").sum())
    if n_div:
        lines.append(f"{n_div} fine-tuning run(s) diverged (exported as recorded)")
    return "\n".join(lines) + "\n"


def report(performance_csv, logme_csv, correlations_csv, plots_dir, summary_txt) -> None:
    """Rule ``report``: correlations table, plots and the plain-text summary."""
    perf, logme = read_tables(performance_csv, logme_csv)
    corr = correlation_table(perf, logme)
    with atomic_path(correlations_csv) as tmp:
        corr.to_csv(tmp, index=False)
    cons = consumer_performance(perf)
    with atomic_dir(plots_dir) as tmp:
        joined = logme.merge(cons[["ptm", "eval_task", "value"]], on=["ptm", "eval_task"], how="inner")
        for task in naming.ordered(set(joined["eval_task"])):
            row = corr[(corr["eval_task"] == task) & (corr["base"] == "(all)")]
            plot_logme_scatter(joined[joined["eval_task"] == task], task,
                               row.iloc[0].to_dict() if len(row) else None, tmp / f"logme_vs_{task}.png")
        for base in dict.fromkeys(cons.loc[cons["task_1"] != "", "base"]):
            plot_merge_heatmap(cons, base, tmp / f"merged_heatmap_{base}.png")
    text = summary_text(perf, logme, corr)
    with atomic_file(summary_txt) as fh:
        fh.write(text)
    log.info("report:\n%s", text)
