"""The published ptm_model_bench as data (ptmbench.stages.published): every record read, checked against the
checksum manifest, named errors for bad input, and LogME judged on it."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from scipy import stats

from ptmbench.core import paths
from ptmbench.core import tasks as registry
from ptmbench.evaluation import judging
from ptmbench.stages import published as pub

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO.parent / "shared" / "fixtures" / "published"
SHIPPED = REPO / pub.SHIPPED_DIR
MANIFEST = SHIPPED / pub.MANIFEST
TASKS = list(registry.PUBLISHED)
GLUE = [t for t in TASKS if registry.get(t).has_logme]


@pytest.fixture(scope="module")
def fixture_bench() -> Path:
    folder = FIXTURE / pub.BENCH
    if not folder.is_dir():
        pytest.skip(f"published fixture not found at {folder}")
    return folder


@pytest.fixture(scope="module")
def tables(fixture_bench):
    return pub.read_tables(fixture_bench, pub.read_manifest(MANIFEST))


def _raw(folder: Path, group: str, task: str, kind: str) -> dict:
    """A published file read straight with json (the performance files wrap their records in {task: ...})."""
    obj = json.loads((folder / pub.file_name(group, task, kind)).read_text())
    return obj[task] if kind == "performance_score" and set(obj) == {task} else obj


def test_every_published_record_is_kept(tables, fixture_bench):
    perf, logme = tables
    for task in TASKS:
        records = perf[perf["eval_task"] == task].drop_duplicates(["ptm", "group"])
        assert records["group"].value_counts().to_dict() == {"merged": 540, "unseen": 32, "seen": 12}
        # one row per published (PTM, metric), null values kept as NaN
        n_values = sum(len(m) for g in pub.GROUPS for m in _raw(fixture_bench, g, task, "performance_score").values())
        assert (perf["eval_task"] == task).sum() == n_values
    for task in GLUE:
        assert len(logme[logme["eval_task"] == task].drop_duplicates(["ptm", "group"])) == 584
    # the unseen names as published, "_" included, are base models of their own
    flaubert = perf[perf["ptm"].str.startswith("flaubert")].drop_duplicates("ptm")
    assert set(flaubert["ptm"]) == {"flaubert_small_cased", "flaubert_base_uncased", "flaubert_base_cased",
                                    "flaubert_large_cased"}
    assert (flaubert["group"] == "unseen").all() and (flaubert["base"] == flaubert["ptm"]).all()
    # xlm-roberta-base is a seen and an unseen base model with different CoLA runs: both kept
    xlm = perf[(perf["ptm"] == "xlm-roberta-base") & (perf["eval_task"] == "cola")
               & (perf["metric"] == "eval_matthews_correlation")].set_index("group")["value"]
    assert xlm.to_dict() == {"seen": pytest.approx(0.5341430412), "unseen": 0.0}
    # merged names parsed against the seen base models, never split on "_"
    m = perf[perf["ptm"] == "xlm-roberta-base_mnli_squad_v2_0.5"].iloc[0]
    assert (m["base"], m["task_1"], m["task_2"], m["ratio"], m["group"]) == ("xlm-roberta-base", "mnli", "squad_v2",
                                                                            "0.5", "merged")
    # the tidy columns of the export, and the exported split (mnli: mismatched)
    assert list(perf.columns)[:11] == ["ptm", "base", "task_1", "task_2", "ratio", "seed", "eval_task", "split",
                                       "metric", "value", "diverged"]
    assert set(perf.loc[perf["eval_task"] == "mnli", "split"]) == {"validation_mismatched"}
    nulls = _raw(fixture_bench, "seen", "wnli", "performance_score")["roberta-base"]
    row = perf[(perf["ptm"] == "roberta-base") & (perf["eval_task"] == "wnli")].set_index("metric")["value"]
    assert {k: (None if math.isnan(v) else v) for k, v in row.items()} == nulls


def test_the_shipped_copy_is_the_published_release(fixture_bench):
    manifest = pub.read_manifest(MANIFEST)
    assert len(manifest) == 57
    pub.verify(SHIPPED / pub.BENCH, manifest)  # the shipped copy
    pub.verify(fixture_bench, manifest)  # the shared fixture: the same bytes
    assert (SHIPPED / "LICENSE").read_text() == (FIXTURE / "LICENSE").read_text()
    assert "MIT License" in (SHIPPED / "LICENSE").read_text()
    assert pub.COMMIT in (SHIPPED / "README.md").read_text()


def test_judging_equals_an_independent_computation(tables, fixture_bench):
    """Pooled LogME vs the consumer metric from the JSON files with scipy, each published record its own PTM."""
    judg, board = pub.judge(*tables, pub.read_param_counts(SHIPPED / pub.PARAM_COUNTS), {"bootstrap": 0})
    assert list(judg.columns) == list(judging.JUDGING_COLUMNS)
    pooled = judg[(judg["scope"] == judging.POOLED) & (judg["estimator"] == "logme")].set_index("eval_task")
    for task in GLUE:
        entry = registry.get(task)
        s, y = [], []
        for g in pub.GROUPS:
            perf, scores = _raw(fixture_bench, g, task, "performance_score"), _raw(fixture_bench, g, task, "logme")
            for ptm, metrics in perf.items():
                s.append(scores[ptm])
                y.append(metrics[entry.consumer_metric])
        assert len(s) == 584 == pooled.loc[task, "n"]
        assert pooled.loc[task, "weighted_tau"] == pytest.approx(stats.weightedtau(s, y).statistic, abs=1e-12)
        assert pooled.loc[task, "kendall_tau_b"] == pytest.approx(stats.kendalltau(s, y).statistic, abs=1e-12)
    # within base models: a seen base model's scope is it and its 45 merges; the unseen twin is apart
    scopes = judg[(judg["eval_task"] == "cola") & (judg["estimator"] == "logme")].set_index("scope")["n"]
    assert scopes["xlm-roberta-base"] == 46 and scopes["xlm-roberta-base (unseen)"] == 1
    assert scopes["roberta-base"] == 46 and scopes["flaubert_small_cased"] == 1
    b = board.set_index("estimator")
    assert b.loc["logme", "n_tasks"] == len(GLUE)
    assert b.loc["logme", "weighted_tau_pooled"] == pytest.approx(pooled["weighted_tau"].mean())
    # the baselines the published files allow: base_score on the 540 merged PTMs, param_count from the
    # shipped table (every base model has a count, so all 584), random on all 584
    base = judg[(judg["scope"] == judging.POOLED)].set_index(["estimator", "eval_task"])["n"]
    assert base[("base_score", "cola")] == 540 and base[("random", "cola")] == 584
    assert base[("param_count", "cola")] == 584
    assert set(b["kind"]) == {"estimator", "baseline"} and b.loc["random", "kendall_tau_b_pooled"] == 0.0
    rb = pub.record_names(tables[0])
    merged = rb[(rb["eval_task"] == "cola") & (rb["metric"] == "eval_matthews_correlation")]
    own = merged[merged["group"] == "seen"].set_index("ptm")["value"]
    m = merged[merged["group"] == "merged"]
    s, y = own.loc[m["base"]].to_numpy(), m["value"].to_numpy()
    bs = judg[(judg["estimator"] == "base_score") & (judg["scope"] == judging.POOLED) & (judg["eval_task"] == "cola")]
    assert bs["weighted_tau"].iloc[0] == pytest.approx(stats.weightedtau(s, y).statistic, abs=1e-12)


def test_param_counts_table_covers_every_base_and_agrees_with_the_planner():
    from ptmbench.cluster.plan import MODELS, MODELS_BY_ID

    table = pd.read_csv(SHIPPED / pub.PARAM_COUNTS, comment="#")
    assert len(table) == 12 + 32 and table["source"].notna().all()  # every base model, a source for each
    assert table["parameters"].notna().all()  # every one known: param_count covers all 584 published PTMs
    counts = pub.read_param_counts(SHIPPED / pub.PARAM_COUNTS)
    assert {k: v for k, v in counts.items() if k in MODELS} == {k: float(v[0]) for k, v in MODELS.items()}
    unseen = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["unseen_models"]
    for name, spec in unseen.items():  # by the hub id the paper config fine-tunes
        want = MODELS_BY_ID.get(spec["id"]) or MODELS[name.removesuffix("-unseen")]
        assert counts[spec.get("export_name", name)] == float(want[0]), name


@pytest.fixture
def bench_copy(tmp_path, fixture_bench):
    dst = tmp_path / pub.BENCH
    shutil.copytree(fixture_bench, dst)
    for p in dst.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dst


def test_bad_input_gets_an_error_naming_the_file(bench_copy, tmp_path):
    manifest = pub.read_manifest(MANIFEST)
    rel = pub.file_name("unseen", "cola", "logme")
    target = bench_copy / rel
    # a checksum mismatch (one byte changed)
    target.write_text(target.read_text().replace("-0.5", "-0.6", 1))
    with pytest.raises(pub.PublishedError, match=rf"checksum mismatch: {bench_copy / rel} has SHA-256"):
        pub.verify(bench_copy, manifest)
    # malformed: not JSON, a score that is no number, an entry that is no mapping (read without a manifest)
    target.write_text("{not json")
    with pytest.raises(pub.PublishedError, match=rf"cannot read published file {target}"):
        pub.read_tables(bench_copy)
    target.write_text(json.dumps({"bert-base-cased": "high"}))
    with pytest.raises(pub.PublishedError, match=r"the score of 'bert-base-cased' is 'high', not a number"):
        pub.read_tables(bench_copy)
    perf_file = bench_copy / pub.file_name("merged", "rte", "performance_score")
    perf_file.write_text(json.dumps({"rte": {"roberta-base_cola_mnli_0.5": 0.7}}))
    target.write_text(json.dumps({"bert-base-cased": 1.0}))
    with pytest.raises(pub.PublishedError, match=rf"{perf_file}: the entry of 'roberta-base_cola_mnli_0.5' is 0.7"):
        pub.read_tables(bench_copy)
    perf_file.write_text(json.dumps({"rte": {"roberta-base_cola_mnli": {"eval_accuracy": 0.7}}}))
    with pytest.raises(pub.PublishedError, match=r"'roberta-base_cola_mnli' is neither a configured base model"):
        pub.read_tables(bench_copy)
    # a missing file, with and without the manifest
    perf_file.unlink()
    with pytest.raises(pub.PublishedError, match=rf"file\(s\) of the checksum manifest missing, first {perf_file}"):
        pub.verify(bench_copy, manifest)
    with pytest.raises(pub.PublishedError, match=rf"lacks 1 file\(s\), first {perf_file}"):
        pub.read_tables(bench_copy)
    # a manifest line that is not sha256sum output, and a folder that is not there
    bad = tmp_path / "SHA256SUMS"
    bad.write_text("46b94ab4 performance/merged_models/cola_logme.json\n")
    with pytest.raises(pub.PublishedError, match=rf"{bad} line 1 is not '<sha256>  <path>'"):
        pub.read_manifest(bad)
    spec = {"source": "path", "folder": str(tmp_path / "nowhere"), "manifest": str(MANIFEST)}
    with pytest.raises(pub.PublishedError, match=r"nowhere does not exist; config published.path"):
        pub.locate(spec, tmp_path)


def test_url_source_downloads_and_checks_every_file(tmp_path, fixture_bench, bench_copy):
    """The download code path, on file:// URLs (no network in tests): every file fetched and checked."""
    spec = pub.source_spec({"published": {"source": "url", "url": fixture_bench.as_uri(), "commit": pub.COMMIT}}, REPO)
    assert spec == {"source": "url", "url": fixture_bench.as_uri(), "manifest": str(MANIFEST)}
    got = pub.locate(spec, tmp_path / "dl")
    assert sorted(p.relative_to(got).as_posix() for p in got.rglob("*.json")) == sorted(pub.read_manifest(MANIFEST))
    # the default URL pins the commit
    assert pub.source_spec({"published": {"source": "url"}}, REPO)["url"] == (
        f"https://raw.githubusercontent.com/{pub.REPOSITORY}/{pub.COMMIT}/ptm_model_bench")
    tampered = bench_copy / pub.file_name("seen", "stsb", "logme")
    tampered.write_text(tampered.read_text() + " ")
    spec["url"] = bench_copy.as_uri()
    with pytest.raises(pub.PublishedError, match=r"checksum mismatch: file://.*base_stsb_logme.json has SHA-256"):
        pub.locate(spec, tmp_path / "dl2")
    assert pub.source_spec({}, REPO) == {"source": "shipped", "manifest": str(MANIFEST),
                                         "folder": str(SHIPPED / pub.BENCH)}


def test_the_finished_run_has_the_published_judging_and_says_what_it_compared(tiny_run):
    """The tiny run (the test config; the demo config runs the same rules): the published judging has the
    report's columns, and the summary holds it and the comparison's line (tiny models: nothing shared)."""
    for ours, theirs in ((paths.PUBLISHED_JUDGING_CSV, paths.JUDGING_CSV),
                         (paths.PUBLISHED_LEADERBOARD_CSV, paths.LEADERBOARD_CSV)):
        assert list(pd.read_csv(tiny_run / ours).columns) == list(pd.read_csv(tiny_run / theirs).columns)
    judg = pd.read_csv(tiny_run / paths.PUBLISHED_JUDGING_CSV, keep_default_na=False)
    pooled = judg[(judg["scope"] == judging.POOLED) & (judg["estimator"] == "logme")]
    assert list(pooled["eval_task"]) == GLUE and set(pooled["n"]) == {584}
    assert pooled["weighted_tau_ci_low"].astype(float).notna().all()  # intervals written (config judging)
    summary = (tiny_run / paths.SUMMARY_TXT).read_text()
    assert pub.TITLE in summary
    for _, r in pooled.iterrows():  # every task's pooled weighted tau is printed
        assert f"{r['eval_task']:<9} {584:>4} {float(r['weighted_tau']):>12.3f}" in summary
    assert "Comparison with the published bench: none of this run's 2 PTMs is a published PTM" in summary
    tasks = pd.read_csv(tiny_run / paths.COMPARE_TASKS_CSV, keep_default_na=False)
    assert set(tasks["n_matched"]) == {0} and set(tasks["note"]) == {"no PTM of the run is in the published bench"}
    assert set(tasks["not_published"]) == {"tiny-bert;tiny-bert_sst2_stsb_0.5"}
    page = (tiny_run / paths.PUBLISHED_HTML).read_text()
    assert "Real numbers, not the run's" in page and pub.COMMIT in page
