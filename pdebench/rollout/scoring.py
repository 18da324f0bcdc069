"""Scoring rollouts: `score` runs a Stepper over trajectories and returns per-trajectory arrays keyed by trajectory
index; `summarize` reduces joined scores once. Validation (one batch at a time, `score_batch`) and the test-split
evaluation use the same code.

Batch invariance: `score` calls the stepper with exactly `batch_size` trajectories every time (at least 2, at most
the split's size); a short last batch (or a rank's short shard) is padded with copies of its last trajectory and the
copies' outputs are discarded. A net
whose kernels pick their algorithm by batch size (a batch of one often takes another GEMM path) therefore sees the
same shapes whatever the number of trajectories, so a trajectory's scores do not depend on the split size or the
number of ranks.
"""

from __future__ import annotations

import math
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
from pdebench.forecast.stepper import EnsembleStepper, Stepper
from pdebench.rollout.metrics import (
    DEFAULT_THRESHOLDS,
    DEFAULT_WINDOWS,
    energy,
    ensemble_scores,
    invariant,
    step_errors,
    summarize_rollout,
    unstable_energy,
)
from pdebench.rollout.spectra import GridSpectrum

MIN_ROWS = 2
"""The fewest trajectories the stepper is called with (padding with copies where there are fewer)."""


@dataclass(frozen=True)
class ScoringSpec:
    """What is scored besides the pointwise errors; the PDE's values come from its benchmark facts.

    band_edges: `(a, b)` shell edges of the low / mid / high spectral bands (None: no band errors).
    spectrum_steps: 1-based model steps at which predicted and true energy spectra are kept per trajectory.
    conserved: the PDE's invariant (`mean`, `mass`; None: no drift); conserved_channels: the channels it applies to
        (None: every channel).
    energy_factor: a prediction is unstable once its energy exceeds this factor times the largest energy of the
        trajectory's stored frames (inputs and targets), or once it is non-finite.
    ensemble: members M drawn with the stepper's `sample` (1: the deterministic call only).
    ensemble_seed: seed of the members' noise, set before each batch.
    """

    band_edges: tuple[float, float] | None = None
    spectrum_steps: tuple[int, ...] = ()
    conserved: str | None = None
    conserved_channels: tuple[int, ...] | None = None
    energy_factor: float = 4.0
    ensemble: int = 1
    ensemble_seed: int = 0


@dataclass
class Scores:
    """Per-trajectory rollout scores; row i belongs to trajectory `index[i]` of the split file.

    per_step: metric -> `[n, n_steps, C]` float64, step 0 = the first predicted frame; unstable `[n, n_steps]` bool;
    step_time `[n]` time units per model step; forecast_seconds: wall time spent inside the stepper (summed over
    ranks); extra: other per-trajectory arrays `[n, ...]` (energy spectra at `spectrum_steps`: `spectrum_pred`,
    `spectrum_true` `[n, S, C, n_shells]`).
    """

    index: np.ndarray
    per_step: dict[str, np.ndarray]
    unstable: np.ndarray
    step_time: np.ndarray
    forecast_seconds: float = 0.0
    extra: dict[str, np.ndarray] = field(default_factory=dict)
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
        for name, values in self.extra.items():
            if values.shape[:1] != (n,):
                raise ValueError(f"extra[{name!r}] has shape {values.shape}, expected {n} rows")
        if self.unstable.shape != (n, self.n_steps) or self.step_time.shape != (n,):
            raise ValueError("unstable must be [n, n_steps] and step_time [n] like index")

    def __len__(self) -> int:
        return int(self.index.shape[0])

    @classmethod
    def join(cls, parts: Sequence[Scores]) -> Scores:
        """Concatenate scores of disjoint trajectory sets (e.g. ranks or batches), sorted by trajectory index."""
        parts = [p for p in parts if len(p)] or list(parts[:1])
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
            extra={name: np.concatenate([p.extra[name] for p in parts])[order] for name in parts[0].extra},
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

    def sample(self, frames: Tensor, cond: Tensor, n: int) -> Tensor:
        start = time.perf_counter()
        out = self.stepper.sample(frames, cond, n)  # type: ignore[attr-defined]
        _synchronize(self.device)
        self.seconds += time.perf_counter() - start
        return out


class _OneDraw:
    """A Stepper that draws one sample per call from an EnsembleStepper (rows of a repeated batch are members)."""

    def __init__(self, stepper: EnsembleStepper) -> None:
        self.stepper, self.history, self.bundle = stepper, stepper.history, stepper.bundle

    def __call__(self, frames: Tensor, cond: Tensor) -> Tensor:
        return self.stepper.sample(frames, cond, 1)[0]


@dataclass
class BatchScores:
    """Scores of one batch, on its device: per_step metric -> `[B, n_steps, C]` float64, unstable `[B, n_steps]`,
    extra name -> `[B, ...]` (energy spectra at the chosen steps)."""

    per_step: dict[str, Tensor]
    unstable: Tensor
    extra: dict[str, Tensor]


def score_batch_full(
    stepper: Stepper,
    batch: TrajectoryBatch,
    n_steps: int,
    *,
    weights: Tensor | None = None,
    spec: ScoringSpec | None = None,
    spectrum: GridSpectrum | None = None,
) -> BatchScores:
    """Roll one batch out from its first `stepper.history` frames for `n_steps` steps and score every step.

    Metrics compare with the stored frames `history, history + 1, ...` (never an input frame), with spatial means
    weighted by `weights` (the grid's quadrature weights, `[*space]`). `spectrum` (built from the grid and
    `spec.band_edges`) adds the band errors `mse_low/mid/high` and the spectra at `spec.spectrum_steps`. With
    `spec.ensemble = M > 1` the stepper must have `sample`: M members are rolled out (each from its own previous
    sample), the deterministic metrics score member 0 and `crps`, `spread2`, `ens_mse` score all of them.
    """
    spec = spec or ScoringSpec()
    history = stepper.history
    frames = batch.frames
    if n_steps < 1 or frames.shape[2] < history + n_steps:
        raise ValueError(
            f"trajectories have {frames.shape[2]} model frames, too few for history={history} plus {n_steps} "
            f"predicted step(s)"
        )
    truth = frames[:, :, history : history + n_steps]
    stored = frames[:, :, : history + n_steps]
    stored_energy = torch.stack([energy(stored[:, :, j], weights) for j in range(stored.shape[2])], dim=1)
    bound = spec.energy_factor * stored_energy.amax(dim=1)
    initial = frames[:, :, :history]
    conserved_ref = None
    if spec.conserved is not None:
        conserved_ref = invariant(initial[:, :, -1], spec.conserved, weights)
    members = int(spec.ensemble)
    b = frames.shape[0]
    if members > 1:
        inner = stepper.stepper if isinstance(stepper, _TimedStepper) else stepper
        if not callable(getattr(inner, "sample", None)):
            raise ValueError(f"rollout.ensemble={members} needs a stochastic stepper with a `sample` method; "
                             f"{type(inner).__name__} has none")
        source = rollout(_OneDraw(stepper), initial.repeat(members, *([1] * (initial.dim() - 1))),
                         batch.cond.repeat(members, 1), n_steps)
    else:
        source = rollout(stepper, initial, batch.cond, n_steps)
    metrics: dict[str, list[Tensor]] = {}
    flags = []
    spectrum_steps = [s for s in spec.spectrum_steps if 1 <= s <= n_steps]
    spectra_pred: list[Tensor] = []
    spectra_true: list[Tensor] = []
    for k, out in enumerate(source):
        samples = out.reshape(members, b, *out.shape[1:]) if members > 1 else None
        pred = samples[0] if samples is not None else out
        target = truth[:, :, k]
        values = step_errors(pred, target, weights=weights)
        if spectrum is not None:
            bands = spectrum.band_energy(pred.to(torch.float64) - target.to(torch.float64))  # [B, C, 3]
            bad = ~torch.isfinite(bands)
            bands = torch.where(bad, torch.full_like(bands, math.inf), bands)
            for j, name in enumerate(("mse_low", "mse_mid", "mse_high")):
                values[name] = bands[..., j]
            if k + 1 in spectrum_steps:
                spectra_pred.append(spectrum.energy_spectrum(pred))
                spectra_true.append(spectrum.energy_spectrum(target))
        if conserved_ref is not None:
            drift = (invariant(pred, spec.conserved, weights) - conserved_ref).abs()
            drift = torch.where(torch.isfinite(drift), drift, torch.full_like(drift, math.inf))
            if spec.conserved_channels is not None:
                drift = drift[:, list(spec.conserved_channels)]
            values["drift"] = drift
        if samples is not None:
            values.update(ensemble_scores(samples, target, weights))
        for name, value in values.items():
            metrics.setdefault(name, []).append(value)
        flags.append(unstable_energy(pred, bound, weights))
    extra = {}
    if spectra_pred:
        extra = {"spectrum_pred": torch.stack(spectra_pred, dim=1), "spectrum_true": torch.stack(spectra_true, dim=1)}
    return BatchScores({name: torch.stack(v, dim=1) for name, v in metrics.items()}, torch.stack(flags, dim=1), extra)


def score_batch(
    stepper: Stepper,
    batch: TrajectoryBatch,
    n_steps: int,
    *,
    weights: Tensor | None = None,
    spec: ScoringSpec | None = None,
) -> tuple[dict[str, Tensor], Tensor]:
    """`(per_step, unstable)` of :func:`score_batch_full` (metric -> `[B, n_steps, C]`, `[B, n_steps]` bool)."""
    out = score_batch_full(stepper, batch, n_steps, weights=weights, spec=spec)
    return out.per_step, out.unstable


def _padded(batch: TrajectoryBatch, size: int) -> TrajectoryBatch:
    """`batch` grown to `size` rows with copies of its last row (their outputs are discarded by the caller)."""
    missing = size - batch.frames.shape[0]
    if missing <= 0:
        return batch

    def grow(t: Tensor) -> Tensor:
        return torch.cat([t, t[-1:].expand(missing, *t.shape[1:])])

    return TrajectoryBatch(grow(batch.frames), grow(batch.cond), grow(batch.step_time), grow(batch.index))


def _numpy(t: Tensor, rows: int) -> np.ndarray:
    return t[:rows].cpu().numpy()


@torch.inference_mode()
def score(
    stepper: Stepper,
    dataset: TrajectoryDataset,
    indices: Sequence[int] | None = None,
    *,
    max_steps: int | None = None,
    batch_size: int = 32,
    spec: ScoringSpec | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> Scores:
    """Roll the trajectories `indices` (default: all) of `dataset` out to their end (or `max_steps`) and score them.

    The stepper runs in eval mode on `device`, always on `batch_size` trajectories at a time (see the module
    docstring); each trajectory's step time comes from its own batch entry. Memory does not grow with the number of
    trajectories beyond the per-step scores: frames are read one batch at a time.
    """
    device = torch.device(device)
    spec = spec or ScoringSpec()
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
    # Every call gets the same number of rows: the batch size, or the whole split when it is smaller (a number that
    # depends on the split, never on the shard a rank holds), and never fewer than 2, since a single row takes other
    # kernel paths (an FNO on CPU: 6e-8 from the same row in any larger batch, which chaos grows).
    batch_size = max(MIN_ROWS, min(int(batch_size), len(dataset)))
    grid = dataset.file.grid
    weights = torch.from_numpy(grid.weights()).to(device)
    spectrum = GridSpectrum(grid, spec.band_edges) if spec.band_edges is not None else None
    timed = _TimedStepper(stepper, device)
    parts: list[Scores] = []
    loader = DataLoader(Subset(dataset, chosen), batch_size=batch_size, shuffle=False, collate_fn=collate)
    bar = tqdm(total=len(chosen) * n_steps, desc="rollout", unit="step", disable=not progress, dynamic_ncols=True)
    with eval_mode(stepper):
        for batch in loader:
            rows = len(batch.index)
            padded = _padded(batch, batch_size)
            padded = TrajectoryBatch(padded.frames.to(device), padded.cond.to(device), padded.step_time,
                                     padded.index)
            if spec.ensemble > 1:
                torch.manual_seed(spec.ensemble_seed)
            out = score_batch_full(timed, padded, n_steps, weights=weights, spec=spec, spectrum=spectrum)
            parts.append(Scores(
                index=batch.index.numpy(),
                per_step={name: _numpy(values, rows) for name, values in out.per_step.items()},
                unstable=_numpy(out.unstable, rows),
                step_time=batch.step_time.double().numpy(),
                extra={name: _numpy(values, rows) for name, values in out.extra.items()},
            ))
            bar.update(rows * n_steps)
    bar.close()
    if not parts:
        return _empty_scores(n_steps)
    scores = Scores.join(parts)
    scores.forecast_seconds = timed.seconds
    return scores


def _empty_scores(n_steps: int) -> Scores:
    """Scores of no trajectory (a rank whose shard is empty)."""
    return Scores(index=np.zeros(0, dtype=np.int64), per_step={}, unstable=np.zeros((0, n_steps), dtype=bool),
                  step_time=np.zeros(0))


def summarize(
    scores: Scores,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    gmean_steps: int = 100,
    windows: Sequence[Sequence[int]] = DEFAULT_WINDOWS,
    n_members: int = 1,
) -> tuple[dict[str, float | int | None], dict[str, list[float | int | None]]]:
    """Headline numbers and per-step curves of joined scores (see `pdebench.rollout.metrics.summarize_rollout`)."""
    return summarize_rollout(scores.per_step, scores.unstable, scores.step_time, thresholds=thresholds,
                             gmean_steps=gmean_steps, windows=windows, n_members=n_members)
