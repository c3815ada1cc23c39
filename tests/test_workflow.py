"""The DAG as users see it: job counts of the paper setup, and the tiny workflow end to end."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]


def snakemake(*args, cwd: Path, timeout=900) -> subprocess.CompletedProcess:
    proc = subprocess.run([*SNAKEMAKE, "-d", str(cwd), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)
    return proc


def job_counts(config: Path, workdir: Path) -> dict[str, int]:
    proc = snakemake("-n", "--nolock", "--configfile", config, cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    table = proc.stdout.split("Job stats:")[-1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def write_config(tmp_path: Path, base: str, **changes) -> Path:
    cfg = yaml.safe_load((REPO / "config" / base).read_text())
    for dotted, value in changes.items():
        node = cfg
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow
def test_paper_dag_plans_every_stage(tmp_path):
    counts = job_counts(REPO / "config" / "config.yaml", tmp_path)
    assert counts["acquire_model"] == 12
    assert counts["acquire_glue"] == 9
    assert counts["acquire_squad"] == 1
    assert counts["tokenize"] == 12 * 10
    assert counts["finetune_base"] == 12 * 10
    assert counts["merge"] == 12 * 45
    assert counts["finetune_merged"] == 540 * 10
    assert counts["graph"] == 540 + 12
    assert counts["logme"] == (540 + 12) * 9
    assert counts["export"] == 1


@pytest.mark.slow
def test_two_ratios_double_the_merges(tmp_path):
    config = write_config(tmp_path, "config.yaml", **{"merge.ratios": [0.25, 0.5]})
    counts = job_counts(config, tmp_path)
    assert counts["merge"] == 1080
    assert counts["finetune_merged"] == 10800
    assert counts["finetune_base"] == 120  # base fine-tunes are shared by both ratios


def test_unseen_models_are_finetuned_and_scored_never_merged(tmp_path):
    config = write_config(tmp_path, "test.yaml", unseen_models={"tiny-electra": {"source": "tiny", "family": "electra"}})
    counts = job_counts(config, tmp_path)
    assert counts["acquire_model"] == 2
    assert counts["finetune_base"] == 2 * 2
    assert counts["merge"] == 1  # only tiny-bert's sst2_stsb pair
    assert counts["logme"] == 3 * 2  # tiny-bert, its merge and tiny-electra, on sst2 and stsb


@pytest.mark.slow
def test_tiny_workflow_end_to_end(tmp_path):
    """config/test.yaml runs offline to the export; a second run has nothing to do."""
    config = REPO / "config" / "test.yaml"
    proc = snakemake("--cores", "2", "--configfile", config, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-5000:]

    ptms = ["tiny-bert", "tiny-bert_sst2_stsb_0.5"]
    for ptm in ptms:
        for task in ("sst2", "stsb"):
            metrics = json.loads((tmp_path / f"results/finetune/{ptm}/{task}/metrics.json").read_text())
            assert metrics["ptm"] == ptm and metrics["task"] == task
            assert "provenance" in metrics
            logme = json.loads((tmp_path / f"results/logme/{ptm}/{task}.json").read_text())
            assert logme["ptm"] == ptm and isinstance(logme["score"], float)
        assert (tmp_path / f"results/graphs/{ptm}.dill").is_file()
    bench = tmp_path / "results/ptm_model_bench"
    assert (bench / "base_model_dataset/base_tiny-bert.dill").is_file()
    assert (bench / "merged_model_dataset/tiny-bert_sst2_stsb_0.5.dill").is_file()
    perf = json.loads((bench / "performance/merged_models/sst2_performance_score.json").read_text())
    assert set(perf["sst2"]) == {"tiny-bert_sst2_stsb_0.5"}

    again = snakemake("-n", "--configfile", config, cwd=tmp_path)
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr
    # status agrees with Snakemake (every job done, none stale), every recorded checksum matches,
    # and no temporaries are left
    st = subprocess.run([sys.executable, "-m", "ptmbench.status", "--configfile", str(config), "-d", str(tmp_path),
                         "--json", "--verify"], capture_output=True, text=True, timeout=120)
    assert st.returncode == 0, st.stdout[-3000:] + st.stderr[-3000:]
    report = json.loads(st.stdout)
    assert report["totals"]["*"] == {"done": 18} and report["verify"] == [] and report["temporaries"] == []
