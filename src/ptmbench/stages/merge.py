"""Stage merge: two fine-tuned encoders of one base PTM -> one merged encoder (docs/merge.md).

Notation: θ_0 the base PTM's tensor, θ_a / θ_b the same tensor in the encoders fine-tuned on tasks
t1 / t2, r the merge ratio, τ_i = θ_i - θ_0 the task vectors. Methods (one module each in
:mod:`ptmbench.stages.merge_methods`, mergekit-style; ``merge.method`` in the config picks one):

- ``published`` (default, the paper's): θ = (1 - r) θ_a + r θ_b for every tensor whose name ends in
  ``.weight``; every other tensor (biases, buffers) is θ_0.
- ``linear``: θ = (1 - r) θ_a + r θ_b for every floating-point tensor.
- ``task_arithmetic`` (Ilharco et al., ICLR 2023): θ = θ_0 + λ (2(1 - r) τ_a + 2r τ_b); at r = 0.5 this
  is their task-vector sum θ_0 + λ (τ_a + τ_b). λ = ``scale`` (default 1).
- ``ties`` (Yadav et al., NeurIPS 2023): trim each τ_i to its top-``density`` fraction of entries by
  magnitude, elect the sign γ = sgn(Σ_i w_i τ̂_i), and take the disjoint (weighted) mean of the entries
  that agree with γ: τ = Σ_i w_i τ̂_i [sgn τ̂_i = γ] / Σ_i w_i [sgn τ̂_i = γ] (0 where none agrees),
  θ = θ_0 + λ τ, with w_a = 1 - r, w_b = r (r = 0.5: the paper's plain disjoint mean), λ = ``scale``.

The output holds exactly the base encoder's tensors (``AutoModel`` keys). Fine-tuned task checkpoints
carry the architecture prefix (``bert.``, ``roberta.``, ``distilbert.``...) and head tensors
(``classifier.*``, ``qa_outputs.*``): the prefix is stripped and heads ignored. A tensor missing from a
fine-tuned checkpoint (a QA model has no pooler) is θ_0 on that side.

Streaming: tensors are read one at a time (:class:`ptmbench.io.checkpoint.Checkpoint`, a plain file
read per tensor), merged, and collected into the output dict, written once
(:func:`ptmbench.io.checkpoint.save_tensors`): peak memory is the output plus a few tensors, never three
models. No model is instantiated.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections import Counter
from pathlib import Path

from ptmbench.io.checkpoint import WEIGHT_FILES, WEIGHTS, Checkpoint, CheckpointError, save_tensors
from ptmbench.io.provenance import atomic_dir, provenance, sha256_files, write_json
from ptmbench.stages.merge_methods import MergeMethod, make_method

log = logging.getLogger("ptmbench.stages.merge")

# Files of a model directory that are not copied from the base into the merged model.
NOT_COPIED = {*WEIGHT_FILES, "provenance.json", "merge.json"}


# --------------------------------------------------------------------------------------------------
# checkpoints (read by ptmbench.io.checkpoint)


def key_map(base: Checkpoint, ft: Checkpoint) -> dict[str, str]:
    """Base tensor name -> its name in ``ft`` (a task model: architecture prefix stripped, heads ignored).

    The prefix is the one under which most base tensors are found ('' for an AutoModel checkpoint,
    ``bert.``/``roberta.``/``distilbert.``... for a task model). Base tensors ``ft`` lacks are left out.
    """
    base_names = set(base.names)
    votes = Counter()
    for name in ft.names:
        if name in base_names:
            votes[""] += 1
        head, _, rest = name.partition(".")
        if rest in base_names:
            votes[head + "."] += 1
    if not votes:
        raise CheckpointError(
            f"{ft.dir}: none of its {len(ft.names)} tensors is a tensor of the base model {base.dir} "
            f"(e.g. {sorted(base_names)[:2]}): is it a fine-tune of that base model?")
    prefix = votes.most_common(1)[0][0]
    return {n: prefix + n for n in base.names if prefix + n in ft}


# --------------------------------------------------------------------------------------------------
# methods


# --------------------------------------------------------------------------------------------------
# the stage


def merge_tensors(base: Checkpoint, a: Checkpoint, b: Checkpoint, ratio: float, method: MergeMethod):
    """Yield (name, tensor, merged, missing) for every base tensor, reading tensors one by one.

    ``merged``: whether the method combined it (else it is θ_0); ``missing``: the sides ('a', 'b')
    whose checkpoint lacks the tensor, where θ_0 stood in. θ_0 is read only where it is needed.
    """
    import torch

    maps = {"a": key_map(base, a), "b": key_map(base, b)}
    todo = [n for n in base.names if method.applies(n, base.dtype(n))]
    for name in todo:
        for side, ck in (("a", a), ("b", b)):
            src = maps[side].get(name)
            if src is not None and (ck.shape(src) != base.shape(name) or ck.dtype(src) != base.dtype(name)):
                raise CheckpointError(
                    f"tensor {name!r}: {ck.file_of[src]} has {src!r} with shape {list(ck.shape(src))} "
                    f"{ck.dtype(src)}, the base {base.file_of[name]} has shape {list(base.shape(name))} "
                    f"{base.dtype(name)}; both must be fine-tunes of the same base model")
    # θ_a is read into a fresh tensor (the result is usually computed in it), θ_b into one reused buffer
    scratch = {"a": None, "b": torch.empty(max((base.nbytes(n) for n in todo), default=0), dtype=torch.uint8)}
    busy = scratch["b"].untyped_storage().data_ptr()
    todo = set(todo)
    for name in base.names:
        if name not in todo:
            yield name, base.get(name), False, ()
            continue
        srcs = {side: maps[side].get(name) for side in ("a", "b")}
        missing = tuple(side for side, src in srcs.items() if src is None)
        t0 = base.get(name) if (method.uses_base or missing) else None
        sides = [t0.clone() if srcs[side] is None else ck.get(srcs[side], scratch[side])
                 for side, ck in (("a", a), ("b", b))]
        merged = method.merge(t0 if method.uses_base else None, sides[0], sides[1], ratio)
        if merged.untyped_storage().data_ptr() == busy:  # a view of the scratch buffer: copy it out
            merged = merged.clone()
        yield name, merged.contiguous(), True, missing


def _finetune_info(model_dir: Path) -> dict:
    """task / diverged of a fine-tuned model, from the provenance.json the finetune stage writes."""
    try:
        info = json.loads((model_dir / "provenance.json").read_text())
    except (OSError, ValueError):
        return {}
    return {k: info[k] for k in ("ptm", "task", "diverged") if k in info}


def merge_models(base_dir, a_dir, b_dir, ratio: float, out_dir, method: str = "published",
                 density: float = 0.2, scale: float = 1.0) -> dict:
    """Merge the encoders fine-tuned from ``base_dir`` in ``a_dir`` (t1) and ``b_dir`` (t2) into ``out_dir``.

    ``out_dir`` gets the merged ``model.safetensors`` (the base's ``AutoModel`` keys), the base's
    ``config.json`` and tokenizer files, and ``merge.json`` (method, ratio, inputs, tensor counts,
    provenance, ``sha256`` of every other file). Written atomically. Returns the ``merge.json`` record.
    """
    ratio = float(ratio)
    if not 0.0 <= ratio <= 1.0:  # NaN fails too
        raise ValueError(f"merge ratio {ratio!r} is outside [0, 1]; merged = (1 - r) * t1 + r * t2")
    algo = make_method(method, density=density, scale=scale)
    start = time.perf_counter()
    base, a, b = Checkpoint(base_dir), Checkpoint(a_dir), Checkpoint(b_dir)
    base_type = base.config().get("model_type")
    for ck in (a, b):
        if (ft_type := ck.config().get("model_type")) != base_type:
            raise CheckpointError(f"{ck.dir}/config.json has model_type {ft_type!r}, the base "
                                  f"{base.dir} has {base_type!r}: not a fine-tune of that base model")
    out: dict = {}
    counts: Counter = Counter()
    from_base: dict[str, list[str]] = {"a": [], "b": []}
    for name, tensor, merged, missing in merge_tensors(base, a, b, ratio, algo):
        out[name] = tensor
        counts["merged" if merged else "base"] += 1
        for side in missing:
            from_base[side].append(name)
    for side, names in from_base.items():
        if names:
            log.info("%s lacks %d merged tensor(s), the base's used on that side: %s",
                     (a if side == "a" else b).dir, len(names), names)
    record = {
        "method": algo.name, "ratio": ratio,
        **algo.values(),
        "inputs": {"base": str(base_dir), "a": str(a_dir), "b": str(b_dir)},
        "finetunes": {"a": _finetune_info(a.dir), "b": _finetune_info(b.dir)},
        "tensors": {"total": len(out), "merged": counts["merged"], "from_base": counts["base"],
                    "missing_in_a": from_base["a"], "missing_in_b": from_base["b"]},
        "provenance": provenance(wall_time_s=round(time.perf_counter() - start, 3)),
    }
    with atomic_dir(out_dir) as tmp:
        save_tensors(out, Path(tmp) / WEIGHTS)
        del out
        for src in sorted(base.dir.iterdir()):
            if src.is_file() and src.name not in NOT_COPIED and not src.name.startswith("."):
                shutil.copyfile(src, Path(tmp) / src.name)  # new file: the user's umask, not src's mode
        record["sha256"] = sha256_files(tmp)
        record["provenance"]["wall_time_s"] = round(time.perf_counter() - start, 3)
        write_json(Path(tmp) / "merge.json", record)
    log.info("merged %s + %s (%s, r=%s): %d tensors merged, %d from the base, %.1f s", a.dir, b.dir,
             algo.name, ratio, counts["merged"], counts["base"], record["provenance"]["wall_time_s"])
    return record
