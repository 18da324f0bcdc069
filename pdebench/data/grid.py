"""The spatial grid of a dataset: what models (padding, graphs), metrics (weights) and solvers need to know.

A `Grid` is built from a split file's attributes and coordinates (`TrajectoryFile.grid`) and travels inside
checkpoints as a plain record (`to_record` / `from_record`), so a trained net is rebuilt on the grid it was
trained on.

Kinds (root attribute `grid` of a split file, see docs/data_format.md):

* ``periodic`` — every axis is periodic (a torus), uniform spacing.
* ``box`` — no axis is periodic (walls), uniform spacing.
* ``sphere`` — axes ``(lat, lon)`` in degrees; longitude is periodic (equally spaced), latitude is not.

Every grid carries its quadrature rule (`QUADRATURE_RULES`, root attribute `quadrature` from schema 1.3), the
weights with which every spatial mean, norm, spectral band and conserved quantity is computed. The rule follows
from the kind and the coordinates (`quadrature_rule`), so a file without the attribute gets the same one:

* ``uniform`` (``periodic``, ``box``): every point weighs the same.
* ``gauss-legendre`` (``sphere`` whose latitudes are the n Gauss–Legendre nodes, the grid of spectral-transform
  solvers): the Gauss–Legendre weights in ``sin(lat)``, which integrate every polynomial in ``sin(lat)`` of degree
  up to ``2 n - 1`` exactly, and so the products of spherical harmonics below degree ``n`` that transforms rely on.
* ``cell-area`` (any other ``sphere``, e.g. cell-centred equiangular rows): the exact area of each point's cell,
  ``(sin(lat_north) - sin(lat_south)) * dlon`` with cell edges halfway between the latitudes (the outermost at the
  poles). This is the area the value stands for, positive on every row, and the exact integral of the
  piecewise-constant field the grid holds; rules exact for polynomials (Clenshaw–Curtis) need nodes at the poles,
  which cell-centred rows do not have.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

GRID_KINDS = ("periodic", "box", "sphere")
# Written by schema 1.0 files for what is now `periodic`.
LEGACY_GRID_KINDS = {"periodic-uniform": "periodic"}
SPHERE_AXES = ("lat", "lon")
QUADRATURE_RULES = ("uniform", "gauss-legendre", "cell-area")
# Largest difference in sin(lat) between a latitude and its Gauss–Legendre node for the rows to count as Gaussian;
# coordinates are stored as float64 degrees (round trip error ~1e-15), the nearest other grid is 1e-3 away or more.
GAUSS_NODE_TOLERANCE = 1e-9


def canonical_grid_kind(kind: str) -> str:
    """The grid kind a file attribute names (`periodic-uniform` of schema 1.0 reads as `periodic`)."""
    kind = LEGACY_GRID_KINDS.get(kind, kind)
    if kind not in GRID_KINDS:
        raise ValueError(f"grid kind {kind!r} is not one of {', '.join(GRID_KINDS)}")
    return kind


def gauss_legendre_rows(lat_degrees: np.ndarray) -> np.ndarray | None:
    """Gauss–Legendre weights in `sin(lat)` (float64, summing to 2) of latitudes `[n]` (degrees, any order), or None
    when the latitudes are not the n Gauss–Legendre nodes."""
    x = np.sin(np.deg2rad(np.asarray(lat_degrees, dtype=np.float64)))
    nodes, weights = np.polynomial.legendre.leggauss(x.size)
    order = np.argsort(x)
    if np.abs(x[order] - nodes).max() > GAUSS_NODE_TOLERANCE:
        return None
    rows = np.empty_like(x)
    rows[order] = weights
    return rows


def cell_area_rows(lat_degrees: np.ndarray) -> np.ndarray:
    """Exact cell areas in `sin(lat)` (float64, summing to 2) of latitudes `[n]` (degrees, any order): each cell
    reaches halfway to its neighbours, the outermost ones to the poles."""
    lat = np.deg2rad(np.asarray(lat_degrees, dtype=np.float64))
    order = np.argsort(lat)
    sorted_lat = lat[order]
    edges = np.concatenate([[-np.pi / 2], 0.5 * (sorted_lat[1:] + sorted_lat[:-1]), [np.pi / 2]])
    rows = np.empty_like(lat)
    rows[order] = np.sin(edges[1:]) - np.sin(edges[:-1])
    return rows


def quadrature_rule(kind: str, coordinates: tuple[np.ndarray, ...]) -> str:
    """The quadrature rule of a grid of `kind` with these coordinates (module docstring)."""
    if canonical_grid_kind(kind) != "sphere":
        return "uniform"
    return "gauss-legendre" if gauss_legendre_rows(coordinates[0]) is not None else "cell-area"


@dataclass(frozen=True, eq=False)
class Grid:
    """Kind, axis names, coordinates and quadrature rule of a spatial grid; everything else is derived.

    coordinates: one float64 array per axis, in file order (`[n_axis]` each); for ``sphere`` the axes are
    ``lat`` (degrees north, either order) and ``lon`` (degrees east, equally spaced).
    quadrature: one of `QUADRATURE_RULES`; None means the rule of the kind and coordinates (`quadrature_rule`).
    A rule given explicitly (read from a file or a record) must be that one: the rule is a property of the grid,
    recorded so that a reader can see it, never a choice that could differ between two equal grids.
    """

    kind: str
    axis_names: tuple[str, ...]
    coordinates: tuple[np.ndarray, ...]
    quadrature: str | None = None

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
        rule = quadrature_rule(self.kind, coords)
        if self.quadrature is not None and self.quadrature != rule:
            raise ValueError(f"quadrature {self.quadrature!r} does not fit this {self.kind} grid, whose rule is "
                             f"{rule!r} (one of {', '.join(QUADRATURE_RULES)}; see pdebench.data.grid)")
        object.__setattr__(self, "quadrature", rule)

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
    def row_weights(self) -> np.ndarray:
        """Sphere only: the weight of each latitude row in `sin(lat)`, float64 `[n_lat]` summing to 2 (the integral
        of a zonal field `f` over the sphere is `2 pi sum_k row_weights[k] f(lat_k)`)."""
        if self.kind != "sphere":
            raise ValueError(f"row weights belong to sphere grids; this grid is {self.kind}")
        if self.quadrature == "gauss-legendre":
            rows = gauss_legendre_rows(self.coordinates[0])
            assert rows is not None  # the rule was chosen because the rows are the nodes
            return rows
        return cell_area_rows(self.coordinates[0])

    def weights(self) -> np.ndarray:
        """Quadrature weights of the grid's rule, float64 `shape`, normalised to mean 1 (uniform grids: all ones).

        Metrics use them for every spatial mean and norm, spectral band and conserved quantity; on the sphere an
        error near the poles counts less than the same error near the equator.
        """
        if self.kind != "sphere":
            return np.ones(self.shape, dtype=np.float64)
        w = np.repeat(self.row_weights()[:, None], self.shape[1], axis=1)
        return w / w.mean()

    # --- records --------------------------------------------------------------------------------------
    def to_record(self) -> dict[str, Any]:
        """Plain containers (JSON- and `torch.load(weights_only=True)`-safe) that `from_record` rebuilds."""
        return {"kind": self.kind, "axis_names": list(self.axis_names),
                "coordinates": [c.tolist() for c in self.coordinates], "quadrature": self.quadrature}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Grid:
        """The grid of a record; a record written before grids carried their rule gets the rule of its coordinates."""
        return cls(record["kind"], tuple(record["axis_names"]), tuple(np.asarray(c) for c in record["coordinates"]),
                   record.get("quadrature"))

    @classmethod
    def uniform(cls, kind: str, shape: tuple[int, ...], axis_names: tuple[str, ...] | None = None) -> Grid:
        """A grid on the unit cube with `i / n` coordinates (periodic/box), or a cell-centred equiangular sphere
        grid (latitudes `90 - (i + 1/2) 180 / n_lat`, north to south; cell-area quadrature)."""
        if kind == "sphere":
            n_lat, n_lon = shape
            lat = 90.0 - (np.arange(n_lat) + 0.5) * 180.0 / n_lat
            return cls("sphere", SPHERE_AXES, (lat, _longitudes(n_lon)))
        names = axis_names or ("x", "y", "z")[: len(shape)]
        return cls(kind, tuple(names), tuple(np.arange(n) / n for n in shape))

    @classmethod
    def gaussian(cls, n_lat: int, n_lon: int) -> Grid:
        """The Gaussian sphere grid of spectral-transform solvers: the `n_lat` Gauss–Legendre latitudes, north to
        south, and `n_lon` equally spaced longitudes from 0 (Gauss–Legendre quadrature)."""
        nodes, _ = np.polynomial.legendre.leggauss(int(n_lat))
        lat = np.rad2deg(np.arcsin(nodes))[::-1]
        return cls("sphere", SPHERE_AXES, (lat, _longitudes(n_lon)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Grid):
            return NotImplemented
        same_axes = (self.kind, self.axis_names, self.quadrature) == (other.kind, other.axis_names, other.quadrature)
        return same_axes and all(a.shape == b.shape and np.array_equal(a, b)
                                 for a, b in zip(self.coordinates, other.coordinates, strict=True))

    def __hash__(self) -> int:
        return hash((self.kind, self.axis_names, self.shape))

    def __repr__(self) -> str:
        return f"Grid(kind={self.kind!r}, axes={self.axis_names}, shape={self.shape}, quadrature={self.quadrature!r})"


def _longitudes(n_lon: int) -> np.ndarray:
    """`n_lon` equally spaced longitudes from 0 (degrees east)."""
    return np.arange(int(n_lon)) * 360.0 / int(n_lon)
