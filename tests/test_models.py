"""The model zoo: every registry entry builds from its typed config and maps shapes on every grid kind; FNO is
equivariant and learns; unknown keys fail by name."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from baselines import MODELS, ModelConfig, NetSpec, build_model, model_config, register
from pdebench.data.grid import Grid

SPECS = {
    "1d-periodic": NetSpec(("u",), 2, 3, ("L", "nu", "dt"), Grid.uniform("periodic", (32,))),
    "2d-periodic": NetSpec(("vx", "vy", "p"), 1, 1, (), Grid.uniform("periodic", (32, 32))),
    "2d-box": NetSpec(("smoke",), 2, 1, ("buoyancy",), Grid.uniform("box", (32, 32))),
    "sphere": NetSpec(("h", "u", "v"), 2, 2, (), Grid.uniform("sphere", (16, 32))),
}


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_every_registered_model_maps_shapes(name: str, spec: NetSpec) -> None:
    entry = MODELS[name]
    module = build_model(entry.config.tiny(), spec)
    space = spec.grid.shape
    cond = torch.randn(2, spec.n_cond)
    if entry.trainable:  # a net: folded channels
        out = module(torch.randn(2, spec.in_channels, *space), cond)
        assert out.shape == (2, spec.out_channels, *space)
    else:  # a reference stepper: frames in physical units
        out = module(torch.randn(2, spec.n_fields, spec.history, *space), cond)
        assert out.shape == (2, spec.n_fields, spec.bundle, *space)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_builder_receives_its_typed_config(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = MODELS[name]
    seen = []
    spy = dataclasses.replace(entry, builder=lambda c, s: seen.append(c) or entry.builder(c, s))
    monkeypatch.setitem(MODELS, name, spy)
    build_model({"name": name}, SPECS["1d-periodic"])
    assert isinstance(seen[0], entry.config) and seen[0] == entry.config()


def test_unknown_model_key_fails_by_name() -> None:
    """`+model.widht=3` used to reach the builder and be silently ignored."""
    with pytest.raises(ValueError, match=r"model\.widht for model fno; valid keys: name, n_modes, hidden_channels"):
        model_config({"name": "fno", "widht": 3})
    with pytest.raises(ValueError, match=r"model\.hidden_channels for model fno"):
        model_config({"name": "fno", "hidden_channels": "wide"})
    with pytest.raises(KeyError, match="unknown model 'fnoo'; registered models: fno, persistence"):
        model_config({"name": "fnoo"})


def test_registering_needs_a_typed_config_named_like_the_entry() -> None:
    @dataclasses.dataclass
    class Wrong(ModelConfig):
        name: str = "other"

    with pytest.raises(ValueError, match="must be 'mine'"):
        register("mine", config=Wrong)
    with pytest.raises(ValueError, match="registered twice"):
        register("fno", config=MODELS["fno"].config)(lambda c, s: None)


def test_persistence_repeats_the_last_input_frame() -> None:
    spec = NetSpec(("u", "v"), 3, 2, ("a",), Grid.uniform("periodic", (16,)))
    stepper = build_model({"name": "persistence"}, spec)
    frames = torch.randn(4, 2, 3, 16)
    out = stepper(frames, torch.zeros(4, 1))
    assert out.shape == (4, 2, 2, 16)
    assert torch.equal(out[:, :, 0], frames[:, :, -1]) and torch.equal(out[:, :, 1], frames[:, :, -1])


@pytest.mark.parametrize("spatial_dims", [1, 2])
def test_fno_is_periodic_translation_equivariant(spatial_dims: int) -> None:
    torch.manual_seed(0)
    spec = NetSpec(("u",), 1, 1, ("a", "b"), Grid.uniform("periodic", (32,) * spatial_dims))
    net = build_model(MODELS["fno"].config.tiny(), spec)
    x = torch.randn(2, 1, *(32,) * spatial_dims)
    cond = torch.randn(2, 2)
    dims = tuple(range(2, 2 + spatial_dims))
    shifts = (5,) * spatial_dims
    shifted_then_net = net(torch.roll(x, shifts, dims), cond)
    net_then_shifted = torch.roll(net(x, cond), shifts, dims)
    torch.testing.assert_close(shifted_then_net, net_then_shifted, rtol=1e-4, atol=1e-5)


def test_fno_overfits_one_tiny_batch() -> None:
    torch.manual_seed(0)
    spec = NetSpec(("u",), 1, 1, ("a",), Grid.uniform("periodic", (32,)))
    net = build_model(MODELS["fno"].config.tiny(), spec)
    grid = torch.linspace(0, 2 * torch.pi, 33)[:-1]
    x = torch.stack([torch.sin(k * grid) for k in (1, 2, 3, 4)]).unsqueeze(1)
    y = torch.roll(x, 3, dims=-1) * 0.5 + x**2
    cond = torch.randn(4, 1)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    initial = torch.nn.functional.mse_loss(net(x, cond), y).item()
    for _ in range(300):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(net(x, cond), y)
        loss.backward()
        optimizer.step()
    assert loss.item() < initial / 100


def test_fno_n_modes_must_match_the_grid() -> None:
    spec = NetSpec(("u",), 1, 1, (), Grid.uniform("periodic", (32, 32)))
    with pytest.raises(ValueError, match="model.n_modes has 3 entries but the data has 2 spatial dims"):
        build_model({"name": "fno", "n_modes": [8, 8, 8]}, spec)
