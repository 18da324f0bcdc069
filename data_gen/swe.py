"""Shallow water on the rotating sphere (random Galewsky-type zonal jets), batched spectral solver in torch.

Equations (vorticity-divergence form, as in spectral weather models), on a sphere of radius `a`::

    d(zeta)/dt = -div((zeta + f) u)
    d(delta)/dt = curl((zeta + f) u) - lap(Phi + |u|^2 / 2)
    d(Phi)/dt   = -div(Phi u)

with `u = (u, v)` the eastward and northward wind (m/s), `zeta` / `delta` its relative vorticity and divergence
(1/s), `Phi = g h` the geopotential (m^2/s^2, `h` the fluid depth in m) and `f = 2 Omega sin(lat)` the Coriolis
parameter. Stored fields are the geopotential height `h = Phi / g` (m), `u` and `v` (m/s).

Space: spherical harmonics via torch-harmonics' `RealSHT` / `InverseRealSHT` / `RealVectorSHT` /
`InverseRealVectorSHT` on a Gaussian (Legendre–Gauss) grid of `n_lat x n_lon` points, with the triangular
truncation `T = min((2 n_lat - 1) // 3, (n_lon - 1) // 3)` (degrees `l <= T`; T63 on 96 x 192, T31 on 48 x 96, and
T15 on a 48 x 48 grid that a reference solver may be given): the "quadratic" grid, on
which a product of two truncated fields is transformed without aliasing, so mass is conserved exactly (the
divergence of a flux has no `l = 0` part). The wind comes from vorticity and divergence through the inverse
vector transform of `inverse_laplacian(zeta, delta) / a`. `SphericalTransforms` evaluates torch-harmonics'
transforms (its quadrature and Legendre matrices) as one matrix product each.

Time: third-order Adams–Bashforth (AB3, the scheme of torch-harmonics' example solver) with step `time_step`
(seconds); its first two steps are taken by Kutta's third-order Runge–Kutta method, so a run restarted from any
state (the reference solver) is third-order accurate from its first step. After every step, scale-selective
hyperdiffusion `-(1/tau) (l (l + 1) / (T (T + 1)))^order` acts on all three spectral fields as an exact
exponential factor (`l = 0` is untouched, so mass is too). `order` is 8 (del^16) and the e-folding time `tau` of
the truncation degree scales with the truncation, `tau = hyperdiffusion_hours * 31 / T` (`hyperdiffusion_time`;
2.5 h at T31, 1.23 h at T63: the time the flow takes to cross the truncation scale shrinks as `1 / T`, the
resolution scaling of SpeedyWeather.jl's hyperdiffusion). With that, a resolved jet (see below) keeps >= 98% of its
drawn peak speed through the spin-up, and the damping stays on the top quarter of the degrees; the former del^8
with 2 h at every truncation took a quarter to a half of a T31 jet's speed before the first stored frame.

Initial state (per trajectory, every draw from `numpy.random.default_rng(seed)`, see `sample_jets`): one or two
zonal jets (one per hemisphere at most), each with the compactly supported profile of Galewsky et al. (2004)
`u = u_max / e_n * exp(1 / ((lat - lat_0)(lat - lat_1)))` between `lat_0 = c - w` and `lat_1 = c + w`, in
nonlinear (gradient-wind) balance (`lap(Phi + |u|^2 / 2) = curl((zeta + f) u)`, mean depth `mean_height`),
plus Galewsky's localised height bump `h_b cos(lat) exp(-(dlon / 1/3)^2) exp(-((c - lat) / (1/15))^2)` at the jet
centre and a random longitude, which triggers the barotropic instability. Near its centre the profile is
`u_max exp(-(lat - c)^2 / w^4)` (radians): its width goes as `w^2`, so a grid of truncation `T` holds it only for
`w^2 T` above a bound; the presets draw the half widths their grid holds (`conf/pde/swe.yaml`). The draws are stored
per trajectory (`JET_PARAMETERS`, records only: `conditioning=False`). A spin-up of `spin_up_hours` is run and
discarded, long enough that the instability has grown to a finite non-zonal share of the kinetic energy
(`nonzonal_energy_share`) by the first stored frame; then a frame is stored every `frame_interval_hours`.

Reproducibility: a trajectory is bitwise the same whatever batch it is generated in (on a given device). The
Legendre transforms are matrix products whose rounding depends on the number of rows (measured on CPU/MKL), so
trajectories are integrated in chunks of exactly `chunk` trajectories (the last chunk padded with copies of its
first trajectory); within a chunk of fixed size (a power of two) each row is computed alike wherever it sits and
whatever the other rows hold (measured; with 6 rows it is not, hence the power of two). Complex products in the
loop have one factor with zero imaginary part or are written as real arithmetic, so each part is one rounding.
On CPU the solver runs on one thread (`data_gen.spectral.single_threaded`). Only the CPU has been checked; on a
GPU this is the best guess, not a measured fact.

Stability: before the first step and at every stored frame, the Courant number
`(max|u| + sqrt(max Phi)) sqrt(T (T + 1)) time_step / a` (fastest advection plus gravity-wave frequency of the
highest degree, times the step) must stay below `max_courant` (AB3 is stable up to about 0.72 on the imaginary
axis) and the depth must stay positive and finite; otherwise `SolverDiverged` names the seeds and the time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

import numpy as np
import torch
import torch_harmonics as th
from torch import Tensor

from data_gen.base import (
    GeneratedBatch,
    SolverDiverged,
    check_generate_request,
)
from data_gen.registry import register_generator
from data_gen.spectral import single_threaded
from pdebench.config.checks import SettingError, finite_number, format_value, number_interval, whole_number
from pdebench.data.schema import Coordinate, FieldSpec, ParameterSpec
from pdebench.errors import InvalidSetting

__all__ = [
    "JET_PARAMETERS",
    "SWEConfig",
    "SWEGenerator",
    "SWEReferenceSolver",
    "SphericalShallowWater",
    "SphericalTransforms",
    "balanced_state",
    "gaussian_latitudes",
    "hyperdiffusion_time",
    "jet_initial_grids",
    "jet_parameters",
    "jets_from_parameters",
    "kinetic_energy",
    "nonzonal_energy_share",
    "sample_jets",
    "truncation_degree",
]

SECONDS_PER_HOUR = 3600.0
FIELD_NAMES = ("height", "u", "v")
# Galewsky et al. (2004): longitudinal and latitudinal e-folding widths of the height bump (radians).
BUMP_LON_WIDTH = 1.0 / 3.0
BUMP_LAT_WIDTH = 1.0 / 15.0
# `SWEConfig.hyperdiffusion_hours` is the e-folding time of the truncation degree on a grid of this truncation.
HYPERDIFFUSION_REFERENCE_TRUNCATION = 31


def truncation_degree(n_lat: int, n_lon: int | None = None) -> int:
    """Largest degree `T` of the triangular truncation that a Gaussian grid of `n_lat` latitudes (and `n_lon`
    longitudes) transforms quadratic products of without aliasing: `3 T + 1 <= 2 n_lat` and `3 T + 1 <= n_lon`,
    i.e. `T = min((2 n_lat - 1) // 3, (n_lon - 1) // 3)` (the quadratic grid has `n_lon = 2 n_lat`)."""
    degree = (2 * int(n_lat) - 1) // 3
    return degree if n_lon is None else min(degree, (int(n_lon) - 1) // 3)


def gaussian_latitudes(n_lat: int) -> tuple[np.ndarray, np.ndarray]:
    """Latitudes (radians, north to south, `[n_lat]`) of the Legendre–Gauss grid and their quadrature weights
    in `sin(lat)` (summing to 2), both float64 — the order torch-harmonics' transforms use."""
    latitudes, weights = _gauss_legendre(int(n_lat))
    return latitudes.copy(), weights.copy()


@cache
def _gauss_legendre(n_lat: int) -> tuple[np.ndarray, np.ndarray]:
    cost, weights = th.quadrature.legendre_gauss_weights(n_lat, -1, 1)
    colat = np.flip(np.arccos(np.asarray(cost, dtype=np.float64)))
    return np.pi / 2 - colat, np.flip(np.asarray(weights, dtype=np.float64)).copy()


def kinetic_energy(height: np.ndarray, u: np.ndarray, v: np.ndarray, weights: np.ndarray,
                   radius: float) -> np.ndarray:
    """Kinetic energy `integral of h |u|^2 / 2 dA` (per unit density, m^5/s^2) of grids `[..., n_lat, n_lon]` (depth
    in m, winds in m/s) on a Gaussian grid with quadrature weights `weights` `[n_lat]` (in `sin(lat)`, summing to 2,
    `gaussian_latitudes`); returns `[...]` float64. With `g h^2 / 2` it makes the total energy the solver keeps."""
    h, u, v = (np.asarray(x, dtype=np.float64) for x in (height, u, v))
    density = (0.5 * h * (u * u + v * v)).mean(axis=-1)  # zonal mean [..., n_lat]
    return 2 * math.pi * radius**2 * (density * np.asarray(weights, dtype=np.float64)).sum(axis=-1)


def nonzonal_energy_share(u: np.ndarray, v: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Share of the wind's kinetic energy that is not in its zonal mean: `integral |u - [u]|^2 dA / integral |u|^2 dA`
    with `[u]` the mean over longitude of `(u, v)`, area-weighted by the Gauss weights `weights` `[n_lat]` (restrict
    the latitudes of all three to measure a band). Grids `[..., n_lat, n_lon]`; returns `[...]` in [0, 1]: 0 for a
    zonal (steady) jet, ~0.3 once a jet has rolled up into vortices."""
    u, v, w = (np.asarray(x, dtype=np.float64) for x in (u, v, weights))
    eddy = ((u - u.mean(axis=-1, keepdims=True)) ** 2 + (v - v.mean(axis=-1, keepdims=True)) ** 2).mean(axis=-1)
    total = (u * u + v * v).mean(axis=-1)
    return (eddy * w).sum(axis=-1) / (total * w).sum(axis=-1)


def _check_grid(n_lat: int, n_lon: int, where: str) -> None:
    if n_lat < 4 or n_lon < 7:
        raise InvalidSetting(f"{where} must be a Gaussian grid of at least 4 x 7 points (n_lat x n_lon, e.g. "
                             f"96 x 192), got {n_lat} x {n_lon}")


class SphericalTransforms:
    """torch-harmonics' real scalar and vector spherical harmonic transforms (Legendre–Gauss grid, orthonormal,
    no Condon–Shortley phase), evaluated with one batched matrix product per call.

    The quadrature, the associated Legendre matrices and every convention come from torch-harmonics'
    `RealSHT`, `InverseRealSHT`, `RealVectorSHT` and `InverseRealVectorSHT` (built here, their precomputed
    matrices kept); only the contraction is reorganised: those modules make two (scalar) or eight (vector)
    `einsum` calls on strided real/imaginary slices per transform, which on a CPU costs 20-40x more than the
    matrix product itself for the vector transforms. Here each transform is one `bmm` over the orders `m`, with
    every trajectory, field, component and real/imaginary part in the columns. The results agree with the
    modules to round-off (tested).

    Grids: `[..., n_lat, n_lon]` real (vector fields `[..., 2, n_lat, n_lon]`, components eastward and northward);
    spectra: `[..., L, M]` complex with `L = M = n_modes` (vector spectra `[..., 2, L, M]`, spheroidal then
    toroidal coefficients, in torch-harmonics' normalisation).
    """

    def __init__(self, n_lat: int, n_lon: int, n_modes: int, device: torch.device | str = "cpu") -> None:
        self.n_lat, self.n_lon, self.n_modes = int(n_lat), int(n_lon), int(n_modes)
        self.device = torch.device(device)

    # Per order m, matrices `[M, Q, P]` mapping Q inputs to P outputs: the quadrature-weighted Legendre functions
    # `[M, K, L]` (forward) and their values `[M, L, K]` (inverse); the vector ones stack two such matrices. Each is
    # built on first use (a grid that is only synthesised on, `SphericalShallowWater.wind_on_finer_grid`, needs one).
    def _module(self, cls: type) -> Any:
        return cls(self.n_lat, self.n_lon, lmax=self.n_modes, mmax=self.n_modes, grid="legendre-gauss", csphase=False)

    def _f64(self, x: Tensor) -> Tensor:
        return x.to(dtype=torch.float64, device=self.device)

    @cached_property
    def _forward(self) -> Tensor:
        return self._f64(self._module(th.RealSHT).weights).transpose(1, 2).contiguous()

    @cached_property
    def _inverse(self) -> Tensor:
        return self._f64(self._module(th.InverseRealSHT).pct).contiguous()

    @cached_property
    def _vector_forward(self) -> Tensor:
        weights = self._f64(self._module(th.RealVectorSHT).weights).transpose(2, 3)  # [2, M, K, L]
        return torch.cat([weights[0], weights[1]], dim=2).contiguous()  # [M, K, 2L]

    @cached_property
    def _vector_inverse(self) -> Tensor:
        dpct = self._f64(self._module(th.InverseRealVectorSHT).dpct)  # [2, M, L, K]
        return torch.cat([dpct[0], dpct[1]], dim=2).contiguous()  # [M, L, 2K]

    def _contract(self, matrices: Tensor, x: Tensor) -> Tensor:
        """`matrices [M, Q, P]` applied per order to complex `x [R, Q, M]` -> complex `[R, P, M]`.

        One `bmm` over the orders with the `2 R` real rows (trajectory, real/imaginary part) on the left: the
        layout of torch-harmonics' own `einsum`, for which each row's result was measured not to depend on the
        other rows (for a fixed, even number of rows that is a power of two; see `SWEConfig.chunk`).
        """
        rows, q, m = x.shape
        left = torch.view_as_real(x).permute(2, 0, 3, 1).reshape(m, 2 * rows, q)
        out = torch.bmm(left, matrices).reshape(m, rows, 2, matrices.shape[2])
        return torch.view_as_complex(out.permute(1, 3, 0, 2).contiguous())

    def _longitude_forward(self, x: Tensor) -> Tensor:
        return (2.0 * math.pi) * torch.fft.rfft(x, dim=-1, norm="forward")[..., : self.n_modes]

    def _longitude_inverse(self, x: Tensor) -> Tensor:
        """Complex `[..., M]` Fourier coefficients -> real `[..., n_lon]`; the spectrum is zero-padded to
        `n_lon // 2 + 1` explicitly (measured faster than letting `irfft` pad) and mode 0 made real."""
        padded = x.new_zeros(*x.shape[:-1], self.n_lon // 2 + 1)
        padded[..., : x.shape[-1]] = x
        padded[..., 0].imag = 0.0
        return torch.fft.irfft(padded, n=self.n_lon, dim=-1, norm="forward")

    def scalar_forward(self, x: Tensor) -> Tensor:
        """`[..., n_lat, n_lon]` -> `[..., L, M]` (torch-harmonics' `RealSHT`)."""
        lead = x.shape[:-2]
        spec = self._longitude_forward(x.reshape(-1, self.n_lat, self.n_lon))
        return self._contract(self._forward, spec).reshape(*lead, self.n_modes, self.n_modes)

    def scalar_inverse(self, x: Tensor) -> Tensor:
        """`[..., L, M]` -> `[..., n_lat, n_lon]` (torch-harmonics' `InverseRealSHT`)."""
        lead = x.shape[:-2]
        grid = self._longitude_inverse(self._contract(self._inverse, x.reshape(-1, self.n_modes, self.n_modes)))
        return grid.reshape(*lead, self.n_lat, self.n_lon)

    def _vector(self, matrices: Tensor, x: Tensor, size: int) -> Tensor:
        """The shared algebra of both vector transforms: with `A, B` the two halves of `matrices`, components
        `(x0, x1)` map to `(A x0 + i B x1, -A x1 + i B x0)` (torch-harmonics' real/imaginary bookkeeping)."""
        rows = x.shape[0]
        out = self._contract(matrices, x.reshape(rows * 2, *x.shape[2:])).reshape(rows, 2, 2, size, x.shape[-1])
        a, b = out[:, :, 0], out[:, :, 1]  # [R, component, size, M]
        # Real arithmetic, one rounding per part: (a0 + i b1, i b0 - a1).
        return torch.stack([torch.complex(a[:, 0].real - b[:, 1].imag, a[:, 0].imag + b[:, 1].real),
                            torch.complex(-b[:, 0].imag - a[:, 1].real, b[:, 0].real - a[:, 1].imag)], dim=1)

    def vector_forward(self, x: Tensor) -> Tensor:
        """`[..., 2, n_lat, n_lon]` -> `[..., 2, L, M]` (torch-harmonics' `RealVectorSHT`)."""
        lead = x.shape[:-3]
        spec = self._longitude_forward(x.reshape(-1, 2, self.n_lat, self.n_lon))
        return self._vector(self._vector_forward, spec, self.n_modes).reshape(*lead, 2, self.n_modes, self.n_modes)

    def vector_inverse(self, x: Tensor) -> Tensor:
        """`[..., 2, L, M]` -> `[..., 2, n_lat, n_lon]` (torch-harmonics' `InverseRealVectorSHT`)."""
        lead = x.shape[:-3]
        spec = self._vector(self._vector_inverse, x.reshape(-1, 2, self.n_modes, self.n_modes), self.n_lat)
        return self._longitude_inverse(spec).reshape(*lead, 2, self.n_lat, self.n_lon)


@cache
def _transforms(n_lat: int, n_lon: int, n_modes: int, device: torch.device) -> SphericalTransforms:
    """One `SphericalTransforms` per grid, truncation and device, shared by every solver that asks for it."""
    return SphericalTransforms(n_lat, n_lon, n_modes, device)


# SWEConfig's float settings and what they are: those that must be > 0, and those that may also be 0.
_POSITIVE_FLOATS = {
    "time_step": "an AB3 time step in seconds",
    "frame_interval_hours": "a time between stored frames in hours",
    "radius": "a planet radius in metres",
    "gravity": "a gravitational acceleration in m/s^2",
    "mean_height": "a mean depth in metres",
    "max_courant": "a Courant-number limit",
}
_NON_NEGATIVE_FLOATS = {
    "spin_up_hours": "a spin-up time in hours",
    "hyperdiffusion_hours": "an e-folding time in hours (0: no hyperdiffusion)",
    "omega": "a rotation rate in rad/s",
}


@dataclass
class SWEConfig:
    """Settings of the shallow-water generator; every range is `(low, high)`, a uniform draw per trajectory.

    n_lat, n_lon: Gaussian grid (latitudes x longitudes); the truncation is
    `T = min((2 n_lat - 1) // 3, (n_lon - 1) // 3)` (`truncation_degree`; T63 on 96 x 192).
    time_step: AB3 step (s); `frame_interval_hours * 3600` must be a whole number of steps.
    frame_interval_hours: time between stored frames (h). spin_up_hours: integrated and discarded before frame 0
    (h, a whole number of frame intervals). hyperdiffusion_hours: e-folding time of the truncation degree on a T31
    grid (h); on a grid of truncation `T` it is `hyperdiffusion_hours * 31 / T` (`hyperdiffusion_time`); 0 switches
    hyperdiffusion off. hyperdiffusion_order: power of the Laplacian (8 = del^16).
    radius (m), omega (rad/s), gravity (m/s^2): the planet (Earth by default). mean_height: global mean depth (m).
    jet_latitude_range: |centre latitude| of a jet (degrees). jet_half_width_range: half width `w` (degrees; the
    grid must hold it, see the module docstring). jet_speed_range: peak speed `u_max` (m/s, eastward).
    bump_height_range: height of the perturbation `h_b` (m).
    two_jet_probability: chance that both hemispheres get a jet (else one, in a random hemisphere).
    chunk: trajectories integrated together, a power of two; results do not depend on the batch size (the
    Legendre products are then row-independent, as measured), but they do on `chunk`.
    max_courant: the stability limit checked at every frame (see the module docstring).
    Invalid values raise `SettingError` (`pdebench.config.checks`) naming the field.

    The defaults are the benchmark grid's (T63, `preset=paper`); `conf/pde/swe.yaml` sets the other presets.
    """

    n_lat: int = 96
    n_lon: int = 192
    time_step: float = 150.0
    frame_interval_hours: float = 6.0
    spin_up_hours: float = 144.0
    hyperdiffusion_hours: float = 2.5
    hyperdiffusion_order: int = 8
    radius: float = 6.37122e6
    omega: float = 7.292e-5
    gravity: float = 9.80616
    mean_height: float = 1.0e4
    jet_latitude_range: tuple[float, float] = (25.0, 60.0)
    jet_half_width_range: tuple[float, float] = (16.0, 20.0)
    jet_speed_range: tuple[float, float] = (70.0, 85.0)
    bump_height_range: tuple[float, float] = (240.0, 720.0)
    two_jet_probability: float = 0.5
    chunk: int = 8
    max_courant: float = 0.7

    def __post_init__(self) -> None:
        whole_number(self, "n_lat", 4, "a number of latitudes of the Gaussian grid")
        whole_number(self, "n_lon", 7, "a number of longitudes of the Gaussian grid")
        for name, what in _POSITIVE_FLOATS.items():
            setattr(self, name, finite_number(self, name, low_open=True, what=what))
        for name, what in _NON_NEGATIVE_FLOATS.items():
            setattr(self, name, finite_number(self, name, what=what))
        whole_number(self, "hyperdiffusion_order", 1, "a power of the Laplacian")
        self.jet_latitude_range = number_interval(self, "jet_latitude_range", 0.0, 90.0,
                                                  what="a range of jet latitudes in degrees")
        self.jet_half_width_range = number_interval(self, "jet_half_width_range", 0.0, 90.0, low_open=True,
                                                    what="a range of jet half widths in degrees")
        widest = self.jet_half_width_range[1]
        if self.jet_latitude_range[1] + widest >= 90.0:
            raise SettingError("jet_latitude_range", self.jet_latitude_range,
                               f"is not valid: expected a high end below {90.0 - widest:g} degrees, so that a jet "
                               f"of the largest half width in jet_half_width_range="
                               f"{format_value(self.jet_half_width_range)} stays off the pole")
        self.jet_speed_range = number_interval(self, "jet_speed_range", 0.0, what="a range of peak jet speeds in m/s")
        self.bump_height_range = number_interval(self, "bump_height_range", 0.0,
                                                 what="a range of bump heights in metres")
        self.two_jet_probability = finite_number(self, "two_jet_probability", 0.0, 1.0,
                                                 what="a chance of a jet in both hemispheres")
        whole_number(self, "chunk", 1, "a number of trajectories integrated together")
        if self.chunk & (self.chunk - 1):
            raise SettingError("chunk", self.chunk, "is not valid: expected a power of two (1, 2, 4, 8, ...), a chunk "
                                                    "size whose rows are computed alike wherever they sit, so that a "
                                                    "trajectory does not depend on its batch")
        seconds = self.frame_interval_hours * SECONDS_PER_HOUR
        steps = seconds / self.time_step
        if abs(steps - round(steps)) > 1e-9 * steps or round(steps) < 1:
            raise SettingError("time_step", self.time_step,
                               f"is not valid: expected a step in seconds that divides frame_interval_hours="
                               f"{format_value(self.frame_interval_hours)} ({seconds:g} s) into a whole number of "
                               "steps (a frame is stored after a whole number of steps)")
        frames = self.spin_up_hours / self.frame_interval_hours
        if abs(frames - round(frames)) > 1e-9 * max(frames, 1.0):
            raise SettingError("spin_up_hours", self.spin_up_hours,
                               f"is not valid: expected a whole number of frame intervals of frame_interval_hours="
                               f"{format_value(self.frame_interval_hours)} (the spin-up is run in whole frame "
                               "intervals)")

    @property
    def steps_per_frame(self) -> int:
        return round(self.frame_interval_hours * SECONDS_PER_HOUR / self.time_step)

    @property
    def spin_up_frames(self) -> int:
        return round(self.spin_up_hours / self.frame_interval_hours)


def hyperdiffusion_time(config: SWEConfig, truncation: int) -> float:
    """E-folding time (hours) of degree `truncation` under the hyperdiffusion of a grid of that truncation:
    `config.hyperdiffusion_hours * 31 / truncation` (0: no hyperdiffusion). The `1 / T` scaling follows the time a
    wind takes to cross the truncation scale `a / T`, as SpeedyWeather.jl scales its hyperdiffusion with
    resolution (2.5 h at T31, half that at T63)."""
    return config.hyperdiffusion_hours * HYPERDIFFUSION_REFERENCE_TRUNCATION / int(truncation)


class SphericalShallowWater:
    """The batched solver on one Gaussian grid. A state is the complex128 spectrum `[B, 3, T + 1, T + 1]` of
    `(Phi, zeta, delta)` (torch-harmonics' orthonormal `(l, m)` layout, `m <= l`); grids are `[B, ..., n_lat, n_lon]`
    float64, latitudes north to south, longitudes `2 pi j / n_lon` east.

    Every method works on any batch, but only the batch-size-invariant drivers (`SWEGenerator`,
    `SWEReferenceSolver`) promise bitwise reproducibility.
    """

    def __init__(self, n_lat: int, n_lon: int, *, time_step: float, radius: float, omega: float, gravity: float,
                 hyperdiffusion_hours: float, hyperdiffusion_order: int,
                 device: torch.device | str = "cpu") -> None:
        _check_grid(n_lat, n_lon, "the solver grid")
        self.n_lat, self.n_lon, self.device = int(n_lat), int(n_lon), torch.device(device)
        self.truncation = truncation_degree(n_lat, n_lon)
        self.time_step, self.radius, self.gravity = float(time_step), float(radius), float(gravity)
        self.omega = float(omega)
        n_modes = self.truncation + 1
        transforms = _transforms(self.n_lat, self.n_lon, n_modes, self.device)
        self.transforms = transforms
        self.sht, self.isht = transforms.scalar_forward, transforms.scalar_inverse
        self.vsht, self.ivsht = transforms.vector_forward, transforms.vector_inverse
        f64 = dict(dtype=torch.float64, device=self.device)
        lat, quad = gaussian_latitudes(n_lat)
        self.latitudes = torch.tensor(lat, **f64)  # [n_lat] radians
        self.longitudes = torch.arange(n_lon, **f64) * (2 * math.pi / n_lon)  # [n_lon] radians
        # Area of each grid cell (m^2) for exact Gauss quadrature: sum(cell_area * f) = integral of f over the sphere.
        self.cell_area = torch.tensor(quad, **f64)[:, None] * (2 * math.pi / n_lon * radius**2)
        self.coriolis = (2 * omega * torch.sin(self.latitudes))[:, None]  # [n_lat, 1] 1/s
        degree = torch.arange(n_modes, **f64)[:, None]  # [L, 1]
        # Spectral operators `[L, 1]`, stored complex so that multiplying a spectrum needs no type promotion.
        laplacian = -degree * (degree + 1) / radius**2  # 1/m^2
        inverse_laplacian = torch.where(degree > 0, 1 / torch.where(degree > 0, laplacian, 1.0), 0.0)
        self.laplacian = laplacian.to(torch.complex128)
        self._to_vort_div = (radius * laplacian).to(torch.complex128)  # vector coefficients -> (curl, div)
        self._from_vort_div = (inverse_laplacian / radius).to(torch.complex128)  # (curl, div) -> vector coefficients
        if hyperdiffusion_hours > 0:
            top = self.truncation * (self.truncation + 1)
            rate = (degree * (degree + 1) / top) ** hyperdiffusion_order / (hyperdiffusion_hours * SECONDS_PER_HOUR)
            self.damping: Tensor | None = torch.exp(-self.time_step * rate).to(torch.complex128)  # [L, 1]
        else:
            self.damping = None

    # --- transforms ---------------------------------------------------------------------------------------
    def wind(self, state: Tensor) -> Tensor:
        """`[B, 3, L, M]` spectrum -> `[B, 2, n_lat, n_lon]` wind `(u, v)` (m/s) from vorticity and divergence."""
        return self.ivsht(self._from_vort_div * state[:, 1:])

    def vorticity_divergence(self, wind: Tensor) -> Tensor:
        """`[..., 2, n_lat, n_lon]` wind `(u east, v north)` -> `[..., 2, L, M]` spectra of `(curl, div)` (1/s)."""
        return self._to_vort_div * self.vsht(wind)

    def from_grid(self, height: Tensor, wind: Tensor) -> Tensor:
        """Depth `[B, n_lat, n_lon]` (m) and wind `[B, 2, n_lat, n_lon]` (m/s) -> state `[B, 3, L, M]`."""
        phi = self.sht(self.gravity * height.to(self.device, torch.float64))
        return torch.cat([phi[:, None], self.vorticity_divergence(wind.to(self.device, torch.float64))], dim=1)

    def to_grid(self, state: Tensor) -> Tensor:
        """State `[B, 3, L, M]` -> `[B, 3, n_lat, n_lon]` float64 `(height (m), u, v (m/s))`."""
        height = self.isht(state[:, 0]) / self.gravity
        return torch.cat([height[:, None], self.wind(state)], dim=1)

    # --- dynamics ------------------------------------------------------------------------------------------
    def tendency(self, state: Tensor) -> Tensor:
        """Time derivative `[B, 3, L, M]` (per second) of the spectrum `(Phi, zeta, delta)` (module docstring)."""
        grids = self.isht(state[:, :2])  # Phi, zeta  [B, 2, n_lat, n_lon]
        wind = self.wind(state)  # [B, 2, n_lat, n_lon]
        phi, absolute_vorticity = grids[:, 0], grids[:, 1] + self.coriolis
        fluxes = torch.stack([wind * absolute_vorticity[:, None], wind * phi[:, None]], dim=1)  # [B, 2, 2, ...]
        curl_div = self.vorticity_divergence(fluxes)  # [B, 2 (flux), 2 (curl, div), L, M]
        bernoulli = self.sht(phi + 0.5 * (wind * wind).sum(dim=1))
        return torch.stack([
            -curl_div[:, 1, 1],
            -curl_div[:, 0, 1],
            curl_div[:, 0, 0] - self.laplacian * bernoulli,
        ], dim=1)

    def _damp(self, state: Tensor) -> Tensor:
        return state if self.damping is None else state * self.damping

    def integrate(self, state: Tensor, n_steps: int, save_every: int,
                  check: Callable[[Tensor, int], None] | None = None) -> list[Tensor]:
        """Take `n_steps` steps from `state`; return the states after every `save_every` steps (the start first).

        The first two steps are Kutta RK3, the rest AB3 (module docstring). `check(state, step)` runs on every
        saved state (e.g. a stability check that raises).
        """
        if n_steps < 0 or save_every < 1:
            raise ValueError(f"need n_steps >= 0 and save_every >= 1, got {n_steps} and {save_every}")
        with single_threaded(self.device):
            return self._integrate(state, n_steps, save_every, check)

    def _integrate(self, state: Tensor, n_steps: int, save_every: int,
                   check: Callable[[Tensor, int], None] | None) -> list[Tensor]:
        dt = self.time_step
        history: list[Tensor] = []  # tendencies at the last (up to) three steps, newest last
        saved = [state]
        if check is not None:
            check(state, 0)
        for step in range(n_steps):
            f0 = self.tendency(state)
            history = [*history[-2:], f0]
            if len(history) < 3:  # Kutta's third-order Runge-Kutta (0, 1/2, 1; weights 1/6, 2/3, 1/6)
                f1 = self.tendency(state + (0.5 * dt) * f0)
                f2 = self.tendency(state + dt * (2.0 * f1 - f0))
                state = state + (dt / 6.0) * (f0 + 4.0 * f1 + f2)
            else:
                state = state + dt * ((23.0 / 12.0) * history[2] - (16.0 / 12.0) * history[1]
                                      + (5.0 / 12.0) * history[0])
            state = self._damp(state)
            if (step + 1) % save_every == 0:
                saved.append(state)
                if check is not None:
                    check(state, step + 1)
        return saved

    # --- diagnostics ----------------------------------------------------------------------------------------
    def integral(self, grid: Tensor) -> Tensor:
        """Integral over the sphere `[...]` (grid units times m^2) of `[..., n_lat, n_lon]` by Gauss quadrature."""
        return (grid * self.cell_area).sum(dim=(-2, -1))

    def mass(self, state: Tensor) -> Tensor:
        """Fluid volume `[B]` (m^3): the integral of the depth."""
        return self.integral(self.isht(state[:, 0]) / self.gravity)

    def energy(self, state: Tensor) -> Tensor:
        """Total energy `[B]` (per unit density, m^5/s^2): integral of `h |u|^2 / 2 + g h^2 / 2`."""
        h, wind = self.isht(state[:, 0]) / self.gravity, self.wind(state)
        return self.integral(0.5 * h * (wind * wind).sum(dim=1) + 0.5 * self.gravity * h * h)

    def courant(self, state: Tensor) -> Tensor:
        """Courant number `[B]` of the step: `(max|u| + sqrt(max Phi)) sqrt(T (T + 1)) dt / a` (NaN if unphysical)."""
        phi, wind = self.isht(state[:, 0]), self.wind(state)
        speed = (wind * wind).sum(dim=1).sqrt().amax(dim=(-2, -1))
        max_phi = phi.amax(dim=(-2, -1))
        gravity_speed = torch.where(phi.amin(dim=(-2, -1)) > 0, max_phi.clamp(min=0).sqrt(), math.nan)
        top = math.sqrt(self.truncation * (self.truncation + 1))
        return (speed + gravity_speed) * top * self.time_step / self.radius

    def wind_on_finer_grid(self, state: Tensor, factor: int = 4) -> tuple[Tensor, Tensor]:
        """The wind `[B, 2, factor n_lat, factor n_lon]` (m/s) of `state` on a Gaussian grid `factor` times finer,
        with its latitudes `[factor n_lat]` (radians): the truncated field between this grid's points (exact, the
        spectrum is the same), where a narrow jet's peak lies."""
        finer = _transforms(factor * self.n_lat, factor * self.n_lon, self.truncation + 1, self.device)
        latitudes = torch.tensor(gaussian_latitudes(factor * self.n_lat)[0], dtype=torch.float64, device=self.device)
        return finer.vector_inverse(self._from_vort_div * state[:, 1:]), latitudes

    def jet_peak_speeds(self, state: Tensor, latitude: Tensor, half_width: Tensor, factor: int = 4) -> Tensor:
        """Largest wind speed `|u|` (m/s) of `state` `[B, 3, L, M]` within each jet's band `c - w < lat < c + w`
        (`latitude` `c` and `half_width` `w`: `[B, J]` radians), on the grid `factor` times finer
        (`wind_on_finer_grid`); returns `[B, J]` float64."""
        wind, lat = self.wind_on_finer_grid(state, factor)
        speed = (wind * wind).sum(dim=1).sqrt().amax(dim=-1)  # [B, n_lat'] largest over longitude
        c, w = (torch.as_tensor(x, dtype=torch.float64, device=self.device) for x in (latitude, half_width))
        inside = (lat > (c - w)[..., None]) & (lat < (c + w)[..., None])  # [B, J, n_lat']
        return torch.where(inside, speed[:, None, :], -math.inf).amax(dim=-1)

    # --- resolution changes ---------------------------------------------------------------------------------
    def resize(self, state: Tensor) -> Tensor:
        """A spectrum of any truncation `[B, 3, L', M']`, truncated or zero-padded to this solver's `[B, 3, L, M]`."""
        n = self.truncation + 1
        out = state.new_zeros(*state.shape[:-2], n, n)
        k = min(n, state.shape[-2])
        out[..., :k, :k] = state[..., :k, :k]
        return out


def _draw_jets(seed: int, config: SWEConfig) -> tuple[int, dict[str, np.ndarray]]:
    """Every draw of a trajectory: the number of jets (1 or 2) and both candidate jets, float64 `[2]` each."""
    rng = np.random.default_rng(int(seed))
    both = rng.uniform() < config.two_jet_probability
    first_hemisphere = 1.0 if rng.uniform() < 0.5 else -1.0
    latitude = np.deg2rad(rng.uniform(*config.jet_latitude_range, size=2)) * np.array([first_hemisphere,
                                                                                       -first_hemisphere])
    half_width = np.deg2rad(rng.uniform(*config.jet_half_width_range, size=2))
    speed = rng.uniform(*config.jet_speed_range, size=2)
    bump_height = rng.uniform(*config.bump_height_range, size=2)
    bump_longitude = rng.uniform(0.0, 2 * math.pi, size=2)
    return (2 if both else 1), {"latitude": latitude, "half_width": half_width, "speed": speed,
                                "bump_height": bump_height, "bump_longitude": bump_longitude}


def sample_jets(seed: int, config: SWEConfig) -> dict[str, np.ndarray]:
    """All random draws of one trajectory, from `numpy.random.default_rng(seed)` only.

    Returns float64 `[n_jets]` arrays `latitude` (centre, radians, signed), `half_width` (radians), `speed` (m/s),
    `bump_height` (m) and `bump_longitude` (radians). The draws happen in a fixed order and number (two candidate
    jets, one per hemisphere), so a seed's stream does not depend on the ranges.
    """
    n, jets = _draw_jets(seed, config)
    return {key: value[:n] for key, value in jets.items()}


# The per-trajectory records of the drawn jets (`SWEGenerator.parameters`): (name, units, description) per jet
# quantity, stored as `jet1_<name>` and `jet2_<name>`, in degrees where `sample_jets` has radians.
_JET_QUANTITIES = (
    ("latitude", "degrees_north", "centre latitude c of the jet"),
    ("half_width", "degrees", "half width w of the jet (zero wind outside c - w < lat < c + w)"),
    ("speed", "m/s", "drawn peak eastward speed u_max of the jet (0: no second jet)"),
    ("bump_height", "m", "height h_b of the Galewsky bump on the jet (0: no second jet)"),
    ("bump_longitude", "degrees_east", "longitude of the bump's centre"),
)
JET_PARAMETERS: tuple[ParameterSpec, ...] = (
    ParameterSpec("n_jets", units="1", conditioning=False,
                  description="number of jets drawn (1, or 2: one per hemisphere); jet1 is always present"),
    *(ParameterSpec(f"jet{k}_{name}", units=units, conditioning=False,
                    description=(f"{'first' if k == 1 else 'second'} jet: {what}; "
                                 + ("in the hemisphere of jet1" if k == 1 else
                                    "the other hemisphere; when absent, its speed and bump height are 0 (no wind, no "
                                    "bump) and the other values are the unused draws")))
      for k in (1, 2) for name, units, what in _JET_QUANTITIES),
)


def jet_parameters(seeds: Sequence[int], config: SWEConfig) -> dict[str, np.ndarray]:
    """The records `JET_PARAMETERS` of `seeds`: name -> float64 `[len(seeds)]`, every value finite. An absent
    second jet is stored with speed 0 and bump height 0, i.e. as a jet that adds no wind and no bump."""
    out = {p.name: np.zeros(len(seeds)) for p in JET_PARAMETERS}
    for i, seed in enumerate(seeds):
        n, jets = _draw_jets(seed, config)
        out["n_jets"][i] = n
        for k in (1, 2):
            present = k <= n
            for name, _, _ in _JET_QUANTITIES:
                value = float(jets[name][k - 1])
                if name in ("latitude", "half_width", "bump_longitude"):
                    value = math.degrees(value)
                elif not present:
                    value = 0.0
                out[f"jet{k}_{name}"][i] = value
    return out


def jets_from_parameters(parameters: Mapping[str, np.ndarray], index: int) -> dict[str, np.ndarray]:
    """The jets of trajectory `index` from its stored records (`jet_parameters`, e.g. `TrajectoryFile.parameters()`),
    in the form `sample_jets` returns: float64 `[n_jets]` arrays, angles in radians."""
    missing = [p.name for p in JET_PARAMETERS if p.name not in parameters]
    if missing:
        raise InvalidSetting(f"the jet records {', '.join(missing)} are missing from the parameters (expected the "
                             "per-trajectory jet draws the swe generator stores)")
    n = int(round(float(parameters["n_jets"][index])))
    if n not in (1, 2):
        raise InvalidSetting(f"parameter n_jets of trajectory {index} must be 1 or 2, got "
                             f"{parameters['n_jets'][index]}")
    jets = {}
    for name, _, _ in _JET_QUANTITIES:
        values = np.array([float(parameters[f"jet{k}_{name}"][index]) for k in range(1, n + 1)])
        jets[name] = np.deg2rad(values) if name in ("latitude", "half_width", "bump_longitude") else values
    return jets


def jet_initial_grids(jets: Mapping[str, np.ndarray], latitudes: np.ndarray, n_lon: int) -> tuple[np.ndarray,
                                                                                                   np.ndarray]:
    """Zonal wind `[n_lat]` (m/s) of the jets and the height bumps `[n_lat, n_lon]` (m) on the grid.

    latitudes: `[n_lat]` radians; longitudes are `2 pi j / n_lon`. Each jet is Galewsky's profile (module
    docstring), zero outside `(c - w, c + w)`; each bump sits at its jet's centre.
    """
    lat = np.asarray(latitudes, dtype=np.float64)
    lon = np.arange(n_lon, dtype=np.float64) * (2 * math.pi / n_lon)
    u = np.zeros_like(lat)
    bump = np.zeros((lat.size, n_lon))
    for c, w, speed, hb, lon_b in zip(jets["latitude"], jets["half_width"], jets["speed"], jets["bump_height"],
                                      jets["bump_longitude"], strict=True):
        lat0, lat1 = c - w, c + w
        inside = (lat > lat0) & (lat < lat1)
        arg = np.where(inside, (lat - lat0) * (lat - lat1), -1.0)
        u += np.where(inside, speed * np.exp(1.0 / arg + 1.0 / w**2), 0.0)  # e_n = exp(-1 / w^2)
        dlon = (lon - lon_b + math.pi) % (2 * math.pi) - math.pi
        bump += (hb * np.cos(lat)[:, None] * np.exp(-((dlon / BUMP_LON_WIDTH) ** 2))[None, :]
                 * np.exp(-(((c - lat) / BUMP_LAT_WIDTH) ** 2))[:, None])
    return u, bump


def balanced_state(solver: SphericalShallowWater, zonal_wind: Tensor, bump: Tensor, mean_height: float) -> Tensor:
    """The state whose wind is `zonal_wind` `[B, n_lat]` (m/s, eastward) and whose geopotential is in nonlinear
    balance with it (zero divergence tendency), with global mean depth `mean_height` (m), plus the depth
    perturbation `bump` `[B, n_lat, n_lon]` (m). Returns `[B, 3, L, M]`."""
    u = zonal_wind.to(solver.device, torch.float64)[:, :, None].expand(-1, -1, solver.n_lon)
    wind = torch.stack([u, torch.zeros_like(u)], dim=1)
    vort_div = solver.vorticity_divergence(wind)
    wind = solver.wind(torch.cat([vort_div[:, :1], vort_div], dim=1))  # the truncated wind
    vorticity = solver.isht(vort_div[:, 0])
    curl = solver.vorticity_divergence(wind * (vorticity + solver.coriolis)[:, None])[:, 0]
    phi = curl / torch.where(solver.laplacian == 0, 1.0, solver.laplacian) - solver.sht(0.5 * (wind * wind).sum(dim=1))
    phi[:, 0, 0] = solver.gravity * mean_height * math.sqrt(4 * math.pi)  # Y_00 = 1 / sqrt(4 pi)
    phi = phi + solver.sht(solver.gravity * bump.to(solver.device, torch.float64))
    return torch.cat([phi[:, None], vort_div], dim=1)


def _chunked(fn: Callable[[Tensor, slice], Tensor], n: int, chunk: int) -> list[Tensor]:
    """Call `fn(index, rows)` for consecutive chunks of exactly `chunk` row indices (the last one padded by
    repeating its first index), returning the outputs cut back to the real rows."""
    out = []
    for start in range(0, n, chunk):
        rows = torch.arange(start, min(start + chunk, n))
        padded = torch.cat([rows, rows[:1].repeat(chunk - rows.numel())])
        out.append(fn(padded, slice(0, rows.numel())))
    return out


@register_generator("swe", config=SWEConfig)
class SWEGenerator:
    """Batched, per-seed shallow-water generator on the sphere (satisfies `data_gen.base.TrajectoryGenerator` and
    `HasReferenceSolver`)."""

    pde = "swe"
    grid = "sphere"
    fields = (
        FieldSpec("height", units="m", boundary="sphere",
                  description="geopotential height (fluid depth) h = Phi / g of the shallow-water equations"),
        FieldSpec("u", units="m/s", boundary="sphere", description="eastward wind"),
        FieldSpec("v", units="m/s", boundary="sphere", description="northward wind"),
    )
    parameters: tuple[ParameterSpec, ...] = JET_PARAMETERS

    def __init__(self, config: SWEConfig | None = None) -> None:
        self.config = config if config is not None else SWEConfig()
        self.frame_interval = self.config.frame_interval_hours  # hours

    def coordinates(self) -> tuple[Coordinate, ...]:
        c = self.config
        lat, _ = gaussian_latitudes(c.n_lat)
        return (
            Coordinate("lat", values=np.rad2deg(lat), units="degrees_north",
                       description="Gaussian (Legendre-Gauss) latitudes, north to south"),
            Coordinate("lon", values=np.arange(c.n_lon, dtype=np.float64) * (360.0 / c.n_lon), units="degrees_east",
                       description="equally spaced longitudes from 0"),
        )

    def solver_settings(self) -> dict[str, Any]:
        c = self.config
        return {
            "solver": "spherical-harmonic spectral transform (torch-harmonics)",
            "grid": f"legendre-gauss {c.n_lat} x {c.n_lon}",
            "truncation": f"T{truncation_degree(c.n_lat, c.n_lon)} triangular",
            "time_stepping": "AB3 (Kutta RK3 start)",
            "time_step_seconds": c.time_step,
            "hyperdiffusion": (f"del^{2 * c.hyperdiffusion_order}, e-folding {c.hyperdiffusion_hours:g} h x 31 / T "
                               f"({hyperdiffusion_time(c, truncation_degree(c.n_lat, c.n_lon)):.4g} h) at the "
                               "truncation degree T") if c.hyperdiffusion_hours > 0 else "off",
            "spin_up_hours": c.spin_up_hours,
            "time_units": "hours",
            "dtype": "float64",
            "chunk": c.chunk,
        }

    def solver(self, device: torch.device | str, resolution: Sequence[int] | None = None,
               time_step_factor: float = 1.0) -> SphericalShallowWater:
        """The spectral solver of this configuration on `device` (optionally on a coarser grid / longer step)."""
        c = self.config
        n_lat, n_lon = (c.n_lat, c.n_lon) if resolution is None else (int(r) for r in resolution)
        tau = hyperdiffusion_time(c, truncation_degree(n_lat, n_lon))
        return SphericalShallowWater(n_lat, n_lon, time_step=c.time_step * time_step_factor, radius=c.radius,
                                     omega=c.omega, gravity=c.gravity, hyperdiffusion_hours=tau,
                                     hyperdiffusion_order=c.hyperdiffusion_order, device=device)

    def stability_check(self, solver: SphericalShallowWater, seeds: Sequence[int],
                        start_hours: float = 0.0) -> Callable[[Tensor, int], None]:
        """A `check(state, step)` for `SphericalShallowWater.integrate` raising `SolverDiverged` for the rows of
        `seeds` whose state is non-finite, has non-positive depth or breaks `max_courant`."""
        limit = self.config.max_courant

        def check(state: Tensor, step: int) -> None:
            courant = solver.courant(state)[: len(seeds)]
            bad = ~(courant <= limit)  # NaN counts as bad
            if bool(bad.any()):
                hours = start_hours + step * solver.time_step / SECONDS_PER_HOUR
                worst = courant[bad].nan_to_num(nan=math.inf).max().item()
                reason = (f"non-finite state or non-positive depth (Courant number {worst:g})" if worst == math.inf
                          else f"Courant number {worst:.3f} exceeds max_courant {limit:g} (time_step too large)")
                raise SolverDiverged([s for s, b in zip(seeds, bad.tolist(), strict=True) if b], hours,
                                     reason + "; time in hours since the initial state")

        return check

    def initial_states(self, solver: SphericalShallowWater, seeds: Sequence[int]) -> Tensor:
        """Balanced jets plus bumps `[len(seeds), 3, L, M]` on `solver`'s grid (one row per seed)."""
        lat = solver.latitudes.cpu().numpy()
        grids = [jet_initial_grids(sample_jets(s, self.config), lat, solver.n_lon) for s in seeds]
        u = torch.from_numpy(np.stack([g[0] for g in grids]))
        bump = torch.from_numpy(np.stack([g[1] for g in grids]))
        return balanced_state(solver, u, bump, self.config.mean_height)

    def generate(self, seeds: Sequence[int], n_frames: int, device: torch.device) -> GeneratedBatch:
        """Fields `{"height", "u", "v": float32 [B, n_frames, n_lat, n_lon]}` and the drawn jets' records
        `{name: float64 [B]}` (`JET_PARAMETERS`, `jet_parameters`)."""
        check_generate_request(seeds, n_frames)
        c = self.config
        device = torch.device(device)
        seeds = [int(s) for s in seeds]
        with single_threaded(device):
            solver = self.solver(device)

            def run(rows: Tensor, real: slice) -> Tensor:
                chunk_seeds = [seeds[i] for i in rows.tolist()]
                state = self.initial_states(solver, chunk_seeds)
                check = self.stability_check(solver, chunk_seeds[real])
                spf = c.steps_per_frame
                if c.spin_up_frames:
                    state = solver.integrate(state, c.spin_up_frames * spf, spf, check)[-1]
                check = self.stability_check(solver, chunk_seeds[real], start_hours=c.spin_up_hours)
                frames = solver.integrate(state, (n_frames - 1) * spf, spf, check)
                return torch.stack([solver.to_grid(s[real]).to(torch.float32).cpu() for s in frames], dim=1)

            out = torch.cat(_chunked(run, len(seeds), c.chunk)).numpy()
        fields = {name: np.ascontiguousarray(out[:, :, i]) for i, name in enumerate(FIELD_NAMES)}
        return GeneratedBatch(fields=fields, parameters=jet_parameters(seeds, c))

    def reference_solver(self, resolution: Sequence[int] | None = None,
                         time_step_factor: float = 1.0) -> SWEReferenceSolver:
        """This solver stepping stored states (the evaluator's `solver` row); see `SWEReferenceSolver`."""
        return SWEReferenceSolver(self, resolution, time_step_factor)


class SWEReferenceSolver:
    """Steps stored `(height, u, v)` frames forward by whole frame intervals (satisfies `ReferenceSolver`).

    resolution: `(n_lat, n_lon)` of a Gaussian grid no finer than the stored one (default: the stored grid). The
    stored fields are transformed on the stored grid, truncated to the coarse grid's `T`, integrated there with
    step `time_step * time_step_factor` (a fresh RK3-started AB3 run), then zero-padded and transformed back to
    the stored grid. Trajectories go through in chunks of the generator's `chunk`, so a row's result does not depend
    on the batch it comes in.
    """

    def __init__(self, generator: SWEGenerator, resolution: Sequence[int] | None = None,
                 time_step_factor: float = 1.0) -> None:
        c = generator.config
        self.generator = generator
        self.resolution = (c.n_lat, c.n_lon) if resolution is None else tuple(int(r) for r in resolution)
        if len(self.resolution) != 2 or self.resolution[0] > c.n_lat or self.resolution[1] > c.n_lon:
            raise InvalidSetting(f"reference solver resolution must be (n_lat, n_lon) no finer than the stored "
                                 f"{c.n_lat} x {c.n_lon}, got {resolution!r}")
        _check_grid(*self.resolution, "the reference solver resolution")
        if not (isinstance(time_step_factor, (int, float)) and math.isfinite(time_step_factor)
                and time_step_factor > 0):
            raise InvalidSetting(f"time_step_factor must be a positive number, got {time_step_factor!r}")
        self.time_step_factor = float(time_step_factor)
        steps = c.steps_per_frame / self.time_step_factor
        if abs(steps - round(steps)) > 1e-9 * steps or round(steps) < 1:
            raise InvalidSetting(f"time_step_factor {time_step_factor:g} must divide the {c.steps_per_frame} solver "
                                 "steps of a frame interval into a whole number of steps")
        self.steps_per_frame = round(steps)
        self._solvers: dict[torch.device, tuple[SphericalShallowWater, SphericalShallowWater]] = {}

    def _pair(self, device: torch.device) -> tuple[SphericalShallowWater, SphericalShallowWater]:
        if device not in self._solvers:
            stored = self.generator.solver(device)
            coarse = self.generator.solver(device, self.resolution, self.time_step_factor)
            self._solvers[device] = (stored, coarse)
        return self._solvers[device]

    def advance(self, fields: Tensor, params: Mapping[str, Tensor], n_frames: int) -> Tensor:
        """`fields [B, 3, n_lat, n_lon]` `(height, u, v)` on the stored grid -> the same `n_frames` frame intervals
        later, float64 on the same device. `params` is unused (the jet records describe the initial state, which the
        fields already hold).

        The result keeps the solver's float64: rounded to the stored float32 (a step of 1e-3 m at a depth of 10 km)
        its area-mean height would move by ~1e-5 m, a mass "drift" that is storage noise, not the solver's (which
        conserves the mass to round-off).

        A state that breaks the stability limit raises `SolverDiverged`, naming the rows of `fields` (not seeds)
        and the hours since the given state."""
        c = self.generator.config
        if fields.ndim != 4 or tuple(fields.shape[1:]) != (len(FIELD_NAMES), c.n_lat, c.n_lon):
            raise ValueError(f"fields must be [B, {len(FIELD_NAMES)}, {c.n_lat}, {c.n_lon}] "
                             f"({', '.join(FIELD_NAMES)}), got shape {tuple(fields.shape)}")
        if n_frames < 0:
            raise ValueError(f"n_frames must be >= 0, got {n_frames}")
        device = fields.device
        with single_threaded(device):
            stored, coarse = self._pair(device)
            data = fields.detach().to(torch.float64)

            def run(rows: Tensor, real: slice) -> Tensor:
                state = coarse.resize(stored.from_grid(data[rows, 0], data[rows, 1:]))
                check = self.generator.stability_check(coarse, rows[real].tolist())
                state = coarse.integrate(state, n_frames * self.steps_per_frame,
                                         max(n_frames, 1) * self.steps_per_frame, check)[-1]
                return stored.to_grid(stored.resize(state[real]))

            out = torch.cat(_chunked(run, fields.shape[0], c.chunk))
        return out
