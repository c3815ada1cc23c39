"""Inputs are checked whole before a job starts: truncated safetensors, Arrow, JSON and pickles are
named with the fix; whole ones pass."""

from __future__ import annotations

import json

import pytest

from ptmbench.io.integrity import CorruptInput, check_input, check_inputs


def truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.fixture
def model_dir(tmp_path):
    import torch
    from safetensors.torch import save_file

    d = tmp_path / "model"
    d.mkdir()
    save_file({"a.weight": torch.ones(64, 64), "b.bias": torch.zeros(64)}, str(d / "model.safetensors"))
    (d / "config.json").write_text(json.dumps({"model_type": "bert"}))
    return d


@pytest.fixture
def dataset_dir(tmp_path):
    import datasets

    d = tmp_path / "tok"
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(
        {"input_ids": [[1, 2, 3, 4]] * 2000, "labels": [0, 1] * 1000})}).save_to_disk(str(d))
    return d


def test_whole_inputs_pass(model_dir, dataset_dir, tmp_path):
    import dill

    (tmp_path / "g.dill").write_bytes(dill.dumps([("G", {"x": 1}, "name")]))
    check_inputs([model_dir, dataset_dir, tmp_path / "g.dill"])


@pytest.mark.parametrize("keep", [0.0, 0.001, 0.5, 0.999])
def test_truncated_safetensors_is_named(model_dir, keep):
    truncate(model_dir / "model.safetensors", keep)
    with pytest.raises(CorruptInput) as err:
        check_input(model_dir)
    msg = str(err.value)
    assert f"{model_dir / 'model.safetensors'} is corrupt or incomplete" in msg
    assert f"Delete {model_dir} and rerun snakemake to rebuild it" in msg


def test_padded_safetensors_is_named(model_dir):
    with open(model_dir / "model.safetensors", "ab") as fh:
        fh.write(b"\0" * 10)
    with pytest.raises(CorruptInput, match="describes"):
        check_input(model_dir)


def test_truncated_arrow_is_named(dataset_dir):
    arrow = next(dataset_dir.rglob("*.arrow"))
    truncate(arrow)
    with pytest.raises(CorruptInput, match=f"{arrow} is corrupt or incomplete"):
        check_input(dataset_dir)


def test_truncated_json_and_pickle_are_named(tmp_path):
    import dill

    (tmp_path / "m.json").write_text('{"ptm": "x", "metr')
    with pytest.raises(CorruptInput, match="m.json is corrupt"):
        check_input(tmp_path / "m.json")
    g = tmp_path / "g.dill"
    g.write_bytes(dill.dumps([("G", {"x": 1}, "name")]))
    truncate(g, 0.9)
    with pytest.raises(CorruptInput, match="pickle STOP"):
        check_input(g)


def test_hidden_files_are_skipped(model_dir):
    (model_dir / ".model.safetensors.x1.tmp").write_bytes(b"junk")  # a temporary, not part of the input
    check_input(model_dir)
