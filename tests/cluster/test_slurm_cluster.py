"""Generation, training sweeps, DDP training and distributed evaluation as real SLURM jobs on the one-node cluster of
`slurm_cluster`, through `hydra/launcher=slurm_cpu`; requests the cluster cannot hold stop before submission, and a
job that fails on the cluster is reported by its one-sentence error and its SLURM log."""

from __future__ import annotations

import filecmp
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import torch
import yaml
from cli import BIN

from pdebench.data.manifest import manifest_hash
from pdebench.data.schema import SPLITS
from pdebench.leaderboard import make_leaderboard
from pdebench.rollout.evaluation import evaluate_all

SLURM = ["-m", "hydra/launcher=slurm_cpu", "hydra.launcher.timeout_min=10"]
TINY_TRAIN = [
    "data=ks", "data.preset=tiny", "model=fno", "model.hidden_channels=8", "model.n_modes=[8]",
    "trainer.max_epochs=2", "trainer.limit_train_batches=3", "trainer.enable_progress_bar=false",
    "validation.rollout_steps=4", "validation.max_trajectories=2",
]
# Run record fields that say where and how fast an evaluation ran, not what it measured.
RUN_KEYS = ("throughput_traj_steps_per_s", "n_processes", "config", "git_commit", "frontier")


def run(command: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`pdebench-<command> args...` as a user runs it (SLURM_CONF of the session's cluster in the environment)."""
    env = {**os.environ, "MPLBACKEND": "Agg", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run([str(BIN / f"pdebench-{command}"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def queue_is_empty() -> bool:
    proc = subprocess.run(["squeue", "-h"], capture_output=True, text=True, check=True)
    return proc.stdout.strip() == ""


def test_sharded_generation_on_slurm_writes_the_files_of_a_local_run(slurm_cluster: Path, ks_tiny: Path,
                                                                     tmp_path: Path) -> None:
    """Two shard jobs side by side on the cluster, merged here: bitwise the session's locally generated ks-tiny."""
    root, sweep = tmp_path / "data", tmp_path / "sweep"
    ok(run("generate", *SLURM, "pde=ks", "preset=tiny", "batch_size=4", "device=cpu", "n_shards=2", "shard=0,1",
           f"root={root}", f"hydra.sweep.dir={sweep}", cwd=tmp_path))
    tasks = sorted(p.parent.name for p in sweep.glob(".submitit/*/*_result.pkl"))
    assert len(tasks) == 2 and re.fullmatch(r"(\d+)_0 \1_1", " ".join(tasks)), tasks  # one job array, 2 elements
    ok(run("generate", "pde=ks", "preset=tiny", "batch_size=4", "n_shards=2", "merge=true", f"root={root}",
           cwd=tmp_path))
    for split in SPLITS:
        assert filecmp.cmp(root / "ks-tiny" / f"{split}.h5", ks_tiny / f"{split}.h5", shallow=False), split
    assert manifest_hash(root / "ks-tiny") == manifest_hash(ks_tiny)


def test_train_sweep_on_slurm_then_the_leaderboard_of_its_folder(slurm_cluster: Path, compose_cfg, data_root: Path,
                                                                tmp_path: Path) -> None:
    """`seed=0,1` as two SLURM jobs: two complete run folders, evaluated in place, one leaderboard; without
    accounting, sacct's failure is logged once, not at every poll."""
    sweep = tmp_path / "sweep"
    out = ok(run("train", *SLURM, *TINY_TRAIN, "seed=0,1", f"data.root={data_root}", f"hydra.sweep.dir={sweep}",
                 cwd=tmp_path))
    assert out.count("sacct") == 1, out
    jobs = sorted(p.parent.parent for p in sweep.glob("*/checkpoints/best.ckpt"))
    assert [job.name for job in jobs] == ["0", "1"]
    seeds = {yaml.safe_load((job / ".hydra" / "config.yaml").read_text())["seed"] for job in jobs}
    assert seeds == {0, 1}
    for job in jobs:
        evaluate_all(compose_cfg("evaluate", [f"ckpt={job}/checkpoints/best.ckpt", f"results_dir={job}",
                                              f"data.root={data_root}", "rollout.bootstrap_resamples=10",
                                              "rollout.device=cpu"]))
    board = make_leaderboard(compose_cfg("leaderboard", [f"results=[{sweep}]", f"out_dir={tmp_path}/board",
                                                         "print=false"]))
    rows = [row for table in board.tables for row in table.rows]
    assert [(row["model"], row["seed_values"]) for row in rows] == [("fno", [0, 1])], rows  # one row, both seeds


def test_ddp_with_two_slurm_tasks_ends_where_one_process_does(slurm_cluster: Path, data_root: Path,
                                                              tmp_path: Path) -> None:
    """`trainer=ddp trainer.devices=2` as one SLURM job of 2 tasks (gloo, ranks from Lightning's SLURM environment),
    batch 4 per rank, against one local process with batch 8: the same weights after 6 AdamW steps (tolerance as in
    the local DDP test: float32 summation order only)."""
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    common = [*TINY_TRAIN, "seed=5", "label=ddp", f"data.root={data_root}"]
    ok(run("train", *common, "data.batch_size=8", f"run_dir={single}", cwd=tmp_path))
    out = ok(run("train", *SLURM, *common, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                 "trainer.precision=32-true", "data.batch_size=4", f"run_dir={ddp}",
                 f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path))
    logs = "".join(p.read_text() for p in (tmp_path / "sweep" / ".submitit").glob("*/*_log.*"))
    assert re.search(r"global_rank=1\(2\)", logs), "the job did not run as 2 SLURM tasks:\n" + logs + out
    a = torch.load(single / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    b = torch.load(ddp / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert a["global_step"] == b["global_step"] == 6
    for name, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][name], value, rtol=1e-4, atol=1e-6)


def test_evaluation_with_two_slurm_tasks_equals_one_process(slurm_cluster: Path, data_root: Path,
                                                            tmp_path: Path) -> None:
    """`pdebench-evaluate` as one SLURM job of 2 tasks (test trajectories sharded over the ranks, per-trajectory
    scores gathered on rank 0) writes the result file of a local 1-process run, up to the run record. The persistence
    baseline keeps this fast; a trained model's batch independence is the local distributed evaluation test's."""
    common = ["model=persistence", "data=ks", "data.preset=tiny", f"data.root={data_root}", "rollout.device=cpu",
              "rollout.bootstrap_resamples=50"]
    ok(run("evaluate", *common, f"results_dir={tmp_path / 'one'}", cwd=tmp_path))
    ok(run("evaluate", *SLURM, *common, "trainer=cpu", "trainer.devices=2", "trainer.strategy=ddp",
           f"results_dir={tmp_path / 'two'}", f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path))
    one, two = sorted((tmp_path / "one").rglob("*.json")), sorted((tmp_path / "two").rglob("*.json"))
    assert [p.name for p in one] == [p.name for p in two] and len(one) == 1
    a, b = (json.loads(p[0].read_text()) for p in (one, two))
    assert b["n_processes"] == 2 and a["n_processes"] == 1
    strip = lambda content: {k: v for k, v in content.items() if k not in RUN_KEYS}  # noqa: E731
    assert _close(strip(a), strip(b))


def _close(a: object, b: object) -> bool:
    """Equal structure and strings, numbers equal to 1e-6 (relative or absolute); NaN equals NaN."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return False
        return (a != a and b != b) or abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))
    return a == b


def test_a_job_failing_on_the_cluster_reports_its_error_and_slurm_log(slurm_cluster: Path, tmp_path: Path) -> None:
    """Training on a dataset that is not there: the sweep exits 1 with the job's one-sentence error and the path of
    its SLURM log (which holds the same sentence), not a submitit traceback."""
    sweep = tmp_path / "sweep"
    proc = run("train", *SLURM, *TINY_TRAIN, f"data.root={tmp_path / 'missing'}", f"hydra.sweep.dir={sweep}",
               cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = next((l for l in proc.stderr.splitlines() if l.startswith("error: SLURM job")), None)  # noqa: E741
    assert line is not None, proc.stderr
    assert str(tmp_path / "missing") in line and "Traceback" not in proc.stderr
    log_path = Path(re.search(r"\(SLURM log: (.+)\)$", line).group(1))
    assert log_path.is_file() and log_path.is_relative_to(sweep)
    assert str(tmp_path / "missing") in log_path.read_text()


@pytest.mark.parametrize(("override", "named"), [
    ("hydra.launcher.gpus_per_node=1", "hydra.launcher.gpus_per_node=0"),
    ("hydra.launcher.mem_gb=100000", "hydra.launcher.mem_gb"),
    ("hydra.launcher.cpus_per_task=512", "hydra.launcher.cpus_per_task"),
    ("hydra.launcher.partition=gpu", "hydra.launcher.partition"),
])
def test_a_request_the_partition_cannot_hold_stops_before_submission(slurm_cluster: Path, data_root: Path,
                                                                     tmp_path: Path, override: str,
                                                                     named: str) -> None:
    """Checked against this cluster's sinfo: one sentence naming the value to change, nothing submitted."""
    sweep = tmp_path / "sweep"
    proc = run("train", *SLURM, *TINY_TRAIN, override, f"data.root={data_root}", f"hydra.sweep.dir={sweep}",
               cwd=tmp_path)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and named in errors[0] and "Traceback" not in proc.stderr, proc.stderr
    assert not (sweep / ".submitit").exists() and queue_is_empty()


def test_the_gpu_launcher_defaults_stop_on_a_cpu_partition(slurm_cluster: Path, tmp_path: Path) -> None:
    """The reported case: `hydra/launcher=slurm` (1 GPU, 8 CPUs, 64 GB per node) on a CPU-only partition."""
    proc = run("generate", "-m", "hydra/launcher=slurm", "hydra.launcher.partition=debug", "pde=ks", "preset=tiny",
               f"root={tmp_path}", f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("error: partition 'debug' has no GPUs"), proc.stderr
