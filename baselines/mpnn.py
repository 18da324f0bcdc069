"""MP-PDE (Brandstetter, Worrall & Welling, ICLR 2022) on torch_geometric's `MessagePassing`.

Every grid point is a node of a neighbourhood graph built from the `Grid` (`baselines.graphs`: radius graph,
periodic axes wrapped with minimum-image offsets, great-circle neighbourhoods on the sphere), once per grid and
cached per device. Samples of a batch are joined by torch_geometric's `Batch`.

Per node, with `u` the node's input values (history frames of every field, `[C_in]`) and `c` the standardised
conditioning (`[n_cond]`: dt, dx, PDE parameters, ...):

* encoder: `h = swish(W2 swish(W1 [u, c]))`, a 2-layer MLP to `hidden_channels`;
* `n_layers` processor layers: message `m_ij = phi(h_i, h_j, u_i - u_j, x_i - x_j, c)`, mean over neighbours j,
  update `h_i <- h_i + psi(h_i, mean_j m_ij, c)`, then instance norm over each graph (phi, psi: 2-layer swish MLPs);
* decoder: MP-PDE's 1-D convolution over the latent vector, `Conv1d(1, decoder_channels, decoder_kernel,
  stride=decoder_stride) -> swish -> Conv1d(decoder_channels, n_fields, k)`, with `k` chosen so that it emits
  exactly `bundle` values per field;
* output (`residual=True`, as in MP-PDE): frame k = 1..bundle of field f is `u_last_f + k * d_fk`, the last input
  frame of the field plus k times the decoded value. MP-PDE multiplies by `k * dt` in physical time; here dt is a
  standardised conditioning input, so the step count stands in for it (the constant is learnt by the decoder).
  `residual=False` outputs `d` directly: use it with `objective.target=difference`, which already adds the last
  frame, and for backbones whose last input channel is not the state (e.g. a denoiser's noisy estimate).

Differences from the original, on purpose: the node input has no absolute position `x/L` and no time `t/t_max`
unless asked (`node_position=True` appends each axis's coordinate scaled to [0, 1]; time reaches the net only
through `cond`), so on a periodic grid the net is translation equivariant; and the original graph has no
wrap-around edges, while ours wraps every periodic axis. Offsets `x_i - x_j` are in grid spacings (see
`baselines.graphs`), the physical spacing reaches the net through `cond` when the data provide it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.nn import InstanceNorm, MessagePassing

from baselines.graphs import GridGraph, grid_graph, grid_to_nodes, nodes_to_grid
from baselines.registry import ModelConfig, register
from pdebench.config.checks import SettingError, finite_number, whole_number
from pdebench.data.netspec import NetSpec, fold_frames, unfold_frames
from pdebench.errors import InvalidSetting

SUPPORTED_GRID_KINDS = ("periodic", "box", "sphere")


@dataclass
class MPNNConfig(ModelConfig):
    """MP-PDE. Defaults are the published configuration (width 128, 6 processor layers, radius graph with three
    neighbours per side in 1-D, decoder Conv1d(1, 8, 16, stride 3) -> Conv1d(8, 1, .)).

    hidden_channels: width of the latent node features and of every MLP.
    n_layers: number of message-passing (processor) layers.
    radius: neighbourhood radius in grid spacings (flat grids) or latitude spacings of great-circle angle (sphere).
    max_neighbours: the most neighbours a node keeps (its nearest; only binds where points crowd, e.g. the poles).
    decoder_channels, decoder_kernel, decoder_stride: the first decoder convolution over the latent vector; the
        second convolution's kernel is chosen to emit `bundle` frames (refused if it would be < 1).
    residual: add the decoded increments to the last input frame (MP-PDE); false outputs them directly.
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

    @classmethod
    def tiny(cls) -> MPNNConfig:
        return cls(hidden_channels=16, n_layers=2, radius=2.0, decoder_channels=4, decoder_kernel=4, decoder_stride=2)


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


class BundleDecoder(nn.Module):
    """MP-PDE's decoder: per node, a 1-D convolution over the latent vector `[hidden]` -> `[n_fields, bundle]`."""

    def __init__(self, hidden: int, n_fields: int, bundle: int, channels: int, kernel: int, stride: int) -> None:
        super().__init__()
        length = (hidden - kernel) // stride + 1
        last_kernel = length - bundle + 1
        if last_kernel < 1:
            raise InvalidSetting(
                f"model mpnn cannot emit bundle={bundle} frames: its first decoder convolution leaves {length} "
                f"positions of model.hidden_channels={hidden} (model.decoder_kernel={kernel}, "
                f"model.decoder_stride={stride}); lower the stride or kernel, or widen the net"
            )
        self.net = nn.Sequential(nn.Conv1d(1, channels, kernel, stride=stride), nn.SiLU(),
                                 nn.Conv1d(channels, n_fields, last_kernel))

    def forward(self, h: Tensor) -> Tensor:
        """h: `[N, hidden]` -> `[N, n_fields * bundle]`, field-major."""
        return self.net(h.unsqueeze(1)).flatten(1)


class MPNN(nn.Module):
    """MP-PDE for `spec`: `forward(x [B, C_in, *space], cond [B, n_cond]) -> [B, C_out, *space]`."""

    def __init__(self, spec: NetSpec, config: MPNNConfig) -> None:
        super().__init__()
        if spec.grid.kind not in SUPPORTED_GRID_KINDS:
            raise InvalidSetting(f"model mpnn does not support grid kind {spec.grid.kind!r}; it builds graphs on "
                                 f"{', '.join(SUPPORTED_GRID_KINDS)} grids")
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
