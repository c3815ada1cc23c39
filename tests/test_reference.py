"""The export of the tiny configuration, compared with a committed reference: a guard for refactors
that holds on any CPU.

``tests/reference/tiny_export.json`` holds what a finished run of ``config/test.yaml`` (fp32 training and
features: ``finetune.precision`` / ``logme.precision``) exports, with times and provenance removed:
every performance / LogME file of ``results/ptm_model_bench``, the non-volatile part of its
``MANIFEST.json`` (file names; the SHA-256 of the JSON files is machine-dependent, see below), per
graph file its name, node and edge counts and its eigenvalues, the tidy tables without time columns,
the report's correlations and summary, and the plots' names.

Exact: the manifest (formats, names, tasks, splits, consumer metrics, seeds, precisions, file list),
the keys of every file, graph structure, metrics of discrete predictions (accuracy, F1, Matthews
correlation: the same predictions give the same numbers), the plots. To a tolerance
(tests/tolerances.py: why, and the measured cross-machine differences): LogME (``RTOL``), the other
floats of the fine-tuned metrics and the tables and summary built from them (``FINETUNED_RTOL``), and
graph eigenvalues (``EIGEN_RTOL`` of each head's spectral scale). The merge itself is checked bit for
bit in tests/test_graph_reference.py (here its inputs, the fine-tuned models, differ in the last bits
from machine to machine).

When a change is meant to alter results, regenerate the reference from a finished run and commit it
with the change that explains it:

    python tests/test_reference.py WORKDIR     # WORKDIR: where `snakemake ... --configfile config/test.yaml` ran
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
from tolerances import (
    FINETUNED_RTOL,
    compare_features,
    compare_rows,
    compare_text,
    compare_values,
    eigenvalue_parts,
    is_exact_metric,
)

REPO = Path(__file__).resolve().parents[1]
REFERENCE = Path(__file__).resolve().parent / "reference" / "tiny_export.json"
BENCH = "results/ptm_model_bench"
# MANIFEST keys that describe the machine or the moment, not the export: package versions, where it
# ran, and whether graphs could be hard-linked (a file-system property).
VOLATILE_MANIFEST_KEYS = ("provenance", "input_versions", "graphs")
TIME_COLUMNS = ("time_s",)
TABLES = ("results/tables/performance.csv", "results/tables/logme.csv", "results/tables/estimators.csv",
          "results/report/correlations.csv")


def _graph(path: Path, workdir: Path) -> dict:
    import dill

    from ptmbench.core import paths
    from ptmbench.settings.config import load
    from ptmbench.stages import graph

    with open(path, "rb") as fh:
        [(g, features, name)] = dill.load(fh)
    base = paths.Zoo.from_config(load(REPO / "config" / "test.yaml")).parse(name).base
    _, heads, hidden = graph.model_shape(json.loads((workdir / "resources/models" / base / "config.json").read_text()))
    return {"name": name, "nodes": g.number_of_nodes(), "edges": g.number_of_edges(),
            "feature_length": sorted({int(v.numel()) for v in features.values()}),
            "eigenvalues": eigenvalue_parts(features, hidden // heads)}


def _table(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return [{k: v for k, v in row.items() if k not in TIME_COLUMNS} for row in csv.DictReader(fh)]


def export_digest(workdir: Path) -> dict:
    """What the reference holds, read from a finished run in ``workdir``."""
    bench = workdir / BENCH
    manifest = json.loads((bench / "MANIFEST.json").read_text())
    return {
        "manifest": {k: v for k, v in manifest.items() if k not in VOLATILE_MANIFEST_KEYS}
        | {"files": sorted(manifest["files"])},
        "performance": {str(p.relative_to(bench)): json.loads(p.read_text())
                        for p in sorted((bench / "performance").rglob("*.json"))},
        "graphs": {str(p.relative_to(bench)): _graph(p, workdir) for p in sorted(bench.rglob("*.dill"))},
        "tables": {rel: _table(workdir / rel) for rel in TABLES},
        "summary": (workdir / "results/report/summary.txt").read_text(),
        "plots": sorted(p.name for p in (workdir / "results/report/plots").glob("*.png")),
    }


def differences(ours: dict, ref: dict) -> list[str]:
    """Every difference between two digests, by the rules of the module docstring."""
    out = []
    if ours.keys() != ref.keys():
        return [f"parts {sorted(ours)} != {sorted(ref)}"]
    for part in ("manifest", "plots"):
        if ours[part] != ref[part]:
            out.append(f"{part} differs (exact)")
    if list(ours["performance"]) != list(ref["performance"]):
        out.append(f"performance files {list(ours['performance'])} != {list(ref['performance'])}")
    else:
        for rel, want in ref["performance"].items():
            logme = rel.endswith("_logme.json")
            out += compare_values(ours["performance"][rel], want, rel,
                                  exact_key=(lambda k: False) if logme else is_exact_metric,
                                  **({} if logme else {"rtol": FINETUNED_RTOL}))
    if list(ours["graphs"]) != list(ref["graphs"]):
        out.append(f"graph files {list(ours['graphs'])} != {list(ref['graphs'])}")
    else:
        for rel, want in ref["graphs"].items():
            got = ours["graphs"][rel]
            structure = {k: v for k, v in want.items() if k != "eigenvalues"}
            if {k: v for k, v in got.items() if k != "eigenvalues"} != structure:
                out.append(f"{rel}: graph structure differs (exact)")
            out += compare_features(got["eigenvalues"], want["eigenvalues"], rel)
    for rel, want in ref["tables"].items():
        out += compare_rows(ours["tables"].get(rel, []), want, rel)
    out += compare_text(ours["summary"], ref["summary"], "summary.txt")
    return out


@pytest.mark.slow
def test_tiny_export_matches_the_reference(tiny_run):
    problems = differences(export_digest(tiny_run), json.loads(REFERENCE.read_text()))
    assert not problems, f"differs from {REFERENCE} (see its module docstring):\n" + "\n".join(problems[:20])


def test_the_comparison_catches_a_change_of_the_science():
    """The reference against itself passes; moved by the rounding seen across machines it passes; a
    LogME score moved by 1e-3, an accuracy by one example in 32, a graph's head order or a merged
    PTM's eigenvalues scaled by 1 + 1e-3 fail."""
    import copy

    ref = json.loads(REFERENCE.read_text())
    assert not differences(copy.deepcopy(ref), ref)

    def changed(edit) -> list[str]:
        d = copy.deepcopy(ref)
        edit(d)
        return differences(d, ref)

    logme = next(k for k in ref["performance"] if k.endswith("_logme.json"))
    perf = next(k for k in ref["performance"] if k.startswith("performance/seen_base_models/base_sst2_perf"))
    merged = next(k for k in ref["graphs"] if k.startswith("merged_model_dataset/"))

    def scale_logme(d, factor):
        d["performance"][logme] = {k: v * factor for k, v in d["performance"][logme].items()}

    def one_more_right(d):
        task = d["performance"][perf]
        ptm = next(iter(task["sst2"]))
        task["sst2"][ptm]["eval_accuracy"] += 1 / 32

    def swap_heads(d):
        ev = d["graphs"][merged]["eigenvalues"]
        ev["E_self_0_VO_0"], ev["E_self_0_VO_1"] = ev["E_self_0_VO_1"], ev["E_self_0_VO_0"]

    def scale_eigenvalues(d):
        ev = d["graphs"][merged]["eigenvalues"]
        ev["E_self_1_QKt_2"] = [x * (1 + 1e-3) for x in ev["E_self_1_QKt_2"]]

    assert not changed(lambda d: scale_logme(d, 1 + 2e-8))  # LogME across kernels and threads
    assert changed(lambda d: scale_logme(d, 1 + 1e-3))
    assert changed(one_more_right)
    assert changed(swap_heads)
    assert changed(scale_eigenvalues)


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
