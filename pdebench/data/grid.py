"""The spatial grid of a dataset: what models (padding, graphs), metrics (weights) and solvers need to know.

A `Grid` is built from a split file's attributes and coordinates (`TrajectoryFile.grid`) and travels inside
checkpoints as a plain record (`to_record` / `from_record`), so a trained net is rebuilt on the grid it was
trained on.

Kinds (root attribute `grid` of a split file, see docs/data_format.md):

* ``periodic`` — every axis is periodic (a torus), uniform spacing; quadrature weights are uniform.
* ``box`` — no axis is periodic (walls), uniform spacing; quadrature weights are uniform.
* ``sphere`` — axes ``(lat, lon)`` in degrees; longitude is periodic, latitude is not; quadrature weights
  are cell areas ``(sin(lat_north) - sin(lat_south)) * dlon`` with cell edges halfway between the
  latitudes (clipped to the poles), which is exact for an equiangular grid and close for a Gaussian one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

GRID_KINDS = ("periodic", "box", "sphere")
# Written by schema 1.0 files for what is now `periodic`.
LEGACY_GRID_KINDS = {"periodic-uniform": "periodic"}
SPHERE_AXES = ("lat", "lon")


def canonical_grid_kind(kind: str) -> str:
    """The grid kind a file attribute names (`periodic-uniform` of schema 1.0 reads as `periodic`)."""
    kind = LEGACY_GRID_KINDS.get(kind, kind)
    if kind not in GRID_KINDS:
        raise ValueError(f"grid kind {kind!r} is not one of {', '.join(GRID_KINDS)}")
    return kind


@dataclass(frozen=True, eq=False)
class Grid:
    """Kind, axis names and coordinates of a spatial grid; everything else is derived.

    coordinates: one float64 array per axis, in file order (`[n_axis]` each); for ``sphere`` the axes are
    ``lat`` (degrees north, either order) and ``lon`` (degrees east).
    """

    kind: str
    axis_names: tuple[str, ...]
    coordinates: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", canonical_grid_kind(self.kind))
        coords = tuple(np.asarray(c, dtype=np.float64).reshape(-1) for c in self.coordinates)
        object.__setattr__(self, "coordinates", coords)
        object.__setattr__(self, "axis_names", tuple(str(a) for a in self.axis_names))
        if len(self.axis_names) != len(coords) or not coords:
            raise ValueError(f"a grid needs one coordinate per axis, got axes {self.axis_names} and "
                             f"{len(coords)} coordinate arrays")
        if any(c.size < 1 or not np.isfinite(c).all() for c in coords):
            raise ValueError(f"grid coordinates of {self.axis_names} must be non-empty and finite")
        if self.kind == "sphere":
            if self.axis_names != SPHERE_AXES:
                raise ValueError(f"a sphere grid has axes {SPHERE_AXES}, got {self.axis_names}")
            if np.abs(coords[0]).max() > 90.0:
                raise ValueError("sphere latitudes must be degrees within [-90, 90]")

    # --- shape and axes -----------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """Spatial shape, e.g. `(256,)` or `(96, 192)`."""
        return tuple(c.size for c in self.coordinates)

    @property
    def ndim(self) -> int:
        return len(self.coordinates)

    @property
    def periodic(self) -> tuple[bool, ...]:
        """Per axis: True where the axis wraps around (circular padding, wrap-around graph edges)."""
        if self.kind == "periodic":
            return (True,) * self.ndim
        if self.kind == "sphere":
            return (False, True)
        return (False,) * self.ndim

    @property
    def spacing(self) -> tuple[float, ...]:
        """Per axis: the mean distance between neighbouring points, in the coordinate's units.

        One point on an axis has spacing 1 (nothing to measure).
        """
        return tuple(float(np.abs(np.diff(c)).mean()) if c.size > 1 else 1.0 for c in self.coordinates)

    # --- quadrature -----------------------------------------------------------------------------------
    def weights(self) -> np.ndarray:
        """Quadrature weights, float64 `shape`, normalised to mean 1 (so uniform grids give all ones).

        Metrics use them for every spatial mean and norm; on the sphere they are cell areas, so an error near
        the poles counts less than the same error near the equator.
        """
        if self.kind != "sphere":
            return np.ones(self.shape, dtype=np.float64)
        lat = np.deg2rad(self.coordinates[0])
        order = np.argsort(lat)
        sorted_lat = lat[order]
        edges = np.concatenate([[-np.pi / 2], 0.5 * (sorted_lat[1:] + sorted_lat[:-1]), [np.pi / 2]])
        band = np.empty_like(lat)
        band[order] = np.sin(edges[1:]) - np.sin(edges[:-1])
        w = np.repeat(band[:, None], self.shape[1], axis=1)
        return w / w.mean()

    # --- records --------------------------------------------------------------------------------------
    def to_record(self) -> dict[str, Any]:
        """Plain containers (JSON- and `torch.load(weights_only=True)`-safe) that `from_record` rebuilds."""
        return {"kind": self.kind, "axis_names": list(self.axis_names),
                "coordinates": [c.tolist() for c in self.coordinates]}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Grid:
        return cls(record["kind"], tuple(record["axis_names"]), tuple(np.asarray(c) for c in record["coordinates"]))

    @classmethod
    def uniform(cls, kind: str, shape: tuple[int, ...], axis_names: tuple[str, ...] | None = None) -> Grid:
        """A grid on the unit cube with `i / n` coordinates (periodic/box), or an equiangular sphere grid."""
        if kind == "sphere":
            n_lat, n_lon = shape
            lat = 90.0 - (np.arange(n_lat) + 0.5) * 180.0 / n_lat
            lon = np.arange(n_lon) * 360.0 / n_lon
            return cls("sphere", SPHERE_AXES, (lat, lon))
        names = axis_names or ("x", "y", "z")[: len(shape)]
        return cls(kind, tuple(names), tuple(np.arange(n) / n for n in shape))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Grid):
            return NotImplemented
        same_axes = (self.kind, self.axis_names) == (other.kind, other.axis_names)
        return same_axes and all(a.shape == b.shape and np.array_equal(a, b)
                                 for a, b in zip(self.coordinates, other.coordinates, strict=True))

    def __hash__(self) -> int:
        return hash((self.kind, self.axis_names, self.shape))

    def __repr__(self) -> str:
        return f"Grid(kind={self.kind!r}, axes={self.axis_names}, shape={self.shape})"
