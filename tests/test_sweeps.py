"""Sweeps: `pdebench-train -m` with the basic launcher, submitit jobs, the SLURM launcher's config, an Optuna search;
each job's folder holds what the leaderboard needs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pdebench.cli import train as train_cli
from pdebench.leaderboard import make_leaderboard
from pdebench.rollout.evaluation import evaluate_all

TINY = [
    "data=ks", "data.preset=tiny", "data.batch_size=8", "model.hidden_channels=8", "trainer=debug",
    "trainer.limit_train_batches=2", "trainer.enable_progress_bar=false", "validation.rollout_steps=4",
    "validation.max_trajectories=2",
]


def _run_main(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    """`pdebench-train args...` in this process (Hydra parses sys.argv)."""
    monkeypatch.setattr(sys, "argv", ["pdebench-train", *args])
    monkeypatch.setenv("MPLBACKEND", "Agg")
    train_cli.main()


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MPLBACKEND": "Agg", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run([sys.executable, "-m", "pdebench.cli.train", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def _job_dirs(sweep: Path) -> list[Path]:
    return sorted(p.parent.parent for p in sweep.glob("*/checkpoints/best.ckpt"))


@pytest.mark.slow
def test_basic_launcher_sweep_gives_each_job_a_complete_run_folder(monkeypatch: pytest.MonkeyPatch, compose_cfg,
                                                                   data_root: Path, tmp_path: Path) -> None:
    """`-m model=fno,unet seed=0,1`: four run folders with config, checkpoints and metrics; evaluated into their own
    folders, the sweep folder is a leaderboard's input."""
    sweep = tmp_path / "multirun"
    _run_main(monkeypatch, ["-m", *TINY, "model=fno,unet", "seed=0,1", f"data.root={data_root}",
                            f"hydra.sweep.dir={sweep}"])
    jobs = _job_dirs(sweep)
    assert len(jobs) == 4
    seen = set()
    for job in jobs:
        config = yaml.safe_load((job / ".hydra" / "config.yaml").read_text())
        seen.add((config["model"]["name"], config["seed"]))
        assert (job / "checkpoints" / "last.ckpt").is_file()
        assert "val/selection" in (job / "logs" / "version_0" / "metrics.csv").read_text()
    assert seen == {("fno", 0), ("fno", 1), ("unet", 0), ("unet", 1)}
    for job in jobs[::2]:
        written = evaluate_all(compose_cfg("evaluate", [f"ckpt={job}/checkpoints/best.ckpt", f"results_dir={job}",
                                                        f"data.root={data_root}", "rollout.bootstrap_resamples=10",
                                                        "rollout.device=cpu"]))
        assert len(written) == 1 and written[0].path.is_relative_to(job)
    board = make_leaderboard(compose_cfg("leaderboard", [f"results=[{sweep}]", f"out_dir={tmp_path}/board",
                                                         "print=false"]))
    table = "\n".join(board.markdown.values())
    assert "fno" in table and "unet" in table


@pytest.mark.slow
@pytest.mark.subprocess
def test_submitit_local_launcher_runs_the_sweep_as_jobs(data_root: Path, tmp_path: Path) -> None:
    sweep = tmp_path / "multirun"
    proc = _cli(["-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10", *TINY, "model=fno",
                 "model.n_modes=[8]", "seed=0,1", f"data.root={data_root}", f"hydra.sweep.dir={sweep}"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(_job_dirs(sweep)) == 2
    assert list((sweep / ".submitit").glob("*/*_result.pkl")), "no submitit job results"


@pytest.mark.slow
@pytest.mark.subprocess
def test_slurm_launcher_holds_resources_as_config(tmp_path: Path) -> None:
    """`--cfg hydra` shows the submission settings; resolved, tasks and GPUs per node follow trainer.devices and the
    node count trainer.num_nodes (one SLURM task per device, as Lightning's SLURM environment expects)."""
    common = ["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "trainer=ddp", "trainer.devices=4",
              "trainer.num_nodes=2"]
    proc = _cli([*common, "--cfg", "hydra"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    launcher = yaml.safe_load(proc.stdout)["hydra"]["launcher"]
    assert launcher["_target_"].endswith("SlurmLauncher")
    assert (launcher["partition"], launcher["cpus_per_task"], launcher["mem_gb"], launcher["timeout_min"]) == (
        "gpu", 8, 64, 1440)
    assert "trainer.devices" in launcher["tasks_per_node"] and "trainer.num_nodes" in launcher["nodes"]
    proc = _cli([*common, "--cfg", "all", "--resolve"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    resolved = yaml.safe_load(proc.stdout)["hydra"]["launcher"]
    assert (resolved["nodes"], resolved["tasks_per_node"], resolved["gpus_per_node"]) == (2, 4, 4)


@pytest.mark.slow
def test_optuna_search_optimises_the_validation_score(monkeypatch: pytest.MonkeyPatch, data_root: Path,
                                                      tmp_path: Path) -> None:
    sweep = tmp_path / "search"
    _run_main(monkeypatch, ["-m", "hydra/sweeper=tune_lr", "hydra.sweeper.n_trials=2", *TINY, "model=fno",
                            "model.n_modes=[8]", f"data.root={data_root}", f"hydra.sweep.dir={sweep}"])
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    jobs = _job_dirs(sweep)
    assert len(jobs) == 2
    lrs = {yaml.safe_load((job / ".hydra" / "config.yaml").read_text())["optim"]["lr"] for job in jobs}
    assert len(lrs) == 2 and results["best_params"]["optim.lr"] in lrs
    scores = []
    for job in jobs:
        rows = (job / "logs" / "version_0" / "metrics.csv").read_text().splitlines()
        header = rows[0].split(",")
        column = header.index("val/selection")
        scores += [float(r.split(",")[column]) for r in rows[1:] if r.split(",")[column]]
    assert results["best_value"] == pytest.approx(max(scores))


@pytest.mark.slow
def test_tune_lr_trials_of_a_recipe_row_train_with_their_own_learning_rate(monkeypatch: pytest.MonkeyPatch,
                                                                          data_root: Path, tmp_path: Path) -> None:
    """The search's sampled `optim.lr` and `optim.weight_decay` replace the recipe's (an interpolation of the row's
    tuned winner or the recipe's value): each trial trains with its own and records them as departures, untuned."""
    from pdebench.forecast.checkpoint import load_checkpoint_weights_only

    sweep = tmp_path / "search"
    _run_main(monkeypatch, ["-m", "hydra/sweeper=tune_lr", "hydra.sweeper.n_trials=2", "experiment=ks_fno",
                            "data.preset=tiny", f"data.root={data_root}", "data.batch_size=8",
                            "model.hidden_channels=8", "trainer.max_steps=2", "trainer.enable_progress_bar=false",
                            "validation.rollout_steps=4", "validation.max_trajectories=2",
                            f"recipe.tuned_dir={tmp_path}/tuned", f"hydra.sweep.dir={sweep}"])
    jobs = _job_dirs(sweep)
    assert len(jobs) == 2
    for job in jobs:
        optim = yaml.safe_load((job / ".hydra" / "config.yaml").read_text())["optim"]
        checkpoint = load_checkpoint_weights_only(job / "checkpoints" / "best.ckpt")
        run, trained = checkpoint["hyper_parameters"]["run"], checkpoint["pdebench"]["config"]["optim"]
        assert (trained["lr"], trained["weight_decay"]) == (optim["lr"], optim["weight_decay"]) != (1e-4, 0.0)
        assert run["recipe"] == "ks" and run["tuning"] == "untuned"
        assert f"lr: {optim['lr']} (the recipe says 0.0001)" in run["deviations"]
