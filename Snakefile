# ptm-bench: a model-zoo benchmark for pre-trained language model selection.
# Stages (one rule file, a thin script per rule and one module of ptmbench.stages each): acquire ->
# tokenize -> finetune -> merge -> graph -> logme -> export -> published -> compare -> report -> hub.
# See README.md and docs/.

import os
import sys

# Jobs import the workflow's library from this checkout, also inside a --sdm conda environment.
# current_basedir (this file's folder), not basedir (the main Snakefile's): right also when
# ptm-bench is loaded as a module from another directory (README "Using ptm-bench as a module").
_SRC = os.path.join(workflow.current_basedir, "src")
sys.path.insert(0, _SRC)
os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, [_SRC, os.environ.get("PYTHONPATH")])))

from ptmbench.core import tasks as registry
from ptmbench.settings.config import validate

# The paper setup unless --configfile names another (a second config would be merged into the
# first key by key, so the default is only read when none is given).
if not config:

    configfile: "config/config.yaml"


validate(config, workflow.source_path("config/schema.yaml"))
registry.configure(config)  # the task registry knows this config's custom tasks


include: "workflow/rules/common.smk"
include: "workflow/rules/acquire.smk"
include: "workflow/rules/tokenize.smk"
include: "workflow/rules/finetune.smk"
include: "workflow/rules/merge.smk"
include: "workflow/rules/graph.smk"
include: "workflow/rules/logme.smk"
include: "workflow/rules/export.smk"
include: "workflow/rules/published.smk"
include: "workflow/rules/compare.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/hub.smk"


# The export needs every fine-tune, LogME score and graph, so asking for its outputs builds the
# whole DAG; listing every fine-tune, graph and LogME file here as well would add ~11,000 edges to plan (~15% of a dry run).
rule all:
    """Every output of the run: the export and the report (which need every other job)."""
    default_target: True
    input:
        paths.FINAL_TARGETS,
