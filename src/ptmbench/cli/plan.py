"""Cost planner: jobs, GPU-hours and disk of a configuration, before anything runs (offline).

    python -m ptmbench.cli.plan --configfile config/config.yaml [--directory .] [--jobs 200] [--json]

The model and its constants: :mod:`ptmbench.cluster.plan` (and docs/cluster.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ptmbench.cluster.plan import DEFAULT_GPU, GPU_PEAK_FLOPS, format_plan, measured_seconds, plan
from ptmbench.core import tasks
from ptmbench.settings.config import ConfigError, load


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ptmbench.cli.plan", description=__doc__.split("\n\n")[0])
    ap.add_argument("--configfile", default="config/config.yaml")
    ap.add_argument("--directory", "-d", default=".", help="work directory (acquired models are read there)")
    ap.add_argument("--jobs", type=int, default=200, help="jobs in flight (for the merge.keep=false peak)")
    ap.add_argument("--gpu", default=DEFAULT_GPU, metavar="|".join(GPU_PEAK_FLOPS),
                    help="GPU kind: its bf16 peak sets the FLOP floor and the model's FLOP time (default: %(default)s)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    try:
        config = load(args.configfile)
        tasks.configure(config)  # the custom tasks of this config
        p = plan(config, Path(args.directory), args.jobs, args.gpu)
    except (ConfigError, ValueError, ModuleNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    measured = measured_seconds(Path(args.directory))
    if args.json:
        print(json.dumps(p | {"measured_seconds": measured}, indent=1))
    else:
        print(format_plan(p, measured))
    return 0


if __name__ == "__main__":
    sys.exit(main())
