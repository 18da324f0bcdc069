"""Tests of the 2-D Kolmogorov-flow generator (`data_gen.kolmogorov`): physics, accuracy, reproducibility, API."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from data_gen.base import GeneratedBatch, SolverDiverged
from data_gen.generate import generate_dataset
from data_gen.kolmogorov import (
    KolmogorovConfig,
    KolmogorovGenerator,
    VorticitySolver,
    forcing_spectrum,
    random_vorticity_spectrum,
    resample_spectrum,
    solver_grid_for,
    velocity_from_vorticity,
)
from pdebench.config.checks import SettingError
from pdebench.data.check import check_file

CPU = torch.device("cpu")
# A coarse configuration for tests: the stored 32^2 grid is exactly the content of a 48^2 DNS (solver_grid_for(32)).
TINY = dict(resolution=32, dns_resolution=48, substeps=8, spinup_time=10.0, branch_time=2.0, perturbation=1.0)


def _grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """`x, y` `[n, n]` (indexing ij) on the 2 pi torus."""
    axis = np.arange(n) * 2.0 * np.pi / n
    return np.meshgrid(axis, axis, indexing="ij")


def _spectrum(field: np.ndarray) -> torch.Tensor:
    """Forward-normalised rfft2 spectrum `[1, n, n // 2 + 1]` of one field `[n, n]`."""
    return torch.fft.rfft2(torch.from_numpy(field), norm="forward")[None]


def _field(spec: torch.Tensor, n: int) -> np.ndarray:
    return torch.fft.irfft2(spec, s=(n, n), norm="forward").numpy()


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def tiny_generator() -> KolmogorovGenerator:
    return KolmogorovGenerator(KolmogorovConfig(**TINY))


@pytest.fixture(scope="module")
def tiny_batch(tiny_generator: KolmogorovGenerator) -> GeneratedBatch:
    return tiny_generator.generate([3, 4, 5], 5, CPU)


# --- physics -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("k", "drag"), [(1, 0.0), (2, 0.1)])
def test_taylor_green_vortex_decays_as_exp_minus_2_nu_t_to_1e_8(k, drag):
    """`omega = 2 k sin(kx) sin(ky)` is a steady Euler flow, so it decays as exp(-(2 nu k^2 + drag) t) exactly."""
    n, nu, h, n_steps = 32, 0.01, 0.1, 100
    x, y = _grid(n)
    omega0 = 2.0 * k * np.sin(k * x) * np.sin(k * y)
    solver = VorticitySolver(_spectrum(omega0), nu, drag, h)
    omega = _field(solver.advance(n_steps), n)[0]
    expected = omega0 * math.exp(-(2.0 * nu * k * k + drag) * h * n_steps)
    assert _rel(omega, expected) < 1e-8  # measured ~1e-15
    # the decay really happened (a solver that did nothing would fail above, this guards the expectation itself)
    assert np.abs(omega).max() < 0.9 * np.abs(omega0).max()


def test_low_reynolds_flow_relaxes_to_laminar_kolmogorov_profile_to_1e_6():
    """At Re = 5 every disturbance decays: the stored fields become `u = U sin(4y)`, `v = 0`, `omega = -4 U cos(4y)`
    with `U = A / (nu k_f^2 + drag)` (the forcing balanced by viscosity and drag)."""
    config = KolmogorovConfig(resolution=16, dns_resolution=solver_grid_for(16), reynolds=5.0, drag=0.1,
                              frame_interval=1.0, substeps=20, spinup_time=60.0, branch_time=0.0,
                              perturbation=0.0, init_modes=4)
    batch = KolmogorovGenerator(config).generate([0], 2, CPU)
    x, y = _grid(16)
    amplitude = 1.0 / (0.2 * 16 + 0.1)
    for j in range(2):
        np.testing.assert_allclose(batch.fields["vx"][0, j], amplitude * np.sin(4 * y), rtol=0, atol=1e-6 * amplitude)
        assert np.abs(batch.fields["vy"][0, j]).max() < 1e-6 * amplitude
        expected_omega = -4.0 * amplitude * np.cos(4 * y)
        assert _rel(batch.fields["vorticity"][0, j], expected_omega) < 1e-6


def test_forcing_is_the_curl_of_sin_4y_in_x():
    n = 16
    _, y = _grid(n)
    forcing = _field(forcing_spectrum(n, 4, 1.0, CPU)[None], n)[0]
    np.testing.assert_allclose(forcing, -4.0 * np.cos(4 * y), atol=1e-13)


def test_velocity_is_divergence_free_to_round_off(tiny_batch):
    n = TINY["resolution"]
    kx = torch.fft.fftfreq(n, 1.0 / n, dtype=torch.float64)[:, None]
    ky = torch.fft.rfftfreq(n, 1.0 / n, dtype=torch.float64)[None, :]
    u = torch.from_numpy(tiny_batch.fields["vx"].astype(np.float64))
    v = torch.from_numpy(tiny_batch.fields["vy"].astype(np.float64))
    w = torch.from_numpy(tiny_batch.fields["vorticity"].astype(np.float64))
    u_hat, v_hat, w_hat = (torch.fft.rfft2(f) for f in (u, v, w))
    divergence = (1j * kx * u_hat + 1j * ky * v_hat).abs().amax()
    scale = (kx.abs() * u_hat.abs()).amax()
    assert divergence < 1e-6 * scale  # float32 storage; the float64 fields below are divergence-free to 1e-14
    curl = 1j * kx * v_hat - 1j * ky * u_hat
    assert (curl - w_hat).abs().amax() < 1e-5 * w_hat.abs().amax()  # the velocity belongs to the stored vorticity
    # In float64, straight from a vorticity spectrum:
    w64 = torch.from_numpy(random_vorticity_spectrum(np.random.default_rng(0), n, 8))[None]
    u64, v64 = velocity_from_vorticity(w64)
    assert (1j * kx * u64 + 1j * ky * v64).abs().amax() < 1e-14 * (kx.abs() * u64.abs()).amax()


def test_mean_vorticity_is_conserved():
    n = 32
    rng = np.random.default_rng(1)
    w0 = torch.from_numpy(5.0 * random_vorticity_spectrum(rng, n, 8))[None]
    # Forced, with drag: the mean is 0 and stays 0 (a periodic velocity has zero circulation).
    forced = VorticitySolver(w0.clone(), 1e-3, 0.1, 0.01, forcing_spectrum(n, 4, 1.0, CPU))
    forced.advance(200)
    assert forced.state[0, 0, 0].abs() < 1e-14 * forced.state.abs().amax()
    # Drag-free, with a non-zero initial mean: the conservative nonlinear term leaves it unchanged.
    w0[0, 0, 0] = 0.7
    free = VorticitySolver(w0.clone(), 1e-3, 0.0, 0.01)
    free.advance(200)
    assert abs(float(free.state[0, 0, 0].real) - 0.7) < 1e-14
    assert (free.state - w0).abs().amax() > 0.1  # the flow did evolve


def test_time_stepping_error_shrinks_at_fourth_order():
    n, nu, t_end = 32, 0.01, 1.0
    w0 = torch.from_numpy(3.0 * random_vorticity_spectrum(np.random.default_rng(2), n, 6))[None]
    forcing = forcing_spectrum(n, 4, 1.0, CPU)

    def solve(n_steps: int) -> np.ndarray:
        solver = VorticitySolver(w0.clone(), nu, 0.1, t_end / n_steps, forcing)
        return _field(solver.advance(n_steps), n)[0]

    ref = solve(640)
    errors = [_rel(solve(m), ref) for m in (10, 20, 40)]
    orders = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    assert all(3.6 <= p <= 4.4 for p in orders), (errors, orders)


def test_refining_the_dns_converges_the_stored_fields():
    """One state evolved for one time unit (Re = 100) on the 48^2, 72^2 and 96^2 DNS grids, filtered to the stored
    32^2 modes: refining from 72^2 to 96^2 changes the stored fields by under 1% of how much the flow itself moves
    (measured 0.5%), and far less than refining from 48^2 (which keeps only the stored modes) does (measured 6%).
    docs/pde_kolmogorov.md reports the same check for the 64^2 benchmark grid at Re = 1000."""
    w0 = torch.from_numpy(5.0 * random_vorticity_spectrum(np.random.default_rng(3), 96, 8))[None]
    stored = {}
    for n in (48, 72, 96):
        forcing = forcing_spectrum(n, 4, 1.0, CPU)
        solver = VorticitySolver(resample_spectrum(w0, n), 1e-2, 0.1, 0.2 * 48 / n / 8, forcing)
        stored[n] = _field(resample_spectrum(solver.advance(5 * 8 * n // 48), 32), 32)[0]
    change = _rel(stored[96], _field(resample_spectrum(w0, 32), 32)[0])
    coarse, medium = _rel(stored[48], stored[96]), _rel(stored[72], stored[96])
    assert medium < 0.01 * change and medium < coarse / 4, (coarse, medium, change)


# --- reproducibility and failure -------------------------------------------------------------------------------------
def test_same_seed_same_trajectory_whatever_the_batch(tiny_generator, tiny_batch):
    alone = tiny_generator.generate([5], 5, CPU).fields
    swapped = tiny_generator.generate([4, 3], 5, CPU).fields
    for name in ("vorticity", "vx", "vy"):
        together = tiny_batch.fields[name]
        assert np.array_equal(together[2], alone[name][0])
        assert np.array_equal(together[0], swapped[name][1]) and np.array_equal(together[1], swapped[name][0])
    assert not np.array_equal(tiny_batch.fields["vorticity"][0], tiny_batch.fields["vorticity"][1])
    # a fresh generator (its spin-up recomputed) gives the same bits
    again = KolmogorovGenerator(KolmogorovConfig(**TINY)).generate([4], 5, CPU).fields["vorticity"]
    assert np.array_equal(again[0], tiny_batch.fields["vorticity"][1])


@pytest.mark.parametrize("n", [64, 96, 128])
def test_solver_rows_do_not_depend_on_the_batch(n):
    """The batched 1-D FFTs of the solver round each trajectory the same whatever the batch around it."""
    w = torch.from_numpy(4.0 * np.stack([random_vorticity_spectrum(np.random.default_rng(i), n, 12) for i in range(3)]))
    forcing = forcing_spectrum(n, 4, 1.0, CPU)
    together = VorticitySolver(w.clone(), 1e-3, 0.1, 0.005, forcing).advance(2)
    for i in range(3):
        alone = VorticitySolver(w[i : i + 1].clone(), 1e-3, 0.1, 0.005, forcing).advance(2)
        assert torch.equal(together[i], alone[0])
    pair = VorticitySolver(w[1:].clone(), 1e-3, 0.1, 0.005, forcing).advance(2)
    assert torch.equal(pair, together[1:])


def test_absurd_time_step_raises_solver_diverged_with_seeds_and_time():
    config = KolmogorovConfig(**{**TINY, "substeps": 1, "frame_interval": 1.0, "spinup_time": 0.0})
    with pytest.raises(SolverDiverged, match="Courant") as info:
        KolmogorovGenerator(config).generate([11, 12], 3, CPU)
    assert info.value.seeds == [11, 12] and info.value.time == pytest.approx(1.0)


def test_blow_up_is_reported_as_non_finite():
    config = KolmogorovConfig(**{**TINY, "substeps": 1, "frame_interval": 2.0, "spinup_time": 0.0,
                                 "max_courant": 1e300})
    with pytest.raises(SolverDiverged, match="non-finite") as info:
        KolmogorovGenerator(config).generate([11], 200, CPU)
    assert info.value.seeds == [11] and info.value.time > 0


# --- the solver as a reference model ---------------------------------------------------------------------------------
def test_reference_solver_reproduces_stored_frames_to_1e_5(tiny_generator):
    """With the DNS on `solver_grid_for(resolution)` the stored frames carry the whole DNS state, so the reference
    solver at the stored resolution is the generator's solver and matches up to its float32 input (measured 7e-8)."""
    batch = tiny_generator.generate([21, 22], 5, CPU)
    frames = torch.from_numpy(np.stack([batch.fields[k] for k in ("vorticity", "vx", "vy")], axis=2))  # [B,T,3,..]
    params = {k: torch.from_numpy(v) for k, v in batch.parameters.items()}
    reference = tiny_generator.reference_solver()
    out = reference.advance(frames[:, 0], params, 4)
    assert out.dtype == torch.float32 and out.shape == frames[:, 4].shape
    for c in range(3):
        assert _rel(out[:, c].numpy(), frames[:, 4, c].numpy()) < 1e-5
    assert _rel(frames[:, 0, 0].numpy(), frames[:, 4, 0].numpy()) > 0.1  # four frames do move the flow
    # chained single frames give the same as one call of four
    chained = frames[:, 0]
    for _ in range(4):
        chained = reference.advance(chained, params, 1)
    assert _rel(chained.numpy(), out.numpy()) < 1e-5
    # a coarser solver row runs on its own grid and is less accurate
    coarse = tiny_generator.reference_solver((16, 16)).advance(frames[:, 0], params, 4)
    assert coarse.shape == out.shape and torch.isfinite(coarse).all()
    assert 1e-5 < _rel(coarse[:, 0].numpy(), frames[:, 4, 0].numpy()) < 1.0


@pytest.mark.parametrize(("resolution", "factor", "match"), [((31, 31), 1.0, "resolution"), ((64, 64), 1.0,
                         "resolution"), ((16, 8), 1.0, "resolution"), (None, 0.0, "time_step_factor")])
def test_reference_solver_rejects_bad_settings(tiny_generator, resolution, factor, match):
    with pytest.raises(ValueError, match=match):
        tiny_generator.reference_solver(resolution, factor)


def test_reference_solver_rejects_fields_of_the_wrong_shape(tiny_generator):
    with pytest.raises(ValueError, match=r"fields must be \[B, 3, 32, 32\]"):
        tiny_generator.reference_solver().advance(torch.zeros(1, 2, 32, 32), {}, 1)


# --- configuration, metadata and the driver --------------------------------------------------------------------------
EVEN = "an even whole number >= 8 (the spectral solver is written for even grids)"
CONTOUR = ("a number of contour points, an even whole number >= 4 (the ETDRK4 coefficients are averaged over "
           "complex-conjugate pairs of points on the unit circle)")


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("resolution", 31, f"a number of stored grid points per axis, {EVEN}"),
        ("resolution", 4, f"a number of stored grid points per axis, {EVEN}"),
        # cannot hold the 64^2 grid's modes: needs >= 94
        ("dns_resolution", 64, "at least 94 for resolution=64 (the DNS's 2/3-rule modes must hold every mode of the "
                               "stored grid)"),
        ("dns_resolution", 97, f"a number of DNS grid points per axis, {EVEN}"),
        ("reynolds", 0.0, "a Reynolds number, a finite number > 0"),
        ("reynolds", float("inf"), "a Reynolds number, a finite number > 0"),
        ("drag", -0.1, "a linear drag coefficient, a finite number >= 0"),
        ("forcing_wavenumber", 0, "a forcing wavenumber k_f, a whole number >= 1"),
        ("forcing_wavenumber", 32, "at most 31 for resolution=64 (the forcing must be a mode the stored grid holds)"),
        ("frame_interval", 0.0, "a time between stored frames, a finite number > 0"),
        ("substeps", 0, "a number of ETDRK4 steps per stored frame, a whole number >= 1"),
        ("max_courant", -1.0, "a Courant-number limit, a finite number > 0"),
        ("spinup_time", float("nan"), "a spin-up time, a finite number >= 0"),
        ("branch_time", -1.0, "a branch time, a finite number >= 0"),
        ("perturbation", -0.1, "a perturbation rms relative to the spun-up state, a finite number >= 0"),
        ("init_modes", 0, "the highest mode of the random fields, a whole number >= 1"),
        ("init_modes", 40, "at most 31 for resolution=64 (the random fields may only use modes the stored grid "
                           "holds)"),
        ("contour_points", 31, CONTOUR),
        ("spinup_seed", -1, "a seed of the spin-up's random field, a whole number >= 0"),
    ],
)
def test_config_rejects_bad_values(field, value, problem):
    with pytest.raises(SettingError) as info:
        KolmogorovConfig(**{field: value})
    assert str(info.value) == f"{field}={value} is not valid: expected {problem}"


def test_generate_shapes_dtypes_and_metadata(tiny_generator, tiny_batch):
    assert tiny_generator.pde == "kolmogorov" and tiny_generator.grid == "periodic"
    assert tiny_generator.frame_interval == pytest.approx(0.2)
    assert [f.name for f in tiny_generator.fields] == ["vorticity", "vx", "vy"]
    assert [p.name for p in tiny_generator.parameters] == ["nu", "drag", "dt"]
    x, y = tiny_generator.coordinates()
    assert (x.name, y.name) == ("x", "y")
    np.testing.assert_allclose(x.values, np.arange(32) * 2 * np.pi / 32)
    for name in ("vorticity", "vx", "vy"):
        f = tiny_batch.fields[name]
        assert f.shape == (3, 5, 32, 32) and f.dtype == np.float32 and np.isfinite(f).all()
    p = tiny_batch.parameters
    np.testing.assert_array_equal(p["nu"], 1e-3)
    np.testing.assert_array_equal(p["drag"], 0.1)
    np.testing.assert_array_equal(p["dt"], 0.2)
    assert tiny_batch.fields["vorticity"].std() > 1.0  # a developed flow, not the laminar state
    settings = tiny_generator.solver_settings()
    assert settings["solver"] == "etdrk4" and settings["dealiasing"] == "2/3" and settings["dns_resolution"] == 48
    with pytest.raises(ValueError, match="n_frames"):
        tiny_generator.generate([0], 0, CPU)


def test_tiny_preset_through_the_driver_passes_check_and_opens_in_xarray(compose_cfg, tmp_path: Path):
    cfg = compose_cfg("generate", ["pde=kolmogorov", "preset=tiny"])
    assert cfg["pde"]["benchmark"]["conserved"] == "mean"
    out = generate_dataset(cfg["pde"], "tiny", tmp_path, seed=0, batch_size=4, device="cpu", progress=False)
    assert out.name == "kolmogorov-tiny"
    sizes = cfg["pde"]["presets"]["tiny"]
    for split in ("train", "valid", "test"):
        path = out / f"{split}.h5"
        assert check_file(path) == []
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            n = sizes[split]
            assert ds["vorticity"].dims == ("traj", "time", "x", "y")
            assert ds["vorticity"].shape == (n["n_traj"], n["n_frames"], 32, 32)
            assert set(ds.data_vars) >= {"vorticity", "vx", "vy", "nu", "drag", "dt", "seed"}
            assert np.isfinite(ds["vx"].values).all()
