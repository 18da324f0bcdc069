"""The modern U-Net and the grid-aware layers it shares with SineNet: padding by the grid (circular on periodic axes,
longitude only on the sphere), periodic up-sampling equal to the plain operation on a tiled signal, the sinusoidal
embeddings; the U-Net's published parameter counts and the reference layout behind them (cumulative channels, the
up path, norm groups, zero-initialised outputs, one embedding per scalar), configuration and refusals. What the U-Net
shares with SineNet as a net (shapes, equivariance, conditioning, learning) is in test_unet_sinenet.py."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from baselines import NetSpec, build_model, model_config
from baselines.layers import (
    ConditionedResidualBlock,
    GridConv,
    GridDownsample,
    GridUpsample,
    PerScalarEmbedding,
    SelfAttention,
    check_spatial_dims,
    grid_avg_pool,
    grid_interpolate_up,
    grid_pad,
    sinusoidal_embedding,
)
from baselines.pderefiner import REFINEMENT_STEP, backbone_spec
from baselines.registry import PublishedSize
from baselines.unet import UNet, UNetConfig
from pdebench.data.grid import Grid
from pdebench.errors import InvalidSetting

TINY = UNetConfig.tiny()
FACTOR = TINY.downsampling_factor  # 4: the tiny net halves the grid twice


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def spec_on(kind: str, shape: tuple[int, ...], n_cond: int = 2, fields: tuple[str, ...] = ("u",), history: int = 1,
            bundle: int = 1) -> NetSpec:
    return NetSpec(fields, history, bundle, tuple(f"p{i}" for i in range(n_cond)), Grid.uniform(kind, shape))


# --- shared layers -------------------------------------------------------------------------------------------------

def test_grid_pad_wraps_periodic_axes_and_zero_pads_the_others() -> None:
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    sphere = grid_pad(x, 1, (False, True))  # (lat, lon)
    assert sphere.shape == (1, 1, 5, 6)
    assert torch.equal(sphere[0, 0, 0], torch.zeros(6)) and torch.equal(sphere[0, 0, -1], torch.zeros(6))
    assert torch.equal(sphere[0, 0, 1], torch.tensor([3.0, 0, 1, 2, 3, 0]))
    torus = grid_pad(x, 1, (True, True))
    assert torch.equal(torus[0, 0, 0, 1:-1], x[0, 0, -1]) and torus[0, 0, 0, 0] == x[0, 0, -1, -1]
    replicated = grid_pad(torch.tensor([[[1.0, 2.0, 3.0]]]), 2, (False,), mode="replicate")
    assert torch.equal(replicated, torch.tensor([[[1.0, 1, 1, 2, 3, 3, 3]]]))
    short = torch.tensor([[[1.0, 2.0]]])  # an axis shorter than the padding wraps around as often as needed
    assert torch.equal(grid_pad(short, 3, (True,)), torch.tensor([[[2.0, 1, 2, 1, 2, 1, 2, 1]]]))
    with pytest.raises(ValueError, match="2 periodic flags for a tensor with 1 spatial axes"):
        grid_pad(torch.zeros(1, 1, 4), 1, (True, True))


@pytest.mark.parametrize("periodic", [(False, False), (False, True), (True, True)])
@pytest.mark.parametrize("stride", [1, 2])
def test_grid_conv_equals_a_plain_convolution_of_the_grid_padded_input(periodic: tuple[bool, bool],
                                                                       stride: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 12, dtype=torch.float64)
    layer = GridConv(3, 5, periodic, stride=stride).double()
    reference = F.conv2d(grid_pad(x, 1, periodic), layer.conv.weight, layer.conv.bias, stride=stride)
    torch.testing.assert_close(layer(x), reference)
    assert layer(x).shape == (2, 5, 8 // stride, 12 // stride)


@pytest.mark.parametrize("ndim", [1, 2])
def test_periodic_upsampling_equals_the_plain_one_on_a_tiled_signal(ndim: int) -> None:
    """On a periodic axis, up-sampling must see the wrapped-around neighbours: the same as up-sampling three copies
    of the signal side by side and keeping the middle one."""
    torch.manual_seed(0)
    n = 8
    x = torch.randn(2, 3, *(n,) * ndim, dtype=torch.float64)
    tiled = x.repeat(1, 1, *(3,) * ndim)
    layer = GridUpsample(3, (True,) * ndim).double()
    plain = F.conv_transpose1d if ndim == 1 else F.conv_transpose2d
    reference = plain(tiled, layer.conv.weight, layer.conv.bias, stride=2, padding=1)
    middle = (slice(None), slice(None), *(slice(2 * n, 4 * n),) * ndim)
    torch.testing.assert_close(layer(x), reference[middle])

    tiled_up = F.interpolate(tiled.unsqueeze(2) if ndim == 1 else tiled, scale_factor=(1, 2) if ndim == 1 else 2,
                             mode="bicubic", align_corners=False)
    tiled_up = tiled_up.squeeze(2) if ndim == 1 else tiled_up
    torch.testing.assert_close(grid_interpolate_up(x, (True,) * ndim), tiled_up[middle])


def test_upsampling_on_walls_equals_the_plain_operation() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 6, dtype=torch.float64)
    layer = GridUpsample(3, (False, False)).double()
    reference = F.conv_transpose2d(x, layer.conv.weight, layer.conv.bias, stride=2, padding=1)
    torch.testing.assert_close(layer(x), reference)
    torch.testing.assert_close(grid_interpolate_up(x, (False, False)),
                               F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False))


@pytest.mark.parametrize("periodic", [(True, False), (False, True)])
def test_grid_pad_tells_the_axes_apart(periodic: tuple[bool, bool]) -> None:
    """On a 3 x 5 grid with one periodic axis, only that axis wraps; the other gets zeros, or its edge values
    repeated, on both sides."""
    x = torch.arange(1.0, 16.0).reshape(1, 1, 3, 5)
    wrapped, walled = (2, 3) if periodic[0] else (3, 2)
    zeros = grid_pad(x, 2, periodic)
    assert zeros.shape == (1, 1, 7, 9)
    inner = zeros.narrow(walled, 2, x.shape[walled])
    n = x.shape[wrapped]
    torch.testing.assert_close(inner, torch.cat([x.narrow(wrapped, n - 2, 2), x, x.narrow(wrapped, 0, 2)], dim=wrapped),
                               rtol=0, atol=0)
    assert not zeros.narrow(walled, 0, 2).any() and not zeros.narrow(walled, zeros.shape[walled] - 2, 2).any()
    replicated = grid_pad(x, 2, periodic, mode="replicate")
    edge_first, edge_last = replicated.narrow(walled, 0, 2), replicated.narrow(walled, replicated.shape[walled] - 2, 2)
    torch.testing.assert_close(edge_first, inner.narrow(walled, 0, 1).expand_as(edge_first), rtol=0, atol=0)
    torch.testing.assert_close(edge_last, inner.narrow(walled, x.shape[walled] - 1, 1).expand_as(edge_last), rtol=0,
                               atol=0)
    unpadded = grid_pad(x, 2, periodic, mode="none")
    assert unpadded.shape[walled] == x.shape[walled] and unpadded.shape[wrapped] == x.shape[wrapped] + 4
    assert grid_pad(x, 0, periodic) is x
    with pytest.raises(ValueError, match="grid_pad mode must be 'zeros', 'replicate' or 'none', got 'reflect'"):
        grid_pad(x, 1, periodic, mode="reflect")


@pytest.mark.parametrize("periodic", [(True, False), (False, True)])
def test_upsampling_wraps_only_the_periodic_axis(periodic: tuple[bool, bool]) -> None:
    """On an 8 x 6 grid with one periodic axis, learned and cubic up-sampling equal the plain operations on three
    copies of the signal side by side along that axis (the middle copy kept), and walls along the other."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 6, dtype=torch.float64)
    axis = 2 if periodic[0] else 3
    n = x.shape[axis]
    tiled = torch.cat([x, x, x], dim=axis)
    layer = GridUpsample(3, periodic).double()
    reference = F.conv_transpose2d(tiled, layer.conv.weight, layer.conv.bias, stride=2, padding=1)
    torch.testing.assert_close(layer(x), reference.narrow(axis, 2 * n, 2 * n))
    cubic = F.interpolate(tiled, scale_factor=2, mode="bicubic", align_corners=False)
    torch.testing.assert_close(grid_interpolate_up(x, periodic), cubic.narrow(axis, 2 * n, 2 * n))


@pytest.mark.parametrize("scale_shift", [False, True])
def test_conditioned_residual_block_written_out_by_hand(scale_shift: bool) -> None:
    """GroupNorm -> GELU -> conv3 (+ embedding per channel) -> GroupNorm (-> FiLM: `h * (1 + scale) + shift`) ->
    GELU -> conv3, plus the input through a 1x1 convolution (3 -> 4 channels), on a 6 x 8 grid periodic in y only."""
    torch.manual_seed(0)
    block = ConditionedResidualBlock(3, 4, (False, True), emb_dim=5, norm_groups=1, scale_shift=scale_shift).double()
    with torch.no_grad():  # the zero-initialised second convolution and the norms' unit weights drawn at random
        block.conv2.conv.weight.normal_(0.0, 0.3)
        for norm in (block.norm1, block.norm2):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
    x, emb = torch.randn(2, 3, 6, 8, dtype=torch.float64), torch.randn(2, 5, dtype=torch.float64)
    h = block.conv1(F.gelu(block.norm1(x)))
    projected = block.emb(emb)[:, :, None, None]
    if scale_shift:
        scale, shift = projected[:, :4], projected[:, 4:]
        h = block.norm2(h) * (1 + scale) + shift
    else:
        h = block.norm2(h + projected)
    expected = block.conv2(F.gelu(h)) + F.conv2d(x, block.shortcut.weight, block.shortcut.bias)
    torch.testing.assert_close(block(x, emb), expected, rtol=0, atol=1e-12)
    same_width = ConditionedResidualBlock(4, 4, (False, True)).double()
    assert isinstance(same_width.shortcut, nn.Identity) and same_width.emb is None
    assert same_width.conv2.conv.weight.any()  # an unconditioned block keeps the default initialisation


def test_self_attention_is_multi_head_attention_over_grid_points_around_a_residual() -> None:
    """Tokens are the grid points (C order) of the group-normalised input, each sample attending over its own points
    only; written out: two heads of 2 channels, softmax(q k^T / sqrt(2)) v, the output projection, the residual."""
    torch.manual_seed(0)
    layer = SelfAttention(4, heads=2, norm_groups=2).double()
    with torch.no_grad():
        layer.norm.weight.uniform_(0.5, 1.5)
        layer.attention.in_proj_bias.uniform_(-0.5, 0.5)
    x = torch.randn(3, 4, 3, 5, dtype=torch.float64)
    tokens = F.group_norm(x, 2, layer.norm.weight, layer.norm.bias).flatten(2).transpose(1, 2)  # [B, 15, 4]
    q, k, v = (F.linear(tokens, layer.attention.in_proj_weight, layer.attention.in_proj_bias)
               .view(3, 15, 3, 2, 2).permute(2, 0, 3, 1, 4))  # each [B, heads, 15, 2]
    mixed = (torch.softmax(q @ k.transpose(-1, -2) / 2**0.5, dim=-1) @ v).transpose(1, 2).reshape(3, 15, 4)
    mixed = F.linear(mixed, layer.attention.out_proj.weight, layer.attention.out_proj.bias)
    torch.testing.assert_close(layer(x), x + mixed.transpose(1, 2).reshape(3, 4, 3, 5), rtol=0, atol=1e-12)
    torch.testing.assert_close(layer(x[:1]), layer(x)[:1], rtol=0, atol=1e-12)  # no sample sees another


def test_downsampling_and_pooling_halve_each_axis() -> None:
    """Learned down-sampling is the stride-2 grid convolution; pooling averages 2 (1-D) or 2 x 2 (2-D) cells."""
    torch.manual_seed(0)
    x = torch.randn(1, 2, 8, 6, dtype=torch.float64)
    down = GridDownsample(2, (True, False)).double()
    reference = F.conv2d(grid_pad(x, 1, (True, False)), down.conv.conv.weight, down.conv.conv.bias, stride=2)
    torch.testing.assert_close(down(x), reference)
    assert down(x).shape == (1, 2, 4, 3)
    torch.testing.assert_close(grid_avg_pool(x), (x[..., 0::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 0::2]
                                                  + x[..., 1::2, 1::2]) / 4)
    line = torch.tensor([[[1.0, 3.0, -2.0, 6.0]]])
    assert torch.equal(grid_avg_pool(line), torch.tensor([[[2.0, 2.0]]]))


def test_spatial_dims_outside_one_and_two_are_refused_by_model_name() -> None:
    check_spatial_dims("unet", 1)
    check_spatial_dims("unet", 2)
    for ndim in (0, 3):
        with pytest.raises(InvalidSetting, match=f"^model sinenet supports 1-D and 2-D grids, got a grid with {ndim} "
                                                 "spatial axes$"):
            check_spatial_dims("sinenet", ndim)


def test_sinusoidal_embedding_by_hand() -> None:
    values = torch.tensor([0.0, 0.5])
    emb = sinusoidal_embedding(values, 6, max_frequency=100.0)  # frequencies 1, 10, 100
    assert emb.shape == (2, 6)
    torch.testing.assert_close(emb[0], torch.tensor([0.0, 0, 0, 1, 1, 1]))
    expected = torch.tensor([0.5, 5.0, 50.0])
    torch.testing.assert_close(emb[1], torch.cat([expected.sin(), expected.cos()]))
    # two frequencies are 1 and max_frequency (angles 0.5 and 4 at 0.5); a single one is 1
    two = torch.tensor([0.5, 4.0])
    torch.testing.assert_close(sinusoidal_embedding(values, 4, max_frequency=8.0)[1], torch.cat([two.sin(), two.cos()]))
    one = torch.tensor([0.3])
    torch.testing.assert_close(sinusoidal_embedding(one, 2), torch.stack([one.sin(), one.cos()], dim=-1))
    with pytest.raises(ValueError, match="needs an even width, got 5"):
        sinusoidal_embedding(values, 5)
    with pytest.raises(ValueError, match=r"conditioning must have shape \[batch, 2\], got \(4, 3\)"):
        PerScalarEmbedding(2, 8, 16)(torch.zeros(4, 3))


def test_grid_conv_pads_a_wider_kernel_by_half_its_width_and_refuses_an_even_one() -> None:
    """A 5-wide kernel keeps the grid shape, 2 cells of padding a side (wrapped on the periodic axis, zeros on the
    other); an even kernel has no centre cell and is refused, naming its size."""
    torch.manual_seed(0)
    x = torch.randn(1, 2, 8, 10, dtype=torch.float64)
    layer = GridConv(2, 3, (True, False), kernel_size=5).double()
    reference = F.conv2d(grid_pad(x, 2, (True, False)), layer.conv.weight, layer.conv.bias)
    torch.testing.assert_close(layer(x), reference)
    assert layer(x).shape == (1, 3, 8, 10)
    with pytest.raises(ValueError, match="^GridConv needs an odd kernel size, got 4$"):
        GridConv(2, 3, (True, False), kernel_size=4)


def test_sinusoidal_embedding_defaults_to_angular_frequencies_from_one_to_a_hundred() -> None:
    """Without `max_frequency`, 6 features of 0.5 are the sines and cosines of 0.5, 5 and 50."""
    angles = torch.tensor([0.5, 5.0, 50.0], dtype=torch.float64)
    torch.testing.assert_close(sinusoidal_embedding(torch.tensor([0.5], dtype=torch.float64), 6)[0],
                               torch.cat([angles.sin(), angles.cos()]), rtol=0, atol=1e-12)
    # in the values' dtype: 100 ** (1 / 3) in float64, not rounded to float32 first
    values = torch.tensor([0.5, -1.3], dtype=torch.float64)
    angles = values[:, None] * 100.0 ** (torch.arange(4, dtype=torch.float64) / 3)
    emb = sinusoidal_embedding(values, 8)
    assert emb.dtype == torch.float64
    torch.testing.assert_close(emb, torch.cat([angles.sin(), angles.cos()], dim=1), rtol=0, atol=1e-12)


def test_per_scalar_embedding_sums_one_mlp_per_scalar_by_hand() -> None:
    """Scalar i: `dim` sinusoidal features (frequencies 1 to 100) through its own Linear -> GELU -> Linear; the
    embedding is the sum over scalars. No scalar at all is refused: a net without conditioning builds none."""
    torch.manual_seed(0)
    embedding = PerScalarEmbedding(2, 4, 3).double()
    cond = torch.tensor([[0.3, -1.2], [0.7, 0.1]], dtype=torch.float64)
    expected = torch.zeros(2, 3, dtype=torch.float64)
    for i, mlp in enumerate(embedding.mlps):
        first, second = mlp[0], mlp[2]
        assert (first.in_features, first.out_features, second.out_features) == (4, 3, 3)
        angles = cond[:, i:i + 1] * torch.tensor([1.0, 100.0], dtype=torch.float64)
        features = torch.cat([angles.sin(), angles.cos()], dim=1)
        expected += F.linear(F.gelu(F.linear(features, first.weight, first.bias)), second.weight, second.bias)
    torch.testing.assert_close(embedding(cond), expected, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="^PerScalarEmbedding needs at least one scalar; build none when there is no "
                                         "conditioning$"):
        PerScalarEmbedding(0, 4, 3)


def test_blocks_and_attention_default_to_one_norm_group_one_head_and_an_added_embedding() -> None:
    """The reference layout's defaults: GroupNorm with one group, single-head attention, and a conditioned block that
    adds its embedding per channel (one value a channel) rather than scaling and shifting (two)."""
    block = ConditionedResidualBlock(4, 4, (True,), emb_dim=3)
    assert block.norm1.num_groups == block.norm2.num_groups == 1 and block.emb.out_features == 4
    attention = SelfAttention(4)
    assert attention.norm.num_groups == 1 and attention.attention.num_heads == 1


# --- the U-Net -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("published", UNetConfig.published_sizes(), ids=lambda size: size.setting.split(":")[0])
def test_unet_has_the_published_parameter_count(published: PublishedSize) -> None:
    """U-Net_mod-64 on NavierStokes2D (144,263,683) and PDE-Refiner's KS backbone (53,924,225), both counted by
    instantiating PDEArena's modules; built on the meta device (no memory, no initialisation)."""
    with torch.device("meta"):
        count = published.count()
    print(f"{published.setting}: {count:,} (published {published.published:,})")
    assert count == published.published


def test_published_settings_are_the_reference_config_and_pderefiners_backbone_spec(compose_cfg) -> None:
    """`model=unet` composes to the published configuration, and the KS setting is built as PDE-Refiner builds its
    backbone: the estimate joins the history as one more frame, the refinement step joins dt and dx."""
    navier_stokes, ks = UNetConfig.published_sizes()
    assert model_config(compose_cfg("train", ["model=unet"])["model"]) == UNetConfig()
    assert navier_stokes.config == ks.config == UNetConfig()
    assert (navier_stokes.spec.in_channels, navier_stokes.spec.out_channels, navier_stokes.spec.n_cond) == (12, 3, 0)
    assert (ks.spec.in_channels, ks.spec.out_channels, ks.spec.conditioning) == (2, 1, ("dt", "dx", REFINEMENT_STEP))
    assert ks.spec.spatial_dims == 1 and navier_stokes.spec.spatial_dims == 2
    assert navier_stokes.spec == NetSpec(("smoke", "vx", "vy"), 4, 1, (), Grid.uniform("box", (128, 128)))
    assert ks.spec == backbone_spec(NetSpec(("u",), 1, 1, ("dt", "dx"), Grid.uniform("periodic", (256,))))
    assert (navier_stokes.published, ks.published) == (144_263_683, 53_924_225)
    # the rows `pdebench-models --reference` prints, and where their counts come from
    assert navier_stokes.setting == ("U-Net_mod-64 on NavierStokes2D: 3 fields (smoke, vx, vy) x 4 history frames in, "
                                     "1 frame out, no conditioning")
    assert ks.setting == ("PDE-Refiner's KS backbone (Unetmod-1d-64): 1-D, 1 field x (1 history frame + 1 estimate "
                          "frame) in, 1 frame out, conditioned on dt, dx and the refinement step")
    assert navier_stokes.source == ("github.com/pdearena/pdearena: pdearena/modules/twod_unet.py Unet (model zoo name "
                                    "Unetmod-64, hidden_channels=64, norm=True); the same count is listed in "
                                    "docs/models_fwd_time.json")
    assert ks.source == ("github.com/pdearena/pdearena: pdearena/modules/conditioned/oned_unet.py Unet (Unetmod-1d-64) "
                         "as pdearena/models/pderefiner.py builds it with configs/kuramotosivashinsky1d.yaml "
                         "(param_conditioning=scalar_2, time_history=1, time_future=1)")


def block_widths(net: UNet) -> tuple[list[int], list[int], list[int]]:
    """(output channels of the down blocks, of the up blocks, of the up-samplings), in order."""
    down = [layer.conv2.conv.out_channels for layer in net.down if isinstance(layer, ConditionedResidualBlock)]
    up = [layer.conv2.conv.out_channels for layer in net.up if isinstance(layer, ConditionedResidualBlock)]
    upsampling = [layer.conv.out_channels for layer in net.up if isinstance(layer, GridUpsample)]
    return down, up, upsampling


@pytest.mark.parametrize("width", [64, 16])
def test_unet_layout_is_the_references_at_any_width(width: int) -> None:
    """Cumulative multipliers (1, 2, 2, 4) give C, 2C, 4C, 16C; on the way up each level's last block cuts the
    channels to the next finer level's before the up-sampling; residual blocks normalise with one group, the head
    with 8. A narrower width is the same layout scaled."""
    config = UNetConfig(hidden_channels=width)
    assert config.level_channels == [width, 2 * width, 4 * width, 16 * width]
    with torch.device("meta"):
        net = build_model(config, spec_on("periodic", (64,), n_cond=0))
    c = width
    down, up, upsampling = block_widths(net)
    assert down == [c, c, 2 * c, 2 * c, 4 * c, 4 * c, 16 * c, 16 * c]
    assert up == [16 * c, 16 * c, 4 * c, 4 * c, 4 * c, 2 * c, 2 * c, 2 * c, c, c, c, c]
    assert upsampling == [4 * c, 2 * c, c]
    inputs = [layer.conv1.conv.in_channels for layer in net.up if isinstance(layer, ConditionedResidualBlock)]
    assert inputs[:4] == [32 * c, 32 * c, 20 * c, 8 * c]  # with the skips 16C, 16C, 4C (a down-sampling), 4C
    block_groups = {m.num_groups for block in [*net.down, *net.up] if isinstance(block, ConditionedResidualBlock)
                    for m in (block.norm1, block.norm2)}
    assert block_groups == {1} and net.head[0].num_groups == 8


def test_up_path_cuts_each_level_to_the_next_finer_levels_channels_not_the_width() -> None:
    """With a first multiplier other than 1 the finest level is wider than C: multipliers (2, 3) at width 8 give
    levels of 16 and 48 channels, so the coarse level's last up block cuts 48 to 16 (not to 8) before the
    up-sampling, and only the finest level's last block cuts to the width."""
    config = UNetConfig(hidden_channels=8, channel_multipliers=[2, 3], blocks_per_level=1)
    assert config.level_channels == [16, 48]
    net = build_model(config, spec_on("periodic", (32,), n_cond=0))
    down, up, upsampling = block_widths(net)
    assert (down, up, upsampling) == ([16, 48], [48, 16, 16, 8], [16])
    assert net(torch.randn(2, 1, 32), torch.zeros(2, 0)).shape == (2, 1, 32)


def test_unet_head_is_group_norm_gelu_and_a_grid_convolution_of_the_last_up_block() -> None:
    """The output written out from the last up block's features: GroupNorm with `head_norm_groups` groups, GELU,
    then the 3-wide convolution, padded circularly on the periodic axis."""
    torch.manual_seed(0)
    net = build_model(TINY, spec_on("periodic", (32,), n_cond=0)).double()
    with torch.no_grad():
        net.head[0].weight.uniform_(0.5, 1.5)
        net.head[0].bias.uniform_(-0.5, 0.5)
    features: list[torch.Tensor] = []
    net.up[-1].register_forward_hook(lambda module, inputs, output: features.append(output))
    out = net(torch.randn(2, 1, 32, dtype=torch.float64), torch.zeros(2, 0, dtype=torch.float64))
    norm, conv = net.head[0], net.head[-1].conv
    h = F.gelu(F.group_norm(features[0], TINY.head_norm_groups, norm.weight, norm.bias))
    expected = F.conv1d(grid_pad(h, 1, (True,)), conv.weight, conv.bias)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


def test_unet_passes_attention_heads_and_norm_groups_to_its_layers() -> None:
    """`attention_heads` sets the heads of the middle attention and `norm_groups` the groups of its norm and of every
    residual block's norms; the head's norm keeps `head_norm_groups`."""
    config = dataclasses.replace(TINY, attention_heads=2, norm_groups=4)
    net = build_model(config, spec_on("periodic", (32,), n_cond=2))
    assert net.mid_attention.attention.num_heads == 2 and net.mid_attention.norm.num_groups == 4
    block_groups = {m.num_groups for block in net.modules() if isinstance(block, ConditionedResidualBlock)
                    for m in (block.norm1, block.norm2)}
    assert block_groups == {4} and net.head[0].num_groups == 8


def test_tiny_config_is_a_small_fraction_of_the_default_net() -> None:
    """`tiny()` is for smoke tests: on the same 32-point grid its net has under 1% of the parameters of the
    default (U-Net_mod-64) net, so it neither falls back to the defaults nor keeps their width."""
    spec = spec_on("periodic", (32,), n_cond=2)
    with torch.device("meta"):
        tiny, default = (build_model(config, spec) for config in (UNetConfig.tiny(), UNetConfig()))
    tiny_count, default_count = (sum(p.numel() for p in net.parameters()) for net in (tiny, default))
    assert tiny_count < default_count / 100


def test_conditioned_unet_starts_with_zero_residual_branches_and_output() -> None:
    """As PDEArena's conditioned U-Nets: every block's second convolution and the output convolution start at zero,
    so each block is its shortcut and the net's output is zero; the unconditioned U-Net_mod initialises as usual."""
    torch.manual_seed(0)
    x = torch.randn(2, 1, 32)
    conditioned = build_model(TINY, spec_on("periodic", (32,), n_cond=2))
    assert torch.equal(conditioned(x, torch.randn(2, 2)), torch.zeros(2, 1, 32))
    emb = torch.randn(2, 4 * TINY.hidden_channels)
    for block in [*conditioned.down, conditioned.mid_in, *conditioned.up]:
        if isinstance(block, ConditionedResidualBlock):
            h = torch.randn(2, block.conv1.conv.in_channels, 16)
            torch.testing.assert_close(block(h, emb), block.shortcut(h), rtol=0, atol=0)
    plain = build_model(TINY, spec_on("periodic", (32,), n_cond=0))
    assert plain(x, torch.zeros(2, 0)).abs().min() > 0
    assert all(block.conv2.conv.weight.any() for block in plain.up if isinstance(block, ConditionedResidualBlock))


def test_unet_embeds_each_scalar_with_its_own_mlp() -> None:
    """One MLP (C -> 4C -> 4C) per conditioning scalar, outputs summed: the embedding is additive over scalars, which
    a joint MLP over all scalars is not, and its parameter count grows by one MLP per scalar."""
    torch.manual_seed(0)
    width = TINY.hidden_channels
    nets = {n: build_model(TINY, spec_on("periodic", (32,), n_cond=n)) for n in (1, 3)}
    one_mlp = (width * 4 * width + 4 * width) + (4 * width * 4 * width + 4 * width)
    for n, net in nets.items():
        assert isinstance(net.embedding, PerScalarEmbedding) and len(net.embedding.mlps) == n
        assert sum(p.numel() for p in net.embedding.parameters()) == n * one_mlp
    embedding = nets[3].embedding
    a, b = torch.randn(4, 3), torch.randn(4, 3)
    mixed_ab, mixed_ba = a.clone(), b.clone()
    mixed_ab[:, 1:], mixed_ba[:, 1:] = b[:, 1:], a[:, 1:]
    torch.testing.assert_close(embedding(a) + embedding(b), embedding(mixed_ab) + embedding(mixed_ba))
    joint_mlp = nn.Sequential(nn.Linear(3 * width, 4 * width), nn.GELU(), nn.Linear(4 * width, 4 * width))

    def joint(cond: torch.Tensor) -> torch.Tensor:  # one MLP over all scalars' features: not additive over scalars
        return joint_mlp(sinusoidal_embedding(cond, width).flatten(1))

    assert (joint(a) + joint(b) - joint(mixed_ab) - joint(mixed_ba)).abs().max() > 1e-3


def test_unet_scale_shift_conditioning_uses_every_scalar() -> None:
    torch.manual_seed(0)
    net = build_model(UNetConfig(**{**TINY.__dict__, "scale_shift": True}), spec_on("periodic", (32,), 3))
    with torch.no_grad():  # the zero-initialised convolutions drawn at random, as after some training
        for weight in net.parameters():
            if weight.dim() > 1 and not weight.any():
                weight.normal_(0.0, weight[0].numel() ** -0.5)
    x, cond = torch.randn(2, 1, 32), torch.randn(2, 3)
    for index in range(3):
        other = cond.clone()
        other[:, index] += 0.5
        assert (net(x, cond) - net(x, other)).abs().max() > 1e-4
    # every block projects the embedding (4C wide) to a scale and a shift per output channel, the additive net to
    # one value per channel: one more (4C + 1)-parameter row per channel of every block
    additive = build_model(TINY, spec_on("periodic", (32,), 3))
    extra = sum((4 * TINY.hidden_channels + 1) * block.conv2.conv.out_channels for block in additive.modules()
                if isinstance(block, ConditionedResidualBlock))
    assert extra > 0
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in additive.parameters()) + extra


def test_the_middle_attention_acts_between_the_middle_blocks_and_is_optional() -> None:
    """With `mid_attention` the coarsest features pass through self-attention after the first middle block and
    before the second: changing its weights changes the output. Without it the net has no attention and runs."""
    torch.manual_seed(0)
    spec = spec_on("periodic", (32,), n_cond=0)
    net = build_model(TINY, spec)
    calls: list[str] = []
    for name in ("mid_in", "mid_attention", "mid_out"):
        getattr(net, name).register_forward_hook(lambda module, inputs, output, name=name: calls.append(name))
    x = torch.randn(2, 1, 32)
    out = net(x, torch.zeros(2, 0))
    assert calls == ["mid_in", "mid_attention", "mid_out"]
    with torch.no_grad():
        net.mid_attention.attention.out_proj.weight.add_(0.5)
    assert (net(x, torch.zeros(2, 0)) - out).abs().max() > 1e-4
    plain = build_model(dataclasses.replace(TINY, mid_attention=False), spec)
    assert plain.mid_attention is None and not any(isinstance(m, SelfAttention) for m in plain.modules())
    assert plain(x, torch.zeros(2, 0)).shape == (2, 1, 32)


def test_unet_refuses_what_it_cannot_serve() -> None:
    with pytest.raises(ValueError, match="model unet supports 1-D and 2-D grids, got a grid with 3 spatial axes"):
        build_model(TINY, spec_on("periodic", (8, 8, 8)))
    with pytest.raises(ValueError, match=r"^model unet halves the grid 2 times \(len\(model.channel_multipliers\)=3\), "
                                         r"so every grid axis must be divisible by 4; the grid shape \(16, 18\) is not "
                                         r"\(it halves evenly at most 1 time\)$"):
        build_model(TINY, spec_on("periodic", (16, 18)))
    whole = "is not valid: expected a whole number >= 1"
    refusals = [
        ({"norm_groups": 3}, "model.norm_groups=3 for model unet is not valid: GroupNorm cannot split "
                             "hidden_channels=64 channels into that many groups"),
        ({"hidden_channels": 12}, "model.head_norm_groups=8 for model unet is not valid: GroupNorm cannot split "
                                  "hidden_channels=12 channels into that many groups"),
        ({"channel_multipliers": []}, "model.channel_multipliers=[] for model unet is not valid: expected a non-empty "
                                      "list of whole numbers >= 1, one per level"),
        ({"channel_multipliers": [1, 0]}, "model.channel_multipliers=[1,0] for model unet is not valid: expected a "
                                          "non-empty list of whole numbers >= 1, one per level"),
        ({"mid_attention": True, "attention_heads": 3}, "model.attention_heads=3 for model unet is not valid: it "
                                                        "must divide the 1024 channels of the coarsest level"),
        *(({key: 0}, f"model.{key}=0 for model unet {whole}")
          for key in ("hidden_channels", "blocks_per_level", "attention_heads", "norm_groups", "head_norm_groups")),
    ]
    for settings, message in refusals:
        with pytest.raises(ValueError) as error:
            model_config({"name": "unet", **settings})
        assert str(error.value) == message
    # the heads only need to divide the coarsest channels where there is attention; 1-wide levels are fine
    assert model_config({"name": "unet", "attention_heads": 3}).attention_heads == 3
    assert model_config({"name": "unet", "mid_attention": True, "attention_heads": 4}).attention_heads == 4
    assert model_config({"name": "unet", "channel_multipliers": [1, 1]}).level_channels == [64, 64]
    assert model_config({"name": "unet", "hidden_channels": 8, "norm_groups": 8}).norm_groups == 8
    with pytest.raises(ValueError, match=r"unknown key\(s\) model.width for model unet"):
        model_config({"name": "unet", "width": 3})
