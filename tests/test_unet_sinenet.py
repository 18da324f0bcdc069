"""What the U-shaped convolutional nets (`unet`, `sinenet`) share: shapes in 1-D, 2-D, a box and on the sphere,
translation equivariance on periodic axes for shifts that are multiples of the total down-sampling factor, padding by
the grid, conditioning, and overfitting a tiny batch. Their own files test what is particular to each."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from baselines import NetSpec, build_model
from baselines.registry import ModelConfig
from baselines.sinenet import SineNetConfig
from baselines.unet import UNetConfig
from pdebench.data.grid import Grid

# Both tiny nets halve the grid twice: they commute with rolls by multiples of 4.
TINY: dict[str, ModelConfig] = {"unet": UNetConfig.tiny(), "sinenet": SineNetConfig.tiny()}

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.parametrize("name", sorted(TINY))]


def spec_on(kind: str, shape: tuple[int, ...], n_cond: int = 2, fields: tuple[str, ...] = ("u",), history: int = 1,
            bundle: int = 1) -> NetSpec:
    return NetSpec(fields, history, bundle, tuple(f"p{i}" for i in range(n_cond)), Grid.uniform(kind, shape))


def rolled(x: torch.Tensor, shift: int, axes: tuple[int, ...]) -> torch.Tensor:
    return torch.roll(x, (shift,) * len(axes), tuple(2 + a for a in axes))


def factor(name: str) -> int:
    return TINY[name].downsampling_factor


def trained_like(name: str, spec: NetSpec) -> torch.nn.Module:
    """The tiny net with every all-zero weight (the conditioned U-Net starts its blocks' second convolutions and its
    output convolution at zero, so its untrained output is zero) drawn at random, as after some training: only a net
    whose output depends on its input can show equivariance, padding by the grid or the use of its conditioning."""
    net = build_model(TINY[name], spec)
    with torch.no_grad():
        for weight in net.parameters():
            if weight.dim() > 1 and not weight.any():
                weight.normal_(0.0, weight[0].numel() ** -0.5)
    return net


@pytest.mark.parametrize(("kind", "shape"), [("periodic", (32,)), ("box", (16,)), ("periodic", (16, 32)),
                                             ("box", (16, 16)), ("sphere", (16, 32))])
def test_maps_shapes_and_every_parameter_learns(name: str, kind: str, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    net = build_model(TINY[name], spec_on(kind, shape, n_cond=2, fields=("u", "v"), history=2, bundle=3))
    out = net(torch.randn(3, 4, *shape), torch.randn(3, 2))
    assert out.shape == (3, 6, *shape)
    out.square().mean().backward()
    missing = [key for key, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


@pytest.mark.parametrize("shape", [(32,), (16, 24)])
def test_translation_equivariant_for_multiples_of_the_downsampling(name: str, shape: tuple[int, ...]) -> None:
    """Circular padding and periodic interpolation commute with every roll, 2x down-sampling only with even ones; so
    the net commutes with rolls by multiples of 2 ** levels (4 for the tiny nets), and not with a roll by one cell.
    The 2-D grid's axes differ in length, so padding or interpolating one axis as the other would show."""
    torch.manual_seed(0)
    net = trained_like(name, spec_on("periodic", shape)).double()
    x = torch.randn(2, 1, *shape, dtype=torch.float64)
    cond = torch.randn(2, 2, dtype=torch.float64)
    axes = tuple(range(len(shape)))
    for shift in (factor(name), 3 * factor(name)):
        torch.testing.assert_close(net(rolled(x, shift, axes), cond), rolled(net(x, cond), shift, axes),
                                   rtol=0, atol=1e-5)
    assert (net(rolled(x, 1, axes), cond) - rolled(net(x, cond), 1, axes)).abs().max() > 1e-3


def test_pads_by_the_grid_on_the_sphere_and_in_a_box(name: str) -> None:
    """On the sphere longitude wraps and latitude does not; in a box nothing wraps."""
    torch.manual_seed(0)
    shift = factor(name)
    sphere = trained_like(name, spec_on("sphere", (16, 32))).double()
    x = torch.randn(2, 1, 16, 32, dtype=torch.float64)
    cond = torch.randn(2, 2, dtype=torch.float64)
    torch.testing.assert_close(sphere(rolled(x, shift, (1,)), cond), rolled(sphere(x, cond), shift, (1,)),
                               rtol=0, atol=1e-5)
    assert (sphere(rolled(x, shift, (0,)), cond) - rolled(sphere(x, cond), shift, (0,))).abs().max() > 1e-3
    box = trained_like(name, spec_on("box", (16, 16))).double()
    square = x[..., :16]
    assert (box(rolled(square, shift, (1,)), cond) - rolled(box(square, cond), shift, (1,))).abs().max() > 1e-3


def test_uses_its_conditioning_and_serves_none(name: str) -> None:
    torch.manual_seed(0)
    net = trained_like(name, spec_on("periodic", (32,), n_cond=3))
    x = torch.randn(2, 1, 32)
    cond = torch.randn(2, 3)
    for index in range(3):
        other = cond.clone()
        other[:, index] += 0.5
        assert (net(x, cond) - net(x, other)).abs().max() > 1e-4
    plain = build_model(TINY[name], spec_on("periodic", (32,), n_cond=0))
    assert plain.embedding is None and plain(x, torch.zeros(2, 0)).shape == (2, 1, 32)
    with pytest.raises(ValueError, match=rf"model {name} expects conditioning of shape \[batch, 3\], got \(2, 4\)"):
        net(x, torch.zeros(2, 4))


def test_conditioning_is_cast_to_the_inputs_dtype(name: str) -> None:
    """Conditioning arrives in the data's float32 while the net may run in float64: it is embedded in the inputs'
    dtype, so the output is the one the float64 conditioning gives."""
    torch.manual_seed(0)
    net = trained_like(name, spec_on("periodic", (16,))).double()
    x, cond = torch.randn(2, 1, 16, dtype=torch.float64), torch.randn(2, 2)
    out = net(x, cond)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, net(x, cond.double()), rtol=0, atol=0)


@pytest.mark.slow  # trains for hundreds of steps
@pytest.mark.parametrize("shape", [(32,), (16, 16)])
def test_overfits_one_tiny_batch(name: str, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    net = build_model(TINY[name], spec_on("periodic", shape, n_cond=1))
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
