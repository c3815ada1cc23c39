"""Is NAME a base model, PTM, task pair or task of the config?

    python -m ptmbench.cli.naming NAME [NAME ...] [--configfile config/config.yaml]

says whether NAME is a base model, PTM, task pair or task of the config (a NAME with a ``/`` is
checked as a target path, :func:`ptmbench.core.paths.target_problem`) and, if not, the nearest valid
names and the fixed task order (:func:`ptmbench.core.naming.check_name`). The Snakefile runs the same
check on the targets it is asked for.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from ptmbench.core import paths, tasks
from ptmbench.core.naming import check_name
from ptmbench.settings.config import ConfigError, load


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ptmbench.cli.naming",
        description="Is NAME a base model, PTM, task pair or task of the config (or a path the workflow "
                    "writes, for names with a '/')? If not, the nearest valid names.")
    ap.add_argument("names", nargs="+", metavar="NAME")
    ap.add_argument("--configfile", default="config/config.yaml", help="default: config/config.yaml")
    args = ap.parse_args(argv)
    try:
        config = load(args.configfile)
        tasks.configure(config)  # the custom tasks of this config
        zoo = paths.Zoo.from_config(config)
    except (OSError, ValueError, yaml.YAMLError, ConfigError) as err:
        print(f"ptmbench.cli.naming: cannot read config {args.configfile}: {err}", file=sys.stderr)
        return 2
    bad = 0
    for name in args.names:
        if "/" in name:
            problem = paths.target_problem(name, zoo, exists=lambda p: Path(p).exists())
            print(problem or f"{name!r} is a path the workflow writes for this config")
        else:
            check = check_name(name, zoo)
            problem = None if check.ok else check
            print(check.message())
        bad += problem is not None
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
