"""Same inputs, same bytes (on one machine): the export's files can be compared by checksum.

A user checks a regenerated export against an earlier one, or a colleague's, by its checksums
(``MANIFEST.json``, DVC, the Hub's deduplication): every file of ``results/ptm_model_bench`` and the
tidy tables must then come out byte for byte the same when the same results are exported again. The
graph files were not (torch pickles a tensor's storage under its memory address), nor the manifest
(a time stamp).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import copy_run, snakemake_cmd

REPO = Path(__file__).resolve().parents[1]


def _hashes(root: Path, pattern: str = "**/*") -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.glob(pattern)) if p.is_file() and not p.name.startswith(".snakemake")}


def test_graph_file_is_byte_reproducible_across_processes(tiny_model, tmp_path):
    """Two processes (different string-hash seeds, different memory layouts) write the same bytes for
    the same model; loading gives the features ``attention_features`` computes, as float32 tensors."""
    import dill
    import torch

    from ptmbench.stages import graph

    model = tiny_model("bert")
    code = "import sys; from ptmbench.stages import graph; graph.write_graph(sys.argv[1], 'tiny-bert', sys.argv[2])"
    outs = []
    for seed in ("1", "2"):
        out = tmp_path / f"g{seed}.dill"
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO / "src")}
        subprocess.run([sys.executable, "-c", code, str(model), str(out)], env=env, check=True,
                       capture_output=True)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    [(g, feats, name)] = dill.loads(outs[0])
    want = graph.attention_features(model)
    assert name == "tiny-bert" and list(feats) == list(want)
    assert all(v.dtype == torch.float32 and torch.equal(v, want[k]) for k, v in feats.items())
    layers, heads, _ = graph.model_shape(json.loads((model / "config.json").read_text()))
    assert g.number_of_nodes() == len(graph.node_names(layers, heads))


@pytest.mark.slow
def test_a_rerun_of_graphs_and_export_writes_the_same_bytes(tiny_run, tmp_path):
    """In a copy of the finished tiny run, the graph files, the export and the tables removed and made
    again from the same fine-tunes and LogME results: every file is byte-identical to the first time."""
    wd = copy_run(tiny_run, tmp_path / "wd")
    bench, tables = wd / "results/ptm_model_bench", wd / "results/tables"
    before = {"bench": _hashes(bench), "tables": _hashes(tables), "graphs": _hashes(wd / "results/graphs")}
    assert before["bench"] and before["graphs"] and any(k.endswith(".parquet") for k in before["tables"])
    for path in (bench, tables, wd / "results/graphs"):
        shutil.rmtree(path)
    proc = subprocess.run(snakemake_cmd(wd, "--cores", "2"), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    after = {"bench": _hashes(bench), "tables": _hashes(tables), "graphs": _hashes(wd / "results/graphs")}
    for part in before:
        changed = sorted(k for k in before[part] if before[part][k] != after[part].get(k))
        assert not changed and before[part].keys() == after[part].keys(), f"{part}: {changed}"
