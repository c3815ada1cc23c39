"""ptm-bench used as a Snakemake module from a deployment folder of its own (README "Using
ptm-bench as a module"): outputs land in that folder, never in the checkout, and every job imports
the library from the checkout's src/ (not from whatever ptmbench the Python environment has)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import copy_run

REPO = Path(__file__).resolve().parents[1]
# Written into the checkout by other tools, never by a workflow run.
_NOT_OURS = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache"}

# The README's deployment recipe, plus two checks of where `ptmbench` is imported from: at parse
# time (the module's Snakefile puts its src/ first on sys.path) and in a job (PYTHONPATH).
DEPLOYMENT_SNAKEFILE = """\
configfile: "config/config.yaml"


module ptmbench:
    snakefile:
        "@SNAKEFILE@"
    config:
        config


use rule * from ptmbench as *


import ptmbench

with open("parse_imports.txt", "w") as f:
    f.write(ptmbench.__file__)


rule job_imports:
    output:
        "job_imports.txt",
    shell:
        "'@PYTHON@' -c 'import ptmbench; print(ptmbench.__file__)' > {output}"
"""


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _NOT_OURS]
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            st = path.lstat()
            out[str(path.relative_to(root))] = (st.st_mtime_ns, st.st_size)
    return out


def _run(*args, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-5000:] + proc.stdout[-2000:]
    return proc


# Outputs removed from a copy of the shared finished tiny run: one job of each kind that runs a script
# (a fine-tune, a graph, two LogME jobs, the export, the report) is redone through the module.
REDO = ("results/finetune/tiny-bert_sst2_stsb_0.5/stsb", "results/graphs/tiny-bert_sst2_stsb_0.5.dill",
        "results/logme/tiny-bert_sst2_stsb_0.5", "results/ptm_model_bench", "results/tables", "results/report")
REDONE = {"finetune_merged": 1, "graph": 1, "logme": 2, "export": 1, "report": 1, "hub": 1, "all": 1}


@pytest.mark.slow
def test_deployed_as_a_module_runs_in_its_own_folder(tiny_run, tmp_path):
    """A finished run of the same config, deployed as a module, is up to date except what was removed:
    exactly those jobs run, from the module's scripts, writing into the deployment folder only."""
    deploy = copy_run(tiny_run, tmp_path / "my-analysis")
    for rel in REDO:
        p = deploy / rel
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    (deploy / "config").mkdir(exist_ok=True)
    shutil.copy(REPO / "config" / "test.yaml", deploy / "config" / "config.yaml")
    (deploy / "Snakefile").write_text(DEPLOYMENT_SNAKEFILE.replace("@SNAKEFILE@", str(REPO / "Snakefile"))
                                      .replace("@PYTHON@", sys.executable))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    before = _snapshot(REPO)

    proc = _run("--cores", "2", cwd=deploy, env=env)  # the module's default target: the export
    ran = Counter(re.findall(r"^(?:local)?rule (\w+):", proc.stdout + proc.stderr, re.M))
    assert ran == REDONE, (proc.stdout + proc.stderr)[-3000:]
    _run("--cores", "1", "job_imports.txt", cwd=deploy, env=env)
    _run("--cores", "1", "--report", "report.html", cwd=deploy, env=env)

    bench = deploy / "results" / "ptm_model_bench"
    assert (bench / "base_model_dataset" / "base_tiny-bert.dill").is_file()
    assert (bench / "merged_model_dataset" / "tiny-bert_sst2_stsb_0.5.dill").is_file()
    assert (bench / "performance" / "merged_models" / "sst2_performance_score.json").is_file()
    for out in ("results/tables/performance.csv", "results/tables/logme.csv", "results/report/summary.txt",
                "resources/models/tiny-bert/config.json", "logs/export/export.log"):
        assert (deploy / out).is_file(), out
    # The report gathers the module's captions and its workflow description.
    assert "were fine-tuned on sst2, stsb" in (deploy / "report.html").read_text()

    src = (REPO / "src" / "ptmbench" / "__init__.py").resolve()
    assert Path((deploy / "parse_imports.txt").read_text().strip()).resolve() == src
    assert Path((deploy / "job_imports.txt").read_text().strip()).resolve() == src

    after = _snapshot(REPO)
    written = sorted(p for p in after.keys() - before.keys()) + sorted(
        p for p in before.keys() & after.keys() if before[p] != after[p])
    assert not written, f"the run wrote into the checkout: {written[:20]}"
