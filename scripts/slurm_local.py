"""A one-node SLURM cluster on this machine, for trying the SLURM launchers and for the cluster tests.

    python scripts/slurm_local.py start [--dir DIR]   # installs the packages when missing, starts the daemons
    python scripts/slurm_local.py stop [--dir DIR]    # stops exactly the daemons `start` started (by PID)

`start` writes a munge key and a `slurm.conf` (this machine's hostname, CPU count and memory, select/cons_tres,
proctrack/linuxproc, task/none, one partition `debug`) into DIR (default `.slurm-local`), starts `munged`,
`slurmctld` and `slurmd` with their state, logs and sockets in DIR, and waits until `sinfo` shows the node idle
(about 3 s). Every client command then needs `SLURM_CONF=DIR/slurm.conf`, which `start` prints as an `export` line.
Accounting is off (no slurmdbd), as on many small clusters: `sacct` is unavailable there.
Needs root (the daemons run as root) and Debian/Ubuntu's `slurmctld slurmd slurm-client munge` packages.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
DAEMONS = ("munged", "slurmctld", "slurmd")
PARTITION = "debug"
STATE_FILE = "daemons.json"


class ClusterError(RuntimeError):
    """The local cluster cannot be installed or started; the message says why in one sentence."""


def missing_programs() -> list[str]:
    """The daemon and client programs not on PATH (or in /usr/sbin)."""
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin" + os.pathsep + "/sbin"
    return [p for p in (*DAEMONS, "sinfo", "sbatch", "srun") if shutil.which(p, path=path) is None]


def install_packages() -> None:
    """`apt-get install` the SLURM and munge packages when any program is missing; ClusterError when that fails."""
    if not missing_programs():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ClusterError(f"SLURM is not installed and cannot be installed here (needs root and apt-get): "
                           f"install {' '.join(PACKAGES)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # another apt-get or an unattended upgrade may hold dpkg's lock: wait for it up to 5 minutes, not fail at once
    install = ["apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=300", *PACKAGES]
    for command in (install, ["apt-get", "update", "-q"], install):
        proc = subprocess.run(command, env=env, capture_output=True, text=True)
        if proc.returncode == 0 and command[1] == "install":
            break
    if missing_programs():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ClusterError(f"apt-get could not install {' '.join(PACKAGES)}: {tail[0]}")


def _program(name: str) -> str:
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin" + os.pathsep + "/sbin"
    found = shutil.which(name, path=path)
    if found is None:
        raise ClusterError(f"{name} is not installed (install {' '.join(PACKAGES)})")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def node_resources() -> tuple[int, int]:
    """(CPUs, memory in MB) this node offers: all CPUs, and the physical memory less 10% (slurmd drains a node
    configured with more memory than it has)."""
    kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal:"))
    return os.cpu_count() or 1, int(kib / 1024 * 0.9)


def write_config(root: Path) -> Path:
    """Munge key and slurm.conf for a one-node cluster with everything under `root`; returns the slurm.conf path."""
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("state", "spool", "log", "munge"):
        (root / sub).mkdir(exist_ok=True)
    os.chmod(root / "munge", 0o700)
    key = root / "munge" / "munge.key"
    if not key.exists():
        key.write_bytes(os.urandom(1024))
    os.chmod(key, 0o400)
    host = socket.gethostname().split(".")[0]
    cpus, memory_mb = node_resources()
    conf = root / "slurm.conf"
    conf.write_text("\n".join([
        "ClusterName=pdebench-local",
        f"SlurmctldHost={host}(127.0.0.1)",
        f"SlurmctldPort={_free_port()}",
        f"SlurmdPort={_free_port()}",
        "SlurmUser=root",
        "SlurmdUser=root",
        f"AuthInfo=socket={root / 'munge' / 'munge.socket'}",
        f"StateSaveLocation={root / 'state'}",
        f"SlurmdSpoolDir={root / 'spool'}",
        f"SlurmctldPidFile={root / 'slurmctld.pid'}",
        f"SlurmdPidFile={root / 'slurmd.pid'}",
        f"SlurmctldLogFile={root / 'log' / 'slurmctld.log'}",
        f"SlurmdLogFile={root / 'log' / 'slurmd.log'}",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "MpiDefault=none",
        "ReturnToService=2",
        "SlurmctldTimeout=30",
        "SlurmdTimeout=30",
        "MinJobAge=30",
        "KillWait=5",
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN",
        f"PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP",
        "",
    ]))
    return conf


def _wait_for(check, what: str, timeout_s: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    hint = f" (see {log})" if log is not None else ""
    raise ClusterError(f"{what} did not happen within {timeout_s:.0f} s{hint}")


def _node_state(env: dict[str, str]) -> str:
    proc = subprocess.run([_program("sinfo"), "-h", "-N", "-o", "%t"], env=env, capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def start(root: Path, timeout_s: float = 60.0) -> dict[str, int]:
    """Start munged, slurmctld and slurmd for the config under `root`; returns their PIDs (also saved in
    `root/daemons.json` for `stop`). Waits until `sinfo` reports the node idle."""
    install_packages()
    root = root.resolve()
    if (root / STATE_FILE).is_file():
        running = {k: v for k, v in json.loads((root / STATE_FILE).read_text()).items() if _alive(v)}
        if running:
            raise ClusterError(f"a cluster from {root} is already running ({running}): stop it first")
    conf = write_config(root)
    env = {**os.environ, "SLURM_CONF": str(conf)}
    pids: dict[str, int] = {}
    logs = root / "log"
    try:
        munge = root / "munge"
        subprocess.run([_program("munged"), "--force", f"--key-file={munge / 'munge.key'}",
                        f"--socket={munge / 'munge.socket'}", f"--pid-file={munge / 'munged.pid'}",
                        f"--log-file={logs / 'munged.log'}", f"--seed-file={munge / 'munged.seed'}"],
                       check=True, capture_output=True, text=True)
        _wait_for(lambda: (munge / "munged.pid").is_file() and (munge / "munge.socket").exists(), "munged start",
                  10, logs / "munged.log")
        pids["munged"] = int((munge / "munged.pid").read_text().split()[0])
        for daemon in ("slurmctld", "slurmd"):
            out = open(logs / f"{daemon}.out", "w")  # noqa: SIM115 (the daemon keeps it)
            proc = subprocess.Popen([_program(daemon), "-D", "-f", str(conf)], env=env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            pids[daemon] = proc.pid
            (root / STATE_FILE).write_text(json.dumps(pids))
            if daemon == "slurmctld":
                _wait_for(lambda: subprocess.run([_program("scontrol"), "ping"], env=env, capture_output=True,
                                                 text=True).stdout.count("UP") > 0, "slurmctld start", timeout_s,
                          logs / "slurmctld.log")
        _wait_for(lambda: _node_state(env) == "idle", "the node turning idle in sinfo", timeout_s,
                  logs / "slurmd.log")
    except BaseException:
        stop(root)
        raise
    (root / STATE_FILE).write_text(json.dumps(pids))
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a child of this process that exited stays a zombie until reaped
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def stop(root: Path, timeout_s: float = 15.0) -> list[str]:
    """Stop the daemons listed in `root/daemons.json` by PID (SIGTERM, then SIGKILL); returns their names."""
    state = root.resolve() / STATE_FILE
    if not state.is_file():
        return []
    pids: dict[str, int] = json.loads(state.read_text())
    conf = root.resolve() / "slurm.conf"
    _cancel_jobs(conf, timeout_s)
    for name in ("slurmd", "slurmctld", "munged"):
        pid = pids.get(name)
        if pid is None or not _alive(pid):
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    _kill_job_processes(conf)
    state.unlink()
    return [name for name in pids]


def _cancel_jobs(conf: Path, timeout_s: float) -> None:
    """Cancel every job of this cluster (it is ours alone) and wait until none is left, so no job step outlives it."""
    env = {**os.environ, "SLURM_CONF": str(conf)}
    scancel, squeue = shutil.which("scancel"), shutil.which("squeue")
    if scancel is None or squeue is None:
        return
    subprocess.run([scancel, "--full", "--quiet", "--partition", PARTITION], env=env, capture_output=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        proc = subprocess.run([squeue, "-h", "-o", "%i"], env=env, capture_output=True, text=True)
        if proc.returncode != 0 or not proc.stdout.strip():
            return
        time.sleep(0.2)


def job_processes(conf: Path) -> set[int]:
    """What is running of this cluster's jobs: every `slurmstepd` started with this cluster's `SLURM_CONF`, and all of
    their descendants (batch scripts, srun, tasks). Zombies are left out: they hold no resources."""
    wanted = f"SLURM_CONF={Path(conf).resolve()}".encode()
    parents: dict[int, int] = {}
    steps: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] == "Z":
                continue
            parents[int(entry.name)] = int(fields[1])
            if (entry / "comm").read_text().strip() == "slurmstepd" and \
                    wanted in (entry / "environ").read_bytes().split(b"\0"):
                steps.add(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    found, grew = set(steps), True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in found} - found
        found |= children
        grew = bool(children)
    return found


def _kill_job_processes(conf: Path) -> None:
    """SIGKILL what is left of this cluster's jobs once its daemons are gone (slurmstepd outlives slurmd by design, so
    a job that ignored its cancellation would otherwise keep running)."""
    for pid in job_processes(conf):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("--dir", type=Path, default=Path(".slurm-local"), help="config, state and logs")
    args = parser.parse_args(argv)
    try:
        if args.action == "start":
            pids = start(args.dir)
            print(f"SLURM cluster up (partition {PARTITION}; daemons {pids}); to use it:")
            print(f"export SLURM_CONF={(args.dir / 'slurm.conf').resolve()}")
        else:
            stopped = stop(args.dir)
            print(f"stopped {', '.join(stopped)}" if stopped else f"no cluster started from {args.dir}")
    except ClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
