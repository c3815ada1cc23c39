"""Slurm job groups (profiles/slurm `groups` / `group-components`): the submission count of
ptmbench.cluster.grouping equals the group jobs Snakemake forms, and the paper setup stays under 1,900."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ptmbench.cluster import grouping
from ptmbench.core import paths
from ptmbench.settings.config import validate

ROOT = Path(__file__).resolve().parents[1]
SLURM = ROOT / "profiles" / "slurm"


def _zoo(name: str) -> paths.Zoo:
    config = yaml.safe_load((ROOT / "config" / name).read_text())
    validate(config, ROOT / "config" / "schema.yaml")
    return paths.Zoo.from_config(config)


def _snakemake_submissions(workdir: Path, *extra) -> int:
    """Submissions of a dry run through the Slurm profile: group jobs + jobs outside any group."""
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "-n",
         "--configfile", str(ROOT / "config" / "test.yaml"), "--profile", str(SLURM), *extra],
        capture_output=True, text=True, timeout=300, check=True).stdout
    return count_submissions(out)


def count_submissions(dry_run: str) -> int:
    """Group jobs ("Group job NAME") and ungrouped jobs (a rule at the start of a line) but `all`."""
    groups = len(re.findall(r"^\[[^\]]*\] Group job ", dry_run, re.M))
    single = len(re.findall(r"^(?:local)?rule (?!all:)\w+:", dry_run, re.M))
    return groups + single


def test_paper_setup_submits_at_most_1900_jobs():
    zoo = _zoo("config.yaml")
    before = grouping.submissions(zoo, grouping.Grouping())
    after = grouping.submissions(zoo)
    # one submission per job without groups (the target rule `all` runs in the main process)
    # 12 seen base models (merged) and 32 unseen ones (config unseen_models)
    assert before == {"acquire": 54, "tokenize": 440, "finetune_base": 440, "merge": 540,
                      "finetune_merged": 5400, "finetune_seed": 0, "graph": 584, "logme": 5256, "early_stop": 5256,
                      "export": 1, "published": 1, "compare": 1, "report": 1,
                      "hub": 1, "total": 17975}
    # tokenize: 44 bases x ceil(10/10); merge: 12 x ceil(45/15); finetune_merged: one per merged PTM;
    # graph: ceil(584/24); logme: one per PTM (its 9 tasks); early_stop: ceil(5256/36)
    assert after == {"acquire": 54, "tokenize": 44, "finetune_base": 440, "merge": 36,
                     "finetune_merged": 540, "finetune_seed": 0, "graph": 25, "logme": 584, "early_stop": 146,
                     "export": 1, "published": 1, "compare": 1, "report": 1,
                     "hub": 1, "total": 1874}
    assert after["total"] <= 1900


def test_counts_equal_snakemakes_group_jobs(tmp_path):
    """The tiny config through the profile's groups, and through groups that chunk components and
    that span connected jobs (merge -> its fine-tunes): the count equals Snakemake's dry run."""
    zoo = _zoo("test.yaml")
    profile = grouping.Grouping.from_profile(SLURM)
    assert grouping.submissions(zoo, profile)["total"] == _snakemake_submissions(tmp_path) == 17

    other = grouping.Grouping(groups={"logme": "scores", "merge": "m_{base}_{pair}_{ratio}",
                                      "finetune_merged": "m_{base}_{pair}_{ratio}", "tokenize": "tok"},
                              components={"scores": 3, "tok": 1})
    args = ["--groups", *(f"{r}={g}" for r, g in other.groups.items()),
            "--group-components", *(f"{g}={n}" for g, n in other.components.items()),
            # the jobs of a group must agree on string resources: the merge runs on the GPU partition
            # (--set-resources replaces the profile's, so the GPU rules get theirs again)
            "--set-resources", *(f"{r}:slurm_partition=CHANGE-ME-gpu-partition"
                                 for r in ("merge", "finetune_base", "finetune_merged", "logme"))]
    got = grouping.submissions(zoo, other)
    # 4 LogME jobs, 3 per group job -> 2; the merge and its 2 fine-tunes are connected: one group job;
    # 2 tokenisations, one per group job (group-components 1); 2 graphs outside any group
    assert (got["logme"], got["merge"], got["finetune_merged"], got["tokenize"], got["graph"]) == (2, 1, 0, 2, 2)
    # (+ 4 early_stop jobs outside any group; + 5: the export, the published bench, the comparison, the
    # report, the hub folder)
    assert got["total"] == _snakemake_submissions(tmp_path, *args) == 3 + 2 + 2 + 1 + 2 + 2 + 4 + 5


def test_extra_seed_fine_tunes_are_grouped_per_ptm_and_seed():
    config = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    config["finetune"]["seeds"] = [0, 1, 2]
    validate(config, ROOT / "config" / "schema.yaml")
    zoo = paths.Zoo.from_config(config)
    seeds = [j for j in paths.jobs(zoo) if j.rule == "finetune_seed"]
    profile = grouping.Grouping.from_profile(SLURM)
    assert {profile.group_of(j.rule, grouping.wildcards(j)) for j in seeds} == {
        f"finetune_seed_{ptm}_{seed}" for ptm in ("tiny-bert", "tiny-bert_sst2_stsb_0.5") for seed in (1, 2)}
    # 2 PTMs x 2 extra seeds x 2 tasks: one submission per PTM and seed
    assert len(seeds) == 8 and grouping.submissions(seeds, profile)["finetune_seed"] == 4


def test_profile_groups_are_checked():
    with pytest.raises(ValueError, match=r"unknown rule 'logmee'"):
        grouping.Grouping(groups={"logmee": "x"})
    with pytest.raises(ValueError, match=r"\['task'\] are no wildcards of rule logme"):
        grouping.Grouping(groups={"logme": "logme_{task}"})
    with pytest.raises(ValueError, match=r"'logme_{ptm}' is no group"):
        grouping.Grouping(groups={"graph": "graph"}, components={"logme_{ptm}": 9})
    with pytest.raises(ValueError, match=r"must be a positive integer"):
        grouping.Grouping(groups={"graph": "graph"}, components={"graph": 0})
    # the profile itself is valid, and every group of it has its component count
    profile = grouping.Grouping.from_profile(SLURM)
    assert set(profile.components) == set(profile.groups.values())


@pytest.mark.slow
def test_paper_count_equals_snakemakes_plan(paper_submissions):
    """The paper DAG planned by Snakemake through profiles/slurm forms exactly the predicted group jobs."""
    assert paper_submissions == grouping.submissions(_zoo("config.yaml"))["total"] == 1874
