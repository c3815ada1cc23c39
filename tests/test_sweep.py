"""Sweeps (config ``transferability.sweep``): every estimator on nested subsamples and PCA projections of the
same features (ptmbench.estimators.sweep), the export's table and the report's judging of it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from conftest import class_features
from sklearn.decomposition import PCA

from ptmbench.estimators import sweep
from ptmbench.estimators import transferability as tr
from ptmbench.stages import export, logme, sweep_plot


def _by(rows, axis, size, name):
    (row,) = [r for r in rows if (r["axis"], r["size"], r["estimator"]) == (axis, size, name)]
    return row


def test_subsamples_are_nested_and_seeded():
    F, y = class_features(N=300, D=20)
    rows = sweep.sweep(F, y, "mnli", ["logme", "hscore"], sizes=[50, 120, 300, 999], seed=3)
    assert {r["size"] for r in rows} == {50, 120, 300, 999}
    full = tr.score_all(F, y, "mnli", ["logme", "hscore"])
    for n in (300, 999):  # at or above N: the full data, so every PTM of a zoo has a row at every size
        for name in ("logme", "hscore"):
            assert _by(rows, "n", n, name)["score"] == pytest.approx(full[name]["score"], rel=1e-12)
            assert _by(rows, "n", n, name)["note"] == "n >= N = 300: all examples"
    order = np.random.default_rng(3).permutation(300)
    assert set(order[:50]) < set(order[:120])
    for n in (50, 120):
        idx = np.sort(order[:n])
        want = tr.score_all(F[idx], y[idx], "mnli", ["hscore"])["hscore"]["score"]
        assert _by(rows, "n", n, "hscore")["score"] == pytest.approx(want, rel=1e-12)
        assert _by(rows, "n", n, "hscore")["time_s"] >= 0


def test_projections_are_the_leading_principal_components():
    F, y = class_features(N=400, D=30)
    rows = sweep.sweep(F, y, "mnli", ["hscore", "transrate"], dims=[5, 12, 30])
    assert {r["size"] for r in rows} == {5, 12, 30}
    full = tr.score_all(F, y, "mnli", ["hscore", "transrate"])  # d >= D: the features themselves
    assert _by(rows, "d", 30, "hscore")["score"] == pytest.approx(full["hscore"]["score"], rel=1e-12)
    assert _by(rows, "d", 30, "transrate")["note"] == "d >= D = 30: the features themselves"
    assert _by(rows, "d", 5, "hscore")["note"] in (None, "")
    for d in (5, 12):
        Z = PCA(n_components=d).fit_transform(F)  # sign and centring do not change either score
        want = tr.score_all(Z, y, "mnli", ["hscore", "transrate"])
        for name in ("hscore", "transrate"):
            assert _by(rows, "d", d, name)["score"] == pytest.approx(want[name]["score"], rel=1e-6)


def test_failures_and_kinds_are_recorded_not_zero():
    F, y = class_features(N=200, D=10)
    rows = sweep.sweep(F, y, "mnli", ["knn", "linear_probe"], {"knn": {"k": 10}}, sizes=[8])
    knn = _by(rows, "n", 8, "knn")
    assert knn["score"] is None and "knn.k" in knn["note"] and knn["applicable"]
    t = F[:, 0] + 0.1 * np.arange(200)
    rows = sweep.sweep(F, t, "stsb", ["hscore", "logme"], sizes=[100])
    assert _by(rows, "n", 100, "hscore")["applicable"] is False
    assert _by(rows, "n", 100, "hscore")["score"] is None
    assert np.isfinite(_by(rows, "n", 100, "logme")["score"])


def test_bad_sizes_are_named():
    F, y = class_features(N=50, D=5)
    with pytest.raises(ValueError, match=r"transferability.sweep.dims: \[0\]"):
        sweep.sweep(F, y, "mnli", ["hscore"], dims=[0])


def test_the_stage_sweeps_only_when_configured():
    F, y = class_features(N=120, D=8)
    assert logme.sweep_scores(F, y, "mnli", {"estimators": ["hscore"]}) is None
    rows = logme.sweep_scores(F, y, "mnli", {"estimators": ["hscore"], "sweep": {"sizes": [60], "dims": [4]}})
    assert [(r["axis"], r["size"], r["estimator"]) for r in rows] == [("n", 60, "hscore"), ("d", 4, "hscore")]


def test_export_table_and_the_report_judging():
    rng = np.random.default_rng(0)
    records, perf = [], []
    for i in range(5):
        ptm = f"m{i}"
        rows = [{"axis": "n", "size": 50, "estimator": "hscore", "score": float(s), "time_s": 0.1,
                 "applicable": True, "note": None} for s in [rng.random()]]
        rows.append({"axis": "n", "size": 50, "estimator": "knn", "score": None, "time_s": 0.0,
                     "applicable": True, "note": "too few"})
        records.append({"ptm": ptm, "task": "sst2", "sweep": rows})
        perf.append({"ptm": ptm, "eval_task": "sst2", "value": float(i)})
    records.append({"ptm": "m5", "task": "sst2"})  # a record without a sweep adds no row
    table = export.sweep_table(records, [f"m{i}" for i in range(6)])
    assert len(table) == 10 and table["score"].isna().sum() == 5
    assert list(table.columns[-7:]) == list(export.SWEEP_COLUMNS)
    est = table[table["estimator"] == "hscore"].assign(score=table.loc[table["estimator"] == "hscore", "score"] * 2)
    judged = sweep_plot.sweep_judging(table, est[["ptm", "eval_task", "estimator", "score"]], pd.DataFrame(perf))
    hs = judged[judged["estimator"] == "hscore"].iloc[0]
    s = table[table["estimator"] == "hscore"]["score"].to_numpy()
    assert hs["spearman"] == pytest.approx(scipy.stats.spearmanr(s, np.arange(5)).statistic)
    assert hs["spearman_full"] == pytest.approx(hs["spearman"]) and hs["ptms"] == 5
    assert np.isnan(judged[judged["estimator"] == "knn"].iloc[0]["spearman"])  # no scores: no correlation
    assert export.sweep_table([{"ptm": "m0", "task": "sst2"}], ["m0"]).empty


def test_plots_one_file_per_task(tmp_path):
    F, y = class_features(N=150, D=12)
    recs = []
    for i in range(4):
        Fi = F + i * 0.3 * np.eye(12)[y % 12]
        recs.append({"ptm": f"m{i}", "task": "sst2",
                     "sweep": sweep.sweep(Fi, y % 2, "sst2", ["logme", "hscore"], sizes=[60, 100], dims=[4, 8])})
    table = export.sweep_table(recs, [f"m{i}" for i in range(4)])
    table.to_csv(tmp_path / "sweep.csv", index=False)
    perf = pd.DataFrame({"ptm": [f"m{i}" for i in range(4)], "eval_task": "sst2", "value": np.arange(4.0)})
    est = pd.DataFrame({"ptm": [f"m{i}" for i in range(4)], "eval_task": "sst2", "estimator": "logme",
                        "score": np.arange(4.0)})
    out = sweep_plot.write_sweep_plots(tmp_path / "sweep.csv", est, perf, tmp_path)
    assert [p.name for p in out] == ["sweep_sst2.png"] and out[0].stat().st_size > 10_000
    pd.DataFrame(columns=table.columns).to_csv(tmp_path / "empty.csv", index=False)
    assert sweep_plot.write_sweep_plots(tmp_path / "empty.csv", est, perf, tmp_path) == []


def test_the_tiny_run_writes_an_empty_sweep_table_with_provenance(tiny_run):
    """The sweep is off in the tiny configuration: the export writes the table's columns and no row."""
    import pyarrow.parquet as pq

    table = pd.read_csv(tiny_run / "results/tables/sweep.csv")
    assert table.empty and list(table.columns[-7:]) == list(export.SWEEP_COLUMNS)
    meta = pq.read_schema(tiny_run / "results/tables/sweep.parquet").metadata
    assert b"ptmbench.provenance" in meta
