"""GPU device slots: which GPU a job runs on, and how many jobs share one.

A GPU job (a rule that declares ``gpu=1``: finetune_base, finetune_merged, finetune_seed, logme; or
a job given ``gres: gpu:1`` and ``gpu: 0``, see :func:`wants_gpu`) claims a *slot*
when it starts, inside the job wrapper :func:`ptmbench.runtime.job.job`, and holds it for its whole
life. A slot is an exclusive ``fcntl.flock`` on a small file under ``.snakemake/ptmbench-slots/``
of the working directory: the kernel drops the lock when the process ends, however it ends
(exit, exception, SIGKILL, the OOM killer), so a dead job's slot is free again at once and nothing
has to be cleaned up. The job then exports ``CUDA_VISIBLE_DEVICES=<its device>`` before torch
initialises CUDA, so it sees exactly one GPU, as ``cuda:0``.

Devices are the visible GPUs: ``CUDA_VISIBLE_DEVICES`` when it is set (by Slurm, or by you), else
the GPUs ``nvidia-smi -L`` lists; torch is never imported for this. ``PTMBENCH_FAKE_GPUS=N``
pretends N GPUs exist (tests, and trying the slots out on a CPU machine). No GPU: no slot, the job
runs on the CPU as before.

Several jobs per GPU (``devices.jobs_per_gpu`` in the config, per size class): every device has
``C`` = the largest K of the config lock files ("units"); a job whose size class allows K jobs per
GPU takes ``C / K`` units of ONE device (K is a power of two, so that divides). With ``base: 4,
large: 1`` a GPU runs at most four base-size jobs, or one large job, never more. A job takes the
device with the most free units (so N jobs on N GPUs get one each); when no device has room it
logs that it waits and checks again every :data:`POLL_S` seconds.

The slot files live under a folder named after the host (and the Slurm job, when there is one), so
jobs on different nodes sharing the working directory over a network file system never compete
for each other's GPUs. ``PTMBENCH_SLOT_DIR`` overrides the folder (for example a local disk).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ptmbench.core.naming import is_large
from ptmbench.core.paths import Zoo

log = logging.getLogger("ptmbench.runtime.devices")

FAKE_ENV = "PTMBENCH_FAKE_GPUS"  # pretend this many GPUs exist (tests, CPU machines)
DIR_ENV = "PTMBENCH_SLOT_DIR"  # where the slot files go (default .snakemake/ptmbench-slots/<host>)
SLOT_ENV = "PTMBENCH_DEVICE_SLOT"  # set for the job's life: "<device>:<units>/<capacity>"
SLOT_ROOT = Path(".snakemake") / "ptmbench-slots"
POLL_S = 2.0  # while every slot is taken, look again this often (PTMBENCH_SLOT_POLL_S overrides)
DEFAULT_JOBS_PER_GPU = {"base": 1, "large": 1}

# Dense bf16 tensor-core peaks (FLOP/s) of the GPUs we plan and measure on: the ONE table (model
# FLOP utilisation in bench/gpu_check.py; the planner's floor). Matched against the CUDA device
# name, most specific key first.
PEAK_BF16_FLOPS = {
    "A100": 312e12,
    "H100 PCIe": 756e12,
    "H100": 989e12,  # SXM
    "H200": 989e12,
}


def peak_bf16_flops(device_name: str) -> float | None:
    """The bf16 peak of a GPU from its CUDA name (``"NVIDIA H100 80GB HBM3"`` -> 989e12); None if unknown."""
    for key in sorted(PEAK_BF16_FLOPS, key=len, reverse=True):
        if key.lower() in device_name.lower():
            return PEAK_BF16_FLOPS[key]
    return None


def visible_devices(env=None) -> list[str]:
    """The GPUs a job may use, as ``CUDA_VISIBLE_DEVICES`` entries (indices or UUIDs).

    ``PTMBENCH_FAKE_GPUS=N`` -> ``["0", ..., "N-1"]``; else ``CUDA_VISIBLE_DEVICES`` if set (like
    CUDA, the list ends at the first entry starting with ``-``, so ``-1`` or ``""`` mean none);
    else one entry per GPU that ``nvidia-smi -L`` lists; else (no nvidia-smi) torch's device count if
    torch is already imported. No GPU -> ``[]``.
    """
    env = os.environ if env is None else env
    fake = env.get(FAKE_ENV)
    if fake not in (None, ""):
        try:
            n = int(fake)
        except ValueError:
            n = -1
        if n < 0:
            raise ValueError(f"{FAKE_ENV}={fake!r}: give a number of GPUs >= 0")
        return [str(i) for i in range(n)]
    cvd = env.get("CUDA_VISIBLE_DEVICES")
    if cvd is not None:
        out = []
        for entry in (e.strip() for e in cvd.split(",")):
            if not entry or entry.startswith("-"):
                break
            out.append(entry)
        return out
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30, check=False).stdout
        except (OSError, subprocess.SubprocessError):
            listing = ""
        return [str(i) for i, _ in enumerate(ln for ln in listing.splitlines() if ln.startswith("GPU "))]
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return [str(i) for i in range(torch.cuda.device_count())]
    return []


def jobs_per_gpu(config: dict, base: str) -> int:
    """K of a job on base model ``base``: ``devices.jobs_per_gpu.large`` for 'large' models, else ``.base``."""
    table = {**DEFAULT_JOBS_PER_GPU, **((config.get("devices") or {}).get("jobs_per_gpu") or {})}
    return int(table["large" if is_large(base) else "base"])


def capacity(config: dict) -> int:
    """Units per device: the largest K of the config (every K is a power of two and divides it)."""
    table = {**DEFAULT_JOBS_PER_GPU, **((config.get("devices") or {}).get("jobs_per_gpu") or {})}
    ks = [int(k) for k in table.values()]
    for k in ks:
        if k < 1 or k & (k - 1):
            raise ValueError(f"devices.jobs_per_gpu: {k} is not a power of two (1, 2, 4, 8, 16)")
    return max(ks)


def slot_dir(env=None) -> Path:
    """The folder of this node's slot files: ``PTMBENCH_SLOT_DIR``, else
    ``.snakemake/ptmbench-slots/<host>[-slurm<job id>]`` in the working directory."""
    env = os.environ if env is None else env
    if env.get(DIR_ENV):
        return Path(env[DIR_ENV])
    scope = platform.node() or "localhost"
    if env.get("SLURM_JOB_ID"):  # two allocations on one node both see their GPU as "0"
        scope += f"-slurm{env['SLURM_JOB_ID']}"
    return SLOT_ROOT / _safe(scope)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


@dataclass
class Slot:
    """A claimed share of one device, held until :meth:`release` (or the process ends)."""

    device: str  # the CUDA_VISIBLE_DEVICES entry of the device
    index: int  # its position among the visible devices
    units: tuple[int, ...]  # the unit files held
    capacity: int  # units per device
    waited_s: float = 0.0
    _fds: list[int] = field(default_factory=list, repr=False)

    @property
    def jobs_per_gpu(self) -> int:
        return self.capacity // len(self.units)

    def describe(self) -> str:
        return f"{self.device}:{','.join(map(str, self.units))}/{self.capacity}"

    def release(self) -> None:
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()


def _unit_file(folder: Path, device: str, unit: int) -> Path:
    return folder / f"gpu-{_safe(device)}.{unit}.lock"


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def try_acquire(devices: list[str], units: int, capacity: int, folder: Path) -> Slot | None:
    """One look: ``units`` free units of the device with the most free units, or None if no device has
    that many free. A short blocking lock on ``scan.lock`` makes concurrent looks take turns."""
    if not 1 <= units <= capacity:
        raise ValueError(f"a job takes 1 to {capacity} units of a device, not {units}")
    folder.mkdir(parents=True, exist_ok=True)
    scan = os.open(folder / "scan.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(scan, fcntl.LOCK_EX)
        free: list[list[tuple[int, int]]] = []
        for dev in devices:
            got = []
            for u in range(capacity):
                fd = _try_lock(_unit_file(folder, dev, u))
                if fd is not None:
                    got.append((u, fd))
            free.append(got)
        best = max(range(len(devices)), key=lambda i: (len(free[i]), -i), default=None)
        chosen = None
        if best is not None and len(free[best]) >= units:
            keep = free[best][:units]
            chosen = Slot(devices[best], best, tuple(u for u, _ in keep), capacity, _fds=[fd for _, fd in keep])
        for i, got in enumerate(free):
            for u, fd in got:
                if chosen is None or i != best or u not in chosen.units:
                    os.close(fd)
        if chosen is not None:  # for people looking at the folder: who holds it
            with contextlib.suppress(OSError):
                os.ftruncate(chosen._fds[0], 0)
                os.pwrite(chosen._fds[0], f"pid {os.getpid()}\n".encode(), 0)
        return chosen
    finally:
        os.close(scan)  # releases the scan lock


def acquire(devices: list[str], units: int, capacity: int, folder: Path, poll_s: float = POLL_S,
            on_wait=None) -> Slot:
    """Wait until :func:`try_acquire` succeeds; ``on_wait()`` is called once, when the first look fails."""
    start = time.monotonic()
    waited = False
    while True:
        slot = try_acquire(devices, units, capacity, folder)
        if slot is not None:
            slot.waited_s = time.monotonic() - start
            return slot
        if not waited:
            waited = True
            if on_wait is not None:
                on_wait()
        time.sleep(poll_s)


def wants_gpu(resources) -> bool:
    """Whether a job's resources ask for a GPU: a counted ``gpu`` >= 1 (the rules, a local run), or a
    ``gres`` string naming one (``gpu:1``, ``gpu:a100:1``: a profile asking Slurm for it by gres)."""
    def get(name, default):
        return resources.get(name, default) if hasattr(resources, "get") else getattr(resources, name, default)

    if resources is None:
        return False
    if int(get("gpu", 0) or 0) >= 1:
        return True
    return any(part.strip().startswith("gpu") for part in str(get("gres", "") or "").split(","))


def _job_base(smk) -> str:
    wc = dict(smk.wildcards.items())
    if "base" in wc:
        return wc["base"]
    if "ptm" in wc:
        return Zoo.from_config(smk.config).base_of(wc["ptm"])
    return ""


@contextlib.contextmanager
def job_slot(smk, env=None):
    """The device slot of a Snakemake job, for the job's life (used by :func:`ptmbench.runtime.job.job`).

    Jobs that ask for no GPU (:func:`wants_gpu`), and jobs on machines without a GPU, get no slot (yield
    None, run as before). Otherwise: claim a slot, export ``CUDA_VISIBLE_DEVICES`` and
    ``PTMBENCH_DEVICE_SLOT`` for the job, log the device, and release it all at the end.
    """
    env = os.environ if env is None else env
    if not wants_gpu(getattr(smk, "resources", None)):
        yield None
        return
    devices = visible_devices(env)
    if not devices:
        log.info("no GPU visible: running on the CPU")
        yield None
        return
    config = getattr(smk, "config", None) or {}
    cap = capacity(config)
    k = jobs_per_gpu(config, _job_base(smk))
    folder = slot_dir(env)

    def waiting():
        log.info("all GPU slots are taken (%d device(s) %s, %d job(s) per GPU for this size class, "
                 "slot files in %s): waiting for a job to finish", len(devices), ",".join(devices), k, folder)

    slot = acquire(devices, cap // k, cap, folder, poll_s=float(env.get("PTMBENCH_SLOT_POLL_S") or POLL_S),
                   on_wait=waiting)
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        log.warning("CUDA was initialised before the device slot was claimed: CUDA_VISIBLE_DEVICES=%s "
                    "may not take effect", slot.device)
    old = {name: env.get(name) for name in ("CUDA_VISIBLE_DEVICES", SLOT_ENV)}
    env["CUDA_VISIBLE_DEVICES"] = slot.device
    env[SLOT_ENV] = slot.describe()
    log.info("device slot: GPU %s (device %d of %d, units %s of %d: %d job(s) per GPU)%s", slot.device,
             slot.index + 1, len(devices), ",".join(map(str, slot.units)), cap, k,
             f", after waiting {slot.waited_s:.1f} s" if slot.waited_s >= 0.5 else "")
    try:
        yield slot
    finally:
        slot.release()
        for name, value in old.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
