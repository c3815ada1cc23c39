"""ptmbench.stages.graph: the published dill file (graph nodes/edges, eigenvalue features) for every family."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

from ptmbench.data.tiny import TINY_FAMILIES
from ptmbench.io.checkpoint import CheckpointError
from ptmbench.stages import graph

FAMILIES = TINY_FAMILIES  # the six published families, camembert, ernie, deberta, deberta-v2, mpnet, modernbert
# and those of the published unseen models: flaubert, funnel-base, bert-japanese, bert-chinese


def attention_modules(model):
    """Per layer (W_Q, W_K, W_V, W_O) taken from the instantiated AutoModel's modules, written out per
    architecture from transformers' modelling code (the oracle graph.py must agree with)."""
    cfg = model.config
    if cfg.model_type == "deberta":  # in_proj: per head h, rows [q_h; k_h; v_h] (modeling_deberta.py)
        out = []
        for layer in model.encoder.layer:
            ws = layer.attention.self.in_proj.weight.chunk(cfg.num_attention_heads * 3, dim=0)
            q, k, v = (torch.cat([ws[i * 3 + j] for i in range(cfg.num_attention_heads)]) for j in range(3))
            out.append((q, k, v, layer.attention.output.dense.weight))
        return out
    if cfg.model_type == "deberta-v2":
        return [(a.self.query_proj.weight, a.self.key_proj.weight, a.self.value_proj.weight, a.output.dense.weight)
                for a in (layer.attention for layer in model.encoder.layer)]
    if cfg.model_type == "modernbert":  # Wqkv: view(..., 3, heads, head_dim), Wo
        return [(*layer.attn.Wqkv.weight.chunk(3, dim=0), layer.attn.Wo.weight) for layer in model.layers]
    if cfg.model_type == "mpnet":
        return [(a.q.weight, a.k.weight, a.v.weight, a.o.weight)
                for a in (layer.attention.attn for layer in model.encoder.layer)]
    if cfg.model_type == "flaubert":  # XLM's MultiHeadAttention per layer (modeling_flaubert.py)
        return [(a.q_lin.weight, a.k_lin.weight, a.v_lin.weight, a.out_lin.weight) for a in model.attentions]
    if cfg.model_type == "funnel":  # FunnelRelMultiheadAttention per layer of every block (the encoder only)
        return [(a.q_head.weight, a.k_head.weight, a.v_head.weight, a.post_proj.weight)
                for block in model.encoder.blocks for a in (layer.attention for layer in block)]
    if cfg.model_type == "distilbert":
        return [(a.q_lin.weight, a.k_lin.weight, a.v_lin.weight, a.out_lin.weight)
                for a in (layer.attention for layer in model.transformer.layer)]
    if cfg.model_type == "albert":
        groups = model.encoder.albert_layer_groups
        out = []
        for i in range(cfg.num_hidden_layers):
            a = groups[int(i / (cfg.num_hidden_layers / cfg.num_hidden_groups))].albert_layers[0].attention
            out.append((a.query.weight, a.key.weight, a.value.weight, a.dense.weight))
        return out
    return [(layer.attention.self.query.weight, layer.attention.self.key.weight,
             layer.attention.self.value.weight, layer.attention.output.dense.weight)
            for layer in model.encoder.layer]


def direct_feature(m, length=128):
    """Eigenvalues of one head's matrix by a plain per-head call, sorted (re desc, im asc), interleaved."""
    ev = torch.linalg.eigvals(m).tolist()
    ev.sort(key=lambda z: (-z.real, z.imag))
    flat = [x for z in ev for x in (z.real, z.imag)]
    flat = (flat + [0.0] * length)[:length]
    return torch.tensor(flat, dtype=torch.float32)


def direct_features(model_dir, length=128):
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir))
    d, H = model.config.hidden_size, model.config.num_attention_heads
    dh = d // H
    out = {}
    with torch.no_grad():
        for layer, (wq, wk, wv, wo) in enumerate(attention_modules(model)):
            for h in range(H):
                s, e = h * dh, (h + 1) * dh
                out[f"E_self_{layer}_QKt_{h}"] = direct_feature(wk[:, s:e].T @ wq[:, s:e], length)
                out[f"E_self_{layer}_VO_{h}"] = direct_feature(wo[s:e, :] @ wv[:, s:e], length)
    return out


def assert_features_close(ours, ref):
    assert list(ours) == list(ref)
    for k, v in ref.items():
        assert ours[k].dtype == torch.float32 and ours[k].shape == v.shape, k
        assert torch.allclose(ours[k], v, rtol=1e-4, atol=1e-6), (k, ours[k][:8], v[:8])


# --------------------------------------------------------------------------------------------------
# the graph


def test_graph_nodes_and_edges_12x12():
    G = graph.attention_graph(12, 12)
    assert G.number_of_nodes() == 601 and G.number_of_edges() == 888
    assert all(G.nodes[n]["label"] == n for n in G)
    assert {"E_self_0", "E_self_12", "E_self_11_add", "E_self_11_QKt_11", "E_self_0_VO_0",
            "E_self_3_matmul_1_7", "E_self_3_matmul_2_7"} <= set(G)
    assert "E_self_12_add" not in G
    assert set(G.successors("E_self_3")) == ({f"E_self_3_QKt_{h}" for h in range(12)}
                                             | {f"E_self_3_matmul_1_{h}" for h in range(12)} | {"E_self_3_add"})
    assert set(G.predecessors("E_self_3_matmul_2_5")) == {"E_self_3_matmul_1_5", "E_self_3_VO_5"}
    assert set(G.predecessors("E_self_3_matmul_1_5")) == {"E_self_3", "E_self_3_QKt_5"}
    assert list(G.successors("E_self_3_add")) == ["E_self_4"]
    assert G.in_degree("E_self_3_VO_5") == 0 and G.in_degree("E_self_0") == 0
    assert G.out_degree("E_self_12") == 0


@pytest.mark.parametrize("layers,heads", [(2, 4), (24, 16), (6, 12)])
def test_graph_counts_formula(layers, heads):
    G = graph.attention_graph(layers, heads)
    assert G.number_of_nodes() == 2 * layers + 1 + 4 * layers * heads
    assert G.number_of_edges() == 2 * layers + 6 * layers * heads


def test_sort_eigenvalues_real_desc_then_imag_asc():
    ev = torch.tensor([1 + 2j, 3 + 0j, 1 - 2j, -1 + 1j, 1 + 0j, 3 - 1j], dtype=torch.complex64)
    got = graph.sort_eigenvalues(ev).tolist()
    assert got == [3 - 1j, 3 + 0j, 1 - 2j, 1 + 0j, 1 + 2j, -1 + 1j]
    feats = graph.eigen_features(ev, 16)
    assert feats.tolist() == [3, -1, 3, 0, 1, -2, 1, 0, 1, 2, -1, 1, 0, 0, 0, 0]
    assert graph.eigen_features(ev, 5).tolist() == [3, -1, 3, 0, 1]


# --------------------------------------------------------------------------------------------------
# features of every family against a direct per-head computation


@pytest.mark.parametrize("family", FAMILIES)
def test_features_match_direct_eigvals(tiny_model, family):
    model_dir = tiny_model(family)
    G, feats, name = graph.build_graph(model_dir, f"tiny-{family}")
    assert name == f"tiny-{family}"
    ref = direct_features(model_dir)
    assert_features_close(feats, ref)
    # hidden 64, 4 heads: 16 eigenvalues -> 32 values, then zeros up to 128
    v = feats["E_self_1_QKt_2"]
    assert v.shape == (128,) and torch.count_nonzero(v[32:]) == 0 and torch.count_nonzero(v[:32]) > 16
    assert set(feats) == {n for n in G if "_QKt_" in n or "_VO_" in n}


def test_albert_layers_share_features(tiny_model):
    feats = graph.attention_features(tiny_model("albert"))
    layers = {int(k.split("_")[2]) for k in feats}
    assert len(layers) > 1
    for k, v in feats.items():
        layer = k.split("_")[2]
        assert torch.equal(v, feats[k.replace(f"E_self_{layer}_", "E_self_0_", 1)])
    bert = graph.attention_features(tiny_model("bert"))
    assert not torch.equal(bert["E_self_0_QKt_0"], bert["E_self_1_QKt_0"])


@pytest.mark.parametrize("family,head", [("bert", "cls"), ("distilbert", "qa"), ("albert", "cls"),
                                         ("xlm-roberta", "qa"), ("modernbert", "qa"), ("deberta-v2", "cls"),
                                         ("mpnet", "qa"), ("deberta", "cls"), ("flaubert", "qa"),
                                         ("funnel-base", "cls")])
def test_task_model_checkpoints_give_the_encoder_features(tiny_model, tmp_path, family, head):
    from transformers import AutoModelForQuestionAnswering, AutoModelForSequenceClassification

    base = tiny_model(family)
    cls = AutoModelForQuestionAnswering if head == "qa" else AutoModelForSequenceClassification
    cls.from_pretrained(str(base)).save_pretrained(str(tmp_path / "task"))
    ours = graph.attention_features(tmp_path / "task")
    base_feats = graph.attention_features(base)
    for k, v in base_feats.items():
        assert torch.equal(ours[k], v), k


def test_funnel_repeated_layers_share_their_features(tmp_path):
    """Funnel Transformer with block_repeats (medium: 6, 3 x 2, 3 x 2): a repeated layer is run again, so the
    graph has a layer for each run and the runs of one stored layer share its features."""
    from transformers import FunnelBaseModel, FunnelConfig

    cfg = FunnelConfig(vocab_size=50, block_sizes=[1, 2], block_repeats=[1, 2], d_model=32, n_head=4, d_head=8,
                       d_inner=64, max_position_embeddings=32)
    torch.manual_seed(0)
    model = FunnelBaseModel(cfg)
    model.save_pretrained(str(tmp_path / "m"))
    assert graph.funnel_layers(cfg.to_dict()) == [0, 1, 1, 2, 2]
    G, feats, _ = graph.build_graph(tmp_path / "m", "m")
    assert "E_self_5" in G and "E_self_6" not in G and len(feats) == 2 * 5 * 4
    stored = attention_modules(model)  # the 3 stored layers
    with torch.no_grad():
        for layer, block in enumerate([0, 1, 1, 2, 2]):
            wq, wk, wv, wo = stored[block]
            for h in range(4):
                s, e = h * 8, (h + 1) * 8
                ref = direct_feature(wk[:, s:e].T @ wq[:, s:e])
                assert torch.allclose(feats[f"E_self_{layer}_QKt_{h}"], ref, rtol=1e-4, atol=1e-6)
                ref = direct_feature(wo[s:e, :] @ wv[:, s:e])
                assert torch.allclose(feats[f"E_self_{layer}_VO_{h}"], ref, rtol=1e-4, atol=1e-6)
    assert torch.equal(feats["E_self_1_QKt_0"], feats["E_self_2_QKt_0"])
    assert not torch.equal(feats["E_self_2_QKt_0"], feats["E_self_3_QKt_0"])


def test_12x12_graph_and_features(tmp_path):
    """601 nodes / 888 edges and 288 features from a 12-layer, 12-head model (hidden 48, head size 4)."""
    from transformers import AutoModel, BertConfig

    cfg = BertConfig(vocab_size=50, hidden_size=48, num_hidden_layers=12, num_attention_heads=12,
                     intermediate_size=64, max_position_embeddings=32)
    torch.manual_seed(0)
    AutoModel.from_config(cfg).save_pretrained(str(tmp_path / "m"))
    G, feats, _ = graph.build_graph(tmp_path / "m", "m")
    assert (G.number_of_nodes(), G.number_of_edges(), len(feats)) == (601, 888, 288)
    assert_features_close(feats, direct_features(tmp_path / "m"))
    assert all(torch.count_nonzero(v[8:]) == 0 for v in feats.values())  # 4 eigenvalues, padded


@pytest.mark.parametrize("length", [128, 10, 32, 7])
def test_feature_length_pads_or_cuts(tiny_model, length):
    model_dir = tiny_model("electra")
    feats = graph.attention_features(model_dir, feature_length=length)
    full = direct_features(model_dir, length=32)  # 16 eigenvalues = 32 values, unpadded
    for k, v in feats.items():
        assert v.shape == (length,)
        n = min(length, 32)
        assert torch.allclose(v[:n], full[k][:n], rtol=1e-4, atol=1e-6)
        assert torch.count_nonzero(v[n:]) == 0


# --------------------------------------------------------------------------------------------------
# the file


def test_dill_file_unpickles_without_ptmbench(tiny_model, tmp_path):
    out = tmp_path / "graphs" / "tiny-bert_cola_mnli_0.5.dill"
    graph.write_graph(tiny_model("bert"), "tiny-bert_cola_mnli_0.5", out)
    assert out.is_file() and not [p for p in out.parent.iterdir() if p.name.startswith(".")]
    code = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "ptmbench":
                    raise ImportError("ptmbench must not be needed to read the graph file")
        sys.meta_path.insert(0, Block())
        import dill, networkx, torch
        with open({str(out)!r}, "rb") as fh:
            data = dill.load(fh)
        assert isinstance(data, list) and len(data) == 1
        G, features, name = data[0]
        assert type(G) is networkx.DiGraph and isinstance(features, dict) and type(name) is str
        assert all(type(v) is torch.Tensor and v.dtype == torch.float32 and v.shape == (128,)
                   for v in features.values())
        assert not any(m.split(".")[0] == "ptmbench" for m in sys.modules)
        print(name, G.number_of_nodes(), G.number_of_edges(), len(features))
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["tiny-bert_cola_mnli_0.5", "37", "52", "16"]


def test_errors_name_the_model(tmp_path, tiny_model):
    with pytest.raises(CheckpointError, match="does not exist"):
        graph.write_graph(tmp_path / "nope", "x", tmp_path / "x.dill")
    assert not (tmp_path / "x.dill").exists()
    from transformers import AutoModel, BertConfig

    cfg = BertConfig(vocab_size=50, hidden_size=48, num_hidden_layers=2, num_attention_heads=5,
                     intermediate_size=64)
    (tmp_path / "m").mkdir()
    cfg.to_json_file(str(tmp_path / "m" / "config.json"))
    AutoModel.from_pretrained(str(tiny_model("bert"))).save_pretrained(str(tmp_path / "w"))
    (tmp_path / "w" / "model.safetensors").rename(tmp_path / "m" / "model.safetensors")
    with pytest.raises(CheckpointError, match="not a multiple of 5 heads"):
        graph.attention_features(tmp_path / "m")


def _renamed(src, dst, rename):
    """A copy of model ``src`` in ``dst`` with tensor names changed by ``rename`` (None drops a tensor)."""
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst)
    tensors = load_file(str(dst / "model.safetensors"))
    save_file({rename(k): v for k, v in tensors.items() if rename(k)}, str(dst / "model.safetensors"))
    return dst


def test_unrecognised_attention_names_the_model_type_and_what_was_found(tiny_model, tmp_path):
    m = _renamed(tiny_model("bert"), tmp_path / "m", lambda k: k.replace("self.query", "self.ask"))
    with pytest.raises(CheckpointError, match=r"no self-attention found in this 'bert' checkpoint") as err:
        graph.write_graph(m, "m", tmp_path / "m.dill")
    assert "encoder.layer.0.attention.self.ask" in str(err.value) and "ROLE_NAMES" in str(err.value)
    assert not (tmp_path / "m.dill").exists()


def test_missing_layer_is_an_error_not_a_shared_layer(tiny_model, tmp_path):
    m = _renamed(tiny_model("deberta-v2"), tmp_path / "m",
                 lambda k: None if k.startswith("encoder.layer.1.attention.self.key_proj") else k)
    with pytest.raises(CheckpointError, match=r"1 self-attention block\(s\) stored .* config.json has 2 layers"):
        graph.attention_features(m)


def test_output_projection_must_be_unambiguous(tiny_model, tmp_path):
    # a second output-named Linear beside BERT's attention.output: which one is W_O cannot be told
    import shutil

    from safetensors.torch import load_file, save_file

    m = tmp_path / "m"
    shutil.copytree(tiny_model("bert"), m)
    tensors = load_file(str(m / "model.safetensors"))
    tensors["encoder.layer.0.attention.extra.dense.weight"] = torch.zeros(64, 64)
    save_file(tensors, str(m / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"'encoder\.layer\.0\.attention\.self' has query/key/value"):
        graph.attention_features(m)
