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

from ptmbench.cli import plan as plan_cli
from ptmbench.cluster import plan
from ptmbench.core import paths
from ptmbench.core import tasks as registry
from ptmbench.settings.config import load, validate

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
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
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
    assert "finetune_seed" not in one and three["finetune_seed"]["jobs"] == 2 * (440 + 5400)
    assert three["finetune_seed"]["gpu_hours"] == pytest.approx(
        2 * (one["finetune_base"]["gpu_hours"] + one["finetune_merged"]["gpu_hours"]))
    assert three["finetune_seed"]["disk_gb"] == 0  # metrics only
    assert all(three[r] == s for r, s in one.items() if r != "all")


def test_paper_config_offline():
    """The paper config plans without network (sizes from the built-in table) and matches the DAG size."""
    cfg = load(ROOT / "config" / "config.yaml")
    p = plan.plan(copy.deepcopy(cfg), Path("/nonexistent"))
    c = _plan_counts(p)
    assert p["total"]["jobs"] == 17976
    assert (c["finetune_base"], c["merge"], c["finetune_merged"], c["graph"], c["logme"], c["early_stop"]) == (
        440, 540, 5400, 584, 5256, 5256)
    # order of magnitude of the published setup: thousands of GPU-hours, hundreds of GB of merged weights
    assert 500 < p["total"]["gpu_hours"] < 20000
    d = p["disk_gb"]
    assert d["merged_weights"] == pytest.approx(45 * sum(plan.MODELS[m][0] for m in cfg["models"]) * 4e-9)
    # the unseen models' sizes come from the table by hub id (two ids share the name bert-base-german-cased)
    cfg_unseen = cfg["unseen_models"]
    assert {m: plan.model_size(m, spec, Path("/nonexistent")).params for m, spec in cfg_unseen.items()
            if "german" in m and "distil" not in m} == {
        "bert-base-german-cased": 109_081_344, "bert-base-german-dbmdz-cased": 109_927_680,
        "bert-base-german-dbmdz-uncased": 109_927_680}
    assert plan.model_size("medium-base", cfg_unseen["medium-base"]).layers == 18  # blocks 6, 3 x 2, 3 x 2
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
    assert plan_cli.main(["--configfile", str(ROOT / "config" / "config.yaml"), "-d", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "finetune_merged" in out and "peak disk" in out and "17976" in out


def _two_task_config(tmp_path: Path) -> dict:
    """One model `a` (config.json: hidden 64, 2 layers, intermediate 128), tasks sst2 + stsb on demo data
    (64 train, 32 validation examples; config/test.yaml: 1 epoch, max_length 64), one merge."""
    _write_model(tmp_path / "a", 100_000)
    cfg = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    cfg["models"] = {"a": {"source": "path", "path": str(tmp_path / "a")}}
    return validate(cfg)


def test_flop_floor_hand_checked(tmp_path):
    """Compute parameters N_c = L (4h^2 + 2hi) = 2 (4*64^2 + 2*64*128) = 65,536.
    Tokens per example (registry, under max_length 64): sst2 13, stsb 31; 64 train, 32 eval, 1 epoch.

    One fine-tune, 6 N_c T E + 2 N_c T_eval:
      sst2: 65,536 x (6*64*13 + 2*32*13) = 65,536 x  5,824 =   381,681,664
      stsb: 65,536 x (6*64*31 + 2*32*31) = 65,536 x 13,888 =   910,163,968
      one PTM on both tasks:               65,536 x 19,712 = 1,291,845,632
    finetune_base (a) and finetune_merged (a_sst2_stsb_0.5): one PTM each.
    LogME, 2 N_c T over the training examples, per PTM: 2 x 65,536 x 64 x (13 + 31) = 369,098,752;
    2 PTMs: 738,197,504. early_stop (config/test.yaml: 2 steps of batch 16 = 32 training examples, and
    the 32 evaluation examples), 8 N_c T x 32 per task and PTM: 65,536 x 8 x 32 x (13 + 31) = 738,197,504;
    2 PTMs: 1,476,395,008.
    At the A100 peak (312e12 FLOP/s), GPU-hours = FLOPs / 312e12 / 3600.
    """
    p = plan.plan(_two_task_config(tmp_path), tmp_path)
    assert p["models"]["a"]["compute_params"] == 65_536
    floor = {s["rule"]: s["flop_floor_gpu_hours"] for s in p["stages"]}
    hours = 312e12 * 3600
    assert floor["finetune_base"] == pytest.approx(1_291_845_632 / hours)
    assert floor["finetune_merged"] == pytest.approx(1_291_845_632 / hours)
    assert floor["logme"] == pytest.approx(738_197_504 / hours)
    assert floor["early_stop"] == pytest.approx(1_476_395_008 / hours)
    assert {r for r, f in floor.items() if f} == {"finetune_base", "finetune_merged", "logme", "early_stop"}
    assert p["total"]["flop_floor_gpu_hours"] == pytest.approx((2 * 1_291_845_632 + 738_197_504 + 1_476_395_008)
                                                               / hours)


def test_json_stages_and_totals(tmp_path, capsys):
    """--json: every stage row has the documented keys; each total is the sum of the rows; the plan never
    beats the FLOP floor; grouping never makes more submissions than jobs."""
    _two_task_config(tmp_path)
    cfg_path = tmp_path / "c.yaml"
    cfg = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    cfg["models"] = {"a": {"source": "path", "path": str(tmp_path / "a")}}
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    assert plan_cli.main(["--configfile", str(cfg_path), "-d", str(tmp_path), "--json"]) == 0
    p = json.loads(capsys.readouterr().out)
    assert p["gpu"] == "a100" and p["assumptions"]["peak_flops"] == 312e12
    keys = {"rule", "jobs", "submissions", "gpu_hours", "flop_floor_gpu_hours", "cpu_hours", "disk_gb"}
    assert all(set(s) == keys for s in p["stages"])
    for key in ("jobs", "submissions", "gpu_hours", "flop_floor_gpu_hours", "cpu_hours"):
        assert p["total"][key] == pytest.approx(sum(s[key] for s in p["stages"])), key
    for s in p["stages"]:
        assert s["gpu_hours"] >= s["flop_floor_gpu_hours"] >= 0
        assert s["submissions"] <= s["jobs"] and (s["submissions"] == 0) == (s["rule"] == "all" or s["jobs"] == 0)


def test_gpu_choice_sets_the_peak(tmp_path, capsys):
    cfg = _two_task_config(tmp_path)
    a100, h100 = plan.plan(cfg, tmp_path, gpu="a100"), plan.plan(cfg, tmp_path, gpu="H100")
    assert h100["gpu"] == "h100"
    assert h100["total"]["flop_floor_gpu_hours"] == pytest.approx(a100["total"]["flop_floor_gpu_hours"] * 312 / 989)
    assert h100["total"]["gpu_hours"] < a100["total"]["gpu_hours"]  # the FLOP term shrinks, fixed costs stay
    assert plan_cli.main(["--configfile", str(ROOT / "config" / "config.yaml"), "-d", str(tmp_path), "--gpu", "h100"]) == 0
    assert "H100 bf16 dense peak (989 TFLOP/s)" in capsys.readouterr().out


def test_unknown_gpu_is_a_clear_error(capsys):
    with pytest.raises(ValueError, match=r"unknown GPU 'v100'.*a100, h100"):
        plan.peak_flops("v100")
    assert plan_cli.main(["--configfile", str(ROOT / "config" / "config.yaml"), "--gpu", "v100"]) == 2
    assert "unknown GPU 'v100'" in capsys.readouterr().err


def test_submissions_follow_the_slurm_profiles_groups():
    """Submissions per rule are the profile's group jobs (ptmbench.cluster.grouping, per stage); without groups
    every job but `all` is one submission; the acquire rules are never grouped."""
    from ptmbench.cluster import grouping

    cfg = load(ROOT / "config" / "config.yaml")
    ungrouped = plan.plan(cfg, Path("/nonexistent"), grouping=grouping.Grouping())
    assert all(s["submissions"] == (0 if s["rule"] == "all" else s["jobs"]) for s in ungrouped["stages"])
    assert ungrouped["total"]["submissions"] == 17975
    p = plan.plan(cfg, Path("/nonexistent"))
    per_stage = grouping.submissions(paths.Zoo.from_config(cfg))
    rows = {s["rule"]: s["submissions"] for s in p["stages"]}
    assert rows["logme"] == per_stage["logme"] < 5256 and rows["graph"] == per_stage["graph"]
    assert sum(v for r, v in rows.items() if r.startswith("acquire_")) == per_stage["acquire"] == 54
    assert p["total"]["submissions"] == per_stage["total"] <= 1900


def test_paper_fine_tunes_against_their_floor():
    """The figures docs/cluster.md states: the 5,840 fine-tunes are planned at ~1,817 A100 GPU-hours; their
    FLOPs (6 N_c T E + evaluation, real tokens) are ~8.4e19, 75.1 A100-hours or 23.7 H100-hours at peak."""
    cfg = load(ROOT / "config" / "config.yaml")
    for gpu, floor in (("a100", 75.05), ("h100", 23.68)):
        p = plan.plan(cfg, Path("/nonexistent"), gpu=gpu)
        ft = [s for s in p["stages"] if s["rule"] in ("finetune_base", "finetune_merged")]
        assert sum(s["flop_floor_gpu_hours"] for s in ft) == pytest.approx(floor, abs=0.05)
        if gpu == "a100":
            assert sum(s["gpu_hours"] for s in ft) == pytest.approx(1817.2, abs=0.05)


def test_early_stop_costs_its_steps(tmp_path):
    """The fine-tuning proxy is billed for early_stop.steps x batch training examples (at most the full
    run's) and the full evaluation; early_stop.steps null plans no early_stop job."""
    cfg = _two_task_config(tmp_path)
    cfg["early_stop"] = {"steps": 1}
    p = plan.plan(cfg, tmp_path)
    floor = {s["rule"]: s["flop_floor_gpu_hours"] for s in p["stages"]}
    batch = int(cfg["finetune"]["glue"]["batch_size"])
    # per PTM: 6 N_c T x (batch examples) + 2 N_c T x 32 eval, on sst2 (13 tokens) and stsb (31)
    want = 2 * 65_536 * sum(6 * batch * t + 2 * 32 * t for t in (13, 31)) / (312e12 * 3600)
    assert floor["early_stop"] == pytest.approx(want)
    cfg["early_stop"] = {"steps": None}
    assert _plan_counts(plan.plan(cfg, tmp_path)).get("early_stop", 0) == 0
