"""Progress a person can follow: a long job's log line at a steady rate with an ETA, and the time a
run has left from its finished jobs' benchmark files (``python -m ptmbench.status``).

In a job, :class:`Progress` writes one line every ``PTMBENCH_PROGRESS_S`` seconds (default 60) and one
when it finishes, e.g. ``training roberta-base on qqp: 4200/34110 steps (12%), 3.1 steps/s, elapsed
22m35s, ETA 2h40m, loss 0.312``; the ETA is the remaining units at the mean rate so far,
``elapsed / done * (total - done)``. tqdm progress bars, which write a line (or a carriage return)
per update, are switched off in job logs (:func:`quiet_bars`).

:func:`time_left` estimates, per stage, the job-seconds still to run: every job not done takes the
mean wall time (the ``s`` column of Snakemake's ``benchmarks/{rule}/{job}.tsv``) of the finished jobs
of its rule and task, or of its rule where none of that task finished; a stage where no job finished
has no estimate yet.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from ptmbench.core import paths

log = logging.getLogger("ptmbench.io.progress")

EVERY_ENV = "PTMBENCH_PROGRESS_S"
DEFAULT_EVERY_S = 60.0
# environment switches that turn tqdm off (tqdm >= 4.66 reads TQDM_<argument>) and the Hugging Face bars
QUIET_ENV = {"TQDM_DISABLE": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}


def duration(seconds: float) -> str:
    """``seconds`` as ``45s``, ``3m05s``, ``2h40m`` or ``3d04h``."""
    s = int(round(max(seconds, 0.0)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def eta(done: float, total: float, elapsed: float) -> float | None:
    """Seconds left at the mean rate so far: ``elapsed / done * (total - done)``; None before any unit."""
    if done <= 0:
        return None
    return elapsed / done * max(total - done, 0)


def every_s() -> float:
    """Seconds between two progress lines: ``PTMBENCH_PROGRESS_S`` (0: every update), default 60."""
    raw = os.environ.get(EVERY_ENV)
    if raw is None or raw == "":
        return DEFAULT_EVERY_S
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{EVERY_ENV}={raw!r}: give the seconds between progress lines, e.g. 60") from None
    if value < 0:
        raise ValueError(f"{EVERY_ENV}={raw!r}: give seconds >= 0 (0: a line per update)")
    return value


class Progress:
    """Counts units of work (steps, batches, examples) and logs a line at most every ``every`` seconds
    (default :func:`every_s`) with the rate and the ETA, and one line when :meth:`finish` is called."""

    def __init__(self, what: str, total: int, unit: str = "steps", every: float | None = None,
                 logger: logging.Logger = log, clock=time.monotonic):
        self.what, self.total, self.unit = what, int(total), unit
        self.every = every_s() if every is None else float(every)
        self.log, self.clock = logger, clock
        self.start = self.last = clock()
        self.done = 0
        self.lines = 0

    def line(self, extra: str = "") -> str:
        elapsed = self.clock() - self.start
        pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        rate = f", {self.done / elapsed:.3g} {self.unit}/s" if elapsed > 0 and self.done else ""
        left = eta(self.done, self.total, elapsed)
        text = (f"{self.what}: {self.done}/{self.total} {self.unit}{pct}{rate}, elapsed {duration(elapsed)}, "
                f"ETA {duration(left) if left is not None else '?'}")
        return text + (f", {extra}" if extra else "")

    def update(self, done: int | None = None, n: int = 1, extra: str = "") -> None:
        """Set the units done (``done``) or add ``n``; log when ``every`` seconds passed since the last line."""
        self.done = int(done) if done is not None else self.done + n
        now = self.clock()
        if now - self.last >= self.every and self.done < self.total:
            self.last = now
            self.lines += 1
            self.log.info("%s", self.line(extra))

    def finish(self, extra: str = "") -> None:
        elapsed = self.clock() - self.start
        rate = f" ({self.done / elapsed:.3g} {self.unit}/s)" if elapsed > 0 and self.done else ""
        self.log.info("%s: %d/%d %s done in %s%s%s", self.what, self.done, self.total, self.unit,
                      duration(elapsed), rate, f", {extra}" if extra else "")


def trainer_callback(what: str, every: float | None = None):
    """A transformers ``TrainerCallback`` logging the optimiser steps through :class:`Progress`, with the
    latest training loss (imported here: only fine-tune jobs load transformers)."""
    from transformers import TrainerCallback

    class ProgressCallback(TrainerCallback):
        def __init__(self):
            self.progress = None

        def on_train_begin(self, args, state, control, **kwargs):
            self.progress = Progress(what, state.max_steps, "steps", every)

        def on_step_end(self, args, state, control, **kwargs):
            losses = [h["loss"] for h in state.log_history if "loss" in h]
            self.progress.update(state.global_step, extra=f"loss {losses[-1]:.4g}" if losses else "")

        def on_train_end(self, args, state, control, **kwargs):
            if self.progress is not None:
                self.progress.finish()

    return ProgressCallback()


def quiet_bars() -> None:
    """Switch tqdm progress bars off in this process (a job whose output goes to its log file): the
    environment switches for what is imported later, the libraries' own for what already is."""
    os.environ.update(QUIET_ENV)
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()
    if "transformers" in sys.modules:
        sys.modules["transformers"].utils.logging.disable_progress_bar()
    if "huggingface_hub" in sys.modules:
        sys.modules["huggingface_hub"].utils.disable_progress_bars()


# --------------------------------------------------------------------------------------------------
# Time left of a run, from the benchmark files of its finished jobs

def benchmark_seconds(path) -> float | None:
    """The mean ``s`` (wall seconds) over the rows of a Snakemake benchmark file; None when it is
    missing or unreadable (a job killed before Snakemake wrote it)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return None
    if len(lines) < 2:
        return None
    head = lines[0].split("\t")
    if "s" not in head:
        return None
    col = head.index("s")
    values = []
    for row in lines[1:]:
        cells = row.split("\t")
        try:
            values.append(float(cells[col]))
        except (IndexError, ValueError):
            continue
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class StageTime:
    stage: str
    done: int
    running: int  # incomplete: running now (or killed)
    failed: int
    to_run: int  # every job not done: missing, stale, failed, incomplete
    timed: int  # finished jobs with a benchmark file
    mean_s: float | None  # their mean seconds
    left_s: float | None  # the estimate of the job-seconds left; None when no job of the stage is timed
    unknown: int  # jobs to run of a rule with no timed job


def time_left(statuses, workdir=".") -> list[StageTime]:
    """Per stage (in :data:`ptmbench.paths.STAGES` order): counts and the job-seconds left (see the module)."""
    workdir = Path(workdir)
    by_rule_task, by_rule = defaultdict(list), defaultdict(list)
    for s in statuses:
        if s.state == "done":
            secs = benchmark_seconds(workdir / paths.fill(paths.BENCHMARK, rule=s.job.rule, job=s.job.name))
            if secs is not None:
                by_rule_task[(s.job.rule, s.job.task)].append(secs)
                by_rule[s.job.rule].append(secs)
    mean = {k: sum(v) / len(v) for k, v in by_rule_task.items()}
    rule_mean = {k: sum(v) / len(v) for k, v in by_rule.items()}
    out = []
    for stage in paths.STAGES:
        jobs = [s for s in statuses if s.job.stage == stage]
        if not jobs:
            continue
        left, unknown = 0.0, 0
        for s in jobs:
            if s.state == "done":
                continue
            est = mean.get((s.job.rule, s.job.task), rule_mean.get(s.job.rule))
            if est is None:
                unknown += 1
            else:
                left += est
        stage_secs = [x for r in {s.job.rule for s in jobs} for x in by_rule.get(r, [])]
        to_run = sum(s.state != "done" for s in jobs)
        out.append(StageTime(
            stage, sum(s.state == "done" for s in jobs), sum(s.state == "incomplete" for s in jobs),
            sum(s.state == "failed" for s in jobs), to_run, len(stage_secs),
            sum(stage_secs) / len(stage_secs) if stage_secs else None,
            None if to_run and unknown == to_run else left, unknown))
    return out


def format_time_left(rows: list[StageTime], jobs: int = 1) -> str:
    """The per-stage table of :func:`time_left`, and the total at ``jobs`` jobs side by side."""
    head = f"{'stage':<16}{'done':>7}{'running':>9}{'failed':>8}{'to run':>8}{'mean job':>10}{'left':>10}"
    lines = ["time left, from the benchmark files of finished jobs (benchmarks/{rule}/{job}.tsv): "
             "each job to run takes the mean time of its rule's finished jobs of the same task", head]
    total, unknown = 0.0, 0
    for r in rows:
        left = "-" if r.to_run == 0 else "?" if r.left_s is None else duration(r.left_s)
        if r.left_s is not None and r.unknown:
            left += "+?"
        mean = duration(r.mean_s) if r.mean_s is not None else "-"
        lines.append(f"{r.stage:<16}{r.done:>7}{r.running:>9}{r.failed:>8}{r.to_run:>8}{mean:>10}{left:>10}")
        total += r.left_s or 0.0
        unknown += r.unknown
    more = f", plus {unknown} job(s) of rules with no finished job yet (?)" if unknown else ""
    if jobs > 1:
        lines.append(f"left: {duration(total)} of job time, about {duration(total / jobs)} at {jobs} jobs at "
                     f"once{more}")
    else:
        lines.append(f"left: {duration(total)} of job time, one job at a time (--jobs N: N at once){more}")
    return "\n".join(lines)
