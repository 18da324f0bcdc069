"""Long-horizon evaluation: batched autoregressive rollouts of whole test trajectories, metrics streamed per step."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from pdebench.data.dataset import TrajectoryDataset
from pdebench.rollout.engine import Stepper, rollout
from pdebench.rollout.metrics import step_errors, summarize_rollout, unstable

PER_STEP_METRICS = ("mse", "rmse", "nrmse", "vrmse", "corr")


@dataclass
class RolloutReport:
    """Everything one evaluation measured; `per_step` arrays are `[n_traj, n_steps, C]`, step 0 = first prediction."""

    summary: dict[str, float | None]
    curves: dict[str, list[float]]
    per_step: dict[str, np.ndarray]
    unstable: np.ndarray  # [n_traj, n_steps] bool
    step_time: np.ndarray  # [n_traj] time units per model step
    n_steps: int
    throughput: float  # trajectory-steps per second of forecasting (metric time excluded)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _TimedStepper:
    """Wraps a stepper and accumulates its wall time (device-synchronised)."""

    def __init__(self, stepper: Stepper, device: torch.device) -> None:
        self.stepper, self.device, self.seconds = stepper, device, 0.0

    def __call__(self, frames: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        out = self.stepper(frames, params)
        _synchronize(self.device)
        self.seconds += time.perf_counter() - start
        return out


@torch.inference_mode()
def evaluate_rollouts(
    stepper: Stepper,
    dataset: TrajectoryDataset,
    history: int,
    *,
    batch_size: int = 32,
    max_steps: int | None = None,
    thresholds: tuple[float, ...] = (0.8, 0.9, 0.95),
    gmean_steps: int = 100,
    stability_factor: float = 2.0,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> RolloutReport:
    """Roll every trajectory of `dataset` out from its first `history` model frames to its end and score it.

    Metrics are computed in physical units against the stored frames `history, history + 1, ...`.
    """
    device = torch.device(device)
    n_steps = dataset.n_model_frames - history
    if max_steps is not None:
        n_steps = min(n_steps, max_steps)
    if n_steps < 1:
        raise ValueError(
            f"{dataset.file.path}: trajectories have {dataset.n_model_frames} model frames, too few for "
            f"history={history} plus at least one predicted step"
        )
    timed = _TimedStepper(stepper, device)
    per_step: dict[str, list[np.ndarray]] = {name: [] for name in PER_STEP_METRICS}
    unstable_flags = []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    bar = tqdm(total=len(dataset) * n_steps, desc="rollout", unit="step", disable=not progress, dynamic_ncols=True)
    for frames, params, _ in loader:
        frames, params = frames.to(device), params.to(device)
        truth = frames[:, :, history : history + n_steps]
        bound = stability_factor * truth.abs().amax(dim=tuple(range(1, truth.dim())))
        batch_metrics: dict[str, list[torch.Tensor]] = {name: [] for name in PER_STEP_METRICS}
        batch_unstable = []
        for k, pred in enumerate(rollout(timed, frames[:, :, :history], params, n_steps)):
            errors = step_errors(pred, truth[:, :, k])
            for name in PER_STEP_METRICS:
                batch_metrics[name].append(errors[name].cpu())
            batch_unstable.append(unstable(pred, bound).cpu())
            bar.update(len(frames))
        for name in PER_STEP_METRICS:
            per_step[name].append(torch.stack(batch_metrics[name], dim=1).numpy())
        unstable_flags.append(torch.stack(batch_unstable, dim=1).numpy())
    bar.close()
    stacked = {name: np.concatenate(chunks, axis=0) for name, chunks in per_step.items()}
    flags = np.concatenate(unstable_flags, axis=0)
    step_time = dataset.step_times.numpy()[: len(dataset)]
    summary, curves = summarize_rollout(stacked, flags, step_time, thresholds=thresholds, gmean_steps=gmean_steps)
    throughput = len(dataset) * n_steps / max(timed.seconds, 1e-12)
    return RolloutReport(summary, curves, stacked, flags, step_time, n_steps, throughput)
