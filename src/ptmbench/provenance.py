"""What produced a result (versions, device, time), atomic writes, and the job wrapper of scripts.

Every result file the workflow writes carries :func:`provenance`. Library functions write through
:func:`atomic_dir` / :func:`write_json`, so a crashed or killed job never leaves an output that
looks complete: the final name appears only once everything under it is written.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import importlib.metadata as _md
import json
import logging
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

PACKAGES = ("ptmbench", "torch", "transformers", "datasets", "tokenizers", "safetensors",
            "numpy", "scipy", "scikit-learn", "snakemake")

log = logging.getLogger("ptmbench")


def versions(packages=PACKAGES) -> dict:
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = _md.version(name)
        except _md.PackageNotFoundError:
            out[name] = None
    return out


def device_info() -> dict:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard requirement of the workflow
        return {"device": "cpu"}
    if torch.cuda.is_available():
        return {"device": "cuda", "gpu": torch.cuda.get_device_name(0),
                "gpu_count": torch.cuda.device_count()}
    return {"device": "cpu", "cpu_threads": torch.get_num_threads()}


def provenance(**extra) -> dict:
    """Versions, host, device and time, plus ``extra`` (config values, seeds, wall time...)."""
    return {
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "versions": versions(),
        **device_info(),
        **extra,
    }


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "w"):
    """Yield a file open on a temporary sibling of ``path``; on success it is synced and renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str | Path, obj) -> None:
    """Write JSON atomically: a temporary file in the same directory, then rename."""
    with atomic_file(path) as fh:
        json.dump(obj, fh, indent=2, sort_keys=False, default=_jsonable)
        fh.write("\n")


def _jsonable(obj):
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


@contextlib.contextmanager
def atomic_dir(path: str | Path):
    """Yield a temporary sibling directory; on success it becomes ``path`` (replacing it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def job(smk):
    """Run a Snakemake script body: log to ``log[0]``, use the job's threads, time it.

    Python ``logging`` (ptmbench, transformers, datasets) and stdout/stderr go to the job's log
    file; an exception is written there with its traceback and re-raised, so Snakemake marks the
    job failed and removes its outputs.
    """
    log_path = Path(smk.log[0]) if smk.log else None
    stream = open(log_path, "a", buffering=1) if log_path else sys.stderr  # noqa: SIM115
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    old_out, old_err = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = stream
    start = time.perf_counter()
    try:
        threads = int(getattr(smk, "threads", 1) or 1)
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        with contextlib.suppress(ImportError):
            import torch

            torch.set_num_threads(threads)
        log.info("rule %s, wildcards %s, threads %d", smk.rule, dict(smk.wildcards.items()), threads)
        yield
        log.info("done in %.1f s", time.perf_counter() - start)
    except BaseException:
        log.exception("failed after %.1f s", time.perf_counter() - start)
        raise
    finally:
        sys.stdout, sys.stderr = old_out, old_err
        root.removeHandler(handler)
        if log_path:
            stream.close()


# --------------------------------------------------------------------------------------------------
# Checksums and leftover temporaries (used by acquire, finetune, merge and `ptmbench.status`)

TEMP_SUFFIX = ".tmp"  # atomic_file / atomic_dir write `.{name}.<random>.tmp` beside the final output
_TEMP = re.compile(r"\..+\.[A-Za-z0-9_]+" + re.escape(TEMP_SUFFIX))


def is_temp(path: str | Path) -> bool:
    """Whether ``path`` is named like a temporary sibling of :func:`atomic_file` / :func:`atomic_dir`."""
    return bool(_TEMP.fullmatch(Path(path).name))


def temp_siblings(path: str | Path) -> list[Path]:
    """The temporaries that writes of ``path`` left beside it (a killed job's), files or directories."""
    path = Path(path)
    prefix = f".{path.name}."
    try:
        with os.scandir(path.parent) as it:
            return sorted(Path(e.path) for e in it if e.name.startswith(prefix) and is_temp(e.name))
    except FileNotFoundError:
        return []


def sha256(path: str | Path) -> str:
    """SHA-256 hex digest of one file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_files(directory: str | Path) -> dict[str, str]:
    """{file name: SHA-256} of the regular files directly in ``directory`` (hidden files skipped).

    Written into an output's provenance as ``sha256`` before that record itself is written, so
    ``python -m ptmbench.status --verify`` can tell a modified or truncated file from the original.
    """
    return {p.name: sha256(p) for p in sorted(Path(directory).iterdir())
            if p.is_file() and not p.name.startswith(".")}
