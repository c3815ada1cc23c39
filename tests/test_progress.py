"""Progress a person can follow: steady progress lines with an ETA in a job's log (no tqdm bars), and
the time a run has left from its finished jobs' benchmark files (`python -m ptmbench.status`)."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import NOT_DONE, copy_run

from ptmbench.cluster import status
from ptmbench.core import paths
from ptmbench.io import progress
from ptmbench.settings.config import validate

REPO = Path(__file__).resolve().parents[1]


# any output of progress.duration (45s, 3m05s, 2h40m, 3d04h): how long a job took depends on the machine's load
DURATION = r"\d+(?:s|m\d\ds|h\d\dm|d\d\dh)"


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t



def test_lines_come_at_a_steady_rate_with_the_eta_of_the_mean_rate(caplog):
    clock = Clock()
    logger = logging.getLogger("test.progress")
    p = progress.Progress("training x on sst2", 1000, "steps", every=60, logger=logger, clock=clock)
    with caplog.at_level(logging.INFO, logger="test.progress"):
        for step in range(1, 1001):  # 0.5 s per step: 500 s in all
            clock.t += 0.5
            p.update(step, extra="loss 0.5")
        p.finish()
    lines = [r.getMessage() for r in caplog.records]
    # one line per 60 s (at steps 120, 240, ..., 960), not one per step, and the final one
    assert len(lines) == 8 + 1
    assert lines[0] == ("training x on sst2: 120/1000 steps (12%), 2 steps/s, elapsed 1m00s, ETA 7m20s, "
                        "loss 0.5")  # 880 steps at 2 steps/s = 440 s
    assert lines[7].startswith("training x on sst2: 960/1000 steps (96%), 2 steps/s, elapsed 8m00s, ETA 20s")
    assert lines[-1] == "training x on sst2: 1000/1000 steps done in 8m20s (2 steps/s)"


def test_eta_duration_and_the_interval_setting(monkeypatch):
    assert progress.eta(0, 10, 5.0) is None
    assert progress.eta(25, 100, 50.0) == 150.0
    assert [progress.duration(s) for s in (0.4, 59.6, 185, 9600, 3 * 86400 + 4 * 3600)] == \
        ["0s", "1m00s", "3m05s", "2h40m", "3d04h"]
    monkeypatch.setenv(progress.EVERY_ENV, "0")
    assert progress.every_s() == 0.0
    monkeypatch.setenv(progress.EVERY_ENV, "soon")
    with pytest.raises(ValueError, match="PTMBENCH_PROGRESS_S='soon'"):
        progress.every_s()
    monkeypatch.delenv(progress.EVERY_ENV)
    assert progress.every_s() == 60.0


def test_a_finetune_logs_its_steps_with_an_eta(tmp_path, tiny_model, caplog, one_thread):
    from test_finetune import prepare

    from ptmbench.stages import finetune

    tok_dir, hp = prepare(tmp_path, tiny_model("bert"), "sst2", n_train=96)  # 6 steps
    with caplog.at_level(logging.INFO, logger="ptmbench.io.progress"):
        import os

        os.environ[progress.EVERY_ENV] = "0"  # a line per step, to see them all
        try:
            finetune.finetune(ptm="tiny-bert", model_dir=tiny_model("bert"), tokenized_dir=tok_dir, task="sst2",
                              hp=hp, metrics_path=tmp_path / "m.json")
        finally:
            del os.environ[progress.EVERY_ENV]
    lines = [r.getMessage() for r in caplog.records if r.name == "ptmbench.io.progress"]
    steps = [ln for ln in lines if ln.startswith("training tiny-bert on sst2: ")]
    assert [re.search(r": (\d)/6 steps", ln)[1] for ln in steps[:-1]] == ["1", "2", "3", "4", "5"]
    assert all(re.search(rf", ETA {DURATION}", ln) for ln in steps[:-1])
    assert re.fullmatch(rf"training tiny-bert on sst2: 6/6 steps done in {DURATION} \(.* steps/s\)", steps[-1])


def test_job_logs_of_the_tiny_run_have_no_progress_bars(tiny_run):
    logs = sorted((tiny_run / "logs").rglob("*.log"))
    assert logs
    for log in logs:
        text = log.read_text()
        assert "\r" not in text and "it/s]" not in text and "examples/s]" not in text, log
    assert "tokenize sst2/train: 64/64 examples done in" in (tiny_run / "logs/tokenize/tiny-bert/sst2.log").read_text()


# --------------------------------------------------------------------------------------------------
# Time left, from benchmark files

def _config():
    return validate(yaml.safe_load((REPO / "config" / "test.yaml").read_text()))


def _bench(workdir: Path, rule: str, name: str, seconds: float) -> None:
    p = workdir / paths.fill(paths.BENCHMARK, rule=rule, job=name)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("s\th:m:s\tmax_rss\n" f"{seconds}\t0:00:00\t100\n")


def test_time_left_by_rule_and_task_from_hand_made_benchmarks(tmp_path):
    cfg = _config()
    jobs = list(paths.jobs(paths.Zoo.from_config(cfg)))
    # finished: both tokenize jobs (10 s, 30 s) and tiny-bert's stsb fine-tune (100 s); nothing else
    done = {("tokenize", "tiny-bert/sst2"): 10.0, ("tokenize", "tiny-bert/stsb"): 30.0,
            ("finetune_base", "tiny-bert/stsb"): 100.0}
    states = []
    for j in jobs:
        state = "done" if (j.rule, j.name) in done else "failed" if j.rule == "graph" else "missing"
        if (j.rule, j.name) in done:
            _bench(tmp_path, j.rule, j.name, done[(j.rule, j.name)])
        states.append(status.JobStatus(j, state))
    rows = {r.stage: r for r in progress.time_left(states, tmp_path)}
    assert (rows["tokenize"].done, rows["tokenize"].to_run, rows["tokenize"].mean_s) == (2, 0, 20.0)
    # sst2's base fine-tune: no finished sst2 fine-tune, so the rule's mean (100 s)
    assert (rows["finetune_base"].to_run, rows["finetune_base"].left_s) == (1, 100.0)
    # finetune_merged: no finished job of the rule at all: no estimate
    assert rows["finetune_merged"].left_s is None and rows["finetune_merged"].unknown == 2
    assert rows["graph"].failed == 2
    text = progress.format_time_left(list(rows.values()), jobs=2)
    assert re.search(r"^finetune_base\s+1\s+0\s+0\s+1\s+1m40s\s+1m40s$", text, re.M), text
    assert re.search(r"^finetune_merged\s+0\s+0\s+0\s+2\s+-\s+\?$", text, re.M), text
    assert "left: 1m40s of job time, about 50s at 2 jobs at once, plus 21 job(s) of rules with no finished job yet" in text


def test_status_on_a_finished_and_a_half_finished_tiny_run(tiny_run, tmp_path):
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text((REPO / "config" / "test.yaml").read_text())
    run = [sys.executable, "-m", "ptmbench.cli.status", "--configfile", str(cfg_path), "--directory"]
    full = subprocess.run([*run, str(tiny_run)], capture_output=True, text=True, timeout=120)
    assert full.returncode == 0, full.stderr
    assert re.search(rf"^finetune_merged\s+2\s+0\s+0\s+0\s+{DURATION}\s+-$", full.stdout, re.M), full.stdout
    assert "left: 0s of job time" in full.stdout
    half = copy_run(tiny_run, tmp_path / "half")
    for rel in NOT_DONE:  # killed in tiny-bert's sst2 fine-tune: it and everything after it not done
        p = half / rel
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    out = subprocess.run([*run, str(half), "--jobs", "2"], capture_output=True, text=True, timeout=120).stdout
    print(out)
    # sst2's base fine-tune takes stsb's time (no sst2 fine-tune finished), the merged PTM's fine-tunes and
    # the rest of the stages that have no finished job get no estimate
    bench = progress.benchmark_seconds(half / "benchmarks/finetune_base/tiny-bert/stsb.tsv")
    line = re.search(r"^finetune_base\s+1\s+0\s+0\s+1\s+(\S+)\s+(\S+)$", out, re.M)
    assert line and line[2] == progress.duration(bench), out
    assert re.search(r"^export\s+0\s+0\s+0\s+1\s+-\s+\?$", out, re.M), out  # no export finished: no estimate
    assert re.search(r"^left: \S+ of job time, about \S+ at 2 jobs at once", out, re.M), out
