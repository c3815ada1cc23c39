"""Config validation: the shipped configs pass; each kind of bad config fails with one clear message."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from ptmbench.core import tasks as registry
from ptmbench.settings import config as cfgmod
from ptmbench.settings.config import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "config"


def _load(name: str) -> dict:
    return yaml.safe_load((CONFIGS / name).read_text())


@pytest.mark.parametrize("name", ["config.yaml", "demo.yaml", "test.yaml"])
def test_shipped_configs_validate(name):
    cfg = cfgmod.load(CONFIGS / name)
    assert cfg["models"]
    assert cfg["tasks"] == [t for t in registry.names() if t in cfg["tasks"]]
    assert "unseen_models" in cfg  # schema defaults are filled in
    assert cfg["finetune"]["glue"]["lr_scheduler"] in ("linear", "constant", "cosine")


def test_paper_config_is_the_paper_setup():
    cfg = cfgmod.load(CONFIGS / "config.yaml")
    assert len(cfg["models"]) == 12
    assert cfg["tasks"] == list(registry.PUBLISHED)
    assert cfg["merge"]["ratios"] == [0.5]
    assert all(m["source"] == "hub" and m["id"] and m["revision"] for m in cfg["models"].values())


def test_demo_config_is_offline():
    cfg = cfgmod.load(CONFIGS / "demo.yaml")
    assert {m["source"] for m in cfg["models"].values()} <= {"package", "tiny", "path"}
    assert any(m.get("family") == "albert" for m in cfg["models"].values())
    assert cfg["data"]["glue"]["source"] == "demo" and cfg["data"]["squad_v2"]["source"] == "demo"
    assert {"stsb", "squad_v2"} <= set(cfg["tasks"])


def _bad(change) -> str:
    cfg = copy.deepcopy(_load("demo.yaml"))
    change(cfg)
    with pytest.raises(ConfigError) as err:
        cfgmod.validate(cfg)
    return str(err.value)


def test_unknown_task():
    msg = _bad(lambda c: c["tasks"].append("sst3"))
    assert "tasks[" in msg and "'sst3'" in msg and "squad_v2" in msg and "custom_tasks" in msg


@pytest.mark.parametrize("ratio", [1.5, -0.1])
def test_ratio_outside_unit_interval(ratio):
    msg = _bad(lambda c: c["merge"].update(ratios=[0.5, ratio]))
    assert "merge.ratios[1]" in msg and "outside [0, 1]" in msg and repr(ratio) in msg


def test_model_without_source():
    msg = _bad(lambda c: c["models"].update({"my-model": {"id": "org/model"}}))
    assert "models.my-model" in msg and "'source'" in msg
    assert all(s in msg for s in ("hub", "path", "package", "tiny"))


def test_source_without_its_fields():
    msg = _bad(lambda c: c["models"].update({"m": {"source": "hub", "id": "org/model"}}))
    assert "models.m" in msg and "revision" in msg


def test_unknown_source():
    msg = _bad(lambda c: c["models"]["minilm"].update(source="ftp"))
    assert "models.minilm.source" in msg and "'ftp'" in msg and "package" in msg


@pytest.mark.parametrize("where, key", [((), "taks"), (("finetune", "glue"), "learning_rat"),
                                        (("models", "minilm"), "subdirr"), (("data", "glue"), "n_trian")])
def test_typo_key(where, key):
    def change(c):
        node = c
        for k in where:
            node = node[k]
        node[key] = 1
    msg = _bad(change)
    assert f"'{key}'" in msg and "unknown key" in msg and "allowed keys" in msg
    assert (".".join(where) or "<top level>") in msg


def test_model_name_with_underscore():
    msg = _bad(lambda c: c["models"].update({"my_model": {"source": "tiny", "family": "bert"}}))
    assert "my_model" in msg and "'_'" in msg


def test_unknown_tiny_family():
    msg = _bad(lambda c: c["models"]["tiny-albert"].update(family="gpt2"))
    assert "family" in msg and "'gpt2'" in msg and "xlm-roberta" in msg


def test_model_both_seen_and_unseen():
    msg = _bad(lambda c: c["unseen_models"].update({"minilm": {"source": "tiny", "family": "bert"}}))
    assert "minilm" in msg and "unseen_models" in msg


def test_missing_section_and_bad_glue_source():
    assert "merge" in _bad(lambda c: c.pop("merge"))
    msg = _bad(lambda c: c["data"]["glue"].update(source="url"))
    assert "data.glue.source" in msg and "demo" in msg


def test_doc_stride_not_below_max_length():
    msg = _bad(lambda c: c["finetune"]["squad_v2"].update(max_length=64, doc_stride=64))
    assert "'finetune.squad_v2.doc_stride'" in msg and "doc_stride 64 must be smaller than max_length 64" in msg
    assert "'finetune.squad_v2.max_length'" in msg


def test_doc_stride_checked_after_model_overrides():
    """The values a model is fine-tuned with (defaults, then finetune.large, then the model's own) are checked,
    and the message names the config key that set each."""
    msg = _bad(lambda c: c["models"]["minilm"].update(finetune={"squad_v2": {"doc_stride": 200}}))
    assert "'models.minilm.finetune.squad_v2.doc_stride'" in msg and "max_length 192" in msg
    assert "'finetune.squad_v2.max_length'" in msg and "model 'minilm'" in msg

    def large(c):
        c["finetune"]["large"]["squad_v2"]["max_length"] = 48
        c["unseen_models"]["tiny-large"] = {"source": "tiny", "family": "bert"}
    msg = _bad(large)
    assert "'finetune.squad_v2.doc_stride'" in msg and "(from 'finetune.large.squad_v2.max_length')" in msg
    assert "model 'tiny-large'" in msg


def test_both_data_sources_are_required():
    assert "'squad_v2' is a required property" in _bad(lambda c: c["data"].pop("squad_v2"))
    assert "'glue' is a required property" in _bad(lambda c: c["data"].pop("glue"))


def test_transferability_defaults_are_filled_in():
    cfg = cfgmod.load(CONFIGS / "test.yaml")
    tcfg = cfg["transferability"]
    assert tcfg["estimators"] == ["logme", "hscore", "transrate", "nleep", "sfda", "knn", "linear_probe",
                                  "gbc", "parc", "lfc", "silhouette", "pactran", "etran", "ncti"]
    assert tcfg["knn"] == {"k": 10, "max_examples": 2000, "seed": 0}
    assert tcfg["gbc"] == {"n_components": 64, "gaussian_type": "spherical"} and "lfc" not in tcfg
    assert tcfg["linear_probe"]["folds"] == 5 and tcfg["nleep"]["covariance_type"] == "diag"
    cfg = copy.deepcopy(_load("demo.yaml"))
    del cfg["transferability"]
    assert cfgmod.validate(cfg)["transferability"]["sfda"] == {"max_examples": 2000, "seed": 0}


def test_transferability_schema_defaults_are_the_library_defaults():
    from ptmbench.estimators import transferability

    tcfg = cfgmod.load(CONFIGS / "config.yaml")["transferability"]
    assert tcfg["estimators"] == list(transferability.ESTIMATORS)
    for name, defaults in transferability.DEFAULTS.items():
        assert tcfg.get(name, {}) == defaults, name


def test_unknown_transferability_estimator():
    msg = _bad(lambda c: c["transferability"].update(estimators=["logme", "leep"]))
    assert "transferability.estimators[1]" in msg and "'leep'" in msg and "allowed values" in msg
    assert all(n in msg for n in ("hscore", "transrate", "nleep", "sfda", "knn", "linear_probe"))


def test_bad_transferability_parameters():
    msg = _bad(lambda c: c["transferability"].update(knn={"k": 0}))
    assert "transferability.knn.k" in msg and "0" in msg
    msg = _bad(lambda c: c["transferability"].update(nleep={"covariance_type": "spherical"}))
    assert "transferability.nleep.covariance_type" in msg and "'diag'" in msg and "'full'" in msg
    msg = _bad(lambda c: c["transferability"].update(linear_probe={"fold": 5}))
    assert "transferability.linear_probe" in msg and "'fold'" in msg and "folds" in msg


def test_transferability_schema_lists_the_registry():
    """The schema's estimator names and parameter blocks are copies of the registry's: a new estimator or
    parameter in ``ptmbench.estimators.transferability`` fails here until the schema (and config/README.md) has it."""
    from ptmbench.estimators import transferability

    block = cfgmod.load_schema()["properties"]["transferability"]["properties"]
    assert block["estimators"]["items"]["enum"] == list(transferability.ESTIMATORS)
    assert block["estimators"]["default"] == list(transferability.ESTIMATORS)
    with_params = {n for n, d in transferability.DEFAULTS.items() if d}
    assert set(block) - {"estimators", "sweep"} == with_params
    for name in with_params:
        props = block[name]["properties"]
        assert {k: v["default"] for k, v in props.items()} == transferability.DEFAULTS[name], name


def test_registry_check_catches_a_schema_that_drifted():
    """Names the schema allows but the registry lacks stop with the key, even if the schema is stale."""
    def drifted():
        schema = cfgmod.load_schema()
        block = schema["properties"]["transferability"]["properties"]
        block["estimators"]["items"]["enum"].append("leep")
        block["knn"]["properties"]["metric"] = {"enum": ["cosine", "euclidean"]}
        return schema

    cfg = copy.deepcopy(_load("demo.yaml"))
    cfg["transferability"]["estimators"] = ["logme", "leep"]
    with pytest.raises(ConfigError, match=r"'transferability.estimators\[1\]': 'leep' is not allowed.*knn"):
        cfgmod.validate(cfg, drifted())
    cfg = copy.deepcopy(_load("demo.yaml"))
    cfg["transferability"]["knn"] = {"metric": "cosine"}
    with pytest.raises(ConfigError, match=r"'transferability.knn' has unknown key\(s\) \['metric'\]"):
        cfgmod.validate(cfg, drifted())


def test_transferability_subsample_must_fit_its_estimator():
    msg = _bad(lambda c: c["transferability"].update(knn={"k": 10, "max_examples": 10}))
    assert "'transferability.knn.max_examples'" in msg and "knn.k = 10" in msg and "at least 11" in msg
    msg = _bad(lambda c: c["transferability"].update(linear_probe={"folds": 5, "max_examples": 4}))
    assert "'transferability.linear_probe.max_examples'" in msg and "at least 5" in msg
    msg = _bad(lambda c: c["transferability"].update(nleep={"max_examples": 9}))  # 5 components x 2 classes
    assert "'transferability.nleep.max_examples'" in msg and "at least 10" in msg
    cfg = copy.deepcopy(_load("demo.yaml"))
    cfg["transferability"]["knn"] = {"k": 10, "max_examples": 11}
    assert cfgmod.validate(cfg)["transferability"]["knn"]["max_examples"] == 11


@pytest.mark.parametrize("seeds, problem", [([0, 0], "distinct"), ([], "non-empty"), ([-1], "less than the minimum"),
                                            ([2**32], "greater than the maximum"), (0, "not of type 'array'")])
def test_seeds_must_be_distinct_integers(seeds, problem):
    msg = _bad(lambda c: c["finetune"].update(seeds=seeds))
    assert "'finetune.seeds" in msg and problem in msg


def test_seeds_default_to_the_published_seed_and_keep_their_order():
    cfg = _load("test.yaml")
    del cfg["finetune"]["seeds"]
    assert cfgmod.validate(cfg)["finetune"]["seeds"] == [0]
    cfg["finetune"]["seeds"] = [2, 0, 1]  # the first is the primary seed: no sorting
    assert cfgmod.validate(cfg)["finetune"]["seeds"] == [2, 0, 1]


def test_the_old_seed_key_names_its_replacement():
    def old(c):
        del c["finetune"]["seeds"]
        c["finetune"]["seed"] = 0
    msg = _bad(old)
    assert "'finetune.seed' was replaced by 'finetune.seeds'" in msg and "`seeds: [0]` instead of `seed: 0`" in msg


def test_test_and_demo_configs_pin_fp32():
    """Their results must not depend on the CPU (auto picks bf16 where the CPU has native bf16)."""
    for name in ("test.yaml", "demo.yaml"):
        cfg = cfgmod.load(CONFIGS / name)
        assert cfg["finetune"]["precision"] == "fp32" and cfg["logme"]["precision"] == "fp32", name
    paper = cfgmod.load(CONFIGS / "config.yaml")
    assert paper["finetune"]["precision"] == "auto" and paper["logme"]["precision"] == "auto"


@pytest.mark.parametrize("where", ["finetune", "logme"])
def test_bad_precision_names_the_key_and_the_choices(where):
    msg = _bad(lambda c: c[where].update(precision="float16"))
    assert f"{where}.precision" in msg and "'float16'" in msg and "fp32" in msg


def test_precision_default_and_per_model_override():
    """finetune.precision reaches every (model, task)'s hyper-parameters; a model's own
    finetune.<family>.precision wins (DeBERTa v1 needs fp32 where auto would pick bf16)."""
    from ptmbench.core import naming

    cfg = copy.deepcopy(_load("demo.yaml"))
    del cfg["finetune"]["precision"]
    cfg["models"]["tiny-albert"]["finetune"]["glue"]["precision"] = "fp32"
    cfgmod.validate(cfg)
    assert cfg["finetune"]["precision"] == "auto"  # the schema's default
    assert naming.hyperparameters(cfg, "minilm", "sst2")["precision"] == "auto"
    assert naming.hyperparameters(cfg, "tiny-albert", "sst2")["precision"] == "fp32"
    assert naming.hyperparameters(cfg, "tiny-albert", "squad_v2")["precision"] == "auto"
