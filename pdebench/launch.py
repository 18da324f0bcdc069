"""What `hydra/launcher=slurm` and `hydra/launcher=slurm_cpu` add to Hydra's submitit SLURM launcher (through the
`SlurmChecks` callback those configs install), three things a user of a real cluster needs.

- Before anything is submitted, the request is checked against what `sinfo` says the partition has: GPUs asked on a
  partition without any, or more CPUs or memory per node than its largest node has, stop the sweep in one sentence
  naming the `hydra.launcher.*` value to change (instead of an `sbatch: error` inside a submitit traceback).
- Job states come from `sacct`; on a cluster without accounting, `sacct` fails on every poll and submitit logs a
  warning each time. Here the first failure is logged once and the jobs are followed through `squeue` instead.
- A job that fails on the cluster is reported as `SLURM job <id> failed: <its one-sentence error> (SLURM log:
  <path>)` and the sweep exits with status 1.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from submitit.slurm.slurm import SlurmInfoWatcher

from pdebench.errors import UserError

log = logging.getLogger(__name__)


class LaunchError(UserError, ValueError):
    """A SLURM request that cannot run; the message is one sentence naming the setting to change."""


@dataclass(frozen=True)
class Partition:
    """What `sinfo` reports for a partition: its largest node's CPUs, memory (MB) and GPUs."""

    name: str
    default: bool
    cpus: int
    memory_mb: int
    gpus: int


def gpu_count(gres: str) -> int:
    """GPUs per node in a `sinfo %G` field: `gpu:4`, `gpu:a100:4(S:0-1)`, `gpu:2,shard:8` -> 4, 4, 2; `(null)` -> 0."""
    total = 0
    for entry in gres.split(","):
        entry = entry.split("(", 1)[0].strip()
        if entry.startswith("gpu"):
            count = entry.rsplit(":", 1)[-1]
            total += int(count) if count.isdigit() else 1
    return total


def parse_sinfo(text: str) -> dict[str, Partition]:
    """Partitions from `sinfo -h -o %P|%c|%m|%G` output (one line per node configuration; the default partition's
    name carries a `*`), keeping each partition's largest node values."""
    partitions: dict[str, Partition] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.strip().split("|")
        if len(fields) != 4:
            raise LaunchError(f"sinfo printed a line this launcher cannot read: {line!r}")
        name, cpus, memory, gres = fields
        default = name.endswith("*")
        name = name.rstrip("*")
        values = Partition(name, default, int(cpus.rstrip("+")), int(memory.rstrip("+")), gpu_count(gres))
        seen = partitions.get(name)
        if seen is not None:
            values = Partition(name, default or seen.default, max(values.cpus, seen.cpus),
                               max(values.memory_mb, seen.memory_mb), max(values.gpus, seen.gpus))
        partitions[name] = values
    return partitions


def read_partitions() -> dict[str, Partition]:
    """The cluster's partitions, from `sinfo` (SLURM_CONF and the controller as for `sbatch`)."""
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%P|%c|%m|%G"], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise LaunchError("sinfo is not installed: the SLURM launchers need the SLURM client commands "
                          "(sinfo, sbatch) of the cluster on PATH") from None
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise LaunchError(f"sinfo could not reach the SLURM controller ({reason}): check SLURM_CONF and the cluster")
    return parse_sinfo(proc.stdout)


def _int(params: dict[str, Any], key: str, default: int = 0) -> int:
    value = params.get(key)
    return default if value is None else int(value)


def check_request(params: dict[str, Any], partitions: dict[str, Partition]) -> Partition:
    """The partition the launcher `params` go to, after checking that one of its nodes can hold one job's tasks.

    params: the resolved `hydra.launcher` settings (partition, gpus_per_node, gpus_per_task, tasks_per_node,
    cpus_per_task, mem_gb). Raises LaunchError naming the `hydra.launcher.*` value to change.
    """
    name = params.get("partition")
    if name is None:
        defaults = [p for p in partitions.values() if p.default]
        if not defaults:
            raise LaunchError(f"the cluster has no default partition: set hydra.launcher.partition to one of "
                              f"{sorted(partitions)}")
        partition = defaults[0]
    elif str(name) not in partitions:
        raise LaunchError(f"hydra.launcher.partition={name} is not a partition of this cluster: set it to one of "
                          f"{sorted(partitions)}")
    else:
        partition = partitions[str(name)]
    where = f"partition '{partition.name}'"
    tasks = max(_int(params, "tasks_per_node", 1), 1)
    gpus = max(_int(params, "gpus_per_node"), _int(params, "gpus_per_task") * tasks)
    if gpus > 0 and partition.gpus == 0:
        raise LaunchError(f"{where} has no GPUs but the job asks for {gpus} per node: set "
                          f"hydra.launcher.gpus_per_node=0 (or use hydra/launcher=slurm_cpu) or choose a GPU "
                          f"partition with hydra.launcher.partition")
    if gpus > partition.gpus:
        raise LaunchError(f"{where} has at most {partition.gpus} GPUs per node but the job asks for {gpus}: lower "
                          f"hydra.launcher.gpus_per_node (and the tasks per node) to at most {partition.gpus}")
    cpus = max(_int(params, "cpus_per_task", 1), 1) * tasks
    if cpus > partition.cpus:
        raise LaunchError(f"{where} has at most {partition.cpus} CPUs per node but the job asks for {cpus} "
                          f"({tasks} tasks x hydra.launcher.cpus_per_task={params.get('cpus_per_task')}): lower "
                          f"hydra.launcher.cpus_per_task to at most {max(partition.cpus // tasks, 1)}")
    mem_gb = params.get("mem_gb")
    if mem_gb is not None and float(mem_gb) * 1024 > partition.memory_mb:
        raise LaunchError(f"{where} has at most {partition.memory_mb} MB of memory per node but the job asks for "
                          f"hydra.launcher.mem_gb={mem_gb}: lower it to at most {partition.memory_mb // 1024}")
    return partition


def install_quiet_watcher() -> None:
    """Make submitit follow SLURM jobs through `squeue` once `sacct` fails (no accounting), with one log line."""
    from submitit.slurm import slurm

    if isinstance(slurm.SlurmJob.watcher, QueueWatcher):
        return
    watcher = QueueWatcher(delay_s=slurm.SlurmJob.watcher._delay_s)
    slurm.SlurmJob.watcher = watcher


class QueueWatcher(SlurmInfoWatcher):
    """submitit's `sacct` watcher that switches to `squeue` for good after `sacct` fails once.

    `squeue` lists only jobs still queued or running: a registered job it does not list has left the queue, and its
    outcome is read from the job's result file as usual.
    """

    sacct_available = True

    def update(self) -> None:
        if self.sacct_available:
            command = self._make_command()
            if command is None:
                return
            try:
                proc = subprocess.run(command, capture_output=True, text=True)
            except OSError as error:  # no sacct command at all
                proc = subprocess.CompletedProcess(command, 127, "", str(error))
            if proc.returncode == 0:
                self._num_calls += 1
                self._info_dict.update(self.read_info(proc.stdout))
                self._after_update()
                return
            reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            log.warning(f"sacct is unavailable ({reason}); following the jobs through squeue")
            self.sacct_available = False
        self._update_from_squeue()

    def _update_from_squeue(self) -> None:
        pending = self._registered - self._finished
        if not pending:
            return
        self._num_calls += 1
        arrays = sorted({job_id.split("_")[0] for job_id in pending})
        try:
            proc = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T", "-j", ",".join(arrays)], capture_output=True,
                                  text=True)
        except OSError:
            return  # no squeue either: the result files alone tell when the jobs are done
        if proc.returncode != 0 and "Invalid job id" not in proc.stderr:
            return  # the controller did not answer: keep the last states and ask again on the next poll
        listed = {}
        for line in proc.stdout.splitlines():
            job_id, _, state = line.strip().partition("|")
            listed[job_id] = state
        for job_id in pending:
            self._info_dict[job_id] = {"JobID": job_id, "State": listed.get(job_id, "FINISHED"), "NodeList": ""}
        self._after_update()

    def _after_update(self) -> None:
        self._last_status_check = time.time()
        for job_id in self._registered - self._finished:
            if self.is_done(job_id, mode="cache"):
                self._finished.add(job_id)


def job_failure(job: Any, error: BaseException) -> str:
    """The one-sentence error a failed job printed (its last `error: ...` line on stderr), else the last line of
    submitit's own report, and where its SLURM log is."""
    stderr = Path(job.paths.stderr)
    lines = stderr.read_text(errors="replace").splitlines() if stderr.is_file() else []
    errors = [line.split("error: ", 1)[1] for line in lines if line.startswith("error: ")]
    if errors:
        message = errors[-1]
    else:
        report = [line for line in str(error).splitlines() if line.strip() and not line.startswith("-")]
        message = report[-1].strip() if report else type(error).__name__
    return f"{message} (SLURM log: {stderr})"


def install_failure_report() -> None:
    """Make a failed SLURM job end the sweep with `error: SLURM job <id> failed: <its error> (SLURM log: <path>)`
    on stderr and exit status 1, instead of submitit's traceback."""
    from submitit.core.utils import UncompletedJobError
    from submitit.slurm import slurm

    original = slurm.SlurmJob.results
    if getattr(original, "reports_failures", False):
        return

    def results(job: Any) -> list[Any]:
        job._results_timeout_s = min(job._results_timeout_s, 5)  # left the queue without a result: it failed
        try:
            return original(job)
        except UncompletedJobError as error:
            print(f"error: SLURM job {job.job_id} failed: {job_failure(job, error)}", file=sys.stderr)
            raise SystemExit(1) from None

    results.reports_failures = True  # type: ignore[attr-defined]
    slurm.SlurmJob.results = results


class SlurmChecks(Callback):
    """Hydra callback of `hydra/launcher=slurm` and `slurm_cpu`: checks the request against `sinfo` before the
    sweep submits anything, and sets up the quiet `sacct` fallback and the failed-job report in this process."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        params = OmegaConf.to_container(config.hydra.launcher, resolve=True)
        assert isinstance(params, dict)
        try:
            partition = check_request(params, read_partitions())
        except LaunchError as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(1) from None
        log.info(f"SLURM sweep on partition '{partition.name}' ({partition.cpus} CPUs, {partition.memory_mb} MB, "
                 f"{partition.gpus} GPUs per node)")
        install_quiet_watcher()
        install_failure_report()
