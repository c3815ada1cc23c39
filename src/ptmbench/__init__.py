"""ptm-bench: the library behind the model-zoo benchmark workflow (see README.md).

Its subpackages are layers, lowest first (:data:`LAYERS`): a module imports from its own layer and the
layers below it, never from one above (``tests/test_layers.py`` checks this, and that no imports form a
cycle, counting imports inside functions).
"""

__version__ = "0.1.0"

LAYERS = (
    "core",  # tasks, names, hyper-parameters, path layout, job list
    "io",  # atomic writes, provenance, checkpoints, integrity
    "data",  # schemas, demo data, tiny models, reading tokenised rows
    "evaluation",  # metrics, SQuAD post-processing, judging
    "estimators",  # LogME and the other estimators (maths), features
    "settings",  # the config, checked against the schema and the registries
    "runtime",  # the job wrapper, GPU device slots
    "stages",  # one module per workflow stage
    "cluster",  # planning, status, Slurm grouping
    "cli",  # every command line (main)
)
