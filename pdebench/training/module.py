"""The one LightningModule that trains every registered net on every dataset."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from baselines.registry import NetShape, build_model
from pdebench.data.normalization import Normalizer
from pdebench.rollout.engine import rollout
from pdebench.rollout.metrics import step_errors
from pdebench.training.forecaster import Forecaster
from pdebench.training.objectives import loss_function

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


class SurrogateModule(L.LightningModule):
    """Trains a `Forecaster` one step ahead and validates it by autoregressive rollouts.

    `data_info` holds what the data fixes (fields, parameters, spatial dims, normalisation statistics, dataset
    name); all hyper-parameters are plain containers so checkpoints load with `weights_only=True`.
    """

    def __init__(self, model: dict[str, Any], objective: dict[str, Any], optim: dict[str, Any],
                 validation: dict[str, Any], data_info: dict[str, Any], label: str) -> None:
        super().__init__()
        self.save_hyperparameters()
        shape = NetShape(
            n_fields=len(data_info["fields"]),
            history=objective["history"],
            bundle=objective["bundle"],
            n_cond=len(data_info["parameters"]),
            spatial_dims=data_info["spatial_dims"],
        )
        self.forecaster = Forecaster(build_model(model, shape), Normalizer.from_stats(data_info["stats"]), shape)
        self.loss_fn = loss_function(objective["loss"])
        self.train_time_s = 0.0
        self._fit_clock: float | None = None

    def forward(self, frames: Tensor, params: Tensor) -> Tensor:
        return self.forecaster(frames, params)

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        inputs, targets, params = batch
        norm = self.forecaster.normalizer
        pred = self.forecaster.forward_normalized(norm.normalize_fields(inputs), norm.normalize_params(params))
        loss = self.loss_fn(pred, norm.normalize_fields(targets))
        self.log("train/loss", loss, prog_bar=True, batch_size=inputs.shape[0])
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        frames, params, _ = batch
        history = self.hparams.objective["history"]
        cap = self.hparams.validation["nrmse_cap"]
        n_steps = min(self.hparams.validation["rollout_steps"], frames.shape[2] - history)
        per_step = []
        for k, pred in enumerate(rollout(self.forecaster, frames[:, :, :history], params, n_steps)):
            nrmse = step_errors(pred, frames[:, :, history + k])["nrmse"].mean(dim=1)
            per_step.append(torch.nan_to_num(nrmse, nan=cap, posinf=cap).clamp(max=cap))
        per_traj = torch.stack(per_step, dim=1).float()
        batch_size = frames.shape[0]
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
            "label": self.hparams.label,
            "dataset": self.hparams.data_info["dataset"],
            "model": self.hparams.model["name"],
            "train_time_s": self._elapsed_train_time(),
            "n_parameters": sum(p.numel() for p in self.parameters()),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.train_time_s = float(checkpoint.get("pdebench", {}).get("train_time_s", 0.0))
