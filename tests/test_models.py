"""The model zoo: every registry entry builds and maps shapes; FNO is equivariant, learns, and round-trips."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from cli import TINY_TRAIN
from tests_support import small_model_config

from baselines import MODELS, NetShape, build_model
from pdebench.training.checkpoint import CheckpointError, load_checkpoint
from pdebench.training.run import train

SHAPES = [
    NetShape(n_fields=1, history=2, bundle=3, n_cond=3, spatial_dims=1),
    NetShape(n_fields=3, history=1, bundle=1, n_cond=0, spatial_dims=2),
]


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("shape", SHAPES, ids=["1d", "2d"])
def test_every_registered_model_maps_shapes(name: str, shape: NetShape) -> None:
    net = build_model(small_model_config(name), shape)
    space = (32,) * shape.spatial_dims
    out = net(torch.randn(2, shape.in_channels, *space), torch.randn(2, shape.n_cond))
    assert out.shape == (2, shape.out_channels, *space)
    assert torch.isfinite(out).all()


def test_persistence_repeats_the_last_input_frame() -> None:
    shape = NetShape(n_fields=2, history=3, bundle=2, n_cond=1, spatial_dims=1)
    net = build_model({"name": "persistence"}, shape)
    frames = torch.randn(4, 2, 3, 16)
    out = net(frames.reshape(4, 6, 16), torch.zeros(4, 1)).view(4, 2, 2, 16)
    assert torch.equal(out[:, :, 0], frames[:, :, -1]) and torch.equal(out[:, :, 1], frames[:, :, -1])


@pytest.mark.parametrize("spatial_dims", [1, 2])
def test_fno_is_periodic_translation_equivariant(spatial_dims: int) -> None:
    torch.manual_seed(0)
    shape = NetShape(n_fields=1, history=1, bundle=1, n_cond=2, spatial_dims=spatial_dims)
    net = build_model(small_model_config("fno"), shape)
    x = torch.randn(2, 1, *(32,) * spatial_dims)
    cond = torch.randn(2, 2)
    dims = tuple(range(2, 2 + spatial_dims))
    shifts = (5,) * spatial_dims
    shifted_then_net = net(torch.roll(x, shifts, dims), cond)
    net_then_shifted = torch.roll(net(x, cond), shifts, dims)
    torch.testing.assert_close(shifted_then_net, net_then_shifted, rtol=1e-4, atol=1e-5)


def test_fno_overfits_one_tiny_batch() -> None:
    torch.manual_seed(0)
    shape = NetShape(n_fields=1, history=1, bundle=1, n_cond=1, spatial_dims=1)
    net = build_model(small_model_config("fno"), shape)
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


def test_checkpoint_round_trips_with_weights_only(compose_cfg, data_root: Path, tmp_path: Path) -> None:
    cfg = compose_cfg("train", ["data=ks", "model=fno", f"data.root={data_root}", f"run_dir={tmp_path}/run",
                                "logger=csv", *TINY_TRAIN])
    best = train(cfg)
    raw = torch.load(best, map_location="cpu", weights_only=True)  # must not need arbitrary unpickling
    assert raw["pdebench"]["dataset"] == "ks-tiny"
    module, meta = load_checkpoint(best)
    assert meta["model"] == "fno" and meta["n_parameters"] == sum(p.numel() for p in module.parameters())
    frames, params = torch.randn(3, 1, 1, 256), torch.randn(3, 4)
    with torch.no_grad():
        again, _ = load_checkpoint(best)
        torch.testing.assert_close(module(frames, params), again(frames, params))
    state = raw["state_dict"]
    assert all(torch.is_tensor(value) for value in state.values())


def test_foreign_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="not written by pdebench-train"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.ckpt")


def test_fast_gradient_clipping_matches_torch() -> None:
    """The module clips over real views of complex spectral gradients; the result must equal torch's own."""
    import copy

    from pdebench.training.module import SurrogateModule

    stats = {"field_mean": [0.0], "field_std": [1.0], "param_mean": [0.0] * 2, "param_std": [1.0] * 2}
    data_info = {"dataset": "toy", "fields": ["u"], "parameters": ["a", "b"], "spatial_dims": 1, "frame_stride": 1,
                 "stats": stats}
    objective = {"name": "onestep", "history": 1, "bundle": 1, "loss": "mse"}
    optim = {"lr": 1e-3, "weight_decay": 0.0, "warmup_fraction": 0.1, "min_lr_ratio": 0.1}
    validation = {"rollout_steps": 2, "max_trajectories": 2, "nrmse_cap": 10.0}
    ours = SurrogateModule(small_model_config("fno"), objective, optim, validation, data_info, "fno")
    reference = copy.deepcopy(ours)
    x, y, p = torch.randn(4, 1, 1, 64), 10 * torch.randn(4, 1, 1, 64), torch.randn(4, 2)
    for module in (ours, reference):
        ((module(x, p) - y) ** 2).mean().backward()
    ours.configure_gradient_clipping(None, 0.5, "norm")
    torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.5)
    assert any(q.grad.is_complex() for q in ours.parameters())
    for a, b in zip(ours.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-7)
    assert torch.nn.utils.get_total_norm([q.grad for q in ours.parameters()]).item() == pytest.approx(0.5, rel=1e-4)
