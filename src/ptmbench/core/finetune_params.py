"""The hyper-parameters of one fine-tune, typed: :class:`FinetuneParams`, built once per (base model, task)
from the config (:func:`ptmbench.core.naming.hyperparameters` resolves the config's layers)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, fields


@dataclass(frozen=True)
class FinetuneParams:
    """Config ``finetune.glue`` / ``finetune.squad_v2`` (after ``finetune.large`` and the model's own
    override), plus the seeds. Read-only: the merged PTMs of a base share their base's."""

    learning_rate: float
    batch_size: int  # the effective batch (a batch_split retry keeps it)
    epochs: float
    max_length: int
    seed: int  # training randomness (head, batches): the primary seed, or an extra seed of finetune.seeds
    precision: str = "auto"  # finetune.precision (or the model's override): auto, fp32, bf16, fp16
    lr_scheduler: str = "linear"
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    max_train_examples: int | None = None  # a seeded subsample of the training split (None: all of it)
    subsample_seed: int | None = None  # the subsample's seed (None: ``seed``); extra seeds keep the primary's
    doc_stride: int | None = None  # SQuAD v2: overlap of the windows of a long context
    n_best_size: int | None = None  # SQuAD v2 post-processing
    max_answer_length: int | None = None
    null_score_diff_threshold: float | None = None

    @classmethod
    def from_dict(cls, hp: Mapping) -> FinetuneParams:
        """From the resolved config mapping (a rule's ``params.hp``); unknown or missing keys are errors."""
        if isinstance(hp, cls):
            return hp
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(hp) - set(known))
        if unknown:
            raise ValueError(f"unknown fine-tuning hyper-parameter(s) {unknown}; known: {sorted(known)} "
                             "(config 'finetune.glue' / 'finetune.squad_v2', config/schema.yaml)")
        required = [n for n, f in known.items() if f.default is MISSING and n not in hp]
        if required:
            raise ValueError(f"fine-tuning hyper-parameter(s) {required} missing (config 'finetune')")
        return cls(**hp)

    @property
    def data_seed(self) -> int:
        """The seed of the ``max_train_examples`` subsample."""
        return self.seed if self.subsample_seed is None else self.subsample_seed

    def as_dict(self) -> dict:
        """The values that are set (None dropped), as recorded in a fine-tune's ``metrics.json``."""
        return {k: v for k, v in asdict(self).items() if v is not None}
