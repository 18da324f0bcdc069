"""Tests of the Kuramoto–Sivashinsky generator (`data_gen.ks`): accuracy, invariants, reproducibility, API."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from data_gen.base import GeneratedBatch
from data_gen.ks import (
    KSConfig,
    KSGenerator,
    burn_in_frames,
    dealias_mask,
    etdrk4_coefficients,
    initial_state,
    ks_linear_operator,
    ks_nonlinear,
    sample_trajectory,
    solve_ks,
    wavenumbers,
)
from pdebench.config.checks import SettingError
from pdebench.errors import InvalidSetting

F64 = torch.float64
CPU = torch.device("cpu")


def _smooth_state(n: int, length: float) -> np.ndarray:
    x = np.arange(n) * length / n
    phase = 2.0 * np.pi * x / length
    return np.cos(phase) * (1.0 + np.sin(phase)) + 0.3 * np.sin(2.0 * phase + 1.0)


def _solve_one(u0: np.ndarray, length: float, h: float, t_end: float, save_every: int | None = None) -> np.ndarray:
    """Frames `[n_saved, N]` of one trajectory (nu = 1) integrated to t_end with step h."""
    n_steps = round(t_end / h)
    assert abs(n_steps * h - t_end) < 1e-12
    one = torch.ones(1, dtype=F64)
    out = solve_ks(torch.from_numpy(u0)[None], length * one, one, h * one, n_steps, save_every or n_steps)
    return out[0].numpy()


def _rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_fourth_order_convergence_in_time():
    # Mildly stiff setting (k_max^4 h <= 4): the asymptotic order of ETDRK4 is visible.
    n, length, t_end = 64, 64.0, 5.0
    u0 = _smooth_state(n, length)
    ref = _solve_one(u0, length, 1.0 / 512, t_end)[-1]
    errors = [_rel_l2(_solve_one(u0, length, h, t_end)[-1], ref) for h in (0.1, 0.05, 0.025)]
    orders = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    assert all(3.7 <= p <= 4.3 for p in orders), (errors, orders)


def _numpy_nonlinear(v: np.ndarray, k: np.ndarray, keep: np.ndarray, n: int) -> np.ndarray:
    """-(u^2)_x / 2 in Fourier space with the 2/3 rule applied to the input and the output."""
    u = np.fft.irfft(np.where(keep, v, 0.0), n=n)
    return np.where(keep, -0.5j * k * np.fft.rfft(u * u), 0.0)


def _numpy_ks_rhs(n: int, length: float, nu: float):
    """Independent semi-discrete KS right-hand side on the rfft coefficients, numpy only."""
    m = np.arange(n // 2 + 1)
    k = 2.0 * np.pi * m / length
    keep = 3 * m < n  # the 2/3 rule: |m| < N / 3
    lin = k**2 - nu * k**4

    def rhs(_t: float, v: np.ndarray) -> np.ndarray:
        return lin * v + _numpy_nonlinear(v, k, keep, n)

    return rhs, keep


def test_agrees_with_scipy_dop853():
    n, length, nu, t_end = 64, 32.0, 1.0, 5.0
    u0 = _smooth_state(n, length)
    rhs, keep = _numpy_ks_rhs(n, length, nu)
    v0 = np.where(keep, np.fft.rfft(u0), 0.0).astype(np.complex128)
    sol = solve_ivp(rhs, (0.0, t_end), v0, method="DOP853", rtol=1e-12, atol=1e-12)
    assert sol.success
    expected = np.fft.irfft(sol.y[:, -1], n=n)
    assert _rel_l2(_solve_one(u0, length, 0.05, t_end)[-1], expected) < 1e-6  # measured 5e-7
    assert _rel_l2(_solve_one(u0, length, 0.01, t_end)[-1], expected) < 1e-8  # measured 2e-9


def _frames_against_dop853(config: KSConfig, seed: int, burn: int, n_frames: int) -> None:
    """Frames `0 .. n_frames - 1` of `generate([seed])` are the states at `(burn + j) dt` of an independent DOP853
    integration of the same semi-discrete system from `initial_state(sample_trajectory(seed))`, and one frame
    interval earlier or later is far off."""
    n = config.n_points
    draws = sample_trajectory(seed, config)
    u = KSGenerator(config).generate([seed], n_frames, CPU).fields["u"][0]  # [n_frames, N] float32
    times = (burn + np.arange(-1, n_frames + 1)) * draws["dt"]  # one frame interval either side too
    rhs, keep = _numpy_ks_rhs(n, draws["L"], draws["nu"])
    v0 = np.where(keep, np.fft.rfft(initial_state(draws, n)), 0.0).astype(np.complex128)
    sol = solve_ivp(rhs, (0.0, times[-1]), v0, method="DOP853", t_eval=times, rtol=1e-10, atol=1e-10)
    assert sol.success
    expected = np.fft.irfft(sol.y.T, n=n, axis=-1)  # [n_frames + 2, N]
    for j in range(n_frames):
        assert _rel_l2(u[j], expected[j + 1]) < 1e-6, (seed, j)  # measured 3e-8 (float32 frames)
        # A frame interval earlier or later is far outside that bound (measured >= 1.8e-2).
        assert min(_rel_l2(u[j], expected[j]), _rel_l2(u[j], expected[j + 2])) > 1e-3


def test_generated_frames_are_at_the_contract_times():
    """Frame j of `generate([seed])` is the state at `(burn_in_frames + j) dt` from the initial state, for two seeds
    whose `dt` differ (so a burn-in counted in time units, the same for both, is off by frames for one of them)."""
    config = KSConfig(n_points=64, burn_in_frames=13)
    dts = {seed: sample_trajectory(seed, config)["dt"] for seed in range(50)}
    low = min(dts, key=dts.get)
    high = max(dts, key=dts.get)
    assert round(13 * dts[high] / dts[low]) >= 15  # the two burn-ins differ by 2 or more frames in time
    for seed in (low, high):
        _frames_against_dop853(config, seed, 13, 4)


def test_a_recorded_burn_in_time_keeps_its_meaning():
    """Settings written before `burn_in_frames` (`burn_in_time`) still mean `round(burn_in_time / dt)` frame
    intervals, for one seed whose ratio rounds down and one whose ratio rounds up (so floor or ceil instead of round,
    a burn-in cut short or off by a frame all fail)."""
    config = KSConfig(n_points=64, burn_in_time=2.5)
    fractions = {seed: (2.5 / sample_trajectory(seed, config)["dt"]) % 1.0 for seed in range(50)}
    seeds = [
        next((s for s, f in fractions.items() if 0.1 < f < 0.4), None),
        next((s for s, f in fractions.items() if 0.6 < f < 0.9), None),
    ]
    assert None not in seeds, f"no seed in 0..49 rounds burn_in_time / dt both down and up: {fractions}"
    for seed in seeds:
        burn = round(2.5 / sample_trajectory(seed, config)["dt"])
        assert burn_in_frames(config, sample_trajectory(seed, config)["dt"]) == burn
        _frames_against_dop853(config, seed, burn, 4)
    settings = KSGenerator(config).solver_settings()
    assert settings["burn_in_time"] == 2.5 and "burn_in_frames" not in settings
    assert KSGenerator(KSConfig()).solver_settings()["burn_in_frames"] == 360


def test_nonlinear_term_matches_independent_formula():
    n, length = 48, 20.0
    u = np.random.default_rng(0).standard_normal((2, n))
    mask = dealias_mask(n)
    assert mask.tolist() == [m < 16 for m in range(n // 2 + 1)]  # m = 0..15 since 15 < 48 / 3
    k = wavenumbers(torch.full((2,), length, dtype=F64), n // 2 + 1)
    got = ks_nonlinear(torch.fft.rfft(torch.from_numpy(u)), k, mask).numpy()
    expected = _numpy_nonlinear(np.fft.rfft(u), k.numpy(), mask.numpy(), n)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_etdrk4_coefficients_match_closed_forms():
    lin = torch.tensor([[0.0, 0.25, -1.0e-6, -3.0, -40.0, -400.0]], dtype=F64)
    h = torch.tensor([0.5], dtype=F64)
    e, e2, q, f1, f2, f3 = (c[0].numpy() for c in etdrk4_coefficients(lin, h, 32))
    z = lin[0].numpy() * 0.5
    np.testing.assert_allclose(e, np.exp(z), rtol=1e-14)
    np.testing.assert_allclose(e2, np.exp(z / 2), rtol=1e-14)
    # z -> 0 limits: Q = h/2, f1 = f2 = f3 = h/6.
    assert abs(q[0] - 0.25) < 1e-13 and max(abs(f - 0.5 / 6) for f in (f1[0], f2[0], f3[0])) < 1e-13
    big = np.abs(z) >= 1.0  # where the direct formulas do not cancel
    zb, hb = z[big], 0.5
    np.testing.assert_allclose(q[big], hb * (np.exp(zb / 2) - 1) / zb, rtol=1e-12)
    ez = np.exp(zb)
    np.testing.assert_allclose(f1[big], hb * (-4 - zb + ez * (4 - 3 * zb + zb**2)) / zb**3, rtol=1e-12)
    np.testing.assert_allclose(f2[big], hb * (2 + zb + ez * (zb - 2)) / zb**3, rtol=1e-12)
    np.testing.assert_allclose(f3[big], hb * (-4 - 3 * zb - zb**2 + ez * (4 - zb)) / zb**3, rtol=1e-12)
    lin_op = ks_linear_operator(torch.tensor([[0.0, 1.0, 2.0]], dtype=F64), torch.tensor([0.5], dtype=F64))
    np.testing.assert_allclose(lin_op.numpy(), [[0.0, 0.5, -4.0]])


def test_spatial_mean_is_conserved_in_chaotic_run():
    n, length, mean = 128, 64.0, 0.7
    rng = np.random.default_rng(1)
    u0 = mean + 0.1 * rng.standard_normal(n)
    frames = _solve_one(u0, length, 0.05, 100.0, save_every=100)  # 21 frames, t = 0 .. 100
    assert frames[-1].std() > 0.5  # the run did become chaotic
    means = frames.mean(axis=-1)
    assert np.max(np.abs(means - u0.mean())) < 1e-12


def test_same_seed_same_trajectory_whatever_the_batch():
    gen = KSGenerator(KSConfig())  # dt differs per seed, so burn-in step counts differ too
    together = gen.generate([3, 4, 5], 5, CPU).fields["u"]
    alone = gen.generate([5], 5, CPU).fields["u"]
    swapped = gen.generate([4, 3], 5, CPU).fields["u"]
    assert np.array_equal(together[2], alone[0])
    assert np.array_equal(together[0], swapped[1]) and np.array_equal(together[1], swapped[0])
    assert not np.array_equal(together[0], together[1])


def test_per_trajectory_burn_in_matches_separate_runs_exactly():
    rng = np.random.default_rng(2)
    n, batch = 64, 3
    u0 = torch.from_numpy(rng.standard_normal((batch, n)))
    length = torch.tensor([30.0, 35.0, 40.0], dtype=F64)
    nu = torch.tensor([1.0, 0.7, 1.3], dtype=F64)
    h = torch.tensor([0.05, 0.04, 0.045], dtype=F64)
    burn = torch.tensor([7, 0, 19])
    threads = torch.get_num_threads()
    together = solve_ks(u0, length, nu, h, 6, 3, burn_in_steps=burn)
    assert torch.get_num_threads() == threads  # the solver restores the thread setting
    for i in range(batch):
        alone = solve_ks(u0[i : i + 1], length[i : i + 1], nu[i : i + 1], h[i : i + 1], 6, 3, int(burn[i]))
        assert torch.equal(together[i], alone[0])


GRID = "a number of grid points, an even whole number >= 8 (the spectral solver is written for even grids)"
PAIR = "a pair [low, high] of finite numbers with 0 < low <= high"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("n_points", 255, f"n_points=255 is not valid: expected {GRID}"),
        ("n_points", 4, f"n_points=4 is not valid: expected {GRID}"),
        ("length_range", (70.0, 60.0), f"length_range=[70.0,60.0] is not valid: expected a range of domain lengths "
                                       f"L, {PAIR}"),
        ("length_range", (0.0, 1.0), f"length_range=[0.0,1.0] is not valid: expected a range of domain lengths L, "
                                     f"{PAIR}"),
        ("nu_range", (1.0, float("nan")), f"nu_range=[1.0,nan] is not valid: expected a range of hyper-viscosities "
                                          f"nu, {PAIR}"),
        ("dt_range", (-0.1, 0.2), f"dt_range=[-0.1,0.2] is not valid: expected a range of times dt between stored "
                                  f"frames, {PAIR}"),
        ("dt_range", 0.2, f"dt_range=0.2 is not valid: expected a range of times dt between stored frames, {PAIR}"),
        ("n_sines", 0, "n_sines=0 is not valid: expected a number of sines in the initial state, a whole number >= 1"),
        ("amplitude", -0.5, "amplitude=-0.5 is not valid: expected the largest amplitude of an initial sine, a finite "
                            "number >= 0"),
        ("max_mode", 0, "max_mode=0 is not valid: expected the highest mode of an initial sine, a whole number >= 1"),
        ("max_mode", 86, "max_mode=86 is not valid: expected a mode below 86, the 2/3-rule cutoff of n_points=256 "
                         "(the solver drops every mode from it on)"),
        ("burn_in_time", -1.0, "burn_in_time=-1.0 is not valid: expected a burn-in time, a finite number >= 0"),
        ("burn_in_frames", -1, "burn_in_frames=-1 is not valid: expected a number of frame intervals discarded before "
                               "frame 0, a whole number >= 0"),
        ("burn_in_frames", 2.5, "burn_in_frames=2.5 is not valid: expected a number of frame intervals discarded "
                                "before frame 0, a whole number >= 0"),
        ("substeps", 0, "substeps=0 is not valid: expected a number of ETDRK4 steps per stored frame, a whole number "
                        ">= 1"),
        ("substeps", 2.5, "substeps=2.5 is not valid: expected a number of ETDRK4 steps per stored frame, a whole "
                          "number >= 1"),
        ("contour_points", 31, "contour_points=31 is not valid: expected a number of contour points, an even whole "
                               "number >= 4 (the ETDRK4 coefficients are averaged over complex-conjugate pairs of "
                               "points on the unit circle)"),
    ],
)
def test_config_rejects_bad_values(field, value, message):
    with pytest.raises(SettingError) as info:
        KSConfig(**{field: value})
    assert str(info.value) == message


def test_generate_shapes_dtypes_and_ranges():
    config = KSConfig(nu_range=(0.5, 1.5))
    gen = KSGenerator(config)
    batch = gen.generate([0, 1, 2], 4, CPU)
    assert isinstance(batch, GeneratedBatch)
    u = batch.fields["u"]
    assert set(batch.fields) == {"u"} and u.shape == (3, 4, 256) and u.dtype == np.float32
    assert np.isfinite(u).all()
    p = batch.parameters
    assert set(p) == {"L", "nu", "dt", "dx"}
    assert all(v.dtype == np.float64 and v.shape == (3,) for v in p.values())
    assert ((p["L"] >= 57.6) & (p["L"] <= 70.4)).all()
    assert ((p["nu"] >= 0.5) & (p["nu"] <= 1.5)).all() and len(set(p["nu"])) == 3
    assert ((p["dt"] >= 0.18) & (p["dt"] <= 0.22)).all()
    np.testing.assert_array_equal(p["dx"], p["L"] / 256)
    for i, seed in enumerate([0, 1, 2]):
        draws = sample_trajectory(seed, config)
        assert (draws["L"], draws["nu"], draws["dt"]) == (p["L"][i], p["nu"][i], p["dt"][i])
        assert set(draws["modes"]) <= {1, 2} and np.abs(draws["amplitudes"]).max() <= 0.5
    std = u.std(axis=(1, 2))
    assert ((std > 0.5) & (std < 2.5)).all(), std  # on the chaotic attractor after burn-in
    assert np.abs(u.mean(axis=(1, 2))).max() < 1e-5  # the sines have zero mean


def test_reference_solver_takes_the_one_field_and_answers_in_float64():
    """The evaluator's solver row advances `[B, 1, N]` states of `u`; another field count or rank is refused by
    shape, and a float32 state (as stored) is solved in float64, as a float64 state is."""
    solver = KSGenerator(KSConfig(n_points=32, max_mode=2)).reference_solver()
    params = {"L": torch.tensor([22.0, 30.0], dtype=F64), "nu": torch.tensor([1.0, 0.8], dtype=F64),
              "dt": torch.tensor([0.2, 0.25], dtype=F64)}
    x = torch.arange(32, dtype=F64) / 32
    u = torch.stack([torch.sin(2 * math.pi * x) + 0.3 * torch.cos(4 * math.pi * x + 0.5),
                     0.7 * torch.cos(2 * math.pi * x - 0.2)])[:, None]
    for bad in (u.expand(2, 2, 32), u[:, 0], u[None]):
        with pytest.raises(ValueError, match=r"must be \[B, 1, N\]"):
            solver.advance(bad, params, 1)
    exact = solver.advance(u, params, 2)
    single = solver.advance(u.to(torch.float32), params, 2)
    assert exact.shape == (2, 1, 32) and exact.dtype == single.dtype == F64
    assert not torch.allclose(exact, u, atol=1e-2)  # the state moved
    torch.testing.assert_close(single, exact, rtol=0, atol=1e-6)
    # The coefficients are reused only while (L, nu, dt) and the batch stay: other values or another batch size
    # on the same solver give what a fresh solver gives.
    for other in ({**params, "L": params["L"].flip(0)}, {**params, "nu": torch.tensor([0.6, 0.8], dtype=F64)},
                  {**params, "dt": torch.tensor([0.2, 0.3], dtype=F64)}):
        fresh = KSGenerator(KSConfig(n_points=32, max_mode=2)).reference_solver().advance(u, other, 2)
        assert not torch.allclose(fresh, exact, atol=1e-3)
        torch.testing.assert_close(solver.advance(u, other, 2), fresh, rtol=0, atol=1e-12)
    first = {name: value[:1] for name, value in params.items()}
    fresh = KSGenerator(KSConfig(n_points=32, max_mode=2)).reference_solver().advance(u[:1], first, 2)
    torch.testing.assert_close(solver.advance(u[:1], first, 2), fresh, rtol=0, atol=1e-12)
    torch.testing.assert_close(fresh, exact[:1], rtol=0, atol=1e-12)


def test_reference_solver_grid_and_step_settings():
    """Its resolution is one even number from 8 to the stored N (each rule refused on its own), and its internal
    step is `dt * n_frames / round(n_frames * substeps / factor)`: factor 1 (the default) keeps the generator's
    substeps, 4 takes a quarter of them, and one call always makes at least one step."""
    generator = KSGenerator(KSConfig(n_points=32, max_mode=2, substeps=8))
    for bad in ((16, 16), (6,), (19,), (34,)):
        with pytest.raises(InvalidSetting, match=rf"one even number of points from 8 to the stored 32, got "
                                                 rf"\[{', '.join(map(str, bad))}\]$"):
            generator.reference_solver(bad)
    for bad_factor in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(InvalidSetting, match=f"time_step_factor must be a finite number > 0, got {bad_factor!r}"):
            generator.reference_solver(None, bad_factor)
    assert [generator.reference_solver(r).n_points for r in ((8,), (32,), None)] == [8, 32, 32]  # both ends allowed
    assert generator.reference_solver().steps_per_call(3) == 24
    assert generator.reference_solver(None, 4.0).steps_per_call(3) == 6
    assert generator.reference_solver(None, 100.0).steps_per_call(3) == 1


def test_draws_follow_the_seeds_stream_in_the_documented_order_and_fill_their_ranges():
    """A seed's draws are numpy's `default_rng(seed)` stream taken as L, nu, dt, amplitudes, phases, modes (so a
    dataset regenerates bit for bit), and over many sines they fill their ranges: amplitudes both signs up to
    +-amplitude, phases the whole circle, modes every integer from 1 to max_mode."""
    config = KSConfig(length_range=(30.0, 40.0), nu_range=(0.5, 1.5), dt_range=(0.1, 0.3), n_sines=400,
                      amplitude=0.7, max_mode=3)
    draws = sample_trajectory(11, config)
    rng = np.random.default_rng(11)
    assert (draws["L"], draws["nu"], draws["dt"]) == (rng.uniform(30.0, 40.0), rng.uniform(0.5, 1.5),
                                                     rng.uniform(0.1, 0.3))
    np.testing.assert_array_equal(draws["amplitudes"], rng.uniform(-0.7, 0.7, size=400))
    np.testing.assert_array_equal(draws["phases"], rng.uniform(0.0, 2.0 * math.pi, size=400))
    np.testing.assert_array_equal(draws["modes"], rng.integers(1, 4, size=400))
    assert draws["modes"].dtype == np.int64 and set(draws["modes"].tolist()) == {1, 2, 3}
    assert -0.7 <= draws["amplitudes"].min() < -0.65 and 0.65 < draws["amplitudes"].max() <= 0.7
    assert 0.0 <= draws["phases"].min() < 0.1 and 2.0 * math.pi - 0.1 < draws["phases"].max() < 2.0 * math.pi


def test_initial_state_is_the_sum_of_the_drawn_sines_by_hand():
    draws = {"amplitudes": np.array([0.5, -0.25]), "phases": np.array([0.3, 2.0]), "modes": np.array([2, 1])}
    x = np.arange(16) / 16
    expected = 0.5 * np.sin(4 * np.pi * x + 0.3) - 0.25 * np.sin(2 * np.pi * x + 2.0)
    np.testing.assert_allclose(initial_state(draws, 16), expected, rtol=0, atol=1e-15)


def test_the_contour_points_setting_reaches_the_solver():
    """Few contour points give coarser ETDRK4 coefficients: the frames change (slightly), so the generator passes
    its setting on instead of the solver's default."""
    config = KSConfig(n_points=32, max_mode=2, burn_in_frames=2, substeps=2)
    frames = KSGenerator(config).generate([3], 3, CPU).fields["u"]
    coarse = KSGenerator(replace(config, contour_points=4)).generate([3], 3, CPU).fields["u"]
    assert not np.array_equal(frames, coarse)
    np.testing.assert_allclose(coarse, frames, rtol=0, atol=1e-2)


def test_solve_ks_refuses_malformed_requests_and_stores_every_step_with_save_every_1():
    one = torch.ones(1, dtype=F64)
    u0 = torch.from_numpy(_smooth_state(16, 22.0))[None]
    cases = [
        (dict(u0=u0[0]), r"u0 must be \[B, N\] with N even, got shape \(16,\)"),
        (dict(u0=u0[:, :15]), r"u0 must be \[B, N\] with N even, got shape \(1, 15\)"),
        (dict(u0=u0[:0]), "^u0 must hold at least one trajectory$"),
        (dict(n_steps=-1), "need n_steps >= 0 and save_every >= 1, got -1 and 1"),
        (dict(save_every=0), "need n_steps >= 0 and save_every >= 1, got 2 and 0"),
        (dict(burn_in_steps=-1), "burn_in_steps must be >= 0, got -1"),
    ]
    for change, message in cases:
        args = {"u0": u0, "length": 22.0 * one, "nu": one, "h": 0.1 * one, "n_steps": 2, "save_every": 1, **change}
        with pytest.raises(ValueError, match=message):
            solve_ks(**args)
    frames = solve_ks(u0, 22.0 * one, one, 0.1 * one, n_steps=2, save_every=1)
    assert frames.shape == (1, 3, 16) and not torch.equal(frames[0, 1], frames[0, 2])
    # float32 inputs are solved in float64, as documented
    single = solve_ks(u0.float(), 22.0 * one.float(), one.float(), 0.1 * one.float(), n_steps=2, save_every=1)
    assert single.dtype == F64
    torch.testing.assert_close(single, frames, rtol=0, atol=1e-6)


def test_generator_metadata():
    gen = KSGenerator(KSConfig())
    assert gen.pde == "ks" and gen.grid == "periodic"
    assert KSGenerator().config == KSConfig()  # no config: the defaults
    assert gen.frame_interval == pytest.approx(0.2)
    assert [f.name for f in gen.fields] == ["u"] and gen.fields[0].boundary == "periodic"
    assert [p.name for p in gen.parameters] == ["L", "nu", "dt", "dx"]
    (x,) = gen.coordinates()
    assert x.name == "x" and x.units == "1 (fraction of L)"
    assert x.description == "grid point i at x = i/N of the domain; multiply by the trajectory's L"
    np.testing.assert_array_equal(x.values, np.arange(256) / 256)
    assert x.values.dtype == np.float64
    # Every setting is read back: they are written into each file's attributes, where readers find the burn-in.
    config = KSConfig(substeps=5, contour_points=24, burn_in_frames=7)
    assert KSGenerator(config).solver_settings() == {
        "solver": "etdrk4", "spatial": "fourier pseudo-spectral", "substeps": 5, "contour_points": 24,
        "dealiasing": "2/3", "dtype": "float64", "burn_in_frames": 7,
        "burn_in": "burn_in_frames frame intervals (x substeps steps, burn_in_frames * dt time units) per "
                   "trajectory, discarded",
    }
    older = KSGenerator(KSConfig(substeps=5, contour_points=24, burn_in_time=40.0)).solver_settings()
    assert older == {
        "solver": "etdrk4", "spatial": "fourier pseudo-spectral", "substeps": 5, "contour_points": 24,
        "dealiasing": "2/3", "dtype": "float64", "burn_in_time": 40.0,
        "burn_in": "round(burn_in_time / dt) frames (x substeps steps) per trajectory, discarded",
    }
    with pytest.raises(ValueError, match="n_frames"):
        gen.generate([0], 0, CPU)
