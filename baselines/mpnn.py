"""MP-PDE (Brandstetter, Worrall & Welling, ICLR 2022) on torch_geometric's `MessagePassing`.

Every grid point is a node of a neighbourhood graph built from the `Grid` (`baselines.graphs`: radius graph,
periodic axes wrapped with minimum-image offsets, great-circle neighbourhoods on the sphere), once per grid and
cached per device. Samples of a batch are joined by torch_geometric's `Batch`.

Per node, with `u` the node's input values (history frames of every field, `[C_in]`) and `c` the standardised
conditioning (`[n_cond]`: dt, dx, PDE parameters, ...):

* encoder: `h = swish(W2 swish(W1 [u, c]))`, a 2-layer MLP to `hidden_channels`;
* `n_layers` processor layers: message `m_ij = phi(h_i, h_j, u_i - u_j, x_i - x_j, c_i)`, mean over neighbours j,
  update `h_i <- h_i + psi(h_i, mean_j m_ij, c_i)`, then instance norm over each graph (phi, psi: 2-layer swish
  MLPs; the norm has no affine weights);
* decoder: MP-PDE's 1-D convolution over the latent vector, `Conv1d(1, decoder_channels, decoder_kernel,
  stride=decoder_stride) -> swish -> Conv1d(decoder_channels, n_fields, k)`, with `k` chosen so that it emits
  exactly `bundle` values per field;
* output (`residual=True`, as in MP-PDE): frame k = 1..bundle of field f is `u_last_f + k * d_fk`, the last input
  frame of the field plus k times the decoded value. MP-PDE multiplies by `k * dt` in physical time; here dt is a
  standardised conditioning input, so the step count stands in for it (the constant is learnt by the decoder).
  `residual=False` outputs `d` directly. Only `objective.target=state` may use `residual=True`: a difference
  target (`difference`, `raw_difference`) adds the last frame again (with the decoder zeroed, one step of
  `difference` returns `1 + target_scale` times the last standardised state) and a `derivative` target would read a
  state as a rate of change, so training refuses the pair (`pdebench.training.config.train_config`).
  `residual=False` also serves backbones whose last input channel is not the state (e.g. a denoiser's noisy
  estimate).

The layout is the reference code's (`MP_PDE_Solver` in brandstetter-johannes/MP-Neural-PDE-Solvers,
experiments/models_gnn.py), tensor for tensor: with `node_position=True` and `n_cond` equation variables its
parameter count equals the reference's (`MPNNConfig.published_sizes`: 639,737 at the paper's E3 setting), and the
decoder's derived second kernel equals the reference's hand-set one at each of its time windows (20, 25, 50 with
first convolutions (15, stride 4), (16, 3), (12, 2)). Differences from the original, on purpose:

* wrap-around edges: the original graph has none, so a node at the edge of a periodic domain sees half the
  neighbours of one in the middle; ours wraps every periodic axis, as the PDEs do.
* offsets `x_i - x_j` are in grid spacings (see `baselines.graphs`), the original's in units of the domain length:
  the same net then serves grids of any length, and the physical spacing reaches the net through `cond` when the
  data provide it.
* no absolute position by default: the original appends `x/L` to every node's input; here `node_position=True`
  appends each axis's coordinate scaled to [0, 1] over the grid's extent (the E3 count uses it). Without it the net
  is translation equivariant on a periodic grid, which the PDEs are.
* no absolute time: the original feeds `t/t_max` to every node as one more equation variable. Our PDEs are
  autonomous, so time reaches the net only if the data list it among their conditioning values (the E3 setting
  counts it as the first of its four); elapsed time is otherwise unknown to the net, as to the PDE.
* equation parameters arrive standardised by the training split's statistics (the original divides alpha, beta,
  gamma by fixed constants): one rule for every dataset.
* `u_last + k * d` instead of `u_last + k * dt * d` (see the output above).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.nn import InstanceNorm, MessagePassing

from baselines.graphs import RADIUS_SLACK, GridGraph, grid_graph, grid_to_nodes, nodes_to_grid
from baselines.registry import ModelConfig, PublishedSize, register
from pdebench.config.checks import SettingError, finite_number, whole_number
from pdebench.data.grid import Grid
from pdebench.data.netspec import NetSpec, fold_frames, unfold_frames
from pdebench.errors import InvalidSetting

SUPPORTED_GRID_KINDS = ("periodic", "box", "sphere")
REFERENCE_SOURCE = ("brandstetter-johannes/MP-Neural-PDE-Solvers: experiments/models_gnn.py MP_PDE_Solver as "
                    "experiments/train.py builds it")


@dataclass
class MPNNConfig(ModelConfig):
    """MP-PDE. Defaults are the published configuration (width 128, 6 processor layers, radius graph with three
    neighbours per side in 1-D, decoder Conv1d(1, 8, 16, stride 3) -> Conv1d(8, 1, .)) without the absolute position
    input (`node_position=True` adds it back; `published_sizes` does, to count as the reference).

    hidden_channels: width of the latent node features and of every MLP.
    n_layers: number of message-passing (processor) layers.
    radius: neighbourhood radius in grid spacings (flat grids) or latitude spacings of great-circle angle (sphere).
    max_neighbours: the most neighbours a node keeps (its nearest; only binds where points crowd, e.g. the poles).
    decoder_channels, decoder_kernel, decoder_stride: the first decoder convolution over the latent vector; the
        second convolution's kernel is chosen to emit `bundle` frames (refused if it would be < 1).
    residual: add the decoded increments to the last input frame (MP-PDE); false outputs them directly. Training
        refuses true with any `objective.target` but `state` (a difference target adds the last frame again, a
        derivative target would read the state as a rate of change).
    node_position: append each node's coordinates scaled to [0, 1] to its input (MP-PDE's x/L); breaks
        translation equivariance, may help on walled (`box`) grids.
    """

    name: str = "mpnn"
    hidden_channels: int = 128
    n_layers: int = 6
    radius: float = 3.0
    max_neighbours: int = 32
    decoder_channels: int = 8
    decoder_kernel: int = 16
    decoder_stride: int = 3
    residual: bool = True
    node_position: bool = False

    def __post_init__(self) -> None:
        """Refuse settings that would only fail (or build a degenerate net) once the data have loaded."""
        for key, what in (("hidden_channels", "a number of channels"), ("n_layers", "a number of processor layers"),
                          ("max_neighbours", "a number of neighbours"), ("decoder_channels", "a number of channels"),
                          ("decoder_kernel", "a kernel size"), ("decoder_stride", "a stride")):
            whole_number(self, key, 1, what)
        finite_number(self, "radius", low_open=True, what="a number of grid spacings")
        if self.decoder_kernel > self.hidden_channels:
            raise SettingError("decoder_kernel", self.decoder_kernel,
                               f"is not valid: expected at most model.hidden_channels={self.hidden_channels}, the "
                               "length it convolves over")

    def check_target(self, target: str) -> None:
        """`residual=true` outputs a state (the last input frame plus the decoded increments), which only
        `objective.target=state` reads as one. A difference target (`difference`, `raw_difference`) would add the last
        frame a second time: with the decoder zeroed, one step returns `1 + target_scale` times the last standardised
        state (`difference`); `derivative` would integrate the state as if it were a rate."""
        if self.residual and target != "state":
            clash = ("reads the net's output as a rate of change, not a state" if target == "derivative"
                     else "adds the last input frame to the net's output again")
            raise InvalidSetting(
                f"model.residual=true makes model {self.name} output the last input frame plus its increments, and "
                f"objective.target={target} {clash}; set model.residual=false for this target")

    @classmethod
    def tiny(cls) -> MPNNConfig:
        return cls(hidden_channels=16, n_layers=2, radius=2.0, decoder_channels=4, decoder_kernel=4, decoder_stride=2)

    def check_spec(self, spec: NetSpec) -> None:
        """Refused, not adapted: a grid kind without a neighbourhood graph; a bundle the decoder cannot emit from the
        latent vector (`decoder_last_kernel`); and a radius reaching half-way round an even periodic axis of a flat
        grid, where the point opposite a node is a neighbour from both sides at once and the sign of its offset
        depends on which half of the axis the node lies in (the graph would no longer be the same around every node,
        nor the net translation equivariant). Any number of points is served otherwise: each node gets the
        neighbours the radius and `max_neighbours` give."""
        if spec.grid.kind not in SUPPORTED_GRID_KINDS:
            raise InvalidSetting(f"model mpnn does not support grid kind {spec.grid.kind!r}; it builds graphs on "
                                 f"{', '.join(SUPPORTED_GRID_KINDS)} grids")
        decoder_last_kernel(self.hidden_channels, spec.bundle, self.decoder_kernel, self.decoder_stride)
        if spec.grid.kind == "sphere":  # great-circle neighbourhoods: longitude wraps through 3-D positions
            return
        for name, n, periodic in zip(spec.grid.axis_names, spec.grid.shape, spec.grid.periodic, strict=True):
            # on an even axis the opposite point is n / 2 spacings away both ways (the graph keeps edges up to
            # `radius * (1 + RADIUS_SLACK)`); an odd axis has no opposite point
            if periodic and n % 2 == 0 and self.radius * (1 + RADIUS_SLACK) >= n / 2:
                raise InvalidSetting(
                    f"model mpnn's neighbourhood (model.radius={self.radius:g} grid spacings) reaches half-way round "
                    f"the periodic axis {name} of {n} points, where the opposite point is a neighbour from both sides "
                    f"at once; use model.radius below {n / 2:g} on this grid")

    @classmethod
    def published_sizes(cls) -> tuple[PublishedSize, ...]:
        """MP-PDE at the paper's E3 setting (the combined Burgers/KdV equation with alpha, beta, gamma varied),
        and at E1 (no equation parameters): 100 points on [0, 16), time window 25 in and out, width 128, 6 layers.

        The reference's node input is the 25 values, x/L, and its equation variables: t/t_max, then alpha, beta,
        gamma at E3. Here x/L is `node_position` and the equation variables are the conditioning, time first.
        """
        grid = Grid("periodic", ("x",), (np.arange(100) * 16.0 / 100,))
        setting = ("MP-PDE {name}: 1-D, 100 points, 1 field x 25 frames in, 25 out (time window 25), width 128, "
                   "6 layers, node input x/L, equation variables {variables}")
        return (
            PublishedSize(setting.format(name="E3", variables="t/t_max, alpha, beta, gamma"),
                          cls(node_position=True), NetSpec(("u",), 25, 25, ("t", "alpha", "beta", "gamma"), grid),
                          639_737, f"{REFERENCE_SOURCE} for --experiment E3 (eq_variables alpha, beta, gamma)"),
            PublishedSize(setting.format(name="E1", variables="t/t_max"),
                          cls(node_position=True), NetSpec(("u",), 25, 25, ("t",), grid),
                          634_745, f"{REFERENCE_SOURCE} for --experiment E1 (no eq_variables)"),
        )


def _mlp(n_in: int, n_hidden: int, n_out: int) -> nn.Sequential:
    """MP-PDE's 2-layer MLP with swish after both layers."""
    return nn.Sequential(nn.Linear(n_in, n_hidden), nn.SiLU(), nn.Linear(n_hidden, n_out), nn.SiLU())


class MPPDELayer(MessagePassing):
    """One processor layer: messages on (h_i, h_j, u_i - u_j, x_i - x_j, cond), mean aggregation, residual update,
    instance norm over each graph of the batch.

    h: `[N, hidden]`, u: `[N, n_values]`, cond: `[N, n_cond]` (per node), offset: `[E, n_offsets]`.

    The message MLP's first layer is one `nn.Linear` over the concatenation [h_i, h_j, u_i - u_j, x_i - x_j, c_i];
    since it is linear, it is evaluated as the sum of its column blocks applied where each input lives: the blocks
    for h_i, u_i and c_i once per target node, those for h_j and u_j once per source node, and only the offset's per
    edge. Same weights, same result, without an `[E, 2 * hidden + ...]` tensor per layer.
    """

    def __init__(self, hidden: int, n_values: int, n_offsets: int, n_cond: int) -> None:
        super().__init__(aggr="mean", flow="source_to_target")
        self.input_sizes = (hidden, hidden, n_values, n_offsets, n_cond)  # h_i, h_j, u_i - u_j, x_i - x_j, c_i
        self.message_net = _mlp(sum(self.input_sizes), hidden, hidden)
        self.update_net = _mlp(2 * hidden + n_cond, hidden, hidden)
        self.norm = InstanceNorm(hidden)

    def forward(self, h: Tensor, u: Tensor, cond: Tensor, edge_index: Tensor, offset: Tensor, batch: Tensor,
                batch_size: int) -> Tensor:
        first = self.message_net[0]
        w_target, w_source, w_values, w_offset, w_cond = first.weight.split(self.input_sizes, dim=1)
        values = nn.functional.linear(u, w_values)
        at_target = nn.functional.linear(h, w_target, first.bias) + values + nn.functional.linear(cond, w_cond)
        at_source = nn.functional.linear(h, w_source) - values
        h = self.propagate(edge_index, at_target=at_target, at_source=at_source,
                           at_edge=nn.functional.linear(offset, w_offset), h=h, cond=cond)
        return self.norm(h, batch, batch_size)

    def message(self, at_target_i: Tensor, at_source_j: Tensor, at_edge: Tensor) -> Tensor:
        """The message MLP on (h_i, h_j, u_i - u_j, x_i - x_j, c_i), its first layer assembled from the blocks."""
        return self.message_net[1:](at_target_i + at_source_j + at_edge)

    def update(self, aggregated: Tensor, h: Tensor, cond: Tensor) -> Tensor:
        return h + self.update_net(torch.cat([h, aggregated, cond], dim=-1))


def decoder_last_kernel(hidden: int, bundle: int, kernel: int, stride: int) -> int:
    """The kernel of the decoder's second convolution that makes it emit `bundle` values from the positions its
    first convolution (`kernel`, `stride`) leaves of the `hidden` latent values; refused (`InvalidSetting`) where
    that leaves fewer than `bundle` positions."""
    length = (hidden - kernel) // stride + 1
    last_kernel = length - bundle + 1
    if last_kernel < 1:
        raise InvalidSetting(
            f"model mpnn cannot emit bundle={bundle} frames: its first decoder convolution leaves {length} "
            f"positions of model.hidden_channels={hidden} (model.decoder_kernel={kernel}, "
            f"model.decoder_stride={stride}); lower the stride or kernel, or widen the net"
        )
    return last_kernel


class BundleDecoder(nn.Module):
    """MP-PDE's decoder: per node, a 1-D convolution over the latent vector `[hidden]` -> `[n_fields, bundle]`."""

    def __init__(self, hidden: int, n_fields: int, bundle: int, channels: int, kernel: int, stride: int) -> None:
        super().__init__()
        last_kernel = decoder_last_kernel(hidden, bundle, kernel, stride)
        self.net = nn.Sequential(nn.Conv1d(1, channels, kernel, stride=stride), nn.SiLU(),
                                 nn.Conv1d(channels, n_fields, last_kernel))

    def forward(self, h: Tensor) -> Tensor:
        """h: `[N, hidden]` -> `[N, n_fields * bundle]`, field-major."""
        return self.net(h.unsqueeze(1)).flatten(1)


class MPNN(nn.Module):
    """MP-PDE for `spec`: `forward(x [B, C_in, *space], cond [B, n_cond]) -> [B, C_out, *space]`."""

    def __init__(self, spec: NetSpec, config: MPNNConfig) -> None:
        super().__init__()
        self.spec = spec
        self.shape = tuple(spec.grid.shape)
        self.history, self.bundle, self.n_fields = spec.history, spec.bundle, spec.n_fields
        self.residual = bool(config.residual)
        self.graph: GridGraph = grid_graph(spec.grid, float(config.radius), int(config.max_neighbours))
        hidden, n_cond = config.hidden_channels, spec.n_cond
        n_offsets = self.graph.offset.shape[1]
        if config.node_position:
            axes = [(c - c.min()) / max(np.ptp(c), 1e-12) for c in spec.grid.coordinates]
            position = np.stack([a.ravel() for a in np.meshgrid(*axes, indexing="ij")], axis=1)
            self.register_buffer("position", torch.as_tensor(position, dtype=torch.float32), persistent=False)
        else:
            self.position = None
        n_position = 0 if self.position is None else self.position.shape[1]
        self.encoder = _mlp(spec.in_channels + n_position + n_cond, hidden, hidden)
        self.layers = nn.ModuleList(
            MPPDELayer(hidden, spec.in_channels, n_offsets, n_cond) for _ in range(config.n_layers)
        )
        self.decoder = BundleDecoder(hidden, spec.n_fields, spec.bundle, config.decoder_channels,
                                     config.decoder_kernel, config.decoder_stride)
        # Output frame k (1-based) of a bundle is u_last + k * d_k (MP-PDE's cumulative time steps, in model steps).
        self.register_buffer("steps", torch.arange(1, spec.bundle + 1, dtype=torch.float32), persistent=False)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        if tuple(x.shape[2:]) != self.shape:
            raise ValueError(f"model mpnn was built for a grid of shape {self.shape} but got inputs of spatial shape "
                             f"{tuple(x.shape[2:])}")
        batch_size, n_nodes = x.shape[0], self.graph.num_nodes
        graph = self.graph.batch(batch_size, x.device, x.dtype)
        u = grid_to_nodes(x)
        node_cond = cond.to(x.dtype).repeat_interleave(n_nodes, dim=0)
        inputs = [u, node_cond]
        if self.position is not None:
            inputs.insert(1, self.position.to(x.dtype).repeat(batch_size, 1))
        h = self.encoder(torch.cat(inputs, dim=-1))
        for layer in self.layers:
            h = layer(h, u, node_cond, graph.edge_index, graph.offset, graph.batch, batch_size)
        out = nodes_to_grid(self.decoder(h), batch_size, self.shape)  # [B, n_fields * bundle, *space]
        if not self.residual:
            return out
        last = unfold_frames(x, self.n_fields)[:, :, -1:]
        steps = self.steps.to(x.dtype).view(1, 1, -1, *([1] * len(self.shape)))
        return fold_frames(last + steps * unfold_frames(out, self.n_fields))


@register("mpnn", config=MPNNConfig)
def build_mpnn(config: MPNNConfig, spec: NetSpec) -> nn.Module:
    return MPNN(spec, config)
