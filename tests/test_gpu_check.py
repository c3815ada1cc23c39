"""bench/gpu_check.py cannot rot: its --cpu-smoke run goes through every section's code path (the demo DAG
target through a job's device slot, ours vs a plain Trainer, FLOP utilisation and the switch ablation, K
concurrent fine-tunes through the slots, LogME features, the out-of-memory retry, slots on 2 faked GPUs)
with tiny models on the CPU, and its JSON says what each section found."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_gpu_check_cpu_smoke(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop("PTMBENCH_FAKE_GPUS", None)
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_check.py"), "--cpu-smoke", "--out", str(out),
                           "--budget-s", "900"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rep = json.loads(out.read_text())
    sec = rep["sections"]
    assert rep["mode"] == "cpu-smoke" and rep["device"] == "cpu" and rep["versions"]["torch"]
    assert {k: v["status"] for k, v in sec.items()} == dict.fromkeys("bcdefga", "ok")
    # a: a real snakemake job claimed a (faked) device slot in the job wrapper and ran on the CPU
    assert sec["a"]["jobs_with_slot"] == 1 and sec["a"]["finetunes"] == 1
    # b: both sides trained the same examples and were scored
    for side in ("plain", "ours"):
        assert sec["b"][side]["examples_per_s"] > 0 and 0 <= sec["b"][side]["accuracy"] <= 1
    # c: no peak on a CPU, so no MFU, but the FLOP rate and every ablation run are there
    for run in sec["c"]["runs"].values():
        assert run["mfu"] is None and run["achieved_flops"] > 0
        assert run["switches"]["sdpa"] and not run["switches"]["tf32"]  # recorded in metrics provenance
    assert set(sec["c"]["switch_ablation_examples_per_s"]) == {"all", "-fused_adamw", "none"}
    # d: K=2 on one (faked) GPU: both jobs on device 0, never more than K
    assert sec["d"]["k"]["2"]["jobs_per_device"] == {"0": 2}
    # e: features of every row
    assert sec["e"]["short"]["shape"][0] == rep["sizes"]["e"]["train"]
    # f: the OOM is simulated on the CPU and says so; the retry halved the batch twice and finished
    assert sec["f"]["simulated"] and sec["f"]["oom_retries"] == 2 and sec["f"]["per_device_batch"] == 4
    assert "SIMULATED" in proc.stdout
    # g: two concurrent jobs on two faked GPUs got distinct devices
    assert sorted(j["visible"] for j in sec["g"]["jobs"]) == ["0", "1"]
    for s in "abcdefg":
        assert f"  {s}  " in proc.stdout  # one table, every section
