"""`pdebench.data.writer`: the guarantees of `TrajectoryWriter` and `validate_layout` (docs/data_format.md).

Complements tests/test_data_schema.py (round trip through the reader, xarray view, checker, one resume):
here every guarantee of the writer is pinned on its own, so that a one-line change to any of them fails a
test. The files are tiny (4 trajectories of 3 frames on a 4 x 3 grid) and shared per module where a test
only reads them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from pdebench.data.reader import TrajectoryFile, attr_to_python
from pdebench.data.schema import (
    FINGERPRINT_ATTR,
    REQUIRED_ROOT_ATTRS,
    Coordinate,
    DatasetError,
    DatasetLayout,
    FieldSpec,
    ParameterSpec,
)
from pdebench.data.writer import (
    TrajectoryWriter,
    field_chunks,
    layout_fingerprint,
    partial_path,
    validate_layout,
)

N_TRAJ, N_FRAMES, NX, NY = 4, 3, 4, 3
X = np.linspace(0.0, 1.0, NX, endpoint=False)
Y = np.array([-1.0, 0.0, 2.0])
ATTRS = {"generation_config": "pde: ks\npreset: tiny\n", "solver": "etdrk4"}
# Attributes h5py/h5netcdf add for dimension scales and netCDF bookkeeping (not part of the format).
_BOOKKEEPING = {"CLASS", "NAME", "DIMENSION_LIST", "REFERENCE_LIST", "_Netcdf4Dimid", "_Netcdf4Coordinates"}


def make_layout(**changes: Any) -> DatasetLayout:
    """A valid 2-D layout (x, y) with two fields and two parameters; keyword arguments replace fields."""
    kwargs: dict[str, Any] = dict(
        pde="ks",
        preset="tiny",
        split="train",
        n_traj=N_TRAJ,
        n_frames=N_FRAMES,
        frame_interval=0.25,
        grid="periodic",
        coordinates=(Coordinate("x", X.copy(), "m", "position"), Coordinate("y", Y.copy(), "km", "height")),
        fields=(FieldSpec("u", "m/s", "periodic", "velocity"), FieldSpec("v", "1", "periodic", "tracer")),
        parameters=(ParameterSpec("nu", "m^2/s", "viscosity"), ParameterSpec("dt", "s", "frame interval")),
        attrs=dict(ATTRS),
    )
    kwargs.update(changes)
    return DatasetLayout(**kwargs)


def make_block(lo: int, hi: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """Deterministic, distinct contents of trajectories lo..hi-1: fields float64, params and seeds `[b]`."""
    idx = np.arange(lo, hi)
    rng = np.random.default_rng(7)
    u = rng.standard_normal((N_TRAJ, N_FRAMES, NX, NY))
    v = rng.uniform(size=(N_TRAJ, N_FRAMES, NX, NY))
    fields = {"u": u[lo:hi], "v": v[lo:hi]}
    params = {"nu": 0.1 * (idx + 1), "dt": 0.5 + idx.astype(np.float64)}
    return fields, params, (100 + idx).astype(np.int64)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_partial(path: Path) -> Path:
    """The `.partial` file of an interrupted write of `path`: trajectories 0 and 1 of 4 written, never finalized."""
    writer = TrajectoryWriter(path, make_layout())
    writer.append(*make_block(0, 2))
    writer.close()
    return partial_path(path)


@pytest.fixture()
def partial_file(tmp_path: Path) -> Path:
    """An interrupted write made inside the test itself.

    Not shared per module: mutmut runs, for a mutant, only the tests during which the mutated function ran,
    and a shared fixture runs the writer during the first test that uses it only.
    """
    return write_partial(tmp_path / "train.h5")


@pytest.fixture(scope="module")
def partial_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One interrupted write shared by the resume tests (which only need some valid `.partial` file)."""
    return write_partial(tmp_path_factory.mktemp("partial") / "train.h5")


@pytest.fixture()
def resumable(partial_template: Path, tmp_path: Path) -> Path:
    """A private copy of `partial_template`; returns the final path (`train.h5`) the copy belongs to."""
    path = tmp_path / "train.h5"
    shutil.copyfile(partial_template, partial_path(path))
    return path


# --- unwritten trajectories read as NaN ------------------------------------------------------------------
def test_unwritten_trajectories_read_as_nan(partial_file: Path) -> None:
    fields, params, seeds = make_block(0, 2)
    with h5py.File(partial_file, "r") as f:
        assert int(attr_to_python(f.attrs["n_traj_complete"])) == 2
        for name in ("u", "v"):
            assert f[name].shape == (N_TRAJ, N_FRAMES, NX, NY) and f[name].dtype == np.float32
            assert np.array_equal(f[name][:2], fields[name].astype(np.float32)), name
            assert np.isnan(f[name][2:]).all(), f"unwritten trajectories of field {name!r} are not NaN"
            assert np.isnan(f[name].fillvalue) and np.isnan(f[name].attrs["_FillValue"]).all()
        for name in ("nu", "dt"):
            assert f[name].dtype == np.float64
            assert np.array_equal(f[name][:2], params[name]), name
            assert np.isnan(f[name][2:]).all(), f"unwritten trajectories of parameter {name!r} are not NaN"
            assert np.isnan(f[name].fillvalue) and np.isnan(f[name].attrs["_FillValue"]).all()
        assert f["seed"].dtype == np.int64 and np.array_equal(f["seed"][:2], seeds)


def test_fresh_file_is_all_nan_and_counts_zero(tmp_path: Path) -> None:
    with TrajectoryWriter(tmp_path / "valid.h5", make_layout(split="valid")) as writer:
        assert writer.n_done == 0 and not writer.resumed
        with h5py.File(writer.partial, "r") as f:
            assert int(attr_to_python(f.attrs["n_traj_complete"])) == 0
            assert np.isnan(f["u"][...]).all() and np.isnan(f["nu"][...]).all()


# --- file structure ---------------------------------------------------------------------------------------
def _attrs(obj: h5py.HLObject) -> dict[str, Any]:
    return {k: attr_to_python(v) for k, v in obj.attrs.items() if k not in _BOOKKEEPING and k != "_NCProperties"}


def test_partial_file_structure_matches_the_format(partial_file: Path) -> None:
    """Every root attribute, variable, dtype, dimension and variable attribute the format table lists."""
    layout = make_layout()
    with h5py.File(partial_file, "r") as f:
        root = _attrs(f)
        # the version is bumped by format changes; not the writer's job
        assert root.pop("schema_version") in ("1.0", "1.1", "1.2", "1.3", "1.4")
        assert root == {
            "schema": "pdebench-trajectories",
            "pde": "ks",
            "preset": "tiny",
            "split": "train",
            "grid": "periodic",
            "quadrature": "uniform",
            "spatial_dims": 2,
            "spatial_coordinates": "x,y",
            "frame_interval": 0.25,
            "fields": "u,v",
            "parameters": "nu,dt",
            "conditioning": "nu,dt",
            "n_traj_complete": 2,
            FINGERPRINT_ATTR: layout_fingerprint(layout),
            **ATTRS,
        }
        assert f.attrs["spatial_dims"].dtype == np.int64 and f.attrs["n_traj_complete"].dtype == np.int64
        assert f.attrs["frame_interval"].dtype == np.float64
        assert set(f) == {"traj", "time", "x", "y", "u", "v", "nu", "dt", "seed"}

        assert f["traj"].dtype == np.int64 and np.array_equal(f["traj"][...], np.arange(N_TRAJ))
        assert _attrs(f["traj"]) == {"description": "trajectory index"}
        assert f["time"].dtype == np.int64 and np.array_equal(f["time"][...], np.arange(N_FRAMES))
        time_attrs = _attrs(f["time"])
        assert time_attrs.pop("units") == "frames" and time_attrs["description"].startswith("stored frame index")
        for name, values, units, description in (("x", X, "m", "position"), ("y", Y, "km", "height")):
            assert f[name].dtype == np.float64 and np.array_equal(f[name][...], values), name
            assert _attrs(f[name]) == {"units": units, "description": description}
        for name, units, description in (("nu", "m^2/s", "viscosity"), ("dt", "s", "frame interval")):
            assert f[name].shape == (N_TRAJ,)
            attrs = _attrs(f[name])
            assert np.isnan(attrs.pop("_FillValue"))
            assert attrs == {"units": units, "description": description}, name
        assert f["seed"].shape == (N_TRAJ,) and f["seed"].dtype == np.int64
        assert _attrs(f["seed"]) == {
            "description": "seed of the random initial condition / parameters of each trajectory"
        }
        for name, units, description in (("u", "m/s", "velocity"), ("v", "1", "tracer")):
            dset = f[name]
            assert [dset.dims[i][0].name for i in range(4)] == ["/traj", "/time", "/x", "/y"]
            assert dset.chunks == (1, N_FRAMES, NX, NY) and dset.compression is None and dset.fletcher32
            attrs = _attrs(dset)
            assert np.isnan(attrs.pop("_FillValue"))
            assert attrs == {"units": units, "boundary_conditions": "periodic", "description": description}


@pytest.mark.parametrize(
    ("n_frames", "spatial", "expected"),
    [
        (5, (8,), (1, 5, 8)),  # whole trajectory in one chunk
        (100, (8,), (1, 32, 8)),  # at most 32 frames
        (100, (256, 512), (1, 2, 256, 512)),  # 512 KiB frames: 2 per ~1 MiB chunk
        (100, (100, 1000), (1, 2, 100, 1000)),  # 400 kB frames: 2 (not 2.6) per chunk
        (100, (512, 512), (1, 1, 512, 512)),  # exactly 1 MiB frames: 1 per chunk
        (100, (1024, 1024), (1, 1, 1024, 1024)),  # frames over 1 MiB: still one whole frame
        (3, (64, 64), (1, 3, 64, 64)),  # fewer frames than fit
        (1, (), (1, 1)),  # no spatial axis
    ],
)
def test_field_chunks(n_frames: int, spatial: tuple[int, ...], expected: tuple[int, ...]) -> None:
    chunks = field_chunks(n_frames, spatial)
    assert chunks == expected and all(type(n) is int for n in chunks)


def test_partial_path_is_a_sibling() -> None:
    assert partial_path(Path("data") / "ks-small" / "train.h5") == Path("data") / "ks-small" / "train.h5.partial"
    assert partial_path("valid.h5") == Path("valid.h5.partial")


# --- resume fingerprint -----------------------------------------------------------------------------------
LayoutChange = Callable[[DatasetLayout], DatasetLayout]


def _change_item(attr: str, index: int, **changes: Any) -> LayoutChange:
    """Replace attributes of element `index` of the tuple `layout.<attr>` (coordinates, fields, parameters)."""

    def change(layout: DatasetLayout) -> DatasetLayout:
        items = list(getattr(layout, attr))
        items[index] = replace(items[index], **changes)
        return replace(layout, **{attr: tuple(items)})

    return change


def _set(**changes: Any) -> LayoutChange:
    return lambda layout: replace(layout, **changes)


def _reversed(attr: str) -> LayoutChange:
    return lambda layout: replace(layout, **{attr: tuple(reversed(getattr(layout, attr)))})


def _shift_last(values: np.ndarray) -> np.ndarray:
    out = np.array(values, dtype=np.float64)
    out[-1] = np.nextafter(out[-1], np.inf)  # the smallest possible change of one value
    return out


# (covered dataclass, covered attribute, change). Every attribute of every record must appear at least once.
LAYOUT_CHANGES: dict[str, tuple[type, str, LayoutChange]] = {
    "pde": (DatasetLayout, "pde", _set(pde="burgers")),
    "preset": (DatasetLayout, "preset", _set(preset="small")),
    "split": (DatasetLayout, "split", _set(split="valid")),
    "n_traj": (DatasetLayout, "n_traj", _set(n_traj=N_TRAJ + 1)),
    "n_frames": (DatasetLayout, "n_frames", _set(n_frames=N_FRAMES + 1)),
    "frame_interval": (DatasetLayout, "frame_interval", _set(frame_interval=np.nextafter(0.25, 1.0))),
    "grid": (DatasetLayout, "grid", _set(grid="box")),
    "coordinates-order": (DatasetLayout, "coordinates", _reversed("coordinates")),
    "coordinate-dropped": (DatasetLayout, "coordinates", lambda lo: replace(lo, coordinates=lo.coordinates[:1])),
    "fields-order": (DatasetLayout, "fields", _reversed("fields")),
    "field-dropped": (DatasetLayout, "fields", lambda lo: replace(lo, fields=lo.fields[:1])),
    "parameters-order": (DatasetLayout, "parameters", _reversed("parameters")),
    "parameter-dropped": (DatasetLayout, "parameters", lambda lo: replace(lo, parameters=lo.parameters[:1])),
    "parameters-none": (DatasetLayout, "parameters", _set(parameters=())),
    "attrs-value": (DatasetLayout, "attrs", _set(attrs={**ATTRS, "solver": "rk4"})),
    "attrs-config": (DatasetLayout, "attrs", _set(attrs={**ATTRS, "generation_config": "pde: ks\npreset: x\n"})),
    "attrs-key": (DatasetLayout, "attrs", _set(attrs={"generation_config": ATTRS["generation_config"], "s": "etdrk4"})),
    "attrs-added": (DatasetLayout, "attrs", _set(attrs={**ATTRS, "package_version": "0.1.0"})),
    "attrs-removed": (DatasetLayout, "attrs", _set(attrs={"solver": "etdrk4"})),
    "attrs-none": (DatasetLayout, "attrs", _set(attrs={})),
    "x-values": (Coordinate, "values", _change_item("coordinates", 0, values=_shift_last(X))),
    "y-values": (Coordinate, "values", _change_item("coordinates", 1, values=_shift_last(Y))),
    "y-values-first": (Coordinate, "values", _change_item("coordinates", 1, values=np.array([-2.0, 0.0, 2.0]))),
    "x-name": (Coordinate, "name", _change_item("coordinates", 0, name="xx")),
    "y-name": (Coordinate, "name", _change_item("coordinates", 1, name="z")),
    "x-units": (Coordinate, "units", _change_item("coordinates", 0, units="cm")),
    "y-units": (Coordinate, "units", _change_item("coordinates", 1, units="m")),
    "x-description": (Coordinate, "description", _change_item("coordinates", 0, description="pos")),
    "y-description": (Coordinate, "description", _change_item("coordinates", 1, description="")),
    "u-name": (FieldSpec, "name", _change_item("fields", 0, name="w")),
    "v-name": (FieldSpec, "name", _change_item("fields", 1, name="w")),
    "u-units": (FieldSpec, "units", _change_item("fields", 0, units="m")),
    "v-units": (FieldSpec, "units", _change_item("fields", 1, units="kg")),
    "u-boundary": (FieldSpec, "boundary", _change_item("fields", 0, boundary="dirichlet")),
    "v-boundary": (FieldSpec, "boundary", _change_item("fields", 1, boundary="neumann")),
    "u-description": (FieldSpec, "description", _change_item("fields", 0, description="speed")),
    "v-description": (FieldSpec, "description", _change_item("fields", 1, description="")),
    "nu-name": (ParameterSpec, "name", _change_item("parameters", 0, name="mu")),
    "dt-name": (ParameterSpec, "name", _change_item("parameters", 1, name="dtau")),
    "nu-units": (ParameterSpec, "units", _change_item("parameters", 0, units="1")),
    "dt-units": (ParameterSpec, "units", _change_item("parameters", 1, units="ms")),
    "nu-description": (ParameterSpec, "description", _change_item("parameters", 0, description="nu")),
    "dt-description": (ParameterSpec, "description", _change_item("parameters", 1, description="")),
    "nu-record": (ParameterSpec, "conditioning", _change_item("parameters", 0, conditioning=False)),
    "dt-record": (ParameterSpec, "conditioning", _change_item("parameters", 1, conditioning=False)),
}


def test_layout_changes_cover_every_layout_attribute() -> None:
    """A new attribute of a layout record must get a fingerprint case here (and be part of the fingerprint)."""
    covered = {(cls, attr) for cls, attr, _ in LAYOUT_CHANGES.values()}
    for cls in (DatasetLayout, Coordinate, FieldSpec, ParameterSpec):
        missing = {f.name for f in dataclasses.fields(cls)} - {attr for c, attr in covered if c is cls}
        assert not missing, f"no fingerprint case for {cls.__name__}.{sorted(missing)}"


@pytest.mark.parametrize("case", sorted(LAYOUT_CHANGES))
def test_fingerprint_changes_with_every_layout_value(case: str) -> None:
    base = make_layout()
    changed = LAYOUT_CHANGES[case][2](base)
    validate_layout(changed)  # a valid layout, so a refused resume below is the fingerprint's doing
    assert layout_fingerprint(changed) != layout_fingerprint(base)


def test_fingerprint_is_equal_for_equal_layouts() -> None:
    """Rebuilt layouts with the same content (other objects, attrs order, coordinate dtype) match."""
    base = make_layout()
    rebuilt = make_layout(
        coordinates=(
            Coordinate("x", [0.0, 0.25, 0.5, 0.75], "m", "position"),
            Coordinate("y", np.array([-1, 0, 2], dtype=np.int32), "km", "height"),
        ),
        attrs={"solver": "etdrk4", "generation_config": ATTRS["generation_config"]},
        n_traj=np.int64(N_TRAJ),
    )
    fp = layout_fingerprint(base)
    assert len(fp) == 64 and int(fp, 16) >= 0  # a sha256 hex digest
    assert layout_fingerprint(rebuilt) == fp == layout_fingerprint(make_layout())


@pytest.mark.parametrize("case", sorted(LAYOUT_CHANGES))
def test_resume_with_any_different_layout_is_refused(resumable: Path, case: str) -> None:
    partial = partial_path(resumable)
    before = sha256_of(partial)
    changed = LAYOUT_CHANGES[case][2](make_layout())
    with pytest.raises(DatasetError) as info:
        TrajectoryWriter(resumable, changed)
    message = str(info.value)
    assert str(partial) in message and "started with a different configuration" in message
    assert "delete it to start this split over" in message
    assert partial.exists() and sha256_of(partial) == before  # never deleted nor modified
    assert not resumable.exists()


def test_resume_with_same_layout_continues_after_last_complete_block(resumable: Path) -> None:
    with TrajectoryWriter(resumable, make_layout()) as writer:
        assert writer.resumed and writer.n_done == 2
        writer.append(*make_block(2, 4))
        assert writer.finalize() == resumable
    fields, params, seeds = make_block(0, 4)
    with TrajectoryFile(resumable) as tf:
        assert np.array_equal(tf.read_field("u", slice(None)), fields["u"].astype(np.float32))
        assert np.array_equal(tf.parameters()["dt"], params["dt"]) and np.array_equal(tf.seeds(), seeds)


def test_damaged_partial_is_refused_not_deleted(tmp_path: Path) -> None:
    path = tmp_path / "train.h5"
    partial_path(path).write_bytes(b"half an HDF5 file")
    with pytest.raises(DatasetError, match="cannot open the interrupted write") as info:
        TrajectoryWriter(path, make_layout())
    assert str(partial_path(path)) in str(info.value) and "delete it" in str(info.value)
    assert partial_path(path).read_bytes() == b"half an HDF5 file"


def test_partial_without_fingerprint_is_refused(resumable: Path) -> None:
    with h5py.File(partial_path(resumable), "r+") as f:
        del f.attrs[FINGERPRINT_ATTR]
    with pytest.raises(DatasetError, match="different configuration"):
        TrajectoryWriter(resumable, make_layout())


# --- validate_layout: one case per rejection ---------------------------------------------------------------
def _coords(*coords: Coordinate) -> dict[str, Any]:
    return {"coordinates": coords}


_X = Coordinate("x", X, "m")
_NAME_RULE = "must be letters, digits and '_' starting with a letter"

INVALID_LAYOUTS: list[tuple[str, dict[str, Any], str]] = [
    ("split", {"split": "training"}, "split 'training' is not one of train, valid, test"),
    ("n_traj-zero", {"n_traj": 0}, "n_traj must be >= 1, got 0"),
    ("n_traj-negative", {"n_traj": -3}, "n_traj must be >= 1, got -3"),
    ("n_frames-zero", {"n_frames": 0}, "n_frames must be >= 1, got 0"),
    ("frame_interval-zero", {"frame_interval": 0.0}, "frame_interval must be a positive number, got 0.0"),
    ("frame_interval-negative", {"frame_interval": -0.5}, "frame_interval must be a positive number, got -0.5"),
    ("frame_interval-nan", {"frame_interval": float("nan")}, "frame_interval must be a positive number, got nan"),
    ("frame_interval-inf", {"frame_interval": float("inf")}, "frame_interval must be a positive number, got inf"),
    ("no-field", {"fields": ()}, "a layout needs at least one field"),
    ("grid-unknown", {"grid": "periodic-uniform"}, "grid 'periodic-uniform' is not one of periodic, box, sphere"),
    ("grid-sphere-axes", {"grid": "sphere"}, "a sphere grid needs coordinates ('lat', 'lon')"),
    (
        "grid-sphere-order",
        {"grid": "sphere", **_coords(Coordinate("lon", X, "deg"), Coordinate("lat", Y, "deg"))},
        "a sphere grid needs coordinates ('lat', 'lon')",
    ),
    ("coordinate-name", {**_coords(Coordinate("1x", X, "m"))}, f"coordinate name '1x' {_NAME_RULE}"),
    ("coordinate-name-dash", {**_coords(Coordinate("x-1", X, "m"))}, f"coordinate name 'x-1' {_NAME_RULE}"),
    ("coordinate-name-empty", {**_coords(Coordinate("", X, "m"))}, f"coordinate name '' {_NAME_RULE}"),
    ("field-name", {"fields": (FieldSpec("_u", "1", "periodic"),)}, f"field name '_u' {_NAME_RULE}"),
    ("field-name-comma", {"fields": (FieldSpec("u,v", "1", "periodic"),)}, f"field name 'u,v' {_NAME_RULE}"),
    ("parameter-name", {"parameters": (ParameterSpec("n u", "1"),)}, f"parameter name 'n u' {_NAME_RULE}"),
    # `$` would also match before a final newline: the names must be matched to their very end.
    ("field-name-newline", {"fields": (FieldSpec("u\n", "1", "periodic"),)}, f"field name 'u\\n' {_NAME_RULE}"),
    ("attr-name-newline", {"attrs": {"solver\n": "x"}}, f"attribute name 'solver\\n' {_NAME_RULE}"),
    ("reserved-traj", {**_coords(Coordinate("traj", X, "m"))}, "coordinate name 'traj' is reserved or used twice"),
    (
        "reserved-time",
        {"fields": (FieldSpec("time", "1", "periodic"),)},
        "field name 'time' is reserved or used twice",
    ),
    ("reserved-seed", {"parameters": (ParameterSpec("seed", "1"),)}, "parameter name 'seed' is reserved or used twice"),
    (
        "duplicate-field",
        {"fields": (FieldSpec("u", "1", "periodic"), FieldSpec("u", "1", "periodic"))},
        "field name 'u' is reserved or used twice",
    ),
    (
        "duplicate-across-kinds",
        {"parameters": (ParameterSpec("x", "1"),)},
        "parameter name 'x' is reserved or used twice",
    ),
    (
        "coordinate-2d",
        {**_coords(Coordinate("x", np.zeros((2, 2)), "m"))},
        "coordinate 'x' must be a non-empty 1-D array, got shape (2, 2)",
    ),
    (
        "coordinate-scalar",
        {**_coords(Coordinate("x", np.float64(1.0), "m"))},
        "coordinate 'x' must be a non-empty 1-D array, got shape ()",
    ),
    (
        "coordinate-empty",
        {**_coords(Coordinate("x", np.zeros(0), "m"))},
        "coordinate 'x' must be a non-empty 1-D array, got shape (0,)",
    ),
    (
        "coordinate-nan",
        {**_coords(Coordinate("x", np.array([0.0, np.nan, 1.0]), "m"))},
        "coordinate 'x' must hold finite numbers",
    ),
    (
        "coordinate-inf",
        {**_coords(Coordinate("x", np.array([0.0, 1.0, -np.inf]), "m"))},
        "coordinate 'x' must hold finite numbers",
    ),
    (
        "coordinate-strings",
        {**_coords(Coordinate("x", np.array(["0", "1"]), "m"))},
        "coordinate 'x' must hold finite numbers",
    ),
    (
        "coordinate-complex",
        {**_coords(Coordinate("x", np.array([0.0, 1.0j]), "m"))},
        "coordinate 'x' must hold finite numbers",
    ),
    (
        "coordinate-bool",
        {**_coords(Coordinate("x", np.array([False, True]), "m"))},
        "coordinate 'x' must hold finite numbers",
    ),
    ("attr-name", {"attrs": {"1solver": "x"}}, f"attribute name '1solver' {_NAME_RULE}"),
    ("attr-name-dot", {"attrs": {"solver.version": "x"}}, f"attribute name 'solver.version' {_NAME_RULE}"),
    ("attr-name-not-str", {"attrs": {3: "x"}}, f"attribute name 3 {_NAME_RULE}"),
    ("attr-value-int", {"attrs": {"solver": 4}}, "attribute 'solver' must be a string, got int"),
    ("attr-value-bytes", {"attrs": {"solver": b"etdrk4"}}, "attribute 'solver' must be a string, got bytes"),
    ("attr-value-none", {"attrs": {"solver": None}}, "attribute 'solver' must be a string, got NoneType"),
    *(
        (
            f"attr-core-{name}",
            {"attrs": {name: "x"}},
            f"attribute {name!r} is set by the writer and cannot be given in layout.attrs",
        )
        for name in (*REQUIRED_ROOT_ATTRS, "quadrature", "conditioning", FINGERPRINT_ATTR)
    ),
    (
        "conditioning-not-bool",
        {"parameters": (ParameterSpec("nu", "1"), ParameterSpec("dt", "s", conditioning="no"))},
        "parameter 'dt' has conditioning='no'; expected True or False",
    ),
]


@pytest.mark.parametrize(
    ("changes", "problem"), [case[1:] for case in INVALID_LAYOUTS], ids=[case[0] for case in INVALID_LAYOUTS]
)
def test_validate_layout_rejects(changes: dict[str, Any], problem: str, tmp_path: Path) -> None:
    layout = make_layout(**changes)
    with pytest.raises(DatasetError) as info:
        validate_layout(layout)
    assert str(info.value) == f"invalid layout for ks-tiny/{layout.split}: {problem}"
    with pytest.raises(DatasetError, match="invalid layout"):
        TrajectoryWriter(tmp_path / "train.h5", layout)
    assert list(tmp_path.iterdir()) == []  # nothing is created for an invalid layout


def test_validate_layout_reports_every_problem_at_once() -> None:
    layout = make_layout(
        split="dev",
        n_frames=0,
        fields=(FieldSpec("time", "1", "periodic"),),
        attrs={"schema": 1, "ok": "fine"},
    )
    with pytest.raises(DatasetError) as info:
        validate_layout(layout)
    assert str(info.value) == (
        "invalid layout for ks-tiny/dev: split 'dev' is not one of train, valid, test; "
        "n_frames must be >= 1, got 0; field name 'time' is reserved or used twice; "
        "attribute 'schema' is set by the writer and cannot be given in layout.attrs; "
        "attribute 'schema' must be a string, got int"
    )


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"grid": "box"},
        {"grid": "sphere", **_coords(Coordinate("lat", Y, "deg"), Coordinate("lon", X, "deg"))},
        {"split": "valid", "frame_interval": 1e-300},
        {"split": "test", "attrs": {}, "parameters": ()},
        {**_coords(Coordinate("x", np.array([3], dtype=np.uint8), "m"), Coordinate("y2_B", [1, 2], "m"))},
    ],
    ids=["default", "box", "sphere", "tiny-interval", "no-params-no-attrs", "int-coordinates"],
)
def test_validate_layout_accepts(changes: dict[str, Any]) -> None:
    validate_layout(make_layout(**changes))  # must not raise


def test_smallest_layout_writes_and_reads(tmp_path: Path) -> None:
    """One trajectory of one frame on a one-point grid, no parameters, no attrs: still a valid file."""
    layout = make_layout(
        n_traj=1,
        n_frames=1,
        coordinates=(Coordinate("x", [0.0], "m"),),
        fields=(FieldSpec("u", "1", "periodic"),),
        parameters=(),
        attrs={},
    )
    with TrajectoryWriter(tmp_path / "test.h5", layout) as writer:
        writer.append({"u": np.full((1, 1, 1), 2.5)}, {}, np.array([7]))
        path = writer.finalize()
    with TrajectoryFile(path) as tf:
        assert tf.parameter_names == () and tf.read_field("u", 0).tolist() == [[2.5]]
        assert tf.seeds().tolist() == [7]


# --- append: what is refused -------------------------------------------------------------------------------
@pytest.fixture()
def writer(tmp_path: Path) -> Iterator[TrajectoryWriter]:
    """A fresh writer whose first trajectory is already written (so n_done = 1)."""
    w = TrajectoryWriter(tmp_path / "train.h5", make_layout())
    w.append(*make_block(0, 1))
    yield w
    w.close()


def _without(d: dict[str, np.ndarray], key: str) -> dict[str, np.ndarray]:
    return {k: v for k, v in d.items() if k != key}


def test_append_refuses_wrong_field_set(writer: TrajectoryWriter) -> None:
    fields, params, seeds = make_block(1, 3)
    expects = f"{writer.partial} expects ['u', 'v']"
    with pytest.raises(DatasetError) as info:
        writer.append(_without(fields, "v"), params, seeds)
    assert str(info.value) == f"append got fields ['u']; {expects}"
    with pytest.raises(DatasetError) as info:
        writer.append({**fields, "w": fields["u"]}, params, seeds)
    assert str(info.value) == f"append got fields ['u', 'v', 'w']; {expects}"
    with pytest.raises(DatasetError, match=r"append got parameters \['dt'\]; .* expects \['dt', 'nu'\]"):
        writer.append(fields, _without(params, "nu"), seeds)
    with pytest.raises(DatasetError, match=r"append got parameters \['dt', 'k', 'nu'\]"):
        writer.append(fields, {**params, "k": params["nu"]}, seeds)
    assert writer.n_done == 1


@pytest.mark.parametrize(
    ("kind", "name", "bad_shape"),
    [
        ("field", "u", (2, N_FRAMES - 1, NX, NY)),  # too few frames
        ("field", "v", (2, N_FRAMES, NY, NX)),  # spatial axes swapped
        ("field", "u", (3, N_FRAMES, NX, NY)),  # more trajectories than seeds
        ("field", "v", (N_FRAMES, NX, NY)),  # trajectory axis missing
        ("parameter", "nu", (2, 1)),
        ("parameter", "dt", (3,)),
    ],
)
def test_append_refuses_wrong_shape(writer: TrajectoryWriter, kind: str, name: str, bad_shape: tuple) -> None:
    fields, params, seeds = make_block(1, 3)
    target = fields if kind == "field" else params
    target[name] = np.ones(bad_shape)
    expected = (2, N_FRAMES, NX, NY) if kind == "field" else (2,)
    with pytest.raises(DatasetError) as info:
        writer.append(fields, params, seeds)
    assert str(info.value) == f"{kind} '{name}' has shape {bad_shape}; expected {expected} for {writer.partial}"
    assert writer.n_done == 1


@pytest.mark.parametrize("bad", [np.array(["a", "b"]), np.array([1 + 0j, 2]), np.array([None, None])])
def test_append_refuses_non_numeric_parameter(writer: TrajectoryWriter, bad: np.ndarray) -> None:
    fields, params, seeds = make_block(1, 3)
    with pytest.raises(DatasetError) as info:
        writer.append(fields, {**params, "nu": bad}, seeds)
    assert str(info.value) == f"parameter 'nu' has dtype {bad.dtype}, which cannot be stored as float64"


def test_append_refuses_complex_field(writer: TrajectoryWriter) -> None:
    fields, params, seeds = make_block(1, 3)
    with pytest.raises(DatasetError, match=r"^field 'u' has dtype complex128, which cannot be stored as float32$"):
        writer.append({**fields, "u": fields["u"] + 0j}, params, seeds)


@pytest.mark.parametrize(
    ("kind", "name", "bad_offsets", "value", "reported"),
    [
        ("field", "u", (0,), np.nan, 1),  # first trajectory of the block: index n_done + 0
        ("field", "v", (1,), np.inf, 2),
        ("field", "u", (1, 0), -np.inf, 1),  # several bad ones: the first is named
        ("field", "v", (1,), 1e300, 2),  # finite in float64, inf in float32
        ("parameter", "nu", (1,), np.nan, 2),
        ("parameter", "dt", (0, 1), np.inf, 1),
    ],
)
def test_append_refuses_non_finite_values_naming_the_trajectory(
    writer: TrajectoryWriter, kind: str, name: str, bad_offsets: tuple[int, ...], value: float, reported: int
) -> None:
    fields, params, seeds = make_block(1, 3)
    target = fields if kind == "field" else params
    target[name] = target[name].copy()
    for offset in bad_offsets:
        if kind == "field":
            target[name][offset, N_FRAMES - 1, NX - 1, NY - 1] = value  # one value, in the last position
        else:
            target[name][offset] = value
    with pytest.raises(DatasetError) as info:
        writer.append(fields, params, seeds)
    dtype = "float32" if kind == "field" else "float64"
    assert str(info.value) == (
        f"{kind} '{name}' of trajectory {reported} contains non-finite values (NaN or inf, possibly after "
        f"conversion to {dtype}); refusing to write it to {writer.partial}"
    )
    assert writer.n_done == 1
    with h5py.File(writer.partial, "r") as f:  # nothing of the refused block reached the file
        assert int(attr_to_python(f.attrs["n_traj_complete"])) == 1
        assert np.isnan(f["u"][1:]).all() and np.isnan(f["v"][1:]).all() and np.isnan(f["nu"][1:]).all()


_LONG_DOUBLE_IS_WIDER = np.finfo(np.longdouble).max > np.finfo(np.float64).max


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("field", "u"),  # float64 values beyond float32
        pytest.param(
            "parameter",
            "nu",
            marks=pytest.mark.skipif(not _LONG_DOUBLE_IS_WIDER, reason="long double is float64 here"),
        ),  # long double values beyond float64
    ],
)
def test_append_refuses_values_that_overflow_on_conversion(writer: TrajectoryWriter, kind: str, name: str) -> None:
    """Finite input that becomes inf when stored is refused with the writer's error, not a numpy warning."""
    fields, params, seeds = make_block(1, 3)
    if kind == "field":
        fields[name] = fields[name] + 1e300
    else:
        params[name] = np.array([np.longdouble(1.0), np.longdouble("1e400")])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning from the cast would be raised instead
        with pytest.raises(DatasetError, match=rf"^{kind} '{name}' of trajectory (1|2) contains non-finite"):
            writer.append(fields, params, seeds)
    assert writer.n_done == 1


def test_append_refuses_too_many_trajectories(writer: TrajectoryWriter) -> None:
    with pytest.raises(DatasetError) as info:
        writer.append(*make_block(0, 4))
    assert str(info.value) == f"appending 4 trajectories after 1 exceeds n_traj=4 of {writer.partial}"
    writer.append(*make_block(1, 4))  # exactly filling the file is fine
    assert writer.n_done == 4
    with pytest.raises(DatasetError, match="appending 1 trajectories after 4 exceeds n_traj=4"):
        writer.append(*make_block(3, 4))


@pytest.mark.parametrize(
    ("seeds", "message"),
    [
        (np.array([1.0, 2.0]), "seeds must be integers, got dtype float64"),
        (np.array([True, False]), "seeds must be integers, got dtype bool"),
        (np.array(["1", "2"]), "seeds must be integers, got dtype <U1"),
        (np.array([[1], [2]]), "seeds must be a non-empty 1-D array, got shape (2, 1)"),
        (np.array(5), "seeds must be a non-empty 1-D array, got shape ()"),
        (np.array([], dtype=np.int64), "seeds must be a non-empty 1-D array, got shape (0,)"),
        (np.array([2**63, 1], dtype=np.uint64), "seeds do not fit in int64"),
    ],
    ids=["float", "bool", "str", "2d", "scalar", "empty", "uint64-overflow"],
)
def test_append_refuses_bad_seeds(writer: TrajectoryWriter, seeds: np.ndarray, message: str) -> None:
    fields, params, _ = make_block(1, 3)
    with pytest.raises(DatasetError) as info:
        writer.append(fields, params, seeds)
    assert str(info.value) == message
    assert writer.n_done == 1


def test_append_accepts_integer_data_and_unsigned_seeds(writer: TrajectoryWriter) -> None:
    fields, params, _ = make_block(1, 3)
    int_u = np.arange(2 * N_FRAMES * NX * NY, dtype=np.int16).reshape(2, N_FRAMES, NX, NY)
    seeds = np.array([np.iinfo(np.int64).max, 3], dtype=np.uint64)  # the largest seed that fits
    writer.append({**fields, "u": int_u}, {**params, "nu": np.array([1, 2], dtype=np.int32)}, seeds)
    assert writer.n_done == 3
    with h5py.File(writer.partial, "r") as f:
        assert np.array_equal(f["u"][1:3], int_u.astype(np.float32)) and f["nu"][1:3].tolist() == [1.0, 2.0]
        assert f["seed"][1:3].tolist() == [np.iinfo(np.int64).max, 3]
        assert int(attr_to_python(f.attrs["n_traj_complete"])) == 3


def test_append_writes_each_block_at_n_done(tmp_path: Path) -> None:
    fields, params, seeds = make_block(0, 4)
    with TrajectoryWriter(tmp_path / "train.h5", make_layout()) as w:
        for lo, hi in ((0, 1), (1, 3), (3, 4)):
            w.append(*make_block(lo, hi))
            assert w.n_done == hi
            assert int(attr_to_python(w._file.attrs["n_traj_complete"])) == hi
        assert repr(w) == f"TrajectoryWriter({str(tmp_path / 'train.h5')!r}, n_done=4/4)"
        path = w.finalize()
    with h5py.File(path, "r") as f:
        assert np.array_equal(f["v"][...], fields["v"].astype(np.float32))
        assert np.array_equal(f["nu"][...], params["nu"]) and np.array_equal(f["seed"][...], seeds)


# --- finalize and atomic rename ------------------------------------------------------------------------------
def test_finalize_refuses_incomplete_file(writer: TrajectoryWriter) -> None:
    with pytest.raises(DatasetError) as info:
        writer.finalize()
    assert str(info.value) == f"cannot finalize {writer.partial}: 1 of 4 trajectories written"
    assert writer.partial.exists() and not writer.path.exists()
    writer.append(*make_block(1, 4))  # still usable: the refusal did not close it
    assert writer.finalize() == writer.path and writer.path.exists()


def test_final_path_appears_only_at_finalize(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "train.h5"  # missing parents are created
    with TrajectoryWriter(path, make_layout()) as w:
        assert sorted(p.name for p in path.parent.iterdir()) == ["train.h5.partial"]  # no scratch file left
        for lo, hi in ((0, 2), (2, 4)):
            w.append(*make_block(lo, hi))
            assert not path.exists() and w.partial.exists()
        assert w.finalize() == path
    assert path.exists() and not w.partial.exists()
    assert sorted(p.name for p in path.parent.iterdir()) == ["train.h5"]
    with TrajectoryFile(path) as tf:  # the renamed file is the complete one
        assert tf.n_traj == N_TRAJ and tf.attrs["n_traj_complete"] == N_TRAJ


def test_crash_while_creating_the_structure_leaves_nothing_to_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The structure is built under a unique scratch name, then renamed: a failure before the rename leaves no
    `.partial` (so nothing half-made is ever resumed) and no scratch file, and the next run starts over cleanly."""
    path = tmp_path / "train.h5"

    def crash(src: object, dst: object) -> None:
        raise OSError("killed while renaming")

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", crash)
        with pytest.raises(OSError, match="killed while renaming"):
            TrajectoryWriter(path, make_layout())
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    with TrajectoryWriter(path, make_layout()) as w:
        assert not w.resumed and w.n_done == 0
        w.append(*make_block(0, 4))
        w.finalize()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.h5"]


def test_finalize_replaces_an_existing_final_file(tmp_path: Path) -> None:
    path = tmp_path / "train.h5"
    path.write_bytes(b"an old split file")
    with TrajectoryWriter(path, make_layout()) as w:
        assert path.read_bytes() == b"an old split file"  # untouched until finalize
        w.append(*make_block(0, 4))
        w.finalize()
    with TrajectoryFile(path) as tf:
        assert tf.n_traj == N_TRAJ


def test_writer_refuses_use_after_close_or_finalize(tmp_path: Path) -> None:
    w = TrajectoryWriter(tmp_path / "train.h5", make_layout())
    w.close()
    w.close()  # idempotent
    with pytest.raises(DatasetError, match=r"^writer for .*train\.h5\.partial is closed$"):
        w.append(*make_block(0, 1))
    with pytest.raises(DatasetError, match="is closed"):
        w.finalize()
    w = TrajectoryWriter(tmp_path / "train.h5", make_layout())
    w.append(*make_block(0, 4))
    w.finalize()
    with pytest.raises(DatasetError, match=r"^writer for .*train\.h5\.partial is finalized$"):
        w.append(*make_block(0, 1))
    with pytest.raises(DatasetError, match="is finalized"):
        w.finalize()
