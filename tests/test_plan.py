"""The cost planner: job counts equal the DAG's, disk arithmetic on a hand-checked case, offline sizes."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from ptmbench import plan
from ptmbench import tasks as registry
from ptmbench.config import load, validate

ROOT = Path(__file__).resolve().parents[1]


def _dag_counts(config_path: Path, workdir: Path) -> dict[str, int]:
    """Jobs per rule of Snakemake's own dry run ("Job stats" table)."""
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "-n",
         "--nolock", "--cores", "1", "--configfile", str(config_path)],
        capture_output=True, text=True, timeout=300, check=True).stdout
    table = out.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


def _plan_counts(p: dict) -> dict[str, int]:
    return {s["rule"]: s["jobs"] for s in p["stages"] if s["jobs"]}


def _mixed_config(tmp_path: Path) -> Path:
    """Two merged models, one unseen, a QA task, two ratios, two seeds, the GLUE/SQuAD demo data."""
    cfg = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    cfg["models"] = {"tiny-bert": {"source": "tiny", "family": "bert", "seed": 0},
                     "tiny-roberta": {"source": "tiny", "family": "roberta", "seed": 0}}
    cfg["unseen_models"] = {"tiny-electra": {"source": "tiny", "family": "electra", "seed": 0}}
    cfg["tasks"] = ["rte", "sst2", "stsb", "squad_v2"]
    cfg["merge"]["ratios"] = [0.25, 0.5]
    cfg["finetune"]["seeds"] = [0, 1]
    path = tmp_path / "mixed.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize("which", ["test", "mixed"])
def test_job_counts_equal_the_dag(tmp_path, which):
    path = ROOT / "config" / "test.yaml" if which == "test" else _mixed_config(tmp_path)
    p = plan.plan(load(path), tmp_path)
    assert _plan_counts(p) == _dag_counts(path, tmp_path / "wd")
    assert p["total"]["jobs"] == sum(_plan_counts(p).values())


def test_extra_seeds_multiply_the_finetune_gpu_hours():
    """finetune.seeds [0, 1, 2]: every fine-tune (base and merged PTMs) twice more; nothing else changes."""
    cfg = load(ROOT / "config" / "config.yaml")
    one = {s["rule"]: s for s in plan.plan(copy.deepcopy(cfg), Path("/nonexistent"))["stages"]}
    cfg["finetune"]["seeds"] = [0, 1, 2]
    three = {s["rule"]: s for s in plan.plan(cfg, Path("/nonexistent"))["stages"]}
    assert "finetune_seed" not in one and three["finetune_seed"]["jobs"] == 2 * (120 + 5400)
    assert three["finetune_seed"]["gpu_hours"] == pytest.approx(
        2 * (one["finetune_base"]["gpu_hours"] + one["finetune_merged"]["gpu_hours"]))
    assert three["finetune_seed"]["disk_gb"] == 0  # metrics only
    assert all(three[r] == s for r, s in one.items() if r != "all")


def test_paper_config_offline():
    """The paper config plans without network (sizes from the built-in table) and matches the DAG size."""
    p = plan.plan(load(ROOT / "config" / "config.yaml"), Path("/nonexistent"))
    c = _plan_counts(p)
    assert p["total"]["jobs"] == 11725
    assert (c["finetune_base"], c["merge"], c["finetune_merged"], c["graph"], c["logme"]) == (120, 540, 5400, 552, 4968)
    # order of magnitude of the published setup: thousands of GPU-hours, hundreds of GB of merged weights
    assert 500 < p["total"]["gpu_hours"] < 20000
    d = p["disk_gb"]
    assert d["merged_weights"] == pytest.approx(45 * sum(
        plan.MODELS[m][0] for m in p["models"]) * 4e-9)
    large = plan.finetune_seconds(plan.model_size("roberta-large", {"source": "hub", "id": "FacebookAI/roberta-large"}),
                                  *registry.get("mnli").published_size, {"epochs": 3, "batch_size": 16})
    base = plan.finetune_seconds(plan.model_size("roberta-base", {"source": "hub", "id": "FacebookAI/roberta-base"}),
                                 *registry.get("mnli").published_size, {"epochs": 3, "batch_size": 32})
    assert 2 < large / base < 8


def _write_model(d: Path, n_params: int) -> None:
    from safetensors.numpy import save_file

    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 64, "num_hidden_layers": 2,
                                               "intermediate_size": 128, "num_attention_heads": 4}))
    save_file({"w": np.zeros((n_params // 10, 10), dtype=np.float32)}, str(d / "model.safetensors"))


def test_disk_arithmetic_hand_checked(tmp_path):
    """Models A (1,000,000 params) and B (250,000), tasks sst2+stsb+rte (3 pairs), ratios 0.5 and 1.0.

    fp32 weights: A 4.0 MB, B 1.0 MB. Base models 5 MB; fine-tuned 3 tasks x 5 MB = 15 MB;
    merged 3 pairs x 2 ratios x 5 MB = 30 MB. Kept: 50 MB (keep) / 20 MB (no keep).
    """
    _write_model(tmp_path / "a", 1_000_000)
    _write_model(tmp_path / "b", 250_000)
    cfg = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    cfg["models"] = {"a": {"source": "path", "path": str(tmp_path / "a")},
                     "b": {"source": "path", "path": str(tmp_path / "b")}}
    cfg["tasks"] = ["sst2", "stsb", "rte"]
    cfg["merge"]["ratios"] = [0.5, 1.0]
    p = plan.plan(validate(copy.deepcopy(cfg)), tmp_path, jobs=2)
    d, mb = p["disk_gb"], 1e-3
    assert p["models"]["a"]["params"] == 1_000_000 and p["models"]["b"]["params"] == 250_000
    assert d["base_models"] == pytest.approx(5 * mb)
    assert d["finetuned_weights"] == pytest.approx(15 * mb)
    assert d["merged_weights"] == pytest.approx(30 * mb)
    assert d["kept_weights_keep_true"] == pytest.approx(50 * mb)
    assert d["kept_weights_keep_false"] == pytest.approx(20 * mb)
    # temp() merged weights in flight: at most 2 jobs x the biggest merged model (4 MB)
    assert d["peak_keep_false_at_most"] == pytest.approx(d["peak_keep_true"] - 30 * mb + 8 * mb)
    assert _plan_counts(p)["merge"] == 12


def test_unknown_model_offline_is_a_clear_error():
    with pytest.raises(ValueError, match="size unknown offline"):
        plan.model_size("my-model", {"source": "hub", "id": "someone/my-model"}, Path("/nonexistent"))


def test_cli(tmp_path, capsys):
    assert plan.main(["--configfile", str(ROOT / "config" / "config.yaml"), "-d", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "finetune_merged" in out and "peak disk" in out and "11725" in out
