"""The zoo a config implies and every job's output, input and log paths, without Snakemake.

:class:`Zoo` turns a validated config into the name lists the rules use (MODELS, UNSEEN, BASES,
TASKS, GLUE, PAIRS, RATIOS, MERGED, PTMS; ``workflow/rules/common.smk`` builds the same lists).
:func:`jobs` lists the jobs of every stage with the outputs and inputs the rule files declare, so
tools that must not run Snakemake (``ptmbench.status``, ``ptmbench.naming``) see the same plan. Keep
the templates here in step with ``workflow/rules/*.smk``; ``tests/test_status.py`` checks them
against ``snakemake -n``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

from ptmbench import naming
from ptmbench import tasks as registry

STAGES: tuple[str, ...] = (
    "acquire", "tokenize", "finetune_base", "merge", "finetune_merged", "graph", "logme", "export",
)
DATA = "(data)"  # the "base model" of jobs that belong to no model (datasets)
ALL = "(all)"  # ... and of jobs that gather every model (export, report)

EXPORT_DIR = "results/ptm_model_bench"
PERFORMANCE_CSV = "results/tables/performance.csv"
LOGME_CSV = "results/tables/logme.csv"
PERFORMANCE_PARQUET = "results/tables/performance.parquet"
LOGME_PARQUET = "results/tables/logme.parquet"
CORRELATIONS_CSV = "results/report/correlations.csv"
PLOTS_DIR = "results/report/plots"
SUMMARY_TXT = "results/report/summary.txt"


@dataclass(frozen=True)
class Zoo:
    """Base models, tasks and merge ratios of a config, and the PTM names they imply."""

    models: tuple[str, ...]  # merged, fine-tuned and scored
    unseen: tuple[str, ...]  # fine-tuned and scored, never merged
    tasks: tuple[str, ...]  # in the fixed task order
    ratios: tuple[str, ...]  # formatted as in PTM names
    keep_merged: bool = True

    @classmethod
    def from_config(cls, config: dict) -> Zoo:
        return cls(
            models=tuple(config["models"]),
            unseen=tuple(config.get("unseen_models") or {}),
            tasks=tuple(naming.ordered(config["tasks"])),
            ratios=tuple(naming.format_ratio(r) for r in config["merge"]["ratios"]),
            keep_merged=bool(config["merge"].get("keep", True)),
        )

    @property
    def bases(self) -> list[str]:
        return [*self.models, *self.unseen]

    @property
    def glue(self) -> list[str]:
        """Tasks acquired by rule acquire_glue."""
        return [t for t in self.tasks if registry.get(t).acquire_rule == "acquire_glue"]

    @property
    def custom(self) -> list[str]:
        """Custom tasks (config key custom_tasks), acquired by rule acquire_custom."""
        return [t for t in self.tasks if registry.get(t).custom]

    @property
    def logme_tasks(self) -> list[str]:
        """Tasks scored by LogME (classification and regression)."""
        return [t for t in self.tasks if registry.get(t).has_logme]

    @property
    def pairs(self) -> list[str]:
        return [naming.pair_name(t1, t2) for t1, t2 in naming.task_pairs(self.tasks)]

    @property
    def merged(self) -> list[str]:
        return [f"{b}_{p}_{r}" for b in self.models for p in self.pairs for r in self.ratios]

    @property
    def ptms(self) -> list[str]:
        return self.bases + self.merged

    def ptms_with_base(self) -> list[tuple[str, str]]:
        """(PTM, its base model) for every PTM, in the order of :attr:`ptms`."""
        return [(b, b) for b in self.bases] + [
            (f"{b}_{p}_{r}", b) for b in self.models for p in self.pairs for r in self.ratios
        ]


@dataclass(frozen=True)
class Job:
    """One planned job: its stage, the base model it belongs to, its outputs, log file and inputs."""

    stage: str
    rule: str
    base: str
    name: str  # the job's wildcards, as a path-like label
    outputs: tuple[str, ...]
    log: str
    temp: bool = False  # outputs are deleted by Snakemake once every consumer has run
    inputs: tuple[str, ...] = ()  # as the rule's `input:` declares them


def task_data(task: str) -> list[str]:
    """Acquired data of one task: a ``save_to_disk`` folder, or SQuAD v2's two JSON files."""
    entry = registry.get(task)
    if entry.kind == "qa":
        return [f"resources/data/{entry.data}/{s}-v2.0.json" for s in ("train", "dev")]
    return [f"resources/data/{entry.data}/{task}"]


def model_dir(base: str) -> str:
    return f"resources/models/{base}"


def tokenized_dir(base: str, task: str) -> str:
    return f"results/tokenized/{base}/{task}"


def finetuned_model_dir(base: str, task: str) -> str:
    return f"results/finetune/{base}/{task}/model"


def merged_dir(base: str, pair: str, ratio: str) -> str:
    return f"results/merged/{base}/{pair}_{ratio}"


def metrics_json(ptm: str, task: str) -> str:
    return f"results/finetune/{ptm}/{task}/metrics.json"


def graph_file(ptm: str) -> str:
    return f"results/graphs/{ptm}.dill"


def logme_json(ptm: str, task: str) -> str:
    return f"results/logme/{ptm}/{task}.json"


def _job(stage, rule, base, name, outputs, inputs=(), temp=False) -> Job:
    return Job(stage, rule, base, name, tuple(outputs), f"logs/{rule}/{name}.log", temp, tuple(inputs))


def jobs(zoo: Zoo) -> Iterator[Job]:
    """Every job of the full DAG of ``zoo``, stage by stage (the order of :data:`STAGES`, so every
    job comes after the jobs that write its inputs)."""
    for b in zoo.bases:
        yield _job("acquire", "acquire_model", b, b, [model_dir(b)])
    for t in zoo.tasks:
        yield _job("acquire", registry.get(t).acquire_rule, DATA, t, task_data(t))
    for b in zoo.bases:
        for t in zoo.tasks:
            yield _job("tokenize", "tokenize", b, f"{b}/{t}", [tokenized_dir(b, t)], [model_dir(b), *task_data(t)])
    for b in zoo.bases:
        for t in zoo.tasks:
            yield _job("finetune_base", "finetune_base", b, f"{b}/{t}",
                       [metrics_json(b, t), finetuned_model_dir(b, t)], [model_dir(b), tokenized_dir(b, t)])
    pairs = [(naming.pair_name(t1, t2), t1, t2) for t1, t2 in naming.task_pairs(zoo.tasks)]
    for b in zoo.models:
        for p, t1, t2 in pairs:
            for r in zoo.ratios:
                yield _job("merge", "merge", b, f"{b}/{p}_{r}", [merged_dir(b, p, r)],
                           [model_dir(b), finetuned_model_dir(b, t1), finetuned_model_dir(b, t2)],
                           temp=not zoo.keep_merged)
    for b in zoo.models:
        for p in zoo.pairs:
            for r in zoo.ratios:
                for t in zoo.tasks:
                    m = f"{b}_{p}_{r}"
                    yield _job("finetune_merged", "finetune_merged", b, f"{m}/{t}", [metrics_json(m, t)],
                               [merged_dir(b, p, r), tokenized_dir(b, t)])
    ptms = zoo.ptms_with_base()
    ptm_dirs = {b: model_dir(b) for b in zoo.bases} | {
        f"{b}_{p}_{r}": merged_dir(b, p, r) for b in zoo.models for p in zoo.pairs for r in zoo.ratios}
    for ptm, b in ptms:
        yield _job("graph", "graph", b, ptm, [graph_file(ptm)], [ptm_dirs[ptm]])
    for ptm, b in ptms:
        for t in zoo.logme_tasks:
            yield _job("logme", "logme", b, f"{ptm}/{t}", [logme_json(ptm, t)], [ptm_dirs[ptm], tokenized_dir(b, t)])
    names = [p for p, _ in ptms]
    yield _job("export", "export", ALL, "export",
               [EXPORT_DIR, PERFORMANCE_CSV, LOGME_CSV, PERFORMANCE_PARQUET, LOGME_PARQUET],
               [*(metrics_json(p, t) for p in names for t in zoo.tasks),
                *(logme_json(p, t) for p in names for t in zoo.logme_tasks),
                *(graph_file(p) for p in names)])
    yield _job("export", "report", ALL, "report", [CORRELATIONS_CSV, PLOTS_DIR, SUMMARY_TXT],
               [PERFORMANCE_CSV, LOGME_CSV])


# --------------------------------------------------------------------------------------------------
# Requested targets: a typo'd name or a pair in the wrong order gets a message naming the fix

class TargetError(ValueError):
    """A requested target is no output of the workflow for this config."""


_NAME = "[^/]+"
TARGET_TEMPLATES: tuple[tuple[str, re.Pattern], ...] = tuple((t, re.compile(p)) for t, p in (
    ("resources/models/{base}", rf"resources/models/(?P<base>{_NAME})"),
    ("resources/data/glue/{glue_task}", rf"resources/data/glue/(?P<glue>{_NAME})"),
    ("results/tokenized/{base}/{task}", rf"results/tokenized/(?P<base>{_NAME})/(?P<task>{_NAME})"),
    ("results/finetune/{ptm}/{task}/metrics.json",
     rf"results/finetune/(?P<ptm>{_NAME})/(?P<task>{_NAME})/metrics\.json"),
    ("results/finetune/{base}/{task}/model", rf"results/finetune/(?P<base>{_NAME})/(?P<task>{_NAME})/model"),
    ("results/merged/{base}/{t1}_{t2}_{ratio}", rf"results/merged/(?P<mbase>{_NAME})/(?P<pair_ratio>{_NAME})"),
    ("results/graphs/{ptm}.dill", rf"results/graphs/(?P<ptm>{_NAME})\.dill"),
    ("resources/data/custom/{custom_task}", rf"resources/data/custom/(?P<custom>{_NAME})"),
    ("results/logme/{ptm}/{logme_task}.json", rf"results/logme/(?P<ptm>{_NAME})/(?P<scored>{_NAME})\.json"),
))
FIXED_OUTPUTS = (EXPORT_DIR, PERFORMANCE_CSV, LOGME_CSV, PERFORMANCE_PARQUET, LOGME_PARQUET, CORRELATIONS_CSV,
                 PLOTS_DIR, SUMMARY_TXT)
_HELP = "`python -m ptmbench.naming NAME --configfile <config>` checks a name or target path"


def target_problem(target: str, zoo: Zoo, exists=os.path.exists) -> str | None:
    """Why ``target`` (a path relative to the workdir) is no output of ``zoo``'s workflow, or None.

    Only paths under ``results/`` and the per-name folders of ``resources/`` are checked: each
    name in them (PTM, base model, task, pair and ratio) against the config, with the nearest
    valid names. A ``results/`` path of no known shape is a problem unless it exists.
    """
    target = os.path.normpath(target)
    if not target.startswith(("results/", "resources/")) or target in FIXED_OUTPUTS:
        return None
    for template, pattern in TARGET_TEMPLATES:
        m = pattern.fullmatch(target)
        if m is None:
            continue
        parts = m.groupdict()
        if parts.get("mbase") in zoo.unseen:
            return (f"target {target}: {parts['mbase']!r} is an unseen model (config key unseen_models), "
                    f"never merged; merged base models: {list(zoo.models)}")
        if template.endswith("/model") and parts["base"] in zoo.ptms and parts["base"] not in zoo.bases:
            return (f"target {target}: only the fine-tunes of base models keep their weights (model/); "
                    f"{parts['base']!r} is a merged PTM: ask for results/finetune/{parts['base']}/"
                    f"{parts['task']}/metrics.json")
        checks = [(parts[k], kinds) for k, kinds in (("base", ("base",)), ("ptm", ("ptm",)), ("task", ("task",)),
                                                     ("glue", ("task",)), ("custom", ("task",)),
                                                     ("scored", ("task",))) if k in parts]
        if "mbase" in parts:
            checks.insert(0, (f"{parts['mbase']}_{parts['pair_ratio']}", ("ptm",)))
        for name, kinds in checks:
            check = naming.check_name(name, zoo, kinds)
            if not check.ok:
                return f"target {target} ({template}): {check.message()}"
        for key, have, what in (("glue", zoo.glue, "a GLUE task"), ("custom", zoo.custom, "a custom task"),
                                ("scored", zoo.logme_tasks, "a task LogME scores (classification, regression)")):
            if key in parts and parts[key] not in have:
                return (f"target {target} ({template}): {parts[key]!r} is not {what} of this config: "
                        f"{list(have)}")
        return None
    if target.startswith("resources/") or exists(target):
        return None
    shapes = "\n    ".join([t for t, _ in TARGET_TEMPLATES] + list(FIXED_OUTPUTS))
    return (f"target {target} is no output of this workflow; outputs under results/ and resources/ are:\n"
            f"    {shapes}")


def check_targets(targets, zoo: Zoo, exists=os.path.exists) -> None:
    """Raise :class:`TargetError` naming every requested target that is no output for this config."""
    problems = [p for p in (target_problem(t, zoo, exists) for t in targets) if p]
    if problems:
        raise TargetError("\n".join(problems) + f"\n({_HELP})")
