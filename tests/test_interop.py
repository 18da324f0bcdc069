"""Import of The Well's and PDEArena/LPSDA's files (read in place) and export to The Well's layout.

The foreign files are written the way their own tools write them (tests/interop_files.py); the export is read back
with The Well's own `WellDataset`, never only by our code.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from cli import TINY_TRAIN, run_cli
from interop_files import ks_as_lpsda, write_lpsda_ks, write_well_file
from the_well.data import WellDataset
from the_well.utils.dummy_data import write_dummy_data

from pdebench.cli import export as export_command
from pdebench.cli import import_ as import_command
from pdebench.data.check import check_file
from pdebench.data.manifest import manifest_hash, manifest_problems, read_manifest, verify_dataset
from pdebench.data.reader import TrajectoryFile
from pdebench.data.schema import SOURCES_ATTR, DatasetError
from pdebench.errors import InvalidSetting
from pdebench.forecast.checkpoint import load_forecaster
from pdebench.interop.importer import import_dataset
from pdebench.interop.well_export import export_the_well
from pdebench.rollout.evaluation import evaluate

SPLITS = ("train", "valid", "test")


@pytest.fixture(scope="module")
def lpsda_dir(ks_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ks-tiny written as LPSDA's KS files (KS_train.h5, KS_valid.h5, KS_test.h5)."""
    return ks_as_lpsda(ks_tiny, tmp_path_factory.mktemp("lpsda"))


@pytest.fixture(scope="module")
def imported_root(lpsda_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root whose `ks-tiny` is the import of `lpsda_dir`."""
    root = tmp_path_factory.mktemp("imported")
    import_dataset("pdearena_ks", lpsda_dir, root, preset="tiny")
    return root


def _same_split(ours: Path, imported: Path) -> None:
    """The imported split holds our split's fields, parameters and grid exactly."""
    with TrajectoryFile(ours) as a, TrajectoryFile(imported) as b:
        assert (b.field_names, b.parameter_names, b.conditioning_names) == (a.field_names, a.parameter_names,
                                                                            a.conditioning_names)
        for name in a.field_names:
            np.testing.assert_array_equal(b.read_field(name, slice(None)), a.read_field(name, slice(None)))
        np.testing.assert_array_equal(b.read_window(1, 3, 11, 2), a.read_window(1, 3, 11, 2))
        for name, values in a.parameters().items():
            np.testing.assert_array_equal(b.parameters()[name], values, err_msg=name)
        assert b.grid == a.grid and b.grid_kind == a.grid_kind


# --- PDEArena / LPSDA KS ------------------------------------------------------------------------------------------
def test_an_lpsda_ks_directory_imports_in_place_with_our_ks_mapping(ks_tiny: Path, lpsda_dir: Path,
                                                                    imported_root: Path) -> None:
    dataset = imported_root / "ks-tiny"
    for split in SPLITS:
        _same_split(ks_tiny / f"{split}.h5", dataset / f"{split}.h5")
        assert check_file(dataset / f"{split}.h5") == []
        # read in place: the split file holds the header and parameters, not the field
        assert (dataset / f"{split}.h5").stat().st_size < (lpsda_dir / f"KS_{split}.h5").stat().st_size / 4
        with h5py.File(dataset / f"{split}.h5", "r") as f:
            assert f["u"].is_virtual
            assert json.loads(f.attrs[SOURCES_ATTR]) == [str((lpsda_dir / f"KS_{split}.h5").resolve())]
    manifest = read_manifest(dataset)
    assert manifest["config"]["imported"] == {"layout": "pdearena_ks", "path": str(lpsda_dir.resolve())}
    assert manifest["config"]["benchmark"] == read_manifest(ks_tiny)["config"]["benchmark"]
    (source,) = manifest["splits"]["test"]["sources"]
    assert source["path"] == str((lpsda_dir / "KS_test.h5").resolve())
    assert source["bytes"] == (lpsda_dir / "KS_test.h5").stat().st_size
    # the LPSDA frame interval is each file's mean dt (ours records the nominal 0.2 of dt_range [0.18, 0.22])
    with TrajectoryFile(dataset / "test.h5") as tf:
        assert tf.frame_interval == pytest.approx(tf.parameters()["dt"].mean(), rel=1e-15)


@pytest.mark.slow
def test_evaluate_on_the_imported_lpsda_copy_gives_the_metrics_of_our_own_file(
        compose_cfg, data_root: Path, imported_root: Path, lpsda_dir: Path, trained_checkpoint: Path,
        tmp_path: Path) -> None:
    def summary(root: Path) -> dict:
        cfg = compose_cfg("evaluate", [f"ckpt={trained_checkpoint}", f"data.root={root}",
                                       f"results_dir={tmp_path / root.name}", "rollout.device=cpu"])
        return evaluate(cfg, progress=False).content["summary"]

    ours, imported = summary(data_root), summary(imported_root)
    assert imported == ours
    # the metrics come from the foreign file: change one value of one test trajectory and they change
    changed = tmp_path / "changed"
    shutil.copytree(lpsda_dir, changed)
    with h5py.File(changed / "KS_test.h5", "r+") as f:
        f["test/pde_48-256"][2, 20:, 17] += 0.5
    other_root = tmp_path / "other"
    import_dataset("pdearena_ks", changed, other_root, preset="tiny")
    assert summary(other_root) != ours


@pytest.mark.slow
def test_training_runs_on_an_imported_dataset_unchanged(compose_cfg, imported_root: Path, tmp_path: Path) -> None:
    from pdebench.training.run import train

    cfg = compose_cfg("train", ["data=ks", "model=fno", *TINY_TRAIN, f"data.root={imported_root}",
                                f"run_dir={tmp_path / 'run'}"])
    record = load_forecaster(train(cfg)).record
    assert record["data"]["dataset"] == "ks-tiny"
    assert record["data"]["manifest_sha256"] == manifest_hash(imported_root / "ks-tiny")


def test_pdearena_viscosity_v_becomes_nu_and_several_files_of_a_split_join(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    folder = tmp_path / "ks"
    folder.mkdir()
    u1, u2 = rng.normal(size=(2, 5, 16)), rng.normal(size=(3, 5, 16))
    write_lpsda_ks(folder / "KS_train_a.h5", "train", u1, np.full(2, 0.25), np.full(2, 0.2), v=[0.7, 1.3])
    write_lpsda_ks(folder / "KS_train_b.h5", "train", u2, np.array([0.24, 0.26, 0.27]), np.array([0.19, 0.2, 0.21]),
                   v=[0.9, 1.1, 0.5])
    imported = import_dataset("pdearena_ks", folder, tmp_path / "data", preset="visc")
    assert imported.n_traj == {"train": 5}
    with TrajectoryFile(imported.directory / "train.h5") as tf:
        params = tf.parameters()
        np.testing.assert_array_equal(params["nu"], [0.7, 1.3, 0.9, 1.1, 0.5])
        np.testing.assert_allclose(params["L"], np.array([0.25, 0.25, 0.24, 0.26, 0.27]) * 16, rtol=1e-15)
        np.testing.assert_array_equal(tf.read_field("u", 3), u2[1].astype(np.float32))
        np.testing.assert_array_equal(tf.read_field("u", 1), u1[1].astype(np.float32))
        np.testing.assert_array_equal(tf.coordinate("x"), np.arange(16) / 16)


def _lpsda(folder: Path, **changes) -> Path:
    """One small LPSDA test file in `folder`, then `changes` applied: name -> new array (None deletes it)."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    path = write_lpsda_ks(folder / "KS_test.h5", "test", rng.normal(size=(2, 6, 8)), np.full(2, 0.5),
                          np.array([0.2, 0.3]))
    with h5py.File(path, "r+") as f:
        for name, value in changes.items():
            del f[f"test/{name}"]
            if value is not None:
                f[f"test/{name}"] = value
    return folder


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"dt": None}, "missing '/test/dt', which the LPSDA/PDEArena KS layout requires"),
        ({"t": np.array([[0, 0.2, 0.4, 0.6, 0.8, 1.0], [0, 0.3, 0.6, 0.9, 1.5, 1.8]])},
         "the time grid '/test/t' of trajectory 1 does not step by its dt = 0.3"),
        ({"x": np.tile(np.linspace(0, 4, 8), (2, 1))}, "'/test/x' of trajectory 0 is not i * dx"),
        ({"dx": np.array([0.5, -0.5])}, "'/test/dx' is -0.5 for trajectory 1; expected a positive number"),
        ({"pde_6-8": np.zeros((2, 6, 9))}, "'/test/pde_6-8' has shape (2, 6, 9); its name says 6 frames of 9"),
    ],
)
def test_a_bad_lpsda_file_is_one_sentence(tmp_path: Path, changes: dict, message: str) -> None:
    folder = _lpsda(tmp_path / "ks", **changes)
    with pytest.raises(DatasetError, match="^" + str(folder.resolve() / "KS_test.h5").replace(".", r"\.")) as info:
        import_dataset("pdearena_ks", folder, tmp_path / "data")
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "data").exists()  # nothing written for a refused import


def test_a_file_of_neither_layout_is_refused_by_both_importers(ks_tiny: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ours"
    (folder / "data" / "test").mkdir(parents=True)
    shutil.copy(ks_tiny / "test.h5", folder / "data" / "test" / "x.hdf5")
    with pytest.raises(DatasetError, match="is not a file of The Well: it has no group 'dimensions'"):
        import_dataset("the_well", folder, tmp_path / "data")
    with pytest.raises(DatasetError, match="is not a LPSDA/PDEArena KS file: it has no group 'train', 'valid', "
                                           "'test' \\(top level holds L, dt, dx"):
        import_dataset("pdearena_ks", folder / "data" / "test", tmp_path / "data")


# --- integrity of an imported dataset ------------------------------------------------------------------------------
def test_a_foreign_file_changed_after_the_import_stops_verification(lpsda_dir: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    shutil.copytree(lpsda_dir, foreign)
    dataset = import_dataset("pdearena_ks", foreign, tmp_path / "data", preset="tiny").directory
    verify_dataset(dataset)  # as imported: fine
    assert manifest_problems(dataset, SPLITS, whole=True) == []
    with h5py.File(foreign / "KS_valid.h5", "r+") as f:
        f["valid/pde_48-256"][0, 0, 0] = 7.0
    (problem,) = manifest_problems(dataset, SPLITS, whole=True)
    assert problem.startswith(f"foreign file {(foreign / 'KS_valid.h5').resolve()} of split file")
    with pytest.raises(DatasetError, match=r"foreign file .*KS_valid\.h5 of split file .*valid\.h5 has sha256 "
                                           r"[0-9a-f]{64} but manifest .* records [0-9a-f]{64}; it changed since it "
                                           r"was imported"):
        verify_dataset(dataset, ("valid",))
    verify_dataset(dataset, ("test",))  # other splits map other files
    (foreign / "KS_test.h5").unlink()
    with pytest.raises(DatasetError, match=r"foreign file .*KS_test\.h5 does not exist, but split file"):
        verify_dataset(dataset, ("test",))
    with pytest.raises(DatasetError, match=r"variable 'u' maps foreign file .*KS_test\.h5 does not exist; import"):
        TrajectoryFile(dataset / "test.h5").read_field("u", 0)


def test_a_manifest_with_malformed_sources_is_refused(imported_root: Path, tmp_path: Path) -> None:
    dataset = tmp_path / "ks-tiny"
    shutil.copytree(imported_root / "ks-tiny", dataset)
    manifest = json.loads((dataset / "manifest.json").read_text())
    manifest["splits"]["test"]["sources"][0]["path"] = "relative/KS_test.h5"
    (dataset / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match=r"'splits\.test\.sources' is .*relative/KS_test\.h5.*; expected a list of "
                                           r"\{path, bytes, sha256\}"):
        read_manifest(dataset)


def test_a_virtual_field_into_a_file_the_split_does_not_declare_is_still_refused(imported_root: Path,
                                                                                 tmp_path: Path) -> None:
    copy = tmp_path / "test.h5"
    shutil.copy(imported_root / "ks-tiny" / "test.h5", copy)
    with h5py.File(copy, "r+") as f:
        f.attrs[SOURCES_ATTR] = json.dumps([str(tmp_path / "elsewhere.h5")])
    with pytest.raises(DatasetError, match="variable 'u' is a virtual dataset mapping .*KS_test.h5:test/pde_48-256; "
                                           "a split file must hold its data itself"):
        TrajectoryFile(copy).read_field("u", 0)
    assert any("virtual dataset mapping" in problem for problem in check_file(copy))


def test_an_existing_dataset_directory_is_not_overwritten(lpsda_dir: Path, imported_root: Path) -> None:
    before = (imported_root / "ks-tiny" / "manifest.json").read_text()
    with pytest.raises(InvalidSetting, match="ks-tiny exists and is not empty; remove it or import under another"):
        import_dataset("pdearena_ks", lpsda_dir, imported_root, preset="tiny")
    assert (imported_root / "ks-tiny" / "manifest.json").read_text() == before


# --- The Well: import -----------------------------------------------------------------------------------------------
def test_the_wells_own_dummy_file_imports_with_vector_components_and_notes(tmp_path: Path) -> None:
    split_dir = tmp_path / "dummy" / "data" / "train"
    split_dir.mkdir(parents=True)
    write_dummy_data(str(split_dir / "dummy.hdf5"))
    imported = import_dataset("the_well", tmp_path / "dummy", tmp_path / "data")
    assert imported.directory.name == "dummy_dataset-well"
    assert any("'constant_field' is not mapped" in note for note in imported.notes)
    assert any("'time_varying_scalar' varies in time" in note for note in imported.notes)
    with h5py.File(split_dir / "dummy.hdf5", "r") as f, TrajectoryFile(imported.directory / "train.h5") as tf:
        vector = f["t1_fields/field"][...]
        assert tf.field_names == ("field_x", "field_y")
        np.testing.assert_array_equal(tf.read_field("field_x", 1), vector[1, ..., 0])
        np.testing.assert_array_equal(tf.read_field("field_y", 0), vector[0, ..., 1])
        params = tf.parameters()
        assert list(params) == ["a", "b"]
        np.testing.assert_array_equal(params["a"], [0.25, 0.25])
        np.testing.assert_array_equal(params["b"], [0.75, 0.75])
        assert tf.grid_kind == "periodic" and tf.coordinate_names == ("x", "y")
        np.testing.assert_array_equal(tf.coordinate("y"), f["dimensions/y"][...].astype(np.float64))
        assert tf.frame_interval == pytest.approx(1 / 9, rel=1e-6)


def _well_dataset(root: Path, n_files: int = 2) -> Path:
    """A Well dataset `root/data/{train,test}/` with a scalar, a vector and a tensor field on a 2-D box, files of two
    parameter sets (scalars Reynolds shared per file, Schmidt per trajectory)."""
    rng = np.random.default_rng(5)
    x, y = np.linspace(0, 1, 6, dtype=np.float32), np.linspace(0, 2, 5, dtype=np.float32)
    for split in ("train", "test"):
        folder = root / "data" / split
        folder.mkdir(parents=True)
        for k in range(n_files):
            write_well_file(folder / f"flow_Re{k}.hdf5", dataset_name="toy_flow", n_traj=2,
                            times=np.arange(7, dtype=np.float32) * np.float32(0.05), coords={"x": x, "y": y},
                            bcs={"x": "WALL", "y": "OPEN"},
                            fields=[{"pressure": rng.normal(size=(2, 7, 6, 5)).astype(np.float32)},
                                    {"velocity": rng.normal(size=(2, 7, 6, 5, 2)).astype(np.float32)},
                                    {"stress": rng.normal(size=(2, 7, 6, 5, 2, 2)).astype(np.float32)}],
                            scalars={"Reynolds": 100.0 * (k + 1), "Schmidt": np.array([0.5 + k, 2.0 + k])})
    return root


def test_a_well_dataset_maps_fields_components_scalars_and_a_box_grid(tmp_path: Path) -> None:
    well = _well_dataset(tmp_path / "toy")
    imported = import_dataset("the_well", well, tmp_path / "data", preset="p1")
    assert imported.n_traj == {"train": 4, "test": 4} and imported.notes == ()
    b_file = well / "data" / "test" / "flow_Re1.hdf5"
    with h5py.File(b_file, "r") as f, TrajectoryFile(imported.directory / "test.h5") as tf:
        assert tf.field_names == ("pressure", "velocity_x", "velocity_y", "stress_xx", "stress_xy", "stress_yx",
                                  "stress_yy")
        assert tf.grid_kind == "box" and tf.spatial_shape == (6, 5) and tf.n_frames == 7
        assert tf.attrs["fields"].startswith("pressure,velocity_x")
    with h5py.File(imported.directory / "test.h5", "r") as f:
        assert f["stress_yx"].attrs["boundary_conditions"] == "x wall, y open"
    with h5py.File(b_file, "r") as f, TrajectoryFile(imported.directory / "test.h5") as tf:
        # trajectory 3 is the second trajectory of the second file
        np.testing.assert_array_equal(tf.read_field("stress_xy", 3), f["t2_fields/stress"][1, ..., 0, 1])
        np.testing.assert_array_equal(tf.read_field("stress_yx", 2), f["t2_fields/stress"][0, ..., 1, 0])
        np.testing.assert_array_equal(tf.read_field("velocity_y", 3), f["t1_fields/velocity"][1, ..., 1])
        np.testing.assert_array_equal(tf.read_field("pressure", 2), f["t0_fields/pressure"][0])
        params = tf.parameters()
        np.testing.assert_array_equal(params["Reynolds"], [100, 100, 200, 200])
        np.testing.assert_array_equal(params["Schmidt"], [0.5, 2.0, 1.5, 3.0])
        assert tf.frame_interval == pytest.approx(0.05, rel=1e-6) and "dt" not in tf.parameter_names
        assert json.loads(tf.attrs[SOURCES_ATTR]) == [str(p.resolve()) for p in sorted(b_file.parent.iterdir())]
    verify_dataset(imported.directory)
    assert check_file(imported.directory / "train.h5") == []


def test_an_equiangular_theta_phi_grid_becomes_our_sphere_in_degrees(tmp_path: Path) -> None:
    theta = (np.arange(4) + 0.5) * np.pi / 4
    phi = np.arange(8) * 2 * np.pi / 8
    folder = tmp_path / "planet" / "data" / "valid"
    folder.mkdir(parents=True)
    write_well_file(folder / "planet.hdf5", dataset_name="planetswe", n_traj=1, grid_type="equiangular",
                    times=np.arange(3, dtype=np.float32), coords={"theta": theta, "phi": phi},
                    bcs={"theta": "OPEN", "phi": "PERIODIC"},
                    fields=[{"height": np.ones((1, 3, 4, 8), np.float32)}], scalars={})
    imported = import_dataset("the_well", tmp_path / "planet", tmp_path / "data")
    with TrajectoryFile(imported.directory / "valid.h5") as tf:
        assert tf.grid_kind == "sphere" and tf.coordinate_names == ("lat", "lon")
        np.testing.assert_allclose(tf.coordinate("lat"), [67.5, 22.5, -22.5, -67.5], atol=1e-12)
        np.testing.assert_allclose(tf.coordinate("lon"), np.arange(8) * 45.0, atol=1e-12)
        assert tf.grid.periodic == (False, True)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f["boundary_conditions/x_wall"].attrs.__setitem__("bc_type", "PERIODIC"),
         "boundary conditions mix periodic and non-periodic axes (x periodic, y not periodic)"),
        (lambda f: f["scalars"].attrs.__setitem__("field_names", ["Reynolds", "Schmidt", "Prandtl"]),
         "scalars.field_names lists 'Prandtl', but scalars has no such array (missing scalar)"),
        (lambda f: f["dimensions/time"].__setitem__(4, 0.3),
         "the time grid of trajectory 0 is not uniform and increasing"),
        (lambda f: f["t1_fields/velocity"].attrs.__setitem__("sample_varying", "yes"),
         "attribute 'sample_varying' of '/t1_fields/velocity' is 'yes'; expected a boolean"),
    ],
)
def test_a_bad_well_file_is_one_sentence(tmp_path: Path, change, message: str) -> None:
    well = _well_dataset(tmp_path / "toy", n_files=1)
    bad = well / "data" / "test" / "flow_Re0.hdf5"
    with h5py.File(bad, "r+") as f:
        change(f)
    with pytest.raises(DatasetError) as info:
        import_dataset("the_well", well, tmp_path / "data")
    assert str(info.value).startswith(f"{bad.resolve()}: ") and message in str(info.value)
    assert "\n" not in str(info.value)


def test_well_files_that_step_differently_get_a_per_trajectory_dt(tmp_path: Path) -> None:
    well = _well_dataset(tmp_path / "toy")
    with h5py.File(well / "data" / "train" / "flow_Re1.hdf5", "r+") as f:
        f["dimensions/time"][...] = np.arange(7) * 0.1
    imported = import_dataset("the_well", well, tmp_path / "data")
    with TrajectoryFile(imported.directory / "train.h5") as tf, \
            TrajectoryFile(imported.directory / "test.h5") as test:
        np.testing.assert_allclose(tf.parameters()["dt"], [0.05, 0.05, 0.1, 0.1], rtol=1e-6)
        np.testing.assert_allclose(tf.frame_times(2), np.arange(7) * 0.1, rtol=1e-6)
        assert test.parameter_names == tf.parameter_names  # every split has the same parameters


def test_well_files_with_other_frame_counts_or_names_are_refused(tmp_path: Path) -> None:
    well = _well_dataset(tmp_path / "toy")
    longer = well / "data" / "train" / "flow_Re1.hdf5"
    x, y = np.linspace(0, 1, 6, dtype=np.float32), np.linspace(0, 2, 5, dtype=np.float32)
    write_well_file(longer, dataset_name="toy_flow", n_traj=2, times=np.arange(9, dtype=np.float32) * 0.05,
                    coords={"x": x, "y": y}, bcs={"x": "WALL", "y": "OPEN"},
                    fields=[{"pressure": np.zeros((2, 9, 6, 5), np.float32)},
                            {"velocity": np.zeros((2, 9, 6, 5, 2), np.float32)},
                            {"stress": np.zeros((2, 9, 6, 5, 2, 2), np.float32)}],
                    scalars={"Reynolds": 200.0, "Schmidt": np.array([1.5, 3.0])})
    with pytest.raises(DatasetError, match=f"^{longer.resolve()} has 9 time steps, .*flow_Re0.hdf5 has 7; "
                                           f"inconsistent time grids"):
        import_dataset("the_well", well, tmp_path / "data")
    with h5py.File(longer, "r+") as f:
        f.attrs["dataset_name"] = "other_flow"
    with pytest.raises(DatasetError, match="flow_Re1.hdf5 and .*flow_Re0.hdf5 disagree on the dataset name, grid, "
                                           "fields or scalars; the files of one dataset share them"):
        import_dataset("the_well", well, tmp_path / "data")
    assert not (tmp_path / "data").exists()


# --- The Well: export -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def exported(ks_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("well") / "ks-tiny"
    export_the_well(ks_tiny, out, progress=False)
    return out


def test_the_wells_own_reader_loads_the_export(ks_tiny: Path, exported: Path) -> None:
    dataset = WellDataset(path=str(exported), well_split_name="valid", n_steps_input=2, n_steps_output=3)
    with TrajectoryFile(ks_tiny / "valid.h5") as tf:
        assert dataset.metadata.dataset_name == "ks" and dataset.metadata.n_spatial_dims == 1
        assert dataset.metadata.field_names[0] == ["u"] and dataset.metadata.constant_scalar_names == list(
            tf.parameter_names)
        assert dataset.metadata.boundary_condition_types == ["PERIODIC"]
        windows = tf.n_frames - 5 + 1
        assert len(dataset) == tf.n_traj * windows
        index = 2 * windows + 7  # trajectory 2, first input frame 7
        sample = dataset[index]
        u = tf.read_field("u", 2)
        np.testing.assert_array_equal(sample["input_fields"][..., 0].numpy(), u[7:9])
        np.testing.assert_array_equal(sample["output_fields"][..., 0].numpy(), u[9:12])
        params = tf.parameters()
        np.testing.assert_allclose(sample["constant_scalars"].numpy(), [params[n][2] for n in tf.parameter_names],
                                   rtol=1e-6)
        np.testing.assert_allclose(sample["space_grid"][..., 0].numpy(), tf.coordinate("x"), rtol=1e-7)
        np.testing.assert_allclose(sample["output_time_grid"].numpy(), np.arange(2, 5) * params["dt"][2], rtol=1e-6)
        assert sample["boundary_conditions"].tolist() == [[2, 2]]  # PERIODIC at both ends


def test_ours_to_the_well_and_back_gives_identical_arrays_parameters_and_grid(ks_tiny: Path, exported: Path,
                                                                             tmp_path: Path) -> None:
    imported = import_dataset("the_well", exported, tmp_path / "data", preset="tiny")
    assert imported.directory.name == "ks-tiny" and imported.notes == ()
    for split in SPLITS:
        _same_split(ks_tiny / f"{split}.h5", imported.directory / f"{split}.h5")
        with TrajectoryFile(ks_tiny / f"{split}.h5") as a, TrajectoryFile(imported.directory / f"{split}.h5") as b:
            assert b.frame_interval == a.frame_interval and b.n_frames == a.n_frames
            np.testing.assert_array_equal(b.frame_times(3), a.frame_times(3))


def test_export_of_a_box_dataset_marks_walls(tmp_path: Path) -> None:
    well = _well_dataset(tmp_path / "toy", n_files=1)
    dataset = import_dataset("the_well", well, tmp_path / "data").directory
    export_the_well(dataset, tmp_path / "again", progress=False)
    back = WellDataset(path=str(tmp_path / "again"), well_split_name="test", n_steps_input=1, n_steps_output=1)
    assert back.metadata.boundary_condition_types == ["WALL"]
    assert back.metadata.field_names[0] == ["pressure", "velocity_x", "velocity_y", "stress_xx", "stress_xy",
                                            "stress_yx", "stress_yy"]
    assert back[0]["boundary_conditions"].tolist() == [[0, 0], [0, 0]]


# --- the commands ---------------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.subprocess
def test_the_commands_import_and_export_and_say_bad_input_in_one_line(lpsda_dir: Path, ks_tiny: Path,
                                                                      tmp_path: Path) -> None:
    done = run_cli("import", "pdearena_ks", str(lpsda_dir), "--root", str(tmp_path / "data"), "--preset", "cli",
                   cwd=tmp_path)
    assert "as " + str(tmp_path / "data" / "ks-cli") in done.stdout and "test 4" in done.stdout
    verify_dataset(tmp_path / "data" / "ks-cli")
    done = run_cli("export", "the_well", str(ks_tiny), str(tmp_path / "out"), "--no-progress", cwd=tmp_path)
    assert (tmp_path / "out" / "data" / "test" / "ks-tiny.hdf5").is_file() and "wrote" in done.stdout
    bad = run_cli("import", "the_well", str(lpsda_dir), cwd=tmp_path, check=False)
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: ") and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    assert "is not a dataset directory of The Well" in bad.stderr
    bad = run_cli("export", "the_well", str(tmp_path / "nothing"), str(tmp_path / "out2"), cwd=tmp_path, check=False)
    assert bad.returncode == 1 and bad.stderr.startswith("error: ") and bad.stderr.count("\n") == 1


def test_the_command_mains_print_bad_input_as_one_error_line(lpsda_dir: Path, tmp_path: Path, capsys) -> None:
    import_command.main(["pdearena_ks", str(lpsda_dir), "--root", str(tmp_path / "data"), "--preset", "main"])
    assert f"as {tmp_path / 'data' / 'ks-main'} (trajectories: train 8, valid 4, test 4)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        import_command.main(["pdearena_ks", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and err.count("\n") == 1
    assert err.startswith(f"error: LPSDA/PDEArena KS directory {tmp_path / 'nowhere'} does not exist")
    export_command.main(["the_well", str(tmp_path / "data" / "ks-main"), str(tmp_path / "out"), "--no-progress"])
    assert "ks-main.hdf5" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        export_command.main(["the_well", str(tmp_path / "nothing"), str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and err.startswith("error: manifest ") and err.count("\n") == 1
