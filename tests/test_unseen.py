"""The published unseen models in the paper setup: their names (``_`` allowed, never read as a merge),
``export_name`` (the unseen run of a seen base model exported under the published name), the "no graph"
record of an architecture without the graph, and the export keys and file names they give."""

from __future__ import annotations

import json
from pathlib import Path

import dill
import pytest
import yaml
from test_export import make_graph, write_inputs

from ptmbench.core import naming, paths
from ptmbench.settings.config import ConfigError, validate
from ptmbench.stages import export, graph

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = REPO / "resources" / "published" / "ptm_model_bench" / "performance"


def paper() -> dict:
    return validate(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))


def tiny_config(unseen: dict) -> dict:
    cfg = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    cfg["unseen_models"] = unseen
    return cfg


# ---------------------------------------------------------------------------------------------- config

def test_paper_setup_has_the_published_unseen_set():
    """Every published unseen name is exported by exactly one unseen entry of config.yaml, each from the hub."""
    cfg = paper()
    zoo = paths.Zoo.from_config(cfg)
    published = json.loads((PUBLISHED / "unseen_base_models" / "unrelated_base_cola_performance_score.json")
                           .read_text())["cola"]
    assert len(published) == 32 and len(zoo.unseen) == 32
    assert sorted(zoo.export_name(m) for m in zoo.unseen) == sorted(published)
    assert {"flaubert_small_cased", "small-base", "bert-base-japanese"} <= set(zoo.unseen)
    # xlm-roberta-base: a seen base model, and a second, unseen run exported under the same name
    assert "xlm-roberta-base" in zoo.models and zoo.export_names == {"xlm-roberta-base-unseen": "xlm-roberta-base"}
    assert all(spec["source"] == "hub" and spec["id"] and spec["revision"] for spec in cfg["unseen_models"].values())
    ids = {spec["id"] for spec in cfg["unseen_models"].values()}
    assert {"funnel-transformer/small-base", "tohoku-nlp/bert-base-japanese", "flaubert/flaubert_base_cased",
            "dbmdz/bert-base-german-cased", "openai-community/roberta-base-openai-detector"} <= ids
    # the merged PTMs are unchanged: 12 base models x 45 pairs
    assert len(zoo.merged) == 540 and len(zoo.ptms) == 584


def test_unseen_names_may_contain_underscores_but_not_read_as_merges():
    assert naming.unseen_name_problem("flaubert_small_cased") is None
    assert naming.unseen_name_problem("my_model_v2") is None
    problem = naming.unseen_name_problem("my-bert_cola_mnli_0.5")
    assert "reads as a merged PTM name ('my-bert' merged on cola and mnli)" in problem
    assert naming.merged_shape("x_mnli_cola_0.5") == ("x", "mnli", "cola")  # either order is refused
    validate(tiny_config({"tiny_flau_small": {"source": "tiny", "family": "flaubert"}}))
    with pytest.raises(ConfigError, match=r"unseen_models\.x_sst2_stsb_0\.5: unseen model name"):
        validate(tiny_config({"x_sst2_stsb_0.5": {"source": "tiny", "family": "bert"}}))
    # a merged base model's name still may not contain "_"
    cfg = tiny_config({})
    cfg["models"] = {"tiny_bert": cfg["models"]["tiny-bert"]}
    with pytest.raises(ConfigError, match="tiny_bert"):
        validate(cfg)


def test_export_name_rules():
    bert = {"source": "tiny", "family": "bert"}
    ok = validate(tiny_config({"tiny-bert-unseen": {**bert, "export_name": "tiny-bert"}}))
    assert paths.Zoo.from_config(ok).export_name("tiny-bert-unseen") == "tiny-bert"
    assert paths.Zoo.from_config(ok).export_name("tiny-bert") == "tiny-bert"
    cfg = tiny_config({})
    cfg["models"]["tiny-bert"]["export_name"] = "other"
    with pytest.raises(ConfigError, match="models.tiny-bert.export_name: only an unseen model"):
        validate(cfg)
    with pytest.raises(ConfigError, match="both exported as 'same'"):
        validate(tiny_config({"a": {**bert, "export_name": "same"}, "b": {**bert, "export_name": "same"}}))
    with pytest.raises(ConfigError, match="export_name 'b' is the name of another unseen model"):
        validate(tiny_config({"a": {**bert, "export_name": "b"}, "b": bert}))


def test_unseen_names_with_underscores_parse_and_target_whole():
    zoo = paths.Zoo.from_config(validate(tiny_config({"tiny_electra_small": {"source": "tiny", "family": "electra"}})))
    assert zoo.parse("tiny_electra_small") == naming.PTM("tiny_electra_small")
    assert zoo.base_of("tiny_electra_small") == "tiny_electra_small"
    assert paths.target_problem("results/finetune/tiny_electra_small/sst2/metrics.json", zoo) is None
    assert paths.target_problem("results/graphs/tiny_electra_small.dill", zoo) is None
    assert "never merged" in paths.target_problem("results/merged/tiny_electra_small/sst2_stsb_0.5", zoo)


# ---------------------------------------------------------------------------------------------- no graph

def test_an_architecture_without_the_graph_writes_a_no_graph_record_when_optional(tmp_path):
    """FNet mixes tokens by Fourier transforms: no self-attention, so no graph. An unseen model's graph job
    writes the "no graph" record; a merged or seen one's fails."""
    import torch
    from transformers import AutoModel, FNetConfig

    torch.manual_seed(0)
    AutoModel.from_config(FNetConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, intermediate_size=64,
                                     max_position_embeddings=32)).save_pretrained(str(tmp_path / "fnet"))
    with pytest.raises(graph.UnsupportedArchitecture, match="no multi-head self-attention to read"):
        graph.write_graph(tmp_path / "fnet", "fnet_x", tmp_path / "a.dill")
    assert not (tmp_path / "a.dill").exists()
    graph.write_graph(tmp_path / "fnet", "fnet_x", tmp_path / "b.dill", optional=True)
    with open(tmp_path / "b.dill", "rb") as fh:
        record = dill.load(fh)
    assert record["name"] == "fnet_x" and "lacks the layer/head/hidden sizes (fnet)" in graph.no_graph_reason(record)
    assert graph.no_graph_reason(make_graph("x")) is None
    # a damaged checkpoint is no architecture question: it fails even when optional
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text((tmp_path / "fnet" / "config.json").read_text())
    with pytest.raises(Exception) as err:
        graph.write_graph(tmp_path / "broken", "broken", tmp_path / "c.dill", optional=True)
    assert not isinstance(err.value, graph.UnsupportedArchitecture) and not (tmp_path / "c.dill").exists()


def _no_graph(path: Path, name: str) -> None:
    with open(path, "wb") as fh:
        dill.dump({graph.NO_GRAPH: "no self-attention found", "name": name}, fh)


def test_export_writes_published_unseen_keys_and_keeps_runs_without_a_graph(tmp_path):
    models, unseen, tasks = ["alpha-base"], ["flaubert_small_cased", "alpha-base-unseen"], ["cola", "sst2"]
    names = {"alpha-base-unseen": "alpha-base"}
    ft, lm, gr = write_inputs(tmp_path, models=models, unseen=unseen, tasks=tasks)
    _no_graph(tmp_path / "results/graphs/flaubert_small_cased.dill", "flaubert_small_cased")
    with open(tmp_path / "results/graphs/alpha-base-unseen.dill", "wb") as fh:
        dill.dump(make_graph("alpha-base"), fh)  # the graph job stores the export name
    out = tmp_path / "results/ptm_model_bench"
    manifest = export.export(ft, lm, gr, models, unseen, tasks, out, tmp_path / "p.csv", tmp_path / "l.csv",
                             export_names=names)
    perf = json.loads((out / "performance/unseen_base_models/unrelated_base_cola_performance_score.json")
                      .read_text())["cola"]
    logme = json.loads((out / "performance/unseen_base_models/unrelated_base_sst2_logme.json").read_text())
    assert set(perf) == set(logme) == {"flaubert_small_cased", "alpha-base"}  # the published keys
    seen = json.loads((out / "performance/seen_base_models/base_cola_performance_score.json").read_text())["cola"]
    assert set(seen) == {"alpha-base"} and seen["alpha-base"] != perf["alpha-base"]  # two runs, both kept
    dills = sorted(p.name for p in (out / "base_model_dataset").iterdir())
    assert dills == ["base_alpha-base.dill", "unseen_base_alpha-base.dill"]  # no graph: no file
    assert manifest["no_graph"] == [{"ptm": "flaubert_small_cased", "reason": "no self-attention found"}]
    assert manifest["export_names"] == names
    # the tidy tables keep the run's own names
    import pandas as pd
    assert {"alpha-base-unseen", "flaubert_small_cased"} <= set(pd.read_csv(tmp_path / "p.csv")["ptm"])


def test_only_unseen_models_may_lack_a_graph(tmp_path):
    ft, lm, gr = write_inputs(tmp_path, models=["alpha-base"], unseen=[], tasks=["sst2"])
    _no_graph(tmp_path / "results/graphs/alpha-base.dill", "alpha-base")
    with pytest.raises(ValueError, match="'alpha-base' is not an unseen model: only unseen models may lack a graph"):
        export.export(ft, lm, gr, ["alpha-base"], [], ["sst2"], tmp_path / "out", tmp_path / "p.csv",
                      tmp_path / "l.csv")
    _no_graph(tmp_path / "results/graphs/alpha-base.dill", "someone-else")
    with pytest.raises(ValueError, match="'no graph' record of 'someone-else'"):
        export.export(ft, lm, gr, ["alpha-base"], [], ["sst2"], tmp_path / "out", tmp_path / "p.csv",
                      tmp_path / "l.csv")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------- acquire

@pytest.mark.parametrize("family, architecture", [("flaubert", "FlaubertModel"), ("funnel-base", "FunnelBaseModel"),
                                                  ("bert-japanese", "BertModel")])
def test_unseen_architectures_are_acquired_as_they_are(tiny_model, tmp_path, family, architecture):
    """The acquire job (here from a local path; a hub download is normalised the same way) keeps a Funnel
    "-base" checkpoint encoder-only and the Python tokenizers' files and settings (MeCab for Japanese BERT)."""
    from transformers import AutoModel

    from ptmbench.stages import acquire
    from ptmbench.stages.tokenize import load_tokenizer

    out = tmp_path / family
    acquire.acquire_model(family, {"source": "path", "path": str(tiny_model(family))}, out)
    assert json.loads((out / "config.json").read_text())["architectures"] == [architecture]
    assert type(AutoModel.from_pretrained(str(out))).__name__ == architecture
    tok = load_tokenizer(out)
    if family == "bert-japanese":
        assert tok.word_tokenizer_type == "mecab" and tok.mecab_kwargs == {"mecab_dic": "ipadic"}
        assert tok.tokenize("東京は日本の首都です。") == ["東京", "は", "日本", "の", "首都", "です", "。"]
