"""Device slots: each GPU job gets its own device (K per GPU by size class), a killed job's slot is
free again at once, no GPU means no slot. GPUs are faked (PTMBENCH_FAKE_GPUS); jobs are real processes
holding real file locks, and every wait is on an event they report, never on a sleep."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from ptmbench.runtime import devices
from ptmbench.runtime.job import job

SRC = str(Path(__file__).resolve().parents[1] / "src")

# One GPU job: claims its slot through the job wrapper's own code path (devices.job_slot), reports
# "got <CUDA_VISIBLE_DEVICES> <PTMBENCH_DEVICE_SLOT>" (or "waiting") on stdout, holds the slot until
# its stdin closes.
CHILD = textwrap.dedent("""
    import json, logging, os, sys
    from types import SimpleNamespace
    from ptmbench.runtime import devices

    class Say(logging.Handler):
        def emit(self, record):
            if "all GPU slots are taken" in record.getMessage():
                print("waiting", flush=True)

    logging.getLogger("ptmbench").addHandler(Say())
    logging.getLogger("ptmbench").setLevel(logging.INFO)
    base, jobs_per_gpu = sys.argv[1], json.loads(sys.argv[2])
    smk = SimpleNamespace(resources={"gpu": 1}, wildcards={"base": base, "task": "sst2"},
                          config={"devices": {"jobs_per_gpu": jobs_per_gpu}})
    with devices.job_slot(smk):
        print("got", os.environ["CUDA_VISIBLE_DEVICES"], os.environ["PTMBENCH_DEVICE_SLOT"], flush=True)
        sys.stdin.read()
""")


class Job:
    def __init__(self, workdir: Path, gpus: int, base: str = "bert-base", jobs_per_gpu=None):
        env = {**os.environ, "PYTHONPATH": SRC, devices.FAKE_ENV: str(gpus), "PTMBENCH_SLOT_POLL_S": "0.05"}
        env.pop(devices.DIR_ENV, None)
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, base, json.dumps(jobs_per_gpu or {})],
                                     cwd=workdir, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)

    def line(self, timeout: float = 120) -> str:
        """The job's next report (waits for the event; the timeout only stops a hung test)."""
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise AssertionError(f"job {self.proc.pid} reported nothing in {timeout} s")
        return self.proc.stdout.readline().strip()

    def device(self) -> str:
        msg = self.line()
        assert msg.startswith("got "), msg
        return msg.split()[1]

    def finish(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(60)

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(60)


@pytest.fixture
def jobs(tmp_path):
    started = []

    def start(*args, **kw):
        started.append(Job(tmp_path, *args, **kw))
        return started[-1]

    yield start
    for j in started:
        if j.proc.poll() is None:
            j.kill()


def test_concurrent_jobs_get_distinct_devices_and_a_killed_jobs_slot_is_reclaimed(jobs, tmp_path):
    holders = [jobs(3) for _ in range(3)]
    got = [j.device() for j in holders]
    assert sorted(got) == ["0", "1", "2"]  # one job per GPU
    fourth = jobs(3)
    assert fourth.line() == "waiting"  # every slot is held: it waits, it does not share a GPU
    victim = holders[1]
    victim.kill()  # SIGKILL: no cleanup runs; the kernel drops the lock
    assert fourth.device() == got[1]
    assert list((tmp_path / ".snakemake" / "ptmbench-slots").iterdir())  # under the working directory
    for j in (*holders, fourth):
        j.finish()


def test_k_jobs_per_gpu_exactly_k_per_device(jobs):
    k = {"base": 2, "large": 1}
    holders = [jobs(2, jobs_per_gpu=k) for _ in range(4)]
    got = [j.device() for j in holders]
    assert sorted(got) == ["0", "0", "1", "1"]
    fifth = jobs(2, jobs_per_gpu=k)
    assert fifth.line() == "waiting"
    holders[0].finish()  # a normal end frees the slot too
    assert fifth.device() == got[0]


def test_a_large_job_gets_a_device_to_itself(jobs):
    k = {"base": 2, "large": 1}
    small = jobs(2, jobs_per_gpu=k)
    first = small.device()
    large = jobs(2, base="bert-large", jobs_per_gpu=k)
    assert large.device() != first  # the free device, whole
    other = jobs(2, jobs_per_gpu=k)
    assert other.device() == first  # the second base job shares with the first, not with the large one
    blocked = jobs(2, base="bert-large", jobs_per_gpu=k)
    assert blocked.line() == "waiting"
    small.kill()  # `other` still holds half of `first`: the large job needs all of it
    other.kill()
    assert blocked.device() == first


def test_no_gpu_no_slot(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {devices.FAKE_ENV: "0"}
    smk = SimpleNamespace(resources={"gpu": 1}, wildcards={"base": "b"}, config={})
    with devices.job_slot(smk, env=env) as slot:
        assert slot is None and "CUDA_VISIBLE_DEVICES" not in env
    cpu_rule = SimpleNamespace(resources={"mem_mb": 100}, wildcards={}, config={})
    with devices.job_slot(cpu_rule, env={devices.FAKE_ENV: "2"}) as slot:
        assert slot is None
    assert not (tmp_path / ".snakemake").exists()


def test_a_gres_gpu_job_claims_a_slot_of_the_gpu_slurm_shows(tmp_path, monkeypatch):
    """The Slurm profile asks for the GPU as gres "gpu:1" with gpu 0; inside the allocation (Slurm set
    CUDA_VISIBLE_DEVICES) such jobs claim slots of that one GPU, devices.jobs_per_gpu of them at once."""
    monkeypatch.chdir(tmp_path)
    assert devices.wants_gpu({"gpu": 0, "gres": "gpu:1"}) and devices.wants_gpu({"gres": "gpu:a100:1"})
    assert not devices.wants_gpu({"gpu": 0, "gres": ""}) and not devices.wants_gpu({"gres": "tmpfs:10G"})
    assert not devices.wants_gpu(None)
    env = {"CUDA_VISIBLE_DEVICES": "1", "SLURM_JOB_ID": "42"}
    config = {"devices": {"jobs_per_gpu": {"base": 2}}}
    job = SimpleNamespace(resources={"gpu": 0, "gres": "gpu:1"}, wildcards={"base": "b"}, config=config)
    with devices.job_slot(job, env=env) as a, devices.job_slot(job, env=dict(env)) as b:
        assert (a.device, a.units, b.device, b.units) == ("1", (0,), "1", (1,))  # both at once, one GPU
        assert not devices.try_acquire(["1"], 1, 2, devices.slot_dir(env))  # a third would wait


@pytest.mark.parametrize(("env", "expected"), [
    ({devices.FAKE_ENV: "3"}, ["0", "1", "2"]),
    ({devices.FAKE_ENV: "0", "CUDA_VISIBLE_DEVICES": "0,1"}, []),
    ({"CUDA_VISIBLE_DEVICES": "2,3"}, ["2", "3"]),
    ({"CUDA_VISIBLE_DEVICES": "GPU-8f3a,GPU-11bc"}, ["GPU-8f3a", "GPU-11bc"]),
    ({"CUDA_VISIBLE_DEVICES": ""}, []),
    ({"CUDA_VISIBLE_DEVICES": "-1"}, []),
    ({"CUDA_VISIBLE_DEVICES": "1,-1,0"}, ["1"]),  # CUDA stops at the first invalid entry
])
def test_visible_devices(env, expected):
    assert devices.visible_devices(env) == expected


def test_bad_fake_count_names_the_variable():
    with pytest.raises(ValueError, match="PTMBENCH_FAKE_GPUS='two'"):
        devices.visible_devices({devices.FAKE_ENV: "two"})


def test_jobs_per_gpu_by_size_class_and_powers_of_two():
    cfg = {"devices": {"jobs_per_gpu": {"base": 4, "large": 1}}}
    assert devices.jobs_per_gpu(cfg, "roberta-base") == 4
    assert devices.jobs_per_gpu(cfg, "roberta-large") == 1
    assert devices.capacity(cfg) == 4
    assert devices.jobs_per_gpu({}, "x") == 1 and devices.capacity({}) == 1
    with pytest.raises(ValueError, match="3 is not a power of two"):
        devices.capacity({"devices": {"jobs_per_gpu": {"base": 3}}})


def test_slot_folder_is_per_host_and_per_slurm_job():
    assert devices.slot_dir({}).parent == devices.SLOT_ROOT
    assert devices.slot_dir({"SLURM_JOB_ID": "77"}).name.endswith("-slurm77")
    assert devices.slot_dir({devices.DIR_ENV: "/scratch/slots"}) == Path("/scratch/slots")


def test_peak_flops_table():
    assert devices.peak_bf16_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert devices.peak_bf16_flops("NVIDIA H100 PCIe") == 756e12
    assert devices.peak_bf16_flops("NVIDIA A100-SXM4-80GB") == 312e12
    assert devices.peak_bf16_flops("NVIDIA H200") == 989e12
    assert devices.peak_bf16_flops("Tesla T4") is None


def test_job_wrapper_claims_the_slot_for_the_body_only(tmp_path, monkeypatch):
    """The job wrapper: the body sees one GPU and the slot is logged; after it the environment is restored."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(devices.FAKE_ENV, "2")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    log = tmp_path / "job.log"
    smk = SimpleNamespace(config={"devices": {"jobs_per_gpu": {"base": 1, "large": 1}}}, log=[str(log)],
                          rule="finetune_base", wildcards={"base": "tiny-bert", "task": "sst2"}, threads=1,
                          output=[], input=[], resources={"gpu": 1})
    with job(smk):
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"
        assert os.environ[devices.SLOT_ENV] == "0:0/1"
        # a second job meanwhile takes the other device
        other = SimpleNamespace(**{**vars(smk), "log": []})
        with devices.job_slot(other) as slot:
            assert slot.device == "1"
    assert "CUDA_VISIBLE_DEVICES" not in os.environ and devices.SLOT_ENV not in os.environ
    assert "device slot: GPU 0 (device 1 of 2" in log.read_text()
