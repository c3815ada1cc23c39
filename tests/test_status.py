"""`python -m ptmbench.cli.status`: done / stale / failed / incomplete / missing per stage and base model,
`--verify` and leftover temporaries."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import yaml

from ptmbench.cluster import status
from ptmbench.core import paths
from ptmbench.io.provenance import (
    atomic_dir,
    atomic_file,
    is_temp,
    sha256,
    sha256_files,
    temp_siblings,
    write_json,
)
from ptmbench.settings.config import validate

REPO = Path(__file__).resolve().parents[1]


def config(unseen=None, keep=True):
    cfg = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    cfg["unseen_models"] = unseen or {}
    cfg["merge"]["keep"] = keep
    return validate(cfg)


def mark_incomplete(workdir: Path, output: str, max_len: int = 255) -> None:
    """What Snakemake 9's file persistence writes when a job starts (persistence/file.py)."""
    b64 = base64.urlsafe_b64encode(output.encode()).decode()
    chunks = [b64[i:i + max_len - 1] for i in range(0, len(b64), max_len - 1)]
    chunks = ["@" + c for c in chunks[:-1]] + [chunks[-1]]
    path = workdir / ".snakemake" / "incomplete" / Path(*chunks)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"external_jobid": null}')


def touch(workdir: Path, rel: str, directory=False) -> None:
    p = workdir / rel
    if directory:
        p.mkdir(parents=True, exist_ok=True)
    else:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")


def write_log(workdir: Path, rel: str, text: str) -> None:
    touch(workdir, rel)
    (workdir / rel).write_text(text)


def test_zoo_lists_match_the_config():
    zoo = paths.Zoo.from_config(config(unseen={"tiny-electra": {"source": "tiny", "family": "electra"}}))
    assert zoo.bases == ["tiny-bert", "tiny-electra"]
    assert zoo.merged == ["tiny-bert_sst2_stsb_0.5"]
    assert zoo.ptms_with_base() == [("tiny-bert", "tiny-bert"), ("tiny-electra", "tiny-electra"),
                                    ("tiny-bert_sst2_stsb_0.5", "tiny-bert")]
    paper = validate(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))
    # 12 seen and 32 unseen base models, 540 merges: snakemake -n plans 17,976 with `all`
    assert sum(1 for _ in paths.jobs(paths.Zoo.from_config(paper))) == 17975
    # finetune.seeds [0, 1, 2]: every PTM (44 base + 540 merged) on every task twice more, the export reads them
    paper["finetune"]["seeds"] = [0, 1, 2]
    zoo = paths.Zoo.from_config(paper)
    jobs = Counter(j.rule for j in paths.jobs(zoo))
    assert jobs["finetune_seed"] == 2 * 584 * 10 and sum(jobs.values()) == 17975 + 11680
    assert (jobs["finetune_base"], jobs["finetune_merged"]) == (440, 5400)  # the primary seed's, unchanged
    assert len(zoo.export_inputs()["finetune_seeds"]) == 11680


def test_jobs_match_the_snakemake_dry_run(tmp_path):
    """Every rule's outputs, inputs and log in paths.jobs are what Snakemake plans (with unseen models, one
    named with '_' and one exported under a seen model's name, and an extra seed)."""
    cfg = config(unseen={"tiny-electra": {"source": "tiny", "family": "electra"},
                         "tiny_electra_small": {"source": "tiny", "family": "electra"},
                         "tiny-bert-unseen": {"source": "tiny", "family": "bert", "export_name": "tiny-bert"}})
    cfg["finetune"]["seeds"] = [0, 1]
    cfg_path = tmp_path / "config.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
                           "-n", "--nolock", "--configfile", str(cfg_path)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    planned = set()
    for block in re.split(r"^(?:local)?rule ", proc.stdout, flags=re.M)[1:]:
        rule = block.split(":", 1)[0]
        fields = dict(re.findall(r"^    (\w+): (.*)$", block, re.M))
        if rule != "all":
            inputs = frozenset(fields["input"].split(", ")) if "input" in fields else frozenset()
            planned.add((rule, frozenset(fields["output"].split(", ")), fields["log"], inputs))
    ours = {(j.rule, frozenset(j.outputs), j.log, frozenset(j.input_files)) for j in paths.jobs(paths.Zoo.from_config(cfg))}
    assert planned == ours
    assert sum(rule == "finetune_seed" for rule, *_ in planned) == 5 * 2  # 5 PTMs x 2 tasks
    assert ("graph", frozenset({"results/graphs/tiny_electra_small.dill"}), "logs/graph/tiny_electra_small.log",
            frozenset({"resources/models/tiny_electra_small"})) in planned


def test_states_on_a_synthetic_results_tree(tmp_path):
    cfg = config()
    # done: acquire_model
    touch(tmp_path, "resources/models/tiny-bert", directory=True)
    # stale: a finetune_base with both outputs whose tokenized input was deleted (rebuilt, then rerun)
    touch(tmp_path, "results/finetune/tiny-bert/sst2/metrics.json")
    touch(tmp_path, "results/finetune/tiny-bert/sst2/model", directory=True)
    # failed: an output missing and a traceback in the log (after an earlier success line)
    touch(tmp_path, "results/finetune/tiny-bert/stsb/metrics.json")
    write_log(tmp_path, "logs/finetune_base/tiny-bert/stsb.log",
              "INFO rule finetune_base\nINFO done in 3.0 s\nINFO rule finetune_base\nERROR failed after 2.0 s\n"
              "Traceback (most recent call last):\n  File \"x.py\", line 1\ntorch.OutOfMemoryError: CUDA out of memory\n")
    # failed: killed by the scheduler (log stops without the completion line)
    write_log(tmp_path, "logs/graph/tiny-bert.log", "INFO rule graph, wildcards {}, threads 1\n")
    # missing: ran once, then its output was deleted (not temp)
    write_log(tmp_path, "logs/tokenize/tiny-bert/sst2.log", "INFO rule tokenize\nINFO done in 1.0 s\n")
    # incomplete: a running (or killed) job, its output partly written and marked by Snakemake
    touch(tmp_path, "results/logme/tiny-bert/sst2.json")
    mark_incomplete(tmp_path, "results/logme/tiny-bert/sst2.json")
    mark_incomplete(tmp_path, "results/merged/tiny-bert/sst2_stsb_0.5")  # running, nothing written yet
    got = {(s.job.rule, s.job.name): s for s in status.collect(cfg, tmp_path)}
    assert got[("acquire_model", "tiny-bert")].state == "done"
    stale = got[("finetune_base", "tiny-bert/sst2")]
    assert stale.state == "stale" and stale.reason == "input missing: results/tokenized/tiny-bert/sst2"
    failed = got[("finetune_base", "tiny-bert/stsb")]
    assert failed.state == "failed" and failed.reason == "torch.OutOfMemoryError: CUDA out of memory"
    assert got[("graph", "tiny-bert")].state == "failed" and "killed" in got[("graph", "tiny-bert")].reason
    assert got[("tokenize", "tiny-bert/sst2")].state == "missing"
    assert got[("logme", "tiny-bert/sst2")].state == "incomplete"
    assert got[("merge", "tiny-bert/sst2_stsb_0.5")].state == "incomplete"
    assert got[("acquire_glue", "sst2")].state == "missing"
    c = status.counts(got.values())
    assert c[("finetune_base", "tiny-bert")] == {"stale": 1, "failed": 1}
    assert c[("*", "*")] == {"done": 1, "stale": 1, "failed": 2, "incomplete": 2, "missing": 19}

    table = status.format_table(list(got.values()))
    assert re.search(r"^finetune_base\s+0\s+1\s+1\s+0\s+0\s+2$", table, re.M), table
    assert re.search(r"^tiny-bert\s+1/1\s+0/2\s+0/2 1S 1F\s+0/1 1I\s+0/2\s+0/2 1F\s+0/4 1I", table, re.M), table
    assert "finetune_base    tiny-bert/sst2  input missing: results/tokenized/tiny-bert/sst2" in table
    assert "logs/finetune_base/tiny-bert/stsb.log  torch.OutOfMemoryError" in table
    assert "2 job(s) incomplete" in table


def test_temp_outputs_removed_after_success_count_as_done(tmp_path):
    write_log(tmp_path, "logs/merge/tiny-bert/sst2_stsb_0.5.log", "INFO rule merge\nINFO done in 1.0 s\n")
    for keep, state in ((True, "missing"), (False, "done")):
        got = {s.job.rule: s.state for s in status.collect(config(keep=keep), tmp_path) if s.job.rule == "merge"}
        assert got == {"merge": state}


def test_long_output_paths_are_decoded_from_chunked_markers(tmp_path):
    long = "results/" + "x" * 300 + ".json"
    mark_incomplete(tmp_path, long, max_len=os.pathconf(tmp_path, "PC_NAME_MAX"))
    mark_incomplete(tmp_path, "results/graphs/tiny-bert.dill")
    assert status.incomplete_outputs(tmp_path) == {long, "results/graphs/tiny-bert.dill"}


def test_command_line(tmp_path):
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(yaml.safe_dump(config(), sort_keys=False))
    run = [sys.executable, "-m", "ptmbench.cli.status", "--configfile", str(cfg_path), "--directory", str(tmp_path)]
    proc = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^all stages\s+0\s+0\s+0\s+0\s+25\s+25$", proc.stdout, re.M)
    proc = subprocess.run([*run, "--json"], capture_output=True, text=True, timeout=60)
    assert '"missing": 25' in proc.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: {}\n")
    proc = subprocess.run([*run[:4], str(bad)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "cannot read config" in proc.stderr


# --------------------------------------------------------------------------------------------------
# stale: outputs exist, an input is missing, newer, or about to be rebuilt

T0 = 1_700_000_000.0  # job i of paths.jobs finished at T0 + 10 i


def is_dir_output(rel: str) -> bool:
    return Path(rel).suffix not in (".json", ".dill", ".csv", ".txt")


def finished_tree(workdir: Path, cfg: dict, timestamps: bool = True) -> list[paths.Job]:
    """Every output of ``cfg``'s DAG, written in DAG order and dated as Snakemake leaves them:
    directory outputs get a ``.snakemake_timestamp`` (with ``timestamps``), and every log a success line."""
    jobs = list(paths.jobs(paths.Zoo.from_config(cfg)))
    for i, job in enumerate(jobs):
        t = T0 + 10 * i
        for rel in job.outputs:
            p = workdir / rel
            if is_dir_output(rel):
                p.mkdir(parents=True, exist_ok=True)
                (p / "weights.bin").write_bytes(b"w")
                os.utime(p / "weights.bin", (t, t))
                if timestamps:
                    (p / ".snakemake_timestamp").touch()
                    os.utime(p / ".snakemake_timestamp", (t, t))
            else:
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text("{}")
            os.utime(p, (t, t))
        write_log(workdir, job.log, f"INFO rule {job.rule}\nINFO done in 1.0 s\n")
    return jobs


def states(cfg, workdir) -> dict[tuple[str, str], status.JobStatus]:
    return {(s.job.rule, s.job.name): s for s in status.collect(cfg, workdir)}


def test_a_finished_tree_is_done_and_a_newer_input_makes_every_job_downstream_stale(tmp_path):
    cfg = config()
    jobs = finished_tree(tmp_path, cfg)
    assert {s.state for s in states(cfg, tmp_path).values()} == {"done"}
    # tokenized sst2 rewritten after everything else (Snakemake touched its timestamp): every job
    # that reads it is stale, and so is everything downstream of those
    late = T0 + 10 * len(jobs) + 5
    os.utime(tmp_path / "results/tokenized/tiny-bert/sst2/.snakemake_timestamp", (late, late))
    got = states(cfg, tmp_path)
    stale = {k for k, s in got.items() if s.state == "stale"}
    assert stale == {("finetune_base", "tiny-bert/sst2"), ("merge", "tiny-bert/sst2_stsb_0.5"),
                     ("finetune_merged", "tiny-bert_sst2_stsb_0.5/sst2"),
                     ("finetune_merged", "tiny-bert_sst2_stsb_0.5/stsb"), ("graph", "tiny-bert_sst2_stsb_0.5"),
                     ("logme", "tiny-bert/sst2"), ("logme", "tiny-bert_sst2_stsb_0.5/sst2"),
                     ("logme", "tiny-bert_sst2_stsb_0.5/stsb"), ("early_stop", "tiny-bert/sst2"),
                     ("early_stop", "tiny-bert_sst2_stsb_0.5/sst2"), ("early_stop", "tiny-bert_sst2_stsb_0.5/stsb"),
                     ("export", "export"), ("compare", "compare"),
                     ("report", "report"), ("hub", "hub")}
    newer = "input newer than the output: results/tokenized/tiny-bert/sst2"
    assert got[("finetune_base", "tiny-bert/sst2")].reason == newer
    assert got[("logme", "tiny-bert/sst2")].reason == newer
    assert got[("merge", "tiny-bert/sst2_stsb_0.5")].reason == \
        "input to be rebuilt: results/finetune/tiny-bert/sst2/model (stale)"
    assert got[("report", "report")].reason == "input to be rebuilt: results/tables/performance.csv (stale) and 4 more"
    table = status.format_table(list(got.values()))
    assert re.search(r"^all stages\s+10\s+15\s+0\s+0\s+0\s+25$", table, re.M), table
    assert re.search(r"^tiny-bert\s+1/1\s+2/2\s+1/2 1S\s+0/1 1S\s+0/2 2S\s+1/2 1S\s+1/4 3S", table, re.M), table
    assert status.as_json(list(got.values()))["stale"][0] == {
        "rule": "finetune_base", "job": "tiny-bert/sst2", "reason": newer}


def test_directories_are_dated_by_their_snakemake_timestamp_like_snakemake_does(tmp_path):
    cfg = config()
    jobs = finished_tree(tmp_path, cfg)
    model = tmp_path / "resources/models/tiny-bert"
    late = T0 + 10 * len(jobs) + 5
    # files replaced inside a finished model folder: the folder's mtime moves, its timestamp does not
    (model / "weights.bin").write_bytes(b"replaced")
    os.utime(model, (late, late))
    assert {s.state for s in status.collect(cfg, tmp_path)} == {"done"}
    # without a timestamp file the folder's own mtime counts
    (model / ".snakemake_timestamp").unlink()
    got = states(cfg, tmp_path)
    assert got[("tokenize", "tiny-bert/sst2")].reason == "input newer than the output: resources/models/tiny-bert"
    assert got[("acquire_model", "tiny-bert")].state == "done"
    assert sum(s.state == "stale" for s in got.values()) == 21  # all but the 3 acquisitions and the published bench (no input)
    # a tree written without timestamps at all is dated by folder mtimes: still done
    finished_tree(tmp_path / "plain", cfg, timestamps=False)
    assert {s.state for s in status.collect(cfg, tmp_path / "plain")} == {"done"}


def test_missing_inputs_make_a_finished_export_stale(tmp_path):
    cfg = config()
    finished_tree(tmp_path, cfg)
    (tmp_path / "results/logme/tiny-bert/stsb.json").unlink()
    (tmp_path / "logs/logme/tiny-bert/stsb.log").unlink()
    got = states(cfg, tmp_path)
    assert got[("logme", "tiny-bert/stsb")].state == "missing"
    assert got[("export", "export")].state == "stale"
    assert got[("export", "export")].reason == "input missing: results/logme/tiny-bert/stsb.json"
    assert got[("report", "report")].state == "stale"


def test_the_paper_config_over_the_results_of_a_smaller_config_is_stale_not_done(tmp_path):
    """The demo's results read with the paper config: the export exists, most of its inputs do not."""
    finished_tree(tmp_path, config())
    paper = validate(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))
    got = {(s.job.rule, s.job.name): s for s in status.collect(paper, tmp_path)}
    export = got[("export", "export")]
    assert export.state == "stale" and export.reason.startswith("input missing: results/finetune/")
    assert re.search(r" and \d{4,} more$", export.reason)
    assert got[("report", "report")].state == "stale"
    # the data both configs share and the published bench (config-independent) are the only things done
    assert {k for k, s in got.items() if s.state == "done"} == {("acquire_glue", "sst2"), ("acquire_glue", "stsb"),
                                                                 ("published", "published")}


def test_removed_temp_merged_weights_are_not_missing_inputs(tmp_path):
    for keep, expected in ((False, "done"), (True, "stale")):
        cfg = config(keep=keep)
        work = tmp_path / str(keep)
        finished_tree(work, cfg)
        shutil.rmtree(work / "results/merged/tiny-bert/sst2_stsb_0.5")  # Snakemake removes temp() outputs
        got = states(cfg, work)
        assert got[("finetune_merged", "tiny-bert_sst2_stsb_0.5/sst2")].state == expected
        assert got[("graph", "tiny-bert_sst2_stsb_0.5")].state == expected
    # kept weights deleted: the merge is rerun (missing) and its consumers after it
    assert got[("merge", "tiny-bert/sst2_stsb_0.5")].state == "missing"
    assert got[("graph", "tiny-bert_sst2_stsb_0.5")].reason == "input missing: results/merged/tiny-bert/sst2_stsb_0.5"


def test_status_stats_every_path_once(tmp_path, monkeypatch):
    """Shared inputs (a model folder read by every job of its base, the export's ~11,000 inputs in
    the paper config) are dated once: status stays a pass of stat calls."""
    cfg = config(unseen={"tiny-electra": {"source": "tiny", "family": "electra"}})
    finished_tree(tmp_path, cfg)
    calls = []
    real_stat = os.stat

    def counting_stat(path, *args, **kwargs):
        calls.append(str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counting_stat)
    statuses = status.collect(cfg, tmp_path)
    monkeypatch.undo()
    assert {s.state for s in statuses} == {"done"}
    inputs = sum(len(s.job.input_files) for s in statuses)
    assert inputs > len({i for s in statuses for i in s.job.input_files})  # inputs are shared...
    assert max(Counter(calls).values()) == 1  # ...and each path is stat'ed once


# --------------------------------------------------------------------------------------------------
# --verify: outputs whose contents no longer match their recorded SHA-256, or unreadable JSON


def with_records(workdir: Path) -> None:
    """Give the finished tree's outputs the checksum records the stages write: provenance.json
    (acquire_model, finetune_base model/), merge.json (merge) and MANIFEST.json (export)."""
    for rel, record in (("resources/models/tiny-bert", "provenance.json"),
                        ("results/finetune/tiny-bert/sst2/model", "provenance.json"),
                        ("results/merged/tiny-bert/sst2_stsb_0.5", "merge.json")):
        d = workdir / rel
        (d / "config.json").write_text('{"model_type": "bert"}')
        write_json(d / record, {"provenance": {}, "sha256": sha256_files(d)})
    bench = workdir / paths.EXPORT_DIR
    (bench / "base_model_dataset").mkdir()
    (bench / "base_model_dataset" / "base_tiny-bert.dill").write_bytes(b"graph")
    files = {str(p.relative_to(bench)): {"bytes": p.stat().st_size, "sha256": sha256(p)}
             for p in bench.rglob("*") if p.is_file() and p.name != ".snakemake_timestamp"}
    write_json(bench / "MANIFEST.json", {"format": "ptm_model_bench", "files": files})


def test_verify_finds_modified_and_corrupt_outputs(tmp_path):
    cfg = config()
    finished_tree(tmp_path, cfg)
    with_records(tmp_path)
    assert status.verify(status.collect(cfg, tmp_path), tmp_path) == []

    (tmp_path / "resources/models/tiny-bert/weights.bin").write_bytes(b"edited")
    (tmp_path / "results/merged/tiny-bert/sst2_stsb_0.5/config.json").unlink()
    (tmp_path / "results/finetune/tiny-bert/sst2/model/provenance.json").write_text('{"sha256": {"x"')
    (tmp_path / "results/logme/tiny-bert/stsb.json").write_text('{"score": 1.2')  # truncated
    (tmp_path / paths.EXPORT_DIR / "base_model_dataset/base_tiny-bert.dill").write_bytes(b"")
    statuses = status.collect(cfg, tmp_path)
    # dates cannot tell an edit inside a finished folder: only the checksums can
    assert {s.job.rule: s.state for s in statuses}["acquire_model"] == "done"
    got = {p.path: (p.kind, p.detail) for p in status.verify(statuses, tmp_path)}
    assert got == {
        "resources/models/tiny-bert": ("modified", "weights.bin differs from the SHA-256 in provenance.json"),
        "results/merged/tiny-bert/sst2_stsb_0.5": ("modified", "config.json is missing"),
        "results/finetune/tiny-bert/sst2/model": (
            "corrupt", got["results/finetune/tiny-bert/sst2/model"][1]),
        "results/logme/tiny-bert/stsb.json": ("corrupt", got["results/logme/tiny-bert/stsb.json"][1]),
        paths.EXPORT_DIR: ("modified", "base_model_dataset/base_tiny-bert.dill differs from the SHA-256 in "
                                       "MANIFEST.json"),
    }
    assert got["results/finetune/tiny-bert/sst2/model"][1].startswith("provenance.json is not readable JSON")
    assert got["results/logme/tiny-bert/stsb.json"][1].startswith("not readable JSON (JSONDecodeError")


def test_verify_on_the_command_line_lists_the_fix_and_fails(tmp_path):
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(yaml.safe_dump(config(), sort_keys=False))
    work = tmp_path / "work"
    finished_tree(work, config())
    with_records(work)
    run = [sys.executable, "-m", "ptmbench.cli.status", "--configfile", str(cfg_path), "-d", str(work), "--verify"]
    proc = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verified: every output that records SHA-256 checksums matches them" in proc.stdout
    (work / "results/finetune/tiny-bert/sst2/metrics.json").write_text("")
    proc = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "1 modified or corrupt output(s): for each, delete it and rerun snakemake to rebuild it" in proc.stdout
    assert re.search(r"^  corrupt   results/finetune/tiny-bert/sst2/metrics.json  \(finetune_base "
                     r"tiny-bert/sst2\): not readable JSON", proc.stdout, re.M), proc.stdout
    proc = subprocess.run([*run, "--json"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert [v["path"] for v in json.loads(proc.stdout)["verify"]] == ["results/finetune/tiny-bert/sst2/metrics.json"]


def test_squad_files_are_checked_against_the_provenance_beside_them(tmp_path):
    squad = tmp_path / "resources/data/squad_v2"
    squad.mkdir(parents=True)
    for f in ("train-v2.0.json", "dev-v2.0.json"):
        (squad / f).write_text('{"version": "v2.0", "data": []}')
    write_json(squad / "provenance.json", {"sha256": {f: sha256(squad / f) for f in ("train-v2.0.json",
                                                                                       "dev-v2.0.json")}})
    job = next(j for j in paths.jobs(paths.Zoo.from_config(validate({**config(), "tasks": ["squad_v2"]})))
               if j.rule == "acquire_squad")
    assert [status.verify_output(o, tmp_path, job) for o in job.outputs] == [None, None]
    (squad / "dev-v2.0.json").write_text('{"version": "v2.0", "data": [ ]}')  # still JSON, other bytes
    problem = status.verify_output("resources/data/squad_v2/dev-v2.0.json", tmp_path, job)
    assert (problem.kind, problem.detail) == ("modified", "differs from the SHA-256 in "
                                                          "resources/data/squad_v2/provenance.json")


# --------------------------------------------------------------------------------------------------
# temporaries left by killed jobs


def killed_while_writing(target: Path, directory: bool) -> None:
    """Run the atomic writer in a child process and kill it mid-write (SIGKILL: no cleanup runs)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            if directory:
                with atomic_dir(target) as tmp:
                    (tmp / "model.safetensors").write_bytes(b"\0" * 1000)
                    os.kill(os.getpid(), signal.SIGKILL)
            else:
                with atomic_file(target) as fh:
                    fh.write("x" * 10)
                    fh.flush()
                    os.kill(os.getpid(), signal.SIGKILL)
        finally:
            os._exit(1)
    _, code = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(code) and os.WTERMSIG(code) == signal.SIGKILL


def test_temporaries_of_killed_writers_are_listed_with_their_sizes(tmp_path):
    killed_while_writing(tmp_path / "results/merged/tiny-bert/sst2_stsb_0.5", directory=True)
    killed_while_writing(tmp_path / "results/finetune/tiny-bert/sst2/metrics.json", directory=False)
    killed_while_writing(tmp_path / "elsewhere/x.json", directory=False)  # not a workflow tree
    (tmp_path / "results/graphs").mkdir(parents=True)
    (tmp_path / "results/graphs/.hidden.json").write_text("not a temporary")
    (tmp_path / "results/graphs/tiny-bert.tmp").write_text("not ours either")

    temps = status.leftover_temps(tmp_path)
    assert [(Path(p).parent.as_posix(), size) for p, size in temps] == [
        ("results/finetune/tiny-bert/sst2", 10), ("results/merged/tiny-bert", 1000)]
    assert all(is_temp(p) for p, _ in temps)
    assert Path(temps[1][0]).name.startswith(".sst2_stsb_0.5.")
    assert temp_siblings(tmp_path / "results/merged/tiny-bert/sst2_stsb_0.5") == [tmp_path / temps[1][0]]
    assert temp_siblings(tmp_path / "results/merged/tiny-bert/sst2_stsb") == []
    text = status.format_temps(temps)
    assert text.startswith("2 temporary file(s)/folder(s), 1.0 KB, left by killed jobs; the rerun of the job "
                           "removes them, or delete them")
    assert f"      10 B  {temps[0][0]}" in text
