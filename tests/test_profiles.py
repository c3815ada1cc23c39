"""The Snakemake profiles: valid option names, GPU requests on the GPU rules only, and the local
workflow profile (profiles/default, loaded with every run) never changing a cluster run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import dry_run_resources

ROOT = Path(__file__).resolve().parents[1]
SLURM = ROOT / "profiles" / "slurm" / "config.yaml"
DEFAULT = ROOT / "profiles" / "default" / "config.yaml"
GPU_RULES = {"finetune_base", "finetune_merged", "finetune_seed", "logme", "early_stop"}


def _load(path):
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("profile", [SLURM, DEFAULT], ids=["slurm", "default"])
def test_profile_keys_are_snakemake_options(profile):
    from snakemake.cli import get_argument_parser

    options = set(get_argument_parser()._option_string_actions)
    unknown = [k for k in _load(profile) if f"--{k}" not in options]
    assert not unknown, f"{profile}: not Snakemake 9 / slurm plugin options: {unknown}"


def test_slurm_profile_settings():
    p = _load(SLURM)
    assert p["executor"] == "slurm"
    assert p["retries"] >= 1 and p["keep-going"] is True and p["rerun-incomplete"] is True
    assert {"slurm_account", "slurm_partition"} <= set(p["default-resources"])
    # no GPU anywhere in the profile's defaults; GPU rules only get a partition (and a model)
    assert "gpu" not in p["default-resources"]
    assert set(p["set-resources"]) == GPU_RULES
    # every GPU rule has its threads, and the grouped ones keep the counted gpu=1 (no `gres`: the plugin
    # runs a group's jobs one after the other, docs/cluster.md)
    assert GPU_RULES <= set(p["set-threads"]) and GPU_RULES - {"finetune_base"} <= set(p["groups"])
    assert not any("gres" in res or "gpu" in res for res in p["set-resources"].values())


def test_default_profile_does_not_override_the_cluster_profile(tmp_path):
    """Snakemake loads profiles/default after --profile and lets it win on shared keys."""
    from snakemake.cli import parse_args

    _, args = parse_args(["--snakefile", str(ROOT / "Snakefile"), "--profile", str(SLURM.parent), "-n"])
    assert args.executor == "slurm"
    assert args.keep_going is True and args.rerun_incomplete is True and args.retries == 2
    assert set(args.set_resources) == set(_load(SLURM)["set-resources"])
    assert args.resources["gpu"].value == 1  # the local limit is there ...


@pytest.mark.slow
def test_slurm_profile_plans_the_paper_dag_with_gpus_on_gpu_rules_only(paper_plan):
    jobs = paper_plan
    assert sum(len(v) for v in jobs.values()) == 17976
    for rule, resources in jobs.items():
        for r in resources:
            if rule in GPU_RULES:
                assert r["gpu"] == "1", (rule, r)
                assert r["slurm_partition"] == "CHANGE-ME-gpu-partition", (rule, r)
            else:
                assert "gpu" not in r and "gpu_model" not in r, (rule, r)
                assert r["slurm_partition"] == "CHANGE-ME-cpu-partition", (rule, r)
            assert "slurm_account" in r and int(r["mem_mb"]) > 0 and int(r["runtime"]) > 0
    # sizes follow the model size class
    ft = {(int(r["mem_mb"]), int(r["runtime"])) for r in jobs["finetune_base"]}
    assert {m for m, _ in ft} == {16000, 32000}
    assert set(GPU_RULES) - {"finetune_seed"} <= set(jobs)  # (the paper setup has one seed)


def test_local_run_limits_gpu_jobs(tmp_path):
    """With profiles/default a local run caps the GPU rules at one at a time (gpu=1 each, limit 1)."""
    jobs = dry_run_resources(tmp_path, "--cores", "2", config="test.yaml")
    assert all(r.get("gpu") == "1" for rule in GPU_RULES for r in jobs[rule])
    assert not any("gpu" in r for rule, rs in jobs.items() if rule not in GPU_RULES for r in rs)
