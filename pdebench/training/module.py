"""The one LightningModule that trains every registered net on every dataset."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from pdebench.data.batch import TrajectoryBatch, WindowBatch
from pdebench.forecast.checkpoint import build_forecaster
from pdebench.forecast.stepper import Stepper
from pdebench.rollout.scoring import score_batch
from pdebench.training.objectives import make_objective

VAL_METRIC = "val/rollout_nrmse"


def warmup_cosine(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """Learning-rate multiplier: linear warmup over `warmup` steps, then cosine from 1 to `min_ratio`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def clip_gradient_norm(parameters: Iterable[nn.Parameter], max_norm: float) -> Tensor:
    """`torch.nn.utils.clip_grad_norm_` with the norm taken over real views of complex gradients.

    Same result; torch's CPU norm of a complex tensor is ~40x slower than of its real view, which made clipping
    ~7% of an FNO training step (spectral weights are complex). Returns the total norm before clipping.
    """
    params = [p for p in parameters if p.grad is not None]
    grads = [torch.view_as_real(p.grad) if p.grad.is_complex() else p.grad for p in params]
    total = torch.nn.utils.get_total_norm(grads)
    torch.nn.utils.clip_grads_with_norm_(params, max_norm, total)
    return total


class TrainingDiverged(ValueError):
    """A non-finite loss: training stops at once, naming the step and the batch; written checkpoints stay."""


class SurrogateModule(L.LightningModule):
    """Optimisation, logging and checkpoints of one `Forecaster`; the loss is the `Objective`'s.

    Every hyper-parameter is a plain container, so checkpoints load with `weights_only=True`: `model`, `objective`,
    `optim`, `validation` are the config sections; `data_info` is what the data fixes (dataset, pde, preset,
    frame_stride, manifest hash, fields, parameters, grid record, train statistics); `run` is the run's identity
    (label, seed, git commit). See `pdebench.forecast.checkpoint`.
    """

    def __init__(self, model: dict[str, Any], objective: dict[str, Any], optim: dict[str, Any],
                 validation: dict[str, Any], data_info: dict[str, Any], run: dict[str, Any]) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.forecaster = build_forecaster(model, objective, data_info)
        self.objective = make_objective(objective)
        self.register_buffer("quadrature_weights", torch.from_numpy(self.forecaster.spec.grid.weights()),
                             persistent=False)
        self.train_time_s = 0.0
        self._fit_clock: float | None = None

    def forward(self, frames: Tensor, cond: Tensor) -> Tensor:
        return self.forecaster(frames, cond)

    def evaluation_stepper(self) -> Stepper:
        """The stepper validation scores (hook point for weight averaging: an EMA swaps its weights in here)."""
        return self.forecaster

    def training_step(self, batch: WindowBatch, batch_idx: int) -> Tensor:
        loss = self.objective.loss(self.forecaster, batch)
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"training stopped: the loss is {loss.item()} at step {self.global_step} (epoch {self.current_epoch}, "
                f"batch {batch_idx}, trajectories {sorted(set(batch.index.tolist()))}); the checkpoints already "
                "written are kept"
            )
        self.log("train/loss", loss, prog_bar=True, batch_size=batch.inputs.shape[0])
        return loss

    def validation_step(self, batch: TrajectoryBatch, batch_idx: int) -> None:
        stepper = self.evaluation_stepper()
        cap = self.hparams.validation["nrmse_cap"]
        n_steps = min(self.hparams.validation["rollout_steps"], batch.frames.shape[2] - stepper.history)
        per_step, _ = score_batch(stepper, batch, n_steps, weights=self.quadrature_weights)
        nrmse = per_step["nrmse"].mean(dim=2)  # [B, n_steps], channels averaged
        per_traj = torch.nan_to_num(nrmse, nan=cap, posinf=cap).clamp(max=cap).float()
        batch_size = batch.frames.shape[0]
        self.log(VAL_METRIC, per_traj.mean(), prog_bar=True, batch_size=batch_size, sync_dist=True)
        self.log("val/one_step_nrmse", per_traj[:, 0].mean(), batch_size=batch_size, sync_dist=True)

    def configure_optimizers(self) -> dict[str, Any]:
        cfg = self.hparams.optim
        optimizer = torch.optim.AdamW(self.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = max(1, int(cfg["warmup_fraction"] * total))
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine(step, total, warmup, cfg["min_lr_ratio"])
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def configure_gradient_clipping(self, optimizer: torch.optim.Optimizer, gradient_clip_val: float | None = None,
                                    gradient_clip_algorithm: str | None = None) -> None:
        if not gradient_clip_val or gradient_clip_algorithm not in (None, "norm"):
            self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)
            return
        clip_gradient_norm(self.parameters(), gradient_clip_val)

    def on_fit_start(self) -> None:
        self._fit_clock = time.perf_counter()

    def _elapsed_train_time(self) -> float:
        running = 0.0 if self._fit_clock is None else time.perf_counter() - self._fit_clock
        return self.train_time_s + running

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["pdebench"] = {
            "train_time_s": self._elapsed_train_time(),
            "n_parameters": sum(p.numel() for p in self.forecaster.parameters()),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.train_time_s = float(checkpoint.get("pdebench", {}).get("train_time_s", 0.0))
