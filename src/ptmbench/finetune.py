"""Tokenise once per (base tokenizer, task) and fine-tune a PTM on a task with the transformers ``Trainer``.

Stage ``finetune`` of the workflow (DESIGN.md §1 steps 2 and 5):

* :func:`tokenize` turns a task's data into model features with the base model's tokenizer
  (GLUE: unpadded, truncated to ``max_length``; SQuAD v2: ``max_length`` windows with ``doc_stride``
  overlap, answer start/end token positions, CLS for unanswerable or out-of-window answers).
  The 540 merged PTMs of a base share its tokenizer, so every fine-tune reuses these features.
* :func:`finetune` trains ``AutoModelForSequenceClassification`` (stsb: one regression output) or
  ``AutoModelForQuestionAnswering`` (squad_v2) with the ``Trainer``: AdamW, linear schedule, no
  warm-up, seed 0 (published), dynamic padding, length-grouped batches, CUDA with bf16 (fp16 where
  bf16 is unsupported) or CPU, effective batch ``hp.batch_size`` = per-device batch x gradient
  accumulation (``batch_split``). It evaluates on validation (mnli: matched and mismatched), writes
  ``metrics.json`` and, for base PTMs, the fine-tuned model (``save_pretrained``, safetensors).

A run whose training loss becomes NaN/inf stops, is recorded ``diverged: true`` and gets the metrics of
a chance-level learner (:func:`chance_predictions`), so the DAG continues. Labels that are NaN/inf or out
of range are bad data, not divergence: :func:`tokenize` and :func:`finetune` refuse them
(:func:`check_labels`) before any training step. Outputs appear atomically
(model directory first, ``metrics.json`` last): a killed run leaves neither.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from ptmbench import metrics as M
from ptmbench import naming
from ptmbench import tasks as registry
from ptmbench.provenance import atomic_dir, provenance, sha256_files, write_json

log = logging.getLogger("ptmbench.finetune")

def eval_splits(task: str) -> tuple[str, ...]:
    """Validation split(s) a task is evaluated on (its registry entry; mnli: matched and mismatched)."""
    return registry.get(task).eval_splits


# ------------------------------------------------------------------------------------ tokenisation
def _tokenizer(model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_dir))


def check_labels(task: str, split: str, labels, where: str) -> None:
    """Refuse labels no model should be trained or scored on (NaN/inf or out-of-range STS-B scores,
    ids outside the task's classes): they come from bad data, not from training, so they are an error
    naming ``where``, the split, the row and the value, never a "diverged" run."""
    from ptmbench import data

    bad = data.first_bad_label(task, split, labels)
    if bad:
        row, problem = bad
        raise ValueError(
            f"{where}, split {split}, row {row} (0-based): {problem}. The task data are bad: fix them and "
            f"re-acquire (delete resources/data/{registry.get(task).data}/{task} and the tokenised features, then "
            "re-run)")


def glue_features(tokenizer, task: str, dataset_dict, max_length: int, where: str = "GLUE data"):
    """GLUE splits (train + eval splits) -> unpadded features ``input_ids, attention_mask[, token_type_ids],
    labels`` (int64; float32 for stsb), truncated to ``max_length``. Labels are checked first
    (:func:`check_labels`; ``where`` names the data in the error)."""
    import datasets

    entry = registry.get(task)
    a, b = (*entry.text, None)[:2]
    out = {}
    for split in ("train", *eval_splits(task)):
        if split not in dataset_dict:
            raise ValueError(f"{task}: split {split!r} missing from the GLUE data (have {list(dataset_dict)}); "
                             "re-run acquire_glue")
        ds = dataset_dict[split]
        need = [c for c in (a, b, "label") if c and c not in ds.column_names]
        if need:
            raise ValueError(f"{task}/{split}: columns {need} missing (have {ds.column_names}); "
                             "the data must have the schema of ptmbench.data.features")
        check_labels(task, split, ds.with_format("numpy")["label"], f"GLUE {task} data {where}")

        def enc(batch):
            texts = (batch[a],) if b is None else (batch[a], batch[b])
            feats = tokenizer(*texts, truncation=True, max_length=max_length)
            feats["labels"] = batch["label"]
            return dict(feats)

        ds = ds.map(enc, batched=True, remove_columns=ds.column_names, keep_in_memory=True,
                    desc=f"tokenize {task}/{split}")
        dtype = "float32" if entry.kind == "regression" else "int64"
        out[split] = ds.cast_column("labels", datasets.Value(dtype))  # in memory: no cache file
    return datasets.DatasetDict(out)


def read_squad(path) -> list[dict]:
    """Official SQuAD v2 JSON -> one row per question (id, title, context, question, answers)."""
    with open(path) as fh:
        data = json.load(fh)
    if "data" not in data:
        raise ValueError(f"{path}: not a SQuAD JSON file (no 'data' key)")
    rows = []
    for article in data["data"]:
        for par in article["paragraphs"]:
            for qa in par["qas"]:
                answers = [] if qa.get("is_impossible") else qa["answers"]
                rows.append({"id": qa["id"], "title": article.get("title", ""), "context": par["context"],
                             "question": qa["question"],
                             "answers": {"text": [x["text"] for x in answers],
                                         "answer_start": [int(x["answer_start"]) for x in answers]}})
    return rows


def check_question_room(tokenizer, examples, questions, max_length: int, doc_stride: int,
                        where: str = "SQuAD v2") -> None:
    """When a context must be split, each window holds the question, the special tokens and a slice of
    the context overlapping the next by ``doc_stride`` tokens, so that slice must be longer than
    ``doc_stride``. A question too long for that is an error naming it (the tokenizer would panic with
    "stride must be strictly less than max_len"); questions are not truncated, which would change the task."""
    special = tokenizer.num_special_tokens_to_add(pair=True)
    lens = [len(ids) for ids in tokenizer(questions, add_special_tokens=False)["input_ids"]]
    for k, (qid, q, n) in enumerate(zip(examples["id"], questions, lens, strict=True)):
        room = max_length - n - special
        if room > doc_stride:
            continue
        context = tokenizer(examples["context"][k], add_special_tokens=False)["input_ids"]
        if len(context) > room:  # the context must be split into windows: the stride does not fit
            raise ValueError(
                f"{where}: question {qid!r} ({q[:80]!r}) has {n} tokens, which with {special} special tokens "
                f"leaves {room} of max_length {max_length} for the context; that must be more than "
                f"doc_stride {doc_stride}. Raise finetune.squad_v2.max_length, lower doc_stride (both can "
                "be set per model: models.<name>.finetune.squad_v2), or shorten or remove this question "
                "in the data")


def _windows(tokenizer, examples, max_length, doc_stride, where: str = "SQuAD v2"):
    right = tokenizer.padding_side == "right"
    questions = [q.lstrip() for q in examples["question"]]
    check_question_room(tokenizer, examples, questions, max_length, doc_stride, where)
    pair = (questions, examples["context"]) if right else (examples["context"], questions)
    enc = tokenizer(*pair, truncation="only_second" if right else "only_first", max_length=max_length,
                    stride=doc_stride, return_overflowing_tokens=True, return_offsets_mapping=True)
    return enc, (1 if right else 0)


def _cls_index(tokenizer, ids) -> int:
    return ids.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in ids else 0


def squad_train_features(tokenizer, examples: dict, max_length: int, doc_stride: int,
                         where: str = "SQuAD v2") -> dict:
    """Question/context windows with ``start_positions``/``end_positions`` (token indices of the
    answer's first and last token; the CLS index when unanswerable or outside the window)."""
    enc, ctx = _windows(tokenizer, examples, max_length, doc_stride, where)
    sample = enc.pop("overflow_to_sample_mapping")
    offsets = enc.pop("offset_mapping")
    starts, ends = [], []
    for i, off in enumerate(offsets):
        cls = _cls_index(tokenizer, enc["input_ids"][i])
        ans = examples["answers"][sample[i]]
        seq = enc.sequence_ids(i)
        context = [t for t, s in enumerate(seq) if s == ctx]
        if not ans["answer_start"] or not context:
            starts.append(cls), ends.append(cls)
            continue
        s_char = ans["answer_start"][0]
        e_char = s_char + len(ans["text"][0])
        if off[context[0]][0] > s_char or off[context[-1]][1] < e_char:  # answer not inside this window
            starts.append(cls), ends.append(cls)
            continue
        starts.append(max(t for t in context if off[t][0] <= s_char))
        ends.append(min(t for t in context if off[t][1] >= e_char))
    feats = dict(enc)
    feats["start_positions"], feats["end_positions"] = starts, ends
    return feats


def squad_eval_features(tokenizer, examples: dict, max_length: int, doc_stride: int,
                        where: str = "SQuAD v2") -> dict:
    """Evaluation windows with ``example_id`` and ``offset_mapping`` (None outside the context)."""
    enc, ctx = _windows(tokenizer, examples, max_length, doc_stride, where)
    sample = enc.pop("overflow_to_sample_mapping")
    offsets = enc.pop("offset_mapping")
    feats = dict(enc)
    feats["example_id"] = [examples["id"][j] for j in sample]
    feats["offset_mapping"] = [
        [tuple(o) if s == ctx else None for o, s in zip(off, enc.sequence_ids(i), strict=True)]
        for i, off in enumerate(offsets)]
    return feats


def squad_dataset(tokenizer, train_json, dev_json, max_length: int, doc_stride: int):
    import datasets

    if doc_stride >= max_length:
        raise ValueError(f"doc_stride {doc_stride} must be smaller than max_length {max_length}")
    train = datasets.Dataset.from_list(read_squad(train_json))
    dev = datasets.Dataset.from_list(read_squad(dev_json))
    kw = {"batched": True, "keep_in_memory": True}
    tr = train.map(lambda b: squad_train_features(tokenizer, b, max_length, doc_stride,
                                                  f"SQuAD v2 {train_json}"),
                   remove_columns=train.column_names, desc="squad train windows", **kw)
    va = dev.map(lambda b: squad_eval_features(tokenizer, b, max_length, doc_stride, f"SQuAD v2 {dev_json}"),
                 remove_columns=dev.column_names, desc="squad validation windows", **kw)
    ex = dev.select_columns(["id", "context", "question", "answers"])
    return datasets.DatasetDict({"train": tr, "validation": va, "validation_examples": ex})


def tokenize(model_dir, task: str, data, out_dir, hp: dict) -> None:
    """Tokenise ``task`` with the tokenizer of ``model_dir`` into ``out_dir`` (``DatasetDict.save_to_disk``
    + ``info.json``). ``data``: a GLUE ``save_to_disk`` directory, or ``[train_json, dev_json]`` for squad_v2."""
    import datasets

    start = time.perf_counter()
    tok = _tokenizer(model_dir)
    if registry.get(task).kind == "qa":
        if isinstance(data, str | os.PathLike) or len(data) != 2:
            raise ValueError(f"squad_v2 data must be [train_json, dev_json], got {data!r}")
        dd = squad_dataset(tok, data[0], data[1], int(hp["max_length"]), int(hp["doc_stride"]))
        labels = None
    else:
        raw = datasets.load_from_disk(str(data))
        dd = glue_features(tok, task, raw, int(hp["max_length"]), str(data))
        feat = raw["train"].features["label"]
        labels = list(feat.names) if hasattr(feat, "names") else None
    with atomic_dir(out_dir) as tmp:
        dd.save_to_disk(str(tmp))
        write_json(Path(tmp) / "info.json", {
            "task": task, "tokenizer": str(model_dir), "tokenizer_class": type(tok).__name__,
            "label_names": labels, "hp": hp, "rows": {k: len(v) for k, v in dd.items()},
            "provenance": provenance(time_s=round(time.perf_counter() - start, 3)),
        })
    log.info("tokenized %s with %s: %s", task, model_dir, {k: len(v) for k, v in dd.items()})


# ------------------------------------------------------------------------------------ fine-tuning
def precision(mode: str = "auto") -> dict:
    """Mixed precision for the Trainer: ``{"bf16": bool, "fp16": bool}``.

    auto: CUDA -> bf16 where supported, else fp16. CPU -> bf16 only with native bf16 instructions
    (AMX or AVX512-BF16): on an AVX2-only CPU bf16 autocast measured ~10x slower than fp32.
    """
    import torch

    if mode == "auto":
        if torch.cuda.is_available():
            mode = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            mode = "bf16" if _cpu_native_bf16() else "fp32"
    if mode not in ("fp32", "bf16", "fp16"):
        raise ValueError(f"precision {mode!r}: use auto, fp32, bf16 or fp16")
    return {"bf16": mode == "bf16", "fp16": mode == "fp16"}


def _cpu_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def subsample(ds, n: int | None, seed: int):
    """A deterministic subset of ``n`` rows (in original order), or ``ds`` when n is None / >= len."""
    if n is None or n >= len(ds):
        return ds
    if n < 1:
        raise ValueError(f"max_train_examples must be >= 1 or null, got {n}")
    idx = np.sort(np.random.default_rng(seed).permutation(len(ds))[:n])
    return ds.select(idx.tolist())


def lengths(ds) -> list[int]:
    """Token count of every row (from the Arrow column, without decoding rows)."""
    import pyarrow.compute as pc

    col = ds.with_format("arrow")[:]["input_ids"]
    return pc.list_value_length(col).to_numpy(zero_copy_only=False).astype(int).tolist()


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
    import torch

    n = len(lengths)
    perm = torch.randperm(n, generator=generator).tolist()
    size = mega * batch_size
    batches = []
    for m in range(0, n, size):
        block = sorted(perm[m:m + size], key=lambda i: lengths[i], reverse=True)
        batches += [block[b:b + batch_size] for b in range(0, len(block), batch_size)]
    order = torch.randperm(len(batches), generator=generator).tolist()
    return [i for b in order for i in batches[b]]


def _make_trainer_class():
    import torch
    from torch.utils.data import Sampler, SequentialSampler
    from transformers import Trainer

    class LengthGroupedBatches(Sampler):
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
        batch (which the gradient clipping at norm 1.0 then treats differently)."""

        loss_is_scaled_for_ga = False

        def __init__(self, *args, train_lengths=None, **kw):
            super().__init__(*args, **kw)
            self.train_lengths = train_lengths
            self.diverged_at = None

        def training_step(self, model, inputs, num_items_in_batch=None):
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

    return BenchTrainer


def load_task_model(model_dir, task: str, label_names=None):
    """The task model on top of the PTM encoder in ``model_dir`` (new head, seeded by the caller)."""
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoModelForSequenceClassification

    entry = registry.get(task)
    kind = entry.kind
    if kind == "qa":
        return AutoModelForQuestionAnswering.from_pretrained(str(model_dir), dtype=torch.float32)
    if kind == "regression":
        return AutoModelForSequenceClassification.from_pretrained(
            str(model_dir), num_labels=1, problem_type="regression", dtype=torch.float32)
    names = list(label_names or [])
    n = len(names) or entry.n_outputs
    names = names or [str(i) for i in range(n)]
    return AutoModelForSequenceClassification.from_pretrained(
        str(model_dir), num_labels=n, problem_type="single_label_classification", dtype=torch.float32,
        id2label=dict(enumerate(names)), label2id={k: i for i, k in enumerate(names)})


def training_arguments(hp: dict, output_dir, batch_split: int = 1, mode: str = "auto", **overrides):
    """``TrainingArguments`` of our fine-tune: per-device batch ``batch_size // batch_split`` with
    ``batch_split`` gradient-accumulation steps (effective batch unchanged), length grouping, no checkpoints."""
    import torch
    from transformers import TrainingArguments

    bs, split = int(hp["batch_size"]), int(batch_split)
    if split < 1 or bs % split:
        raise ValueError(f"batch_split {batch_split} must be >= 1 and divide batch_size {bs} "
                         "(raise batch_size or lower --retries)")
    cuda = torch.cuda.is_available()
    kw = dict(
        output_dir=str(output_dir), seed=int(hp["seed"]), learning_rate=float(hp["learning_rate"]),
        num_train_epochs=float(hp["epochs"]), per_device_train_batch_size=bs // split,
        per_device_eval_batch_size=bs // split, gradient_accumulation_steps=split,
        lr_scheduler_type=hp.get("lr_scheduler", "linear"), warmup_steps=float(hp.get("warmup_ratio", 0.0)),
        weight_decay=float(hp.get("weight_decay", 0.0)), train_sampling_strategy="group_by_length",
        eval_strategy="no", save_strategy="no", report_to="none", logging_strategy="steps",
        logging_steps=50, disable_tqdm=True, use_cpu=not cuda, dataloader_pin_memory=cuda,
        **precision(mode),
    )
    kw.update(overrides)
    return TrainingArguments(**kw)


def chance_predictions(task: str, train_labels):
    """What a diverged run is scored as: a chance-level learner that ignores its input.

    Classification: the most frequent training label (ties: the smallest id) for every example.
    stsb: the mean training score for every pair (so both correlations are 0.0 by convention).
    squad_v2: no answer for every question, with no-answer probability 1.0.
    """
    kind = registry.get(task).kind
    if kind == "qa":
        return None
    y = np.asarray(train_labels)
    if kind == "regression":
        return float(y.mean())
    values, counts = np.unique(y.astype(np.int64), return_counts=True)
    return int(values[np.argmax(counts)])


def squad_postprocess(examples, features, start_logits, end_logits, cls_index, n_best: int,
                      max_answer_length: int, null_threshold: float):
    """Answer text and no-answer probability per question from window logits (the standard recipe).

    Per question: the null score s_null = min over its windows of start[CLS] + end[CLS]; candidates are
    spans (i, j) of the n_best start and n_best end logits of a window, inside the context, i <= j,
    j - i + 1 <= max_answer_length, scored start[i] + end[j]. With s* the best candidate score, the
    prediction is "" (no answer) when there is no candidate or s_null - s* > null_threshold, else the
    span's context text. The no-answer probability is sigmoid(s_null - s*) (1.0 without candidate),
    which the official evaluation sweeps for best_exact/best_f1.
    """
    by_example: dict[str, list[int]] = {}
    for k, eid in enumerate(features["example_id"]):
        by_example.setdefault(eid, []).append(k)
    offsets_all = features["offset_mapping"]
    preds, na_probs = {}, {}
    for ex in examples:
        qid, context = ex["id"], ex["context"]
        null, best, text = math.inf, -math.inf, ""
        for k in by_example.get(qid, []):
            s, e, offsets = start_logits[k], end_logits[k], offsets_all[k]
            c = cls_index[k]
            null = min(null, float(s[c] + e[c]))
            n = len(offsets)
            top_s = np.argsort(s[:n])[::-1][:n_best]
            top_e = np.argsort(e[:n])[::-1][:n_best]
            for i in top_s:
                if offsets[i] is None:
                    continue
                for j in top_e:
                    if offsets[j] is None or j < i or j - i + 1 > max_answer_length:
                        continue
                    score = float(s[i] + e[j])
                    if score > best:
                        best, text = score, context[offsets[i][0]:offsets[j][1]]
        if best == -math.inf or not math.isfinite(null):
            preds[qid], na_probs[qid] = "", 1.0
            continue
        diff = null - best
        preds[qid] = "" if diff > null_threshold else text
        na_probs[qid] = 1.0 / (1.0 + math.exp(-diff)) if diff > -700 else 0.0
    return preds, na_probs


def _squad_references(examples) -> dict[str, list[str]]:
    return {ex["id"]: list(ex["answers"]["text"]) for ex in examples}


def _sorted_by_length(ds):
    order = np.argsort(lengths(ds), kind="stable")
    return ds.select(order.tolist())


def _finite_parameters(model) -> bool:
    import torch

    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def retry_out_of_memory(run, batch_split: int, batch_size: int, max_retries: int = 3):
    """``run(split)`` with the per-device batch ``batch_size // split``; on CUDA out-of-memory, free the
    GPU and run again with the split doubled (half the per-device batch, twice the accumulation: the
    same effective batch and mean-loss gradient, so the same science), up to ``max_retries`` times.
    Returns ``(result, retries)``. Retrying in the job keeps Snakemake's retries for what only a new
    job can fix (a node failure, a time limit), never for corrupt inputs or bad data."""
    import gc

    import torch

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


def finetune(ptm: str, model_dir, tokenized_dir, task: str, hp: dict, metrics_path, save_dir=None,
             batch_split: int = 1, precision_mode: str = "auto") -> dict:
    """Fine-tune PTM ``model_dir`` on ``task`` (features in ``tokenized_dir``); write ``metrics_path``.

    ``metrics.json``: ``{"ptm", "base", "task", "metrics": {split: {key: value}}, "diverged",
    "hyperparameters" (hp + per_device_batch, grad_accum, effective_batch, bf16, fp16), "train_examples",
    "train_time_s", "eval_time_s", "provenance"}``. With ``save_dir`` the fine-tuned task model and
    the tokenizer are saved there (safetensors). Returns the metrics record.
    """
    import datasets
    import torch
    from transformers import DataCollatorWithPadding, set_seed

    t_start = time.perf_counter()
    kind = registry.get(task).kind
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
    tok = _tokenizer(model_dir)
    seed = int(hp["seed"])
    train = subsample(dd["train"], hp.get("max_train_examples"), seed)
    if kind == "qa":
        train_labels = None
    else:
        train_labels = np.asarray(train["labels"])

    def attempt(split: int):
        with tempfile.TemporaryDirectory(prefix="ptmbench-trainer-") as scratch:
            args = training_arguments(hp, scratch, split, precision_mode)
            set_seed(seed)
            model = load_task_model(model_dir, task, info.get("label_names"))
            collator = DataCollatorWithPadding(tok, pad_to_multiple_of=8 if torch.cuda.is_available() else None)
            trainer = _make_trainer_class()(
                model=model, args=args, train_dataset=train, data_collator=collator, processing_class=tok,
                train_lengths=lengths(train))
            log.info("training %s on %s: %d examples, %s epochs, per-device batch %d x %d accumulation, %s",
                     ptm, task, len(train), hp["epochs"], args.per_device_train_batch_size,
                     args.gradient_accumulation_steps, "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32")
            t0, c0 = time.perf_counter(), time.process_time()
            out = trainer.train()
            train_time, train_cpu = time.perf_counter() - t0, time.process_time() - c0
            diverged = trainer.diverged_at is not None or not _finite_parameters(model)
            t0 = time.perf_counter()
            if diverged:
                results = _chance_metrics(task, dd, train_labels)
            else:
                results = _evaluate(trainer, task, dd, tok, hp)
            eval_time = time.perf_counter() - t0
        return args, model, trainer, out, diverged, results, train_time, train_cpu, eval_time

    (args, model, trainer, out, diverged, results, train_time, train_cpu, eval_time), oom_retries = \
        retry_out_of_memory(attempt, int(batch_split), int(hp["batch_size"]))

    record = {
        "ptm": ptm, "base": base_of(ptm), "task": task, "metrics": results,
        "diverged": diverged,
        "hyperparameters": {**hp, "per_device_batch": args.per_device_train_batch_size,
                            "grad_accum": args.gradient_accumulation_steps,
                            "effective_batch": args.per_device_train_batch_size * args.gradient_accumulation_steps,
                            "bf16": args.bf16, "fp16": args.fp16, "length_grouped": True},
        "train_examples": len(train), "train_tokens": int(sum(lengths(train))),
        "train_steps": int(out.global_step), "train_loss": None if diverged else _finite_or_none(out.training_loss),
        "train_time_s": round(train_time, 3), "train_cpu_s": round(train_cpu, 3), "eval_time_s": round(eval_time, 3),
        "provenance": provenance(ptm=ptm, task=task, seed=seed, model_dir=str(model_dir),
                                 tokenized_dir=str(tokenized_dir), batch_split=int(batch_split),
                                 oom_retries=oom_retries,
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


def chance_description(task: str) -> str:
    return {"qa": "no answer for every question (no-answer probability 1.0)",
            "regression": "the mean training score for every pair (correlations 0.0)"}.get(
        registry.get(task).kind, "the most frequent training label for every example")


def _finite_or_none(x):
    return float(x) if x is not None and math.isfinite(x) else None


def base_of(ptm: str) -> str:
    """The base model of PTM ``ptm`` (base names contain no '_', schema-enforced; the rest is validated)."""
    return naming.parse_ptm(ptm, [ptm.split("_", 1)[0]]).base


def _evaluate(trainer, task, dd, tok, hp) -> dict:
    if registry.get(task).kind == "qa":
        feats = _sorted_by_length(dd["validation"])
        pred = trainer.predict(feats.select_columns([c for c in feats.column_names
                                                     if c not in ("example_id", "offset_mapping")]))
        start, end = (np.asarray(x, dtype=np.float32) for x in pred.predictions[:2])
        cls = [_cls_index(tok, ids) for ids in feats["input_ids"]]
        examples = dd["validation_examples"]
        preds, na = squad_postprocess(examples, feats, start, end, cls, int(hp["n_best_size"]),
                                      int(hp["max_answer_length"]), float(hp["null_score_diff_threshold"]))
        return {"validation": M.squad_v2(preds, _squad_references(examples), na)}
    results = {}
    for split in eval_splits(task):
        ds = _sorted_by_length(dd[split])
        pred = trainer.predict(ds)
        logits = np.asarray(pred.predictions, dtype=np.float32)
        p = logits.reshape(-1) if registry.get(task).kind == "regression" else logits.argmax(-1)
        results[split] = M.glue(task, p, np.asarray(pred.label_ids))
    return results


def _chance_metrics(task, dd, train_labels) -> dict:
    if registry.get(task).kind == "qa":
        examples = dd["validation_examples"]
        refs = _squad_references(examples)
        return {"validation": M.squad_v2({q: "" for q in refs}, refs, {q: 1.0 for q in refs})}
    const = chance_predictions(task, train_labels)
    out = {}
    for split in eval_splits(task):
        gold = np.asarray(dd[split]["labels"])
        out[split] = M.glue(task, np.full(len(gold), const, dtype=gold.dtype), gold)
    return out
