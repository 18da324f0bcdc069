"""Kuramoto–Sivashinsky trajectories (the PDE-Refiner KS setup), solved with batched ETDRK4 in torch.

PDE (conservative form), periodic on `[0, L)`::

    u_t + u u_x + u_xx + nu u_xxxx = 0

Space: Fourier pseudo-spectral on `N` equispaced points with the 2/3 rule. Only the modes
`m = 0 .. (N - 1) // 3` (wavenumber `k = 2 pi m / L`) are ever non-zero: the initial state is
projected onto them and the nonlinear term is truncated to them, so a quadratic product of two
retained fields never aliases into a retained mode. Time: ETDRK4 (Cox & Matthews 2002) with
coefficients from the contour-integral method of Kassam & Trefethen (2005), in float64. The
wavenumbers, the 2/3-rule mask, the coefficients and the stepper are the generic ones of
`data_gen.spectral` (`etdrk4_coefficients` and `dealias_mask` are re-exported here); this module
supplies the KS operators and runs the stepper on the `[B, K]` retained modes.

Per trajectory (all draws from its own seed, see `sample_trajectory`): domain length `L`,
viscosity `nu`, frame interval `dt`, and an initial state made of `n_sines` sines. Each trajectory
is integrated with its own internal step `h = dt / substeps`; a burn-in of `burn_in_frames` frame
intervals (`substeps` steps each; LPSDA, whose generator PDE-Refiner's data come from, discards 360)
is discarded, then one frame is stored every `substeps` steps. Frame `j` is thus the state at time
`(burn_in_frames + j) dt` whatever `substeps` is. Datasets written before `burn_in_frames` existed
record `burn_in_time` instead, a burn-in of `round(burn_in_time / dt)` frame intervals; a config that
sets it still means that.

Accuracy (default `substeps=8`, i.e. h ~ 0.025; measured on 8 chaotic trajectories against runs
with 128 substeps from the same post-burn-in state): relative L2 error of a stored frame 6e-8 after
one frame, <= 1.1e-7 over the first 10 frames and <= 6e-7 over 50 frames (10 time units), beyond
which chaos amplifies any error (by ~e^(0.1 t)). `substeps=4` gives 6e-7 / 1.1e-6 / 7e-6.

Reproducibility: a trajectory is bitwise the same whatever batch it is generated in (on a given
device). The random draws and the initial state are computed per trajectory on the CPU; the
ETDRK4 coefficients are computed one trajectory at a time with identical shapes; every complex
product inside the time loop has one factor that is purely real (`E`, `E2`) or purely imaginary
(the other coefficients, into which `-i k / 2` is folded), so each element is a single correctly
rounded operation whichever (vectorised or scalar) code path evaluates it; and on CPU the solver
runs on one thread, since MKL's FFT rounds differently with one and with several threads for some
N (rows of a batched FFT are otherwise independent of the batch).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from data_gen.base import GeneratedBatch, check_generate_request, even_number
from data_gen.registry import register_generator
from data_gen.spectral import (
    ETDRK4,
    dealias_cutoff,
    dealias_mask,
    etdrk4_coefficients,
    etdrk4_rollout,
    rfft_wavenumbers,
    single_threaded,
)
from pdebench.config.checks import SettingError, finite_number, number_interval, whole_number
from pdebench.data.schema import Coordinate, FieldSpec, ParameterSpec
from pdebench.errors import InvalidSetting

__all__ = [
    "KSConfig",
    "KSGenerator",
    "burn_in_frames",
    "dealias_mask",
    "etdrk4_coefficients",
    "initial_state",
    "ks_linear_operator",
    "ks_nonlinear",
    "n_retained_modes",
    "sample_trajectory",
    "solve_ks",
    "wavenumbers",
]


@dataclass
class KSConfig:
    """Settings of the KS generator; every range is `(low, high)` and a uniform draw per trajectory.

    n_points: grid points `N` (even). length_range: domain length `L` (length units).
    nu_range: hyper-viscosity `nu` of the `u_xxxx` term. dt_range: time between stored frames
    (time units); equal ends mean fixed. n_sines: sines in the initial state, each with amplitude
    ~ U[-amplitude, amplitude], phase ~ U[0, 2 pi) and integer mode `l` ~ U{1 .. max_mode}
    (wavenumber `2 pi l / L`). burn_in_frames: frame intervals (each the trajectory's own `dt`, so
    `burn_in_frames * substeps` ETDRK4 steps) integrated and discarded before frame 0, as LPSDA discards
    the first 360 of its stored steps. burn_in_time: the burn-in of datasets written before
    `burn_in_frames` existed, `round(burn_in_time / dt)` frame intervals (time units); None (the default)
    means `burn_in_frames`, a number means it is used instead, so that such a dataset's recorded settings
    rebuild its generator. substeps: ETDRK4 steps per stored frame (`h = dt / substeps`; see the module
    docstring for the accuracy of the default). contour_points: points (even) on the unit circle of the
    contour-integral coefficient evaluation (32: coefficients to ~5e-13 relative).
    Invalid values raise `SettingError` (`pdebench.config.checks`) naming the field.
    """

    n_points: int = 256
    length_range: tuple[float, float] = (57.6, 70.4)
    nu_range: tuple[float, float] = (1.0, 1.0)
    dt_range: tuple[float, float] = (0.18, 0.22)
    n_sines: int = 10
    amplitude: float = 0.5
    max_mode: int = 2
    burn_in_frames: int = 360
    burn_in_time: float | None = None
    substeps: int = 8
    contour_points: int = 32

    def __post_init__(self) -> None:
        even_number(self, "n_points", 8, "a number of grid points", "the spectral solver is written for even grids")
        ranges = {"length_range": "a range of domain lengths L", "nu_range": "a range of hyper-viscosities nu",
                  "dt_range": "a range of times dt between stored frames"}
        for name, what in ranges.items():
            setattr(self, name, number_interval(self, name, 0.0, low_open=True, what=what))
        whole_number(self, "n_sines", 1, "a number of sines in the initial state")
        finite_number(self, "amplitude", what="the largest amplitude of an initial sine")
        whole_number(self, "max_mode", 1, "the highest mode of an initial sine")
        cutoff = n_retained_modes(self.n_points)
        if self.max_mode >= cutoff:
            raise SettingError("max_mode", self.max_mode, f"is not valid: expected a mode below {cutoff}, the 2/3-rule "
                                                          f"cutoff of n_points={self.n_points} (the solver drops every "
                                                          "mode from it on)")
        whole_number(self, "burn_in_frames", 0, "a number of frame intervals discarded before frame 0")
        if self.burn_in_time is not None:
            finite_number(self, "burn_in_time", what="a burn-in time")
        whole_number(self, "substeps", 1, "a number of ETDRK4 steps per stored frame")
        even_number(self, "contour_points", 4, "a number of contour points", "the ETDRK4 coefficients are averaged "
                    "over complex-conjugate pairs of points on the unit circle")


def n_retained_modes(n_points: int) -> int:
    """Number of rfft modes kept by the 2/3 rule: `m = 0 .. (N - 1) // 3`, i.e. `(N - 1) // 3 + 1`.

    (`dealias_mask(n_points)`, re-exported from `data_gen.spectral`, is True for exactly these modes.)
    """
    return dealias_cutoff(n_points) + 1


def wavenumbers(length: Tensor, n_modes: int) -> Tensor:
    """Angular wavenumbers `k = 2 pi m / L` for `m = 0 .. n_modes - 1`: `[B] -> [B, n_modes]` (1/length)."""
    (k,) = rfft_wavenumbers(2 * max(n_modes, 1), length)  # [B, >= n_modes], modes 0, 1, ...
    return k[:, :n_modes]


def ks_linear_operator(k: Tensor, nu: Tensor) -> Tensor:
    """Fourier symbol of the linear part, `L_hat = k^2 - nu k^4` (1/time).

    k: `[B, K]` wavenumbers (1/length); nu: `[B]` (length^4/time). Returns `[B, K]`, same dtype as `k`.
    """
    k2 = k * k
    return k2 - nu[:, None] * k2 * k2


def ks_nonlinear(u_hat: Tensor, k: Tensor, dealias_mask: Tensor) -> Tensor:
    """Fourier transform of the nonlinear term `-u u_x = -(u^2)_x / 2`, de-aliased by the 2/3 rule.

    u_hat: `[B, N // 2 + 1]` complex rfft of `u` (N even); k: `[B, N // 2 + 1]` (or broadcastable)
    wavenumbers; dealias_mask: bool `[N // 2 + 1]`, applied to the input and to the result.
    Returns `-0.5 i k FFT((IFFT(u_hat))^2)` masked, `[B, N // 2 + 1]` complex.
    """
    n = 2 * (u_hat.shape[-1] - 1)
    u = torch.fft.irfft(u_hat * dealias_mask, n=n)
    return (-0.5j * k) * torch.fft.rfft(u * u) * dealias_mask


def _ks_stepper(u_hat: Tensor, length: Tensor, nu: Tensor, h: Tensor, contour_points: int) -> ETDRK4:
    """The generic `ETDRK4` set up for KS on the `K = n_retained_modes(N)` modes kept by the 2/3 rule.

    u_hat: `[B, N // 2 + 1]` complex rfft of the initial states (N even), projected here onto the first `K`
    modes; length, nu, h: `[B]` float64. The state is the `[B, K]` truncated spectrum, kept in a zero-padded
    `[B, N // 2 + 1]` buffer that `irfft` takes as it is; only the first `K` modes of `rfft(u^2)` are kept,
    so the de-aliasing costs nothing per step.
    The nonlinear term `-i k / 2 * rfft(irfft(v)^2)` is split as `nonlinear_factor * P(v)` with the purely
    imaginary `-i k / (2 N^2)` folded into the ETDRK4 coefficients and `P(v) = N^2 rfft(u^2)` from an
    unnormalised inverse FFT (`norm="forward"`), so each step is 4 FFT pairs and a few fused updates.
    """
    n = 2 * (u_hat.shape[-1] - 1)
    k_max = n_retained_modes(n)
    k = wavenumbers(length, k_max)  # [B, K]

    def square_hat(v: Tensor) -> Tensor:
        """`N^2` times the retained modes `[B, K]` of rfft(u^2), for the padded spectrum `v` `[B, N // 2 + 1]` of u."""
        u = torch.fft.irfft(v, n=n, norm="forward")
        return torch.fft.rfft(u.mul_(u))[:, :k_max]

    return ETDRK4(
        u_hat[:, :k_max],
        ks_linear_operator(k, nu),
        h,
        square_hat,
        nonlinear_factor=(-0.5j / n**2) * k,
        contour_points=contour_points,
        buffer_shape=u_hat.shape[1:],
    )


def solve_ks(
    u0: Tensor,
    length: Tensor,
    nu: Tensor,
    h: Tensor,
    n_steps: int,
    save_every: int,
    burn_in_steps: int | Tensor = 0,
    contour_points: int = 32,
) -> Tensor:
    """Integrate a batch of KS trajectories with ETDRK4 and return the stored frames.

    u0: `[B, N]` float64 initial states (projected onto the 2/3-rule modes before stepping);
    length, nu, h: `[B]` domain length, hyper-viscosity and internal step (time units).
    burn_in_steps: int, or int64 `[B]` per trajectory; those steps are run first and discarded.
    After burn-in, `n_steps` further steps are taken and a frame is stored every `save_every`
    steps, frame 0 being the state right after burn-in.
    Returns `[B, n_steps // save_every + 1, N]` float64 on the device of `u0`.

    Trajectories with fewer burn-in steps start later (they are held fixed while the others run),
    so that all of them reach the end of their burn-in at the same loop iteration.
    On CPU the work runs on one torch thread (the global setting is restored on return; see
    `data_gen.spectral.single_threaded`), so do not change torch's thread count from another thread meanwhile.
    """
    if u0.ndim != 2 or u0.shape[-1] % 2:
        raise ValueError(f"u0 must be [B, N] with N even, got shape {tuple(u0.shape)}")
    if u0.shape[0] == 0:
        raise ValueError("u0 must hold at least one trajectory")
    if n_steps < 0 or save_every < 1:
        raise ValueError(f"need n_steps >= 0 and save_every >= 1, got {n_steps} and {save_every}")
    if int(torch.as_tensor(burn_in_steps).min()) < 0:
        raise ValueError(f"burn_in_steps must be >= 0, got {burn_in_steps}")
    device, n = u0.device, u0.shape[-1]
    f64 = dict(dtype=torch.float64, device=device)
    u0, length, nu, h = (t.to(**f64) for t in (u0, length, nu, h))
    with single_threaded(device):
        stepper = _ks_stepper(torch.fft.rfft(u0), length, nu, h, contour_points)
        return etdrk4_rollout(
            stepper, n_steps, save_every, burn_in_steps, observe=lambda v: torch.fft.irfft(v, n=n)
        )


_single_threaded = single_threaded  # the name this module used before the move to `data_gen.spectral`


def sample_trajectory(seed: int, config: KSConfig) -> dict[str, Any]:
    """All random draws of one trajectory, from `numpy.random.default_rng(seed)` only.

    Returns a dict with floats `L`, `nu`, `dt` and float64 `[n_sines]` arrays `amplitudes`,
    `phases` (radians) and int64 `[n_sines]` `modes` (integers in `1 .. max_mode`). Draws happen in a
    fixed order whatever the ranges, so a seed's stream does not depend on which ranges are fixed.
    """
    rng = np.random.default_rng(int(seed))
    length = float(rng.uniform(*config.length_range))
    nu = float(rng.uniform(*config.nu_range))
    dt = float(rng.uniform(*config.dt_range))
    amplitudes = rng.uniform(-config.amplitude, config.amplitude, size=config.n_sines)
    phases = rng.uniform(0.0, 2.0 * math.pi, size=config.n_sines)
    modes = rng.integers(1, config.max_mode + 1, size=config.n_sines, dtype=np.int64)
    return {"L": length, "nu": nu, "dt": dt, "amplitudes": amplitudes, "phases": phases, "modes": modes}


def burn_in_frames(config: KSConfig, dt: float) -> int:
    """Frame intervals discarded before frame 0 of a trajectory whose frame interval is `dt` (time units):
    `config.burn_in_frames`, or `round(burn_in_time / dt)` where the config sets the older `burn_in_time`."""
    if config.burn_in_time is None:
        return int(config.burn_in_frames)
    return round(config.burn_in_time / dt)


def initial_state(draws: dict[str, Any], n_points: int) -> np.ndarray:
    """Initial state `[N]` float64: `sum_j A_j sin(2 pi l_j x / L + phi_j)` at `x = i L / N`."""
    x_frac = np.arange(n_points, dtype=np.float64) / n_points
    arg = 2.0 * math.pi * draws["modes"][:, None] * x_frac[None, :] + draws["phases"][:, None]
    return np.sum(draws["amplitudes"][:, None] * np.sin(arg), axis=0)


@register_generator("ks", config=KSConfig)
class KSGenerator:
    """Batched, per-seed KS trajectory generator (satisfies `data_gen.base.TrajectoryGenerator`)."""

    pde = "ks"
    grid = "periodic"
    fields = (
        FieldSpec(
            "u",
            units="1",
            boundary="periodic",
            description="solution of u_t + u u_x + u_xx + nu u_xxxx = 0 on [0, L), after burn-in",
        ),
    )
    parameters = (
        ParameterSpec("L", "length units", "domain length (period)"),
        ParameterSpec("nu", "length^4/time units", "coefficient of the fourth-order term u_xxxx"),
        ParameterSpec("dt", "time units", "time between stored frames"),
        ParameterSpec("dx", "length units", "grid spacing L/N"),
    )

    def __init__(self, config: KSConfig | None = None) -> None:
        self.config = config if config is not None else KSConfig()
        self.frame_interval = 0.5 * (self.config.dt_range[0] + self.config.dt_range[1])

    def coordinates(self) -> tuple[Coordinate, ...]:
        n = self.config.n_points
        return (
            Coordinate(
                "x",
                values=np.arange(n, dtype=np.float64) / n,
                units="1 (fraction of L)",
                description="grid point i at x = i/N of the domain; multiply by the trajectory's L",
            ),
        )

    def solver_settings(self) -> dict[str, Any]:
        c = self.config
        return {
            "solver": "etdrk4",
            "spatial": "fourier pseudo-spectral",
            "substeps": c.substeps,
            "contour_points": c.contour_points,
            "dealiasing": "2/3",
            "dtype": "float64",
            **({"burn_in_frames": c.burn_in_frames,
                "burn_in": "burn_in_frames frame intervals (x substeps steps, burn_in_frames * dt time units) per "
                           "trajectory, discarded"}
               if c.burn_in_time is None else
               {"burn_in_time": c.burn_in_time,
                "burn_in": "round(burn_in_time / dt) frames (x substeps steps) per trajectory, discarded"}),
        }

    def reference_solver(self, resolution: Sequence[int] | None = None,
                         time_step_factor: float = 1.0) -> KSReferenceSolver:
        """This solver as the evaluator's `solver` row (`data_gen.base.ReferenceSolver`), at `resolution` points
        (None: the stored `n_points`) with its internal step `time_step_factor` times larger."""
        return KSReferenceSolver(self.config, resolution, time_step_factor)

    def generate(self, seeds: Sequence[int], n_frames: int, device: torch.device) -> GeneratedBatch:
        """Fields `{"u": float32 [B, n_frames, N]}`, parameters `{"L", "nu", "dt", "dx": float64 [B]}`."""
        check_generate_request(seeds, n_frames)
        c = self.config
        device = torch.device(device)
        draws = [sample_trajectory(s, c) for s in seeds]
        params = {name: np.array([d[name] for d in draws], dtype=np.float64) for name in ("L", "nu", "dt")}
        h = params["dt"] / c.substeps
        # Burn-in is a whole number of frames, so frame times do not depend on `substeps`.
        burn = np.array([burn_in_frames(c, dt) * c.substeps for dt in params["dt"]], dtype=np.int64)
        u0 = np.stack([initial_state(d, c.n_points) for d in draws])

        def to_dev(a: np.ndarray) -> Tensor:
            return torch.from_numpy(a).to(device)

        frames = solve_ks(
            to_dev(u0),
            to_dev(params["L"]),
            to_dev(params["nu"]),
            to_dev(h),
            n_steps=(n_frames - 1) * c.substeps,
            save_every=c.substeps,
            burn_in_steps=to_dev(burn),
            contour_points=c.contour_points,
        )
        params["dx"] = params["L"] / c.n_points
        return GeneratedBatch(
            fields={"u": frames.to(torch.float32).cpu().numpy()},
            parameters=params,
        )


class KSReferenceSolver:
    """The KS generator's ETDRK4 solver advancing stored states (`data_gen.base.ReferenceSolver`).

    At a coarser `resolution` `n` (even, at most the stored `N`), a state is restricted by keeping its lowest
    `n // 2 + 1` Fourier modes (the solver's 2/3 rule then keeps `(n - 1) // 3 + 1` of them), solved there and
    brought back by zero-padding its spectrum, which is exact for the modes the coarse solver keeps. The internal
    step is `dt * n_frames / round(n_frames * substeps / time_step_factor)` (at least one step per call). The
    ETDRK4 coefficients are reused while the batch's `(L, nu, dt)` stay the same.
    """

    def __init__(self, config: KSConfig, resolution: Sequence[int] | None, time_step_factor: float) -> None:
        n = None if resolution is None else [int(r) for r in resolution]
        if n is not None and (len(n) != 1 or n[0] < 8 or n[0] % 2 or n[0] > config.n_points):
            raise InvalidSetting(f"KS solver resolution must be one even number of points from 8 to the stored "
                                 f"{config.n_points}, got {list(resolution)}")
        if not (math.isfinite(float(time_step_factor)) and float(time_step_factor) > 0):
            raise InvalidSetting(f"KS solver time_step_factor must be a finite number > 0, got {time_step_factor!r}")
        self.config, self.n_points = config, (config.n_points if n is None else n[0])
        self.time_step_factor = float(time_step_factor)
        self._cached: tuple[tuple[Tensor, ...], int, ETDRK4] | None = None

    def steps_per_call(self, n_frames: int) -> int:
        return max(1, round(n_frames * self.config.substeps / self.time_step_factor))

    def advance(self, fields: Tensor, params: Mapping[str, Tensor], n_frames: int) -> Tensor:
        """`fields [B, 1, N]` (u, stored grid) -> u `n_frames` frame intervals later, `[B, 1, N]` float64."""
        if fields.ndim != 3 or fields.shape[1] != 1:
            raise ValueError(f"KS fields must be [B, 1, N] (the field u), got {tuple(fields.shape)}")
        device, big = fields.device, fields.shape[-1]
        f64 = dict(dtype=torch.float64, device=device)
        u_hat = torch.fft.rfft(fields[:, 0].to(**f64))
        n = self.n_points
        coarse = torch.zeros(u_hat.shape[0], n // 2 + 1, dtype=u_hat.dtype, device=device)
        keep = min(n // 2 + 1, u_hat.shape[-1])
        coarse[:, :keep] = u_hat[:, :keep] * (n / big)
        length, nu, dt = (params[name].to(**f64).reshape(-1) for name in ("L", "nu", "dt"))
        steps = self.steps_per_call(n_frames)
        h = dt * n_frames / steps
        with single_threaded(device):
            key = (length, nu, h)
            if (self._cached is None or self._cached[1] != coarse.shape[0]
                    or not all(torch.equal(a, b) for a, b in zip(self._cached[0], key, strict=True))):
                self._cached = (key, coarse.shape[0], _ks_stepper(coarse, length, nu, h, self.config.contour_points))
            stepper = self._cached[2]
            stepper.v.copy_(coarse[:, : stepper.v.shape[-1]])
            state = stepper.advance(steps)
            out = torch.zeros(u_hat.shape[0], big // 2 + 1, dtype=u_hat.dtype, device=device)
            kept = min(state.shape[-1], out.shape[-1])
            out[:, :kept] = state[:, :kept] * (big / n)
        return torch.fft.irfft(out, n=big)[:, None]
