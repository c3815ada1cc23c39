"""The one atomic writer: outputs appear whole, with the user's umask, and killed attempts' temporaries
are found and removed by name."""

from __future__ import annotations

import os
import stat

import pytest

from ptmbench.io import provenance
from ptmbench.io.provenance import (
    atomic_dir,
    atomic_file,
    atomic_path,
    remove_temps,
    temp_siblings,
    write_json,
)


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield lambda m: os.umask(m)
    os.umask(old)


def mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077, 0o002])
def test_outputs_honour_the_umask(tmp_path, umask, mask):
    umask(mask)
    assert provenance.umask() == mask
    write_json(tmp_path / "a.json", {"x": 1})
    with atomic_file(tmp_path / "b.bin", "wb") as fh:
        fh.write(b"1")
    with atomic_path(tmp_path / "c.csv") as tmp:
        tmp.write_text("x\n")
    with atomic_dir(tmp_path / "d") as tmp:
        (tmp / "inner").mkdir()
        write_json(tmp / "inner" / "e.json", [])
    for f in ("a.json", "b.bin", "c.csv", "d/inner/e.json"):
        assert mode(tmp_path / f) == 0o666 & ~mask, f
    for d in ("d", "d/inner"):
        assert mode(tmp_path / d) == 0o777 & ~mask, d


def test_a_failed_write_leaves_nothing_and_keeps_the_old_output(tmp_path):
    write_json(tmp_path / "a.json", {"v": 1})
    with pytest.raises(RuntimeError), atomic_file(tmp_path / "a.json") as fh:
        fh.write('{"v": 2')
        raise RuntimeError("killed mid-write")
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "d") as tmp:
        (tmp / "half").write_text("x")
        raise RuntimeError("killed mid-write")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
    assert (tmp_path / "a.json").read_text() == '{\n  "v": 1\n}\n'
    with pytest.raises(FileNotFoundError, match="nothing was written"), atomic_path(tmp_path / "e.csv"):
        pass


def test_a_folder_output_is_replaced_whole(tmp_path):
    with atomic_dir(tmp_path / "m") as tmp:
        (tmp / "old").write_text("1")
    with atomic_dir(tmp_path / "m") as tmp:
        (tmp / "new").write_text("2")
    assert [p.name for p in (tmp_path / "m").iterdir()] == ["new"]


def test_temporaries_of_killed_attempts_are_found_and_removed_by_output(tmp_path):
    out, other = tmp_path / "sst2_stsb_0.5", tmp_path / "sst2_stsb_0.25"
    left = [tmp_path / ".sst2_stsb_0.5.k1x9a_2b.tmp", tmp_path / ".sst2_stsb_0.5.zz01qq7m.tmp"]
    left[0].mkdir()
    (left[0] / "model.safetensors").write_bytes(b"0" * 100)
    left[1].write_text("x")
    keep = [tmp_path / ".sst2_stsb_0.25.abcdefgh.tmp", tmp_path / "sst2_stsb_0.5.json", tmp_path / ".hidden",
            tmp_path / ".sst2_stsb_0.5.json.abcdefgh.tmp"]  # the temporary of another output
    for k in keep:
        k.write_text("x")
    assert temp_siblings(out) == sorted(left)
    assert all(provenance.is_temp(p.name) for p in left)
    assert not provenance.is_temp(".hidden") and not provenance.is_temp("x.tmp")
    assert remove_temps(out) == sorted(left)
    assert not any(p.exists() for p in left) and all(k.exists() for k in keep)
    assert temp_siblings(other) == [keep[0]]
    assert remove_temps(tmp_path / "missing" / "x") == []


def test_writers_that_ignore_the_umask_are_corrected(tmp_path, umask):
    """safetensors creates its files 0o600: inside an atomic folder they get the umask's mode."""
    import torch
    from safetensors.torch import save_file

    umask(0o022)
    with atomic_dir(tmp_path / "m") as tmp:
        save_file({"w": torch.ones(2)}, str(tmp / "model.safetensors"))
    assert mode(tmp_path / "m" / "model.safetensors") == 0o644
