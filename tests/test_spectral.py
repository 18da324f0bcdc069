"""Tests of the generic spectral toolkit (`data_gen.spectral`): wavenumbers, 2/3 masks, batched ETDRK4; and of the
real-to-real transforms beside it (`data_gen.transforms`)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.fft
import torch

from data_gen.spectral import (
    ETDRK4,
    dealias_cutoff,
    dealias_mask,
    etdrk4_coefficients,
    etdrk4_rollout,
    irfftn,
    rfft_mode_numbers,
    rfft_shape,
    rfft_wavenumbers,
    rfftn,
)
from data_gen.transforms import along_axis, dct2, dst1, dst2, idct2, idst1

F64, C128 = torch.float64, torch.complex128


def _phi(k: int, z: np.ndarray) -> np.ndarray:
    """phi_k(z) = sum_n z^n / (n + k)! by its series, accurate for |z| <= 1 (complex allowed)."""
    z = np.asarray(z, dtype=np.complex128)
    return sum(z**n / math.factorial(n + k) for n in range(30))


def _phi1(z: np.ndarray) -> np.ndarray:
    """(exp(z) - 1) / z without cancellation near z = 0 (complex allowed)."""
    z = np.asarray(z, dtype=np.complex128)
    small = np.abs(z) < 1.0
    safe = np.where(small, 1.0, z)
    return np.where(small, _phi(1, z), (np.exp(safe) - 1.0) / safe)


# ---------------------------------------------------------------- wavenumbers and masks


def test_mode_numbers_follow_fft_order():
    m0, m1 = rfft_mode_numbers((6, 5))
    assert m0.shape == (6, 1) and m1.shape == (1, 3) and m0.dtype == torch.int64
    assert m0.flatten().tolist() == [0, 1, 2, -3, -2, -1]
    assert m1.flatten().tolist() == [0, 1, 2]
    (odd,) = rfft_mode_numbers(7)
    assert odd.tolist() == [0, 1, 2, 3]
    first, _ = rfft_mode_numbers((5, 4))
    assert first.flatten().tolist() == [0, 1, 2, -2, -1]
    assert rfft_shape((6, 5)) == (6, 3) and rfft_shape(8) == (5,)


def test_wavenumbers_1d_per_trajectory_length():
    (k,) = rfft_wavenumbers(8, torch.tensor([2.0, 4.0], dtype=F64))
    assert k.shape == (2, 5) and k.dtype == F64
    expected = [[math.pi * m for m in range(5)], [0.5 * math.pi * m for m in range(5)]]
    np.testing.assert_allclose(k.numpy(), expected, rtol=1e-15)
    (k_float,) = rfft_wavenumbers(8, 4.0)
    assert k_float.shape == (5,)
    np.testing.assert_allclose(k_float.numpy(), expected[1], rtol=1e-15)
    (k_default,) = rfft_wavenumbers(8)  # 2 pi periodic: k = m
    assert k_default.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_wavenumbers_2d_torus_and_batched_per_axis_lengths():
    kx, ky = rfft_wavenumbers((4, 6))
    assert kx.shape == (4, 1) and ky.shape == (1, 4)
    assert kx.flatten().tolist() == [0.0, 1.0, -2.0, -1.0]
    assert ky.flatten().tolist() == [0.0, 1.0, 2.0, 3.0]
    kx, ky = rfft_wavenumbers((4, 6), (2.0 * math.pi, math.pi))
    assert ky.flatten().tolist() == [0.0, 2.0, 4.0, 6.0] and kx.flatten().tolist() == [0.0, 1.0, -2.0, -1.0]
    lengths = torch.tensor([[2.0 * math.pi, math.pi], [math.pi, 4.0 * math.pi]], dtype=F64)
    kx, ky = rfft_wavenumbers((4, 6), lengths)
    assert kx.shape == (2, 4, 1) and ky.shape == (2, 1, 4)
    np.testing.assert_allclose(kx[:, :, 0].numpy(), [[0, 1, -2, -1], [0, 2, -4, -2]], rtol=1e-15)
    np.testing.assert_allclose(ky[:, 0, :].numpy(), [[0, 2, 4, 6], [0, 0.5, 1, 1.5]], rtol=1e-15)
    kx, ky = rfft_wavenumbers((4, 6), torch.tensor([math.pi], dtype=F64))  # [B]: one length for both axes
    np.testing.assert_allclose((kx + ky)[0].numpy(), [[0, 2, 4, 6], [2, 4, 6, 8], [-4, -2, 0, 2], [-2, 0, 2, 4]])
    with pytest.raises(ValueError, match="lengths"):
        rfft_wavenumbers((4, 6), torch.ones(2, 3, dtype=F64))
    with pytest.raises(ValueError, match="one length per axis"):
        rfft_wavenumbers((4, 6), (1.0, 2.0, 3.0))


def test_derivative_by_wavenumbers_is_exact_for_a_2d_trig_field():
    nx, ny, lx, ly = 12, 10, 3.0, 5.0
    x = torch.arange(nx, dtype=F64)[:, None] * lx / nx
    y = torch.arange(ny, dtype=F64)[None, :] * ly / ny
    u = torch.sin(2 * math.pi * 2 * x / lx + 0.3) * torch.cos(2 * math.pi * 3 * y / ly)
    kx, ky = rfft_wavenumbers((nx, ny), (lx, ly))
    du_dy = torch.fft.irfft2(1j * ky * torch.fft.rfft2(u), s=(nx, ny))
    expected = -torch.sin(2 * math.pi * 2 * x / lx + 0.3) * torch.sin(2 * math.pi * 3 * y / ly) * (2 * math.pi * 3 / ly)
    np.testing.assert_allclose(du_dy.numpy(), expected.numpy(), atol=1e-13)


def test_dealias_mask_values_1d_and_2d():
    assert [dealias_cutoff(n) for n in (8, 9, 10, 48, 64)] == [2, 2, 3, 15, 21]
    assert dealias_mask(8).tolist() == [True, True, True, False, False]
    assert dealias_mask(10).tolist() == [True, True, True, True, False, False]
    assert dealias_mask(64).tolist() == [m <= 21 for m in range(33)]
    mask = dealias_mask((6, 6))  # cutoff 1 on both axes; first axis in FFT order 0, 1, 2, -3, -2, -1
    keep_x = [True, True, False, False, False, True]
    keep_y = [True, True, False, False]
    assert mask.shape == (6, 4) and mask.dtype == torch.bool
    assert mask.tolist() == [[a and b for b in keep_y] for a in keep_x]


def test_dealias_mask_cuts_each_axis_at_its_own_length():
    """A 10 x 7 grid keeps |m_x| <= 3 and |m_y| <= 2: swapping the axes' cutoffs, or taking one cutoff for both
    (that of either axis), changes the mask, which a square grid cannot show."""
    mask = dealias_mask((10, 7))  # first axis in FFT order 0..4, -5..-1; second axis 0..3 (rfft)
    keep_x = [True, True, True, True, False, False, False, True, True, True]
    keep_y = [True, True, True, False]
    assert mask.shape == (10, 4)
    assert mask.tolist() == [[a and b for b in keep_y] for a in keep_x]
    assert int(mask.sum()) == 7 * 3  # 7 kept x modes (0, +-1, +-2, +-3) times 3 kept y modes (0, 1, 2)


def test_dealiased_product_has_no_aliasing_in_2d():
    """The masked product of two masked fields on the N grid equals the exact product's kept modes."""
    shape, fine = (12, 12), (36, 36)
    mask = dealias_mask(shape)
    rng = np.random.default_rng(0)

    def random_field() -> torch.Tensor:
        spec = torch.from_numpy(rng.standard_normal((12, 7)) + 1j * rng.standard_normal((12, 7))) * mask
        return torch.fft.irfft2(spec, s=shape)  # a real field made of kept modes only

    a, b = random_field(), random_field()
    coarse = torch.fft.rfft2(a * b) * mask
    # The same product on a 3x finer grid (no aliasing possible), truncated back to the coarse modes.
    up = [torch.fft.irfft2(_embed(torch.fft.rfft2(f), fine), s=fine) * 9.0 for f in (a, b)]
    exact = _restrict(torch.fft.rfft2(up[0] * up[1]), shape) / 9.0 * mask
    np.testing.assert_allclose(coarse.numpy(), exact.numpy(), atol=1e-11)


def _embed(spec: torch.Tensor, fine: tuple[int, int]) -> torch.Tensor:
    """Zero-pad a `[n, n // 2 + 1]` rfft2 spectrum (modes |m| < n / 2 only) into a finer grid's layout."""
    n = spec.shape[0]
    out = torch.zeros(fine[0], fine[1] // 2 + 1, dtype=spec.dtype)
    half = n // 2
    out[:half, : spec.shape[1] - 1] = spec[:half, :-1]
    out[-half + 1 :, : spec.shape[1] - 1] = spec[-half + 1 :, :-1]
    return out


def _restrict(spec: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """The modes |m| < n / 2 of a fine rfft2 spectrum, in the coarse layout (Nyquist rows/column zero)."""
    n = shape[0]
    out = torch.zeros(n, shape[1] // 2 + 1, dtype=spec.dtype)
    half = n // 2
    out[:half, :-1] = spec[:half, : shape[1] // 2]
    out[-half + 1 :, :-1] = spec[-half + 1 :, : shape[1] // 2]
    return out


@pytest.mark.parametrize("shape", [(12, 12), (48, 40), (16, 9), (6, 8, 10)])
def test_rfftn_irfftn_match_torch_and_are_bitwise_batch_invariant(shape):
    """torch's own rfft2 of a lone field differs in the last bit from the same field in a batch (MKL)."""
    d = len(shape)
    u = torch.from_numpy(np.random.default_rng(6).standard_normal((5, *shape)))
    v = rfftn(u, d)
    assert v.shape == (5, *rfft_shape(shape))
    np.testing.assert_allclose(v.numpy(), torch.fft.rfftn(u, dim=tuple(range(-d, 0))).numpy(), atol=1e-12)
    back = irfftn(v, shape)
    np.testing.assert_allclose(back.numpy(), u.numpy(), atol=1e-13)
    for rows in ([0], [3], [1, 2], [4, 0, 2]):
        assert torch.equal(rfftn(u[rows], d), v[rows])
        assert torch.equal(irfftn(v[rows], shape), back[rows])
    assert torch.equal(rfftn(u.reshape(5, 1, *shape), d)[:, 0], v)  # any leading batch axes
    half = irfftn(v[..., : shape[-1] // 4 + 1], shape)  # a truncated spectrum is zero-padded
    padded = torch.zeros_like(v)
    padded[..., : shape[-1] // 4 + 1] = v[..., : shape[-1] // 4 + 1]
    np.testing.assert_allclose(half.numpy(), irfftn(padded, shape).numpy(), atol=1e-14)


# ---------------------------------------------------------------- ETDRK4 coefficients


def test_coefficients_real_and_complex_paths_agree_with_closed_forms():
    lin = torch.tensor([[0.0, 0.25, -1.0e-6, -3.0, -40.0, -400.0]], dtype=F64)
    real = etdrk4_coefficients(lin, 0.5)
    cplx = etdrk4_coefficients(lin.to(C128), torch.tensor([0.5], dtype=F64))
    for r, c in zip(real, cplx, strict=True):
        assert not r.is_complex() and c.is_complex()
        np.testing.assert_allclose(c.numpy(), r.numpy(), rtol=1e-13, atol=1e-16)
    # Complex symbols (advection + diffusion) against the direct formulas where they do not cancel.
    lin_c = torch.tensor([[-2.0 + 6.0j, 8.0j, -30.0 - 4.0j, 1.0e-9j]], dtype=C128)
    h = 0.25
    e, e2, q, f1, f2, f3 = (c[0].numpy() for c in etdrk4_coefficients(lin_c, h))
    z = lin_c[0].numpy() * h
    np.testing.assert_allclose(e, np.exp(z), rtol=1e-14)
    np.testing.assert_allclose(e2, np.exp(z / 2), rtol=1e-14)
    zb, ez = z[:3], np.exp(z[:3])
    np.testing.assert_allclose(q[:3], h * (np.exp(zb / 2) - 1) / zb, rtol=1e-12)
    np.testing.assert_allclose(f1[:3], h * (-4 - zb + ez * (4 - 3 * zb + zb**2)) / zb**3, rtol=1e-12)
    np.testing.assert_allclose(f2[:3], h * (2 + zb + ez * (zb - 2)) / zb**3, rtol=1e-12)
    np.testing.assert_allclose(f3[:3], h * (-4 - 3 * zb - zb**2 + ez * (4 - zb)) / zb**3, rtol=1e-12)
    # Near z = 0 (where the direct formulas cancel) against the series of the phi functions:
    # Q = h phi1(z/2) / 2, f1 = h (phi1 - 3 phi2 + 4 phi3), f2 = h (phi2 - 2 phi3), f3 = h (-phi2 + 4 phi3).
    lin_s = torch.tensor([[0.0, 1e-9j, -0.3 + 2.0j, 1.0 + 0.5j, -3.9]], dtype=C128)  # |h lin| <= 1
    e, e2, q, f1, f2, f3 = (c[0].numpy() for c in etdrk4_coefficients(lin_s, h))
    z = lin_s[0].numpy() * h
    p1, p2, p3 = _phi(1, z), _phi(2, z), _phi(3, z)
    # 5e-13: the documented accuracy with 32 points (worst near |h lin| = 1, where one contour point
    # comes within 0.05 of z = 0; measured 1.6e-13).
    np.testing.assert_allclose(q, h * _phi(1, z / 2) / 2, rtol=5e-13)
    np.testing.assert_allclose(f1, h * (p1 - 3 * p2 + 4 * p3), rtol=5e-13)
    np.testing.assert_allclose(f2, h * (p2 - 2 * p3), rtol=5e-13)
    np.testing.assert_allclose(f3, h * (-p2 + 4 * p3), rtol=5e-13)
    np.testing.assert_allclose(f1[0], h / 6, rtol=1e-13)  # the z -> 0 limits: f1 = f2 = f3 = h / 6


def test_coefficients_are_per_row_and_validate_inputs():
    lin = torch.tensor([[-1.0, -2.0], [-1.0, -2.0], [-3.0, 0.5]], dtype=F64)
    h = torch.tensor([0.1, 0.2, 0.1], dtype=F64)
    batch = etdrk4_coefficients(lin, h)
    for i in range(3):
        alone = etdrk4_coefficients(lin[i : i + 1], h[i : i + 1])
        assert all(torch.equal(b[i], a[0]) for b, a in zip(batch, alone, strict=True))
    assert not torch.equal(batch.e[0], batch.e[1])  # same lin, different h
    with pytest.raises(ValueError, match="contour_points"):
        etdrk4_coefficients(lin, h, contour_points=31)
    with pytest.raises(ValueError, match="lin"):
        etdrk4_coefficients(lin, torch.ones(2, dtype=F64))


# ---------------------------------------------------------------- ETDRK4 against exact solutions


def test_affine_problem_is_integrated_exactly_including_stiff_and_zero_modes():
    """u_t = lam u + c: ETDRK4 is exact for a constant nonlinear term, so only rounding remains."""
    lam = torch.tensor([[0.0, 1e-12, -1e-6, 0.25, -3.0, -400.0, -1e4]], dtype=F64)
    c = torch.tensor([[1.0, -0.5, 2.0, 0.3, 1.0, 5.0, 7.0]], dtype=C128)
    v0 = torch.tensor([[0.7, 0.1, -0.2, 1.0, 0.5, 3.0, 1.0]], dtype=C128)
    h, n, t = 0.01, 100, 1.0
    v = ETDRK4(v0, lam, h, lambda w: c.expand_as(w)).advance(n).numpy()
    z = lam.numpy() * t
    exact = np.exp(z) * v0.numpy() + c.numpy() * t * _phi1(z)
    np.testing.assert_allclose(v, exact, rtol=1e-13)  # measured 1e-14
    # Complex symbols (oscillating and decaying modes).
    lam_c = torch.tensor([[-1 + 5j, 2j, 1e-9j, -0.5j, 0.3 - 0.01j, -200 + 30j]], dtype=C128)
    v = ETDRK4(v0[:, :6], lam_c, h, lambda w: c[:, :6].expand_as(w)).advance(n).numpy()
    z = lam_c.numpy() * t
    exact = np.exp(z) * v0[:, :6].numpy() + c[:, :6].numpy() * t * _phi1(z)
    np.testing.assert_allclose(v, exact, rtol=1e-12)  # measured 4e-14


def test_linear_diagonal_problem_with_part_of_lambda_in_the_nonlinear_term():
    """u_t = lam u split as (lam - mu) u + mu u: the exact solution is exp(lam t) u0."""
    lam = torch.tensor([[0.0, -1e-9, 0.4, -2.0, -50.0, -1e4]], dtype=F64)
    mu = torch.tensor([[0.3, -0.2, 0.5, -0.7, 0.1, 0.6]], dtype=C128)
    v0 = torch.tensor([[1.0, -0.5, 0.2, 2.0, 1.5, 1.0]], dtype=C128)
    h, n = 0.02, 50
    v = ETDRK4(v0, lam - mu.real, h, lambda w: mu * w).advance(n).numpy()
    exact = np.exp(lam.numpy() * h * n) * v0.numpy()
    assert np.abs(v - exact).max() < 1e-9  # measured 1.4e-10 (4th order in h)
    assert np.abs(v - exact).max() > 1e-15  # the split did not make the problem trivial


def test_2d_advection_diffusion_on_a_torus_matches_the_exact_solution():
    """u_t + c . grad u = kappa lap u on [0, 2 pi)^2, advection either in lin (exact) or in N (4th order)."""
    n, kappa, c, t_end = 16, 0.05, (0.7, -0.4), 1.0
    kx, ky = rfft_wavenumbers((n, n))
    x = torch.arange(n, dtype=F64)[:, None] * (2 * math.pi / n)
    y = torch.arange(n, dtype=F64)[None, :] * (2 * math.pi / n)
    waves = [(1.0, 1, 0, 0.3), (0.5, 2, -3, 1.1), (0.25, -4, 5, -0.7)]  # amplitude, mx, my, phase

    def exact(t: float) -> torch.Tensor:
        xs, ys = x - c[0] * t, y - c[1] * t
        return sum(
            a * math.exp(-kappa * (mx**2 + my**2) * t) * torch.cos(mx * xs + my * ys + p) for a, mx, my, p in waves
        )

    v0 = torch.fft.rfft2(exact(0.0))[None]  # [1, n, n // 2 + 1]
    diffusion = (-kappa * (kx * kx + ky * ky))[None]
    advection = -(c[0] * kx + c[1] * ky)[None]  # N(v) = i * advection * v: a purely imaginary factor
    ref = exact(t_end).numpy()

    def error(lin: torch.Tensor, factor: torch.Tensor | None, h: float) -> float:
        stepper = ETDRK4(v0, lin, h, lambda w: w.clone() if factor is not None else torch.zeros_like(w),
                         nonlinear_factor=factor)
        return float(np.abs(irfftn(stepper.advance(round(t_end / h))[0], (n, n)).numpy() - ref).max())

    assert error(diffusion + 1j * advection, None, 0.05) < 1e-13  # exact up to rounding
    coarse, fine = error(diffusion, 1j * advection, 0.05), error(diffusion, 1j * advection, 0.025)
    assert coarse < 1e-5 and 3.7 < math.log2(coarse / fine) < 4.3, (coarse, fine)  # measured 6.8e-6, order 4


def _bernoulli_exact(lam: np.ndarray, u0: np.ndarray, t: float) -> np.ndarray:
    """Solution of u_t = lam u + u^2: u0 e^(lam t) / (1 - u0 t phi1(lam t))."""
    return (u0 * np.exp(lam * t) / (1.0 - u0 * t * _phi1(lam * t))).real


def test_fourth_order_convergence_on_a_nonlinear_problem():
    lam = torch.tensor([[0.0, -1.0, 0.5, -20.0, -1e-9]], dtype=F64)
    u0 = torch.tensor([[0.5, 0.8, -0.6, 3.0, 0.4]], dtype=F64)
    t_end = 1.0
    errors = []
    for h in (0.1, 0.05, 0.025, 0.0125):
        v = ETDRK4(u0.to(C128), lam, h, lambda w: w * w).advance(round(t_end / h))
        errors.append(np.abs(v.real.numpy() - _bernoulli_exact(lam.numpy(), u0.numpy(), t_end)).max())
    orders = [math.log2(errors[i] / errors[i + 1]) for i in range(len(errors) - 1)]
    assert all(3.8 <= p <= 4.2 for p in orders), (errors, orders)  # measured 3.98 .. 4.04
    assert errors[-1] < 1e-9


# ---------------------------------------------------------------- stepping mechanics and batch invariance


def _burgers_2d(n: int, kappa: torch.Tensor, h: torch.Tensor, v0: torch.Tensor) -> ETDRK4:
    """u_t = kappa lap u - (u^2)_x / 2 on [0, 2 pi)^2, de-aliased; kappa, h: `[B]`; v0 `[B, n, n // 2 + 1]`."""
    kx, ky = rfft_wavenumbers((n, n))
    mask = dealias_mask((n, n))
    lin = -kappa[:, None, None] * (kx * kx + ky * ky)

    def square_hat(w: torch.Tensor) -> torch.Tensor:
        u = irfftn(w, (n, n))
        return rfftn(u * u, 2) * mask

    return ETDRK4(v0 * mask, lin, h, square_hat, nonlinear_factor=(-0.5j * kx).expand(1, n, n // 2 + 1))


def test_trajectory_is_bitwise_the_same_alone_or_in_a_batch():
    n, batch = 16, 3
    rng = np.random.default_rng(3)
    u0 = torch.from_numpy(rng.standard_normal((batch, n, n)))
    v0 = rfftn(u0, 2)
    kappa = torch.tensor([0.05, 0.08, 0.05], dtype=F64)
    h = torch.tensor([0.01, 0.01, 0.013], dtype=F64)
    burn = torch.tensor([3, 0, 5])

    def run(rows: list[int]) -> torch.Tensor:
        stepper = _burgers_2d(n, kappa[rows], h[rows], v0[rows])
        return etdrk4_rollout(stepper, 6, 2, burn[rows], observe=lambda v: irfftn(v, (n, n)))

    together = run([0, 1, 2])
    assert together.shape == (3, 4, n, n)
    for i in range(batch):
        assert torch.equal(run([i])[0], together[i])
    assert torch.equal(run([2, 0])[0], together[2])
    assert not torch.equal(together[0], together[1])


def test_rollout_frames_and_per_trajectory_burn_in():
    """Frame j is the state after burn_in + j * save_every steps, whatever the other trajectories' burn-in."""
    n = 16
    rng = np.random.default_rng(4)
    v0 = rfftn(torch.from_numpy(rng.standard_normal((2, n, n))), 2)
    kappa, h = torch.tensor([0.05, 0.07], dtype=F64), torch.tensor([0.01, 0.02], dtype=F64)
    frames = etdrk4_rollout(_burgers_2d(n, kappa, h, v0), 4, 2, torch.tensor([3, 1]))
    assert frames.shape == (2, 3, n, n // 2 + 1) and frames.is_complex()
    for i, burn in enumerate((3, 1)):
        stepper = _burgers_2d(n, kappa[i : i + 1], h[i : i + 1], v0[i : i + 1])
        expected = [stepper.advance(burn).clone(), stepper.advance(2).clone(), stepper.advance(2).clone()]
        assert torch.equal(frames[i], torch.cat(expected))
    with pytest.raises(ValueError, match="burn_in_steps"):
        etdrk4_rollout(_burgers_2d(n, kappa, h, v0), 4, 2, torch.tensor([-1, 1]))


def test_shared_coefficients_and_padded_buffer_give_the_same_result():
    """One row of coefficients for identical trajectories; a zero-padded work buffer changes no bit."""
    n, k_max = 32, dealias_cutoff(32) + 1
    rng = np.random.default_rng(5)
    v0 = torch.fft.rfft(torch.from_numpy(rng.standard_normal((2, n))))
    length = torch.full((2,), 20.0, dtype=F64)
    (k,) = rfft_wavenumbers(n, length)
    lin = k * k - k**4

    def square_hat(w: torch.Tensor) -> torch.Tensor:
        u = torch.fft.irfft(w, n=n)
        return torch.fft.rfft(u * u)[:, : w.shape[-1]]

    factor = -0.5j * k
    full = ETDRK4(v0 * dealias_mask(n), lin, 0.05, lambda w: square_hat(w) * dealias_mask(n), nonlinear_factor=factor)
    assert full.c_p3.shape[0] == 1  # the two rows are equal: shared
    padded = ETDRK4(
        v0[:, :k_max], lin[:, :k_max], 0.05, lambda w: square_hat(w)[:, :k_max],
        nonlinear_factor=factor[:, :k_max], buffer_shape=(n // 2 + 1,),
    )
    truncated = ETDRK4(
        v0[:, :k_max], lin[:, :k_max], 0.05, lambda w: square_hat(w)[:, :k_max], nonlinear_factor=factor[:, :k_max]
    )
    a, b, c = full.advance(40), padded.advance(40), truncated.advance(40)
    assert torch.equal(a[:, k_max:], torch.zeros_like(a[:, k_max:]))
    np.testing.assert_allclose(b.numpy(), a[:, :k_max].numpy(), rtol=0, atol=1e-12)
    assert torch.equal(b, c)
    assert torch.equal(padded.work[3, :, k_max:], torch.zeros(2, n // 2 + 1 - k_max, dtype=C128))
    with pytest.raises(ValueError, match="buffer_shape"):
        ETDRK4(v0, lin, 0.05, square_hat, buffer_shape=(3,))
    with pytest.raises(ValueError, match="complex"):
        ETDRK4(v0.real, lin, 0.05, square_hat)


# ---------------------------------------------------------------- argument checks, dtypes and the plain FFT paths


def test_grid_shape_validation_and_size_one_axes():
    assert rfft_shape(1) == (1,) and rfft_shape((1, 4)) == (1, 3)  # a size-1 axis is a valid (constant) axis
    assert rfft_mode_numbers((1, 2))[0].flatten().tolist() == [0]
    for bad in ((), 0, (4, 0), (-2,)):
        with pytest.raises(ValueError, match=r"grid shape must be one or more positive sizes, got"):
            rfft_shape(bad)


def test_rfftn_irfftn_1d_and_batched_paths_match_torch_with_norm():
    rng = np.random.default_rng(7)
    u = torch.from_numpy(rng.standard_normal((3, 2, 9)))  # odd length: irfftn must be told the grid size
    v = rfftn(u, 1, norm="ortho")
    np.testing.assert_allclose(v.numpy(), torch.fft.rfft(u, norm="ortho").numpy(), atol=1e-14)
    np.testing.assert_allclose(irfftn(v, (9,), norm="ortho").numpy(), u.numpy(), atol=1e-14)
    u2 = torch.from_numpy(rng.standard_normal((3, 6, 7)))
    expected = torch.fft.rfftn(u2, dim=(-2, -1), norm="ortho")
    for invariant in (True, False):
        v2 = rfftn(u2, 2, norm="ortho", batch_invariant=invariant)
        np.testing.assert_allclose(v2.numpy(), expected.numpy(), atol=1e-14)
        back = irfftn(v2, (6, 7), norm="ortho", batch_invariant=invariant)
        np.testing.assert_allclose(back.numpy(), u2.numpy(), atol=1e-14)
    single = rfftn(u2.float(), 2)  # single precision in, single precision out, as torch does
    assert single.dtype == torch.complex64 and irfftn(single, (6, 7)).dtype == torch.float32
    with pytest.raises(ValueError, match=r"at least 2 axes, got shape \(5,\)"):
        rfftn(torch.zeros(5, dtype=F64), 2)


def test_wavenumber_dtype_follows_the_lengths_unless_asked():
    (k32,) = rfft_wavenumbers(8, torch.tensor([2.0], dtype=torch.float32))
    assert k32.dtype == torch.float32
    (k_int,) = rfft_wavenumbers(8, torch.tensor([2]))  # integer lengths: float64 wavenumbers
    assert k_int.dtype == F64
    np.testing.assert_allclose(k_int[0].numpy(), [math.pi * m for m in range(5)], rtol=1e-15)
    (k_asked,) = rfft_wavenumbers(8, torch.tensor([0.5], dtype=F64), dtype=torch.float32)
    assert k_asked.dtype == torch.float32
    np.testing.assert_allclose(k_asked[0].numpy(), [4 * math.pi * m for m in range(5)], rtol=1e-6)


def test_coefficient_step_precision_contour_size_and_lin_shape():
    lin = torch.tensor([[-1.0, -2.0, 0.0, -30.0]], dtype=F64)
    # a float step is used in double precision (0.1 is not a float32 number)
    as_float = etdrk4_coefficients(lin, 0.1)
    as_tensor = etdrk4_coefficients(lin, torch.tensor([0.1], dtype=F64))
    assert all(torch.equal(a, b) for a, b in zip(as_float, as_tensor, strict=True))
    np.testing.assert_allclose(as_float.e[0].numpy(), np.exp([-0.1, -0.2, 0.0, -3.0]), rtol=1e-15)
    # a single-precision step tensor is taken at lin's precision: same as its exact double value
    h32 = torch.tensor([0.1], dtype=torch.float32)
    assert all(torch.equal(a, b) for a, b in zip(etdrk4_coefficients(lin, h32),
                                                 etdrk4_coefficients(lin, h32.double()), strict=True))
    # the real path evaluates the upper half of the same contour: it equals the complex path for any size,
    # including coarse contours far from converged (2 points is the smallest valid one)
    for points in (2, 4):
        real = etdrk4_coefficients(lin, 0.5, contour_points=points)
        cplx = etdrk4_coefficients(lin.to(C128), 0.5, contour_points=points)
        for r, c in zip(real, cplx, strict=True):
            assert torch.isfinite(r).all()
            np.testing.assert_allclose(c.numpy(), r.numpy(), rtol=1e-13, atol=1e-16)
    assert abs(real.f1[0, 2].item() - 0.5 / 6) > 1e-4  # 4 points: visibly coarse at z = 0
    for bad_lin in (torch.zeros(4, dtype=F64), torch.zeros(0, 4, dtype=F64)):  # no batch axis; no rows
        with pytest.raises(ValueError, match="need lin"):
            etdrk4_coefficients(bad_lin, 0.1)


# ---------------------------------------------------------------- sharing coefficient rows between trajectories


def _ks_parts(n: int, length: float):
    """Wavenumbers `[n // 2 + 1]` and the quadratic term `(u^2)^` of a 1-D field on n points (no de-aliasing)."""
    (k,) = rfft_wavenumbers(n, length)

    def square_hat(w: torch.Tensor) -> torch.Tensor:
        u = torch.fft.irfft(w, n=n)
        return torch.fft.rfft(u * u)

    return k, square_hat


def _alone_and_together(v0, lin, h, nonlinear, factor=None, steps=12):
    """The states after `steps` steps of the whole batch, and of each trajectory alone (its own rows of lin, h,
    factor where they have one per trajectory)."""

    def rows(x, i):
        if isinstance(x, torch.Tensor) and x.ndim >= 1 and x.shape[0] == v0.shape[0] > 1:
            return x[i : i + 1]
        return x

    together = ETDRK4(v0, lin, h, nonlinear, nonlinear_factor=factor)
    alone = [ETDRK4(v0[i : i + 1], rows(lin, i), rows(h, i), nonlinear, nonlinear_factor=rows(factor, i)).advance(steps)
             for i in range(v0.shape[0])]
    return together, together.advance(steps), torch.cat(alone)


def test_one_symbol_row_and_step_are_shared_by_the_batch():
    n = 16
    k, square_hat = _ks_parts(n, 20.0)
    v0 = torch.fft.rfft(torch.from_numpy(np.random.default_rng(8).standard_normal((3, n))))
    lin = (k * k - k**4)[None]  # [1, S]: one symbol for all trajectories
    stepper, together, alone = _alone_and_together(v0, lin, 0.05, square_hat, (-0.5j * k)[None])
    assert stepper.c_p3.shape[0] == 1
    assert torch.equal(together, alone)
    # identical rows without a nonlinear factor are shared as well
    stepper, together, alone = _alone_and_together(v0[:2], lin.expand(2, -1).clone(), 0.05, lambda w: -square_hat(w))
    assert stepper.c_p3.shape[0] == 1
    assert torch.equal(together, alone)


@pytest.mark.parametrize("differs", ["h", "factor", "lin"])
def test_trajectories_are_not_merged_when_their_step_factor_or_symbol_differs(differs):
    """Two trajectories that share all but one of (lin, h, factor) each follow their own run."""
    n = 16
    k, square_hat = _ks_parts(n, 20.0)
    v0 = torch.fft.rfft(torch.from_numpy(np.random.default_rng(9).standard_normal((2, n))))
    nu = torch.tensor([[1.0], [0.5]], dtype=F64) if differs == "lin" else torch.ones(2, 1, dtype=F64)
    lin = k * k - nu * k**4  # [2, S]
    h = torch.tensor([0.05, 0.02], dtype=F64) if differs == "h" else torch.tensor([0.05, 0.05], dtype=F64)
    strength = torch.tensor([[1.0], [2.0]], dtype=F64) if differs == "factor" else torch.ones(2, 1, dtype=F64)
    factor = -0.5 * strength.to(C128)  # [2, 1]: one real factor per trajectory, broadcast over the modes

    def nonlinear(w: torch.Tensor) -> torch.Tensor:
        return 1j * k * square_hat(w)

    stepper, together, alone = _alone_and_together(v0, lin, h, nonlinear, factor)
    assert stepper.c_p3.shape[0] == 2
    assert torch.equal(together, alone)
    assert not torch.equal(together[0], together[1])


def test_stepper_rejects_bad_shapes_by_name():
    v0, lin = torch.ones(2, 3, dtype=C128), -torch.ones(2, 3, dtype=F64)

    def zero(w: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(w)

    for bad_v0, bad_lin in ((torch.ones(3, dtype=C128), lin[0]), (torch.ones(0, 3, dtype=C128), lin)):
        with pytest.raises(ValueError, match="v0 must be a complex"):
            ETDRK4(bad_v0, bad_lin, 0.1, zero)
    with pytest.raises(ValueError, match=r"lin must be \[B or 1, \*S\] with B = 2, S = \(3,\), got shape \(3, 3\)"):
        ETDRK4(v0, -torch.ones(3, 3, dtype=F64), 0.1, zero)
    with pytest.raises(ValueError, match=r"h must be a float or hold 1 or B = 2 steps, got shape \(3,\)"):
        ETDRK4(v0, lin, torch.full((3,), 0.1, dtype=F64), zero)
    with pytest.raises(ValueError, match="contour_points"):
        ETDRK4(v0, lin, 0.1, zero, contour_points=31)


def test_rollout_defaults_to_no_burn_in_and_checks_its_counts():
    lam = torch.tensor([[-1.0, -0.5, 0.0]], dtype=F64)
    c = torch.tensor([[1.0, 0.0, -1.0]], dtype=C128)
    v0 = torch.tensor([[1.0, 2.0, 3.0]], dtype=C128)

    def stepper() -> ETDRK4:
        return ETDRK4(v0, lam, 0.1, lambda w: c.expand_as(w))

    frames = etdrk4_rollout(stepper(), 4, 2)
    assert frames.shape == (1, 3, 3)
    assert torch.equal(frames[:, 0], v0)  # frame 0 is the initial state: no burn-in unless asked
    reference = stepper()
    assert torch.equal(frames[:, 1], reference.advance(2)) and torch.equal(frames[:, 2], reference.advance(2))
    assert torch.equal(etdrk4_rollout(stepper(), 0, 1), v0[:, None])  # no steps: the initial frame only
    assert etdrk4_rollout(stepper(), 3, 1).shape == (1, 4, 3)
    for n_steps, save_every in ((-1, 1), (4, 0)):
        with pytest.raises(ValueError, match=f"need n_steps >= 0 and save_every >= 1, got {n_steps} and {save_every}"):
            etdrk4_rollout(stepper(), n_steps, save_every)
    with pytest.raises(ValueError, match=r"^burn_in_steps must be >= 0, got -2$"):
        etdrk4_rollout(stepper(), 4, 2, -2)
    with pytest.raises(ValueError, match=r"^burn_in_steps must be >= 0$"):  # one per trajectory, one negative
        etdrk4_rollout(stepper(), 4, 2, torch.tensor([-1]))


# ---------------------------------------------------------------- real-to-real transforms (data_gen.transforms)
def test_real_to_real_transforms_match_scipy_to_1e_13():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 11))
    t = torch.from_numpy(x)
    np.testing.assert_allclose(dct2(t).numpy(), scipy.fft.dct(x, type=2), atol=1e-13)
    np.testing.assert_allclose(dst2(t).numpy()[:, 1:], scipy.fft.dst(x, type=2), atol=1e-13)
    assert (dst2(t).numpy()[:, 0] == 0).all()  # entry 0 stands for k = 0, whose sine is 0
    np.testing.assert_allclose(idct2(dct2(t)).numpy(), x, atol=1e-13)
    faces = np.zeros((3, 12))
    faces[:, 1:-1] = rng.standard_normal((3, 10))
    spec = dst1(torch.from_numpy(faces)).numpy()
    np.testing.assert_allclose(spec[:, 1:-1], scipy.fft.dst(faces[:, 1:-1], type=1), atol=1e-13)
    assert (spec[:, 0] == 0).all() and (spec[:, -1] == 0).all()
    np.testing.assert_allclose(idst1(torch.from_numpy(spec)).numpy(), faces, atol=1e-13)
    grid = rng.standard_normal((2, 7, 5))
    along_rows = along_axis(dct2, torch.from_numpy(grid), -2).numpy()
    np.testing.assert_allclose(along_rows, scipy.fft.dct(grid, type=2, axis=-2), atol=1e-13)
    along_last = along_axis(dct2, torch.from_numpy(grid), -1).numpy()
    np.testing.assert_allclose(along_last, scipy.fft.dct(grid, type=2, axis=-1), atol=1e-13)


@pytest.mark.parametrize("n", [1, 2, 7, 16])
def test_orthonormal_dct_is_scipys_to_1e_12(n: int) -> None:
    x = np.random.default_rng(n).standard_normal((3, 5, n))
    t = torch.from_numpy(x)
    np.testing.assert_allclose(dct2(t, norm="ortho").numpy(), scipy.fft.dct(x, type=2, norm="ortho"), rtol=0,
                               atol=1e-12)
    np.testing.assert_allclose(idct2(t, norm="ortho").numpy(), scipy.fft.idct(x, type=2, norm="ortho"), rtol=0,
                               atol=1e-12)
    np.testing.assert_allclose(idct2(dct2(t, norm="ortho"), norm="ortho").numpy(), x, rtol=0, atol=1e-12)
    # orthonormal: the sum of squares is kept; the unnormalised transform (the smoke solver's) is scipy's default
    assert np.allclose((dct2(t, norm="ortho") ** 2).sum(-1).numpy(), (x**2).sum(-1), atol=1e-12)
    np.testing.assert_allclose(dct2(t).numpy(), scipy.fft.dct(x, type=2), rtol=0, atol=1e-12)
    for transform in (dct2, idct2):
        with pytest.raises(ValueError, match="norm must be None or 'ortho', got 'forward'"):
            transform(t, norm="forward")
