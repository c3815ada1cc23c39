"""What produced a result (versions, device, time), atomic writes, and the job wrapper of scripts.

Every result file the workflow writes carries :func:`provenance`. Every output is written through
one atomic writer, :func:`atomic_path` (and its forms :func:`atomic_file`, :func:`atomic_dir`,
:func:`write_json`), so a crashed or killed job never leaves an output that looks complete: the
final name appears only once everything under it is written, with the permissions the user's umask
gives (outputs on a shared file system are readable by colleagues whenever the umask says so).
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
    """The device that computed a result. A job that never imported torch computed on the CPU (and
    this does not import torch for it: that alone costs seconds per job)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return {"device": "cpu", "cpu_threads": int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)}
    if torch.cuda.is_available():
        out = {"device": "cuda", "gpu": torch.cuda.get_device_name(0), "gpu_count": torch.cuda.device_count(),
               "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
        if os.environ.get("PTMBENCH_DEVICE_SLOT"):  # ptmbench.devices: "<device>:<units>/<capacity>"
            out["device_slot"] = os.environ["PTMBENCH_DEVICE_SLOT"]
        return out
    return {"device": "cpu", "cpu_threads": torch.get_num_threads()}


def provenance(timestamp: bool = True, **extra) -> dict:
    """Versions, host, device and time, plus ``extra`` (config values, seeds, wall time...).
    ``timestamp=False`` leaves the time out: for files that must be byte-reproducible (the export)."""
    return {
        **({"created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")} if timestamp else {}),
        "host": platform.node(),
        "versions": versions(),
        **device_info(),
        **extra,
    }


TEMP_SUFFIX = ".tmp"


def temp_prefix(path: str | Path) -> str:
    """Name prefix of the temporaries that :func:`atomic_path` makes beside ``path``."""
    return f".{Path(path).name}."


# tempfile's random part: 8 of [a-z0-9_]; a temporary is `.{output name}.<random>.tmp`
_RANDOM = r"[a-z0-9_]{8}"
_TEMP = re.compile(r"\..+\." + _RANDOM + re.escape(TEMP_SUFFIX))


def is_temp(path: str | Path) -> bool:
    """Whether ``path`` is named like a temporary sibling of :func:`atomic_file` / :func:`atomic_dir`."""
    return bool(_TEMP.fullmatch(Path(path).name))


def temp_siblings(path: str | Path) -> list[Path]:
    """The temporaries that writes of ``path`` left beside it (a killed job's), files or directories."""
    path = Path(path)
    mine = re.compile(re.escape(temp_prefix(path)) + _RANDOM + re.escape(TEMP_SUFFIX))
    try:
        with os.scandir(path.parent) as it:
            return sorted(Path(e.path) for e in it if mine.fullmatch(e.name))
    except (FileNotFoundError, NotADirectoryError):
        return []


def remove_temps(path: str | Path) -> list[Path]:
    """Remove what killed attempts to write output ``path`` left beside it; return what was removed.

    Called by :func:`job` for every output before the job body runs, so the rerun of a job killed
    mid-write (SIGKILL, the OOM killer, a Slurm time limit) cleans up after it.
    """
    removed = temp_siblings(path)
    for tmp in removed:
        _remove(tmp)
    return removed


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def umask() -> int:
    """The process's umask (read without changing it where /proc allows)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path, directory: bool = False):
    """The one atomic writer: yield a temporary sibling of ``path`` (an empty folder, or a file name
    that does not exist yet), then give it the permissions the user's umask gives any new file or
    folder (``0o666`` / ``0o777`` masked) and rename it to ``path``, replacing what was there.

    On an exception the temporary is removed. A process killed in between leaves it behind, named
    ``.{name}.<random>.tmp``; :func:`remove_temps` (run by :func:`job` when the job reruns) and
    ``python -m ptmbench.status`` find it by that name. Nothing ever takes a temporary as output.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=temp_prefix(path), suffix=TEMP_SUFFIX))
    if not directory:  # a name only: writers (pandas, pyarrow, torch) create the file themselves
        tmp.rmdir()
    try:
        yield tmp
        mask = umask()
        if directory:
            _share(tmp, mask)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
        elif tmp.exists():
            os.chmod(tmp, 0o666 & ~mask)
        else:
            raise FileNotFoundError(f"nothing was written to {tmp} for {path}")
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def _share(folder: Path, mask: int) -> None:
    """Give a folder tree the umask's modes. Some writers ignore the umask (safetensors creates its
    files 0o600), so the tree is set explicitly: folders 0o777 & ~umask, files 0o666 & ~umask."""
    os.chmod(folder, 0o777 & ~mask)
    for root, dirs, files in os.walk(folder):
        for names, perm in ((dirs, 0o777), (files, 0o666)):
            for name in names:
                p = os.path.join(root, name)
                if not os.path.islink(p):
                    os.chmod(p, perm & ~mask)


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "w"):
    """Yield a file open on a temporary sibling of ``path``; on success it is synced and renamed."""
    with atomic_path(path) as tmp, open(tmp, mode) as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def atomic_bytes(path: str | Path, blob: bytes) -> None:
    with atomic_file(path, "wb") as fh:
        fh.write(blob)


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


def atomic_dir(path: str | Path):
    """Yield a temporary sibling folder; on success it becomes ``path`` (see :func:`atomic_path`)."""
    return atomic_path(path, directory=True)


@contextlib.contextmanager
def job(smk):
    """Run a Snakemake script body: log to ``log[0]``, use the job's threads, time it.

    Python ``logging`` (ptmbench, transformers, datasets) and stdout/stderr go to the job's log
    file; an exception is written there with its traceback and re-raised, so Snakemake marks the
    job failed and removes its outputs. Before the body runs, the temporaries that killed earlier
    attempts left beside the outputs are removed, and every input is checked whole
    (:mod:`ptmbench.integrity`): a corrupt input fails the job at once, naming the file and the fix.
    A GPU job (``gpu`` resource >= 1) then claims a device slot (:mod:`ptmbench.devices`) for its
    whole life and sees only that GPU (``CUDA_VISIBLE_DEVICES``); without a GPU it runs on the CPU.
    """
    from ptmbench import tasks

    tasks.configure(smk.config)  # the custom tasks of the run's config are known to the script
    log_path = Path(smk.log[0]) if smk.log else None
    stream = open(log_path, "a", buffering=1) if log_path else sys.stderr  # noqa: SIM115
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    old_out, old_err = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = stream
    if log_path:  # a log file: progress lines at a steady rate (ptmbench.progress), not a tqdm bar per update
        from ptmbench.progress import quiet_bars

        quiet_bars()
    start = time.perf_counter()
    try:
        threads = int(getattr(smk, "threads", 1) or 1)
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        # the job's threads for torch (intra-op) and BLAS, read when they are first imported; jobs
        # that need no torch (data, export, report) do not pay for importing it here
        os.environ["OMP_NUM_THREADS"] = str(threads)
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)
        log.info("rule %s, wildcards %s, threads %d", smk.rule, dict(smk.wildcards.items()), threads)
        for out in smk.output:
            for tmp in remove_temps(out):
                log.info("removed %s, left by an earlier attempt that was killed", tmp)
        from ptmbench.integrity import check_inputs

        check_inputs(smk.input)
        from ptmbench.devices import job_slot

        with job_slot(smk):  # before the body imports torch / initialises CUDA
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
# Checksums (used by acquire, finetune, merge, export and `ptmbench.status --verify`)

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
