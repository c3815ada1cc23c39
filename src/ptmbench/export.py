"""Export in the published ``ptm_model_bench`` layout, tidy tables, and the LogME-vs-fine-tune report.

The export is read unchanged by the existing GNN performance predictor (DESIGN.md §3)::

    ptm_model_bench/
      MANIFEST.json                                   ours: provenance, counts, checksums
      base_model_dataset/base_{model}.dill            every seen base model (the merged ones)
      base_model_dataset/unseen_base_{model}.dill     every unseen base model
      merged_model_dataset/{ptm}.dill                 every merged PTM {base}_{t1}_{t2}_{ratio}
      performance/merged_models/{task}_performance_score.json    {task: {ptm: {metric: value}}}
      performance/merged_models/{task}_logme.json                {ptm: score}        (GLUE only)
      performance/seen_base_models/base_{task}_performance_score.json, base_{task}_logme.json
      performance/unseen_base_models/unrelated_base_{task}_...   (only with unseen models)

The consumer joins a graph to its performance by the name stored in the dill tuple
``(G, features, name)``, so the export checks that name against the file's PTM. The consumer
globs ``*.dill`` inside the two dataset folders and opens the performance files by name, so the
top-level ``MANIFEST.json`` (and Snakemake's hidden ``.snakemake_timestamp``) are invisible to it.

Metric meaning: every task's metrics come from its ``validation`` split, except mnli, whose
exported ``eval_accuracy`` (and other keys) are the *mismatched* validation split's, the meaning
of the published files. The tidy tables keep every split (``validation_matched`` too).
Diverged runs are exported with their metrics as recorded (``MANIFEST.json`` lists them).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from collections import defaultdict
from pathlib import Path

from ptmbench import naming
from ptmbench import tasks as registry
from ptmbench.provenance import atomic_dir, atomic_path, provenance, sha256, write_json

log = logging.getLogger(__name__)

# The metric the consumer (and the paper's evaluation) reads per task, its scale (squad_v2's f1 is
# 0-100), the exported split and metric keys: the task's registry entry (ptmbench.tasks).


def export_split(task: str) -> str:
    """The validation split whose metrics are exported (mnli: the mismatched one, published meaning)."""
    return registry.get(task).export_split


def metric_keys(task: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(required, optional) exported metric keys of ``task``, in the published order (DESIGN §3)."""
    return registry.get(task).export_keys


def performance_entry(task: str, metrics: dict, source: str = "metrics") -> dict:
    """The exported ``{metric: value}`` of one fine-tuning run (its ``metrics`` by split)."""
    split = export_split(task)
    if split not in metrics:
        raise ValueError(f"{source}: no '{split}' split in 'metrics' (has {sorted(metrics)}); "
                         f"the export of {task} needs it: rerun this fine-tune")
    values = metrics[split]
    required, optional = metric_keys(task)
    missing = [k for k in required if k not in values]
    if missing:
        raise ValueError(f"{source}: split '{split}' lacks metric(s) {missing} that the published "
                         f"{task} files carry (DESIGN.md §3); it has {sorted(values)}")
    order = registry.get(task).metric_keys if registry.get(task).kind == "qa" else (*required, *optional)
    return {k: values[k] for k in order if k in values}


def _read_json(path) -> dict:
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read {path}: {err}; delete it and rerun the job that makes it") from err


def _check_fields(record: dict, path, fields, ptm: str, task: str) -> None:
    missing = [f for f in fields if f not in record]
    if missing:
        raise ValueError(f"{path} lacks field(s) {missing}; rerun the job that makes it")
    if (record["ptm"], record["task"]) != (ptm, task):
        raise ValueError(f"{path} records ptm={record['ptm']!r}, task={record['task']!r} but its path says "
                         f"ptm={ptm!r}, task={task!r}; it was copied from elsewhere: delete it and rerun")


def read_finetune(paths) -> list[dict]:
    """Fine-tuning records from ``results/finetune/{ptm}/{task}/metrics.json`` files, checked."""
    out = []
    for p in map(Path, paths):
        rec = _read_json(p)
        _check_fields(rec, p, ("ptm", "task", "metrics"), p.parent.parent.name, p.parent.name)
        out.append(rec)
    return out


def read_logme(paths) -> list[dict]:
    """LogME records from ``results/logme/{ptm}/{task}.json`` files, checked."""
    out = []
    for p in map(Path, paths):
        rec = _read_json(p)
        _check_fields(rec, p, ("ptm", "task", "score"), p.parent.name, p.stem)
        out.append(rec)
    return out


def _group(ptm: str, models, unseen) -> str:
    """'merged', 'seen' or 'unseen' (the published performance sub-folders)."""
    p = naming.parse_ptm(ptm, [*models, *unseen])
    if p.is_merged:
        if p.base not in models:
            raise ValueError(f"merged PTM {ptm!r} has base {p.base!r}, which is not in config 'models'")
        return "merged"
    return "seen" if ptm in models else "unseen"


PERFORMANCE_DIRS = {"merged": "merged_models", "seen": "seen_base_models", "unseen": "unseen_base_models"}
FILE_PREFIX = {"merged": "", "seen": "base_", "unseen": "unrelated_base_"}


def performance_files(finetune: list[dict], logme: list[dict], models, unseen, tasks) -> dict[str, dict]:
    """``{relative path: JSON object}`` of every performance and LogME file of the export.

    Every (group, task) file is written, even when its group has no PTM (then it is empty);
    the unseen group only when unseen models are configured.
    """
    groups = ["merged", "seen"] + (["unseen"] if unseen else [])
    tasks = naming.ordered(tasks)
    perf = {(g, t): {} for g in groups for t in tasks}
    scores = {(g, t): {} for g in groups for t in tasks if registry.get(t).has_logme}
    for rec in finetune:
        key = (_group(rec["ptm"], models, unseen), rec["task"])
        if key not in perf:
            raise ValueError(f"fine-tune result of {rec['ptm']!r} on {rec['task']!r}: task not in config 'tasks'")
        if rec["ptm"] in perf[key]:
            raise ValueError(f"two fine-tune results for {rec['ptm']!r} on {rec['task']!r}")
        perf[key][rec["ptm"]] = performance_entry(rec["task"], rec["metrics"], f"{rec['ptm']}/{rec['task']}")
    for rec in logme:
        key = (_group(rec["ptm"], models, unseen), rec["task"])
        if key not in scores:
            raise ValueError(f"LogME result of {rec['ptm']!r} on {rec['task']!r}: not a configured GLUE task")
        if rec["ptm"] in scores[key]:
            raise ValueError(f"two LogME results for {rec['ptm']!r} on {rec['task']!r}")
        scores[key][rec["ptm"]] = rec["score"]
    files = {}
    for (g, t), entries in perf.items():
        files[f"performance/{PERFORMANCE_DIRS[g]}/{FILE_PREFIX[g]}{t}_performance_score.json"] = {t: entries}
    for (g, t), entries in scores.items():
        files[f"performance/{PERFORMANCE_DIRS[g]}/{FILE_PREFIX[g]}{t}_logme.json"] = entries
    return files


# Base models' graph files, as the published release names them: seen (merged) bases and unseen bases.
GRAPH_PREFIX = {"seen": "base_", "unseen": "unseen_base_"}


def graph_file(ptm: str, models, unseen) -> str:
    """Relative path of a PTM's graph in the export."""
    group = _group(ptm, models, unseen)
    if group == "merged":
        return f"merged_model_dataset/{ptm}.dill"
    return f"base_model_dataset/{GRAPH_PREFIX[group]}{ptm}.dill"


def check_graph(path, name: str, feature_length: int) -> None:
    """The dill holds ``[(G, features, name)]`` with ``name`` and ``feature_length``-long features."""
    import dill
    import networkx as nx

    with open(path, "rb") as fh:
        obj = dill.load(fh)
    if not (isinstance(obj, list) and len(obj) == 1 and isinstance(obj[0], tuple) and len(obj[0]) == 3):
        raise ValueError(f"{path}: expected a list holding one tuple (G, features, name); rerun its graph job")
    g, features, stored = obj[0]
    if stored != name:
        raise ValueError(f"{path} holds the graph of {stored!r}, not {name!r}: the predictor joins graphs "
                         "to performance by this name; rerun its graph job")
    if not isinstance(g, nx.DiGraph) or not features:
        raise ValueError(f"{path}: G is not a networkx.DiGraph or features are empty; rerun its graph job")
    bad = [k for k, v in features.items() if tuple(v.shape) != (feature_length,)]
    if bad:
        raise ValueError(f"{path}: feature {bad[0]!r} has shape {tuple(features[bad[0]].shape)}, expected "
                         f"({feature_length},) as the predictor's input dimension")


def link_or_copy(src, dst) -> str:
    """Hard-link ``src`` to ``dst`` (no extra disk; the graph files are never edited in place)
    or copy it when linking is impossible (another filesystem, no permission). Returns which."""
    try:
        os.link(src, dst)
        return "hardlink"
    except OSError:
        shutil.copyfile(src, dst)  # a new file: the user's umask
        return "copy"


def _versions(records) -> dict[str, list[str]]:
    """Distinct package versions over the inputs' provenance (a mixed-version run shows here)."""
    seen = defaultdict(set)
    for rec in records:
        for pkg, ver in ((rec.get("provenance") or {}).get("versions") or {}).items():
            seen[pkg].add(str(ver))
    return {pkg: sorted(v) for pkg, v in sorted(seen.items())}


def write_bench(out_dir, finetune: list[dict], logme: list[dict], graphs, models, unseen, tasks,
                feature_length: int = 128, link: bool = True) -> dict:
    """Write the ``ptm_model_bench`` folder atomically; return its manifest."""
    models, unseen = list(models), list(unseen)
    files = performance_files(finetune, logme, models, unseen, tasks)
    modes = defaultdict(int)
    with atomic_dir(out_dir) as tmp:
        for sub in ("base_model_dataset", "merged_model_dataset"):
            (tmp / sub).mkdir()
        for path in map(Path, graphs):
            ptm = path.name.removesuffix(".dill")
            check_graph(path, ptm, feature_length)
            dst = tmp / graph_file(ptm, models, unseen)
            if link:
                modes[link_or_copy(path, dst)] += 1
            else:
                shutil.copyfile(path, dst)
                modes["copy"] += 1
        for rel, obj in files.items():
            write_json(tmp / rel, obj)
        manifest = {
            "format": "ptm_model_bench",
            "models": models,
            "unseen_models": unseen,
            "tasks": naming.ordered(tasks),
            "metric_split": {t: export_split(t) for t in naming.ordered(tasks)},
            "consumer_metric": {t: registry.get(t).consumer_metric for t in naming.ordered(tasks)},
            "graphs": dict(modes),
            "diverged": [{"ptm": r["ptm"], "task": r["task"]} for r in finetune if r.get("diverged")],
            "input_versions": _versions([*finetune, *logme]),
            "files": {str(p.relative_to(tmp)): {"bytes": p.stat().st_size, "sha256": sha256(p)}
                      for p in sorted(tmp.rglob("*")) if p.is_file()},
            "provenance": provenance(stage="export", feature_length=feature_length),
        }
        write_json(tmp / "MANIFEST.json", manifest)
    log.info("exported %d files to %s (graphs: %s)", len(manifest["files"]), out_dir, dict(modes))
    return manifest


# ----------------------------------------------------------------------------- tidy tables

ID_COLUMNS = ["ptm", "base", "task_1", "task_2", "ratio"]


def _ids(ptm: str, bases) -> dict:
    p = naming.parse_ptm(ptm, bases)
    return {"ptm": ptm, "base": p.base, "task_1": p.t1, "task_2": p.t2, "ratio": p.ratio}


def performance_table(finetune: list[dict], bases):
    """One row per (PTM, eval task, split, metric): every numeric metric as recorded."""
    import pandas as pd

    rows = []
    for rec in finetune:
        ids = _ids(rec["ptm"], bases)
        for split, values in rec["metrics"].items():
            for metric, value in values.items():
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    continue
                rows.append({**ids, "eval_task": rec["task"], "split": split, "metric": metric,
                             "value": float(value), "diverged": bool(rec.get("diverged", False))})
    cols = [*ID_COLUMNS, "eval_task", "split", "metric", "value", "diverged"]
    return pd.DataFrame(rows, columns=cols)


def logme_table(logme: list[dict], bases):
    """One row per (PTM, GLUE task): the LogME score, examples n, feature dimension d and time."""
    import pandas as pd

    rows = [{**_ids(r["ptm"], bases), "eval_task": r["task"], "score": r["score"], "n": r.get("n"),
             "d": r.get("d"), "time_s": r.get("time_s")} for r in logme]
    return pd.DataFrame(rows, columns=[*ID_COLUMNS, "eval_task", "score", "n", "d", "time_s"])


def write_table(df, csv_path) -> None:
    """Write ``df`` as CSV and as Parquet beside it (``.parquet``, with our provenance), atomically."""
    csv_path = Path(csv_path)
    _atomic(csv_path, lambda p: df.to_csv(p, index=False))
    meta = json.dumps(provenance(stage="export"), default=str)

    def parquet(p):
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(df, preserve_index=False)
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"ptmbench.provenance": meta})
        pq.write_table(table, p)

    _atomic(csv_path.with_suffix(".parquet"), parquet)


def _atomic(path: Path, write) -> None:
    """``write(tmp)`` a file through the one atomic writer, then publish it as ``path``."""
    with atomic_path(path) as tmp:
        write(tmp)


def export(finetune, logme, graphs, models, unseen, tasks, out_dir, performance_csv, logme_csv,
           feature_length: int = 128, link: bool = True) -> dict:
    """Rule ``export``: the ``ptm_model_bench`` folder and the tidy performance / LogME tables."""
    ft, lm = read_finetune(finetune), read_logme(logme)
    bases = [*models, *unseen]
    write_table(performance_table(ft, bases), performance_csv)
    write_table(logme_table(lm, bases), logme_csv)
    return write_bench(out_dir, ft, lm, graphs, models, unseen, tasks, feature_length, link)


# ----------------------------------------------------------------------------- report

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
    _atomic(Path(correlations_csv), lambda p: corr.to_csv(p, index=False))
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
    _atomic(Path(summary_txt), lambda p: Path(p).write_text(text))
    log.info("report:\n%s", text)
