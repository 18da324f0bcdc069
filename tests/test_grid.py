"""The Grid: kinds, periodic axes, spacing, quadrature weights, records, and how split files describe it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pdebench.data.grid import Grid
from pdebench.data.reader import TrajectoryFile


def test_periodic_and_box_grids_are_uniform() -> None:
    periodic = Grid.uniform("periodic", (8, 4))
    assert periodic.shape == (8, 4) and periodic.periodic == (True, True)
    assert periodic.spacing == pytest.approx((1 / 8, 1 / 4))
    np.testing.assert_array_equal(periodic.weights(), np.ones((8, 4)))
    assert Grid.uniform("box", (5,)).periodic == (False,)


def test_sphere_weights_are_cell_areas() -> None:
    sphere = Grid.uniform("sphere", (4, 6))
    assert sphere.periodic == (False, True) and sphere.axis_names == ("lat", "lon")
    w = sphere.weights()
    # bands between 90, 45, 0, -45, -90 degrees: areas (1 - sin 45) and sin 45, times dlon; mean normalised to 1
    polar, equatorial = 1 - np.sin(np.pi / 4), np.sin(np.pi / 4)
    np.testing.assert_allclose(w[:, 0], np.array([polar, equatorial, equatorial, polar]) / 0.5)
    assert w.mean() == pytest.approx(1.0) and np.all(w == w[:, :1])
    # latitudes listed south to north give the same weights per latitude
    flipped = Grid("sphere", ("lat", "lon"), (sphere.coordinates[0][::-1], sphere.coordinates[1]))
    np.testing.assert_allclose(flipped.weights(), w[::-1])


def test_records_round_trip_and_legacy_kind() -> None:
    grid = Grid.uniform("sphere", (3, 5))
    assert Grid.from_record(grid.to_record()) == grid
    assert Grid("periodic-uniform", ("x",), (np.arange(4) / 4,)).kind == "periodic"
    assert grid != Grid.uniform("sphere", (3, 6))


@pytest.mark.parametrize(
    ("kind", "axes", "coords", "message"),
    [
        ("torus", ("x",), ([0.0, 0.5],), "grid kind 'torus' is not one of periodic, box, sphere"),
        ("sphere", ("x", "y"), ([0.0], [0.0]), "a sphere grid has axes"),
        ("sphere", ("lat", "lon"), ([0.0, 100.0], [0.0]), "within \\[-90, 90\\]"),
        ("box", ("x", "y"), ([0.0],), "one coordinate per axis"),
        ("box", ("x",), ([np.nan],), "non-empty and finite"),
    ],
)
def test_bad_grids_are_refused_by_name(kind: str, axes: tuple, coords: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Grid(kind, axes, coords)


def test_split_files_build_their_grid(ks_tiny: Path) -> None:
    grid = TrajectoryFile(ks_tiny / "test.h5").grid
    assert grid == Grid.uniform("periodic", (256,)) and grid.spacing == pytest.approx((1 / 256,))
