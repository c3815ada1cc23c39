"""Jobs and Slurm submissions per stage, with and without the Slurm profile's job groups.

    python -m ptmbench.cli.grouping [--configfile F] [--profile DIR]

How submissions are counted: :mod:`ptmbench.cluster.grouping`.
"""

from __future__ import annotations

import argparse

from ptmbench.cluster.grouping import PROFILE, Grouping, submissions
from ptmbench.core import paths, tasks
from ptmbench.settings.config import load


def main(argv=None) -> int:
    """``python -m ptmbench.cli.grouping [--configfile F] [--profile DIR]``: jobs and Slurm submissions per stage."""
    ap = argparse.ArgumentParser(prog="python -m ptmbench.cli.grouping", description=main.__doc__)
    ap.add_argument("--configfile", default="config/config.yaml")
    ap.add_argument("--profile", default=str(PROFILE.parent), help="a Snakemake profile folder (default: %(default)s)")
    args = ap.parse_args(argv)
    try:
        config = load(args.configfile)
        tasks.configure(config)  # the custom tasks of this config
        zoo = paths.Zoo.from_config(config)
        jobs = list(paths.jobs(zoo))
        before, after = submissions(jobs, Grouping()), submissions(jobs, Grouping.from_profile(args.profile))
    except (OSError, ValueError) as err:
        print(f"error: {err}")
        return 1
    print(f"{'stage':<18}{'jobs':>8}{'submissions':>13}")
    for stage in [*paths.STAGES, "total"]:
        print(f"{stage:<18}{before[stage]:>8}{after[stage]:>13}")
    print(f"(jobs: cluster jobs, the target rule `all` runs locally; groups of {args.profile})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
