"""Scoring rollouts: `score` runs a Stepper over trajectories and returns per-trajectory arrays keyed by trajectory
index; `summarize` reduces joined scores once. Validation (one batch at a time, `score_batch`) and the test-split
evaluation use the same code.

Batch invariance: `score` calls the stepper with exactly `batch_size` trajectories every time (at least 2, at most
the split's size); a short last batch (or a rank's short shard) is padded with copies of its last trajectory and the
copies' outputs are discarded. A net
whose kernels pick their algorithm by batch size (a batch of one often takes another GEMM path) therefore sees the
same shapes whatever the number of trajectories, so a trajectory's scores do not depend on the split size or the
number of ranks.

Sample rollout: `score` also keeps one field (the first) of one trajectory's predicted frames next to the truth
(`Scores.sample`, see :class:`RolloutSample`), subsampled while the rollout runs, so memory does not grow with the
split; the leaderboard draws it.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Subset

from pdebench.console import progress_bar
from pdebench.data.batch import TrajectoryBatch, collate
from pdebench.data.dataset import TrajectoryDataset
from pdebench.data.manifest import generate_command
from pdebench.data.schema import DatasetError
from pdebench.errors import InvalidSetting
from pdebench.forecast.rollout import rollout
from pdebench.forecast.stepper import EnsembleStepper, Stepper
from pdebench.rollout.reductions import summarize_rollout
from pdebench.rollout.spectra import GridSpectrum
from pdebench.rollout.step_metrics import energy, ensemble_scores, invariant, step_errors, unstable_energy

MIN_ROWS = 2
"""The fewest trajectories the stepper is called with (padding with copies where there are fewer)."""

SAMPLE_MAX_FRAMES = 64
"""The most predicted frames a rollout sample keeps (every `time_stride`-th model step from the first)."""
SAMPLE_MAX_POINTS = 128
"""The most grid points per spatial axis a rollout sample keeps (every `space_stride`-th point from the first)."""
SAMPLE_MAX_VALUES = 65536
"""The most values one sample array (`pred` or `true`) holds; in 2-D this lowers the frame count further."""


def sample_strides(n_steps: int, space_shape: Sequence[int]) -> tuple[int, tuple[int, ...]]:
    """`(time_stride, space_stride)` that keep at most `SAMPLE_MAX_POINTS` points per axis and at most
    `SAMPLE_MAX_FRAMES` frames (fewer where frames x points would exceed `SAMPLE_MAX_VALUES`) of a rollout of
    `n_steps` model steps on a grid of shape `space_shape`."""
    space = tuple(max(1, math.ceil(int(n) / SAMPLE_MAX_POINTS)) for n in space_shape)
    points = math.prod(math.ceil(int(n) / s) for n, s in zip(space_shape, space, strict=True))
    frames = max(1, min(SAMPLE_MAX_FRAMES, SAMPLE_MAX_VALUES // max(points, 1)))
    return max(1, math.ceil(int(n_steps) / frames)), space


@dataclass
class RolloutSample:
    """One channel of one trajectory's rollout next to the truth, subsampled by :func:`sample_strides`.

    trajectory: index in the split file; channel: the field's channel (0: the first field).
    step: `[T]` 1-based model steps kept (step 1 is the first predicted frame, never an input frame);
    time: `[T]` time units after the last input frame (`step * step_time`).
    pred, true: `[T, *space']` float32, the prediction and the stored frames at those steps on every
    `space_stride`-th grid point per axis.
    """

    trajectory: int
    channel: int
    step: np.ndarray
    time: np.ndarray
    pred: np.ndarray
    true: np.ndarray
    time_stride: int
    space_stride: tuple[int, ...]


@dataclass(frozen=True)
class ScoringSpec:
    """What is scored besides the pointwise errors; the PDE's values come from its benchmark facts
    (`pdebench.rollout.evaluation.scoring_spec` builds one from them and the rollout config).

    energy_factor: a prediction is unstable once its energy exceeds this factor times the largest energy of the
        trajectory's stored frames (inputs and targets), or once it is non-finite (the PDE's
        `benchmark.stability_energy_factor`, or `rollout.stability_factor`).
    band_edges: `(a, b)` shell edges of the low / mid / high spectral bands (None: no band errors).
    spectrum_steps: 1-based model steps at which predicted and true energy spectra are kept per trajectory (empty:
        none).
    conserved: the PDE's invariant (`mean`, `mass`; None: no drift); conserved_channels: the channels it applies to
        (`conserved_channels` builds them from `benchmark.conserved_fields`; None: every channel). The drift is the
        quadrature-weighted spatial mean of these channels only, averaged over them.
    ensemble: members M drawn with the stepper's `sample` (1: the deterministic call only).
    ensemble_seed: seed of the members' noise, set before each batch.
    """

    energy_factor: float
    band_edges: tuple[float, float] | None = None
    spectrum_steps: tuple[int, ...] = ()
    conserved: str | None = None
    conserved_channels: tuple[int, ...] | None = None
    ensemble: int = 1
    ensemble_seed: int = 0


class ConservedFieldsWarning(UserWarning):
    """The benchmark facts name a conserved quantity but not the fields it belongs to (a manifest written before
    `benchmark.conserved_fields` existed): the drift averages every field."""


def conserved_channels(field_names: Sequence[str], conserved: str | None, conserved_fields: Sequence[str] | None,
                       manifest_path: Path) -> tuple[int, ...] | None:
    """The channels (indices into `field_names`, the dataset's fields) of the conserved quantity, or None for every
    channel.

    `conserved_fields` (`benchmark.conserved_fields` of the manifest) must name fields of the dataset,
    else a DatasetError names the key and the dataset's fields. Without it (an older manifest) the drift covers
    every field, with a ConservedFieldsWarning when there is more than one, saying how to record the fields.
    """
    if conserved is None:
        return None
    if conserved_fields is None:
        if len(field_names) > 1:
            warnings.warn(f"{manifest_path} names the conserved quantity {conserved!r} but not its fields "
                          f"(benchmark.conserved_fields, recorded from this version on): the conservation drift "
                          f"averages every field ({', '.join(field_names)}); rerun "
                          f"{generate_command(manifest_path.parent)} to rewrite the manifest (finished split files "
                          f"are kept)", ConservedFieldsWarning, stacklevel=2)
        return None
    unknown = [name for name in conserved_fields if name not in field_names]
    if unknown:
        raise DatasetError(f"{manifest_path}: benchmark.conserved_fields names {unknown}, which the dataset lacks "
                           f"(its fields: {', '.join(field_names)})")
    return tuple(field_names.index(name) for name in conserved_fields)


@dataclass
class Scores:
    """Per-trajectory rollout scores; row i belongs to trajectory `index[i]` of the split file.

    per_step: metric -> `[n, n_steps, C]` float64, step 0 = the first predicted frame; unstable `[n, n_steps]` bool;
    step_time `[n]` time units per model step; forecast_seconds: wall time spent inside the stepper (summed over
    ranks); extra: other per-trajectory arrays `[n, ...]` (energy spectra at `spectrum_steps`: `spectrum_pred`,
    `spectrum_true` `[n, S, C, n_shells]`); sample: one trajectory's rollout (the lowest index that was asked to
    keep one), or None.
    """

    index: np.ndarray
    per_step: dict[str, np.ndarray]
    unstable: np.ndarray
    step_time: np.ndarray
    forecast_seconds: float = 0.0
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    sample: RolloutSample | None = None
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
        if self.sample is not None and self.sample.trajectory not in self.index:
            raise ValueError(f"the sample's trajectory {self.sample.trajectory} is not among the scored trajectories")

    def __len__(self) -> int:
        return int(self.index.shape[0])

    @classmethod
    def join(cls, parts: Sequence[Scores]) -> Scores:
        """Concatenate scores of disjoint trajectory sets (e.g. ranks or batches), sorted by trajectory index; the
        sample of the lowest trajectory index among the parts' samples is kept."""
        parts = [p for p in parts if len(p)] or list(parts[:1])
        if not parts:
            raise ValueError("nothing to join")
        index = np.concatenate([p.index for p in parts])
        order = np.argsort(index, kind="stable")
        samples = [p.sample for p in parts if p.sample is not None]
        return cls(
            index=index[order],
            per_step={name: np.concatenate([p.per_step[name] for p in parts])[order] for name in parts[0].per_step},
            unstable=np.concatenate([p.unstable for p in parts])[order],
            step_time=np.concatenate([p.step_time for p in parts])[order],
            forecast_seconds=float(sum(p.forecast_seconds for p in parts)),
            extra={name: np.concatenate([p.extra[name] for p in parts])[order] for name in parts[0].extra},
            sample=min(samples, key=lambda s: s.trajectory) if samples else None,
        )

    @property
    def throughput(self) -> float:
        """The rate of ONE process: trajectory-steps forecast per second of stepper time (metric time excluded),
        with `forecast_seconds` summed over the processes that scored these trajectories. N processes forecasting in
        parallel each at this rate make about N times as many trajectory-steps per wall-clock second; this is not
        that sum, so rows scored on different numbers of processes compare per process."""
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
    extra name -> `[B, ...]` (energy spectra at the chosen steps); sample_pred / sample_true `[T, *space']`: channel 0
    of row `sample_row` at the kept steps (None without a `sample_row`)."""

    per_step: dict[str, Tensor]
    unstable: Tensor
    extra: dict[str, Tensor]
    sample_pred: Tensor | None = None
    sample_true: Tensor | None = None


def score_batch_full(
    stepper: Stepper,
    batch: TrajectoryBatch,
    n_steps: int,
    *,
    spec: ScoringSpec,
    weights: Tensor | None = None,
    spectrum: GridSpectrum | None = None,
    sample_row: int | None = None,
) -> BatchScores:
    """Roll one batch out from its first `stepper.history` frames for `n_steps` steps and score every step.

    Metrics compare with the stored frames `history, history + 1, ...` (never an input frame), with spatial means
    weighted by `weights` (the grid's quadrature weights, `[*space]`). `spectrum` (built from the grid and
    `spec.band_edges`) adds the band errors `mse_low/mid/high` and the spectra at `spec.spectrum_steps`. With
    `spec.ensemble = M > 1` the stepper must have `sample`: M members are rolled out (each from its own previous
    sample); the deterministic metrics (errors, correlation, band errors, drift) score the ensemble mean (in
    float64), `crps`, `spread2`, `ens_mse` score the members, a step is unstable once the mean or any member is, and
    the energy spectra are the members' mean spectrum (that of one realisation, which the smooth ensemble mean is
    not).

    `sample_row` (a row of the batch) keeps that row's channel 0 (member 0: a realisation) at every `time_stride`-th
    step from the first prediction, on every `space_stride`-th grid point (:func:`sample_strides`), next to the truth.
    """
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
            raise InvalidSetting(f"rollout.ensemble={members} needs a stochastic stepper with a `sample` method; "
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
    kept_pred: list[Tensor] = []
    kept_true: list[Tensor] = []
    time_stride, space_stride = sample_strides(n_steps, frames.shape[3:])
    thin = tuple(slice(None, None, s) for s in space_stride)
    for k, out in enumerate(source):
        samples = out.reshape(members, b, *out.shape[1:]) if members > 1 else None
        pred = samples.to(torch.float64).mean(dim=0) if samples is not None else out
        realisation = samples[0] if samples is not None else out
        target = truth[:, :, k]
        if sample_row is not None and k % time_stride == 0:
            kept_pred.append(realisation[(sample_row, 0, *thin)].to(torch.float32).clone())
            kept_true.append(target[(sample_row, 0, *thin)].to(torch.float32).clone())
        values = step_errors(pred, target, weights=weights)
        if spectrum is not None:
            bands = spectrum.band_energy(pred.to(torch.float64) - target.to(torch.float64))  # [B, C, 3]
            bad = ~torch.isfinite(bands)
            bands = torch.where(bad, torch.full_like(bands, math.inf), bands)
            for j, name in enumerate(("mse_low", "mse_mid", "mse_high")):
                values[name] = bands[..., j]
            if k + 1 in spectrum_steps:
                spectra_pred.append(spectrum.energy_spectrum(out).reshape(members, b, out.shape[1], -1).mean(dim=0))
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
        flags.append(_unstable(pred, samples, bound, weights))
    extra = {}
    if spectra_pred:
        extra = {"spectrum_pred": torch.stack(spectra_pred, dim=1), "spectrum_true": torch.stack(spectra_true, dim=1)}
    sample_pred = torch.stack(kept_pred) if kept_pred else None
    sample_true = torch.stack(kept_true) if kept_true else None
    return BatchScores({name: torch.stack(v, dim=1) for name, v in metrics.items()}, torch.stack(flags, dim=1), extra,
                       sample_pred, sample_true)


def _unstable(pred: Tensor, samples: Tensor | None, bound: Tensor, weights: Tensor | None) -> Tensor:
    """`[B]` flags: the scored prediction `pred [B, C, *space]` is unstable, or any member of `samples [M, B, C,
    *space]` (None: a deterministic rollout) is."""
    flags = unstable_energy(pred, bound, weights)
    if samples is None:
        return flags
    members = unstable_energy(samples.flatten(0, 1), bound.repeat(samples.shape[0]), weights)
    return flags | members.view(samples.shape[0], -1).any(dim=0)


def score_batch(
    stepper: Stepper,
    batch: TrajectoryBatch,
    n_steps: int,
    *,
    spec: ScoringSpec,
    weights: Tensor | None = None,
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
    batch_size: int,
    spec: ScoringSpec,
    max_steps: int | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
    sample_trajectory: int | None = None,
    keep_sample: bool = True,
) -> Scores:
    """Roll the trajectories `indices` (default: all) of `dataset` out to their end (or `max_steps`) and score them.

    The stepper runs in eval mode on `device`, always on `batch_size` trajectories at a time (see the module
    docstring); each trajectory's step time comes from its own batch entry. Memory does not grow with the number of
    trajectories beyond the per-step scores: frames are read one batch at a time.

    With `keep_sample`, the rollout of trajectory `sample_trajectory` (default: the lowest of `indices`) is kept as
    `Scores.sample` if this call scores it (one trajectory, subsampled while it runs; see :class:`RolloutSample`).
    """
    device = torch.device(device)
    history = stepper.history
    n_steps = dataset.n_model_frames - history
    if max_steps is not None:
        n_steps = min(n_steps, int(max_steps))
    if n_steps < 1:  # the settings (history, frame_stride, max_steps) leave nothing to predict on this split
        raise InvalidSetting(
            f"{dataset.file.path}: trajectories have {dataset.n_model_frames} model frames, too few for "
            f"history={history} plus at least one predicted step"
        )
    chosen = list(range(len(dataset))) if indices is None else [int(i) for i in indices]
    wanted = (sample_trajectory if sample_trajectory is not None else min(chosen, default=None)) if keep_sample \
        else None
    sample: RolloutSample | None = None
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
    bar = progress_bar(len(chosen) * n_steps, "rollout", "traj-step", enabled=progress)  # plain lines off a terminal
    with eval_mode(stepper):
        for batch in loader:
            rows = len(batch.index)
            padded = _padded(batch, batch_size)
            padded = TrajectoryBatch(padded.frames.to(device), padded.cond.to(device), padded.step_time,
                                     padded.index)
            if spec.ensemble > 1:
                torch.manual_seed(spec.ensemble_seed)
            hits = (batch.index == wanted).nonzero().flatten().tolist() if wanted is not None else []
            out = score_batch_full(timed, padded, n_steps, weights=weights, spec=spec, spectrum=spectrum,
                                   sample_row=hits[0] if hits else None)
            if hits and out.sample_pred is not None and out.sample_true is not None:
                time_stride, space_stride = sample_strides(n_steps, padded.frames.shape[3:])
                steps = np.arange(1, n_steps + 1, time_stride, dtype=np.int64)
                sample = RolloutSample(
                    trajectory=int(wanted), channel=0, step=steps,
                    time=steps * float(batch.step_time[hits[0]]),
                    pred=out.sample_pred.cpu().numpy(), true=out.sample_true.cpu().numpy(),
                    time_stride=time_stride, space_stride=space_stride,
                )
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
    scores.sample = sample
    return scores


def _empty_scores(n_steps: int) -> Scores:
    """Scores of no trajectory (a rank whose shard is empty)."""
    return Scores(index=np.zeros(0, dtype=np.int64), per_step={}, unstable=np.zeros((0, n_steps), dtype=bool),
                  step_time=np.zeros(0))


def summarize(
    scores: Scores,
    thresholds: Sequence[float],
    gmean_steps: int,
    windows: Sequence[Sequence[int]] | None,
    n_members: int = 1,
) -> tuple[dict[str, float | int | None], dict[str, list[float | int | None]]]:
    """Headline numbers and per-step curves of joined scores (see `pdebench.rollout.reductions.summarize_rollout`;
    `windows` None: The Well's windows for the rollout length)."""
    return summarize_rollout(scores.per_step, scores.unstable, scores.step_time, thresholds=thresholds,
                             gmean_steps=gmean_steps, windows=windows, n_members=n_members)
