"""Checkpoint I/O: weight-file names, the safetensors header, lazy tensor reads, atomic writes.

The one place that knows how a model directory stores its weights. Used by merge (stream two
fine-tunes into a merged encoder), graph (read the attention projections), plan (count stored
parameters), acquire (is a directory a model?) and integrity (is a file whole?).

- :func:`read_header` parses a safetensors file's 8-byte length and JSON header, checking that the
  header fits in the file; every reader of a header goes through it.
- :class:`Checkpoint` lists the tensors of ``model.safetensors`` or of a sharded
  ``model.safetensors.index.json`` (names, shapes, dtypes from the headers) and reads one tensor at a
  time with a plain file read; no model is built.
- :func:`save_tensors` writes a safetensors file atomically (:func:`ptmbench.io.provenance.atomic_path`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ptmbench.io.provenance import atomic_path

WEIGHTS = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
PICKLE_WEIGHTS = "pytorch_model.bin"
PICKLE_INDEX = "pytorch_model.bin.index.json"
# Every weight file a Hugging Face model directory may hold, safetensors first.
WEIGHT_FILES = (WEIGHTS, WEIGHTS_INDEX, PICKLE_WEIGHTS, PICKLE_INDEX)


class CheckpointError(ValueError):
    """A model directory or its weights are missing, unreadable or do not fit the base model."""


# --------------------------------------------------------------------------------------------------
# the safetensors header


@dataclass(frozen=True)
class Header:
    """A safetensors header: ``tensors`` name -> {dtype, shape, data_offsets}, ``metadata`` (the
    ``__metadata__`` entry), ``data_start`` (8 + header length) and the file's ``size`` in bytes."""

    tensors: dict
    metadata: dict
    data_start: int
    size: int

    @property
    def data_end(self) -> int:
        """Where the last tensor ends: a whole file is exactly this long."""
        return self.data_start + max((int(t["data_offsets"][1]) for t in self.tensors.values()), default=0)


def read_header(path) -> Header:
    """The header of safetensors file ``path``. A file too short for its header, or a header that is
    not a JSON object of tensors with offsets, raises :class:`CheckpointError` naming the problem."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{size} bytes, shorter than the 8-byte header length")
        n = int.from_bytes(head, "little")
        if n > size - 8:
            raise CheckpointError(f"header of {n} bytes does not fit in a file of {size} bytes (truncated)")
        try:
            header = json.loads(fh.read(n))
        except ValueError as err:
            raise CheckpointError(f"header is not JSON ({err})") from err
    if not isinstance(header, dict):
        raise CheckpointError(f"header is a JSON {type(header).__name__}, not an object")
    metadata = header.pop("__metadata__", None) or {}
    for name, info in header.items():
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and isinstance(info.get("shape"), list)):
            raise CheckpointError(f"header entry {name!r} lacks a shape or data_offsets: {info!r}")
    return Header(header, metadata, 8 + n, size)


def stored_parameters(path) -> int:
    """Number of values stored in safetensors file ``path`` (from its header only)."""
    total = 0
    for info in read_header(path).tensors.values():
        count = 1
        for d in info["shape"]:
            count *= int(d)
        total += count
    return total


# --------------------------------------------------------------------------------------------------
# checkpoints: safetensors read tensor by tensor


class Checkpoint:
    """The tensors of a model directory (``model.safetensors`` or a sharded index), read one at a time.

    ``names`` are the stored tensor names; ``shape(n)`` / ``dtype(n)`` come from the header, which
    ``safetensors.safe_open`` validates. ``get(n)`` reads one tensor with a plain file read into
    anonymous memory: a memory-mapped read would page-fault page by page and keep the touched file
    pages in the process's resident set.
    """

    def __init__(self, model_dir):
        from safetensors import SafetensorError, safe_open

        self.dir = Path(model_dir)
        if not self.dir.is_dir():
            raise CheckpointError(f"model directory {self.dir} does not exist")
        single, index = self.dir / WEIGHTS, self.dir / WEIGHTS_INDEX
        if single.is_file():
            files = {single: None}
        elif index.is_file():
            try:
                weight_map = json.loads(index.read_text())["weight_map"]
            except (ValueError, KeyError, TypeError) as err:
                raise CheckpointError(f"{index}: not a safetensors index ({err})") from err
            files = {self.dir / f: None for f in sorted(set(weight_map.values()))}
        else:
            other = [p.name for p in self.dir.glob("*.bin")]
            hint = (f" (found {other}: re-save it with save_pretrained(..., safe_serialization=True))"
                    if other else "")
            raise CheckpointError(f"{self.dir}: no {WEIGHTS} or {WEIGHTS_INDEX}{hint}")
        self.file_of: dict[str, Path] = {}
        self._meta: dict[str, tuple[tuple[int, ...], object]] = {}
        self._offsets: dict[str, tuple[int, int]] = {}
        self._data_start: dict[Path, int] = {}
        for path in files:
            if not path.is_file():
                raise CheckpointError(f"{path}: weight shard listed in {index} is missing")
            try:
                with safe_open(path, framework="pt") as fh:
                    for name in fh.keys():  # noqa: SIM118 - safe_open is not a mapping
                        sl = fh.get_slice(name)
                        self._meta[name] = (tuple(sl.get_shape()), _torch_dtype(sl.get_dtype()))
                        self.file_of[name] = path
                header = read_header(path)  # safe_open validated it; the byte offsets come from here
            except (SafetensorError, CheckpointError, OSError, ValueError) as err:
                raise CheckpointError(f"{path}: not a readable safetensors file ({err}); "
                                      "re-create it (re-run the job that wrote it)") from err
            self._data_start[path] = header.data_start
            for name, info in header.tensors.items():
                self._offsets[name] = tuple(info["data_offsets"])
        self.names = list(self._meta)

    def __contains__(self, name) -> bool:
        return name in self._meta

    def shape(self, name) -> tuple[int, ...]:
        return self._meta[name][0]

    def dtype(self, name):
        return self._meta[name][1]

    def nbytes(self, name) -> int:
        start, end = self._offsets[name]
        return end - start

    def get(self, name, buffer=None):
        """The tensor ``name``, read with one plain file read (no memory map).

        ``buffer``: a uint8 tensor of at least :meth:`nbytes` bytes to read into (the result is a view
        of it); by default a fresh tensor.
        """
        import torch

        path, nbytes = self.file_of[name], self.nbytes(name)
        raw = torch.empty(nbytes, dtype=torch.uint8) if buffer is None else buffer[:nbytes]
        view, got = memoryview(raw.numpy()), 0
        try:
            with open(path, "rb", buffering=0) as fh:
                fh.seek(self._data_start[path] + self._offsets[name][0])
                while got < nbytes:
                    n = fh.readinto(view[got:])
                    if not n:
                        raise CheckpointError(f"{path}: ends inside tensor {name!r} (truncated?)")
                    got += n
        except OSError as err:
            raise CheckpointError(f"{path}: cannot read tensor {name!r} ({err})") from err
        return raw.view(self.dtype(name)).reshape(self.shape(name))

    def config(self) -> dict:
        path = self.dir / "config.json"
        try:
            return json.loads(path.read_text())
        except FileNotFoundError as err:
            raise CheckpointError(f"{path} is missing") from err
        except ValueError as err:
            raise CheckpointError(f"{path}: not valid JSON ({err})") from err


def _torch_dtype(name: str):
    import torch

    table = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
             "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
             "U8": torch.uint8, "BOOL": torch.bool}
    return table.get(name, name)


# --------------------------------------------------------------------------------------------------
# writing


def save_tensors(tensors: dict, path, metadata: dict | None = None) -> None:
    """Write ``tensors`` (name -> torch tensor) to safetensors file ``path`` atomically: a temporary
    sibling, then a rename, so a killed writer never leaves a half-written ``path``."""
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt", **(metadata or {})})
