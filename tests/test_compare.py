"""Stage compare (ptmbench.stages.compare): a run next to the published bench, on the shared fixture and on the
tiny run's tables renamed to published names."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

from ptmbench.core import paths
from ptmbench.stages import compare
from ptmbench.stages import published as pub
from ptmbench.stages.report import read_tables

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO.parent / "shared" / "fixtures" / "published" / pub.BENCH

# the tiny run's PTMs as published ones: its base model as a seen base, its merge as that base's merge, and
# its base model's runs once more as two unseen models (one with "_" in its name); one name not published
RENAMES = {"tiny-bert": ["bert-base-uncased", "bert-base-cased", "flaubert_small_cased", "my-own-model"],
           "tiny-bert_sst2_stsb_0.5": ["bert-base-uncased_sst2_stsb_0.5"]}
MODELS, UNSEEN = ["bert-base-uncased"], ["bert-base-cased", "flaubert_small_cased", "my-own-model"]


@pytest.fixture(scope="module")
def published_tables(tmp_path_factory):
    if not FIXTURE.is_dir():
        pytest.skip(f"published fixture not found at {FIXTURE}")
    perf, logme = pub.read_tables(FIXTURE, pub.read_manifest(REPO / pub.SHIPPED_DIR / pub.MANIFEST))
    out = tmp_path_factory.mktemp("published")
    perf.to_csv(out / "performance.csv", index=False)
    logme.to_csv(out / "logme.csv", index=False)
    return out / "performance.csv", out / "logme.csv"


def _renamed(df):
    parts = []
    for old, news in RENAMES.items():
        rows = df[df["ptm"] == old]
        for new in news:
            base = new if old == "tiny-bert" else "bert-base-uncased"
            parts.append(rows.assign(ptm=new, base=base))
    return pd.concat(parts, ignore_index=True)


def _published_value(group: str, ptm: str, task: str, key: str) -> float:
    obj = json.loads((FIXTURE / pub.file_name(group, task, "performance_score")).read_text())
    return obj.get(task, obj)[ptm][key]


@pytest.mark.filterwarnings("ignore::scipy.stats.ConstantInputWarning")  # sst2: the tiny run's accuracy is constant
def test_a_tiny_run_renamed_to_published_names_is_compared(tiny_run, published_tables, tmp_path):
    perf, logme = read_tables(tiny_run / paths.PERFORMANCE_CSV, tiny_run / paths.LOGME_CSV)
    run_perf, run_logme = tmp_path / "performance.csv", tmp_path / "logme.csv"
    _renamed(perf).to_csv(run_perf, index=False)
    _renamed(logme).to_csv(run_logme, index=False)
    out = tmp_path / "compare"
    compare.compare(run_perf, run_logme, *published_tables, MODELS, UNSEEN, [0], out / "pairs.csv", out / "tasks.csv",
                    out / "plots", out / "compare.html", out / "summary.txt")
    pairs = pd.read_csv(out / "pairs.csv", keep_default_na=False, na_values={"published": [""], "difference": [""]})
    tasks = pd.read_csv(out / "tasks.csv", keep_default_na=False).set_index(["quantity", "eval_task"])

    # every pair: the run's value, the published value of the same name and group, their difference
    own = perf[(perf["ptm"] == "tiny-bert") & (perf["eval_task"] == "sst2") & (perf["metric"] == "eval_accuracy")]
    row = pairs[(pairs["quantity"] == "performance") & (pairs["eval_task"] == "sst2")
                & (pairs["ptm"] == "flaubert_small_cased")].iloc[0]
    published = _published_value("unseen", "flaubert_small_cased", "sst2", "eval_accuracy")
    assert (row["group"], row["status"]) == ("unseen", compare.MATCHED)
    assert row["ours"] == pytest.approx(own["value"].iloc[0]) and row["published"] == pytest.approx(published)
    assert row["difference"] == pytest.approx(own["value"].iloc[0] - published)
    merged = pairs[(pairs["ptm"] == "bert-base-uncased_sst2_stsb_0.5") & (pairs["eval_task"] == "stsb")
                   & (pairs["quantity"] == "performance")].iloc[0]
    assert merged["group"] == "merged"
    assert merged["published"] == pytest.approx(_published_value("merged", merged["ptm"], "stsb", "eval_pearson"))
    lm = pairs[(pairs["quantity"] == "logme") & (pairs["ptm"] == "bert-base-cased") & (pairs["eval_task"] == "stsb")]
    scores = json.loads((FIXTURE / pub.file_name("unseen", "stsb", "logme")).read_text())
    assert lm["published"].iloc[0] == pytest.approx(scores["bert-base-cased"])

    # per task: 4 of 5 PTMs matched, the unpublished one reported; rankings and the band by hand
    for quantity in ("performance", "logme"):
        for task in ("sst2", "stsb"):
            t = tasks.loc[(quantity, task)]
            assert (t["n_run"], t["n_matched"], t["n_not_published"], t["not_published"]) == (5, 4, 1, "my-own-model")
            m = pairs[(pairs["quantity"] == quantity) & (pairs["eval_task"] == task)
                      & (pairs["status"] == compare.MATCHED)]
            assert float(t["mean_abs_difference"]) == pytest.approx(m["difference"].abs().mean())
            rho = stats.spearmanr(m["ours"], m["published"]).statistic
            assert (math.isnan(rho) and t["spearman"] == "") or float(t["spearman"]) == pytest.approx(rho)
    assert tasks.loc[("logme", "stsb"), "spearman"] != "" and tasks.loc[("performance", "stsb"), "spearman"] != ""
    t = tasks.loc[("performance", "sst2")]
    band = 2 * math.sqrt(2) * 0.5 / math.sqrt(872)  # one seed: the default of sst2's 872 validation examples
    assert float(t["band"]) == pytest.approx(band) and t["noise_source"] == "default 0.5/sqrt(872) (one seed)"
    m = pairs[(pairs["quantity"] == "performance") & (pairs["eval_task"] == "sst2") & (pairs["status"] == "matched")]
    assert float(t["share_within_band"]) == pytest.approx((m["difference"].abs() <= band).mean())
    assert tasks.loc[("logme", "sst2"), "band"] == ""  # LogME has no seed

    assert sorted(p.name for p in (out / "plots").iterdir()) == ["compare_sst2.png", "compare_stsb.png"]
    summary = (out / "summary.txt").read_text()
    assert summary.startswith("Comparison with the published bench: 4 of 5 PTMs matched, 8 (PTM, task) "
                              "performance pairs over 2 tasks")
    assert "1 PTM(s) not in the published bench" in summary
    page = (out / "compare.html").read_text()
    assert "flaubert_small_cased" in page and "Not in the published bench (reported, not compared): my-own-model" in page


def _run_tables(ptm: str, value: float):
    """A run's tidy tables with one base model's CoLA fine-tune and LogME score."""
    perf = pd.DataFrame([{"ptm": ptm, "base": ptm, "task_1": "", "task_2": "", "ratio": "", "seed": 0,
                          "eval_task": "cola", "split": "validation", "metric": "eval_matthews_correlation",
                          "value": value, "diverged": False}])
    logme = pd.DataFrame([{"ptm": ptm, "base": ptm, "task_1": "", "task_2": "", "ratio": "", "eval_task": "cola",
                           "score": -0.6, "n": 10, "d": 4, "time_s": 0.1}])
    return perf, logme


@pytest.mark.parametrize("configured, published, at_chance", [("seen", 0.5341430412, False), ("unseen", 0.0, True)])
def test_xlm_roberta_base_is_compared_with_the_run_of_its_group(published_tables, configured, published, at_chance):
    """xlm-roberta-base is published as a seen and as an unseen base model with different CoLA runs (the unseen
    one diverged: Matthews correlation 0): the config's choice picks the record compared."""
    pub_perf, pub_logme = read_tables(*published_tables)
    perf, logme = _run_tables("xlm-roberta-base", 0.5)
    models, unseen = (["xlm-roberta-base"], []) if configured == "seen" else (["roberta-base"], ["xlm-roberta-base"])
    pairs = compare.pair_table(perf, logme, pub_perf, pub_logme, models, unseen, 0)
    row = pairs[pairs["quantity"] == "performance"].iloc[0]
    assert (row["group"], row["published"], row["published_at_chance"]) == (configured, pytest.approx(published),
                                                                          at_chance)
    assert row["difference"] == pytest.approx(0.5 - published)


def test_the_paper_setups_unseen_xlm_roberta_base_run_is_compared_by_its_export_name(published_tables):
    """config.yaml: xlm-roberta-base (seen) and xlm-roberta-base-unseen (export_name xlm-roberta-base): each run
    is compared with the published record of its group."""
    pub_perf, pub_logme = read_tables(*published_tables)
    seen, unseen = _run_tables("xlm-roberta-base", 0.5), _run_tables("xlm-roberta-base-unseen", 0.1)
    perf, logme = (pd.concat([a, b], ignore_index=True) for a, b in zip(seen, unseen, strict=True))
    pairs = compare.pair_table(perf, logme, pub_perf, pub_logme, ["xlm-roberta-base"], ["xlm-roberta-base-unseen"], 0,
                               {"xlm-roberta-base-unseen": "xlm-roberta-base"})
    rows = pairs[pairs["quantity"] == "performance"].set_index("ptm")
    assert rows.loc["xlm-roberta-base", "published"] == pytest.approx(0.5341430412)
    assert rows.loc["xlm-roberta-base-unseen", "group"] == "unseen"
    assert rows.loc["xlm-roberta-base-unseen", "published"] == pytest.approx(0.0)
    assert set(pairs["status"]) == {compare.MATCHED}


def test_published_runs_at_chance_level(published_tables):
    """A constant prediction's score, from each record's own metrics: the published mnli runs at 0.3182 /
    0.3295 / 0.3522 (the class shares of the mismatched split) and no better-than-chance run."""
    pub_perf, pub_logme = read_tables(*published_tables)
    cons, _ = compare.published_values(pub_perf, pub_logme)
    mnli = cons[cons["eval_task"] == "mnli"]
    flagged = mnli[mnli["at_chance"]]["value"].round(4)
    assert set(flagged) == {0.3182, 0.3192, 0.3295, 0.3522}
    assert not mnli[~mnli["at_chance"]]["value"].lt(0.36).any()
    assert "albert-base-v2_cola_mnli_0.5" in set(mnli[mnli["value"].round(4) == 0.3295]["ptm"])
    # binary tasks: Matthews correlation <= 0; cola's consumer metric is that correlation itself
    cola = cons[cons["eval_task"] == "cola"]
    assert (cola[cola["at_chance"]]["value"] <= 0).all() and (cola[~cola["at_chance"]]["value"] > 0).all()
    # squad_v2: f1 no better than answering nothing (the share of unanswerable questions)
    squad = cons[(cons["eval_task"] == "squad_v2") & cons["at_chance"]]
    assert len(squad) and (squad["value"] <= 0.51).all()
    assert compare.at_chance("stsb", {"eval_pearson": None, "eval_spearman": None})
    assert not compare.at_chance("stsb", {"eval_pearson": 0.3, "eval_spearman": 0.2})


def test_default_seed_noise_of_each_task():
    """0.5 / sqrt(n), n the exported split's evaluation examples (mnli: its mismatched half)."""
    assert compare.default_sd("rte") == pytest.approx(0.5 / math.sqrt(277))
    assert compare.default_sd("squad_v2") == pytest.approx(0.5 / math.sqrt(11_873))
    assert compare.eval_examples("mnli") == pytest.approx(19_647 / 2)
    assert compare.eval_examples("mnli") == pytest.approx(sum(compare.CLASS_COUNTS["mnli"]), rel=1e-3)
