"""Buoyancy-driven smoke in a closed box (the PDEArena 2-D Navier–Stokes setup), batched in torch.

PDE (incompressible Navier–Stokes with a Boussinesq-type buoyancy force, passive smoke), on the box
`[0, Lx] x [0, Ly]` (length units), `y` pointing up::

    s_t + (v . grad) s = 0
    v_t + (v . grad) v = -grad p + nu lap v + b s e_y,     div v = 0

with no penetration (`v . n = 0`) and no smoke flux through the walls; the tangential velocity follows the `walls`
setting. `b` is the buoyancy (length/time^2 per unit smoke), `nu` the kinematic viscosity.

Space: a MAC (staggered) grid of `nx x ny` cells of size `dx x dy`. Smoke `s` lives at cell centres, `vx` on the
`(nx + 1) x ny` faces normal to x and `vy` on the `nx x (ny + 1)` faces normal to y; the wall faces hold the
exact zero of the no-penetration condition. Stored fields are at cell centres (velocity as the mean of the two
faces of each cell), on the solver grid or, with `stored_resolution`, as cell means over blocks of solver cells.

One step of length `h`, by default PDEArena's PhiFlow step (`pdedatagen/navier_stokes.py`: a `CenteredGrid` smoke
with `extrapolation.BOUNDARY`, a `StaggeredGrid` velocity with `extrapolation.ZERO`), which it reproduces to the
tolerance of PhiFlow's pressure solve (`scripts/compare_phiflow.py`):
1. semi-Lagrangian advection of `s`, `vx`, `vy` by the old velocity: each sample point is traced back to its
   departure point (one Euler step, `backtrace="euler"`, PhiFlow's; or the midpoint rule) and the field is
   interpolated there bilinearly. Beyond the outermost samples the smoke repeats them; the velocity continues as
   the walls say (`BoxOperators`): with `walls="zero"` (PhiFlow's `extrapolation.ZERO`) every component falls
   linearly to zero one cell beyond its outermost samples, so the tangential velocity is pulled towards zero
   within half a cell of a wall; with `free_slip` the outermost samples are repeated;
2. buoyancy: `vy += h b s` with the new `s` averaged onto the interior `vy` faces;
3. viscosity on each velocity component with the same walls: `viscosity="explicit"` is PhiFlow's
   `diffuse.explicit`, `v += h nu lap v` (split into equal steps only where one would be unstable, never at
   PDEArena's settings); `exact` solves the discrete heat equation over `h` in the eigenbasis of the 5-point
   Laplacian (DST-I along a component's own axis; DCT-II along the other with free slip, DST-I over the samples and
   both zero ghosts with zero walls);
4. pressure projection: the Poisson problem `lap p = div v` with homogeneous Neumann walls is solved exactly by a
   2-D DCT-II (the eigenbasis of the cell-centred Neumann Laplacian) and `grad p` is subtracted from the interior
   faces, so the discrete divergence after projection is zero to round-off (PhiFlow solves the same problem by
   conjugate gradients to 1e-5). No iterative solve is involved, so nothing can stall or diverge.
The split step with zero walls is not at rest for uniform smoke: the buoyancy kick is diffused towards the zero
ghosts before the projection, which leaves a circulation down the side walls (PhiFlow's step does the same).
All real-to-real transforms (`data_gen.transforms`) are computed with `torch.fft.rfft` / `irfft` of even or odd
extensions (length `2n`) along the contiguous last axis, in float64.

Initial state (per trajectory, all draws from `numpy.random.default_rng(seed)`): velocity at rest; smoke the
absolute value of a Gaussian random field whose Fourier amplitudes fall off as `|k|^(-2 noise_smoothness)`
(wavenumbers `k` of the periodic FFT of the grid, mean removed, standardised to unit variance): PhiFlow's
`Noise(smoothness=noise_smoothness)`, PDEArena's noise state (PhiFlow raises `1 / |k|^2` to the smoothness).
The buoyancy `b` is drawn from `buoyancy_range` (fixed when its ends are equal).

Frames: `warmup_frames` frame intervals are integrated and dropped; frame `j` is the state after
`(warmup_frames + 1 + j)` frame intervals, i.e. at time `(warmup_frames + 1 + j) * frame_interval` (PDEArena
records the state after every step and drops the first 8). Each frame interval is `substeps` solver steps.

Reproducibility: a trajectory is bitwise the same whatever batch it is generated in (on a given device): the
draws are per seed on the CPU, the time loop uses only element-wise arithmetic (no complex products with two
complex factors, no reductions over the batch), gathers, and batched 1-D FFTs along the contiguous last axis,
and on CPU it runs on one thread (`data_gen.spectral.single_threaded`).

`SmokeGenerator.reference_solver` steps stored states forward (the evaluator's `solver` row), see
`SmokeReferenceSolver`. docs/pde_smoke.md has the presets, measured costs and the validation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from data_gen.base import (
    GeneratedBatch,
    SolverDiverged,
    check_generate_request,
)
from data_gen.registry import register_generator
from data_gen.spectral import single_threaded
from data_gen.transforms import along_axis, dct2, dst1, dst2, half_sample_angles, idct2, idst1
from pdebench.config.checks import (
    SettingError,
    finite_number,
    format_value,
    is_finite_number,
    is_whole_number,
    number_interval,
    whole_number,
)
from pdebench.data.schema import Coordinate, FieldSpec, ParameterSpec
from pdebench.errors import InvalidSetting

__all__ = [
    "BoxOperators",
    "SmokeConfig",
    "SmokeGenerator",
    "SmokeReferenceSolver",
    "SmokeState",
    "block_mean",
    "cell_mean_matrix",
    "centres_to_faces",
    "courant_number",
    "explicit_viscous_steps",
    "faces_to_centres",
    "initial_smoke",
    "run_frames",
    "sample_trajectory",
    "smoke_step",
]

BACKTRACES = ("euler", "midpoint")
WALLS = ("zero", "free_slip")
VISCOSITIES = ("explicit", "exact")


# --------------------------------------------------------------------------------------------------------------
# MAC grid: velocity between faces and cell centres
# --------------------------------------------------------------------------------------------------------------


def faces_to_centres(vx: Tensor, vy: Tensor) -> tuple[Tensor, Tensor]:
    """Cell-centred velocity from MAC faces: `vx [B, nx + 1, ny]`, `vy [B, nx, ny + 1]` -> two `[B, nx, ny]`."""
    return 0.5 * (vx[:, :-1] + vx[:, 1:]), 0.5 * (vy[:, :, :-1] + vy[:, :, 1:])


def _centres_to_faces_last(c: Tensor) -> Tensor:
    """Least-squares inverse of face -> centre averaging along the last axis with zero wall faces.

    `c [..., n]` -> faces `[..., n + 1]`. Averaging maps the DST-I mode k of the faces onto the DST-II mode k of
    the centres times `cos(pi k / 2n)`; mode n of the DST-II (the grid-scale zigzag) is not in its range and is
    dropped, which makes this the least-squares solution.
    """
    n = c.shape[-1]
    spec = dst2(c)  # [..., n + 1]
    cos = half_sample_angles(n, c)[0]
    faces_spec = torch.zeros_like(spec)
    faces_spec[..., 1:n] = spec[..., 1:n] / cos[1:n]
    return idst1(faces_spec)


def centres_to_faces(ux: Tensor, uy: Tensor) -> tuple[Tensor, Tensor]:
    """MAC face velocities whose cell means are the given cell-centred velocities (least squares, zero walls).

    ux, uy: `[B, nx, ny]` -> vx `[B, nx + 1, ny]`, vy `[B, nx, ny + 1]`. Exact (to round-off) for centre values
    that came from `faces_to_centres`; the grid-scale zigzag along a component's own axis, which no face field
    averages to, is dropped.
    """
    return along_axis(_centres_to_faces_last, ux, -2), _centres_to_faces_last(uy)


# --------------------------------------------------------------------------------------------------------------
# Operators of one box grid
# --------------------------------------------------------------------------------------------------------------


def explicit_viscous_steps(nu: float, h: float, spacing: Sequence[float]) -> int:
    """Explicit Euler steps that `BoxOperators.diffuse(..., "explicit")` splits a step `h` (time units) into: the
    fewest that keep each one stable, `nu h' (4/dx^2 + 4/dy^2) <= 2` for cells `spacing = (dx, dy)` (length units)
    and viscosity `nu` (length^2/time); 1 at PDEArena's settings, where one step sits at 0.96 of that bound."""
    dx, dy = (float(d) for d in spacing)
    return max(1, math.ceil(2.0 * nu * h * (1.0 / dx**2 + 1.0 / dy**2) - 1e-12))


class BoxOperators:
    """Discrete operators of an `nx x ny` MAC grid with cells `dx x dy` (length units), on one device, float64.

    walls: how the velocity continues beyond the outermost samples of each of its components (`WALLS`), in the
    advection's interpolation and in the viscous Laplacian. `zero` is PhiFlow's `extrapolation.ZERO` on a staggered
    grid, which PDEArena's smoke uses: every component is zero one cell beyond its outermost samples (the wall faces
    for the normal component, a ghost half a cell outside the wall for the tangential one) and in between it is
    interpolated linearly, so the tangential velocity is pulled towards zero near the walls. `free_slip`: the
    outermost samples are repeated (zero normal derivative of the tangential velocity). The normal velocity is zero
    on the walls in both cases (no penetration), and the smoke always repeats its outermost samples (no flux).

    Holds the eigenvalues of the 3-point second differences (`-(4 / d^2) sin^2(pi k / 2n)`, 1/length^2) for the
    cell-centred Neumann (DCT-II) and face-centred Dirichlet (DST-I) problems, and the sample points of the three
    staggered grids in index units (`x / dx`, `y / dy`).
    """

    def __init__(self, shape: Sequence[int], spacing: Sequence[float], device: torch.device | str = "cpu",
                 walls: str = "zero") -> None:
        self.nx, self.ny = (int(n) for n in shape)
        if self.nx < 2 or self.ny < 2:
            raise ValueError(f"a box grid needs at least 2 x 2 cells, got {tuple(shape)}")
        if walls not in WALLS:
            raise ValueError(f"walls must be one of {', '.join(WALLS)}, got {walls!r}")
        self.walls = walls
        self.zero_walls = walls == "zero"
        self.dx, self.dy = (float(d) for d in spacing)
        self.device = torch.device(device)
        f64 = dict(dtype=torch.float64, device=self.device)

        def eig(n: int, d: float, count: int) -> Tensor:
            k = torch.arange(count, **f64)
            return -(4.0 / d**2) * torch.sin(k * (math.pi / (2 * n))) ** 2

        # Neumann (cell centres, modes 0 .. n - 1) and Dirichlet (faces incl. walls, modes 0 .. n) eigenvalues.
        self.lam_cx, self.lam_cy = eig(self.nx, self.dx, self.nx), eig(self.ny, self.dy, self.ny)
        self.lam_fx, self.lam_fy = eig(self.nx, self.dx, self.nx + 1), eig(self.ny, self.dy, self.ny + 1)
        # Tangential axis of a velocity component with zero walls: its n samples plus a zero ghost at either end
        # are n + 2 points of a Dirichlet problem with n + 1 intervals (modes 0 .. n + 1).
        self.lam_gx, self.lam_gy = eig(self.nx + 1, self.dx, self.nx + 2), eig(self.ny + 1, self.dy, self.ny + 2)
        lap = self.lam_cx[:, None] + self.lam_cy[None, :]
        inv = torch.where(lap < 0, 1.0 / torch.where(lap < 0, lap, -1.0), 0.0)
        self.inv_laplacian = inv  # [nx, ny]; 0 for the constant mode (pressure defined up to a constant)
        ix, iy = torch.arange(self.nx + 1, **f64), torch.arange(self.ny + 1, **f64)
        # Sample points (index units) of the centre grid and of the two face grids, each [1, mx, my].
        self.points = {
            "c": ((ix[: self.nx] + 0.5)[:, None].expand(self.nx, self.ny)[None],
                  (iy[: self.ny] + 0.5)[None, :].expand(self.nx, self.ny)[None]),
            "x": (ix[:, None].expand(self.nx + 1, self.ny)[None],
                  (iy[: self.ny] + 0.5)[None, :].expand(self.nx + 1, self.ny)[None]),
            "y": ((ix[: self.nx] + 0.5)[:, None].expand(self.nx, self.ny + 1)[None],
                  iy[None, :].expand(self.nx, self.ny + 1)[None]),
        }
        self.offsets = {"c": (0.5, 0.5), "x": (0.0, 0.5), "y": (0.5, 0.0)}

    # --- differential operators --------------------------------------------------------------------------------
    def divergence(self, vx: Tensor, vy: Tensor) -> Tensor:
        """Cell-centred discrete divergence `[B, nx, ny]` (1/time) of face velocities (length/time)."""
        return (vx[:, 1:] - vx[:, :-1]) / self.dx + (vy[:, :, 1:] - vy[:, :, :-1]) / self.dy

    def solve_poisson(self, rhs: Tensor) -> Tensor:
        """The zero-mean `p [B, nx, ny]` with `lap_h p = rhs - mean(rhs)`, exactly (2-D DCT-II), Neumann walls.

        `lap_h` is the 5-point cell-centred Laplacian with mirror ghost cells (zero normal gradient at the walls).
        """
        spec = along_axis(dct2, dct2(rhs), -2) * self.inv_laplacian
        return along_axis(idct2, idct2(spec), -2)

    def project(self, vx: Tensor, vy: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Divergence-free part of the face velocities (walls stay zero) and the pressure `p` (length^2/time)
        that was removed: `v - grad p` with `lap p = div v`. Returns `(vx, vy, p)`."""
        p = self.solve_poisson(self.divergence(vx, vy))
        vx, vy = vx.clone(), vy.clone()
        vx[:, 1:-1] -= (p[:, 1:] - p[:, :-1]) / self.dx
        vy[:, :, 1:-1] -= (p[:, :, 1:] - p[:, :, :-1]) / self.dy
        return vx, vy, p

    def _ghosts(self, v: Tensor, axis: int) -> Tensor:
        """`v` with one ghost sample added at both ends of `axis` (-2 or -1): zeros with zero walls, copies of the
        outermost samples with free slip."""
        if self.zero_walls:
            pad = (0, 0, 1, 1) if axis == -2 else (1, 1)
            return torch.nn.functional.pad(v, pad)
        first, last = (v[:, :1], v[:, -1:]) if axis == -2 else (v[:, :, :1], v[:, :, -1:])
        return torch.cat([first, v, last], dim=axis)

    def laplacian(self, vx: Tensor, vy: Tensor) -> tuple[Tensor, Tensor]:
        """The 5-point Laplacian (1/(length time)) of each face component, with the walls' ghost samples along the
        component's tangential axis (`_ghosts`) and its zero wall faces along its own; zero on the wall faces."""
        lx, ly = torch.zeros_like(vx), torch.zeros_like(vy)
        lx[:, 1:-1] = (vx[:, 2:] - 2 * vx[:, 1:-1] + vx[:, :-2]) / self.dx**2
        g = self._ghosts(vx, -1)
        lx[:, 1:-1] += ((g[:, :, 2:] - 2 * vx + g[:, :, :-2]) / self.dy**2)[:, 1:-1]
        ly[:, :, 1:-1] = (vy[:, :, 2:] - 2 * vy[:, :, 1:-1] + vy[:, :, :-2]) / self.dy**2
        g = self._ghosts(vy, -2)
        ly[:, :, 1:-1] += ((g[:, 2:] - 2 * vy + g[:, :-2]) / self.dx**2)[:, :, 1:-1]
        return lx, ly

    def diffuse(self, vx: Tensor, vy: Tensor, nu: float, h: float, method: str = "explicit") -> tuple[Tensor, Tensor]:
        """Viscosity over `h` time units (nu in length^2/time) on each face component, with `laplacian`'s walls.

        method `explicit`: PhiFlow's `diffuse.explicit`, `v += h nu lap_h v`, in `explicit_viscous_steps` equal steps;
        `exact`: `exp(h nu lap_h)` in the eigenbasis of `lap_h` (DST-I along a component's own axis; along the other
        a DCT-II with free slip, a DST-I over the samples and both ghosts with zero walls), stable at any `h`.
        """
        if method not in VISCOSITIES:
            raise ValueError(f"method must be one of {', '.join(VISCOSITIES)}, got {method!r}")
        if nu == 0.0:
            return vx, vy
        if method == "explicit":
            n = explicit_viscous_steps(nu, h, (self.dx, self.dy))
            for _ in range(n):
                lx, ly = self.laplacian(vx, vy)
                vx, vy = vx + (h * nu / n) * lx, vy + (h * nu / n) * ly
            return vx, vy
        if not self.zero_walls:
            gx = torch.exp((h * nu) * (self.lam_fx[:, None] + self.lam_cy[None, :]))  # [nx + 1, ny]
            gy = torch.exp((h * nu) * (self.lam_cx[:, None] + self.lam_fy[None, :]))  # [nx, ny + 1]
            vx = along_axis(idst1, idct2(along_axis(dst1, dct2(vx), -2) * gx), -2)
            vy = idst1(along_axis(idct2, along_axis(dct2, dst1(vy), -2) * gy, -2))
            return vx, vy
        gx = torch.exp((h * nu) * (self.lam_fx[:, None] + self.lam_gy[None, :]))  # [nx + 1, ny + 2]
        gy = torch.exp((h * nu) * (self.lam_gx[:, None] + self.lam_fy[None, :]))  # [nx + 2, ny + 1]
        px = self._ghosts(vx, -1)
        vx = along_axis(idst1, idst1(along_axis(dst1, dst1(px), -2) * gx), -2)[:, :, 1:-1]
        py = self._ghosts(vy, -2)
        vy = idst1(along_axis(idst1, along_axis(dst1, dst1(py), -2) * gy, -2))[:, 1:-1]
        return vx, vy

    # --- interpolation -------------------------------------------------------------------------------------------
    def sample(self, values: Tensor, grid: str, px: Tensor, py: Tensor, zero_outside: bool = False) -> Tensor:
        """Bilinear interpolation of `values` (on staggered grid `grid` in c | x | y) at points `(px, py)` given in
        index units (`[B, *P]` each). Beyond the outermost samples: their values repeated (zero gradient), or with
        `zero_outside` a ring of zeros one cell out and zero beyond (PhiFlow's `extrapolation.ZERO`)."""
        fx, fy = px - self.offsets[grid][0], py - self.offsets[grid][1]
        if zero_outside:
            values = torch.nn.functional.pad(values, (1, 1, 1, 1))
            fx, fy = fx.add_(1.0), fy.add_(1.0)
        batch, mx, my = values.shape
        fx = fx.clamp_(0.0, mx - 1.0)
        fy = fy.clamp_(0.0, my - 1.0)
        # truncation is floor here (fx >= 0); clamping both ends keeps NaN points (from a blown-up velocity) in
        # range, so they give NaN values, which the divergence check reports, instead of an indexing error
        i0 = fx.to(torch.int64).clamp_(0, mx - 2)
        j0 = fy.to(torch.int64).clamp_(0, my - 2)
        wx, wy = fx.sub_(i0), fy.sub_(j0)
        index = i0.mul_(my).add_(j0).reshape(batch, -1)
        flat = values.reshape(batch, -1)
        f00, f01 = flat.gather(1, index), flat.gather(1, index + 1)
        f10, f11 = flat.gather(1, index + my), flat.gather(1, index + (my + 1))
        wx, wy = wx.reshape(batch, -1), wy.reshape(batch, -1)
        low = f00 + wy * (f01 - f00)
        high = f10 + wy * (f11 - f10)
        return (low + wx * (high - low)).reshape(px.shape)

    def velocity_at(self, vx: Tensor, vy: Tensor, px: Tensor, py: Tensor) -> tuple[Tensor, Tensor]:
        """Velocity (length/time) interpolated at points in index units, with the walls' continuation beyond the
        outermost samples: `(vx, vy)` each `[B, *P]`."""
        return (self.sample(vx, "x", px, py, self.zero_walls), self.sample(vy, "y", px, py, self.zero_walls))

    def grid_velocity(self, vx: Tensor, vy: Tensor, grid: str) -> tuple[Tensor, Tensor]:
        """Velocity at the sample points of `grid` (c | x | y): what `velocity_at` gives there, by face averages
        (beyond the walls the missing tangential neighbours are the walls' ghosts, `_ghosts`)."""
        if grid == "c":
            return faces_to_centres(vx, vy)
        if grid == "x":  # vy at the corners around each x face, averaged
            pad = self._ghosts(vy, -2)  # [B, nx + 2, ny + 1]
            pair = pad[:, :-1] + pad[:, 1:]  # [B, nx + 1, ny + 1]
            return vx, 0.25 * (pair[:, :, :-1] + pair[:, :, 1:])
        pad = self._ghosts(vx, -1)  # [B, nx + 1, ny + 2]
        pair = pad[:, :, :-1] + pad[:, :, 1:]  # [B, nx + 1, ny + 1]
        return 0.25 * (pair[:, :-1] + pair[:, 1:]), vy

    def _into_box(self, px: Tensor, py: Tensor) -> tuple[Tensor, Tensor]:
        """Clamp points (index units) into the box; with zero walls into the box plus one cell, beyond which the
        velocity is zero anyway (PhiFlow does not clamp)."""
        margin = 1.0 if self.zero_walls else 0.0
        return px.clamp(-margin, self.nx + margin), py.clamp(-margin, self.ny + margin)

    def departure_points(self, vx: Tensor, vy: Tensor, grid: str, h: float, backtrace: str) -> tuple[Tensor, Tensor]:
        """Where the fluid at the sample points of `grid` was `h` time units earlier (index units): one Euler step
        back with the velocity at the points (`euler`, PhiFlow's), or a step with the velocity at the midpoint of
        that Euler half step (`midpoint`); clamped by `_into_box`."""
        batch = vx.shape[0]
        px, py = (p.expand(batch, -1, -1) for p in self.points[grid])
        ux, uy = self.grid_velocity(vx, vy, grid)
        if backtrace == "midpoint":
            mx, my = self._into_box(px - (0.5 * h / self.dx) * ux, py - (0.5 * h / self.dy) * uy)
            ux, uy = self.velocity_at(vx, vy, mx, my)
        return self._into_box(px - (h / self.dx) * ux, py - (h / self.dy) * uy)


# --------------------------------------------------------------------------------------------------------------
# The time step
# --------------------------------------------------------------------------------------------------------------


@dataclass
class SmokeState:
    """A batch of states on the MAC grid, float64: smoke `[B, nx, ny]` (1), vx `[B, nx + 1, ny]`,
    vy `[B, nx, ny + 1]` (length/time)."""

    smoke: Tensor
    vx: Tensor
    vy: Tensor

    def centred(self) -> Tensor:
        """Stored fields `[B, 3, nx, ny]`: smoke, vx, vy at cell centres."""
        ux, uy = faces_to_centres(self.vx, self.vy)
        return torch.stack([self.smoke, ux, uy], dim=1)


def smoke_step(ops: BoxOperators, state: SmokeState, buoyancy: Tensor, nu: float, h: float,
               backtrace: str = "euler", viscosity: str = "explicit") -> SmokeState:
    """One solver step of length `h` (time units): advection, buoyancy, viscosity, projection (module docstring).

    buoyancy: `[B]` (length/time^2 per unit smoke); nu: length^2/time; backtrace: `BACKTRACES`; viscosity: the
    `BoxOperators.diffuse` method (`VISCOSITIES`). The walls are those of `ops`. The defaults are PDEArena's step.
    """
    vx, vy = state.vx, state.vy
    smoke = ops.sample(state.smoke, "c", *ops.departure_points(vx, vy, "c", h, backtrace))
    new_vx = ops.sample(vx, "x", *ops.departure_points(vx, vy, "x", h, backtrace), zero_outside=ops.zero_walls)
    new_vy = ops.sample(vy, "y", *ops.departure_points(vx, vy, "y", h, backtrace), zero_outside=ops.zero_walls)
    new_vx[:, 0] = 0.0
    new_vx[:, -1] = 0.0
    new_vy[:, :, 0] = 0.0
    new_vy[:, :, -1] = 0.0
    new_vy[:, :, 1:-1] += (h * buoyancy)[:, None, None] * (0.5 * (smoke[:, :, :-1] + smoke[:, :, 1:]))
    new_vx, new_vy = ops.diffuse(new_vx, new_vy, nu, h, viscosity)
    new_vx, new_vy, _ = ops.project(new_vx, new_vy)
    return SmokeState(smoke, new_vx, new_vy)


def courant_number(ops: BoxOperators, state: SmokeState, h: float) -> Tensor:
    """Per trajectory `[B]`: the largest distance a face velocity carries the fluid in one step, in cells."""
    cx = state.vx.abs().flatten(1).amax(1) * (h / ops.dx)
    cy = state.vy.abs().flatten(1).amax(1) * (h / ops.dy)
    return torch.maximum(cx, cy)


def _check_state(ops: BoxOperators, state: SmokeState, h: float, max_courant: float, seeds: Sequence[int],
                 time: float) -> None:
    """Raise `SolverDiverged` for trajectories with non-finite values or a Courant number above `max_courant`."""
    finite = torch.isfinite(state.smoke).flatten(1).all(1) & torch.isfinite(state.vx).flatten(1).all(1)
    finite &= torch.isfinite(state.vy).flatten(1).all(1)
    courant = courant_number(ops, state, h)
    bad = (~finite | ~(courant <= max_courant)).cpu().numpy()
    if bad.any():
        failed = [int(s) for s, b in zip(seeds, bad, strict=True) if b]
        if not bool(finite.all()):
            reason = "non-finite values"
        else:
            reason = (f"Courant number {float(courant.max()):.3g} exceeds max_courant = {max_courant:g} "
                      f"(a departure point more than that many cells away)")
        raise SolverDiverged(failed, time, reason)


# --------------------------------------------------------------------------------------------------------------
# Settings, draws, generator
# --------------------------------------------------------------------------------------------------------------


def _pair(owner: Any, key: str, accepts: Callable[[Any], bool], expected: str, kind: type) -> tuple[Any, Any]:
    """`owner.key` as a pair of `kind` whose two entries `accepts`; otherwise `SettingError` naming the whole pair
    (`key=[8.5,8] is not valid: expected <expected>`)."""
    value = getattr(owner, key)
    if (isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2
            or not all(accepts(v) for v in value)):
        raise SettingError(key, value, f"is not valid: expected {expected}")
    return kind(value[0]), kind(value[1])


def _is_cell_count(value: Any) -> bool:
    return is_whole_number(value) and value >= 2


def _is_length(value: Any) -> bool:
    return is_finite_number(value) and value > 0


@dataclass
class SmokeConfig:
    """Settings of the smoke generator.

    resolution: cells `(nx, ny)` of the solver. stored_resolution: cells of the stored grid, each an integer
    divisor of `resolution` (the stored fields are cell means over blocks of solver cells); null: the solver grid.
    domain_size: `(Lx, Ly)` (length units). nu: kinematic viscosity (length^2/time). buoyancy_range: `(low, high)`
    of the uniform per-trajectory buoyancy (length/time^2 per unit smoke; equal ends mean fixed). frame_interval:
    time between stored frames (time units). substeps: solver steps per frame interval (step
    `h = frame_interval / substeps`). warmup_frames: frame intervals integrated and dropped before frame 0 is
    recorded (module docstring). noise_smoothness: PhiFlow's `Noise` smoothness `s` of the initial smoke, whose
    Fourier amplitudes fall off as `|k|^(-2 s)` (`initial_smoke`). backtrace: departure points by one `euler` step
    (default; PDEArena's PhiFlow step) or by the `midpoint` rule (more accurate advection, less smoke lost; the
    `smoke_midpoint` dataset). walls: the velocity's continuation beyond its outermost samples (`BoxOperators`):
    `zero` (default; PhiFlow's `extrapolation.ZERO`, PDEArena's) or `free_slip`. viscosity: `explicit` Euler steps
    of `nu lap v` (default; PhiFlow's `diffuse.explicit`, split into as many equal steps as stability needs) or the
    `exact` solution over a step.
    max_courant: largest allowed face-velocity displacement per step in cells; beyond it the run is declared
    diverged (`SolverDiverged`). Invalid values raise `SettingError` (`pdebench.config.checks`) naming the field.
    """

    resolution: tuple[int, int] = (128, 128)
    stored_resolution: tuple[int, int] | None = None
    domain_size: tuple[float, float] = (32.0, 32.0)
    nu: float = 0.01
    buoyancy_range: tuple[float, float] = (0.5, 0.5)
    frame_interval: float = 1.5
    substeps: int = 1
    warmup_frames: int = 8
    noise_smoothness: float = 6.0
    backtrace: str = "euler"
    walls: str = "zero"
    viscosity: str = "explicit"
    max_courant: float = 64.0

    def __post_init__(self) -> None:
        cells = "a pair [nx, ny] of cell counts, whole numbers >= 2"
        self.resolution = _pair(self, "resolution", _is_cell_count, cells, int)
        if self.stored_resolution is not None:
            stored = _pair(self, "stored_resolution", _is_cell_count, f"{cells} (or null)", int)
            if any(n % m for n, m in zip(self.resolution, stored, strict=True)):
                raise SettingError("stored_resolution", self.stored_resolution,
                                   f"is not valid: expected a divisor of resolution={format_value(self.resolution)} "
                                   "on each axis (a stored cell is the mean of a block of solver cells)")
            self.stored_resolution = stored
        lengths = "a pair [Lx, Ly] of domain lengths, finite numbers > 0"
        self.domain_size = _pair(self, "domain_size", _is_length, lengths, float)
        self.buoyancy_range = number_interval(self, "buoyancy_range", -math.inf, what="a range of buoyancies")
        self.nu = finite_number(self, "nu", what="a kinematic viscosity")
        self.frame_interval = finite_number(self, "frame_interval", low_open=True, what="a time between stored frames")
        self.substeps = whole_number(self, "substeps", 1, "a number of solver steps per frame interval")
        self.warmup_frames = whole_number(self, "warmup_frames", 0, "a number of frame intervals run before frame 0")
        self.noise_smoothness = finite_number(self, "noise_smoothness",
                                              what="the exponent of the initial noise's power-law fall-off")
        if self.backtrace not in BACKTRACES:
            raise SettingError("backtrace", self.backtrace, f"is not valid: expected {' or '.join(BACKTRACES)} (the "
                                                            "rule that finds the departure points of advection)")
        if self.walls not in WALLS:
            raise SettingError("walls", self.walls, f"is not valid: expected {' or '.join(WALLS)} (how the velocity "
                                                    "continues beyond the walls)")
        if self.viscosity not in VISCOSITIES:
            raise SettingError("viscosity", self.viscosity, f"is not valid: expected {' or '.join(VISCOSITIES)} (how "
                                                            "the viscous term is integrated over a step)")
        self.max_courant = finite_number(self, "max_courant", low_open=True,
                                         what="a largest displacement per step in cells")

    @property
    def spacing(self) -> tuple[float, float]:
        """Cell size `(dx, dy)` (length units)."""
        return (self.domain_size[0] / self.resolution[0], self.domain_size[1] / self.resolution[1])

    @property
    def viscosity_substeps(self) -> int:
        """Explicit viscous steps per solver step (`explicit_viscous_steps`; 1 at PDEArena's settings)."""
        return explicit_viscous_steps(self.nu, self.frame_interval / self.substeps, self.spacing)

    @property
    def stored_shape(self) -> tuple[int, int]:
        """Cells `(nx, ny)` of the stored grid."""
        return self.stored_resolution or self.resolution  # type: ignore[return-value]

    @property
    def stored_spacing(self) -> tuple[float, float]:
        """Cell size `(dx, dy)` of the stored grid (length units)."""
        return (self.domain_size[0] / self.stored_shape[0], self.domain_size[1] / self.stored_shape[1])


def cell_mean_matrix(n_fine: int, n_coarse: int, like: Tensor) -> Tensor:
    """`[n_coarse, n_fine]` weights turning cell values on `n_fine` cells into exact means over the `n_coarse` cells
    of the same interval (each row: the fraction of the coarse cell every fine cell covers; rows sum to 1)."""
    dtype = like.dtype if like.is_floating_point() else torch.float64
    fine = torch.arange(n_fine + 1, dtype=dtype, device=like.device) / n_fine  # cell edges, fractions of the length
    coarse = torch.arange(n_coarse + 1, dtype=dtype, device=like.device) / n_coarse
    low = torch.maximum(coarse[:-1, None], fine[None, :-1])
    high = torch.minimum(coarse[1:, None], fine[None, 1:])
    return (high - low).clamp(min=0.0) * n_coarse


def block_mean(fields: Tensor, shape: Sequence[int]) -> Tensor:
    """Cell means of `[..., nx, ny]` over blocks, onto a coarser grid `shape` dividing `(nx, ny)`.

    Summed slice by slice in a fixed order (element-wise adds, no reduction kernel), so that a trajectory's result
    does not depend on the batch it is in.
    """
    (nx, ny), (mx, my) = fields.shape[-2:], (int(n) for n in shape)
    if (nx, ny) == (mx, my):
        return fields
    rx, ry = nx // mx, ny // my
    total = fields[..., 0::rx, 0::ry].clone()
    for i in range(rx):
        for j in range(ry):
            if i or j:
                total += fields[..., i::rx, j::ry]
    return total / (rx * ry)


def initial_smoke(rng: np.random.Generator, shape: Sequence[int], smoothness: float,
                  domain_size: Sequence[float] | None = None) -> np.ndarray:
    """PDEArena's noise smoke `[nx, ny]` float64 >= 0: `|g|` for a zero-mean, unit-variance Gaussian random field
    `g` whose Fourier amplitudes are `(1 / |k|^2)^smoothness` (the constant mode 0), as PhiFlow's
    `Noise(smoothness=smoothness)` draws it: `k` the wavenumbers of the grid's FFT, `m / L` per axis for a box
    `domain_size = (Lx, Ly)` (None: the integer mode numbers `m`; the same spectrum in a square box). PhiFlow's
    `scale` only rescales `k`, which the standardisation cancels (it also drops modes with `(k scale)^2 <= 0.1`, none
    but the constant one at PDEArena's `scale = 11` in a box of 32)."""
    nx, ny = (int(n) for n in shape)
    lx, ly = (float(n) for n in shape) if domain_size is None else (float(d) for d in domain_size)
    kx = np.fft.fftfreq(nx) * nx / lx
    ky = np.fft.fftfreq(ny) * ny / ly
    k2 = kx[:, None] ** 2 + ky[None, :] ** 2
    amplitude = np.zeros_like(k2)
    amplitude[k2 > 0] = k2[k2 > 0] ** (-smoothness)
    white = rng.standard_normal((2, nx, ny))
    field = np.fft.ifft2((white[0] + 1j * white[1]) * amplitude).real
    field -= field.mean()
    field /= field.std()
    return np.abs(field)


def sample_trajectory(seed: int, config: SmokeConfig) -> dict[str, Any]:
    """All random draws of one trajectory from `numpy.random.default_rng(seed)`, in a fixed order:
    float `buoyancy`, then float64 `smoke [nx, ny]` (the initial smoke, see `initial_smoke`)."""
    rng = np.random.default_rng(int(seed))
    buoyancy = float(rng.uniform(*config.buoyancy_range))
    smoke = initial_smoke(rng, config.resolution, config.noise_smoothness, config.domain_size)
    return {"buoyancy": buoyancy, "smoke": smoke}


def _rest_state(smoke: Tensor) -> SmokeState:
    batch, nx, ny = smoke.shape
    return SmokeState(smoke, smoke.new_zeros(batch, nx + 1, ny), smoke.new_zeros(batch, nx, ny + 1))


def run_frames(ops: BoxOperators, state: SmokeState, buoyancy: Tensor, config: SmokeConfig, n_frames: int,
               skip_frames: int, seeds: Sequence[int], stored_shape: Sequence[int] | None = None) -> Tensor:
    """Integrate `skip_frames + n_frames` frame intervals and return the states after the last `n_frames` of them
    at cell centres, float32 `[3, B, n_frames, *stored_shape]` (smoke, vx, vy; frame j is the state after
    `skip_frames + 1 + j` intervals; block means onto `stored_shape`, default the solver grid).
    Checks finiteness and the Courant limit after every frame interval (`SolverDiverged` names `seeds`)."""
    h = config.frame_interval / config.substeps
    batch = state.smoke.shape[0]
    stored_shape = tuple(stored_shape or (ops.nx, ops.ny))
    out = torch.empty(3, batch, n_frames, *stored_shape, dtype=torch.float32, device=state.smoke.device)
    with single_threaded(state.smoke.device):
        for frame in range(skip_frames + n_frames):
            for _ in range(config.substeps):
                state = smoke_step(ops, state, buoyancy, config.nu, h, config.backtrace, config.viscosity)
            _check_state(ops, state, h, config.max_courant, seeds, (frame + 1) * config.frame_interval)
            if frame >= skip_frames:
                out[:, :, frame - skip_frames] = block_mean(state.centred(), stored_shape).transpose(0, 1)
    return out


@register_generator("smoke", config=SmokeConfig)
class SmokeGenerator:
    """Batched, per-seed buoyant smoke generator (`data_gen.base.TrajectoryGenerator`, `HasReferenceSolver`)."""

    pde = "smoke"
    grid = "box"
    fields = (
        FieldSpec("smoke", units="1", boundary="box walls: no flux",
                  description="passive smoke concentration (cell centres), advected and driving buoyancy"),
        FieldSpec("vx", units="length/time", boundary="box walls: no penetration, tangential per solver walls",
                  description="x velocity at cell centres (mean of the cell's two x faces)"),
        FieldSpec("vy", units="length/time", boundary="box walls: no penetration, tangential per solver walls",
                  description="y velocity (up) at cell centres (mean of the cell's two y faces)"),
    )
    parameters = (
        ParameterSpec("buoyancy", "length/time^2", "buoyancy force per unit smoke, along +y"),
        ParameterSpec("nu", "length^2/time", "kinematic viscosity"),
        ParameterSpec("dt", "time units", "time between stored frames"),
        ParameterSpec("dx", "length units", "cell width along x"),
        ParameterSpec("dy", "length units", "cell height along y"),
    )

    def __init__(self, config: SmokeConfig | None = None) -> None:
        self.config = config if config is not None else SmokeConfig()
        self.frame_interval = self.config.frame_interval

    def coordinates(self) -> tuple[Coordinate, ...]:
        c = self.config
        (nx, ny), (dx, dy) = c.stored_shape, c.stored_spacing
        return (
            Coordinate("x", (np.arange(nx) + 0.5) * dx, "length units", "cell centre x, walls at 0 and Lx"),
            Coordinate("y", (np.arange(ny) + 0.5) * dy, "length units", "cell centre y (up), walls at 0 and Ly"),
        )

    def solver_settings(self) -> dict[str, Any]:
        c = self.config
        return {
            "solver": "semi-lagrangian advection + exact projection (MAC grid)",
            "advection": f"semi-lagrangian, bilinear, {c.backtrace} backtrace",
            "viscosity": {"explicit": f"explicit Euler, {c.viscosity_substeps} step(s) per solver step",
                          "exact": "exact exp(h nu lap) in the DST/DCT eigenbasis"}[c.viscosity],
            "pressure": "exact Neumann Poisson solve by 2-D DCT-II",
            "walls": {"zero": "no penetration; velocity zero one cell beyond its outermost samples (PhiFlow "
                              "extrapolation.ZERO); no smoke flux",
                      "free_slip": "no penetration, free slip, no smoke flux"}[c.walls],
            "step": c.frame_interval / c.substeps,
            "substeps": c.substeps,
            "warmup_frames": c.warmup_frames,
            "solver_grid": list(c.resolution),
            "stored_grid": list(c.stored_shape) + (["cell means of solver cells"] if c.stored_resolution else []),
            "dtype": "float64",
        }

    def _params(self, buoyancy: np.ndarray) -> dict[str, np.ndarray]:
        c = self.config
        n = buoyancy.shape[0]
        return {
            "buoyancy": buoyancy.astype(np.float64),
            "nu": np.full(n, c.nu),
            "dt": np.full(n, c.frame_interval),
            "dx": np.full(n, c.stored_spacing[0]),
            "dy": np.full(n, c.stored_spacing[1]),
        }

    def generate(self, seeds: Sequence[int], n_frames: int, device: torch.device) -> GeneratedBatch:
        """Fields `smoke`, `vx`, `vy`: float32 `[B, n_frames, nx, ny]`; parameters float64 `[B]`."""
        check_generate_request(seeds, n_frames)
        c = self.config
        device = torch.device(device)
        draws = [sample_trajectory(s, c) for s in seeds]
        buoyancy = np.array([d["buoyancy"] for d in draws], dtype=np.float64)
        smoke = torch.from_numpy(np.stack([d["smoke"] for d in draws])).to(device)
        ops = BoxOperators(c.resolution, c.spacing, device, c.walls)
        frames = run_frames(ops, _rest_state(smoke), torch.from_numpy(buoyancy).to(device), c, n_frames,
                            c.warmup_frames, [int(s) for s in seeds], c.stored_shape)
        frames = frames.cpu().numpy()
        return GeneratedBatch(
            fields={name: frames[i] for i, name in enumerate(("smoke", "vx", "vy"))},
            parameters=self._params(buoyancy),
        )

    def reference_solver(self, resolution: Sequence[int] | None = None,
                         time_step_factor: float = 1.0) -> SmokeReferenceSolver:
        """The solver stepping stored states (the evaluator's `solver` row), see `SmokeReferenceSolver`."""
        return SmokeReferenceSolver(self.config, resolution, time_step_factor)


class SmokeReferenceSolver:
    """Steps stored smoke states forward by whole frame intervals (`data_gen.base.ReferenceSolver`).

    resolution: cells `(nx', ny')`, at most the stored `(nx, ny)` and at least 2 per axis (None: the stored grid;
    when the data were solved on a finer grid than stored, even this is a coarser solver than the generator's). The
    stored centre fields are averaged onto it (exact cell means: `block_mean` when it divides the stored grid, else
    the overlap of cells, `cell_mean_matrix`), the velocity is rebuilt on its faces (`centres_to_faces`) and
    projected, the solver runs there, and the result is brought back to the stored grid by bilinear interpolation
    (velocity through its faces, so the walls stay impermeable). time_step_factor: the solver step is
    `frame_interval / substeps` times this, rounded so that a whole number of steps (at least one) spans the
    requested frames.
    """

    def __init__(self, config: SmokeConfig, resolution: Sequence[int] | None = None,
                 time_step_factor: float = 1.0) -> None:
        stored = config.stored_shape
        if resolution is None:
            resolution = stored
        if (isinstance(resolution, (str, bytes)) or not isinstance(resolution, Sequence) or len(resolution) != 2
                or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in resolution)):
            raise InvalidSetting(f"resolution must be a pair of cell counts (nx, ny), got {resolution!r}")
        resolution = (int(resolution[0]), int(resolution[1]))
        if any(not 2 <= n <= s for n, s in zip(resolution, stored, strict=True)):
            raise InvalidSetting(f"resolution must be between 2 and the stored grid {tuple(stored)} cells per axis, "
                                 f"got {resolution}")
        if isinstance(time_step_factor, bool) or not (isinstance(time_step_factor, (int, float))
                                                      and math.isfinite(time_step_factor) and time_step_factor > 0):
            raise InvalidSetting(f"time_step_factor must be a finite number > 0, got {time_step_factor!r}")
        self.config, self.resolution, self.time_step_factor = config, resolution, float(time_step_factor)
        self.stored = tuple(stored)
        self.spacing = (config.domain_size[0] / resolution[0], config.domain_size[1] / resolution[1])

    def _restrict(self, fields: Tensor) -> Tensor:
        """Stored-grid centre fields `[B, 3, nx, ny]` -> their cell means on the solver grid."""
        if all(s % n == 0 for n, s in zip(self.resolution, self.stored, strict=True)):
            return block_mean(fields, self.resolution)
        wx, wy = (cell_mean_matrix(s, n, fields) for s, n in zip(self.stored, self.resolution, strict=True))
        return torch.einsum("in,bcnm,jm->bcij", wx, fields, wy)

    def _prolong(self, coarse: BoxOperators, state: SmokeState, fine: BoxOperators) -> Tensor:
        """Coarse state -> stored-grid centre fields `[B, 3, nx, ny]` by bilinear interpolation."""
        rx, ry = (s / n for s, n in zip(self.stored, self.resolution, strict=True))  # stored cells per solver cell
        batch = state.smoke.shape[0]

        def at(grid: str) -> tuple[Tensor, Tensor]:
            px, py = fine.points[grid]
            return (px / rx).expand(batch, -1, -1), (py / ry).expand(batch, -1, -1)

        fine_state = SmokeState(coarse.sample(state.smoke, "c", *at("c")),
                                coarse.sample(state.vx, "x", *at("x"), zero_outside=coarse.zero_walls),
                                coarse.sample(state.vy, "y", *at("y"), zero_outside=coarse.zero_walls))
        return fine_state.centred()

    def advance(self, fields: Tensor, params: Mapping[str, Tensor], n_frames: int) -> Tensor:
        """`fields [B, 3, nx, ny]` (smoke, vx, vy at cell centres, stored grid) -> the fields `n_frames` frame
        intervals later, same shape and dtype. `params` must hold `buoyancy [B]`; other entries are ignored.
        A blow-up raises `SolverDiverged` with the failing rows of the batch (0-based) in place of seeds."""
        c = self.config
        stored = c.stored_shape
        if fields.ndim != 4 or fields.shape[1] != 3 or tuple(fields.shape[2:]) != tuple(stored):
            raise ValueError(f"fields must be [B, 3, {stored[0]}, {stored[1]}] (smoke, vx, vy), "
                             f"got shape {tuple(fields.shape)}")
        if "buoyancy" not in params:
            raise ValueError("params must hold the per-trajectory 'buoyancy' of the split file")
        if isinstance(n_frames, bool) or not isinstance(n_frames, int) or n_frames < 0:
            raise ValueError(f"n_frames must be an integer >= 0, got {n_frames!r}")
        if n_frames == 0:
            return fields.clone()
        device, dtype = fields.device, fields.dtype
        x = fields.to(torch.float64)
        buoyancy = torch.as_tensor(params["buoyancy"]).to(device=device, dtype=torch.float64).reshape(-1)
        nu = c.nu  # fixed by the settings (not varied per trajectory); a file's `nu` column holds the same value
        with single_threaded(device):
            coarse = BoxOperators(self.resolution, self.spacing, device, c.walls)
            x = self._restrict(x)
            vx, vy = centres_to_faces(x[:, 1], x[:, 2])
            vx, vy, _ = coarse.project(vx, vy)
            state = SmokeState(x[:, 0].contiguous(), vx, vy)
            n_steps = max(1, round(n_frames * c.substeps / self.time_step_factor))
            h = n_frames * c.frame_interval / n_steps
            seeds = list(range(x.shape[0]))
            # A longer step moves the fluid further per step: the limit scales with it, i.e. it bounds the velocity
            # exactly as the generator's limit does at its own step.
            max_courant = c.max_courant * max(1.0, h * c.substeps / c.frame_interval)
            for step in range(n_steps):
                state = smoke_step(coarse, state, buoyancy, nu, h, c.backtrace, c.viscosity)
                _check_state(coarse, state, h, max_courant, seeds, (step + 1) * h)
            if self.resolution == self.stored:
                out = state.centred()
            else:
                out = self._prolong(coarse, state, BoxOperators(stored, c.stored_spacing, device, c.walls))
        return out.to(dtype)
