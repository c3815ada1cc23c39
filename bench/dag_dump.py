"""Dump every job Snakemake plans (dry run) as sorted JSON lines, to check that a change to the rule
files leaves the DAG identical (a refactor for planning speed, say).

    PYTHONPATH=$PWD/src python bench/dag_dump.py /tmp/after.jsonl --configfile config/config.yaml
    git stash; PYTHONPATH=$PWD/src python bench/dag_dump.py /tmp/before.jsonl --configfile config/config.yaml
    git stash pop; cmp /tmp/before.jsonl /tmp/after.jsonl

Per job: rule, wildcards, outputs, inputs (with their names), log, benchmark, threads, params, the
resources of attempts 1, 2 and 3 (retries), the conda environment file, whether it runs locally and
its outputs' flags (directory, temp). The arguments after the output file go to ``snakemake -n``.
"""

from __future__ import annotations

import json
import sys


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return str(value)


def _named(io) -> dict:
    """An input/output/params container as {name or position: value}."""
    names = {index: name for name, (index, _end) in io._names.items()} if hasattr(io, "_names") else {}
    return {names.get(i, str(i)): _plain(v) for i, v in enumerate(io)}


def main(argv: list[str]) -> int:
    out, argv = argv[0], argv[1:]
    from snakemake import cli
    from snakemake.executors import dryrun

    records = []
    original = dryrun.Executor.printjob

    def record(self, job):
        rule = job.rule
        records.append(json.dumps({
            "rule": rule.name,
            "wildcards": _plain(dict(job.wildcards_dict)),
            "output": _named(job.output),
            "output_flags": {str(f): sorted(getattr(f, "flags", {})) for f in job.output},
            "input": _named(job.input),
            "log": _named(job.log),
            "benchmark": _plain(job.benchmark),
            "threads": job.threads,
            "params": _named(job.params),
            "resources": {a: _plain(dict(rule.expand_resources(job.wildcards_dict, job.input, a)))
                          for a in (1, 2, 3)},
            "conda": _plain(rule.conda_env),
            "local": job.is_local,
        }, sort_keys=True))
        return original(self, job)

    dryrun.Executor.printjob = record
    try:
        cli.main(["-n", "--nolock", *argv])
    except SystemExit as end:
        if end.code:
            return int(end.code)
    finally:
        with open(out, "w") as fh:
            fh.write("".join(r + "\n" for r in sorted(records)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
