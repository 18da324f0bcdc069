"""The modern U-Net and the grid-aware layers it shares with SineNet: padding by the grid (circular on periodic axes,
longitude only on the sphere), periodic up-sampling equal to the plain operation on a tiled signal, the sinusoidal
embedding, configuration and refusals. What the U-Net shares with SineNet as a net (shapes, equivariance, conditioning,
learning) is in test_unet_sinenet.py."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from baselines import NetSpec, build_model, model_config
from baselines.layers import (
    GridConv,
    GridUpsample,
    ScalarEmbedding,
    grid_interpolate_up,
    grid_pad,
    sinusoidal_embedding,
)
from baselines.unet import UNet, UNetConfig
from pdebench.data.grid import Grid

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


def test_sinusoidal_embedding_by_hand() -> None:
    values = torch.tensor([0.0, 0.5])
    emb = sinusoidal_embedding(values, 6, max_frequency=100.0)  # frequencies 1, 10, 100
    assert emb.shape == (2, 6)
    torch.testing.assert_close(emb[0], torch.tensor([0.0, 0, 0, 1, 1, 1]))
    expected = torch.tensor([0.5, 5.0, 50.0])
    torch.testing.assert_close(emb[1], torch.cat([expected.sin(), expected.cos()]))
    with pytest.raises(ValueError, match="needs an even width, got 5"):
        sinusoidal_embedding(values, 5)
    with pytest.raises(ValueError, match=r"conditioning must have shape \[batch, 2\], got \(4, 3\)"):
        ScalarEmbedding(2, 8, 16)(torch.zeros(4, 3))


# --- the U-Net -------------------------------------------------------------------------------------------------------


def test_unet_scale_shift_conditioning_uses_every_scalar() -> None:
    torch.manual_seed(0)
    net = build_model(UNetConfig(**{**TINY.__dict__, "scale_shift": True}), spec_on("periodic", (32,), 3))
    x, cond = torch.randn(2, 1, 32), torch.randn(2, 3)
    for index in range(3):
        other = cond.clone()
        other[:, index] += 0.5
        assert (net(x, cond) - net(x, other)).abs().max() > 1e-4


def test_unet_yaml_is_the_pderefiner_backbone_and_builds_in_1d(compose_cfg) -> None:
    """`model=unet` composes to the reference config, which on KS (1-D, 256 points, conditioned on dt, dx and the
    refinement step) is PDE-Refiner's backbone: width 64, multipliers (1, 2, 2, 4), two blocks a level."""
    config = model_config(compose_cfg("train", ["model=unet"])["model"])
    assert config == UNetConfig() == UNetConfig.pderefiner_backbone()
    spec = NetSpec(("u",), 1, 1, ("dt", "dx", "refinement_step"), Grid.uniform("periodic", (256,)))
    net = build_model(config, spec)
    n_params = sum(p.numel() for p in net.parameters())
    print(f"unet 1-D width 64: {n_params / 1e6:.2f}M parameters")
    assert isinstance(net, UNet) and 5e6 < n_params < 9e6
    assert [block.conv1.conv.out_channels for block in net.down[:2]] == [64, 64]


def test_unet_refuses_what_it_cannot_serve() -> None:
    with pytest.raises(ValueError, match="model unet supports 1-D and 2-D grids, got a grid with 3 spatial axes"):
        build_model(TINY, spec_on("periodic", (8, 8, 8)))
    with pytest.raises(ValueError, match=r"model unet halves the grid 2 times .* divisible by 4; the grid shape "
                                         r"\(16, 18\) is not"):
        build_model(TINY, spec_on("periodic", (16, 18)))
    with pytest.raises(ValueError, match="model.norm_groups=3 for model unet is not valid"):
        model_config({"name": "unet", "norm_groups": 3})
    with pytest.raises(ValueError, match="model.channel_multipliers=\\[\\] for model unet is not valid"):
        model_config({"name": "unet", "channel_multipliers": []})
    with pytest.raises(ValueError, match="model.attention_heads=3 for model unet is not valid"):
        model_config({"name": "unet", "mid_attention": True, "attention_heads": 3})
    with pytest.raises(ValueError, match=r"unknown key\(s\) model.width for model unet"):
        model_config({"name": "unet", "width": 3})
