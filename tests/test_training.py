"""Training plumbing: schedule, loggers, train-only statistics through the real entry point, checkpoints that load
with weights_only and carry their run record, resume from last.ckpt, fast gradient clipping."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from conftest import TRAINED_OVERRIDES
from lightning.pytorch.loggers import CSVLogger

from baselines import MODELS
from pdebench.data.grid import Grid
from pdebench.data.normalization import compute_train_statistics
from pdebench.data.reader import TrajectoryFile
from pdebench.forecast.checkpoint import CheckpointError, load_forecaster
from pdebench.training.callbacks import weight_averaging
from pdebench.training.config import train_config
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


class _RealAndComplexWeights(L.LightningModule):
    """Two weights, one real and one complex (like an FNO's spectral weights), moved by plain SGD on random data."""

    def __init__(self) -> None:
        super().__init__()
        self.real = torch.nn.Parameter(torch.tensor([0.5, -1.0, 2.0]))
        self.spectral = torch.nn.Parameter(torch.tensor([1.0 + 2.0j, -0.5j]))

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        x = batch[0][0]
        return ((self.real * x).sum() - 1.0) ** 2 + (self.spectral.abs() ** 2).sum() * x.square().mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05)


class _RawWeights(L.Callback):
    def __init__(self) -> None:
        self.after_step: list[dict[str, torch.Tensor]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.after_step.append({n: p.detach().clone() for n, p in pl_module.named_parameters()})


@pytest.mark.slow
def test_the_weight_average_is_the_exponential_average_after_every_step() -> None:
    """`optim.ema_decay=d`: after steps with raw weights w_1..w_n the average is e_1 = w_1,
    e_k = d e_(k-1) + (1 - d) w_k, for real and complex weights alike, and training ends with it in the module."""
    decay = 0.7
    raw = _RawWeights()
    trainer = L.Trainer(max_epochs=2, callbacks=[raw, weight_averaging(decay)], logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    module = _RealAndComplexWeights()
    data = torch.utils.data.TensorDataset(torch.randn(4, 3, generator=torch.Generator().manual_seed(0)))
    trainer.fit(module, torch.utils.data.DataLoader(data, batch_size=1))
    assert len(raw.after_step) == 8
    expected = {n: w.to(torch.complex128 if w.is_complex() else torch.float64) for n, w in raw.after_step[0].items()}
    for weights in raw.after_step[1:]:
        expected = {n: decay * e + (1 - decay) * weights[n] for n, e in expected.items()}
    for name, parameter in module.named_parameters():
        assert not torch.allclose(parameter.detach().to(expected[name].dtype), raw.after_step[-1][name].to(
            expected[name].dtype), atol=1e-3), f"{name}: the average should differ from the last raw weights"
        torch.testing.assert_close(parameter.detach().to(expected[name].dtype), expected[name], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+model.widht=3", r"unknown key\(s\) model.widht for model fno"),
        ("model=persistence", "model=persistence has nothing to train"),
        ("objective.name=pushfoward", "objective.name='pushfoward' is not a known objective"),
        ("objective.target=velocity", "objective.target='velocity' is not a known target"),
    ],
)
def test_bad_training_config_fails_before_any_work(compose_cfg, override: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_training_config(train_config(compose_cfg("train", [override])))


def test_csv_is_the_default_logger(compose_cfg, tmp_path: Path) -> None:
    cfg = compose_cfg("train", [])
    assert cfg["logger"]["name"] == "csv"
    assert isinstance(make_logger(train_config(cfg).logger, tmp_path), CSVLogger)


def test_wandb_logs_offline_without_network(compose_cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    cfg = compose_cfg("train", ["logger=wandb"])
    assert cfg["logger"]["offline"] is True
    logger = make_logger(train_config(cfg).logger, tmp_path)
    logger.log_metrics({"train/loss": 1.0}, step=0)
    logger.experiment.finish()
    assert list((tmp_path / "wandb").glob("offline-run-*")), "no offline run directory was written"


@pytest.mark.slow
def test_statistics_come_from_the_train_split_only(trained_checkpoint: Path, ks_tiny: Path) -> None:
    raw = torch.load(trained_checkpoint, map_location="cpu", weights_only=True)
    stats = raw["hyper_parameters"]["data_info"]["stats"]
    train_stats = compute_train_statistics(TrajectoryFile(ks_tiny / "train.h5"))
    valid_stats = compute_train_statistics(TrajectoryFile(ks_tiny / "valid.h5"))
    assert stats == train_stats and stats["field_std"] != valid_stats["field_std"]
    normalizer = load_forecaster(trained_checkpoint).forecaster.normalizer
    torch.testing.assert_close(normalizer.field_std, torch.tensor(train_stats["field_std"], dtype=torch.float32))


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_non_finite_loss_found_later_names_its_step_and_no_checkpoint_holds_it(
        compose_cfg, data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checked in arrears (as on an accelerator, where each check is a host sync): the loss of a step in epoch 2
    turns NaN; the error still names that step, and last.ckpt stays epoch 1's, whose weights are finite."""
    from pdebench.training.module import SurrogateModule, TrainingDiverged
    from pdebench.training.objectives import OneStep

    honest, start_epoch = OneStep.loss, SurrogateModule.on_train_epoch_start
    epochs: list[int] = []  # the epoch of every loss computed

    def note_epoch(self) -> None:
        epochs.append(self.current_epoch)
        start_epoch(self)

    def diverge_at_the_second_batch_of_epoch_1(self, forecaster, batch):
        loss = honest(self, forecaster, batch)
        epochs.append(epochs[-1])
        return loss * float("nan") if epochs.count(1) == 3 else loss

    monkeypatch.setattr(SurrogateModule, "on_train_epoch_start", note_epoch)
    monkeypatch.setattr(OneStep, "loss", diverge_at_the_second_batch_of_epoch_1)
    monkeypatch.setattr(SurrogateModule, "finite_check_interval", 1000)
    run_dir = tmp_path / "run"
    cfg = compose_cfg("train", [*TRAINED_OVERRIDES, f"data.root={data_root}", f"run_dir={run_dir}",
                                "trainer.max_epochs=3"])
    with pytest.raises(TrainingDiverged) as stopped:
        train(cfg)
    steps_per_epoch = epochs.count(0) - 1
    bad_step = steps_per_epoch + 1
    message = str(stopped.value)
    assert f"the loss is nan at step {bad_step} (epoch 1, batch 1, trajectories [" in message, message
    assert f"found at step {2 * steps_per_epoch - 1})" in message, message  # at the validation of epoch 1
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert (last["epoch"], last["global_step"]) == (0, steps_per_epoch)
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())


def test_selection_score_orders_by_the_headline_and_breaks_ties_within_half_a_step() -> None:
    from pdebench.training.module import selection_score

    step = 0.8
    tied_good = selection_score(3 * step, "max", 0.1, 10.0, step, quantised=True)
    tied_bad = selection_score(3 * step, "max", 9.0, 10.0, step, quantised=True)
    worst_next = selection_score(4 * step, "max", 10.0, 10.0, step, quantised=True)
    assert tied_bad < tied_good < worst_next  # the tie-break never outweighs one more correlated step
    assert tied_good - tied_bad == pytest.approx(0.5 * step * 8.9 / 10.0)
    assert selection_score(0.2, "min", 5.0, 10.0, step, quantised=False) == -0.2  # lower is better: sign flipped
    assert selection_score(None, "max", 0.0, 10.0, step, quantised=True) == -math.inf
    assert selection_score(math.nan, "min", 0.0, 10.0, step, quantised=False) == -math.inf


@pytest.mark.slow
def test_best_is_chosen_on_the_headline_and_never_overwritten_by_a_worse_epoch(
        compose_cfg, data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Scripted validation scores 1, 3, 2: `best.ckpt` stays epoch 1's (3), `last.ckpt` is epoch 2's. The KS
    manifest names corr_time_0.8 (maximised) as the headline, which is what validation logs. Run without a terminal,
    progress is one plain line after the first step, one per `progress_every_n_steps` steps and one per epoch, never
    carriage returns."""
    import pdebench.training.module as module_file

    calls: list[float] = []
    scripted = [0.0, 1.0, 3.0, 2.0]  # the first is the sanity check's, before training

    def scripted_score(*args: object, **kwargs: object) -> float:
        calls.append(scripted[len(calls)] if len(calls) < len(scripted) else -100.0)
        return calls[-1]

    monkeypatch.setattr(module_file, "selection_score", scripted_score)
    run_dir = tmp_path / "run"
    overrides = [*TRAINED_OVERRIDES, f"data.root={data_root}", f"run_dir={run_dir}", "trainer.max_epochs=3",
                 "trainer.limit_train_batches=4", "trainer.enable_progress_bar=true", "progress_every_n_steps=2",
                 "progress_every_n_seconds=0", "validation.max_trajectories=2"]
    cfg = compose_cfg("train", overrides)
    best = train(cfg)
    best_ckpt = torch.load(best, map_location="cpu", weights_only=True)
    last_ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert calls == scripted
    assert (best_ckpt["epoch"], last_ckpt["epoch"]) == (1, 2)
    callback_state = next(v for k, v in last_ckpt["callbacks"].items() if "'monitor': 'val/selection'" in k)
    assert float(callback_state["best_model_score"]) == 3.0
    assert best_ckpt["hyper_parameters"]["selection"]["metric"] == "corr_time_0.8"
    assert best_ckpt["hyper_parameters"]["selection"]["goal"] == "max"
    out = capsys.readouterr().out
    assert "\r" not in out
    step_lines = [line for line in out.splitlines() if line.startswith("step ") and " (batch " in line]
    epoch_lines = [line for line in out.splitlines() if " done at step " in line]
    assert [line.split()[1] for line in step_lines] == ["1/12", "2/12", "4/12", "6/12", "8/12", "10/12", "12/12"]
    assert len(epoch_lines) == 3  # one per epoch
    assert "loss " in step_lines[0] and "eta " in step_lines[0] and "val/corr_time_0.8=" in epoch_lines[0]


def test_terminal_gets_bars_and_a_log_gets_lines() -> None:
    from lightning.pytorch.callbacks import TQDMProgressBar

    from pdebench.training.callbacks import LineProgress, progress_callback

    assert isinstance(progress_callback(True, 50, interactive=True), TQDMProgressBar)
    line = progress_callback(True, 50, interactive=False)
    assert isinstance(line, LineProgress) and line.every_n_steps == 50
    assert progress_callback(False, 50) is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model=fnoo"], r"Could not find 'model/fnoo'[\s\S]*Available options in 'model'[\s\S]*fno"),
        (["objective=pushfoward"], r"Could not find 'objective/pushfoward'[\s\S]*Available options in 'objective'"),
        (["optim.lrr=0.1"], r"Could not override 'optim.lrr'.\nTo append to your config use \+optim.lrr=0.1"),
        (["trainer.max_epochs=three"], r"Error merging override trainer.max_epochs=three"),
    ],
)
def test_config_errors_of_composition_name_the_key_and_choices(compose_cfg, overrides: list[str],
                                                               message: str) -> None:
    """Hydra refuses these while composing, before any code of ours runs; the message names the key and the
    valid choices (the CLI prints it without a traceback)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    with pytest.raises((HydraException, OmegaConfBaseException), match=message) as caught:
        compose_cfg("train", overrides)
    if "three" in overrides[0]:  # the cause Hydra prints under it names the expected type
        assert "Value 'three' of type 'str' could not be converted to Integer" in str(caught.value.__cause__)


def test_misspelt_added_key_names_the_valid_keys(compose_cfg) -> None:
    with pytest.raises(ValueError, match="unknown config key optim.lrr; valid keys under optim: lr, weight_decay"):
        check_training_config(train_config(compose_cfg("train", ["+optim.lrr=0.1"])))
    with pytest.raises(ValueError, match=r"optim.ema_decay=1.5 is not valid: expected a decay strictly between"):
        check_training_config(train_config(compose_cfg("train", ["optim.ema_decay=1.5"])))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("objective.bundle=40", r"objective.bundle=40 need training windows of 41 model frames"),
        ("objective.history=4", r"objective.history=4, objective.bundle=5 need training windows of 9 model frames"),
    ],
)


def test_an_objective_the_data_cannot_hold_fails_before_training(compose_cfg, data_root: Path, tmp_path: Path,
                                                                 override: str, message: str) -> None:
    from pdebench.data.dataset import DatasetError

    extra = ["objective.bundle=5"] if "history" in override else []
    cfg = compose_cfg("train", [*TRAINED_OVERRIDES, f"data.root={data_root}", f"run_dir={tmp_path}/run", override,
                                *extra])
    with pytest.raises(DatasetError, match=message):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_validation_trajectories_too_short_for_the_history_are_refused() -> None:
    from pdebench.data.dataset import DatasetError
    from pdebench.training.run import check_validation_fits

    check_validation_fits(2, 9, 4)  # 3 model frames: 2 in, 1 rolled out
    with pytest.raises(DatasetError, match=r"objective.history=2 leaves no step to roll out on the validation "
                                           r"trajectories \(2 model frames, 8 stored frames, frame_stride=4\); "
                                           r"history must be below 2"):
        check_validation_fits(2, 8, 4)


@pytest.mark.slow
def test_wandb_offline_run_holds_config_metrics_and_a_rollout_plot(compose_cfg, data_root: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    run_dir = tmp_path / "run"
    train(compose_cfg("train", [*TRAINED_OVERRIDES, f"data.root={data_root}", f"run_dir={run_dir}", "logger=wandb",
                                "trainer.max_epochs=1", "trainer.limit_train_batches=2",
                                "trainer.log_every_n_steps=1", "validation.max_trajectories=2"]))
    # `finish` returns before wandb's service has flushed the run's transaction log; at process exit an atexit hook
    # waits for it. The test reads the log in-process, so it waits the same way.
    import wandb

    wandb.teardown()
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    # The offline run's records (config, history, summary) sit in its transaction log as protobuf messages whose
    # strings (keys, JSON values) are stored verbatim; `wandb sync` uploads exactly this file.
    (records,) = offline.glob("run-*.wandb")
    data = records.read_bytes()
    assert b'"label":"fno-tiny"' in data and b'"hidden_channels":16' in data  # the resolved config
    for metric in (b"train/loss", b"val/corr_time_0.8", b"val/selection", b"val/rollout_nrmse"):
        assert metric in data, metric
    images = list((offline / "files" / "media" / "images").rglob("*.png"))
    assert images and images[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the validation rollout plot
    assert b"val/rollout" in data


class _MixedWeights(torch.nn.Module):
    """A float32 and a float64 trainable weight, a frozen weight and a buffer (a running statistic)."""

    def __init__(self) -> None:
        super().__init__()
        self.single = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
        self.wide = torch.nn.Parameter(torch.tensor([4.0], dtype=torch.float64))
        self.frozen = torch.nn.Parameter(torch.tensor([8.0]), requires_grad=False)
        self.register_buffer("running", torch.tensor([0.0]))

    def set(self, single: list[float], double: float, frozen: float, running: float) -> None:
        with torch.no_grad():
            self.single.copy_(torch.tensor(single))
            self.wide.fill_(double)
            self.frozen.fill_(frozen)
            self.running.fill_(running)


@pytest.mark.parametrize("use_buffers", [False, True])
def test_the_average_covers_trainable_weights_of_every_dtype_and_copies_or_averages_the_buffers(
        use_buffers: bool) -> None:
    """Decay 0.75: the first update copies, the next ones move each trainable weight (float32 and float64 alike) a
    quarter of the way to the current one; the frozen weight is never averaged (it keeps its first value), and the
    buffers are copied from the model, or averaged like the weights with `use_buffers`."""
    from torch.optim.swa_utils import get_ema_multi_avg_fn

    from pdebench.training.callbacks import TrainableAveragedModel

    model = _MixedWeights()
    average = TrainableAveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.75), use_buffers=use_buffers)
    model.set([2.0, -2.0], 8.0, 16.0, 1.0)
    average.update_parameters(model)  # the first update copies
    model.set([6.0, 2.0], 0.0, 32.0, 5.0)
    average.update_parameters(model)
    model.set([-2.0, 6.0], 4.0, 64.0, 9.0)
    average.update_parameters(model)
    averaged = average.module
    # single: 2 -> 2 + (6 - 2)/4 = 3 -> 3 + (-2 - 3)/4 = 1.75; -2 -> -1 -> 0.75; double: 8 -> 6 -> 5.5
    torch.testing.assert_close(averaged.single.detach(), torch.tensor([1.75, 0.75]), rtol=0, atol=1e-6)
    torch.testing.assert_close(averaged.wide.detach(), torch.tensor([5.5], dtype=torch.float64), rtol=0, atol=1e-12)
    assert averaged.frozen.item() == 8.0  # the copy made when the average was created
    # running: copied (9), or averaged as 1 -> 2 -> 3.75
    assert averaged.running.item() == (3.75 if use_buffers else 9.0)
    assert int(average.n_averaged) == 3


def test_weight_averaging_is_off_without_a_decay_and_averages_weights_and_buffers_in_the_fit_stage_only() -> None:
    """No decay: no callback. With one, `setup` builds the average for `fit` and for no other stage; it averages the
    trainable weights and, as Lightning's `WeightAveraging` does by default, the buffers (decay 0.5: 1 -> 3 -> 6)."""
    from types import SimpleNamespace

    assert weight_averaging(None) is None
    callback = weight_averaging(0.5)
    module = _MixedWeights()
    module.device = torch.device("cpu")  # what a LightningModule reports
    callback.setup(SimpleNamespace(), module, "validate")
    assert getattr(callback, "_average_model", None) is None
    callback.setup(SimpleNamespace(), module, "fit")
    average = callback._average_model
    for value in (1.0, 5.0, 9.0):
        module.set([value, value], value, 16.0, value)
        average.update_parameters(module)
    assert average.module.running.item() == 6.0 and average.module.wide.item() == 6.0


class _AddOne(torch.nn.Module):
    """A stepper whose every step adds 1 to the last frame (history 2, bundle 1)."""

    history, bundle = 2, 1

    def forward(self, frames: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return frames[:, :, -1:] + 1


def _plot_call(plot: object, frames: torch.Tensor, batch_idx: int = 0, sanity: bool = False,
               rank_zero: bool = True, images: bool = True) -> list[dict]:
    """Run `plot`'s validation hook on one batch of `frames` at epoch 3, step 120; what the logger was sent (a
    logger that takes images, or with `images=False` one that does not, like the CSV logger)."""
    from types import SimpleNamespace

    from pdebench.data.batch import TrajectoryBatch

    sent: list[dict] = []
    logger = SimpleNamespace(log_image=lambda **kwargs: sent.append(kwargs)) if images else SimpleNamespace()
    trainer = SimpleNamespace(sanity_checking=sanity, is_global_zero=rank_zero, current_epoch=3, global_step=120,
                              logger=logger)
    module = SimpleNamespace(evaluation_stepper=_AddOne)
    batch = TrajectoryBatch(frames, torch.zeros(frames.shape[0], 0), torch.ones(frames.shape[0]),
                            torch.arange(frames.shape[0]))
    plot.on_validation_batch_end(trainer, module, None, batch, batch_idx)
    return sent


def test_the_rollout_plot_draws_the_first_trajectory_truth_and_prediction_up_to_its_step_limit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Frames `[2, 1, 6, 4]`: history 2 leaves 4 steps, the limit 3 keeps 3; the truth is trajectory 0's frames 2-4,
    the prediction its frame 1 plus 1, 2, 3. The PNG is named by the epoch and sent to the logger at the global
    step. Nothing is drawn for a later batch, during the sanity check, on another rank, or when no step is left."""
    from pdebench.training.callbacks import RolloutPlot

    drawn: list[tuple] = []
    monkeypatch.setattr(RolloutPlot, "_draw", staticmethod(lambda *args: drawn.append(args)))
    frames = torch.arange(48, dtype=torch.float32).reshape(2, 1, 6, 4)
    plot = RolloutPlot(tmp_path / "plots", max_steps=3)
    sent = _plot_call(plot, frames)
    ((truth, pred, path, epoch),) = drawn
    np.testing.assert_array_equal(truth, frames[0, :, 2:5].numpy())
    expected = frames[0, :, 1:2].numpy() + np.arange(1, 4, dtype=np.float32).reshape(1, 3, 1)
    np.testing.assert_array_equal(pred, expected)
    assert (path, epoch) == (tmp_path / "plots" / "rollout_epoch0003.png", 3)
    assert sent == [{"key": "val/rollout", "images": [str(path)], "step": 120,
                     "caption": ["epoch 3: truth | prediction | error"]}]
    assert not _plot_call(plot, frames, batch_idx=1) and not _plot_call(plot, frames, sanity=True)
    assert not _plot_call(plot, frames, rank_zero=False) and not _plot_call(plot, frames[:, :, :2])
    assert len(drawn) == 1
    _plot_call(RolloutPlot(tmp_path / "plots", max_steps=10), frames)
    assert drawn[-1][0].shape == (1, 4, 4)  # the trajectory's 4 steps, below the limit
    assert _plot_call(plot, frames, images=False) == [] and len(drawn) == 3  # drawn, not sent
    _plot_call(plot, frames[:, :, :3])
    assert len(drawn) == 4 and drawn[-1][0].shape == (1, 1, 4)  # one step left: still drawn


@pytest.mark.parametrize("space", [(8,), (6, 8)])
def test_the_rollout_plot_shows_truth_prediction_and_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          space: tuple[int, ...]) -> None:
    """A 1-D field is drawn as space-time images, a 2-D one as its last step: three panels titled truth,
    prediction, error (the difference, in a diverging colour map), each with the epoch, saved as a PNG."""
    import matplotlib.pyplot as plt
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    from pdebench.training.callbacks import RolloutPlot

    figures: list = []
    monkeypatch.setattr(plt, "close", figures.append)
    rng = np.random.default_rng(0)
    truth, pred = rng.normal(size=(2, 3, *space)), rng.normal(size=(2, 3, *space))
    path = tmp_path / "run" / "plots" / "rollout.png"
    RolloutPlot._draw(truth, pred, path.with_name("earlier.png"), 6)  # the folder and its parent are made
    RolloutPlot._draw(truth, pred, path, 7)  # and may exist already
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")) == (960, 280)  # 12 x 3.5 in, 80 dpi
    figure = figures[-1]
    assert isinstance(figure.get_layout_engine(), ConstrainedLayoutEngine)
    axes, bars = figure.axes[:3], figure.axes[3:]
    assert [ax.get_title() for ax in axes] == ["truth (epoch 7)", "prediction (epoch 7)", "error (epoch 7)"]
    boxes = [ax.get_position() for ax in axes]
    assert boxes[0].x1 < boxes[1].x0 and boxes[1].x1 < boxes[2].x0 and boxes[0].y0 == boxes[2].y0  # side by side
    shown = [ax.images[0] for ax in axes]
    last = (slice(None),) if len(space) == 1 else (-1,)
    for image, expected in zip(shown, (truth[0][last], pred[0][last], (pred - truth)[0][last]), strict=True):
        np.testing.assert_array_equal(image.get_array(), expected)
    assert [image.get_cmap().name for image in shown] == ["viridis", "viridis", "RdBu_r"]
    assert all(ax.get_aspect() == "auto" for ax in axes) and all(image.origin == "lower" for image in shown)
    assert [image.colorbar.ax for image in shown] == bars  # each panel its own colour bar
    monkeypatch.undo()
    for drawn in figures:
        plt.close(drawn)
