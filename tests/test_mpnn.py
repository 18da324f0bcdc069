"""MP-PDE (`mpnn`): torch_geometric message passing on graphs built from the Grid, wrap-around edges on periodic
axes, great-circle neighbourhoods on the sphere, batching by torch_geometric, equivariance, learning, the published
parameter counts, the refusal of a residual output under a difference target, and one-sentence refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch_geometric.data import Batch
from torch_geometric.nn import MessagePassing

from baselines import NetSpec, build_model, check_model_spec, model_config
from baselines.graphs import RADIUS_SLACK, grid_graph
from baselines.mpnn import MPNN, MPNNConfig
from pdebench.cli.common import check_command_line
from pdebench.data.grid import Grid
from pdebench.errors import InvalidSetting
from pdebench.forecast.targets import DifferenceTarget
from pdebench.training.config import train_config

CONF = Path(__file__).resolve().parents[1] / "conf" / "model" / "mpnn.yaml"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_net(spec: NetSpec, **overrides: object) -> MPNN:
    """`MPNNConfig.tiny()` with `overrides`, built for `spec` (tiny() is called here, when the test runs)."""
    torch.manual_seed(0)
    tiny = OmegaConf.to_container(OmegaConf.structured(MPNNConfig.tiny()))
    return build_model(model_config({**tiny, **overrides}), spec)


def neighbour_offsets(graph, node: int) -> list[tuple[float, ...]]:
    """Sorted offsets (pos_i - pos_j) of the edges that end at `node`, rounded for set comparison."""
    mask = graph.edge_index[1] == node
    return sorted(tuple(np.round(o, 6)) for o in graph.offset[mask])


# --- the layer ----------------------------------------------------------------------------------------------------
def test_processor_layers_are_torch_geometric_message_passing_with_mean_aggregation() -> None:
    net = tiny_net(NetSpec(("u",), 1, 1, (), Grid.uniform("periodic", (16,))))
    assert len(net.layers) == MPNNConfig.tiny().n_layers
    for layer in net.layers:
        assert isinstance(layer, MessagePassing)
        assert type(layer.aggr_module).__name__ == "MeanAggregation"


def test_processor_layer_equals_mp_pde_written_out_by_hand() -> None:
    """Message MLP on the concatenation (h_i, h_j, u_i - u_j, x_i - x_j, c_i), mean over incoming edges, residual
    update MLP on (h_i, mean, c_i), then each channel normalised over the nodes of its own graph."""
    spec = NetSpec(("u", "v"), 2, 1, ("a", "b"), Grid.uniform("periodic", (6, 5)))
    net = tiny_net(spec).double()
    layer, graph = net.layers[0], net.graph.batch(2, torch.device("cpu"), torch.float64)
    n = 2 * 30
    h, u, cond = (torch.randn(n, k, dtype=torch.float64) for k in (MPNNConfig.tiny().hidden_channels, 4, 2))
    source, target = graph.edge_index
    messages = layer.message_net(torch.cat([h[target], h[source], u[target] - u[source], graph.offset, cond[target]],
                                           dim=-1))
    mean = torch.zeros_like(h).index_add_(0, target, messages) / torch.bincount(target, minlength=n)[:, None]
    updated = (h + layer.update_net(torch.cat([h, mean, cond], dim=-1))).view(2, 30, -1)
    expected = (updated - updated.mean(1, keepdim=True)) / (updated.var(1, unbiased=False, keepdim=True) + 1e-5).sqrt()
    torch.testing.assert_close(layer(h, u, cond, graph.edge_index, graph.offset, graph.batch, 2),
                               expected.view(n, -1))


def test_every_mlp_and_the_decoder_apply_swish_as_mp_pde_does() -> None:
    """Encoder, message and update MLPs compute swish(W2 swish(W1 v)); the decoder Conv1d -> swish -> Conv1d, with no
    swish on its output (an increment of either sign)."""
    net = tiny_net(NetSpec(("u",), 2, 2, ("a",), Grid.uniform("periodic", (8,)))).double()
    silu = torch.nn.functional.silu
    layer = net.layers[0]
    for mlp in (net.encoder, layer.message_net, layer.update_net):
        first, second = (m for m in mlp if isinstance(m, torch.nn.Linear))
        v = torch.randn(5, first.in_features, dtype=torch.float64)
        torch.testing.assert_close(mlp(v), silu(second(silu(first(v)))))
    first, second = (m for m in net.decoder.net if isinstance(m, torch.nn.Conv1d))
    h = torch.randn(5, MPNNConfig.tiny().hidden_channels, dtype=torch.float64)
    torch.testing.assert_close(net.decoder(h), second(silu(first(h[:, None]))).flatten(1))


# --- the graph ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("shape", "radius", "max_neighbours", "degree"), [
    ((32,), 3.0, 32, 6),  # MP-PDE: three neighbours per side
    ((12, 10), 3.0, 32, 28),  # the lattice points of a disc of radius 3, centre excluded
    ((12, 10), 3.0, 10, 10),  # the cap binds; ties are broken by offset, so every node keeps the same ones
])
def test_periodic_boundary_node_has_the_neighbours_of_a_middle_node(shape, radius, max_neighbours, degree) -> None:
    graph = grid_graph(Grid.uniform("periodic", shape), radius, max_neighbours)
    assert (graph.in_degree == degree).all()
    corner, middle = 0, int(np.ravel_multi_index(tuple(n // 2 for n in shape), shape))
    assert neighbour_offsets(graph, corner) == neighbour_offsets(graph, middle)
    # minimum-image offsets: the wrap-around neighbours of the corner are one spacing away, not n - 1
    assert np.abs(graph.offset).max() <= radius + 1e-9
    assert (np.linalg.norm(graph.offset, axis=1) <= radius + 1e-9).all()


def test_box_grid_has_no_wrap_around_edges() -> None:
    graph = grid_graph(Grid.uniform("box", (10, 10)), 1.0, 32)
    assert graph.in_degree[0] == 2 and graph.in_degree[55] == 4  # corner: right and below only
    assert sorted(map(tuple, graph.offset[graph.edge_index[1] == 0])) == [(-1.0, 0.0), (0.0, -1.0)]


def test_sphere_neighbourhoods_by_great_circle_wrap_longitude_and_cross_the_pole() -> None:
    grid = Grid.uniform("sphere", (8, 16))  # 22.5 degree spacing in both axes
    graph = grid_graph(grid, 1.5, 32)
    lat, lon = (a.ravel() for a in np.meshgrid(*grid.coordinates, indexing="ij"))
    source, target = graph.edge_index
    # every edge within 1.5 latitude spacings of great-circle angle
    p = np.deg2rad(np.stack([lat, lon], 1))
    cos = (np.sin(p[source, 0]) * np.sin(p[target, 0])
           + np.cos(p[source, 0]) * np.cos(p[target, 0]) * np.cos(p[source, 1] - p[target, 1]))
    assert np.rad2deg(np.arccos(np.clip(cos, -1, 1))).max() <= 1.5 * 22.5 + 1e-6
    # longitude wraps: the equatorial node at lon 0 hears the one at lon 337.5, which lies to its west
    node, west = 3 * 16, 3 * 16 + 15
    edge = np.flatnonzero((target == node) & (source == west))
    assert edge.size == 1 and graph.offset[edge[0], 1] > 0.9 and abs(graph.offset[edge[0], 0]) < 0.1
    # the pole: a node of the first ring hears the node across the pole (lon + 180), which lies to its north
    node, across = 0, 8
    edge = np.flatnonzero((target == node) & (source == across))
    assert edge.size == 1 and graph.offset[edge[0], 0] < -0.9 and abs(graph.offset[edge[0], 1]) < 1e-9
    # every node of a latitude ring has the same neighbourhood (rotating in longitude changes nothing)
    for row in range(8):
        assert neighbour_offsets(graph, row * 16) == neighbour_offsets(graph, row * 16 + 5)


def test_graph_is_built_once_per_grid_and_cached_per_device() -> None:
    spec = NetSpec(("u",), 1, 1, (), Grid.uniform("periodic", (16, 8)))
    first, second = tiny_net(spec), tiny_net(NetSpec(("u", "v"), 2, 1, ("a",), Grid.uniform("periodic", (16, 8))))
    assert first.graph is second.graph  # equal grids, same settings: one graph
    tiny = MPNNConfig.tiny()
    assert grid_graph(Grid.uniform("periodic", (16, 8)), tiny.radius, tiny.max_neighbours) is first.graph
    assert grid_graph(spec.grid, tiny.radius + 1, tiny.max_neighbours) is not first.graph
    data = first.graph.data(torch.device("cpu"), torch.float32)
    assert first.graph.data(torch.device("cpu"), torch.float32) is data
    batch = first.graph.batch(3, torch.device("cpu"), torch.float32)
    assert isinstance(batch, Batch) and batch.num_graphs == 3
    assert first.graph.batch(3, torch.device("cpu"), torch.float32) is batch
    assert torch.equal(batch.batch, torch.arange(3).repeat_interleave(128))


def brute_force_flat_edges(grid: Grid, radius: float) -> dict[tuple[int, int], tuple[float, ...]]:
    """Every (source, target) pair within `radius` spacings, found pair by pair, with its offset pos_i - pos_j in
    spacings (minimum image on periodic axes)."""
    index = np.stack([a.ravel() for a in np.meshgrid(*(np.arange(n) for n in grid.shape), indexing="ij")], axis=1)
    edges = {}
    for target, pos_i in enumerate(index):
        offset = (pos_i - index).astype(float)
        for axis, (n, wraps) in enumerate(zip(grid.shape, grid.periodic, strict=True)):
            if wraps:
                offset[:, axis] -= n * np.round(offset[:, axis] / n)
        for source in np.flatnonzero(np.linalg.norm(offset, axis=1) <= radius + 1e-9):
            if source != target:
                edges[int(source), target] = tuple(offset[source])
    return edges


@pytest.mark.parametrize("kind", ["periodic", "box"])
def test_flat_graph_holds_exactly_the_pairs_within_the_radius_in_spacings_of_each_axis(kind: str) -> None:
    """A 9 x 14 grid with spacings 0.3 and 0.05 not starting at 0: offsets are in each axis's own spacings (swapping
    the axes' spacings or shapes would change them), and radius 2.5 keeps 20 neighbours away from walls."""
    grid = Grid(kind, ("x", "y"), (1.0 + 0.3 * np.arange(9), -2.0 + 0.05 * np.arange(14)))
    graph = grid_graph(grid, 2.5, 32)
    found = {(int(s), int(t)): tuple(o) for s, t, o in zip(*graph.edge_index, graph.offset, strict=True)}
    expected = brute_force_flat_edges(grid, 2.5)
    assert found.keys() == expected.keys()
    np.testing.assert_allclose([found[e] for e in expected], list(expected.values()), rtol=0, atol=1e-9)
    assert graph.num_edges == len(expected)
    if kind == "periodic":
        assert (graph.in_degree == 20).all()
    else:  # the corner node sees the quarter disc only: (0..2, 0..2) within 2.5, itself excluded
        assert graph.in_degree[0] == 7 and graph.in_degree.max() == 20
        # a wall-bounded axis shorter than twice the radius: offsets of 2 spacings stay 2, nothing wraps to -1
        short = grid_graph(Grid.uniform("box", (3,)), 2.5, 32)
        assert neighbour_offsets(short, 0) == [(-2.0,), (-1.0,)] and neighbour_offsets(short, 2) == [(1.0,), (2.0,)]


@pytest.mark.parametrize("radius", [1.0, 1.5])
def test_sphere_graph_holds_exactly_the_pairs_within_the_radius_with_tangent_offsets(radius: float) -> None:
    """Every pair within `radius` latitude spacings of great-circle angle and no other (at radius 1 the neighbours
    north and south lie at exactly the radius, and are kept); each offset is the chord from source to target
    projected on the target's (north, east) directions, taken here as the derivatives of the position on the unit
    sphere by latitude and by longitude (over cos(lat)), in latitude spacings."""
    grid = Grid.uniform("sphere", (8, 12))  # latitude spacing 22.5 degrees, longitude spacing 30 degrees
    graph = grid_graph(grid, radius, 32)
    lat, lon = (np.deg2rad(a.ravel()) for a in np.meshgrid(*grid.coordinates, indexing="ij"))

    def xyz(la: np.ndarray, lo: np.ndarray) -> np.ndarray:
        return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)

    points = xyz(lat, lon)
    angle = np.arccos(np.clip(points @ points.T, -1, 1)) / np.deg2rad(22.5)  # [source, target]
    expected = {(int(s), int(t)) for s, t in zip(*np.nonzero(angle <= radius + 1e-9), strict=True) if s != t}
    source, target = graph.edge_index
    assert set(zip(source.tolist(), target.tolist(), strict=True)) == expected
    h = 1e-6
    north = (xyz(lat + h, lon) - xyz(lat - h, lon)) / (2 * h)
    east = (xyz(lat, lon + h) - xyz(lat, lon - h)) / (2 * h * np.cos(lat)[:, None])
    chord = points[target] - points[source]
    tangent = np.stack([(chord * north[target]).sum(1), (chord * east[target]).sum(1)], axis=1) / np.deg2rad(22.5)
    np.testing.assert_allclose(graph.offset, tangent, rtol=0, atol=1e-7)


def test_sphere_neighbour_cap_keeps_the_nearest_by_great_circle_angle() -> None:
    """With at most 5 neighbours of the 2.5-spacing disc, each node keeps its 5 nearest by great-circle angle (not
    by the projected offset's length, which shrinks across the pole): no dropped neighbour is nearer than a kept
    one, and ties at the cap are broken by the offset, the same way on a whole latitude ring."""
    grid = Grid.uniform("sphere", (6, 10))
    full, capped = grid_graph(grid, 2.5, 64), grid_graph(grid, 2.5, 5)
    lat, lon = (np.deg2rad(a.ravel()) for a in np.meshgrid(*grid.coordinates, indexing="ij"))
    points = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=1)
    angle = np.arccos(np.clip(points @ points.T, -1, 1))
    assert (capped.in_degree == 5).all() and (full.in_degree > 5).all()
    kept = set(zip(*capped.edge_index.tolist(), strict=True))
    for node in range(capped.num_nodes):
        sources = full.edge_index[0][full.edge_index[1] == node]
        near = sorted(angle[sources, node])
        kept_angles = [angle[s, node] for s in sources if (int(s), node) in kept]
        assert sorted(kept_angles) == pytest.approx(near[:5], abs=1e-12)
    # where the cap splits neighbours at equal angle, the tie goes the same way around every node of a ring
    for row in range(6):
        assert all(neighbour_offsets(capped, row * 10 + k) == neighbour_offsets(capped, row * 10) for k in range(10))


def test_a_graph_without_edges_still_batches_every_node() -> None:
    """Half a spacing on a box grid links no node: the graph still has its 5 nodes, a batch of 3 has 15, each
    assigned to its own sample, and the net runs on it (a node with no neighbours hears nothing)."""
    graph = grid_graph(Grid.uniform("box", (5,)), 0.5, 32)
    assert graph.num_edges == 0 and graph.num_nodes == 5
    batch = graph.batch(3, torch.device("cpu"), torch.float32)
    assert batch.num_nodes == 15 and torch.equal(batch.batch, torch.arange(3).repeat_interleave(5))
    net = tiny_net(NetSpec(("u",), 1, 1, (), Grid.uniform("box", (5,))), radius=0.5)
    assert torch.isfinite(net(torch.randn(3, 1, 5), torch.zeros(3, 0))).all()


def test_batched_graphs_are_cached_per_size_and_the_least_recently_used_is_dropped() -> None:
    graph = grid_graph.__wrapped__(Grid.uniform("periodic", (7,)), 1.0, 32)  # a fresh graph, uncached
    cpu = torch.device("cpu")
    first = {size: graph.batch(size, cpu, torch.float32) for size in (1, 2, 3, 4)}
    assert graph.batch(1, cpu, torch.float32) is first[1]  # used again: now the most recent
    graph.batch(5, cpu, torch.float32)  # a fifth size pushes out the least recently used, size 2
    assert [graph.batch(size, cpu, torch.float32) is first[size] for size in (1, 3, 4)] == [True] * 3
    assert graph.batch(2, cpu, torch.float32) is not first[2]
    assert graph.batch(3, cpu, torch.float64).offset.dtype == torch.float64
    batch = first[3]
    assert batch.num_graphs == 3 and batch.num_nodes == 21
    # graph b's edges are graph 0's shifted by b * 7 nodes
    torch.testing.assert_close(batch.edge_index[:, 2 * graph.num_edges:], torch.as_tensor(graph.edge_index) + 14)


# --- the net ------------------------------------------------------------------------------------------------------
SPECS = {
    "1d": NetSpec(("u",), 2, 3, ("L", "nu", "dt"), Grid.uniform("periodic", (32,))),
    "2d-periodic": NetSpec(("vx", "vy"), 1, 2, (), Grid.uniform("periodic", (12, 16))),
    "2d-box": NetSpec(("smoke",), 2, 1, ("buoyancy",), Grid.uniform("box", (12, 12))),
    "sphere": NetSpec(("h", "u", "v"), 2, 2, ("day",), Grid.uniform("sphere", (8, 16))),
}


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_runs_forward_and_backward_on_every_grid_kind(spec: NetSpec) -> None:
    net = tiny_net(spec)
    x = torch.randn(2, spec.in_channels, *spec.grid.shape)
    out = net(x, torch.randn(2, spec.n_cond))
    assert out.shape == (2, spec.out_channels, *spec.grid.shape) and torch.isfinite(out).all()
    out.square().mean().backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert all(g.abs().sum() > 0 for g in grads)  # every weight, the last layer's included, takes part


@pytest.mark.parametrize("spec", [SPECS["1d"], SPECS["2d-periodic"], SPECS["sphere"]], ids=["1d", "2d", "sphere"])
def test_a_batch_of_two_graphs_equals_each_graph_alone(spec: NetSpec) -> None:
    net = tiny_net(spec)
    x, cond = torch.randn(2, spec.in_channels, *spec.grid.shape), torch.randn(2, spec.n_cond)
    together = net(x, cond)
    alone = torch.cat([net(x[:1], cond[:1]), net(x[1:], cond[1:])])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(together[0], together[1])


@pytest.mark.parametrize("shape", [(32,), (12, 16)], ids=["1d", "2d"])
def test_periodic_translation_equivariance(shape: tuple[int, ...]) -> None:
    spec = NetSpec(("u", "v"), 2, 2, ("a",), Grid.uniform("periodic", shape))
    net = tiny_net(spec).double()
    x = torch.randn(2, spec.in_channels, *shape, dtype=torch.float64)
    cond = torch.randn(2, 1, dtype=torch.float64)
    dims = tuple(range(2, 2 + len(shape)))
    for shifts in [(1,) * len(shape), (-1,) + (3,) * (len(shape) - 1)]:
        torch.testing.assert_close(net(torch.roll(x, shifts, dims), cond), torch.roll(net(x, cond), shifts, dims),
                                   rtol=0, atol=1e-5)


def test_sphere_is_equivariant_to_rotation_in_longitude() -> None:
    spec = SPECS["sphere"]
    net = tiny_net(spec).double()
    x = torch.randn(2, spec.in_channels, *spec.grid.shape, dtype=torch.float64)
    cond = torch.randn(2, 1, dtype=torch.float64)
    torch.testing.assert_close(net(torch.roll(x, 1, -1), cond), torch.roll(net(x, cond), 1, -1), rtol=0, atol=1e-5)
    rolled_in_latitude = net(torch.roll(x, 1, -2), cond)  # latitude does not wrap
    assert not torch.allclose(rolled_in_latitude, torch.roll(net(x, cond), 1, -2), atol=1e-3)


def test_node_position_breaks_equivariance_on_purpose() -> None:
    spec = NetSpec(("u",), 1, 1, (), Grid.uniform("periodic", (16,)))
    net = tiny_net(spec, node_position=True).double()
    x = torch.randn(1, 1, 16, dtype=torch.float64)
    cond = torch.zeros(1, 0, dtype=torch.float64)
    assert not torch.allclose(net(torch.roll(x, 1, -1), cond), torch.roll(net(x, cond), 1, -1), atol=1e-6)


def test_conditioning_changes_the_output_and_none_is_accepted() -> None:
    spec = SPECS["1d"]
    net = tiny_net(spec)
    x = torch.randn(2, spec.in_channels, 32)
    cond = torch.randn(2, 3)
    for column in range(3):
        changed = cond.clone()
        changed[:, column] += 1.0
        assert (net(x, cond) - net(x, changed)).abs().max() > 1e-4
    no_cond = NetSpec(("u",), 2, 3, (), spec.grid)
    assert tiny_net(no_cond)(x, torch.zeros(2, 0)).shape == (2, 3, 32)


def test_conditioning_is_cast_to_the_inputs_dtype() -> None:
    """Conditioning arrives in the data's float32 while the net may run in float64: the nodes read it in the inputs'
    dtype, so the output is the one the float64 conditioning gives."""
    spec = SPECS["1d"]
    net = tiny_net(spec).double()
    x, cond = torch.randn(2, spec.in_channels, 32, dtype=torch.float64), torch.randn(2, 3)
    out = net(x, cond)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, net(x, cond.double()), rtol=0, atol=0)


def test_residual_output_adds_increments_to_the_last_frame_of_each_field() -> None:
    """history 3, two fields: channels (u0, u1, u2, v0, v1, v2); with a zero decoder every output is u2 or v2."""
    spec = NetSpec(("u", "v"), 3, 2, (), Grid.uniform("periodic", (16,)))
    net = tiny_net(spec)
    with torch.no_grad():
        for p in net.decoder.net[-1].parameters():
            p.zero_()
    x = torch.randn(2, 6, 16)
    out = net(x, torch.zeros(2, 0))
    torch.testing.assert_close(out, x[:, [2, 2, 5, 5]])
    direct = tiny_net(spec, residual=False)
    with torch.no_grad():
        direct.decoder.net[-1].bias.copy_(torch.tensor([1.0, 2.0]))
        direct.decoder.net[-1].weight.zero_()
    torch.testing.assert_close(direct(x, torch.zeros(2, 0)), torch.tensor([1.0, 1.0, 2.0, 2.0]).view(1, 4, 1)
                               .expand(2, 4, 16))


def test_node_position_is_each_coordinate_scaled_to_the_unit_interval_between_values_and_conditioning() -> None:
    """On a 5 x 3 grid whose axes start away from 0 and span different lengths, one shorter than 1 (x: 2.0..2.6,
    y: -1..5), the encoder reads [history frames, x scaled to [0, 1], y scaled to [0, 1], conditioning] per node,
    nodes in C order."""
    grid = Grid("box", ("x", "y"), (2.0 + 0.15 * np.arange(5), -1.0 + 3.0 * np.arange(3)))
    spec = NetSpec(("u",), 2, 1, ("a",), grid)
    net = tiny_net(spec, node_position=True)
    seen = []
    net.encoder[0].register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    x, cond = torch.randn(2, 2, 5, 3), torch.tensor([[0.7], [-1.3]])
    net(x, cond)
    xs, ys = np.meshgrid(np.arange(5) / 4, np.arange(3) / 2, indexing="ij")
    position = torch.as_tensor(np.stack([xs.ravel(), ys.ravel()], axis=1), dtype=torch.float32)
    expected = torch.cat([x.flatten(2).transpose(1, 2).reshape(30, 2), position.repeat(2, 1),
                          cond.repeat_interleave(15, dim=0)], dim=1)
    torch.testing.assert_close(seen[0], expected)


def test_residual_output_adds_k_times_the_decoded_value_to_the_last_frame() -> None:
    """Output frame k (1-based) of the bundle is u_last + k * d_k: with the decoder's last layer emitting 0.5 for
    field u and 1.5 for field v at every frame (its weights zeroed, one bias per field), history 3 and bundle 2, the
    frames are u2 + 0.5, u2 + 1.0, v2 + 1.5, v2 + 3.0."""
    spec = NetSpec(("u", "v"), 3, 2, (), Grid.uniform("periodic", (16,)))
    net = tiny_net(spec)
    with torch.no_grad():
        net.decoder.net[-1].weight.zero_()
        net.decoder.net[-1].bias.copy_(torch.tensor([0.5, 1.5]))
    x = torch.randn(2, 6, 16)
    out = net(x, torch.zeros(2, 0))
    shift = torch.tensor([0.5, 1.0, 1.5, 3.0]).view(1, 4, 1)
    torch.testing.assert_close(out, x[:, [2, 2, 5, 5]] + shift)


def test_the_smallest_settings_build_a_working_net() -> None:
    """Every whole-number setting's least valid value is 1, and the first decoder kernel may span the whole latent
    vector; a bundle that leaves the second decoder convolution a kernel of exactly 1 is served."""
    spec = NetSpec(("u",), 1, 1, (), Grid.uniform("periodic", (8,)))
    smallest = {"hidden_channels": 1, "n_layers": 1, "max_neighbours": 1, "decoder_channels": 1,
                "decoder_kernel": 1, "decoder_stride": 1}
    net = tiny_net(spec, **smallest)
    assert net(torch.randn(1, 1, 8), torch.zeros(1, 0)).shape == (1, 1, 8)
    assert (net.graph.in_degree == 1).all()
    whole = tiny_net(spec, decoder_kernel=MPNNConfig.tiny().hidden_channels, decoder_stride=1)
    assert whole.decoder.net[-1].kernel_size == (1,)
    # hidden 16, kernel 4, stride 2: (16 - 4) // 2 + 1 = 7 positions, so a bundle of 7 leaves a kernel of 1
    bundle_seven = tiny_net(NetSpec(("u",), 1, 7, (), spec.grid))
    assert bundle_seven.decoder.net[-1].kernel_size == (1,)
    assert bundle_seven(torch.randn(1, 1, 8), torch.zeros(1, 0)).shape == (1, 7, 8)
    with pytest.raises(InvalidSetting, match=r"cannot emit bundle=8 frames: its first decoder convolution leaves 7 "):
        tiny_net(NetSpec(("u",), 1, 8, (), spec.grid))



def test_tiny_config_is_smaller_than_the_published_one() -> None:
    """`tiny()` promises a net small enough for a smoke test: narrower, shallower, with fewer decoder channels and a
    shorter radius than the published defaults, and under 2% of their parameters on MP-PDE's 1-D data."""
    tiny, full = MPNNConfig.tiny(), MPNNConfig()
    for key in ("hidden_channels", "n_layers", "decoder_channels", "radius"):
        assert getattr(tiny, key) < getattr(full, key), key
    spec = NetSpec(("u",), 25, 5, ("t",), Grid.uniform("periodic", (100,)))
    with torch.device("meta"):
        counts = [sum(p.numel() for p in build_model(config, spec).parameters()) for config in (tiny, full)]
    assert counts[0] < counts[1] / 50

@pytest.mark.slow  # trains for hundreds of steps
def test_overfits_one_tiny_batch() -> None:
    spec = NetSpec(("u",), 1, 2, ("a",), Grid.uniform("periodic", (32,)))
    net = tiny_net(spec)
    grid = torch.linspace(0, 2 * torch.pi, 33)[:-1]
    x = torch.stack([torch.sin(k * grid) for k in (1, 2, 3, 4)]).unsqueeze(1)
    y = torch.cat([torch.roll(x, 1, -1) * 0.5 + x**2, torch.roll(x, 2, -1)], dim=1)
    cond = torch.randn(4, 1)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    initial = torch.nn.functional.mse_loss(net(x, cond), y).item()
    for _ in range(200):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(net(x, cond), y)
        loss.backward()
        optimizer.step()
    assert loss.item() < initial / 100


# --- the reference configuration ----------------------------------------------------------------------------------
def test_reference_yaml_holds_the_config_defaults() -> None:
    settings = OmegaConf.to_container(OmegaConf.load(CONF))
    settings.pop("defaults")
    assert model_config(settings) == MPNNConfig()


def test_published_sizes_equal_the_reference_code_at_e3_and_e1() -> None:
    """MP-PDE's `MP_PDE_Solver` instantiated at E3 (time window 25, width 128, 6 layers, eq_variables alpha, beta,
    gamma) has 639,737 parameters, at E1 (no eq_variables) 634,745. Its node input is (25 values, x/L, t/t_max and
    the equation parameters); here x/L is `node_position` and the equation variables are the conditioning. Counting
    its layers (weights + biases) at E3:
      encoder  Linear(25 + 1 + 4, 128) + Linear(128, 128)            = 3968 + 16512                  =  20480
      layer    message Linear(2*128 + 25 + 1 + 4, 128) + (128, 128)  = 36736 + 16512
               update  Linear(128 + 128 + 4, 128) + (128, 128)       = 33408 + 16512     = 103168, x 6 = 619008
      decoder  Conv1d(1, 8, 16) + Conv1d(8, 1, 14)                    = 136 + 113                     =    249
    """
    sizes = {size.setting.split(":")[0]: size for size in MPNNConfig.published_sizes()}
    assert set(sizes) == {"MP-PDE E3", "MP-PDE E1"}
    e3, e1 = sizes["MP-PDE E3"], sizes["MP-PDE E1"]
    assert (e3.published, e1.published) == (639_737, 634_745)
    # the paper's data: one field u on 100 points of [0, 16), x/L among the inputs, time first among the variables
    assert e3.spec.grid == e1.spec.grid and (e3.spec.grid.kind, e3.spec.grid.axis_names) == ("periodic", ("x",))
    np.testing.assert_allclose(e3.spec.grid.coordinates[0], np.arange(100) * 0.16, rtol=0, atol=1e-12)
    assert e3.spec == NetSpec(("u",), 25, 25, ("t", "alpha", "beta", "gamma"), e3.spec.grid)
    assert e1.spec == NetSpec(("u",), 25, 25, ("t",), e3.spec.grid)
    assert e3.config == e1.config == MPNNConfig(node_position=True)
    assert e3.setting == ("MP-PDE E3: 1-D, 100 points, 1 field x 25 frames in, 25 out (time window 25), width 128, "
                          "6 layers, node input x/L, equation variables t/t_max, alpha, beta, gamma")
    assert e1.setting.endswith("node input x/L, equation variables t/t_max")
    reference = ("brandstetter-johannes/MP-Neural-PDE-Solvers: experiments/models_gnn.py MP_PDE_Solver as "
                 "experiments/train.py builds it")
    assert e3.source == f"{reference} for --experiment E3 (eq_variables alpha, beta, gamma)"
    assert e1.source == f"{reference} for --experiment E1 (no eq_variables)"
    assert e3.count() == e3.published and e1.count() == e1.published
    net = build_model(e3.config, e3.spec)
    modules = {name: sum(p.numel() for p in module.parameters()) for name, module in net.named_children()}
    assert modules == {"encoder": 20480, "layers": 6 * 103168, "decoder": 249}
    convolutions = [tuple(m.weight.shape) for m in net.decoder.net if isinstance(m, torch.nn.Conv1d)]
    assert convolutions == [(8, 1, 16), (1, 8, 14)]
    translation_equivariant = build_model(MPNNConfig(), e3.spec)  # default: no x/L input, 128 fewer weights
    assert sum(p.numel() for p in translation_equivariant.parameters()) == e3.published - 128


@pytest.mark.parametrize(("window", "kernel", "stride", "published"), [(20, 15, 4, 635_217), (25, 16, 3, 639_737),
                                                                      (50, 12, 2, 662_073)])
def test_derived_decoder_kernel_is_the_references_at_each_of_its_time_windows(window: int, kernel: int, stride: int,
                                                                               published: int) -> None:
    """The reference hand-sets its decoder per time window: Conv1d(1, 8, 15, s=4) -> Conv1d(8, 1, 10) at 20,
    (16, s=3) -> 14 at 25, (12, s=2) -> 10 at 50; `published`: its E3 net at that window, instantiated."""
    spec = NetSpec(("u",), window, window, ("t", "alpha", "beta", "gamma"), Grid.uniform("periodic", (100,)))
    net = build_model(MPNNConfig(node_position=True, decoder_kernel=kernel, decoder_stride=stride), spec)
    assert net.decoder.net[-1].kernel_size[0] == {20: 10, 25: 14, 50: 10}[window]
    assert sum(p.numel() for p in net.parameters()) == published


# --- residual output and the objective's target -------------------------------------------------------------------
RESIDUAL_REFUSAL = (r"model.residual=true makes model mpnn output the last input frame plus its increments, and "
                    r"objective.target=difference adds the last input frame to the net's output again; set "
                    r"model.residual=false for this target")


def test_residual_with_a_difference_target_is_refused_by_train_config(compose_cfg) -> None:
    with pytest.raises(InvalidSetting, match=f"^{RESIDUAL_REFUSAL}$"):
        train_config(compose_cfg("train", ["model=mpnn", "objective.target=difference"]))
    with pytest.raises(InvalidSetting, match=r"objective.target=raw_difference adds the last input frame to the net's "
                                             r"output again; set model.residual=false"):
        train_config(compose_cfg("train", ["model=mpnn", "objective.target=raw_difference"]))
    with pytest.raises(InvalidSetting, match=r"objective.target=derivative reads the net's output as a rate of change"):
        train_config(compose_cfg("train", ["model=mpnn", "objective=derivative"]))
    allowed = [["model=mpnn", "objective.target=difference", "model.residual=false"], ["model=mpnn"],
               ["model=fno", "objective.target=difference"]]
    for overrides in allowed:
        train_config(compose_cfg("train", overrides))


def test_residual_with_a_difference_target_is_refused_on_the_command_line() -> None:
    """The command-line check loads the config as the run would, so the refusal comes before any data loads."""
    with pytest.raises(InvalidSetting, match=RESIDUAL_REFUSAL):
        check_command_line("train", train_config, ["model=mpnn", "objective.target=difference",
                                                   "objective.target_scale=0.3"])
    check_command_line("train", train_config, ["model=mpnn", "objective.target=difference", "model.residual=false"])


def test_zeroed_decoder_with_residual_and_a_difference_target_scales_the_last_state() -> None:
    """Why the pair is refused: with the decoder's last layer zeroed, the difference target (scale 0.3) decodes the
    residual net's output to 1.3 times the last state, and the net without the residual to the last state."""
    spec = NetSpec(("u",), 2, 1, (), Grid.uniform("periodic", (16,)))
    target, frames = DifferenceTarget(0.3), torch.randn(3, 1, 2, 16)
    for residual, factor in ((True, 1.3), (False, 1.0)):
        net = tiny_net(spec, residual=residual)
        with torch.no_grad():
            for p in net.decoder.net[-1].parameters():
                p.zero_()
        forecast = target.decode(frames, net(frames.flatten(1, 2), torch.zeros(3, 0)).unsqueeze(2))
        torch.testing.assert_close(forecast, factor * frames[:, :, -1:])


# --- refusals -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("key", "value", "what"), [
    ("hidden_channels", 0, "a number of channels, a whole number >= 1"),
    ("n_layers", -1, "a number of processor layers, a whole number >= 1"),
    ("radius", 0.0, "a number of grid spacings, a finite number > 0"),
    ("max_neighbours", 0, "a number of neighbours, a whole number >= 1"),
    ("decoder_channels", 0, "a number of channels, a whole number >= 1"),
    ("decoder_kernel", 0, "a kernel size, a whole number >= 1"),
    ("decoder_stride", 0, "a stride, a whole number >= 1"),
    ("decoder_kernel", 200, "at most model.hidden_channels=128, the length it convolves over"),
])
def test_bad_settings_are_refused_by_key(key: str, value: object, what: str) -> None:
    """The whole sentence: the key, its value, the model and what a valid value is."""
    with pytest.raises(ValueError) as error:
        model_config({"name": "mpnn", key: value})
    assert str(error.value) == f"model.{key}={value} for model mpnn is not valid: expected {what}"


def test_a_bundle_the_decoder_cannot_emit_is_refused_by_name() -> None:
    """Width 128, kernel 16, stride 3: (128 - 16) // 3 + 1 = 38 positions, fewer than 50 frames."""
    spec = NetSpec(("u",), 1, 50, (), Grid.uniform("periodic", (16,)))
    with pytest.raises(ValueError) as error:
        build_model({"name": "mpnn"}, spec)
    assert str(error.value) == ("model mpnn cannot emit bundle=50 frames: its first decoder convolution leaves 38 "
                                "positions of model.hidden_channels=128 (model.decoder_kernel=16, "
                                "model.decoder_stride=3); lower the stride or kernel, or widen the net")


def test_the_residual_output_serves_the_state_target_only() -> None:
    """A derivative target would read the residual net's state as a rate; without the residual every target is
    served."""
    with pytest.raises(InvalidSetting) as error:
        MPNNConfig().check_target("derivative")
    assert str(error.value) == ("model.residual=true makes model mpnn output the last input frame plus its increments, "
                                "and objective.target=derivative reads the net's output as a rate of change, not a "
                                "state; set model.residual=false for this target")
    MPNNConfig().check_target("state")
    for target in ("difference", "derivative"):
        MPNNConfig(residual=False).check_target(target)



def test_the_half_way_refusal_starts_where_the_graph_reaches_the_opposite_point() -> None:
    """The graph keeps edges up to `radius * (1 + RADIUS_SLACK)` spacings: the radius that puts this bound exactly at
    the opposite point of 6 periodic points (3 spacings away) links it, and is refused; on the sphere longitude wraps
    through 3-D positions, so a radius reaching half-way round its 12-point ring is served."""
    grid = Grid.uniform("periodic", (6,))
    radius = 3.0 / (1 + RADIUS_SLACK)
    assert radius * (1 + RADIUS_SLACK) == 3.0 and radius < 3.0
    assert 3.0 in np.abs(grid_graph(grid, radius, 32).offset)
    with pytest.raises(InvalidSetting, match=r"^model mpnn's neighbourhood \(model.radius=3 grid spacings\) reaches "
                                             r"half-way round the periodic axis x of 6 points"):
        check_model_spec({"name": "mpnn", "radius": radius}, NetSpec(("u",), 1, 1, (), grid))
    sphere = NetSpec(("h",), 1, 1, (), Grid.uniform("sphere", (6, 12)))
    check_model_spec({"name": "mpnn", "radius": 6.0}, sphere)
    net = tiny_net(sphere, radius=6.0)
    assert torch.isfinite(net(torch.randn(1, 1, 6, 12), torch.zeros(1, 0))).all()


def test_a_checkpoint_holds_the_weights_only_and_loads_on_another_grid() -> None:
    """The node positions and step counts are rebuilt from the grid and the bundle, not saved: the state dict is the
    parameters, and the weights of a net built on 16 points load (strictly) into one built on 24 points."""
    small = tiny_net(NetSpec(("u",), 2, 3, ("a",), Grid.uniform("periodic", (16,))), node_position=True)
    large = tiny_net(NetSpec(("u",), 2, 3, ("a",), Grid.uniform("periodic", (24,))), node_position=True)
    state = small.state_dict()
    assert state.keys() == dict(small.named_parameters()).keys()
    large.load_state_dict(state)
    assert all(torch.equal(p, state[name]) for name, p in large.named_parameters())
    assert large(torch.randn(1, 2, 24), torch.zeros(1, 1)).shape == (1, 3, 24)

def test_inputs_on_another_grid_are_refused() -> None:
    net = tiny_net(NetSpec(("u",), 1, 1, (), Grid.uniform("periodic", (16,))))
    with pytest.raises(ValueError, match=r"model mpnn was built for a grid of shape \(16,\) but got inputs of "
                                         r"spatial shape \(32,\)"):
        net(torch.randn(1, 1, 32), torch.zeros(1, 0))


def test_an_unsupported_grid_kind_is_refused_by_name() -> None:
    grid = Grid.uniform("periodic", (16,))
    object.__setattr__(grid, "kind", "hexagonal")  # no file can say this (Grid refuses it); a future kind might
    with pytest.raises(ValueError) as error:
        build_model({"name": "mpnn"}, NetSpec(("u",), 1, 1, (), grid))
    assert str(error.value) == ("model mpnn does not support grid kind 'hexagonal'; it builds graphs on periodic, box, "
                                "sphere grids")
