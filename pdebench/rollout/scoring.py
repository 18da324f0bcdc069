"""Scoring rollouts: `score` runs a Stepper over trajectories and returns per-trajectory arrays keyed by trajectory
index; `summarize` reduces joined scores once. Validation (one batch at a time, `score_batch`) and the test-split
evaluation use the same code.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from pdebench.data.batch import TrajectoryBatch, collate
from pdebench.data.dataset import TrajectoryDataset
from pdebench.forecast.rollout import rollout
from pdebench.forecast.stepper import Stepper
from pdebench.rollout.metrics import DEFAULT_THRESHOLDS, STEP_METRICS, step_errors, summarize_rollout, unstable


@dataclass
class Scores:
    """Per-trajectory rollout scores; row i belongs to trajectory `index[i]` of the split file.

    per_step: metric -> `[n, n_steps, C]` float64, step 0 = the first predicted frame; unstable `[n, n_steps]` bool;
    step_time `[n]` time units per model step; forecast_seconds: wall time spent inside the stepper.
    """

    index: np.ndarray
    per_step: dict[str, np.ndarray]
    unstable: np.ndarray
    step_time: np.ndarray
    forecast_seconds: float = 0.0
    n_steps: int = field(init=False)

    def __post_init__(self) -> None:
        self.index = np.asarray(self.index, dtype=np.int64)
        n = self.index.shape[0]
        self.n_steps = int(self.unstable.shape[1]) if self.unstable.ndim == 2 else 0
        if len(np.unique(self.index)) != n:
            raise ValueError("scores hold a trajectory index more than once")
        for name, values in self.per_step.items():
            if values.shape[:2] != (n, self.n_steps):
                raise ValueError(f"per_step[{name!r}] has shape {values.shape}, expected ({n}, {self.n_steps}, C)")
        if self.unstable.shape != (n, self.n_steps) or self.step_time.shape != (n,):
            raise ValueError("unstable must be [n, n_steps] and step_time [n] like index")

    def __len__(self) -> int:
        return int(self.index.shape[0])

    @classmethod
    def join(cls, parts: Sequence[Scores]) -> Scores:
        """Concatenate scores of disjoint trajectory sets (e.g. ranks or batches), sorted by trajectory index."""
        if not parts:
            raise ValueError("nothing to join")
        index = np.concatenate([p.index for p in parts])
        order = np.argsort(index, kind="stable")
        return cls(
            index=index[order],
            per_step={name: np.concatenate([p.per_step[name] for p in parts])[order] for name in parts[0].per_step},
            unstable=np.concatenate([p.unstable for p in parts])[order],
            step_time=np.concatenate([p.step_time for p in parts])[order],
            forecast_seconds=float(sum(p.forecast_seconds for p in parts)),
        )

    @property
    def throughput(self) -> float:
        """Trajectory-steps forecast per second of stepper time (metric time excluded)."""
        return len(self) * self.n_steps / max(self.forecast_seconds, 1e-12)


@contextmanager
def eval_mode(stepper: Stepper) -> Iterator[None]:
    """Put a Stepper that is an `nn.Module` in eval mode for the block, restoring its previous mode after."""
    if not isinstance(stepper, nn.Module):
        yield
        return
    was_training = stepper.training
    stepper.eval()
    try:
        yield
    finally:
        stepper.train(was_training)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _TimedStepper:
    """Wraps a stepper and accumulates its wall time (device-synchronised)."""

    def __init__(self, stepper: Stepper, device: torch.device) -> None:
        self.stepper, self.device, self.seconds = stepper, device, 0.0
        self.history, self.bundle = stepper.history, stepper.bundle

    def __call__(self, frames: Tensor, cond: Tensor) -> Tensor:
        start = time.perf_counter()
        out = self.stepper(frames, cond)
        _synchronize(self.device)
        self.seconds += time.perf_counter() - start
        return out


def score_batch(
    stepper: Stepper,
    batch: TrajectoryBatch,
    n_steps: int,
    *,
    weights: Tensor | None = None,
    stability_factor: float = 2.0,
) -> tuple[dict[str, Tensor], Tensor]:
    """Roll one batch out from its first `stepper.history` frames for `n_steps` steps and score every step.

    Returns `(per_step, unstable)`: metric -> `[B, n_steps, C]` float64 and `[B, n_steps]` bool, on the batch's
    device. Metrics compare with the stored frames `history, history + 1, ...` (never an input frame), with
    spatial means weighted by `weights` (the grid's quadrature weights, `[*space]`).
    """
    history = stepper.history
    frames = batch.frames
    if n_steps < 1 or frames.shape[2] < history + n_steps:
        raise ValueError(
            f"trajectories have {frames.shape[2]} model frames, too few for history={history} plus {n_steps} "
            f"predicted step(s)"
        )
    truth = frames[:, :, history : history + n_steps]
    bound = stability_factor * truth.abs().amax(dim=tuple(range(1, truth.dim())))
    metrics: dict[str, list[Tensor]] = {name: [] for name in STEP_METRICS}
    flags = []
    for k, pred in enumerate(rollout(stepper, frames[:, :, :history], batch.cond, n_steps)):
        errors = step_errors(pred, truth[:, :, k], weights=weights)
        for name in STEP_METRICS:
            metrics[name].append(errors[name])
        flags.append(unstable(pred, bound))
    return {name: torch.stack(values, dim=1) for name, values in metrics.items()}, torch.stack(flags, dim=1)


@torch.inference_mode()
def score(
    stepper: Stepper,
    dataset: TrajectoryDataset,
    indices: Sequence[int] | None = None,
    *,
    max_steps: int | None = None,
    batch_size: int = 32,
    stability_factor: float = 2.0,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> Scores:
    """Roll the trajectories `indices` (default: all) of `dataset` out to their end (or `max_steps`) and score them.

    The stepper runs in eval mode on `device`; each trajectory's step time comes from its own batch entry.
    """
    device = torch.device(device)
    history = stepper.history
    n_steps = dataset.n_model_frames - history
    if max_steps is not None:
        n_steps = min(n_steps, int(max_steps))
    if n_steps < 1:
        raise ValueError(
            f"{dataset.file.path}: trajectories have {dataset.n_model_frames} model frames, too few for "
            f"history={history} plus at least one predicted step"
        )
    chosen = list(range(len(dataset))) if indices is None else [int(i) for i in indices]
    weights = torch.from_numpy(dataset.file.grid.weights()).to(device)
    timed = _TimedStepper(stepper, device)
    parts: list[Scores] = []
    loader = DataLoader(Subset(dataset, chosen), batch_size=batch_size, shuffle=False, collate_fn=collate)
    bar = tqdm(total=len(chosen) * n_steps, desc="rollout", unit="step", disable=not progress, dynamic_ncols=True)
    with eval_mode(stepper):
        for batch in loader:
            batch = TrajectoryBatch(batch.frames.to(device), batch.cond.to(device), batch.step_time, batch.index)
            per_step, flags = score_batch(timed, batch, n_steps, weights=weights, stability_factor=stability_factor)
            parts.append(Scores(
                index=batch.index.numpy(),
                per_step={name: values.cpu().numpy() for name, values in per_step.items()},
                unstable=flags.cpu().numpy(),
                step_time=batch.step_time.double().numpy(),
            ))
            bar.update(len(batch.index) * n_steps)
    bar.close()
    scores = Scores.join(parts)
    scores.forecast_seconds = timed.seconds
    return scores


def summarize(
    scores: Scores, thresholds: Sequence[float] = DEFAULT_THRESHOLDS, gmean_steps: int = 100
) -> tuple[dict[str, float | int | None], dict[str, list[float | int | None]]]:
    """Headline numbers and per-step curves of joined scores (see `pdebench.rollout.metrics.summarize_rollout`)."""
    return summarize_rollout(scores.per_step, scores.unstable, scores.step_time, thresholds=thresholds,
                             gmean_steps=gmean_steps)
