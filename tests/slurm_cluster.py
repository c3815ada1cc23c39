"""A throw-away one-node Slurm on localhost for tests (Debian's slurm-wlm + munge, run as root).

    with one_node_slurm(tmp_dir) as env:      # env: os.environ + SLURM_CONF
        subprocess.run(["sbatch", ...], env=env)

State, spool, logs and pid files live in ``tmp_dir``; slurm.conf and gres.conf are written to
/etc/slurm (``srun`` inside batch jobs only finds the default location; an existing file is put back
afterwards). Settings and pitfalls: ../shared/SLURM-NOTES.md. No accounting database: use
``--slurm-status-command squeue`` (MinJobAge is long enough for it). The node declares 8 CPUs, 64 GB
and 2 GPUs whatever the machine has (``SlurmdParameters=config_overrides``, a count-only ``gpu``
GRES), so the workflow's real requests (mem_mb 16000, gpu=1) are accepted; nothing is enforced.
Teardown cancels every job and stops the daemons it started (munged only if it started it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

PACKAGES = "slurmctld slurmd slurm-client munge"
DAEMONS = ("munged", "slurmctld", "slurmd", "sinfo", "sbatch", "squeue", "scancel")


def unavailable_reason() -> str | None:
    """Why a one-node Slurm cannot be started here, or None."""
    if os.geteuid() != 0:
        return "a one-node Slurm needs root (slurmd runs jobs as root here)"
    missing = [d for d in DAEMONS if not (shutil.which(d) or Path("/usr/sbin", d).exists())]
    if missing:
        return (f"Slurm/munge binaries missing ({', '.join(missing)}); install with "
                f"`apt-get update && apt-get install -y --no-install-recommends {PACKAGES}`")
    if not Path("/etc/munge/munge.key").exists():
        return "no /etc/munge/munge.key (reinstall the munge package)"
    return None


def _sbin(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def _conf(root: Path, host: str) -> str:
    return f"""\
ClusterName=ptmtest
SlurmctldHost={host}(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation={root}/spool/ctld
SlurmdSpoolDir={root}/spool/d
SlurmctldPidFile={root}/run/slurmctld.pid
SlurmdPidFile={root}/run/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
SwitchType=switch/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
EnforcePartLimits=ALL
MinJobAge=600
SchedulerParameters=sched_interval=2
KillWait=5
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName={host} NodeAddr=127.0.0.1 CPUs=8 RealMemory=64000 Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop(pid: int | None, timeout: float = 15) -> None:
    if not _alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < end:
        time.sleep(0.2)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)


def _munge_running() -> bool:
    return subprocess.run(["munge", "-n"], capture_output=True).returncode == 0 if shutil.which("munge") else False


@contextlib.contextmanager
def one_node_slurm(root: Path, timeout: float = 60):
    root = Path(root)
    host = socket.gethostname().split(".")[0]
    for d in ("spool/ctld", "spool/d", "log", "run"):
        (root / d).mkdir(parents=True, exist_ok=True)
    etc = Path("/etc/slurm")
    etc.mkdir(parents=True, exist_ok=True)
    saved = {}
    for name in ("slurm.conf", "gres.conf"):
        if (etc / name).exists():
            saved[name] = (etc / name).read_bytes()
    conf = etc / "slurm.conf"
    conf.write_text(_conf(root, host))
    # two stand-in GPU "devices" (Slurm wants a device file per GPU; nothing opens them)
    (etc / "gres.conf").write_text(f"AutoDetect=off\nNodeName={host} Name=gpu File=/dev/null\n"
                                    f"NodeName={host} Name=gpu File=/dev/zero\n")
    env = {**os.environ, "SLURM_CONF": str(conf)}
    munge_pid_file = Path("/run/munge/munged.pid")
    started_munge = False
    try:
        if not _munge_running():
            Path("/run/munge").mkdir(parents=True, exist_ok=True)
            shutil.chown("/run/munge", "munge", "munge")
            subprocess.run(["runuser", "-u", "munge", "--", _sbin("munged")], check=True, timeout=30)
            started_munge = True
        subprocess.run([_sbin("slurmctld"), "-c", "-f", str(conf)], env=env, check=True, timeout=30)
        subprocess.run([_sbin("slurmd"), "-f", str(conf)], env=env, check=True, timeout=30)
        end = time.monotonic() + timeout
        state = ""
        while time.monotonic() < end:
            state = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True).stdout.strip()
            if state == "idle":
                break
            time.sleep(0.5)
        else:
            logs = "\n".join((root / "log" / f).read_text()[-2000:] for f in ("slurmctld.log", "slurmd.log")
                             if (root / "log" / f).exists())
            raise RuntimeError(f"one-node Slurm did not become idle in {timeout} s (state {state!r}):\n{logs}")
        yield env
    finally:
        subprocess.run(["scancel", "--full", "--user", "root"], env=env, capture_output=True, timeout=30)
        time.sleep(1)
        _stop(_pid(root / "run" / "slurmd.pid"))
        _stop(_pid(root / "run" / "slurmctld.pid"))
        if started_munge:
            _stop(_pid(munge_pid_file))
        for name in ("slurm.conf", "gres.conf"):
            if name in saved:
                (etc / name).write_bytes(saved[name])
            else:
                (etc / name).unlink(missing_ok=True)
