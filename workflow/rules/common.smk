# Names, paths and input functions shared by every stage. All naming logic lives in
# ptmbench.naming; this file only turns the validated config into lists and paths.

import re
import sys

from ptmbench import naming, paths
from ptmbench import tasks as registry

MODELS = list(config["models"])  # merged, fine-tuned and scored
UNSEEN = list(config.get("unseen_models", {}))  # fine-tuned and scored, never merged
BASES = MODELS + UNSEEN
TASKS = config["tasks"]  # validated, in the fixed task order
_ZOO = paths.Zoo.from_config(config)
GLUE = _ZOO.glue  # acquired by rule acquire_glue
CUSTOM = _ZOO.custom  # custom tasks (config key custom_tasks), acquired by rule acquire_custom
LOGME_TASKS = _ZOO.logme_tasks  # scored by LogME (classification and regression)
PAIRS = [naming.pair_name(t1, t2) for t1, t2 in naming.task_pairs(TASKS)]
RATIOS = [naming.format_ratio(r) for r in config["merge"]["ratios"]]
# Every PTM name -> its parsed form, built once: input functions and resources look names up
# here instead of parsing them (the paper DAG asks ~15,000 times).
_PARSED = {b: naming.PTM(b) for b in BASES} | {
    naming.merged_name(b, t1, t2, r): naming.PTM(b, t1, t2, naming.format_ratio(r))
    for b in MODELS
    for t1, t2 in naming.task_pairs(TASKS)
    for r in config["merge"]["ratios"]
}
MERGED = [p for p, parsed in _PARSED.items() if parsed.is_merged]
PTMS = BASES + MERGED


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
paths.check_targets(requested_targets(), _ZOO)


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
    ptm=f"(?:{_alt(BASES)})(?:_(?:{_alt(PAIRS)})_(?:{_alt(RATIOS)}))?",


def model_spec(base):
    return config["models"].get(base) or config["unseen_models"][base]


def ptm_of(ptm):
    parsed = _PARSED.get(ptm)
    return parsed if parsed is not None else naming.parse_ptm(ptm, BASES)


def ptm_dir(ptm):
    """Directory of a PTM's weights: the acquired base model or a merged model."""
    p = ptm_of(ptm)
    if p.is_merged:
        return f"results/merged/{p.base}/{p.pair}_{p.ratio}"
    return f"resources/models/{p.base}"


def merged_output(path):
    """Merged weights are kept (published) unless merge.keep is false: then temp()."""
    return directory(path) if config["merge"]["keep"] else temp(directory(path))


def task_data(task):
    """Acquired data of one task."""
    data = paths.task_data(task)
    return data if len(data) > 1 else data[0]


# Hyper-parameters of every (base, task), resolved once; shared by all PTMs of a base (read-only).
_HP = {(b, t): naming.hyperparameters(config, b, t) for b in BASES for t in TASKS}


def hyperparameters(base, task):
    return _HP[base, task]


def mem_mb(small, large):
    """Memory request by model size class, doubled on each retry."""
    return lambda wc, attempt: (large if naming.is_large(ptm_of(_wc_ptm(wc)).base) else small) * attempt


def runtime(small, large):
    """Runtime request (minutes) by model size class, grown on each retry."""
    return lambda wc, attempt: int(
        (large if naming.is_large(ptm_of(_wc_ptm(wc)).base) else small) * (1 + 0.5 * (attempt - 1))
    )


def _wc_ptm(wc):
    if "ptm" in wc.keys():
        return wc.ptm
    return wc.base
