"""finetune.report_to: opt-in experiment tracking (TensorBoard event files beside metrics.json; W&B and
MLflow checked before training)."""

from __future__ import annotations

import json

import pytest
from test_finetune import prepare

from ptmbench.stages import finetune, tracking

pytestmark = pytest.mark.usefixtures("one_thread")


def _scalars(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = sorted(folder.glob("events.out.tfevents.*"))
    assert len(files) == 1, files
    acc = EventAccumulator(str(files[0]))
    acc.Reload()
    return acc, {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_a_tiny_finetune_with_tensorboard_writes_its_curves_beside_its_metrics(tmp_path, tiny_model):
    tok_dir, hp = prepare(tmp_path, tiny_model("bert"), "sst2", n_train=96)  # 6 steps of 16
    metrics = tmp_path / "results/finetune/tiny-bert/sst2/metrics.json"
    stale = tracking.tensorboard_dir(metrics) / "events.out.tfevents.old"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"a killed earlier attempt's curves")
    rec = finetune.finetune(ptm="tiny-bert", model_dir=tiny_model("bert"), tokenized_dir=tok_dir, task="sst2",
                            hp=hp, metrics_path=metrics, report_to="tensorboard")
    folder = metrics.parent / "tensorboard"
    assert not stale.exists()  # a rerun's curves replace the earlier run's
    acc, scalars = _scalars(folder)
    # the first step's loss and the run's summary, at the steps the Trainer logged them
    assert [s for s, _ in scalars["train/loss"]] == [1]
    (step, loss), = scalars["train/train_loss"]
    assert step == rec["train_steps"] == 6
    assert loss == pytest.approx(rec["train_loss"], rel=1e-6)
    args = json.loads(acc.Tensors("args/text_summary")[0].tensor_proto.string_val[0].decode())
    assert args["run_name"] == "tiny-bert/sst2/seed0" and args["report_to"] == ["tensorboard"]
    assert rec["provenance"]["report_to"] == ["tensorboard"]


def test_without_tracking_no_event_file_and_the_same_result(tmp_path, tiny_model):
    tok_dir, hp = prepare(tmp_path, tiny_model("bert"), "sst2")
    recs = []
    for report_to in ("none", ["tensorboard"]):
        out = tmp_path / str(report_to) / "metrics.json"
        recs.append(finetune.finetune(ptm="tiny-bert", model_dir=tiny_model("bert"), tokenized_dir=tok_dir,
                                      task="sst2", hp=hp, metrics_path=out, report_to=report_to))
    assert not (tmp_path / "none" / "tensorboard").exists()
    assert (tmp_path / "['tensorboard']" / "tensorboard").is_dir()
    assert recs[0]["metrics"] == recs[1]["metrics"] and recs[0]["train_loss"] == recs[1]["train_loss"]


def test_report_to_values_and_missing_packages_name_the_fix():
    assert tracking.reporters("none") == [] and tracking.reporters(None) == []
    assert tracking.reporters(["wandb", "tensorboard", "wandb"]) == ["wandb", "tensorboard"]
    with pytest.raises(ValueError, match=r"finetune.report_to: \['comet'\] unknown"):
        tracking.reporters("comet")
    with pytest.raises(ModuleNotFoundError, match=r"'wandb' but package 'wandb' is not installed.*pip install wandb"):
        tracking.check_installed(["tensorboard", "wandb"], find_spec=lambda name: None if name == "wandb" else object())
    assert tracking.training_arguments([], "p", "t", 1) == {"report_to": "none", "run_name": "p/t/seed1",
                                                            "logging_first_step": False}


def test_the_config_takes_report_to_and_rejects_unknown_trackers():
    from pathlib import Path

    import yaml

    from ptmbench.settings.config import ConfigError, validate

    cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "test.yaml").read_text())
    assert validate(cfg)["finetune"]["report_to"] == "none"
    cfg["finetune"]["report_to"] = ["tensorboard", "mlflow"]
    assert validate(cfg)["finetune"]["report_to"] == ["tensorboard", "mlflow"]
    cfg["finetune"]["report_to"] = "comet"
    with pytest.raises(ConfigError, match="report_to"):
        validate(cfg)
