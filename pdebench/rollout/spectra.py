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
* ``sphere`` grids: spherical harmonics, shell = degree `l`. The longitude transform is the Fourier one above
  (order `m`, conjugates counted through a weight of 2); along latitude, for each order `m`, the associated Legendre
  functions of degrees `m <= l < n_lat` (torch-harmonics' `legpoly`, the truncation of its `RealSHT`) evaluated at
  the grid's latitudes are made orthonormal in the grid's own quadrature (`Grid.row_weights`) by a QR factorisation
  taken in order of increasing degree, and completed to an orthonormal basis of all `n_lat` rows. On a Gaussian
  grid the Legendre functions are already orthonormal in its Gauss–Legendre quadrature, so the degree energies are
  torch-harmonics' `RealSHT` ones; on other rows (cell-centred equiangular) the QR removes what the quadrature
  leaves of the overlap between degrees. The rest of the basis holds what no degree below `n_lat` represents (the
  grid-scale remainder; orders `m >= n_lat` lie there whole): it is the last shell, `n_lat` ("degree `n_lat` and
  above"), in the high band. Because the basis is orthonormal in the grid's quadrature, the shells add up exactly
  to the quadrature-weighted mean of `x^2`, the same mean the pointwise metrics use.

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
            self._basis, degree = _sphere_basis(grid)  # [M, K, K], [K, M]
            self._radius = degree
            n_lat = grid.shape[0]
            self._shell_index = np.where(np.isfinite(degree), degree, n_lat).astype(np.int64)
            self._mode_weight = np.broadcast_to(_conjugate_weight(grid.shape[1]), degree.shape).copy()
            self.shells = np.arange(n_lat + 1, dtype=np.float64)
        else:
            if grid.quadrature != "uniform":
                raise ValueError(f"Fourier spectra need uniform quadrature; this {grid.kind} grid has "
                                 f"{grid.quadrature!r}")
            self._basis = None
            self.shells, self._mode_weight, self._shell_index, self._radius = _fourier_shells(grid.shape)
        self._cache: dict[torch.device, tuple[Tensor, Tensor, Tensor | None]] = {}

    @property
    def n_shells(self) -> int:
        """Number of shells of `energy_spectrum` (shell `s` holds wavenumbers that round to `s`; on the sphere the
        last one, `n_lat`, the grid-scale remainder)."""
        return int(self.shells.shape[0])

    def _on(self, device: torch.device) -> tuple[Tensor, Tensor, Tensor | None]:
        """Per-coefficient Parseval weight and shell index, and the sphere's latitude basis, on `device`."""
        if device not in self._cache:
            basis = None if self._basis is None else torch.as_tensor(self._basis, device=device)
            self._cache[device] = (torch.as_tensor(self._mode_weight, device=device),
                                   torch.as_tensor(self._shell_index.reshape(-1), device=device), basis)
        return self._cache[device]

    def _mode_energy(self, x: Tensor) -> Tensor:
        """Energy of every coefficient of `x [..., *space]`: `[..., n_coefficients]` float64; they add up to the
        quadrature-weighted mean of `x^2`."""
        x = x.to(torch.float64)
        nd = self.grid.ndim
        weight, _, basis = self._on(x.device)
        if basis is not None:
            spec = torch.fft.rfft(x, dim=-1, norm="forward")  # [..., K, M]
            coeff_re = torch.einsum("mjk,...km->...jm", basis, spec.real)
            coeff_im = torch.einsum("mjk,...km->...jm", basis, spec.imag)
            return ((coeff_re**2 + coeff_im**2) * weight).flatten(-2)
        spec = torch.fft.rfftn(x, dim=tuple(range(-nd, 0)), norm="forward")
        power = spec.real**2 + spec.imag**2
        return (power * weight).flatten(-nd)

    def _coefficient_shells(self) -> np.ndarray:
        """Exact wavenumber of every coefficient (mode-vector length or degree; inf for the sphere's remainder)."""
        return self._radius.reshape(-1)

    def energy_spectrum(self, x: Tensor) -> Tensor:
        """`x [..., *space]` -> energy per shell `[..., n_shells]` float64 (sums to the weighted mean of x^2)."""
        energy = self._mode_energy(x)
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
    weight = np.broadcast_to(_conjugate_weight(shape[-1]), radius.shape).astype(np.float64).copy()
    shell = np.rint(radius).astype(np.int64)
    shells = np.arange(int(shell.max()) + 1, dtype=np.float64)
    return shells, weight, shell, radius


def _conjugate_weight(n: int) -> np.ndarray:
    """Parseval weight of each `rfft` coefficient of a length-`n` axis `[n // 2 + 1]`: 2 where the conjugate
    coefficient is not stored, 1 for the mean and (even `n`) the Nyquist coefficient."""
    index = np.arange(n // 2 + 1)
    return np.where((index == 0) | ((n % 2 == 0) & (index == n // 2)), 1.0, 2.0)


def _sphere_basis(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """The latitude basis of each longitude order and the degree of each of its vectors (module docstring).

    Returns `basis [M, K, K]` float64 (M = n_lon // 2 + 1 orders, K = n_lat rows), row `j` of `basis[m]` the `j`-th
    orthonormal vector times the square roots of the normalised row weights, so that `basis[m] @ f` are the
    coefficients of a row profile `f [K]`; and `degree [K, M]`: `m + j` for the vectors spanned by the Legendre
    functions of degree `< n_lat`, inf for the remainder.
    """
    import torch_harmonics.legendre as legendre

    n_lat, n_lon = grid.shape
    n_orders = n_lon // 2 + 1
    colat = np.deg2rad(90.0 - grid.coordinates[0])
    root = np.sqrt(grid.row_weights() / 2.0)  # normalised row weights sum to 1
    cos = torch.as_tensor(np.cos(colat), dtype=torch.float64)
    legendre_values = legendre.legpoly(min(n_orders, n_lat), n_lat, cos, norm="ortho").numpy()  # [m, l, K]
    basis = np.empty((n_orders, n_lat, n_lat))
    degree = np.full((n_lat, n_orders), np.inf)
    for m in range(n_orders):
        q = np.eye(n_lat)
        if m < n_lat:  # degrees m .. n_lat - 1 of this order, orthonormalised in that order
            q, _ = np.linalg.qr(root[:, None] * legendre_values[m, m:, :].T, mode="complete")
            degree[: n_lat - m, m] = np.arange(m, n_lat)
        basis[m] = q.T * root[None, :]
    return basis, degree
