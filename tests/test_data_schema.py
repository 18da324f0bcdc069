"""The split-file format: writer/reader round trip, xarray and h5py views, resume, checker, manifest, CLI."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr

from pdebench.data.__main__ import main
from pdebench.data.check import check_file, validate_file
from pdebench.data.grid import Grid
from pdebench.data.manifest import (
    benchmark_facts,
    content_sha256,
    file_sha256,
    manifest_hash,
    manifest_problems,
    read_manifest,
    verify_dataset,
    write_manifest,
)
from pdebench.data.names import shown
from pdebench.data.reader import TrajectoryFile, open_dataset_dir, split_path
from pdebench.data.schema import (
    REQUIRED_ROOT_ATTRS,
    SCHEMA_NAME,
    SCHEMA_VERSION,
    Coordinate,
    DatasetError,
    DatasetLayout,
    FieldSpec,
    ParameterSpec,
    required_root_attrs,
)
from pdebench.data.writer import TrajectoryWriter, partial_path

REPO_ROOT = Path(__file__).resolve().parents[1]
N_TRAJ, N_FRAMES, NX = 3, 5, 8


def make_layout(split: str = "train", **changes: object) -> DatasetLayout:
    """A tiny 1-D layout with two fields and two parameters (one of them the per-trajectory `dt`)."""
    kwargs: dict[str, object] = dict(
        pde="ks",
        preset="tiny",
        split=split,
        n_traj=N_TRAJ,
        n_frames=N_FRAMES,
        frame_interval=0.5,
        grid="periodic",
        coordinates=(Coordinate("x", np.linspace(0.0, 2.0, NX, endpoint=False), "m", "position"),),
        fields=(FieldSpec("u", "m/s", "periodic", "velocity"), FieldSpec("v", "1", "periodic", "tracer")),
        parameters=(ParameterSpec("nu", "m^2/s", "viscosity"), ParameterSpec("dt", "s", "frame interval")),
        attrs={"generation_config": "pde: ks\npreset: tiny\nseeds: [10, 11, 12]\n", "solver": "etdrk4"},
    )
    kwargs.update(changes)
    return DatasetLayout(**kwargs)  # type: ignore[arg-type]


def make_data() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """Deterministic contents for N_TRAJ trajectories: fields float64 [3, 5, 8], params [3], seeds [3]."""
    rng = np.random.default_rng(1234)
    fields = {"u": rng.standard_normal((N_TRAJ, N_FRAMES, NX)), "v": rng.uniform(size=(N_TRAJ, N_FRAMES, NX))}
    params = {"nu": np.array([0.1, 0.2, 0.3]), "dt": np.array([0.25, 0.5, 1.0])}
    return fields, params, np.array([10, 11, 12], dtype=np.int64)


def block(lo: int, hi: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    fields, params, seeds = make_data()
    return {k: v[lo:hi] for k, v in fields.items()}, {k: v[lo:hi] for k, v in params.items()}, seeds[lo:hi]


def write_split(path: Path, layout: DatasetLayout | None = None) -> Path:
    """Write all trajectories in two blocks (2 + 1) and finalize."""
    with TrajectoryWriter(path, layout or make_layout(path.stem)) as writer:
        writer.append(*block(0, 2))
        writer.append(*block(2, 3))
        return writer.finalize()


def h5_contents(path: Path) -> dict[str, object]:
    """Every variable's values and every attribute (root and variable) of a file, for equality checks."""
    out: dict[str, object] = {}
    with h5py.File(path, "r") as f:
        # repr() so that NaN fill values compare equal; dimension-scale references differ per file.
        out["/attrs"] = repr({k: np.asarray(v).tolist() for k, v in f.attrs.items() if k != "_NCProperties"})
        for name, dset in f.items():
            out[name] = dset[...]
            skip = ("DIMENSION_LIST", "REFERENCE_LIST")
            out[name + "/attrs"] = repr(
                {k: np.asarray(v).tolist() for k, v in dset.attrs.items() if k not in skip}
            )
    return out


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    ddir = root / "ks-tiny"
    ddir.mkdir()
    write_split(ddir / "train.h5")
    write_split(ddir / "valid.h5")
    return ddir


@pytest.fixture(scope="module")
def valid_file(dataset_dir: Path) -> Path:
    return dataset_dir / "train.h5"


@pytest.fixture()
def copy_of(valid_file: Path, tmp_path: Path):
    """Return a fresh writable copy of the valid file (to be damaged by a test)."""

    def make(name: str = "copy.h5") -> Path:
        target = tmp_path / name
        shutil.copyfile(valid_file, target)
        return target

    return make


# --- writer / reader --------------------------------------------------------------------------------
def test_round_trip_values_parameters_seeds_attrs(valid_file: Path) -> None:
    fields, params, seeds = make_data()
    with TrajectoryFile(valid_file) as tf:
        assert (tf.pde, tf.preset, tf.split, tf.grid_kind) == ("ks", "tiny", "train", "periodic")
        assert (tf.n_traj, tf.n_frames, tf.spatial_shape) == (N_TRAJ, N_FRAMES, (NX,))
        assert tf.frame_interval == 0.5
        assert tf.field_names == ("u", "v") and tf.parameter_names == ("nu", "dt")
        assert tf.attrs["schema"] == SCHEMA_NAME and tf.attrs["schema_version"] == SCHEMA_VERSION
        assert tf.attrs["generation_config"] == make_layout().attrs["generation_config"]
        assert tf.attrs["solver"] == "etdrk4" and tf.attrs["spatial_dims"] == 1
        assert tf.attrs["n_traj_complete"] == N_TRAJ

        u32, v32 = fields["u"].astype(np.float32), fields["v"].astype(np.float32)
        whole = tf.read_field("u", slice(None))
        assert whole.dtype == np.float32 and np.array_equal(whole, u32)
        assert np.array_equal(tf.read_field("v", 1, slice(1, 4)), v32[1, 1:4])
        assert np.array_equal(tf.read_field("u", np.array([2, 0, 2])), u32[[2, 0, 2]])

        window = tf.read_window(2, 1, 5, step=2)
        assert window.dtype == np.float32 and window.shape == (2, 2, NX)
        assert np.array_equal(window, np.stack([u32[2, 1:5:2], v32[2, 1:5:2]]))
        assert np.array_equal(tf.read_window(0, 0, N_FRAMES), np.stack([u32[0], v32[0]]))
        with pytest.raises(IndexError):
            tf.read_window(0, 3, N_FRAMES + 1)
        with pytest.raises(IndexError):
            tf.read_window(N_TRAJ, 0, 1)

        got = tf.parameters()
        assert set(got) == {"nu", "dt"} and all(got[k].dtype == np.float64 for k in got)
        assert np.array_equal(got["nu"], params["nu"]) and np.array_equal(got["dt"], params["dt"])
        assert tf.seeds().dtype == np.int64 and np.array_equal(tf.seeds(), seeds)
        assert np.allclose(tf.coordinate("x"), np.linspace(0.0, 2.0, NX, endpoint=False))
        assert np.allclose(tf.frame_times(1), np.arange(N_FRAMES) * 0.5)  # per-trajectory dt wins


def test_reader_pickles_without_handle(valid_file: Path) -> None:
    tf = TrajectoryFile(valid_file)
    tf.read_window(0, 0, 2)  # opens the handle
    clone = pickle.loads(pickle.dumps(tf))
    assert np.array_equal(clone.read_window(1, 0, 3), tf.read_window(1, 0, 3))
    tf.close()
    clone.close()


def test_xarray_sees_labelled_dataset(valid_file: Path) -> None:
    fields, params, seeds = make_data()
    with xr.open_dataset(valid_file, engine="h5netcdf") as ds:
        assert dict(ds.sizes) == {"traj": N_TRAJ, "time": N_FRAMES, "x": NX}
        assert set(ds.coords) == {"traj", "time", "x"}
        assert ds["u"].dims == ("traj", "time", "x") and ds["u"].dtype == np.float32
        assert ds["nu"].dims == ("traj",) and ds["nu"].dtype == np.float64
        assert ds["seed"].dtype == np.int64 and np.array_equal(ds["seed"].values, seeds)
        assert (
            np.array_equal(ds["time"].values, np.arange(N_FRAMES)) and ds["time"].attrs["units"] == "frames"
        )
        assert ds["x"].attrs["units"] == "m"
        assert ds["u"].attrs["boundary_conditions"] == "periodic" and ds["u"].attrs["units"] == "m/s"
        assert ds.attrs["fields"] == "u,v" and ds.attrs["parameters"] == "nu,dt"
        assert ds.attrs["generation_config"] == make_layout().attrs["generation_config"]
        assert np.array_equal(ds["v"].isel(traj=2).values, fields["v"][2].astype(np.float32))
        assert np.array_equal(ds["dt"].values, params["dt"])


def test_plain_h5py_reads_field(valid_file: Path) -> None:
    fields, _, _ = make_data()
    with h5py.File(valid_file, "r") as f:
        u = f["u"]
        assert u.dtype == np.float32 and u.shape == (N_TRAJ, N_FRAMES, NX)
        assert u.chunks == (1, N_FRAMES, NX) and u.compression is None
        assert [u.dims[i][0].name for i in range(3)] == ["/traj", "/time", "/x"]
        assert np.array_equal(u[1, 2:4], fields["u"][1, 2:4].astype(np.float32))
        assert f.attrs["schema"] == SCHEMA_NAME


def test_resume_after_interruption_equals_one_shot(valid_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "train.h5"
    writer = TrajectoryWriter(path, make_layout())
    writer.append(*block(0, 2))
    del writer  # interrupted: never finalized
    assert not path.exists() and partial_path(path).exists()

    # A crash in the middle of the next block: data written, completion counter not bumped.
    with h5py.File(partial_path(path), "r+") as f:
        f["u"][2] = 99.0

    with TrajectoryWriter(path, make_layout()) as writer:
        assert writer.resumed and writer.n_done == 2
        writer.append(*block(2, 3))
        assert writer.finalize() == path
    assert not partial_path(path).exists()
    assert check_file(path) == []

    resumed, one_shot = h5_contents(path), h5_contents(valid_file)
    assert resumed.keys() == one_shot.keys()
    for key, expected in one_shot.items():
        if isinstance(expected, np.ndarray):
            assert resumed[key].dtype == expected.dtype and np.array_equal(resumed[key], expected), key
        else:
            assert resumed[key] == expected, key


def test_exception_inside_writer_keeps_partial(tmp_path: Path) -> None:
    path = tmp_path / "train.h5"
    with pytest.raises(RuntimeError), TrajectoryWriter(path, make_layout()) as writer:
        writer.append(*block(0, 1))
        raise RuntimeError("solver crashed")
    assert partial_path(path).exists() and not path.exists()
    assert TrajectoryWriter(path, make_layout()).n_done == 1


def test_resume_with_different_layout_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "train.h5"
    with TrajectoryWriter(path, make_layout()) as writer:
        writer.append(*block(0, 1))
    changed = make_layout(attrs={**make_layout().attrs, "generation_config": "pde: ks\npreset: other\n"})
    with pytest.raises(DatasetError, match="different configuration") as info:
        TrajectoryWriter(path, changed)
    assert "train.h5.partial" in str(info.value)
    assert partial_path(path).exists()  # never deleted silently
    with pytest.raises(DatasetError, match="different configuration"):
        TrajectoryWriter(path, make_layout(frame_interval=0.25))


def test_non_finite_data_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "train.h5"
    with TrajectoryWriter(path, make_layout()) as writer:
        writer.append(*block(0, 1))
        fields, params, seeds = block(1, 3)
        fields["v"] = fields["v"].copy()
        fields["v"][1, 3, 4] = np.nan
        with pytest.raises(DatasetError, match=r"field 'v' of trajectory 2 contains non-finite"):
            writer.append(fields, params, seeds)
        fields, params, seeds = block(1, 3)
        fields["u"] = fields["u"] * 1e300  # overflows float32
        with pytest.raises(DatasetError, match=r"field 'u' of trajectory 1"):
            writer.append(fields, params, seeds)
        fields, params, seeds = block(1, 3)
        params["nu"] = np.array([0.1, np.inf])
        with pytest.raises(DatasetError, match=r"parameter 'nu' of trajectory 2"):
            writer.append(fields, params, seeds)
        assert writer.n_done == 1  # nothing of the refused blocks counts


def test_append_checks_names_shapes_and_count(tmp_path: Path) -> None:
    path = tmp_path / "train.h5"
    with TrajectoryWriter(path, make_layout()) as writer:
        fields, params, seeds = block(0, 2)
        with pytest.raises(DatasetError, match="expects"):
            writer.append({"u": fields["u"]}, params, seeds)
        with pytest.raises(DatasetError, match=r"field 'u' has shape"):
            writer.append({**fields, "u": fields["u"][:, :-1]}, params, seeds)
        with pytest.raises(DatasetError, match="seeds must be integers"):
            writer.append(fields, params, seeds.astype(float))
        with pytest.raises(DatasetError, match="cannot finalize"):
            writer.finalize()
        writer.append(*block(0, 3))
        with pytest.raises(DatasetError, match="exceeds n_traj"):
            writer.append(*block(0, 1))


# --- checker ----------------------------------------------------------------------------------------
def test_checker_accepts_valid_file(valid_file: Path) -> None:
    assert check_file(valid_file) == []
    validate_file(valid_file)


def test_checker_rejects_truncated_file(copy_of) -> None:
    path = copy_of()
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(size // 2)
    problems = check_file(path)
    assert len(problems) == 1 and str(path) in problems[0] and "not a readable HDF5 file" in problems[0]
    with pytest.raises(DatasetError, match="truncated"):
        TrajectoryFile(path)


def test_checker_rejects_missing_variable(copy_of) -> None:
    path = copy_of()
    with h5py.File(path, "r+") as f:
        del f["nu"]
    problems = check_file(path)
    assert any(str(path) in p and "missing variable 'nu'" in p for p in problems), problems
    with pytest.raises(DatasetError, match="missing variable 'nu'"):
        validate_file(path)


def test_checker_rejects_wrong_dtype(copy_of) -> None:
    path = copy_of()
    with h5py.File(path, "r+") as f:
        data = f["u"][...].astype(np.float64)
        del f["u"]
        f.create_dataset("u", data=data)
    problems = check_file(path)
    assert any(str(path) in p and "field 'u' has dtype float64; expected float32" in p for p in problems), (
        problems
    )


def test_checker_rejects_wrong_schema_version_and_name(copy_of) -> None:
    path = copy_of()
    with h5py.File(path, "r+") as f:
        f.attrs["schema_version"] = "9.9"
    problems = check_file(path)
    assert (
        len(problems) == 1
        and str(path) in problems[0]
        and "schema_version '9.9' is not supported" in problems[0]
    )
    with h5py.File(path, "r+") as f:
        f.attrs["schema"] = "something-else"
    assert "expected 'pdebench-trajectories'" in check_file(path)[0]


def test_checker_compares_the_split_attribute_with_a_split_files_name(copy_of) -> None:
    """A train file copied to test.h5 would be scored as the test split; a file not named after a split is checked
    without the comparison."""
    assert check_file(copy_of("train.h5")) == [] and check_file(copy_of("copy.h5")) == []
    for name in ("test.h5", "valid.h5"):
        path = copy_of(name)
        assert check_file(path) == [
            f"{path}: root attribute 'split' is 'train', but the file is named {name}; expected "
            f"'{name.removesuffix('.h5')}' (a split file is named after its split: was it copied or renamed?)"
        ]


def test_checker_finds_nan_and_incomplete_file(copy_of) -> None:
    path = copy_of()
    with h5py.File(path, "r+") as f:
        f["v"][2, 1, 3] = np.inf
        f.attrs["n_traj_complete"] = np.array([2], dtype=np.int64)
    problems = check_file(path)
    assert any("field 'v' has non-finite values" in p and "indices 2" in p for p in problems), problems
    assert any("'n_traj_complete' is 2; expected 3" in p for p in problems), problems


_NOT_A_NAME = "expected 1 to 64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit"


@pytest.mark.parametrize(("attrs", "expected"), [
    ({"fields": None}, ["missing root attribute 'fields'"]),
    ({"fields": ""}, ["root attribute 'fields' lists no field; expected at least one"]),
    ({"parameters": None}, ["missing root attribute 'parameters'", "root attribute 'conditioning' names 'nu', 'dt'; "
                                                                  "expected parameters listed in 'parameters' (none)"]),
    ({"spatial_coordinates": None}, ["missing root attribute 'spatial_coordinates'",
                                     "field 'u' has 3 dimensions; expected 2 (traj, time)",
                                     "field 'v' has 3 dimensions; expected 2 (traj, time)"]),
    ({"spatial_dims": 2}, ["root attribute 'spatial_dims' is 2; expected 1 (the number of names in "
                           "'spatial_coordinates')"]),
    ({"split": "training"}, ["root attribute 'split' is 'training'; expected one of train, valid, test"]),
    ({"grid": "hexagonal"}, ["root attribute 'grid': grid kind 'hexagonal' is not one of periodic, box, sphere"]),
    ({"grid": "sphere"}, ["a sphere grid has spatial_coordinates 'lat,lon', got 'x'"]),
    ({"frame_interval": 0.0}, ["root attribute 'frame_interval' is 0.0; expected a positive number"]),
    ({"frame_interval": -np.inf}, ["root attribute 'frame_interval' is -inf; expected a positive number"]),
    ({"frame_interval": "fast"}, ["root attribute 'frame_interval' is 'fast'; expected a positive number"]),
    ({"pde": "k s"}, [f"root attribute 'pde' is 'k s', which is not a name: {_NOT_A_NAME}"]),
    ({"quadrature": "cell-area"}, ["root attribute 'quadrature' is 'cell-area'; expected 'uniform', the rule of this "
                                   "periodic grid's coordinates"]),
])
def test_checker_names_each_wrong_root_attribute_and_what_was_expected(copy_of, attrs: dict[str, object],
                                                                        expected: list[str]) -> None:
    """One damaged root attribute (None deletes it) gives exactly its sentences, each naming the file, the attribute
    and what was expected, and nothing about the attributes left intact."""
    path = copy_of()
    with h5py.File(path, "r+") as f:
        for name, value in attrs.items():
            if value is None:
                del f.attrs[name]
            else:
                f.attrs[name] = value
    assert check_file(path) == [f"{path}: {sentence}" for sentence in expected]


def _replace(f: h5py.File, name: str, data: np.ndarray) -> None:
    """Variable `name` of `f` rewritten to hold `data` (its attributes and dimension scales are lost)."""
    del f[name]
    f.create_dataset(name, data=data)


_SCALE_LOST = {axis: [f"field '{field}' has dims ({dims}); expected (traj, time, x)" for field in ("u", "v")]
               for axis, dims in (("traj", "?, time, x"), ("time", "traj, ?, x"), ("x", "traj, time, ?"))}


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda f: f["traj"].__setitem__(Ellipsis, [0, 1, 5]), ["coordinate 'traj' must hold 0..2"]),
    (lambda f: f.__delitem__("traj"), ["missing variable 'traj' (trajectory coordinate)", *_SCALE_LOST["traj"]]),
    (lambda f: f.__delitem__("time"), ["missing variable 'time' (frame coordinate)", *_SCALE_LOST["time"]]),
    (lambda f: _replace(f, "time", np.arange(N_FRAMES)[None]),
     ["coordinate 'time' has shape (1, 5); expected 1-D", "coordinate 'time' must have units 'frames'",
      *_SCALE_LOST["time"]]),
    (lambda f: _replace(f, "x", np.zeros((1, NX))),
     ["coordinate 'x' has shape (1, 8); expected 1-D", "coordinate 'x' has no 'units' attribute", *_SCALE_LOST["x"]]),
    (lambda f: f["x"].attrs.__delitem__("units"), ["coordinate 'x' has no 'units' attribute"]),
    (lambda f: _replace(f, "x", np.linspace(0.0, 2.0, NX - 1, endpoint=False)),
     ["coordinate 'x' has no 'units' attribute",
      _SCALE_LOST["x"][0], "field 'u' has length 8 along axis 2 (x); expected 7 (the length of coordinate 'x')",
      _SCALE_LOST["x"][1], "field 'v' has length 8 along axis 2 (x); expected 7 (the length of coordinate 'x')"]),
    (lambda f: f["u"].attrs.__delitem__("units"), ["field 'u' has no 'units' attribute"]),
    (lambda f: (f.__delitem__("u"), f["v"].attrs.__delitem__("boundary_conditions")),
     ["missing variable 'u' (field)", "field 'v' has no 'boundary_conditions' attribute"]),
    (lambda f: (f.__delitem__("nu"), f.create_group("nu")), ["'nu' (parameter) is a group; expected a variable"]),
    (lambda f: _replace(f, "seed", np.array([10, 11, 12], dtype=np.int32)),
     ["seed 'seed' has dtype int32; expected int64"]),
    (lambda f: _replace(f, "seed", np.array([10.0, np.nan, 12.0])), ["seed 'seed' has dtype float64; expected int64"]),
    (lambda f: _replace(f, "nu", np.array([[0.1], [0.2], [0.3]])),
     ["parameter 'nu' has shape (3, 1); expected (3,) along traj"]),
    (lambda f: (_replace(f, "nu", np.array([0.1, 0.2])), f["dt"].__setitem__(1, np.nan)),
     ["parameter 'nu' has shape (2,); expected (3,) along traj",
      "parameter 'dt' is non-finite for trajectories 1; expected finite values"]),
])
def test_checker_names_each_wrong_variable_and_what_was_expected(copy_of, edit, expected: list[str]) -> None:
    """One damaged coordinate, field, parameter or seed gives exactly its sentences (naming the file, the variable,
    its role and what was expected), and the variables after it are still checked."""
    path = copy_of()
    with h5py.File(path, "r+") as f:
        edit(f)
    assert check_file(path) == [f"{path}: {sentence}" for sentence in expected]


@pytest.mark.parametrize("latitude", [95.0, 90.5, np.nan])
def test_the_quadrature_rule_is_not_judged_on_latitudes_outside_the_sphere(tmp_path: Path, latitude: float) -> None:
    """Latitudes beyond the poles or non-finite have no rule to compare with; latitudes that reach the poles
    (-90..90) do: they are not Gauss-Legendre nodes, so the rule is cell-area."""
    path = write_sphere(tmp_path / "test.h5", GAUSSIAN_LATITUDES)
    with h5py.File(path, "r+") as f:
        f["lat"][0] = latitude
    assert not any("quadrature" in problem for problem in check_file(path)), check_file(path)
    with h5py.File(path, "r+") as f:
        f["lat"][...] = np.linspace(-90.0, 90.0, 6)
    assert check_file(path) == [f"{path}: root attribute 'quadrature' is 'gauss-legendre'; expected 'cell-area', the "
                                f"rule of this sphere grid's coordinates"]


def test_checker_names_a_fields_dimensions_by_the_scales_attached_to_them(copy_of) -> None:
    """The dims of a field are the names of the dimension scales attached to its axes (the last part of the scale's
    HDF5 path, as netCDF readers name a dimension), '?' for an axis with none."""
    path = copy_of()
    with h5py.File(path, "r+") as f:
        frames = f.create_group("extra").create_dataset("frames", data=np.arange(N_FRAMES))
        frames.make_scale("frames")
        f["u"].dims[1].detach_scale(f["time"])
        f["u"].dims[1].attach_scale(frames)
        f["v"].dims[2].detach_scale(f["x"])
    assert check_file(path) == [f"{path}: field 'u' has dims (traj, frames, x); expected (traj, time, x)",
                                f"{path}: field 'v' has dims (traj, time, ?); expected (traj, time, x)"]


def test_a_missing_spatial_coordinate_is_reported_once_and_leaves_the_quadrature_unchecked(copy_of) -> None:
    """Without coordinate 'x' the grid's rule cannot be derived: the checker says what is missing (and that the
    fields' axis lost its scale) instead of failing on the absent coordinate."""
    path = copy_of()
    with h5py.File(path, "r+") as f:
        del f["x"]
    assert check_file(path) == [f"{path}: missing variable 'x' (spatial coordinate)",
                                f"{path}: field 'u' has dims (traj, time, ?); expected (traj, time, x)",
                                f"{path}: field 'v' has dims (traj, time, ?); expected (traj, time, x)"]


def test_checker_compares_a_sphere_grids_axes_and_each_fields_dims_and_lengths(tmp_path: Path) -> None:
    """Sphere axes listed as 'lon,lat': the grid's axes, each field's dims and both swapped lengths are reported."""
    path = write_sphere(tmp_path / "test.h5", GAUSSIAN_LATITUDES)
    with h5py.File(path, "r+") as f:
        f.attrs["spatial_coordinates"] = "lon,lat"
    assert check_file(path) == [
        f"{path}: a sphere grid has spatial_coordinates 'lat,lon', got 'lon,lat'",
        f"{path}: field 'h' has dims (traj, time, lat, lon); expected (traj, time, lon, lat)",
        f"{path}: field 'h' has length 6 along axis 2 (lon); expected 8 (the length of coordinate 'lon')",
        f"{path}: field 'h' has length 8 along axis 3 (lat); expected 6 (the length of coordinate 'lat')",
    ]


def test_validate_file_joins_every_problem_into_one_sentence(copy_of) -> None:
    """`validate_file` refuses a file with every problem of the checker in one sentence: the count, the file, then
    each problem in order."""
    path = copy_of()
    with h5py.File(path, "r+") as f:
        del f["nu"], f["seed"]
    with pytest.raises(DatasetError) as info:
        validate_file(path)
    assert str(info.value) == (f"2 problem(s) in {path}: {path}: missing variable 'nu' (parameter); "
                               f"{path}: missing variable 'seed' (seed)")


def test_reader_rejects_bad_headers(copy_of, tmp_path: Path) -> None:
    path = copy_of()
    with h5py.File(path, "r+") as f:
        f.attrs["schema_version"] = "2.0"
    with pytest.raises(
        DatasetError, match=r"schema_version '2.0' is not supported .*supported: 1\.0"
    ) as info:
        TrajectoryFile(path)
    assert str(path) in str(info.value)
    with pytest.raises(DatasetError, match="does not exist"):
        TrajectoryFile(tmp_path / "nope.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all")
    with pytest.raises(DatasetError, match="not a readable HDF5 file"):
        TrajectoryFile(junk)


# --- the quadrature rule (1.3) -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("version", "added"),
    [("1.0", ()), ("1.2", ()), ("1.3", ("quadrature",)), ("1.4", ("quadrature", "conditioning"))],
)
def test_each_version_requires_the_root_attributes_it_introduced(version: str, added: tuple[str, ...]) -> None:
    """1.3 is the first to require `quadrature` and 1.4 the first to require `conditioning`, not the one after."""
    assert required_root_attrs(version) == (*REQUIRED_ROOT_ATTRS, *added)


def write_sphere(path: Path, latitudes: np.ndarray) -> Path:
    """One trajectory of two frames of a field `h` on a sphere grid with these latitudes and 8 longitudes."""
    layout = make_layout(
        path.stem, n_traj=1, n_frames=2, grid="sphere", parameters=(),
        coordinates=(Coordinate("lat", latitudes, "degrees_north"), Coordinate("lon", np.arange(8) * 45.0,
                                                                                 "degrees_east")),
        fields=(FieldSpec("h", "m", "sphere"),),
    )
    data = np.random.default_rng(3).standard_normal((1, 2, latitudes.size, 8))
    with TrajectoryWriter(path, layout) as writer:
        writer.append({"h": data}, {}, np.array([7], dtype=np.int64))
        return writer.finalize()


def as_older_version(path: Path, version: str = "1.2") -> Path:
    """What a writer of `version` (before 1.4) left: no conditioning attribute, and before 1.3 no quadrature
    attribute either (the data is the same)."""
    with h5py.File(path, "r+") as f:
        if version < "1.3":
            del f.attrs["quadrature"]
        del f.attrs["conditioning"]
        f.attrs["schema_version"] = version
    return path


GAUSSIAN_LATITUDES = Grid.gaussian(6, 8).coordinates[0]
EQUIANGULAR_LATITUDES = Grid.uniform("sphere", (6, 8)).coordinates[0]


@pytest.mark.parametrize(("latitudes", "rule"), [(GAUSSIAN_LATITUDES, "gauss-legendre"),
                                                 (EQUIANGULAR_LATITUDES, "cell-area")])
def test_files_record_their_grids_quadrature_rule(latitudes: np.ndarray, rule: str, tmp_path: Path,
                                                  valid_file: Path) -> None:
    path = write_sphere(tmp_path / "test.h5", latitudes)
    with TrajectoryFile(path) as tf:
        assert tf.attrs["schema_version"] == SCHEMA_VERSION == "1.4"
        assert tf.attrs["quadrature"] == tf.grid.quadrature == rule
    assert check_file(path) == []
    with TrajectoryFile(valid_file) as tf:
        assert tf.attrs["quadrature"] == tf.grid.quadrature == "uniform"


@pytest.mark.parametrize(("latitudes", "rule"), [(GAUSSIAN_LATITUDES, "gauss-legendre"),
                                                 (EQUIANGULAR_LATITUDES, "cell-area")])
def test_older_files_without_the_rule_get_the_rule_of_their_coordinates(latitudes: np.ndarray, rule: str,
                                                                        tmp_path: Path, copy_of) -> None:
    """A 1.2 file of a Gaussian grid (an older SWE dataset) is weighted by Gauss–Legendre, as a 1.3 file would be."""
    path = as_older_version(write_sphere(tmp_path / "test.h5", latitudes))
    with TrajectoryFile(path) as tf:
        assert "quadrature" not in tf.attrs and tf.grid.quadrature == rule
        np.testing.assert_array_equal(tf.grid.weights(), Grid("sphere", ("lat", "lon"), tf.grid.coordinates,
                                                              rule).weights())
    assert check_file(path) == []
    old_periodic = as_older_version(copy_of(), "1.1")
    with TrajectoryFile(old_periodic) as tf:
        assert tf.grid.quadrature == "uniform"


def test_a_missing_unknown_or_unfitting_rule_is_refused_by_name(tmp_path: Path) -> None:
    missing = write_sphere(tmp_path / "train.h5", GAUSSIAN_LATITUDES)
    with h5py.File(missing, "r+") as f:
        del f.attrs["quadrature"]
    with pytest.raises(DatasetError, match=r"missing root attribute\(s\) quadrature"):
        TrajectoryFile(missing)
    assert f"{missing}: missing root attribute 'quadrature'" in check_file(missing)
    unknown = write_sphere(tmp_path / "valid.h5", GAUSSIAN_LATITUDES)
    with h5py.File(unknown, "r+") as f:
        f.attrs["quadrature"] = "simpson"
    with pytest.raises(DatasetError, match="root attribute 'quadrature' is 'simpson'; expected one of uniform, "
                                           "gauss-legendre, cell-area"):
        TrajectoryFile(unknown)
    assert check_file(unknown) == [f"{unknown}: root attribute 'quadrature' is 'simpson'; expected one of uniform, "
                                   "gauss-legendre, cell-area"]
    unfitting = write_sphere(tmp_path / "test.h5", GAUSSIAN_LATITUDES)
    with h5py.File(unfitting, "r+") as f:
        f.attrs["quadrature"] = "cell-area"
    with TrajectoryFile(unfitting) as tf, pytest.raises(DatasetError) as info:
        _ = tf.grid
    assert str(info.value) == (f"{unfitting}: quadrature 'cell-area' does not fit this sphere grid, whose rule is "
                               f"'gauss-legendre' (one of uniform, gauss-legendre, cell-area; see pdebench.data.grid)")
    assert check_file(unfitting) == [f"{unfitting}: root attribute 'quadrature' is 'cell-area'; expected "
                                     f"'gauss-legendre', the rule of this sphere grid's coordinates"]


def test_dataset_dir_and_split_path_messages(dataset_dir: Path, tmp_path: Path) -> None:
    assert open_dataset_dir(dataset_dir.parent, "ks", "tiny") == dataset_dir
    assert split_path(dataset_dir, "valid") == dataset_dir / "valid.h5"
    with pytest.raises(DatasetError) as info:
        open_dataset_dir(tmp_path / "data", "ks", "small")
    assert str(info.value).startswith(
        f"dataset directory {tmp_path / 'data' / 'ks-small'} does not exist; "
        "generate it with `pdebench-generate pde=ks preset=small`"
    )
    with pytest.raises(
        DatasetError, match=r"test\.h5 does not exist; generate it with `pdebench-generate pde=ks"
    ):
        split_path(dataset_dir, "test")
    with pytest.raises(DatasetError, match="unknown split"):
        split_path(dataset_dir, "training")


# --- conditioning and record parameters (1.4) -----------------------------------------------------------------
# `jet` records what each trajectory's initial condition drew; `nu` and `dt` condition. The record sits between them,
# so that a reader that took the first or last P parameters, or all of them, would give other columns.
RECORD_PARAMETERS = (ParameterSpec("nu", "m^2/s", "viscosity"),
                     ParameterSpec("jet", "m/s", "drawn peak speed", conditioning=False),
                     ParameterSpec("dt", "s", "frame interval"))
JET = np.array([61.5, 74.25, 58.0])


def write_with_record(path: Path) -> Path:
    """The usual file with the record parameter `jet` (large values, far from nu and dt) between nu and dt."""
    with TrajectoryWriter(path, make_layout(path.stem, parameters=RECORD_PARAMETERS)) as writer:
        for lo, hi in ((0, 2), (2, 3)):
            fields, params, seeds = block(lo, hi)
            writer.append(fields, {**params, "jet": JET[lo:hi]}, seeds)
        return writer.finalize()


def as_conditioning(path: Path, names: str | None) -> Path:
    """Rewrite the root attribute `conditioning` (None: delete it)."""
    with h5py.File(path, "r+") as f:
        if names is None:
            del f.attrs["conditioning"]
        else:
            f.attrs["conditioning"] = names
    return path


def test_a_record_parameter_is_written_and_read_but_never_conditions(tmp_path: Path) -> None:
    from pdebench.data.dataset import trajectory_parameters
    from pdebench.data.normalization import compute_train_statistics

    path = write_with_record(tmp_path / "train.h5")
    _, params, _ = make_data()
    with h5py.File(path, "r") as f:
        assert f.attrs["parameters"] == "nu,jet,dt" and f.attrs["conditioning"] == "nu,dt"
        assert f["jet"].dtype == np.float64 and f["jet"].dims[0].keys() == ["traj"]
    assert check_file(path) == []
    with TrajectoryFile(path) as tf:
        assert tf.parameter_names == ("nu", "jet", "dt") and tf.conditioning_names == ("nu", "dt")
        got = tf.parameters()
        assert np.array_equal(got["jet"], JET) and np.array_equal(got["nu"], params["nu"])
        columns = trajectory_parameters(tf)
        stats = compute_train_statistics(tf)
    np.testing.assert_array_equal(columns, np.stack([params["nu"], params["dt"]], axis=1).astype(np.float32))
    np.testing.assert_allclose(stats["param_mean"], [params["nu"].mean(), params["dt"].mean()], rtol=1e-12)
    np.testing.assert_allclose(stats["param_std"], [params["nu"].std(), params["dt"].std()], rtol=1e-12)
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        assert ds.attrs["conditioning"] == "nu,dt" and np.array_equal(ds["jet"].values, JET)


def test_an_older_file_without_the_attribute_reads_as_all_conditioning(tmp_path: Path) -> None:
    from pdebench.data.dataset import trajectory_parameters

    path = as_older_version(write_with_record(tmp_path / "train.h5"), "1.3")
    assert check_file(path) == []
    with TrajectoryFile(path) as tf:
        assert "conditioning" not in tf.attrs and tf.conditioning_names == ("nu", "jet", "dt")
        _, params, _ = make_data()
        np.testing.assert_array_equal(trajectory_parameters(tf),
                                      np.stack([params["nu"], JET, params["dt"]], axis=1).astype(np.float32))


def test_a_missing_or_foreign_conditioning_list_is_refused_by_name(tmp_path: Path) -> None:
    missing = as_conditioning(write_with_record(tmp_path / "train.h5"), None)
    with pytest.raises(DatasetError, match=r"missing root attribute\(s\) conditioning"):
        TrajectoryFile(missing)
    assert f"{missing}: missing root attribute 'conditioning'" in check_file(missing)
    foreign = as_conditioning(write_with_record(tmp_path / "valid.h5"), "nu,Re")
    sentence = (f"{foreign}: root attribute 'conditioning' names 'Re'; expected parameters listed in 'parameters' "
                f"(nu, jet, dt)")
    with pytest.raises(DatasetError) as info:
        TrajectoryFile(foreign)
    assert str(info.value) == sentence and sentence in check_file(foreign)
    twice = as_conditioning(write_with_record(tmp_path / "test.h5"), "nu,nu")
    with pytest.raises(DatasetError, match="'conditioning' is 'nu,nu'; expected each parameter at most once"):
        TrajectoryFile(twice)
    empty = as_conditioning(write_with_record(tmp_path / "empty" / "train.h5"), "")
    with TrajectoryFile(empty) as tf:
        assert tf.conditioning_names == () and set(tf.parameters()) == {"nu", "jet", "dt"}


def test_the_manifest_records_conditioning_and_the_identity_tells_records_apart(tmp_path: Path) -> None:
    records = tmp_path / "records" / "ks-tiny"
    records.mkdir(parents=True)
    write_with_record(records / "train.h5")
    entry = read_manifest(write_manifest(records, {"pde": "ks"}).parent)["splits"]["train"]
    assert entry["parameters"] == ["nu", "jet", "dt"] and entry["conditioning"] == ["nu", "dt"]
    # The same arrays with every parameter conditioning are other content; with no attribute (an older file) they
    # hash as a 1.4 file listing every parameter, which means the same.
    recorded = content_sha256(records / "train.h5")
    all_listed = as_conditioning(shutil.copyfile(records / "train.h5", tmp_path / "all.h5"), "nu,jet,dt")
    older = as_older_version(shutil.copyfile(records / "train.h5", tmp_path / "older.h5"), "1.3")
    assert content_sha256(all_listed) == content_sha256(older) != recorded
    (records / "manifest.json").write_text(json.dumps({**read_manifest(records), "splits": {
        "train": {**entry, "conditioning": "nu,dt"}}}))
    with pytest.raises(DatasetError, match=r"'splits\.train\.conditioning' is 'nu,dt'; expected a list of parameter "
                                           "names"):
        read_manifest(records)


# --- manifest ---------------------------------------------------------------------------------------
def test_manifest_round_trip_and_hashes(dataset_dir: Path) -> None:
    config = {"pde": "ks", "preset": "tiny", "n_traj": {"train": 3, "valid": 3}}
    path = write_manifest(dataset_dir, config)
    manifest = read_manifest(dataset_dir)
    assert manifest["schema"] == SCHEMA_NAME and manifest["dataset"] == "ks-tiny"
    assert manifest["config"] == config and set(manifest["splits"]) == {"train", "valid"}
    entry = manifest["splits"]["train"]
    train_bytes = (dataset_dir / "train.h5").read_bytes()
    assert entry["file"] == "train.h5" and entry["bytes"] == len(train_bytes)
    assert entry["sha256"] == hashlib.sha256(train_bytes).hexdigest() == file_sha256(dataset_dir / "train.h5")
    assert (entry["n_traj"], entry["n_frames"]) == (N_TRAJ, N_FRAMES)
    assert entry["content_sha256"] == content_sha256(dataset_dir / "train.h5")
    assert json.loads(path.read_text()) == manifest
    # The identity is content + config, not the manifest's bytes: reformatting the manifest keeps it.
    identity = manifest_hash(dataset_dir)
    path.write_text(json.dumps({**manifest, "package_version": "other"}))
    assert manifest_hash(dataset_dir) == identity


@pytest.mark.parametrize(("variable", "index"), [
    ("u", (2, 4, 7)),  # the last value of the last trajectory's first field
    ("v", (1, 3, 0)),  # the second field: every field is hashed, not only the first
    ("x", (5,)),  # a coordinate
    ("dt", (2,)),  # the last parameter of the last trajectory
    ("seed", (0,)),
])
def test_content_hash_changes_when_one_stored_value_changes(copy_of, variable: str, index: tuple[int, ...]) -> None:
    """One value changed anywhere in what a split holds gives another content hash (and the same again when the
    value is put back): the hash reads every array, not only the first field or the first trajectory."""
    path = copy_of()
    before = content_sha256(path)
    with h5py.File(path, "r+") as f:
        original = f[variable][index]
        f[variable][index] = original + 1
    assert content_sha256(path) != before
    with h5py.File(path, "r+") as f:
        f[variable][index] = original
    assert content_sha256(path) == before


def test_content_hash_changes_with_the_frame_interval(copy_of) -> None:
    path = copy_of()
    before = content_sha256(path)
    with h5py.File(path, "r+") as f:
        f.attrs["frame_interval"] = 0.25
    assert content_sha256(path) != before


def test_dataset_identity_changes_with_the_config_and_with_each_splits_content(tmp_path: Path) -> None:
    """`manifest_hash` is the identity results and checkpoints record: another generation config, or other arrays
    in any one split (the manifest rewritten after the change), must give another identity."""
    ddir = tmp_path / "ks-tiny"
    ddir.mkdir()
    write_split(ddir / "train.h5")
    write_split(ddir / "valid.h5")
    config = {"pde": "ks", "preset": "tiny"}
    write_manifest(ddir, config)
    identity = manifest_hash(ddir)
    assert len(identity) == 64 and int(identity, 16) >= 0
    write_manifest(ddir, {**config, "preset": "small"})
    assert manifest_hash(ddir) != identity
    write_manifest(ddir, config)
    assert manifest_hash(ddir) == identity
    for split in ("train", "valid"):
        with h5py.File(ddir / f"{split}.h5", "r+") as f:
            f["u"][1, 2, 3] += 1.0
        write_manifest(ddir, config)
        changed = manifest_hash(ddir)
        assert changed != identity, split
        identity = changed


def test_manifest_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"manifest\.json does not exist"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(DatasetError, match=r"manifest\.json is not valid JSON"):
        read_manifest(tmp_path)
    with pytest.raises(DatasetError, match="no split file"):
        write_manifest(tmp_path, {})


# --- command line -----------------------------------------------------------------------------------
def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pdebench.data", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_cli_check_exit_codes_and_output(valid_file: Path, copy_of) -> None:
    bad = copy_of("bad.h5")
    with h5py.File(bad, "r+") as f:
        del f["seed"]
    ok = run_cli("check", str(valid_file))
    assert ok.returncode == 0, ok.stderr
    # the directory may hold a manifest (written by the manifest tests); it is verified on a line of its own
    assert ok.stdout.splitlines()[0] == f"{valid_file}: OK (n_traj=3, n_frames=5, fields=u,v)"
    mixed = run_cli("check", str(valid_file), str(bad))
    assert mixed.returncode == 1
    assert f"{valid_file}: OK" in mixed.stdout and f"{bad}: missing variable 'seed'" in mixed.stdout
    usage = run_cli("check")
    assert usage.returncode == 2 and "usage" in usage.stderr



_HEX = "0123456789abcdef" * 4
_SOURCE = {"path": "/data/the_well/file_0.hdf5", "bytes": 10, "sha256": _HEX}
_GONE = object()  # an edit that deletes the key
_ENTRY_KEYS = "'splits.train' must be an object with keys file, bytes, sha256, n_traj, n_frames"


def _edited(manifest: object, edits: list[tuple[tuple[str, ...], object]]) -> object:
    """`manifest` with each `(keys, value)` applied: the value at that key path set (or deleted); `()` replaces all."""
    for keys, value in edits:
        if not keys:
            manifest = value
            continue
        node = manifest
        for key in keys[:-1]:
            node = node[key]
        if value is _GONE:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
    return manifest


def _train(key: str, value: object) -> list[tuple[tuple[str, ...], object]]:
    return [(("splits", "train", key), value)]


@pytest.mark.parametrize(("edits", "problem"), [
    ([((), [1])], "must hold a JSON object"),
    ([(("schema_version",), _GONE), (("splits",), _GONE)], "lacks key(s) schema_version, splits"),
    ([(("schema",), "pdebench")], "has schema 'pdebench'; expected 'pdebench-trajectories'"),
    ([(("config",), ["ks"])], "has a 'config' that is not a JSON object"),
    ([(("splits",), [])], "'splits' must map each split to {file, bytes, sha256, n_traj, n_frames}"),
    ([(("splits", "training"), {}), (("splits", "val"), {})],
     "lists unknown split(s) 'training', 'val'; expected train, valid, test"),
    (_train("n_frames", _GONE), _ENTRY_KEYS),
    ([(("splits", "train"), "train.h5")], _ENTRY_KEYS),
    (_train("file", "valid.h5"), "'splits.train.file' is 'valid.h5'; expected 'train.h5'"),
    (_train("bytes", True), "'splits.train.bytes' is True; expected a non-negative integer"),
    (_train("bytes", -1), "'splits.train.bytes' is -1; expected a non-negative integer"),
    (_train("n_traj", 3.0), "'splits.train.n_traj' is 3.0; expected a non-negative integer"),
    (_train("n_frames", "5"), "'splits.train.n_frames' is '5'; expected a non-negative integer"),
    (_train("sha256", _HEX.upper()), f"'splits.train.sha256' is '{_HEX.upper()}'; expected 64 lowercase hex digits"),
    (_train("sha256", _HEX + "\n"), f"'splits.train.sha256' is '{_HEX}\\n'; expected 64 lowercase hex digits"),
    (_train("content_sha256", _HEX[:63]),
     f"'splits.train.content_sha256' is '{_HEX[:63]}'; expected 64 lowercase hex digits"),
    (_train("content_sha256", None), "'splits.train.content_sha256' is None; expected 64 lowercase hex digits"),
    (_train("parameters", ["nu", 1]), "'splits.train.parameters' is ['nu', 1]; expected a list of parameter names"),
    (_train("conditioning", {"nu": 1}),
     "'splits.train.conditioning' is {'nu': 1}; expected a list of parameter names"),
])
def test_a_manifest_that_is_not_what_generation_writes_is_refused_naming_what_is_wrong(
        tmp_path: Path, edits: list[tuple[tuple[str, ...], object]], problem: str) -> None:
    """Each check of `read_manifest`, one damage at a time: the sentence names the manifest, the key and what was
    expected, and the command that rewrites it."""
    ddir = tmp_path / "ks-tiny"
    ddir.mkdir()
    write_split(ddir / "train.h5")
    path = write_manifest(ddir, {"pde": "ks", "preset": "tiny"})
    path.write_text(json.dumps(_edited(json.loads(path.read_text()), edits)))
    with pytest.raises(DatasetError) as info:
        read_manifest(ddir)
    assert str(info.value) == (f"manifest {path} {problem}; rerun `pdebench-generate pde=ks preset=tiny` to rewrite it "
                               "(finished split files are checked and kept)")


@pytest.mark.parametrize("sources", [
    [_SOURCE, bad] for bad in ({**_SOURCE, "path": "the_well/file_0.hdf5"}, {**_SOURCE, "path": 7},
                               {**_SOURCE, "bytes": -1}, {**_SOURCE, "bytes": True}, {**_SOURCE, "bytes": 1.0},
                               {**_SOURCE, "sha256": _HEX[1:]}, {**_SOURCE, "sha256": 0},
                               {"path": _SOURCE["path"], "bytes": 10}, "file_0.hdf5")
] + [_SOURCE])
def test_an_imported_splits_sources_must_each_be_an_absolute_path_a_size_and_a_sha256(
        tmp_path: Path, sources: object) -> None:
    """One bad source among good ones is enough; the value is quoted as errors quote values (cut when long)."""

    ddir = tmp_path / "ks-tiny"
    ddir.mkdir()
    write_split(ddir / "train.h5")
    path = write_manifest(ddir, {"pde": "ks", "preset": "tiny"})
    path.write_text(json.dumps(_edited(json.loads(path.read_text()), _train("sources", sources))))
    with pytest.raises(DatasetError) as info:
        read_manifest(ddir)
    assert str(info.value) == (f"manifest {path} 'splits.train.sources' is {shown(sources)}; expected a list of "
                               "{path, bytes, sha256}; rerun `pdebench-generate pde=ks preset=tiny` to rewrite it "
                               "(finished split files are checked and kept)")


def test_a_manifest_with_well_formed_optional_entries_or_none_of_them_is_read(tmp_path: Path) -> None:
    """The keys added after schema 1.0 (content hash, parameters, conditioning, sources) are optional: well-formed
    ones (a source of 0 bytes included) pass, and so does an entry without them."""
    ddir = tmp_path / "ks-tiny"
    ddir.mkdir()
    write_split(ddir / "train.h5")
    path = write_manifest(ddir, {"pde": "ks", "preset": "tiny"})
    manifest = json.loads(path.read_text())
    entry = {"file": "test.h5", "bytes": 0, "sha256": _HEX, "n_traj": 0, "n_frames": 0}
    manifest["splits"] = {"test": entry, "train": {**manifest["splits"]["train"], "parameters": [],
                                                   "sources": [{**_SOURCE, "bytes": 0}, _SOURCE]}}
    path.write_text(json.dumps(manifest))
    assert read_manifest(ddir)["splits"] == manifest["splits"]


def _two_split_dataset(tmp_path: Path) -> Path:
    """`ks-tiny` with train and valid split files and their manifest (config pde=ks, preset=tiny)."""
    ddir = tmp_path / "ks-tiny"
    ddir.mkdir()
    write_split(ddir / "train.h5")
    write_split(ddir / "valid.h5")
    write_manifest(ddir, {"pde": "ks", "preset": "tiny"})
    return ddir


def _set_entry(ddir: Path, split: str, key: str, value: object) -> None:
    path = ddir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["splits"][split][key] = value
    path.write_text(json.dumps(manifest))


def test_the_checker_reports_every_disagreement_between_split_files_and_manifest(tmp_path: Path) -> None:
    """`manifest_problems`: one sentence per split, naming the file, the manifest and both values; the whole
    directory also reports a listed file that is gone and a file the manifest does not list."""

    ddir = _two_split_dataset(tmp_path)
    mpath, train, valid, test = (ddir / name for name in ("manifest.json", "train.h5", "valid.h5", "test.h5"))
    assert manifest_problems(ddir, ["train", "valid"], whole=True) == []
    write_split(test)  # a split file generated after the manifest
    valid_bytes = valid.stat().st_size
    valid.unlink()
    _set_entry(ddir, "train", "content_sha256", _HEX)
    content = content_sha256(train)
    assert manifest_problems(ddir, ["train"], whole=True) == [
        f"split file {train} has content_sha256 {content} but manifest {mpath} records {_HEX}",
        f"split file {valid} does not exist, but manifest {mpath} lists it",
        f"split file {test} is not listed in manifest {mpath}",
    ]
    assert manifest_problems(ddir, ["valid"], whole=False) == []  # a missing split is the reader's to name
    _set_entry(ddir, "train", "sha256", _HEX)
    assert manifest_problems(ddir, ["train"], whole=False) == [
        f"split file {train} has sha256 {file_sha256(train)} but manifest {mpath} records {_HEX}"]
    _set_entry(ddir, "train", "bytes", valid_bytes + 1)
    assert manifest_problems(ddir, ["train"], whole=False) == [
        f"split file {train} has {train.stat().st_size} bytes but manifest {mpath} records {valid_bytes + 1}"]
    mpath.write_text("[]")
    assert manifest_problems(ddir, ["train"], whole=False) == [
        f"manifest {mpath} must hold a JSON object; rerun `pdebench-generate pde=ks preset=tiny` to rewrite it "
        "(finished split files are checked and kept)"]


def test_a_split_file_of_another_pde_or_preset_than_its_manifest_is_refused(tmp_path: Path) -> None:
    """The hashes do not cover the `pde` and `preset` attributes that results copy: they are compared by name."""

    ddir = _two_split_dataset(tmp_path)
    assert verify_dataset(ddir) == ddir
    manifest = json.loads((ddir / "manifest.json").read_text())
    (ddir / "manifest.json").write_text(json.dumps({**manifest, "config": {"pde": "ks", "preset": "small"}}))
    sentence = (f"{ddir / 'train.h5'}: root attribute 'preset' is 'tiny'; expected 'small', the preset of manifest "
                f"{ddir / 'manifest.json'}; the file was changed or damaged after generation (or replaced by another "
                "one): regenerate the dataset with `pdebench-generate pde=ks preset=tiny overwrite=true`")
    with pytest.raises(DatasetError) as info:
        verify_dataset(ddir)
    assert str(info.value) == sentence
    assert manifest_problems(ddir, ["train"], whole=False) == [sentence]
    (ddir / "manifest.json").write_text(json.dumps({**manifest, "config": {"preset": "tiny"}}))
    assert verify_dataset(ddir, ["train"]) == ddir  # a key the config lacks is not compared


def test_verification_refuses_an_unlisted_split_and_names_the_readers_refusal_first(tmp_path: Path) -> None:

    ddir = _two_split_dataset(tmp_path)
    mpath = ddir / "manifest.json"
    write_split(ddir / "test.h5")
    with pytest.raises(DatasetError) as info:
        verify_dataset(ddir, ["test"])
    assert str(info.value) == (f"split file {ddir / 'test.h5'} is not listed in manifest {mpath}; rerun "
                               "`pdebench-generate pde=ks preset=tiny` to rewrite it (finished split files are "
                               "checked and kept)")
    train = ddir / "train.h5"
    recorded = train.stat().st_size
    train.write_bytes(train.read_bytes()[: recorded // 2])  # cut short: the reader refuses it as well
    with pytest.raises(DatasetError) as info:
        verify_dataset(ddir, ["train"])
    message = str(info.value)
    assert message.startswith(f"dataset file {train} is not a readable HDF5 ") and message.endswith(
        f"; besides, split file {train} has {recorded // 2} bytes but manifest {mpath} records {recorded}")


def test_the_identity_needs_every_splits_content_hash(tmp_path: Path) -> None:
    ddir = _two_split_dataset(tmp_path)
    manifest = json.loads((ddir / "manifest.json").read_text())
    del manifest["splits"]["valid"]["content_sha256"]
    (ddir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError) as info:
        manifest_hash(ddir)
    assert str(info.value) == (f"manifest {ddir / 'manifest.json'} records no content hash for split 'valid' (written "
                               "by an older pdebench); rerun `pdebench-generate pde=ks preset=tiny` to rewrite it "
                               "(finished split files are checked and kept)")


def test_a_config_that_is_not_plain_json_is_refused_before_a_manifest_is_written(tmp_path: Path) -> None:
    ddir = tmp_path / "ks-tiny"
    ddir.mkdir()
    write_split(ddir / "train.h5")
    for config in ({"pde": "ks", "nu": float("nan")}, {"pde": "ks", "seeds": {1, 2}}):
        with pytest.raises(DatasetError, match=r"^the config for .*manifest\.json is not plain JSON data: "):
            write_manifest(ddir, config)
        assert not (ddir / "manifest.json").exists()


def test_benchmark_facts_come_from_the_manifests_config_or_are_refused_by_name(tmp_path: Path) -> None:

    ddir = tmp_path / "ks-tiny"
    ddir.mkdir()
    write_split(ddir / "train.h5")
    facts = {"frame_stride": 4, "headline": "vrmse"}
    write_manifest(ddir, {"pde": "ks", "benchmark": facts})
    assert benchmark_facts(ddir) == facts
    for config in ({"pde": "ks"}, {"benchmark": ["frame_stride"]}, {"benchmark": {"frame_stride": "4"}}):
        write_manifest(ddir, config)
        with pytest.raises(DatasetError) as info:
            benchmark_facts(ddir)
        assert str(info.value) == (f"manifest {ddir / 'manifest.json'} records no benchmark facts "
                                   "(config.benchmark.frame_stride); rerun the generation command of ks-tiny to "
                                   "rewrite it (finished split files are kept)")


def test_the_check_command_prints_one_line_per_file_and_manifest_and_exits_by_the_worst(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m pdebench.data check` in this process: each split file once (given twice or through its directory),
    its directory's manifest compared where it has one (the whole directory when the directory is given), exit 1
    on any problem."""

    ddir = _two_split_dataset(tmp_path)
    train, valid, mpath = ddir / "train.h5", ddir / "valid.h5", ddir / "manifest.json"
    ok = "OK (n_traj=3, n_frames=5, fields=u,v)"
    assert main(["check", str(ddir), str(train)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{train}: {ok}", f"{valid}: {ok}",
                                                    f"{mpath}: OK (the split files match it)"]
    other = Path(shutil.copyfile(train, ddir / "other.h5"))  # no split name: compared with no manifest
    assert main(["check", str(train), str(other)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{train}: {ok}", f"{other}: {ok}",
                                                    f"{mpath}: OK (the split files match it)"]
    empty = tmp_path / "empty"
    empty.mkdir()
    valid.unlink()
    assert main(["check", str(empty), str(train)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{empty} holds no split file (train.h5, valid.h5, test.h5) and no manifest", f"{train}: {ok}",
        f"{mpath}: OK (the split files match it)"]
    assert main(["check", str(ddir)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{train}: {ok}", f"split file {valid} does not exist, but manifest {mpath} lists it"]
    lone = tmp_path / "lone" / "train.h5"
    lone.parent.mkdir()
    shutil.copyfile(train, lone)  # a split file whose directory has no manifest: the file alone
    assert main(["check", str(lone)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{lone}: {ok}"]


def test_the_check_command_compares_a_directory_of_split_files_without_a_manifest_and_one_with_only_a_manifest(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A directory with split files is checked against its manifest even when the manifest is missing, and a
    directory holding only its manifest is compared with it (not called empty)."""
    ddir = _two_split_dataset(tmp_path)
    train, valid, mpath = ddir / "train.h5", ddir / "valid.h5", ddir / "manifest.json"
    mpath.unlink()
    assert main(["check", str(ddir)]) == 1
    ok = "OK (n_traj=3, n_frames=5, fields=u,v)"
    assert capsys.readouterr().out.splitlines() == [
        f"{train}: {ok}", f"{valid}: {ok}", f"manifest {mpath} does not exist; rerun `pdebench-generate pde=ks "
                                            "preset=tiny` to rewrite it (finished split files are checked and kept)"]
    (tmp_path / "other").mkdir()
    only_manifest = _two_split_dataset(tmp_path / "other")
    (only_manifest / "train.h5").unlink()
    (only_manifest / "valid.h5").unlink()
    assert main(["check", str(only_manifest)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"split file {only_manifest / name} does not exist, but manifest {only_manifest / 'manifest.json'} lists it"
        for name in ("train.h5", "valid.h5")]


def test_the_check_command_reports_what_the_reader_refuses_in_a_file_the_checker_passed(
        copy_of, capsys: pytest.CaptureFixture[str]) -> None:
    """A file is called OK only when the reader opens it too: a boolean `frame_interval`, which the checker lets
    through as the number 1, is reported with the reader's sentence and exit status 1."""
    path = copy_of()
    with h5py.File(path, "r+") as f:
        f.attrs["frame_interval"] = True
    assert main(["check", str(path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{path}: root attribute 'frame_interval' is True; expected a positive number"]


def test_the_check_command_explains_its_usage(capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """No command or no PATH is a usage error (status 2) naming what is missing; --help describes the command
    and its PATH arguments."""
    monkeypatch.setenv("COLUMNS", "200")  # argparse wraps its help to the terminal's width
    for argv, missing in (([], "command"), (["check"], "PATH")):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert err.splitlines()[-1].endswith(f": error: the following arguments are required: {missing}"), err
    assert err.splitlines()[0] == "usage: python -m pdebench.data check [-h] PATH [PATH ...]"
    for argv, phrases in (
            (["--help"], ("usage: python -m pdebench.data [-h] {check}", "Inspect pdebench dataset files.",
                          "validate split files against the format (docs/data_format.md) and their manifest")),
            (["check", "--help"], ("usage: python -m pdebench.data check [-h] PATH [PATH ...]",
                                   "PATH split file(s) or dataset directories, e.g. data/ks-small/train.h5 or "
                                   "data/ks-small"))):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0
        text = " ".join(capsys.readouterr().out.split())
        for phrase in phrases:
            assert f" {phrase} " in f" {text} ", text
