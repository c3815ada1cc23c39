"""Fault tolerance of the whole workflow on the tiny config (local runs in temp work dirs):

- a fine-tune SIGKILLed mid-run (with Snakemake itself, as a crashed node would): nothing partial is
  accepted and the rerun with --rerun-incomplete finishes it without redoing finished jobs;
- one base model with a corrupt checkpoint: --keep-going finishes everything that does not depend on
  it, `python -m ptmbench.status` names it, and after the checkpoint is replaced a plain rerun redoes
  only that model's jobs (and the export that reads everything);
- disk full while saving fine-tuned weights (a 64 kB tmpfs over the job's output dir): the job fails
  and leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
TEST_CONFIG = ROOT / "config" / "test.yaml"


def smk(wd: Path, *args, config: Path = TEST_CONFIG, timeout: int = 600, check: bool | None = True):
    r = subprocess.run(["timeout", "-k", "30", str(timeout), sys.executable, "-m", "snakemake",
                        "-s", str(ROOT / "Snakefile"), "-d", str(wd), "--configfile", str(config),
                        "--cores", "2", *args], capture_output=True, text=True)
    if check is not None:
        assert (r.returncode == 0) == check, (r.stdout + r.stderr)[-4000:]
    return r


def mtimes(wd: Path) -> dict[str, int]:
    return {str(p.relative_to(wd)): p.stat().st_mtime_ns
            for d in ("resources", "results") for p in (wd / d).rglob("*") if p.is_file()}


def test_sigkill_mid_finetune_then_rerun_incomplete(tmp_path):
    wd = tmp_path / "wd"
    job_log = wd / "logs" / "finetune_base" / "tiny-bert" / "sst2.log"
    out = wd / "results" / "finetune" / "tiny-bert" / "sst2"
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(wd),
                             "--configfile", str(TEST_CONFIG), "--cores", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        end = time.monotonic() + 400
        while not job_log.exists() and proc.poll() is None and time.monotonic() < end:
            time.sleep(0.2)
        assert job_log.exists(), "the fine-tune never started"
        time.sleep(1.0)
        assert not (out / "metrics.json").exists(), "the fine-tune finished before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and every job it runs, no clean-up
        proc.wait()
    assert not (out / "metrics.json").exists() and not (out / "model").exists()
    before = mtimes(wd)
    assert before, "nothing finished before the kill"

    smk(wd, "--unlock")  # a killed Snakemake leaves its lock behind
    r = smk(wd, "--rerun-incomplete")
    assert json.loads((out / "metrics.json").read_text())["ptm"] == "tiny-bert"
    assert (out / "model" / "model.safetensors").is_file()
    after = mtimes(wd)
    assert {k: after[k] for k in before} == before, "finished jobs were redone"
    assert "rule finetune_base" in r.stdout + r.stderr
    assert "Nothing to be done" in smk(wd, "-n").stdout


@pytest.fixture
def two_model_config(tmp_path, tiny_model):
    """tiny BERT (good) + tiny RoBERTa (checkpoint corrupted), as local `path` models."""
    good, bad = tmp_path / "models" / "bert", tmp_path / "models" / "roberta"
    shutil.copytree(tiny_model("bert"), good)
    shutil.copytree(tiny_model("roberta"), bad)
    weights = bad / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])  # truncated download
    cfg = yaml.safe_load(TEST_CONFIG.read_text())
    cfg["models"] = {"good": {"source": "path", "path": str(good)}, "bad": {"source": "path", "path": str(bad)}}
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, bad, tiny_model("roberta")


def test_corrupt_checkpoint_keep_going_status_and_targeted_rerun(tmp_path, two_model_config):
    config, bad_dir, good_copy = two_model_config
    wd = tmp_path / "wd"
    smk(wd, "--keep-going", config=config, check=False)
    res = wd / "results"
    good_outputs = ([res / "finetune" / p / t / "metrics.json" for p in ("good", "good_sst2_stsb_0.5")
                     for t in ("sst2", "stsb")]
                    + [res / "graphs" / f"{p}.dill" for p in ("good", "good_sst2_stsb_0.5")]
                    + [res / "logme" / p / f"{t}.json" for p in ("good", "good_sst2_stsb_0.5") for t in ("sst2", "stsb")])
    assert all(p.is_file() for p in good_outputs), [str(p) for p in good_outputs if not p.is_file()]
    assert not (wd / "resources" / "models" / "bad").exists()
    assert not list(res.glob("finetune/bad*/*/metrics.json"))

    st = subprocess.run([sys.executable, "-m", "ptmbench.status", "--configfile", str(config), "-d", str(wd),
                         "--json"], capture_output=True, text=True, timeout=120)
    report = json.loads(st.stdout)
    failed = report["failed"]
    assert failed and all("bad" in f["job"] for f in failed), failed
    assert any(f["rule"] == "acquire_model" for f in failed)

    before = {str(p): p.stat().st_mtime_ns for p in good_outputs}
    shutil.copyfile(good_copy / "model.safetensors", bad_dir / "model.safetensors")  # the fix
    r = smk(wd, config=config)
    log = r.stdout + r.stderr
    assert {str(p): p.stat().st_mtime_ns for p in good_outputs} == before, "the good model's jobs were redone"
    assert "wildcards: base=good," not in log and "ptm=good," not in log
    assert (res / "finetune" / "bad_sst2_stsb_0.5" / "stsb" / "metrics.json").is_file()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_disk_full_while_saving_weights_leaves_nothing(tmp_path):
    wd = tmp_path / "wd"
    smk(wd, "--until", "tokenize")
    out = wd / "results" / "finetune" / "tiny-bert" / "sst2"
    out.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(out)], check=True)
    try:
        r = smk(wd, "results/finetune/tiny-bert/sst2/metrics.json", check=False)  # (3 attempts: retries 2)
        assert r.returncode != 0
        log = (wd / "logs" / "finetune_base" / "tiny-bert" / "sst2.log").read_text()
        assert "No space left on device" in log, log[-2000:]
        assert list(out.iterdir()) == [], list(out.iterdir())  # no metrics, no model, no temp dir
    finally:
        subprocess.run(["umount", str(out)], check=True)
