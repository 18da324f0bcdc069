"""Lightning callbacks of a training run: progress output, the model summary, weight averaging, the validation
rollout plot."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelSummary, Timer, TQDMProgressBar, WeightAveraging
from lightning.pytorch.callbacks.progress import ProgressBar
from lightning.pytorch.utilities.model_summary.model_summary import get_human_readable_count
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from pdebench.console import PROGRESS_EVERY_N_SECONDS, clock, is_terminal, rate_text
from pdebench.data.batch import TrajectoryBatch
from pdebench.forecast.rollout import rollout


class LineProgress(ProgressBar):
    """Progress for a log file (SLURM, CI): plain lines, never a carriage return.

    One line as soon as the first optimiser step of the run (or of its resumption) ends, then one every
    `every_n_steps` steps (0: none by count) and one whenever `every_n_seconds` have passed since the last (0: none
    by time), and one per epoch with its validation metrics. A terminal gets Lightning's bars instead
    (`progress_callback`). A step line reads

        step 40/2400 epoch 6 (batch 5/7) loss 0.01234 3.17 step/s elapsed 0:13 eta 12:24

    step/total (the total Lightning expects: `max_steps`, or `max_epochs` times the batches per epoch), the epoch
    (and its total when `max_epochs` bounds the run), the last training loss, the optimiser steps per second since
    the previous line (seconds per step below one), the time since training started, and an ETA from the mean step
    time so far, capped by what `trainer.max_time` leaves. `timer` gives the time in seconds.
    """

    def __init__(self, every_n_steps: int, every_n_seconds: float = PROGRESS_EVERY_N_SECONDS,
                 stream: TextIO | None = None, timer: Callable[[], float] = time.perf_counter) -> None:
        super().__init__()
        self.every_n_steps = every_n_steps
        self.every_n_seconds = every_n_seconds
        self.stream = stream
        self._timer = timer
        self._enabled = True
        self._start: float | None = None
        self._start_step = 0
        self._last_time = 0.0
        self._last_step = 0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _print(self, trainer: L.Trainer, text: str) -> None:
        if self._enabled and trainer.is_global_zero:
            print(text, file=self.stream or sys.stdout, flush=True)

    @staticmethod
    def _total_steps(trainer: L.Trainer) -> float:
        """The optimiser steps Lightning expects the run to take (inf when only `max_time` bounds it)."""
        try:
            return float(trainer.estimated_stepping_batches)
        except (ValueError, TypeError, RuntimeError):  # no finite length to estimate from (an iterable dataset)
            return math.inf

    def _eta(self, trainer: L.Trainer, now: float) -> str:
        done = trainer.global_step - self._start_step
        left: float | None = None
        total = self._total_steps(trainer)
        if self._start is not None and done > 0 and math.isfinite(total):
            left = (now - self._start) / done * max(0.0, total - trainer.global_step)
        timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
        time_left = timer.time_remaining() if timer is not None else None
        if time_left is not None:
            left = time_left if left is None else min(left, time_left)
        return "?" if left is None else clock(left)

    def _epoch(self, trainer: L.Trainer) -> str:
        bounded = trainer.max_epochs is not None and trainer.max_epochs > 0
        return f"epoch {trainer.current_epoch + 1}" + (f"/{trainer.max_epochs}" if bounded else "")

    def _step(self, trainer: L.Trainer) -> str:
        total = self._total_steps(trainer)
        return f"step {trainer.global_step}" + (f"/{int(total)}" if math.isfinite(total) else "")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = self._last_time = self._timer()
        self._start_step = self._last_step = trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        step = trainer.global_step
        if step == self._last_step or self._start is None:  # no optimiser step since the last line (accumulation)
            return
        now = self._timer()
        first = self._last_step == self._start_step
        by_count = bool(self.every_n_steps) and step % self.every_n_steps == 0
        by_time = bool(self.every_n_seconds) and now - self._last_time >= self.every_n_seconds
        if not (first or by_count or by_time):
            return
        loss = getattr(pl_module, "last_loss", None)
        loss_text = "?" if loss is None else f"{float(loss):.4g}"
        speed = rate_text(step - self._last_step, now - self._last_time, "step")
        batches = trainer.num_training_batches  # per epoch (Lightning's `total_train_batches` is cut at max_steps)
        of = f"/{int(batches)}" if math.isfinite(batches) else ""
        self._print(trainer, f"{self._step(trainer)} {self._epoch(trainer)} (batch {batch_idx + 1}{of}) loss "
                             f"{loss_text} {speed} elapsed {clock(now - self._start)} eta {self._eta(trainer, now)}")
        self._last_time, self._last_step = now, step

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/") and v.numel() == 1}
        shown = "".join(f" {k}={v:.4g}" for k, v in sorted(metrics.items()))
        self._print(trainer, f"{self._epoch(trainer)} done at {self._step(trainer)}:{shown} "
                             f"eta {self._eta(trainer, self._timer())}")


def progress_callback(enabled: bool, every_n_steps: int, every_n_seconds: float = PROGRESS_EVERY_N_SECONDS,
                      interactive: bool | None = None) -> ProgressBar | None:
    """Bars (epoch, step, loss, ETA) on a terminal, `LineProgress` lines otherwise; None when disabled."""
    if not enabled:
        return None
    if interactive is None:
        interactive = is_terminal(sys.stdout)
    return TQDMProgressBar() if interactive else LineProgress(every_n_steps, every_n_seconds)


class ParameterSummary(ModelSummary):
    """Lightning's model summary (each top-level module's name, type, parameters and mode, then the totals) without
    its FLOPs column and total, which Lightning can only count from a `example_input_array` (which pdebench's module,
    fed `TrajectoryBatch`es, has none of), so they always read 0. Printed on stdout, once (global rank 0)."""

    @staticmethod
    def summarize(summary_data: list[tuple[str, list[str]]], total_parameters: int, trainable_parameters: int,
                  model_size: float, total_training_modes: dict[str, int], total_flops: int = 0,
                  **summarize_kwargs: Any) -> None:
        print(summary_table(summary_data, total_parameters, trainable_parameters, model_size), flush=True)


def summary_table(columns: list[tuple[str, list[str]]], total_parameters: int, trainable_parameters: int,
                  model_size_mb: float) -> str:
    """The summary's columns (`(header, values)` pairs, the FLOPs column left out) as an aligned text table, then
    the parameter totals and their size in MB."""
    kept = [(header, [str(v) for v in values]) for header, values in columns if header != "FLOPs"]
    widths = [max([len(header), *map(len, values)]) for header, values in kept]
    rows = [[header for header, _ in kept], *zip(*(values for _, values in kept), strict=True)]
    lines = [" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    rule = "-" * max(map(len, lines))
    frozen = total_parameters - trainable_parameters
    which = f"{get_human_readable_count(frozen).strip()} not trainable" if frozen else "all trainable"
    totals = f"{get_human_readable_count(total_parameters).strip()} parameters ({which}), {model_size_mb:,.3f} MB"
    return "\n".join([lines[0], rule, *lines[1:], rule, totals])


def weight_averaging(decay: float | None) -> Callback | None:
    """Lightning's EMA of the weights, updated after every optimiser step, or None without a decay.

    It swaps the average in for validation (so the selection metric scores it) and writes it as the checkpoint's
    `state_dict` (so evaluation, which loads that, uses it), keeping the raw weights and its own count in the
    checkpoint, from where a resumed run restores both.

    Lightning's `WeightAveraging` (update after every optimiser step) with torch's multi-tensor EMA
    (`get_ema_multi_avg_fn`: one in-place `_foreach_lerp_` over all weights) rather than `EMAWeightAveraging`,
    whose per-tensor `decay * average + (1 - decay) * current` allocates two temporaries per tensor and passes over
    the weights three times: the same average to float rounding, in 0.6-0.7x the time per step
    (`scripts/bench_training.py`: 1.8-1.9 ms instead of 2.8-3.1 ms for its FNO on 2 CPU cores).
    """
    if decay is None:
        return None
    return TrainableWeightAveraging(multi_avg_fn=get_ema_multi_avg_fn(decay))


class TrainableAveragedModel(AveragedModel):
    """torch's `AveragedModel` that averages the trainable parameters only (and the buffers, with `use_buffers`).

    A frozen parameter (a sub-network loaded from another run and kept frozen, `pdebench.training.stages`) never
    changes, so its average is its value: the copy made when the average is created already holds it, and leaving it
    out spares one pass over it per step. With every parameter trainable this is torch's update, operation for
    operation: the first update copies, later ones call `multi_avg_fn` once per (device, dtype) group.
    """

    def update_parameters(self, model: nn.Module) -> None:
        pairs = [(mine, theirs) for mine, theirs in zip(self.module.parameters(), model.parameters(), strict=True)
                 if theirs.requires_grad]
        if self.use_buffers:
            pairs += list(zip(self.module.buffers(), model.buffers(), strict=True))
        averaged = [mine.detach() for mine, _ in pairs]
        current = [theirs.detach().to(mine.device) for mine, theirs in pairs]
        if self.n_averaged == 0:
            for mine, theirs in zip(averaged, current, strict=True):
                mine.copy_(theirs)
        else:
            groups: dict[tuple[torch.device, torch.dtype], tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
            for mine, theirs in zip(averaged, current, strict=True):
                group = groups.setdefault((mine.device, mine.dtype), ([], []))
                group[0].append(mine)
                group[1].append(theirs)
            assert self.multi_avg_fn is not None  # `TrainableWeightAveraging` always passes one
            for (device, _dtype), (mine_group, their_group) in groups.items():
                self.multi_avg_fn(mine_group, their_group, self.n_averaged.to(device))
        if not self.use_buffers:
            for mine, theirs in zip(self.module.buffers(), model.buffers(), strict=True):
                mine.detach().copy_(theirs.detach().to(mine.device))
        self.n_averaged += 1


class TrainableWeightAveraging(WeightAveraging):
    """Lightning's `WeightAveraging` over `TrainableAveragedModel`: the EMA of the trainable parameters only."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit":
            self._average_model = TrainableAveragedModel(model=pl_module, device=self._device or pl_module.device,
                                                         use_buffers=self._use_buffers, **self._kwargs)


class RolloutPlot(Callback):
    """Each validation: a PNG of the first validation trajectory rolled out by the validated weights (the EMA's,
    when averaging) next to the truth, saved under `run_dir/plots/` and sent to the logger when it takes images
    (wandb). A 1-D field is drawn as space-time images; a 2-D one as its first channel at the last step."""

    def __init__(self, out_dir: Path, max_steps: int) -> None:
        self.out_dir = Path(out_dir)
        self.max_steps = max_steps

    def on_validation_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        if batch_idx != 0 or trainer.sanity_checking or not trainer.is_global_zero:
            return
        assert isinstance(batch, TrajectoryBatch)
        stepper = pl_module.evaluation_stepper()
        history = stepper.history
        n_steps = min(self.max_steps, batch.frames.shape[2] - history)
        if n_steps < 1:
            return
        with torch.no_grad():
            preds = list(rollout(stepper, batch.frames[:1, :, :history], batch.cond[:1], n_steps))
        pred = torch.stack(preds, dim=2)[0].float().cpu().numpy()  # [C, T, *space]
        truth = batch.frames[0, :, history: history + n_steps].float().cpu().numpy()
        path = self.out_dir / f"rollout_epoch{trainer.current_epoch:04d}.png"
        self._draw(truth, pred, path, trainer.current_epoch)
        log_image = getattr(trainer.logger, "log_image", None)
        if callable(log_image):
            log_image(key="val/rollout", images=[str(path)], step=trainer.global_step,
                      caption=[f"epoch {trainer.current_epoch}: truth | prediction | error"])

    @staticmethod
    def _draw(truth: Any, pred: Any, path: Path, epoch: int) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        path.parent.mkdir(parents=True, exist_ok=True)
        if truth.ndim == 3:  # [C, T, X]: time against space
            panels = [truth[0], pred[0], pred[0] - truth[0]]
        else:  # [C, T, H, W]: the last step
            panels = [truth[0, -1], pred[0, -1], pred[0, -1] - truth[0, -1]]
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.5), constrained_layout=True)
        for ax, image, title in zip(axes, panels, ("truth", "prediction", "error"), strict=True):
            shown = ax.imshow(image, aspect="auto", origin="lower", cmap="RdBu_r" if title == "error" else "viridis")
            ax.set_title(f"{title} (epoch {epoch})")
            fig.colorbar(shown, ax=ax)
        fig.savefig(path, dpi=80)
        plt.close(fig)
