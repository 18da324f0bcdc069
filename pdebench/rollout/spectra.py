"""Spectral views of a frame on a dataset's grid: energy per wavenumber shell and error energy per band.

Why: a rollout can keep a small RMSE while it loses its small scales (a blurry forecast), or keep its large scales
while noise piles up at the grid scale; band errors and the ratio of predicted to true energy spectra show which.

The spectrum is the full one, not one quadrant:

* ``periodic`` and ``box`` grids: the discrete Fourier transform over every space axis (`torch.fft.rfftn`, norm
  ``forward``). A mode's shell is the length of its integer mode-number vector, `|m| = sqrt(m_1^2 + ... + m_d^2)`,
  with signed mode numbers on every axis (so `(3, -4)` and `(3, 4)` both lie on shell 5) and the conjugate half of
  the last axis counted through a weight of 2. With these weights Parseval holds exactly: the energies of all
  shells add up to the spatial mean of `x^2`. On a ``box`` grid the transform treats the field as periodic (walls
  make a jump there that leaks into high modes; the bands are still comparable between models).
* ``sphere`` grids: real spherical harmonics (torch-harmonics' `RealSHT`, orthonormal), shell = degree `l`, the
  energy of a degree the sum over its orders (orders `m > 0` twice). Where the grid's latitudes are not
  torch-harmonics' own quadrature nodes (e.g. cell-centred equiangular rows), its Legendre matrices are evaluated at
  the grid's latitudes and combined with the grid's area weights, so energies add up to the area-weighted mean of
  `x^2` up to the quadrature's accuracy.

Bands are given by two edges `(a, b)` in shell units (mode numbers or degrees): low `s < a`, mid `a <= s < b`,
high `s >= b`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from pdebench.data.grid import Grid

BAND_NAMES = ("low", "mid", "high")


class GridSpectrum:
    """Energy spectra and band energies of fields `[..., *space]` on `grid` (float64, on the input's device).

    Args:
        grid: the dataset's grid.
        band_edges: `(a, b)` with `0 < a < b`: shells below `a` are "low", from `a` below `b` "mid", the rest "high".
    """

    def __init__(self, grid: Grid, band_edges: Sequence[float]) -> None:
        edges = [float(e) for e in band_edges]
        if len(edges) != 2 or not 0 < edges[0] < edges[1]:
            raise ValueError(f"spectral band edges must be two numbers 0 < a < b, got {list(band_edges)}")
        self.grid, self.band_edges = grid, tuple(edges)
        if grid.kind == "sphere":
            self._sht, self.shells = _sphere_transform(grid)
        else:
            self._sht = None
            self.shells, self._mode_weight, self._shell_index, self._radius = _fourier_shells(grid.shape)
        self._cache: dict[tuple[torch.device, str], tuple[Tensor, Tensor]] = {}

    @property
    def n_shells(self) -> int:
        """Number of shells of `energy_spectrum` (shell `s` holds wavenumbers that round to `s`)."""
        return int(self.shells.shape[0])

    def _mode_energy(self, x: Tensor) -> Tensor:
        """Energy of every coefficient of `x [..., *space]`: `[..., n_coefficients]` float64 (sums to mean x^2)."""
        x = x.to(torch.float64)
        nd = self.grid.ndim
        if self._sht is not None:
            sht = self._sht.to(x.device)
            coeff = sht(x)  # [..., lmax, mmax]
            power = coeff.real**2 + coeff.imag**2
            factor = torch.full((power.shape[-1],), 2.0, dtype=torch.float64, device=x.device)
            factor[0] = 1.0
            return (power * factor).flatten(-2) / (4.0 * np.pi)
        spec = torch.fft.rfftn(x, dim=tuple(range(-nd, 0)), norm="forward")
        power = spec.real**2 + spec.imag**2
        weight = self._on(x.device)[0]
        return (power * weight).flatten(-nd)

    def _on(self, device: torch.device) -> tuple[Tensor, Tensor]:
        key = (device, "fourier")
        if key not in self._cache:
            self._cache[key] = (torch.as_tensor(self._mode_weight, device=device),
                                torch.as_tensor(self._shell_index.reshape(-1), device=device))
        return self._cache[key]

    def _coefficient_shells(self) -> np.ndarray:
        if self._sht is not None:
            lmax, mmax = self._sht.lmax, self._sht.mmax
            return np.repeat(np.arange(lmax, dtype=np.float64), mmax)
        return self._radius.reshape(-1)

    def energy_spectrum(self, x: Tensor) -> Tensor:
        """`x [..., *space]` -> energy per shell `[..., n_shells]` float64 (sums to the weighted mean of x^2)."""
        energy = self._mode_energy(x)
        if self._sht is not None:
            lmax, mmax = self._sht.lmax, self._sht.mmax
            return energy.reshape(*energy.shape[:-1], lmax, mmax).sum(-1)
        index = self._on(x.device)[1]
        out = torch.zeros(*energy.shape[:-1], self.n_shells, dtype=torch.float64, device=x.device)
        return out.index_add_(-1, index, energy)

    def band_energy(self, x: Tensor) -> Tensor:
        """`x [..., *space]` -> energy in the low, mid and high bands `[..., 3]` float64 (they add up to mean x^2).

        Bands split by the exact wavenumber of each coefficient (not its rounded shell).
        """
        energy = self._mode_energy(x)
        band = torch.as_tensor(self._band_of_coefficient(), device=x.device)
        out = torch.zeros(*energy.shape[:-1], 3, dtype=torch.float64, device=x.device)
        return out.index_add_(-1, band, energy)

    def _band_of_coefficient(self) -> np.ndarray:
        if not hasattr(self, "_bands"):
            radius = self._coefficient_shells()
            a, b = self.band_edges
            self._bands = np.where(radius < a, 0, np.where(radius < b, 1, 2)).astype(np.int64)
        return self._bands

    def band_counts(self) -> dict[str, int]:
        """How many (complex) coefficients fall in each band; a band with none is reported as such."""
        counts = np.bincount(self._band_of_coefficient(), minlength=3)
        return {name: int(c) for name, c in zip(BAND_NAMES, counts, strict=True)}


def _fourier_shells(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shell numbers `[n_shells]`, and per coefficient of the rfftn spectrum of `shape`: Parseval weight (2 for a
    coefficient whose conjugate is not stored), shell index and exact radius `|m|`."""
    axes = []
    for i, n in enumerate(shape):
        m = np.fft.rfftfreq(n, 1.0 / n) if i == len(shape) - 1 else np.fft.fftfreq(n, 1.0 / n)
        axes.append(np.abs(m))
    mesh = np.meshgrid(*axes, indexing="ij")
    radius = np.sqrt(sum(m**2 for m in mesh))
    n_last = shape[-1]
    last = np.arange(n_last // 2 + 1)
    weight_last = np.where((last == 0) | ((n_last % 2 == 0) & (last == n_last // 2)), 1.0, 2.0)
    weight = np.broadcast_to(weight_last, radius.shape).astype(np.float64).copy()
    shell = np.rint(radius).astype(np.int64)
    shells = np.arange(int(shell.max()) + 1, dtype=np.float64)
    return shells, weight, shell, radius


def _colatitudes(grid: Grid) -> np.ndarray:
    return np.deg2rad(90.0 - grid.coordinates[0])


def _sphere_transform(grid: Grid) -> tuple[torch.nn.Module, np.ndarray]:
    """torch-harmonics' RealSHT for the grid; its quadrature replaced by the grid's own where the nodes differ."""
    from torch_harmonics import RealSHT
    from torch_harmonics.legendre import _precompute_legpoly
    from torch_harmonics.quadrature import clenshaw_curtiss_weights, legendre_gauss_weights

    n_lat, n_lon = grid.shape
    theta = _colatitudes(grid)
    for kind, nodes in (("legendre-gauss", legendre_gauss_weights), ("equiangular", clenshaw_curtiss_weights)):
        cost, _ = nodes(n_lat, -1, 1)
        native = np.flip(np.arccos(np.asarray(cost, dtype=np.float64)))
        if np.allclose(native, theta, atol=1e-10):
            sht = RealSHT(n_lat, n_lon, grid=kind, norm="ortho").double()
            return sht, np.arange(sht.lmax, dtype=np.float64)
    # Rows that are not a torch-harmonics quadrature (e.g. cell centres): Legendre matrices at the grid's own
    # colatitudes, weighted by the grid's cell areas expressed in d(cos theta) (they sum to 2 over the sphere).
    sht = RealSHT(n_lat, n_lon, grid="equiangular", norm="ortho").double()
    area = grid.weights()[:, 0]
    quad = torch.as_tensor(2.0 * area / area.sum(), dtype=torch.float64)
    pct = _precompute_legpoly(sht.mmax, sht.lmax, torch.as_tensor(theta, dtype=torch.float64), norm="ortho",
                              csphase=True)
    sht.weights = torch.einsum("mlk,k->mlk", pct.to(torch.float64), quad).contiguous()
    return sht, np.arange(sht.lmax, dtype=np.float64)
