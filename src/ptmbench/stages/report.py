"""Stage report: transferability estimators vs fine-tuned performance over the zoo, from the export's
tidy tables.

:func:`report` (rule ``report``) writes the rank correlations (Kendall tau, Pearson, Spearman) of
LogME scores and the consumer's metric per GLUE task, over all PTMs and per base model
(``correlations.csv``); every estimator judged per task and scope (``judging.csv``, the measures of
:mod:`ptmbench.evaluation.judging`) and the estimator leaderboard across tasks (``leaderboard.csv``); the seed
noise ceiling (``noise.csv``); plots (``plots/``: per task LogME vs performance in one panel per
base model, the estimators' rank correlations next to the noise ceiling, a heat map of the merged
PTMs per base model); a plain-text summary (``summary.txt``, the leaderboard first) and the same
tables as HTML pieces (``html/``) that ``snakemake --report`` shows inline.
The performance compared is the one the predictor reads (the ``consumer_metric`` of its entry in
:mod:`ptmbench.core.tasks`, from the exported split; squad_v2 f1 / 100); with several fine-tune seeds,
the mean over seeds.
"""

from __future__ import annotations

import html
import logging
import math
import textwrap
from pathlib import Path

from ptmbench.core import naming, paths
from ptmbench.core import tasks as registry
from ptmbench.evaluation import judging
from ptmbench.evaluation.chance import chance_metrics
from ptmbench.io.provenance import atomic_dir, atomic_file, atomic_path
from ptmbench.stages import sweep_plot
from ptmbench.stages.export import ID_COLUMNS
from ptmbench.stages.tokenize import read_squad

log = logging.getLogger(__name__)


_TEXT = ("ptm", "base", "task_1", "task_2", "ratio", "eval_task", "split", "metric", "estimator", "note")


def read_tables(performance_csv, logme_csv):
    import pandas as pd

    text = dict.fromkeys(_TEXT, str)
    return (pd.read_csv(performance_csv, dtype=text, keep_default_na=False, na_values={"value": ["", "NaN"]}),
            pd.read_csv(logme_csv, dtype=text, keep_default_na=False, na_values={"score": ["", "NaN"]}))


ESTIMATOR_COLUMNS = ("ptm", "base", "task_1", "task_2", "ratio", "eval_task", "estimator", "score", "applicable")


def read_estimators(estimators_csv):
    """The tidy estimators table (one row per PTM, task and estimator), its columns checked."""
    import pandas as pd

    est = pd.read_csv(estimators_csv, dtype=dict.fromkeys(_TEXT, str), keep_default_na=False,
                      na_values={"score": ["", "NaN", "nan"], "time_s": ["", "NaN", "nan"]})
    missing = [c for c in ESTIMATOR_COLUMNS if c not in est.columns]
    if missing:
        raise ValueError(f"{estimators_csv} lacks column(s) {missing} (has {list(est.columns)}); it is written by "
                         "rule export: rerun it (snakemake --forcerun export)")
    return est


def consumer_performance(perf):
    """Per (PTM, eval task, seed): the consumer's metric from the exported split (squad_v2 f1 / 100);
    a table without a ``seed`` column is one seed, 0."""
    import pandas as pd

    parts = []
    for task, group in perf.groupby("eval_task", sort=False):
        entry = registry.get(task)
        sel = group[(group["split"] == entry.export_split) & (group["metric"] == entry.consumer_metric)]
        sel = sel.assign(value=sel["value"] * entry.consumer_scale, metric=entry.consumer_metric)
        if "seed" not in sel.columns:  # tables written before fine-tune seeds: one seed, 0
            sel = sel.assign(seed=0)
        parts.append(sel)
    cols = [*ID_COLUMNS, "eval_task", "metric", "seed", "value", "diverged"]
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

    cons = judging.mean_over_seeds(consumer_performance(perf))
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


# Okabe & Ito's palette ("Color Universal Design", 2008): its 8 colours stay apart under the common colour-vision
# deficiencies (tab10/tab20 do not: their red/green and light/dark pairs merge). With a marker shape per
# model as well (7 shapes, coprime with 8 colours), neighbours differ in both, and the first 56 models
# get distinct (colour, shape) pairs: 12+ base models stay distinguishable in print and for any reader.
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def base_style(i: int) -> dict:
    """Colour and marker of the ``i``-th base model (and its merged PTMs) in every plot."""
    return {"color": OKABE_ITO[i % len(OKABE_ITO)], "marker": MARKERS[i % len(MARKERS)]}


def chance_level(task: str, data_paths) -> float:
    """The consumer metric (exported split, scaled) of the fine-tune's chance-level learner on the task's
    acquired data: :func:`ptmbench.evaluation.chance.chance_predictions`, what a diverged run is scored as (most
    frequent training label, computed on the full training split; mean training score: correlations
    0; squad_v2: no answer for every question). ``data_paths``: the task's :func:`ptmbench.core.paths.task_data`."""
    import numpy as np

    entry = registry.get(task)
    if entry.kind == "qa":
        dev = next(p for p in map(Path, data_paths) if p.name == paths.SQUAD_FILES[1])
        metrics = chance_metrics(task, {"validation_examples": read_squad(dev)}, None)
    else:
        import datasets

        dd = datasets.load_from_disk(str(data_paths[0]))
        gold = {s: {"labels": np.asarray(dd[s]["label"])} for s in entry.eval_splits}
        metrics = chance_metrics(task, gold, np.asarray(dd["train"]["label"]))
    return float(metrics[entry.export_split][entry.consumer_metric]) * entry.consumer_scale


def metric_label(task: str) -> str:
    entry = registry.get(task)
    return entry.consumer_metric + (" (mismatched)" if entry.export_split.endswith("mismatched") else "") + (
        f" / {1 / entry.consumer_scale:g}" if entry.consumer_scale != 1 else "")


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# Every plot is at most this many pixels high (at PLOT_DPI): Snakemake's report centres an image vertically,
# so a taller one loses its top (the title) in a 768-pixel window and cannot be scrolled to. Figures that
# would be taller (a 13-panel scatter, a base model's 45 merges) are split into pages of bounded height.
PLOT_DPI = 110
MAX_PLOT_PX = 700
SCATTER_COLS, SCATTER_ROWS = 4, 2  # panels per page of a scatter plot: 8
HEATMAP_ROW_IN, HEATMAP_HEAD_IN = 0.16, 2.4  # inches per heat-map row; title, tick labels and colour bar


def page_names(stem: str, n: int) -> list[str]:
    """File names of a figure split into ``n`` pages: ``{stem}.png`` alone, else ``{stem}_{i}of{n}.png``."""
    return [f"{stem}.png"] if n == 1 else [f"{stem}_{i}of{n}.png" for i in range(1, n + 1)]


def _save(fig, path) -> None:
    fig.savefig(path, dpi=PLOT_DPI)
    pyplot().close(fig)


def _short_metric(task: str) -> str:
    """The consumer metric of ``task`` without ``eval_`` (heat-map columns)."""
    return metric_label(task).removeprefix("eval_")


def spread_positions(x, y, xspan: float) -> list[float]:
    """x positions of points drawn at (x, y) such that points sharing exactly the same position are
    spread apart (each further copy 4 % of ``xspan`` to the right, clear of a base model's marker), so every PTM stays visible."""
    seen: dict = {}
    out = []
    for a, b in zip(x, y, strict=True):
        k = seen.get((a, b), 0)
        seen[(a, b)] = k + 1
        out.append(a + k * 0.04 * (xspan or 1.0))
    return out


def label_offsets(x, y, xlim, ylim, near=(0.25, 0.06), step=7.0):
    """Labels of nearby points stacked upwards: the points sorted by position, and per point the vertical
    offset (points) of its label, ``step`` above the previous label when the two points are closer than
    ``near`` (fractions of the axes)."""
    def frac(v, lim):
        return 0.0 if not lim or lim[1] == lim[0] else (v - lim[0]) / (lim[1] - lim[0])

    pts = sorted(zip(x, y, strict=True), key=lambda p: (p[1], p[0]))
    offsets, prev = [], None
    for px, py in pts:
        dy = 0.0
        if prev is not None and abs(frac(px, xlim) - frac(prev[0], xlim)) < near[0] and \
                abs(frac(py, ylim) - frac(prev[1], ylim)) < near[1]:
            dy = prev[2] + step
        offsets.append(dy)
        prev = (px, py, dy)
    return pts, offsets


def _limits(values, pad: float = 0.06, right: float | None = None):
    import numpy as np

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return None
    lo, hi = float(v.min()), float(v.max())
    span = hi - lo or max(abs(hi), 1.0) * 0.01
    return lo - pad * span, hi + (pad if right is None else right) * span


def plot_logme_scatter(joined, task, corr, out_dir, chance=None, styles=None) -> list[str]:
    """LogME (x) vs fine-tuned performance (y) on ``task``: a panel of all PTMs, then one per base model
    with its own Kendall tau-b (rows of ``corr``, :func:`correlation_table`), 8 panels per page
    (``logme_vs_{task}.png``, or ``logme_vs_{task}_{i}of{n}.png``: :func:`page_names`). Every panel has
    the same axis ranges (LogME scores of one task are comparable across base models) and says the
    spread of its points; base models are the big edged points, merged PTMs the small ones, drawn on top
    of their base model in its panel (exact duplicates side by side; labelled with their pair and ratio
    where a panel has at most 10); a dashed line at the chance level. Returns the file names written."""
    plt = pyplot()
    import numpy as np
    from matplotlib.colors import to_rgba
    from matplotlib.ticker import MaxNLocator

    out_dir = Path(out_dir)
    bases = list(dict.fromkeys(joined["base"]))
    styles = styles or {b: base_style(i) for i, b in enumerate(bases)}
    naming_all = "(all)"
    panels = [naming_all, *bases] if len(bases) > 1 else bases
    per_page = SCATTER_COLS * SCATTER_ROWS
    pages = [panels[i:i + per_page] for i in range(0, len(panels), per_page)]
    names = page_names(f"logme_vs_{task}", len(pages))
    xlim = _limits(joined["score"], right=0.3)  # room on the right for the merged PTMs' labels
    ylim = _limits([*joined["value"], *([chance] if chance is not None and np.isfinite(chance) else [])])
    xspan = (xlim[1] - xlim[0]) if xlim else 1.0
    taus = {} if corr is None else {r["base"]: r for _, r in corr.iterrows()}
    metric = metric_label(task)
    for page_no, (page, name) in enumerate(zip(pages, names, strict=True), start=1):
        ncols = min(SCATTER_COLS, len(panels))
        nrows = -(-len(page) // ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(max(6.0, 3.3 * ncols), 2.55 * nrows + 1.2),
                                 layout="constrained", squeeze=False)
        for ax, panel in zip(axes.flat, page, strict=False):
            members = bases if panel == naming_all else [panel]
            g = joined[joined["base"].isin(members)]
            for b in members:  # base models first, big and edged; merged PTMs on top
                gb = g[(g["base"] == b) & (g["task_1"] == "")]
                st = styles[b]
                # in the panel of all PTMs the base models go on top of the other models' merges, see-through
                ax.scatter(gb["score"], gb["value"], s=90, marker=st["marker"], edgecolor="black", linewidth=1.2,
                           facecolor=to_rgba(st["color"], 0.5 if panel == naming_all else 0.9),
                           zorder=4 if panel == naming_all else 2)
            merged = g[g["task_1"] != ""]
            xs = spread_positions(list(g.loc[g["task_1"] == "", "score"]) + list(merged["score"]),
                                  list(g.loc[g["task_1"] == "", "value"]) + list(merged["value"]), xspan)
            xs = xs[(g["task_1"] == "").sum():]  # a merged PTM on another PTM's exact spot moves right
            for b in members:
                sel = (merged["base"] == b).to_numpy()
                st = styles[b]
                ax.scatter(np.asarray(xs)[sel], merged.loc[sel, "value"], s=22, color=st["color"],
                           marker=st["marker"], edgecolor="white", linewidth=0.5, zorder=3, alpha=0.85)
            if panel != naming_all and 0 < len(merged) <= 10:
                for (x, y), dy in zip(*label_offsets(xs, merged["value"], xlim, ylim), strict=True):
                    r = merged.iloc[[i for i, (a, b) in enumerate(zip(xs, merged["value"], strict=True))
                                     if (a, b) == (x, y)][0]]
                    ax.annotate(f"{r['task_1']}+{r['task_2']} @ {r['ratio']}", (x, y), fontsize=5,
                                xytext=(3, 2 + dy), textcoords="offset points", color="0.25", zorder=4,
                                arrowprops={"arrowstyle": "-", "color": "0.6", "linewidth": 0.4} if dy else None)
            if chance is not None and np.isfinite(chance):
                ax.axhline(chance, color="0.4", linestyle="--", linewidth=0.9)
            if xlim:
                ax.set_xlim(*xlim)
            if ylim:
                ax.set_ylim(*ylim)
            row = taus.get(panel)
            tau = row["kendall_tau"] if row is not None else math.nan
            n = int(row["n"]) if row is not None else len(g)
            tau_txt = "undefined" if tau is None or not np.isfinite(tau) else f"{tau:.2f}"
            spread = (f"spread: LogME {_fmt(np.ptp(g['score']), 3)}, {metric} {_fmt(np.ptp(g['value']), 3)}"
                      if len(g) else "no PTM")
            ax.set_title(f"{'all PTMs' if panel == naming_all else panel}: tau-b = {tau_txt} (n = {n})\n{spread}",
                         fontsize=7)
            ax.tick_params(labelsize=7)
            ax.ticklabel_format(useOffset=False, style="plain")
            ax.xaxis.set_major_locator(MaxNLocator(5))
            ax.set_xlabel("LogME score", fontsize=7)
            ax.set_ylabel(metric, fontsize=7)
        for ax in list(axes.flat)[len(page):]:
            ax.set_visible(False)
        chance_txt = "; dashed: chance level" if chance is not None and np.isfinite(chance) else ""
        of = f" (page {page_no} of {len(pages)})" if len(pages) > 1 else ""
        fig.suptitle(f"{task}: LogME vs fine-tuned performance{of}; same axes in every panel\n"
                     f"big edged points: base models; small: merged PTMs{chance_txt}", fontsize=8)
        if len(bases) > 1:
            shown = [b for b in bases if b in page or naming_all in page]
            handles = [plt.Line2D([], [], linestyle="", color=styles[b]["color"], marker=styles[b]["marker"],
                                  label=b) for b in shown]
            fig.legend(handles=handles, loc="outside lower center", ncol=min(6, len(shown)), fontsize=7,
                       frameon=False)
        _save(fig, out_dir / name)
    return names


def estimator_rows(judg, task, est=None):
    """The rows of :func:`plot_estimators` on ``task``: (names, pooled tau-b, mean within-base tau-b, why), every
    estimator of ``judg`` and of ``est`` (the tidy estimators table), then the baselines; ``why[name]`` says why a row has no
    value: ``n/a`` (not applicable to the task, with the estimator's note) or ``undefined`` (the note of
    :mod:`ptmbench.evaluation.judging`, e.g. fewer than 3 PTMs)."""
    import numpy as np

    sub = judg[judg["eval_task"] == task]
    kinds = sub["kind"] if "kind" in sub.columns else None
    baselines = list(dict.fromkeys(sub.loc[kinds == judging.BASELINE, "estimator"])) if kinds is not None else []
    names = [n for n in dict.fromkeys(sub["estimator"]) if n not in baselines]
    why: dict = {}
    if est is not None:
        e = est[est["eval_task"] == task]
        for name in dict.fromkeys(e["estimator"]):
            if name not in names:
                names.append(name)
                rows = e[e["estimator"] == name]
                note = next((n for n in rows.get("note", []) if isinstance(n, str) and n), "")
                why[name] = "n/a" + (f": {note}" if note else " on this task")
    names += baselines  # the estimators (those not applicable included), then the baselines
    pooled = [sub[(sub["estimator"] == e) & (sub["scope"] == judging.POOLED)]["kendall_tau_b"].mean() for e in names]
    within = [sub[(sub["estimator"] == e) & (sub["scope"] != judging.POOLED)]["kendall_tau_b"].mean() for e in names]
    for name, p, w in zip(names, pooled, within, strict=True):
        if name not in why and not np.isfinite(p) and not np.isfinite(w):
            note = sub[(sub["estimator"] == name) & (sub["scope"] == judging.POOLED)]["note"]
            why[name] = "undefined" + (f": {note.iloc[0]}" if len(note) and note.iloc[0] else "")
    return names, pooled, within, why


def plot_estimators(judg, noise, task, path, est=None) -> None:
    """Per estimator on ``task``: Kendall tau-b over all PTMs (bar) and its mean within base models
    (diamond), with tau-b = 0 (a random ranking: chance) and the seed noise ceiling when there is one.
    An estimator with no value keeps its row and says why (:func:`estimator_rows`): ``n/a`` or ``undefined``."""
    plt = pyplot()
    import numpy as np

    names, pooled, within, why = estimator_rows(judg, task, est)
    row_in = min(0.32, (MAX_PLOT_PX / PLOT_DPI - 1.8) / max(len(names), 1))
    fig, ax = plt.subplots(figsize=(6.0, 1.8 + row_in * max(len(names), 1)), layout="constrained")
    y = np.arange(len(names))
    ax.barh(y, np.nan_to_num(pooled), color=OKABE_ITO[4], height=0.6, label="all PTMs")
    sub = judg[(judg["eval_task"] == task) & (judg["scope"] == judging.POOLED)]
    interval_bars(ax, sub.drop_duplicates("estimator").set_index("estimator").reindex(names), "kendall_tau_b", y)
    ax.scatter(within, y, marker="D", color=OKABE_ITO[5], zorder=3, label="mean within base models")
    for i, name in enumerate(names):
        if name in why:
            ax.text(-1.0, i, textwrap.shorten(why[name], 60, placeholder=" ..."), va="center", ha="left", fontsize=7,
                    color="0.35", style="italic")
    ax.axvline(0, color="0.4", linestyle="--", linewidth=0.9, label="chance (random ranking)")
    ceil = noise[(noise["eval_task"] == task) & (noise["scope"] == judging.POOLED) & (noise["ptm"] == "")]
    if len(ceil) and np.isfinite(ceil.iloc[0]["seed_kendall_tau_b"]):
        ax.axvline(ceil.iloc[0]["seed_kendall_tau_b"], color=OKABE_ITO[2], linewidth=1.5,
                   label="seed noise ceiling (all PTMs)")
    ax.set_yticks(y, names, fontsize=8 if row_in >= 0.2 else 6)
    ax.invert_yaxis()
    ax.set_xlim(-1.05, 1.05)
    ax.set_xlabel(f"Kendall tau-b with fine-tuned {metric_label(task)}", fontsize=8)
    ax.set_title(f"{task}: estimators and baselines vs fine-tuned performance", fontsize=9)
    fig.legend(fontsize=7, loc="outside lower center", ncol=2, frameon=False)
    _save(fig, path)


def interval_bars(ax, rows, measure: str, y) -> None:
    """Horizontal bootstrap intervals (``{measure}_ci_low`` .. ``_high`` of ``rows``, one per ``y``) on ``ax``."""
    import numpy as np

    if f"{measure}_ci_low" not in rows.columns:
        return
    lo, hi = rows[f"{measure}_ci_low"].to_numpy(float), rows[f"{measure}_ci_high"].to_numpy(float)
    ok = np.isfinite(lo) & np.isfinite(hi)
    if ok.any():
        ax.hlines(np.asarray(y)[ok], lo[ok], hi[ok], color="black", linewidth=1.2,
                  label="95% bootstrap interval (all PTMs)")


def heatmap_gains(cons):
    """Per base model with merged PTMs: (rows, tasks, values, own) of its heat map: the merged PTMs
    (``pair @ ratio``), the eval tasks, their performance (rows x tasks) and the base model's own
    fine-tuned performance per task (what the colours are gains over)."""
    import numpy as np

    out = {}
    for base in dict.fromkeys(cons.loc[cons["task_1"] != "", "base"]):
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
        out[base] = (rows, tasks, values, np.array([own.get(t, np.nan) for t in tasks], dtype=float))
    return out


def heatmap_scale(gains) -> float:
    """The one colour scale of every heat map (all base models, all pages): the largest absolute gain."""
    import numpy as np

    lims = [np.nanmax(np.abs(v - own)) for _, _, v, own in gains.values() if np.isfinite(v - own).any()]
    return float(max(lims)) if lims and max(lims) > 0 else 1.0


def heatmap_rows_per_page() -> int:
    return max(1, int((MAX_PLOT_PX / PLOT_DPI - HEATMAP_HEAD_IN) / HEATMAP_ROW_IN) - 1)


def plot_merge_heatmap(cons, base, out_dir, lim=None, gains=None) -> list[str]:
    """Merged PTMs of ``base`` (rows: pair @ ratio) x eval task (columns, with the metric): colour = gain
    over the base model's own fine-tune on that task (its values are the first row), text = the consumer
    metric (squad_v2 f1 / 100). ``lim``: the colour scale, the same for every base model
    (:func:`heatmap_scale`). Pages of at most :func:`heatmap_rows_per_page` rows
    (``merged_heatmap_{base}.png`` or ``..._{i}of{n}.png``). Returns the file names written."""
    plt = pyplot()
    import numpy as np

    gains = gains or heatmap_gains(cons)
    rows, tasks, values, own = gains[base]
    lim = lim or heatmap_scale({base: gains[base]})
    per_page = heatmap_rows_per_page()
    chunks = [list(range(i, min(i + per_page, len(rows)))) for i in range(0, max(len(rows), 1), per_page)]
    names = page_names(f"merged_heatmap_{base}", len(chunks))
    label_w = 0.065 * max((len(r) for r in [*rows, "base model (own fine-tune)"]), default=8)
    for page_no, (idx, name) in enumerate(zip(chunks, names, strict=True), start=1):
        shown = np.vstack([own[None, :], values[idx]])
        gain = shown - own[None, :]
        labels = ["base model (own fine-tune)", *(rows[i] for i in idx)]
        fig, ax = plt.subplots(figsize=(max(5.0, 2.4 + label_w + 0.7 * len(tasks)),
                                        HEATMAP_HEAD_IN + HEATMAP_ROW_IN * max(len(labels), 4)),
                               layout="constrained")
        im = ax.imshow(gain, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
        ax.axhline(0.5, color="black", linewidth=1.2)
        ax.set_xticks(range(len(tasks)), [f"{t}\n{_short_metric(t)}" for t in tasks], rotation=45, ha="right",
                      fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.get_yticklabels()[0].set_fontweight("bold")
        for i in range(len(labels)):
            for j in range(len(tasks)):
                if np.isfinite(shown[i, j]):
                    dark = np.isfinite(gain[i, j]) and abs(gain[i, j]) > 0.6 * lim
                    ax.text(j, i, f"{shown[i, j]:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if dark else "black", fontweight="bold" if i == 0 else "normal")
        cb = fig.colorbar(im, ax=ax, shrink=0.9)
        cb.set_label("gain over the base model's\nown fine-tune (same scale\nin every heat map)", fontsize=7)
        cb.ax.tick_params(labelsize=7)
        of = f", page {page_no} of {len(chunks)}" if len(chunks) > 1 else ""
        ax.set_title(f"{base}: merged PTMs, fine-tuned performance{of}\n(text: value in the column's metric; "
                     "colour: gain over the first row, blue = better)", fontsize=8)
        _save(fig, Path(out_dir) / name)
    return names


def demo_sources(config: dict) -> list[str]:
    """The data sets (config ``data`` keys) of the configured tasks whose source is the generated
    demo data (``source: demo``): the report then carries :func:`demo_banner`."""
    used = {registry.get(t).data for t in config.get("tasks", ())}
    return [k for k, v in (config.get("data") or {}).items()
            if k in used and isinstance(v, dict) and v.get("source") == "demo"]


def demo_banner(demo_data) -> str:
    """The warning shown at the top of the report when data are the generated demo data ("" if not)."""
    if not demo_data:
        return ""
    return (f"DEMO DATA: the {' and '.join(demo_data)} data of this run are generated (config data.<name>.source: "
            "demo), not the real benchmark: the scores test the pipeline and say nothing about the models.")


def _fmt(x, digits: int = 3) -> str:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    return "-" if not math.isfinite(x) else f"{x:.{digits}f}"


LEADERBOARD_SHOWN = ("weighted_tau", "kendall_tau_b", "spearman", "pearson", "top1_regret", "top3_hit", "mrr",
                     "top3_rel_acc")


def _interval_txt(lo, hi, digits: int = 2) -> str:
    return "" if not (math.isfinite(float(lo)) and math.isfinite(float(hi))) else f"[{_fmt(lo, digits)}, {_fmt(hi, digits)}]"


def ranked_on(board) -> str:
    """One sentence: the tasks the leaderboard ranks on, and the rows it does not rank."""
    tasks = judging.ranked_tasks(board)
    if not tasks:
        return "No row is ranked: no weighted tau is defined (fewer than 3 PTMs, or constant scores or performance)."
    out = f"Ranked by weighted tau (pooled) on the {len(tasks)} task(s) every ranked row has ({', '.join(tasks)}); "
    left = board[board["rank"].isna()]
    if len(left):
        out += "not ranked (other tasks): " + ", ".join(f"{e} ({t.replace(';', ', ') or 'none'})" for e, t in
                                                         zip(left["estimator"], left["tasks"], strict=True)) + "; "
    return out + ("= : not distinguishable from the best (paired bootstrap of the difference in weighted tau, "
                  "its interval contains 0).")


def leaderboard_text(board) -> list[str]:
    """The leaderboard for ``summary.txt``: per row its kind, tasks, pooled / within values of
    :data:`LEADERBOARD_SHOWN` and the interval of the pooled weighted tau; the random baseline's row
    is the chance level of every measure."""
    import pandas as pd

    lines = ["Estimator leaderboard (mean over tasks; pooled = all PTMs, within = mean over base models; "
             "baselines: param_count, base_score, random = chance level)", ranked_on(board)]
    head = f"{'rank':>4}   {'estimator':<14} {'kind':<9} {'tasks':>5}" + "".join(
        f" {m.replace('_', ' ')[:13]:>13}" for m in LEADERBOARD_SHOWN) + "  weighted tau, pooled: interval"
    lines.append(head)
    lines.append(f"{'':>4}   {'':<14} {'':<9} {'':>5}" + " pooled/within" * len(LEADERBOARD_SHOWN))
    for _, r in board.iterrows():
        cells = "".join(f" {_fmt(r[f'{m}_pooled'], 2):>6}/{_fmt(r[f'{m}_within'], 2):<6}" for m in LEADERBOARD_SHOWN)
        rank = "-" if pd.isna(r["rank"]) else str(int(r["rank"]))
        mark = "=" if r["best_indistinguishable"] is True else " "
        ci = _interval_txt(r["weighted_tau_pooled_ci_low"], r["weighted_tau_pooled_ci_high"], 3)
        lines.append(f"{rank:>4} {mark} {r['estimator']:<14} {r['kind']:<9} {r['n_tasks']:>5}{cells}  {ci}")
    return lines + [""]


def leaderboard_cell(r, m: str, digits: int = 2) -> str:
    """One leaderboard cell: pooled [interval] / within [interval] (bases behind the within value)."""
    def one(scope):  # an interval only next to a defined value
        v = r[f"{m}_{scope}"]
        if not math.isfinite(float(v)):
            return "-"
        return f"{_fmt(v, digits)} {_interval_txt(r[f'{m}_{scope}_ci_low'], r[f'{m}_{scope}_ci_high'], digits)}".strip()

    nb = r[f"{m}_within_bases"]
    bases = (f" ({nb:g} base{'' if nb == 1 else 's'})" if isinstance(nb, (int, float)) and math.isfinite(nb) and nb > 0
             else "")
    return f"{one('pooled')} / {one('within')}{bases}"


def leaderboard_frame(board, measures):
    """The leaderboard as the table the HTML pages show: rank (= : not distinguishable from the best),
    estimator, kind, tasks, and one "pooled [interval] / within [interval] (bases)" column per measure."""
    import pandas as pd

    shown = pd.DataFrame({
        "rank": [("-" if pd.isna(r) else str(int(r))) + (" =" if b is True else "")
                 for r, b in zip(board["rank"], board["best_indistinguishable"], strict=True)],
        "estimator": board["estimator"], "kind": board["kind"], "tasks": board["n_tasks"]})
    for m in measures:
        shown[m.replace("_", " ")] = [leaderboard_cell(r, m) for _, r in board.iterrows()]
    return shown


def summary_text(perf, logme, corr, board=None, noise=None, demo_data=()) -> str:
    """A short plain-text report: the demo-data banner, the estimator leaderboard and the seed noise
    ceiling (when given), then per task the PTM count, the best PTM and its value, the best base
    model's value, and Kendall tau of LogME vs performance over all PTMs."""

    cons = judging.mean_over_seeds(consumer_performance(perf))
    lines = []
    banner = demo_banner(demo_data)
    if banner:
        lines += ["*** " + banner + " ***", ""]
    if board is not None and len(board):
        lines += leaderboard_text(board)
    if noise is not None:
        lines.append(noise_sentence(noise))
        lines.append("")
    lines += [f"ptm-bench summary: {cons['ptm'].nunique()} PTMs "
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


def noise_sentence(noise) -> str:
    """One line on the seed noise ceiling: its mean over tasks, or why there is none."""
    import numpy as np

    scope = noise[(noise["ptm"] == "") & (noise["scope"] == judging.POOLED)]
    if len(scope) == 0 or (scope["n_seeds"] < 2).all():
        return "Seed noise ceiling: not available (" + judging.ONE_SEED_NOTE + ")."
    tau = scope["seed_kendall_tau_b"]
    return (f"Seed noise ceiling ({int(scope['n_seeds'].max())} seeds): Kendall tau-b between seeds, all PTMs, "
            f"mean over tasks {_fmt(np.nanmean(tau) if tau.notna().any() else math.nan)}; "
            f"mean sd of the fine-tuned metric per PTM {_fmt(np.nanmean(scope['sd']) if scope['sd'].notna().any() else math.nan)} "
            "(noise.csv).")


# ------------------------------------------------------------------------------------ HTML pieces

# scoped by the class ptmb (the landing fragment is embedded in Snakemake's report page itself)
_CSS = """.ptmb{font-family:system-ui,sans-serif;font-size:13px;color:#222;max-width:100%}
.ptmb table{border-collapse:collapse;margin:6px 0 14px}
.ptmb th,.ptmb td{border:1px solid #ccc;padding:2px 7px;text-align:right}.ptmb td{white-space:nowrap}
.ptmb th{background:#eef2f7}.ptmb td.l,.ptmb th.l{text-align:left}
.ptmb td.w{white-space:normal;min-width:12em;max-width:30em;text-align:left}
.ptmb caption{text-align:left;font-weight:600;padding:4px 0}
.ptmb .banner{background:#fff3cd;border:2px solid #d39e00;padding:8px 12px;font-weight:600;margin-bottom:10px}
.ptmb tr.ceil td{background:#e8f5e9}.ptmb h2{font-size:16px;font-weight:600;margin:16px 0 4px}
.ptmb p{max-width:70em;margin:4px 0}.ptmb .scroll{overflow-x:auto;max-width:100%}
.ptmb nav.pages{font-size:12px;padding:4px 0 6px;border-bottom:1px solid #ccc;margin-bottom:6px}
.ptmb nav.pages a,.ptmb nav.pages span.page{margin-right:10px}.ptmb nav.pages .here{font-weight:600}
.ptmb nav.pages .hint{color:#666}
.ptmb .doc td,.ptmb .doc th{white-space:normal;text-align:left;vertical-align:top}
.ptmb pre{white-space:pre-wrap;font-size:12px;max-width:100%;overflow-x:auto}"""
# Snakemake's report centres its landing page vertically: content taller than the window would lose its
# top and could not be scrolled to. ``safe center`` keeps it centred only while it fits (the landing
# fragment carries this rule; the landing text is kept short as well: tests/test_report.py).
LANDING_CSS = ".grow.flex.items-center.justify-center.h-screen{align-items:safe center;justify-content:safe center}"
FRAGMENT = "landing.fragment"  # the demo-data banner (and LANDING_CSS), embedded at the top of the HTML report

# The report's HTML pages, in the order of the report's menu: (path relative to the work directory, title,
# its place in `snakemake --report`'s menu). Every page links to all the others (:func:`nav_bar`).
REPORT_PAGES = (
    (f"{paths.REPORT_HTML_DIR}/leaderboard.html", "Leaderboard", "1.1"),
    (f"{paths.REPORT_HTML_DIR}/estimators.html", "Estimators per task", "1.2"),
    (f"{paths.REPORT_HTML_DIR}/per_ptm.html", "Per-PTM scores", "1.3"),
    (f"{paths.REPORT_HTML_DIR}/noise.html", "Seed noise", "1.4"),
    (f"{paths.REPORT_HTML_DIR}/correlations.html", "LogME correlations", "1.5"),
    (f"{paths.REPORT_HTML_DIR}/summary.html", "Summary", "1.6"),
    (f"{paths.REPORT_HTML_DIR}/definitions.html", "Definitions (docs/report.md)", "1.7"),
    (paths.PUBLISHED_HTML, "Published bench (real data)", "5."),
    (paths.COMPARE_HTML, "Comparison with the published bench", "6."),
)


def page_label(wildcards) -> dict:
    """The label of an HTML page of ``results/report/html`` in the Snakemake report's menu (rule ``report``,
    ``labels=``): its number and title (:data:`REPORT_PAGES`), so the menu lists them in order."""
    name = f"{paths.REPORT_HTML_DIR}/{wildcards.name}.html"
    for path, title, menu in REPORT_PAGES:
        if path == name:
            return {"page": f"{menu} {title}"}
    return {"page": wildcards.name}


PLOT_GROUPS = (("logme_vs_", "LogME vs performance"), ("estimators_", "Estimators per task"),
               ("merged_heatmap_", "Merged PTMs (heat maps)"), ("sweep_", "Sweeps (sample size, dimension)"))


def plot_group(wildcards) -> str:
    """The sub-menu of a plot in the Snakemake report (rule ``report``, ``subcategory=``): its kind."""
    return next((g for prefix, g in PLOT_GROUPS if wildcards.name.startswith(prefix)), "Other plots")


def nav_bar(here: str) -> str:
    """Links from the page at ``here`` (path relative to the work directory) to every other report page
    (:data:`REPORT_PAGES`). Opened from disk (or a ``--report report.zip``) they are links; inside the
    single-file Snakemake report, where a page is a data: URL that cannot link to another, a script turns
    them into their places in the report's menu."""
    import os

    items = []
    for path, title, menu in REPORT_PAGES:
        if path == here:
            items.append(f"<span class='page here'>{html.escape(title)}</span>")
        else:
            href = os.path.relpath(path, os.path.dirname(here))
            items.append(f"<a href='{html.escape(href)}' data-menu='{menu}'>{html.escape(title)}</a>")
    script = ("<script>if(location.protocol==='data:'){document.querySelectorAll('nav.pages a[data-menu]')"
              ".forEach(function(a){var s=document.createElement('span');s.className='page';"
              "s.textContent=a.textContent+' ('+a.dataset.menu+')';a.replaceWith(s);});"
              "document.querySelectorAll('nav.pages .hint').forEach(function(h){h.hidden=false;});}</script>")
    hint = "<span class='hint' hidden>(in this report: open them from the menu, number in brackets)</span>"
    return f"<nav class='pages'>Pages: {' '.join(items)} {hint}</nav>{script}"


def html_fragment(title: str, body: str, banner: str = "", nav: str = "") -> str:
    """``body`` under ``title`` (and the demo-data ``banner``), styled, to embed in another page."""
    top = f'<div class="banner">{html.escape(banner)}</div>' if banner else ""
    return f"<style>{_CSS}</style><div class='ptmb'>{nav}{top}<h2>{html.escape(title)}</h2>{body}</div>"


def html_page(title: str, body: str, banner: str = "", here: str | None = None) -> str:
    """A standalone HTML document (Snakemake's report shows ``.html`` results inline, in a frame);
    ``here``: its path relative to the work directory, for the links to the other pages (:func:`nav_bar`)."""
    nav = nav_bar(here) if here else ""
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body>{html_fragment(title, body, banner, nav)}</body></html>\n")


def html_table(df, caption: str = "", digits: int = 3, left=(), row_class=None, wrap=("note",)) -> str:
    """``df`` as an HTML table: numbers to ``digits`` digits, NaN as a dash, ``left`` columns left-aligned,
    ``wrap`` columns (long text) wrapped instead of widening the table."""
    out = ["<table>"]
    if caption:
        out.append(f"<caption>{html.escape(caption)}</caption>")
    out.append("<tr>" + "".join(f"<th class='{'l' if c in left or c in wrap else ''}'>{html.escape(str(c))}</th>"
                                for c in df.columns) + "</tr>")
    for _, row in df.iterrows():
        cls = row_class(row) if row_class else ""
        cells = []
        for c in df.columns:
            v = row[c]
            txt = _fmt(v, digits) if isinstance(v, float) else ("-" if v is None else str(v))
            klass = "w" if c in wrap else "l" if c in left else ""
            cells.append(f"<td class='{klass}'>{html.escape(txt)}</td>")
        out.append(f"<tr class='{cls}'>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def scrolling(table: str) -> str:
    """A table that scrolls by itself when wider than the page (the page itself never does)."""
    return f"<div class='scroll'>{table}</div>"


LEADERBOARD_TOP = ("weighted_tau", "top1_regret", "top3_hit", "mrr")  # the summary's leaderboard


def leaderboard_html(board, noise, banner: str = "", page=html_page, measures=LEADERBOARD_SHOWN) -> str:
    """The leaderboard as HTML (``page``: a standalone page or a fragment), one column per measure, each
    cell with its bootstrap interval; baselines as rows of kind baseline (random: the chance level)."""
    shown = leaderboard_frame(board, measures)
    body = ("<p>Each estimator's agreement with fine-tuned performance, averaged over tasks: <b>pooled</b> ranks "
            "all PTMs together, <b>within</b> ranks each base model's PTMs separately (then averages over base "
            "models; in brackets the bases behind it per task). Correlations: higher is better (1: the true "
            "ranking). Top-1 regret: the best PTM's performance minus that of the estimator's pick (lower is "
            "better). Top-3 hit, MRR, top-k rel acc: the truly best PTM among the top 3, 1 / its rank, the best "
            "of the top k over the best. Baselines: <b>param_count</b> (parameters), <b>base_score</b> (a merged "
            "PTM's base model's own score), <b>random</b> (the exact chance level of every measure). Intervals: "
            "95% bootstrap over PTMs. Definitions: docs/report.md.</p>"
            f"<p>{html.escape(ranked_on(board))}</p>"
            + "<div style='overflow-x:auto;max-width:100%'>"
            + html_table(shown, "each cell: pooled [interval] / within base models [interval]",
                         left=("estimator", "kind"),
                         row_class=lambda r: "ceil" if r["kind"] == judging.BASELINE else "") + "</div>"
            + f"<p>{html.escape(noise_sentence(noise))}</p>")
    return page("Estimator leaderboard", body, banner)


def judging_html(judg, noise, chance: dict, banner: str = "", here: str | None = None) -> str:
    """Per task: every estimator's measures over all PTMs, next to the seed noise ceiling, then
    Kendall tau-b within each base model (a row per estimator, a column per base model)."""
    import pandas as pd

    parts = ["<p>Per task, each estimator's scores against the fine-tuned performance (the consumer metric, "
             "mean over seeds). The green row is the seed noise ceiling: how well one fine-tune seed's ranking "
             "predicts another's (Kendall tau-b, mean over seed pairs); an estimator near it is as good as "
             "fine-tuning again.</p>"]
    for task in naming.ordered(set(judg["eval_task"])):
        sub = judg[judg["eval_task"] == task]
        nz = noise[(noise["eval_task"] == task) & (noise["ptm"] == "")].set_index("scope")
        pooled = sub[sub["scope"] == judging.POOLED]
        t = pooled[["estimator", "kind", "n", *judging.MEASURES, "note"]].copy()
        ceil = nz.loc[judging.POOLED] if judging.POOLED in nz.index else None
        ceil_row = {"estimator": "(seed noise ceiling)", "kind": "", "n": int(ceil["n_ptms"]) if ceil is not None else "",
                    **dict.fromkeys(judging.MEASURES, math.nan),
                    "kendall_tau_b": float(ceil["seed_kendall_tau_b"]) if ceil is not None else math.nan,
                    "note": (ceil["note"] if ceil is not None else judging.ONE_SEED_NOTE) or
                    f"sd per PTM, mean {_fmt(ceil['sd'])}"}
        t = pd.concat([t, pd.DataFrame([ceil_row])], ignore_index=True)
        ch = chance.get(task)
        cap = f"{task}: all PTMs ({metric_label(task)}" + (f"; chance level {_fmt(ch)})" if ch is not None else ")")
        parts.append(f"<h2>{html.escape(task)}</h2>")
        parts.append(scrolling(html_table(t, cap, left=("estimator",),
                                          row_class=lambda r: "ceil" if r["estimator"] == "(seed noise ceiling)"
                                          else "")))
        within = sub[sub["scope"] != judging.POOLED]
        if len(within):
            wide = within.pivot_table(index="estimator", columns="scope", values="kendall_tau_b", aggfunc="first",
                                      sort=False, dropna=False)
            bases = list(dict.fromkeys(within["scope"]))
            wide = wide.reindex(index=list(dict.fromkeys(within["estimator"])), columns=bases)
            seed = pd.DataFrame([[float(nz.loc[b, "seed_kendall_tau_b"]) if b in nz.index else math.nan
                                  for b in bases]], index=["(seed noise ceiling)"], columns=bases)
            wide = pd.concat([wide, seed]).reset_index(names="estimator")
            wide.columns = [str(c) for c in wide.columns]
            parts.append(scrolling(html_table(wide, f"{task}: Kendall tau-b within each base model",
                                              left=("estimator",), row_class=lambda r: "ceil"
                                              if r["estimator"] == "(seed noise ceiling)" else "")))
    return html_page("Estimators per task", "\n".join(parts), banner, here)


def _pair(r) -> str:
    return "base model" if r["task_1"] == "" else f"{r['task_1']}+{r['task_2']} @ {r['ratio']}"


def per_ptm_table(cons, est, task: str):
    """One row per PTM fine-tuned on ``task``: its base model, merged pair, fine-tuned performance (the
    consumer metric, mean over seeds) and rank, then one column per estimator with its score on the task
    (NaN where the estimator does not apply or has no score). Best performance first."""
    import pandas as pd

    c = cons[(cons["eval_task"] == task)].copy()
    c["merged pair"] = [_pair(r) for _, r in c.iterrows()]
    c = c.rename(columns={"value": metric_label(task)})
    c = c.sort_values(metric_label(task), ascending=False, na_position="last", kind="stable")
    c.insert(0, "rank", c[metric_label(task)].rank(ascending=False, method="min"))
    out = c[["rank", "ptm", "base", "merged pair", metric_label(task)]]
    e = est[est["eval_task"] == task]
    for name in dict.fromkeys(est["estimator"]):
        scores = e[e["estimator"] == name].set_index("ptm")["score"]
        out = out.assign(**{name: [float(scores.get(p, math.nan)) for p in out["ptm"]]})
    return pd.DataFrame(out).reset_index(drop=True)


def per_ptm_html(cons, est, banner: str = "", here: str | None = None) -> str:
    """Per task, every PTM's fine-tuned performance next to every estimator's score (:func:`per_ptm_table`)."""
    parts = ["<p>Per task, every PTM (best fine-tuned performance first) with each transferability "
             "estimator's score on the task (higher = predicted more transferable; n/a: the estimator does "
             "not apply to the task; a dash: no score). Scores of different estimators are on different scales: "
             "compare the order within a column with the performance column.</p>"]
    for task in naming.ordered(set(cons["eval_task"])):
        t = per_ptm_table(cons, est, task)
        t["rank"] = [("-" if not math.isfinite(r) else str(int(r))) for r in t["rank"]]
        e = est[est["eval_task"] == task]
        applies = {(p, n): str(a).lower() == "true" for p, n, a in zip(e["ptm"], e["estimator"], e["applicable"],
                                                                      strict=True)}
        for name in dict.fromkeys(est["estimator"]):  # "n/a": the estimator does not apply to the task
            t[name] = [_fmt(v) if applies.get((p, name), False) else "n/a" for p, v in zip(t["ptm"], t[name],
                                                                                           strict=True)]
        parts.append(f"<h2>{html.escape(task)}</h2>")
        parts.append(scrolling(html_table(t, f"{task}: {len(t)} PTMs, {metric_label(task)} (mean over seeds)",
                                          left=("ptm", "base", "merged pair"))))
    return html_page("Per-PTM scores: performance and every estimator", "\n".join(parts), banner, here)


def noise_html(noise, banner: str = "", here: str | None = None) -> str:
    """The seed noise ceiling readable: per task and scope, then per PTM the sd across seeds."""
    parts = [f"<p>{html.escape(noise_sentence(noise))} The ceiling is how well one fine-tune seed's ranking of "
             "the PTMs predicts another's (Kendall tau-b, mean over seed pairs); <code>sd</code>: the standard "
             "deviation of a PTM's fine-tuned metric across seeds.</p>"]
    scope = noise[noise["ptm"] == ""]
    cols = ["eval_task", "metric", "scope", "n_seeds", "n_ptms", "seed_kendall_tau_b", "sd", "note"]
    parts.append(scrolling(html_table(scope[[c for c in cols if c in scope.columns]],
                                      "per task and scope (pooled: all PTMs; otherwise one base model)",
                                      left=("eval_task", "metric", "scope"))))
    per = noise[noise["ptm"] != ""]
    if len(per):
        parts.append(scrolling(html_table(per[[c for c in ("eval_task", "ptm", "scope", "n_seeds", "sd", "note")
                                               if c in per.columns]],
                                          "per PTM: sd of the fine-tuned metric across seeds",
                                          left=("eval_task", "ptm", "scope"))))
    return html_page("Seed noise", "\n".join(parts), banner, here)


def summary_html(summary: str, banner: str = "", here: str | None = None) -> str:
    """``summary.txt`` as a page: the banner as a box (not the text's first line), the text wrapped."""
    lines = summary.splitlines()
    if banner and lines and lines[0] == f"*** {banner} ***":
        lines = lines[2:] if len(lines) > 1 and not lines[1].strip() else lines[1:]
    return html_page("Summary", f"<pre>{html.escape(chr(10).join(lines))}</pre>", banner, here)


# the definitions of the report's measures, in the checkout whose src/ runs the workflow (the Snakefile puts
# it on PYTHONPATH); read when rule report runs (not an input: editing the docs does not rerun the report)
DOCS_MD = Path(__file__).resolve().parents[3] / "docs" / "report.md"


def definitions_html(docs_md, here: str | None = None) -> str:
    """``docs/report.md`` (the definitions of every measure) as a page of the report: the report carries
    its documentation. Links to other docs pages become plain text (they are not in the report)."""
    import re

    from markdown_it import MarkdownIt

    if docs_md is None or not Path(docs_md).is_file():
        body = ("<p>The definitions are in <code>docs/report.md</code> of the ptm-bench checkout "
                f"(not found here{': ' + html.escape(str(docs_md)) if docs_md else ''}).</p>")
    else:
        body = MarkdownIt("commonmark").enable("table").render(Path(docs_md).read_text())
        body = re.sub(r"<a href=\"(?!https?:)[^\"]*\">(.*?)</a>", r"\1", body)
        body = re.sub(r"^<h1>.*?</h1>", "", body.strip())
        body = (f"<p>From <code>docs/report.md</code> of the ptm-bench checkout that wrote this report.</p>"
                f"<div class='doc scroll'>{body}</div>")
    return html_page("Definitions: how the report judges the estimators", body, "", here)


def landing_fragment(banner: str) -> str:
    """The top of the report's landing page (``workflow/report/workflow.rst``): the demo-data banner, if
    any, and :data:`LANDING_CSS`; nothing else, so the landing page fits a 768-pixel window."""
    top = f"<div class='ptmb'><div class='banner'>{html.escape(banner)}</div></div>" if banner else ""
    return f"<style>{_CSS}\n{LANDING_CSS}</style>{top}\n"


def write_html_pieces(out_dir, board, judg, noise, corr, summary: str, chance: dict, banner: str,
                      cons=None, est=None, docs_md=None) -> None:
    """The report's pages in ``out_dir`` (:data:`REPORT_PAGES`): leaderboard, estimators per task, per-PTM
    scores (with ``cons`` and ``est``), seed noise, LogME correlations, summary, definitions (``docs_md``:
    docs/report.md); and :data:`FRAGMENT`, which ``workflow/report/workflow.rst`` embeds at the top of the
    HTML report."""
    import functools

    out_dir = Path(out_dir)

    def here(name):
        return f"{paths.REPORT_HTML_DIR}/{name}"

    (out_dir / "leaderboard.html").write_text(
        leaderboard_html(board, noise, banner, page=functools.partial(html_page, here=here("leaderboard.html"))))
    (out_dir / FRAGMENT).write_text(landing_fragment(banner))
    (out_dir / "estimators.html").write_text(judging_html(judg, noise, chance, banner, here("estimators.html")))
    if cons is not None and est is not None:
        (out_dir / "per_ptm.html").write_text(per_ptm_html(cons, est, banner, here("per_ptm.html")))
    (out_dir / "noise.html").write_text(noise_html(noise, banner, here("noise.html")))
    (out_dir / "correlations.html").write_text(html_page(
        "LogME vs fine-tuned performance",
        scrolling(html_table(corr, left=("eval_task", "metric", "base"))), banner, here("correlations.html")))
    (out_dir / "summary.html").write_text(summary_html(summary, banner, here("summary.html")))
    (out_dir / "definitions.html").write_text(definitions_html(docs_md, here("definitions.html")))


def write_csv(df, path) -> None:
    if path is not None:
        with atomic_path(path) as tmp:
            df.to_csv(tmp, index=False)


def parameter_counts(logme) -> dict:
    """{PTM: its encoder's parameter count} from the LogME table's ``parameters`` column (absent or empty
    in tables written before it was recorded: those PTMs get no ``param_count`` score)."""
    if "parameters" not in logme.columns:
        return {}
    p = logme[["ptm", "parameters"]].dropna().drop_duplicates("ptm")
    return {ptm: float(v) for ptm, v in zip(p["ptm"], p["parameters"], strict=True)}


def judge_all(est, cons_seeds, parameters, judging_config=None):
    """The judging table (estimators, then the baselines) and the leaderboard, with the bootstrap of
    config ``judging`` (``bootstrap``, ``seed``, ``confidence``; defaults of :mod:`ptmbench.evaluation.judging`)."""
    cfg = {"bootstrap": judging.BOOTSTRAP, "seed": 0, "confidence": judging.CONFIDENCE, **(judging_config or {})}
    tasks = set(judging.usable_estimates(est)["eval_task"])
    baselines = judging.baseline_scores(cons_seeds, tasks, parameters)
    reps = {}
    judg = judging.judging_table(est, cons_seeds, order=naming.ordered, baselines=baselines,
                                 n_boot=int(cfg["bootstrap"]), seed=int(cfg["seed"]),
                                 confidence=float(cfg["confidence"]), replicates=reps)
    return judg, judging.leaderboard(judg, reps, float(cfg["confidence"]))


def report(performance_csv, logme_csv, correlations_csv, plots_dir, summary_txt, *, estimators_csv=None,
           leaderboard_csv=None, judging_csv=None, noise_csv=None, html_dir=None, data=None, demo_data=(),
           extra_summaries=(), judging_config=None, docs_md=DOCS_MD, sweep_csv=None) -> None:
    """Rule ``report``: every table, plot and the summary (module docstring).

    ``estimators_csv``: the tidy estimators table (None: LogME alone, from ``logme_csv``). ``data``:
    {task: its acquired data paths} for the chance levels (None: no chance lines). ``demo_data``: the
    data sets that are generated demo data (:func:`demo_sources`): a banner says so. ``extra_summaries``:
    text files appended to the summary (the published bench's judging, the comparison with it).
    ``judging_config``: config ``judging`` (the bootstrap intervals, :func:`judge_all`). ``docs_md``: the
    checkout's docs/report.md, shown as the report's definitions page. ``sweep_csv``: the sweep table (config
    ``transferability.sweep``): one ``sweep_{task}.png`` per task (:mod:`ptmbench.stages.sweep_plot`). Outputs
    given as None are not written."""
    perf, logme = read_tables(performance_csv, logme_csv)
    est = read_estimators(estimators_csv) if estimators_csv is not None else logme.assign(
        estimator="logme", applicable=True)
    corr = correlation_table(perf, logme)
    cons_seeds = consumer_performance(perf)
    cons = judging.mean_over_seeds(cons_seeds)
    judg, board = judge_all(est, cons_seeds, parameter_counts(logme), judging_config)
    noise = judging.noise_table(cons_seeds, order=naming.ordered)
    chance = {t: chance_level(t, p) for t, p in (data or {}).items() if t in set(cons["eval_task"])}
    banner = demo_banner(demo_data)
    text = summary_text(perf, logme, corr, board, noise, demo_data)
    text += "".join("\n" + Path(p).read_text() for p in extra_summaries)

    write_csv(corr, correlations_csv)
    write_csv(board, leaderboard_csv)
    write_csv(judg, judging_csv)
    write_csv(noise, noise_csv)
    with atomic_dir(plots_dir) as tmp:
        joined = logme.merge(cons[["ptm", "eval_task", "value"]], on=["ptm", "eval_task"], how="inner")
        styles = {b: base_style(i) for i, b in enumerate(dict.fromkeys(cons["base"]))}
        for task in naming.ordered(set(joined["eval_task"])):
            plot_logme_scatter(joined[joined["eval_task"] == task], task, corr[corr["eval_task"] == task],
                               tmp, chance.get(task), styles)
        for task in naming.ordered(set(judg["eval_task"]) | set(est["eval_task"])):
            plot_estimators(judg, noise, task, tmp / f"estimators_{task}.png", est)
        gains = heatmap_gains(cons)
        lim = heatmap_scale(gains)  # one colour scale for every base model
        for base in gains:
            plot_merge_heatmap(cons, base, tmp, lim, gains)
        if sweep_csv is not None:
            sweep_plot.write_sweep_plots(sweep_csv, est, cons, tmp, order=naming.ordered)
    if html_dir is not None:
        with atomic_dir(html_dir) as tmp:
            write_html_pieces(tmp, board, judg, noise, corr, text, chance, banner, cons, est, docs_md)
    with atomic_file(summary_txt) as fh:
        fh.write(text)
    log.info("report:\n%s", text)
