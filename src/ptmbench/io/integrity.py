"""Is an input whole? Every job checks its inputs before it starts (:func:`ptmbench.runtime.job.job`).

A truncated ``model.safetensors`` (a killed copy, a full disk, a bad download into a ``path``
source) or a truncated Arrow file of a tokenised dataset would otherwise fail deep inside
safetensors or pyarrow, with a message that names neither the file nor the fix, and the job would
be retried as if the failure were transient. :func:`check_inputs` reads only what proves a file
whole, cheaply:

- ``*.safetensors``: the 8-byte header length, the JSON header, and that the file is exactly as long
  as the header's last tensor says (8 + header + data);
- ``*.arrow`` (``datasets.save_to_disk``): every record batch of the IPC stream over a memory map
  (buffers are bounds-checked, not copied);
- ``*.json``: parses;
- ``*.dill`` / ``*.pkl``: ends with the pickle STOP opcode.

Folders are checked file by file (hidden files are skipped). A failure raises :class:`CorruptInput`
naming the file, what is wrong and the fix: delete the input and rerun Snakemake to rebuild it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from ptmbench.io.checkpoint import read_header


class CorruptInput(RuntimeError):
    """An input file is truncated or unreadable; a retry cannot fix it, rebuilding it can."""


def check_safetensors(path: Path) -> None:
    header = read_header(path)  # the one header parser (ptmbench.io.checkpoint)
    if header.size != header.data_end:
        raise ValueError(f"{header.size} bytes, but its header describes {header.data_end} (truncated or padded)")


def check_arrow(path: Path) -> None:
    import pyarrow as pa

    with pa.memory_map(str(path)) as source:
        try:
            reader = pa.ipc.open_stream(source)
        except pa.ArrowInvalid:
            source.seek(0)
            reader = pa.ipc.open_file(source)
            for i in range(reader.num_record_batches):
                reader.get_batch(i).validate()
            return
        for batch in reader:
            batch.validate()


def check_json(path: Path) -> None:
    with open(path, "rb") as fh:
        json.loads(fh.read())


def check_pickle(path: Path) -> None:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() == 0:
            raise ValueError("empty file")
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) != b".":
            raise ValueError("does not end with the pickle STOP opcode (truncated)")


CHECKS = {".safetensors": check_safetensors, ".arrow": check_arrow, ".json": check_json,
          ".dill": check_pickle, ".pkl": check_pickle}


def _files(path: Path) -> Iterable[Path]:
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for f in sorted(files):
                if not f.startswith("."):
                    yield Path(root) / f
    else:
        yield path


def check_input(path: str | Path, fix: str | None = None) -> None:
    """Raise :class:`CorruptInput` when a file of input ``path`` (a file or a folder) is not whole.

    ``fix``: what the user should do (default: delete ``path`` and rerun Snakemake to rebuild it)."""
    path = Path(path)
    if not path.exists():
        raise CorruptInput(f"input {path} does not exist: rerun snakemake to rebuild it")
    for f in _files(path):
        check = CHECKS.get(f.suffix)
        if check is None:
            continue
        try:
            check(f)
        except Exception as err:  # pyarrow, json, OSError...: all mean the same to the user
            raise CorruptInput(
                f"{f} is corrupt or incomplete: {type(err).__name__}: {err}\n"
                + (fix or f"It belongs to {path}. Delete {path} and rerun snakemake to rebuild it "
                   "(for an acquired model or dataset, check its source first).")
            ) from err


def check_inputs(paths: Iterable[str | Path]) -> None:
    for p in paths:
        check_input(p)
