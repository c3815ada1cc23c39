"""The task registry (ptmbench.core.tasks) and custom tasks declared in the config: entries, validation
messages naming the config key, acquisition from CSV / JSON Lines files with row-level errors."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import datasets
import pytest
import yaml

from ptmbench.cluster import plan
from ptmbench.core import naming, paths
from ptmbench.core import tasks as registry
from ptmbench.data import schemas as data
from ptmbench.settings import config as cfgmod
from ptmbench.settings.config import ConfigError
from ptmbench.stages import acquire

CONFIGS = Path(__file__).resolve().parents[1] / "config"


@pytest.fixture(autouse=True)
def _no_custom_tasks():
    registry.configure({})
    yield
    registry.configure({})


def test_published_tasks_in_the_fixed_order():
    assert registry.names() == ("cola", "mnli", "mrpc", "qnli", "qqp", "rte", "sst2", "stsb", "wnli", "squad_v2")
    kinds = {t: registry.get(t).kind for t in registry.names()}
    assert kinds["stsb"] == "regression" and kinds["squad_v2"] == "qa"
    assert {k for t, k in kinds.items() if t not in ("stsb", "squad_v2")} == {"classification"}
    assert len(naming.task_pairs()) == 45


def test_entries_hold_what_the_stages_read():
    mnli, stsb, squad = registry.get("mnli"), registry.get("stsb"), registry.get("squad_v2")
    assert mnli.eval_splits == ("validation_matched", "validation_mismatched")
    assert mnli.export_split == "validation_mismatched" and mnli.export_keys[0] == ("eval_accuracy",)
    assert mnli.metric_keys == ("eval_accuracy", "eval_acc", "eval_f1", "eval_matthews_correlation")
    assert registry.get("cola").consumer_metric == "eval_matthews_correlation"
    assert stsb.consumer_metric == "eval_pearson" and stsb.score_range == (0.0, 5.0) and stsb.n_outputs == 1
    assert (squad.consumer_metric, squad.consumer_scale, squad.has_logme) == ("f1", 0.01, False)
    assert squad.hp_family == "squad_v2" and registry.get("rte").hp_family == "glue"
    # the published sizes the planner uses, and the GLUE TSV layout of local files
    assert registry.get("mnli").published_size == (392_702, 19_647, 39)
    assert registry.get("sst2").glue_dir == "SST-2" and registry.get("mrpc").tsv_columns["label"] == "Quality"
    for t in registry.names():  # every consumer metric is one the fine-tune writes
        assert registry.get(t).consumer_metric in registry.get(t).metric_keys


def test_unknown_task_names_the_custom_tasks_key():
    with pytest.raises(ValueError, match="custom_tasks"):
        registry.get("imdb")
    with pytest.raises(ValueError, match="unknown task"):
        naming.ordered(["sst2", "imdb"])


# --------------------------------------------------------------------------------------------------
# custom tasks in the config

def _config(**custom) -> dict:
    cfg = yaml.safe_load((CONFIGS / "test.yaml").read_text())
    cfg["custom_tasks"] = {"rte-copy": {"kind": "classification", "source": "path", "train": "/d/train.csv",
                                        "validation": "/d/dev.csv", "text": ["premise", "claim"],
                                        "label": "gold", "labels": ["entailment", "not_entailment"]}}
    cfg["custom_tasks"]["rte-copy"].update(custom)
    cfg["tasks"] = ["rte-copy", "stsb", "sst2"]
    return cfg


def _bad(cfg) -> str:
    with pytest.raises(ConfigError) as err:
        cfgmod.validate(cfg)
    return str(err.value)


def test_custom_task_joins_the_order_after_the_published_tasks():
    cfg = cfgmod.validate(_config())
    assert cfg["tasks"] == ["sst2", "stsb", "rte-copy"]
    assert registry.names() == tuple(registry.PUBLISHED)  # validating configures nothing ...
    registry.configure(cfg)  # ... the registry learns the config's custom tasks when told
    entry = registry.get("rte-copy")
    assert entry.custom and entry.text == ("premise", "claim") and entry.labels == ("entailment", "not_entailment")
    assert entry.consumer_metric == "eval_accuracy" and entry.has_logme and entry.acquire_rule == "acquire_custom"
    assert naming.task_pairs(cfg["tasks"]) == [("sst2", "stsb"), ("sst2", "rte-copy"), ("stsb", "rte-copy")]
    assert naming.parse_ptm("tiny-bert_sst2_rte-copy_0.5", ["tiny-bert"]).t2 == "rte-copy"
    zoo = paths.Zoo.from_config(cfg)
    assert zoo.custom == ["rte-copy"] and zoo.logme_tasks == ["sst2", "stsb", "rte-copy"]
    assert paths.task_data("rte-copy") == ["resources/data/custom/rte-copy"]
    jobs = list(paths.jobs(zoo))
    assert [j.outputs for j in jobs if j.rule == "acquire_custom"] == [("resources/data/custom/rte-copy",)]
    assert naming.hyperparameters(cfg, "tiny-bert", "rte-copy") == naming.hyperparameters(cfg, "tiny-bert", "sst2")


@pytest.mark.parametrize("change, key, words", [
    ({"labels": ["yes"]}, "custom_tasks.rte-copy.labels", "2 or more"),
    ({"labels": ["yes", "yes"]}, "custom_tasks.rte-copy.labels", "not unique"),
    ({"kind": "regression"}, "custom_tasks.rte-copy.labels", "drop 'labels'"),
    ({"metric": "eval_pearson", "labels": ["a", "b", "c"]}, "custom_tasks.rte-copy.metric", "eval_accuracy"),
    ({"text": ["premise", "gold"]}, "custom_tasks.rte-copy.text", "distinct"),
    ({"text": ["a", "b", "c"]}, "custom_tasks.rte-copy.text", "too long"),
    ({"source": "hub"}, "custom_tasks.rte-copy", "'id' is a required property"),
    ({"colour": "red"}, "custom_tasks.rte-copy", "colour"),
])
def test_bad_custom_task_names_the_key(change, key, words):
    msg = _bad(_config(**change))
    assert f"'{key}" in msg and words in msg, msg


def test_regression_range_and_metric():
    cfg = _config(kind="regression", range=[1, 0])
    del cfg["custom_tasks"]["rte-copy"]["labels"]
    assert "custom_tasks.rte-copy.range" in _bad(copy.deepcopy(cfg))
    cfg["custom_tasks"]["rte-copy"]["range"] = [0, 1]
    registry.configure(cfgmod.validate(cfg))
    assert registry.get("rte-copy").consumer_metric == "eval_pearson"
    assert registry.get("rte-copy").export_keys == (("eval_pearson", "eval_spearman"), ())


def test_custom_name_clashes_and_underscores():
    cfg = _config()
    cfg["custom_tasks"]["sst2"] = cfg["custom_tasks"].pop("rte-copy")
    msg = _bad(cfg)
    assert "'custom_tasks.sst2'" in msg and "published task" in msg
    cfg = _config()
    cfg["custom_tasks"]["rte_copy"] = cfg["custom_tasks"].pop("rte-copy")
    assert "rte_copy" in _bad(cfg) and "no '_'" in _bad(cfg)


def test_listed_task_must_be_declared():
    cfg = _config()
    cfg["tasks"].append("imdb")
    msg = _bad(cfg)
    assert "'tasks[3]'" in msg and "'imdb'" in msg and "rte-copy" in msg


# --------------------------------------------------------------------------------------------------
# acquisition of a custom task from files

def _rte_rows(real_fixtures):
    rows = acquire.read_glue_tsv("rte", real_fixtures / "glue" / "rte" / "train.tsv", "train")
    names = registry.get("rte").labels
    return [{"premise": a, "claim": b, "gold": names[y]}
            for a, b, y in zip(rows["sentence1"], rows["sentence2"], rows["label"], strict=True)]


def _write(path: Path, rows, fmt):
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        with open(path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter="," if fmt == "csv" else "\t")
            w.writeheader()
            w.writerows(rows)
    return str(path)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "tsv"])
def test_acquire_custom_from_files(real_fixtures, tmp_path, fmt):
    rows = _rte_rows(real_fixtures)
    train = _write(tmp_path / f"train.{fmt}", rows[:-8], fmt)
    dev = _write(tmp_path / f"dev.{fmt}", rows[-8:], fmt)
    registry.configure(cfgmod.validate(_config(train=train, validation=dev)))
    acquire.acquire_custom("rte-copy", tmp_path / "out")
    dd = datasets.load_from_disk(str(tmp_path / "out"))
    assert list(dd) == ["train", "validation"] and len(dd["validation"]) == 8
    assert dd["train"].features == data.features("rte-copy")
    assert dd["validation"][0]["premise"] == rows[-8]["premise"]
    assert dd["validation"]["label"] == [["entailment", "not_entailment"].index(r["gold"]) for r in rows[-8:]]
    assert plan.custom_size(registry.get("rte-copy")) == (len(rows) - 8, 8, plan.CUSTOM_TOKENS)


def test_acquire_custom_errors_name_file_row_and_value(real_fixtures, tmp_path):
    rows = _rte_rows(real_fixtures)
    rows[3]["gold"] = "maybe"
    train = _write(tmp_path / "train.csv", rows, "csv")
    dev = _write(tmp_path / "dev.csv", rows[:4], "csv")
    registry.configure(cfgmod.validate(_config(train=train, validation=dev)))
    with pytest.raises(ValueError) as err:
        acquire.acquire_custom("rte-copy", tmp_path / "out")
    msg = str(err.value)
    assert train in msg and "data row 4 (line 5)" in msg and "'maybe'" in msg and "entailment" in msg
    assert not (tmp_path / "out").exists()
    registry.configure(cfgmod.validate(_config(train=train, validation=dev, label="verdict")))
    with pytest.raises(ValueError, match=r"'custom_tasks.rte-copy.label'.*no column\(s\) \['verdict'\]"):
        acquire.acquire_custom("rte-copy", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_custom_task_end_to_end(real_fixtures, tiny_run, tmp_path):
    """config/test.yaml with its regression task swapped for a custom task (the real RTE sample under
    another name and other column names, from CSV and JSON Lines files) goes through every stage into
    the export and the report. Sized as the tiny run: one base, two tasks, one merge, 32 + 16 rows.
    Run in a copy of the finished tiny run: adding the task redoes none of sst2's jobs."""
    import re
    import subprocess

    from conftest import copy_run, snakemake_cmd

    rows = _rte_rows(real_fixtures)[:48]
    cfg = _config(train=_write(tmp_path / "train.csv", rows[:32], "csv"),
                  validation=_write(tmp_path / "dev.jsonl", rows[32:], "jsonl"))
    cfg["tasks"] = ["rte-copy", "sst2"]  # the custom task and a published one: one merged PTM
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    wd = copy_run(tiny_run, tmp_path / "wd")
    proc = subprocess.run(["timeout", "-k", "30", "900", *snakemake_cmd(wd, "--cores", "2", config=config)],
                          capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    ran = re.findall(r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    wildcards: (.*)$", out, re.M)
    assert ran and not [r for r in ran if "sst2" in r[1] and "rte-copy" not in r[1]], ran
    assert not re.search(r"^(?:local)?rule acquire_model:", out, re.M), out[-3000:]
    assert datasets.load_from_disk(str(wd / "resources/data/custom/rte-copy"))["validation"].num_rows == 16
    bench = wd / "results/ptm_model_bench/performance"
    perf = json.loads((bench / "merged_models/rte-copy_performance_score.json").read_text())["rte-copy"]
    assert set(perf) == {"tiny-bert_sst2_rte-copy_0.5"}
    assert all(set(v) == set(registry.CLASSIFICATION_KEYS) for v in perf.values())
    assert set(json.loads((bench / "merged_models/rte-copy_logme.json").read_text())) == set(perf)
    base = json.loads((bench / "seen_base_models/base_rte-copy_performance_score.json").read_text())["rte-copy"]
    assert set(base) == {"tiny-bert"}
    manifest = json.loads((wd / "results/ptm_model_bench/MANIFEST.json").read_text())
    assert manifest["tasks"] == ["sst2", "rte-copy"]
    assert manifest["consumer_metric"]["rte-copy"] == "eval_accuracy"
    assert "rte-copy" in (wd / "results/report/summary.txt").read_text()
