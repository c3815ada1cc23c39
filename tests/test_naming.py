"""Task pairs and PTM names: formatting and parsing round-trip for every pair, incl. squad_v2."""

from __future__ import annotations

import pytest

from ptmbench import naming
from ptmbench.config import load
from ptmbench.naming import PTM, TASKS

# names that are prefixes of each other, contain '-', '.' and the word 'large'
BASES = ["bert-base", "bert-base-uncased", "roberta-large", "xlm-roberta-large", "minilm", "tiny-albert",
         "m2.1-v0"]
RATIOS = [0.5, 0.0, 1.0, 0.25, 0.125, 1 / 3, 1e-05]


def test_task_pairs_all_45_in_order():
    pairs = naming.task_pairs()
    assert len(pairs) == 45 == len(set(pairs))
    assert pairs[0] == ("cola", "mnli") and pairs[-1] == ("wnli", "squad_v2")
    assert all(TASKS.index(a) < TASKS.index(b) for a, b in pairs)
    assert naming.task_pairs(["stsb", "sst2", "squad_v2"]) == [("sst2", "stsb"), ("sst2", "squad_v2"),
                                                             ("stsb", "squad_v2")]


@pytest.mark.parametrize("t1, t2", naming.task_pairs())
def test_round_trip_every_pair(t1, t2):
    assert naming.parse_pair(naming.pair_name(t1, t2)) == (t1, t2)
    for base in BASES:
        for ratio in RATIOS:
            name = naming.merged_name(base, t1, t2, ratio)
            ptm = naming.parse_ptm(name, BASES)
            assert (ptm.base, ptm.t1, ptm.t2) == (base, t1, t2)
            assert float(ptm.ratio) == ratio and ptm.name == name and ptm.is_merged
            assert ptm.pair == f"{t1}_{t2}"


def test_published_names():
    assert naming.merged_name("roberta-base", "cola", "mnli", 0.5) == "roberta-base_cola_mnli_0.5"
    assert naming.merged_name("bert-base-uncased", "wnli", "squad_v2", 1) == "bert-base-uncased_wnli_squad_v2_1.0"
    ptm = naming.parse_ptm("albert-base-v2_stsb_squad_v2_0.5", ["albert-base-v2"])
    assert ptm == PTM("albert-base-v2", "stsb", "squad_v2", "0.5")


def test_base_names_parse_as_base():
    for base in BASES:
        ptm = naming.parse_ptm(base, BASES)
        assert ptm == PTM(base) and not ptm.is_merged and ptm.name == base and ptm.pair is None


@pytest.mark.parametrize("bad", ["bert-base_mnli_cola_0.5", "bert-base_cola_0.5", "bert-large_cola_mnli_0.5",
                                 "bert-base_cola_mnli_1.5", "bert-base_cola_mnli_", "bert-base_squad_v2_cola_0.5",
                                 "bert-base_cola_cola_0.5"])
def test_bad_names_are_rejected(bad):
    with pytest.raises(ValueError, match="neither a configured base model|outside \\[0, 1\\]"):
        naming.parse_ptm(bad, BASES)


def test_pair_order_and_ratio_errors():
    with pytest.raises(ValueError, match="not in task order"):
        naming.pair_name("squad_v2", "cola")
    with pytest.raises(ValueError, match="not in task order"):
        naming.merged_name("m", "mnli", "cola", 0.5)
    with pytest.raises(ValueError, match="outside"):
        naming.format_ratio(1.01)
    with pytest.raises(ValueError, match="not a task pair"):
        naming.parse_pair("cola_sst3")
    with pytest.raises(ValueError, match="unknown task"):
        naming.ordered(["cola", "boolq"])


def test_task_kinds():
    assert naming.task_kind("squad_v2") == "qa" and naming.task_kind("stsb") == "regression"
    assert {naming.task_kind(t) for t in naming.GLUE_TASKS} == {"classification", "regression"}


def test_hyperparameters_large_rule():
    cfg = load(naming.__file__.rsplit("/src/", 1)[0] + "/config/config.yaml")
    base = naming.hyperparameters(cfg, "bert-base-uncased", "sst2")
    large = naming.hyperparameters(cfg, "bert-large-uncased", "sst2")
    assert (base["learning_rate"], base["batch_size"], base["epochs"]) == (2e-5, 32, 3)
    assert (large["learning_rate"], large["batch_size"]) == (5e-6, 16)
    squad = naming.hyperparameters(cfg, "roberta-large", "squad_v2")
    assert squad["learning_rate"] == 3e-5 and squad["batch_size"] == 16 and squad["doc_stride"] == 128
    assert base["seed"] == large["seed"] == cfg["finetune"]["seed"]
