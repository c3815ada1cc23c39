"""ptmbench.io.checkpoint: the one safetensors header parser, lazy reads and atomic writes."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from ptmbench.io.checkpoint import Checkpoint, CheckpointError, read_header, save_tensors, stored_parameters

TENSORS = {"a.weight": torch.arange(12, dtype=torch.float32).reshape(3, 4), "b.bias": torch.ones(5, dtype=torch.bfloat16),
           "c.ids": torch.tensor([7, 8], dtype=torch.int64)}


def test_header_describes_the_file(tmp_path):
    save_file(TENSORS, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    h = read_header(tmp_path / "model.safetensors")
    assert set(h.tensors) == set(TENSORS) and h.metadata == {"format": "pt"}
    assert h.data_end == h.size == (tmp_path / "model.safetensors").stat().st_size
    assert h.tensors["a.weight"]["shape"] == [3, 4]
    assert stored_parameters(tmp_path / "model.safetensors") == 12 + 5 + 2


@pytest.mark.parametrize("header,problem", [([1, 2], "JSON list, not an object"),
                                            ({"x": {"dtype": "F32", "shape": [1]}}, "entry 'x' lacks")])
def test_bad_header_is_named(tmp_path, header, problem):
    blob = json.dumps(header).encode()
    (tmp_path / "bad.safetensors").write_bytes(len(blob).to_bytes(8, "little") + blob)
    with pytest.raises(CheckpointError, match=problem):
        read_header(tmp_path / "bad.safetensors")


def test_checkpoint_reads_each_tensor_as_stored(tmp_path):
    save_file(TENSORS, str(tmp_path / "model.safetensors"))
    ck = Checkpoint(tmp_path)
    assert sorted(ck.names) == sorted(TENSORS)
    for name, t in TENSORS.items():
        assert ck.shape(name) == tuple(t.shape) and ck.dtype(name) == t.dtype
        assert torch.equal(ck.get(name), t)


def test_save_tensors_is_atomic(tmp_path):
    save_tensors(TENSORS, tmp_path / "out" / "model.safetensors")
    assert torch.equal(load_file(str(tmp_path / "out" / "model.safetensors"))["a.weight"], TENSORS["a.weight"])
    with pytest.raises(Exception):  # noqa: B017 - whatever safetensors raises for a non-tensor
        save_tensors({"x": "not a tensor"}, tmp_path / "out" / "model.safetensors")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["model.safetensors"]  # old file kept, no temporary
    assert torch.equal(load_file(str(tmp_path / "out" / "model.safetensors"))["a.weight"], TENSORS["a.weight"])
