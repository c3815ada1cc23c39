"""Every tiny architecture goes through the whole library: tokenise -> fine-tune (classification,
regression, QA) -> merge -> graph -> LogME and the other estimators, with the functions the workflow's
scripts call.

docs/architectures.md lists the architectures and what passes. Tiny sizes, 16 examples, one epoch:
still minutes on two cores for the sixteen architectures, hence ``slow``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from ptmbench.data import schemas as data
from ptmbench.data.tiny import TINY_FAMILIES
from ptmbench.io.checkpoint import Checkpoint
from ptmbench.io.provenance import write_json
from ptmbench.stages import finetune, graph, merge, tokenize
from ptmbench.stages import logme as logme_stage

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

HP = {"learning_rate": 1e-3, "batch_size": 8, "epochs": 1, "max_length": 32, "lr_scheduler": "linear",
      "warmup_ratio": 0.0, "weight_decay": 0.0, "max_train_examples": None, "seed": 0}
SQUAD_HP = {**HP, "max_length": 64, "doc_stride": 16, "n_best_size": 5, "max_answer_length": 30,
            "null_score_diff_threshold": 0.0}
TASKS = ("sst2", "stsb", "squad_v2")  # classification, regression, extractive QA
# DeBERTa (v1) fails under bf16/fp16 autocast inside transformers (masked_fill with float32's minimum
# into half-precision scores); it is fine-tuned in fp32 here. See docs/architectures.md.
PRECISION = {"deberta": "fp32"}


@pytest.fixture(scope="module")
def transferability() -> dict:
    """The estimators block of config/test.yaml, with its defaults (every estimator of the registry)."""
    import yaml

    from ptmbench.settings.config import validate

    return validate(yaml.safe_load((Path(__file__).parents[1] / "config" / "test.yaml").read_text()))["transferability"]


@pytest.fixture(scope="module")
def task_data(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("arch-data")
    out = {}
    for task in ("sst2", "stsb"):
        data.demo_glue(task, 0, 16, 8).save_to_disk(str(root / task))
        out[task] = root / task
    train, dev = data.demo_squad(0, 8, 4)
    write_json(root / "train-v2.0.json", train)
    write_json(root / "dev-v2.0.json", dev)
    out["squad_v2"] = [root / "train-v2.0.json", root / "dev-v2.0.json"]
    return out


def _finite_metrics(record: dict) -> None:
    assert not record["diverged"]
    values = [v for split in record["metrics"].values() for v in split.values() if isinstance(v, float)]
    assert values and all(math.isfinite(v) for v in values), record["metrics"]


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_architecture_through_every_stage(tiny_model, task_data, transferability, tmp_path, family):
    base = tiny_model(family)
    cfg = json.loads((base / "config.json").read_text())
    layers, heads, hidden = graph.model_shape(cfg)
    precision = PRECISION.get(family, "auto")
    ft = {}
    for task in TASKS:
        hp = SQUAD_HP if task == "squad_v2" else HP
        tok = tmp_path / "tok" / task
        tokenize.tokenize(base, task, task_data[task], tok, hp)
        assert (tok / "info.json").is_file()
        ft[task] = tmp_path / "ft" / task
        record = finetune.finetune(f"tiny-{family}", base, tok, task, {**hp, "precision": precision},
                                   tmp_path / f"{task}.json", save_dir=ft[task])
        _finite_metrics(record)
        assert json.loads((ft[task] / "config.json").read_text())["model_type"] == cfg["model_type"]

    # a classification and a QA fine-tune merge into the base's AutoModel layout
    ptm = f"tiny-{family}_sst2_squad_v2_0.5"
    merged = tmp_path / "merged"
    rec = merge.merge_models(base, ft["sst2"], ft["squad_v2"], 0.5, merged)
    assert rec["tensors"]["total"] == len(Checkpoint(base).names) and rec["tensors"]["merged"] > 0

    # graph features of the base, a task checkpoint and the merged PTM
    feats = {name: graph.attention_features(d) for name, d in
             (("base", base), ("sst2", ft["sst2"]), ("merged", merged))}
    for f in feats.values():
        assert len(f) == 2 * layers * heads and all(v.shape == (128,) and torch.isfinite(v).all() for v in f.values())
    assert any(not torch.equal(feats["merged"][k], feats["base"][k]) for k in feats["base"])  # weights moved
    graph.write_graph(merged, ptm, tmp_path / f"{ptm}.dill")

    # LogME and the other estimators of the merged PTM, and the merged PTM fine-tuned (metrics only), as
    # the workflow does
    score = logme_stage.score_ptm(ptm, merged, tmp_path / "tok" / "sst2", "sst2", tmp_path / "logme.json",
                                  base=f"tiny-{family}", transferability=transferability)
    assert math.isfinite(score["score"]) and score["d"] == hidden
    assert list(score["estimators"]) == transferability["estimators"]
    assert all(math.isfinite(e["score"]) for e in score["estimators"].values() if e["applicable"])
    _finite_metrics(finetune.finetune(ptm, merged, tmp_path / "tok" / "stsb", "stsb",
                                      {**HP, "precision": precision}, tmp_path / "merged_stsb.json",
                                      base=f"tiny-{family}"))
    assert Path(tmp_path / f"{ptm}.dill").is_file()
