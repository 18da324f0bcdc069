"""Fault tolerance: a run killed mid-epoch (SIGTERM, SIGKILL) and rerun with the same command ends where an
uninterrupted run ends; a rerun with other settings is refused naming every differing key."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pdebench.forecast.checkpoint import CheckpointError
from pdebench.training.config import train_config
from pdebench.training.run import _resume_conflict, resume_checkpoint, train

# A small FNO, 4 steps per epoch, 3 epochs, an EMA of the weights: one progress line per step, so the test can kill
# the run at a known point in its second epoch.
RUN = [
    "data=ks", "data.preset=tiny", "data.batch_size=8", "model=fno", "model.hidden_channels=8", "model.n_modes=[8]",
    "trainer.max_epochs=3", "trainer.limit_train_batches=4", "trainer.log_every_n_steps=1",
    "validation.rollout_steps=4", "validation.max_trajectories=2", "optim.ema_decay=0.9", "seed=3", "label=kill",
    "progress_every_n_steps=1",
]


def _train_cli(overrides: list[str], cwd: Path) -> subprocess.Popen[str]:
    """`pdebench-train` in a fresh process, on as many torch threads as this process (one under pytest-xdist): the
    run it is compared with trains here, and another thread count sums float32 reductions in another order."""
    env = {**os.environ, "MPLBACKEND": "Agg", "HYDRA_FULL_ERROR": "0", "OMP_NUM_THREADS": str(torch.get_num_threads())}
    return subprocess.Popen([sys.executable, "-m", "pdebench.cli.train", *overrides], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _kill_during(proc: subprocess.Popen[str], line_start: str, signum: int) -> list[str]:
    """Send `signum` as soon as the run prints a line starting with `line_start`; return its output."""
    seen = []
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        if line.startswith(line_start):
            proc.send_signal(signum)
            break
    else:
        raise AssertionError("the run ended before it could be killed:\n" + "".join(seen))
    rest, _ = proc.communicate(timeout=300)
    return [*seen, rest]


def _final_validation(run_dir: Path) -> dict[str, float]:
    """The last logged row holding `val/selection` across every `logs/version_*/metrics.csv`."""
    rows = []
    for path in sorted((run_dir / "logs").glob("version_*/metrics.csv")):
        with path.open() as handle:
            rows += [row for row in csv.DictReader(handle) if row.get("val/selection")]
    return {k: float(v) for k, v in rows[-1].items() if v != ""}


@pytest.fixture(scope="module")
def uninterrupted(compose_cfg, data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    train(compose_cfg("train", [*RUN, f"data.root={data_root}", f"run_dir={run_dir}"]))
    return run_dir


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_killed_run_resumes_to_the_uninterrupted_result(compose_cfg, data_root: Path, tmp_path: Path,
                                                          uninterrupted: Path, signum: int) -> None:
    """Killed in epoch 2, the rerun restarts epoch 2 from last.ckpt (epoch 1's) with the optimiser, scheduler, EMA,
    RNG and data order restored, so it retraces the uninterrupted run exactly.

    Tolerance: bitwise equality is expected (same process layout, same arithmetic in the same order on the CPU);
    we allow rtol=1e-6 on weights and metrics only for a different number of intra-op threads between the
    subprocess and this process, which may reorder float32 reductions at round-off level.
    """
    run_dir = tmp_path / "run"
    overrides = [*RUN, f"data.root={data_root}", f"run_dir={run_dir}"]
    output = _kill_during(_train_cli(overrides, tmp_path), "step 6/12 epoch 2/3 ", signum)
    last = run_dir / "checkpoints" / "last.ckpt"
    killed = torch.load(last, map_location="cpu", weights_only=True)
    assert killed["global_step"] == 4 and killed["epoch"] == 0, "".join(output)  # only epoch 1 was saved
    metrics_before = (run_dir / "logs" / "version_0" / "metrics.csv").read_text()
    assert "val/selection" in metrics_before  # epoch 1's validation row survived the kill

    train(compose_cfg("train", overrides))  # the same command again

    assert (run_dir / "logs" / "version_0" / "metrics.csv").read_text() == metrics_before  # nothing lost
    ours = torch.load(last, map_location="cpu", weights_only=True)
    reference = torch.load(uninterrupted / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ours["global_step"] == reference["global_step"] == 12
    for key in ("state_dict", "current_model_state"):  # the EMA (what is evaluated) and the raw weights
        assert ours[key].keys() == reference[key].keys()
        for name in ours[key]:
            torch.testing.assert_close(ours[key][name], reference[key][name], rtol=1e-6, atol=1e-7)
    for ours_state, reference_state in zip(ours["optimizer_states"][0]["state"].values(),
                                           reference["optimizer_states"][0]["state"].values(), strict=True):
        torch.testing.assert_close(ours_state["exp_avg_sq"], reference_state["exp_avg_sq"], rtol=1e-6, atol=1e-12)
    assert ours["lr_schedulers"] == reference["lr_schedulers"]
    final, expected = _final_validation(run_dir), _final_validation(uninterrupted)
    assert final["epoch"] == expected["epoch"] == 2
    for key in ("val/selection", "val/corr_time_0.8", "val/rollout_nrmse"):
        assert final[key] == pytest.approx(expected[key], rel=1e-6, abs=1e-9), key


CONFIG = {
    "model": {"name": "fno", "hidden_channels": 16}, "optim": {"lr": 1e-3, "ema_decay": None},
    "trainer": {"max_epochs": 3, "devices": 1, "log_every_n_steps": 10}, "data": {"root": "data", "batch_size": 8},
    "logger": {"name": "csv"}, "resume": True, "run_dir": "runs/a", "label": "fno", "seed": 0,
}


def _changed(**changes: object) -> dict:
    cfg = {key: dict(value) if isinstance(value, dict) else value for key, value in CONFIG.items()}
    for dotted, value in changes.items():
        section, _, key = dotted.partition("__")
        if key:
            cfg[section][key] = value
        else:
            cfg[section] = value
    return cfg


def test_resume_allows_only_settings_that_may_change() -> None:
    allowed = _changed(trainer__max_epochs=9, trainer__log_every_n_steps=1, data__root="/elsewhere",
                       logger={"name": "wandb"}, run_dir="runs/b")
    assert _resume_conflict(allowed, {}, CONFIG) is None
    conflict = _resume_conflict(_changed(optim__lr=0.1, model__hidden_channels=32, trainer__devices=2), {}, CONFIG)
    assert conflict == ("model.hidden_channels=16, optim.lr=0.001, trainer.devices=1 but this run asks for "
                        "model.hidden_channels=32, optim.lr=0.1, trainer.devices=2")
    added = _resume_conflict(_changed(optim={**CONFIG["optim"], "momentum": 0.9}), {}, CONFIG)
    assert added == "optim.momentum=null but this run asks for optim.momentum=0.9"


@pytest.mark.slow
def test_rerun_with_a_new_learning_rate_is_refused_naming_the_key(compose_cfg, uninterrupted: Path) -> None:
    """Before, `optim.lr=0.1` resumed silently with the old learning rate; now it stops before any data is read."""
    cfg = compose_cfg("train", [*RUN, "data.root=nowhere", f"run_dir={uninterrupted}", "optim.lr=0.1",
                                "trainer.max_epochs=5"])
    with pytest.raises(CheckpointError, match=r"trained with optim\.lr=0\.001 but this run asks for optim\.lr=0\.1; "
                                              r"choose a new label \(label=\.\.\.\) for a separate run, or pass "
                                              r"resume=false"):
        resume_checkpoint(train_config(cfg), uninterrupted)
    longer = compose_cfg("train", [*RUN, "data.root=nowhere", f"run_dir={uninterrupted}", "trainer.max_epochs=5"])
    assert resume_checkpoint(train_config(longer), uninterrupted) == uninterrupted / "checkpoints" / "last.ckpt"
