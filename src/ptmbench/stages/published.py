"""The published ``ptm_model_bench`` as data: located, checked against its checksums, read into the
export's tidy tables, and the estimators' judging applied to it (rule ``published``; docs/published.md).

The published performance and LogME files (PTM-Recommender at commit :data:`COMMIT`) come from the
config key ``published``: ``source: shipped`` (the copy in ``resources/published/`` of the workflow's
folder, the default), ``path`` (a local ``ptm_model_bench`` folder) or ``url`` (every file downloaded
from ``url`` at ``commit``). Whatever the source, every file listed in the checksum manifest
(``SHA256SUMS``, ``sha256sum`` format, paths relative to the ``ptm_model_bench`` folder) must be there
with its SHA-256 before anything is read.

The files keep one record per (PTM, task) in three groups, the folders of the export
(:data:`ptmbench.stages.export.PERFORMANCE_DIRS`): ``seen`` (the 12 base models), ``merged`` (540) and
``unseen`` (32; names as published, ``flaubert_small_cased`` included). Every record is kept: the
tables have a column ``group``, so ``xlm-roberta-base``, both a seen and an unseen base model there
with different runs, has a row in each. The judging needs one name per record: the unseen twin is
judged as ``xlm-roberta-base (unseen)`` (:func:`record_names`).
"""

from __future__ import annotations

import json
import logging
import math
import re
import tempfile
import urllib.request
from pathlib import Path

from ptmbench.core import naming, paths
from ptmbench.core import tasks as registry
from ptmbench.evaluation import judging
from ptmbench.io.provenance import atomic_file, atomic_path, sha256
from ptmbench.stages import report
from ptmbench.stages.export import FILE_PREFIX, ID_COLUMNS, PERFORMANCE_DIRS
from ptmbench.stages.report import consumer_performance, write_csv

log = logging.getLogger(__name__)

REPOSITORY = "samsungsds-research-papers/PTM-Recommender"
COMMIT = "d4b1a51225a201d57ed6110c0ae683afe167db0a"  # the release the shipped copy and its checksums are of
URL = "https://raw.githubusercontent.com/" + REPOSITORY + "/{commit}/ptm_model_bench"  # {commit} filled in
SHIPPED_DIR = "resources/published"  # in the workflow's folder: LICENSE, README.md, SHA256SUMS, ptm_model_bench/
BENCH = "ptm_model_bench"
MANIFEST = "SHA256SUMS"
PARAM_COUNTS = "param_counts.csv"  # in SHIPPED_DIR: the base models' parameter counts (param_count baseline)
GROUPS = ("seen", "merged", "unseen")  # the published folders, in this order in the tables
PUBLISHED_SEED = 0  # the seed of the published fine-tunes (the original commands' --seed 0)
PERFORMANCE_COLUMNS = [*ID_COLUMNS, "seed", "eval_task", "split", "metric", "value", "diverged", "group"]
LOGME_COLUMNS = [*ID_COLUMNS, "eval_task", "score", "n", "d", "time_s", "group"]


class PublishedError(ValueError):
    """The published bench cannot be used: a file missing or malformed, or a checksum mismatch."""


# --------------------------------------------------------------------------------- finding and checking

def read_manifest(path) -> dict[str, str]:
    """``{relative path: SHA-256}`` of a checksum manifest (``sha256sum`` output: ``<hex>  <path>``)."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        raise PublishedError(f"cannot read the published bench's checksum manifest {path}: {err}; config "
                             f"published.manifest names it (default: {SHIPPED_DIR}/{MANIFEST})") from err
    out = {}
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        m = re.fullmatch(r"([0-9a-f]{64}) [ *](\S.*)", line.strip())
        if m is None:
            raise PublishedError(f"{path} line {i} is not '<sha256>  <path>' (found {line[:80]!r}); write it with "
                                 "`sha256sum performance/*/*.json > SHA256SUMS` inside the ptm_model_bench folder")
        out[m.group(2)] = m.group(1)
    if not out:
        raise PublishedError(f"{path} lists no file; write it with `sha256sum performance/*/*.json > SHA256SUMS`")
    return out


def verify(folder, manifest: dict[str, str]) -> None:
    """Every file of ``manifest`` is in ``folder`` with its SHA-256 (else :class:`PublishedError` naming it)."""
    folder = Path(folder)
    missing = [rel for rel in manifest if not (folder / rel).is_file()]
    if missing:
        raise PublishedError(
            f"published bench {folder}: {len(missing)} file(s) of the checksum manifest missing, first "
            f"{folder / missing[0]}; config published.path must name a ptm_model_bench folder of {REPOSITORY} "
            f"at commit {COMMIT} (or set published.source: shipped)")
    for rel, want in manifest.items():
        got = sha256(folder / rel)
        if got != want:
            raise PublishedError(
                f"checksum mismatch: {folder / rel} has SHA-256 {got}, the manifest says {want}. It is not the "
                f"file published at commit {COMMIT}: fetch it again, or give published.manifest for the "
                "release you mean to use")


def download(url: str, manifest: dict[str, str], out_dir) -> Path:
    """Every file of ``manifest`` from ``url`` (``{url}/{relative path}``) into ``out_dir``, each checked
    against its SHA-256 as it arrives; returns ``out_dir``."""
    out_dir = Path(out_dir)
    for rel, want in manifest.items():
        dst = out_dir / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        src = f"{url.rstrip('/')}/{rel}"
        try:
            with urllib.request.urlopen(src, timeout=60) as resp, open(dst, "wb") as fh:  # noqa: S310 (config URL)
                fh.write(resp.read())
        except OSError as err:
            raise PublishedError(f"cannot download {src}: {err}; check published.url and published.commit, or "
                                 "use published.source: shipped (offline)") from err
        got = sha256(dst)
        if got != want:
            raise PublishedError(f"checksum mismatch: {src} has SHA-256 {got}, the manifest says {want}: "
                                 "published.url / published.commit give another release than the manifest's")
        log.info("downloaded %s", src)
    return out_dir


def source_spec(config: dict, workflow_dir) -> dict:
    """The published bench of ``config`` (key ``published``), with absolute paths: ``{"source", "folder"
    (shipped, path) or "url" (url), "manifest"}``. ``workflow_dir``: the folder of the workflow's Snakefile."""
    spec = dict(config.get("published") or {"source": "shipped"})
    shipped = Path(workflow_dir) / SHIPPED_DIR
    source = spec.get("source", "shipped")
    out = {"source": source, "manifest": str(Path(spec["manifest"]).resolve()) if spec.get("manifest")
           else str(shipped / MANIFEST)}
    if source == "shipped":
        out["folder"] = str(shipped / BENCH)
    elif source == "path":
        out["folder"] = str(Path(spec["path"]).resolve())
    else:
        out["url"] = spec.get("url", URL).format(commit=spec.get("commit", COMMIT))
    return out


def manifest_checksum(spec: dict) -> str:
    """SHA-256 of the manifest of :func:`source_spec` ``spec`` (a rule parameter: other files, other jobs)."""
    try:
        return sha256(spec["manifest"])
    except OSError as err:
        raise PublishedError(f"cannot read the published bench's checksum manifest {spec['manifest']}: {err}; "
                             f"config published.manifest names it (default: {SHIPPED_DIR}/{MANIFEST})") from err


# --------------------------------------------------------------------------------- the tidy tables

def _load(path) -> dict:
    try:
        with open(path) as fh:
            obj = json.load(fh)
    except (OSError, json.JSONDecodeError) as err:
        raise PublishedError(f"cannot read published file {path}: {err}") from err
    if not isinstance(obj, dict):
        raise PublishedError(f"published file {path} holds a {type(obj).__name__}, not a JSON object")
    return obj


def _number(value, path, where: str) -> float:
    """A published number (null: NaN, as the original writes undefined correlations)."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PublishedError(f"published file {path}: {where} is {value!r}, not a number or null")
    return float(value)


def performance_records(path, task: str) -> dict[str, dict]:
    """``{PTM: {metric: value}}`` of one ``*_performance_score.json`` (wrapped in ``{task: ...}`` or not)."""
    obj = _load(path)
    if set(obj) == {task} and isinstance(obj[task], dict):  # wrapped (no PTM is named after a task)
        obj = obj[task]
    for ptm, metrics in obj.items():
        if not isinstance(metrics, dict) or not metrics:
            raise PublishedError(f"published file {path}: the entry of {ptm!r} is {metrics!r}, not "
                                 "{metric: value}")
    return obj


def logme_records(path) -> dict[str, float]:
    """``{PTM: LogME score}`` of one ``*_logme.json``."""
    obj = _load(path)
    return {ptm: _number(v, path, f"the score of {ptm!r}") for ptm, v in obj.items()}


def file_name(group: str, task: str, kind: str) -> str:
    """Relative path of a published file: ``kind`` is ``performance_score`` or ``logme``."""
    return f"performance/{PERFORMANCE_DIRS[group]}/{FILE_PREFIX[group]}{task}_{kind}.json"


def published_tasks() -> list[str]:
    """The ten published tasks, in the fixed order."""
    return list(registry.PUBLISHED)


def read_tables(folder, manifest: dict[str, str] | None = None):
    """The published bench in ``folder`` as the export's tidy tables (performance, LogME), with a column
    ``group`` (seen, merged, unseen). ``manifest``: checked first (:func:`verify`) when given. Every
    published file of the ten tasks must be there; merged names are parsed against the seen base models."""
    import pandas as pd

    folder = Path(folder)
    if manifest is not None:
        verify(folder, manifest)
    tasks = published_tasks()
    needed = [file_name(g, t, k) for g in GROUPS for t in tasks
              for k in ("performance_score", *(("logme",) if registry.get(t).has_logme else ()))]
    missing = [rel for rel in needed if not (folder / rel).is_file()]
    if missing:
        raise PublishedError(f"published bench {folder} lacks {len(missing)} file(s), first {folder / missing[0]}: "
                             f"it must hold the performance/ folder of {REPOSITORY}'s ptm_model_bench")
    perf = {(g, t): performance_records(folder / file_name(g, t, "performance_score"), t) for g in GROUPS
            for t in tasks}
    seen = sorted({p for t in tasks for p in perf["seen", t]})
    ids: dict[tuple[str, str], dict] = {}

    def ids_of(group: str, ptm: str, path) -> dict:
        key = (group, ptm)
        if key not in ids:
            if group == "merged":
                try:
                    p = naming.parse_ptm(ptm, seen)
                except ValueError as err:
                    raise PublishedError(f"published file {path}: {err}") from err
                if not p.is_merged:
                    raise PublishedError(f"published file {path}: {ptm!r} is a base model name in merged_models/")
                ids[key] = {"ptm": ptm, "base": p.base, "task_1": p.t1, "task_2": p.t2, "ratio": p.ratio}
            else:
                ids[key] = {"ptm": ptm, "base": ptm, "task_1": "", "task_2": "", "ratio": ""}
        return ids[key]

    rows = []
    for (g, t), records in perf.items():
        path = folder / file_name(g, t, "performance_score")
        split = registry.get(t).export_split
        for ptm, metrics in records.items():
            i = ids_of(g, ptm, path)
            for metric, value in metrics.items():
                rows.append({**i, "seed": PUBLISHED_SEED, "eval_task": t, "split": split, "metric": metric,
                             "value": _number(value, path, f"{metric} of {ptm!r}"), "diverged": False, "group": g})
    lrows = []
    for g in GROUPS:
        for t in (t for t in tasks if registry.get(t).has_logme):
            path = folder / file_name(g, t, "logme")
            for ptm, score in logme_records(path).items():
                lrows.append({**ids_of(g, ptm, path), "eval_task": t, "score": score, "n": None, "d": None,
                              "time_s": None, "group": g})
    return (pd.DataFrame(rows, columns=PERFORMANCE_COLUMNS).astype({"seed": "int64"}),
            pd.DataFrame(lrows, columns=LOGME_COLUMNS))


def locate(spec: dict, scratch) -> Path:
    """The checked ``ptm_model_bench`` folder of :func:`source_spec` ``spec`` (``url``: downloaded into
    ``scratch``)."""
    manifest = read_manifest(spec["manifest"])
    folder = Path(spec["folder"]) if "folder" in spec else download(spec["url"], manifest, scratch)
    if not folder.is_dir():
        raise PublishedError(f"published bench folder {folder} does not exist; config published.path must name "
                             f"a ptm_model_bench folder of {REPOSITORY} (or set published.source: shipped)")
    verify(folder, manifest)
    return folder


# --------------------------------------------------------------------------------- judging

def record_names(df):
    """``df`` with one name per published record: a PTM name published in several groups (the seen and
    the unseen ``xlm-roberta-base``) keeps its name in the first group of :data:`GROUPS` (the seen base
    model, whose merges name it) and becomes ``{name} ({group})`` in the others, in ``ptm`` and, for base
    models, ``base``: the unseen twin is judged as a PTM and a base model of its own."""
    first = {}
    for ptm, group in df.drop_duplicates(["ptm", "group"])[["ptm", "group"]].itertuples(index=False):
        first[ptm] = min(first.get(ptm, group), group, key=GROUPS.index)
    hit = df["group"] != df["ptm"].map(first)
    if not hit.any():
        return df
    out = df.copy()
    renamed = out.loc[hit, "ptm"] + " (" + out.loc[hit, "group"] + ")"
    base_hit = hit & (out["task_1"] == "")
    out.loc[base_hit, "base"] = renamed[base_hit[hit]]
    out.loc[hit, "ptm"] = renamed
    return out


def read_param_counts(path) -> dict[str, float]:
    """{base model: parameter count} of the shipped table (:data:`PARAM_COUNTS`; ``#`` lines are comments,
    an empty count: not known, left out)."""
    import pandas as pd

    try:
        table = pd.read_csv(path, comment="#", dtype={"model": str, "group": str, "source": str})
    except (OSError, ValueError) as err:
        raise PublishedError(f"cannot read the parameter counts {path}: {err}; restore it from the repository "
                             f"({SHIPPED_DIR}/{PARAM_COUNTS})") from err
    missing = [c for c in ("model", "parameters", "source") if c not in table.columns]
    if missing:
        raise PublishedError(f"{path} lacks column(s) {missing}: it must have model, group, parameters, source")
    known = table[table["parameters"].notna()]
    return {m: float(v) for m, v in zip(known["model"], known["parameters"], strict=True)}


def judge(perf, logme, parameters=None, judging_config=None):
    """The judging table and the leaderboard of LogME on the published bench (the measures of
    :mod:`ptmbench.evaluation.judging`, pooled and within each base model), against the published consumer
    metric, with the baselines its files allow: ``base_score`` (the seen base models' published
    scores), ``param_count`` (``parameters``: {base model: count}, :func:`read_param_counts`) and
    ``random``; intervals from config ``judging``."""

    perf, logme = record_names(perf), record_names(logme)
    parameters = dict(parameters or {})
    for name in set(perf["ptm"]):  # the renamed unseen twin keeps its model's count
        plain = name.rsplit(" (", 1)[0]
        if name not in parameters and plain != name and name.endswith(")") and plain in parameters:
            parameters[name] = parameters[plain]
    est = logme.assign(estimator="logme", applicable=True)
    return report.judge_all(est, consumer_performance(perf), parameters, judging_config)


TITLE = f"Published bench: LogME judged on {REPOSITORY} at {COMMIT[:7]} (real data)"


def summary_text(judg, perf) -> str:
    """The published judging in a few lines: per task LogME's pooled weighted tau, tau-b, Spearman and
    regret, then per task every row's (LogME and the baselines) pooled weighted tau with its interval."""
    pooled = judg[judg["scope"] == judging.POOLED]
    logme = pooled[pooled["estimator"] == "logme"]
    counts = perf.drop_duplicates(["ptm", "group"])["group"].value_counts()
    lines = [TITLE,
             f"  {sum(counts.get(g, 0) for g in GROUPS)} published PTM records ("
             + ", ".join(f"{counts.get(g, 0)} {g}" for g in GROUPS) + "); LogME vs the published fine-tuned "
             "metric, all PTMs pooled (results/published/judging.csv)",
             f"  {'task':<9} {'n':>4} {'weighted tau':>12} {'tau-b':>7} {'spearman':>8} {'top-1 regret':>12}"]
    for _, r in logme.iterrows():
        lines.append(f"  {r['eval_task']:<9} {r['n']:>4} {_f(r['weighted_tau']):>12} {_f(r['kendall_tau_b']):>7} "
                     f"{_f(r['spearman']):>8} {_f(r['top1_regret']):>12}")
    w = logme["weighted_tau"]
    lines.append(f"  {'mean':<9} {'':>4} {_f(w.mean() if w.notna().any() else math.nan):>12}")
    names = list(dict.fromkeys(pooled["estimator"]))
    lines += ["", "  LogME and the baselines, weighted tau pooled [bootstrap interval] (n PTMs); baselines: "
              "param_count (parameters), base_score (the base model's own score; merged PTMs only), random",
              "  " + f"{'task':<9}" + "".join(f" {n:>27}" for n in names)]
    for task in dict.fromkeys(pooled["eval_task"]):
        cells = []
        for n in names:
            r = pooled[(pooled["eval_task"] == task) & (pooled["estimator"] == n)]
            if r.empty:
                cells.append(f" {'-':>27}")
                continue
            r = r.iloc[0]
            txt = f"{_f(r['weighted_tau'])} [{_f(r['weighted_tau_ci_low'])}, {_f(r['weighted_tau_ci_high'])}] ({r['n']})"
            cells.append(f" {txt:>27}")
        lines.append("  " + f"{task:<9}" + "".join(cells))
    return "\n".join(lines) + "\n"


def _f(x, digits: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def scrolling(table: str) -> str:
    """A table that scrolls by itself when wider than the page."""
    return f"<div style='overflow-x:auto;max-width:100%'>{table}</div>"


def html(judg, board, perf) -> str:
    """The report page: what the data are, LogME per task (pooled) and within base models, the leaderboard."""

    counts = perf.drop_duplicates(["ptm", "group"])["group"].value_counts()
    pooled = judg[judg["scope"] == judging.POOLED][["eval_task", "metric", "estimator", "kind", "n",
                                                    *judging.MEASURES, "note"]]
    within = judg[judg["scope"] != judging.POOLED]
    within = within[within["estimator"] == "logme"]
    mean_within = within.groupby("eval_task", sort=False)[["kendall_tau_b", "weighted_tau"]].mean().reset_index()
    mean_within.columns = ["eval_task", "kendall_tau_b (mean within base)", "weighted_tau (mean within base)"]
    shown = report.leaderboard_frame(board, report.LEADERBOARD_TOP)
    n_scopes = within.groupby("eval_task", sort=False)["kendall_tau_b"].count().rename("bases with a defined tau")
    mean_within = mean_within.merge(n_scopes.reset_index(), on="eval_task")
    body = (
        f"<p>Real numbers, not the run's: the performance and LogME files that {REPOSITORY} published at commit "
        f"<code>{COMMIT}</code> (MIT License; shipped in <code>{SHIPPED_DIR}/</code>, checked against its "
        f"SHA-256 manifest): {counts.get('seen', 0)} seen base models, {counts.get('merged', 0)} merged PTMs and "
        f"{counts.get('unseen', 0)} unseen base models. LogME is judged against the published fine-tuned "
        "metric with the same measures as the run's estimators (docs/report.md). The unseen run of a name "
        "that is also a seen base model is judged as <code>name (unseen)</code>.</p>"
        + scrolling(report.html_table(pooled, "LogME and the baselines vs published fine-tuning, all PTMs pooled",
                                    left=("eval_task", "metric", "estimator", "kind", "note")))
        + scrolling(report.html_table(mean_within, "within each base model (its merges; an unseen model alone is "
                                    "undefined)", left=("eval_task",)))
        + f"<p>{report.html.escape(report.ranked_on(board))}</p>"
        + scrolling(report.html_table(shown, "leaderboard (mean over tasks); each cell: pooled [95% interval] / "
                                    "within base models [interval]", left=("estimator", "kind"))))
    return report.html_page(TITLE, body, here=paths.PUBLISHED_HTML)


def publish(spec: dict, performance_csv, logme_csv, judging_csv, leaderboard_csv, summary_txt, html_file,
            param_counts=None, judging_config=None) -> None:
    """Rule ``published``: locate and check the published bench (``spec``: :func:`source_spec`), write its
    tidy tables, the judging of LogME and the baselines on it (columns of ``results/report/``; ``param_counts``:
    the table of :func:`read_param_counts`, ``judging_config``: config ``judging``), a summary and an HTML page."""

    with tempfile.TemporaryDirectory(prefix="published-") as scratch:
        folder = locate(spec, scratch)
        perf, logme = read_tables(folder)
    judg, board = judge(perf, logme, read_param_counts(param_counts) if param_counts else None, judging_config)
    for df, path in ((perf, performance_csv), (logme, logme_csv), (judg, judging_csv), (board, leaderboard_csv)):
        write_csv(df, path)
    text = summary_text(judg, perf)
    with atomic_file(summary_txt) as fh:
        fh.write(text)
    with atomic_path(html_file) as tmp:
        Path(tmp).write_text(html(judg, board, perf))
    log.info("published bench from %s:\n%s", spec.get("folder") or spec.get("url"), text)

