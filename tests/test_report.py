"""The report stage on synthetic tables (ptmbench.stages.report): the estimator tables it writes, the plots,
the HTML pieces the Snakemake report shows inline, the demo-data banner and the chance levels."""

import itertools
import math
import struct

import numpy as np
import pandas as pd
import pytest

from ptmbench.core import naming
from ptmbench.core import tasks as registry
from ptmbench.evaluation import judging
from ptmbench.stages import report

ESTIMATORS = ("logme", "hscore", "knn")  # knn: classification only here (not applicable on stsb)


def synthetic_tables(root, bases, tasks, seeds=(0,), ratios=("0.5",), seed=0, estimators=ESTIMATORS,
                     seed_column=True):
    """performance.csv, logme.csv and estimators.csv of a zoo: every base model, its merges of every
    task pair, fine-tuned on ``tasks``; the estimators are noisy copies of the truth. Returns the paths."""
    rng = np.random.default_rng(seed)
    pairs = list(itertools.combinations(naming.ordered(tasks), 2))
    ptms = [(b, "", "", "") for b in bases] + [(b, t1, t2, r) for b in bases for t1, t2 in pairs for r in ratios]
    perf, logme, est = [], [], []
    for (b, t1, t2, r), task in itertools.product(ptms, tasks):
        name = f"{b}_{t1}_{t2}_{r}" if t1 else b
        ids = {"ptm": name, "base": b, "task_1": t1, "task_2": t2, "ratio": r}
        entry = registry.get(task)
        truth = 0.6 + 0.1 * bases.index(b) / len(bases) + (0.05 if task in (t1, t2) else 0) + rng.normal(0, 0.02)
        for s in seeds:
            row = {**ids, "eval_task": task, "split": entry.export_split, "metric": entry.consumer_metric}
            if seed_column:
                row["seed"] = s
            perf.append({**row, "value": (truth + rng.normal(0, 0.01)) / entry.consumer_scale, "diverged": False})
        if not entry.has_logme:
            continue
        score = truth * 10 + rng.normal(0, 0.3)
        logme.append({**ids, "eval_task": task, "score": score, "n": 64, "d": 32,
                      "parameters": 1000 * (bases.index(b) + 1), "time_s": 0.1})
        for e in estimators:
            ok = not (e == "knn" and entry.kind == "regression")
            est.append({**ids, "eval_task": task, "estimator": e,
                        "score": (score if e == "logme" else truth + rng.normal(0, 0.05)) if ok else math.nan,
                        "time_s": 0.01, "applicable": ok, "note": "" if ok else "classification only"})
    root.mkdir(parents=True, exist_ok=True)
    out = {k: root / f"{k}.csv" for k in ("performance", "logme", "estimators")}
    for k, rows in (("performance", perf), ("logme", logme), ("estimators", est)):
        pd.DataFrame(rows).to_csv(out[k], index=False)
    return out


def run_report(tmp_path, tables, **kw):
    outs = {"correlations_csv": tmp_path / "out/correlations.csv", "plots_dir": tmp_path / "out/plots",
            "summary_txt": tmp_path / "out/summary.txt"}
    extra = {"leaderboard_csv": tmp_path / "out/leaderboard.csv", "judging_csv": tmp_path / "out/judging.csv",
             "noise_csv": tmp_path / "out/noise.csv", "html_dir": tmp_path / "out/html"}
    (tmp_path / "out").mkdir(exist_ok=True)
    kw.setdefault("judging_config", {"bootstrap": 100, "seed": 0})
    report.report(tables["performance"], tables["logme"], **outs, estimators_csv=tables["estimators"], **extra, **kw)
    return {**outs, **extra}


def png_size(path):
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", head[16:24])


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    tables = synthetic_tables(tmp / "tables", ["alpha", "beta", "gamma"], ["cola", "sst2", "stsb"], seeds=(0, 1))
    return tmp, run_report(tmp, tables, demo_data=["glue"])


def test_leaderboard_judging_and_noise_tables(two_seeds):
    _, out = two_seeds
    board = pd.read_csv(out["leaderboard_csv"])
    assert set(board["estimator"]) == {*ESTIMATORS, *judging.BASELINES} and list(board["rank"]) == sorted(board["rank"])
    b = board.set_index("estimator")
    assert b.loc["knn", "n_tasks"] == 2  # not applicable on stsb
    # ranked on the tasks every ranked row has: knn lacks stsb, so every row is ranked on cola and sst2
    assert b.loc["logme", "n_tasks"] == 2 and set(b["tasks"]) == {"cola;sst2"}
    assert {f"{m}_{s}" for m in judging.MEASURES for s in ("pooled", "within")} <= set(board.columns)
    assert (b.loc[list(judging.BASELINES), "kind"] == "baseline").all() and (b.loc[list(ESTIMATORS), "kind"] == "estimator").all()
    assert b.loc["random", "kendall_tau_b_pooled"] == 0.0 and b.loc["random", "top3_hit_pooled"] == pytest.approx(3 / 12)
    assert (b["weighted_tau_pooled_ci_low"] <= b["weighted_tau_pooled"] + 1e-9).all()
    assert (b.loc[[*ESTIMATORS, "random"], "weighted_tau_within_bases"] == 3).all()
    # one count per base model: no within-base correlation (0 bases behind it), regret and hit at chance
    assert (b.loc[["param_count", "base_score"], "weighted_tau_within_bases"] == 0).all()
    assert (b.loc[["param_count", "base_score"], "top1_regret_within_bases"] == 3).all()
    assert b.loc["param_count", "top1_regret_within"] == pytest.approx(b.loc["random", "top1_regret_within"])
    assert b["best_indistinguishable"].notna().all()
    judg = pd.read_csv(out["judging_csv"], keep_default_na=False, na_values=[""])
    assert set(judg["scope"]) == {"pooled", "alpha", "beta", "gamma"}
    assert not ((judg["eval_task"] == "stsb") & (judg["estimator"] == "knn")).any()
    pooled = judg[judg["scope"] == "pooled"]
    assert (pooled.loc[pooled["estimator"] != "base_score", "n"] == 3 * 4).all()  # 3 bases + 3 pairs each
    assert (pooled.loc[pooled["estimator"] == "base_score", "n"] == 3 * 3).all()  # merged PTMs only
    assert (pooled["weighted_tau_ci_low"] <= pooled["weighted_tau_ci_high"]).all()
    noise = pd.read_csv(out["noise_csv"])
    scope = noise[noise["ptm"].isna()]  # per task and scope; then one row per PTM
    assert len(scope) == 3 * 4 and (scope["n_seeds"] == 2).all() and scope["seed_kendall_tau_b"].notna().all()
    assert len(noise[noise["ptm"].notna()]) == 3 * 12 and noise["sd"].notna().all()


def test_plots_are_written_with_sensible_sizes(two_seeds):
    _, out = two_seeds
    plots = out["plots_dir"]
    names = sorted(p.name for p in plots.iterdir())
    assert names == sorted([f"logme_vs_{t}.png" for t in ("cola", "sst2", "stsb")]
                           + [f"estimators_{t}.png" for t in ("cola", "sst2", "stsb")]
                           + [f"merged_heatmap_{b}.png" for b in ("alpha", "beta", "gamma")])
    w, h = png_size(plots / "logme_vs_cola.png")
    assert 600 < w < 2000 and 300 < h < 2000  # 4 panels (all + 3 bases) in one row
    for p in names:
        assert (plots / p).stat().st_size > 10_000


def test_heatmap_grows_with_the_paper_zoo(tmp_path, two_seeds):
    tasks = list(registry.PUBLISHED)[:9]  # the nine GLUE tasks: 36 pairs, 2 ratios = 72 rows
    tables = synthetic_tables(tmp_path / "t", ["big"], tasks, ratios=("0.3", "0.5"), estimators=("logme",))
    perf, _ = report.read_tables(tables["performance"], tables["logme"])
    report.plot_merge_heatmap(report.consumer_performance(perf), "big", tmp_path / "big.png")
    big_w, big_h = png_size(tmp_path / "big.png")
    small_w, small_h = png_size(two_seeds[1]["plots_dir"] / "merged_heatmap_alpha.png")
    assert big_h > 4 * small_h and big_w > small_w  # 72 rows x 9 tasks vs 3 x 3: scaled, not squeezed
    assert big_h / 110 > 72 * 0.2  # at least 0.2 inch per row


def test_palette_tells_twelve_and_more_models_apart():
    styles = [tuple(report.base_style(i).values()) for i in range(56)]
    assert len(set(styles)) == 56
    assert all(a[0] != b[0] and a[1] != b[1] for a, b in itertools.pairwise(styles))


def test_html_pieces_hold_the_tables_and_the_banner(two_seeds):
    _, out = two_seeds
    html_dir = out["html_dir"]
    assert sorted(p.name for p in html_dir.iterdir()) == sorted(
        ["leaderboard.html", "estimators.html", "correlations.html", "summary.html", report.FRAGMENT])
    board = (html_dir / "leaderboard.html").read_text()
    assert board.count("<tr") == 1 + len(ESTIMATORS) + len(judging.BASELINES) and "<td class='l'>logme</td>" in board
    assert "every ranked row has (cola, sst2)" in board and "<td class='l'>baseline</td>" in board
    assert "DEMO DATA: the glue data" in board and "DEMO DATA" in (html_dir / report.FRAGMENT).read_text()
    assert "<html" not in (html_dir / report.FRAGMENT).read_text()  # embedded in the report page
    per_task = (html_dir / "estimators.html").read_text()
    assert per_task.count("(seed noise ceiling)") == 2 * 3  # next to the pooled and the within-base taus
    summary = out["summary_txt"].read_text()
    assert summary.startswith("*** DEMO DATA") and "Estimator leaderboard" in summary
    assert "Seed noise ceiling (2 seeds)" in summary
    assert summary.index("Estimator leaderboard") < summary.index("ptm-bench summary")


def test_no_banner_for_real_data_and_one_seed_says_so(tmp_path):
    tables = synthetic_tables(tmp_path / "t", ["alpha", "beta"], ["sst2", "mrpc"], seed_column=False)
    perf, logme = report.read_tables(tables["performance"], tables["logme"])
    cons = report.consumer_performance(perf)  # no seed column: seed 0
    judg = judging.judging_table(report.read_estimators(tables["estimators"]), cons)
    board, noise = judging.leaderboard(judg), judging.noise_table(cons)
    assert noise["n_seeds"].eq(1).all() and noise["seed_kendall_tau_b"].isna().all()
    corr = report.correlation_table(perf, logme)
    summary = report.summary_text(perf, logme, corr, board, noise, demo_data=[])
    report.write_html_pieces(tmp_path, board, judg, noise, corr, summary, {}, report.demo_banner([]))
    assert "DEMO" not in summary and "DEMO" not in (tmp_path / "leaderboard.html").read_text()
    assert judging.ONE_SEED_NOTE in summary and judging.ONE_SEED_NOTE in (tmp_path / "estimators.html").read_text()


def test_too_few_ptms_everywhere_still_reports(tmp_path):
    tables = synthetic_tables(tmp_path / "t", ["alpha"], ["sst2", "stsb"])  # 2 PTMs: nothing defined
    perf, logme = report.read_tables(tables["performance"], tables["logme"])
    cons = report.consumer_performance(perf)
    judg = judging.judging_table(report.read_estimators(tables["estimators"]), cons)
    board = judging.leaderboard(judg)
    assert board["rank"].isna().all() and (board["n_tasks"] == 0).all()
    assert "No row is ranked" in report.ranked_on(board)
    assert judg["note"].str.startswith("fewer than 3 PTMs (2)").all()
    summary = report.summary_text(perf, logme, report.correlation_table(perf, logme), board,
                                  judging.noise_table(cons))
    assert "\n   -   logme " in summary


def test_demo_sources_follow_the_config():
    cfg = {"tasks": ["sst2", "squad_v2"], "data": {"glue": {"source": "demo"}, "squad_v2": {"source": "url"}}}
    assert report.demo_sources(cfg) == ["glue"]
    assert report.demo_sources({**cfg, "data": {"glue": {"source": "hub"}, "squad_v2": {"source": "url"}}}) == []
    assert report.demo_sources({**cfg, "tasks": ["squad_v2"]}) == []  # demo GLUE data unused
    assert "the glue data of this run are generated" in report.demo_banner(["glue"]) and report.demo_banner([]) == ""


def test_chance_levels_are_the_finetune_chance_learner(tmp_path):
    from ptmbench.data import schemas as data

    dd = data.demo_glue("sst2", seed=0, n_train=40, n_validation=30)
    dd.save_to_disk(str(tmp_path / "sst2"))
    train, gold = np.asarray(dd["train"]["label"]), np.asarray(dd["validation"]["label"])
    majority = np.bincount(train).argmax()
    assert report.chance_level("sst2", [tmp_path / "sst2"]) == pytest.approx(float((gold == majority).mean()))
    data.demo_glue("stsb", seed=0, n_train=40, n_validation=30).save_to_disk(str(tmp_path / "stsb"))
    assert report.chance_level("stsb", [tmp_path / "stsb"]) == 0.0


def test_the_finished_run_writes_the_baselines_and_the_intervals(tiny_run):
    """The tiny run (config/test.yaml, judging.bootstrap 200): the report's judging and leaderboard hold
    every estimator, the three baselines (param_count from the recorded encoder sizes) and the interval
    columns; two PTMs are too few for any value, and the summary says that no row is ranked."""
    from ptmbench.core import paths

    logme = pd.read_csv(tiny_run / paths.LOGME_CSV)
    assert (logme["parameters"] > 0).all() and logme.groupby("ptm")["parameters"].nunique().eq(1).all()
    judg = pd.read_csv(tiny_run / paths.JUDGING_CSV, keep_default_na=False, na_values=[""])
    assert list(judg.columns) == list(judging.JUDGING_COLUMNS)
    assert set(judging.BASELINES) <= set(judg["estimator"])
    assert set(judg.loc[judg["estimator"].isin(judging.BASELINES), "kind"]) == {"baseline"}
    board = pd.read_csv(tiny_run / paths.LEADERBOARD_CSV)
    assert list(board.columns) == judging.leaderboard_columns() and set(judging.BASELINES) <= set(board["estimator"])
    assert "No row is ranked" in (tiny_run / paths.SUMMARY_TXT).read_text()
