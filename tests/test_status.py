"""`python -m ptmbench.status`: per stage and base model, done / failed / incomplete / missing."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from ptmbench import paths, status
from ptmbench.config import validate

REPO = Path(__file__).resolve().parents[1]


def config(unseen=None, keep=True):
    cfg = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    cfg["unseen_models"] = unseen or {}
    cfg["merge"]["keep"] = keep
    return validate(cfg)


def mark_incomplete(workdir: Path, output: str, max_len: int = 255) -> None:
    """What Snakemake 9's file persistence writes when a job starts (persistence/file.py)."""
    b64 = base64.urlsafe_b64encode(output.encode()).decode()
    chunks = [b64[i:i + max_len - 1] for i in range(0, len(b64), max_len - 1)]
    chunks = ["@" + c for c in chunks[:-1]] + [chunks[-1]]
    path = workdir / ".snakemake" / "incomplete" / Path(*chunks)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"external_jobid": null}')


def touch(workdir: Path, rel: str, directory=False) -> None:
    p = workdir / rel
    if directory:
        p.mkdir(parents=True, exist_ok=True)
    else:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")


def write_log(workdir: Path, rel: str, text: str) -> None:
    touch(workdir, rel)
    (workdir / rel).write_text(text)


def test_zoo_lists_match_the_config():
    zoo = paths.Zoo.from_config(config(unseen={"tiny-electra": {"source": "tiny", "family": "electra"}}))
    assert zoo.bases == ["tiny-bert", "tiny-electra"]
    assert zoo.merged == ["tiny-bert_sst2_stsb_0.5"]
    assert zoo.ptms_with_base() == [("tiny-bert", "tiny-bert"), ("tiny-electra", "tiny-electra"),
                                    ("tiny-bert_sst2_stsb_0.5", "tiny-bert")]
    paper = paths.Zoo.from_config(validate(yaml.safe_load((REPO / "config" / "config.yaml").read_text())))
    assert sum(1 for _ in paths.jobs(paper)) == 11724  # snakemake -n plans 11,725 jobs with `all`


def test_jobs_match_the_snakemake_dry_run(tmp_path):
    """Every rule's outputs and log in paths.jobs are what Snakemake plans (with an unseen model)."""
    cfg = config(unseen={"tiny-electra": {"source": "tiny", "family": "electra"}})
    cfg_path = tmp_path / "config.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
                           "-n", "--nolock", "--configfile", str(cfg_path)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    planned = set()
    for block in re.split(r"^(?:local)?rule ", proc.stdout, flags=re.M)[1:]:
        rule = block.split(":", 1)[0]
        fields = dict(re.findall(r"^    (\w+): (.*)$", block, re.M))
        if rule != "all":
            planned.add((rule, frozenset(fields["output"].split(", ")), fields["log"]))
    ours = {(j.rule, frozenset(j.outputs), j.log) for j in paths.jobs(paths.Zoo.from_config(cfg))}
    assert planned == ours


def test_states_on_a_synthetic_results_tree(tmp_path):
    cfg = config()
    # done: acquire_model; a finetune_base with both outputs
    touch(tmp_path, "resources/models/tiny-bert", directory=True)
    touch(tmp_path, "results/finetune/tiny-bert/sst2/metrics.json")
    touch(tmp_path, "results/finetune/tiny-bert/sst2/model", directory=True)
    # failed: an output missing and a traceback in the log (after an earlier success line)
    touch(tmp_path, "results/finetune/tiny-bert/stsb/metrics.json")
    write_log(tmp_path, "logs/finetune_base/tiny-bert/stsb.log",
              "INFO rule finetune_base\nINFO done in 3.0 s\nINFO rule finetune_base\nERROR failed after 2.0 s\n"
              "Traceback (most recent call last):\n  File \"x.py\", line 1\ntorch.OutOfMemoryError: CUDA out of memory\n")
    # failed: killed by the scheduler (log stops without the completion line)
    write_log(tmp_path, "logs/graph/tiny-bert.log", "INFO rule graph, wildcards {}, threads 1\n")
    # missing: ran once, then its output was deleted (not temp)
    write_log(tmp_path, "logs/tokenize/tiny-bert/sst2.log", "INFO rule tokenize\nINFO done in 1.0 s\n")
    # incomplete: a running (or killed) job, its output partly written and marked by Snakemake
    touch(tmp_path, "results/logme/tiny-bert/sst2.json")
    mark_incomplete(tmp_path, "results/logme/tiny-bert/sst2.json")
    mark_incomplete(tmp_path, "results/merged/tiny-bert/sst2_stsb_0.5")  # running, nothing written yet
    got = {(s.job.rule, s.job.name): s for s in status.collect(cfg, tmp_path)}
    assert got[("acquire_model", "tiny-bert")].state == "done"
    assert got[("finetune_base", "tiny-bert/sst2")].state == "done"
    failed = got[("finetune_base", "tiny-bert/stsb")]
    assert failed.state == "failed" and failed.reason == "torch.OutOfMemoryError: CUDA out of memory"
    assert got[("graph", "tiny-bert")].state == "failed" and "killed" in got[("graph", "tiny-bert")].reason
    assert got[("tokenize", "tiny-bert/sst2")].state == "missing"
    assert got[("logme", "tiny-bert/sst2")].state == "incomplete"
    assert got[("merge", "tiny-bert/sst2_stsb_0.5")].state == "incomplete"
    assert got[("acquire_glue", "sst2")].state == "missing"
    c = status.counts(got.values())
    assert c[("finetune_base", "tiny-bert")] == {"done": 1, "failed": 1}
    assert c[("*", "*")] == {"done": 2, "failed": 2, "incomplete": 2, "missing": 12}

    table = status.format_table(list(got.values()))
    assert re.search(r"^finetune_base\s+1\s+1\s+0\s+0\s+2$", table, re.M)
    assert re.search(r"^tiny-bert\s+1/1\s+0/2\s+1/2 1F\s+0/1 1I\s+0/2\s+0/2 1F\s+0/4 1I", table, re.M), table
    assert "logs/finetune_base/tiny-bert/stsb.log  torch.OutOfMemoryError" in table
    assert "2 job(s) incomplete" in table


def test_temp_outputs_removed_after_success_count_as_done(tmp_path):
    write_log(tmp_path, "logs/merge/tiny-bert/sst2_stsb_0.5.log", "INFO rule merge\nINFO done in 1.0 s\n")
    for keep, state in ((True, "missing"), (False, "done")):
        got = {s.job.rule: s.state for s in status.collect(config(keep=keep), tmp_path) if s.job.rule == "merge"}
        assert got == {"merge": state}


def test_long_output_paths_are_decoded_from_chunked_markers(tmp_path):
    long = "results/" + "x" * 300 + ".json"
    mark_incomplete(tmp_path, long, max_len=os.pathconf(tmp_path, "PC_NAME_MAX"))
    mark_incomplete(tmp_path, "results/graphs/tiny-bert.dill")
    assert status.incomplete_outputs(tmp_path) == {long, "results/graphs/tiny-bert.dill"}


def test_command_line(tmp_path):
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(yaml.safe_dump(config()))
    run = [sys.executable, "-m", "ptmbench.status", "--configfile", str(cfg_path), "--directory", str(tmp_path)]
    proc = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^all stages\s+0\s+0\s+0\s+18\s+18$", proc.stdout, re.M)
    proc = subprocess.run([*run, "--json"], capture_output=True, text=True, timeout=60)
    assert '"missing": 18' in proc.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: {}\n")
    proc = subprocess.run([*run[:4], str(bad)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "cannot read config" in proc.stderr
