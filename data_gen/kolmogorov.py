"""2-D Kolmogorov flow (incompressible Navier–Stokes, vorticity form) on the 2 pi torus, solved with batched ETDRK4.

PDE (the Kochkov et al. 2021 / PDE-Refiner 2-D setup), periodic on `[0, 2 pi)^2`, velocity `(u, v)`::

    u_t + (u . grad) u = -grad p + nu lap u - drag u + A sin(k_f y) e_x,   div u = 0,

in vorticity form (`omega = v_x - u_y`, stream function `psi` with `u = psi_y`, `v = -psi_x`, `lap psi = -omega`)::

    omega_t + u omega_x + v omega_y = nu lap omega - drag omega - A k_f cos(k_f y)

with `nu = 1 / Re`; the benchmark uses `Re = 1000`, `drag = 0.1`, `A = 1`, `k_f = 4`. The forcing enters as the
curl of the body force `A sin(k_f y) e_x`. Time and length are in the units that make the domain `2 pi` and the
forcing amplitude 1 (dimensionless).

Space: Fourier pseudo-spectral on an `n x n` DNS grid (`dns_resolution`); the nonlinear term `div(u omega)` is
evaluated in the conservative form `d_x d_y (v^2 - u^2) + (d_x^2 - d_y^2)(u v)` (4 FFTs; the mean vorticity is
conserved exactly) and de-aliased by the 2/3 rule (`|m_x|, |m_y| <= (n - 1) // 3`). Time: the ETDRK4 of
`data_gen.spectral` in float64 on the retained modes, with the viscous and drag terms in the exact linear part.
Spectra are forward-normalised Fourier coefficients (the physical amplitudes), so moving between grids is a copy
of modes.

Resolution: at Re = 1000 the DNS grid must reach the exponential dissipation range of the enstrophy spectrum. The
criterion (docs/pde_kolmogorov.md) is that the shell-summed enstrophy spectrum (`enstrophy_spectrum`), averaged
over frames, ends at the last resolved shell `K = (n - 1) // 3` at most `RESOLVED_TAIL` (1e-6) of its peak
(`spectrum_tail`); `small`'s 448^2 grid meets it, the former 192^2 (about 2.5e-4) did not.

Time steps: `substeps` ETDRK4 steps per stored frame, refined per trajectory and frame by a Courant rule: a
trajectory whose Courant number for the base step exceeds `courant_target` at the start of a frame takes that
frame in 2, 4 or 8 times the steps (`substep_factors`, `VorticitySolver.advance_frame`). The rule reads the
trajectory's own state only, so it is deterministic and keeps batch invariance; the branch points, where a
perturbation of the size of the flow itself lifts the velocity, are where it acts most.

Stored fields (`resolution x resolution`, float32): the DNS vorticity spectrally filtered to the modes
`|m_x|, |m_y| <= resolution / 2 - 1` (a sharp cut-off below the stored grid's Nyquist mode) and sampled on the
stored grid, which is exact for a field holding only those modes; the velocity is derived spectrally from the
filtered vorticity (`u_hat = i k_y omega_hat / |k|^2`, `v_hat = -i k_x omega_hat / |k|^2`), so the stored
velocity is divergence-free to round-off. Arrays are `[..., x, y]` (`indexing="ij"`).

Trajectories (see `KolmogorovGenerator`): one shared spin-up from a random field drawn from `spinup_seed` is
integrated for `spinup_time` into the statistically stationary state (alone, so it is the same whatever the
batch); each trajectory then branches from it with a random perturbation drawn from its own seed only, of
relative size `perturbation`, and runs `branch_time` more (discarded) before frame 0, long enough for branches to
decorrelate (docs/pde_kolmogorov.md gives the measured decorrelation). A trajectory is thus reproducible from
its seed and the settings alone.

Reproducibility: every 2-D FFT in the time loop is two batched 1-D transforms along the contiguous last axis
(`VorticitySolver`), which round each row the same whatever the batch, on one CPU thread; every complex product
has one purely real or purely imaginary factor. So a trajectory is bitwise the same whatever batch it is
generated in (tested for batches of 1 to 5 on 48^2 to 448^2 grids, and with the Courant rule refining some
trajectories of a batch and not others).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from data_gen.base import (
    GeneratedBatch,
    SolverDiverged,
    check_generate_request,
    even_number,
)
from data_gen.registry import register_generator
from data_gen.spectral import (
    ETDRK4,
    dealias_cutoff,
    irfftn,
    rfft_wavenumbers,
    rfftn,
    single_threaded,
)
from pdebench.config.checks import SettingError, finite_number, whole_number
from pdebench.console import progress_bar
from pdebench.data.schema import Coordinate, FieldSpec, ParameterSpec
from pdebench.errors import InvalidSetting

__all__ = [
    "FIELD_NAMES",
    "KolmogorovConfig",
    "KolmogorovGenerator",
    "KolmogorovReferenceSolver",
    "MAX_SUBSTEP_FACTOR",
    "RESOLVED_TAIL",
    "StepLog",
    "VorticitySolver",
    "dissipation_rates",
    "enstrophy_spectrum",
    "forcing_spectrum",
    "random_vorticity_spectrum",
    "resample_spectrum",
    "solver_grid_for",
    "spectrum_rms",
    "spectrum_tail",
    "stored_fields",
    "substep_factors",
    "velocity_from_vorticity",
]

DOMAIN = 2.0 * math.pi
FIELD_NAMES = ("vorticity", "vx", "vy")
# The most a frame's steps are refined by the Courant rule (`substep_factors`): a flow that needs more is blowing up.
MAX_SUBSTEP_FACTOR = 8
# The resolution criterion of docs/pde_kolmogorov.md: the time-averaged shell-summed enstrophy spectrum at the last
# resolved shell is at most this fraction of its peak (`spectrum_tail`).
RESOLVED_TAIL = 1e-6

# KolmogorovConfig's float settings and what they are: those that must be > 0, and those that may also be 0.
_POSITIVE_FLOATS = {"reynolds": "a Reynolds number", "frame_interval": "a time between stored frames",
                    "courant_target": "a Courant number", "max_courant": "a Courant-number limit"}
_NON_NEGATIVE_FLOATS = {"drag": "a linear drag coefficient", "forcing_amplitude": "a forcing amplitude",
                        "spinup_time": "a spin-up time", "branch_time": "a branch time",
                        "perturbation": "a perturbation rms relative to the spun-up state"}


@dataclass
class KolmogorovConfig:
    """Settings of the Kolmogorov-flow generator (dimensionless units: domain 2 pi, forcing amplitude 1).

    resolution: stored grid points per axis (even). dns_resolution: grid points per axis of the DNS (even); its
    2/3-rule modes must include every stored mode (`(dns_resolution - 1) // 3 >= resolution / 2 - 1`).
    reynolds: `Re`, viscosity `nu = 1 / Re`. drag: linear drag coefficient (1/time).
    forcing_wavenumber: `k_f` of the body force `forcing_amplitude * sin(k_f y) e_x`.
    frame_interval: time between stored frames. substeps: ETDRK4 steps per stored frame on the DNS grid (base
    internal step `h = frame_interval / substeps`). courant_target: a trajectory whose Courant number
    `h (max|u| + max|v|) / dx` for the base step exceeds it at the start of a frame takes that frame in 2, 4 or 8
    times as many steps, the fewest that bring it to at most the target (`substep_factors`; a rule on the
    trajectory's own state, so it is deterministic and batch-invariant). max_courant: the run stops with
    `SolverDiverged` when the Courant number of the DNS for the step it took exceeds it (checked after every
    frame); at least courant_target.
    spinup_time: integration time of the shared spin-up from a random field (discarded). spinup_seed: seed of that
    random field. branch_time: time each trajectory runs after its perturbation before frame 0 (discarded).
    perturbation: rms of a trajectory's random perturbation relative to the rms vorticity of the spun-up state.
    init_modes: random fields (spin-up start, perturbations) use the modes `1 <= |m| <= init_modes`.
    contour_points: points of the ETDRK4 contour-integral coefficients (even).
    Invalid values raise `SettingError` (`pdebench.config.checks`) naming the field.
    """

    resolution: int = 64
    dns_resolution: int = 448
    reynolds: float = 1000.0
    drag: float = 0.1
    forcing_wavenumber: int = 4
    forcing_amplitude: float = 1.0
    frame_interval: float = 0.2
    substeps: int = 75
    courant_target: float = 1.6
    max_courant: float = 2.0
    spinup_time: float = 40.0
    spinup_seed: int = 0
    branch_time: float = 5.0
    perturbation: float = 1.0
    init_modes: int = 8
    contour_points: int = 32

    def __post_init__(self) -> None:
        even = "the spectral solver is written for even grids"
        even_number(self, "resolution", 8, "a number of stored grid points per axis", even)
        even_number(self, "dns_resolution", 8, "a number of DNS grid points per axis", even)
        if dealias_cutoff(self.dns_resolution) < self.resolution // 2 - 1:
            raise SettingError("dns_resolution", self.dns_resolution,
                               f"is not valid: expected at least {solver_grid_for(self.resolution)} for "
                               f"resolution={self.resolution} (the DNS's 2/3-rule modes must hold every mode of the "
                               "stored grid)")
        for name, what in _POSITIVE_FLOATS.items():
            finite_number(self, name, low_open=True, what=what)
        for name, what in _NON_NEGATIVE_FLOATS.items():
            finite_number(self, name, what=what)
        if self.courant_target > self.max_courant:
            raise SettingError("courant_target", self.courant_target,
                               f"is not valid: expected at most max_courant = {self.max_courant:g} (the steps are "
                               "refined to reach the target, and the run stops above max_courant)")
        top = self.resolution // 2 - 1  # the highest mode of the stored grid below Nyquist
        whole_number(self, "forcing_wavenumber", 1, "a forcing wavenumber k_f")
        if self.forcing_wavenumber > top:
            raise SettingError("forcing_wavenumber", self.forcing_wavenumber,
                               f"is not valid: expected at most {top} for resolution={self.resolution} (the forcing "
                               "must be a mode the stored grid holds)")
        whole_number(self, "substeps", 1, "a number of ETDRK4 steps per stored frame")
        whole_number(self, "spinup_seed", 0, "a seed of the spin-up's random field")
        whole_number(self, "init_modes", 1, "the highest mode of the random fields")
        if self.init_modes > top:
            raise SettingError("init_modes", self.init_modes,
                               f"is not valid: expected at most {top} for resolution={self.resolution} (the random "
                               "fields may only use modes the stored grid holds)")
        even_number(self, "contour_points", 4, "a number of contour points", "the ETDRK4 coefficients are averaged "
                    "over complex-conjugate pairs of points on the unit circle")

    @property
    def viscosity(self) -> float:
        """`nu = 1 / Re` (length^2/time)."""
        return 1.0 / self.reynolds


def solver_grid_for(resolution: int) -> int:
    """Smallest even grid whose 2/3-rule modes hold every mode `|m| <= resolution / 2 - 1` of a `resolution` grid.

    E.g. 64 -> 96: a solver on that grid evolves exactly the Fourier content a 64^2 field can carry (below
    Nyquist), with de-aliased products.
    """
    n = max(8, 3 * (resolution // 2 - 1) + 1)
    return n + (n % 2)


def _wavenumbers(n: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """`k_x [n, 1]`, `k_y [1, n // 2 + 1]` float64 wavenumbers (domain 2 pi: `k = m`) of an `n x n` rfft spectrum."""
    kx, ky = rfft_wavenumbers((n, n), DOMAIN, device=device)
    return kx, ky


def resample_spectrum(v: Tensor, n_out: int, cutoff: int | None = None) -> Tensor:
    """Copy the modes `|m_x|, |m_y| <= cutoff` of forward-normalised rfft spectra onto another grid's spectrum.

    v: `[*batch, n_in, n_in // 2 + 1]` complex; returns `[*batch, n_out, n_out // 2 + 1]`, zero elsewhere.
    cutoff: default the largest mode below both grids' Nyquist modes (`min(n_in, n_out) / 2 - 1`), so the
    result is the spectral truncation (low-pass filter) or zero-padding of `v`.
    """
    n_in = v.shape[-2]
    c = min(n_in, n_out) // 2 - 1 if cutoff is None else int(cutoff)
    if c > min(n_in, n_out) // 2 - 1 or c < 0:
        raise ValueError(f"cutoff {c} does not fit grids of {n_in} and {n_out} points")
    out = v.new_zeros(*v.shape[:-2], n_out, n_out // 2 + 1)
    out[..., : c + 1, : c + 1] = v[..., : c + 1, : c + 1]
    if c > 0:
        out[..., n_out - c :, : c + 1] = v[..., n_in - c :, : c + 1]
    return out


def velocity_from_vorticity(omega_hat: Tensor) -> tuple[Tensor, Tensor]:
    """Spectra `(u_hat, v_hat)` of the velocity of vorticity spectra `omega_hat` `[*batch, n, n // 2 + 1]`.

    `u_hat = i k_y omega_hat / |k|^2`, `v_hat = -i k_x omega_hat / |k|^2` (mode 0 gets zero velocity), so that
    `v_x - u_y = omega` and `u_x + v_y = 0` exactly in Fourier space.
    """
    n = omega_hat.shape[-2]
    kx, ky = _wavenumbers(n, omega_hat.device)
    k2 = kx * kx + ky * ky
    inv_k2 = torch.where(k2 > 0, 1.0 / torch.where(k2 > 0, k2, 1.0), 0.0)
    return omega_hat * (1j * ky * inv_k2), omega_hat * (-1j * kx * inv_k2)


def forcing_spectrum(n: int, wavenumber: int, amplitude: float, device: torch.device) -> Tensor:
    """Forward-normalised rfft spectrum `[n, n // 2 + 1]` complex128 of the vorticity forcing `-A k_f cos(k_f y)`,
    the curl of the body force `A sin(k_f y) e_x`: the single mode `(0, k_f)` with coefficient `-A k_f / 2`."""
    out = torch.zeros(n, n // 2 + 1, dtype=torch.complex128, device=device)
    out[0, wavenumber] = -0.5 * amplitude * wavenumber
    return out


def random_vorticity_spectrum(rng: np.random.Generator, n: int, max_mode: int) -> np.ndarray:
    """A random vorticity field's forward-normalised rfft spectrum `[n, n // 2 + 1]` complex128, unit rms.

    Draws (in a fixed order, independent of `n`) complex normal coefficients for the box `|m_x|, m_y <= max_mode`
    and keeps the modes with `1 <= |m| <= max_mode`, weighted by `|m|` so the energy sits at the larger
    of them; the field is real by construction (the `m_y = 0` column is made Hermitian) and has zero mean.
    """
    if max_mode > n // 2 - 1:
        raise ValueError(f"max_mode {max_mode} does not fit a grid of {n} points")
    size = (2 * max_mode + 1, max_mode + 1)
    coef = rng.standard_normal(size) + 1j * rng.standard_normal(size)  # rows m_x = -M .. M, columns m_y = 0 .. M
    mx = np.arange(-max_mode, max_mode + 1)[:, None]
    my = np.arange(max_mode + 1)[None, :]
    radius = np.sqrt(mx**2 + my**2)
    coef = np.where((radius >= 1) & (radius <= max_mode), coef * radius, 0.0)
    # m_y = 0 column: c(-m_x) = conj(c(m_x)), c(0, 0) = 0.
    col = coef[:, 0]
    col = 0.5 * (col + np.conj(col[::-1]))
    coef[:, 0] = col
    spec = np.zeros((n, n // 2 + 1), dtype=np.complex128)
    spec[: max_mode + 1, : max_mode + 1] = coef[max_mode:]
    spec[n - max_mode :, : max_mode + 1] = coef[:max_mode]
    # rms of the real field with these coefficients (forward norm): sum over the full spectrum of |c|^2.
    weight = np.full(n // 2 + 1, 2.0)
    weight[0] = 1.0
    rms = math.sqrt(float(np.sum(weight[None, : max_mode + 1] * np.abs(spec[:, : max_mode + 1]) ** 2)))
    return spec / rms


def enstrophy_spectrum(omega_hat: Tensor) -> Tensor:
    """Shell-summed enstrophy spectrum `Z(k)` `[*batch, K + 1]` float64 of vorticity spectra `[*batch, n, n // 2 + 1]`
    (forward-normalised rfft2 of an `n x n` field), for the shells `k = 0 .. K`, `K = (n - 1) // 3` the highest mode
    the 2/3 rule keeps.

    `Z(k) = 1/2 sum |omega_hat_m|^2` over the modes `m` of the whole plane with `round(|m|) = k`, i.e.
    `k - 1/2 <= |m| < k + 1/2` (the rfft half plane counts twice but for its `m_y = 0` and Nyquist columns), so
    `sum_k Z(k)` is the enstrophy `<omega^2> / 2` held by the modes `|m| < K + 1/2`. Every shell up to `K` is
    complete: a mode with `|m| < K + 1/2` has `|m_x|, |m_y| <= K`. Units: (1/time)^2 per unit wavenumber.
    """
    n = omega_hat.shape[-2]
    kx, ky = _wavenumbers(n, omega_hat.device)
    shell = torch.round(torch.sqrt(kx * kx + ky * ky)).to(torch.int64)  # [n, n // 2 + 1]
    weight = torch.full((n // 2 + 1,), 2.0, dtype=torch.float64, device=omega_hat.device)
    weight[0] = 1.0
    if n % 2 == 0:
        weight[-1] = 1.0
    power = (omega_hat.real.to(torch.float64) ** 2 + omega_hat.imag.to(torch.float64) ** 2) * (0.5 * weight)
    top = dealias_cutoff(n)
    keep = (shell <= top).flatten()
    batch = power.shape[:-2]
    out = power.new_zeros(*batch, top + 1)
    flat = power.reshape(*batch, -1)[..., keep]
    return out.index_add_(-1, shell.flatten()[keep], flat)


def spectrum_tail(spectrum: Tensor | np.ndarray) -> float:
    """`Z(K) / max_k Z(k)` of an enstrophy spectrum `[K + 1]` (`enstrophy_spectrum`, averaged as wanted): how far
    below its peak the spectrum ends at the last shell the DNS resolves (the resolution criterion of
    docs/pde_kolmogorov.md asks for at most `RESOLVED_TAIL`)."""
    z = np.asarray(spectrum, dtype=np.float64)
    if z.ndim != 1 or z.size < 2 or not np.isfinite(z).all() or z.max() <= 0:
        raise ValueError(f"need a finite enstrophy spectrum [K + 1] with a positive peak, got shape {z.shape}")
    return float(z[-1] / z.max())


def dissipation_rates(omega_hat: Tensor, nu: float) -> tuple[Tensor, Tensor]:
    """Viscous energy and enstrophy dissipation rates `(epsilon, beta)`, each `[*batch]` float64, of vorticity
    spectra `[*batch, n, n // 2 + 1]`: `epsilon = nu <omega^2>` (length^2/time^3) and `beta = nu <|grad omega|^2>`
    (1/time^3), spatial means by Parseval. They set the Kolmogorov scale `(nu^3 / epsilon)^(1/4)` and the
    enstrophy-dissipation (Kraichnan) scale `(nu^3 / beta)^(1/6)` of 2-D turbulence."""
    n = omega_hat.shape[-2]
    kx, ky = _wavenumbers(n, omega_hat.device)
    weight = torch.full((n // 2 + 1,), 2.0, dtype=torch.float64, device=omega_hat.device)
    weight[0] = 1.0
    if n % 2 == 0:
        weight[-1] = 1.0
    power = (omega_hat.real.to(torch.float64) ** 2 + omega_hat.imag.to(torch.float64) ** 2) * weight
    return nu * power.sum(dim=(-2, -1)), nu * (power * (kx * kx + ky * ky)).sum(dim=(-2, -1))


def spectrum_rms(v: Tensor) -> Tensor:
    """Rms over space `[*batch]` of real fields given by forward-normalised rfft spectra `[*batch, n, n // 2 + 1]`
    (Parseval; the `m_y = 0` and, for even `n`, Nyquist columns count once, the others twice)."""
    n = v.shape[-2]
    weight = torch.full((v.shape[-1],), 2.0, dtype=v.real.dtype, device=v.device)
    weight[0] = 1.0
    if n % 2 == 0:
        weight[-1] = 1.0
    return ((v.real**2 + v.imag**2) * weight).sum(dim=(-2, -1)).sqrt()


@dataclass
class StepLog:
    """What a run did frame by frame: per frame, the steps each trajectory took `[B]` and its Courant number at the
    end of the frame for the step it took `[B]` (what the `max_courant` guard checks)."""

    substeps: list[np.ndarray] = field(default_factory=list)
    courant: list[np.ndarray] = field(default_factory=list)

    def add(self, courant: Tensor, substeps: Tensor) -> None:
        self.courant.append(courant.detach().cpu().numpy().astype(np.float64))
        self.substeps.append(substeps.detach().cpu().numpy().astype(np.int64))

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """`(substeps, courant)`, each `[frames, B]` (empty `[0, 0]` before any frame)."""
        if not self.courant:
            return np.zeros((0, 0), dtype=np.int64), np.zeros((0, 0))
        return np.stack(self.substeps), np.stack(self.courant)


class VorticitySolver:
    """Batched pseudo-spectral ETDRK4 solver of the forced vorticity equation on an `n x n` grid of the 2 pi torus.

    omega_hat: `[B, n, n // 2 + 1]` complex128 forward-normalised rfft2 spectra of the initial vorticity (modes
    outside the 2/3 rule are dropped). nu, drag: floats or `[B]` float64 (length^2/time, 1/time). h: internal step
    (time units). forcing: `[n, n // 2 + 1]` forward-normalised vorticity forcing spectrum, or None.
    The linear part `-(nu |k|^2 + drag)` is exact in ETDRK4; the nonlinear term `-div(u omega)` costs 2 inverse and
    2 forward 2-D FFTs (`_nonlinear`).

    Internally the state holds only the retained modes, transposed: `[B, K + 1, n]` with `m_y = 0 .. K` along
    axis 1 and `m_x` in FFT order along the last axis (`K = (n - 1) // 3`; the `m_x` outside the 2/3 rule are kept
    at zero). A 2-D transform is then two batched 1-D transforms along the contiguous last axis with one transpose
    between them: no per-trajectory loop, batch-invariant on CPU (see `data_gen.spectral`), and the x-transforms
    run on the `K + 1` retained `m_y` only instead of all `n // 2 + 1`.
    """

    def __init__(
        self,
        omega_hat: Tensor,
        nu: float | Tensor,
        drag: float | Tensor,
        h: float,
        forcing: Tensor | None = None,
        contour_points: int = 32,
    ) -> None:
        if not omega_hat.is_complex() or omega_hat.ndim != 3 or omega_hat.shape[-1] != omega_hat.shape[-2] // 2 + 1:
            raise ValueError(f"omega_hat must be complex [B, n, n // 2 + 1], got {omega_hat.dtype} "
                             f"{tuple(omega_hat.shape)}")
        device = omega_hat.device
        n = omega_hat.shape[-2]
        self.n, self.n_ky = n, dealias_cutoff(n) + 1
        f64 = dict(dtype=torch.float64, device=device)
        kx, ky = _wavenumbers(n, device)  # [n, 1], [1, n // 2 + 1]
        kx, ky = kx.reshape(1, n), ky.reshape(-1, 1)[: self.n_ky]  # transposed layout: [1, n], [K + 1, 1]
        mask = (kx.abs() <= dealias_cutoff(n)).to(torch.float64)  # [1, n]: the retained m_x
        k2 = kx * kx + ky * ky  # [K + 1, n]
        inv_k2 = torch.where(k2 > 0, 1.0 / torch.where(k2 > 0, k2, 1.0), 0.0) * mask

        def complex_symbol(symbol: Tensor) -> Tensor:
            return symbol.expand(self.n_ky, n).to(torch.complex128).contiguous()

        # Velocity from vorticity: purely imaginary factors; the flux symbols are real. Each complex product thus
        # has one factor with a zero part and rounds once per component (batch invariance, see data_gen.spectral).
        self.to_u = complex_symbol(1j * ky * inv_k2)  # u_hat = i k_y omega_hat / |k|^2
        self.to_v = complex_symbol(-1j * kx * inv_k2)  # v_hat = -i k_x omega_hat / |k|^2
        # -div(u omega) = -[d_x d_y (v^2 - u^2) + (d_x^2 - d_y^2)(u v)] (2-D, div u = 0)
        self._symbol_squares = complex_symbol(kx * ky * mask)  # multiplies FFT(v^2 - u^2)
        self._symbol_uv = complex_symbol((kx * kx - ky * ky) * mask)  # multiplies FFT(u v)
        self._forcing_index: tuple[Tensor, Tensor] | None = None
        self._forcing = None if forcing is None else forcing.to(device=device, dtype=torch.complex128)
        if self._forcing is not None:  # added mode by mode: the forcing is one or a few modes
            internal = self._from_standard(self._forcing[None])[0] * mask
            self._forcing_index = torch.nonzero(internal, as_tuple=True)
            self._forcing_values = internal[self._forcing_index]
        nu_t = torch.as_tensor(nu, **f64).reshape(-1, 1, 1)
        drag_t = torch.as_tensor(drag, **f64).reshape(-1, 1, 1)
        lin = -(nu_t * k2 + drag_t)  # [1 or B, K + 1, n] (1/time)
        self._padded: dict[tuple[int, ...], Tensor] = {}  # see `_to_grid`
        v0 = self._from_standard(omega_hat.to(torch.complex128)) * mask
        self._spectra = torch.empty(2, *v0.shape, dtype=torch.complex128, device=device)
        self._products = torch.empty(2, v0.shape[0], n, n, **f64)
        self.stepper = ETDRK4(v0, lin, h, self._nonlinear, contour_points=contour_points)
        self.h = float(h)
        # What `advance_frame` needs to build a lone solver with a finer step for one row.
        self._nu, self._drag = nu_t.reshape(-1), drag_t.reshape(-1)
        self._contour_points = contour_points
        self._finer: dict[tuple[int, float, float], VorticitySolver] = {}
        self.step_sizes = torch.full((v0.shape[0],), self.h, **f64)  # [B]: the step each row took last

    # --- layout and transforms -------------------------------------------------------------------------------------
    def _from_standard(self, v: Tensor) -> Tensor:
        """rfft2 spectra `[..., n, n // 2 + 1]` -> the internal layout `[..., K + 1, n]` (retained `m_y` only)."""
        return v[..., : self.n_ky].transpose(-1, -2).contiguous()

    def _to_standard(self, v: Tensor) -> Tensor:
        """Internal `[..., K + 1, n]` -> rfft2 spectra `[..., n, n // 2 + 1]` (zero beyond the retained modes)."""
        out = v.new_zeros(*v.shape[:-2], self.n, self.n // 2 + 1)
        out[..., : self.n_ky] = v.transpose(-1, -2)
        return out

    def _to_grid(self, v: Tensor) -> Tensor:
        """Internal spectra `[..., K + 1, n]` -> real fields `[..., n, n]` (axes x, y): inverse FFT along x, then
        along y, each a batched 1-D transform along the contiguous last axis.

        The transposed intermediate is written into a kept zero-padded `[..., n, n // 2 + 1]` buffer, so the
        y-transform needs neither a fresh allocation nor padding (which cost 15 % of a step at 128^2)."""
        along_x = torch.fft.ifft(v, dim=-1, norm="forward")  # [..., K + 1 (m_y), n (x)]
        shape = (*v.shape[:-2], self.n, self.n // 2 + 1)
        padded = self._padded.get(shape)
        if padded is None:
            padded = self._padded[shape] = v.new_zeros(shape)
        padded[..., : self.n_ky].copy_(along_x.transpose(-1, -2))
        return torch.fft.irfft(padded, n=self.n, dim=-1, norm="forward")

    def _to_spectrum(self, u: Tensor) -> Tensor:
        """Real fields `[..., n, n]` -> internal spectra `[..., K + 1, n]` (forward-normalised)."""
        along_y = torch.fft.rfft(u, dim=-1, norm="forward")[..., : self.n_ky]  # [..., n (x), K + 1 (m_y)]
        return torch.fft.fft(along_y.transpose(-1, -2).contiguous(), dim=-1, norm="forward")

    def _nonlinear(self, w: Tensor) -> Tensor:
        """`-div(u omega) + forcing` for the internal spectrum `w` `[B, K + 1, n]`, de-aliased.

        Uses the 2-D identity `div(u omega) = d_x d_y (v^2 - u^2) + (d_x^2 - d_y^2)(u v)` (Basdevant 1983), which
        needs the inverse FFTs of `u`, `v` and the forward FFTs of two products: 4 transforms instead of the 5 of
        `d_x(u omega) + d_y(v omega)` or `u . grad omega`. Equal to both up to round-off, and, like the first,
        conservative: the mean mode gets exactly 0.
        """
        spectra = self._spectra
        torch.mul(w, self.to_u, out=spectra[0])
        torch.mul(w, self.to_v, out=spectra[1])
        u, v = self._to_grid(spectra).unbind(0)
        products = self._products
        torch.mul(v, v, out=products[0])
        products[0].sub_(u * u)
        torch.mul(u, v, out=products[1])
        flux = self._to_spectrum(products)  # [2, B, K + 1, n]
        out = torch.mul(flux[0], self._symbol_squares)
        out.add_(torch.mul(flux[1], self._symbol_uv))
        if self._forcing_index is not None:
            out[(slice(None), *self._forcing_index)] += self._forcing_values
        return out

    # --- public ----------------------------------------------------------------------------------------------------
    @property
    def state(self) -> Tensor:
        """Current vorticity as rfft2 spectra `[B, n, n // 2 + 1]` (forward-normalised; a new tensor)."""
        return self._to_standard(self.stepper.state)

    def advance(self, n_steps: int) -> Tensor:
        """Take `n_steps` ETDRK4 steps of `h` on one CPU thread; returns the new `state`."""
        self.stepper.advance(n_steps)
        self.step_sizes.fill_(self.h)
        return self.state

    def advance_frame(self, n_steps: int, courant_target: float | None = None) -> Tensor:
        """Advance every row by the time `n_steps * h`, rows too fast for `h` in more, shorter steps.

        Each row takes `n_steps * f` steps of `h / f`, with `f` the factor `substep_factors` picks from its own
        Courant number for `h` at the start (1 when `courant_target` is None): a rule that depends on the row's
        state alone, so a trajectory is the same whatever batch it is in. The rows with `f > 1` are integrated one
        at a time by a lone solver with the finer step (kept for reuse), from the row's state at the start.
        Returns the steps taken per row `[B]` int64; `step_sizes` holds the step each row took.
        """
        factors = substep_factors(self.courant_for(self.h), courant_target)
        finer = torch.nonzero(factors > 1).flatten().tolist()
        start = self.stepper.state[finer].clone() if finer else None
        self.stepper.advance(n_steps)
        for j, row in enumerate(finer):
            factor = int(factors[row])
            solver = self._finer_solver(row, factor)
            solver.stepper.state.copy_(start[j : j + 1])
            solver.stepper.advance(n_steps * factor)
            self.stepper.state[row] = solver.stepper.state[0]
        self.step_sizes = self.h / factors.to(torch.float64)
        return n_steps * factors

    def _finer_solver(self, row: int, factor: int) -> VorticitySolver:
        """A lone solver (batch of 1) with step `h / factor` and row `row`'s viscosity and drag, built once."""
        nu = float(self._nu[row if self._nu.numel() > 1 else 0])
        drag = float(self._drag[row if self._drag.numel() > 1 else 0])
        key = (factor, nu, drag)
        if key not in self._finer:
            zero = torch.zeros(1, self.n, self.n // 2 + 1, dtype=torch.complex128, device=self.stepper.state.device)
            self._finer[key] = VorticitySolver(zero, nu, drag, self.h / factor, self._forcing, self._contour_points)
        return self._finer[key]

    def max_speed(self) -> Tensor:
        """`max|u| + max|v|` over the grid per trajectory `[B]` (length/time) of the current state."""
        w = self.stepper.state
        with single_threaded(w.device):
            vel = self._to_grid(torch.stack([w * self.to_u, w * self.to_v]))  # [2, B, n, n]
        return vel.abs().amax(dim=(-2, -1)).sum(dim=0)

    def courant_for(self, h: float | Tensor) -> Tensor:
        """Courant number `h (max|u| + max|v|) / dx` per trajectory `[B]` of the current state for step(s) `h`."""
        return self.max_speed() * h * (self.n / DOMAIN)

    def courant(self) -> Tensor:
        """Courant number per trajectory `[B]` of the current state for the step each row took last (`h` before
        any step, or after `advance`; a finer one where `advance_frame` refined it)."""
        return self.courant_for(self.step_sizes)


def substep_factors(courant: Tensor, target: float | None) -> Tensor:
    """Per row `[B]` int64, the fewest of `1, 2, 4, ..., MAX_SUBSTEP_FACTOR` steps per step of the base size that
    bring its Courant number `courant` `[B]` (for the base step) to at most `target`; the largest where none does
    (the Courant guard then reports it). None: all 1 (fixed steps)."""
    factors = torch.ones(courant.shape, dtype=torch.int64, device=courant.device)
    if target is None:
        return factors
    while True:
        more = (courant > target * factors) & (factors < MAX_SUBSTEP_FACTOR)
        if not bool(more.any()):
            return factors
        factors = torch.where(more, 2 * factors, factors)


def _check_finite_and_courant(solver: VorticitySolver, seeds: Sequence[int], time: float, max_courant: float,
                              where: str) -> None:
    """Raise `SolverDiverged` naming the seeds whose state is non-finite or whose Courant number is too large.

    seeds: one per row of the solver's batch (a shared run lists every seed that needs it); where: the phase, for
    the message (e.g. "after the branch point").
    """
    state = solver.state
    finite = torch.isfinite(torch.view_as_real(state)).flatten(1).all(dim=1).cpu().numpy()
    finite = np.broadcast_to(finite, (len(seeds),))
    if not finite.all():
        bad = [s for s, ok in zip(seeds, finite, strict=True) if not ok]
        raise SolverDiverged(bad, time, f"the vorticity became non-finite ({where})")
    courant = np.broadcast_to(solver.courant().cpu().numpy(), (len(seeds),))
    if (courant > max_courant).any():
        bad = [s for s, c in zip(seeds, courant, strict=True) if c > max_courant]
        raise SolverDiverged(
            bad, time, f"the Courant number {courant.max():.3g} exceeds max_courant = {max_courant:g} ({where}); "
            f"use more substeps per frame or a lower courant_target"
        )


def stored_fields(omega_hat: Tensor, resolution: int) -> Tensor:
    """`[B, 3, r, r]` float64 vorticity, vx, vy on the stored grid from DNS spectra `[B, n, n // 2 + 1]`
    (spectral filter to `|m| <= r / 2 - 1`, then the velocity from the filtered vorticity)."""
    w = resample_spectrum(omega_hat, resolution)
    u_hat, v_hat = velocity_from_vorticity(w)
    return irfftn(torch.stack([w, u_hat, v_hat], dim=1), (resolution, resolution), norm="forward")


@register_generator("kolmogorov", config=KolmogorovConfig)
class KolmogorovGenerator:
    """Batched, per-seed Kolmogorov-flow generator (satisfies `data_gen.base.TrajectoryGenerator` and
    `HasReferenceSolver`)."""

    pde = "kolmogorov"
    grid = "periodic"
    fields = (
        FieldSpec("vorticity", units="1/time", boundary="periodic",
                  description="vorticity v_x - u_y of 2-D Kolmogorov flow (nu = 1/Re, drag, forcing sin(k_f y) e_x)"),
        FieldSpec("vx", units="length/time", boundary="periodic",
                  description="x-velocity u, derived spectrally from the stored vorticity"),
        FieldSpec("vy", units="length/time", boundary="periodic",
                  description="y-velocity v, derived spectrally from the stored vorticity"),
    )
    parameters = (
        ParameterSpec("nu", "length^2/time", "kinematic viscosity 1/Re"),
        ParameterSpec("drag", "1/time", "linear drag coefficient"),
        ParameterSpec("dt", "time units", "time between stored frames"),
    )

    def __init__(self, config: KolmogorovConfig | None = None) -> None:
        self.config = config if config is not None else KolmogorovConfig()
        self.frame_interval = float(self.config.frame_interval)
        self._spun_up: dict[str, Tensor] = {}

    # --- metadata ------------------------------------------------------------------------------------------
    def coordinates(self) -> tuple[Coordinate, ...]:
        n = self.config.resolution
        values = np.arange(n, dtype=np.float64) * (DOMAIN / n)
        return (
            Coordinate("x", values=values, units="length units", description="x_i = 2 pi i / N on the 2 pi torus"),
            Coordinate("y", values=values.copy(), units="length units",
                       description="y_j = 2 pi j / N; the forcing is sin(k_f y) e_x"),
        )

    def solver_settings(self) -> dict[str, Any]:
        c = self.config
        return {
            "solver": "etdrk4",
            "spatial": "fourier pseudo-spectral, vorticity form, conservative nonlinear term div(u omega)",
            "dealiasing": "2/3",
            "dtype": "float64",
            "dns_resolution": c.dns_resolution,
            "stored_filter": f"sharp spectral cut-off |m_x|, |m_y| <= {c.resolution // 2 - 1}, then sampling",
            "substeps": c.substeps,
            "internal_step": c.frame_interval / c.substeps,
            "substep_rule": f"a frame starting above Courant number {c.courant_target:g} for the base step takes 2, "
                            f"4 or up to {MAX_SUBSTEP_FACTOR} times the substeps (the fewest that reach it)",
            "contour_points": c.contour_points,
            "spinup": f"shared run of {c.spinup_time:g} time units from a random field (seed {c.spinup_seed})",
            "branch": f"per-seed perturbation of relative rms {c.perturbation:g}, then {c.branch_time:g} time units"
                      " discarded",
        }

    # --- solving -------------------------------------------------------------------------------------------
    def _solver(self, omega_hat: Tensor) -> VorticitySolver:
        c = self.config
        forcing = forcing_spectrum(c.dns_resolution, c.forcing_wavenumber, c.forcing_amplitude, omega_hat.device)
        return VorticitySolver(omega_hat, c.viscosity, c.drag, c.frame_interval / c.substeps, forcing,
                               c.contour_points)

    def _run(self, solver: VorticitySolver, n_frames: int, seeds: Sequence[int], t0: float, where: str,
             progress: Any = None, log: StepLog | None = None) -> float:
        """Advance `n_frames` whole frame intervals from time `t0` (`substeps` steps each, refined by the Courant
        rule), checking finiteness and Courant number after each (`SolverDiverged` with the time reached and
        `where` otherwise); `log` gets each frame's steps and Courant number. Returns the time reached."""
        c = self.config
        t = t0
        for _ in range(n_frames):
            steps = solver.advance_frame(c.substeps, c.courant_target)
            t += c.frame_interval
            _check_finite_and_courant(solver, seeds, t, c.max_courant, where)
            if log is not None:
                log.add(solver.courant(), steps)
            if progress is not None:
                progress.update(1)
        return t

    def spun_up_state(self, device: torch.device | str = "cpu", seeds: Sequence[int] = ()) -> Tensor:
        """The shared statistically stationary state `[n, n // 2 + 1]` complex128 (DNS grid, forward-normalised):
        `spinup_time` (rounded to whole frames) from a unit-rms `random_vorticity_spectrum` drawn from `spinup_seed`;
        computed alone (so it never depends on a batch), once per device, and cached. `seeds`: the trajectories
        waiting for it, named if it diverges (time counted from the start of the spin-up)."""
        device = torch.device(device)
        key = str(device)
        if key not in self._spun_up:
            c = self.config
            rng = np.random.default_rng([c.spinup_seed, 0x5B1A])
            w0 = torch.from_numpy(random_vorticity_spectrum(rng, c.dns_resolution, c.init_modes)).to(device)
            solver = self._solver(w0[None])
            n_frames = round(c.spinup_time / c.frame_interval)
            with progress_bar(n_frames, "kolmogorov spin-up", "frame") as bar:
                self._run(solver, n_frames, list(seeds) or [c.spinup_seed], 0.0,
                          f"in the shared spin-up from spinup_seed {c.spinup_seed}", bar)
            self._spun_up[key] = solver.state[0].clone()
        return self._spun_up[key]

    def initial_spectra(self, seeds: Sequence[int], device: torch.device | str = "cpu") -> Tensor:
        """Branch points `[B, n, n // 2 + 1]`: the spun-up state plus each seed's perturbation (before branch_time)."""
        c = self.config
        base = self.spun_up_state(device, seeds)
        scale = c.perturbation * float(spectrum_rms(base))
        perturbations = np.stack([
            random_vorticity_spectrum(np.random.default_rng(int(s)), c.dns_resolution, c.init_modes) for s in seeds
        ])
        return base[None] + scale * torch.from_numpy(perturbations).to(base.device)

    def run_frames(self, seeds: Sequence[int], n_frames: int, device: torch.device | str,
                   observe: Callable[[int, Tensor], None], log: StepLog | None = None) -> None:
        """Integrate the trajectories of `seeds` on the DNS grid and call `observe(j, state)` with the DNS
        vorticity spectra `[B, n, n // 2 + 1]` (complex128, forward-normalised) of every stored frame `j`.

        Frame `j` is the state `branch_time + j * frame_interval` after the branch point (rounded to whole frames).
        log: gets the steps and Courant number of every frame after the branch point (the branch's first). A
        non-finite state or a Courant number above `max_courant` raises `SolverDiverged` with the affected seeds
        and the time since the branch point (or since the start of the shared spin-up, if it fails there).
        """
        check_generate_request(seeds, n_frames)
        c = self.config
        device = torch.device(device)
        seeds = [int(s) for s in seeds]
        with single_threaded(device):
            solver = self._solver(self.initial_spectra(seeds, device))
            where = "time counted from the branch point"
            t = self._run(solver, round(c.branch_time / c.frame_interval), seeds, 0.0, where, log=log)
            for j in range(n_frames):
                if j > 0:
                    t = self._run(solver, 1, seeds, t, where, log=log)
                observe(j, solver.state)

    def generate(self, seeds: Sequence[int], n_frames: int, device: torch.device) -> GeneratedBatch:
        """Fields `vorticity, vx, vy`: float32 `[B, n_frames, r, r]`; parameters `nu, drag, dt`: float64 `[B]`.

        The DNS frames of `run_frames`, filtered to the stored grid (`stored_fields`); `SolverDiverged` as there.
        """
        c = self.config
        r = c.resolution
        out = np.empty((len(seeds), n_frames, 3, r, r), dtype=np.float32)

        def store(j: int, state: Tensor) -> None:
            out[:, j] = stored_fields(state, r).to(torch.float32).cpu().numpy()

        self.run_frames(seeds, n_frames, device, store)
        ones = np.ones(len(seeds), dtype=np.float64)
        return GeneratedBatch(
            fields={name: np.ascontiguousarray(out[:, :, i]) for i, name in enumerate(FIELD_NAMES)},
            parameters={"nu": c.viscosity * ones, "drag": c.drag * ones, "dt": c.frame_interval * ones},
        )

    def reference_solver(self, resolution: Sequence[int] | None = None,
                         time_step_factor: float = 1.0) -> KolmogorovReferenceSolver:
        """This solver stepping stored states (the evaluator's `solver` row); see `KolmogorovReferenceSolver`."""
        return KolmogorovReferenceSolver(self.config, resolution, time_step_factor)


class KolmogorovReferenceSolver:
    """Steps stored Kolmogorov states forward by whole frame intervals at the stored or a coarser resolution.

    resolution: `(r, r)` with `r` even and at most the stored resolution (None: the stored one). The stored
    vorticity is filtered to the modes `|m| <= r / 2 - 1` and evolved on the smallest grid whose 2/3 rule keeps all
    of them (`solver_grid_for(r)`, e.g. 96 for 64), then brought back to the stored grid (velocity re-derived).
    time_step_factor: the internal step is the generator's base DNS step scaled by `dns_resolution / solver grid`
    (the Courant number is kept) times this factor, rounded to a whole number of steps per frame; the generator's
    Courant rule refines it frame by frame as there, with its target scaled by the same factor (so a factor > 1
    takes proportionally longer steps throughout).
    With the stored resolution and `dns_resolution == solver_grid_for(resolution)`, this is exactly the
    generator's solver, so it reproduces stored frames up to the float32 rounding of its input.
    """

    def __init__(self, config: KolmogorovConfig, resolution: Sequence[int] | None = None,
                 time_step_factor: float = 1.0) -> None:
        stored = config.resolution
        if resolution is None:
            r = stored
        else:
            dims = tuple(int(v) for v in resolution)
            if len(dims) != 2 or dims[0] != dims[1] or dims[0] % 2 or not 8 <= dims[0] <= stored:
                raise InvalidSetting(f"resolution must be (r, r) with r even and 8 <= r <= {stored} (the stored grid), "
                                     f"got {tuple(resolution)}")
            r = dims[0]
        if not (isinstance(time_step_factor, (int, float)) and math.isfinite(time_step_factor)
                and time_step_factor > 0):
            raise InvalidSetting(f"time_step_factor must be a finite number > 0, got {time_step_factor!r}")
        self.config, self.resolution, self.stored = config, r, stored
        self.grid = solver_grid_for(r)
        self.substeps = max(1, math.ceil(config.substeps * self.grid / config.dns_resolution / time_step_factor
                                         - 1e-9))
        self.courant_target = config.courant_target * time_step_factor

    def advance(self, fields: Tensor, params: Mapping[str, Tensor], n_frames: int) -> Tensor:
        """`fields [B, 3, r_s, r_s]` (vorticity, vx, vy on the stored grid) -> the same `n_frames` frames later.

        params: per-trajectory `nu` and `drag` `[B]` (the split file's parameters; the generator's settings where
        absent). Only the vorticity is read; the velocity is re-derived from the result. Float64 inside; the
        output has the dtype and device of `fields`.
        """
        c = self.config
        if fields.ndim != 4 or fields.shape[1] != 3 or tuple(fields.shape[2:]) != (self.stored, self.stored):
            raise ValueError(f"fields must be [B, 3, {self.stored}, {self.stored}] (vorticity, vx, vy), got "
                             f"{tuple(fields.shape)}")
        if n_frames < 0:
            raise ValueError(f"n_frames must be >= 0, got {n_frames}")
        device = fields.device
        with single_threaded(device):
            w = rfftn(fields[:, 0].to(torch.float64), 2, norm="forward")
            w = resample_spectrum(resample_spectrum(w, self.resolution), self.grid)

            def param(name: str, default: float) -> Tensor:
                value = params.get(name)
                return torch.as_tensor(default if value is None else value, dtype=torch.float64, device=device)

            forcing = forcing_spectrum(self.grid, c.forcing_wavenumber, c.forcing_amplitude, device)
            solver = VorticitySolver(w, param("nu", c.viscosity), param("drag", c.drag),
                                     c.frame_interval / self.substeps, forcing, c.contour_points)
            for _ in range(n_frames):
                solver.advance_frame(self.substeps, self.courant_target)
            out = stored_fields(resample_spectrum(solver.state, self.resolution), self.stored)
        return out.to(fields.dtype)
