"""Real-to-real transforms along the last axis, via the `torch.fft.rfft` of an even or odd extension of length 2n.

Unnormalised as scipy.fft's `dct(type=2)`, `dst(type=1)`, `dst(type=2)`; each `i...` is the exact inverse.
`dct2(x, norm="ortho")` and `idct2(v, norm="ortho")` are scipy's orthonormal DCT-II and its inverse (the transform of
the `t1` model, which keeps the variance of white noise per coefficient). They are
the eigenbases of the 3-point Laplacian with walls: `dct2` with homogeneous Neumann walls at cell faces (values at
cell centres), `dst1` with Dirichlet walls (values at faces, walls included). `[..., n]` tensors of any real dtype
(the solvers use float64); a transform runs along the contiguous last axis, which keeps it batch-invariant on CPU
(see `data_gen.spectral`), and `along_axis` applies one along the second-last axis.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["DCT_NORMS", "along_axis", "dct2", "dst1", "dst2", "half_sample_angles", "idct2", "idst1", "ortho_scale"]


def half_sample_angles(n: int, like: Tensor) -> tuple[Tensor, Tensor]:
    """`cos(pi k / (2n))`, `sin(pi k / (2n))` for `k = 0 .. n` (dtype and device of `like`)."""
    phi = torch.arange(n + 1, dtype=like.dtype, device=like.device) * (math.pi / (2 * n))
    return torch.cos(phi), torch.sin(phi)


DCT_NORMS = (None, "ortho")


def ortho_scale(n: int, like: Tensor) -> Tensor:
    """`[n]` factors taking the unnormalised DCT-II of length `n` to the orthonormal one: `1 / sqrt(4n)` for `k = 0`,
    `1 / sqrt(2n)` for `k >= 1` (scipy.fft's `norm="ortho"`; dtype and device of `like`)."""
    scale = torch.full((n,), 1.0 / math.sqrt(2 * n), dtype=like.dtype, device=like.device)
    scale[0] = 1.0 / math.sqrt(4 * n)
    return scale


def _check_norm(norm: str | None) -> None:
    if norm not in DCT_NORMS:
        raise ValueError(f"norm must be None or 'ortho', got {norm!r}")


def dct2(x: Tensor, norm: str | None = None) -> Tensor:
    """DCT-II along the last axis: `X_k = 2 sum_j x_j cos(pi k (2j + 1) / (2n))`, `[..., n] -> [..., n]`; with
    `norm="ortho"` each `X_k` times `ortho_scale` (an orthogonal matrix: sums of squares are kept).

    The eigenbasis of the cell-centred 3-point Laplacian with homogeneous Neumann walls.
    """
    _check_norm(norm)
    n = x.shape[-1]
    spec = torch.fft.rfft(torch.cat([x, x.flip(-1)], dim=-1))[..., :n]  # = exp(i pi k / 2n) X_k
    c, s = half_sample_angles(n, x)
    out = spec.real * c[:n] + spec.imag * s[:n]
    return out * ortho_scale(n, out) if norm == "ortho" else out


def idct2(v: Tensor, norm: str | None = None) -> Tensor:
    """Inverse of `dct2(., norm)` along the last axis, `[..., n] -> [..., n]`."""
    _check_norm(norm)
    n = v.shape[-1]
    if norm == "ortho":
        v = v / ortho_scale(n, v)
    c, s = half_sample_angles(n, v)
    pad = torch.zeros_like(v[..., :1])
    spec = torch.complex(torch.cat([v * c[:n], pad], -1), torch.cat([v * s[:n], pad], -1))
    return torch.fft.irfft(spec, n=2 * n)[..., :n]


def dst1(f: Tensor) -> Tensor:
    """DST-I along the last axis of face values including both walls: `[..., n + 1] -> [..., n + 1]`.

    `F_k = 2 sum_{j=1}^{n-1} f_j sin(pi k j / n)` for `k = 1 .. n - 1` and `F_0 = F_n = 0`; the wall values `f_0`,
    `f_n` are taken as the zeros of a Dirichlet wall (they are ignored). The eigenbasis of the face-centred
    3-point Laplacian with Dirichlet walls.
    """
    n = f.shape[-1] - 1
    inner = f[..., 1:n]
    zero = torch.zeros_like(f[..., :1])
    spec = torch.fft.rfft(torch.cat([zero, inner, zero, -inner.flip(-1)], dim=-1))  # = -i F_k
    out = -spec.imag
    out[..., 0] = 0.0
    out[..., n] = 0.0
    return out


def idst1(v: Tensor) -> Tensor:
    """Inverse of `dst1` along the last axis, `[..., n + 1] -> [..., n + 1]`, with exact zeros at both walls."""
    n = v.shape[-1] - 1
    inner = v.clone()
    inner[..., 0] = 0.0
    inner[..., n] = 0.0
    out = torch.fft.irfft(torch.complex(torch.zeros_like(inner), -inner), n=2 * n)[..., : n + 1]
    out[..., 0] = 0.0
    out[..., n] = 0.0
    return out


def dst2(x: Tensor) -> Tensor:
    """DST-II along the last axis: `S_k = 2 sum_j x_j sin(pi k (2j + 1) / (2n))` for `k = 1 .. n`, returned as
    `[..., n + 1]` with index `k` (entry 0 is 0)."""
    n = x.shape[-1]
    spec = torch.fft.rfft(torch.cat([x, -x.flip(-1)], dim=-1))  # = -i exp(i pi k / 2n) S_k, k = 0 .. n
    c, s = half_sample_angles(n, x)
    out = spec.real * s - spec.imag * c
    out[..., 0] = 0.0
    return out


def along_axis(fn: Callable[[Tensor], Tensor], x: Tensor, axis: int) -> Tensor:
    """Apply a last-axis transform `fn` along axis `axis` (-1 or -2) of `x`, keeping the other axes' order (the
    transposed copy is made contiguous, so `fn` still runs along the contiguous last axis)."""
    if axis == -1:
        return fn(x)
    return fn(x.transpose(-1, -2).contiguous()).transpose(-1, -2)
