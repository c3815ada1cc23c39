"""Where a run stands, per stage and base model, without running anything.

    python -m ptmbench.status --configfile config/config.yaml [--directory .] [--json]

Every job the config implies (:func:`ptmbench.paths.jobs`) is put in one state:

- ``incomplete``: Snakemake marked an output as started and not finished
  (``.snakemake/incomplete/``): the job is running now, or it was killed
  (rerun with ``--rerun-incomplete``);
- ``done``: every output exists (temp outputs that were already removed count as done when the
  job's log ends with the job wrapper's ``done in`` line);
- ``failed``: an output is missing and the job's log exists but does not end in success: it holds
  an error or traceback after the last ``done in`` line, or it stops without one (a job killed by
  the scheduler, e.g. out of memory or past its time limit: see the scheduler's log);
- ``missing``: not run yet.

Only ``stat`` calls for the ~11,700 outputs of the paper config, plus reading the logs of jobs
whose outputs are missing.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import sqlite3
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from ptmbench import paths
from ptmbench.config import ConfigError, validate

STATES = ("done", "failed", "incomplete", "missing")
_ERROR = re.compile(r"Traceback \(most recent call last\)|\b\w*(?:Error|Exception)\b|\bfailed after\b|Killed")
_DONE = re.compile(r"\bdone in [\d.]+ s\b")
_TAIL = 65536  # bytes of a log read from its end


@dataclass(frozen=True)
class JobStatus:
    job: paths.Job
    state: str
    reason: str = ""  # for failed jobs: the last error line of the log


def incomplete_outputs(workdir: str | Path) -> set[str]:
    """Outputs Snakemake marked as started and not finished, as paths relative to ``workdir``.

    Snakemake 9's default file persistence writes one empty-ish record per output under
    ``.snakemake/incomplete/``: the urlsafe-base64 of the output path, cut into chunks of at most
    NAME_MAX - 1 characters, every chunk but the last prefixed by ``@`` and made a directory.
    The optional database backend (``--persistence-backend db``) keeps the flag in
    ``.snakemake/metadata.db`` (table ``snakemake_metadata``; that file serves one workdir).
    """
    workdir = Path(workdir)
    root = workdir / ".snakemake" / "incomplete"
    keys: set[str] = set()
    for dirpath, _, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root).parts
        prefix = "".join(p[1:] for p in rel if p.startswith("@"))
        for f in filenames:
            if f == "migration_underway":
                continue
            try:
                keys.add(base64.urlsafe_b64decode(prefix + f).decode())
            except ValueError:
                continue
    db = workdir / ".snakemake" / "metadata.db"
    if db.is_file():
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            try:
                rows = conn.execute("SELECT target FROM snakemake_metadata WHERE incomplete = 1").fetchall()
            except sqlite3.Error:
                rows = []
        keys.update(r[0] for r in rows)
    return {os.path.normpath(k) for k in keys}


def _log_verdict(log: Path) -> tuple[str, str] | None:
    """None when the log ends in success; else ('failed', the last error line or a hint)."""
    with open(log, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - _TAIL))
        text = fh.read().decode(errors="replace")
    done = list(_DONE.finditer(text))
    after = text[done[-1].end():] if done else text
    errors = [ln.strip() for ln in after.splitlines() if _ERROR.search(ln)]
    if errors:
        named = [ln for ln in errors if not ln.startswith("Traceback")]
        return "failed", (named or errors)[-1][:200]
    if done:
        return None
    return "failed", "log ends without finishing (killed? see the scheduler's log)"


def job_status(job: paths.Job, workdir: Path, incomplete: set[str]) -> JobStatus:
    if any(os.path.normpath(o) in incomplete for o in job.outputs):
        return JobStatus(job, "incomplete")
    if all(os.path.exists(workdir / o) for o in job.outputs):
        return JobStatus(job, "done")
    log = workdir / job.log
    if not os.path.exists(log):
        return JobStatus(job, "missing")
    verdict = _log_verdict(log)
    if verdict is None:
        # It finished, and its outputs are gone: removed as temp(), or deleted since.
        return JobStatus(job, "done" if job.temp else "missing")
    return JobStatus(job, *verdict)


def collect(config: dict, workdir: str | Path = ".") -> list[JobStatus]:
    """The state of every job of the full DAG of ``config`` (validated) in ``workdir``."""
    workdir = Path(workdir)
    incomplete = incomplete_outputs(workdir)
    return [job_status(j, workdir, incomplete) for j in paths.jobs(paths.Zoo.from_config(config))]


def counts(statuses) -> dict[tuple[str, str], Counter]:
    """(stage, base) -> Counter of states; also (stage, '*') and ('*', '*') totals."""
    out: dict[tuple[str, str], Counter] = {}
    for s in statuses:
        for key in ((s.job.stage, s.job.base), (s.job.stage, "*"), ("*", "*")):
            out.setdefault(key, Counter())[s.state] += 1
    return out


def _cell(c: Counter) -> str:
    total = sum(c.values())
    if not total:
        return "-"
    text = f"{c['done']}/{total}"
    if c["failed"]:
        text += f" {c['failed']}F"
    if c["incomplete"]:
        text += f" {c['incomplete']}I"
    return text


def format_table(statuses, max_failed: int = 50) -> str:
    """The stage totals, the stage x base model matrix and the failed jobs with their logs."""
    c = counts(statuses)
    stages = [s for s in paths.STAGES if (s, "*") in c]
    lines = [f"{'stage':<16}" + "".join(f"{h:>11}" for h in (*STATES, "total"))]
    for st in [*stages, "*"]:
        row = c[(st, "*")]
        label = "all stages" if st == "*" else st
        lines.append(f"{label:<16}" + "".join(f"{row[h]:>11}" for h in STATES) + f"{sum(row.values()):>11}")
    bases = list(dict.fromkeys(s.job.base for s in statuses if s.job.base not in (paths.DATA, paths.ALL)))
    bases += [b for b in (paths.DATA, paths.ALL) if any(s.job.base == b for s in statuses)]
    width = max([len(b) for b in bases] + [10]) + 1
    cells = {(st, b): _cell(c.get((st, b), Counter())) for st in stages for b in bases}
    widths = {st: max(len(st), *(len(cells[(st, b)]) for b in bases)) + 2 for st in stages}
    lines += ["", "done/total per base model and stage (F failed, I incomplete)",
              f"{'base model':<{width}}" + "".join(f"{st:>{widths[st]}}" for st in stages)]
    for b in bases:
        lines.append(f"{b:<{width}}" + "".join(f"{cells[(st, b)]:>{widths[st]}}" for st in stages))
    failed = [s for s in statuses if s.state == "failed"]
    if failed:
        lines += ["", f"failed jobs ({len(failed)}): rule, job, log, last error"]
        for s in failed[:max_failed]:
            lines.append(f"  {s.job.rule:<16} {s.job.name}  {s.job.log}  {s.reason}")
        if len(failed) > max_failed:
            lines.append(f"  ... and {len(failed) - max_failed} more (--max-failed 0 lists all)")
    incomplete = [s for s in statuses if s.state == "incomplete"]
    if incomplete:
        lines += ["", f"{len(incomplete)} job(s) incomplete: running now, or killed "
                  "(snakemake --rerun-incomplete reruns them)"]
    return "\n".join(lines)


def as_json(statuses) -> dict:
    c = counts(statuses)
    return {
        "totals": {st: dict(c[(st, "*")]) for st in [*paths.STAGES, "*"] if (st, "*") in c},
        "per_base": {f"{st}|{b}": dict(v) for (st, b), v in c.items() if "*" not in (st, b)},
        "failed": [{"rule": s.job.rule, "job": s.job.name, "log": s.job.log, "reason": s.reason}
                   for s in statuses if s.state == "failed"],
        "incomplete": [{"rule": s.job.rule, "job": s.job.name} for s in statuses if s.state == "incomplete"],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ptmbench.status", description=__doc__.split("\n")[0])
    ap.add_argument("--configfile", required=True, help="the workflow config (e.g. config/config.yaml)")
    ap.add_argument("--directory", "-d", default=".", help="the Snakemake working directory (default: .)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of tables")
    ap.add_argument("--max-failed", type=int, default=50, help="failed jobs to list (0: all)")
    args = ap.parse_args(argv)
    try:
        config = validate(yaml.safe_load(Path(args.configfile).read_text()))
    except (OSError, yaml.YAMLError, ConfigError) as err:
        print(f"ptmbench.status: cannot read config {args.configfile}: {err}", file=sys.stderr)
        return 2
    if not Path(args.directory).is_dir():
        print(f"ptmbench.status: working directory {args.directory} does not exist", file=sys.stderr)
        return 2
    statuses = collect(config, args.directory)
    if args.json:
        print(json.dumps(as_json(statuses), indent=1))
    else:
        print(format_table(statuses, max_failed=args.max_failed or len(statuses)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
