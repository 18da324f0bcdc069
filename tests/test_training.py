"""Training plumbing: schedule, loggers, train-only statistics through the real entry point, checkpoints that load
with weights_only and carry their run record, resume from last.ckpt, fast gradient clipping."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
from conftest import TRAINED_OVERRIDES
from lightning.pytorch.loggers import CSVLogger

from baselines import MODELS
from pdebench.data.grid import Grid
from pdebench.data.normalization import compute_train_statistics
from pdebench.data.reader import TrajectoryFile
from pdebench.forecast.checkpoint import CheckpointError, load_forecaster
from pdebench.training.module import SurrogateModule, warmup_cosine
from pdebench.training.objectives import loss_function
from pdebench.training.run import check_training_config, make_logger, train


def test_warmup_then_cosine_to_the_floor() -> None:
    total, warmup, floor = 100, 10, 0.01
    assert warmup_cosine(0, total, warmup, floor) == pytest.approx(0.1)
    assert warmup_cosine(9, total, warmup, floor) == pytest.approx(1.0)
    assert warmup_cosine(10, total, warmup, floor) == pytest.approx(1.0)
    halfway = warmup + (total - warmup) // 2
    assert warmup_cosine(halfway, total, warmup, floor) == pytest.approx(floor + (1 - floor) * 0.5)
    assert warmup_cosine(total, total, warmup, floor) == pytest.approx(floor)
    quarter = warmup + (total - warmup) // 4  # 32: progress 22/90 through the cosine
    expected = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * 22 / 90))
    assert warmup_cosine(quarter, total, warmup, floor) == pytest.approx(expected)


def test_unknown_loss_names_the_choices() -> None:
    with pytest.raises(ValueError, match="objective.loss='l1'.*mse, rel_l2"):
        loss_function("l1")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+model.widht=3", r"unknown key\(s\) model.widht for model fno"),
        ("model=persistence", "model=persistence has nothing to train"),
        ("objective.name=pushforward", "objective.name='pushforward' is not a known objective"),
        ("objective.target=velocity", "objective.target='velocity' is not a known target"),
    ],
)
def test_bad_training_config_fails_before_any_work(compose_cfg, override: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_training_config(compose_cfg("train", [override]))


def test_csv_is_the_default_logger(compose_cfg, tmp_path: Path) -> None:
    cfg = compose_cfg("train", [])
    assert cfg["logger"]["name"] == "csv"
    assert isinstance(make_logger(cfg["logger"], tmp_path), CSVLogger)


def test_wandb_logs_offline_without_network(compose_cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    cfg = compose_cfg("train", ["logger=wandb"])
    assert cfg["logger"]["offline"] is True
    logger = make_logger(cfg["logger"], tmp_path)
    logger.log_metrics({"train/loss": 1.0}, step=0)
    logger.experiment.finish()
    assert list((tmp_path / "wandb").glob("offline-run-*")), "no offline run directory was written"


def test_statistics_come_from_the_train_split_only(trained_checkpoint: Path, ks_tiny: Path) -> None:
    raw = torch.load(trained_checkpoint, map_location="cpu", weights_only=True)
    stats = raw["hyper_parameters"]["data_info"]["stats"]
    train_stats = compute_train_statistics(TrajectoryFile(ks_tiny / "train.h5"))
    valid_stats = compute_train_statistics(TrajectoryFile(ks_tiny / "valid.h5"))
    assert stats == train_stats and stats["field_std"] != valid_stats["field_std"]
    normalizer = load_forecaster(trained_checkpoint).forecaster.normalizer
    torch.testing.assert_close(normalizer.field_std, torch.tensor(train_stats["field_std"], dtype=torch.float32))


def test_checkpoint_loads_with_weights_only_and_carries_its_run_record(trained_checkpoint: Path) -> None:
    raw = torch.load(trained_checkpoint, map_location="cpu", weights_only=True)  # no arbitrary unpickling
    assert all(torch.is_tensor(value) for value in raw["state_dict"].values())
    trained = load_forecaster(trained_checkpoint)
    record = trained.record
    assert (record["label"], record["seed"], record["model"]["name"]) == ("fno-tiny", 1, "fno")
    assert record["data"]["dataset"] == "ks-tiny" and record["data"]["frame_stride"] == 4
    assert record["objective"]["target"] == "difference" and "git_commit" in record
    assert trained.n_parameters == sum(p.numel() for p in trained.forecaster.parameters())
    assert trained.forecaster.spec.grid == Grid.uniform("periodic", (256,))
    frames, cond = torch.randn(3, 1, 1, 256), torch.randn(3, 4)
    with torch.no_grad():
        torch.testing.assert_close(trained.forecaster(frames, cond), load_forecaster(trained_checkpoint).forecaster(
            frames, cond))


def test_foreign_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="not written by pdebench-train"):
        load_forecaster(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_forecaster(tmp_path / "missing.ckpt")


def test_rerunning_the_command_resumes_from_last_ckpt(compose_cfg, data_root: Path, tmp_path: Path) -> None:
    """The second run starts from last.ckpt: a value planted in it survives, and the step count continues."""
    base = [*TRAINED_OVERRIDES, f"data.root={data_root}", f"run_dir={tmp_path}/run", "trainer.limit_train_batches=2"]
    train(compose_cfg("train", [*base, "trainer.max_epochs=1"]))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] == 2
    checkpoint["state_dict"]["forecaster.normalizer.field_mean"] = torch.tensor([123.0])
    torch.save(checkpoint, last)
    train(compose_cfg("train", [*base, "trainer.max_epochs=2"]))
    resumed = torch.load(last, map_location="cpu", weights_only=True)
    assert resumed["global_step"] == 4
    assert resumed["state_dict"]["forecaster.normalizer.field_mean"].item() == 123.0
    logs = sorted(p.relative_to(tmp_path / "run") for p in (tmp_path / "run" / "logs").rglob("metrics.csv"))
    assert [str(p) for p in logs] == ["logs/version_0/metrics.csv", "logs/version_1/metrics.csv"]  # none lost


def test_fast_gradient_clipping_matches_torch() -> None:
    """The module clips over real views of complex spectral gradients; the result must equal torch's own."""
    stats = {"field_mean": [0.0], "field_std": [1.0], "param_mean": [0.0] * 2, "param_std": [1.0] * 2}
    data_info = {"dataset": "toy", "fields": ["u"], "parameters": ["a", "b"], "frame_stride": 1, "stats": stats,
                 "grid": Grid.uniform("periodic", (64,)).to_record()}
    objective = {"name": "onestep", "history": 1, "bundle": 1, "loss": "mse", "target": "state", "target_scale": 1.0}
    optim = {"lr": 1e-3, "weight_decay": 0.0, "warmup_fraction": 0.1, "min_lr_ratio": 0.1}
    validation = {"rollout_steps": 2, "max_trajectories": 2, "nrmse_cap": 10.0}
    model = {"name": "fno", **{k: v for k, v in vars(MODELS["fno"].config.tiny()).items() if k != "name"}}
    with torch.random.fork_rng():  # its own draws, whatever ran before it
        torch.manual_seed(0)
        ours = SurrogateModule(model, objective, optim, validation, data_info, {"label": "fno", "seed": 0})
        x, y, p = torch.randn(4, 1, 1, 64), 100 * torch.randn(4, 1, 1, 64), torch.randn(4, 2)
    reference = copy.deepcopy(ours)
    for module in (ours, reference):
        ((module(x, p) - y) ** 2).mean().backward()
    assert torch.nn.utils.get_total_norm([q.grad for q in ours.parameters()]).item() > 1.0  # so clipping acts
    ours.configure_gradient_clipping(None, 0.5, "norm")
    torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.5)
    assert any(q.grad.is_complex() for q in ours.parameters())
    for a, b in zip(ours.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-7)
    assert torch.nn.utils.get_total_norm([q.grad for q in ours.parameters()]).item() == pytest.approx(0.5, rel=1e-4)


def test_a_non_finite_loss_stops_training_naming_step_and_batch(compose_cfg, data_root: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from pdebench.training.module import TrainingDiverged
    from pdebench.training.objectives import OneStep

    honest = OneStep.loss
    calls = []

    def diverge_at_third_call(self, forecaster, batch):
        calls.append(1)
        loss = honest(self, forecaster, batch)
        return loss * float("nan") if len(calls) == 3 else loss

    monkeypatch.setattr(OneStep, "loss", diverge_at_third_call)
    cfg = compose_cfg("train", [*TRAINED_OVERRIDES, f"data.root={data_root}", f"run_dir={tmp_path}/run",
                                "trainer.max_epochs=1"])
    with pytest.raises(TrainingDiverged, match=r"the loss is nan at step 2 \(epoch 0, batch 2, trajectories \["):
        train(cfg)
