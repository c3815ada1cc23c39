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
# the module, its rules used as @PREFIX@* (no prefix: the names they have in ptm-bench)
MODULE_SNAKEFILE = """\
configfile: "config/config.yaml"


module ptmbench:
    snakefile:
        "@SNAKEFILE@"
    config:
        config


use rule * from ptmbench as @PREFIX@*
"""
DEPLOYMENT_SNAKEFILE = MODULE_SNAKEFILE.replace("@PREFIX@", "") + """

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
REDONE = {"finetune_merged": 1, "graph": 1, "logme": 2, "export": 1, "compare": 1, "report": 1, "hub": 1, "all": 1}


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


# The usual form when a workflow combines several modules: every rule renamed with a prefix.
RENAMED_SNAKEFILE = MODULE_SNAKEFILE.replace("@PREFIX@", "ptmbench_")

# Acquired in the deployment: one job of each acquire rule (a model, a GLUE task, a custom task, SQuAD v2),
# and a graph of the finished run redone; nothing else runs (the targets are these outputs).
RENAMED_TARGETS = ("resources/models/tiny-other", "resources/data/glue/rte", "resources/data/custom/rte-copy",
                   "resources/data/squad_v2/train-v2.0.json", "results/graphs/tiny-bert_sst2_stsb_0.5.dill")
RENAMED_RAN = {"ptmbench_acquire_model": 1, "ptmbench_acquire_glue": 1, "ptmbench_acquire_custom": 1,
               "ptmbench_acquire_squad": 1, "ptmbench_graph": 1}


@pytest.mark.slow
def test_deployed_with_renamed_rules_every_script_runs(tiny_run, tmp_path):
    """`use rule * from ptmbench as ptmbench_*`: the scripts never depend on a rule's name, so every
    acquire rule (four scripts) and the graph run under their new names and write what they should."""
    import yaml

    deploy = copy_run(tiny_run, tmp_path / "combined")
    (deploy / "results" / "graphs" / "tiny-bert_sst2_stsb_0.5.dill").unlink()
    data = tmp_path / "rte-copy"
    data.mkdir()
    rows = [("a cat sat", "a cat is sitting", "entailment"), ("a dog ran", "no dog ran", "not_entailment")] * 4
    for split in ("train", "dev"):
        (data / f"{split}.csv").write_text("premise,claim,gold\n" + "".join(",".join(r) + "\n" for r in rows))
    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    config["unseen_models"] = {"tiny-other": {"source": "tiny", "family": "bert", "seed": 1}}
    config["custom_tasks"] = {"rte-copy": {"kind": "classification", "source": "path",
                                           "train": str(data / "train.csv"), "validation": str(data / "dev.csv"),
                                           "text": ["premise", "claim"], "label": "gold",
                                           "labels": ["entailment", "not_entailment"]}}
    config["tasks"] = ["sst2", "stsb", "rte", "squad_v2", "rte-copy"]
    (deploy / "config").mkdir(exist_ok=True)
    (deploy / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))  # params compare in order
    (deploy / "Snakefile").write_text(RENAMED_SNAKEFILE.replace("@SNAKEFILE@", str(REPO / "Snakefile")))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    proc = _run("--cores", "2", *RENAMED_TARGETS, cwd=deploy, env=env)
    ran = Counter(re.findall(r"^(?:local)?rule (\w+):", proc.stdout + proc.stderr, re.M))
    assert ran == RENAMED_RAN, (proc.stdout + proc.stderr)[-3000:]
    assert (deploy / "resources/models/tiny-other/config.json").is_file()
    assert (deploy / "resources/data/squad_v2/dev-v2.0.json").is_file()
    for task, n in (("glue/rte", None), ("custom/rte-copy", len(rows))):
        info = yaml.safe_load((deploy / "resources/data" / task / "dataset_dict.json").read_text())
        assert "train" in info["splits"], task
        if n is not None:
            import datasets

            assert len(datasets.load_from_disk(str(deploy / "resources/data" / task))["train"]) == n
    assert (deploy / "results/graphs/tiny-bert_sst2_stsb_0.5.dill").stat().st_size > 0
    assert (deploy / "logs/acquire_custom/rte-copy.log").read_text().rstrip().splitlines()[-1].endswith(" s")
