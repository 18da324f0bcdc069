"""Validation of the buoyant smoke datasets (`smoke`, `smoke_buoyancy`, `smoke_midpoint`): docs/pde_smoke.md.

Four measurements:
- the step against PDEArena's, run in PhiFlow (`phiflow_step`, PDEArena's generation script step for step) from
  the same solver states, regenerated from the trajectories' seeds (and checked against the stored frames);
- the drift of the total smoke, which semi-Lagrangian advection does not conserve, per trajectory;
- wall jets: the rms of the wall-tangential velocity in a band along the walls against the rms of one velocity
  component in the interior;
- decorrelation: the mean Pearson correlation of the smoke between different trajectories at an early, a middle
  and the last frame, also of the smoke off its layers (minus its mean over x) and that part's share of the
  variance, beside the rms speed there (the motion decays and the smoke settles into layers common to all).

PhiFlow is optional (`pip install 'pdebench[phiflow]'`); without it the comparison table says how to install it.
`scripts/compare_phiflow.py` runs the same comparison for chosen settings and states.
"""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import torch

from data_gen.smoke import (
    BoxOperators,
    SmokeConfig,
    SmokeState,
    block_mean,
    sample_trajectory,
    smoke_step,
)
from data_gen.spectral import single_threaded
from data_gen.validation import ValidationInput, ValidationTable, register_validator

__all__ = [
    "PHIFLOW_INSTALL",
    "StepDifference",
    "compare_with_phiflow",
    "mass_drift",
    "layer_share",
    "pair_correlations",
    "phiflow_module",
    "phiflow_run",
    "phiflow_step",
    "phiflow_version",
    "step_differences",
    "solver_states",
    "wall_jet_ratio",
]

PHIFLOW_INSTALL = ("pip install 'pdebench[phiflow]' (PhiFlow 2.2.7; PDEArena pinned 2.1, which needs numpy < 1.24, "
                   "and 2.2 computes the same step)")
# Width of the wall band of `wall_jet_ratio` as a fraction of the box side (1 length unit of PDEArena's 32).
WALL_BAND = 1.0 / 32.0
# Cells closer to a wall than this fraction of the box side are not interior for `wall_jet_ratio`.
INTERIOR_MARGIN = 1.0 / 8.0
# Trajectories listed one per row (a summary row covers all of them).
ROWS_SHOWN = 8


# --------------------------------------------------------------------------------------------------------------
# PDEArena's step in PhiFlow
# --------------------------------------------------------------------------------------------------------------


def phiflow_module() -> ModuleType | None:
    """`phi.flow` of an installed PhiFlow 2.2 to 2.x (the API of PDEArena's script), or None when there is none."""
    try:
        phi = importlib.import_module("phi")
    except ImportError:
        return None
    try:
        major, minor = (int(p) for p in str(getattr(phi, "__version__", "0.0")).split(".")[:2])
    except ValueError:  # not PhiFlow's version scheme
        return None
    if major != 2 or minor < 2:
        return None
    return importlib.import_module("phi.flow")


def phiflow_version() -> str:
    """The installed PhiFlow's version string (call only when `phiflow_module` found one)."""
    return str(importlib.import_module("phi").__version__)


def phiflow_step(flow: ModuleType, state: SmokeState, buoyancy: Sequence[float], config: SmokeConfig,
                 tolerance: float = 1e-5) -> SmokeState:
    """One step of PDEArena's smoke generation (`pdedatagen/navier_stokes.py`) in PhiFlow, in float64.

    smoke: a `CenteredGrid` with `extrapolation.BOUNDARY`; velocity: a `StaggeredGrid` with `extrapolation.ZERO`;
    then `advect.semi_lagrangian` of the smoke, the buoyancy `(smoke * (0, b)).at(velocity)`, `semi_lagrangian` of
    the velocity by itself plus `h` times the buoyancy, `diffuse.explicit(velocity, nu, h)`,
    `fluid.make_incompressible` (conjugate gradients to `tolerance`, relative and absolute; PDEArena's is 1e-5).
    state: our MAC state on `config.resolution` (`[B, ...]`, float64); buoyancy: `[B]`. Returns the new state in
    the same layout (the wall faces, which PhiFlow does not store, are zero).
    """
    math = flow.math
    (nx, ny), (lx, ly) = config.resolution, config.domain_size
    h = config.frame_interval / config.substeps
    bounds = flow.Box(x=lx, y=ly)
    dims = (math.batch("b"), math.spatial("x,y"))
    with math.precision(64):  # the trajectories of the batch share every PhiFlow call (a batch dimension)
        smoke = flow.CenteredGrid(math.tensor(state.smoke.cpu().numpy(), *dims), flow.extrapolation.BOUNDARY,
                                  bounds=bounds)
        faces = math.stack([math.tensor(state.vx[:, 1:-1].cpu().numpy(), *dims),
                            math.tensor(state.vy[:, :, 1:-1].cpu().numpy(), *dims)], math.channel(vector="x,y"))
        velocity = flow.StaggeredGrid(0, flow.extrapolation.ZERO, x=nx, y=ny, bounds=bounds).with_values(faces)
        b = math.tensor(np.asarray(buoyancy, dtype=np.float64), math.batch("b"))
        smoke = flow.advect.semi_lagrangian(smoke, velocity, h)
        force = (smoke * math.stack([0 * b, b], math.channel(vector="x,y"))).at(velocity)  # (0, b) per trajectory
        velocity = flow.advect.semi_lagrangian(velocity, velocity, h) + h * force
        velocity = flow.diffuse.explicit(velocity, config.nu, h)
        solve = math.Solve("auto", tolerance, tolerance, gradient_solve=math.Solve("auto", tolerance, tolerance))
        velocity, _ = flow.fluid.make_incompressible(velocity, solve=solve)
        batch = state.smoke.shape[0]
        vx, vy = np.zeros((batch, nx + 1, ny)), np.zeros((batch, nx, ny + 1))
        vx[:, 1:-1] = velocity.vector["x"].values.numpy("b,x,y")
        vy[:, :, 1:-1] = velocity.vector["y"].values.numpy("b,x,y")
        new_smoke = smoke.values.numpy("b,x,y")
    return SmokeState(*(torch.from_numpy(np.ascontiguousarray(a)) for a in (new_smoke, vx, vy)))


@dataclass(frozen=True)
class StepDifference:
    """Our step against PhiFlow's at step `step` (1-based) from a common state.

    smoke, velocity: relative L2 difference of our one step from PhiFlow's previous state to PhiFlow's next one
    (velocity over all faces of both components); smoke_share, velocity_share: the same difference over the norm of
    PhiFlow's change in that step; smoke_run, velocity_run: relative difference after `step` steps of each solver
    run on its own from the common state.
    """

    step: int
    smoke: float
    velocity: float
    smoke_share: float
    velocity_share: float
    smoke_run: float
    velocity_run: float


def _velocity(state: SmokeState) -> torch.Tensor:
    return torch.cat([state.vx.flatten(1), state.vy.flatten(1)], dim=1)


def _ratio(num: torch.Tensor, den: torch.Tensor) -> np.ndarray:
    return (num.flatten(1).norm(dim=1) / den.flatten(1).norm(dim=1)).cpu().numpy()


def phiflow_run(flow: ModuleType, config: SmokeConfig, state: SmokeState, buoyancy: Sequence[float],
                n_steps: int, tolerance: float = 1e-5) -> list[SmokeState]:
    """`state` and the `n_steps` states after it of PDEArena's step in PhiFlow (`phiflow_step`)."""
    states = [state]
    for _ in range(n_steps):
        states.append(phiflow_step(flow, states[-1], buoyancy, config, tolerance))
    return states


def step_differences(config: SmokeConfig, phi_states: Sequence[SmokeState],
                     buoyancy: Sequence[float]) -> list[list[StepDifference]]:
    """Per trajectory, per step 1 .. len(phi_states) - 1: our step (with `config`'s backtrace, walls and viscosity)
    against PhiFlow's states `phi_states` (`phiflow_run`), one step from PhiFlow's previous state and free-running
    from the first (`StepDifference`)."""
    ops = BoxOperators(config.resolution, config.spacing, "cpu", config.walls)
    h = config.frame_interval / config.substeps
    b = torch.as_tensor(np.asarray(buoyancy, dtype=np.float64))
    ours_run = phi_states[0]
    rows: list[list[StepDifference]] = [[] for _ in range(phi_states[0].smoke.shape[0])]
    with single_threaded(torch.device("cpu")):
        for step, (phi, phi_next) in enumerate(itertools.pairwise(phi_states), start=1):
            ours = smoke_step(ops, phi, b, config.nu, h, config.backtrace, config.viscosity)
            ours_run = smoke_step(ops, ours_run, b, config.nu, h, config.backtrace, config.viscosity)
            ds, dv = ours.smoke - phi_next.smoke, _velocity(ours) - _velocity(phi_next)
            figures = (
                _ratio(ds, phi_next.smoke), _ratio(dv, _velocity(phi_next)),
                _ratio(ds, phi_next.smoke - phi.smoke), _ratio(dv, _velocity(phi_next) - _velocity(phi)),
                _ratio(ours_run.smoke - phi_next.smoke, phi_next.smoke),
                _ratio(_velocity(ours_run) - _velocity(phi_next), _velocity(phi_next)),
            )
            for i, row in enumerate(rows):
                row.append(StepDifference(step, *(float(f[i]) for f in figures)))
    return rows


def compare_with_phiflow(flow: ModuleType, config: SmokeConfig, state: SmokeState, buoyancy: Sequence[float],
                         n_steps: int, tolerance: float = 1e-5) -> list[list[StepDifference]]:
    """`step_differences` of our step with `config`'s settings against `phiflow_run` from `state` (`[B, ...]`)."""
    return step_differences(config, phiflow_run(flow, config, state, buoyancy, n_steps, tolerance), buoyancy)


def solver_states(config: SmokeConfig, seeds: Sequence[int], frames: Sequence[int]) -> dict[int, SmokeState]:
    """Our solver's states (solver grid, float64, `[len(seeds), ...]`) at stored frames `frames` of the trajectories
    of `seeds`, regenerated from their draws (frame j: after `warmup_frames + 1 + j` frame intervals)."""
    draws = [sample_trajectory(int(s), config) for s in seeds]
    smoke = torch.from_numpy(np.stack([d["smoke"] for d in draws]))
    b = torch.tensor([d["buoyancy"] for d in draws], dtype=torch.float64)
    (nx, ny), batch = config.resolution, len(seeds)
    state = SmokeState(smoke, smoke.new_zeros(batch, nx + 1, ny), smoke.new_zeros(batch, nx, ny + 1))
    ops = BoxOperators(config.resolution, config.spacing, "cpu", config.walls)
    h = config.frame_interval / config.substeps
    wanted, out = set(int(f) for f in frames), {}
    with single_threaded(torch.device("cpu")):
        for interval in range(config.warmup_frames + 1 + max(wanted)):
            for _ in range(config.substeps):
                state = smoke_step(ops, state, b, config.nu, h, config.backtrace, config.viscosity)
            if interval - config.warmup_frames in wanted:
                out[interval - config.warmup_frames] = state
    return out


# --------------------------------------------------------------------------------------------------------------
# Figures of stored data
# --------------------------------------------------------------------------------------------------------------


def mass_drift(smoke: np.ndarray, initial_mean: float) -> np.ndarray:
    """Relative change of the total smoke at each frame against the initial state: `mean(frame) / initial_mean - 1`.

    smoke: `[T, nx, ny]` (cell values; block means keep the total); returns `[T]` float64.
    """
    return smoke.astype(np.float64).mean(axis=(-2, -1)) / float(initial_mean) - 1.0


def wall_jet_ratio(vx: np.ndarray, vy: np.ndarray, band: float = WALL_BAND,
                   margin: float = INTERIOR_MARGIN) -> tuple[float, float, float]:
    """Wall jets of cell-centred velocity `vx, vy [T, nx, ny]` (x along the first axis, y along the second).

    Returns `(wall_rms, interior_rms, wall_rms / interior_rms)`: the rms of the wall-tangential component (vx in the
    bands along the bottom and top walls, vy along the left and right ones; corners, where no direction is
    tangential, left out) in bands `band` of the box side wide (at least one cell), and the rms of one velocity
    component (`sqrt(mean(vx^2 + vy^2) / 2)`) over the cells at least `margin` of the box side from every wall.
    """
    nx, ny = vx.shape[-2:]
    bx, by = max(1, round(band * nx)), max(1, round(band * ny))
    mx, my = max(1, round(margin * nx)), max(1, round(margin * ny))
    tangential = np.concatenate([
        vx[:, bx:nx - bx, :by].ravel(), vx[:, bx:nx - bx, ny - by:].ravel(),
        vy[:, :bx, by:ny - by].ravel(), vy[:, nx - bx:, by:ny - by].ravel(),
    ]).astype(np.float64)
    inner = (vx[:, mx:nx - mx, my:ny - my].astype(np.float64) ** 2 + vy[:, mx:nx - mx, my:ny - my] ** 2) / 2
    wall, interior = float(np.sqrt(np.mean(tangential**2))), float(np.sqrt(np.mean(inner)))
    return wall, interior, wall / interior


def pair_correlations(fields: np.ndarray) -> np.ndarray:
    """Pearson correlation of every pair of different trajectories: `fields [N, ...]` (N >= 2) -> `[N (N - 1) / 2]`
    (each field flattened, its mean removed)."""
    flat = fields.reshape(fields.shape[0], -1).astype(np.float64)
    flat = flat - flat.mean(axis=1, keepdims=True)
    unit = flat / np.linalg.norm(flat, axis=1, keepdims=True)
    return np.array([unit[i] @ unit[j] for i, j in itertools.combinations(range(len(unit)), 2)])


# --------------------------------------------------------------------------------------------------------------
# The validator
# --------------------------------------------------------------------------------------------------------------


def _largest_split(inputs: ValidationInput) -> str:
    sizes = {}
    for split in inputs.files:
        with inputs.open(split) as tf:
            sizes[split] = tf.n_traj
    return max(sizes, key=lambda s: sizes[s])


def _phiflow_table(inputs: ValidationInput, config: SmokeConfig, split: str, n_traj: int = 2,
                   n_steps: int = 3) -> list[ValidationTable]:
    title = f"Step against PDEArena's in PhiFlow ({split}, from regenerated solver states)"
    flow = phiflow_module()
    columns = ("seed", "frame", "step", "smoke", "velocity", "smoke/change", "velocity/change", "smoke run",
               "velocity run")
    if flow is None:
        return [ValidationTable(title, ("phiflow",), [(f"not installed: {PHIFLOW_INSTALL}",)],
                                "PhiFlow runs PDEArena's step from the same state as ours; it is an optional extra.")]
    with inputs.open(split) as tf:
        n = min(n_traj, tf.n_traj)
        seeds = [int(s) for s in tf.seeds()[:n]]
        starts = sorted({0, tf.n_frames // 2})
        stored = {j: np.stack([tf.read_field(f, slice(0, n), slice(j, j + 1))[:, 0] for f in ("smoke", "vx", "vy")],
                              axis=1) for j in starts}
        buoyancy = tf.parameters()["buoyancy"][:n]
    states = solver_states(config, seeds, starts)
    check_rows = []
    for j in starts:
        again = block_mean(states[j].centred(), config.stored_shape).numpy()
        err = np.linalg.norm((again - stored[j]).reshape(n, -1), axis=1) / np.linalg.norm(stored[j].reshape(n, -1),
                                                                                            axis=1)
        check_rows += [(s, j, float(e)) for s, e in zip(seeds, err, strict=True)]
    # every (start frame, trajectory) pair in one batch: one PhiFlow call per step
    start = SmokeState(*(torch.cat([getattr(states[j], f) for j in starts]) for f in ("smoke", "vx", "vy")))
    labels = [(s, j) for j in starts for s in seeds]
    diffs = compare_with_phiflow(flow, config, start, np.tile(buoyancy, len(starts)), n_steps)
    rows = [(s, j, d.step, d.smoke, d.velocity, d.smoke_share, d.velocity_share, d.smoke_run, d.velocity_run)
            for (s, j), row in zip(labels, diffs, strict=True) for d in row]
    settings = f"backtrace {config.backtrace}, walls {config.walls}, viscosity {config.viscosity}"
    return [
        ValidationTable("Regenerated solver states against the stored frames", ("seed", "frame", "rel. L2"),
                        check_rows, "The states the comparison starts from, rebuilt from the seeds; float32 storage "
                                    "rounds at ~6e-8."),
        ValidationTable(title, columns, rows,
                        f"Ours ({settings}) against PhiFlow {phiflow_version()} running PDEArena's "
                        "step (float64, CG to 1e-5): relative L2 difference after one step from PhiFlow's state, "
                        "the same over PhiFlow's change in that step, and after `step` steps of each run alone."),
    ]


def _drift_table(inputs: ValidationInput, config: SmokeConfig, split: str) -> ValidationTable:
    with inputs.open(split) as tf:
        seeds, buoyancy = tf.seeds(), tf.parameters()["buoyancy"]
        rows, last, worst = [], [], []
        for t in range(tf.n_traj):
            initial = float(sample_trajectory(int(seeds[t]), config)["smoke"].mean())
            drift = mass_drift(tf.read_field("smoke", t), initial)
            last.append(float(drift[-1]))
            worst.append(float(np.abs(drift).max()))
            if t < ROWS_SHOWN:
                rows.append((int(seeds[t]), float(buoyancy[t]), initial, float(drift[0]), last[-1], worst[-1]))
    rows.append((f"mean of {len(worst)}", None, None, None, float(np.mean(last)), float(np.mean(worst))))
    rows.append((f"max of {len(worst)}", None, None, None, None, max(worst)))
    return ValidationTable(
        f"Smoke mass drift ({split})", ("seed", "buoyancy", "initial mean", "frame 0", "last frame", "max |drift|"),
        rows, "Total smoke against the initial noise, mean(frame) / mean(initial) - 1: semi-Lagrangian advection does "
              "not conserve it (the Euler backtrace loses more than the midpoint one).")


def _wall_table(inputs: ValidationInput, split: str) -> ValidationTable:
    with inputs.open(split) as tf:
        rows, figures = [], []
        for t, seed in enumerate(tf.seeds()):
            figures.append(wall_jet_ratio(tf.read_field("vx", t), tf.read_field("vy", t)))
            if t < ROWS_SHOWN:
                rows.append((int(seed), *figures[-1]))
    table = np.array(figures)
    rows.append((f"mean of {len(figures)}", *(float(v) for v in table.mean(axis=0))))
    rows.append((f"max of {len(figures)}", None, None, float(table[:, 2].max())))
    return ValidationTable(
        f"Wall jets ({split}, all frames)", ("seed", "wall-tangential rms", "interior rms", "ratio"), rows,
        f"rms of the wall-tangential velocity within {WALL_BAND:g} of the box side of a wall, over the rms of one "
        f"velocity component farther than {INTERIOR_MARGIN:g} of it from every wall.")


def layer_share(smoke: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split smoke `[N, nx, ny]` into its layers (the mean over x, a function of height y, `[N, 1, ny]`) and the
    rest (`[N, nx, ny]`), returned as `(rest, share)` with `share [N]` the rest's fraction of the variance."""
    smoke = smoke.astype(np.float64)
    rest = smoke - smoke.mean(axis=1, keepdims=True)
    centred = smoke - smoke.mean(axis=(1, 2), keepdims=True)
    return rest, (rest**2).sum(axis=(1, 2)) / (centred**2).sum(axis=(1, 2))


def _correlation_table(inputs: ValidationInput, config: SmokeConfig, split: str) -> ValidationTable:
    with inputs.open(split) as tf:
        frames = sorted({0, tf.n_frames // 2, tf.n_frames - 1})
        rows = []
        for j in frames:
            smoke = tf.read_field("smoke", slice(None), slice(j, j + 1))[:, 0]
            vx = tf.read_field("vx", slice(None), slice(j, j + 1))[:, 0].astype(np.float64)
            vy = tf.read_field("vy", slice(None), slice(j, j + 1))[:, 0].astype(np.float64)
            rms = float(np.sqrt(np.mean(vx**2 + vy**2)))
            rest, share = layer_share(smoke)
            time = (config.warmup_frames + 1 + j) * config.frame_interval
            if tf.n_traj < 2:
                rows.append((j, time, None, None, None, float(share.mean()), rms))
                continue
            r, r_rest = pair_correlations(smoke), pair_correlations(rest)
            rows.append((j, time, float(r.mean()), float(r.max()), float(r_rest.mean()), float(share.mean()), rms))
    return ValidationTable(
        f"Decorrelation between trajectories ({split})",
        ("frame", "time", "mean r", "max r", "mean r off layers", "var. off layers", "rms speed"), rows,
        "Pearson r of the smoke between every pair of different trajectories at the same frame (time since the "
        "release); off layers: of the smoke minus its mean over x (the layers, a function of height), and that "
        "part's share of the smoke variance; rms speed over all trajectories. As the motion decays the smoke settles "
        "into layers common to all trajectories.")


@register_validator("smoke")
def validate_smoke(inputs: ValidationInput) -> list[ValidationTable]:
    """The smoke tables (module docstring), measured on the split with the most trajectories."""
    config: SmokeConfig = inputs.generator.config  # type: ignore[attr-defined]
    split = _largest_split(inputs)
    tables = _phiflow_table(inputs, config, split)
    tables += [_drift_table(inputs, config, split), _wall_table(inputs, split),
               _correlation_table(inputs, config, split)]
    return tables
