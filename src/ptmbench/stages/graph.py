"""Stage graph: the attention graph of a PTM and its per-head eigenvalue features (docs/graph.md).

The published file is a dill pickle of ``[(G, features, name)]``:

- ``G``, a ``networkx.DiGraph`` of an encoder with L layers and H heads; nodes (attribute ``label`` =
  name) ``E_self_{l}`` (l = 0..L, block inputs; the last is the output), ``E_self_{l}_add`` (l < L) and,
  per head h, ``E_self_{l}_QKt_{h}``, ``E_self_{l}_VO_{h}``, ``E_self_{l}_matmul_1_{h}``,
  ``E_self_{l}_matmul_2_{h}``; edges E_self_l -> QKt, E_self_l -> matmul_1, QKt -> matmul_1,
  matmul_1 -> matmul_2, VO -> matmul_2, matmul_2 -> E_self_l_add, E_self_l -> E_self_l_add (skip) and
  E_self_l_add -> E_self_{l+1}. 12 x 12 gives 601 nodes and 888 edges.
- ``features``: ``E_self_{l}_QKt_{h}`` / ``E_self_{l}_VO_{h}`` -> 1-D float32 tensor of length
  ``feature_length`` (128): with W_Q, W_K, W_V, W_O the layer's ``nn.Linear`` weights (out x in), d the
  hidden size and s:e the h-th block of d/H columns,
  QKt = eig(W_K[:, s:e]^T W_Q[:, s:e]) and VO = eig(W_O[s:e, :] W_V[:, s:e]) (the nonzero eigenvalues
  of the rank-d/H products W_Q[:, s:e] W_K[:, s:e]^T and W_V[:, s:e] W_O[s:e, :]), sorted by real part
  descending, ties by imaginary part ascending, interleaved (re, im), zero-padded or cut.
- ``name``: the PTM name.

Weights are read straight from the safetensors file (no model is built, transformers is not imported).
Each layer's projections are found from the checkpoint's structure, its module paths and shapes and
config.json, not from a list of architectures (:func:`find_attention`): a self-attention block is a
module holding query, key and value ``Linear`` weights under one of the names in :data:`ROLE_NAMES`
(``query``/``key``/``value`` in BERT, RoBERTa, XLM-R, ELECTRA, ALBERT, ERNIE, CamemBERT; ``q_lin``... in
DistilBERT; ``query_proj``... in DeBERTa-v2/v3; ``q``/``k``/``v`` in MPNet) or one fused projection of
:data:`FUSED` (ModernBERT's ``Wqkv``, split in thirds; DeBERTa's ``in_proj``, split per head); its output
projection is an output-named ``Linear`` in the same module (``out_lin``, ``dense``, ``o``, ``Wo``) or in
a sibling module (BERT's ``attention.output.dense``). Blocks are ordered by the layer numbers in their
paths. A checkpoint storing fewer blocks than layers shares them as ``num_hidden_groups`` in config.json
says (ALBERT's layer groups: layer l uses block l * groups // layers, so every layer of a one-group
ALBERT gets the same features). Task checkpoints' prefixes (``bert.``...) and heads are ignored. The
eigenvalues of all heads of all layers are computed in one batched ``torch.linalg.eigvals`` call. The
pickle holds only networkx, torch and builtin objects, so reading it needs dill, networkx and torch, not
ptmbench. It is byte-reproducible: the same weights give the same file (:func:`dump_graph`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from ptmbench.io.checkpoint import Checkpoint, CheckpointError
from ptmbench.io.provenance import atomic_file, provenance

log = logging.getLogger("ptmbench.stages.graph")

FEATURE_LENGTH = 128

# Module names (the last component of a Linear's path) of the attention projections, by role.
ROLE_NAMES: dict[str, tuple[str, ...]] = {
    "query": ("query", "q", "q_lin", "q_proj", "query_proj", "wq", "Wq", "q_head"),
    "key": ("key", "k", "k_lin", "k_proj", "key_proj", "wk", "Wk", "k_head"),
    "value": ("value", "v", "v_lin", "v_proj", "value_proj", "wv", "Wv", "v_head"),
    "output": ("dense", "out_lin", "o", "o_proj", "out_proj", "wo", "Wo", "post_proj"),
}
# Fused query/key/value projections (3d x d): module name -> how its rows split into W_Q, W_K, W_V.
#   "thirds":   [W_Q; W_K; W_V]                      (ModernBERT: qkv.view(..., 3, heads, head_dim))
#   "per_head": [W_Q^0; W_K^0; W_V^0; W_Q^1; ...]     (DeBERTa: view(..., heads, 3 * head_dim).chunk(3))
FUSED: dict[str, str] = {"Wqkv": "thirds", "in_proj": "per_head"}




class UnsupportedArchitecture(CheckpointError):
    """The checkpoint is whole, but its architecture has no graph of docs/graph.md: no per-layer
    multi-head self-attention found, attention narrower than the hidden size, several attention kinds,
    or layers shared in a way the graph cannot express. An unseen model's graph job then writes a
    "no graph" record (:func:`write_graph` with ``optional``) instead of failing."""


# The "no graph" record: what an unseen model's graph file holds when its architecture has no graph
# (a dict, never the published list of one (G, features, name) tuple, so no reader can take it for one).
NO_GRAPH = "no_graph"


# --------------------------------------------------------------------------------------------------
# the graph


def node_names(layers: int, heads: int) -> list[str]:
    """Every node: per layer its input, then per head QKt, VO, matmul_1, matmul_2, then the add."""
    names = []
    for layer in range(layers):
        p = f"E_self_{layer}"
        names.append(p)
        for h in range(heads):
            names += [f"{p}_QKt_{h}", f"{p}_VO_{h}", f"{p}_matmul_1_{h}", f"{p}_matmul_2_{h}"]
        names.append(f"{p}_add")
    names.append(f"E_self_{layers}")
    return names


def edges(layers: int, heads: int) -> list[tuple[str, str]]:
    out = []
    for layer in range(layers):
        p = f"E_self_{layer}"
        for h in range(heads):
            qkt, vo, m1, m2 = f"{p}_QKt_{h}", f"{p}_VO_{h}", f"{p}_matmul_1_{h}", f"{p}_matmul_2_{h}"
            out += [(p, qkt), (p, m1), (qkt, m1), (m1, m2), (vo, m2), (m2, f"{p}_add")]
        out += [(p, f"{p}_add"), (f"{p}_add", f"E_self_{layer + 1}")]
    return out


def attention_graph(layers: int, heads: int):
    """The ``networkx.DiGraph`` of docs/graph.md (nodes carry ``label`` = their name)."""
    import networkx as nx

    G = nx.DiGraph()
    for n in node_names(layers, heads):
        G.add_node(n, label=n)
    G.add_edges_from(edges(layers, heads))
    return G


# --------------------------------------------------------------------------------------------------
# the features


def sort_eigenvalues(ev):
    """Sort complex ``ev`` (..., n) by real part descending, ties by imaginary part ascending."""
    import torch

    idx = torch.sort(ev.imag, dim=-1, stable=True).indices  # secondary key first, then a stable
    ev = torch.gather(ev, -1, idx)                             # sort on the primary key
    idx = torch.sort(ev.real, dim=-1, descending=True, stable=True).indices
    return torch.gather(ev, -1, idx)


def eigen_features(ev, feature_length: int = FEATURE_LENGTH):
    """Sorted eigenvalues (..., n) -> interleaved (re, im) float32 (..., feature_length), padded/cut."""
    import torch

    flat = torch.view_as_real(sort_eigenvalues(ev)).flatten(-2).to(torch.float32)
    n = flat.shape[-1]
    if n >= feature_length:
        return flat[..., :feature_length]
    return torch.nn.functional.pad(flat, (0, feature_length - n))


def head_products(wq, wk, wv, wo, heads: int):
    """Per head h (columns s:e): W_K[:, s:e]^T W_Q[:, s:e] and W_O[s:e, :] W_V[:, s:e], as (H, dh, dh)."""
    d = wq.shape[1]
    dh = d // heads
    cols = lambda w: w.reshape(w.shape[0], heads, dh).transpose(0, 1)  # (H, out, dh)  # noqa: E731
    q, k, v = cols(wq), cols(wk), cols(wv)
    o = wo.reshape(heads, dh, wo.shape[1])                             # (H, dh, in): rows s:e
    return k.transpose(1, 2) @ q, o @ v


def funnel_layers(cfg: dict) -> list[int]:
    """A Funnel Transformer's layers as run, each the index of the stored layer it runs: block b has
    ``block_sizes[b]`` stored layers, each run ``block_repeats[b]`` times in a row (FunnelEncoder;
    medium: blocks 6, 3 x 2, 3 x 2: 12 stored layers, 18 run); the sequence is pooled between blocks."""
    sizes = [int(n) for n in cfg["block_sizes"]]
    repeats = [int(r) for r in cfg.get("block_repeats") or [1] * len(sizes)]
    if len(repeats) != len(sizes) or min(repeats, default=1) < 1:
        raise UnsupportedArchitecture(f"block_repeats {repeats} do not fit block_sizes {sizes} in config.json")
    out, first = [], 0
    for size, rep in zip(sizes, repeats, strict=True):
        out += [first + i for i in range(size) for _ in range(rep)]
        first += size
    return out


def model_shape(cfg: dict) -> tuple[int, int, int]:
    """(layers, heads, hidden) from a config.json. DistilBERT calls them n_layers, n_heads, dim;
    FlauBERT / XLM n_layers, n_heads, emb_dim; Funnel Transformer n_head, d_model and its layers are
    those it runs (:func:`funnel_layers`)."""
    try:
        if "block_sizes" in cfg:  # Funnel Transformer
            return len(funnel_layers(cfg)), int(cfg["n_head"]), int(cfg["d_model"])
        layers = cfg.get("num_hidden_layers", cfg.get("n_layers"))
        heads = cfg.get("num_attention_heads", cfg.get("n_heads"))
        hidden = cfg.get("hidden_size", cfg.get("dim", cfg.get("emb_dim")))
        return int(layers), int(heads), int(hidden)
    except (TypeError, KeyError) as err:
        raise UnsupportedArchitecture(f"config.json lacks the layer/head/hidden sizes ({cfg.get('model_type')}): "
                                      "no multi-head self-attention to read") from err


@dataclass(frozen=True)
class Attention:
    """One stored self-attention block: the checkpoint names of its projection weights.

    ``qkv``: (W_Q, W_K, W_V) names, or one fused name with ``split`` (a value of :data:`FUSED`);
    ``output``: W_O's name; ``index``: the numbers in the block's path (its layer, group...)."""

    path: str
    qkv: tuple[str, ...]
    output: str
    split: str = ""
    index: tuple[int, ...] = ()

    @property
    def pattern(self) -> str:
        return re.sub(r"(?<=\.)\d+(?=\.|$)", "{}", self.path)


def _modules(ck: Checkpoint) -> dict[str, dict[str, str]]:
    """module path -> {child Linear's name: its weight's tensor name}, for every 2-D ``*.weight``."""
    out: dict[str, dict[str, str]] = {}
    for name in ck.names:
        if name.endswith(".weight") and len(ck.shape(name)) == 2:
            parent, _, leaf = name[: -len(".weight")].rpartition(".")
            out.setdefault(parent, {})[leaf] = name
    return out


def _output_projection(mods: dict, parent: str, taken: set[str]) -> str | None:
    """W_O of the block in ``parent``: an output-named Linear in ``parent`` itself, else the one in a
    sibling module (BERT: ``attention.self`` holds q/k/v, ``attention.output.dense`` is W_O)."""
    own = [n for leaf, n in mods[parent].items() if leaf in ROLE_NAMES["output"] and n not in taken]
    if own:
        return own[0] if len(own) == 1 else None
    up = parent.rpartition(".")[0]
    sib = [n for p, leaves in mods.items() if p != parent and p.rpartition(".")[0] == up
           for leaf, n in leaves.items() if leaf in ROLE_NAMES["output"]]
    return sib[0] if len(sib) == 1 else None


def find_attention(ck: Checkpoint) -> list[Attention]:
    """The self-attention blocks of checkpoint ``ck``, in layer order (see the module docstring)."""
    mods = _modules(ck)
    blocks = []
    for parent, leaves in mods.items():
        roles = {r: [n for leaf, n in leaves.items() if leaf in ROLE_NAMES[r]] for r in ("query", "key", "value")}
        fused = [(n, FUSED[leaf]) for leaf, n in leaves.items() if leaf in FUSED]
        if all(len(v) == 1 for v in roles.values()):
            qkv, split = tuple(roles[r][0] for r in ("query", "key", "value")), ""
        elif len(fused) == 1 and not any(roles.values()):
            qkv, split = (fused[0][0],), fused[0][1]
        else:
            continue
        out = _output_projection(mods, parent, set(qkv))
        if out is None:
            raise CheckpointError(f"{ck.dir}: self-attention {parent!r} has query/key/value weights but no "
                                  f"single output projection named one of {ROLE_NAMES['output']} in it or "
                                  f"beside it (found {sorted(leaves)})")
        index = tuple(int(x) for x in parent.split(".") if x.isdigit())
        blocks.append(Attention(parent, qkv, out, split, index))
    kinds = sorted({b.pattern for b in blocks})
    if len(kinds) > 1:
        raise UnsupportedArchitecture(f"{ck.dir}: self-attention blocks of {len(kinds)} kinds ({kinds}); an encoder "
                              "with one self-attention per layer is expected")
    return sorted(blocks, key=lambda b: b.index)


def _not_found(ck: Checkpoint, cfg: dict) -> UnsupportedArchitecture:
    mods = _modules(ck)
    first = [f"{p}.{leaf}" for p, leaves in mods.items() if ".0." in f".{p}." for leaf in leaves][:12]
    return UnsupportedArchitecture(
        f"{ck.dir}: no self-attention found in this {cfg.get('model_type')!r} checkpoint "
        f"(architectures {cfg.get('architectures')}): looked for a module holding query/key/value Linear "
        f"weights named {ROLE_NAMES['query']} / {ROLE_NAMES['key']} / {ROLE_NAMES['value']}, or a fused "
        f"{sorted(FUSED)}; its layer-0 Linear weights are {first or sorted(mods)[:12]}. A new naming is "
        "one entry in ptmbench.stages.graph.ROLE_NAMES or FUSED")


def _weights(ck: Checkpoint, block: Attention, hidden: int, heads: int):
    """(W_Q, W_K, W_V, W_O) of ``block`` as float32 (hidden x hidden), a fused projection split."""
    import torch

    def read(name, rows):
        t = ck.get(name).to(torch.float32)
        if tuple(t.shape) != (rows, hidden):
            raise UnsupportedArchitecture(f"{ck.file_of[name]}: {name!r} has shape {list(t.shape)}, expected "
                                  f"[{rows}, {hidden}] (hidden_size {hidden} in config.json)")
        return t

    if block.split == "thirds":
        q, k, v = read(block.qkv[0], 3 * hidden).view(3, hidden, hidden).unbind(0)
    elif block.split == "per_head":
        w = read(block.qkv[0], 3 * hidden).view(heads, 3, hidden // heads, hidden)
        q, k, v = (w[:, i].reshape(hidden, hidden) for i in range(3))
    else:
        q, k, v = (read(n, hidden) for n in block.qkv)
    return q, k, v, read(block.output, hidden)


def layer_blocks(ck: Checkpoint, cfg: dict, layers: int) -> tuple[list[Attention], list[int]]:
    """(stored blocks, the block index each layer uses): one block per layer, or ``num_hidden_groups``
    blocks shared by consecutive layers (ALBERT: layer l uses group l * groups // layers)."""
    blocks = find_attention(ck)
    if not blocks:
        raise _not_found(ck, cfg)
    if int(cfg.get("inner_group_num", 1)) != 1:
        raise UnsupportedArchitecture(f"{ck.dir}: inner_group_num {cfg['inner_group_num']} in config.json (several "
                              "attention blocks per shared layer) is not supported")
    if "block_sizes" in cfg:  # Funnel Transformer: layers run from the stored ones, repeats included
        run = funnel_layers(cfg)
        if len(blocks) == sum(int(n) for n in cfg["block_sizes"]) and len(run) == layers:
            return blocks, run
    groups = int(cfg.get("num_hidden_groups", layers))
    if len(blocks) == layers:
        return blocks, list(range(layers))
    if len(blocks) == groups < layers:
        return blocks, [i * groups // layers for i in range(layers)]
    raise CheckpointError(
        f"{ck.dir}: {len(blocks)} self-attention block(s) stored ({blocks[0].pattern}, numbers "
        f"{[b.index for b in blocks]}), but config.json has {layers} layers"
        + (f" in {groups} shared groups" if groups != layers else "")
        + ": tensors are missing (a truncated or mismatched checkpoint?)")


def attention_features(model_dir, feature_length: int = FEATURE_LENGTH) -> dict:
    """``E_self_{l}_QKt_{h}`` / ``E_self_{l}_VO_{h}`` -> float32 tensor (feature_length,) for every head."""
    import torch

    ck = Checkpoint(model_dir)
    cfg = ck.config()
    layers, heads, hidden = model_shape(cfg)
    if hidden % heads:
        raise UnsupportedArchitecture(f"{ck.dir}: hidden size {hidden} is not a multiple of {heads} heads")
    blocks, source = layer_blocks(ck, cfg, layers)
    used = sorted(set(source))
    qk, vo = [], []
    for i in used:
        a, b = head_products(*_weights(ck, blocks[i], hidden, heads), heads)
        qk.append(a)
        vo.append(b)
    ev = torch.linalg.eigvals(torch.stack([torch.stack(qk), torch.stack(vo)]))  # (2, blocks, H, dh)
    feats = eigen_features(ev, feature_length)
    pos = {blk: j for j, blk in enumerate(used)}
    out = {}
    for layer in range(layers):
        j = pos[source[layer]]
        for h in range(heads):
            out[f"E_self_{layer}_QKt_{h}"] = feats[0, j, h].clone()
            out[f"E_self_{layer}_VO_{h}"] = feats[1, j, h].clone()
    return out


# --------------------------------------------------------------------------------------------------
# the stage


def build_graph(model_dir, name: str, feature_length: int = FEATURE_LENGTH):
    """``(G, features, name)`` of the PTM in ``model_dir``."""
    cfg = Checkpoint(model_dir).config()
    layers, heads, _ = model_shape(cfg)
    return attention_graph(layers, heads), attention_features(model_dir, feature_length), str(name)


def dump_graph(obj, fh) -> None:
    """``dill.dump(obj, fh)``, with every CPU tensor stored by value: ``torch.as_tensor(values,
    dtype=...)`` (a ``functools.partial``) instead of torch's own pickling, whose storage key is the
    tensor's memory address, so two dumps of equal content differ in bytes. Loading needs only dill
    (or pickle) and torch, and gives equal tensors (float32 values survive a Python float exactly)."""
    import functools

    import dill
    import torch

    class Pickler(dill.Pickler):
        def reducer_override(self, o):
            if isinstance(o, torch.Tensor) and o.device.type == "cpu" and not o.requires_grad:
                return functools.partial(torch.as_tensor, dtype=o.dtype), (o.tolist(),)
            return NotImplemented

    Pickler(fh).dump(obj)


def no_graph_reason(obj) -> str | None:
    """The reason of a "no graph" record (:data:`NO_GRAPH`), or None for anything else."""
    return str(obj[NO_GRAPH]) if isinstance(obj, dict) and NO_GRAPH in obj else None


def write_graph(model_dir, name: str, out_path, feature_length: int = FEATURE_LENGTH, optional: bool = False) -> None:
    """Write the dill pickle ``[(G, features, name)]`` of docs/graph.md to ``out_path`` (atomically).

    ``optional`` (the graph jobs of unseen models): an architecture without the graph
    (:class:`UnsupportedArchitecture`) writes the "no graph" record ``{"no_graph": reason, "name": name}``
    instead of failing, so the model's performance and LogME are still exported (without a graph file;
    its ``MANIFEST.json`` lists it under ``no_graph``). A damaged checkpoint fails either way."""
    if int(feature_length) < 1:
        raise ValueError(f"feature_length {feature_length!r} must be a positive number of values")
    try:
        graph = build_graph(model_dir, name, int(feature_length))
    except UnsupportedArchitecture as err:
        if not optional:
            raise
        with atomic_file(out_path, "wb") as fh:
            dump_graph({NO_GRAPH: str(err), "name": str(name)}, fh)
        log.warning("%s: no graph (%s); wrote the 'no graph' record %s", name, err, out_path)
        return
    with atomic_file(out_path, "wb") as fh:
        dump_graph([graph], fh)
    G, feats, _ = graph
    log.info("provenance: %s", provenance(ptm=str(name), model_dir=str(model_dir), feature_length=feature_length))
    log.info("%s: graph of %d nodes, %d edges, %d features of length %d -> %s", name,
             G.number_of_nodes(), G.number_of_edges(), len(feats), feature_length, out_path)
