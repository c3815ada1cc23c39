"""Stage finetune: fine-tune a PTM on a task with the transformers ``Trainer`` (rules ``finetune_base``
and ``finetune_merged`` with the primary seed, ``finetune_seed`` with each extra seed of
``finetune.seeds``; the features come from rule ``tokenize``, :mod:`ptmbench.stages.tokenize`).

:func:`finetune` trains ``AutoModelForSequenceClassification`` (stsb: one regression output) or
``AutoModelForQuestionAnswering`` (squad_v2) with the ``Trainer``: AdamW, linear schedule, no
warm-up, seed ``hp.seed`` (0 published; it draws the new head and the batch order), dynamic padding,
length-grouped batches, CUDA with bf16 (fp16 where bf16 is unsupported) or CPU, effective batch
``hp.batch_size`` = per-device batch x gradient accumulation (``batch_split``). It evaluates on
validation (mnli: matched and mismatched; squad_v2 through :mod:`ptmbench.evaluation.squad`), writes
``metrics.json`` and, for base PTMs, the fine-tuned model (``save_pretrained``, safetensors). See
docs/finetune.md.

A run whose training loss becomes NaN/inf stops, is recorded ``diverged: true`` and gets the metrics of
a chance-level learner (:func:`ptmbench.evaluation.chance.chance_predictions`), so the DAG continues. Labels that are NaN/inf or out
of range are bad data, not divergence: :func:`ptmbench.stages.tokenize.check_labels` refuses them before any
training step. Outputs appear atomically (model directory first, ``metrics.json`` last): a killed run
leaves neither.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Sampler, SequentialSampler
from transformers import Trainer, TrainerCallback

from ptmbench.core import tasks as registry
from ptmbench.core.finetune_params import FinetuneParams
from ptmbench.data.tokenized import lengths, subsample
from ptmbench.evaluation import metrics as M
from ptmbench.evaluation import squad
from ptmbench.evaluation.chance import chance_description, chance_metrics
from ptmbench.io import progress
from ptmbench.io.provenance import atomic_dir, provenance, sha256_files, write_json
from ptmbench.stages import tracking
from ptmbench.stages.tokenize import check_labels, eval_splits, load_tokenizer

log = logging.getLogger("ptmbench.stages.finetune")


PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # config finetune.precision


def resolve_precision(mode: str = "auto", cuda: bool | None = None, cpu_flags: str | None = None) -> str:
    """The precision a run uses for config value ``mode`` (one of :data:`PRECISIONS`): fp32, bf16 or fp16.

    ``auto``: CUDA -> bf16 where the GPU supports it, else fp16; CPU -> bf16 only where the CPU has
    native bf16 instructions (AMX or AVX512-BF16 among ``cpu_flags``, default /proc/cpuinfo's flags; on
    an AVX2-only CPU bf16 autocast measured ~10x slower than fp32), else fp32. So ``auto`` gives
    different numbers on different machines; pin ``fp32`` where results must not depend on the CPU.
    """
    if mode not in PRECISIONS:
        raise ValueError(f"precision {mode!r}: use one of {', '.join(PRECISIONS)} (config finetune.precision)")
    if mode != "auto":
        return mode
    if torch.cuda.is_available() if cuda is None else cuda:
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_native_bf16(cpu_flags) else "fp32"


def precision(mode: str = "auto") -> dict:
    """Mixed precision for the Trainer: ``{"bf16": bool, "fp16": bool}`` (:func:`resolve_precision`)."""
    used = resolve_precision(mode)
    return {"bf16": used == "bf16", "fp16": used == "fp16"}


def cpu_native_bf16(flags: str | None = None) -> bool:
    """Whether the CPU computes bf16 natively: ``amx_bf16`` or ``avx512_bf16`` among its flags (the
    ``flags`` lines of /proc/cpuinfo, read when ``flags`` is None; False where it cannot be read)."""
    if flags is None:
        try:
            flags = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    words = set(flags.split())
    return "amx_bf16" in words or "avx512_bf16" in words


@dataclass(frozen=True)
class Switch:
    """A step-efficiency setting of the fine-tune that keeps the science (same data, batches, optimiser
    maths and precision policy): only kernels, padding granularity and data movement change."""

    name: str
    what: str
    training_args: dict = field(default_factory=dict)  # TrainingArguments keywords
    model_kwargs: dict = field(default_factory=dict)  # from_pretrained keywords (with a fallback)
    collator: dict = field(default_factory=dict)  # DataCollatorWithPadding keywords
    eval_batch_factor: int = 1  # evaluation batch = per-device training batch x this
    min_capability: int = 0  # the GPU's CUDA compute capability major at least this (8: Ampere)
    off: dict = field(default_factory=dict)  # TrainingArguments keywords when it is off on CUDA


# The ONE table of GPU switches: each is on by default on CUDA and off on the CPU (CPU runs, the tests
# and the reference export are unchanged); PTMBENCH_CUDA_SWITCHES turns them off (docs/gpu.md), the
# metrics record which were on (provenance.cuda_switches), bench/gpu_check.py measures each.
CUDA_SWITCHES = (
    Switch("fused_adamw", "AdamW as one fused kernel over all parameters (same update maths; the "
           "Trainer's own default since transformers 5 with torch >= 2.8, pinned here)",
           training_args={"optim": "adamw_torch_fused"}, off={"optim": "adamw_torch"}),
    Switch("tf32", "TF32 tensor cores for the fp32 matrix products left outside bf16/fp16 autocast",
           training_args={"tf32": True}, min_capability=8),
    Switch("sdpa", "scaled-dot-product attention (flash / memory-efficient kernels) where the "
           "architecture has it; others keep their own attention",
           model_kwargs={"attn_implementation": "sdpa"}),
    Switch("pad8", "batches padded to a multiple of 8 tokens (tensor-core shapes; masked padding)",
           collator={"pad_to_multiple_of": 8}),
    Switch("eval_batch_x4", "evaluation batches 4x the per-device training batch (no gradients kept)",
           eval_batch_factor=4),
    Switch("loader", "pinned host memory and 2 persistent data-loader workers (batches prepared while "
           "the GPU computes)",
           training_args={"dataloader_pin_memory": True, "dataloader_num_workers": 2,
                          "dataloader_persistent_workers": True}),
)
SWITCHES_ENV = "PTMBENCH_CUDA_SWITCHES"


def cuda_switches(cuda: bool, spec: str | None = None, capability: int | None = None) -> dict[str, bool]:
    """{switch name: on?}. Off everywhere on the CPU. On CUDA ``spec`` (default: the environment
    variable ``PTMBENCH_CUDA_SWITCHES``) picks them: unset / ``all`` = every switch, ``none`` = none,
    ``-tf32,-sdpa`` = all but those, ``tf32,pad8`` = only those. A switch the GPU cannot do (TF32 before
    Ampere; ``capability``: the compute capability major, default the current GPU's) stays off."""
    names = [sw.name for sw in CUDA_SWITCHES]
    if not cuda:
        return dict.fromkeys(names, False)
    spec = ((os.environ.get(SWITCHES_ENV) if spec is None else spec) or "all").strip()
    items = [x.strip() for x in spec.split(",") if x.strip()]
    unknown = [x for x in items if x.lstrip("-") not in names] if spec not in ("all", "none") else []
    off = {x[1:] for x in items if x.startswith("-")}
    on = {x for x in items if not x.startswith("-")}
    if unknown or (on and off):
        raise ValueError(f"{SWITCHES_ENV}={spec!r}: give all, none, the switches to keep (tf32,pad8) or the "
                         f"ones to drop (-tf32,-sdpa); known switches: {', '.join(names)}")
    if spec in ("all", "none"):
        chosen = dict.fromkeys(names, spec == "all")
    else:
        chosen = {n: (n in on) if on else (n not in off) for n in names}
    major = _capability() if capability is None else capability
    return {sw.name: chosen[sw.name] and major >= sw.min_capability for sw in CUDA_SWITCHES}


def _capability() -> int:
    return torch.cuda.get_device_capability()[0] if torch.cuda.is_available() else 0


def _switched(on: dict[str, bool], part: str) -> dict:
    out = {}
    for sw in CUDA_SWITCHES:
        if on.get(sw.name):
            out.update(getattr(sw, part))
    return out


def length_grouped_indices(lengths, batch_size: int, mega: int = 50, generator=None) -> list[int]:
    """One epoch's example order in batches of similar length (fewer pad tokens, same examples).

    Shuffle all examples; cut into mega-batches of ``mega * batch_size``; sort each by length
    (descending); cut into batches of ``batch_size``; shuffle the order of the batches. Unlike the
    ``Trainer``'s ``LengthGroupedSampler`` the mega-batch is not shrunk on small data sets (it keeps
    at least 4 mega-batches, which on a few hundred rows groups almost nothing: 1.87x the real
    tokens vs 1.14x here on 400 SST-2 rows; random batches: 3.15x), and batches are not visited
    long-to-short. Randomness comes from ``generator`` (default: torch's global RNG, seeded by the
    ``Trainer``), so every epoch differs and a seed fixes them all.
    """
    n = len(lengths)
    perm = torch.randperm(n, generator=generator).tolist()
    size = mega * batch_size
    batches = []
    for m in range(0, n, size):
        block = sorted(perm[m:m + size], key=lambda i: lengths[i], reverse=True)
        batches += [block[b:b + batch_size] for b in range(0, len(block), batch_size)]
    order = torch.randperm(len(batches), generator=generator).tolist()
    return [i for b in order for i in batches[b]]


class LengthGroupedBatches(Sampler):
    """Batches of similar lengths in a seeded random order (:func:`length_grouped_indices`)."""

    def __init__(self, lengths, batch_size):
        self.lengths, self.batch_size = lengths, batch_size

    def __len__(self):
        return len(self.lengths)

    def __iter__(self):
        return iter(length_grouped_indices(self.lengths, self.batch_size))


class BenchTrainer(Trainer):
    """``Trainer`` that (1) stops at the first non-finite training loss and remembers it,
    (2) takes precomputed lengths for length grouping, (3) evaluates in dataset order, and
    (4) averages the loss over gradient-accumulation steps: the task models' losses are batch means
    that ignore ``num_items_in_batch``, but accept ``**kwargs``, so the stock ``Trainer`` takes
    them as already scaled and sums them, i.e. ``batch_split`` times the gradient of the effective
    batch (which the gradient clipping at norm 1.0 then treats differently).

    Hook: :meth:`before_training_step` runs before every training step; a subclass passed to
    :func:`finetune` (``trainer_class``) overrides it (``bench/gpu_check.py`` simulates running out of
    GPU memory there)."""

    loss_is_scaled_for_ga = False

    def __init__(self, *args, train_lengths=None, **kw):
        super().__init__(*args, **kw)
        self.train_lengths = train_lengths
        self.diverged_at = None

    def before_training_step(self, model, inputs) -> None:
        """Called before every training step (a hook: does nothing here)."""

    def training_step(self, model, inputs, num_items_in_batch=None):
        self.before_training_step(model, inputs)
        loss = super().training_step(model, inputs, num_items_in_batch)
        if not torch.isfinite(loss.detach()).all():
            self.diverged_at = self.state.global_step
            self.control.should_training_stop = True
            log.warning("non-finite training loss at step %d: stopping (diverged)", self.state.global_step)
        return loss

    def _get_train_sampler(self, train_dataset=None):
        if self.args.train_sampling_strategy == "group_by_length" and self.train_lengths is not None:
            # grouped by effective batch: a batch_split retry trains on the same batches
            return LengthGroupedBatches(self.train_lengths,
                                        self.args.train_batch_size * self.args.gradient_accumulation_steps)
        return super()._get_train_sampler(train_dataset)

    def _get_eval_sampler(self, eval_dataset):
        return SequentialSampler(eval_dataset)


class StopAfterSteps(TrainerCallback):
    """Ends training after ``steps`` optimiser steps of the unchanged recipe (its learning-rate schedule
    still spans every epoch): the fine-tuning proxy ``early_stop`` (:mod:`ptmbench.stages.early_stop`)."""

    def __init__(self, steps: int):
        self.steps = int(steps)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.steps:
            control.should_training_stop = True
        return control


def load_task_model(model_dir, task: str, label_names=None, **model_kwargs):
    """The task model on top of the PTM encoder in ``model_dir`` (new head, seeded by the caller).

    ``model_kwargs`` (the ``sdpa`` switch: ``attn_implementation``) are tried first; an architecture
    that does not support them is loaded without them (logged), never failed."""
    if model_kwargs:
        try:
            return _load_task_model(model_dir, task, label_names, **model_kwargs)
        except (ValueError, ImportError) as err:
            log.info("%s not supported by %s (%s): loading with the architecture's default",
                     model_kwargs, model_dir, str(err).splitlines()[0][:200])
    return _load_task_model(model_dir, task, label_names)


def _load_task_model(model_dir, task: str, label_names=None, **model_kwargs):
    from transformers import AutoModelForQuestionAnswering, AutoModelForSequenceClassification

    entry = registry.get(task)
    kind = entry.kind
    if kind == "qa":
        return AutoModelForQuestionAnswering.from_pretrained(str(model_dir), dtype=torch.float32, **model_kwargs)
    if kind == "regression":
        return AutoModelForSequenceClassification.from_pretrained(
            str(model_dir), num_labels=1, problem_type="regression", dtype=torch.float32, **model_kwargs)
    names = list(label_names or [])
    n = len(names) or entry.n_outputs
    names = names or [str(i) for i in range(n)]
    return AutoModelForSequenceClassification.from_pretrained(
        str(model_dir), num_labels=n, problem_type="single_label_classification", dtype=torch.float32,
        id2label=dict(enumerate(names)), label2id={k: i for i, k in enumerate(names)}, **model_kwargs)


def training_arguments(hp: FinetuneParams | dict, output_dir, batch_split: int = 1, switches=None, **overrides):
    """``TrainingArguments`` of our fine-tune: per-device batch ``batch_size // batch_split`` with
    ``batch_split`` gradient-accumulation steps (effective batch unchanged), length grouping, no checkpoints,
    mixed precision as ``hp.precision`` says (:func:`resolve_precision`), and the
    :data:`CUDA_SWITCHES` that ``switches`` ({name: on}, default :func:`cuda_switches`) turns on."""
    from transformers import TrainingArguments

    hp = FinetuneParams.from_dict(hp)
    bs, split = int(hp.batch_size), int(batch_split)
    if split < 1 or bs % split:
        raise ValueError(f"batch_split {batch_split} must be >= 1 and divide batch_size {bs} "
                         "(raise batch_size or lower --retries)")
    cuda = torch.cuda.is_available()
    on = cuda_switches(cuda) if switches is None else switches
    factor = max([sw.eval_batch_factor for sw in CUDA_SWITCHES if on.get(sw.name)] or [1])
    kw = dict(
        output_dir=str(output_dir), seed=int(hp.seed), learning_rate=float(hp.learning_rate),
        num_train_epochs=float(hp.epochs), per_device_train_batch_size=bs // split,
        per_device_eval_batch_size=bs // split * factor, gradient_accumulation_steps=split,
        lr_scheduler_type=hp.lr_scheduler, warmup_steps=float(hp.warmup_ratio),
        weight_decay=float(hp.weight_decay), train_sampling_strategy="group_by_length",
        eval_strategy="no", save_strategy="no", report_to="none", logging_strategy="steps",
        logging_steps=50, disable_tqdm=True, use_cpu=not cuda, dataloader_pin_memory=False,
        **precision(hp.precision),
    )
    kw.update(_switched(on, "training_args"))
    if cuda:
        kw.update(_switched({name: not v for name, v in on.items()}, "off"))
    kw.update(overrides)
    return TrainingArguments(**kw)


def _sorted_by_length(ds):
    order = np.argsort(lengths(ds), kind="stable")
    return ds.select(order.tolist())


def _finite_parameters(model) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def retry_out_of_memory(run, batch_split: int, batch_size: int, max_retries: int = 3):
    """``run(split)`` with the per-device batch ``batch_size // split``; on CUDA out-of-memory, free the
    GPU and run again with the split doubled (half the per-device batch, twice the accumulation: the
    same effective batch and mean-loss gradient, so the same science), up to ``max_retries`` times.
    Returns ``(result, retries)``. Retrying in the job keeps Snakemake's retries for what only a new
    job can fix (a node failure, a time limit), never for corrupt inputs or bad data."""
    import gc

    split, retries = int(batch_split), 0
    while True:
        try:
            return run(split), retries
        except torch.cuda.OutOfMemoryError:
            nxt = split * 2
            if retries >= max_retries or batch_size % nxt:
                log.error("CUDA out of memory with per-device batch %d; cannot halve it again "
                          "(batch_size %d, %d retries): lower batch_size or use a larger GPU",
                          batch_size // split, batch_size, retries)
                raise
            log.warning("CUDA out of memory with per-device batch %d: retrying with %d x %d accumulation",
                        batch_size // split, batch_size // nxt, nxt)
            split, retries = nxt, retries + 1
        # outside the except block: the failed attempt's traceback (and its model) is released
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def finetune(ptm: str, model_dir, tokenized_dir, task: str, hp: FinetuneParams | dict, metrics_path, save_dir=None,
             batch_split: int = 1, switches: dict | None = None, base: str | None = None,
             trainer_class: type[BenchTrainer] = BenchTrainer, report_to="none",
             stop_after_steps: int | None = None) -> dict:
    """Fine-tune PTM ``model_dir`` on ``task`` (features in ``tokenized_dir``); write ``metrics_path``.

    ``metrics.json``: ``{"ptm", "base", "task", "metrics": {split: {key: value}}, "diverged",
    "hyperparameters" (hp, its ``precision`` the config's mode, + per_device_batch, grad_accum, effective_batch,
    bf16, fp16), "precision" (the one that ran: fp32, bf16 or fp16), "train_examples",
    "train_time_s", "eval_time_s", "provenance"}``. With ``save_dir`` the fine-tuned task model and
    the tokenizer are saved there (safetensors). ``base``: the PTM's base model
    (:meth:`ptmbench.core.paths.Zoo.base_of`); None when ``ptm`` is a base model itself. Returns the
    metrics record. ``hp``: :class:`~ptmbench.core.finetune_params.FinetuneParams` (or its mapping, a
    rule's ``params.hp``). ``trainer_class``: :class:`BenchTrainer` or a subclass (its hooks). ``report_to``: config
    ``finetune.report_to``, the experiment trackers the ``Trainer`` reports to (:mod:`ptmbench.stages.tracking`).
    ``stop_after_steps``: stop after that many optimiser steps of the same recipe (:class:`StopAfterSteps`;
    the fine-tuning proxy ``early_stop``), then evaluate as usual.
    """
    import datasets
    from transformers import DataCollatorWithPadding, set_seed

    hp = FinetuneParams.from_dict(hp)

    t_start = time.perf_counter()
    kind = registry.get(task).kind
    trackers = tracking.reporters(report_to)
    tracking.check_installed(trackers)  # before any work: a missing package fails at once, naming the fix
    tokenized_dir = Path(tokenized_dir)
    info_path = tokenized_dir / "info.json"
    if not info_path.exists():
        raise FileNotFoundError(f"{info_path} missing: {tokenized_dir} is not the output of rule tokenize")
    info = json.loads(info_path.read_text())
    if info.get("task") != task:
        raise ValueError(f"{tokenized_dir} holds task {info.get('task')!r}, not {task!r}")
    dd = datasets.load_from_disk(str(tokenized_dir))
    if kind != "qa":  # bad labels are bad data, not divergence: refuse them before any training step
        for split in ("train", *eval_splits(task)):
            check_labels(task, split, dd[split].with_format("numpy")["labels"],
                         f"tokenised {task} {tokenized_dir}")
    tok = load_tokenizer(model_dir)
    seed = int(hp.seed)
    # an extra seed (rule finetune_seed) trains on the primary seed's subsample: only training randomness varies
    keep = subsample(len(dd["train"]), hp.max_train_examples, int(hp.data_seed), key="max_train_examples")
    train = dd["train"] if keep is None else dd["train"].select(keep.tolist())
    if kind == "qa":
        train_labels = None
    else:
        train_labels = np.asarray(train["labels"])

    on = cuda_switches(torch.cuda.is_available()) if switches is None else dict(switches)

    def attempt(split: int):
        with tempfile.TemporaryDirectory(prefix="ptmbench-trainer-") as scratch:
            args = training_arguments(hp, scratch, split, switches=on,
                                      **tracking.training_arguments(trackers, ptm, task, seed))
            set_seed(seed)
            model = load_task_model(model_dir, task, info.get("label_names"), **_switched(on, "model_kwargs"))
            collator = DataCollatorWithPadding(tok, **_switched(on, "collator"))
            trainer = trainer_class(
                model=model, args=args, train_dataset=train, data_collator=collator, processing_class=tok,
                train_lengths=lengths(train).tolist())
            tracking.attach(trainer, tracking.start(trackers, metrics_path))
            if stop_after_steps is not None:
                trainer.add_callback(StopAfterSteps(stop_after_steps))
            trainer.add_callback(progress.trainer_callback(f"training {ptm} on {task}"))  # steady lines, ETA
            log.info("training %s on %s: %d examples, %s epochs, per-device batch %d x %d accumulation, %s",
                     ptm, task, len(train), hp.epochs, args.per_device_train_batch_size,
                     args.gradient_accumulation_steps, "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32")
            t0, c0 = time.perf_counter(), time.process_time()
            out = trainer.train()
            train_time, train_cpu = time.perf_counter() - t0, time.process_time() - c0
            diverged = trainer.diverged_at is not None or not _finite_parameters(model)
            t0 = time.perf_counter()
            if diverged:
                results = chance_metrics(task, dd, train_labels)
            else:
                results = _evaluate(trainer, task, dd, tok, hp)
            eval_time = time.perf_counter() - t0
        return args, model, trainer, out, diverged, results, train_time, train_cpu, eval_time

    (args, model, trainer, out, diverged, results, train_time, train_cpu, eval_time), oom_retries = \
        retry_out_of_memory(attempt, int(batch_split), int(hp.batch_size))

    record = {
        "ptm": ptm, "base": base or ptm, "task": task, "metrics": results,
        "diverged": diverged,
        "hyperparameters": {**hp.as_dict(), "per_device_batch": args.per_device_train_batch_size,
                            "grad_accum": args.gradient_accumulation_steps,
                            "effective_batch": args.per_device_train_batch_size * args.gradient_accumulation_steps,
                            "bf16": args.bf16, "fp16": args.fp16, "length_grouped": True},
        "precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
        "train_examples": len(train), "train_tokens": int(lengths(train).sum()),
        "train_steps": int(out.global_step), "train_loss": None if diverged else _finite_or_none(out.training_loss),
        "train_time_s": round(train_time, 3), "train_cpu_s": round(train_cpu, 3), "eval_time_s": round(eval_time, 3),
        "provenance": provenance(ptm=ptm, task=task, seed=seed, model_dir=str(model_dir),
                                 tokenized_dir=str(tokenized_dir), batch_split=int(batch_split),
                                 oom_retries=oom_retries, cuda_switches=on, report_to=trackers,
                                 attn_implementation=getattr(model.config, "_attn_implementation", None),
                                 wall_time_s=round(time.perf_counter() - t_start, 3)),
    }
    if diverged:
        record["diverged_at_step"] = trainer.diverged_at
        record["chance_level"] = chance_description(task)
    if save_dir is not None:
        if diverged:  # NaN weights are useless downstream: keep the pre-trained encoder + seeded new head
            set_seed(seed)
            model = load_task_model(model_dir, task, info.get("label_names"))
            record["saved_weights"] = "initial (diverged: the pre-trained encoder with a fresh seeded head)"
        with atomic_dir(save_dir) as tmp:
            model.save_pretrained(str(tmp))
            tok.save_pretrained(str(tmp))
            write_json(Path(tmp) / "provenance.json", {"ptm": ptm, "task": task, "diverged": diverged,
                                                       "provenance": record["provenance"],
                                                       "sha256": sha256_files(tmp)})
    write_json(metrics_path, record)
    log.info("%s/%s: %s%s", ptm, task, results, " (diverged)" if diverged else "")
    return record


def _finite_or_none(x):
    return float(x) if x is not None and math.isfinite(x) else None


def _evaluate(trainer, task, dd, tok, hp) -> dict:
    if registry.get(task).kind == "qa":
        feats = _sorted_by_length(dd["validation"])
        pred = trainer.predict(feats.select_columns([c for c in feats.column_names
                                                     if c not in ("example_id", "offset_mapping")]))
        start, end = (np.asarray(x, dtype=np.float32) for x in pred.predictions[:2])
        cls = [squad.cls_index(tok, ids) for ids in feats["input_ids"]]
        return {"validation": squad.score(dd["validation_examples"], feats, start, end, cls, hp)}
    results = {}
    for split in eval_splits(task):
        ds = _sorted_by_length(dd[split])
        pred = trainer.predict(ds)
        logits = np.asarray(pred.predictions, dtype=np.float32)
        p = logits.reshape(-1) if registry.get(task).kind == "regression" else logits.argmax(-1)
        results[split] = M.glue(task, p, np.asarray(pred.label_ids))
    return results
