"""SineNet: disentangled waves, the published parameter budget (about 35.5M at width 64 for every number of waves)
and refusals. Shapes, equivariance, conditioning and learning are tested with the U-Net in test_unet_sinenet.py."""

from __future__ import annotations

import dataclasses

import pytest
import torch

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


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def spec_on(kind: str, shape: tuple[int, ...], n_cond: int = 2, fields: tuple[str, ...] = ("u",), history: int = 1,
            bundle: int = 1) -> NetSpec:
    return NetSpec(fields, history, bundle, tuple(f"p{i}" for i in range(n_cond)), Grid.uniform(kind, shape))


def n_parameters(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_sinenet_waves_are_disentangled() -> None:
    """From the second pooled level on, a wave's blocks also see the wave's own input pooled to that level."""
    net = build_model(TINY, spec_on("periodic", (32,)))
    width, first, second = TINY.level_channels
    wave = net.waves[0]
    assert wave.down_blocks[0][0].conv1.conv.in_channels == width
    assert wave.down_blocks[1][0].conv1.conv.in_channels == first + width
    assert len(net.waves) == TINY.waves


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
