"""Validation of the Kuramoto–Sivashinsky datasets (`ks`, `ks_visc`): the figures of docs/pde_ks.md.

Six tables, one row per split of the files given (a whole dataset or one shard), but the approach table:
- draws and burn-in: the ranges of the drawn `L`, `nu`, `dt` and of the burn-in each trajectory got (frame
  intervals and time units), distinct seeds and seeds shared with another split;
- energy and mean: the spatial energy `mean(u^2)` of every stored frame (range over the split, and each
  trajectory's largest over its median, the figure `stability_energy_factor` is set from) and the spatial mean of
  `u`, which the equation conserves (the initial sines have mean zero);
- spectrum: the share of the energy in the bands of `benchmark.spectral_bands` (shells `m = L k / 2 pi`);
- transient: frame 0 against the second half of the stored frames (energy, large-scale share, how many
  trajectories start below the late frames' 5th energy percentile), so a burn-in cut short shows;
- approach: the discarded burn-in itself, regenerated from the seeds of the first `APPROACH_TRAJECTORIES`
  trajectories of one split: energy and large-scale share from the initial sines to frame 0, and the regenerated
  frame 0 against the stored one;
- decorrelation: between different trajectories at frame 0 and at the last frame, the Pearson correlation as stored
  and its largest value over all circular shifts (the equation is translation invariant, so a shifted copy is the
  same state).

Energies and spectra are computed in float64 from the stored float32 frames, `CHUNK` trajectories at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from data_gen.ks import KSConfig, burn_in_frames, initial_state, sample_trajectory, solve_ks
from data_gen.validation import ValidationInput, ValidationTable, register_validator
from pdebench.data.reader import TrajectoryFile

__all__ = [
    "Approach",
    "SplitFigures",
    "approach_to_attractor",
    "band_shares",
    "max_shift_correlations",
    "measure_split",
    "spatial_energy",
    "validate_ks",
]

# Trajectories read at once (a ks-small train chunk: 32 x 140 x 256 float64, 9 MiB).
CHUNK = 32
# Trajectories of a split whose pairs `max_shift_correlations` compares (all pairs of the first ones).
PAIR_TRAJECTORIES = 64
# Shell edges of the spectrum table when a generation record holds no `benchmark.spectral_bands`.
DEFAULT_BANDS = (5, 12)
# Frame 0 counts as below the late frames when its energy is under this percentile of theirs.
LOW_PERCENTILE = 5.0
# Trajectories whose burn-in `approach_to_attractor` regenerates, and the points of it shown (fractions 0 .. 1).
APPROACH_TRAJECTORIES = 16
APPROACH_POINTS = 9


def spatial_energy(u: np.ndarray) -> np.ndarray:
    """`mean(u^2)` over the last (spatial) axis: `[..., N] -> [...]`, float64."""
    u = np.asarray(u, dtype=np.float64)
    return np.mean(u * u, axis=-1)


def band_shares(u: np.ndarray, edges: Sequence[int]) -> np.ndarray:
    """Share of the energy of the modes `m >= 1` in each band of shells: `[..., N] -> [..., len(edges) + 1]`.

    Bands are `[1, edges[0])`, `[edges[0], edges[1])`, ..., `[edges[-1], N // 2]` of the rfft mode number `m`
    (the shell `L k / 2 pi`); every mode but `m = 0` and the Nyquist mode counts twice (its conjugate), so the bands
    sum to the energy of `u - mean(u)` (Parseval). Shares of a constant field are 0.
    """
    u = np.asarray(u, dtype=np.float64)
    n = u.shape[-1]
    power = np.abs(np.fft.rfft(u, axis=-1)) ** 2
    power[..., 1 : (n + 1) // 2] *= 2.0
    power[..., 0] = 0.0
    bounds = [1, *(int(e) for e in edges), n // 2 + 1]
    bands = np.stack([power[..., lo:hi].sum(axis=-1) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)],
                     axis=-1)
    total = bands.sum(axis=-1, keepdims=True)
    return np.divide(bands, total, out=np.zeros_like(bands), where=total > 0)


def max_shift_correlations(frames: np.ndarray, shifts: bool = True) -> np.ndarray:
    """Pearson correlation between every pair of states, `[B, N] -> [B, B]`: its largest value over all circular
    shifts (`shifts=True`) or as stored (`False`).

    Entry `(i, j)` is `max_s corr(u_i, roll(u_j, s))` (from the cross-spectrum), or `corr(u_i, u_j)`; the diagonal
    is 1 (a state with no variance correlates 0 with everything, itself included).
    """
    u = np.asarray(frames, dtype=np.float64)
    u = u - u.mean(axis=-1, keepdims=True)
    norm = np.sqrt(np.sum(u * u, axis=-1))
    u = np.divide(u, norm[:, None], out=np.zeros_like(u), where=norm[:, None] > 0)
    if not shifts:
        return u @ u.T
    spectra = np.fft.rfft(u, axis=-1)
    n = u.shape[-1]
    out = np.empty((u.shape[0], u.shape[0]))
    for i in range(u.shape[0]):
        cross = np.fft.irfft(np.conj(spectra[i])[None, :] * spectra, n=n, axis=-1)  # [B, N]: every shift
        out[i] = cross.max(axis=-1)
    return out


@dataclass
class SplitFigures:
    """What `measure_split` finds in one split file (see the module docstring for each figure)."""

    split: str
    n_traj: int
    n_frames: int
    params: dict[str, np.ndarray]
    seeds: np.ndarray
    burn_in: np.ndarray  # [n_traj] frame intervals discarded before frame 0
    energy: np.ndarray  # [n_traj, n_frames] mean(u^2)
    mean: np.ndarray  # [n_traj, n_frames] mean(u)
    shares: np.ndarray  # [n_bands] of all frames
    shares_first: np.ndarray  # [n_bands] of frame 0
    shares_late: np.ndarray  # [n_bands] of the second half of the frames
    # Correlations of the pairs of different trajectories at frame 0 and the last frame: `[pairs]` each, as stored
    # and maximised over circular shifts.
    pair_first: np.ndarray = field(default_factory=lambda: np.zeros(0))
    pair_last: np.ndarray = field(default_factory=lambda: np.zeros(0))
    shifted_first: np.ndarray = field(default_factory=lambda: np.zeros(0))
    shifted_last: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def late(self) -> slice:
        """The frames compared with frame 0: the second half (at least the last frame)."""
        return slice(min(self.n_frames // 2, self.n_frames - 1) if self.n_frames > 1 else 0, None)


def measure_split(tf: TrajectoryFile, split: str, config: KSConfig, edges: Sequence[int]) -> SplitFigures:
    """Read one split file once, `CHUNK` trajectories at a time, and compute its figures."""
    n_traj, n_frames = tf.n_traj, tf.n_frames
    params = tf.parameters()
    energy = np.empty((n_traj, n_frames))
    mean = np.empty((n_traj, n_frames))
    n_bands = len(edges) + 1
    sums = {"all": np.zeros(n_bands), "first": np.zeros(n_bands), "late": np.zeros(n_bands)}
    late_start = min(n_frames // 2, n_frames - 1) if n_frames > 1 else 0
    first_frames, last_frames = [], []
    for lo in range(0, n_traj, CHUNK):
        hi = min(lo + CHUNK, n_traj)
        u = tf.read_field("u", slice(lo, hi)).astype(np.float64)  # [b, T, N]
        energy[lo:hi] = spatial_energy(u)
        mean[lo:hi] = u.mean(axis=-1)
        shares = band_shares(u, edges)  # [b, T, bands]
        sums["all"] += shares.sum(axis=(0, 1))
        sums["first"] += shares[:, 0].sum(axis=0)
        sums["late"] += shares[:, late_start:].sum(axis=(0, 1))
        if lo < PAIR_TRAJECTORIES:
            keep = min(hi, PAIR_TRAJECTORIES) - lo
            first_frames.append(u[:keep, 0])
            last_frames.append(u[:keep, -1])
    pairs = np.triu_indices(min(n_traj, PAIR_TRAJECTORIES), k=1)
    first, last = np.concatenate(first_frames), np.concatenate(last_frames)
    return SplitFigures(
        split=split, n_traj=n_traj, n_frames=n_frames, params=params, seeds=tf.seeds(),
        burn_in=np.array([burn_in_frames(config, float(dt)) for dt in tf.frame_intervals()], dtype=np.int64),
        energy=energy, mean=mean,
        shares=sums["all"] / (n_traj * n_frames), shares_first=sums["first"] / n_traj,
        shares_late=sums["late"] / (n_traj * (n_frames - late_start)),
        pair_first=max_shift_correlations(first, shifts=False)[pairs],
        pair_last=max_shift_correlations(last, shifts=False)[pairs],
        shifted_first=max_shift_correlations(first)[pairs], shifted_last=max_shift_correlations(last)[pairs],
    )


@dataclass
class Approach:
    """The burn-in of some trajectories, regenerated: at `fractions` (0 = the initial state, 1 = frame 0) of each
    trajectory's burn-in, `time [n, P]`, `energy [n, P]` and the large-scale band's share `low_share [n, P]`;
    `frame0_error [n]`: relative L2 difference between the regenerated and the stored frame 0."""

    split: str
    fractions: np.ndarray
    time: np.ndarray
    energy: np.ndarray
    low_share: np.ndarray
    frame0_error: np.ndarray


def approach_to_attractor(tf: TrajectoryFile, split: str, config: KSConfig, edges: Sequence[int],
                          n_traj: int = APPROACH_TRAJECTORIES, points: int = APPROACH_POINTS) -> Approach:
    """Regenerate the burn-in of the first `n_traj` trajectories of `tf` from their seeds with the generator's solver
    (one batch, a state kept every frame interval) and sample it at `points` equally spaced fractions of each
    trajectory's burn-in (rounded to whole frames)."""
    seeds = tf.seeds()[:n_traj]
    draws = [sample_trajectory(int(seed), config) for seed in seeds]
    burn = np.array([burn_in_frames(config, d["dt"]) for d in draws], dtype=np.int64)
    f64 = torch.float64
    u0 = torch.from_numpy(np.stack([initial_state(d, config.n_points) for d in draws]))
    length, nu, dt = (torch.tensor([d[k] for d in draws], dtype=f64) for k in ("L", "nu", "dt"))
    states = solve_ks(u0, length, nu, dt / config.substeps, int(burn.max()) * config.substeps, config.substeps,
                      contour_points=config.contour_points).numpy()  # [n, max burn + 1, N]: every frame interval
    fractions = np.linspace(0.0, 1.0, points)
    index = np.rint(fractions[None, :] * burn[:, None]).astype(np.int64)  # [n, P]
    sampled = np.take_along_axis(states, index[:, :, None], axis=1)  # [n, P, N]
    stored = tf.read_field("u", slice(0, len(seeds)), slice(0, 1))[:, 0].astype(np.float64)
    regenerated = states[np.arange(len(seeds)), burn]
    error = np.linalg.norm(regenerated - stored, axis=-1) / np.linalg.norm(stored, axis=-1)
    return Approach(split, fractions, index * dt.numpy()[:, None], spatial_energy(sampled),
                    band_shares(sampled, edges)[..., 0], error)


def _band_names(edges: Sequence[int]) -> tuple[str, ...]:
    bounds = [1, *edges]
    names = [f"m {lo}-{hi - 1}" for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    return (*names, f"m >= {edges[-1]}")


def _range(values: np.ndarray) -> tuple[float, float]:
    return float(np.min(values)), float(np.max(values))


def draws_table(figures: Sequence[SplitFigures]) -> ValidationTable:
    rows = []
    for f in figures:
        others = set().union(*(set(g.seeds.tolist()) for g in figures if g.split != f.split))
        burn_time = f.burn_in * f.params["dt"]
        rows.append((f.split, f.n_traj, f.n_frames, *_range(f.burn_in), *_range(burn_time), *_range(f.params["L"]),
                     *_range(f.params["nu"]), *_range(f.params["dt"]), len(set(f.seeds.tolist())),
                     len(set(f.seeds.tolist()) & others)))
    return ValidationTable(
        "KS draws and burn-in per split",
        ("split", "n_traj", "n_frames", "burn-in frames min", "burn-in frames max", "burn-in t min", "burn-in t max",
         "L min", "L max", "nu min", "nu max", "dt min", "dt max", "distinct seeds", "seeds in other splits"),
        rows,
        "Burn-in: frame intervals integrated and discarded before frame 0, and the time they span (frames x dt). "
        "Every seed is distinct and belongs to one split; the draws lie in the configured ranges.",
    )


def energy_table(figures: Sequence[SplitFigures]) -> ValidationTable:
    rows = []
    for f in figures:
        ratio = f.energy.max(axis=1) / np.median(f.energy, axis=1)
        drift = np.abs(f.mean - f.mean[:, :1]).max()
        rows.append((f.split, *_range(f.energy), float(np.median(f.energy)), *_range(ratio),
                     float(np.abs(f.mean).max()), float(drift)))
    return ValidationTable(
        "KS energy mean(u^2) and mean of u",
        ("split", "energy min", "energy max", "energy median", "traj max/median min", "traj max/median max",
         "max |mean u|", "max mean drift"),
        rows,
        "Energy over every stored frame of the split; 'traj max/median': each trajectory's largest frame energy over "
        "its median. The mean of u is conserved and starts at 0: it stays at the float32 rounding of the frames.",
    )


def spectrum_table(figures: Sequence[SplitFigures], edges: Sequence[int]) -> ValidationTable:
    names = _band_names(edges)
    return ValidationTable(
        "KS energy share per band of shells m = L k / (2 pi)",
        ("split", *names),
        [(f.split, *(float(s) for s in f.shares)) for f in figures],
        f"Mean over all frames of each frame's share (mode 0 excluded); bands {', '.join(names)} are "
        f"benchmark.spectral_bands. The linear growth rate k^2 - nu k^4 peaks at k = 1/sqrt(2 nu): m ~ L / 8.9 "
        f"for nu = 1.",
    )


def transient_table(figures: Sequence[SplitFigures], edges: Sequence[int]) -> ValidationTable:
    rows = []
    for f in figures:
        late = f.energy[:, f.late]
        low = int(np.sum(f.energy[:, 0] < np.percentile(late, LOW_PERCENTILE)))
        rows.append((f.split, float(f.energy[:, 0].mean()), float(late.mean()),
                     float(f.energy[:, 0].mean() / late.mean()), float(f.shares_first[0]), float(f.shares_late[0]),
                     f"{low}/{f.n_traj}"))
    return ValidationTable(
        "KS frame 0 against the late frames (is the transient over?)",
        ("split", "energy frame 0", "energy late", "ratio", f"{_band_names(edges)[0]} share frame 0",
         f"{_band_names(edges)[0]} share late", f"frame 0 < late p{LOW_PERCENTILE:g}"),
        rows,
        "Late: the second half of the stored frames. From the sines of the initial state (energy ~0.4, all in "
        "m = 1, 2) the chaotic state grows over tens of time units; past the transient, frame 0 has the late "
        f"frames' energy and spectrum and about {LOW_PERCENTILE:g}% of trajectories start below their "
        f"{LOW_PERCENTILE:g}th energy percentile.",
    )


def _mean_max(values: np.ndarray, absolute: bool = False) -> tuple[float | None, float | None]:
    if not values.size:
        return None, None
    values = np.abs(values) if absolute else values
    return float(values.mean()), float(values.max())


def approach_table(approach: Approach, figures: SplitFigures, edges: Sequence[int]) -> ValidationTable:
    late = np.percentile(figures.energy[:, figures.late], LOW_PERCENTILE)
    rows = [(float(frac), float(approach.time[:, j].mean()), float(approach.energy[:, j].mean()),
             float(approach.energy[:, j].min()), float(approach.low_share[:, j].mean()),
             f"{int(np.sum(approach.energy[:, j] < late))}/{approach.energy.shape[0]}")
            for j, frac in enumerate(approach.fractions)]
    return ValidationTable(
        f"KS burn-in regenerated from the seeds ({approach.energy.shape[0]} {approach.split} trajectories)",
        ("fraction of burn-in", "mean t", "energy mean", "energy min", f"{_band_names(edges)[0]} share",
         f"< late p{LOW_PERCENTILE:g} of {approach.split}"),
        rows,
        f"From the initial sines (fraction 0) to frame 0 (fraction 1), the states the generator discards. The "
        f"regenerated frame 0 differs from the stored one by at most {float(approach.frame0_error.max()):.2g} "
        f"(relative L2; float32 storage rounds at ~6e-8).",
    )


def decorrelation_table(figures: Sequence[SplitFigures]) -> ValidationTable:
    rows = [(f.split, int(f.pair_first.size), *_mean_max(f.pair_first, absolute=True),
             *_mean_max(f.shifted_first), *_mean_max(f.pair_last, absolute=True), *_mean_max(f.shifted_last))
            for f in figures]
    return ValidationTable(
        "KS correlation between different trajectories",
        ("split", "pairs", "frame 0 mean |r|", "frame 0 max |r|", "frame 0 shifted mean", "frame 0 shifted max",
         "last mean |r|", "last max |r|", "last shifted mean", "last shifted max"),
        rows,
        f"All pairs of the first {PAIR_TRAJECTORIES} trajectories of each split: Pearson r of the stored frames at "
        "frame 0 and the last frame, and ('shifted') its largest value over all circular shifts. A copy of another "
        "trajectory, shifted or not, reaches 1; the cells of the attractor have one preferred size (2 pi sqrt(2 nu)), "
        "so independent states still align to ~0.5 at their best shift.",
    )


@register_validator("ks")
def validate_ks(inputs: ValidationInput) -> list[ValidationTable]:
    """The six KS tables for the split files of `inputs` (see the module docstring); the burn-in is regenerated
    for the test split (or the first split given)."""
    config = inputs.generator.config
    edges = tuple(int(e) for e in (inputs.config.get("benchmark") or {}).get("spectral_bands") or DEFAULT_BANDS)
    figures = []
    for split in inputs.files:
        with inputs.open(split) as tf:
            figures.append(measure_split(tf, split, config, edges))
    chosen = next((f for f in figures if f.split == "test"), figures[0])
    with inputs.open(chosen.split) as tf:
        approach = approach_to_attractor(tf, chosen.split, config, edges)
    return [draws_table(figures), energy_table(figures), spectrum_table(figures, edges),
            transient_table(figures, edges), approach_table(approach, chosen, edges), decorrelation_table(figures)]
