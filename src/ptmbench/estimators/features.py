"""Sentence features of a PTM for LogME: the mean of the last hidden state over non-padding tokens.

For example n with tokens 1..L_n (padding excluded by the attention mask) and last hidden states
h_{n,1..L_n} in R^D: f_n = (1 / L_n) sum_l h_{n,l}. Rows of F (N x D) follow the dataset order.

The original script averaged over the padding positions of its batch as well, so a feature depended
on which other examples shared the batch (and on the batch size). Here padding is masked out, batches
are formed from examples sorted by length (little padding, fast) and written back in the original
order, so features do not depend on batching (tested with batch sizes 1, 3 and 16).

An encoder that shortens the sequence (Funnel Transformer's "-base" checkpoints pool it by 2 between
blocks, so the last hidden state has fewer positions than the input) is averaged over its own output
positions, with the attention mask pooled as the model pools it (:func:`output_mask`). Its pooling
averages neighbouring positions, so in a padded batch the last real token of an odd-length example
would be pooled with padding: such a model gets batches of equal-length examples only
(:func:`pools_sequence`; no padding at all, so its features do not depend on batching either).
"""

from __future__ import annotations

import contextlib
import inspect
import logging

import numpy as np

from ptmbench.data.tokenized import lengths
from ptmbench.io.progress import Progress

log = logging.getLogger(__name__)

INPUT_COLUMNS = ("input_ids", "attention_mask", "token_type_ids")


def _pad(rows, pad_value, dtype):
    width = max(len(r) for r in rows)
    out = np.full((len(rows), width), pad_value, dtype=dtype)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


def pools_sequence(model) -> bool:
    """Whether ``model`` shortens the sequence between layers (Funnel Transformer's block pooling)."""
    return hasattr(getattr(model, "encoder", None), "attention_structure")


def batches(order, lens, batch_size: int, equal_lengths: bool = False):
    """Consecutive slices of ``order`` of at most ``batch_size`` examples; ``equal_lengths``: a new
    slice also wherever the length changes (``order`` sorted by length: a few more, smaller batches)."""
    start = 0
    while start < len(order):
        end = min(start + batch_size, len(order))
        if equal_lengths:
            same = lens[order[start:end]] == lens[order[start]]
            end = start + int(np.argmin(same)) if not same.all() else end
        yield order[start:end]
        start = end


def output_mask(model, mask, length: int):
    """The attention mask (B x T) of a last hidden state of ``length`` positions: ``mask`` itself, or,
    for an encoder that pools the sequence between blocks (Funnel Transformer: ``encoder.attention_structure``),
    ``mask`` pooled block by block as the model pools its own (``pool_tensor`` with mode ``min``: a
    pooled position is padding when any position it pools is)."""
    if mask.shape[1] == length:
        return mask
    structure = getattr(getattr(model, "encoder", None), "attention_structure", None)
    pool = getattr(structure, "pool_tensor", None)
    pooled = mask.float()
    while pool is not None and pooled.shape[1] > length:
        pooled = pool(pooled, mode="min")
    if pooled.shape[1] != length:
        raise ValueError(f"{type(model).__name__}: the last hidden state has {length} positions for {mask.shape[1]} "
                         "input tokens, and the model has no pooling (encoder.attention_structure.pool_tensor) "
                         "that gives its mask; mean pooling needs one mask value per output position")
    return pooled.to(mask.dtype)


PRECISIONS = ("auto", "fp32", "bf16")  # config logme.precision


def resolve_precision(mode: str, device_type: str, bf16_supported: bool = False) -> str:
    """The precision of the forward pass for config ``logme.precision`` ``mode``: ``auto`` is bf16
    autocast on a CUDA device that supports it and fp32 elsewhere (a CPU always fp32: bf16 there is
    slow without native instructions and machine-dependent with them); ``bf16`` asks for it anywhere."""
    if mode not in PRECISIONS:
        raise ValueError(f"logme.precision {mode!r}: use one of {', '.join(PRECISIONS)}")
    if mode == "auto":
        return "bf16" if device_type == "cuda" and bf16_supported else "fp32"
    return mode


def precision_on(mode: str, device=None) -> str:
    """:func:`resolve_precision` on ``device`` (default: the one :func:`load_model` picks)."""
    import torch

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return resolve_precision(mode, device.type, device.type == "cuda" and torch.cuda.is_bf16_supported())


def mean_pooled(model, dataset, batch_size: int = 64, pad_token_id: int = 0, precision: str = "auto") -> np.ndarray:
    """F (N x D, float32): masked mean of ``model``'s last hidden state for every example of
    ``dataset`` (columns input_ids, attention_mask[, token_type_ids], unpadded), in dataset order;
    the forward pass in ``precision`` (:func:`resolve_precision`)."""
    import torch

    missing = {"input_ids", "attention_mask"} - set(dataset.column_names)
    if missing:
        raise ValueError(f"tokenized dataset lacks columns {sorted(missing)} (has {dataset.column_names})")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = next(model.parameters()).device
    used = precision_on(precision, device)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if used == "bf16"
                else contextlib.nullcontext())
    accepted = inspect.signature(model.forward).parameters
    cols = [c for c in INPUT_COLUMNS if c in dataset.column_names and c in accepted]  # DistilBERT: no types
    n = len(dataset)
    lens = lengths(dataset)
    if n and lens.min() == 0:
        raise ValueError("tokenized dataset has an example with no tokens")
    order = np.argsort(-lens, kind="stable")  # longest first: memory problems show at once
    data = dataset.select_columns(cols)
    out = None
    model.eval()
    steps = Progress(f"features of {n} examples", n, "examples")
    with torch.inference_mode(), autocast:
        for idx in batches(order, lens, batch_size, pools_sequence(model)):
            rows = data[idx.tolist()]
            batch = {c: torch.from_numpy(_pad(rows[c], pad_token_id if c == "input_ids" else 0, np.int64))
                     .to(device) for c in cols}
            hidden = model(**batch).last_hidden_state.float()
            mask = output_mask(model, batch["attention_mask"], hidden.shape[1]).unsqueeze(-1).to(hidden.dtype)
            feats = ((hidden * mask).sum(1) / mask.sum(1)).cpu().numpy()
            if out is None:
                out = np.empty((n, feats.shape[1]), np.float32)
            out[idx] = feats
            steps.update(n=len(idx))
    steps.finish()
    if out is None:
        raise ValueError("tokenized dataset is empty")
    return out


def load_model(model_dir, device=None):
    """AutoModel of ``model_dir`` in eval mode on ``device`` (default: CUDA when available)."""
    import torch
    from transformers import AutoModel

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = AutoModel.from_pretrained(str(model_dir)).to(device).eval()
    return model


def encoder_parameters(model_dir) -> int:
    """The parameter count of the PTM's encoder (``AutoModel``: no task head; a tensor shared by several
    modules, as ALBERT's, once), from the checkpoint's ``config.json``: the model is built on the meta
    device, no weight is read. The ``param_count`` baseline of the report (docs/report.md)."""
    import torch
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(str(model_dir))
    with torch.device("meta"):
        model = AutoModel.from_config(config)
    return int(model.num_parameters())


def extract(model_dir, dataset, batch_size: int = 64, device=None, precision: str = "auto") -> np.ndarray:
    """Features of a PTM directory (AutoModel layout) on a tokenized dataset; see :func:`mean_pooled`."""
    import torch

    torch.manual_seed(0)
    model = load_model(model_dir, device)
    pad = getattr(model.config, "pad_token_id", None)
    log.info("features of %s: %d examples, batch %d, device %s, precision %s", model_dir, len(dataset),
             batch_size, next(model.parameters()).device, precision)
    return mean_pooled(model, dataset, batch_size, 0 if pad is None else int(pad), precision)
