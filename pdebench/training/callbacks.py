"""Lightning callbacks of a training run: progress output, weight averaging, the validation rollout plot."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, TextIO

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, TQDMProgressBar, WeightAveraging
from lightning.pytorch.callbacks.progress import ProgressBar
from torch.optim.swa_utils import get_ema_multi_avg_fn

from pdebench.data.batch import TrajectoryBatch
from pdebench.forecast.rollout import rollout


def _clock(seconds: float) -> str:
    """`3:25` or `1:02:03` (h:mm:ss) for a number of seconds."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class LineProgress(ProgressBar):
    """Progress for a log file (SLURM, CI): one plain line every `every_n_steps` steps and one per epoch.

    A terminal gets Lightning's bars instead (`progress_callback`); written to a file, their carriage-return updates
    become one line each, thousands per run. Each line holds epoch, step, the last training loss, elapsed time and
    an ETA for the whole run from the mean step time so far; the epoch line adds the validation metrics.
    """

    def __init__(self, every_n_steps: int, stream: TextIO | None = None) -> None:
        super().__init__()
        self.every_n_steps = every_n_steps
        self.stream = stream
        self._enabled = True
        self._start: float | None = None
        self._start_step = 0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _print(self, trainer: L.Trainer, text: str) -> None:
        if self._enabled and trainer.is_global_zero:
            print(text, file=self.stream or sys.stdout, flush=True)

    def _eta(self, trainer: L.Trainer) -> str:
        done = trainer.global_step - self._start_step
        if self._start is None or done <= 0:
            return "?"
        total = trainer.estimated_stepping_batches
        remaining = max(0, int(total) - trainer.global_step) if total != float("inf") else 0
        return _clock((time.perf_counter() - self._start) / done * remaining)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start, self._start_step = time.perf_counter(), trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if not self.every_n_steps or trainer.global_step % self.every_n_steps:
            return
        loss = getattr(pl_module, "last_loss", None)
        loss_text = "?" if loss is None else f"{float(loss):.4g}"
        elapsed = 0.0 if self._start is None else time.perf_counter() - self._start
        self._print(trainer, f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs} step {trainer.global_step} "
                             f"(batch {batch_idx + 1}/{self.total_train_batches}) loss {loss_text} "
                             f"elapsed {_clock(elapsed)} eta {self._eta(trainer)}")

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/") and v.numel() == 1}
        shown = " ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()))
        self._print(trainer, f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs} done at step "
                             f"{trainer.global_step}: {shown} eta {self._eta(trainer)}")


def progress_callback(enabled: bool, every_n_steps: int, interactive: bool | None = None) -> ProgressBar | None:
    """Bars (epoch, step, loss, ETA) on a terminal, `LineProgress` lines otherwise; None when disabled."""
    if not enabled:
        return None
    if interactive is None:
        interactive = sys.stdout.isatty()
    return TQDMProgressBar() if interactive else LineProgress(every_n_steps)


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
    return WeightAveraging(multi_avg_fn=get_ema_multi_avg_fn(decay))


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
