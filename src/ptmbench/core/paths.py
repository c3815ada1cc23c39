"""The zoo a config implies and every path the workflow writes: the one place both are defined.

:class:`Zoo` turns a validated config into the name lists the rules use (MODELS, UNSEEN, BASES,
TASKS, GLUE, CUSTOM, LOGME_TASKS, PAIRS, RATIOS, MERGED, PTMS: ``workflow/rules/common.smk`` takes them from here).
The path templates below are every output's path, with Snakemake's wildcards: the rule files
declare their outputs, inputs, logs and benchmarks with them, and the functions fill them for one
job. :func:`jobs` lists the jobs of every stage with their outputs and named inputs: the rules take
each job's inputs from it (``inputs_of`` in ``workflow/rules/common.smk``, via :meth:`Zoo.job`), and
the tools that must not run Snakemake (``ptmbench.cli.status``, ``ptmbench.cli.plan``, Slurm grouping)
read the same list; ``tests/test_status.py`` checks the jobs Snakemake plans against it (``snakemake -n``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from ptmbench.core import naming
from ptmbench.core import tasks as registry

# --------------------------------------------------------------------------------------------------
# Path templates ({wildcards} as in the rule files)

MODEL_DIR = "resources/models/{base}"
GLUE_DIR = "resources/data/glue/{glue_task}"
CUSTOM_DIR = "resources/data/custom/{custom_task}"  # custom tasks (config key custom_tasks)
SQUAD_FILES = ("train-v2.0.json", "dev-v2.0.json")  # SQuAD v2's official names, kept by the acquired copies
SQUAD_TRAIN_JSON, SQUAD_DEV_JSON = (f"resources/data/squad_v2/{f}" for f in SQUAD_FILES)
TOKENIZED_DIR = "results/tokenized/{base}/{task}"
METRICS_JSON = "results/finetune/{ptm}/{task}/metrics.json"  # the primary seed (the first of finetune.seeds)
SEED_METRICS_JSON = "results/finetune/{ptm}/{task}/seed{seed}/metrics.json"  # each further seed (metrics only)
FINETUNED_MODEL_DIR = "results/finetune/{base}/{task}/model"
MERGED_PTM = naming.MERGED_NAME  # "{base}_{pair}_{ratio}": a merged PTM's name, as a wildcard pattern
MERGED_DIR = "results/merged/{base}/{pair}_{ratio}"
GRAPH_FILE = "results/graphs/{ptm}.dill"
LOGME_JSON = "results/logme/{ptm}/{logme_task}.json"
# the fine-tuning proxy: validation consumer metric after early_stop.steps optimiser steps (ptmbench.stages.early_stop)
EARLY_STOP_JSON = "results/early_stop/{ptm}/{logme_task}.json"

EXPORT_DIR = "results/ptm_model_bench"
PERFORMANCE_CSV = "results/tables/performance.csv"
LOGME_CSV = "results/tables/logme.csv"
PERFORMANCE_PARQUET = "results/tables/performance.parquet"
LOGME_PARQUET = "results/tables/logme.parquet"
ESTIMATORS_CSV = "results/tables/estimators.csv"  # every transferability estimator (ptmbench.estimators.transferability)
ESTIMATORS_PARQUET = "results/tables/estimators.parquet"
SWEEP_CSV = "results/tables/sweep.csv"  # estimators on nested subsamples / PCA projections (config transferability.sweep)
SWEEP_PARQUET = "results/tables/sweep.parquet"
CORRELATIONS_CSV = "results/report/correlations.csv"
PLOTS_DIR = "results/report/plots"
SUMMARY_TXT = "results/report/summary.txt"
LEADERBOARD_CSV = "results/report/leaderboard.csv"
JUDGING_CSV = "results/report/judging.csv"
NOISE_CSV = "results/report/noise.csv"
REPORT_HTML_DIR = "results/report/html"  # the tables as HTML pages, shown inline by `snakemake --report`
# The published ptm_model_bench (config key published; ptmbench.stages.published) and a run compared with it
PUBLISHED_PERFORMANCE_CSV = "results/published/performance.csv"  # the export's tidy columns, plus group
PUBLISHED_LOGME_CSV = "results/published/logme.csv"
PUBLISHED_JUDGING_CSV = "results/published/judging.csv"  # the columns of results/report/judging.csv
PUBLISHED_LEADERBOARD_CSV = "results/published/leaderboard.csv"
PUBLISHED_SUMMARY_TXT = "results/published/summary.txt"
PUBLISHED_HTML = "results/published/published.html"
PUBLISHED_OUTPUTS = (PUBLISHED_PERFORMANCE_CSV, PUBLISHED_LOGME_CSV, PUBLISHED_JUDGING_CSV, PUBLISHED_LEADERBOARD_CSV,
                     PUBLISHED_SUMMARY_TXT, PUBLISHED_HTML)
COMPARE_PAIRS_CSV = "results/compare/pairs.csv"  # per (quantity, task, PTM of the run)
COMPARE_TASKS_CSV = "results/compare/tasks.csv"  # per (quantity, task)
COMPARE_PLOTS_DIR = "results/compare/plots"
COMPARE_HTML = "results/compare/compare.html"
COMPARE_SUMMARY_TXT = "results/compare/summary.txt"
COMPARE_OUTPUTS = (COMPARE_PAIRS_CSV, COMPARE_TASKS_CSV, COMPARE_PLOTS_DIR, COMPARE_HTML, COMPARE_SUMMARY_TXT)
REPORT_OUTPUTS = (CORRELATIONS_CSV, PLOTS_DIR, SUMMARY_TXT, LEADERBOARD_CSV, JUDGING_CSV, NOISE_CSV, REPORT_HTML_DIR)
COMPARE_INPUTS = {"performance": PERFORMANCE_CSV, "logme": LOGME_CSV, "published_performance": PUBLISHED_PERFORMANCE_CSV,
                  "published_logme": PUBLISHED_LOGME_CSV}
REPORT_SUMMARIES = (PUBLISHED_SUMMARY_TXT, COMPARE_SUMMARY_TXT)  # appended to the report's summary
HUB_DIR = "results/hub"  # the export as a Hugging Face dataset repository: card, tables, ptm_model_bench (ptmbench.stages.card)
# The tables of the hub folder, one `load_dataset` config each (config name -> table file; the first is the default)
HUB_TABLES = {"performance": PERFORMANCE_PARQUET, "logme": LOGME_PARQUET, "estimators": ESTIMATORS_PARQUET,
              "judging": JUDGING_CSV}
# What `rule all` asks for: the export needs every fine-tune, LogME score and graph, so these build
# the whole DAG (listing every per-PTM file there too would only add edges to plan).
FINAL_TARGETS = (EXPORT_DIR, PERFORMANCE_CSV, LOGME_CSV, ESTIMATORS_CSV, CORRELATIONS_CSV, SUMMARY_TXT, HUB_DIR)

LOG = "logs/{rule}/{job}.log"
BENCHMARK = "benchmarks/{rule}/{job}.tsv"
# Every rule (in the order of its stage, :data:`STAGES`) and the name of one of its jobs: the
# wildcards that tell its jobs apart, as its log and benchmark files are named.
JOB_NAMES: dict[str, str] = {
    "acquire_model": "{base}",
    "acquire_glue": "{glue_task}",
    "acquire_custom": "{custom_task}",
    "acquire_squad": "squad_v2",
    "tokenize": "{base}/{task}",
    "finetune_base": "{base}/{task}",
    "merge": "{base}/{pair}_{ratio}",
    "finetune_merged": MERGED_PTM + "/{task}",
    "finetune_seed": "{ptm}/{task}/seed{seed}",
    "graph": "{ptm}",
    "logme": "{ptm}/{logme_task}",
    "early_stop": "{ptm}/{logme_task}",
    "export": "export",
    "published": "published",
    "compare": "compare",
    "report": "report",
    "hub": "hub",
}
RULES = tuple(JOB_NAMES)
STAGES: tuple[str, ...] = (
    "acquire", "tokenize", "finetune_base", "merge", "finetune_merged", "finetune_seed", "graph", "logme", "early_stop",
    "export",
    "published", "compare", "report", "hub",
)
DATA = "(data)"  # the "base model" of jobs that belong to no model (datasets)
ALL = "(all)"  # ... and of jobs that gather every model (export, report)


class _Keep(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def fill(template: str, **values: str) -> str:
    """``template`` with the given wildcards filled in; the others stay wildcards (``{name}``)."""
    return template.format_map(_Keep(values))


def log_file(rule: str, **values: str) -> str:
    """The log of a job of ``rule`` (all of its wildcards left open unless given)."""
    return fill(LOG, rule=rule, job=fill(JOB_NAMES[rule], **values))


def benchmark_file(rule: str, **values: str) -> str:
    """The benchmark file of a job of ``rule`` (all of its wildcards left open unless given)."""
    return fill(BENCHMARK, rule=rule, job=fill(JOB_NAMES[rule], **values))


def model_dir(base: str) -> str:
    return MODEL_DIR.format(base=base)


def glue_dir(task: str) -> str:
    return GLUE_DIR.format(glue_task=task)


def custom_dir(task: str) -> str:
    return CUSTOM_DIR.format(custom_task=task)


# the acquired data of a task, by the rule that acquires it
_DATA_OF_RULE = {"acquire_glue": lambda t: [glue_dir(t)], "acquire_custom": lambda t: [custom_dir(t)],
                 "acquire_squad": lambda t: [SQUAD_TRAIN_JSON, SQUAD_DEV_JSON]}


def task_data(task: str) -> list[str]:
    """The acquired data of one task: a GLUE or custom task's folder, or SQuAD v2's train and dev files."""
    return _DATA_OF_RULE[registry.get(task).acquire_rule](task)


def tokenized_dir(base: str, task: str) -> str:
    return TOKENIZED_DIR.format(base=base, task=task)


def finetuned_model_dir(base: str, task: str) -> str:
    return FINETUNED_MODEL_DIR.format(base=base, task=task)


def merged_dir(base: str, pair: str, ratio: str) -> str:
    return MERGED_DIR.format(base=base, pair=pair, ratio=ratio)


def metrics_json(ptm: str, task: str) -> str:
    return METRICS_JSON.format(ptm=ptm, task=task)


def seed_metrics_json(ptm: str, task: str, seed: int) -> str:
    """The metrics of a fine-tune with an extra seed (any seed of ``finetune.seeds`` but the first)."""
    return SEED_METRICS_JSON.format(ptm=ptm, task=task, seed=int(seed))


def graph_file(ptm: str) -> str:
    return GRAPH_FILE.format(ptm=ptm)


def logme_json(ptm: str, task: str) -> str:
    return LOGME_JSON.format(ptm=ptm, logme_task=task)


def early_stop_json(ptm: str, task: str) -> str:
    return EARLY_STOP_JSON.format(ptm=ptm, logme_task=task)


# --------------------------------------------------------------------------------------------------
# The zoo


@dataclass(frozen=True)
class Zoo:
    """Base models, tasks, merge ratios and fine-tuning seeds of a config, and the PTM names they imply."""

    models: tuple[str, ...]  # merged, fine-tuned and scored
    unseen: tuple[str, ...]  # fine-tuned and scored, never merged
    tasks: tuple[str, ...]  # in the fixed task order
    ratios: tuple[str, ...]  # formatted as in PTM names
    keep_merged: bool = True
    seeds: tuple[int, ...] = (0,)  # finetune.seeds: the primary seed first
    # (unseen model, the name its export writes) where its entry has an export_name (config key)
    renamed: tuple[tuple[str, str], ...] = ()
    early_stop: bool = True  # early_stop.steps set: rule early_stop scores every PTM on every LogME task

    @classmethod
    def from_config(cls, config: dict) -> Zoo:
        unseen = config.get("unseen_models") or {}
        return cls(
            models=tuple(config["models"]),
            unseen=tuple(config.get("unseen_models") or {}),
            tasks=tuple(naming.ordered(config["tasks"])),
            ratios=tuple(naming.format_ratio(r) for r in config["merge"]["ratios"]),
            keep_merged=bool(config["merge"].get("keep", True)),
            seeds=tuple(int(s) for s in config.get("finetune", {}).get("seeds", (0,))),
            renamed=tuple((m, spec["export_name"]) for m, spec in unseen.items()
                          if (spec or {}).get("export_name", m) != m),
            early_stop=bool((config.get("early_stop") or {}).get("steps", 500)),
        )

    @property
    def export_names(self) -> dict[str, str]:
        """Unseen model -> the name its export writes (keys, ``unseen_base_{name}.dill``), where its config
        entry has an ``export_name``: e.g. a second run of a seen base model, exported under its published name."""
        return dict(self.renamed)

    def export_name(self, ptm: str) -> str:
        """The name the export writes for ``ptm``: its own, or its ``export_name`` (unseen models)."""
        return self.export_names.get(ptm, ptm)

    @property
    def extra_seeds(self) -> tuple[int, ...]:
        """The seeds after the primary one: every PTM is fine-tuned on every task again with each
        (rule finetune_seed, metrics only); the primary seed's fine-tunes are rules finetune_base/_merged."""
        return self.seeds[1:]

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

    @cached_property
    def parsed(self) -> dict[str, naming.PTM]:
        """Every PTM name -> its parsed form, built once: the rules' input functions look names up
        here instead of parsing them (the paper DAG asks ~15,000 times)."""
        pairs = naming.task_pairs(self.tasks)
        return {b: naming.PTM(b) for b in self.bases} | {
            p.name: p for p in (naming.PTM(b, t1, t2, r) for b in self.models for t1, t2 in pairs for r in self.ratios)}

    @property
    def merged(self) -> list[str]:
        return [p for p, parsed in self.parsed.items() if parsed.is_merged]

    @property
    def ptms(self) -> list[str]:
        return list(self.parsed)

    def ptms_with_base(self) -> list[tuple[str, str]]:
        """(PTM, its base model) for every PTM, in the order of :attr:`ptms`."""
        return [(p, parsed.base) for p, parsed in self.parsed.items()]

    def base_of(self, ptm: str) -> str:
        """The base model of PTM ``ptm``: the one place that answers it (looked up, never parsed by
        splitting on ``_``; a name of no PTM of this zoo is an error naming the nearest ones)."""
        return self.parse(ptm).base

    def parse(self, ptm: str) -> naming.PTM:
        """The parsed form of PTM name ``ptm`` (a clear error for a name of no PTM of this zoo)."""
        parsed = self.parsed.get(ptm)
        return parsed if parsed is not None else naming.parse_ptm(ptm, self.bases)

    @cached_property
    def _ptm_dirs(self) -> dict[str, str]:
        return {name: merged_dir(p.base, p.pair, p.ratio) if p.is_merged else model_dir(p.base)
                for name, p in self.parsed.items()}

    def ptm_dir(self, ptm: str) -> str:
        """Directory of a PTM's weights: the acquired base model or a merged model."""
        found = self._ptm_dirs.get(ptm)
        if found is None:
            self.parse(ptm)  # the error naming a PTM of no model of this zoo
            raise KeyError(ptm)
        return found

    @cached_property
    def _jobs(self) -> dict[tuple[str, frozenset], Job]:
        return {(j.rule, frozenset(j.wildcards.items())): j for j in jobs(self)}

    def job(self, rule: str, wildcards: Mapping[str, str]) -> Job:
        """The job of ``rule`` with these wildcards (the rules' input functions ask here, so a job's
        inputs are written once, in :func:`jobs`)."""
        found = self._jobs.get((rule, frozenset(wildcards.items())))
        if found is None:
            raise KeyError(f"no job of rule {rule!r} with wildcards {dict(wildcards)} in this config's plan "
                           "(ptmbench.core.paths.jobs)")
        return found

    def report_data(self) -> list[str]:
        """The acquired data the report reads (its chance levels): every task's."""
        return [p for t in self.tasks for p in task_data(t)]

    def export_inputs(self) -> dict[str, list[str]]:
        """The inputs of rule ``export``: every fine-tune's metrics (the primary seed's, then the extra
        seeds'), LogME score and graph file."""
        ptms = self.ptms
        return {"finetune": [metrics_json(p, t) for p in ptms for t in self.tasks],
                "finetune_seeds": [seed_metrics_json(p, t, s) for s in self.extra_seeds for p in ptms
                                   for t in self.tasks],
                "logme": [logme_json(p, t) for p in ptms for t in self.logme_tasks],
                "early_stop": [early_stop_json(p, t) for p in ptms for t in self.logme_tasks] if self.early_stop else [],
                "graphs": [graph_file(p) for p in ptms]}


@dataclass(frozen=True)
class Job:
    """One planned job: its stage, the base model it belongs to, its outputs, log file and inputs."""

    stage: str
    rule: str
    base: str
    name: str  # the job's wildcards, as a path-like label (JOB_NAMES)
    outputs: tuple[str, ...]
    log: str
    temp: bool = False  # outputs are deleted by Snakemake once every consumer has run
    # the rule's `input:`, by name (a path or a list of paths): the rules take their inputs from here
    # (workflow/rules/common.smk, `inputs_of`), so a job's inputs are written once
    inputs: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict, hash=False)
    task: str = ""  # the task whose data the job reads or writes ("" for none)
    wildcards: Mapping[str, str] = field(default_factory=dict, hash=False)  # the rule's wildcards of this job

    @property
    def input_files(self) -> tuple[str, ...]:
        """Every input path, in the rule's order."""
        return tuple(f for v in self.inputs.values() for f in ((v,) if isinstance(v, str) else v))


_TASK_WILDCARDS = ("task", "glue_task", "custom_task", "logme_task")


def _job(stage: str, rule: str, owner: str, outputs, inputs: Mapping | None = None, wc: dict | None = None,
         temp: bool = False, task: str | None = None) -> Job:
    """A job of ``rule`` with wildcards ``wc`` and named ``inputs``; ``owner``: its base model (or DATA / ALL)."""
    wc = wc or {}
    name = fill(JOB_NAMES[rule], **wc)
    task = task if task is not None else next((wc[k] for k in _TASK_WILDCARDS if k in wc), "")
    inputs = {k: v if isinstance(v, str) else tuple(v) for k, v in (inputs or {}).items()}
    return Job(stage, rule, owner, name, tuple(outputs), fill(LOG, rule=rule, job=name), temp, inputs, task, dict(wc))


# the wildcard naming the task in the jobs of each acquire rule (acquire_squad has none: one job)
_ACQUIRE_WILDCARD = {"acquire_glue": "glue_task", "acquire_custom": "custom_task", "acquire_squad": None}


def jobs(zoo: Zoo) -> Iterator[Job]:
    """Every job of the full DAG of ``zoo``, stage by stage (the order of :data:`STAGES`, so every
    job comes after the jobs that write its inputs)."""
    for b in zoo.bases:
        yield _job("acquire", "acquire_model", b, [model_dir(b)], wc={"base": b})
    for t in zoo.tasks:  # one job per task, of the rule that acquires it
        rule = registry.get(t).acquire_rule
        wildcard = _ACQUIRE_WILDCARD[rule]
        yield _job("acquire", rule, DATA, task_data(t), wc={wildcard: t} if wildcard else None, task=t)
    for b in zoo.bases:
        for t in zoo.tasks:
            data = task_data(t)
            yield _job("tokenize", "tokenize", b, [tokenized_dir(b, t)],
                       {"model": model_dir(b), "data": data if len(data) > 1 else data[0]}, {"base": b, "task": t})
    for b in zoo.bases:
        for t in zoo.tasks:
            yield _job("finetune_base", "finetune_base", b, [metrics_json(b, t), finetuned_model_dir(b, t)],
                       {"model": model_dir(b), "data": tokenized_dir(b, t)}, {"base": b, "task": t})
    merged = [(p, {"base": p.base, "pair": p.pair, "ratio": p.ratio}) for p in zoo.parsed.values() if p.is_merged]
    for p, wc in merged:
        yield _job("merge", "merge", p.base, [fill(MERGED_DIR, **wc)],
                   {"base": model_dir(p.base), "a": finetuned_model_dir(p.base, p.t1),
                    "b": finetuned_model_dir(p.base, p.t2)}, wc, temp=not zoo.keep_merged)
    for p, wc in merged:
        for t in zoo.tasks:
            yield _job("finetune_merged", "finetune_merged", p.base, [metrics_json(p.name, t)],
                       {"model": fill(MERGED_DIR, **wc), "data": tokenized_dir(p.base, t)}, {**wc, "task": t})
    ptms = zoo.ptms_with_base()
    for s in zoo.extra_seeds:
        for ptm, b in ptms:
            for t in zoo.tasks:
                yield _job("finetune_seed", "finetune_seed", b, [seed_metrics_json(ptm, t, s)],
                           {"model": zoo.ptm_dir(ptm), "data": tokenized_dir(b, t)},
                           {"ptm": ptm, "task": t, "seed": str(s)})
    for ptm, b in ptms:
        yield _job("graph", "graph", b, [graph_file(ptm)], {"model": zoo.ptm_dir(ptm)}, {"ptm": ptm})
    for ptm, b in ptms:
        for t in zoo.logme_tasks:
            yield _job("logme", "logme", b, [logme_json(ptm, t)], {"model": zoo.ptm_dir(ptm), "data": tokenized_dir(b, t)},
                       {"ptm": ptm, "logme_task": t})
    if zoo.early_stop:
        for ptm, b in ptms:
            for t in zoo.logme_tasks:
                yield _job("early_stop", "early_stop", b, [early_stop_json(ptm, t)],
                           {"model": zoo.ptm_dir(ptm), "data": tokenized_dir(b, t)}, {"ptm": ptm, "logme_task": t})
    yield _job("export", "export", ALL, [EXPORT_DIR, PERFORMANCE_CSV, LOGME_CSV, PERFORMANCE_PARQUET, LOGME_PARQUET,
                                         ESTIMATORS_CSV, ESTIMATORS_PARQUET, SWEEP_CSV, SWEEP_PARQUET],
               zoo.export_inputs())
    yield _job("published", "published", ALL, PUBLISHED_OUTPUTS)
    yield _job("compare", "compare", ALL, COMPARE_OUTPUTS, COMPARE_INPUTS)
    yield _job("report", "report", ALL, REPORT_OUTPUTS,
               {"performance": PERFORMANCE_CSV, "logme": LOGME_CSV, "estimators": ESTIMATORS_CSV, "sweep": SWEEP_CSV,
                "data": zoo.report_data(), "summaries": REPORT_SUMMARIES})
    yield _job("hub", "hub", ALL, [HUB_DIR], {**HUB_TABLES, "bench": EXPORT_DIR})


# --------------------------------------------------------------------------------------------------
# Requested targets: a typo'd name or a pair in the wrong order gets a message naming the fix

class TargetError(ValueError):
    """A requested target is no output of the workflow for this config."""


def _pattern(template: str) -> re.Pattern:
    """A regex of the paths of ``template``: each wildcard one path-free group named after it; a
    folder name made of several wildcards (``{pair}_{ratio}``) one group named after all of them
    (``pair_ratio``: its parts are checked together, as one name)."""
    out = []
    for part in re.split(r"((?:\{\w+\}_?)+)", template):
        names = re.findall(r"\{(\w+)\}", part)
        out.append(f"(?P<{'_'.join(names)}>[^/]+)" if names else re.escape(part))
    return re.compile("".join(out))


TARGET_TEMPLATES: tuple[tuple[str, re.Pattern], ...] = tuple((t, _pattern(t)) for t in (
    MODEL_DIR, GLUE_DIR, CUSTOM_DIR, TOKENIZED_DIR, METRICS_JSON, SEED_METRICS_JSON, FINETUNED_MODEL_DIR, MERGED_DIR,
    GRAPH_FILE, LOGME_JSON, EARLY_STOP_JSON))
FIXED_OUTPUTS = (EXPORT_DIR, PERFORMANCE_CSV, LOGME_CSV, PERFORMANCE_PARQUET, LOGME_PARQUET, ESTIMATORS_CSV,
                 ESTIMATORS_PARQUET, SWEEP_CSV, SWEEP_PARQUET, *PUBLISHED_OUTPUTS, *COMPARE_OUTPUTS, *REPORT_OUTPUTS, HUB_DIR)
_CHECKS = (("base", ("base",)), ("ptm", ("ptm",)), ("task", ("task",)), ("glue_task", ("task",)),
           ("custom_task", ("task",)), ("logme_task", ("task",)))
_HELP = "`python -m ptmbench.cli.naming NAME --configfile <config>` checks a name or target path"


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
        if "pair_ratio" in parts:  # a merged model's folder: its base, pair and ratio make one PTM name
            if parts["base"] in zoo.unseen:
                return (f"target {target}: {parts['base']!r} is an unseen model (config key unseen_models), "
                        f"never merged; merged base models: {list(zoo.models)}")
            checks = [(f"{parts['base']}_{parts['pair_ratio']}", ("ptm",))]
        else:
            checks = [(parts[k], kinds) for k, kinds in _CHECKS if k in parts]
        if template == FINETUNED_MODEL_DIR and parts["base"] in zoo.parsed and parts["base"] not in zoo.bases:
            return (f"target {target}: only the fine-tunes of base models keep their weights (model/); "
                    f"{parts['base']!r} is a merged PTM: ask for {metrics_json(parts['base'], parts['task'])}")
        for name, kinds in checks:
            check = naming.check_name(name, zoo, kinds)
            if not check.ok:
                return f"target {target} ({template}): {check.message()}"
        if "seed" in parts and parts["seed"] not in {str(s) for s in zoo.extra_seeds}:
            if parts["seed"] == str(zoo.seeds[0]):
                return (f"target {target}: seed {parts['seed']} is the primary seed (the first of finetune.seeds), "
                        f"whose metrics are {metrics_json(parts['ptm'], parts['task'])}")
            return (f"target {target} ({template}): seed {parts['seed']!r} is not an extra seed of this config "
                    f"(finetune.seeds {list(zoo.seeds)}; the first is the primary seed)")
        for key, have, what in (("glue_task", zoo.glue, "a GLUE task"), ("custom_task", zoo.custom, "a custom task"),
                                ("logme_task", zoo.logme_tasks, "a task LogME scores (classification, regression)")):
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
