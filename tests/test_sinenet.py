"""SineNet: the reference code's parameter counts at the published settings, the layout behind them (levels,
disentangled down path, shortcuts, norm, conditioning), width as a setting, and refusals. Shapes, equivariance,
conditioning use and learning are tested with the U-Net in test_unet_sinenet.py."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from baselines import NetSpec, build_model, model_config
from baselines.layers import grid_avg_pool, grid_interpolate_up
from baselines.sinenet import (
    PUBLISHED_MULTIPLIERS,
    DoubleConv,
    SineNet,
    SineNetConfig,
    Wave,
    multiplier_for_budget,
    parameter_count,
)
from baselines.unet import UNetConfig
from pdebench.data.grid import Grid

TINY = SineNetConfig.tiny()

# PDEArena's smoke task SineNet was published on: smoke and velocity (3 fields), 4 history frames, 1 output frame,
# 128 x 128 cells in a closed box, no conditioning.
SMOKE_FIELDS, SMOKE_HISTORY, SMOKE_GRID = ("smoke", "vx", "vy"), 4, Grid.uniform("box", (128, 128))
SMOKE = NetSpec(SMOKE_FIELDS, SMOKE_HISTORY, 1, (), SMOKE_GRID)

# The reference code's counts at that setting for K = 2, 4, 6 (its sinenet{K}-dual models), counted by
# instantiating them; K = 8 is the published SineNet-8 and is held by `published_sizes`.
REFERENCE_COUNTS = {2: 35_499_989, 4: 35_493_699, 6: 35_475_499}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def spec_on(kind: str, shape: tuple[int, ...], n_cond: int = 2, fields: tuple[str, ...] = ("u",), history: int = 1,
            bundle: int = 1) -> NetSpec:
    return NetSpec(fields, history, bundle, tuple(f"p{i}" for i in range(n_cond)), Grid.uniform(kind, shape))


def n_parameters(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def on_meta(config: SineNetConfig, spec: NetSpec) -> SineNet:
    """The net without memory or initialisation: enough to read its layout."""
    with torch.device("meta"):
        return build_model(config, spec)


@pytest.mark.parametrize("size", SineNetConfig.published_sizes(), ids=lambda s: s.setting.split(" on ")[0])
def test_published_sizes_count_what_the_reference_code_counts(size) -> None:
    assert size.count() == size.published
    assert parameter_count(size.config, size.spec) == size.published
    assert "divelab/AIRS" in size.source and "sinenet" in size.source


def test_the_unconditioned_published_setting_is_sinenet8_on_smoke() -> None:
    size = SineNetConfig.published_sizes()[0]
    assert size.published == 35_490_219
    assert (size.spec.in_channels, size.spec.out_channels, size.spec.n_cond) == (12, 3, 0)
    assert size.config == SineNetConfig() and size.config.waves == 8 and size.config.multiplier == 1.425


def test_published_rows_name_their_setting_data_and_source() -> None:
    """The rows `pdebench-models --reference` prints: SineNet-8 on the 128 x 128 smoke box, unconditioned with 4
    history frames, then conditioned on dt and buoyancy with the added and the FiLM (adagn) embedding."""
    unconditioned, add, adagn = SineNetConfig.published_sizes()
    assert [size.published for size in (unconditioned, add, adagn)] == [35_490_219, 37_987_571, 40_325_243]
    assert unconditioned.spec == SMOKE
    conditioned = NetSpec(SMOKE_FIELDS, 1, 1, ("dt", "buoyancy"), SMOKE_GRID)
    assert add.spec == adagn.spec == conditioned
    assert (add.config, adagn.config) == (SineNetConfig(), SineNetConfig(scale_shift=True))
    assert unconditioned.setting == (
        "SineNet-8 on PDEArena's NavierStokes2D (INS): 3 fields (smoke, vx, vy) x 4 history frames in, 1 frame out, "
        "no conditioning, width 64, multiplier 1.425, 128 x 128 box")
    assert unconditioned.source == (
        "github.com/divelab/AIRS: OpenPDE/SineNet/pdearena/pdearena/modules/sinenet_dual.py sinenet (MODEL_REGISTRY "
        "entry sinenet8-dual of pdearena/models/registry.py, which notes 35490219 next to it; time_history=4, "
        "configs/navierstokes2d.yaml)")
    for size, variant in ((add, "add"), (adagn, "adagn")):
        assert size.setting == (
            f"SineNet-8 ({variant}) on PDEArena's Cond-NavierStokes2D: 3 fields x 1 frame in, 1 frame out, conditioned "
            "on the time step and the buoyancy, 128 x 128 box")
        assert size.source == (
            "github.com/divelab/AIRS: OpenPDE/SineNet/pdearena/pdearena/modules/conditioned/sinenet_cond.py sinenet "
            f"(COND_MODEL_REGISTRY entry sinenet8-{variant} of pdearena/models/registry.py, param_conditioning=scalar, "
            "time_history=1)")


@pytest.mark.parametrize("waves", sorted(REFERENCE_COUNTS))
def test_other_numbers_of_waves_count_what_the_reference_code_counts(waves: int) -> None:
    assert parameter_count(SineNetConfig(waves=waves), SMOKE) == REFERENCE_COUNTS[waves]


def test_reference_width_layout_of_a_wave() -> None:
    """Channels per level, what each level's first block reads (disentangled from level 2 on; the up path reads
    the skip and the interpolated coarser features), the 1x1 shortcuts and one GroupNorm group everywhere."""
    config = SineNetConfig()
    assert config.level_channels == [64, 91, 129, 185, 263]
    net = on_meta(config, SMOKE)
    assert len(net.waves) == 8 and net.embedding is None
    wave = net.waves[0]
    assert [level[0].conv1.conv.in_channels for level in wave.down_blocks] == [64, 91 + 64, 129 + 64, 185 + 64]
    assert [level[0].conv1.conv.out_channels for level in wave.down_blocks] == [91, 129, 185, 263]
    assert [level[0].conv1.conv.in_channels for level in wave.up_blocks] == [263 + 185, 185 + 129, 129 + 91, 91 + 64]
    assert [level[0].conv2.conv.out_channels for level in wave.up_blocks] == [185, 129, 91, 64]
    assert [(s.in_channels, s.out_channels, s.kernel_size) for s in wave.down_shortcuts] == [
        (64, 91, (1, 1)), (91, 129, (1, 1)), (129, 185, (1, 1)), (185, 263, (1, 1))]
    assert [(s.in_channels, s.out_channels) for s in wave.up_shortcuts] == [(263, 185), (185, 129), (129, 91),
                                                                           (91, 64)]
    norms = [m for m in net.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert len(norms) == 8 * 8 * 2 and {m.num_groups for m in norms} == {1}
    assert (net.lift.conv.in_channels, net.lift.conv.kernel_size) == (12, (3, 3))
    assert (net.project.conv.out_channels, net.project.conv.kernel_size) == (3, (3, 3))


def test_conditioning_has_one_mlp_per_scalar_and_a_projection_per_block() -> None:
    """Each scalar: Linear(64, 256) -> GELU -> Linear(256, 256); every block projects the 256-wide sum."""
    net = on_meta(SineNetConfig(), NetSpec(SMOKE_FIELDS, 1, 1, ("dt", "buoyancy", "nu"), SMOKE_GRID))
    assert [(mlp[0].in_features, mlp[0].out_features, mlp[2].out_features) for mlp in net.embedding.mlps] == [
        (64, 256, 256)] * 3
    blocks = [m for m in net.modules() if isinstance(m, DoubleConv)]
    assert len(blocks) == 64
    assert all(b.emb.in_features == 256 and b.emb.out_features == b.conv1.conv.out_channels for b in blocks)
    film = on_meta(SineNetConfig(scale_shift=True), NetSpec(SMOKE_FIELDS, 1, 1, ("dt",), SMOKE_GRID))
    assert all(b.emb.out_features == 2 * b.conv1.conv.out_channels for b in film.modules() if isinstance(b, DoubleConv))


@pytest.mark.parametrize("scale_shift", [False, True])
def test_a_block_applies_its_conditioning_after_the_first_activation(scale_shift: bool) -> None:
    """conv3 -> GroupNorm -> GELU -> conditioning -> conv3 -> GroupNorm -> GELU, as the reference orders it."""
    torch.manual_seed(0)
    block = DoubleConv(3, 4, (True, False), emb_dim=5, norm_groups=1, scale_shift=scale_shift).double()
    with torch.no_grad():
        for norm in (block.norm1, block.norm2):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
    x, emb = torch.randn(2, 3, 8, 8, dtype=torch.float64), torch.randn(2, 5, dtype=torch.float64)
    h = F.gelu(block.norm1(block.conv1(x)))
    projected = block.emb(emb)[:, :, None, None]
    if scale_shift:
        scale, shift = projected.chunk(2, dim=1)
        h = h * (1 + scale) + shift
    else:
        h = h + projected
    torch.testing.assert_close(block(x, emb), F.gelu(block.norm2(block.conv2(h))), rtol=0, atol=1e-12)


def test_a_wave_written_out_by_hand_with_two_blocks_a_level() -> None:
    """Levels of 4, 6 and 8 channels on 16 periodic points, two blocks a level. Down: level 1 reads the pooled
    input; level 2 the pooled level-1 features followed by the input pooled twice (disentangled). Up: the skip
    followed by the interpolated coarser features. The first block of a level adds the 1x1 shortcut of the pooled
    (down) or interpolated (up) features, the second block its own input."""
    torch.manual_seed(0)
    periodic = (True,)
    wave = Wave([4, 6, 8], periodic, emb_dim=0, blocks=2, norm_groups=1, scale_shift=False).double()
    x = torch.randn(2, 4, 16, dtype=torch.float64)

    def level(blocks: torch.nn.ModuleList, shortcut: torch.nn.Module, joined: torch.Tensor,
              source: torch.Tensor) -> torch.Tensor:
        first, second = blocks
        h = first(joined, None) + shortcut(source)
        return second(h, None) + h

    assert [block.conv1.conv.in_channels for block in wave.down_blocks[1]] == [6 + 4, 8]
    pooled = grid_avg_pool(x)
    level1 = level(wave.down_blocks[0], wave.down_shortcuts[0], pooled, pooled)
    coarse = grid_avg_pool(level1)
    level2 = level(wave.down_blocks[1], wave.down_shortcuts[1], torch.cat([coarse, grid_avg_pool(pooled)], dim=1),
                   coarse)
    up = grid_interpolate_up(level2, periodic)
    back1 = level(wave.up_blocks[0], wave.up_shortcuts[0], torch.cat([level1, up], dim=1), up)
    up = grid_interpolate_up(back1, periodic)
    expected = level(wave.up_blocks[1], wave.up_shortcuts[1], torch.cat([x, up], dim=1), up)
    torch.testing.assert_close(wave(x, None), expected, rtol=0, atol=1e-12)


def test_each_wave_adds_to_its_input() -> None:
    """With every wave's output silenced (its last level zeroed), the net is the lifting then the projection."""
    torch.manual_seed(0)
    net = build_model(TINY, spec_on("periodic", (16, 16))).double()
    with torch.no_grad():
        for wave in net.waves:
            for parameter in [*wave.up_blocks[-1].parameters(), *wave.up_shortcuts[-1].parameters()]:
                parameter.zero_()
    x, cond = torch.randn(2, 1, 16, 16, dtype=torch.float64), torch.randn(2, 2, dtype=torch.float64)
    torch.testing.assert_close(net(x, cond), net.project(net.lift(x)), rtol=0, atol=1e-12)


def test_the_waves_run_in_sequence_each_adding_its_correction() -> None:
    """Written out: lift, then `h <- h + wave_k(h)` for each wave in turn, then project; the residual adds."""
    torch.manual_seed(0)
    net = build_model(TINY, spec_on("periodic", (16, 16))).double()
    x, cond = torch.randn(2, 1, 16, 16, dtype=torch.float64), torch.randn(2, 2, dtype=torch.float64)
    emb, h = net.embedding(cond), net.lift(x)
    for wave in net.waves:
        h = h + wave(h, emb)
    torch.testing.assert_close(net(x, cond), net.project(h), rtol=0, atol=1e-12)


def test_tiny_shrinks_every_size_setting_of_the_default() -> None:
    """The smoke-test config is far smaller than the published net, and each of its width, number of waves, channel
    multiplier and levels is a reduction: putting back the default's value of any one of them grows the net."""
    tiny, default = SineNetConfig.tiny(), SineNetConfig()
    count = parameter_count(tiny, SMOKE)
    assert count < parameter_count(default, SMOKE) / 1000
    for key in ("hidden_channels", "waves", "channel_multiplier", "levels"):
        assert parameter_count(dataclasses.replace(tiny, **{key: getattr(default, key)}), SMOKE) > count, key


def test_a_narrower_width_keeps_the_layout() -> None:
    """Width 16: the same modules and parameter tensors as width 64, every level narrower in proportion."""
    narrow, wide = SineNetConfig(hidden_channels=16), SineNetConfig()
    assert narrow.level_channels == [16, 22, 32, 46, 65]
    spec = NetSpec(SMOKE_FIELDS, 1, 1, ("dt", "buoyancy"), SMOKE_GRID)
    shapes = {name: p.dim() for name, p in on_meta(narrow, spec).named_parameters()}
    assert shapes == {name: p.dim() for name, p in on_meta(wide, spec).named_parameters()}
    assert parameter_count(narrow, SMOKE) < parameter_count(wide, SMOKE) / 10
    net = build_model(narrow, NetSpec(SMOKE_FIELDS, 1, 1, ("dt",), Grid.uniform("box", (16, 16))))
    assert net(torch.randn(1, 3, 16, 16), torch.randn(1, 1)).shape == (1, 3, 16, 16)


def test_meta_count_matches_a_built_net() -> None:
    for config, spec in [(TINY, spec_on("periodic", (16, 16))), (dataclasses.replace(TINY, waves=3), SMOKE)]:
        assert parameter_count(config, spec) == n_parameters(build_model(config, spec))


def test_budget_search_recovers_the_published_multipliers_and_matches_the_unet() -> None:
    """Solving for a 35.5M budget on the smoke task gives back the published multiplier of every K, and solving
    for the reference U-Net's count gives every K that count within 1%."""
    unet = n_parameters(on_meta(UNetConfig(), SMOKE))
    matched = {}
    for waves, published in PUBLISHED_MULTIPLIERS.items():
        config = SineNetConfig(waves=waves)
        assert multiplier_for_budget(config, SMOKE, 35_500_000) == pytest.approx(published, abs=2e-3)
        matched[waves] = multiplier_for_budget(config, SMOKE, unet)
        count = parameter_count(dataclasses.replace(config, channel_multiplier=matched[waves]), SMOKE)
        assert 0.99 * unet <= count <= unet
    assert [matched[k] for k in sorted(matched)] == sorted(matched.values(), reverse=True)
    with pytest.raises(ValueError, match=r"^a budget of 1000 parameters is outside what model sinenet with waves=2 and "
                                         r"hidden_channels=8 reaches with channel multipliers in \[1, 4.0\]: 14723 to "
                                         r"548915$"):
        multiplier_for_budget(TINY, SMOKE, 1000)


def test_budget_search_at_both_ends_of_the_reachable_range() -> None:
    """Width 8, two levels: the count stays at its multiplier-1 value (14723) until level 2 reaches 9 channels
    (`int(8 m**2)`, at m = sqrt(9/8)), so that budget gives the largest multiplier below the step, within the
    search's 1e-4; the count at the highest multiplier (548915) gives just below it. Both ends are reachable
    budgets, one parameter beyond either is refused."""
    config = SineNetConfig(hidden_channels=8, waves=2, channel_multiplier=1.5, levels=2)
    step = (9 / 8) ** 0.5
    assert step - 1e-4 <= multiplier_for_budget(config, SMOKE, 14723) < step
    assert 4.0 - 1e-4 <= multiplier_for_budget(config, SMOKE, 548915) < 4.0
    for budget in (14722, 548916):
        with pytest.raises(ValueError, match=rf"^a budget of {budget} parameters is outside what model sinenet with "
                                             r"waves=2 and hidden_channels=8 reaches with channel multipliers in "
                                             r"\[1, 4.0\]: 14723 to 548915$"):
            multiplier_for_budget(config, SMOKE, budget)


def test_reference_yaml_is_the_published_sinenet8(compose_cfg) -> None:
    config = model_config(compose_cfg("train", ["model=sinenet"])["model"])
    assert config == SineNetConfig() == SineNetConfig.published_sizes()[0].config
    assert config.multiplier == PUBLISHED_MULTIPLIERS[8] and not config.scale_shift


def test_sinenet_refuses_what_it_cannot_serve() -> None:
    with pytest.raises(ValueError, match="model sinenet supports 1-D and 2-D grids, got a grid with 3 spatial axes"):
        build_model(TINY, spec_on("periodic", (8, 8, 8)))
    with pytest.raises(ValueError, match=r"model sinenet halves the grid 4 times \(model.levels=4\), so every grid "
                                         r"axis must be divisible by 16; the grid shape \(96, 200\) is not"):
        build_model(SineNetConfig(), spec_on("sphere", (96, 200)))
    with pytest.raises(ValueError, match="model.hidden_channels must be even with conditioning, got 9"):
        build_model(dataclasses.replace(TINY, hidden_channels=9), spec_on("periodic", (16,)))
    assert build_model(dataclasses.replace(TINY, hidden_channels=9), spec_on("periodic", (16,), n_cond=0))
    with pytest.raises(ValueError, match=r"^model.waves=3 for model sinenet has no published channel multiplier "
                                         r"\(those exist for waves 2, 4, 6, 8\); set model.channel_multiplier$"):
        model_config({"name": "sinenet", "waves": 3})
    assert model_config({"name": "sinenet", "waves": 3, "channel_multiplier": 1.5}).level_channels[:2] == [64, 96]
    with pytest.raises(ValueError, match="^model.channel_multiplier=0.5 for model sinenet is not valid: expected the "
                                         "channel growth towards the coarse levels, a finite number >= 1$"):
        model_config({"name": "sinenet", "channel_multiplier": 0.5})
    assert model_config({"name": "sinenet", "channel_multiplier": 1.0}).level_channels == [64] * 5
    with pytest.raises(ValueError, match="^model.norm_groups=4 for model sinenet is not valid: a level has 91 "
                                         "channels, which GroupNorm cannot split into that many groups$"):
        model_config({"name": "sinenet", "norm_groups": 4})
    with pytest.raises(ValueError, match=r"unknown key\(s\) model.K for model sinenet"):
        model_config({"name": "sinenet", "K": 4})
