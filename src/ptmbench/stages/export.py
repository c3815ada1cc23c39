"""Stage export: the published ``ptm_model_bench`` layout and the tidy tables (the report of
:mod:`ptmbench.stages.report` reads these).

The export is read unchanged by the existing GNN performance predictor (docs/formats.md)::

    ptm_model_bench/
      MANIFEST.json                                   ours: provenance, counts, checksums
      base_model_dataset/base_{model}.dill            every seen base model (the merged ones)
      base_model_dataset/unseen_base_{model}.dill     every unseen base model with a graph (its export name)
      merged_model_dataset/{ptm}.dill                 every merged PTM {base}_{t1}_{t2}_{ratio}
      performance/merged_models/{task}_performance_score.json    {task: {ptm: {metric: value}}}
      performance/merged_models/{task}_logme.json                {ptm: score}        (GLUE only)
      performance/seen_base_models/base_{task}_performance_score.json, base_{task}_logme.json
      performance/unseen_base_models/unrelated_base_{task}_...   (only with unseen models)

The consumer joins a graph to its performance by the name stored in the dill tuple
``(G, features, name)``, so the export checks that name against the file's PTM. The consumer
globs ``*.dill`` inside the two dataset folders and opens the performance files by name, so the
top-level ``MANIFEST.json`` (and Snakemake's hidden ``.snakemake_timestamp``) are invisible to it.

Unseen models: an entry's ``export_name`` (config) is the name its keys and graph file are written
under (``xlm-roberta-base-unseen`` exported as the published unseen ``xlm-roberta-base``); the tidy
tables keep the run's own name. An unseen model whose architecture has no graph has a "no graph"
record instead of a graph (:func:`ptmbench.stages.graph.write_graph`): its performance and LogME are
exported, no ``unseen_base_{model}.dill``, and ``MANIFEST.json`` lists it under ``no_graph``.

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

from ptmbench.core import naming
from ptmbench.core import tasks as registry
from ptmbench.io.provenance import atomic_dir, atomic_path, provenance, sha256, write_json
from ptmbench.stages.graph import NO_GRAPH

log = logging.getLogger(__name__)

# The metric the consumer (and the paper's evaluation) reads per task, its scale (squad_v2's f1 is
# 0-100), the exported split and metric keys: the task's registry entry (ptmbench.core.tasks).


def export_split(task: str) -> str:
    """The validation split whose metrics are exported (mnli: the mismatched one, published meaning)."""
    return registry.get(task).export_split


def metric_keys(task: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(required, optional) exported metric keys of ``task``, in the published order (docs/formats.md)."""
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
                         f"{task} files carry (docs/formats.md); it has {sorted(values)}")
    entry = registry.get(task)
    order = entry.metric_keys if entry.kind == "qa" else (*required, *optional)
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


def record_seed(record: dict, source) -> int:
    """The seed a fine-tune ran with (``hyperparameters.seed`` of its metrics.json)."""
    seed = (record.get("hyperparameters") or {}).get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"{source} records no integer hyperparameters.seed (found {seed!r}); "
                         "rerun the fine-tune that makes it")
    return seed


def read_finetune(paths, seeded: bool = False) -> list[dict]:
    """Fine-tuning records, checked, each with its ``seed``: the primary seed's
    ``results/finetune/{ptm}/{task}/metrics.json`` or, ``seeded``, an extra seed's
    ``results/finetune/{ptm}/{task}/seed{seed}/metrics.json``."""
    out = []
    for p in map(Path, paths):
        rec = _read_json(p)
        run = p.parent.parent if seeded else p.parent
        _check_fields(rec, p, ("ptm", "task", "metrics"), run.parent.name, run.name)
        seed = record_seed(rec, p)
        if seeded and p.parent.name != f"seed{seed}":
            raise ValueError(f"{p} records seed {seed} but its folder is {p.parent.name!r}; it was copied from "
                             "elsewhere: delete it and rerun")
        out.append({**rec, "seed": seed})
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


def ptm_group(ptm: str, models, unseen) -> str:
    """The published group of a PTM of the config: 'merged', 'seen' (config ``models``) or 'unseen'."""
    return _group(ptm, models, unseen)


PERFORMANCE_DIRS = {"merged": "merged_models", "seen": "seen_base_models", "unseen": "unseen_base_models"}
FILE_PREFIX = {"merged": "", "seen": "base_", "unseen": "unrelated_base_"}


def performance_files(finetune: list[dict], logme: list[dict], models, unseen, tasks,
                      export_names: dict | None = None) -> dict[str, dict]:
    """``{relative path: JSON object}`` of every performance and LogME file of the export.

    Every (group, task) file is written, even when its group has no PTM (then it is empty);
    the unseen group only when unseen models are configured. ``export_names``: unseen model -> the
    key it is written under (config ``export_name``; default its own name).
    """
    export_names = export_names or {}
    groups = ["merged", "seen"] + (["unseen"] if unseen else [])
    tasks = naming.ordered(tasks)
    perf = {(g, t): {} for g in groups for t in tasks}
    scores = {(g, t): {} for g in groups for t in tasks if registry.get(t).has_logme}
    for rec in finetune:
        key = (_group(rec["ptm"], models, unseen), rec["task"])
        if key not in perf:
            raise ValueError(f"fine-tune result of {rec['ptm']!r} on {rec['task']!r}: task not in config 'tasks'")
        name = export_names.get(rec["ptm"], rec["ptm"])
        if name in perf[key]:
            raise ValueError(f"two fine-tune results for {name!r} on {rec['task']!r}")
        perf[key][name] = performance_entry(rec["task"], rec["metrics"], f"{rec['ptm']}/{rec['task']}")
    for rec in logme:
        key = (_group(rec["ptm"], models, unseen), rec["task"])
        if key not in scores:
            raise ValueError(f"LogME result of {rec['ptm']!r} on {rec['task']!r}: not a configured GLUE task")
        name = export_names.get(rec["ptm"], rec["ptm"])
        if name in scores[key]:
            raise ValueError(f"two LogME results for {name!r} on {rec['task']!r}")
        scores[key][name] = rec["score"]
    files = {}
    for (g, t), entries in perf.items():
        files[f"performance/{PERFORMANCE_DIRS[g]}/{FILE_PREFIX[g]}{t}_performance_score.json"] = {t: entries}
    for (g, t), entries in scores.items():
        files[f"performance/{PERFORMANCE_DIRS[g]}/{FILE_PREFIX[g]}{t}_logme.json"] = entries
    return files


# Base models' graph files, as the published release names them: seen (merged) bases and unseen bases.
GRAPH_PREFIX = {"seen": "base_", "unseen": "unseen_base_"}


def graph_file(ptm: str, models, unseen, export_names: dict | None = None) -> str:
    """Relative path of a PTM's graph in the export (an unseen model's under its export name)."""
    group = _group(ptm, models, unseen)
    if group == "merged":
        return f"merged_model_dataset/{ptm}.dill"
    return f"base_model_dataset/{GRAPH_PREFIX[group]}{(export_names or {}).get(ptm, ptm)}.dill"


def check_graph(path, name: str, feature_length: int) -> str | None:
    """The dill holds ``[(G, features, name)]`` with ``name`` and ``feature_length``-long features; or it
    is a "no graph" record (:data:`ptmbench.stages.graph.NO_GRAPH`) of ``name``: then its reason is returned."""
    import dill
    import networkx as nx

    with open(path, "rb") as fh:
        obj = dill.load(fh)
    if isinstance(obj, dict) and NO_GRAPH in obj:
        if obj.get("name") != name:
            raise ValueError(f"{path} is the 'no graph' record of {obj.get('name')!r}, not {name!r}; rerun its "
                             "graph job")
        return str(obj[NO_GRAPH])
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
    return None


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


def precisions(finetune: list[dict], logme: list[dict]) -> dict:
    """``{"finetune": [...], "logme": [...]}``: the precisions the exported runs used (``precision`` of
    each metrics / LogME record; a fine-tune record without it, from an older release: from its
    ``bf16`` / ``fp16`` flags; a LogME record without it: ``"unrecorded"``)."""
    def of_finetune(r):
        if "precision" in r:
            return r["precision"]
        hp = r.get("hyperparameters", {})
        return "bf16" if hp.get("bf16") else "fp16" if hp.get("fp16") else "fp32"

    return {"finetune": sorted({of_finetune(r) for r in finetune}),
            "logme": sorted({r.get("precision", "unrecorded") for r in logme})}


def write_bench(out_dir, finetune: list[dict], logme: list[dict], graphs, models, unseen, tasks,
                feature_length: int = 128, link: bool = True, seeds: dict | None = None,
                export_names: dict | None = None) -> dict:
    """Write the ``ptm_model_bench`` folder atomically; return its manifest. ``finetune``: the primary
    seed's records only (the published files hold one run per PTM and task); ``seeds``: what the
    manifest records as ``seeds`` (:func:`seeds_of`); ``export_names``: unseen model -> the name it is
    exported under (config ``export_name``). An unseen model's "no graph" record
    (:func:`ptmbench.stages.graph.write_graph`) exports no graph file and is listed under ``no_graph``."""
    models, unseen = list(models), list(unseen)
    export_names = dict(export_names or {})
    files = performance_files(finetune, logme, models, unseen, tasks, export_names)
    modes = defaultdict(int)
    no_graph = []
    with atomic_dir(out_dir) as tmp:
        for sub in ("base_model_dataset", "merged_model_dataset"):
            (tmp / sub).mkdir()
        for path in map(Path, graphs):
            ptm = path.name.removesuffix(".dill")
            name = export_names.get(ptm, ptm)
            reason = check_graph(path, name, feature_length)
            if reason is not None:
                if _group(ptm, models, unseen) != "unseen":
                    raise ValueError(f"{path} is a 'no graph' record, but {ptm!r} is not an unseen model: only "
                                     "unseen models may lack a graph; rerun its graph job")
                no_graph.append({"ptm": name, "reason": reason})
                continue
            dst = tmp / graph_file(ptm, models, unseen, export_names)
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
            **({"export_names": export_names} if export_names else {}),
            **({"no_graph": no_graph} if no_graph else {}),
            "tasks": naming.ordered(tasks),
            "metric_split": {t: export_split(t) for t in naming.ordered(tasks)},
            "consumer_metric": {t: registry.get(t).consumer_metric for t in naming.ordered(tasks)},
            "graphs": dict(modes),
            "diverged": [{"ptm": r["ptm"], "task": r["task"]} for r in finetune if r.get("diverged")],
            "seeds": seeds if seeds is not None else seeds_of(finetune, ()),
            "input_versions": _versions([*finetune, *logme]),
            "files": {str(p.relative_to(tmp)): {"bytes": p.stat().st_size, "sha256": sha256(p)}
                      for p in sorted(tmp.rglob("*")) if p.is_file()},
            "precision": precisions(finetune, logme),
            # no time stamp: the same inputs give the same bytes (a checksum compares two exports)
            "provenance": provenance(timestamp=False, stage="export", feature_length=feature_length),
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
    """One row per (PTM, seed, eval task, split, metric): every numeric metric as recorded, from the
    fine-tunes of every seed (``seed``: the record's, else its ``hyperparameters.seed``)."""
    import pandas as pd

    rows, seen = [], set()
    for rec in finetune:
        ids = _ids(rec["ptm"], bases)
        seed = rec["seed"] if "seed" in rec else record_seed(rec, f"fine-tune of {rec['ptm']} on {rec['task']}")
        if (rec["ptm"], rec["task"], seed) in seen:
            raise ValueError(f"two fine-tune results for {rec['ptm']!r} on {rec['task']!r} with seed {seed}")
        seen.add((rec["ptm"], rec["task"], seed))
        for split, values in rec["metrics"].items():
            for metric, value in values.items():
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    continue
                rows.append({**ids, "seed": seed, "eval_task": rec["task"], "split": split, "metric": metric,
                             "value": float(value), "diverged": bool(rec.get("diverged", False))})
    cols = [*ID_COLUMNS, "seed", "eval_task", "split", "metric", "value", "diverged"]
    return pd.DataFrame(rows, columns=cols).astype({"seed": "int64"})


def logme_table(logme: list[dict], bases):
    """One row per (PTM, GLUE task): the LogME score, examples n, feature dimension d, the encoder's
    parameter count (``parameters``; empty in records written before it was recorded) and time."""
    import pandas as pd

    rows = [{**_ids(r["ptm"], bases), "eval_task": r["task"], "score": r["score"], "n": r.get("n"),
             "d": r.get("d"), "parameters": r.get("parameters"), "time_s": r.get("time_s")} for r in logme]
    return pd.DataFrame(rows, columns=[*ID_COLUMNS, "eval_task", "score", "n", "d", "parameters", "time_s"]).astype(
        {"parameters": "Int64"})


ESTIMATOR_FIELDS = ("score", "time_s", "applicable", "note")


def estimators_table(logme: list[dict], bases, early_stop: list[dict] = ()):
    """One row per (PTM, GLUE task, estimator) of the LogME records' ``estimators``: its score, time,
    whether it applies to the task's kind and a note (why not). A not-applicable score is NaN (empty
    in the CSV), never 0. ``early_stop``: the fine-tuning proxy's records (rule ``early_stop``,
    :mod:`ptmbench.stages.early_stop`), one row each as estimator ``early_stop``."""
    import pandas as pd

    rows = []
    for r in logme:
        ests = r.get("estimators")
        where = f"LogME result of {r['ptm']!r} on {r['task']!r}"
        if not isinstance(ests, dict) or not ests:
            raise ValueError(f"{where} has no 'estimators' (written before the estimators were computed in "
                             "the logme job?): rerun its logme job (snakemake --forcerun logme)")
        ids = {**_ids(r["ptm"], bases), "eval_task": r["task"]}
        for name, e in ests.items():
            missing = [f for f in ESTIMATOR_FIELDS if not isinstance(e, dict) or f not in e]
            if missing:
                raise ValueError(f"{where}: estimator {name!r} lacks {missing}; rerun its logme job")
            score = e["score"] if e["applicable"] else None
            if e["applicable"] and (isinstance(score, bool) or not isinstance(score, (int, float))
                                    or not math.isfinite(score)):
                raise ValueError(f"{where}: estimator {name!r} is applicable but its score is {score!r}; "
                                 "rerun its logme job")
            rows.append({**ids, "estimator": name, "score": float("nan") if score is None else float(score),
                         "time_s": e["time_s"], "applicable": bool(e["applicable"]), "note": e["note"]})
    for r in early_stop:
        if not isinstance(r.get("score"), (int, float)) or not math.isfinite(r["score"]):
            raise ValueError(f"early_stop result of {r['ptm']!r} on {r['task']!r} has score {r.get('score')!r}; "
                             "rerun its early_stop job")
        rows.append({**_ids(r["ptm"], bases), "eval_task": r["task"], "estimator": r["estimator"],
                     "score": float(r["score"]), "time_s": r["time_s"], "applicable": True,
                     "note": f"validation {registry.get(r['task']).consumer_metric} after {r['train_steps']} "
                             "optimiser steps of the fine-tune recipe"})
    cols = [*ID_COLUMNS, "eval_task", "estimator", "score", "time_s", "applicable", "note"]
    return pd.DataFrame(rows, columns=cols).astype({"score": "float64", "applicable": "bool"})


SWEEP_COLUMNS = ("axis", "size", "estimator", "score", "time_s", "applicable", "note")


def sweep_table(logme: list[dict], bases):
    """One row per (PTM, GLUE task, axis, size, estimator) of the LogME records' ``sweep`` (config
    ``transferability.sweep``; :mod:`ptmbench.estimators.sweep`): ``axis`` ``n`` (nested subsample of
    ``size`` examples) or ``d`` (``size`` principal components), the score (NaN where the estimator
    failed or does not apply, with the reason in ``note``, never 0) and its seconds. No rows when the
    sweep is off."""
    import pandas as pd

    rows = []
    for r in logme:
        ids = {**_ids(r["ptm"], bases), "eval_task": r["task"]}
        for e in r.get("sweep") or ():
            missing = [f for f in SWEEP_COLUMNS if f not in e]
            if missing:
                raise ValueError(f"LogME result of {r['ptm']!r} on {r['task']!r}: a sweep row lacks {missing}; "
                                 "rerun its logme job")
            score = e["score"]
            rows.append({**ids, **{f: e[f] for f in SWEEP_COLUMNS},
                         "score": float("nan") if score is None else float(score)})
    cols = [*ID_COLUMNS, "eval_task", *SWEEP_COLUMNS]
    return pd.DataFrame(rows, columns=cols).astype({"score": "float64", "size": "int64", "time_s": "float64",
                                                    "applicable": "bool"})


def write_table(df, csv_path) -> None:
    """Write ``df`` as CSV and as Parquet beside it (``.parquet``, with our provenance), atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    csv_path = Path(csv_path)
    with atomic_path(csv_path) as tmp:
        df.to_csv(tmp, index=False)
    meta = json.dumps(provenance(timestamp=False, stage="export"), default=str)  # byte-reproducible
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"ptmbench.provenance": meta})
    with atomic_path(csv_path.with_suffix(".parquet")) as tmp:
        pq.write_table(table, tmp)


def seeds_of(primary: list[dict], extra: list[dict]) -> dict:
    """``{"published": the primary seed, "all": every seed, the primary first}`` of the fine-tune records;
    the primary seed's records must agree on one seed (the published files mix no runs)."""
    found = sorted({r["seed"] if "seed" in r else record_seed(r, r.get("ptm")) for r in primary})
    if len(found) > 1:
        raise ValueError(f"the primary seed's fine-tunes (results/finetune/{{ptm}}/{{task}}/metrics.json) record "
                         f"seeds {found}, not one: rerun the fine-tunes made with an older finetune.seeds")
    return {"published": found[0] if found else None,
            "all": list(dict.fromkeys([*found, *(r["seed"] for r in extra)]))}


def export(finetune, logme, graphs, models, unseen, tasks, out_dir, performance_csv, logme_csv,
           feature_length: int = 128, link: bool = True, estimators_csv=None, finetune_seeds=(),
           export_names: dict | None = None,
           sweep_csv=None, early_stop=()) -> dict:
    """Rule ``export``: the ``ptm_model_bench`` folder (the primary seed's fine-tunes ``finetune``) and
    the tidy performance / LogME tables (performance: every seed, ``finetune_seeds`` too), and the
    estimators table when ``estimators_csv`` is given, the sweep table (:func:`sweep_table`) when
    ``sweep_csv`` is; ``early_stop``: the fine-tuning proxy's JSON files, rows of the estimators table."""
    ft, lm = read_finetune(finetune), read_logme(logme)
    extra = read_finetune(finetune_seeds, seeded=True)
    seeds = seeds_of(ft, extra)
    bases = [*models, *unseen]
    stopped = []
    for p in map(Path, early_stop):
        rec = _read_json(p)
        _check_fields(rec, p, ("ptm", "task", "score", "estimator", "train_steps", "time_s"), p.parent.name, p.stem)
        stopped.append(rec)
    est = None if estimators_csv is None else estimators_table(lm, bases, stopped)  # checked before anything is written
    write_table(performance_table([*ft, *extra], bases), performance_csv)
    write_table(logme_table(lm, bases), logme_csv)
    if est is not None:
        write_table(est, estimators_csv)
    if sweep_csv is not None:
        write_table(sweep_table(lm, bases), sweep_csv)
    return write_bench(out_dir, ft, lm, graphs, models, unseen, tasks, feature_length, link, seeds, export_names)
