"""The pre-submission check of `hydra/launcher=slurm` / `slurm_cpu` against `sinfo` output written by hand: GPUs on a
CPU partition, more CPUs or memory per node than the largest node, unknown partitions; each one sentence naming the
`hydra.launcher.*` value to change. No cluster needed."""

from __future__ import annotations

import pytest

from pdebench.launch import LaunchError, Partition, check_request, gpu_count, parse_sinfo

# Two node configurations in `gpu` (the larger has 64 CPUs, 512000 MB, 4 GPUs), one in the default `cpu`.
SINFO = "cpu*|32|192000|(null)\ngpu|48|256000|gpu:a100:2(S:0)\ngpu|64|512000|gpu:4,shard:8\n"
CPU_JOB = {"partition": None, "gpus_per_node": 0, "tasks_per_node": 1, "cpus_per_task": 1, "mem_gb": 2}


@pytest.mark.parametrize(("gres", "count"), [("(null)", 0), ("gpu:4", 4), ("gpu:a100:2(S:0-1)", 2),
                                             ("gpu:2,shard:8", 2), ("shard:8", 0), ("gpu:a100:2,gpu:v100:1", 3)])
def test_gpu_count_reads_sinfo_gres(gres: str, count: int) -> None:
    assert gpu_count(gres) == count


def test_parse_sinfo_keeps_the_largest_node_and_the_default_partition() -> None:
    assert parse_sinfo(SINFO) == {"cpu": Partition("cpu", True, 32, 192000, 0),
                                  "gpu": Partition("gpu", False, 64, 512000, 4)}


def test_unreadable_sinfo_output_is_named() -> None:
    with pytest.raises(LaunchError, match="sinfo printed a line"):
        parse_sinfo("debug* 2 1000\n")


def test_requests_that_fit_go_to_their_partition() -> None:
    partitions = parse_sinfo(SINFO)
    assert check_request(CPU_JOB, partitions).name == "cpu"  # the default partition
    gpu_job = {**CPU_JOB, "partition": "gpu", "gpus_per_node": 4, "tasks_per_node": 4, "cpus_per_task": 16,
               "mem_gb": 500}
    assert check_request(gpu_job, partitions).name == "gpu"


@pytest.mark.parametrize(("change", "message"), [
    ({"gpus_per_node": 1}, "partition 'cpu' has no GPUs but the job asks for 1 per node: set "
                           "hydra.launcher.gpus_per_node=0"),
    ({"gpus_per_task": 1, "tasks_per_node": 2}, "partition 'cpu' has no GPUs but the job asks for 2 per node"),
    ({"partition": "gpu", "gpus_per_node": 8}, "partition 'gpu' has at most 4 GPUs per node but the job asks for 8"),
    ({"cpus_per_task": 64}, "at most 32 CPUs per node but the job asks for 64 (1 tasks x "
                            "hydra.launcher.cpus_per_task=64): lower hydra.launcher.cpus_per_task to at most 32"),
    ({"tasks_per_node": 4, "cpus_per_task": 10}, "lower hydra.launcher.cpus_per_task to at most 8"),
    ({"mem_gb": 188}, "partition 'cpu' has at most 192000 MB of memory per node but the job asks for "
                      "hydra.launcher.mem_gb=188: lower it to at most 187"),
    ({"partition": "debug"}, "hydra.launcher.partition=debug is not a partition of this cluster: set it to one of "
                             "['cpu', 'gpu']"),
])
def test_requests_no_node_can_hold_name_the_value_to_change(change: dict, message: str) -> None:
    with pytest.raises(LaunchError) as raised:
        check_request({**CPU_JOB, **change}, parse_sinfo(SINFO))
    assert message in str(raised.value)
    assert str(raised.value).count(". ") == 0  # one sentence


def test_no_default_partition_asks_for_one() -> None:
    with pytest.raises(LaunchError, match=r"no default partition: set hydra.launcher.partition to one of \['gpu'\]"):
        check_request(CPU_JOB, parse_sinfo("gpu|64|512000|gpu:4\n"))


def test_a_machine_without_slurm_commands_is_told_so(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from pdebench.launch import read_partitions

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LaunchError, match="sinfo is not installed: the SLURM launchers need the SLURM client"):
        read_partitions()


def test_without_sacct_the_watcher_warns_once_and_follows_squeue(monkeypatch: pytest.MonkeyPatch, tmp_path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """A failing `sacct` (accounting disabled) is logged once over many polls; states then come from `squeue`, and a
    job it no longer lists has left the queue (done)."""
    import logging

    from pdebench.launch import QueueWatcher

    (tmp_path / "sacct").write_text("#!/bin/sh\necho 'Slurm accounting storage is disabled' >&2\nexit 1\n")
    (tmp_path / "squeue").write_text("#!/bin/sh\necho '7_0|RUNNING'\n")
    for tool in ("sacct", "squeue"):
        (tmp_path / tool).chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    watcher = QueueWatcher(delay_s=60)
    for job_id in ("7_0", "7_1"):
        watcher.register_job(job_id)
    with caplog.at_level(logging.WARNING, logger="pdebench.launch"):
        for _ in range(5):
            watcher.update()
    assert [r.getMessage() for r in caplog.records] == [
        "sacct is unavailable (Slurm accounting storage is disabled); following the jobs through squeue"]
    assert watcher.get_state("7_0", mode="cache") == "RUNNING" and not watcher.is_done("7_0", mode="cache")
    assert watcher.is_done("7_1", mode="cache")
