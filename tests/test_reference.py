"""The export of the tiny configuration, compared with a committed reference: a guard for refactors.

``tests/reference/tiny_export.json`` holds what a finished run of ``config/test.yaml`` exports, with
times and provenance removed: every performance / LogME file of ``results/ptm_model_bench`` (exact
values), the non-volatile part of its ``MANIFEST.json``, per graph file its node and edge counts and
a SHA-256 of its features (float32 bytes, in key order), the tidy tables without time columns, and the
report's correlations and summary. A refactor that changes none of the science leaves all of it equal.

Values are compared exactly: the tiny run is deterministic (one thread per job, fixed seeds, CPU).
When a change is meant to alter results, regenerate the reference from a finished run and commit it
with the change that explains it:

    python tests/test_reference.py WORKDIR     # WORKDIR: where `snakemake ... --configfile config/test.yaml` ran
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from pathlib import Path

import pytest

REFERENCE = Path(__file__).resolve().parent / "reference" / "tiny_export.json"
BENCH = "results/ptm_model_bench"
# MANIFEST keys that describe the machine or the moment, not the export: package versions, when and
# where it ran, and whether graphs could be hard-linked (a file-system property).
VOLATILE_MANIFEST_KEYS = ("provenance", "input_versions", "graphs")
TIME_COLUMNS = ("time_s",)
TABLES = ("results/tables/performance.csv", "results/tables/logme.csv", "results/report/correlations.csv")


def _features_sha256(features: dict) -> str:
    h = hashlib.sha256()
    for key in sorted(features):
        h.update(key.encode() + b"\0")
        h.update(features[key].detach().cpu().contiguous().float().numpy().tobytes())
    return h.hexdigest()


def _graph(path: Path) -> dict:
    import dill

    with open(path, "rb") as fh:
        [(g, features, name)] = dill.load(fh)
    return {"name": name, "nodes": g.number_of_nodes(), "edges": g.number_of_edges(),
            "features": len(features), "feature_length": sorted({int(v.numel()) for v in features.values()}),
            "features_sha256": _features_sha256(features)}


def _table(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return [{k: v for k, v in row.items() if k not in TIME_COLUMNS} for row in csv.DictReader(fh)]


def export_digest(workdir: Path) -> dict:
    """What the reference holds, read from a finished run in ``workdir``."""
    bench = workdir / BENCH
    manifest = json.loads((bench / "MANIFEST.json").read_text())
    # graph files are pickles: their bytes are an encoding detail, their content is compared below
    files = {rel: ({"bytes": v["bytes"], "sha256": v["sha256"]} if rel.endswith(".json") else {})
             for rel, v in manifest["files"].items()}
    return {
        "manifest": {k: v for k, v in manifest.items() if k not in VOLATILE_MANIFEST_KEYS} | {"files": files},
        "performance": {str(p.relative_to(bench)): json.loads(p.read_text())
                        for p in sorted((bench / "performance").rglob("*.json"))},
        "graphs": {str(p.relative_to(bench)): _graph(p) for p in sorted(bench.rglob("*.dill"))},
        "tables": {rel: _table(workdir / rel) for rel in TABLES},
        "summary": (workdir / "results/report/summary.txt").read_text(),
        "plots": sorted(p.name for p in (workdir / "results/report/plots").glob("*.png")),
    }


@pytest.mark.slow
def test_tiny_export_matches_the_reference(tiny_run):
    reference = json.loads(REFERENCE.read_text())
    ours = export_digest(tiny_run)
    assert ours.keys() == reference.keys()
    for part in reference:
        assert ours[part] == reference[part], f"{part} differs from {REFERENCE} (see its module docstring)"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.split("\n\n")[-1], file=sys.stderr)
        return 2
    REFERENCE.parent.mkdir(exist_ok=True)
    REFERENCE.write_text(json.dumps(export_digest(Path(argv[0])), indent=1) + "\n")
    print(f"wrote {REFERENCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
