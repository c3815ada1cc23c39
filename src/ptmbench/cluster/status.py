"""Where a run stands, per stage and base model, without running anything.

    python -m ptmbench.cli.status --configfile config/config.yaml [--directory .] [--json] [--verify] [--jobs N]

Every job the config implies (:func:`ptmbench.core.paths.jobs`) is put in one state:

- ``incomplete``: Snakemake marked an output as started and not finished
  (``.snakemake/incomplete/``): the job is running now, or it was killed
  (rerun with ``--rerun-incomplete``);
- ``done``: every output exists and is up to date (temp outputs that were already removed count
  as done when the job's log ends with the job wrapper's ``done in`` line);
- ``stale``: every output exists, but an input is missing, newer than the oldest output, or about
  to be rebuilt (its own job is not done): Snakemake reruns the job. Times are Snakemake's: a
  directory is dated by its ``.snakemake_timestamp`` file when it has one, else by its own mtime;
  a removed temp() input whose job is done does not count as missing;
- ``failed``: an output is missing and the job's log exists but does not end in success: it holds
  an error or traceback after the last ``done in`` line, or it stops without one (a job killed by
  the scheduler, e.g. out of memory or past its time limit: see the scheduler's log);
- ``missing``: not run yet.

Only ``stat`` calls for the ~12,700 jobs of the paper config (each path once), plus reading the
logs of jobs whose outputs are missing and a walk of ``results/`` and ``resources/`` for temporaries
that killed jobs left (:func:`ptmbench.io.provenance.is_temp`). ``--verify`` also reads every output:
it re-hashes the files whose SHA-256 an output's provenance records and parses JSON outputs.

Below the tables, per stage: done / running (incomplete) / failed jobs and an estimate of the time left
from the finished jobs' benchmark files (:func:`ptmbench.io.progress.time_left`; ``--jobs N``: N at once).
"""

from __future__ import annotations

import base64
import json
import os
import re
import sqlite3
import stat
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ptmbench.core import paths
from ptmbench.io.provenance import is_temp, sha256

STATES = ("done", "stale", "failed", "incomplete", "missing")
_ERROR = re.compile(r"Traceback \(most recent call last\)|\b\w*(?:Error|Exception)\b|\bfailed after\b|Killed")
_DONE = re.compile(r"\bdone in [\d.]+ s\b")
_TAIL = 65536  # bytes of a log read from its end


@dataclass(frozen=True)
class JobStatus:
    job: paths.Job
    state: str
    reason: str = ""  # failed jobs: the last error line of the log; stale jobs: which input and why


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


class Mtimes:
    """Snakemake's modification time of workflow paths, one ``stat`` per path (cached).

    A directory is dated by its ``.snakemake_timestamp`` file (Snakemake writes it into every
    directory output when the job finishes) when it has one, else by the directory's own mtime,
    so replacing files inside a finished directory output does not make it newer.
    """

    def __init__(self, workdir: str | Path):
        self.workdir = str(workdir)
        self._cache: dict[str, float | None] = {}

    def __call__(self, rel: str) -> float | None:
        """The mtime of ``rel`` (relative to the workdir), None when it does not exist."""
        try:
            return self._cache[rel]
        except KeyError:
            pass
        path = os.path.join(self.workdir, rel)
        try:
            st = os.stat(path)
        except OSError:
            mtime = None
        else:
            mtime = st.st_mtime
            if stat.S_ISDIR(st.st_mode):
                try:
                    mtime = os.stat(os.path.join(path, ".snakemake_timestamp")).st_mtime
                except OSError:
                    pass
        self._cache[rel] = mtime
        return mtime


def _stale_reason(job: paths.Job, oldest_output: float, mtime: Mtimes, producers: dict[str, JobStatus]) -> str:
    """Why a job whose outputs all exist would be rerun by Snakemake ('' when it would not)."""
    missing, rebuilt, newer = [], [], []
    for i in job.input_files:
        producer = producers.get(i)
        m = mtime(i)
        if m is None:
            if producer is not None and producer.state == "done" and producer.job.temp:
                continue  # a temp() input removed once its consumers ran
            missing.append(i)
        elif producer is not None and producer.state != "done":
            rebuilt.append(f"{i} ({producer.state})")
        elif m > oldest_output:
            newer.append(i)
    for found, why in ((missing, "missing"), (rebuilt, "to be rebuilt"), (newer, "newer than the output")):
        if found:
            more = f" and {len(found) - 1} more" if len(found) > 1 else ""
            return f"input {why}: {found[0]}{more}"
    return ""


def job_status(job: paths.Job, workdir: Path, incomplete: set[str], mtime: Mtimes | None = None,
               producers: dict[str, JobStatus] | None = None) -> JobStatus:
    """The state of ``job``; ``producers`` maps each output path of the jobs before it to their status."""
    mtime = mtime or Mtimes(workdir)
    if any(os.path.normpath(o) in incomplete for o in job.outputs):
        return JobStatus(job, "incomplete")
    times = [mtime(o) for o in job.outputs]
    if all(t is not None for t in times):
        reason = _stale_reason(job, min(times), mtime, producers or {})
        return JobStatus(job, "stale", reason) if reason else JobStatus(job, "done")
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
    mtime = Mtimes(workdir)
    producers: dict[str, JobStatus] = {}
    out = []
    for job in paths.jobs(paths.Zoo.from_config(config)):  # producers before consumers
        s = job_status(job, workdir, incomplete, mtime, producers)
        producers.update(dict.fromkeys(job.outputs, s))
        out.append(s)
    return out


# --------------------------------------------------------------------------------------------------
# --verify: outputs whose contents changed since they were written

HASH_RECORDS = ("provenance.json", "merge.json")  # files of a directory output that may hold `sha256`
MANIFEST = "MANIFEST.json"  # the export's record: {"files": {relative path: {"sha256": ...}}}
FIX = ("delete it and rerun snakemake to rebuild it and what depends on it (Snakemake dates outputs, "
       "it does not notice changed contents)")


@dataclass(frozen=True)
class Problem:
    path: str  # the output, relative to the workdir
    kind: str  # "modified" (a file differs from its recorded SHA-256, or is gone) or "corrupt"
    detail: str
    job: paths.Job


def _load_json(path: Path):
    """(object, None) or (None, why it is not readable JSON)."""
    try:
        return json.loads(path.read_bytes()), None
    except (OSError, ValueError) as err:
        return None, f"{type(err).__name__}: {err}"[:200]


def _recorded_hashes(directory: Path) -> tuple[dict[str, str], str, str | None]:
    """({relative path: SHA-256}, the record it comes from, why that record is unreadable or None)."""
    for name in (*HASH_RECORDS, MANIFEST):
        rec = directory / name
        if not rec.is_file():
            continue
        obj, why = _load_json(rec)
        if why:
            return {}, name, why
        if not isinstance(obj, dict):
            return {}, name, "not a JSON object"
        if name == MANIFEST and isinstance(obj.get("files"), dict):
            return {f: v.get("sha256") for f, v in obj["files"].items() if isinstance(v, dict)}, name, None
        if isinstance(obj.get("sha256"), dict):
            return obj["sha256"], name, None
    return {}, "", None


def _check_hashes(root: Path, hashes: dict[str, str], record: str) -> str:
    bad = []
    for rel, digest in sorted(hashes.items()):
        path = root / rel
        if not path.is_file():
            bad.append(f"{rel} is missing")
        elif sha256(path) != digest:
            bad.append(f"{rel} differs from the SHA-256 in {record}")
    if not bad:
        return ""
    return "; ".join(bad[:3]) + (f"; and {len(bad) - 3} more" if len(bad) > 3 else "")


def verify_output(rel: str, workdir: Path, job: paths.Job) -> Problem | None:
    """Re-hash the files an output's provenance lists; parse JSON outputs. None when it is intact."""
    path = workdir / rel
    if path.is_dir():
        hashes, record, why = _recorded_hashes(path)
        if why:
            return Problem(rel, "corrupt", f"{record} is not readable JSON ({why})", job)
        detail = _check_hashes(path, hashes, record)
        return Problem(rel, "modified", detail, job) if detail else None
    if path.suffix == ".json":
        _, why = _load_json(path)
        if why:
            return Problem(rel, "corrupt", f"not readable JSON ({why})", job)
    prov = path.parent / "provenance.json"  # files beside their record (e.g. SQuAD v2)
    if path.name != prov.name and prov.is_file():
        obj, why = _load_json(prov)
        digest = (obj.get("sha256") or {}).get(path.name) if isinstance(obj, dict) else None
        if digest and sha256(path) != digest:
            return Problem(rel, "modified", f"differs from the SHA-256 in {prov.relative_to(workdir)}", job)
    return None


def verify(statuses, workdir: str | Path = ".") -> list[Problem]:
    """Every modified or corrupt output of the jobs whose outputs exist (done or stale)."""
    workdir = Path(workdir)
    problems = []
    for s in statuses:
        if s.state in ("done", "stale"):
            for o in s.job.outputs:
                if (p := verify_output(o, workdir, s.job)) is not None:
                    problems.append(p)
    return problems


# --------------------------------------------------------------------------------------------------
# Temporaries left by killed jobs

TEMP_TREES = ("results", "resources")


def _tree_size(path: str) -> int:
    total = 0
    stack = [path]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
                    else:
                        total += e.stat(follow_symlinks=False).st_size
        except OSError:
            continue
    return total


def leftover_temps(workdir: str | Path = ".") -> list[tuple[str, int]]:
    """(path relative to ``workdir``, bytes) of every temporary the atomic writers left under
    ``results/`` and ``resources/`` (files or directories named ``.{name}.<random>.tmp``)."""
    workdir = str(workdir)
    found = []
    stack = [os.path.join(workdir, t) for t in TEMP_TREES]
    while stack:
        try:
            it = os.scandir(stack.pop())
        except OSError:
            continue
        with it:
            for e in it:
                is_dir = e.is_dir(follow_symlinks=False)
                if is_temp(e.name):
                    size = _tree_size(e.path) if is_dir else e.stat(follow_symlinks=False).st_size
                    found.append((os.path.relpath(e.path, workdir), size))
                elif is_dir:
                    stack.append(e.path)
    return sorted(found)


def _bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


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
    for state, letter in (("stale", "S"), ("failed", "F"), ("incomplete", "I")):
        if c[state]:
            text += f" {c[state]}{letter}"
    return text


def _listing(statuses, state: str, title: str, max_listed: int, what) -> list[str]:
    found = [s for s in statuses if s.state == state]
    if not found:
        return []
    lines = ["", f"{title} ({len(found)})"]
    lines += [f"  {s.job.rule:<16} {s.job.name}  {what(s)}" for s in found[:max_listed]]
    if len(found) > max_listed:
        lines.append(f"  ... and {len(found) - max_listed} more (--max-failed 0 lists all)")
    return lines


def format_table(statuses, max_failed: int = 50) -> str:
    """The stage totals, the stage x base model matrix, the failed jobs with their logs, stale jobs."""
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
    lines += ["", "done/total per base model and stage (S stale, F failed, I incomplete)",
              f"{'base model':<{width}}" + "".join(f"{st:>{widths[st]}}" for st in stages)]
    for b in bases:
        lines.append(f"{b:<{width}}" + "".join(f"{cells[(st, b)]:>{widths[st]}}" for st in stages))
    lines += _listing(statuses, "failed", "failed jobs: rule, job, log, last error", max_failed,
                      lambda s: f"{s.job.log}  {s.reason}")
    lines += _listing(statuses, "stale", "stale jobs, rerun by the next snakemake run: rule, job, why", max_failed,
                      lambda s: s.reason)
    incomplete = [s for s in statuses if s.state == "incomplete"]
    if incomplete:
        lines += ["", f"{len(incomplete)} job(s) incomplete: running now, or killed "
                  "(snakemake --rerun-incomplete reruns them)"]
    return "\n".join(lines)


def format_temps(temps: list[tuple[str, int]], max_listed: int = 50) -> str:
    if not temps:
        return ""
    total = sum(size for _, size in temps)
    lines = [f"{len(temps)} temporary file(s)/folder(s), {_bytes(total)}, left by killed jobs; the rerun of "
             "the job removes them, or delete them while no job runs in this directory:"]
    lines += [f"  {_bytes(size):>10}  {path}" for path, size in temps[:max_listed]]
    if len(temps) > max_listed:
        lines.append(f"  ... and {len(temps) - max_listed} more (--max-failed 0 lists all)")
    return "\n".join(lines)


def format_problems(problems: list[Problem]) -> str:
    if not problems:
        return "verified: every output that records SHA-256 checksums matches them; every JSON output parses"
    lines = [f"{len(problems)} modified or corrupt output(s): for each, {FIX}"]
    lines += [f"  {p.kind:<9} {p.path}  ({p.job.rule} {p.job.name}): {p.detail}" for p in problems]
    return "\n".join(lines)


def as_json(statuses, temps=None, problems=None) -> dict:
    c = counts(statuses)
    out = {
        "totals": {st: dict(c[(st, "*")]) for st in [*paths.STAGES, "*"] if (st, "*") in c},
        "per_base": {f"{st}|{b}": dict(v) for (st, b), v in c.items() if "*" not in (st, b)},
        "failed": [{"rule": s.job.rule, "job": s.job.name, "log": s.job.log, "reason": s.reason}
                   for s in statuses if s.state == "failed"],
        "stale": [{"rule": s.job.rule, "job": s.job.name, "reason": s.reason}
                  for s in statuses if s.state == "stale"],
        "incomplete": [{"rule": s.job.rule, "job": s.job.name} for s in statuses if s.state == "incomplete"],
    }
    if temps is not None:
        out["temporaries"] = [{"path": p, "bytes": n} for p, n in temps]
    if problems is not None:
        out["verify"] = [{"path": p.path, "kind": p.kind, "detail": p.detail, "rule": p.job.rule,
                          "job": p.job.name} for p in problems]
    return out
