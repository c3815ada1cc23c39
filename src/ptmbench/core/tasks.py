"""The task registry: everything the workflow knows about a task, in one frozen entry per task.

:data:`PUBLISHED` holds the ten published tasks (nine GLUE tasks and SQuAD v2) in the fixed task
order; the custom tasks a config declares (``custom_tasks``, GLUE-style: one or two text columns,
classification or regression, from local files or a Hugging Face dataset) join that order after
them. Every other module asks the registry (:func:`get`, :func:`names`) and branches on an entry's
fields (``kind``, ``eval_splits``, ``labels`` ...), never on a task's name.

The registry of custom tasks is the one of the config in use: :func:`configure` sets it, called
explicitly by whoever starts from a config (the Snakefile after validating it, the command lines of
:mod:`ptmbench.cli`, the job wrapper :func:`ptmbench.runtime.job.job`); validating a config does not.
Task names contain no ``_`` other than ``squad_v2``'s: pair and PTM names are parsed against the
known task list (:mod:`ptmbench.core.naming`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

KINDS = ("classification", "regression", "qa")
# the metric keys of a fine-tune, by kind (classification: binary; multi-class drops the correlations)
CLASSIFICATION_KEYS = ("eval_accuracy", "eval_acc", "eval_f1", "eval_matthews_correlation",
                       "eval_pearson", "eval_spearman")
MULTICLASS_KEYS = CLASSIFICATION_KEYS[:4]
REGRESSION_KEYS = ("eval_pearson", "eval_spearman")
SQUAD_V2_KEYS = ("exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total", "NoAns_exact",
                 "NoAns_f1", "NoAns_total", "best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh")
SQUAD_OPTIONAL = tuple(k for k in SQUAD_V2_KEYS if k.startswith(("HasAns_", "NoAns_")))  # empty subsets


@dataclass(frozen=True)
class Task:
    """One task. ``kind``: classification, regression or qa (extractive QA, SQuAD v2 format)."""

    name: str
    kind: str
    text: tuple[str, ...] = ()  # text columns (1 or 2; the second is the pair's second segment)
    labels: tuple[str, ...] | None = None  # class names (classification)
    score_range: tuple[float, float] | None = None  # regression: allowed scores (None: any finite)
    eval_splits: tuple[str, ...] = ("validation",)  # evaluated after fine-tuning
    test_splits: tuple[str, ...] = ()  # unlabelled (label -1), may be empty
    export_split: str = "validation"  # whose metrics are exported
    consumer_metric: str = "eval_accuracy"  # the metric the GNN consumer reads
    consumer_scale: float = 1.0  # ... times this (squad_v2 f1 is 0-100)
    published_size: tuple[int, int, int] | None = None  # train, evaluation examples, mean tokens
    disk_mb: float = 1.0  # acquired data on disk
    data: str = "glue"  # the config ``data`` key of its source and its folder under resources/data
    acquire_rule: str = "acquire_glue"  # the workflow rule that acquires its data
    hp_family: str = "glue"  # the ``finetune`` section of its hyper-parameters
    demo: str | None = None  # demo-data generator (a function of ptmbench.data.schemas)
    finetune_hours: float = 0.5  # cluster runtime of a base-size fine-tune on one GPU, with a margin
    glue_dir: str | None = None  # GLUE TSV layout: directory name in glue_data/
    tsv_files: Mapping[str, str] = field(default_factory=dict)  # split -> TSV file
    tsv_columns: Mapping[str, str | int] = field(default_factory=dict)  # column -> TSV header (or position)
    source: Mapping | None = None  # custom tasks: the config entry
    custom: bool = False

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train", *self.eval_splits, *self.test_splits)

    @property
    def columns(self) -> tuple[str, ...]:
        """The dataset's columns: text, ``label``, ``idx``."""
        return (*self.text, "label", "idx")

    @property
    def metric_keys(self) -> tuple[str, ...]:
        """The keys a fine-tune's evaluation writes per split."""
        if self.kind == "qa":
            return SQUAD_V2_KEYS
        if self.kind == "regression":
            return REGRESSION_KEYS
        return CLASSIFICATION_KEYS if len(self.labels) == 2 else MULTICLASS_KEYS

    @property
    def export_keys(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(required, optional) exported metric keys, in the published order."""
        if self.kind == "qa":
            return tuple(k for k in SQUAD_V2_KEYS if k not in SQUAD_OPTIONAL), SQUAD_OPTIONAL
        if self.kind == "classification" and len(self.labels) > 2:  # as the published mnli files
            return ("eval_accuracy",), CLASSIFICATION_KEYS[1:]
        return self.metric_keys, ()

    @property
    def n_outputs(self) -> int:
        """Outputs of the task head (regression: 1)."""
        return len(self.labels) if self.kind == "classification" else 1

    @property
    def has_logme(self) -> bool:
        """LogME scores classification and regression tasks (not extractive QA)."""
        return self.kind != "qa"


def _glue(name, text, labels, glue_dir, tsv_columns, size, disk_mb, *, metric="eval_accuracy", kind=None,
          score_range=None, eval_splits=("validation",), test_splits=("test",), export_split="validation",
          tsv_files=None, hours=0.5):
    return Task(
        name=name, kind=kind or "classification", text=text, labels=labels, score_range=score_range,
        eval_splits=eval_splits, test_splits=test_splits, export_split=export_split, consumer_metric=metric,
        published_size=size, disk_mb=disk_mb, demo=f"_{name}", finetune_hours=hours, glue_dir=glue_dir,
        tsv_files=MappingProxyType(tsv_files or {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}),
        tsv_columns=MappingProxyType(tsv_columns))


_S1S2 = ("sentence1", "sentence2")
_S1S2_TSV = {"sentence1": "sentence1", "sentence2": "sentence2", "label": "label"}

# the fixed task order (docs/formats.md); published sizes: train / evaluation examples and mean BERT
# WordPiece tokens per example (both segments + special tokens; SQuAD: question + context)
PUBLISHED: Mapping[str, Task] = MappingProxyType({t.name: t for t in (
    _glue("cola", ("sentence",), ("unacceptable", "acceptable"), "CoLA", {"sentence": 3, "label": 1},
          (8_551, 1_043, 11), 1, metric="eval_matthews_correlation"),
    _glue("mnli", ("premise", "hypothesis"), ("entailment", "neutral", "contradiction"), "MNLI",
          {"premise": "sentence1", "hypothesis": "sentence2", "label": "gold_label"}, (392_702, 19_647, 39), 80,
          eval_splits=("validation_matched", "validation_mismatched"), hours=6,
          test_splits=("test_matched", "test_mismatched"), export_split="validation_mismatched",
          tsv_files={"train": "train.tsv", "validation_matched": "dev_matched.tsv",
                     "validation_mismatched": "dev_mismatched.tsv", "test_matched": "test_matched.tsv",
                     "test_mismatched": "test_mismatched.tsv"}),
    _glue("mrpc", _S1S2, ("not_equivalent", "equivalent"), "MRPC",
          {"sentence1": "#1 String", "sentence2": "#2 String", "label": "Quality"}, (3_668, 408, 53), 2),
    _glue("qnli", ("question", "sentence"), ("entailment", "not_entailment"), "QNLI",
          {"question": "question", "sentence": "sentence", "label": "label"}, (104_743, 5_463, 50), 35, hours=2),
    _glue("qqp", ("question1", "question2"), ("not_duplicate", "duplicate"), "QQP",
          {"question1": "question1", "question2": "question2", "label": "is_duplicate"}, (363_846, 40_430, 30), 65, hours=6),
    _glue("rte", _S1S2, ("entailment", "not_entailment"), "RTE", _S1S2_TSV, (2_490, 277, 70), 2),
    _glue("sst2", ("sentence",), ("negative", "positive"), "SST-2", {"sentence": "sentence", "label": "label"},
          (67_349, 872, 13), 5, hours=1.5),
    _glue("stsb", _S1S2, None, "STS-B", {"sentence1": "sentence1", "sentence2": "sentence2", "label": "score"},
          (5_749, 1_500, 31), 2, kind="regression", score_range=(0.0, 5.0), metric="eval_pearson"),
    _glue("wnli", _S1S2, ("not_entailment", "entailment"), "WNLI", _S1S2_TSV, (635, 71, 38), 1),
    Task(name="squad_v2", kind="qa", consumer_metric="f1", consumer_scale=0.01,
         published_size=(130_319, 11_873, 170), disk_mb=46, data="squad_v2", acquire_rule="acquire_squad",
         hp_family="squad_v2", finetune_hours=5,
         demo="demo_squad"),
)})

_custom: dict[str, Task] = {}


def names() -> tuple[str, ...]:
    """Every known task in the fixed order: the published ones, then the configured custom ones."""
    return (*PUBLISHED, *_custom)


def get(name: str) -> Task:
    """The entry of task ``name``; unknown names raise ValueError listing the known ones."""
    task = PUBLISHED.get(name) or _custom.get(name)
    if task is None:
        raise ValueError(f"unknown task {name!r}; known tasks: {list(names())} (a custom task must be declared "
                         "under the config key 'custom_tasks')")
    return task


def of_kind(*kinds: str, among=None) -> list[str]:
    """The tasks of ``among`` (default: all known) whose kind is one of ``kinds``, in order."""
    return [t for t in (names() if among is None else among) if get(t).kind in kinds]


def custom_task(name: str, spec: Mapping) -> Task:
    """The entry of custom task ``name`` declared by config entry ``spec`` (schema-validated)."""
    kind = spec["kind"]
    labels = tuple(str(x) for x in spec["labels"]) if kind == "classification" else None
    rng = spec.get("range")
    metric = spec.get("metric") or ("eval_pearson" if kind == "regression" else "eval_accuracy")
    return Task(name=name, kind=kind, text=tuple(spec["text"]), labels=labels,
                score_range=(float(rng[0]), float(rng[1])) if rng else None, consumer_metric=metric,
                data="custom", acquire_rule="acquire_custom", source=MappingProxyType(dict(spec)), custom=True)


def custom_problem(name: str, spec: Mapping) -> tuple[str, str] | None:
    """(config key, problem) of a custom task's entry that the schema cannot check, or None."""
    key = f"custom_tasks.{name}"
    if name in PUBLISHED:
        return key, (f"custom task {name!r} has the name of a published task; published tasks are "
                     f"{list(PUBLISHED)}: rename it")
    kind = spec["kind"]
    if kind == "classification":
        labels = spec.get("labels")
        if not labels or len(labels) < 2:
            return f"{key}.labels", (f"a classification task needs 'labels': its class names (2 or more), got "
                                     f"{labels!r}")
        if len(set(map(str, labels))) != len(labels):
            return f"{key}.labels", f"class names {labels!r} are not unique"
        if "range" in spec:
            return f"{key}.range", "'range' is for regression tasks; a classification task has 'labels'"
    else:
        if "labels" in spec:
            return f"{key}.labels", ("a regression task has scores, not class names: drop 'labels' (give "
                                     "'range: [lo, hi]' to bound the scores)")
        rng = spec.get("range")
        if rng is not None and not rng[0] < rng[1]:
            return f"{key}.range", f"range {rng!r} must be [lo, hi] with lo < hi"
    if len(set(spec["text"])) != len(spec["text"]) or spec["label"] in spec["text"]:
        return f"{key}.text", (f"text columns {list(spec['text'])} and label column {spec['label']!r} must be "
                               "distinct")
    entry = custom_task(name, spec)
    if entry.consumer_metric not in entry.metric_keys:
        return f"{key}.metric", (f"metric {entry.consumer_metric!r} is not written for a {kind} task with "
                                 f"{entry.n_outputs} output(s); choose one of {list(entry.metric_keys)}")
    return None


def configure(config: Mapping) -> None:
    """Make the custom tasks of ``config`` (its ``custom_tasks``) the known custom tasks."""
    _custom.clear()
    for name, spec in (config.get("custom_tasks") or {}).items():
        _custom[name] = custom_task(name, spec)
