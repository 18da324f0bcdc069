"""Orthonormal spectral transforms of a grid, one kind per axis, truncated to the lowest modes (the `t1` model's one
forward and one inverse transform).

Each spatial axis of `[B, C, *space]` is transformed by one of three kinds (`axis_kinds`):

* ``dct``: the orthonormal DCT-II (`data_gen.transforms.dct2(., norm="ortho")`, written on torch's FFT). The basis of
  an axis with walls: its cosines have zero slope at both ends, so the transform makes no jump where the axis ends.
  Coefficients 0 .. k - 1 are kept (the last has k - 1 half-periods over the axis).
* ``rfft``: the orthonormal real FFT of a periodic axis (the last periodic one): frequencies 0 .. k.
* ``fft``: the orthonormal complex FFT of the other periodic axes, taken after the ``rfft`` axis: frequencies
  -k .. k, in FFT order (0, 1, .., k, -k, .., -1).

`n_modes` m of an axis sets its shortest kept wavelength, about 2 / m of the axis on every kind: the first m
cosines on a ``dct`` axis (the last has (m - 1) / 2 periods), frequencies 0 .. m // 2 on an ``rfft`` axis, and
-(m // 2) .. m // 2 on an ``fft`` axis. The kept frequencies of an ``fft`` axis are symmetric about 0, so that the
spectrum of any real field restricted to them is the spectrum of a real field: the inverse transform's output then
holds exactly the kept modes (an asymmetric choice, as FNO's 0 .. m / 2 - 1 and -m / 2 .. -1, leaks the
Hermitian partner of -m / 2 into +m / 2). A weight tensor holds one slot per kept coefficient (`AxisModes.slots`); an
axis with fewer points holds fewer modes, all of which it keeps, and the weights of the slots it lacks act on
nothing there (the lowest slots of each end are used), as when FNO runs on a coarse grid.

Orthonormal: every kind keeps sums of squares (the ``rfft`` one counting each frequency other than 0 and n / 2 twice),
so white noise of variance s^2 gives coefficients of variance s^2, the premise of T1's variance-preserving
initialisation. All transforms run along a contiguous last axis (the others are moved there and back).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor

from data_gen.transforms import dct2, idct2

AXIS_KINDS = ("dct", "rfft", "fft")


def axis_kinds(periodic: Sequence[bool], dct_everywhere: bool) -> tuple[str, ...]:
    """The transform of each axis: ``dct`` on non-periodic axes (and on every axis with `dct_everywhere`), ``rfft``
    on the last periodic axis, ``fft`` on the other periodic ones."""
    kinds = ["dct" if dct_everywhere or not wraps else "fft" for wraps in periodic]
    if "fft" in kinds:
        kinds[len(kinds) - 1 - kinds[::-1].index("fft")] = "rfft"
    return tuple(kinds)


@dataclass(frozen=True)
class AxisModes:
    """The modes one axis keeps: its transform `kind`, its `n` points and the `n_modes` asked for.

    The transform of the axis has `length` coefficients; the first `head` and the last `tail` of them are kept, and
    they sit in the first `head` and last `tail` of the `slots` weight slots (`tail` is 0 except on ``fft`` axes).
    """

    kind: str
    n: int
    n_modes: int

    def __post_init__(self) -> None:
        if self.kind not in AXIS_KINDS or self.n < 1 or self.n_modes < 1:
            raise ValueError(f"an axis needs a kind in {AXIS_KINDS}, n >= 1 and n_modes >= 1, got {self}")

    @property
    def length(self) -> int:
        """Coefficients of the axis's transform."""
        return self.n // 2 + 1 if self.kind == "rfft" else self.n

    @property
    def slots(self) -> int:
        """Weight slots for `n_modes` (the coefficients kept on a grid that holds them all)."""
        highest = self.n_modes // 2
        return {"dct": self.n_modes, "rfft": highest + 1, "fft": 2 * highest + 1}[self.kind]

    @property
    def holds_all(self) -> bool:
        """Whether the axis has no frequency beyond those asked for (then all of its coefficients are kept)."""
        return self.n <= self.n_modes if self.kind == "dct" else self.n // 2 <= self.n_modes // 2

    @property
    def head(self) -> int:
        if self.holds_all:
            return {"dct": self.n, "rfft": self.n // 2 + 1, "fft": self.n - self.n // 2}[self.kind]
        return self.n_modes if self.kind == "dct" else self.n_modes // 2 + 1

    @property
    def tail(self) -> int:
        if self.kind != "fft":
            return 0
        return self.n // 2 if self.holds_all else self.n_modes // 2

    @property
    def kept(self) -> int:
        """Coefficients kept on this axis."""
        return self.head + self.tail


def keep_ends(t: Tensor, dim: int, head: int, tail: int) -> Tensor:
    """The first `head` and the last `tail` entries of `t` along `dim`, in that order."""
    first = t.narrow(dim, 0, head)
    if not tail:
        return first
    return torch.cat([first, t.narrow(dim, t.shape[dim] - tail, tail)], dim=dim)


def spread_ends(t: Tensor, dim: int, head: int, length: int) -> Tensor:
    """Inverse of `keep_ends` onto `length` entries: the first `head` entries of `t` at the start, the others at the
    end, zeros between."""
    tail = t.shape[dim] - head
    gap = list(t.shape)
    gap[dim] = length - head - tail
    return torch.cat([t.narrow(dim, 0, head), t.new_zeros(gap), t.narrow(dim, head, tail)], dim=dim)


def along_dim(fn: Callable[[Tensor], Tensor], t: Tensor, dim: int) -> Tensor:
    """Apply a last-axis transform `fn` along `dim` of `t`; a complex `t` has `fn` (real-linear) applied to its real
    and imaginary parts."""
    if t.is_complex():
        return torch.complex(along_dim(fn, t.real, dim), along_dim(fn, t.imag, dim))
    if dim in (-1, t.dim() - 1):
        return fn(t.contiguous())
    return fn(t.movedim(dim, -1).contiguous()).movedim(-1, dim)


class GridTransform:
    """The truncated per-axis transform of `[B, C, *space]` fields on one grid shape (no parameters).

    `forward: [B, C, *shape] real -> [B, C, *kept]`, complex when any axis is an FFT one; `inverse` maps such
    coefficients (any channel count) back to `[B, C', *shape]` real fields, the dropped modes set to zero, so
    `inverse(forward(x))` is the projection of `x` onto the kept modes.
    """

    def __init__(self, shape: Sequence[int], kinds: Sequence[str], n_modes: Sequence[int]) -> None:
        if not len(shape) == len(kinds) == len(n_modes):
            raise ValueError(f"need one kind and one n_modes per axis of {tuple(shape)}, got {kinds} and {n_modes}")
        self.axes = tuple(AxisModes(kind, int(n), int(m)) for kind, n, m in zip(kinds, shape, n_modes, strict=True))
        self.ndim = len(self.axes)

    @property
    def is_complex(self) -> bool:
        return any(axis.kind != "dct" for axis in self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(axis.n for axis in self.axes)

    @property
    def kept_shape(self) -> tuple[int, ...]:
        return tuple(axis.kept for axis in self.axes)

    @property
    def slot_shape(self) -> tuple[int, ...]:
        return tuple(axis.slots for axis in self.axes)

    def _dim(self, axis: int) -> int:
        return axis - self.ndim  # counted from the end: a batch and a channel axis lead

    def _order(self, *kinds: str) -> list[int]:
        return [i for kind in kinds for i, axis in enumerate(self.axes) if axis.kind == kind]

    def forward(self, x: Tensor) -> Tensor:
        """`[B, C, *shape]` real -> `[B, C, *kept_shape]` kept coefficients (DCT axes first, while still real)."""
        if tuple(x.shape[-self.ndim:]) != self.shape:
            raise ValueError(f"the transform is set up for the grid {self.shape}, got fields of shape {tuple(x.shape)}")
        z = x
        for i in self._order("dct", "rfft", "fft"):
            axis, dim = self.axes[i], self._dim(i)
            if axis.kind == "dct":
                z = along_dim(partial(dct2, norm="ortho"), z, dim)
            elif axis.kind == "rfft":
                z = torch.fft.rfft(z, dim=dim, norm="ortho")
            else:
                z = torch.fft.fft(z, dim=dim, norm="ortho")
            z = keep_ends(z, dim, axis.head, axis.tail)
        return z

    def inverse(self, z: Tensor) -> Tensor:
        """`[B, C, *kept_shape]` coefficients -> `[B, C, *shape]` real fields (the reverse order of `forward`)."""
        if tuple(z.shape[-self.ndim:]) != self.kept_shape:
            raise ValueError(f"expected coefficients of kept shape {self.kept_shape}, got {tuple(z.shape)}")
        for i in reversed(self._order("dct", "rfft", "fft")):
            axis, dim = self.axes[i], self._dim(i)
            if axis.kind == "rfft":  # irfft pads the missing frequencies with zeros itself
                z = torch.fft.irfft(z, n=axis.n, dim=dim, norm="ortho")
                continue
            z = spread_ends(z, dim, axis.head, axis.n)
            if axis.kind == "fft":
                z = torch.fft.ifft(z, dim=dim, norm="ortho")
            else:
                z = along_dim(partial(idct2, norm="ortho"), z, dim)
        return z.real if z.is_complex() else z

    def kept_slots(self, weight: Tensor, axis: int, dims: Sequence[int]) -> Tensor:
        """`weight` with its slot axes `dims` (each of `slot_shape[axis]` entries, for grid axis `axis`) cut to the
        slots of the modes this grid keeps."""
        modes = self.axes[axis]
        for dim in dims:
            if weight.shape[dim] != modes.slots:
                raise ValueError(f"weight axis {dim} has {weight.shape[dim]} slots, the grid axis {axis} {modes.slots}")
            weight = keep_ends(weight, dim, modes.head, modes.tail)
        return weight

    def coefficient_count(self) -> int:
        """Kept coefficients on this grid (complex ones counted once)."""
        return math.prod(self.kept_shape)
