"""The DAG as users see it: job counts of the paper setup, and the tiny workflow end to end."""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import copy_run

from ptmbench.core import paths
from ptmbench.estimators import transferability
from ptmbench.io import provenance

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]


def snakemake(*args, cwd: Path, timeout=900) -> subprocess.CompletedProcess:
    proc = subprocess.run([*SNAKEMAKE, "-d", str(cwd), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)
    return proc


def job_counts(config: Path, workdir: Path) -> dict[str, int]:
    proc = snakemake("-n", "--nolock", "--configfile", config, cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    table = proc.stdout.split("Job stats:")[-1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def write_config(tmp_path: Path, base: str, **changes) -> Path:
    cfg = yaml.safe_load((REPO / "config" / base).read_text())
    for dotted, value in changes.items():
        node = cfg
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.mark.slow
def test_paper_dag_plans_every_stage(paper_plan):
    counts = {rule: len(jobs) for rule, jobs in paper_plan.items()}
    bases = 12 + 32  # merged base models and the published unseen ones
    assert counts["acquire_model"] == bases
    assert counts["acquire_glue"] == 9
    assert counts["acquire_squad"] == 1
    assert counts["tokenize"] == bases * 10
    assert counts["finetune_base"] == bases * 10
    assert counts["merge"] == 12 * 45
    assert counts["finetune_merged"] == 540 * 10
    assert counts["graph"] == 540 + bases
    assert counts["logme"] == (540 + bases) * 9
    assert counts["export"] == 1


def test_two_ratios_double_the_merges(tmp_path):
    """One of the paper's models with every task and two ratios (the paper setup's shape, planned fast)."""
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["models"] = dict(list(cfg["models"].items())[:1])
    cfg["unseen_models"] = {}
    one = job_counts(write_config(tmp_path, "config.yaml", models=cfg["models"], unseen_models={}), tmp_path)
    (tmp_path / "two").mkdir()
    two = job_counts(write_config(tmp_path / "two", "config.yaml", models=cfg["models"], unseen_models={},
                                  **{"merge.ratios": [0.25, 0.5]}), tmp_path / "two")
    assert (one["merge"], two["merge"]) == (45, 90)
    assert (one["finetune_merged"], two["finetune_merged"]) == (450, 900)
    assert one["finetune_base"] == two["finetune_base"] == 10  # base fine-tunes are shared by both ratios
    assert two["graph"] == 1 + 90 and two["logme"] == (1 + 90) * 9


def test_unseen_models_are_finetuned_and_scored_never_merged(tmp_path):
    config = write_config(tmp_path, "test.yaml", unseen_models={"tiny-electra": {"source": "tiny", "family": "electra"}})
    counts = job_counts(config, tmp_path)
    assert counts["acquire_model"] == 2
    assert counts["finetune_base"] == 2 * 2
    assert counts["merge"] == 1  # only tiny-bert's sst2_stsb pair
    assert counts["logme"] == 3 * 2  # tiny-bert, its merge and tiny-electra, on sst2 and stsb


@pytest.mark.slow
def test_tiny_workflow_end_to_end(tiny_run):
    """config/test.yaml runs offline to the export; a second run has nothing to do."""
    config = REPO / "config" / "test.yaml"
    ptms = ["tiny-bert", "tiny-bert_sst2_stsb_0.5"]
    for ptm in ptms:
        for task in ("sst2", "stsb"):
            metrics = json.loads((tiny_run / f"results/finetune/{ptm}/{task}/metrics.json").read_text())
            assert metrics["ptm"] == ptm and metrics["task"] == task
            assert "provenance" in metrics
            logme = json.loads((tiny_run / f"results/logme/{ptm}/{task}.json").read_text())
            assert logme["ptm"] == ptm and isinstance(logme["score"], float)
        assert (tiny_run / f"results/graphs/{ptm}.dill").is_file()
    bench = tiny_run / "results/ptm_model_bench"
    assert (bench / "base_model_dataset/base_tiny-bert.dill").is_file()
    assert (bench / "merged_model_dataset/tiny-bert_sst2_stsb_0.5.dill").is_file()
    perf = json.loads((bench / "performance/merged_models/sst2_performance_score.json").read_text())
    assert set(perf["sst2"]) == {"tiny-bert_sst2_stsb_0.5"}

    # every configured estimator for every (PTM, task), scored or marked not applicable (never 0), and
    # the fine-tuning proxy (rule early_stop: config/test.yaml's 2 steps of the recipe)
    est = pd.read_csv(tiny_run / "results/tables/estimators.csv")
    assert sorted(zip(est["ptm"], est["eval_task"], est["estimator"], strict=True)) == sorted(
        (p, t, e) for p in ptms for t in ("sst2", "stsb") for e in [*transferability.ESTIMATORS, "early_stop"])
    for ptm in ptms:
        for task in ("sst2", "stsb"):
            stop = json.loads((tiny_run / f"results/early_stop/{ptm}/{task}.json").read_text())
            full = json.loads((tiny_run / f"results/finetune/{ptm}/{task}/metrics.json").read_text())
            assert stop["train_steps"] == 2 < full["train_steps"] and stop["steps"] == 2
            metric = {"sst2": "eval_accuracy", "stsb": "eval_pearson"}[task]
            assert stop["score"] == stop["metrics"]["validation"][metric]
            row = est[(est["ptm"] == ptm) & (est["eval_task"] == task) & (est["estimator"] == "early_stop")]
            assert row["score"].item() == pytest.approx(stop["score"], rel=1e-12) and row["applicable"].item()
    est = est[est["estimator"] != "early_stop"]
    kind = est["eval_task"].map({"sst2": "classification", "stsb": "regression"})
    defined = [k in transferability.APPLIES[e] for k, e in zip(kind, est["estimator"], strict=True)]
    assert (est["applicable"] == defined).all()
    assert est.loc[est["applicable"], "score"].notna().all() and est.loc[~est["applicable"], "score"].isna().all()
    lm = est[est["estimator"] == "logme"].merge(pd.read_csv(tiny_run / "results/tables/logme.csv"),
                                                on=["ptm", "eval_task"])
    assert (lm["score_x"] == lm["score_y"]).all()

    again = snakemake("-n", "--nolock", "--configfile", config, cwd=tiny_run)
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr

    # status agrees with Snakemake (every job done, none stale), every recorded checksum matches,
    # and no temporaries are left
    st = subprocess.run([sys.executable, "-m", "ptmbench.cli.status", "--configfile", str(config), "-d", str(tiny_run),
                         "--json", "--verify"], capture_output=True, text=True, timeout=120)
    assert st.returncode == 0, st.stdout[-3000:] + st.stderr[-3000:]
    report = json.loads(st.stdout)
    assert report["totals"]["*"] == {"done": 25} and report["verify"] == [] and report["temporaries"] == []


@pytest.mark.slow
def test_tiny_run_reports_every_estimator(tiny_run):
    """The report judges every estimator of results/tables/estimators.csv (needs the export to write it),
    ranks them in leaderboard.csv and says on top that the tiny run's data are demo data."""
    import pandas as pd

    est = pd.read_csv(tiny_run / "results/tables/estimators.csv")
    out = tiny_run / "results/report"
    board = pd.read_csv(out / "leaderboard.csv")
    baselines = {"param_count", "base_score", "random"}  # judged beside them (docs/report.md)
    assert set(board["estimator"]) == set(est["estimator"]) | baselines and "logme" in set(board["estimator"])
    judging = pd.read_csv(out / "judging.csv")
    assert set(judging["scope"]) == {"pooled", "tiny-bert"}
    merged_only = judging["estimator"] == "base_score"  # judged on the merged PTMs: 1 of the 2
    assert judging.loc[~merged_only, "note"].str.startswith("fewer than 3 PTMs (2)").all()  # NaN with a reason
    assert judging.loc[merged_only, "note"].str.startswith("fewer than 3 PTMs (1)").all()
    assert (out / "noise.csv").is_file()
    assert (out / "summary.txt").read_text().startswith("*** DEMO DATA: the glue data")
    assert "DEMO DATA" in (out / "html/leaderboard.html").read_text()


@pytest.mark.slow
def test_outputs_are_shareable_under_umask_022(tiny_run):
    """Colleagues (other accounts) can read every output and enter every folder: each file has mode
    0o644 and each folder 0o755, what umask 022 gives any new file; no temporary is left."""
    bad = []
    for top in ("results", "resources"):
        for p in [tiny_run / top, *(tiny_run / top).rglob("*")]:
            mode = stat.S_IMODE(p.lstat().st_mode)
            if p.is_symlink():
                continue
            want = 0o755 if p.is_dir() else 0o644
            if mode != want:
                bad.append(f"{p.relative_to(tiny_run)} {oct(mode)}")
            assert not provenance.is_temp(p.name), p
    assert not bad, bad


@pytest.mark.slow
def test_corrupt_inputs_fail_once_naming_the_file(tiny_run, tmp_path):
    """A truncated fine-tuned model (safetensors) and a truncated tokenised Arrow file: each job that
    reads one fails in its single attempt, and its log names the file and the fix."""
    wd = copy_run(tiny_run, tmp_path / "wd")
    weights = wd / "results/finetune/tiny-bert/stsb/model/model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    arrow = next((wd / "results/tokenized/tiny-bert/sst2/train").glob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[: arrow.stat().st_size // 2])
    targets = ["results/merged/tiny-bert/sst2_stsb_0.5", "results/logme/tiny-bert/sst2.json"]
    proc = snakemake(*targets, "--forcerun", "merge", "logme", "--keep-going", "--cores", "2",
                     "--configfile", REPO / "config" / "test.yaml", cwd=wd)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert out.count("Error in rule merge") == 1 and out.count("Error in rule logme") == 1, out[-3000:]
    assert "Trying to restart" not in out
    for log, bad in (("logs/merge/tiny-bert/sst2_stsb_0.5.log", weights), ("logs/logme/tiny-bert/sst2.log", arrow)):
        text = (wd / log).read_text()
        assert f"{bad.relative_to(wd)} is corrupt or incomplete" in text, text[-2000:]
        assert "rerun snakemake to rebuild it" in text
    assert not (wd / targets[0]).exists() and not (wd / targets[1]).exists()


@pytest.mark.slow
def test_an_extra_seed_runs_only_its_finetunes_the_export_and_the_report(tiny_run, tmp_path):
    """finetune.seeds [0] -> [0, 1] on a finished run: the primary seed's jobs and paths stay as they are
    (none reruns, not even for its `hp` params); the new seed's 4 fine-tunes (tiny-bert and its merge x
    sst2, stsb) run, then the export and the report. The table gets seed 1's rows beside seed 0's."""
    wd = copy_run(tiny_run, tmp_path / "wd")
    config = tmp_path / "seeds.yaml"  # the one line a user edits (a re-dumped YAML would reorder the params' keys)
    text = (REPO / "config" / "test.yaml").read_text()
    assert text.count("seeds: [0]\n") == 1
    config.write_text(text.replace("seeds: [0]\n", "seeds: [0, 1]\n"))
    ptms, tasks = ["tiny-bert", "tiny-bert_sst2_stsb_0.5"], ["sst2", "stsb"]
    primary = [wd / paths.metrics_json(p, t) for p in ptms for t in tasks]
    mtimes = [p.stat().st_mtime_ns for p in primary]
    published = {p: p.read_bytes() for p in (wd / paths.EXPORT_DIR / "performance").rglob("*.json")}
    before = pd.read_csv(wd / paths.PERFORMANCE_CSV, keep_default_na=False)

    proc = snakemake("--configfile", config, "--cores", "2", "--resources", "gpu=2", cwd=wd, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    ran = Counter(re.findall(r"^(?:local)?rule (\w+):", out, re.M))
    assert ran == {"finetune_seed": 4, "export": 1, "compare": 1, "report": 1, "hub": 1, "all": 1}, out[-3000:]
    assert [p.stat().st_mtime_ns for p in primary] == mtimes
    for p in ptms:
        for t in tasks:
            rec = json.loads((wd / paths.seed_metrics_json(p, t, 1)).read_text())
            assert (rec["ptm"], rec["task"], rec["hyperparameters"]["seed"]) == (p, t, 1)
            assert (wd / paths.benchmark_file("finetune_seed", ptm=p, task=t, seed="1")).is_file()
    assert not (wd / "results/finetune/tiny-bert/sst2/seed1/model").exists()  # metrics only

    after = pd.read_csv(wd / paths.PERFORMANCE_CSV, keep_default_na=False)
    assert sorted(set(after["seed"])) == [0, 1] and (after["seed"] == 1).sum() == len(before)
    pd.testing.assert_frame_equal(after[after["seed"] == 0].reset_index(drop=True), before)
    # the published files keep the primary seed's runs; the manifest records both seeds
    assert {p: p.read_bytes() for p in (wd / paths.EXPORT_DIR / "performance").rglob("*.json")} == published
    manifest = json.loads((wd / paths.EXPORT_DIR / "MANIFEST.json").read_text())
    assert manifest["seeds"] == {"published": 0, "all": [0, 1]}

    st = subprocess.run([sys.executable, "-m", "ptmbench.cli.status", "--configfile", str(config), "-d", str(wd),
                         "--json"], capture_output=True, text=True, timeout=120)
    assert st.returncode == 0, st.stdout[-3000:] + st.stderr[-3000:]
    assert json.loads(st.stdout)["totals"]["finetune_seed"] == {"done": 4}
