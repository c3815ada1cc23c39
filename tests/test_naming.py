"""Task pairs and PTM names: formatting and parsing round-trip for every pair, incl. squad_v2; names and
target paths checked against a config (`python -m ptmbench.cli.naming`, the check at workflow start)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ptmbench.cli import naming as naming_cli
from ptmbench.core import naming, paths
from ptmbench.core import tasks as registry
from ptmbench.core.naming import PTM
from ptmbench.settings.config import load

TASKS = registry.names()

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


def test_hyperparameters_large_rule():
    cfg = load(naming.__file__.rsplit("/src/", 1)[0] + "/config/config.yaml")
    base = naming.hyperparameters(cfg, "bert-base-uncased", "sst2")
    large = naming.hyperparameters(cfg, "bert-large-uncased", "sst2")
    assert (base["learning_rate"], base["batch_size"], base["epochs"]) == (2e-5, 32, 3)
    assert (large["learning_rate"], large["batch_size"]) == (5e-6, 16)
    squad = naming.hyperparameters(cfg, "roberta-large", "squad_v2")
    assert squad["learning_rate"] == 3e-5 and squad["batch_size"] == 16 and squad["doc_stride"] == 128
    assert base["seed"] == large["seed"] == cfg["finetune"]["seeds"][0] == 0  # the primary seed


# --------------------------------------------------------------------------------------------------
# Checking names and target paths against a config (`python -m ptmbench.cli.naming`, the Snakefile's check)

REPO = Path(__file__).resolve().parents[1]


def zoo_of(name: str, **changes) -> paths.Zoo:
    return paths.Zoo.from_config({**load(REPO / "config" / name), **changes})


def test_valid_names_say_what_they_are():
    zoo = zoo_of("demo.yaml")
    assert naming.check_name("minilm", zoo).kinds == ("base", "ptm")
    assert naming.check_name("minilm_sst2_squad_v2_0.5", zoo).kinds == ("ptm",)
    assert naming.check_name("stsb_squad_v2", zoo).kinds == ("pair",)
    assert naming.check_name("squad_v2", zoo).kinds == ("task",)
    assert naming.check_name("minilm_sst2_stsb_0.5", zoo).message() == \
        "'minilm_sst2_stsb_0.5' is a valid PTM of this config"


@pytest.mark.parametrize("name, fixed", [("minilm_stsb_sst2_0.5", "minilm_sst2_stsb_0.5"),
                                         ("tiny-albert_squad_v2_sst2_0.5", "tiny-albert_sst2_squad_v2_0.5"),
                                         ("squad_v2_stsb", "stsb_squad_v2")])
def test_tasks_in_the_wrong_order_get_the_fixed_name(name, fixed):
    check = naming.check_name(name, zoo_of("demo.yaml"))
    assert not check.ok and check.wrong_order == fixed and check.suggestions[0] == fixed
    text = check.message()
    assert f"Its two tasks are in the wrong order: write {fixed!r}." in text
    assert "with t1 before t2 in the fixed task order cola, mnli, mrpc, qnli, qqp, rte, sst2, stsb, wnli, squad_v2" in text
    assert "This config: tasks sst2, stsb, squad_v2; base models minilm, tiny-albert" in text


def test_typos_get_the_nearest_valid_names():
    zoo = zoo_of("demo.yaml")
    check = naming.check_name("minilm_sst2_stbs_0.5", zoo)
    assert check.wrong_order is None and check.suggestions[0] == "minilm_sst2_stsb_0.5"
    assert naming.check_name("tiny-albrt", zoo, ("base",)).suggestions == ("tiny-albert",)
    assert naming.check_name("minilm_sst2_stsb_0.3", zoo).suggestions[0] == "minilm_sst2_stsb_0.5"  # ratio
    paper = zoo_of("config.yaml")
    assert naming.check_name("roberta-bas_cola_mnli_0.5", paper).suggestions[0] == "roberta-base_cola_mnli_0.5"
    assert naming.check_name("qnli_mnli", paper).wrong_order == "mnli_qnli"
    assert naming.check_name("sst", paper, ("task",)).suggestions[0] == "sst2"
    nothing = naming.check_name("xyz", paper)
    assert not nothing.ok and nothing.suggestions == () and "Nearest" not in nothing.message()


def test_every_output_of_the_plan_is_a_valid_target():
    for cfg in ("test.yaml", "demo.yaml"):
        zoo = zoo_of(cfg, unseen_models={"tiny-electra": {"source": "tiny", "family": "electra"}})
        outputs = [o for j in paths.jobs(zoo) for o in j.outputs]
        assert [o for o in outputs if paths.target_problem(o, zoo, exists=lambda p: False)] == []
        assert paths.target_problem("./" + outputs[-1], zoo) is None


@pytest.mark.parametrize("target, expected", [
    ("results/finetune/tiny-bert_stsb_sst2_0.5/sst2/metrics.json",
     "(results/finetune/{ptm}/{task}/metrics.json): 'tiny-bert_stsb_sst2_0.5' is not a PTM of this config.\n"
     "  Its two tasks are in the wrong order: write 'tiny-bert_sst2_stsb_0.5'."),
    ("results/merged/tiny-bert/stsb_sst2_0.5", "write 'tiny-bert_sst2_stsb_0.5'"),
    ("results/merged/tiny-electra/sst2_stsb_0.5", "'tiny-electra' is an unseen model"),
    ("results/finetune/tiny-bert/cola/metrics.json", "'cola' is not a task of this config"),
    ("results/finetune/tiny-bert_sst2_stsb_0.5/sst2/model", "only the fine-tunes of base models keep"),
    ("results/tokenized/tiny-bret/sst2", "Nearest valid names: 'tiny-bert'"),
    ("results/graphs/tiny_bert.dill", "Nearest valid names: 'tiny-bert'"),
    ("results/logme/tiny-bert/squad_v2.json", "'squad_v2' is not a task of this config"),
    ("resources/models/tiny-bertt", "'tiny-bertt' is not a base model of this config"),
    ("results/finetunes/tiny-bert/sst2/metrics.json", "is no output of this workflow; outputs under results/"),
])
def test_wrong_targets_name_the_fix(target, expected):
    zoo = zoo_of("test.yaml", unseen_models={"tiny-electra": {"source": "tiny", "family": "electra"}})
    problem = paths.target_problem(target, zoo, exists=lambda p: False)
    assert problem.startswith(f"target {target}") and expected in problem, problem
    with pytest.raises(paths.TargetError, match="python -m ptmbench.cli.naming NAME --configfile"):
        paths.check_targets(["all", target], zoo)


def test_targets_outside_the_named_outputs_are_left_to_snakemake():
    zoo = zoo_of("demo.yaml")
    assert paths.target_problem("results/logme/minilm/squad_v2.json", zoo).endswith(
        "is not a task LogME scores (classification, regression) of this config: ['sst2', 'stsb']")
    for target in ("all", "export", "/abs/results/x", "report.html", "resources/hub/anything",
                   "results/tables/performance.csv", "results/report/plots"):
        assert paths.target_problem(target, zoo) is None
    assert paths.target_problem("results/notes.txt", zoo, exists=lambda p: True) is None  # a file of yours
    paths.check_targets([], zoo)


def test_naming_command_line(capsys, tmp_path):
    cfg = str(REPO / "config" / "demo.yaml")
    assert naming_cli.main(["minilm_sst2_stsb_0.5", "sst2", "--configfile", cfg]) == 0
    assert capsys.readouterr().out.splitlines() == ["'minilm_sst2_stsb_0.5' is a valid PTM of this config",
                                                    "'sst2' is a valid task of this config"]
    assert naming_cli.main(["minilm_sst2_stbs_0.5", "--configfile", cfg]) == 1
    assert "Nearest valid names: 'minilm_sst2_stsb_0.5'" in capsys.readouterr().out
    assert naming_cli.main(["results/finetune/minilm_stsb_sst2_0.5/sst2/metrics.json", "--configfile", cfg]) == 1
    assert "write 'minilm_sst2_stsb_0.5'" in capsys.readouterr().out
    assert naming_cli.main(["results/graphs/minilm.dill", "--configfile", cfg]) == 0
    assert "is a path the workflow writes" in capsys.readouterr().out
    assert naming_cli.main(["x", "--configfile", str(tmp_path / "none.yaml")]) == 2
    assert "cannot read config" in capsys.readouterr().err


def test_snakemake_stops_on_a_wrong_target_with_the_fix(tmp_path):
    target = "results/finetune/tiny-bert_stsb_sst2_0.5/sst2/metrics.json"
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
                           "-n", "--nolock", target, "--configfile", str(REPO / "config" / "test.yaml")],
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "MissingRuleException" not in out
    assert "TargetError in file" in out and f"target {target}" in out
    assert "Its two tasks are in the wrong order: write 'tiny-bert_sst2_stsb_0.5'." in out
    assert "python -m ptmbench.cli.naming" in out
