"""The report's sweep plots (config ``transferability.sweep``): how each estimator's judging and cost move
with the number of examples and the feature dimension.

:func:`sweep_judging` ranks the PTMs of each task by an estimator's score at every point of the sweep
(``results/tables/sweep.csv``, :mod:`ptmbench.estimators.sweep`) and gives Spearman's rho of that
ranking with the fine-tuned performance (the consumer metric averaged over seeds, as the report's
judging), beside the same rho on the full data (``results/tables/estimators.csv``) and the median
seconds per PTM. :func:`plot_sweep` draws one figure per task: rho (top) and seconds (bottom) against
N (left) and D (right), a line per estimator, the full data's rho as a dotted line of the same colour.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import stats

log = logging.getLogger(__name__)

MIN_PTMS = 3  # fewer PTMs give no rank correlation (NaN), as the report's judging


def _spearman(scores: pd.Series, values: pd.Series) -> float:
    ok = scores.notna() & values.notna()
    s, v = scores[ok].to_numpy(float), values[ok].to_numpy(float)
    if len(s) < MIN_PTMS or np.ptp(s) == 0 or np.ptp(v) == 0:
        return float("nan")
    return float(stats.spearmanr(s, v).statistic)


def sweep_judging(sweep: pd.DataFrame, estimators: pd.DataFrame, consumer: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, estimator, axis, size): ``spearman`` of the sweep's scores with the consumer
    value over the task's PTMs, ``spearman_full`` the same on the full data, ``seconds`` the median
    time per PTM, ``ptms`` the PTMs scored there. ``consumer``: columns ptm, eval_task, value."""
    cols = ["eval_task", "estimator", "axis", "size", "spearman", "spearman_full", "seconds", "ptms"]
    if sweep.empty:
        return pd.DataFrame(columns=cols)
    value = consumer.set_index(["ptm", "eval_task"])["value"]
    full = {}
    for (task, name), g in estimators.groupby(["eval_task", "estimator"], sort=False):
        full[task, name] = _spearman(g["score"].reset_index(drop=True),
                                     value.reindex(list(zip(g["ptm"], g["eval_task"], strict=True))).reset_index(drop=True))
    rows = []
    for (task, name, axis, size), g in sweep.groupby(["eval_task", "estimator", "axis", "size"], sort=False):
        v = value.reindex(list(zip(g["ptm"], g["eval_task"], strict=True))).reset_index(drop=True)
        rows.append({"eval_task": task, "estimator": name, "axis": axis, "size": int(size),
                     "spearman": _spearman(g["score"].reset_index(drop=True), v),
                     "spearman_full": full.get((task, name), float("nan")),
                     "seconds": float(g["time_s"].median()), "ptms": int(g["score"].notna().sum())})
    return pd.DataFrame(rows, columns=cols)


def plot_sweep(judged: pd.DataFrame, task: str, path) -> None:
    """The sweep figure of one task (module docstring) from :func:`sweep_judging`'s rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = judged[judged["eval_task"] == task]
    names = list(dict.fromkeys(t["estimator"]))
    colours = plt.get_cmap("tab20")
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.5), sharex="col")
    for j, (axis, label) in enumerate((("n", "examples N (nested subsamples)"), ("d", "PCA dimensions D"))):
        top, bottom = axes[0, j], axes[1, j]
        for i, name in enumerate(names):
            g = t[(t["estimator"] == name) & (t["axis"] == axis)].sort_values("size")
            if g.empty:
                continue
            c = colours(i % 20)
            top.plot(g["size"], g["spearman"], marker="o", ms=3, color=c, label=name)
            full = g["spearman_full"].iloc[0]
            if np.isfinite(full):
                top.axhline(full, color=c, lw=0.8, ls=":")
            bottom.plot(g["size"], g["seconds"].clip(lower=1e-4), marker="o", ms=3, color=c)
        top.set_xscale("log")
        bottom.set_xscale("log")
        bottom.set_yscale("log")
        top.set_ylim(-1.05, 1.05)
        top.set_ylabel("Spearman rho with fine-tuning")
        bottom.set_ylabel("seconds per PTM (median)")
        bottom.set_xlabel(label)
        top.grid(alpha=0.3)
        bottom.grid(alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if not handles:
        handles, labels = axes[0, 1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=7, frameon=False)
    fig.suptitle(f"{task}: estimators on nested subsamples and PCA projections (dotted: full data)")
    fig.tight_layout(rect=(0, 0, 0.86, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_sweep_plots(sweep_csv, estimators: pd.DataFrame, consumer: pd.DataFrame, plots_dir, order=sorted) -> list:
    """Rule ``report``'s sweep plots: ``sweep_{task}.png`` in ``plots_dir`` for every task the sweep
    table has (none when the sweep is off). Returns the files written."""
    from pathlib import Path

    sweep = pd.read_csv(sweep_csv)
    if sweep.empty:
        return []
    judged = sweep_judging(sweep, estimators, consumer)
    out = []
    for task in order(set(judged["eval_task"])):
        path = Path(plots_dir) / f"sweep_{task}.png"
        plot_sweep(judged, task, path)
        out.append(path)
    return out
