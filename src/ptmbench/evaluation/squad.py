"""SQuAD v2 post-processing: from the window logits of a fine-tuned QA model to answers and metrics.

A question's context is split into token windows (``ptmbench.stages.tokenize``); the model scores a start
and an end logit per token of every window. :func:`postprocess` turns them into one answer text (or
"" for no answer) and a no-answer probability per question; :func:`score` adds the official SQuAD v2
evaluation (:func:`ptmbench.evaluation.metrics.squad_v2`) against :func:`references`. The CLS token
(:func:`cls_index`) stands for "no answer", in training labels and in the null score alike.
"""

from __future__ import annotations

import math

import numpy as np

from ptmbench.core.finetune_params import FinetuneParams
from ptmbench.evaluation import metrics as M


def cls_index(tokenizer, ids) -> int:
    """Position of the tokenizer's CLS token in a window's ``ids`` (0 when it has none)."""
    return ids.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in ids else 0


def references(examples) -> dict[str, list[str]]:
    """{question id: its gold answer texts} (empty for unanswerable questions)."""
    return {ex["id"]: list(ex["answers"]["text"]) for ex in examples}


def postprocess(examples, features, start_logits, end_logits, cls_indices, n_best: int,
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
            c = cls_indices[k]
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


def score(examples, features, start_logits, end_logits, cls_indices, hp: FinetuneParams) -> dict:
    """Official SQuAD v2 metrics of the answers :func:`postprocess` derives from the window logits,
    with ``hp``'s ``n_best_size``, ``max_answer_length`` and ``null_score_diff_threshold``."""
    preds, na_probs = postprocess(examples, features, start_logits, end_logits, cls_indices,
                                  int(hp.n_best_size), int(hp.max_answer_length),
                                  float(hp.null_score_diff_threshold))
    return M.squad_v2(preds, references(examples), na_probs)


def no_answer_score(examples) -> dict:
    """Official SQuAD v2 metrics of answering "no answer" to every question (probability 1.0)."""
    refs = references(examples)
    return M.squad_v2(dict.fromkeys(refs, ""), refs, dict.fromkeys(refs, 1.0))
