"""Hostile split files: truncated, flipped bytes in field data and in metadata, deleted variables, a wrong dtype or
shape, NaN/inf written into a finished file, a directory where a split file should be. Every read path must stop
with one sentence naming the file and what is wrong; none may change a number silently.

Matrix rows are `(damage, command, expected fragments)` (see matrix.py). Each damage hits all three splits, so every
command meets it in the first split it reads (check: all three; train: train.h5; evaluate: test.h5).

The manifest records every split's size and sha256, and train and evaluate verify them before reading (other rows
cover that). These rows test what the split files themselves guarantee, so each damage re-records the damaged files
in the manifest (`_rerecord_manifest`), as if the damage had happened before the manifest was written: a bad disk or
RAM during generation, or a manifest rewritten over a damaged file. Only the reader and the checker can catch it then.

Below the matrix, focused tests of the reader (`TrajectoryFile`), the checker and the statistics.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr
from matrix import assert_one_sentence, dataset_dir, run_command
from torch.utils.data import DataLoader

from pdebench.data import check as check_module
from pdebench.data.batch import collate
from pdebench.data.check import check_file
from pdebench.data.dataset import TrajectoryDataset, WindowDataset, WindowSpec
from pdebench.data.manifest import file_sha256
from pdebench.data.normalization import compute_train_statistics
from pdebench.data.reader import HDF5_ERRORS, TrajectoryFile, hdf5_reason, open_h5, split_path
from pdebench.data.schema import SPLITS, DatasetError

CHECKSUM = "a chunk failed its checksum"
DAMAGED = "the file is damaged"
NAN_U = "field 'u' holds a non-finite value (NaN or inf) in trajectory"


# --- damage -------------------------------------------------------------------------------------------------------
def _splits(work: Path) -> list[Path]:
    return [dataset_dir(work) / f"{split}.h5" for split in SPLITS]


def _rerecord_manifest(work: Path) -> None:
    """Record the current size and sha256 of every split file in the manifest (see the module docstring)."""
    path = dataset_dir(work) / "manifest.json"
    manifest = json.loads(path.read_text())
    for entry in manifest["splits"].values():
        split_file = dataset_dir(work) / entry["file"]
        if split_file.is_file():
            entry["bytes"] = split_file.stat().st_size
            entry["sha256"] = file_sha256(split_file)
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _each_split(edit: Callable[[Path], None]) -> Callable[[Path], None]:
    """A damage that applies `edit` to every split file, then re-records them in the manifest."""

    def damage(work: Path) -> None:
        for path in _splits(work):
            edit(path)
        _rerecord_manifest(work)

    damage.__name__ = edit.__name__
    return damage


def _flip(path: Path, offset: int) -> None:
    """Invert one byte of a file in place."""
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)[0]
        fh.seek(offset)
        fh.write(bytes([byte ^ 0xFF]))


@_each_split
def truncated(path: Path) -> None:
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size // 2)


@_each_split
def flipped_field_bytes(path: Path) -> None:
    """Flip bytes in the middle of the chunk holding trajectory 1 of field u (located through HDF5's chunk index,
    so the damage is deterministic); the Fletcher-32 checksum of that chunk no longer matches."""
    with h5py.File(path, "r") as f:
        chunk = f["u"].id.get_chunk_info_by_coord((1, 0, 0))
    for k in range(4):
        _flip(path, chunk.byte_offset + chunk.size // 2 + k)


@_each_split
def flipped_superblock(path: Path) -> None:
    """Flip the byte of the superblock that holds its flags: HDF5 refuses to open the file."""
    _flip(path, 20)


@_each_split
def flipped_field_header(path: Path) -> None:
    """Flip a byte inside the object header of field u: its metadata checksum no longer matches."""
    with h5py.File(path, "r") as f:
        header = h5py.h5o.get_info(f["u"].id).addr
    _flip(path, header + 20)


@_each_split
def deleted_field(path: Path) -> None:
    with h5py.File(path, "r+") as f:
        del f["u"]


@_each_split
def deleted_parameter(path: Path) -> None:
    with h5py.File(path, "r+") as f:
        del f["nu"]


@_each_split
def float64_field(path: Path) -> None:
    with h5py.File(path, "r+") as f:
        data = f["u"][...].astype(np.float64)
        del f["u"]
        f.create_dataset("u", data=data)


@_each_split
def short_field(path: Path) -> None:
    """Field u loses its last frame (shape [n_traj, n_frames - 1, nx])."""
    with h5py.File(path, "r+") as f:
        data = f["u"][:, :-1]
        del f["u"]
        f.create_dataset("u", data=data, fletcher32=True)


@_each_split
def nan_in_field(path: Path) -> None:
    """NaN at trajectory 1, frame 4 (a frame evaluation reads: its model step is 4 stored frames)."""
    with h5py.File(path, "r+") as f:
        f["u"][1, 4, 7] = np.nan


@_each_split
def inf_in_field(path: Path) -> None:
    with h5py.File(path, "r+") as f:
        f["u"][2, 8, 0] = -np.inf


@_each_split
def nan_in_parameter(path: Path) -> None:
    with h5py.File(path, "r+") as f:
        f["nu"][2] = np.nan


def nan_in_valid_field(work: Path) -> None:
    """NaN in the validation split only: training reads it in its validation loop, through DataLoader workers."""
    with h5py.File(dataset_dir(work) / "valid.h5", "r+") as f:
        f["u"][0, 4, 3] = np.nan
    _rerecord_manifest(work)


def directory_for_split(work: Path) -> None:
    """Each split file replaced by an (empty) directory of the same name."""
    for path in _splits(work):
        path.unlink()
        path.mkdir()


def _read(split: str, what: str) -> tuple[str, ...]:
    """Fragments of the reader's sentence: the file, then what it says."""
    return (f"{split}.h5: {what}",)


ROWS = [
    (truncated, "check", ("train.h5 is not a readable HDF5 file", "truncated")),
    (truncated, "train", ("train.h5 is not a readable HDF5 file", "truncated")),
    (truncated, "evaluate", ("test.h5 is not a readable HDF5 file", "truncated")),
    (flipped_field_bytes, "check",
     ("train.h5: field 'u' cannot be read in 1 trajectories (indices 1)", "test.h5: field 'u'", "checksum")),
    (flipped_field_bytes, "train", _read("train", "variable 'u' of trajectory 1 cannot be read") + (CHECKSUM,)),
    (flipped_field_bytes, "evaluate", _read("test", "variable 'u' of trajectory 1 cannot be read") + (CHECKSUM,)),
    (flipped_field_bytes, "generate", _read("train", "variable 'u' of trajectory 1 cannot be read") + (CHECKSUM,)),
    (flipped_superblock, "check", ("train.h5 is not a readable HDF5 file", "bad flag value for superblock")),
    (flipped_superblock, "train", ("train.h5 is not a readable HDF5 file", "bad flag value for superblock")),
    (flipped_superblock, "evaluate", ("test.h5 is not a readable HDF5 file", "bad flag value for superblock")),
    (flipped_field_header, "check", ("train.h5: field 'u' cannot be opened", "incorrect metadata checksum", DAMAGED)),
    (flipped_field_header, "train", _read("train", "variable 'u' cannot be read") + ("metadata checksum", DAMAGED)),
    (flipped_field_header, "evaluate", _read("test", "variable 'u' cannot be read") + ("metadata checksum", DAMAGED)),
    (deleted_field, "check", ("train.h5: missing variable 'u' (field)", "test.h5: missing variable 'u'")),
    (deleted_field, "train", _read("train", "missing variable(s) u")),
    (deleted_field, "evaluate", _read("test", "missing variable(s) u")),
    (deleted_parameter, "check", ("train.h5: missing variable 'nu' (parameter)",)),
    (deleted_parameter, "train", _read("train", "missing variable(s) nu")),
    (deleted_parameter, "evaluate", _read("test", "missing variable(s) nu")),
    (float64_field, "check", ("train.h5: field 'u' has dtype float64; expected float32",)),
    (float64_field, "train", _read("train", "field 'u' has dtype float64; expected float32")),
    (float64_field, "evaluate", _read("test", "field 'u' has dtype float64; expected float32")),
    (short_field, "check", ("train.h5: field 'u' has length 31 along axis 1 (time); expected 32",)),
    (short_field, "train", _read("train", "field 'u' has shape (8, 31, 256); expected (8, 32, 256)")),
    (short_field, "evaluate", _read("test", "field 'u' has shape (4, 47, 256); expected (4, 48, 256)")),
    (nan_in_field, "check", ("train.h5: field 'u' has non-finite values (NaN or inf) in 1 trajectories (indices 1)",)),
    (nan_in_field, "train", _read("train", f"{NAN_U} 1, frame 4")),
    (nan_in_field, "evaluate", _read("test", f"{NAN_U} 1, frame 4")),
    (nan_in_field, "generate", _read("train", f"{NAN_U} 1, frame 4")),
    (inf_in_field, "check", ("test.h5: field 'u' has non-finite values (NaN or inf) in 1 trajectories (indices 2)",)),
    (inf_in_field, "train", _read("train", f"{NAN_U} 2, frame 8")),
    (inf_in_field, "evaluate", _read("test", f"{NAN_U} 2, frame 8")),
    (nan_in_valid_field, "train data.num_workers=2", _read("valid", f"{NAN_U} 0, frame 4")),
    (nan_in_parameter, "check", ("valid.h5: parameter 'nu' is non-finite for trajectories 2",)),
    (nan_in_parameter, "train", _read("train", "parameter 'nu' is non-finite (NaN or inf) for trajectory 2")),
    (nan_in_parameter, "evaluate", _read("test", "parameter 'nu' is non-finite (NaN or inf) for trajectory 2")),
    (directory_for_split, "check", ("train.h5 is a directory, not a file",)),
    (directory_for_split, "train", ("train.h5 is a directory, not a file", "pdebench-generate pde=ks preset=tiny")),
    (directory_for_split, "evaluate", ("test.h5 is a directory, not a file", "pdebench-generate pde=ks preset=tiny")),
]


@pytest.mark.parametrize(
    ("damage", "command", "fragments"), ROWS, ids=lambda v: getattr(v, "__name__", None) if callable(v) else None
)
def test_damaged_file_stops_the_command(work: Path, damage, command: str, fragments: tuple[str, ...]) -> None:
    damage(work)
    name, *overrides = command.split()
    assert_one_sentence(run_command(name, work, *overrides), *fragments)


# --- reader -------------------------------------------------------------------------------------------------------
def test_loader_workers_report_one_sentence(work: Path) -> None:
    """torch re-raises a worker's exception with the worker's stack trace as its message; the dataset's error
    class takes the reader's sentence back out."""
    path = dataset_dir(work) / "train.h5"
    with h5py.File(path, "r+") as f:
        f["u"][6, 2, 0] = np.inf
    windows = WindowDataset(path, WindowSpec(history=2, bundle=1, frame_stride=1))
    loader = DataLoader(windows, batch_size=4, num_workers=1, collate_fn=collate)
    with pytest.raises(DatasetError) as info:
        list(loader)
    assert str(info.value) == (
        f"{path}: {NAN_U} 6, frame 2; expected finite values (the file was altered after it was written: "
        f"regenerate or restore it)"
    )
    # The exception's traceback holds the loader's iterator and this frame holds the exception: without this `del`
    # the iterator waits for the garbage collector, which may finalise its queues first and leave the worker to time
    # out (5 s) in whichever test collects it.
    del info
    rollouts = TrajectoryDataset(path, frame_stride=2)
    with pytest.raises(DatasetError, match="^" + re.escape(f"{path}: {NAN_U} 6, frame 2;")):
        list(DataLoader(rollouts, batch_size=2, num_workers=1, collate_fn=collate))


@pytest.fixture()
def train_file(work: Path) -> Path:
    return dataset_dir(work) / "train.h5"


def _message(call: Callable[[], object]) -> str:
    with pytest.raises(DatasetError) as info:
        call()
    return str(info.value)


def test_every_read_path_names_the_nonfinite_value(train_file: Path) -> None:
    with h5py.File(train_file, "r+") as f:
        f["u"][3, 9, 5] = np.nan
        f["x"][4] = np.inf
    with TrajectoryFile(train_file) as tf:
        where = f"{train_file}: field 'u' holds a non-finite value (NaN or inf) in trajectory 3, frame 9"
        assert _message(lambda: tf.read_window(3, 0, tf.n_frames)).startswith(where)
        assert _message(lambda: tf.read_window(3, 1, 12, 4)).startswith(where)  # frames 1, 5, 9
        tf.read_window(3, 0, 12, 4)  # frames 0, 4, 8: the NaN is not read, nothing to refuse
        assert _message(lambda: tf.read_field("u", 3)).startswith(where)
        assert _message(lambda: tf.read_field("u", slice(2, 5))).startswith(where)
        assert _message(lambda: tf.read_field("u", np.array([5, 3, 0]))).startswith(where)
        assert _message(lambda: tf.read_field("u", 3, slice(8, 10))).startswith(where)
        assert tf.read_field("u", 3, slice(10, None)).shape == (tf.n_frames - 10, 256)
        assert _message(lambda: compute_train_statistics(tf)).startswith(where)
        assert _message(lambda: tf.coordinate("x")).startswith(f"{train_file}: coordinate 'x' is non-finite")
        assert "index 4" in _message(lambda: tf.grid)


def test_statistics_are_finite_or_refused(train_file: Path) -> None:
    with TrajectoryFile(train_file) as tf:
        stats = compute_train_statistics(tf)
    assert all(np.isfinite(v).all() for v in stats.values())
    with h5py.File(train_file, "r+") as f:
        f["dt"][0] = np.inf
    with TrajectoryFile(train_file) as tf:
        message = _message(lambda: compute_train_statistics(tf))
        assert message.startswith(f"{train_file}: parameter 'dt' is non-finite (NaN or inf) for trajectory 0")
        assert _message(tf.frame_intervals).startswith(f"{train_file}: parameter 'dt'")


def test_corrupted_chunk_names_the_trajectory_on_every_read_path(
    train_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with h5py.File(train_file, "r") as f:
        chunk = f["u"].id.get_chunk_info_by_coord((5, 0, 0))
    _flip(train_file, chunk.byte_offset + 100)
    with TrajectoryFile(train_file) as tf:
        where = f"{train_file}: variable 'u' of trajectory 5 cannot be read (HDF5: "
        for read in (lambda: tf.read_window(5, 3, 7), lambda: tf.read_field("u", 5),
                     lambda: tf.read_field("u", slice(None)), lambda: tf.read_field("u", [7, 5, 1])):
            message = _message(read)
            assert message.startswith(where) and CHECKSUM in message, message
        tf.read_window(4, 0, tf.n_frames)  # the neighbouring chunks are intact
        tf.read_window(6, 0, tf.n_frames)
    for scan_bytes in (32 << 20, 4096):  # whole blocks of trajectories; frame blocks of one trajectory
        monkeypatch.setattr(check_module, "_SCAN_BYTES", scan_bytes)
        problems = check_file(train_file)
        assert len(problems) == 1 and problems[0].startswith(
            f"{train_file}: field 'u' cannot be read in 1 trajectories (indices 5): "
        ), problems


class _RecordedField:
    """An HDF5 field whose reads are recorded: how often each element was read and the bytes of each read."""

    def __init__(self, dset: h5py.Dataset) -> None:
        self.shape, self.dtype, self._dset = dset.shape, dset.dtype, dset
        self.times_read = np.zeros(dset.shape, dtype=np.int64)
        self.read_bytes: list[int] = []

    def __getitem__(self, selection: object) -> np.ndarray:
        self.times_read[selection] += 1
        block = self._dset[selection]
        self.read_bytes.append(block.nbytes)
        return block


# A field of 5 trajectories of 6 frames of 3 float32 values: 12 bytes a frame, 72 a trajectory. More frames than values
# in a frame, so that an axis taken for another is noticed.
@pytest.mark.parametrize(("budget", "reads"), [
    (360, 1),  # the whole field at once
    (144, 3),  # blocks of two trajectories: 2 + 2 + 1
    (100, 5),  # more than one trajectory, less than two: one at a time
    (72, 5),  # exactly one trajectory
    (71, 10),  # less than a trajectory: blocks of 5 frames, then 1
    (30, 15),  # blocks of two frames
    (20, 30),  # more than a frame, less than two: one frame at a time
    (12, 30),  # exactly one frame
])
def test_the_checker_reads_every_value_once_in_as_few_reads_as_its_budget_allows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, budget: int, reads: int) -> None:
    """`_SCAN_BYTES` bounds the memory of a scan: no read is larger, every value is read exactly once, and a read
    takes as many whole trajectories (or, when one is too large, frames) as the budget holds."""
    monkeypatch.setattr(check_module, "_SCAN_BYTES", budget)
    with h5py.File(tmp_path / "field.h5", "w") as f:
        field = _RecordedField(f.create_dataset("u", data=np.ones((5, 6, 3), dtype=np.float32)))
        assert check_module._scan_field(field) == ([], [], None)
    assert (field.times_read == 1).all(), field.times_read
    assert max(field.read_bytes) <= budget and len(field.read_bytes) == reads, field.read_bytes


@pytest.mark.parametrize("scan_bytes", [3 * 32 * 256 * 4, 4096])  # blocks of three trajectories; of four frames
def test_the_checker_locates_every_damaged_and_every_nonfinite_trajectory(
        train_file: Path, monkeypatch: pytest.MonkeyPatch, scan_bytes: int) -> None:
    """Trajectories 1 and 4 fail their checksum, 0, 3 and 7 hold a NaN (at the first frame, the last and one between):
    a block that fails is read again trajectory by trajectory and the scan goes on, so each trajectory is named once,
    and the message quotes HDF5's reason."""
    with h5py.File(train_file, "r+") as f:
        assert f["u"].shape == (8, 32, 256)
        for traj, frame in ((0, 0), (3, 31), (7, 17)):
            f["u"][traj, frame, 9] = np.nan
        chunks = [f["u"].id.get_chunk_info_by_coord((traj, 0, 0)) for traj in (1, 4)]
    for chunk in chunks:
        _flip(train_file, chunk.byte_offset + 100)
    with h5py.File(train_file, "r") as f, pytest.raises(OSError) as info:
        f["u"][1]
    reason = hdf5_reason(info.value)
    monkeypatch.setattr(check_module, "_SCAN_BYTES", scan_bytes)
    assert check_file(train_file) == [
        f"{train_file}: field 'u' cannot be read in 2 trajectories (indices 1, 4): {reason}; the file is corrupted (a "
        f"chunk failed its checksum or the file is damaged): regenerate the dataset or restore the file from a copy",
        f"{train_file}: field 'u' has non-finite values (NaN or inf) in 3 trajectories (indices 0, 3, 7); expected "
        f"finite values",
    ]


def test_the_checker_lists_five_trajectories_and_then_an_ellipsis(train_file: Path) -> None:
    """Non-finite parameters in five trajectories are all listed; in six, the first five and '...'."""
    with h5py.File(train_file, "r+") as f:
        f["nu"][:5] = np.nan
        f["dt"][2:8] = np.inf
    assert check_file(train_file) == [
        f"{train_file}: parameter 'nu' is non-finite for trajectories 0, 1, 2, 3, 4; expected finite values",
        f"{train_file}: parameter 'dt' is non-finite for trajectories 2, 3, 4, 5, 6, ...; expected finite values",
    ]


def test_wrong_dtype_and_shape_name_file_field_and_expectation(work: Path) -> None:
    """The header used to build these messages after closing the file (an 'invalid identifier' error instead)."""
    train, valid, test = (dataset_dir(work) / f"{split}.h5" for split in ("train", "valid", "test"))
    with h5py.File(train, "r+") as f:
        data = f["u"][...]
        del f["u"]
        f.create_dataset("u", data=data.astype(np.float16))
    with h5py.File(valid, "r+") as f:
        data = f["u"][...]
        del f["u"]
        f.create_dataset("u", data=data[:, :, :-1])
    with h5py.File(test, "r+") as f:
        nu = f["nu"][...]
        del f["nu"]
        f.create_dataset("nu", data=nu.astype(np.float32))
    assert _message(lambda: TrajectoryFile(train)) == f"{train}: field 'u' has dtype float16; expected float32"
    assert _message(lambda: TrajectoryFile(valid)) == (
        f"{valid}: field 'u' has shape (4, 48, 255); expected (4, 48, 256)"
    )
    assert _message(lambda: TrajectoryFile(test)) == f"{test}: parameter 'nu' has dtype float32; expected float64"


def test_hdf5_errors_become_one_sentence_naming_file_and_variable(train_file: Path) -> None:
    with h5py.File(train_file, "r") as f:
        header = h5py.h5o.get_info(f["seed"].id).addr
    _flip(train_file, header + 12)
    message = _message(lambda: TrajectoryFile(train_file))
    assert message.startswith(f"{train_file}: variable 'seed' cannot be read (HDF5: "), message
    assert "metadata checksum" in message and DAMAGED in message
    with h5py.File(train_file, "r") as f, pytest.raises(HDF5_ERRORS) as info:
        f["seed"]
    problems = check_file(train_file)
    assert f"{train_file}: seed 'seed' cannot be opened ({hdf5_reason(info.value)}); the file is damaged: regenerate " \
           f"the dataset or restore the file from a copy" in problems, problems


def test_a_directory_is_not_called_missing(work: Path) -> None:
    path = dataset_dir(work) / "valid.h5"
    path.unlink()
    path.mkdir()
    assert _message(lambda: split_path(dataset_dir(work), "valid")) == (
        f"split file {path} is a directory, not a file; remove it and generate it with "
        f"`pdebench-generate pde=ks preset=tiny`"
    )
    assert _message(lambda: open_h5(path)) == f"dataset file {path} is a directory, not a file"
    assert _message(lambda: TrajectoryFile(path)) == f"dataset file {path} is a directory, not a file"
    assert check_file(path) == [f"dataset file {path} is a directory, not a file"]


# --- format 1.2: Fletcher-32 on every field ------------------------------------------------------------------------
def test_fields_carry_the_checksum_and_xarray_still_reads_them(train_file: Path) -> None:
    with h5py.File(train_file, "r") as f:
        assert f.attrs["schema_version"] == "1.4"
        assert f["u"].fletcher32 and f["u"].compression is None
    with xr.open_dataset(train_file, engine="h5netcdf") as ds:
        assert ds["u"].dtype == np.float32 and np.isfinite(ds["u"].values).all()


def _without_checksum(path: Path, version: str) -> None:
    """Rewrite field u without the Fletcher-32 filter (dimension scales re-attached) and stamp `version`."""
    with h5py.File(path, "r+") as f:
        data = f["u"][...]
        attrs = dict(f["u"].attrs)
        del f["u"]
        u = f.create_dataset("u", data=data, chunks=(1, data.shape[1], data.shape[2]))
        for key, value in attrs.items():
            if key not in ("DIMENSION_LIST", "_Netcdf4Coordinates", "_Netcdf4Dimid"):
                u.attrs[key] = value
        for axis, dim in enumerate(("traj", "time", "x")):
            u.dims[axis].attach_scale(f[dim])
        f.attrs["schema_version"] = version


def test_checker_wants_the_checksum_from_version_1_2_on(work: Path) -> None:
    new, old = dataset_dir(work) / "train.h5", dataset_dir(work) / "valid.h5"
    _without_checksum(new, "1.2")
    _without_checksum(old, "1.1")
    assert check_file(new) == [
        f"{new}: field 'u' has no Fletcher-32 checksum filter; expected one (schema_version 1.2 and later write "
        f"every field with it)"
    ]
    assert check_file(old) == []
    with TrajectoryFile(old) as tf:  # 1.1 files are still read
        assert np.isfinite(tf.read_field("u", slice(None))).all()


def test_reader_refuses_empty_dimensions(tmp_path: Path, train_file: Path) -> None:
    path = tmp_path / "train.h5"
    shutil.copyfile(train_file, path)
    with h5py.File(path, "r+") as f:
        for name in ("u", "nu", "dt", "L", "dx", "seed"):
            del f[name]
        f.attrs["fields"] = "w"
        f.attrs["parameters"] = ""
        f.attrs["conditioning"] = ""
        f.create_dataset("w", shape=(8, 0, 256), dtype=np.float32)
        f.create_dataset("seed", shape=(8,), dtype=np.int64)
        del f["time"]
        f.create_dataset("time", shape=(0,), dtype=np.int64)
    message = _message(lambda: TrajectoryFile(path))
    assert message == f"{path}: coordinate(s) 'time' have length 0; expected at least 1"
