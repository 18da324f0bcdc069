"""The Grid: kinds, periodic axes, spacing, quadrature rules and weights, records, and how split files describe it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pdebench.data.grid import Grid, cell_area_rows
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


def test_cell_areas_at_unsorted_asymmetric_latitudes_by_hand() -> None:
    """Latitudes 30, -60, 0 (not sorted, not symmetric about the equator): sorted, the cells reach from the south
    pole to -30, from -30 to 15, and from 15 to the north pole, so the rows are 1 - sin 15, 1/2 and sin 15 + 1/2 in
    the order the latitudes were given. Symmetric latitudes could not tell a row assigned to its mirror image."""
    s15 = np.sin(np.deg2rad(15.0))
    expected = np.array([1.0 - s15, 0.5, s15 + 0.5])
    np.testing.assert_allclose(cell_area_rows(np.array([30.0, -60.0, 0.0])), expected, rtol=1e-14)
    sphere = Grid("sphere", ("lat", "lon"), (np.array([30.0, -60.0, 0.0]), np.array([0.0, 90.0, 180.0, 270.0])))
    assert sphere.quadrature == "cell-area"
    np.testing.assert_allclose(sphere.row_weights(), expected, rtol=1e-14)
    np.testing.assert_allclose(sphere.weights(), np.repeat(expected[:, None] / (2.0 / 3.0), 4, axis=1), rtol=1e-14)


def test_spacing_is_the_mean_gap_of_an_uneven_axis() -> None:
    grid = Grid("box", ("x", "y"), (np.array([0.0, 1.0, 3.0, 3.5]), np.array([2.0, 0.0])))
    assert grid.spacing == pytest.approx((3.5 / 3, 2.0), rel=1e-14)  # first gap 1, last 0.5; |descending| = 2
    assert Grid("box", ("x",), (np.array([4.0]),)).spacing == (1.0,)


def _zonal_mean(grid: Grid, values: np.ndarray) -> float:
    """Weighted mean over the sphere grid of a field that depends on latitude only (`values [n_lat]`)."""
    return float((grid.weights() * values[:, None]).mean())


@pytest.mark.parametrize("n_lat", [5, 16])
def test_gaussian_weights_integrate_polynomials_in_cos_colatitude_exactly_to_degree_2n_minus_1(n_lat: int) -> None:
    """The mean over the sphere of x^k, x = cos(colat) = sin(lat), is 1 / (k + 1) for even k and 0 for odd k; the
    n-point Gauss–Legendre rule gets every k <= 2n - 1 to round-off and misses k = 2n. Cell areas at the same rows
    already miss k = 2."""
    grid = Grid.gaussian(n_lat, 8)
    assert grid.quadrature == "gauss-legendre"
    x = np.sin(np.deg2rad(grid.coordinates[0]))
    for k in range(2 * n_lat):
        assert _zonal_mean(grid, x**k) == pytest.approx((1 - k % 2) / (k + 1), abs=1e-14), k
    assert abs(_zonal_mean(grid, x ** (2 * n_lat)) - 1 / (2 * n_lat + 1)) > 1e-11  # 3.6e-10 for n = 16
    cells = cell_area_rows(grid.coordinates[0])
    assert abs(float((cells * x**2).sum() / 2) - 1 / 3) > 1e-4


def test_gaussian_weights_are_torch_harmonics_and_differ_from_cell_areas_at_the_poleward_rows() -> None:
    """96 Gaussian rows (the paper grid): the poleward cells are 5.8% larger than the Gauss weights."""
    import torch_harmonics as th

    grid = Grid.gaussian(96, 192)
    cost, reference = th.quadrature.legendre_gauss_weights(96, -1, 1)
    np.testing.assert_allclose(np.sin(np.deg2rad(grid.coordinates[0]))[::-1], np.asarray(cost), rtol=0, atol=1e-14)
    np.testing.assert_allclose(grid.row_weights()[::-1], np.asarray(reference), rtol=1e-13, atol=0)
    excess = cell_area_rows(grid.coordinates[0]) / grid.row_weights() - 1
    assert excess[0] == excess[-1] == pytest.approx(0.0579, abs=5e-4)
    assert np.abs(excess[2:-2]).max() < 1e-3
    w = grid.weights()
    assert w.mean() == pytest.approx(1.0) and np.all(w == w[:, :1])


def test_the_rule_follows_the_grid_and_a_rule_that_does_not_fit_is_refused() -> None:
    assert Grid.uniform("periodic", (4,)).quadrature == "uniform"
    assert Grid.uniform("box", (4, 3)).quadrature == "uniform"
    assert Grid.uniform("sphere", (16, 32)).quadrature == "cell-area"
    gaussian = Grid.gaussian(16, 32)
    flipped = Grid("sphere", ("lat", "lon"), (gaussian.coordinates[0][::-1], gaussian.coordinates[1]))
    assert flipped.quadrature == "gauss-legendre"
    np.testing.assert_array_equal(flipped.weights(), gaussian.weights()[::-1])
    with pytest.raises(ValueError, match="quadrature 'cell-area' does not fit this sphere grid, whose rule is "
                                         "'gauss-legendre'"):
        Grid("sphere", ("lat", "lon"), gaussian.coordinates, "cell-area")
    with pytest.raises(ValueError, match="quadrature 'gauss-legendre' does not fit this periodic grid"):
        Grid("periodic", ("x",), (np.arange(4) / 4,), "gauss-legendre")
    with pytest.raises(ValueError, match="row weights belong to sphere grids"):
        Grid.uniform("box", (3,)).row_weights()


def test_records_round_trip_and_legacy_kind() -> None:
    grid = Grid.uniform("sphere", (3, 5))
    assert Grid.from_record(grid.to_record()) == grid and grid.to_record()["quadrature"] == "cell-area"
    assert Grid("periodic-uniform", ("x",), (np.arange(4) / 4,)).kind == "periodic"
    assert grid != Grid.uniform("sphere", (3, 6))
    # a record written before grids carried their rule (an older checkpoint) gets the rule of its coordinates
    old = {key: value for key, value in Grid.gaussian(6, 12).to_record().items() if key != "quadrature"}
    assert Grid.from_record(old).quadrature == "gauss-legendre"


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
    with TrajectoryFile(ks_tiny / "test.h5") as f:
        grid = f.grid
        assert f.attrs["quadrature"] == "uniform"
    assert grid == Grid.uniform("periodic", (256,)) and grid.spacing == pytest.approx((1 / 256,))


def test_uniform_grids_have_the_documented_coordinates_and_axis_names() -> None:
    """`i / n` on the unit cube with axes x, y, z (or the names given); on the sphere, cell-centred latitudes from
    north to south and longitudes from 0 in steps of 360 / n_lon."""
    box = Grid.uniform("box", (3, 2, 4))
    assert box.axis_names == ("x", "y", "z") and box.kind == "box"
    for coordinate, n in zip(box.coordinates, (3, 2, 4), strict=True):
        np.testing.assert_array_equal(coordinate, np.arange(n) / n)
    assert Grid.uniform("periodic", (5,)).axis_names == ("x",)
    assert Grid.uniform("periodic", (5, 2), ("u", "v")).axis_names == ("u", "v")
    sphere = Grid.uniform("sphere", (4, 6))
    assert sphere.kind == "sphere" and sphere.axis_names == ("lat", "lon")
    np.testing.assert_array_equal(sphere.coordinates[0], [67.5, 22.5, -22.5, -67.5])
    np.testing.assert_array_equal(sphere.coordinates[1], [0.0, 60.0, 120.0, 180.0, 240.0, 300.0])
    np.testing.assert_array_equal(Grid.gaussian(2, 3).coordinates[1], [0.0, 120.0, 240.0])


def test_coordinates_and_axis_names_are_stored_as_float64_arrays_and_strings() -> None:
    """Whatever sequences they come as (lists, a column read from a file), coordinates become flat float64 arrays and
    axis names a tuple of str, so a list of names `["lat", "lon"]` makes a sphere grid too."""
    grid = Grid("box", ["x", "y"], ([0, 1, 3], np.array([[2.0], [0.5]])))
    assert grid.axis_names == ("x", "y") and grid.shape == (3, 2)
    assert [c.dtype for c in grid.coordinates] == [np.float64, np.float64]
    np.testing.assert_array_equal(grid.coordinates[1], [2.0, 0.5])
    assert grid.to_record()["coordinates"] == [[0.0, 1.0, 3.0], [2.0, 0.5]]
    sphere = Grid("sphere", [np.str_("lat"), "lon"], ([10.0, -10.0], [0.0, 180.0]))
    assert sphere.axis_names == ("lat", "lon") and type(sphere.axis_names[0]) is str


def test_latitudes_at_the_poles_are_accepted_and_beyond_them_refused() -> None:
    pole_to_pole = Grid("sphere", ("lat", "lon"), ([90.0, 0.0, -90.0], [0.0]))
    assert pole_to_pole.shape == (3, 1) and pole_to_pole.quadrature == "cell-area"
    for beyond in (90.5, -90.5):
        with pytest.raises(ValueError) as info:
            Grid("sphere", ("lat", "lon"), ([0.0, beyond], [0.0]))
        assert str(info.value) == "sphere latitudes must be degrees within [-90, 90]"


def test_a_record_whose_rule_does_not_fit_its_coordinates_is_refused() -> None:
    """A record (from a checkpoint) carries its rule; one that contradicts the coordinates is an error, not replaced."""
    record = Grid.gaussian(6, 12).to_record()
    with pytest.raises(ValueError, match="^quadrature 'cell-area' does not fit this sphere grid, whose rule is "
                                         "'gauss-legendre'"):
        Grid.from_record({**record, "quadrature": "cell-area"})


def test_grids_are_equal_only_with_the_same_kind_axes_and_coordinates() -> None:
    base = Grid("box", ("x", "y"), ([0.0, 0.5], [0.0, 0.25, 0.5]))
    assert base == Grid.from_record(base.to_record()) and hash(base) == hash(Grid.from_record(base.to_record()))
    assert base != Grid("periodic", ("x", "y"), ([0.0, 0.5], [0.0, 0.25, 0.5]))
    assert base != Grid("box", ("x", "z"), ([0.0, 0.5], [0.0, 0.25, 0.5]))
    assert base != Grid("box", ("x", "y"), ([0.0, 0.5], [0.0, 0.25, 0.75]))  # same shape, one value differs
    assert base != Grid("box", ("x", "y"), ([0.0, 0.5], [0.0, 0.25]))
    assert (base == "box") is False and base != ("box", ("x", "y"))


def test_cell_areas_are_float64_whatever_the_latitudes_dtype() -> None:
    """float32 latitudes (as a file may store them) give the same float64 rows as float64 ones."""
    s15 = np.sin(np.deg2rad(15.0))
    rows = cell_area_rows(np.array([30.0, -60.0, 0.0], dtype=np.float32))
    assert rows.dtype == np.float64
    np.testing.assert_allclose(rows, [1.0 - s15, 0.5, s15 + 0.5], rtol=1e-14)
