"""Stage graph: the attention graph of a PTM and its per-head eigenvalue features (DESIGN.md §3).

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

Weights are read straight from the safetensors file (no model is built), for every family: BERT /
RoBERTa / XLM-R / ELECTRA (``encoder.layer.{l}.attention.self.{query,key,value}``,
``attention.output.dense``), DistilBERT (``transformer.layer.{l}.attention.{q,k,v,out}_lin``) and
ALBERT (``encoder.albert_layer_groups.{g}.albert_layers.0.attention.{query,key,value,dense}``, one group
shared by all layers: every layer gets the same features). Task checkpoints' prefixes (``bert.``...)
are accepted. The eigenvalues of all heads of all layers are computed in one batched
``torch.linalg.eigvals`` call. The pickle holds only networkx, torch and builtin objects, so reading it
needs dill, networkx and torch, not ptmbench.
"""

from __future__ import annotations

import logging

from ptmbench.merge import Checkpoint, CheckpointError
from ptmbench.provenance import atomic_file, provenance

log = logging.getLogger("ptmbench.graph")

FEATURE_LENGTH = 128

# (query, key, value, output) weight names per layout; {l} = layer, {g} = ALBERT layer group.
LAYOUTS: dict[str, tuple[str, str, str, str]] = {
    "bert": tuple(f"encoder.layer.{{l}}.attention.{n}.weight"
                  for n in ("self.query", "self.key", "self.value", "output.dense")),
    "distilbert": tuple(f"transformer.layer.{{l}}.attention.{n}.weight"
                        for n in ("q_lin", "k_lin", "v_lin", "out_lin")),
    "albert": tuple(f"encoder.albert_layer_groups.{{g}}.albert_layers.0.attention.{n}.weight"
                    for n in ("query", "key", "value", "dense")),
}


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
    """The ``networkx.DiGraph`` of DESIGN.md §3 (nodes carry ``label`` = their name)."""
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


def model_shape(cfg: dict) -> tuple[int, int, int]:
    """(layers, heads, hidden) from a config.json (DistilBERT calls them n_layers, n_heads, dim)."""
    try:
        layers = cfg.get("num_hidden_layers", cfg.get("n_layers"))
        heads = cfg.get("num_attention_heads", cfg.get("n_heads"))
        hidden = cfg.get("hidden_size", cfg.get("dim"))
        return int(layers), int(heads), int(hidden)
    except TypeError as err:
        raise CheckpointError(f"config.json lacks the layer/head/hidden sizes ({cfg.get('model_type')})") from err


def _layout(ck: Checkpoint) -> tuple[str, str]:
    """(layout name, key prefix): which naming scheme the checkpoint uses, under which prefix."""
    for name, (q, *_) in LAYOUTS.items():
        first = q.format(l=0, g=0)
        for key in ck.names:
            if key.endswith(first) and (key == first or key[: -len(first)].endswith(".")):
                return name, key[: -len(first)]
    raise CheckpointError(f"{ck.dir}: no attention weights of a known layout (e.g. "
                          f"{[v[0].format(l=0, g=0) for v in LAYOUTS.values()]})")


def attention_features(model_dir, feature_length: int = FEATURE_LENGTH) -> dict:
    """``E_self_{l}_QKt_{h}`` / ``E_self_{l}_VO_{h}`` -> float32 tensor (feature_length,) for every head."""
    import torch

    ck = Checkpoint(model_dir)
    cfg = ck.config()
    layers, heads, hidden = model_shape(cfg)
    if hidden % heads:
        raise CheckpointError(f"{ck.dir}: hidden size {hidden} is not a multiple of {heads} heads")
    layout, prefix = _layout(ck)
    if layout == "albert":
        groups = int(cfg.get("num_hidden_groups", 1))
        if int(cfg.get("inner_group_num", 1)) != 1:
            raise CheckpointError(f"{ck.dir}: ALBERT with inner_group_num != 1 is not supported")
        source = [i * groups // layers for i in range(layers)]  # layer -> its shared group (as ALBERT)
        blocks = sorted(set(source))
        names = lambda i: [prefix + n.format(g=i) for n in LAYOUTS[layout]]  # noqa: E731
    else:
        source = blocks = list(range(layers))
        names = lambda i: [prefix + n.format(l=i) for n in LAYOUTS[layout]]  # noqa: E731
    qk, vo = [], []
    for i in blocks:
        w = []
        for n in names(i):
            if n not in ck:
                raise CheckpointError(f"{ck.file_of.get(n, ck.dir)}: tensor {n!r} is missing "
                                      f"({layers} layers in config.json)")
            t = ck.get(n).to(torch.float32)
            if tuple(t.shape) != (hidden, hidden):
                raise CheckpointError(f"{ck.file_of[n]}: {n!r} has shape {list(t.shape)}, "
                                      f"expected [{hidden}, {hidden}] (hidden_size in config.json)")
            w.append(t)
        a, b = head_products(*w, heads)
        qk.append(a)
        vo.append(b)
    ev = torch.linalg.eigvals(torch.stack([torch.stack(qk), torch.stack(vo)]))  # (2, blocks, H, dh)
    feats = eigen_features(ev, feature_length)
    pos = {blk: j for j, blk in enumerate(blocks)}
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


def write_graph(model_dir, name: str, out_path, feature_length: int = FEATURE_LENGTH) -> None:
    """Write the dill pickle ``[(G, features, name)]`` of DESIGN.md §3 to ``out_path`` (atomically)."""
    import dill

    if int(feature_length) < 1:
        raise ValueError(f"feature_length {feature_length!r} must be a positive number of values")
    graph = build_graph(model_dir, name, int(feature_length))
    with atomic_file(out_path, "wb") as fh:
        dill.dump([graph], fh)
    G, feats, _ = graph
    log.info("provenance: %s", provenance(ptm=str(name), model_dir=str(model_dir), feature_length=feature_length))
    log.info("%s: graph of %d nodes, %d edges, %d features of length %d -> %s", name,
             G.number_of_nodes(), G.number_of_edges(), len(feats), feature_length, out_path)
