"""Neighbourhood graphs on a `Grid` for message-passing nets, built once per grid and cached per device.

Every grid point is a node, numbered in C order over `grid.shape` (the order of `x.flatten(2)`). A node receives
messages from every other node within `radius` of it, keeping at most the nearest `max_neighbours`:

* ``periodic`` / ``box`` grids: distances are measured in units of each axis's grid spacing (so `radius=3` on a
  1-D grid gives three neighbours per side, MP-PDE's graph). Periodic axes wrap around: a node on the edge of the
  domain sees as many neighbours as one in the middle, and its offsets are minimum-image displacements.
* ``sphere`` grids: distances are great-circle angles in units of the latitude spacing. Longitude wraps and nodes
  near a pole see nodes across it, because the search runs on points of the unit sphere in 3-D.

Ties at the neighbour cap are broken by the offset itself (distance, then offset components), never by node
number, so a graph on a periodic grid is the same around every node (translation equivariance survives the cap),
and on the sphere the same around every node of a latitude ring.

Each edge carries `offset = pos_i - pos_j` (target minus source) in the same spacing units: per axis on flat
grids, and on the sphere the 3-D chord projected onto the (north, east) tangent directions at the target node.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch
from scipy.spatial import KDTree
from torch import Tensor
from torch_geometric.data import Batch, Data

from pdebench.data.grid import Grid
from pdebench.errors import InvalidSetting

# Relative slack on the radius, so a neighbour at exactly `radius` spacings is kept despite rounding.
RADIUS_SLACK = 1e-6
# Offsets and distances are compared after rounding to this many decimals (in spacing units) when ranking ties.
TIE_DECIMALS = 6
# Batched graphs kept per GridGraph and device (one per batch size seen; rollouts pad to one size).
BATCH_CACHE_SIZE = 4


@dataclass(eq=False)
class GridGraph:
    """Directed neighbourhood graph of one grid.

    edge_index: int64 `[2, E]`, rows (source j, target i) as torch_geometric's `source_to_target` flow expects.
    offset: float64 `[E, D]`, `pos_i - pos_j` in spacing units (D = 1 or 2 on flat grids, 2 = (north, east) on
    the sphere).
    """

    num_nodes: int
    edge_index: np.ndarray
    offset: np.ndarray
    _data: dict[tuple[torch.device, torch.dtype], Data] = field(default_factory=dict, repr=False)
    _batches: OrderedDict[tuple[torch.device, torch.dtype, int], Batch] = field(default_factory=OrderedDict,
                                                                                repr=False)

    @property
    def num_edges(self) -> int:
        return int(self.edge_index.shape[1])

    @property
    def in_degree(self) -> np.ndarray:
        """Number of neighbours each node receives messages from, `[num_nodes]`."""
        return np.bincount(self.edge_index[1], minlength=self.num_nodes)

    def data(self, device: torch.device, dtype: torch.dtype) -> Data:
        """The graph as a torch_geometric `Data` on `device` with `offset` in `dtype`; built once per pair."""
        key = (torch.device(device), dtype)
        if key not in self._data:
            self._data[key] = Data(edge_index=torch.as_tensor(self.edge_index, device=key[0]),
                                   offset=torch.as_tensor(self.offset, dtype=dtype, device=key[0]),
                                   num_nodes=self.num_nodes)
        return self._data[key]

    def batch(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> Batch:
        """`batch_size` copies of the graph joined by torch_geometric's `Batch` (graph b holds nodes
        `b * num_nodes ... (b + 1) * num_nodes - 1`; `.batch` maps each node to its graph); cached per size."""
        key = (torch.device(device), dtype, int(batch_size))
        if key in self._batches:
            self._batches.move_to_end(key)
        else:
            self._batches[key] = Batch.from_data_list([self.data(device, dtype)] * batch_size)
            while len(self._batches) > BATCH_CACHE_SIZE:
                self._batches.popitem(last=False)
        return self._batches[key]


def _cap_neighbours(source: np.ndarray, target: np.ndarray, distance: np.ndarray, offset: np.ndarray,
                    max_neighbours: int) -> np.ndarray:
    """Indices of the candidate edges to keep: per target, the `max_neighbours` nearest, ties broken by offset.

    The result is sorted by target, then by that rank, so graphs come out in a fixed order.
    """
    rounded = np.round(offset, TIE_DECIMALS)
    keys = [rounded[:, d] for d in reversed(range(offset.shape[1]))]
    order = np.lexsort((*keys, np.round(distance, TIE_DECIMALS), target))
    sorted_target = target[order]
    starts = np.searchsorted(sorted_target, sorted_target, side="left")
    rank = np.arange(order.size) - starts
    return order[rank < max_neighbours]


def _flat_candidates(grid: Grid, radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All ordered pairs (source, target) within `radius` spacings on a periodic or box grid, with offsets."""
    axes = [(c - c.min()) / s for c, s in zip(grid.coordinates, grid.spacing, strict=True)]
    pos = np.stack([a.ravel() for a in np.meshgrid(*axes, indexing="ij")], axis=1)
    period = np.array([float(n) for n in grid.shape])
    # Non-periodic axes get a box so wide that no wrap-around distance falls within the radius.
    box = np.where(grid.periodic, period, period + radius + 2.0)
    pairs = KDTree(pos, boxsize=box).query_pairs(radius * (1 + RADIUS_SLACK), output_type="ndarray")
    source = np.concatenate([pairs[:, 0], pairs[:, 1]])
    target = np.concatenate([pairs[:, 1], pairs[:, 0]])
    offset = pos[target] - pos[source]
    wrap = np.array(grid.periodic)
    offset[:, wrap] -= period[wrap] * np.round(offset[:, wrap] / period[wrap])
    return source, target, offset


def _sphere_candidates(grid: Grid, radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All ordered pairs within `radius` latitude spacings of great-circle angle, with tangent-plane offsets."""
    lat, lon = np.meshgrid(*(np.deg2rad(c) for c in grid.coordinates), indexing="ij")
    lat, lon = lat.ravel(), lon.ravel()
    xyz = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=1)
    unit = np.deg2rad(grid.spacing[0])  # radians per spacing unit
    angle = min(radius * unit, np.pi)
    chord = 2.0 * np.sin(angle / 2.0)
    pairs = KDTree(xyz).query_pairs(chord * (1 + RADIUS_SLACK), output_type="ndarray")
    source = np.concatenate([pairs[:, 0], pairs[:, 1]])
    target = np.concatenate([pairs[:, 1], pairs[:, 0]])
    chord_vec = xyz[target] - xyz[source]
    lat_i, lon_i = lat[target], lon[target]
    north = np.stack([-np.sin(lat_i) * np.cos(lon_i), -np.sin(lat_i) * np.sin(lon_i), np.cos(lat_i)], axis=1)
    east = np.stack([-np.sin(lon_i), np.cos(lon_i), np.zeros_like(lon_i)], axis=1)
    offset = np.stack([(chord_vec * north).sum(1), (chord_vec * east).sum(1)], axis=1) / unit
    return source, target, offset


def _great_circle(grid: Grid, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Great-circle angle between nodes, in latitude spacings."""
    lat, lon = np.meshgrid(*(np.deg2rad(c) for c in grid.coordinates), indexing="ij")
    lat, lon = lat.ravel(), lon.ravel()
    cos_angle = (np.sin(lat[source]) * np.sin(lat[target])
                 + np.cos(lat[source]) * np.cos(lat[target]) * np.cos(lon[source] - lon[target]))
    return np.arccos(np.clip(cos_angle, -1.0, 1.0)) / np.deg2rad(grid.spacing[0])


@lru_cache(maxsize=16)
def grid_graph(grid: Grid, radius: float, max_neighbours: int) -> GridGraph:
    """The neighbourhood graph of `grid` (see the module docstring); cached, so every net on an equal grid with
    the same settings shares one graph, and its device copies."""
    if not radius > 0:
        raise InvalidSetting(f"model.radius must be a positive number of grid spacings, got {radius}")
    if max_neighbours < 1:
        raise InvalidSetting(f"model.max_neighbours must be a whole number >= 1, got {max_neighbours}")
    if grid.kind == "sphere":
        source, target, offset = _sphere_candidates(grid, radius)
        distance = _great_circle(grid, source, target)
    elif grid.kind in ("periodic", "box"):
        source, target, offset = _flat_candidates(grid, radius)
        distance = np.linalg.norm(offset, axis=1)
    else:
        raise InvalidSetting(f"no neighbourhood graph for grid kind {grid.kind!r}; expected periodic, box or sphere")
    keep = _cap_neighbours(source, target, distance, offset, max_neighbours)
    edge_index = np.stack([source[keep], target[keep]]).astype(np.int64)
    return GridGraph(int(np.prod(grid.shape)), edge_index, np.ascontiguousarray(offset[keep]))


def nodes_to_grid(nodes: Tensor, batch_size: int, shape: tuple[int, ...]) -> Tensor:
    """`[batch_size * num_nodes, C]` node features -> `[batch_size, C, *shape]`."""
    return nodes.view(batch_size, -1, nodes.shape[-1]).transpose(1, 2).reshape(batch_size, -1, *shape).contiguous()


def grid_to_nodes(x: Tensor) -> Tensor:
    """`[B, C, *space]` -> `[B * prod(space), C]`, nodes in C order per sample (graph b's nodes are contiguous)."""
    return x.flatten(2).transpose(1, 2).reshape(-1, x.shape[1])
