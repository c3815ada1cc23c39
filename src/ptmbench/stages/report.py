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


def plot_logme_scatter(joined, task, corr, path, chance=None, styles=None) -> None:
    """LogME (x) vs fine-tuned performance (y) on ``task``: a panel of all PTMs, then one per base model
    with its own Kendall tau-b (rows of ``corr``, :func:`correlation_table`); base models are the big
    edged points; a dashed line at the chance level."""
    plt = pyplot()
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    bases = list(dict.fromkeys(joined["base"]))
    styles = styles or {b: base_style(i) for i, b in enumerate(bases)}
    naming_all = "(all)"
    panels = [naming_all, *bases] if len(bases) > 1 else bases
    ncols = min(4, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(max(4.5, 3.3 * ncols), 2.9 * nrows + 0.9),
                             layout="constrained", squeeze=False)
    taus = {} if corr is None else {r["base"]: r for _, r in corr.iterrows()}
    for ax, panel in zip(axes.flat, panels, strict=False):
        for b in bases if panel == naming_all else [panel]:
            g = joined[joined["base"] == b]
            merged = g["task_1"] != ""
            st = styles[b]
            ax.scatter(g.loc[merged, "score"], g.loc[merged, "value"], s=16, alpha=0.8, color=st["color"],
                       marker=st["marker"], linewidths=0, label=b if panel == naming_all or len(bases) == 1 else None)
            ax.scatter(g.loc[~merged, "score"], g.loc[~merged, "value"], s=70, color=st["color"],
                       marker=st["marker"], edgecolor="black", linewidth=1.2)
        if chance is not None and np.isfinite(chance):
            ax.axhline(chance, color="0.4", linestyle="--", linewidth=0.9)
        row = taus.get(panel)
        tau = row["kendall_tau"] if row is not None else math.nan
        n = int(row["n"]) if row is not None else len(joined[joined["base"] == panel])
        tau_txt = "undefined" if tau is None or not np.isfinite(tau) else f"{tau:.2f}"
        ax.set_title(f"{'all PTMs' if panel == naming_all else panel}: tau-b = {tau_txt} (n = {n})", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.set_xlabel("LogME score", fontsize=7)
        ax.set_ylabel(metric_label(task), fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    chance_txt = "; dashed: chance level" if chance is not None and np.isfinite(chance) else ""
    fig.suptitle(f"{task}: LogME vs fine-tuned performance\n(big edged points: base models{chance_txt})",
                 fontsize=9)
    if len(bases) > 1:
        fig.legend(loc="outside lower center", ncol=min(6, len(bases)), fontsize=7, frameon=False)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_estimators(judg, noise, task, path) -> None:
    """Per estimator on ``task``: Kendall tau-b over all PTMs (bar) and its mean within base models
    (diamond), with tau-b = 0 (a random ranking: chance) and the seed noise ceiling when there is one."""
    plt = pyplot()
    import numpy as np

    sub = judg[judg["eval_task"] == task]
    names = list(dict.fromkeys(sub["estimator"]))
    pooled = [sub[(sub["estimator"] == e) & (sub["scope"] == judging.POOLED)]["kendall_tau_b"].mean() for e in names]
    within = [sub[(sub["estimator"] == e) & (sub["scope"] != judging.POOLED)]["kendall_tau_b"].mean() for e in names]
    fig, ax = plt.subplots(figsize=(6.0, 1.6 + 0.32 * max(len(names), 1)), layout="constrained")
    y = np.arange(len(names))
    ax.barh(y, np.nan_to_num(pooled), color=OKABE_ITO[4], height=0.6, label="all PTMs")
    ax.scatter(within, y, marker="D", color=OKABE_ITO[5], zorder=3, label="mean within base models")
    ax.axvline(0, color="0.4", linestyle="--", linewidth=0.9, label="chance (random ranking)")
    ceil = noise[(noise["eval_task"] == task) & (noise["scope"] == judging.POOLED) & (noise["ptm"] == "")]
    if len(ceil) and np.isfinite(ceil.iloc[0]["seed_kendall_tau_b"]):
        ax.axvline(ceil.iloc[0]["seed_kendall_tau_b"], color=OKABE_ITO[2], linewidth=1.5,
                   label="seed noise ceiling (all PTMs)")
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(-1.05, 1.05)
    ax.set_xlabel(f"Kendall tau-b with fine-tuned {metric_label(task)}", fontsize=8)
    ax.set_title(f"{task}: estimators vs fine-tuned performance", fontsize=9)
    fig.legend(fontsize=7, loc="outside lower center", ncol=2, frameon=False)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_merge_heatmap(cons, base, path) -> None:
    """Merged PTMs of ``base`` (rows: pair @ ratio) x eval task: colour = gain over the base model's
    own fine-tune on that task, text = the consumer metric (squad_v2 f1 / 100). The figure grows with
    the rows and columns (12 bases x 45 pairs stay readable) and nothing is clipped (constrained layout)."""
    plt = pyplot()
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
    label_w = 0.065 * max((len(r) for r in rows), default=8)
    fig, ax = plt.subplots(figsize=(max(5.0, 2.4 + label_w + 0.6 * len(tasks)), 2.2 + 0.24 * max(len(rows), 4)),
                           layout="constrained")
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
    cb = fig.colorbar(im, ax=ax, shrink=min(1.0, 0.5 + 0.05 * len(rows)))
    cb.set_label("gain over the base\nmodel's own fine-tune", fontsize=7)
    cb.ax.tick_params(labelsize=7)
    ax.set_title(f"{base}: merged PTMs, fine-tuned performance\n(text: value; colour: gain, blue = better)",
                 fontsize=9)
    fig.savefig(path, dpi=110, bbox_inches="tight", pad_inches=0.1)
    plt.close(fig)


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


LEADERBOARD_SHOWN = ("weighted_tau", "kendall_tau_b", "spearman", "pearson", "top1_regret", "top3_hit")


def summary_text(perf, logme, corr, board=None, noise=None, demo_data=()) -> str:
    """A short plain-text report: the demo-data banner, the estimator leaderboard and the seed noise
    ceiling (when given), then per task the PTM count, the best PTM and its value, the best base
    model's value, and Kendall tau of LogME vs performance over all PTMs."""
    import pandas as pd

    cons = judging.mean_over_seeds(consumer_performance(perf))
    lines = []
    banner = demo_banner(demo_data)
    if banner:
        lines += ["*** " + banner + " ***", ""]
    if board is not None and len(board):
        lines.append("Estimator leaderboard (mean over tasks; pooled = all PTMs, within = mean over base models; "
                     "ranked by weighted tau, pooled)")
        head = f"{'rank':>4} {'estimator':<14} {'tasks':>5}" + "".join(
            f" {m.replace('_', ' ')[:13]:>13}" for m in LEADERBOARD_SHOWN)
        lines.append(head)
        lines.append(f"{'':>4} {'':<14} {'':>5}" + " pooled/within" * len(LEADERBOARD_SHOWN))
        for _, r in board.iterrows():
            cells = "".join(f" {_fmt(r[f'{m}_pooled'], 2):>6}/{_fmt(r[f'{m}_within'], 2):<6}"
                            for m in LEADERBOARD_SHOWN)
            rank = "-" if pd.isna(r["rank"]) else str(int(r["rank"]))
            lines.append(f"{rank:>4} {r['estimator']:<14} "
                         f"{r['n_tasks']:>5}{cells}")
        lines.append("")
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

# scoped by the class ptmb: the leaderboard fragment is embedded in Snakemake's report page itself
_CSS = """.ptmb{font-family:system-ui,sans-serif;font-size:13px;color:#222}
.ptmb table{border-collapse:collapse;margin:6px 0 14px}
.ptmb th,.ptmb td{border:1px solid #ccc;padding:2px 7px;text-align:right}.ptmb td{white-space:nowrap}
.ptmb th{background:#eef2f7}.ptmb td.l,.ptmb th.l{text-align:left}
.ptmb caption{text-align:left;font-weight:600;padding:4px 0}
.ptmb .banner{background:#fff3cd;border:2px solid #d39e00;padding:8px 12px;font-weight:600;margin-bottom:10px}
.ptmb tr.ceil td{background:#e8f5e9}.ptmb h2{font-size:16px;font-weight:600;margin:16px 0 4px}
.ptmb p{max-width:70em;margin:4px 0}"""
FRAGMENT = "leaderboard.fragment"  # the leaderboard with the banner, embedded at the top of the HTML report


def html_fragment(title: str, body: str, banner: str = "") -> str:
    """``body`` under ``title`` (and the demo-data ``banner``), styled, to embed in another page."""
    top = f'<div class="banner">{html.escape(banner)}</div>' if banner else ""
    return f"<style>{_CSS}</style><div class='ptmb'>{top}<h2>{html.escape(title)}</h2>{body}</div>"


def html_page(title: str, body: str, banner: str = "") -> str:
    """A standalone HTML document (Snakemake's report shows ``.html`` results inline, in a frame)."""
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body>{html_fragment(title, body, banner)}</body></html>\n")


def html_table(df, caption: str = "", digits: int = 3, left=(), row_class=None) -> str:
    """``df`` as an HTML table: numbers to ``digits`` digits, NaN as a dash, ``left`` columns left-aligned."""
    out = ["<table>"]
    if caption:
        out.append(f"<caption>{html.escape(caption)}</caption>")
    out.append("<tr>" + "".join(f"<th class='{'l' if c in left else ''}'>{html.escape(str(c))}</th>"
                                for c in df.columns) + "</tr>")
    for _, row in df.iterrows():
        cls = row_class(row) if row_class else ""
        cells = []
        for c in df.columns:
            v = row[c]
            txt = _fmt(v, digits) if isinstance(v, float) else ("-" if v is None else str(v))
            cells.append(f"<td class='{'l' if c in left else ''}'>{html.escape(txt)}</td>")
        out.append(f"<tr class='{cls}'>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


LEADERBOARD_TOP = ("weighted_tau", "kendall_tau_b", "top1_regret", "top3_hit")  # fits the report's first page


def leaderboard_html(board, noise, banner: str = "", page=html_page, measures=LEADERBOARD_SHOWN) -> str:
    """The leaderboard as HTML (``page``: a standalone page or a fragment), one column per measure."""
    import pandas as pd

    shown = pd.DataFrame({"rank": [("-" if pd.isna(r) else str(int(r))) for r in board["rank"]],
                          "estimator": board["estimator"], "tasks": board["n_tasks"]})
    for m in measures:  # one column per measure: "pooled / within"
        shown[m.replace("_", " ")] = [f"{_fmt(p, 2)} / {_fmt(w, 2)}" for p, w in
                                      zip(board[f"{m}_pooled"], board[f"{m}_within"], strict=True)]
    body = ("<p>Each estimator's agreement with fine-tuned performance, averaged over tasks: <b>pooled</b> ranks "
            "all PTMs together, <b>within</b> ranks each base model's PTMs separately (then averages over base "
            "models). Correlations: higher is better (1: the true ranking; 0: chance, a random ranking). "
            "Top-1 regret: the best PTM's performance minus that of the estimator's pick (lower is better; "
            "consumer metric units). Top-3 hit: whether a truly best PTM is among the estimator's top 3. "
            "Ranked by weighted tau (pooled), the measure of the LogME paper. Definitions: docs/report.md.</p>"
            + "<div style='overflow-x:auto;max-width:100%'>"
            + html_table(shown, "each cell: pooled / within base models", left=("estimator",)) + "</div>" + f"<p>{html.escape(noise_sentence(noise))}</p>")
    return page("Estimator leaderboard", body, banner)


def judging_html(judg, noise, chance: dict, banner: str = "") -> str:
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
        t = pooled[["estimator", "n", *judging.MEASURES, "note"]].copy()
        ceil = nz.loc[judging.POOLED] if judging.POOLED in nz.index else None
        ceil_row = {"estimator": "(seed noise ceiling)", "n": int(ceil["n_ptms"]) if ceil is not None else "",
                    **dict.fromkeys(judging.MEASURES, math.nan),
                    "kendall_tau_b": float(ceil["seed_kendall_tau_b"]) if ceil is not None else math.nan,
                    "note": (ceil["note"] if ceil is not None else judging.ONE_SEED_NOTE) or
                    f"sd per PTM, mean {_fmt(ceil['sd'])}"}
        t = pd.concat([t, pd.DataFrame([ceil_row])], ignore_index=True)
        ch = chance.get(task)
        cap = f"{task}: all PTMs ({metric_label(task)}" + (f"; chance level {_fmt(ch)})" if ch is not None else ")")
        parts.append(f"<h2>{html.escape(task)}</h2>")
        parts.append(html_table(t, cap, left=("estimator", "note"),
                                row_class=lambda r: "ceil" if r["estimator"] == "(seed noise ceiling)" else ""))
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
            parts.append(html_table(wide, f"{task}: Kendall tau-b within each base model", left=("estimator",),
                                    row_class=lambda r: "ceil" if r["estimator"] == "(seed noise ceiling)" else ""))
    return html_page("Estimators per task", "\n".join(parts), banner)


def write_html_pieces(out_dir, board, judg, noise, corr, summary: str, chance: dict, banner: str) -> None:
    """The report's tables as HTML pages in ``out_dir``: leaderboard, estimators per task, LogME
    correlations, summary; and the leaderboard as :data:`FRAGMENT`, which ``workflow/report/workflow.rst``
    embeds at the top of the HTML report."""
    out_dir = Path(out_dir)
    (out_dir / "leaderboard.html").write_text(leaderboard_html(board, noise, banner))
    (out_dir / FRAGMENT).write_text(leaderboard_html(board, noise, banner, html_fragment, LEADERBOARD_TOP) + "\n")
    (out_dir / "estimators.html").write_text(judging_html(judg, noise, chance, banner))
    (out_dir / "correlations.html").write_text(html_page(
        "LogME vs fine-tuned performance", html_table(corr, left=("eval_task", "metric", "base", "note")), banner))
    (out_dir / "summary.html").write_text(html_page("Summary", f"<pre>{html.escape(summary)}</pre>"))


def write_csv(df, path) -> None:
    if path is not None:
        with atomic_path(path) as tmp:
            df.to_csv(tmp, index=False)


def report(performance_csv, logme_csv, correlations_csv, plots_dir, summary_txt, *, estimators_csv=None,
           leaderboard_csv=None, judging_csv=None, noise_csv=None, html_dir=None, data=None, demo_data=(),
           extra_summaries=(), sweep_csv=None) -> None:
    """Rule ``report``: every table, plot and the summary (module docstring).

    ``estimators_csv``: the tidy estimators table (None: LogME alone, from ``logme_csv``). ``data``:
    {task: its acquired data paths} for the chance levels (None: no chance lines). ``demo_data``: the
    data sets that are generated demo data (:func:`demo_sources`): a banner says so. ``extra_summaries``:
    text files appended to the summary (the published bench's judging, the comparison with it).
    ``sweep_csv``: the sweep table (config ``transferability.sweep``): one ``sweep_{task}.png`` per task
    (:mod:`ptmbench.stages.sweep_plot`). Outputs given as None are not written."""
    perf, logme = read_tables(performance_csv, logme_csv)
    est = read_estimators(estimators_csv) if estimators_csv is not None else logme.assign(
        estimator="logme", applicable=True)
    corr = correlation_table(perf, logme)
    cons_seeds = consumer_performance(perf)
    cons = judging.mean_over_seeds(cons_seeds)
    judg = judging.judging_table(est, cons_seeds, order=naming.ordered)
    board = judging.leaderboard(judg)
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
                               tmp / f"logme_vs_{task}.png", chance.get(task), styles)
        for task in naming.ordered(set(judg["eval_task"])):
            plot_estimators(judg, noise, task, tmp / f"estimators_{task}.png")
        for base in dict.fromkeys(cons.loc[cons["task_1"] != "", "base"]):
            plot_merge_heatmap(cons, base, tmp / f"merged_heatmap_{base}.png")
        if sweep_csv is not None:
            sweep_plot.write_sweep_plots(sweep_csv, est, cons, tmp, order=naming.ordered)
    if html_dir is not None:
        with atomic_dir(html_dir) as tmp:
            write_html_pieces(tmp, board, judg, noise, corr, text, chance, banner)
    with atomic_file(summary_txt) as fh:
        fh.write(text)
    log.info("report:\n%s", text)
