"""Fault tolerance of the whole workflow on the tiny config (local runs in temp work dirs):

- SIGKILL (Snakemake and its jobs, as a crashed node or a Slurm time limit would) while a fine-tune,
  a merge, a LogME job and the export are writing: nothing partial is accepted, each rerun removes
  the temporaries the killed job left, finishes it, and never redoes a finished job;
- one base model with a corrupt checkpoint: --keep-going finishes everything that does not depend on
  it, `python -m ptmbench.cli.status` names it, and after the checkpoint is replaced a plain rerun redoes
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
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from conftest import NOT_DONE, TEST_CONFIG, copy_run, results, snakemake_cmd

from ptmbench.cluster import status
from ptmbench.io import provenance

pytestmark = pytest.mark.slow



def smk(wd: Path, *args, config: Path = TEST_CONFIG, timeout: int = 600, check: bool | None = True, env=None):
    r = subprocess.run(["timeout", "-k", "30", str(timeout), *snakemake_cmd(wd, "--cores", "2", *args, config=config)],
                       capture_output=True, text=True, env=env)
    if check is not None:
        assert (r.returncode == 0) == check, (r.stdout + r.stderr)[-4000:]
    return r


def mtimes(wd: Path) -> dict[str, int]:
    return {str(p.relative_to(wd)): p.stat().st_mtime_ns
            for d in ("resources", "results") for p in (wd / d).rglob("*") if p.is_file()}


def temps(wd: Path) -> list[str]:
    return sorted(str(p.relative_to(wd)) for d in ("resources", "results") for p in (wd / d).rglob("*")
                  if provenance.is_temp(p.name))


# Loaded by every Python process of a run (PYTHONPATH). Inside a job script, the atomic write of the
# output named by PTM_HANG_OUTPUT writes its temporary in full, records it in PTM_HANG_MARKER and
# then hangs: the test kills the run at exactly that point (no timing luck), once per marker.
HANG = textwrap.dedent("""\
    import os, sys
    if sys.argv and "/.snakemake/scripts/" in sys.argv[0] and os.environ.get("PTM_HANG_OUTPUT"):
        import contextlib, time
        from pathlib import Path
        from ptmbench.io import provenance as _p
        _orig, _target = _p.atomic_path, os.environ["PTM_HANG_OUTPUT"]
        _marker = Path(os.environ["PTM_HANG_MARKER"])
        @contextlib.contextmanager
        def _hanging(path, directory=False):
            with _orig(path, directory) as tmp:
                yield tmp
                if str(path).endswith(_target) and not _marker.exists():
                    Path(f"{_marker}.w").write_text(str(tmp))
                    os.replace(f"{_marker}.w", _marker)
                    time.sleep(3600)
        _p.atomic_path = _hanging
    """)

# Killed in this order, each while its output's temporary is fully written: a fine-tune saving its
# model, then (in the rerun) the merge, a LogME job and the export.
KILLS = [
    ("finetune_base", "results/finetune/tiny-bert/sst2/model", "logs/finetune_base/tiny-bert/sst2.log"),
    ("merge", "results/merged/tiny-bert/sst2_stsb_0.5", "logs/merge/tiny-bert/sst2_stsb_0.5.log"),
    ("logme", "results/logme/tiny-bert_sst2_stsb_0.5/sst2.json", "logs/logme/tiny-bert_sst2_stsb_0.5/sst2.log"),
    ("export", "results/ptm_model_bench", "logs/export/export.log"),
]
def test_sigkill_mid_write_of_each_stage_then_rerun(tiny_run, tmp_path):
    """SIGKILL (Snakemake and its jobs, no clean-up) while a fine-tune, a merge, a LogME job and the
    export each have their output's temporary fully written; every rerun finishes what was killed,
    removes the temporaries, and never redoes a job that had finished."""
    wd = copy_run(tiny_run, tmp_path / "wd")
    for rel in NOT_DONE:
        p = wd / rel
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(HANG)
    finished: dict[str, int] = {}  # output file -> mtime, for every job that had finished at a kill
    left: list[Path] = []
    for stage, target, _ in KILLS:
        marker = tmp_path / f"hang-{stage}"
        env = {**os.environ, "PTM_HANG_OUTPUT": target, "PTM_HANG_MARKER": str(marker),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(inject), os.environ.get("PYTHONPATH")]))}
        smk(wd, "--unlock")  # a killed Snakemake leaves its lock behind
        proc = subprocess.Popen(snakemake_cmd(wd, "--cores", "2", "--rerun-incomplete"), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            end = time.monotonic() + 600
            while not marker.exists() and proc.poll() is None and time.monotonic() < end:
                time.sleep(0.2)
            assert marker.exists(), f"the {stage} job never reached its write (exit {proc.poll()})"
            in_flight = status.incomplete_outputs(wd)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        tmp = wd / marker.read_text()
        assert tmp.exists() and provenance.is_temp(tmp.name), tmp
        assert target in in_flight and not (wd / target).exists()
        left.append(tmp)
        for f, t in mtimes(wd).items():
            in_temp = any(provenance.is_temp(part) for part in Path(f).parts)  # not an output
            if not in_temp and not any(f == o or f.startswith(o + "/") for o in in_flight):
                finished.setdefault(f, t)

    smk(wd, "--unlock")
    smk(wd, "--rerun-incomplete")
    now = mtimes(wd)
    redone = sorted(f for f, t in finished.items() if now.get(f) != t)
    assert not redone, f"finished jobs were redone: {redone}"
    assert not any(t.exists() for t in left) and temps(wd) == []
    for stage, target, log in KILLS:
        assert (wd / target).exists(), target
        assert "left by an earlier attempt that was killed" in (wd / log).read_text(), stage
    assert results(wd) == results(tiny_run)  # the same numbers as the uninterrupted run
    assert "Nothing to be done" in smk(wd, "-n").stdout


@pytest.fixture
def two_model_run(tmp_path, tiny_model, tiny_run):
    """The shared tiny run (tiny-bert, good) with its merged PTM's graph and LogME jobs not done yet, and
    an unseen model `bad` added to the config: a local `path` model whose checkpoint is truncated (a
    broken download)."""
    wd = copy_run(tiny_run, tmp_path / "wd")
    for rel in ("results/graphs/tiny-bert_sst2_stsb_0.5.dill", "results/logme/tiny-bert_sst2_stsb_0.5"):
        p = wd / rel
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    bad = tmp_path / "models" / "roberta"
    shutil.copytree(tiny_model("roberta"), bad)
    weights = bad / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])
    cfg = yaml.safe_load(TEST_CONFIG.read_text())
    cfg["unseen_models"] = {"bad": {"source": "path", "path": str(bad)}}
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return wd, path, bad, tiny_model("roberta")


def test_corrupt_checkpoint_keep_going_status_and_targeted_rerun(two_model_run):
    wd, config, bad_dir, good_copy = two_model_run
    r = smk(wd, "--keep-going", config=config, check=False)
    assert r.returncode != 0
    res = wd / "results"
    good = ("tiny-bert", "tiny-bert_sst2_stsb_0.5")
    good_outputs = ([res / "finetune" / p / t / "metrics.json" for p in good for t in ("sst2", "stsb")]
                    + [res / "graphs" / f"{p}.dill" for p in good]
                    + [res / "logme" / p / f"{t}.json" for p in good for t in ("sst2", "stsb")])
    assert all(p.is_file() for p in good_outputs), [str(p) for p in good_outputs if not p.is_file()]
    assert not (wd / "resources" / "models" / "bad").exists()
    assert not list(res.glob("finetune/bad/*/metrics.json"))
    acquire_log = (wd / "logs" / "acquire_model" / "bad.log").read_text()
    assert f"{bad_dir / 'model.safetensors'} is corrupt or incomplete" in acquire_log, acquire_log[-2000:]
    assert "replace it with a whole copy" in acquire_log

    st = subprocess.run([sys.executable, "-m", "ptmbench.cli.status", "--configfile", str(config), "-d", str(wd),
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
    assert "wildcards: base=tiny-bert," not in log and "ptm=tiny-bert," not in log
    for t in ("sst2", "stsb"):
        assert (res / "finetune" / "bad" / t / "metrics.json").is_file()
        assert (res / "logme" / "bad" / f"{t}.json").is_file()
    assert (res / "ptm_model_bench" / "base_model_dataset" / "unseen_base_bad.dill").is_file()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_disk_full_while_saving_weights_leaves_nothing(tiny_run, tmp_path):
    wd = copy_run(tiny_run, tmp_path / "wd")
    out = wd / "results" / "finetune" / "tiny-bert" / "sst2"
    shutil.rmtree(out)
    out.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(out)], check=True)
    try:
        r = smk(wd, "results/finetune/tiny-bert/sst2/metrics.json", check=False)
        assert r.returncode != 0
        assert (r.stdout + r.stderr).count("Error in rule finetune_base") == 1  # no retry: it cannot help
        log = (wd / "logs" / "finetune_base" / "tiny-bert" / "sst2.log").read_text()
        assert "No space left on device" in log, log[-2000:]
        assert list(out.iterdir()) == [], list(out.iterdir())  # no metrics, no model, no temp dir
    finally:
        subprocess.run(["umount", str(out)], check=True)
