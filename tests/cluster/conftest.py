"""A real one-node SLURM cluster for the session: `scripts/slurm_local.py` installs the packages when missing, writes a
munge key and a slurm.conf into a temporary directory, starts munged, slurmctld and slurmd, and waits until sinfo
shows the node idle; at the end exactly those daemons are stopped, by PID. Skipped, with the reason, only where
SLURM cannot be installed (no root, no apt-get, no package mirror)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from script_module import load_script
from system_packages import one_apt_at_a_time


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `cluster` every test that uses the running cluster (`slurm_cluster`), wherever it stands: `make test-fast`
    leaves them out. The directory's other tests (SLURM requests parsed from canned `sinfo` output) need no cluster."""
    for item in items:
        if "slurm_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def slurm_local() -> ModuleType:
    """The cluster script as a module (start, stop, write_config, ...)."""
    return load_script("slurm_local")


@pytest.fixture(scope="session")
def slurm_cluster(slurm_local: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The running cluster's directory (slurm.conf, logs, state); SLURM_CONF points at it for the whole session, so
    every sinfo, sbatch and srun of the tests and of the commands they start talks to this cluster."""
    if slurm_local.missing_programs() and os.geteuid() != 0:
        pytest.skip(f"SLURM is not installed and installing it needs root: install {' '.join(slurm_local.PACKAGES)}")
    try:
        with one_apt_at_a_time():
            slurm_local.install_packages()
    except slurm_local.ClusterError as error:
        pytest.skip(str(error))
    if os.geteuid() != 0:
        pytest.skip("the one-node test cluster runs its daemons as root; run the cluster tests as root")
    root = tmp_path_factory.mktemp("slurm")
    pids = slurm_local.start(root)
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(root / "slurm.conf")
    try:
        yield root
    finally:
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous
        slurm_local.stop(root)
        alive = [name for name, pid in pids.items() if _running(pid)]
        assert not alive, f"daemons still running after stop: {alive}"
        left = slurm_local.job_processes(root / "slurm.conf")
        assert not left, f"job processes of the test cluster still running after stop: {sorted(left)}"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == 0
    except ChildProcessError:
        return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
