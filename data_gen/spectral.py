"""Generic Fourier pseudo-spectral toolkit for periodic PDEs: wavenumbers, 2/3-rule masks, batched ETDRK4.

Layout: a real field on a `d`-dimensional grid of shape `(n_1, ..., n_d)` (the last `d` tensor axes) has the
`torch.fft.rfftn` spectrum of shape `(n_1, ..., n_{d-1}, n_d // 2 + 1)`: every axis but the last in FFT order
(modes `0, 1, ..., -2, -1`), the last one holding only the modes `0 .. n_d // 2`. Tensors carry a leading
batch axis `B` (one row per trajectory) where the text says so.

Time stepping solves the semi-discrete system `v_t = lin * v + N(v)` for a spectrum `v` with a diagonal linear
operator `lin` (its Fourier symbol, 1/time) and a nonlinear term `N`, by ETDRK4 (Cox & Matthews 2002) with
coefficients from the contour-integral method of Kassam & Trefethen (2005). `ETDRK4` does the stepping and
`etdrk4_rollout` stores frames, with a per-trajectory number of discarded burn-in steps.

Batch invariance (a trajectory comes out bitwise the same whatever batch it is integrated in, on a given
device) holds when
- the coefficients are computed one trajectory at a time with identical shapes (`etdrk4_coefficients` does);
- every complex product inside the time loop has one factor that is purely real or purely imaginary, so that
  each component is a single correctly rounded operation whichever (vectorised or scalar, fused or not) code
  path evaluates it. `ETDRK4` multiplies states only by its coefficients, which are real when `lin` is real
  and purely imaginary when, in addition, a purely imaginary `nonlinear_factor` is folded into them; the
  user's `N` must respect the same rule (e.g. derivatives as `i k * v` with real `k`);
- the FFTs are batch-invariant: on CPU (MKL) a batched 1-D transform along the contiguous last axis is (each
  row comes out the same whatever the batch), but multi-dimensional transforms and transforms along another
  axis are not (measured: `rfft2` of a lone 16 x 16 field differs in the last bit from the same field in a
  batch; `fft(dim=-2)` too for sizes such as 12, 24, 48). Use `rfftn` / `irfftn` for d >= 2 (one call per
  trajectory with identical shapes);
- on CPU, torch runs on one thread (`single_threaded`), since MKL's FFT rounds differently with one and with
  several threads for some sizes.
Only the CPU has been checked; on a GPU the same rules are the best guess, not a measured fact.
A complex `lin` (e.g. advection) is supported, but its full complex products void that guarantee.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = [
    "ETDRK4",
    "ETDRK4Coefficients",
    "dealias_cutoff",
    "dealias_mask",
    "etdrk4_coefficients",
    "etdrk4_rollout",
    "irfftn",
    "rfft_mode_numbers",
    "rfft_shape",
    "rfft_wavenumbers",
    "rfftn",
    "single_threaded",
]


def _grid_shape(shape: int | Sequence[int]) -> tuple[int, ...]:
    dims = tuple(int(n) for n in shape) if isinstance(shape, Sequence) else (int(shape),)
    if not dims or min(dims) < 1:
        raise ValueError(f"grid shape must be one or more positive sizes, got {shape!r}")
    return dims


def _complex_dtype(dtype: torch.dtype) -> torch.dtype:
    """The complex dtype with the precision of `dtype` (float64 -> complex128, else complex64)."""
    return dtype if dtype.is_complex else (torch.complex128 if dtype == torch.float64 else torch.complex64)


def rfft_shape(shape: int | Sequence[int]) -> tuple[int, ...]:
    """Spectrum shape of `torch.fft.rfftn` over a grid `(n_1, ..., n_d)`: `(n_1, ..., n_d // 2 + 1)`."""
    dims = _grid_shape(shape)
    return (*dims[:-1], dims[-1] // 2 + 1)


def rfft_mode_numbers(shape: int | Sequence[int], device: torch.device | str | None = None) -> tuple[Tensor, ...]:
    """Integer mode numbers of an rfftn spectrum, one int64 tensor per spatial axis.

    shape: grid points `(n_1, ..., n_d)` (an int for 1-D). Axis `i < d - 1` holds `M_i = n_i` modes in FFT
    order `0, 1, ..., (n_i - 1) // 2, -(n_i // 2), ..., -1` (for even `n_i` the Nyquist mode counts as
    `-n_i / 2`, as in `torch.fft.fftfreq`; odd derivatives should not use it, and the 2/3-rule mask removes
    it); the last axis holds `M_d = n_d // 2 + 1` modes `0 .. n_d // 2`.
    Tensor `i` has shape `[1, ..., M_i, ..., 1]` (`d` axes), so the tensors broadcast against the spectrum.
    """
    dims = _grid_shape(shape)
    out = []
    for axis, n in enumerate(dims):
        if axis == len(dims) - 1:
            m = torch.arange(n // 2 + 1, device=device)
        else:
            m = torch.arange(n, device=device)
            m = torch.where(m >= (n + 1) // 2, m - n, m)
        view = [1] * len(dims)
        view[axis] = m.numel()
        out.append(m.reshape(view))
    return tuple(out)


def rfft_wavenumbers(
    shape: int | Sequence[int],
    lengths: float | Sequence[float] | Tensor = 2.0 * math.pi,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> tuple[Tensor, ...]:
    """Angular wavenumbers `k_i = 2 pi m_i / L_i` (1/length) of an rfftn spectrum, one tensor per spatial axis.

    shape: grid points `(n_1, ..., n_d)` (an int for 1-D); `m_i` are the `rfft_mode_numbers`.
    lengths: domain lengths (periods), in length units. A float (every axis) or a sequence of `d` floats (per
    axis) gives unbatched tensors of shape `[1, ..., M_i, ..., 1]` (`d` axes); a Tensor always carries a
    leading batch axis, one length per trajectory: `[B]` (every axis) or `[B, d]` (per axis), and gives
    tensors of shape `[B, 1, ..., M_i, ..., 1]` (`d + 1` axes). The default `2 pi` makes `k_i = m_i`.
    dtype: float dtype of the result; default that of a floating `lengths` tensor, else float64.
    device: default that of a `lengths` tensor, else the CPU.
    """
    dims = _grid_shape(shape)
    d = len(dims)
    if isinstance(lengths, Tensor):
        dtype = dtype or (lengths.dtype if lengths.is_floating_point() else torch.float64)
        device = lengths.device if device is None else device
        lengths = lengths.to(dtype=dtype, device=device)
        if lengths.ndim == 1:
            per_axis = [lengths] * d
        elif lengths.ndim == 2 and lengths.shape[1] == d:
            per_axis = list(lengths.unbind(1))
        else:
            raise ValueError(f"lengths tensor must be [B] or [B, {d}], got shape {tuple(lengths.shape)}")
        per_axis = [length.reshape(-1, *([1] * d)) for length in per_axis]
    else:
        dtype = dtype or torch.float64
        values = [float(v) for v in lengths] if isinstance(lengths, Sequence) else [float(lengths)] * d
        if len(values) != d:
            raise ValueError(f"need one length per axis ({d}), got {lengths!r}")
        per_axis = values
    modes = rfft_mode_numbers(dims, device=device)
    # (2 pi m) / L: one rounding of the product, one of the quotient (the KS solver has always used this order).
    return tuple((2.0 * math.pi) * m.to(dtype) / length for m, length in zip(modes, per_axis, strict=True))


def dealias_cutoff(n_points: int) -> int:
    """Largest |mode| kept by the 2/3 rule on `n_points` points: `(n_points - 1) // 3`, i.e. `3 |m| < n_points`."""
    return (int(n_points) - 1) // 3


def dealias_mask(shape: int | Sequence[int], device: torch.device | str | None = None) -> Tensor:
    """Bool mask of the rfftn spectrum `[M_1, ..., M_d]` (see `rfft_shape`): True where every axis keeps its mode.

    The 2/3 rule keeps `|m_i| <= (n_i - 1) // 3` on each axis (a square box in 2-D), so that the product of
    two fields made of kept modes never aliases into a kept mode. For 1-D this is `[N // 2 + 1]`, True for
    `m <= (N - 1) // 3`.
    """
    dims = _grid_shape(shape)
    modes = rfft_mode_numbers(dims, device=device)
    mask = torch.ones(rfft_shape(dims), dtype=torch.bool, device=device)
    for m, n in zip(modes, dims, strict=True):
        mask = mask & (m.abs() <= dealias_cutoff(n))
    return mask


def _rows(x: Tensor, ndim: int) -> Tensor:
    """`x` as `[R, *last ndim axes]`: all leading (batch) axes folded into one."""
    if ndim < 1 or x.ndim < ndim:
        raise ValueError(f"need a tensor with at least {ndim} axes, got shape {tuple(x.shape)}")
    return x.reshape(-1, *x.shape[x.ndim - ndim :])


def rfftn(u: Tensor, ndim: int, *, norm: str | None = None, batch_invariant: bool = True) -> Tensor:
    """Batch-invariant `torch.fft.rfftn` over the last `ndim` axes: `[*batch, n_1, .., n_d]` real ->
    `[*batch, n_1, .., n_d // 2 + 1]` complex (see `rfft_shape`); norm as in torch.

    For `ndim == 1` this is one batched `torch.fft.rfft`; for `ndim >= 2`, with `batch_invariant`, one call
    per trajectory with identical shapes, so that a trajectory's spectrum is bitwise the same whatever the
    batch (module docstring; a Python loop, cheap next to the transforms of a 2-D grid of useful size).
    `batch_invariant=False` makes one batched call (faster for many small grids, last bits batch-dependent).
    On CPU the transforms run on one thread (`single_threaded`).
    """
    dims = tuple(range(-ndim, 0))
    with single_threaded(u.device):
        if ndim == 1 or not batch_invariant:
            return torch.fft.rfftn(u, dim=dims, norm=norm)
        rows = _rows(u, ndim)
        out = torch.empty(rows.shape[0], *rfft_shape(rows.shape[1:]), dtype=_complex_dtype(u.dtype), device=u.device)
        for i in range(rows.shape[0]):
            torch.fft.rfftn(rows[i], dim=dims, norm=norm, out=out[i])
    return out.reshape(*u.shape[: u.ndim - ndim], *out.shape[1:])


def irfftn(v: Tensor, shape: Sequence[int], *, norm: str | None = None, batch_invariant: bool = True) -> Tensor:
    """Batch-invariant `torch.fft.irfftn` over the last `len(shape)` axes: `[*batch, M_1, .., M_d]` complex
    -> `[*batch, n_1, .., n_d]` real on the grid `shape` (a smaller spectrum is zero-padded, as in torch).

    Same calling scheme as `rfftn`: one batched call in 1-D, one call per trajectory for d >= 2; one thread.
    """
    shape = _grid_shape(shape)
    ndim = len(shape)
    dims = tuple(range(-ndim, 0))
    with single_threaded(v.device):
        if ndim == 1 or not batch_invariant:
            return torch.fft.irfftn(v, s=shape, dim=dims, norm=norm)
        rows = _rows(v, ndim)
        out = torch.empty(rows.shape[0], *shape, dtype=v.real.dtype, device=v.device)
        for i in range(rows.shape[0]):
            torch.fft.irfftn(rows[i], s=shape, dim=dims, norm=norm, out=out[i])
    return out.reshape(*v.shape[: v.ndim - ndim], *shape)


@contextmanager
def single_threaded(device: torch.device | str) -> Iterator[None]:
    """Run torch CPU work on one intra-op thread, restoring the previous setting afterwards (re-entrant).

    The solvers issue many small ops, for which threading costs more than it saves and which on an
    oversubscribed machine stall on thread synchronisation (measured: >100x slower with 2 threads on 2 busy
    cores). Also, MKL's FFT rounds differently with one thread than with several for some sizes (e.g. 64), so
    a fixed thread count keeps trajectories bitwise reproducible. Does nothing for other devices.
    Do not change torch's thread count from another thread meanwhile.
    """
    if torch.device(device).type != "cpu" or torch.get_num_threads() == 1:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class ETDRK4Coefficients(NamedTuple):
    """ETDRK4 coefficients for `v_t = lin * v + N(v)` with step `h`, each shaped like `lin` (`[B, *S]`).

    e = exp(h lin), e2 = exp(h lin / 2) (dimensionless); q = (exp(h lin / 2) - 1) / lin and f1, f2, f3 the
    Cox–Matthews weights of the final stage (Kassam & Trefethen's `f1, f2, f3`, i.e. already multiplied by
    `h`), in time units. Real when `lin` is real, complex when it is complex.
    """

    e: Tensor
    e2: Tensor
    q: Tensor
    f1: Tensor
    f2: Tensor
    f3: Tensor


# Cox–Matthews weights as (a(z) + e^z b(z)) / z^3 with a, b quadratics: coefficients of 1, z, z^2.
_F_POLY_A = ((-4.0, -1.0, 0.0), (2.0, 1.0, 0.0), (-4.0, -3.0, -1.0))
_F_POLY_B = ((4.0, -3.0, 1.0), (-2.0, 1.0, 0.0), (4.0, -1.0, 0.0))


def _contour_coefficients_one(
    lin: Tensor, h: Tensor, circle: Tensor, poly_a: Tensor, poly_b: Tensor
) -> tuple[Tensor, ...]:
    """Coefficients of one trajectory: lin `[*S]`, 0-d step h, contour points `[M]` -> six `[*S]` tensors.

    poly_a, poly_b: `_F_POLY_A`, `_F_POLY_B` as `[3, 3]` tensors of the complex dtype of the points (made once
    per batch, not per row).

    For real `lin` the points are the upper half of the unit circle and the means are real (see
    `etdrk4_coefficients`); for complex `lin` they are the whole circle and the means complex.
    """
    z = (lin * h)[..., None] + circle  # [*S, M] complex
    ez = torch.exp(z)
    powers = torch.stack([torch.ones_like(z), z, z * z])  # [3, *S, M]
    a = torch.tensordot(poly_a, powers, dims=1)
    b = torch.tensordot(poly_b, powers, dims=1)
    f = (a + ez * b) / (powers[2] * z)  # [3, *S, M]: f1, f2, f3 integrands
    q = (torch.exp(0.5 * z) - 1.0) / z
    integrands = torch.cat([q[None], f])  # [4, *S, M]
    if not lin.is_complex():
        integrands = integrands.real
    means = h * integrands.mean(dim=-1)  # [4, *S]
    return (torch.exp(lin * h), torch.exp(lin * (0.5 * h)), *means.unbind(0))


def etdrk4_coefficients(lin: Tensor, h: Tensor | float, contour_points: int = 32) -> ETDRK4Coefficients:
    """ETDRK4 coefficients of a diagonal linear operator, by the contour-integral method, per trajectory.

    lin: `[B, *S]` real or complex Fourier symbol of the linear part (1/time), one row per trajectory, `S`
    any spectrum shape. h: `[B]` (or a float / 0-d / `[1]` tensor for all rows) internal step (time units).
    Returns `ETDRK4Coefficients`, each `[B, *S]`, real for real `lin`. The phi-type functions are evaluated
    as the mean over `contour_points` (even) points `exp(i theta)`, `theta = (j + 1/2) 2 pi / M`, on the unit
    circle around each `h lin`, which avoids their cancellation near `h lin = 0` (32 points: ~5e-13 relative).
    For real `h lin` the lower half of the circle holds the complex conjugates of the upper half, so only the
    upper half is evaluated and the real part of its mean taken.

    Rows are computed one distinct `(h, lin)` row at a time with identical shapes, so a row never depends on
    the other rows of the batch (and repeated rows cost nothing).
    """
    if contour_points < 2 or contour_points % 2:
        raise ValueError(f"contour_points must be an even integer >= 2, got {contour_points}")
    if not isinstance(h, Tensor):
        h = torch.tensor(float(h), dtype=lin.real.dtype, device=lin.device)
    h = h.to(dtype=lin.real.dtype, device=lin.device).reshape(-1)
    if lin.ndim < 2 or lin.shape[0] == 0 or h.numel() not in (1, lin.shape[0]):
        raise ValueError(f"need lin [B, *S] with B >= 1 and h [B], got {tuple(lin.shape)} and {tuple(h.shape)}")
    h = h.expand(lin.shape[0])
    keys = [
        hi.tobytes() + row.tobytes()
        for hi, row in zip(h.detach().cpu().numpy(), lin.detach().cpu().numpy(), strict=True)
    ]
    unique_id: dict[bytes, int] = {}  # row content -> id of its first occurrence
    first_rows: list[int] = []  # id -> row number
    inverse: list[int] = []  # row number -> id
    for i, key in enumerate(keys):
        if key not in unique_id:
            unique_id[key] = len(first_rows)
            first_rows.append(i)
        inverse.append(unique_id[key])
    n_theta = contour_points if lin.is_complex() else contour_points // 2
    theta = (torch.arange(n_theta, dtype=h.dtype, device=lin.device) + 0.5) * (
        (2.0 * math.pi / contour_points) if lin.is_complex() else (math.pi / n_theta)
    )
    circle = torch.polar(torch.ones_like(theta), theta)
    z_dtype = torch.result_type(lin, circle)  # that of `lin * h + circle`
    poly_a, poly_b = (torch.tensor(c, dtype=z_dtype, device=lin.device) for c in (_F_POLY_A, _F_POLY_B))
    rows = [_contour_coefficients_one(lin[i], h[i], circle, poly_a, poly_b) for i in first_rows]
    index = torch.tensor(inverse, device=lin.device)
    return ETDRK4Coefficients(*(torch.stack(parts)[index] for parts in zip(*rows, strict=True)))


class ETDRK4:
    """Batched ETDRK4 (Cox–Matthews) integrator of `v_t = lin * v + N(v)` for diagonal `lin`, state in Fourier space.

    v0: `[B, *S]` complex initial spectra (any per-trajectory shape `S`: an rfft spectrum, a truncated one...).
    lin: Fourier symbol of the linear part (1/time), real or complex, `[B, *S]` or `[1, *S]` (shared), any
    axis of size 1 being broadcast. h: step (time units), a float or `[B]` / `[1]`.
    nonlinear: `P(w) -> [B, *S]` complex spectrum for a state `w` (it may return a view of a larger tensor,
    but not of `w`, and must not modify `w`); the nonlinear term is `N(w) = nonlinear_factor * P(w)`.
    `w` is `[B, *S]`, or with `buffer_shape` the state zero-padded to `[B, *buffer_shape]`.
    nonlinear_factor: optional tensor broadcastable to `lin` (default 1), folded into the coefficients so that
    e.g. a derivative `-i k / 2` or an FFT normalisation costs nothing per step; keep it purely real or purely
    imaginary for batch invariance (module docstring). contour_points: see `etdrk4_coefficients`.
    buffer_shape: optional per-trajectory shape `F >= S` (axis by axis) of the work buffer; the state is its
    leading box `[:S_1, ..., :S_d]` and the rest stays 0. E.g. a 1-D state truncated to the `K` modes kept by
    the 2/3 rule, with `F = (N // 2 + 1,)`: the arithmetic runs on `K` modes only and `nonlinear` can hand
    its argument to `irfft` as it is (a truncated one would be zero-padded, i.e. copied, by every call).

    One step is `a = E2 v + Q N(v)`, `b = E2 v + Q N(a)`, `c = E2 a + Q (2 N(b) - N(v))`,
    `v <- E v + f1 N(v) + 2 f2 (N(a) + N(b)) + f3 N(c)`, with four evaluations of `P`. The work buffer is
    `[4, B, *F]` (`F = buffer_shape`, default `S`); slots: 0 = `E2 v`, then the stage `b`;
    1 = `E v + (E2 - 1) Q N(v)`, then the stage `c`; 2 = the stage `a`; 3 = the state `v`, accumulating the
    next state. Each stage updates several slots with one broadcast op; for real `lin` the products with the real
    `E`, `E2` run on real views (same roundings, half the arithmetic). Coefficients are kept `[1, *S]` when
    all trajectories share them, else `[B, *S]`. On CPU the coefficients are computed on one thread
    (`single_threaded`); `advance` and `etdrk4_rollout` step on one thread too (wrap direct `step` calls).
    """

    def __init__(
        self,
        v0: Tensor,
        lin: Tensor,
        h: Tensor | float,
        nonlinear: Callable[[Tensor], Tensor],
        *,
        nonlinear_factor: Tensor | None = None,
        contour_points: int = 32,
        buffer_shape: Sequence[int] | None = None,
    ) -> None:
        if not v0.is_complex() or v0.ndim < 2 or v0.shape[0] == 0:
            raise ValueError(f"v0 must be a complex [B, *S] tensor with B >= 1, got {v0.dtype} {tuple(v0.shape)}")
        batch, spec = v0.shape[0], tuple(v0.shape[1:])
        buffer = spec if buffer_shape is None else tuple(int(n) for n in buffer_shape)
        if len(buffer) != len(spec) or any(f < s for f, s in zip(buffer, spec, strict=True)):
            raise ValueError(f"buffer_shape must be >= the state shape {spec} axis by axis, got {buffer_shape!r}")
        if lin.ndim != v0.ndim or lin.shape[0] not in (1, batch):
            raise ValueError(f"lin must be [B or 1, *S] with B = {batch}, S = {spec}, got shape {tuple(lin.shape)}")
        h_t = h if isinstance(h, Tensor) else torch.tensor([float(h)], dtype=torch.float64)
        h_t = h_t.to(dtype=lin.real.dtype, device=v0.device).reshape(-1)
        if h_t.numel() not in (1, batch):
            raise ValueError(f"h must be a float or hold 1 or B = {batch} steps, got shape {tuple(h_t.shape)}")
        lin = lin.to(v0.device)
        rows = batch if max(lin.shape[0], h_t.numel()) > 1 else 1
        lin = lin.expand(rows, *spec)
        h_t = h_t.expand(rows)
        factor = None if nonlinear_factor is None else nonlinear_factor.to(v0.device)
        if rows > 1:  # share one row of coefficients when every trajectory has the same (lin, h, factor)
            same = bool((lin == lin[:1]).all()) and bool((h_t == h_t[:1]).all())
            if same and factor is not None and factor.ndim == v0.ndim and factor.shape[0] > 1:
                same = bool((factor == factor[:1]).all())
            if same:
                rows, lin, h_t = 1, lin[:1], h_t[:1]
                if factor is not None and factor.ndim == v0.ndim:
                    factor = factor[:1]
        with single_threaded(v0.device):
            e, e2, q, f1, f2, f3 = etdrk4_coefficients(lin, h_t, contour_points)
            cdt = v0.dtype
            e, e2 = e.to(_complex_dtype(e.dtype)), e2.to(_complex_dtype(e2.dtype))
            if factor is None:
                q, f1, f2x2, f3 = (c.to(_complex_dtype(c.dtype)) for c in (q, f1, 2.0 * f2, f3))
            else:
                q, f1, f2x2, f3 = q * factor, f1 * factor, 2.0 * f2 * factor, f3 * factor
            self.c_init = torch.stack([e2, e, e2]).to(cdt)  # -> slots 0, 1, 2
            self.e = e.to(cdt)  # -> slot 3
            self.c_p0 = torch.stack([e2 * q - q, q, f1]).to(cdt)  # -> slots 1, 2, 3
            self.c_p1 = torch.stack([q, f2x2]).to(cdt)  # -> slots 0, 3
            self.c_p2 = torch.stack([2.0 * q, f2x2]).to(cdt)  # -> slots 1, 3
            self.c_p3 = f3.to(cdt)  # -> slot 3
        self.nonlinear = nonlinear
        self.h = h_t
        self.work = torch.zeros(4, batch, *buffer, dtype=cdt, device=v0.device)
        w = self.work[(slice(None), slice(None), *(slice(0, n) for n in spec))]  # [4, B, *S]
        self.v, self.s012, self.s123, self.s03, self.s13 = w[3], w[0:3], w[1:4], w[0::3], w[1::2]
        self.v.copy_(v0)
        # Views made once rather than on every step: the padded slots handed to `nonlinear` (v, a, b, c).
        self._inputs = (self.work[3], self.work[2], self.work[0], self.work[1])
        # For real `lin`, `E` and `E2` are real: multiplying the real and imaginary parts by them (real views,
        # trailing axis of 2) rounds each component once, exactly as the complex product with a zero imaginary
        # part does, at half the arithmetic.
        self._real_init: tuple[Tensor, Tensor, Tensor, Tensor] | None = None
        if not lin.is_complex():
            rdt = self.v.real.dtype
            self._real_init = (
                torch.stack([e2.real, e.real, e2.real]).to(rdt)[..., None].repeat_interleave(2, -1),  # [3, rows, *S, 2]
                e.real.to(rdt)[..., None].repeat_interleave(2, -1),  # [rows, *S, 2]
                torch.view_as_real(self.v),
                torch.view_as_real(self.s012),
            )

    @property
    def state(self) -> Tensor:
        """Current state `[B, *S]` (a view into the work buffer: copy it to keep it)."""
        return self.v

    @property
    def batch_size(self) -> int:
        return self.v.shape[0]

    def step(self, active: Tensor | None = None) -> None:
        """Advance by one step h; with `active` (bool `[B]`) only those trajectories move."""
        v, p = self.v, self.nonlinear  # v: the state [B, *S]
        old = None
        if active is not None:
            active = active.reshape(-1, *([1] * (v.ndim - 1)))
            old = v.clone()
        in_v, in_a, in_b, in_c = self._inputs  # padded slots 3, 2, 0, 1 of the work buffer
        p0 = p(in_v)
        if self._real_init is not None:  # real E, E2: the same products on the real views
            c_init, e, v_real, s012_real = self._real_init
            torch.mul(c_init, v_real, out=s012_real)  # [E2 v, E v, E2 v]
            v_real.mul_(e)  # E v
        else:
            torch.mul(self.c_init, v, out=self.s012)  # [E2 v, E v, E2 v]
            v.mul_(self.e)  # E v
        self.s123.addcmul_(self.c_p0, p0)  # a = E2 v + Q N(v)
        p1 = p(in_a)
        self.s03.addcmul_(self.c_p1, p1)  # b = E2 v + Q N(a)
        p2 = p(in_b)
        self.s13.addcmul_(self.c_p2, p2)  # c = E2 a + Q (2 N(b) - N(v))
        p3 = p(in_c)
        v.addcmul_(self.c_p3, p3)  # E v + f1 N(v) + 2 f2 (N(a) + N(b)) + f3 N(c)
        if old is not None:
            torch.where(active, v, old, out=v)

    def advance(self, n_steps: int) -> Tensor:
        """Take `n_steps` steps (on one thread on CPU) and return the state `[B, *S]` (a view, see `state`)."""
        with single_threaded(self.v.device):
            for _ in range(int(n_steps)):
                self.step()
        return self.v


def etdrk4_rollout(
    stepper: ETDRK4,
    n_steps: int,
    save_every: int,
    burn_in_steps: int | Tensor = 0,
    observe: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """Run `stepper` through a per-trajectory burn-in, then store a frame every `save_every` steps.

    burn_in_steps: int, or int64 `[B]` per trajectory; those steps are run first and discarded. Trajectories
    with fewer burn-in steps start later (they are held fixed while the others run), so that all of them
    reach the end of their burn-in at the same loop iteration. After burn-in, `n_steps` further steps are
    taken. observe: maps the state `[B, *S]` to a stored frame `[B, *F]` (e.g. an inverse FFT), default a
    copy of the state. Returns `[B, n_steps // save_every + 1, *F]`, frame 0 being the state right after
    burn-in. On CPU the loop runs on one torch thread (`single_threaded`).
    """
    if n_steps < 0 or save_every < 1:
        raise ValueError(f"need n_steps >= 0 and save_every >= 1, got {n_steps} and {save_every}")
    observe = observe or (lambda v: v.clone())
    batch, device = stepper.batch_size, stepper.v.device
    if isinstance(burn_in_steps, Tensor):
        burn = burn_in_steps.to(device=device, dtype=torch.int64).reshape(batch)
        if int(burn.min()) < 0:
            raise ValueError("burn_in_steps must be >= 0")
        max_burn = int(burn.max())
        start = max_burn - burn  # first loop iteration at which each trajectory moves
        n_masked = int(start.max())
    else:
        if burn_in_steps < 0:
            raise ValueError(f"burn_in_steps must be >= 0, got {burn_in_steps}")
        max_burn, start, n_masked = int(burn_in_steps), None, 0
    n_saved = n_steps // save_every + 1
    with single_threaded(device):
        for i in range(max_burn):
            stepper.step(start <= i if i < n_masked else None)
        first = observe(stepper.state)
        frames = torch.empty(batch, n_saved, *first.shape[1:], dtype=first.dtype, device=first.device)
        frames[:, 0] = first
        for j in range(1, n_saved):
            for _ in range(save_every):
                stepper.step()
            frames[:, j] = observe(stepper.state)
    return frames
