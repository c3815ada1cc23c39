"""The tiny workflow through a real one-node Slurm with the project's profile (profiles/slurm).

Starts from a copy of the shared local run (``tiny_run``) in which everything after the merge is not
done. Checks: the profile's job groups pack the jobs left into exactly the Slurm submissions that
``ptmbench.cluster.grouping.submissions`` predicts (each `sbatch` call logged by the plugin, one Slurm log per
job id, the ids printed), a group of GPU jobs asks Slurm for ONE GPU and the sum of its jobs'
runtimes, each of its jobs takes a device slot of that GPU, and they run one after the other (the
plugin's `--jobs 1` inside the allocation); one job made to fail once (an injected error in its first attempt) fails its group job, which
the profile's `retries` resubmits, and the DAG completes; a plain rerun has nothing to do; every
fine-tune and LogME result equals a local run's (values identical; provenance and timings ignored).
Threads are set to 1 in both runs so the floating-point results can be compared exactly.
Needs root and Debian's Slurm packages (`apt-get install slurmctld slurmd slurm-client munge`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import NOT_DONE, copy_run, results
from slurm_cluster import one_node_slurm, unavailable_reason

from ptmbench.cluster import grouping
from ptmbench.core import paths

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "test.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--configfile", str(CONFIG)]
ONE_THREAD = ["--set-threads", "tokenize=1", "finetune_base=1", "finetune_merged=1", "logme=1", "early_stop=1"]
FAIL_PTM, FAIL_TASK = "tiny-bert_sst2_stsb_0.5", "sst2"  # the LogME job that fails once

# Loaded by every Python process of the Slurm run (PYTHONPATH): inside the LogME job script only, the
# first call for FAIL_PTM/FAIL_TASK raises, leaving a marker with the Slurm job id. In the main
# Snakemake process only: the Slurm plugin waits 10 s longer before each status check that saw no job
# finish (up to 180 s, hard-wired); group jobs run their jobs one after the other, so they are long
# enough for that backoff to pace the test (a finished group noticed 30-45 s late). Capped at 10 s here;
# what is submitted and run does not change.
FAIL_ONCE = textwrap.dedent("""\
    import os, sys
    if sys.argv[:1] == ["-m"] and "--slurm-status-command" in sys.argv:
        from snakemake_interface_executor_plugins.executors.remote import RemoteExecutor as _R
        _p = _R.next_seconds_between_status_checks
        _R.next_seconds_between_status_checks = _p.setter(lambda self, v: _p.fset(self, min(v, 10)))
    if sys.argv and "/.snakemake/scripts/" in sys.argv[0] and sys.argv[0].endswith("logme.py"):
        from pathlib import Path
        from ptmbench.stages import logme as _m
        _orig, _marker = _m.score_ptm, Path(os.environ["PTM_FAIL_MARKER"])
        def _flaky(*args, **kw):
            if (kw.get("ptm"), kw.get("task")) == (os.environ["PTM_FAIL_PTM"], os.environ["PTM_FAIL_TASK"]) \\
                    and not _marker.exists():
                _marker.write_text(os.environ.get("SLURM_JOB_ID", "?"))
                raise RuntimeError("injected failure (tests/test_slurm.py): this attempt fails once")
            return _orig(*args, **kw)
        _m.score_ptm = _flaky
    """)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    with one_node_slurm(tmp_path_factory.mktemp("slurm")) as env:
        yield env


def _run(cmd, env=None, timeout=900, cwd=None):
    """Snakemake under `timeout -k 30` (a hung status loop cannot block the test run)."""
    return subprocess.run(["timeout", "-k", "30", str(timeout), *cmd], env=env, cwd=cwd,
                          capture_output=True, text=True)


def _scontrol(env, job_id: int) -> dict[str, str]:
    """What Slurm was asked for: the job's comment (the plugin's rule/group name), time limit, GPUs."""
    out = subprocess.run(["scontrol", "-o", "show", "job", str(job_id)], env=env, capture_output=True,
                         text=True, check=True).stdout
    fields = dict(re.findall(r"(\w+)=(\S*)", out))
    # --gpus=N (TresPerJob) or --gres=gpu:N (TresPerNode): gres:gpu:1, gres/gpu:1 or gres/gpu:a100:1
    gpus = re.search(r"TresPer(?:Job|Node)=\S*gres[:/]gpu[:=](?:[^,\s:=]+:)?(\d+)", out)
    return {"Comment": fields.get("Comment", ""), "TimeLimit": fields.get("TimeLimit", ""),
            "gpus": gpus.group(1) if gpus else "0"}


def test_tiny_workflow_through_slurm(slurm, tiny_run, tmp_path):
    # tiny_run: the shared local run of the same config (its jobs also run with one thread each). The
    # Slurm run starts from a copy of it in which everything after the merge is not done yet (GPU jobs:
    # fine-tunes and LogME; CPU jobs: graph, export, report), which keeps the test short.
    local, remote, inject = tiny_run, copy_run(tiny_run, tmp_path / "slurm"), tmp_path / "inject"
    for rel in NOT_DONE[2:]:  # everything after the merge
        p = remote / rel
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(FAIL_ONCE)
    marker = tmp_path / "failed-once"

    env = {**slurm, "PYTHONPATH": os.pathsep.join(filter(None, [str(inject), os.environ.get("PYTHONPATH")])),
           "PTM_FAIL_MARKER": str(marker), "PTM_FAIL_PTM": FAIL_PTM, "PTM_FAIL_TASK": FAIL_TASK}
    cmd = [*SNAKEMAKE, "-d", str(remote), "--profile", str(ROOT / "profiles" / "slurm"),
           # the test cluster: no account database (squeue for status), one partition, no GPU partition
           "--slurm-no-account", "--slurm-status-command", "squeue",
           "--slurm-init-seconds-before-status-checks", "5", "--slurm-keep-successful-logs",
           "--default-resources", "slurm_partition=debug", "mem_mb=2000", "runtime=30",
           "--set-resources", *(f"{r}:slurm_partition=debug" for r in ("finetune_base", "finetune_merged",
                                                                         "finetune_seed", "logme",
                                                                         "early_stop")),
           "--jobs", "5", "--latency-wait", "10", *ONE_THREAD]
    planned = _run([*SNAKEMAKE, "-d", str(remote), "-n", "--cores", "1"]).stdout  # what Slurm will run
    # the submissions the profile's groups make of the jobs left (those with an output missing)
    zoo = paths.Zoo.from_config(yaml.safe_load(CONFIG.read_text()))
    left = [j for j in paths.jobs(zoo) if not all((remote / o).exists() for o in j.outputs)]
    predicted = grouping.submissions(left)
    r = _run(cmd, env=env)
    log = r.stdout + r.stderr
    assert r.returncode == 0, log[-5000:]

    # 11 jobs left (but `all`), in 8 submissions: the merged PTM's 2 fine-tunes, its graph, its 2
    # LogME scores, its 2 fine-tuning proxies (early_stop), the export, the comparison, the report, the
    # hub folder; + 1: the group job with the injected failure, resubmitted.
    # Counted exactly: the plugin logs every sbatch call, and keeps one Slurm log per job id.
    assert len(re.findall(r"^rule (?!all:)\w+:", planned, re.M)) == len(left) == 11
    assert {k: v for k, v in predicted.items() if v} == {"finetune_merged": 1, "graph": 1, "logme": 1,
                                                         "early_stop": 1, "export": 1, "compare": 1, "report": 1,
                                                         "hub": 1, "total": 8}
    logs = sorted((remote / ".snakemake" / "slurm_logs").rglob("*.log"))
    ids = sorted(int(p.stem) for p in logs)
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", log)
    print(f"\nSlurm job ids ({len(ids)}): {ids}")
    for p in logs:
        print(f"  {p.parent.relative_to(remote / '.snakemake' / 'slurm_logs')}  slurm job {p.stem}")
    assert len(submitted) == predicted["total"] + 1
    assert sorted(map(int, submitted)) == ids

    # what the group jobs asked Slurm for (scontrol keeps finished jobs for MinJobAge): one GPU per
    # group of GPU jobs, and the sum of the runtimes of the jobs it runs one after the other
    asked = {i: _scontrol(slurm, i) for i in ids}
    for i, job in asked.items():
        print(f"  slurm job {i}: {job['Comment']} TimeLimit={job['TimeLimit']} gpus={job['gpus']}")
    # the plugin's comment of a group job: rule_<group name>_<its rules>
    fine_tunes = [j for j in asked.values() if j["Comment"].startswith(f"rule_finetune_merged_{FAIL_PTM}_")]
    scores = [j for j in asked.values() if j["Comment"].startswith(f"rule_logme_{FAIL_PTM}_")]
    proxies = [j for j in asked.values() if j["Comment"].startswith("rule_early_stop_")]
    assert not any(j["gpus"] != "0" for j in asked.values() if j not in fine_tunes + scores + proxies)  # CPU jobs
    assert [(j["gpus"], j["TimeLimit"]) for j in proxies] == [("1", "00:40:00")]  # early_stop: 2 x 20 min
    assert [(j["gpus"], j["TimeLimit"]) for j in fine_tunes] == [("1", "02:00:00")]  # sst2 90 + stsb 30 min
    # LogME: 2 x 120 min; the resubmission (attempt 2) 2 x 180 min
    assert sorted((j["gpus"], j["TimeLimit"]) for j in scores) == [("1", "04:00:00"), ("1", "06:00:00")]

    # each GPU job of a group claimed a device slot of the one GPU Slurm showed it (device 1 of 1) ...
    for rule in ("finetune_merged", "logme"):
        for task in ("sst2", "stsb"):
            job_log = (remote / paths.fill(paths.LOG, rule=rule, job=f"{FAIL_PTM}/{task}")).read_text()
            assert re.search(r"device slot: GPU \S+ \(device 1 of 1, ", job_log), (rule, task, job_log[-2000:])
    # ... and the group's jobs ran one after the other: the Slurm plugin runs the Snakemake inside the
    # allocation with `--jobs 1` (snakemake-executor-plugin-slurm issue 469), which is why a group asks
    # for the SUM of its jobs' runtimes and the GPU jobs of a group cannot share its GPU (docs/cluster.md).
    # If this fails, the plugin runs a group's jobs side by side now: revisit the profile's GPU requests.
    ft_id = next(i for i, j in asked.items() if j["Comment"].startswith(f"rule_finetune_merged_{FAIL_PTM}_"))
    group_log = next(p for p in logs if p.stem == str(ft_id)).read_text()
    starts = [m.start() for m in re.finditer(r"^rule finetune_merged:", group_log, re.M)]
    ends = [m.start() for m in re.finditer(r"^Finished jobid", group_log, re.M)]
    assert " --jobs 1 " in group_log and len(starts) == 2 and ends[0] < starts[1], group_log[-3000:]

    # the injected failure happened once, in a Slurm job, and the retry completed the job
    failed_id = marker.read_text()
    assert failed_id.isdigit() and int(failed_id) in ids
    failed_log = next(p for p in logs if p.stem == failed_id).read_text()
    assert "injected failure" in failed_log
    assert re.search(r"Error in (rule logme|group logme_)", log)
    assert (remote / "results" / "logme" / FAIL_PTM / f"{FAIL_TASK}.json").is_file()

    # nothing left to do, and the same numbers as the local run
    again = _run([*SNAKEMAKE, "-d", str(remote), "-n", "--cores", "1"])
    assert "Nothing to be done" in again.stdout + again.stderr
    got, want = results(remote), results(local)
    assert len(want) == 8 and got == want
