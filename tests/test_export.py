"""Export in the published ptm_model_bench format (docs/formats.md), tidy tables and the report.

Inputs are synthetic files of exactly the shapes the fine-tune, LogME and graph stages write.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import dill
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from ptmbench.core import naming
from ptmbench.core import tasks as registry
from ptmbench.io import provenance
from ptmbench.stages import export, report

CLASSIFICATION = ["eval_accuracy", "eval_acc", "eval_f1", "eval_matthews_correlation", "eval_pearson",
                  "eval_spearman"]
SQUAD = ["exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total", "NoAns_exact", "NoAns_f1",
         "NoAns_total", "best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh"]
EXPECTED_KEYS = {"cola": CLASSIFICATION, "sst2": CLASSIFICATION, "mrpc": CLASSIFICATION,
                 "stsb": ["eval_pearson", "eval_spearman"], "squad_v2": SQUAD}
MODELS, UNSEEN = ["alpha-base", "beta-large"], ["gamma-base"]
TASKS = ["cola", "mnli", "mrpc", "sst2", "stsb", "squad_v2"]


def split_metrics(task: str, rng, ptm: str) -> dict:
    """``metrics`` of a fine-tune record as the finetune stage writes it (extra keys included)."""
    def glue():
        acc = float(rng.uniform(0.5, 0.95))
        mcc = float(rng.uniform(0, 0.8))
        return {"eval_loss": float(rng.uniform(0.2, 0.7)), "eval_accuracy": acc, "eval_acc": acc,
                "eval_f1": float(rng.uniform(0.5, 0.9)), "eval_matthews_correlation": mcc,
                "eval_pearson": mcc, "eval_spearman": mcc, "eval_runtime": 1.5}
    if task == "mnli":
        return {"validation_matched": glue(), "validation_mismatched": glue()}
    if task == "stsb":
        return {"validation": {"eval_loss": 0.9, "eval_pearson": float(rng.uniform(0.3, 0.9)),
                               "eval_spearman": float(rng.uniform(0.3, 0.9))}}
    if task == "squad_v2":
        f1 = float(rng.uniform(40, 80))
        m = {"exact": f1 - 3, "f1": f1, "total": 128, "HasAns_exact": 50.0, "HasAns_f1": 60.0, "HasAns_total": 64,
             "NoAns_exact": 70.0, "NoAns_f1": 70.0, "NoAns_total": 64, "best_exact": f1 - 2,
             "best_exact_thresh": -1.5, "best_f1": f1 + 1, "best_f1_thresh": -1.0}
        if ptm.startswith("beta"):  # a dev set without unanswerable questions: no NoAns_* keys
            m = {k: v for k, v in m.items() if not k.startswith("NoAns_")}
        return {"validation": m}
    return {"validation": glue()}


def make_graph(name: str, layers: int = 2, heads: int = 2, length: int = 128):
    """A graph file object in the published shape: [(G, features, name)]."""
    g = nx.DiGraph()
    feats = {}
    for n in [f"E_self_{ell}" for ell in range(layers + 1)]:
        g.add_node(n, label=n)
    for ell in range(layers):
        e, add = f"E_self_{ell}", f"E_self_{ell}_add"
        g.add_node(add, label=add)
        for h in range(heads):
            qk, vo, m1, m2 = (f"E_self_{ell}_{k}_{h}" for k in ("QKt", "VO", "matmul_1", "matmul_2"))
            for n in (qk, vo, m1, m2):
                g.add_node(n, label=n)
            g.add_edges_from([(e, qk), (e, m1), (qk, m1), (m1, m2), (vo, m2), (m2, add)])
            feats[qk] = torch.arange(length, dtype=torch.float32)
            feats[vo] = torch.ones(length, dtype=torch.float32)
        g.add_edges_from([(e, add), (add, f"E_self_{ell + 1}")])
    return [(g, feats, name)]


def ptm_names(models=MODELS, unseen=UNSEEN, tasks=TASKS):
    pairs = [naming.pair_name(a, b) for a, b in naming.task_pairs(tasks)]
    return [*models, *unseen] + [f"{b}_{p}_0.5" for b in models for p in pairs]


def estimator_entries(task: str, logme_score: float) -> dict:
    """``estimators`` of a LogME record as the logme stage writes it: logme, one estimator defined for
    both kinds and one for classification only (not applicable on stsb)."""
    regression = registry.get(task).kind == "regression"
    return {"logme": {"score": logme_score, "time_s": 0.1, "applicable": True, "note": None},
            "knn": {"score": 0.25 if regression else 0.75, "time_s": 0.01, "applicable": True, "note": None},
            "hscore": ({"score": None, "time_s": 0.0, "applicable": False,
                        "note": f"hscore is defined for classification tasks; {task!r} is a regression task"}
                       if regression else {"score": 1.5, "time_s": 0.02, "applicable": True, "note": None})}


def write_inputs(root: Path, models=MODELS, unseen=UNSEEN, tasks=TASKS, seed=0, diverged=()):
    rng = np.random.default_rng(seed)
    ft, lm, gr = [], [], []
    bases = [*models, *unseen]
    for ptm in ptm_names(models, unseen, tasks):
        base = naming.parse_ptm(ptm, bases).base
        for task in tasks:
            p = root / f"results/finetune/{ptm}/{task}/metrics.json"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(json.dumps({
                "ptm": ptm, "base": base, "task": task, "metrics": split_metrics(task, rng, ptm),
                "diverged": (ptm, task) in diverged, "hyperparameters": {"learning_rate": 2e-5, "seed": 0},
                "train_examples": 256, "train_time_s": 3.0, "eval_time_s": 0.5,
                "provenance": {"versions": {"torch": "2.13.0"}}}))
            ft.append(p)
            if registry.get(task).has_logme:
                q = root / f"results/logme/{ptm}/{task}.json"
                q.parent.mkdir(parents=True, exist_ok=True)
                score = float(rng.normal())
                q.write_text(json.dumps({"ptm": ptm, "base": base, "task": task, "score": score,
                                         "n": 256, "d": 384, "num_targets": 2, "time_s": 0.2,
                                         "parameters": 1000 + len(base),
                                         "estimators": estimator_entries(task, score),
                                         "provenance": {"versions": {"torch": "2.13.0"}}}))
                lm.append(q)
        g = root / f"results/graphs/{ptm}.dill"
        g.parent.mkdir(parents=True, exist_ok=True)
        with open(g, "wb") as fh:
            dill.dump(make_graph(ptm), fh)
        gr.append(g)
    return ft, lm, gr


def run_export(root: Path, **kw):
    ft, lm, gr = write_inputs(root, **{k: v for k, v in kw.items() if k in ("models", "unseen", "tasks",
                                                                            "diverged")})
    models, unseen, tasks = kw.get("models", MODELS), kw.get("unseen", UNSEEN), kw.get("tasks", TASKS)
    manifest = export.export(ft, lm, gr, models, unseen, tasks, root / "results/ptm_model_bench",
                             root / "results/tables/performance.csv", root / "results/tables/logme.csv",
                             link=kw.get("link", True), estimators_csv=root / "results/tables/estimators.csv")
    return root / "results/ptm_model_bench", manifest


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    out, manifest = run_export(root, diverged={("alpha-base_cola_mnli_0.5", "sst2")})
    return root, out, manifest


def load(path):
    return json.loads(Path(path).read_text())


def test_published_file_names_and_nesting(bench):
    root, out, _ = bench
    files = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    glue = [t for t in TASKS if registry.get(t).has_logme]
    expected = {"MANIFEST.json"}
    expected |= {f"base_model_dataset/base_{b}.dill" for b in MODELS}
    expected |= {f"base_model_dataset/unseen_base_{b}.dill" for b in UNSEEN}  # as the published release
    expected |= {f"merged_model_dataset/{p}.dill" for p in ptm_names()[3:]}
    for folder, prefix in (("merged_models", ""), ("seen_base_models", "base_"),
                           ("unseen_base_models", "unrelated_base_")):
        expected |= {f"performance/{folder}/{prefix}{t}_performance_score.json" for t in TASKS}
        expected |= {f"performance/{folder}/{prefix}{t}_logme.json" for t in glue}
    assert files == expected
    assert len(ptm_names()[3:]) == 2 * 15


@pytest.mark.parametrize("task", ["cola", "sst2", "mrpc", "stsb", "squad_v2"])
def test_performance_json_shape_and_keys(bench, task):
    root, out, _ = bench
    merged = load(out / f"performance/merged_models/{task}_performance_score.json")
    assert list(merged) == [task]
    assert list(merged[task]) == ptm_names()[3:]  # merged PTMs only, in zoo order
    for ptm, values in merged[task].items():
        keys = EXPECTED_KEYS[task]
        if task == "squad_v2" and ptm.startswith("beta"):
            keys = [k for k in keys if not k.startswith("NoAns_")]
        assert list(values) == keys, (ptm, list(values))
        rec = load(root / f"results/finetune/{ptm}/{task}/metrics.json")
        assert values == {k: rec["metrics"]["validation"][k] for k in keys}
    seen = load(out / f"performance/seen_base_models/base_{task}_performance_score.json")
    unseen = load(out / f"performance/unseen_base_models/unrelated_base_{task}_performance_score.json")
    assert list(seen) == [task] and list(seen[task]) == MODELS
    assert list(unseen) == [task] and list(unseen[task]) == UNSEEN


def test_mnli_exports_the_mismatched_split(bench):
    root, out, _ = bench
    for path, names in ((out / "performance/merged_models/mnli_performance_score.json", ptm_names()[3:]),
                        (out / "performance/seen_base_models/base_mnli_performance_score.json", MODELS)):
        data = load(path)["mnli"]
        assert list(data) == names
        for ptm, values in data.items():
            splits = load(root / f"results/finetune/{ptm}/mnli/metrics.json")["metrics"]
            assert values["eval_accuracy"] == splits["validation_mismatched"]["eval_accuracy"]
            assert values["eval_accuracy"] != splits["validation_matched"]["eval_accuracy"]
            assert list(values)[0] == "eval_accuracy" and set(values) <= set(CLASSIFICATION)
            assert "eval_loss" not in values


def test_logme_json_shape(bench):
    root, out, _ = bench
    for folder, prefix, names in (("merged_models", "", ptm_names()[3:]), ("seen_base_models", "base_", MODELS),
                                  ("unseen_base_models", "unrelated_base_", UNSEEN)):
        data = load(out / f"performance/{folder}/{prefix}sst2_logme.json")
        assert list(data) == names
        for ptm, score in data.items():
            assert score == load(root / f"results/logme/{ptm}/sst2.json")["score"]
    assert not (out / "performance/merged_models/squad_v2_logme.json").exists()


def test_dill_files_unpickle_with_only_dill_networkx_torch(bench):
    _, out, _ = bench
    code = (
        "import glob, sys, dill, networkx, torch\n"
        "assert not any(m.startswith(('ptmbench', 'pandas')) for m in sys.modules), 'extra imports'\n"
        "for folder in ('base_model_dataset', 'merged_model_dataset'):\n"
        "    for path in sorted(glob.glob(f'{sys.argv[1]}/{folder}/*.dill')):\n"
        "        with open(path, 'rb') as f:\n"
        "            [(G, feats, name)] = dill.load(f)\n"
        "        assert isinstance(G, networkx.DiGraph)\n"
        "        for n in G.nodes: assert G.nodes[n]['label'] == n\n"
        "        assert all(v.dtype == torch.float32 and tuple(v.shape) == (128,) for v in feats.values())\n"
        "        print(folder, name)\n"
    )
    proc = subprocess.run([sys.executable, "-I", "-c", code, str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    printed = {tuple(line.split()) for line in proc.stdout.splitlines()}
    assert printed == ({("base_model_dataset", b) for b in MODELS + UNSEEN}
                       | {("merged_model_dataset", p) for p in ptm_names()[3:]})


def test_graphs_are_hard_linked_or_copied(bench, tmp_path, monkeypatch):
    root, out, manifest = bench
    src = root / "results/graphs/alpha-base.dill"
    dst = out / "base_model_dataset/base_alpha-base.dill"
    assert src.stat().st_ino == dst.stat().st_ino and manifest["graphs"] == {"hardlink": 33}

    def no_link(a, b):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(export.os, "link", no_link)
    out2, manifest2 = run_export(tmp_path, models=["alpha-base"], unseen=[], tasks=["sst2", "stsb"])
    copied = out2 / "base_model_dataset/base_alpha-base.dill"
    assert manifest2["graphs"] == {"copy": 2}
    assert copied.stat().st_ino != (tmp_path / "results/graphs/alpha-base.dill").stat().st_ino
    assert copied.read_bytes() == (tmp_path / "results/graphs/alpha-base.dill").read_bytes()
    assert not (out2 / "performance/unseen_base_models").exists()  # no unseen models configured


def test_manifest_records_provenance_checksums_and_diverged_runs(bench):
    _, out, manifest = bench
    on_disk = load(out / "MANIFEST.json")
    assert on_disk["diverged"] == [{"ptm": "alpha-base_cola_mnli_0.5", "task": "sst2"}]
    assert on_disk["metric_split"]["mnli"] == "validation_mismatched"
    assert on_disk["input_versions"] == {"torch": ["2.13.0"]}
    assert "versions" in on_disk["provenance"]
    assert set(on_disk["files"]) == {str(p.relative_to(out)) for p in out.rglob("*")
                                     if p.is_file() and p.name != "MANIFEST.json"}
    rel = "performance/merged_models/sst2_logme.json"
    assert on_disk["files"][rel]["sha256"] == provenance.sha256(out / rel)
    # the diverged run is exported with its metrics as recorded
    perf = load(out / "performance/merged_models/sst2_performance_score.json")["sst2"]
    assert "alpha-base_cola_mnli_0.5" in perf


def test_bad_inputs_are_named_and_leave_no_output(tmp_path):
    ft, lm, gr = write_inputs(tmp_path, models=["alpha-base"], unseen=[], tasks=["sst2", "stsb"])
    out = tmp_path / "results/ptm_model_bench"
    args = dict(logme=lm, graphs=gr, models=["alpha-base"], unseen=[], tasks=["sst2", "stsb"], out_dir=out,
                performance_csv=tmp_path / "p.csv", logme_csv=tmp_path / "l.csv")
    rec = json.loads(ft[0].read_text())
    del rec["metrics"]["validation"]["eval_matthews_correlation"]
    ft[0].write_text(json.dumps(rec))
    with pytest.raises(ValueError, match=r"alpha-base/sst2.*eval_matthews_correlation"):
        export.export(finetune=ft, **args)
    assert not out.exists() and not list(tmp_path.glob("results/.ptm_model_bench*"))

    rec["metrics"] = {"validation_matched": {}}
    ft[0].write_text(json.dumps(rec))
    with pytest.raises(ValueError, match="no 'validation' split"):
        export.export(finetune=ft, **args)

    ft2, _, _ = write_inputs(tmp_path, models=["alpha-base"], unseen=[], tasks=["sst2", "stsb"])
    with open(gr[0], "wb") as fh:
        dill.dump(make_graph("someone-else"), fh)
    with pytest.raises(ValueError, match="holds the graph of 'someone-else'"):
        export.export(finetune=ft2, **args)
    with open(gr[0], "wb") as fh:
        dill.dump(make_graph("alpha-base", length=64), fh)
    with pytest.raises(ValueError, match=r"expected \(128,\)"):
        export.export(finetune=ft2, **args)
    assert not out.exists()

    moved = tmp_path / "results/finetune/alpha-base/stsb/metrics.json"
    moved.write_text((tmp_path / "results/finetune/alpha-base/sst2/metrics.json").read_text())
    with pytest.raises(ValueError, match="path says"):
        export.read_finetune([moved])


def test_tidy_tables(bench):
    root, _, _ = bench
    perf = pd.read_csv(root / "results/tables/performance.csv", keep_default_na=False)
    assert list(perf.columns) == ["ptm", "base", "task_1", "task_2", "ratio", "seed", "eval_task", "split",
                                  "metric", "value", "diverged"]
    assert (perf["seed"] == 0).all()  # the default finetune.seeds: [0]
    base = perf[perf["ptm"] == "alpha-base"]
    assert (base["task_1"] == "").all() and (base["ratio"] == "").all()
    merged = perf[perf["ptm"] == "alpha-base_stsb_squad_v2_0.5"]
    assert set(merged["task_1"]) == {"stsb"} and set(merged["task_2"]) == {"squad_v2"}
    assert set(merged["base"]) == {"alpha-base"} and set(merged["ratio"].astype(str)) == {"0.5"}
    mnli = perf[(perf["ptm"] == "beta-large") & (perf["eval_task"] == "mnli") & (perf["metric"] == "eval_accuracy")]
    assert set(mnli["split"]) == {"validation_matched", "validation_mismatched"}
    assert len(perf) == len(perf.drop_duplicates(["ptm", "eval_task", "split", "metric"]))
    lm = pd.read_csv(root / "results/tables/logme.csv")
    assert list(lm.columns) == ["ptm", "base", "task_1", "task_2", "ratio", "eval_task", "score", "n", "d", "parameters",
                                "time_s"]
    assert len(lm) == 33 * 5
    assert (lm["parameters"] == 1000 + lm["base"].str.len()).all()  # the logme job's count, carried
    pq = pd.read_parquet(root / "results/tables/performance.parquet")
    assert len(pq) == len(perf)


def test_estimators_table(bench):
    """One row per (PTM, task, estimator); LogME's row is the LogME table's score; a not-applicable
    estimator has an empty score (NaN), never 0, and a note, in the CSV and in the Parquet file."""
    root, _, _ = bench
    est = pd.read_csv(root / "results/tables/estimators.csv")
    assert list(est.columns) == ["ptm", "base", "task_1", "task_2", "ratio", "eval_task", "estimator", "score",
                                 "time_s", "applicable", "note"]
    lm = pd.read_csv(root / "results/tables/logme.csv")
    assert len(est) == 3 * len(lm) and not est.duplicated(["ptm", "eval_task", "estimator"]).any()
    merged = est.merge(lm, on=["ptm", "eval_task"], suffixes=("", "_lm"))
    assert (merged.loc[merged["estimator"] == "logme", "score"] == merged.loc[merged["estimator"] == "logme",
                                                                             "score_lm"]).all()
    na = est[~est["applicable"]]
    assert set(na["estimator"]) == {"hscore"} and set(na["eval_task"]) == {"stsb"}
    assert na["score"].isna().all() and na["note"].str.contains("regression task").all()
    assert est[est["applicable"]]["score"].notna().all() and est[est["applicable"]]["note"].isna().all()
    pq = pd.read_parquet(root / "results/tables/estimators.parquet")
    assert pq["applicable"].dtype == bool and pq["score"].dtype == "float64"
    assert pq.loc[~pq["applicable"], "score"].isna().all() and len(pq) == len(est)


def test_estimators_table_bad_records_are_named(tmp_path):
    rec = {"ptm": "alpha-base", "base": "alpha-base", "task": "sst2", "score": 0.1}
    with pytest.raises(ValueError, match=r"'alpha-base' on 'sst2' has no 'estimators'.*rerun its logme job"):
        export.estimators_table([rec], MODELS)
    rec["estimators"] = {"knn": {"score": None, "time_s": 0.1, "applicable": True, "note": None}}
    with pytest.raises(ValueError, match=r"estimator 'knn' is applicable but its score is None"):
        export.estimators_table([rec], MODELS)
    rec["estimators"] = {"knn": {"score": 0.5, "applicable": True}}
    with pytest.raises(ValueError, match=r"estimator 'knn' lacks \['time_s', 'note'\]"):
        export.estimators_table([rec], MODELS)


def write_seed(root: Path, primary: Path, seed: int, shift: float = 0.01) -> Path:
    """An extra seed's metrics.json beside a primary one (results/finetune/{ptm}/{task}/seed{seed}/), its
    values ``shift`` off the primary's."""
    rec = json.loads(primary.read_text())
    rec["hyperparameters"]["seed"] = seed
    rec["metrics"] = {s: {k: v + shift for k, v in m.items()} for s, m in rec["metrics"].items()}
    path = primary.parent / f"seed{seed}" / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec))
    return path


def test_extra_seeds_are_rows_of_the_table_not_of_the_published_files(tmp_path):
    tasks = ["sst2", "stsb"]
    ft, lm, gr = write_inputs(tmp_path, models=["alpha-base"], unseen=[], tasks=tasks)
    extra = [write_seed(tmp_path, p, s) for s in (3, 1) for p in ft]
    args = dict(logme=lm, graphs=gr, models=["alpha-base"], unseen=[], tasks=tasks,
                out_dir=tmp_path / "results/ptm_model_bench", performance_csv=tmp_path / "p.csv",
                logme_csv=tmp_path / "l.csv")
    manifest = export.export(finetune=ft, finetune_seeds=extra, **args)
    assert manifest["seeds"] == {"published": 0, "all": [0, 3, 1]}
    perf = pd.read_parquet(tmp_path / "p.parquet")
    assert list(perf.columns[4:7]) == ["ratio", "seed", "eval_task"] and perf["seed"].dtype == "int64"
    assert pd.read_csv(tmp_path / "p.csv")["seed"].dtype == "int64"
    key = ["ptm", "eval_task", "split", "metric"]
    by_seed = {s: g.set_index(key)["value"] for s, g in perf.groupby("seed")}
    assert set(by_seed) == {0, 1, 3}
    assert all(len(v) == len(by_seed[0]) for v in by_seed.values())  # every PTM, task and metric per seed
    assert np.allclose(by_seed[1].loc[by_seed[0].index] - by_seed[0], 0.01)
    # the published files hold the primary seed's runs only
    published = load(tmp_path / "results/ptm_model_bench/performance/seen_base_models/base_sst2_performance_score.json")
    primary = json.loads(ft[0].read_text())["metrics"]["validation"]["eval_accuracy"]
    assert published["sst2"]["alpha-base"]["eval_accuracy"] == primary

    # an extra seed's file that records another seed than its folder's, or a run given twice, is refused
    moved = extra[0].parent.parent / "seed7" / "metrics.json"
    moved.parent.mkdir()
    moved.write_text(extra[0].read_text())
    with pytest.raises(ValueError, match=r"records seed 3 but its folder is 'seed7'"):
        export.read_finetune([moved], seeded=True)
    with pytest.raises(ValueError, match=r"two fine-tune results for 'alpha-base' on 'sst2' with seed 3"):
        export.export(finetune=ft, finetune_seeds=[extra[0], extra[0]], **args)
    # the primary seed's runs must agree on their seed (an old run left over)
    rec = json.loads(ft[1].read_text())
    rec["hyperparameters"]["seed"] = 5
    ft[1].write_text(json.dumps(rec))
    with pytest.raises(ValueError, match=r"primary seed's fine-tunes .* record seeds \[0, 5\]"):
        export.export(finetune=ft, **args)
    del rec["hyperparameters"]["seed"]
    ft[1].write_text(json.dumps(rec))
    with pytest.raises(ValueError, match="records no integer hyperparameters.seed"):
        export.export(finetune=ft, **args)


# ----------------------------------------------------------------------------- correlations and report

def test_correlations_of_a_hand_made_table_equal_hand_values_and_scipy():
    x, y = [1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0]
    c = report.correlations(x, y)
    # 5 concordant, 1 discordant pair of 6; sum d^2 = 2; centred cross products 4 over sqrt(5 * 5)
    assert c["kendall_tau"] == pytest.approx(4 / 6)
    assert c["spearman"] == pytest.approx(1 - 6 * 2 / (4 * 15))
    assert c["pearson"] == pytest.approx(0.8)
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=20), rng.normal(size=20)
    b[3] = b[7]  # a tie
    c = report.correlations(a, b)
    assert c["kendall_tau"] == pytest.approx(stats.kendalltau(a, b).statistic)
    assert c["kendall_p"] == pytest.approx(stats.kendalltau(a, b).pvalue)
    assert c["pearson"] == pytest.approx(stats.pearsonr(a, b).statistic)
    assert c["spearman"] == pytest.approx(stats.spearmanr(a, b).statistic)
    assert c["n"] == 20 and c["note"] == ""


def test_correlations_are_nan_safe():
    c = report.correlations([1.0, 2.0], [3.0, 4.0])
    assert math.isnan(c["kendall_tau"]) and c["note"] == "fewer than 3 PTMs (2)"
    c = report.correlations([1.0, 1.0, 1.0], [3.0, 4.0, 5.0])
    assert math.isnan(c["pearson"]) and c["note"] == "constant LogME scores"
    c = report.correlations([1.0, 2.0, 3.0], [0.5, 0.5, 0.5])
    assert math.isnan(c["spearman"]) and c["note"] == "constant performance"
    c = report.correlations([1.0, 2.0, 3.0, 4.0], [1.0, float("nan"), 2.0, 3.0])
    assert c["n"] == 3 and c["kendall_tau"] == pytest.approx(1.0)


def hand_tables():
    rows, lrows = [], []
    data = {  # ptm: (base, t1, t2, logme on cola, mcc on cola matched, mnli matched, mnli mismatched, logme mnli)
        "a": ("a", "", "", 0.1, 0.30, 0.60, 0.70, 1.0),
        "a_cola_mnli_0.5": ("a", "cola", "mnli", 0.3, 0.20, 0.62, 0.50, 2.0),
        "a_cola_stsb_0.5": ("a", "cola", "stsb", 0.2, 0.40, 0.61, 0.60, 3.0),
        "b": ("b", "", "", 0.5, 0.10, 0.70, 0.80, 4.0),
        "b_cola_mnli_0.5": ("b", "cola", "mnli", 0.4, 0.50, 0.90, 0.90, 5.0),
    }
    for ptm, (base, t1, t2, lc, mcc, mm, mx, lmn) in data.items():
        ids = {"ptm": ptm, "base": base, "task_1": t1, "task_2": t2, "ratio": "0.5" if t1 else ""}
        rows.append({**ids, "eval_task": "cola", "split": "validation", "metric": "eval_matthews_correlation",
                     "value": mcc, "diverged": False})
        rows.append({**ids, "eval_task": "cola", "split": "validation", "metric": "eval_accuracy",
                     "value": 1 - mcc, "diverged": False})
        rows.append({**ids, "eval_task": "mnli", "split": "validation_matched", "metric": "eval_accuracy",
                     "value": mm, "diverged": False})
        rows.append({**ids, "eval_task": "mnli", "split": "validation_mismatched", "metric": "eval_accuracy",
                     "value": mx, "diverged": False})
        lrows.append({**ids, "eval_task": "cola", "score": lc, "n": 10, "d": 4, "time_s": 0.1})
        lrows.append({**ids, "eval_task": "mnli", "score": lmn, "n": 10, "d": 4, "time_s": 0.1})
    return pd.DataFrame(rows), pd.DataFrame(lrows)


def test_correlation_table_uses_the_consumer_metric_per_task_and_base():
    perf, logme = hand_tables()
    corr = report.correlation_table(perf, logme).set_index(["eval_task", "base"])
    cola = corr.loc[("cola", "(all)")]
    assert cola["metric"] == "eval_matthews_correlation" and cola["n"] == 5
    assert cola["kendall_tau"] == pytest.approx(stats.kendalltau([0.1, 0.3, 0.2, 0.5, 0.4],
                                                                 [0.30, 0.20, 0.40, 0.10, 0.50]).statistic)
    mnli = corr.loc[("mnli", "(all)")]  # the mismatched split, not the matched one
    assert mnli["pearson"] == pytest.approx(stats.pearsonr([1, 2, 3, 4, 5], [0.7, 0.5, 0.6, 0.8, 0.9]).statistic)
    a = corr.loc[("mnli", "a")]
    assert a["n"] == 3 and a["spearman"] == pytest.approx(stats.spearmanr([1, 2, 3], [0.7, 0.5, 0.6]).statistic)
    b = corr.loc[("cola", "b")]
    assert b["n"] == 2 and math.isnan(b["kendall_tau"]) and "fewer than 3" in b["note"]


def test_report_writes_correlations_plots_and_summary(bench, tmp_path):
    root, _, _ = bench
    report.report(root / "results/tables/performance.csv", root / "results/tables/logme.csv",
                  tmp_path / "correlations.csv", tmp_path / "plots", tmp_path / "summary.txt")
    corr = pd.read_csv(tmp_path / "correlations.csv")
    assert set(corr["eval_task"]) == {"cola", "mnli", "mrpc", "sst2", "stsb"}
    assert set(corr["base"]) == {"(all)", *MODELS, *UNSEEN}
    assert corr.loc[corr["base"] == "(all)", "n"].tolist() == [33] * 5
    assert corr.loc[corr["base"] == "gamma-base", "note"].str.startswith("fewer than 3").all()
    pngs = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert pngs == sorted([f"{k}_{t}.png" for t in ("cola", "mnli", "mrpc", "sst2", "stsb")
                           for k in ("logme_vs", "estimators")] + [f"merged_heatmap_{b}.png" for b in MODELS])
    assert all((tmp_path / "plots" / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)
    summary = (tmp_path / "summary.txt").read_text()
    assert "33 PTMs (3 base, 30 merged)" in summary
    for task in TASKS:
        assert f"\n{task} " in summary
    assert "f1 / 100" in summary and "1 fine-tuning run(s) diverged" in summary
