# Names, paths and input functions shared by every stage. The zoo (every name list) and every path
# template come from ptmbench.core.paths (names: ptmbench.core.naming); this file only gives them to the rules.

import re
import sys

from ptmbench.core import naming
from ptmbench.core.finetune_params import FinetuneParams
from ptmbench.core import paths
from ptmbench.core import tasks as registry

ZOO = paths.Zoo.from_config(config)
MODELS = list(ZOO.models)  # merged, fine-tuned and scored
UNSEEN = list(ZOO.unseen)  # fine-tuned and scored, never merged
BASES = ZOO.bases
TASKS = list(ZOO.tasks)  # in the fixed task order
GLUE = ZOO.glue  # acquired by rule acquire_glue
CUSTOM = ZOO.custom  # custom tasks (config key custom_tasks), acquired by rule acquire_custom
LOGME_TASKS = ZOO.logme_tasks  # scored by LogME (classification and regression)
PAIRS = ZOO.pairs
RATIOS = list(ZOO.ratios)
MERGED = ZOO.merged
PTMS = ZOO.ptms
EXTRA_SEEDS = [str(s) for s in ZOO.extra_seeds]  # finetune.seeds after the primary (first) one


def requested_targets():
    """The targets named on the command line ([] for none, --lint, or cluster jobs).

    Snakemake 9 parses the Snakefile before it stores the DAG settings on `workflow`
    (snakemake.api.DAGApi.__post_init__ reads `workflow_api._workflow` first), so while parsing they
    are found on the DAGApi that is parsing us, up the call stack.
    """
    settings = getattr(workflow, "dag_settings", None)
    frame = sys._getframe()
    while settings is None and frame is not None:
        settings = getattr(frame.f_locals.get("self"), "dag_settings", None)
        frame = frame.f_back
    return [t for t in getattr(settings, "targets", None) or () if isinstance(t, str)]


# A typo'd PTM or a task pair in the wrong order would otherwise end in Snakemake's generic
# MissingRuleException; name the target, the nearest valid names and the fixed task order instead.
paths.check_targets(requested_targets(), ZOO)


def _alt(names):
    return "|".join(re.escape(n) for n in names) or "$^"


# `gpu` is counted per machine: a local run limits it (profiles/default: resources gpu=1, so GPU jobs
# do not overlap), a cluster run does not tally it (each Slurm job gets its own GPUs).
resource_scopes:
    gpu="local",


wildcard_constraints:
    base=_alt(BASES),
    task=_alt(TASKS),
    glue_task=_alt(GLUE),
    custom_task=_alt(CUSTOM),
    logme_task=_alt(LOGME_TASKS),
    pair=_alt(PAIRS),
    ratio=_alt(RATIOS),
    # a merged PTM is a merged base model (config models) + pair + ratio; an unseen model is never merged
    ptm=f"(?:{_alt(UNSEEN)}|(?:{_alt(MODELS)})(?:_(?:{_alt(PAIRS)})_(?:{_alt(RATIOS)}))?)",
    seed=_alt(EXTRA_SEEDS),


def model_spec(base):
    return config["models"].get(base) or config["unseen_models"][base]


base_of = ZOO.base_of  # PTM name -> its base model


def inputs_of(rule):
    """The input function of the jobs that ptmbench.core.paths.jobs lists under `rule` (use it with
    unpack()): each job's named inputs, written once in that job list, which the planner and status
    read too. The name is the job list's own, so renaming the rules in a module deployment
    (`as ptmbench_*`) changes nothing here."""
    return lambda wc: {k: v if isinstance(v, str) else list(v) for k, v in ZOO.job(rule, wc).inputs.items()}


def merged_output(path):
    """Merged weights are kept (published) unless merge.keep is false: then temp()."""
    return directory(path) if config["merge"]["keep"] else temp(directory(path))


# Hyper-parameters of every (base, task), resolved once; shared by all PTMs of a base (read-only).
# Typed once here (FinetuneParams: an unknown or missing key fails the DAG, not a job hours later);
# the rules pass the plain mapping, which Snakemake compares between runs (params rerun trigger).
_HP = {(b, t): naming.hyperparameters(config, b, t) for b in BASES for t in TASKS}
for _hp in _HP.values():
    FinetuneParams.from_dict(_hp)


def hyperparameters(base, task):
    return _HP[base, task]


def seed_hyperparameters(base, task, seed):
    """The hyper-parameters of a fine-tune with an extra seed: training randomness (head, batches)
    from ``seed``; the max_train_examples subsample stays the primary seed's, so every seed trains
    on the same examples."""
    hp = _HP[base, task]
    return {**hp, "seed": int(seed), "subsample_seed": hp["seed"]}


# Resources of a job (functions of its wildcards and attempt), written once for every rule.


def mem_mb(small, large):
    """Memory request by model size class, doubled on each retry."""
    return lambda wc, attempt: (large if naming.is_large(_wc_base(wc)) else small) * attempt


def runtime(small, large):
    """Runtime request (minutes) by model size class, grown on each retry."""
    return lambda wc, attempt: int(
        (large if naming.is_large(_wc_base(wc)) else small) * (1 + 0.5 * (attempt - 1))
    )


def finetune_runtime(wc, attempt):
    """Minutes of a fine-tune: the task's finetune_hours on one GPU for a base-size model (ptmbench.core.tasks;
    x3 for 'large'), with a margin, grown by half on each retry."""
    return int(
        60
        * registry.get(wc.task).finetune_hours
        * (3 if naming.is_large(_wc_base(wc)) else 1)
        * (1 + 0.5 * (attempt - 1))
    )


def batch_split(wc, attempt):
    """A fine-tune's starting batch split on attempt n: 2**(n-1) (ptmbench.stages.finetune)."""
    return 2 ** (attempt - 1)


def _wc_base(wc):
    """The base model of a job's wildcards: {base}, or the base of {ptm}."""
    return wc.base if "base" in wc.keys() else base_of(wc.ptm)
