"""Stage tokenize: a task's data as model features, once per (base tokenizer, task), and reading them back.

* :func:`tokenize` (rule ``tokenize``) turns a task's data into model features with the base model's
  tokenizer (GLUE: unpadded, truncated to ``max_length``; SQuAD v2: ``max_length`` windows with
  ``doc_stride`` overlap, answer start/end token positions, CLS for unanswerable or out-of-window
  answers) and saves them with ``info.json``. The merged PTMs of a base share its tokenizer, so every
  fine-tune and LogME score of that base reuses these features.
* reading them back: :mod:`ptmbench.data.tokenized` (:func:`~ptmbench.data.tokenized.lengths`,
  :func:`~ptmbench.data.tokenized.subsample`), for the fine-tune and LogME stages.

Labels that are NaN/inf or out of range are bad data: :func:`check_labels` refuses them, naming the
row, before anything is written (and again before any training step, see ``ptmbench.stages.finetune``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from ptmbench.core import tasks as registry
from ptmbench.core.finetune_params import FinetuneParams
from ptmbench.evaluation.squad import cls_index
from ptmbench.io.progress import Progress
from ptmbench.io.provenance import atomic_dir, provenance, write_json

log = logging.getLogger("ptmbench.stages.tokenize")

def eval_splits(task: str) -> tuple[str, ...]:
    """Validation split(s) a task is evaluated on (its registry entry; mnli: matched and mismatched)."""
    return registry.get(task).eval_splits



def load_tokenizer(model_dir):
    """The base model's tokenizer; it returns token type ids whenever the model has token type
    embeddings (``type_vocab_size`` > 1 in config.json). transformers 5's ALBERT, Funnel Transformer
    and Japanese BERT tokenizers build them (the first segment 0, the second 1; Funnel's ``<cls>`` 2:
    what the models were pre-trained with, and what transformers 4 returned for the published runs)
    but do not return them unless asked; without them every token would get type 0."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    config = Path(model_dir) / "config.json"
    types = json.loads(config.read_text()).get("type_vocab_size") if config.is_file() else None
    if isinstance(types, int) and types > 1 and "token_type_ids" not in tok.model_input_names:
        tok.model_input_names = [*tok.model_input_names, "token_type_ids"]
    return tok


def check_labels(task: str, split: str, labels, where: str) -> None:
    """Refuse labels no model should be trained or scored on (NaN/inf or out-of-range STS-B scores,
    ids outside the task's classes): they come from bad data, not from training, so they are an error
    naming ``where``, the split, the row and the value, never a "diverged" run."""
    # schemas imports datasets: kept out of the Snakefile's parse (report.smk imports this module)
    from ptmbench.data import schemas as data

    bad = data.first_bad_label(task, split, labels)
    if bad:
        row, problem = bad
        raise ValueError(
            f"{where}, split {split}, row {row} (0-based): {problem}. The task data are bad: fix them and "
            f"re-acquire (delete resources/data/{registry.get(task).data}/{task} and the tokenised features, then "
            "re-run)")


def glue_features(tokenizer, task: str, dataset_dict, max_length: int, where: str = "GLUE data"):
    """GLUE splits (train + eval splits) -> unpadded features ``input_ids, attention_mask[, token_type_ids],
    labels`` (int64; float32 for regression tasks), truncated to ``max_length``. Labels are checked first
    (:func:`check_labels`; ``where`` names the data in the error)."""
    import datasets

    entry = registry.get(task)
    a, b = (*entry.text, None)[:2]
    out = {}
    for split in ("train", *eval_splits(task)):
        if split not in dataset_dict:
            raise ValueError(f"{task}: split {split!r} missing from the GLUE data (have {list(dataset_dict)}); "
                             f"re-run {entry.acquire_rule}")
        ds = dataset_dict[split]
        need = [c for c in (a, b, "label") if c and c not in ds.column_names]
        if need:
            raise ValueError(f"{task}/{split}: columns {need} missing (have {ds.column_names}); "
                             "the data must have the schema of ptmbench.data.schemas.features")
        check_labels(task, split, ds.with_format("numpy")["label"], f"GLUE {task} data {where}")

        done = Progress(f"tokenize {task}/{split}", len(ds), "examples")

        def enc(batch, done=done):
            done.update(n=len(batch[a]))
            texts = (batch[a],) if b is None else (batch[a], batch[b])
            feats = tokenizer(*texts, truncation=True, max_length=max_length)
            feats["labels"] = batch["label"]
            return dict(feats)

        ds = ds.map(enc, batched=True, remove_columns=ds.column_names, keep_in_memory=True,
                    desc=f"tokenize {task}/{split}")
        done.finish()
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


class _Windows(dict):
    """SQuAD windows made without a fast tokenizer, read like a fast tokenizer's ``BatchEncoding``."""

    def __init__(self, columns: dict, sequence_ids: list):
        super().__init__(columns)
        self._sequence_ids = sequence_ids

    def sequence_ids(self, i: int) -> list:
        return self._sequence_ids[i]


def piece_offsets(tokenizer, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    """Token ids of ``text`` and each token's character span, for a tokenizer without offsets (a
    Python tokenizer: FlauBERT's Moses + BPE, Japanese BERT's MeCab + WordPiece). ``text`` is split at
    whitespace, each word tokenised alone, and each piece found in its word in order (its ``##`` /
    ``</w>`` / ``▁`` marks removed; case, width and accents folded, as the tokenizers normalise); a
    piece not found there (normalised beyond that) spans from the end of the piece before it to the
    end of its word. Every token stays inside its own word."""
    import re
    import unicodedata

    def folded(x: str) -> tuple[str, list[int]]:
        """``x`` lower-cased, NFKD, accents dropped; and for each character, the index in ``x`` it is from."""
        out, origin = [], []
        for i, ch in enumerate(x):
            for c in unicodedata.normalize("NFKD", ch).lower():
                if not unicodedata.combining(c):
                    out.append(c)
                    origin.append(i)
        return "".join(out), origin

    ids, spans = [], []
    for m in re.finditer(r"\S+", text):
        word, ws, we = m.group(), m.start(), m.end()
        pieces = tokenizer.tokenize(word)
        fword, origin = folded(word)
        cursor, start_char = 0, 0  # in fword; in word
        for k, piece in enumerate(pieces):
            clean = folded(piece.removeprefix("##").removesuffix("</w>").lstrip("▁"))[0]
            at = fword.find(clean, cursor) if clean else -1
            if at >= 0:
                start, end = origin[at], origin[at + len(clean) - 1] + 1
                cursor = at + len(clean)
            else:
                start, end = start_char, len(word)
            start_char = end if end < len(word) else start_char
            spans.append((ws + start, we if k == len(pieces) - 1 else ws + end))
        ids += tokenizer.convert_tokens_to_ids(pieces)
    return ids, spans


def _windows_without_offsets(tokenizer, questions, contexts, max_length: int, doc_stride: int, right: bool):
    """What a fast tokenizer's ``return_overflowing_tokens`` + ``return_offsets_mapping`` give, for a
    tokenizer without them: the context in windows of the room left by the question and the special
    tokens, each starting ``room - doc_stride`` tokens after the last (``doc_stride`` tokens of overlap),
    with the special tokens and token types the tokenizer itself adds (:func:`piece_offsets`)."""
    special = tokenizer.num_special_tokens_to_add(pair=True)
    types = "token_type_ids" in tokenizer.model_input_names
    cols = {"input_ids": [], "attention_mask": [], "offset_mapping": [], "overflow_to_sample_mapping": []}
    if types:
        cols["token_type_ids"] = []
    seq_ids = []
    for j, (q, c) in enumerate(zip(questions, contexts, strict=True)):
        q_ids = tokenizer(q, add_special_tokens=False)["input_ids"]
        c_ids, c_off = piece_offsets(tokenizer, c)
        room = max_length - len(q_ids) - special
        start = 0
        while True:
            chunk, off = c_ids[start:start + room], c_off[start:start + room]
            first, second = (q_ids, chunk) if right else (chunk, q_ids)
            ids = tokenizer.build_inputs_with_special_tokens(first, second)
            mask = tokenizer.get_special_tokens_mask(first, second)
            seq, n = [], 0
            for m in mask:
                seq.append(None if m else (0 if n < len(first) else 1))
                n += 0 if m else 1
            ctx = 1 if right else 0
            it = iter(off)
            cols["input_ids"].append(ids)
            cols["attention_mask"].append([1] * len(ids))
            cols["offset_mapping"].append([next(it) if s == ctx else (0, 0) for s in seq])
            cols["overflow_to_sample_mapping"].append(j)
            if types:
                cols["token_type_ids"].append(tokenizer.create_token_type_ids_from_sequences(first, second))
            seq_ids.append(seq)
            if start + room >= len(c_ids):
                break
            start += room - doc_stride
    return _Windows(cols, seq_ids)


def _windows(tokenizer, examples, max_length, doc_stride, where: str = "SQuAD v2"):
    right = tokenizer.padding_side == "right"
    questions = [q.lstrip() for q in examples["question"]]
    check_question_room(tokenizer, examples, questions, max_length, doc_stride, where)
    if not tokenizer.is_fast:  # FlauBERT, Japanese BERT: Python tokenizers, no offsets or overflow
        return _windows_without_offsets(tokenizer, questions, examples["context"], max_length, doc_stride,
                                        right), (1 if right else 0)
    pair = (questions, examples["context"]) if right else (examples["context"], questions)
    enc = tokenizer(*pair, truncation="only_second" if right else "only_first", max_length=max_length,
                    stride=doc_stride, return_overflowing_tokens=True, return_offsets_mapping=True)
    return enc, (1 if right else 0)



def squad_train_features(tokenizer, examples: dict, max_length: int, doc_stride: int,
                         where: str = "SQuAD v2") -> dict:
    """Question/context windows with ``start_positions``/``end_positions`` (token indices of the
    answer's first and last token; the CLS index when unanswerable or outside the window)."""
    enc, ctx = _windows(tokenizer, examples, max_length, doc_stride, where)
    sample = enc.pop("overflow_to_sample_mapping")
    offsets = enc.pop("offset_mapping")
    starts, ends = [], []
    for i, off in enumerate(offsets):
        cls = cls_index(tokenizer, enc["input_ids"][i])
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


def tokenize(model_dir, task: str, data, out_dir, hp: FinetuneParams | dict) -> None:
    """Tokenise ``task`` with the tokenizer of ``model_dir`` into ``out_dir`` (``DatasetDict.save_to_disk``
    + ``info.json``). ``data``: a GLUE ``save_to_disk`` directory, or ``[train_json, dev_json]`` for squad_v2.
    ``hp``: its ``max_length`` (and SQuAD v2's ``doc_stride``)."""
    import datasets

    hp = FinetuneParams.from_dict(hp)
    start = time.perf_counter()
    tok = load_tokenizer(model_dir)
    if registry.get(task).kind == "qa":
        if isinstance(data, str | os.PathLike) or len(data) != 2:
            raise ValueError(f"squad_v2 data must be [train_json, dev_json], got {data!r}")
        dd = squad_dataset(tok, data[0], data[1], int(hp.max_length), int(hp.doc_stride))
        labels = None
    else:
        raw = datasets.load_from_disk(str(data))
        dd = glue_features(tok, task, raw, int(hp.max_length), str(data))
        feat = raw["train"].features["label"]
        labels = list(feat.names) if hasattr(feat, "names") else None
    with atomic_dir(out_dir) as tmp:
        dd.save_to_disk(str(tmp))
        write_json(Path(tmp) / "info.json", {
            "task": task, "tokenizer": str(model_dir), "tokenizer_class": type(tok).__name__,
            "label_names": labels, "hp": hp.as_dict(), "rows": {k: len(v) for k, v in dd.items()},
            "provenance": provenance(time_s=round(time.perf_counter() - start, 3)),
        })
    log.info("tokenized %s with %s: %s", task, model_dir, {k: len(v) for k, v in dd.items()})
