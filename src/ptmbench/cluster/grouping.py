"""Slurm job grouping: how many cluster submissions a run makes with the Slurm profile's job groups.

The Slurm profile (``profiles/slurm/config.yaml``, the one source of truth) packs short jobs into
Snakemake *group jobs*, each submitted as ONE Slurm job:

- ``groups:`` maps a rule to a group name, a template of the rule's wildcards (``logme_{ptm}``: the
  LogME jobs of one PTM share a group name);
- ``group-components:`` maps a group template to N: up to N connected components of the DAG that
  share one group name become one group job.

How Snakemake forms them (``snakemake.dag.DAG.update_groups`` / ``_update_group_components``, 9.x):
among the jobs that need to run, the jobs of one resolved group name that are connected by
dependencies form one component; the components of a name are cut into chunks of at most N (the
template's ``group-components``, default 1), each chunk one group job. So a name with C components
gives ceil(C / N) submissions; every job outside a group is its own submission (the target rule
``all`` runs in the main process). Which components share a chunk is Snakemake's (set) order; the
count is not.

:func:`submissions` counts this from the workflow's job list (:func:`ptmbench.core.paths.jobs`) without
Snakemake; ``tests/test_grouping.py`` checks it against Snakemake's own plan and ``tests/test_slurm.py``
against the ``sbatch`` calls of a real run.
"""

from __future__ import annotations

import math
import string
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ptmbench.core import paths

PROFILE = Path(__file__).resolve().parents[3] / "profiles" / "slurm" / "config.yaml"
LOCAL_RULES = frozenset({"all"})  # run by the main Snakemake process, never submitted


@dataclass(frozen=True)
class Grouping:
    """The job groups of a profile: rule -> group template, group template -> components per job."""

    groups: Mapping[str, str] = field(default_factory=dict)
    components: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self):
        for rule, template in self.groups.items():
            if rule not in paths.JOB_NAMES:
                raise ValueError(f"groups: unknown rule {rule!r}; rules: {', '.join(paths.RULES)}")
            names = {n for _, n, _, _ in string.Formatter().parse(template) if n}
            allowed = set(_wildcard_names(rule))
            if not names <= allowed:
                raise ValueError(f"groups: {rule}={template}: {sorted(names - allowed)} are no wildcards of "
                                 f"rule {rule} (it has: {sorted(allowed) or 'none'})")
        for template, n in self.components.items():
            if template not in self.groups.values():
                raise ValueError(f"group-components: {template!r} is no group of `groups:` "
                                 f"({', '.join(sorted(set(self.groups.values()))) or 'none'})")
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise ValueError(f"group-components: {template}={n!r} must be a positive integer")

    @classmethod
    def from_profile(cls, profile: str | Path = PROFILE) -> Grouping:
        """The groups of a Snakemake profile (its folder or its config.yaml)."""
        import yaml

        path = Path(profile)
        path = path / "config.yaml" if path.is_dir() else path
        settings = yaml.safe_load(path.read_text()) or {}
        return cls(groups=_mapping(settings.get("groups"), str, path, "groups"),
                   components=_mapping(settings.get("group-components"), int, path, "group-components"))

    def group_of(self, rule: str, wildcards: Mapping[str, str]) -> str | None:
        """The resolved group name of one job (None: not grouped)."""
        template = self.groups.get(rule)
        return None if template is None else template.format(**wildcards)


def _mapping(value, kind, path: Path, key: str) -> dict:
    """A profile key given as a mapping or as Snakemake's list of "KEY=VALUE" strings."""
    if value is None:
        return {}
    if isinstance(value, list):
        value = dict(item.split("=", 1) for item in value)
    if not isinstance(value, dict):
        raise ValueError(f"{path}: `{key}` must be a mapping, not {value!r}")
    return {str(k): kind(v) for k, v in value.items()}


def _wildcard_names(rule: str) -> list[str]:
    return [n for _, n, _, _ in string.Formatter().parse(paths.JOB_NAMES[rule]) if n]


def wildcards(job: paths.Job) -> dict[str, str]:
    """The wildcards of a planned job (kept by :func:`ptmbench.core.paths.jobs`, never parsed back from its name)."""
    return dict(job.wildcards)


def submissions(jobs: Iterable[paths.Job] | paths.Zoo, grouping: Grouping | None = None) -> dict[str, int]:
    """Cluster submissions per stage (``paths.STAGES``) and ``total``, as Snakemake forms group jobs.

    ``jobs``: the jobs that need to run (e.g. ``paths.jobs(zoo)`` for a fresh run), or a Zoo for all of
    its jobs; ``grouping``: the profile's groups (default: ``profiles/slurm``; ``Grouping()`` for none).
    A group job holding jobs of several stages is counted under its first job's stage.
    """
    grouping = Grouping.from_profile() if grouping is None else grouping
    jobs = paths.jobs(jobs) if isinstance(jobs, paths.Zoo) else jobs
    counts: Counter[str] = Counter({stage: 0 for stage in paths.STAGES})
    members: dict[str, list[paths.Job]] = defaultdict(list)  # resolved group name -> its jobs
    for job in jobs:
        if job.rule in LOCAL_RULES:
            continue
        if job.rule in grouping.groups:
            members[grouping.group_of(job.rule, wildcards(job))].append(job)
        else:
            counts[job.stage] += 1
    for group in members.values():
        n = grouping.components.get(grouping.groups[group[0].rule], 1)
        counts[group[0].stage] += math.ceil(len(_components(group)) / n)
    return {**counts, "total": sum(counts.values())}


def _components(group: list[paths.Job]) -> list[set[int]]:
    """Connected components of the jobs of one group name (an output of one is an input of another)."""
    parent = list(range(len(group)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    writer = {out: i for i, job in enumerate(group) for out in job.outputs}
    for i, job in enumerate(group):
        for f in job.input_files:
            j = writer.get(f)
            if j is not None:
                parent[find(i)] = find(j)
    comps: dict[int, set[int]] = defaultdict(set)
    for i in range(len(group)):
        comps[find(i)].add(i)
    return list(comps.values())
