"""Transform Once (`t1`): the truncated per-axis transforms against scipy's DCT and numpy's FFT (the orthonormal DCT
itself is checked in test_spectral.py), the modes a grid keeps, the variance-preserving initialisation, the
reduced-order output, the settings and learning a tiny batch."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import scipy.fft
import torch
from test_fno import overfit

from baselines import MODELS, NetSpec, build_model
from baselines.registry import count_parameters
from baselines.spectral_transforms import AxisModes, GridTransform, along_dim, axis_kinds
from baselines.t1 import T1, T1Config, T1Layer
from pdebench.config.checks import SettingError
from pdebench.data.grid import Grid
from pdebench.errors import InvalidSetting

pytestmark = pytest.mark.usefixtures("one_torch_thread")

F64 = torch.float64


def net(spec: NetSpec, **settings) -> torch.nn.Module:
    return build_model(dataclasses.replace(T1Config.tiny(), **settings), spec)


def awake(module: torch.nn.Module) -> torch.nn.Module:
    """`module` with its head (initialised at ~1e-8, as the reference's) scaled to order one, so that the output
    shows what the layers do."""
    with torch.no_grad():
        module.head_in.normal_(0.0, 0.5)
        module.head_out.normal_(0.0, 0.5)
    return module


# --- the transforms ---------------------------------------------------------------------------------------------


def test_a_box_transform_is_scipys_2d_dct_cut_to_the_lowest_modes() -> None:
    x = np.random.default_rng(0).standard_normal((2, 3, 12, 9))
    transform = GridTransform((12, 9), ("dct", "dct"), (5, 30))  # axis 1 holds 9 < 30: all of it is kept
    z = transform.forward(torch.from_numpy(x))
    assert transform.kept_shape == (5, 9) and not z.is_complex()
    np.testing.assert_allclose(z.numpy(), scipy.fft.dctn(x, type=2, norm="ortho", axes=(-2, -1))[..., :5, :],
                               rtol=0, atol=1e-12)
    low = scipy.fft.dctn(x, type=2, norm="ortho", axes=(-2, -1))
    low[..., 5:, :] = 0.0
    np.testing.assert_allclose(transform.inverse(z).numpy(), scipy.fft.idctn(low, type=2, norm="ortho",
                                                                             axes=(-2, -1)), rtol=0, atol=1e-12)


def test_a_torus_transform_keeps_the_lowest_frequencies_of_each_sign() -> None:
    """n_modes 6 on a 16 x 10 torus: frequencies -3 .. 3 of the first axis, 0 .. 3 of the second (the real FFT's),
    as numpy's orthonormal FFT gives them; the inverse is the low-pass projection."""
    x = np.random.default_rng(1).standard_normal((2, 3, 16, 10))
    transform = GridTransform((16, 10), axis_kinds((True, True), dct_everywhere=False), (6, 6))
    assert [a.kind for a in transform.axes] == ["fft", "rfft"] and transform.kept_shape == (7, 4)
    z = transform.forward(torch.from_numpy(x))
    full = np.fft.rfft2(x, norm="ortho")
    rows = [0, 1, 2, 3, 13, 14, 15]
    np.testing.assert_allclose(z.numpy(), full[..., rows, :4], rtol=0, atol=1e-12)
    low = np.zeros_like(full)
    low[..., rows, :4] = full[..., rows, :4]
    np.testing.assert_allclose(transform.inverse(z).numpy(), np.fft.irfft2(low, s=(16, 10), norm="ortho"),
                               rtol=0, atol=1e-12)


def test_a_mixed_grid_takes_the_dct_across_walls_and_the_fft_along_the_periodic_axis() -> None:
    assert axis_kinds((False, True), dct_everywhere=False) == ("dct", "rfft")
    assert axis_kinds((True, False), dct_everywhere=False) == ("rfft", "dct")
    assert axis_kinds((True, True), dct_everywhere=True) == ("dct", "dct")
    x = np.random.default_rng(2).standard_normal((2, 1, 8, 12))
    transform = GridTransform((8, 12), ("dct", "rfft"), (3, 8))
    expected = np.fft.rfft(scipy.fft.dct(x, type=2, norm="ortho", axis=-2), axis=-1, norm="ortho")[..., :3, :5]
    z = transform.forward(torch.from_numpy(x))
    np.testing.assert_allclose(z.numpy(), expected, rtol=0, atol=1e-12)
    twice = transform.inverse(transform.forward(transform.inverse(z)))
    np.testing.assert_allclose(twice.numpy(), transform.inverse(z).numpy(), rtol=0, atol=1e-12)  # a projection


def test_each_axis_is_transformed_along_itself_wherever_it_sits() -> None:
    """A grid periodic along its first axis and walled along the second: the real FFT runs across the first axis
    (not the last) both ways. A complex FFT on the last axis leaves complex values for the DCT of the first axis to
    invert, part by part; the inverse still returns a real field, numpy's and scipy's low-pass projection."""
    x = np.random.default_rng(3).standard_normal((2, 1, 10, 8))
    transform = GridTransform((10, 8), ("rfft", "dct"), (6, 3))
    full = np.fft.rfft(scipy.fft.dct(x, type=2, norm="ortho", axis=-1), axis=-2, norm="ortho")
    z = transform.forward(torch.from_numpy(x))
    np.testing.assert_allclose(z.numpy(), full[..., :4, :3], rtol=0, atol=1e-12)
    low = np.zeros_like(full)
    low[..., :4, :3] = full[..., :4, :3]
    expected = scipy.fft.idct(np.fft.irfft(low, n=10, axis=-2, norm="ortho"), type=2, norm="ortho", axis=-1)
    np.testing.assert_allclose(transform.inverse(z).numpy(), expected, rtol=0, atol=1e-12)

    transform = GridTransform((10, 8), ("dct", "fft"), (3, 4))  # frequencies -2 .. 2 of the last axis
    full = np.fft.fft(scipy.fft.dct(x, type=2, norm="ortho", axis=-2), axis=-1, norm="ortho")
    columns = [0, 1, 2, 6, 7]
    z = transform.forward(torch.from_numpy(x))
    np.testing.assert_allclose(z.numpy(), full[..., :3, columns], rtol=0, atol=1e-12)
    low = np.zeros_like(full)
    low[..., :3, columns] = full[..., :3, columns]
    back = transform.inverse(z)
    assert back.dtype == F64
    expected = scipy.fft.idct(np.fft.ifft(low, axis=-1, norm="ortho"), type=2, norm="ortho", axis=-2).real
    np.testing.assert_allclose(back.numpy(), expected, rtol=0, atol=1e-12)


def test_along_dim_runs_a_last_axis_transform_along_any_axis_and_on_both_complex_parts() -> None:
    """A running sum stands for a last-axis transform: applied along each axis, counted from either end, of a real
    and of a complex tensor it gives torch's own cumulative sum along that axis."""
    real = torch.randn(2, 5, 4, dtype=F64)
    for t in (real, torch.complex(real, torch.randn(2, 5, 4, dtype=F64))):
        for dim in (0, 1, 2, -1, -2, -3):
            assert torch.allclose(along_dim(lambda v: v.cumsum(-1), t, dim), t.cumsum(dim), rtol=0, atol=1e-12), dim


def test_a_grid_holding_fewer_modes_keeps_what_it_holds() -> None:
    """n_modes m keeps m DCT coefficients, frequencies 0 .. m // 2 of the real FFT's axis and -m // 2 .. m // 2 of
    another FFT axis; a short axis keeps every mode it has, in the lowest weight slots of each end."""
    assert [(a.slots, a.head, a.tail) for a in (AxisModes("dct", 64, 24), AxisModes("rfft", 64, 24),
                                                  AxisModes("fft", 64, 24), AxisModes("fft", 64, 5))] == [
        (24, 24, 0), (13, 13, 0), (25, 13, 12), (5, 3, 2)]
    assert [(a.head, a.tail, a.kept) for a in (AxisModes("dct", 8, 24), AxisModes("rfft", 8, 24),
                                                AxisModes("fft", 8, 24), AxisModes("fft", 7, 24),
                                                AxisModes("fft", 8, 8), AxisModes("fft", 10, 8))] == [
        (8, 0, 8), (5, 0, 5), (4, 4, 8), (4, 3, 7), (4, 4, 8), (5, 4, 9)]
    transform = GridTransform((7,), ("fft",), (24,))
    weight = torch.arange(25.0)
    assert transform.kept_slots(weight, 0, (0,)).tolist() == [0, 1, 2, 3, 22, 23, 24]
    with pytest.raises(ValueError, match="weight axis 0 has 24 slots, the grid axis 0 25"):
        transform.kept_slots(weight[:24], 0, (0,))


def test_the_fft_projection_commutes_with_rolls_and_the_dct_one_does_not() -> None:
    """Why the grid's own transform is the default on a torus: keeping low FFT modes commutes with translations; a
    DCT treats the ends of the axis as walls, and keeping its low modes smears the jump it sees there."""
    x = torch.randn(2, 3, 32, 32, dtype=F64)
    for kinds, commutes in ((("fft", "rfft"), True), (("dct", "dct"), False)):
        transform = GridTransform((32, 32), kinds, (12, 12))
        def low(t: torch.Tensor) -> torch.Tensor:
            return transform.inverse(transform.forward(t))  # noqa: B023
        gap = (low(x.roll((5, -3), dims=(-2, -1))) - low(x).roll((5, -3), dims=(-2, -1))).abs().max()
        assert (gap < 1e-12) if commutes else (gap > 0.1)


# --- the net ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kinds, shape, n_modes", [
    (("dct",), (64,), (16,)), (("rfft",), (64,), (16,)), (("dct", "dct"), (32, 32), (8, 8)),
    (("fft", "rfft"), (32, 32), (8, 8)), (("dct", "rfft"), (32, 24), (8, 12))])
def test_the_channel_mixing_initialisation_preserves_the_variance(kinds, shape, n_modes) -> None:
    """White noise through the forward transform, one layer's channel mixing and the inverse transform keeps its
    variance: within 3% on DCT axes and 15% with an FFT axis (the reference's formula counts the frequency 0, whose
    imaginary part the inverse drops, like the others). Without the factor sqrt(N / M) it would fall to about M / N
    (at most 0.25 here)."""
    torch.manual_seed(0)
    transform = GridTransform(shape, kinds, n_modes)
    assert transform.coefficient_count() / math.prod(shape) <= 0.25
    layer = T1Layer(16, transform, residual=False).double().requires_grad_(False)
    h = torch.randn(16, 16, *shape, dtype=F64)
    ratio = float(transform.inverse(layer.mix_channels(transform.forward(h))).var() / h.var())
    low = 0.97 if not transform.is_complex else 0.8
    assert low < ratio < 1.05, ratio


def test_the_residual_adds_the_layer_input_to_its_output() -> None:
    """With `residual` a layer returns exactly its input plus what the same layer without it returns."""
    torch.manual_seed(0)
    transform = GridTransform((16,), ("rfft",), (8,))
    with_input = T1Layer(4, transform, residual=True).double()
    without = T1Layer(4, transform, residual=False).double()
    without.load_state_dict(with_input.state_dict())
    z = transform.forward(torch.randn(2, 4, 16, dtype=F64))
    assert float(z.abs().max()) > 0.1
    assert torch.allclose(with_input(z) - without(z), z, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("kind", "n", "n_modes", "std"), [
    ("dct", 64, 16, 1 / 4), ("rfft", 64, 16, 0.5 / 3), ("dct", 8, 16, 1 / math.sqrt(8))])
def test_the_mode_mixing_initialisation_is_kaiming_over_the_kept_modes(kind: str, n: int, n_modes: int,
                                                                       std: float) -> None:
    """Each axis's mode mixing ~ N(0, g^2 / M_axis), M_axis the modes the grid keeps on that axis: 16 DCT modes give
    a standard deviation of 1/4; 9 real-FFT frequencies (g = 1/2 for each of the real and imaginary parts) 1/6; a
    grid of 8 points asked for 16 DCT modes keeps 8 (1/sqrt(8)), though it has 16 slots."""
    torch.manual_seed(0)
    transform = GridTransform((n,), (kind,), (n_modes,))
    layer = T1Layer(32, transform, residual=True)
    (weight,) = layer.axis_mixing
    assert weight.shape[:3] == (transform.axes[0].slots, transform.axes[0].slots, 32)
    assert abs(float(weight.std()) / std - 1) < 0.05


def test_the_output_holds_only_the_kept_modes_and_returns_to_the_grid() -> None:
    """One inverse transform at the end: the output is a physical field on the grid whose spectrum beyond the kept
    modes is zero, on a torus (FFT) and in a box (DCT)."""
    torch.manual_seed(0)
    for kind, kinds in (("periodic", ("fft", "rfft")), ("box", ("dct", "dct"))):
        spec = NetSpec(("u", "v"), 2, 1, ("a",), Grid.uniform(kind, (32, 24)))
        model = awake(net(spec, n_modes=[10]))
        out = model(torch.randn(3, 4, 32, 24), torch.randn(3, 1))
        assert out.shape == (3, 2, 32, 24) and out.dtype == torch.float32
        transform = GridTransform((32, 24), kinds, (10, 10))
        assert float(out.detach().square().mean()) > 1e-2
        assert torch.allclose(transform.inverse(transform.forward(out)), out, atol=1e-5)
        wider = GridTransform((32, 24), kinds, (16, 16))
        assert (wider.inverse(wider.forward(torch.randn_like(out))) - torch.randn_like(out)).abs().max() > 0.1


def test_the_weights_of_modes_a_grid_lacks_act_on_nothing() -> None:
    """T1 asking for 16 modes on an 8 x 8 torus is T1 asking for 8 with the slots the grid holds: frequencies 0..3
    and -4..-1 of the first axis (slots 0..3 and 13..16 of 17; 0..3 and 5..8 of 9: frequency 4 is -4 on this grid,
    and slot 4 of either acts on nothing), 0..4 of the second (slots 0..4 of 9 and of 5)."""
    spec = NetSpec(("u",), 1, 1, ("a",), Grid.uniform("periodic", (8, 8)))
    torch.manual_seed(0)
    wide = awake(net(spec, n_modes=[16]))
    held = net(spec, n_modes=[8])
    first_axis = torch.tensor([0, 1, 2, 3, 4, 13, 14, 15, 16])

    def cut(key: str, value: torch.Tensor) -> torch.Tensor:
        if key.endswith("channel_mixing"):
            return value[:, :, first_axis][:, :, :, :5]
        if key.endswith("axis_mixing.0"):
            return value[first_axis][:, first_axis]
        if key.endswith("axis_mixing.1"):
            return value[:5, :5]
        return value

    held.load_state_dict({key: cut(key, value) for key, value in wide.state_dict().items()})
    x, cond = torch.randn(2, 1, 8, 8), torch.randn(2, 1)
    out = wide(x, cond)
    assert torch.allclose(held(x, cond), out, atol=1e-6)
    with torch.no_grad():
        wide.layers[0].channel_mixing[:, :, 4:13].normal_()
        wide.layers[0].axis_mixing[1][5:].normal_()
    assert torch.equal(wide(x, cond), out)
    with torch.no_grad():
        wide.layers[0].channel_mixing[:, :, 13].normal_()
    assert (wide(x, cond) - out).abs().max() > 1e-3


def test_residual_conditioning_position_and_transform_each_change_the_output() -> None:
    spec = NetSpec(("u",), 2, 1, ("a", "b"), Grid.uniform("periodic", (32,)))
    x, cond = torch.randn(2, 2, 32), torch.randn(2, 2)

    def output(**settings) -> torch.Tensor:
        torch.manual_seed(0)
        return awake(net(spec, **settings))(x, cond)

    base = output()
    for settings in ({"residual": False}, {"positional_embedding": False}, {"transform": "dct"}):
        assert (output(**settings) - base).abs().max() > 1e-2, settings
    torch.manual_seed(0)
    model = awake(net(spec))
    assert (model(x, cond) - model(x, cond + 1.0)).abs().max() > 1e-2
    with pytest.raises(ValueError, match=r"model t1 expects conditioning of shape \[batch, 2\], got \(2, 3\)"):
        model(x, torch.randn(2, 3))


def test_mixed_precision_runs_the_transforms_in_float32() -> None:
    """torch.fft takes no bfloat16: under autocast the lift runs in bfloat16, the spectral part in float32."""
    torch.manual_seed(0)
    for kind in ("periodic", "box"):
        model = awake(net(NetSpec(("u",), 1, 1, ("a",), Grid.uniform(kind, (16, 16)))))
        x, cond = torch.randn(2, 1, 16, 16), torch.randn(2, 1)
        with torch.no_grad():
            full = model(x, cond)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                mixed = model(x, cond)
        assert mixed.dtype == torch.float32
        assert 0 < float((mixed - full).abs().max()) < 2e-2 * float(full.abs().max())


def test_a_double_precision_net_computes_in_double() -> None:
    """Only reduced-precision lifts are raised to float32: a float64 net keeps float64 through the transforms and
    agrees with its float32 copy."""
    for kind in ("periodic", "box"):
        torch.manual_seed(0)
        model = awake(net(NetSpec(("u",), 1, 1, ("a",), Grid.uniform(kind, (16, 16)))))
        x, cond = torch.randn(2, 1, 16, 16), torch.randn(2, 1)
        with torch.no_grad():
            single = model(x, cond)
            double = model.double()(x.double(), cond.double())
        assert double.dtype == F64
        assert torch.allclose(double.float(), single, rtol=0, atol=1e-4 * float(single.abs().max()))


def test_the_untrained_net_outputs_about_zero_as_the_reference() -> None:
    spec = NetSpec(("u", "v"), 1, 1, (), Grid.uniform("box", (32, 32)))
    torch.manual_seed(0)
    out = build_model(T1Config(), spec)(torch.randn(2, 2, 32, 32), torch.zeros(2, 0))
    assert 0 < float(out.detach().abs().max()) < 1e-9


def test_the_head_starts_as_normal_noise_of_standard_deviation_1e_8() -> None:
    """Both head matrices ~ N(0, 1e-16), the reference's initialisation (module docstring)."""
    spec = NetSpec(("u", "v"), 1, 1, (), Grid.uniform("box", (32, 32)))
    torch.manual_seed(0)
    model = build_model(T1Config(), spec)
    for weight in (model.head_in, model.head_out):
        assert abs(float(weight.detach().std()) / 1e-8 - 1) < 0.2 and abs(float(weight.detach().mean())) < 3e-9


def test_parameter_counts_follow_the_layout() -> None:
    """Lift (inputs, conditioning, coordinates -> W, with bias), per layer W x W per kept slot plus one slots x slots
    matrix per axis and channel, head W -> 128 -> out without bias; complex (FFT) weights count twice."""
    w, out_channels, lift = 48, 2, (2 * 3 + 1 + 2) * 48 + 48
    box = NetSpec(("u", "v"), 3, 1, ("a",), Grid.uniform("box", (64, 64)))
    layer = w * w * 24 * 24 + 2 * 24 * 24 * w
    assert count_parameters(build_model(T1Config(), box)) == lift + 8 * layer + w * 128 + 128 * out_channels
    torus = dataclasses.replace(box, grid=Grid.uniform("periodic", (64, 64)))
    layer = 2 * (w * w * 25 * 13 + 25 * 25 * w + 13 * 13 * w)
    assert count_parameters(build_model(T1Config(), torus)) == lift + 8 * layer + 2 * (w * 128 + 128 * out_channels)
    assert [p.count() for p in T1Config.published_sizes()] == [p.published for p in T1Config.published_sizes()]


def test_the_published_sizes_name_the_reference_settings() -> None:
    """The rows `pdebench-models --reference` prints: the setting in words, the data it is built for, the source."""
    navier_stokes, airfoil = T1Config.published_sizes()
    assert navier_stokes.spec == NetSpec(("vorticity",), 1, 1, (), Grid.uniform("periodic", (64, 64)))
    assert navier_stokes.setting == (
        "T1 on Navier-Stokes (FNO's vorticity data, 64 x 64 torus): the vorticity at one time in, at a later time out, "
        "width 48, 24 x 24 DCT modes (the DCT also on the periodic axes), 8 layers")
    assert navier_stokes.source == (
        "github.com/DiffEqML/kairos: src/models/t1.py T1_2d (layers: src/models/layers/fdm2d.py T1Layer2d) with "
        "configs/experiment/navier-stokes/t1.yaml (modes 24, width 48, nlayers 8, signal_resolution 64 x 64, "
        "transform dct), counted by instantiating T1_2d")
    assert airfoil.spec == NetSpec(("p", "vx", "vy"), 1, 1, (), Grid.uniform("box", (128, 128)))
    assert airfoil.setting == ("T1 on the airfoil flows (DFP, 128 x 128 box): 3 channels in, 3 out, width 48, 64 x 64 "
                               "DCT modes, 6 layers")
    assert airfoil.source == (
        "github.com/DiffEqML/kairos: src/models/t1.py T1_2d (layers: src/models/layers/fdm2d.py T1Layer2d) with "
        "configs/experiment/dfp128/t1.yaml (modes 64, width 48, nlayers 6, in and out channels 3, transform dct), "
        "counted by instantiating T1_2d")


def test_the_tiny_config_is_smaller_than_the_defaults_in_each_size() -> None:
    """Each of width, modes, layers and head channels of `tiny()` is below the default: restoring any one of them to
    its default makes the net larger."""
    spec = NetSpec(("u",), 1, 1, (), Grid.uniform("periodic", (32,)))
    tiny, defaults = T1Config.tiny(), T1Config()
    count = count_parameters(build_model(tiny, spec))
    for key in ("hidden_channels", "n_modes", "n_layers", "head_channels"):
        larger = dataclasses.replace(tiny, **{key: getattr(defaults, key)})
        assert count < count_parameters(build_model(larger, spec)), key


@pytest.mark.slow  # trains for hundreds of steps
def test_t1_overfits_a_tiny_batch() -> None:
    """On a torus (FFT coefficients) and in a box (DCT coefficients)."""
    torch.manual_seed(0)
    grid = torch.linspace(0, 2 * torch.pi, 33)[:-1]
    x = torch.stack([torch.sin(k * grid) for k in (1, 2, 3, 4)]).unsqueeze(1)
    y = torch.roll(x, 3, dims=-1) * 0.5 + x**2
    torus = NetSpec(("u",), 1, 1, ("a",), Grid.uniform("periodic", (32,)))
    assert overfit(build_model(MODELS["t1"].config.tiny(), torus), x, y, torch.randn(4, 1), 300) > 1000
    torch.manual_seed(0)
    rows, columns = torch.meshgrid(torch.linspace(0, 1, 16), torch.linspace(0, 1, 24), indexing="ij")
    x = torch.stack([torch.cos(torch.pi * (a * rows + b * columns)) for a, b in ((1, 0), (0, 2), (2, 1), (1, 3))])
    x = x.unsqueeze(1)
    y = 0.5 * x.flip(-1) + x**2
    box = NetSpec(("u",), 1, 1, ("a",), Grid.uniform("box", (16, 24)))
    assert overfit(build_model(MODELS["t1"].config.tiny(), box), x, y, torch.randn(4, 1), 300) > 40


# --- settings -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("settings, key, message", [
    ({"hidden_channels": 0}, "hidden_channels",
     "hidden_channels=0 is not valid: expected a number of channels, a whole number >= 1"),
    ({"n_layers": 1.5}, "n_layers", "n_layers=1.5 is not valid: expected a number of layers, a whole number >= 1"),
    ({"head_channels": -1}, "head_channels", "head_channels=-1 is not valid: expected a number of channels, a whole "
                                             "number >= 1"),
    ({"n_modes": []}, "n_modes", "n_modes=[] is not valid: expected a non-empty list of kept modes per axis, each a "
                                 "whole number >= 1"),
    ({"n_modes": [8, 0]}, "n_modes", "n_modes=[8,0] is not valid: expected a non-empty list of kept modes per axis, "
                                     "each a whole number >= 1"),
    ({"transform": "fft"}, "transform", "transform=fft is not valid: expected one of grid, dct (grid: the DCT on axes "
                                        "with walls and the FFT on periodic ones; dct: the DCT on every axis)")])
def test_settings_are_checked_by_name(settings: dict, key: str, message: str) -> None:
    with pytest.raises(SettingError) as error:
        T1Config(**settings)
    assert error.value.key == key and str(error.value) == message


def test_the_smallest_settings_are_accepted() -> None:
    """One channel, one layer, one head channel and one mode a axis build a net that maps the grid's shape."""
    config = T1Config(hidden_channels=1, n_layers=1, head_channels=1, n_modes=[1], transform="dct")
    model = build_model(config, NetSpec(("u",), 1, 1, (), Grid.uniform("periodic", (8,))))
    assert model(torch.randn(2, 1, 8), torch.zeros(2, 0)).shape == (2, 1, 8)


def test_a_transform_refuses_what_does_not_fit_it_in_one_sentence() -> None:
    with pytest.raises(ValueError) as error:
        GridTransform((8,), ("dct", "dct"), (4,))
    assert str(error.value) == "need one kind and one n_modes per axis of (8,), got ('dct', 'dct') and (4,)"
    for kind, n, n_modes in (("dst", 8, 4), ("dct", 0, 4), ("dct", 8, 0)):
        with pytest.raises(ValueError) as error:
            AxisModes(kind, n, n_modes)
        assert str(error.value) == (f"an axis needs a kind in ('dct', 'rfft', 'fft'), n >= 1 and n_modes >= 1, got "
                                    f"AxisModes(kind='{kind}', n={n}, n_modes={n_modes})")
    assert AxisModes("fft", 1, 1).kept == 1
    transform = GridTransform((8,), ("dct",), (4,))
    with pytest.raises(ValueError) as error:
        transform.forward(torch.zeros(1, 1, 9))
    assert str(error.value) == "the transform is set up for the grid (8,), got fields of shape (1, 1, 9)"
    with pytest.raises(ValueError) as error:
        transform.inverse(torch.zeros(1, 1, 5))
    assert str(error.value) == "expected coefficients of kept shape (4,), got (1, 1, 5)"


def test_the_coordinates_run_from_zero_at_the_first_point_to_one_at_the_last() -> None:
    """The positional inputs (the reference's): axis by axis, in the sample's dtype, the same for every sample."""
    model = net(NetSpec(("u",), 1, 1, (), Grid.uniform("box", (3, 5))))
    coordinates = model.coordinates(torch.zeros(2, 1, 3, 5, dtype=F64))
    assert coordinates.shape == (2, 2, 3, 5) and coordinates.dtype == F64
    rows, columns = torch.tensor([0.0, 0.5, 1.0], dtype=F64), torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=F64)
    for sample in coordinates:
        assert torch.equal(sample[0], rows[:, None].expand(3, 5)) and torch.equal(sample[1], columns.expand(3, 5))


def test_the_sphere_and_mismatched_modes_are_refused_in_one_sentence() -> None:
    """Refusals name the model and what it serves; a net built directly, without the registry's check, refuses
    mismatched modes with the same sentence."""
    config = T1Config()
    with pytest.raises(InvalidSetting) as error:
        config.check_spec(NetSpec(("h",), 1, 1, (), Grid.gaussian(16, 32)))
    assert str(error.value) == ("model t1 does not support grid kind 'sphere': it transforms each axis by a DCT or an "
                                "FFT, which the sphere's latitude and poles do not fit (sfno serves the sphere)")
    with pytest.raises(InvalidSetting) as error:
        config.check_spec(NetSpec(("u",), 1, 1, (), Grid.uniform("box", (4, 4, 4))))
    assert str(error.value) == "model t1 supports 1-D and 2-D grids, got a grid with 3 spatial axes"
    mismatched = NetSpec(("u",), 1, 1, (), Grid.uniform("box", (16, 16)))
    for refuse in (T1Config(n_modes=[8, 8, 8]).check_spec, lambda spec: T1(spec, T1Config(n_modes=[8, 8, 8]))):
        with pytest.raises(InvalidSetting) as error:
            refuse(mismatched)
        assert str(error.value) == ("model.n_modes has 3 entries but the data has 2 spatial dims (model t1: give one "
                                    "entry, or one per axis)")
    config.check_spec(NetSpec(("u",), 1, 1, (), Grid.uniform("box", (16, 16))))  # fewer points than modes: adapted
