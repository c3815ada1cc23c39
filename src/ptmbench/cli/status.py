"""Where a run stands, per stage and base model, without running anything.

    python -m ptmbench.cli.status --configfile config/config.yaml [--directory .] [--json] [--verify] [--jobs N]

The states and how they are found: :mod:`ptmbench.cluster.status`; below the tables, per stage, the time
left estimated from the finished jobs' benchmark files (:func:`ptmbench.io.progress.time_left`; ``--jobs N``: N
at once).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from ptmbench.cluster.status import (
    as_json,
    collect,
    format_problems,
    format_table,
    format_temps,
    leftover_temps,
    verify,
)
from ptmbench.core import tasks
from ptmbench.io import progress
from ptmbench.settings.config import ConfigError, load


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ptmbench.cli.status", description=__doc__.split("\n")[0])
    ap.add_argument("--configfile", required=True, help="the workflow config (e.g. config/config.yaml)")
    ap.add_argument("--directory", "-d", default=".", help="the Snakemake working directory (default: .)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of tables")
    ap.add_argument("--max-failed", type=int, default=50, help="failed / stale jobs and temporaries to list (0: all)")
    ap.add_argument("--verify", action="store_true",
                    help="re-hash outputs against the SHA-256 their provenance records and parse JSON outputs "
                         "(reads every weight file: slow); exit status 1 when one is modified or corrupt")
    ap.add_argument("--jobs", "-j", type=int, default=1,
                    help="jobs run side by side, for the estimate of the time left (default 1)")
    args = ap.parse_args(argv)
    try:
        config = load(args.configfile)
        tasks.configure(config)  # the custom tasks of this config
    except (OSError, yaml.YAMLError, ConfigError) as err:
        print(f"ptmbench.cli.status: cannot read config {args.configfile}: {err}", file=sys.stderr)
        return 2
    if not Path(args.directory).is_dir():
        print(f"ptmbench.cli.status: working directory {args.directory} does not exist", file=sys.stderr)
        return 2
    statuses = collect(config, args.directory)
    temps = leftover_temps(args.directory)
    problems = verify(statuses, args.directory) if args.verify else None
    left = progress.time_left(statuses, args.directory)
    if args.json:
        print(json.dumps({**as_json(statuses, temps, problems), "time_left": [vars(r) for r in left]}, indent=1))
    else:
        limit = args.max_failed or len(statuses) + len(temps)
        parts = [format_table(statuses, max_failed=limit), progress.format_time_left(left, max(args.jobs, 1)),
                 format_temps(temps, limit)]
        if problems is not None:
            parts.append(format_problems(problems))
        print("\n\n".join(p for p in parts if p))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
