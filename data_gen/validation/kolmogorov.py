"""Validation of the Kolmogorov-flow datasets (`kolmogorov`): the figures of docs/pde_kolmogorov.md.

The stored frames are the DNS vorticity filtered to the stored grid's modes (`|m| <= 31` on 64^2), so they cannot
show whether the DNS resolves its dissipation range: that lives between the stored modes and the DNS's 2/3-rule
cutoff. The validator therefore re-runs the DNS of the first `RERUN_TRAJECTORIES` trajectories of the first split
given, from their seeds and the recorded settings (the shared spin-up, the branch, then `RERUN_FRAMES` stored
frames; a trajectory depends on nothing else), checks that the re-run reproduces their stored frames, and measures
on the DNS grid. Four tables:
- enstrophy spectrum tail: per re-run trajectory and averaged over them and their frames, the shell-summed enstrophy
  spectrum at the last resolved shell `K` relative to its peak (the resolution criterion: at most `RESOLVED_TAIL`),
  with `K` times the Kolmogorov and the enstrophy-dissipation scales, and the largest difference between the
  re-run's and the stored frames;
- enstrophy spectrum profile: the averaged spectrum relative to its peak at a few shells up to `K`;
- steps and Courant numbers of the re-run, branch frames included: the largest Courant number after a frame for
  the step taken (the `max_courant` guard), the most steps a frame took and how many frames the Courant rule
  refined;
- per trajectory, from the stored frames of every split: the largest |spatial mean vorticity| (zero on the torus,
  conserved), the rms vorticity at frame 0, its range over the frames and at the last frame, and the Courant
  number of the stored velocity for the base DNS step (largest over the frames; the DNS's own, with the modes the
  stored grid drops, is a little higher) with the number of frames above `courant_target`;
- decorrelation, per split: the centred correlation between the stored vorticity of every pair of its
  trajectories at frame 0 and at the last frame (all branch from one spun-up state, so `branch_time` must have
  made them independent by frame 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from data_gen.kolmogorov import (
    DOMAIN,
    RESOLVED_TAIL,
    KolmogorovConfig,
    KolmogorovGenerator,
    StepLog,
    dissipation_rates,
    enstrophy_spectrum,
    spectrum_tail,
    stored_fields,
)
from data_gen.spectral import dealias_cutoff
from data_gen.validation import ValidationInput, ValidationTable, register_validator
from pdebench.data.reader import TrajectoryFile

__all__ = ["RERUN_FRAMES", "RERUN_TRAJECTORIES", "Rerun", "pair_correlations", "rerun_dns", "stored_figures",
           "validate_kolmogorov"]

# Trajectories whose DNS is re-run, and stored frames re-run and averaged per trajectory (10 frames: 2 time units).
RERUN_TRAJECTORIES = 2
RERUN_FRAMES = 10
# Trajectories read at once from a split file (a kolmogorov-small chunk: 16 x 100 x 3 x 64 x 64 float32, 25 MiB).
CHUNK = 16
# Trajectories of a split whose pairwise correlations are measured (all pairs of the first ones).
PAIR_TRAJECTORIES = 64


@dataclass
class Rerun:
    """What `rerun_dns` measures for `B` trajectories over `T` stored frames on the DNS grid (`K` its last shell).

    spectra: `[T, B, K + 1]` enstrophy spectra; epsilon, beta: `[T, B]` viscous energy and enstrophy dissipation
    rates; max_difference: `[B]` largest |re-run - stored| over the re-run frames, all fields (float32 values);
    substeps, courant: `[F, B]` steps and end-of-frame Courant number of every frame after the branch point.
    """

    seeds: list[int]
    spectra: np.ndarray
    epsilon: np.ndarray
    beta: np.ndarray
    max_difference: np.ndarray
    substeps: np.ndarray
    courant: np.ndarray


def rerun_dns(generator: KolmogorovGenerator, tf: TrajectoryFile, n_traj: int, n_frames: int) -> Rerun:
    """Re-run the DNS of the first `n_traj` trajectories of split file `tf` for its first `n_frames` stored frames
    (from their seeds, on one CPU thread) and measure spectra, dissipation rates and steps on the DNS grid."""
    c = generator.config
    n_traj, n_frames = min(n_traj, tf.n_traj), min(n_frames, tf.n_frames)
    seeds = [int(s) for s in tf.seeds()[:n_traj]]
    stored = np.stack([tf.read_field(name, slice(0, n_traj), time=slice(0, n_frames)) for name in
                       ("vorticity", "vx", "vy")], axis=2)  # [B, T, 3, r, r]
    spectra, epsilon, beta = [], [], []
    difference = np.zeros(n_traj)

    def observe(j: int, state: torch.Tensor) -> None:
        spectra.append(enstrophy_spectrum(state).cpu().numpy())
        eps, bet = dissipation_rates(state, c.viscosity)
        epsilon.append(eps.cpu().numpy())
        beta.append(bet.cpu().numpy())
        fields = stored_fields(state, c.resolution).to(torch.float32).cpu().numpy()
        np.maximum(difference, np.abs(fields - stored[:, j]).reshape(n_traj, -1).max(axis=1), out=difference)

    log = StepLog()
    generator.run_frames(seeds, n_frames, "cpu", observe, log)
    substeps, courant = log.arrays()
    return Rerun(seeds, np.stack(spectra), np.stack(epsilon), np.stack(beta), difference, substeps, courant)


def stored_figures(tf: TrajectoryFile, config: KolmogorovConfig) -> np.ndarray:
    """Per trajectory of split file `tf` `[n_traj, 7]`: largest |mean vorticity|, rms vorticity at frame 0, its
    minimum, maximum and last value over the frames, the largest Courant number of the stored velocity for the base
    DNS step `frame_interval / substeps`, and the number of frames where it exceeds `courant_target`."""
    scale = config.frame_interval / config.substeps * config.dns_resolution / DOMAIN
    out = np.empty((tf.n_traj, 7))
    for lo in range(0, tf.n_traj, CHUNK):
        hi = min(lo + CHUNK, tf.n_traj)
        w = tf.read_field("vorticity", slice(lo, hi)).astype(np.float64)  # [b, T, r, r]
        mean = w.mean(axis=(-2, -1))
        rms = np.sqrt(np.mean((w - mean[..., None, None]) ** 2, axis=(-2, -1)))
        speed = sum(np.abs(tf.read_field(name, slice(lo, hi))).max(axis=(-2, -1)).astype(np.float64)
                    for name in ("vx", "vy"))
        courant = scale * speed  # [b, T]
        out[lo:hi] = np.stack([np.abs(mean).max(axis=1), rms[:, 0], rms.min(axis=1), rms.max(axis=1), rms[:, -1],
                               courant.max(axis=1), (courant > config.courant_target).sum(axis=1)], axis=1)
    return out


def pair_correlations(frames: np.ndarray) -> np.ndarray:
    """Centred (Pearson) correlation of every pair `i < j` of fields `[B, *space]`: `[B (B - 1) / 2]` float64."""
    u = np.asarray(frames, dtype=np.float64).reshape(len(frames), -1)
    u = u - u.mean(axis=1, keepdims=True)
    norm = np.sqrt((u * u).sum(axis=1))
    u = u / np.where(norm > 0, norm, 1.0)[:, None]
    return (u @ u.T)[np.triu_indices(len(u), k=1)]


def _shells(top: int) -> list[int]:
    """The shells of the profile table: the forcing's neighbourhood up to `top`, about evenly on a log scale."""
    return sorted({k for k in (1, 4, 8, top // 8, top // 4, top // 2, (3 * top) // 4, top - 8, top) if 1 <= k <= top})


@register_validator("kolmogorov")
def validate_kolmogorov(inputs: ValidationInput) -> list[ValidationTable]:
    generator = inputs.generator
    assert isinstance(generator, KolmogorovGenerator)
    c = generator.config
    top = dealias_cutoff(c.dns_resolution)
    split = next(iter(inputs.files))
    with inputs.open(split) as tf:
        run = rerun_dns(generator, tf, RERUN_TRAJECTORIES, RERUN_FRAMES)
    nu3 = c.viscosity**3
    mean_spectrum = run.spectra.mean(axis=(0, 1))
    tail = spectrum_tail(mean_spectrum)
    rows = []
    for b, seed in enumerate(run.seeds):
        z = run.spectra[:, b].mean(axis=0)
        rows.append((split, seed, c.dns_resolution, top, int(np.argmax(z)), spectrum_tail(z),
                     top * (nu3 / run.epsilon[:, b].mean()) ** 0.25, top * (nu3 / run.beta[:, b].mean()) ** (1 / 6),
                     float(run.max_difference[b])))
    rows.append((split, "mean", c.dns_resolution, top, int(np.argmax(mean_spectrum)), tail,
                 top * (nu3 / run.epsilon.mean()) ** 0.25, top * (nu3 / run.beta.mean()) ** (1 / 6),
                 float(run.max_difference.max())))
    holds = "holds" if tail <= RESOLVED_TAIL else "does NOT hold"
    n_frames = run.spectra.shape[0]
    tables = [ValidationTable(
        f"Kolmogorov enstrophy spectrum tail on the {c.dns_resolution}^2 DNS (re-run of {len(run.seeds)} "
        f"trajectories x {n_frames} frames)",
        ("split", "seed", "DNS n", "last shell K", "peak shell", "Z(K)/Z peak", "K eta", "K eta_omega",
         "max |re-run - stored|"),
        rows,
        f"Criterion: the shell-summed enstrophy spectrum averaged over the re-run frames ends at most "
        f"{RESOLVED_TAIL:g} of its peak at the last resolved shell K = (n - 1) // 3 = {top}: measured {tail:.3g}, "
        f"so it {holds}. eta = (nu^3/epsilon)^(1/4) (Kolmogorov), eta_omega = (nu^3/beta)^(1/6) (enstrophy "
        "dissipation); a re-run reproduces the stored frames bitwise on CPU (difference 0).",
    )]
    tables.append(ValidationTable(
        "Kolmogorov enstrophy spectrum profile (re-run mean)",
        ("shell k", "Z(k)/Z peak"),
        [(k, float(mean_spectrum[k] / mean_spectrum.max())) for k in _shells(top)],
        "In the dissipation range the spectrum falls about exponentially; a DNS too coarse for its Reynolds number "
        "ends on a flattening tail instead.",
    ))
    n_branch = run.substeps.shape[0] - (n_frames - 1)
    tables.append(ValidationTable(
        "Kolmogorov steps and Courant numbers of the re-run (branch and stored frames)",
        ("seed", "frames", "max Courant", "max Courant stored frames", "base substeps", "max substeps",
         "frames refined"),
        [(seed, int(run.courant.shape[0]), float(run.courant[:, b].max()),
          float(run.courant[n_branch:, b].max()) if run.courant.shape[0] > n_branch else None,
          c.substeps, int(run.substeps[:, b].max()), int((run.substeps[:, b] > c.substeps).sum()))
         for b, seed in enumerate(run.seeds)],
        f"Courant number h (max|u| + max|v|) / dx after each frame for the step taken; the run stops above "
        f"max_courant = {c.max_courant:g}. A frame starting above courant_target = {c.courant_target:g} for the base "
        f"step is taken in 2, 4 or 8 times the {c.substeps} substeps.",
    ))
    rows, pairs = [], []
    for name, path in inputs.files.items():
        with TrajectoryFile(path) as tf:
            figures = stored_figures(tf, c)
            seeds = tf.seeds()
            m = min(tf.n_traj, PAIR_TRAJECTORIES)
            first = pair_correlations(tf.read_field("vorticity", slice(0, m), time=slice(0, 1))[:, 0])
            last = pair_correlations(tf.read_field("vorticity", slice(0, m), time=slice(tf.n_frames - 1, None))[:, 0])
        rows += [(name, int(seed), *(float(v) for v in f[:6]), int(f[6])) for seed, f in zip(seeds, figures,
                                                                                             strict=True)]
        if first.size:
            pairs.append((name, int(first.size), float(first.mean()), float(np.abs(first).max()), float(last.mean()),
                          float(np.abs(last).max())))
    tables.append(ValidationTable(
        "Kolmogorov stored frames per trajectory: mean and rms vorticity, Courant number",
        ("split", "seed", "max |mean vorticity|", "rms frame 0", "rms min", "rms max", "rms last",
         "max Courant (stored velocity)", "frames above target"),
        rows,
        "The mean vorticity is zero on the torus and conserved; a steady rms over the frames shows the flow "
        "statistically stationary; the Courant number is that of the stored velocity for the base DNS step.",
    ))
    if pairs:
        tables.append(ValidationTable(
            "Kolmogorov decorrelation: correlation between trajectories at frame 0 and the last frame",
            ("split", "pairs", "frame 0 mean", "frame 0 max |corr|", "last mean", "last max |corr|"),
            pairs,
            f"Centred correlation of the stored vorticity of every pair of trajectories (the first "
            f"{PAIR_TRAJECTORIES} of a split); all branch from one spun-up state and run branch_time = "
            f"{c.branch_time:g} before frame 0.",
        ))
    return tables
