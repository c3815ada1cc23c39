"""results/hub: the export as a Hugging Face dataset repository (ptmbench.stages.card, rule hub): every table
loads with `datasets.load_dataset(<folder>, <config>)` offline and gives the CSV's rows; the card
describes every column and carries the licenses, the citation and the provenance; the published tree
inside it is the export's, checksums and all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ptmbench.cluster import status
from ptmbench.core import paths
from ptmbench.settings.config import validate
from ptmbench.stages import card

REPO = Path(__file__).resolve().parents[1]
CSV_OF = {"performance": paths.PERFORMANCE_CSV, "logme": paths.LOGME_CSV, "estimators": paths.ESTIMATORS_CSV,
          "judging": paths.JUDGING_CSV}

LOAD = """
import json, sys
from datasets import load_dataset
out = {}
for name in sys.argv[2:]:
    ds = load_dataset(sys.argv[1], name, split="train")
    out[name] = ds.to_pandas().to_json(orient="split", double_precision=15)
print(json.dumps(out))
"""


def _header(readme: str) -> dict:
    assert readme.startswith("---\n")
    return yaml.safe_load(readme.split("---\n", 2)[1])


@pytest.mark.slow
def test_every_config_of_the_card_loads_offline_and_gives_the_csv_rows(tiny_run, tmp_path):
    hub = tiny_run / paths.HUB_DIR
    header = _header((hub / "README.md").read_text())
    assert [c["config_name"] for c in header["configs"]] == list(paths.HUB_TABLES) == list(CSV_OF)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    proc = subprocess.run([sys.executable, "-c", LOAD, str(hub), *CSV_OF], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, csv in CSV_OF.items():
        got = pd.read_json(__import__("io").StringIO(loaded[name]), orient="split")
        text = [c for c in got.columns if got[c].dtype == object]
        want = pd.read_csv(tiny_run / csv, dtype=dict.fromkeys(text, str))
        assert list(got.columns) == list(want.columns), name
        assert len(got) == len(want) > 0, name
        pd.testing.assert_frame_equal(got, want, check_dtype=False, rtol=1e-12, obj=name)


def test_the_hub_folder_holds_the_export_unchanged_and_verifies(tiny_run, tmp_path):
    hub, bench = tiny_run / paths.HUB_DIR, tiny_run / paths.EXPORT_DIR
    manifest = json.loads((bench / "MANIFEST.json").read_text())
    inside = sorted(p.relative_to(hub / "ptm_model_bench").as_posix()
                    for p in (hub / "ptm_model_bench").rglob("*") if p.is_file())
    assert inside == sorted([*manifest["files"], "MANIFEST.json"])
    for rel in inside:
        assert (hub / "ptm_model_bench" / rel).read_bytes() == (bench / rel).read_bytes(), rel
    prov = json.loads((hub / "provenance.json").read_text())
    on_disk = {p.relative_to(hub).as_posix() for p in hub.rglob("*")
               if p.is_file() and p.name not in ("provenance.json", ".snakemake_timestamp")}
    assert set(prov["sha256"]) == on_disk
    cfg = validate(yaml.safe_load((REPO / "config" / "test.yaml").read_text()))
    job = next(j for j in paths.jobs(paths.Zoo.from_config(cfg)) if j.rule == "hub")
    assert status.verify_output(paths.HUB_DIR, tiny_run, job) is None
    # an edited card is found by --verify, as a modified export file is
    copy = tmp_path / "wd"
    (copy / "results").mkdir(parents=True)
    import shutil

    shutil.copytree(hub, copy / paths.HUB_DIR)
    with open(copy / paths.HUB_DIR / "README.md", "a") as fh:
        fh.write("edited\n")
    problem = status.verify_output(paths.HUB_DIR, copy, job)
    assert problem.kind == "modified" and "README.md differs" in problem.detail


def test_the_card_describes_every_column_licenses_citation_and_provenance(tiny_run):
    hub = tiny_run / paths.HUB_DIR
    readme = (hub / "README.md").read_text()
    header = _header(readme)
    assert header["license"] == "mit"  # ptm-bench's and the published bench's (CITATION.cff)
    for name, csv in CSV_OF.items():
        cols = list(pd.read_csv(tiny_run / csv, nrows=0).columns)
        assert set(card.COLUMNS[name]) == set(cols), name  # every column described, no stale description
        for c in cols:
            assert f"| `{c}` | {card.COLUMNS[name][c]} |" in readme, (name, c)
        cfg = next(c for c in header["configs"] if c["config_name"] == name)
        assert (hub / cfg["data_files"][0]["path"]).is_file()
    assert "doi = {10.1016/j.neucom.2024.129107}" in readme and "@article{cho2024universal," in readme
    assert "author = {Cho, Namkyeong and Cho, Taewon and Shin, Jaesun and Jeon, Eunjoo and Lee, Taehee}" in readme
    assert "- PTM-Recommender (official implementation" in readme and ": MIT" in readme
    prov = json.loads((hub / "provenance.json").read_text())
    commit = prov["commit"]
    assert commit is None or f"ptm-bench commit: `{commit['commit']}`" in readme
    manifest = json.loads((tiny_run / paths.EXPORT_DIR / "MANIFEST.json").read_text())
    assert f"transformers {manifest['provenance']['versions']['transformers']}" in readme
    assert "tiny-bert: {source: tiny, family: bert, seed: 0}" in readme or "tiny-bert:\n    source: tiny" in readme


def test_an_undescribed_column_or_a_broken_citation_is_refused_naming_the_fix(tmp_path):
    cff = card.read_citation(REPO / "CITATION.cff")
    with pytest.raises(ValueError, match=r"table 'logme' has column\(s\) \['new'\].*ptmbench.stages.card.COLUMNS"):
        card.card_text({"logme": "logme.parquet"}, {}, cff, {}, None, {"logme": ["ptm", "new"]})
    bad = tmp_path / "CITATION.cff"
    bad.write_text("cff-version: 1.2.0\n")
    with pytest.raises(ValueError, match="no title"):
        card.read_citation(bad)
    assert card.source_commit(tmp_path) is None  # not a git checkout


def test_the_tables_of_the_hub_are_the_workflows_one_source():
    """The hub's configs are paths.HUB_TABLES; each a table some rule writes."""
    assert set(paths.HUB_TABLES.values()) <= {*paths.FIXED_OUTPUTS}
    assert card.data_file("judging", paths.JUDGING_CSV) == "data/judging.parquet"
