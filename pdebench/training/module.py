"""The one LightningModule that trains every registered net on every dataset."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor, nn

from baselines.registry import ModelConfig, model_config
from pdebench.config import (
    BenchmarkConfig,
    ObjectiveConfig,
    OptimConfig,
    RolloutConfig,
    ValidationConfig,
    plain_config,
    typed_settings,
)
from pdebench.data.batch import TrajectoryBatch, WindowBatch
from pdebench.errors import UserError
from pdebench.forecast.checkpoint import build_forecaster
from pdebench.forecast.stepper import Stepper
from pdebench.forecast.targets import objective_config
from pdebench.rollout.reductions import summarize_rollout
from pdebench.rollout.scoring import ScoringSpec, score_batch
from pdebench.training import dyffusion_objectives  # noqa: F401 (registers DYffusion's two stage objectives)
from pdebench.training.objectives import check_objective_fits, make_objective, noise_seed
from pdebench.training.stages import StageMetric

VAL_METRIC = "val/rollout_nrmse"
SELECTION_METRIC = "val/selection"  # what `best.ckpt` is chosen on (see `selection_score`)
# The validation summary reduces its rollout as an evaluation with the default rollout settings does: the same
# correlation thresholds (`corr_time_*` keys) and step windows (`nrmse_steps_*`, `vrmse_steps_*`), so that any
# headline a PDE names can choose the checkpoint. Its rollouts are flagged unstable at the default energy factor,
# and score the pointwise errors only (no spectra, drift or ensemble).
VALIDATION_ROLLOUT = RolloutConfig()
VALIDATION_SCORING = ScoringSpec(energy_factor=BenchmarkConfig().stability_energy_factor)


def validation_summary(per_step: dict[str, np.ndarray], unstable: np.ndarray, step_time: np.ndarray | float,
                       gmean_steps: int) -> dict[str, float | int | None]:
    """The summary of a validation rollout (`per_step`: name -> `[n_traj, n_steps, C]`), reduced as evaluation
    reduces a test rollout (`VALIDATION_ROLLOUT`'s thresholds and windows)."""
    summary, _ = summarize_rollout(per_step, unstable, step_time, VALIDATION_ROLLOUT.thresholds, gmean_steps,
                                   VALIDATION_ROLLOUT.windows)
    return summary


def validation_metric_names(gmean_steps: int = 1) -> list[str]:
    """Every summary key a validation rollout offers as the checkpoint-selection metric (the PDE's headline)."""
    ones = {name: np.ones((1, 1, 1)) for name in ("mse", "nrmse", "vrmse", "corr")}
    return sorted(validation_summary(ones, np.zeros((1, 1), dtype=bool), 1.0, gmean_steps))


def selection_record(bench: BenchmarkConfig) -> dict[str, Any]:
    """What `best.ckpt` is chosen on, from the PDE's benchmark facts: its headline metric, the metric's direction
    and the geometric-mean steps, as the plain dict the module keeps among its hyper-parameters."""
    return {"metric": bench.headline, "goal": bench.headline_goal, "gmean_steps": bench.gmean_steps}


def selection_score(value: float | None, goal: str, mean_nrmse: float, nrmse_cap: float, step_time: float,
                    quantised: bool) -> float:
    """The number `best.ckpt` is chosen on (always maximised): the headline, sign-flipped when lower is better.

    A high-correlation time counts whole model steps, so two epochs often tie (a short validation rollout saturates
    at its ceiling); for such a quantised headline the mean rollout nRMSE breaks the tie, weighted so that it moves
    the score by less than half a model step (`0.5 * step_time * nrmse / cap`, nRMSE clipped at `cap`): it can never
    reorder two different headline values. An undefined headline (None, non-finite) scores -inf, never best.
    """
    if value is None or not math.isfinite(value):
        return -math.inf
    score = value if goal == "max" else -value
    if quantised:
        score -= 0.5 * step_time * min(max(mean_nrmse, 0.0), nrmse_cap) / nrmse_cap
    return score


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


def rng_states() -> dict[str, Any]:
    """The process's random streams (torch CPU and CUDA, NumPy, Python) as tensors and plain containers, so that a
    checkpoint holding them still loads with `weights_only=True`."""
    numpy_state = np.random.get_state()  # noqa: NPY002 (the global stream libraries draw from)
    python_state = random.getstate()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(numpy_state[1].astype(np.int64)), "pos": int(numpy_state[2]),
                  "has_gauss": int(numpy_state[3]), "cached_gaussian": float(numpy_state[4])},
        "python": {"version": python_state[0], "state": list(python_state[1]), "gauss": python_state[2]},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Inverse of `rng_states` (CUDA streams only when this process has as many devices)."""
    torch.set_rng_state(states["torch"].cpu())
    numpy_state = states["numpy"]
    keys = numpy_state["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, numpy_state["pos"], numpy_state["has_gauss"],  # noqa: NPY002
                         numpy_state["cached_gaussian"]))
    python_state = states["python"]
    random.setstate((python_state["version"], tuple(python_state["state"]), python_state["gauss"]))
    cuda = states.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([state.cpu() for state in cuda])


class TrainingDiverged(UserError, ValueError):
    """A non-finite loss: training stops, naming the step and the batch; written checkpoints stay."""


@dataclass(frozen=True)
class StepLoss:
    """The loss of one optimisation step and where it came from, until it is checked to be finite."""

    loss: Tensor  # [], detached, on the training device
    step: int
    epoch: int
    batch_idx: int
    trajectories: Tensor  # [B] trajectory index of each window of the batch


def first_non_finite(losses: list[StepLoss]) -> StepLoss | None:
    """The earliest of `losses` that is not finite, or None; one host sync for all of them."""
    if not losses:
        return None
    finite = torch.isfinite(torch.stack([entry.loss for entry in losses]))
    if bool(finite.all()):
        return None
    return losses[int((~finite).nonzero()[0, 0])]


class SurrogateModule(L.LightningModule):
    """Optimisation, logging and checkpoints of one `Forecaster`; the loss is the `Objective`'s.

    `model`, `objective`, `optim`, `validation` are the typed config sections (the model's `ModelConfig`,
    `ObjectiveConfig`, `OptimConfig`, `ValidationConfig`), or their plain dicts when the module is rebuilt from a
    checkpoint, which are typed again here; `data_info` is what the data fixes (dataset, pde, preset, frame_stride,
    manifest hash, fields, parameters, grid record, train statistics); `run` is the run's identity (label, seed, git
    commit) and its recipe (`recipe`, `deviations`, `tuning`: `pdebench.training.run.run_identity`), which result
    files copy. Every hyper-parameter is stored as a plain container (the sections as the dicts a resolved config
    holds), so checkpoints load with `weights_only=True`. See `pdebench.forecast.checkpoint`.
    """

    # Optimisation steps between checks that the loss is finite. None: every step on a CPU, where a check costs
    # nothing, and every `trainer.log_every_n_steps` steps on an accelerator, where each check waits for the device
    # to catch up (a host sync per step would stall its queue). Pending losses are always checked before a
    # checkpoint is written and before validation, so no checkpoint holds weights a non-finite loss has touched,
    # and the error names the first bad step whenever it is found.
    finite_check_interval: int | None = None

    def __init__(self, model: ModelConfig | Mapping[str, Any], objective: ObjectiveConfig | Mapping[str, Any],
                 optim: OptimConfig | Mapping[str, Any], validation: ValidationConfig | Mapping[str, Any],
                 data_info: dict[str, Any], run: dict[str, Any], selection: dict[str, Any] | None = None) -> None:
        super().__init__()
        model, objective = model_config(model), objective_config(objective)
        # a checkpoint's plain sections are typed again; one it predates takes the schema's defaults
        self.optim_config = typed_settings(OptimConfig, optim, "optim")
        self.validation_config = typed_settings(ValidationConfig, validation, "validation")
        self.save_hyperparameters({
            "model": plain_config(model), "objective": plain_config(objective),
            "optim": plain_config(self.optim_config), "validation": plain_config(self.validation_config),
            "data_info": data_info, "run": run, "selection": selection,
        })
        self.selection = {**selection_record(BenchmarkConfig()), **(selection or {})}
        self._val_parts: list[dict[str, Tensor]] = []
        # the whole resolved config as plain containers (`plain_config`), recorded in every checkpoint
        self.run_config: dict[str, Any] | None = None
        self.forecaster = build_forecaster(model, objective, data_info)
        self.objective = make_objective(objective)
        check_objective_fits(objective.name, self.objective, self.forecaster.net, model.name)
        self.register_buffer("quadrature_weights", torch.from_numpy(self.forecaster.spec.grid.weights()),
                             persistent=False)
        # an objective whose stage is not a Stepper (an interpolator) scores validation itself (`StageMetric`)
        self.stage_metric = self.objective if isinstance(self.objective, StageMetric) else None
        # dotted paths, in the net, of the sub-networks loaded frozen (`pdebench.training.stages.load_frozen`)
        self.frozen: list[str] = []
        self.train_time_s = 0.0
        self._fit_clock: float | None = None
        self._unchecked_losses: list[StepLoss] = []

    def forward(self, frames: Tensor, cond: Tensor) -> Tensor:
        return self.forecaster(frames, cond)

    def train(self, mode: bool = True) -> SurrogateModule:
        """Lightning's switch between training and evaluation; frozen sub-networks stay in eval mode."""
        super().train(mode)
        for name in self.frozen:
            self.forecaster.net.get_submodule(name).eval()
        return self

    def evaluation_stepper(self) -> Stepper:
        """The stepper validation scores (hook point for weight averaging: an EMA swaps its weights in here)."""
        return self.forecaster

    def on_train_epoch_start(self) -> None:
        """Tell an objective with a curriculum (pushforward) which epoch this is (restored on resume)."""
        set_epoch = getattr(self.objective, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(self.current_epoch)

    def training_step(self, batch: WindowBatch, batch_idx: int) -> Tensor:
        set_step = getattr(self.objective, "set_step", None)
        if callable(set_step):  # a curriculum by share of the budget (pushforward's curriculum_fraction)
            set_step(self.global_step, int(self.trainer.max_steps))
        start_batch = getattr(self.objective, "start_batch", None)
        if callable(start_batch):  # input noise of its own per rank and step; the step is restored on resume
            start_batch(noise_seed(int(self.hparams.run["seed"]), self.global_rank, self.global_step))
        loss = self.objective.loss(self.forecaster, batch)
        self.last_loss = loss.detach()
        self._unchecked_losses.append(StepLoss(self.last_loss, self.global_step, self.current_epoch, batch_idx,
                                               batch.index))
        if len(self._unchecked_losses) >= self._finite_check_every(loss.device):
            self.check_losses_finite()
        # Logged only on the steps the logger writes: a `self.log` call per step (and the host sync its progress-bar
        # value costs) is a measurable share of a small model's step (scripts/bench_training.py).
        if self._trainer is not None and (self.global_step + 1) % self.trainer.log_every_n_steps == 0:
            self.log("train/loss", loss, prog_bar=True, batch_size=batch.inputs.shape[0])
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """End a step budget (`trainer.max_steps`, a recipe's) with a validation.

        Lightning stops at the budget's last step without validating when that step falls inside an epoch, so the
        steps since the last epoch would never be scored, could not become `best.ckpt` and would leave no
        `last.ckpt` to resume; asking the trainer to stop here makes its loop validate this batch first (as early
        stopping does), which also writes both checkpoints."""
        trainer = self._trainer
        if trainer is not None and trainer.max_steps > 0 and self.global_step >= trainer.max_steps:
            trainer.should_stop = True

    def validation_step(self, batch: TrajectoryBatch, batch_idx: int) -> None:
        if self.stage_metric is not None:
            self._stage_validation_step(self.stage_metric, batch)
            return
        stepper = self.evaluation_stepper()
        cap = self.validation_config.nrmse_cap
        n_steps = min(self.validation_config.rollout_steps, batch.frames.shape[2] - stepper.history)
        per_step, unstable = score_batch(stepper, batch, n_steps, spec=VALIDATION_SCORING,
                                         weights=self.quadrature_weights)
        nrmse = per_step["nrmse"].mean(dim=2)  # [B, n_steps], channels averaged
        per_traj = torch.nan_to_num(nrmse, nan=cap, posinf=cap).clamp(max=cap).float()
        batch_size = batch.frames.shape[0]
        self.log(VAL_METRIC, per_traj.mean(), prog_bar=True, batch_size=batch_size, sync_dist=True)
        self.log("val/one_step_nrmse", per_traj[:, 0].mean(), batch_size=batch_size, sync_dist=True)
        part = {name: per_step[name].mean(dim=2).double() for name in ("mse", "nrmse", "vrmse", "corr")}
        part["capped_nrmse"] = per_traj.double()
        part["unstable"] = unstable.double()
        part["step_time"] = batch.step_time.double().reshape(-1, 1).expand(-1, n_steps)
        self._val_parts.append(part)

    def _stage_validation_step(self, metric: StageMetric, batch: TrajectoryBatch) -> None:
        """One validation batch of a stage that scores itself: its per-trajectory errors, capped as rollout nRMSEs
        are (a non-finite error counts as the cap)."""
        cap = self.validation_config.nrmse_cap
        errors = metric.validation_errors(self.forecaster, batch).detach()
        per_traj = torch.nan_to_num(errors, nan=cap, posinf=cap).clamp(max=cap).double()
        self._val_parts.append({"stage_error": per_traj})

    def _finite_check_every(self, device: torch.device) -> int:
        if self.finite_check_interval is not None:
            return max(1, int(self.finite_check_interval))
        if device.type == "cpu" or self._trainer is None:
            return 1
        return max(1, int(self.trainer.log_every_n_steps))

    def check_losses_finite(self) -> None:
        """Raise `TrainingDiverged` naming the first step since the last check whose loss was not finite."""
        pending, self._unchecked_losses = self._unchecked_losses, []
        bad = first_non_finite(pending)
        if bad is None:
            return
        found = "" if bad is pending[-1] else f", found at step {pending[-1].step}"
        raise TrainingDiverged(
            f"training stopped: the loss is {bad.loss.item()} at step {bad.step} (epoch {bad.epoch}, batch "
            f"{bad.batch_idx}, trajectories {sorted(set(bad.trajectories.tolist()))}{found}); the checkpoints "
            "already written are kept"
        )

    def on_validation_epoch_start(self) -> None:
        self.check_losses_finite()
        self._val_parts = []

    def on_validation_epoch_end(self) -> None:
        """The PDE's headline metric over all validation trajectories (of every rank), and the selection score.

        Metrics like the high-correlation time are not means over batches (PDE-Refiner's count thresholds the
        trajectory-averaged correlation per step), so each rank keeps its per-trajectory curves and the summary is
        computed once over all of them. Logged as `val/<headline>` and `val/selection` (see `selection_score`).
        """
        parts, self._val_parts = self._val_parts, []
        if not parts:
            return
        joined = {name: torch.cat([p[name] for p in parts]) for name in parts[0]}
        if self.trainer.world_size > 1:  # the distributed sampler pads every rank to the same count
            joined = {name: self.all_gather(t).flatten(0, 1) for name, t in joined.items()}
        if self.stage_metric is not None:  # the stage's own error, averaged over every validation trajectory
            value = float(joined["stage_error"].mean())
            self.log(f"val/{self.stage_metric.metric}", value, prog_bar=True, sync_dist=True)
            self.log(SELECTION_METRIC, -value if self.stage_metric.goal == "min" else value, sync_dist=True)
            return
        arrays = {name: t.cpu().numpy() for name, t in joined.items()}
        per_step = {name: arrays[name][:, :, None] for name in ("mse", "nrmse", "vrmse", "corr")}
        step_time = arrays["step_time"][:, 0]
        summary = validation_summary(per_step, arrays["unstable"] > 0.5, step_time, int(self.selection["gmean_steps"]))
        metric, goal = self.selection["metric"], self.selection["goal"]
        value = summary.get(metric)
        headline = math.nan if value is None else float(value)
        score = selection_score(value, goal, float(arrays["capped_nrmse"].mean()),
                                float(self.validation_config.nrmse_cap), float(step_time.mean()),
                                quantised=metric.startswith("corr_time"))
        # every rank holds the same numbers (computed from the gathered curves); the mean over ranks keeps them
        self.log(f"val/{metric}", headline, prog_bar=True, sync_dist=True)
        self.log(SELECTION_METRIC, score, sync_dist=True)

    def configure_optimizers(self) -> dict[str, Any]:
        cfg = self.optim_config
        trainable = [p for p in self.parameters() if p.requires_grad]  # frozen sub-networks left out
        optimizer = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = max(1, int(cfg.warmup_fraction * total))
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine(step, total, warmup, cfg.min_lr_ratio)
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

    def on_train_end(self) -> None:
        self.check_losses_finite()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.check_losses_finite()  # before anything is written
        checkpoint["pdebench"] = {
            "train_time_s": self._elapsed_train_time(),
            "n_parameters": sum(p.numel() for p in self.forecaster.parameters()),
            "rng": rng_states(),
        }
        if self.run_config is not None:
            checkpoint["pdebench"]["config"] = self.run_config

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        meta = checkpoint.get("pdebench", {})
        self.train_time_s = float(meta.get("train_time_s", 0.0))
        if self._trainer is not None and "rng" in meta:  # a resumed fit continues the random streams it saved
            restore_rng_states(meta["rng"])
