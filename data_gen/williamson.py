"""Williamson et al. (1992) test cases of the shallow-water equations on the sphere, as initial states.

"A standard test set for numerical approximations to the shallow water equations in spherical geometry"
(J. Comput. Phys. 102): test case 2, a steady geostrophic flow (an exact steady state: a solver must keep it), and
test case 6, the wavenumber-4 Rossby-Haurwitz wave (smooth, balanced and evolving). They check the solver of
`data_gen.swe`; the generator itself starts from random jets (`data_gen.swe.sample_jets`). Each state is the
height `[1, n_lat, n_lon]` (m) and the wind `[1, 2, n_lat, n_lon]` (m/s, eastward and northward) on a solver's
Gaussian grid, in the solver's radius, rotation rate and gravity.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from data_gen.swe import SphericalShallowWater

__all__ = ["rossby_haurwitz_state", "williamson2_state"]


def williamson2_state(solver: SphericalShallowWater) -> tuple[Tensor, Tensor]:
    """Williamson et al. (1992) test case 2 (alpha = 0), steady geostrophic flow: height `[1, n_lat, n_lon]` (m) and
    wind `[1, 2, n_lat, n_lon]` (m/s) on the solver's grid; an exact steady state of the equations."""
    a, omega, g = solver.radius, solver.omega, solver.gravity
    u0, gh0 = 2 * math.pi * a / (12 * 86400.0), 2.94e4
    lat = solver.latitudes[:, None].expand(-1, solver.n_lon)
    u = u0 * torch.cos(lat)
    height = (gh0 - (a * omega * u0 + 0.5 * u0**2) * torch.sin(lat) ** 2) / g
    return height[None], torch.stack([u, torch.zeros_like(u)])[None]


def rossby_haurwitz_state(solver: SphericalShallowWater) -> tuple[Tensor, Tensor]:
    """Williamson test case 6, the wavenumber-4 Rossby-Haurwitz wave (a smooth, balanced, evolving flow): height
    `[1, n_lat, n_lon]` (m) and wind `[1, 2, n_lat, n_lon]` (m/s) on the solver's grid."""
    a, big_omega, g = solver.radius, solver.omega, solver.gravity
    w = k = 7.848e-6
    r, h0 = 4, 8000.0
    lat, lon = solver.latitudes[:, None], solver.longitudes[None, :]
    c = torch.cos(lat)
    u = a * w * c + a * k * c ** (r - 1) * (r * torch.sin(lat) ** 2 - c**2) * torch.cos(r * lon)
    v = -a * k * r * c ** (r - 1) * torch.sin(lat) * torch.sin(r * lon)
    big_a = (0.5 * w * (2 * big_omega + w) * c**2
             + 0.25 * k**2 * c ** (2 * r) * ((r + 1) * c**2 + (2 * r**2 - r - 2) - 2 * r**2 * c**-2))
    big_b = 2 * (big_omega + w) * k / ((r + 1) * (r + 2)) * c**r * ((r**2 + 2 * r + 2) - (r + 1) ** 2 * c**2)
    big_c = 0.25 * k**2 * c ** (2 * r) * ((r + 1) * c**2 - (r + 2))
    height = h0 + a**2 * (big_a + big_b * torch.cos(r * lon) + big_c * torch.cos(2 * r * lon)) / g
    return height[None], torch.stack([u, v])[None]
