"""SineNet: shapes in 1-D, 2-D and on the sphere, translation equivariance on periodic axes, conditioning, learning,
the published parameter budget (about 35.5M at width 64 for every number of waves) and refusals."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from baselines import NetSpec, build_model, model_config
from baselines.sinenet import (
    PUBLISHED_MULTIPLIERS,
    SineNet,
    SineNetConfig,
    multiplier_for_budget,
    parameter_count,
)
from baselines.unet import UNetConfig
from pdebench.data.grid import Grid

TINY = SineNetConfig.tiny()
FACTOR = TINY.downsampling_factor  # 4: every tiny wave pools twice

# The PDEArena smoke task SineNet was published on: smoke and velocity (3 fields), 4 history frames, 1 output frame,
# 128 x 128 cells in a closed box.
SMOKE_FIELDS, SMOKE_HISTORY, SMOKE_GRID = ("smoke", "vx", "vy"), 4, Grid.uniform("box", (128, 128))


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Nets this small run fastest on one thread, and the tests share the machine's cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def spec_on(kind: str, shape: tuple[int, ...], n_cond: int = 2, fields: tuple[str, ...] = ("u",), history: int = 1,
            bundle: int = 1) -> NetSpec:
    return NetSpec(fields, history, bundle, tuple(f"p{i}" for i in range(n_cond)), Grid.uniform(kind, shape))


def rolled(x: torch.Tensor, shift: int, axes: tuple[int, ...]) -> torch.Tensor:
    return torch.roll(x, (shift,) * len(axes), tuple(2 + a for a in axes))


def n_parameters(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize(("kind", "shape"), [("periodic", (32,)), ("box", (16,)), ("periodic", (16, 32)),
                                             ("box", (16, 16)), ("sphere", (16, 32))])
def test_sinenet_maps_shapes_and_every_parameter_learns(kind: str, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    spec = spec_on(kind, shape, n_cond=2, fields=("u", "v"), history=2, bundle=3)
    net = build_model(TINY, spec)
    out = net(torch.randn(3, 4, *shape), torch.randn(3, 2))
    assert out.shape == (3, 6, *shape)
    out.square().mean().backward()
    missing = [name for name, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


def test_sinenet_waves_are_disentangled() -> None:
    """From the second pooled level on, a wave's blocks also see the wave's own input pooled to that level."""
    net = build_model(TINY, spec_on("periodic", (32,)))
    width, first, second = TINY.level_channels
    wave = net.waves[0]
    assert wave.down_blocks[0][0].conv1.conv.in_channels == width
    assert wave.down_blocks[1][0].conv1.conv.in_channels == first + width
    assert len(net.waves) == TINY.waves


@pytest.mark.parametrize("shape", [(32,), (16, 16)])
def test_sinenet_is_translation_equivariant_for_multiples_of_its_pooling(shape: tuple[int, ...]) -> None:
    """Circular padding and periodic interpolation commute with every roll, 2x pooling only with even ones; so the
    net commutes with rolls by multiples of 2 ** levels (4 for the tiny net), and not with a roll by one cell."""
    torch.manual_seed(0)
    net = build_model(TINY, spec_on("periodic", shape)).double()
    x = torch.randn(2, 1, *shape, dtype=torch.float64)
    cond = torch.randn(2, 2, dtype=torch.float64)
    axes = tuple(range(len(shape)))
    for shift in (FACTOR, 3 * FACTOR):
        torch.testing.assert_close(net(rolled(x, shift, axes), cond), rolled(net(x, cond), shift, axes),
                                   rtol=0, atol=1e-5)
    assert (net(rolled(x, 1, axes), cond) - rolled(net(x, cond), 1, axes)).abs().max() > 1e-3


def test_sinenet_wraps_longitude_but_not_latitude_on_the_sphere() -> None:
    torch.manual_seed(0)
    net = build_model(TINY, spec_on("sphere", (16, 32))).double()
    x = torch.randn(2, 1, 16, 32, dtype=torch.float64)
    cond = torch.randn(2, 2, dtype=torch.float64)
    torch.testing.assert_close(net(rolled(x, FACTOR, (1,)), cond), rolled(net(x, cond), FACTOR, (1,)),
                               rtol=0, atol=1e-5)
    assert (net(rolled(x, FACTOR, (0,)), cond) - rolled(net(x, cond), FACTOR, (0,))).abs().max() > 1e-3


def test_sinenet_uses_its_conditioning_and_serves_none() -> None:
    torch.manual_seed(0)
    net = build_model(TINY, spec_on("periodic", (32,), n_cond=3))
    x = torch.randn(2, 1, 32)
    cond = torch.randn(2, 3)
    other = cond.clone()
    other[:, 1] += 0.5
    assert (net(x, cond) - net(x, other)).abs().max() > 1e-4
    plain = build_model(TINY, spec_on("periodic", (32,), n_cond=0))
    assert plain.embedding is None and plain(x, torch.zeros(2, 0)).shape == (2, 1, 32)
    with pytest.raises(ValueError, match=r"model sinenet expects conditioning of shape \[batch, 3\], got \(2, 4\)"):
        net(x, torch.zeros(2, 4))


@pytest.mark.parametrize("shape", [(32,), (16, 16)])
def test_sinenet_overfits_one_tiny_batch(shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    net = build_model(TINY, spec_on("periodic", shape, n_cond=1))
    coords = torch.meshgrid(*(torch.linspace(0, 2 * torch.pi, n + 1)[:-1] for n in shape), indexing="ij")
    x = torch.stack([torch.sin(k * coords[0] + (coords[-1] if len(shape) > 1 else 0)) for k in (1, 2, 3, 4)])
    x = x.unsqueeze(1)
    y = torch.roll(x, 3, dims=2) * 0.5 + x**2
    cond = torch.randn(4, 1)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    initial = F.mse_loss(net(x, cond), y).item()
    for _ in range(400):
        optimizer.zero_grad()
        loss = F.mse_loss(net(x, cond), y)
        loss.backward()
        optimizer.step()
        if loss.item() < initial / 200:
            break
    assert loss.item() < initial / 100


@pytest.fixture(scope="module")
def counts_over_waves() -> dict[int, int]:
    """Parameters of the reference SineNet (width 64, published multipliers) on the smoke task, per K, counted on
    the meta device (`parameter_count`, checked against a built net below)."""
    spec = NetSpec(SMOKE_FIELDS, SMOKE_HISTORY, 1, (), SMOKE_GRID)
    return {k: parameter_count(SineNetConfig(waves=k), spec) for k in sorted(PUBLISHED_MULTIPLIERS)}


def test_parameter_count_is_about_equal_over_the_number_of_waves(counts_over_waves: dict[int, int]) -> None:
    unet = n_parameters(build_model(UNetConfig(), NetSpec(SMOKE_FIELDS, SMOKE_HISTORY, 1, (), SMOKE_GRID)))
    low, high = min(counts_over_waves.values()), max(counts_over_waves.values())
    spread = (high - low) / low
    print("sinenet parameters on 2-D smoke at width 64: "
          + ", ".join(f"K={k}: {n / 1e6:.3f}M" for k, n in counts_over_waves.items())
          + f"; spread {spread:.2%}; unet (1, 2, 2, 4) at width 64: {unet / 1e6:.2f}M")
    assert spread < 0.005
    assert all(35.0e6 < n < 36.0e6 for n in counts_over_waves.values())


def test_budget_search_recovers_the_published_multipliers_and_matches_the_unet() -> None:
    """Solving for a 35.5M budget on the smoke task gives back the published multiplier of every K (so our waves
    have the published layout), and solving for the reference U-Net's count gives every K that count within 1%."""
    spec = NetSpec(SMOKE_FIELDS, SMOKE_HISTORY, 1, (), SMOKE_GRID)
    unet = n_parameters(build_model(UNetConfig(), spec))
    matched = {}
    for waves, published in PUBLISHED_MULTIPLIERS.items():
        config = SineNetConfig(waves=waves)
        assert multiplier_for_budget(config, spec, 35_500_000) == pytest.approx(published, abs=2e-3)
        matched[waves] = multiplier_for_budget(config, spec, unet)
        count = parameter_count(dataclasses.replace(config, channel_multiplier=matched[waves]), spec)
        assert 0.99 * unet <= count <= unet
    print("sinenet multipliers matching the unet's", f"{unet / 1e6:.2f}M parameters:",
          ", ".join(f"K={k}: {m:.4f}" for k, m in sorted(matched.items())))
    assert [matched[k] for k in sorted(matched)] == sorted(matched.values(), reverse=True)
    with pytest.raises(ValueError, match="a budget of 1000 parameters is outside what model sinenet with waves=8"):
        multiplier_for_budget(SineNetConfig(), spec, 1000)


def test_reference_yaml_lands_at_the_published_size(compose_cfg) -> None:
    """conf/model/sinenet.yaml (K = 8, width 64) on the 2-D smoke task: about 35.5M parameters, as published;
    conditioning on a few scalars (buoyancy, dt, dx) adds under 2%."""
    config = model_config(compose_cfg("train", ["model=sinenet"])["model"])
    assert config == SineNetConfig() and config.multiplier == PUBLISHED_MULTIPLIERS[8]
    plain = build_model(config, NetSpec(SMOKE_FIELDS, SMOKE_HISTORY, 1, (), SMOKE_GRID))
    assert isinstance(plain, SineNet) and 35.2e6 < n_parameters(plain) < 35.8e6
    assert parameter_count(config, NetSpec(SMOKE_FIELDS, SMOKE_HISTORY, 1, (), SMOKE_GRID)) == n_parameters(plain)
    conditioned = build_model(config, NetSpec(SMOKE_FIELDS, SMOKE_HISTORY, 1, ("buoyancy", "dt", "dx"), SMOKE_GRID))
    assert n_parameters(plain) < n_parameters(conditioned) < 1.02 * n_parameters(plain)


def test_sinenet_refuses_what_it_cannot_serve() -> None:
    with pytest.raises(ValueError, match="model sinenet supports 1-D and 2-D grids, got a grid with 3 spatial axes"):
        build_model(TINY, spec_on("periodic", (8, 8, 8)))
    with pytest.raises(ValueError, match=r"model sinenet halves the grid 4 times \(model.levels=4\), so every grid "
                                         r"axis must be divisible by 16; the grid shape \(96, 200\) is not"):
        build_model(SineNetConfig(), spec_on("sphere", (96, 200)))
    with pytest.raises(ValueError, match="model.waves=3 for model sinenet has no published channel multiplier"):
        model_config({"name": "sinenet", "waves": 3})
    assert model_config({"name": "sinenet", "waves": 3, "channel_multiplier": 1.5}).level_channels[:2] == [64, 96]
    with pytest.raises(ValueError, match="model.channel_multiplier=0.5 for model sinenet is not valid"):
        model_config({"name": "sinenet", "channel_multiplier": 0.5})
    with pytest.raises(ValueError, match="model.norm_groups=4 for model sinenet is not valid: a level has 91 channels"):
        model_config({"name": "sinenet", "norm_groups": 4})
    with pytest.raises(ValueError, match=r"unknown key\(s\) model.K for model sinenet"):
        model_config({"name": "sinenet", "K": 4})
