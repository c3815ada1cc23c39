"""Stage hub: the export as a Hugging Face dataset repository, ``results/hub/`` (rule ``hub``).

``results/hub/`` is the folder a researcher uploads (docs/export.md, "Sharing on the Hugging Face
Hub")::

    README.md                 the dataset card: YAML header (license, tags, ``configs:``) and the text
    data/performance.parquet  the tables, one ``load_dataset`` config each (:data:`ptmbench.paths.HUB_TABLES`)
    data/logme.parquet
    data/estimators.parquet
    data/judging.parquet      (converted from results/report/judging.csv)
    ptm_model_bench/          the published layout, as rule ``export`` wrote it (MANIFEST.json included)
    provenance.json           SHA-256 of every file above (``python -m ptmbench.status --verify``)

Tables and the published tree are hard-linked (copied where linking is impossible), so the folder
costs no disk; ``results/ptm_model_bench/`` and its MANIFEST stay exactly as the consumer reads them.
``datasets.load_dataset("results/hub", "performance")`` (or the Hub repository's name) loads a table.
The card's facts come from where they are kept: the tables' columns from :data:`COLUMNS` (checked
against the tables), the run from the export's ``MANIFEST.json`` and the config, the licenses and the
citation from ``CITATION.cff``, the code version from the checkout's git commit.
"""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import yaml

from ptmbench.io.provenance import atomic_dir, provenance, sha256, write_json
from ptmbench.stages.export import link_or_copy

log = logging.getLogger(__name__)

_ID = {
    "ptm": "the PTM's name: a base model, or a merged PTM `{base}_{task_1}_{task_2}_{ratio}`",
    "base": "its base model (config `models` or `unseen_models`)",
    "task_1": "merged PTMs: the first task of the merged pair (empty for base models)",
    "task_2": "merged PTMs: the second task of the merged pair, in the fixed task order (empty for base models)",
    "ratio": "merged PTMs: the merge ratio, the weight of task_2, as text as in the name (empty for base models)",
    "eval_task": "the task the PTM was fine-tuned and evaluated on (or scored on)",
}
# Every column of every table of the card, described once (tests/test_card.py checks them against the tables).
COLUMNS: dict[str, dict[str, str]] = {
    "performance": {
        **_ID,
        "seed": "the fine-tuning seed (config finetune.seeds; the first is the published one)",
        "split": "the evaluation split (mnli: validation_matched and validation_mismatched)",
        "metric": "the metric key as recorded, e.g. eval_accuracy, eval_pearson, f1 (squad_v2: 0-100)",
        "value": "the metric's value (float)",
        "diverged": "true when the training loss became non-finite: the values are a chance-level learner's",
    },
    "logme": {
        **_ID,
        "score": "the LogME score (You et al., ICML 2021) of the PTM's features on the task's training set",
        "n": "the number of training examples scored (N)",
        "d": "the feature dimension (D)",
        "parameters": "the parameter count of the PTM's encoder (no task head): the param_count baseline",
        "time_s": "the LogME job's seconds (feature pass and scoring)",
    },
    "estimators": {
        **_ID,
        "estimator": "the transferability estimator (logme, hscore, transrate, nleep, sfda, knn, linear_probe)",
        "score": "its score, higher = more transferable; empty where not applicable (never 0)",
        "time_s": "the estimator's own seconds",
        "applicable": "whether the estimator is defined for the task's kind (class-based scores: not for stsb)",
        "note": "why not applicable (empty otherwise)",
    },
    "judging": {
        "eval_task": "the GLUE task the estimators are judged on",
        "metric": "the fine-tuned metric they are judged against (the published predictor's)",
        "estimator": "the transferability estimator judged",
        "scope": "pooled (every PTM) or a base model (that base and its merged PTMs)",
        "n": "the PTMs with both a score and a fine-tuned value in the scope",
        "kendall_tau_b": "Kendall's tau-b between score and performance (1 best, 0 chance)",
        "weighted_tau": "scipy's weighted tau (top ranks weigh more; the LogME paper's measure)",
        "pearson": "Pearson's r between score and performance",
        "spearman": "Spearman's rho between score and performance",
        "top1_regret": "best performance minus the performance of the estimator's top pick (0 best)",
        "top3_hit": "probability that a truly best PTM is among the estimator's 3 highest scores",
        "mrr": "1 / the estimator's rank of the truly best PTM (mean over tasks: MRR)",
        **{f"top{k}_rel_acc": f"best performance among the estimator's top {k} / the best performance"
           for k in (1, 3, 5)},
        "kind": "estimator, or baseline (param_count, base_score, random: docs/report.md of ptm-bench)",
        **{f"{m}_ci_{side}": f"{side} end of the bootstrap interval of {m}"
           for m in ("kendall_tau_b", "weighted_tau", "pearson", "spearman", "top1_regret", "top3_hit", "mrr",
                     "top1_rel_acc", "top3_rel_acc", "top5_rel_acc") for side in ("low", "high")},
        "kendall_p": "the p-value of tau-b",
        "note": "why a measure is empty (fewer than 3 PTMs, a constant side, not applicable)",
    },
}
WHAT = {
    "performance": "one row per (PTM, seed, task, split, metric) of every fine-tune",
    "logme": "one row per (PTM, GLUE task): the LogME score",
    "estimators": "one row per (PTM, GLUE task, estimator): every transferability estimator's score",
    "judging": "one row per (task, estimator, scope): how well each estimator ranks the PTMs by fine-tuned "
               "performance (docs/report.md of ptm-bench)",
}
BENCH = "ptm_model_bench"


# --------------------------------------------------------------------------------------------------
# Facts the card reports, read where they are kept

def read_citation(path) -> dict:
    """CITATION.cff as a dict (clear error when it is missing or not YAML)."""
    try:
        cff = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"cannot read {path}: {err}; the dataset card takes its citation and licenses from it") from err
    if not isinstance(cff, dict) or "title" not in cff:
        raise ValueError(f"{path} is not a CITATION.cff (no title); restore it from the repository")
    return cff


def _authors(entry: dict) -> str:
    names = []
    for a in entry.get("authors") or []:
        if "family-names" in a:
            names.append(f"{a['family-names']}, {a.get('given-names', '')}".strip(", "))
        elif "name" in a:
            names.append("{" + a["name"] + "}")
    return " and ".join(names)


def _key(entry: dict, fallback: str) -> str:
    first = (entry.get("authors") or [{}])[0]
    word = (first.get("family-names") or first.get("name") or fallback).split()[0].lower()
    title = "".join(c for c in entry.get("title", fallback).split()[0].lower() if c.isalnum())
    return f"{word}{entry.get('year', '')}{title}"


def bibtex(cff: dict) -> str:
    """BibTeX of the software CITATION.cff describes and of every reference it lists (articles first)."""
    out = []
    refs = sorted(cff.get("references") or [], key=lambda r: r.get("type") != "article")
    for ref in refs:
        kind = "article" if ref.get("type") == "article" else "software"
        fields = {"title": ref.get("title"), "author": _authors(ref), "journal": ref.get("journal"),
                  "year": ref.get("year"), "doi": ref.get("doi"), "url": ref.get("repository-code")}
        out.append(_entry(kind, _key(ref, "ref"), fields))
    fields = {"title": cff["title"], "author": _authors(cff), "version": cff.get("version"),
              "url": cff.get("repository-code"), "license": cff.get("license")}
    out.append(_entry("software", "ptmbench", fields))
    return "\n\n".join(out)


def _entry(kind: str, key: str, fields: dict) -> str:
    body = ",\n".join(f"  {k} = {{{v}}}" for k, v in fields.items() if v)
    return f"@{kind}{{{key},\n{body}\n}}"


def licenses(cff: dict) -> list[tuple[str, str]]:
    """(what, SPDX license) of this project and of each reference with a license (the published bench)."""
    out = [(cff["title"].split(":")[0], cff.get("license", "unknown"))]
    out += [(r["title"], r["license"]) for r in cff.get("references") or [] if r.get("license")]
    return out


def source_commit(folder=None) -> dict | None:
    """``{"commit", "dirty"}`` of the git checkout holding ``folder`` (default: this package's), or None
    where it is no git checkout or git is missing (an installed copy)."""
    folder = Path(folder) if folder is not None else Path(__file__).resolve().parent

    def git(*args):
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=30)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode:
            return None
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


# --------------------------------------------------------------------------------------------------
# The card

def data_file(name: str, table=None) -> str:
    """The table's path inside the hub folder: ``data/{name}.parquet`` (a repository's configs must share
    one format: ``load_dataset`` picks one builder for all of them)."""
    return f"data/{name}.parquet"


def as_parquet(src, dst) -> None:
    """``src`` at ``dst`` as Parquet: a Parquet file hard-linked, a CSV converted (pandas' types)."""
    src = Path(src)
    if src.suffix == ".parquet":
        link_or_copy(src, dst)
        return
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(pd.read_csv(src), preserve_index=False)
    meta = json.dumps({"source": src.name, **provenance(timestamp=False, stage="hub")}, default=str)
    pq.write_table(table.replace_schema_metadata({**(table.schema.metadata or {}), b"ptmbench.provenance": meta}),
                   dst)


def card_header(tables: dict, cff: dict, pretty_name: str) -> dict:
    """The card's YAML header: license, tags and one ``configs:`` entry per table (performance default)."""
    spdx = sorted({lic.lower() for _, lic in licenses(cff)})
    header = {"pretty_name": pretty_name,
              "license": spdx[0] if len(spdx) == 1 else "other",
              "language": ["en"],
              "tags": ["model-selection", "transferability-estimation", "model-zoo", "model-merging", "glue",
                       "logme", "ptm-bench"],
              "configs": [{"config_name": name, "data_files": [{"split": "train", "path": data_file(name, path)}],
                           **({"default": True} if i == 0 else {})} for i, (name, path) in enumerate(tables.items())]}
    if len(spdx) > 1:
        header["license_name"] = " + ".join(spdx)
    return header


def _table(rows, head) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]


def card_text(tables: dict, manifest: dict, cff: dict, config: dict, commit: dict | None,
              columns: dict[str, list[str]]) -> str:
    """The README.md of the hub folder. ``tables``: config name -> table file; ``columns``: config name ->
    the table's columns (each must have a description in :data:`COLUMNS`)."""
    for name, cols in columns.items():
        missing = [c for c in cols if c not in COLUMNS.get(name, {})]
        if missing:
            raise ValueError(f"table {name!r} has column(s) {missing} that ptmbench.stages.card.COLUMNS does not "
                             "describe: add them there (the dataset card describes every column)")
    seeds = manifest.get("seeds") or {}
    header = card_header(tables, cff, "ptm_model_bench (built by ptm-bench)")
    yml = yaml.safe_dump(header, sort_keys=False, allow_unicode=True)
    prov = manifest.get("provenance") or {}
    lines = ["---", yml.rstrip(), "---", "", "# ptm_model_bench", "",
             "A model-zoo benchmark for choosing pre-trained language models: base encoders fine-tuned on "
             "GLUE and SQuAD v2, merged pairwise and fine-tuned again, every PTM scored by transferability "
             "estimators (LogME and others) and described by an attention graph, in the layout of "
             "\"Universal embedding for pre-trained models and data bench\" (Cho et al., Neurocomputing "
             "2024). Built by the ptm-bench Snakemake workflow.", "",
             f"- base models: {', '.join(manifest.get('models', []))}"
             + (f"; unseen (never merged): {', '.join(manifest['unseen_models'])}" if manifest.get("unseen_models")
                else ""),
             f"- tasks: {', '.join(manifest.get('tasks', []))}",
             f"- merge: {config.get('merge', {}).get('method', 'published')}, ratios "
             f"{', '.join(str(r) for r in config.get('merge', {}).get('ratios', []))}",
             f"- fine-tuning seeds: {seeds.get('all')} (published files: seed {seeds.get('published')})",
             f"- diverged fine-tunes (chance-level metrics): {len(manifest.get('diverged', []))}",
             "",
             "## Loading", "",
             "Each table is a config of this dataset (`performance` is the default):", "",
             "```python", "from datasets import load_dataset", "",
             'performance = load_dataset("<user>/<this-dataset>", "performance", split="train")',
             '# a local copy: load_dataset("results/hub", "estimators", split="train")', "```", "",
             "The published layout (`ptm_model_bench/`) is read with the performance predictor's own code, "
             "or directly: `huggingface_hub.snapshot_download(\"<user>/<this-dataset>\", repo_type=\"dataset\")`.",
             "", "## Tables", ""]
    for name, path in tables.items():
        lines += [f"### `{name}`: `{data_file(name, path)}`", "", WHAT[name][0].upper() + WHAT[name][1:] + ".", ""]
        lines += _table([(f"`{c}`", COLUMNS[name][c]) for c in columns[name]], ["column", "meaning"]) + [""]
    lines += [
        "## The published layout: `ptm_model_bench/`", "",
        "Read unchanged by the published GNN performance predictor:", "", "```",
        "ptm_model_bench/",
        "  MANIFEST.json                               provenance, seeds, precisions, SHA-256 of every file",
        "  base_model_dataset/base_{model}.dill        every seen base model's attention graph",
        "  base_model_dataset/unseen_base_{model}.dill every unseen base model's graph (MANIFEST no_graph: those without)",
        "  merged_model_dataset/{ptm}.dill             every merged PTM's graph",
        "  performance/merged_models/{task}_performance_score.json   {task: {ptm: {metric: value}}}",
        "  performance/merged_models/{task}_logme.json                {ptm: score}   (GLUE tasks)",
        "  performance/seen_base_models/base_{task}_performance_score.json, base_{task}_logme.json",
        "  performance/unseen_base_models/unrelated_base_{task}_...  (only with unseen models)",
        "```", "",
        "A `.dill` file holds `[(G, features, name)]`: `G` a `networkx.DiGraph` of the PTM's attention "
        "heads, `features` a dict node -> a float vector of length "
        f"{prov.get('feature_length', 'graph.feature_length')}, `name` the PTM (the predictor joins graphs "
        "to performance by it; open with `dill.load`). Exported metrics are the validation split's; mnli's "
        "are the *mismatched* validation split's (the published meaning). The metric the predictor reads per "
        "task (`consumer_metric` in MANIFEST.json): "
        + ", ".join(f"{t}: `{m}`" for t, m in (manifest.get("consumer_metric") or {}).items())
        + " (squad_v2's f1 is 0-100).", "",
        "## Licenses", ""]
    lines += [f"- {what}: {lic}" for what, lic in licenses(cff)]
    lines += ["", "The fine-tuning data keep their own terms (each GLUE task its own; SQuAD v2: CC BY-SA 4.0), and so do "
              "the pre-trained models the PTMs are made from.", "",
              "## Citation", "", cff.get("message", "").strip(), "", "```bibtex", bibtex(cff), "```", "",
              "## How it was produced", ""]
    versions = prov.get("versions") or {}
    lines += [f"- ptm-bench commit: `{commit['commit']}`" + (" (with uncommitted changes)" if commit["dirty"] else "")
              if commit else "- ptm-bench commit: unknown (not run from a git checkout)",
              "- export versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v),
              "- versions seen in the fine-tune and LogME records: "
              + "; ".join(f"{k} {', '.join(v)}" for k, v in (manifest.get("input_versions") or {}).items()),
              f"- precisions: {json.dumps(manifest.get('precision', {}))}",
              f"- metric split per task: {json.dumps(manifest.get('metric_split', {}))}",
              "", "The configuration of the run:", "", "```yaml",
              yaml.safe_dump(config, sort_keys=False, allow_unicode=True).rstrip(), "```", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# The folder

def _columns(path) -> list[str]:
    path = Path(path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    import pandas as pd

    return list(pd.read_csv(path, nrows=0).columns)


def write_hub(out_dir, bench, tables: dict, citation: dict, config: dict, commit: dict | None = None) -> dict:
    """Rule ``hub``: the folder ``out_dir`` (atomically) with the card, the ``tables`` (config name ->
    file) under ``data/``, the export ``bench`` under ``ptm_model_bench/`` and ``provenance.json``.
    Returns the provenance record."""
    bench = Path(bench)
    manifest_path = bench / "MANIFEST.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read {manifest_path}: {err}; rerun rule export") from err
    known = manifest.get("files") or {}
    commit = source_commit() if commit is None else commit
    columns = {name: _columns(path) for name, path in tables.items()}
    text = card_text(tables, manifest, citation, config, commit, columns)  # checked before anything is written
    hashes = {}
    with atomic_dir(out_dir) as tmp:
        (tmp / "data").mkdir()
        for name, path in tables.items():
            rel = data_file(name, path)
            as_parquet(path, tmp / rel)
            hashes[rel] = sha256(tmp / rel)
        for src in sorted(p for p in bench.rglob("*") if p.is_file() and not p.name.startswith(".")):
            rel = src.relative_to(bench).as_posix()
            dst = tmp / BENCH / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            link_or_copy(src, dst)
            # the export's own checksums where it has them (its MANIFEST lists every file but itself)
            hashes[f"{BENCH}/{rel}"] = known[rel]["sha256"] if rel in known else sha256(dst)
        (tmp / "README.md").write_text(text)
        hashes["README.md"] = sha256(tmp / "README.md")
        record = {"sha256": dict(sorted(hashes.items())), "commit": commit,
                  "provenance": provenance(timestamp=False, stage="hub")}
        write_json(tmp / "provenance.json", record)
    log.info("hub folder %s: the card, %d tables and %d files of %s", out_dir, len(tables),
             sum(1 for k in hashes if k.startswith(BENCH + "/")), bench)
    return record
