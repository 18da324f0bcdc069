"""Write one split file of the trajectory format in blocks, atomically and resumably (docs/data_format.md).

The file is built as `<name>.partial` next to its final path: the structure (dimensions, coordinates,
attributes) is created once with h5netcdf so that xarray sees a proper netCDF4 dataset, then blocks of
trajectories are written with h5py. After each block the data is flushed before the root attribute
`n_traj_complete` is bumped, so an interrupted run can resume after its last complete trajectory.
`finalize` closes the file, verifies it (`pdebench.data.check.check_file`: every trajectory readable and finite)
and only then renames it into place with `os.replace`, so the final path either does not exist or holds a complete
file.

A full disk. Before each block the writer makes sure the disk has room for it (its chunks and some metadata):
HDF5 cannot undo a block that fails half way (its metadata, flushed part way, can leave the file unreadable), so a
disk too full for the next block stops the write *before* it, with the file as its last block left it. One
`DiskFull` sentence names the `.partial` file and what it keeps; rerunning the same command after freeing space
resumes. The disk can still fill up under a block (another process writing, a quota): so every write, flush and
close is checked too. h5py reports a failed write of cached chunks only while it frees the dataset object
("Exception ignored in ..."), too late to keep `n_traj_complete` from counting trajectories that never reached the
disk; so the file is opened without a chunk cache and each block's chunks are written, or fail, in the assignment
itself. A `.partial` such a failure damaged is refused when it is reopened (its chunk index is read through).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import h5netcdf
import h5py
import numpy as np

from pdebench.data.atomic import atomic_file, disk_full_error, replace_durably, reporting_full_disk
from pdebench.data.check import check_file
from pdebench.data.grid import GRID_KINDS, SPHERE_AXES, Grid, quadrature_rule
from pdebench.data.reader import HDF5_ERRORS, attr_to_python, hdf5_reason
from pdebench.data.schema import (
    CONDITIONING_ATTR,
    FINGERPRINT_ATTR,
    PARTIAL_SUFFIX,
    QUADRATURE_ATTR,
    REQUIRED_ROOT_ATTRS,
    SCHEMA_NAME,
    SCHEMA_VERSION,
    SEED_VAR,
    SPLITS,
    TIME_DIM,
    TRAJ_DIM,
    DatasetError,
    DatasetLayout,
)

# Field chunks hold whole frames of one trajectory, about this many bytes, at most MAX_CHUNK_FRAMES frames.
TARGET_CHUNK_BYTES = 1 << 20
MAX_CHUNK_FRAMES = 32
# HDF5 filters of every field (schema 1.2): a Fletcher-32 checksum per chunk, verified by HDF5 on every read, so a
# flipped byte in field data fails the read instead of changing a number. netCDF4 knows the filter, so h5netcdf
# passes it through and xarray/netCDF-C read the files unchanged. No compression: reads stay cheap.
FIELD_FILTERS: dict[str, Any] = {"fletcher32": True}

# Room a block needs on disk beyond its field chunks: parameters, seeds, chunk-index nodes and other metadata.
BLOCK_METADATA_BYTES = 256 << 10

_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_RESERVED_VARS = (TRAJ_DIM, TIME_DIM, SEED_VAR)
_CORE_ATTRS = (*REQUIRED_ROOT_ATTRS, QUADRATURE_ATTR, CONDITIONING_ATTR, FINGERPRINT_ATTR)


def partial_path(path: str | Path) -> Path:
    """The temporary sibling (`train.h5` -> `train.h5.partial`) a split file is written to."""
    path = Path(path)
    return path.with_name(path.name + PARTIAL_SUFFIX)


def field_chunks(n_frames: int, spatial_shape: tuple[int, ...]) -> tuple[int, ...]:
    """HDF5 chunk shape `(1, t, *space)` for a field: whole frames of one trajectory, ~1 MiB per chunk."""
    frame_bytes = 4 * math.prod(spatial_shape)
    t = max(1, min(n_frames, MAX_CHUNK_FRAMES, TARGET_CHUNK_BYTES // max(frame_bytes, 1)))
    return (1, t, *spatial_shape)


def _coord_values(values: Any) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(values, dtype=np.float64))


def layout_fingerprint(layout: DatasetLayout) -> str:
    """sha256 of everything in a layout (coordinate values included): equal layouts <=> equal files' shape."""
    record = {
        "schema_version": SCHEMA_VERSION,
        "pde": layout.pde,
        "preset": layout.preset,
        "split": layout.split,
        "n_traj": int(layout.n_traj),
        "n_frames": int(layout.n_frames),
        "frame_interval": repr(float(layout.frame_interval)),
        "grid": layout.grid,
        "coordinates": [
            [c.name, c.units, c.description, hashlib.sha256(_coord_values(c.values).tobytes()).hexdigest()]
            for c in layout.coordinates
        ],
        "fields": [[f.name, f.units, f.boundary, f.description] for f in layout.fields],
        "parameters": [[p.name, p.units, p.description, bool(p.conditioning)] for p in layout.parameters],
        "attrs": sorted((str(k), str(v)) for k, v in layout.attrs.items()),
    }
    text = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def validate_layout(layout: DatasetLayout) -> None:
    """Raise DatasetError if a layout cannot be written (bad sizes, names, coordinates or attrs)."""
    problems: list[str] = []
    if layout.split not in SPLITS:
        problems.append(f"split {layout.split!r} is not one of {', '.join(SPLITS)}")
    if int(layout.n_traj) < 1:
        problems.append(f"n_traj must be >= 1, got {layout.n_traj}")
    if int(layout.n_frames) < 1:
        problems.append(f"n_frames must be >= 1, got {layout.n_frames}")
    if not (math.isfinite(float(layout.frame_interval)) and float(layout.frame_interval) > 0):
        problems.append(f"frame_interval must be a positive number, got {layout.frame_interval}")
    if not layout.fields:
        problems.append("a layout needs at least one field")
    if layout.grid not in GRID_KINDS:
        problems.append(f"grid {layout.grid!r} is not one of {', '.join(GRID_KINDS)}")
    elif layout.grid == "sphere" and tuple(c.name for c in layout.coordinates) != SPHERE_AXES:
        problems.append(f"a sphere grid needs coordinates {SPHERE_AXES}")
    seen: set[str] = set(_RESERVED_VARS)
    groups = (
        ("coordinate", [c.name for c in layout.coordinates]),
        ("field", [f.name for f in layout.fields]),
        ("parameter", [p.name for p in layout.parameters]),
    )
    for kind, names in groups:
        for name in names:
            if not _NAME_RE.match(name):
                problems.append(
                    f"{kind} name {name!r} must be letters, digits and '_' starting with a letter"
                )
            elif name in seen:
                problems.append(f"{kind} name {name!r} is reserved or used twice")
            seen.add(name)
    for p in layout.parameters:
        if not isinstance(p.conditioning, bool | np.bool_):
            problems.append(f"parameter {p.name!r} has conditioning={p.conditioning!r}; expected True or False")
    for c in layout.coordinates:
        values = np.asarray(c.values)
        if values.ndim != 1 or values.size < 1:
            problems.append(f"coordinate {c.name!r} must be a non-empty 1-D array, got shape {values.shape}")
        elif values.dtype.kind not in "iuf" or not np.isfinite(values).all():
            problems.append(f"coordinate {c.name!r} must hold finite numbers")
    if not problems:
        try:
            Grid(layout.grid, tuple(c.name for c in layout.coordinates), tuple(c.values for c in layout.coordinates))
        except ValueError as exc:
            problems.append(str(exc))
    for key, value in layout.attrs.items():
        if not isinstance(key, str) or not _NAME_RE.match(key):
            problems.append(f"attribute name {key!r} must be letters, digits and '_' starting with a letter")
        elif key in _CORE_ATTRS:
            problems.append(f"attribute {key!r} is set by the writer and cannot be given in layout.attrs")
        if not isinstance(value, str):
            problems.append(f"attribute {key!r} must be a string, got {type(value).__name__}")
    if problems:
        raise DatasetError(f"invalid layout for {layout.dataset_name}/{layout.split}: " + "; ".join(problems))


def _mib(n_bytes: int) -> str:
    return f"{n_bytes / (1 << 20):.1f} MiB"


def _chunk_index_damage(f: h5py.File, fields: list[str]) -> str | None:
    """Why the chunk index of a field cannot be read through (every node of it is read), or None if all can.

    A block whose write failed part way can leave the index pointing at nodes that were never written; writing
    into such a file would fail deep inside HDF5 (or worse), so it is refused when it is reopened."""
    for name in fields:
        try:
            f[name].id.get_num_chunks()
        except HDF5_ERRORS as exc:
            return f"the chunk index of field '{name}' cannot be read ({hdf5_reason(exc)})"
    return None


def write_split_header(f: h5netcdf.File, layout: DatasetLayout, *, n_traj_complete: int,
                       extra_attrs: Mapping[str, Any], seed_description: str) -> None:
    """Everything of a split file but its fields, into an open h5netcdf file: the dimensions, the root attributes
    (the schema's, then `extra_attrs`, then the layout's own), the trajectory and frame indices, the coordinates,
    one unfilled float64 variable `[traj]` per parameter (NaN until written) and the int64 seeds. The writer and the
    import of a foreign dataset (whose fields point into the foreign files) share it, so both files read alike."""
    spatial = tuple(c.name for c in layout.coordinates)
    n_traj, n_frames = int(layout.n_traj), int(layout.n_frames)
    f.dimensions = {TRAJ_DIM: n_traj, TIME_DIM: n_frames, **{c.name: len(c.values) for c in layout.coordinates}}
    root = {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "pde": layout.pde,
        "preset": layout.preset,
        "split": layout.split,
        "grid": layout.grid,
        QUADRATURE_ATTR: quadrature_rule(layout.grid, tuple(_coord_values(c.values) for c in layout.coordinates)),
        "spatial_dims": np.int64(len(spatial)),
        "spatial_coordinates": ",".join(spatial),
        "frame_interval": np.float64(layout.frame_interval),
        "fields": ",".join(fs.name for fs in layout.fields),
        "parameters": ",".join(p.name for p in layout.parameters),
        CONDITIONING_ATTR: ",".join(p.name for p in layout.parameters if p.conditioning),
        "n_traj_complete": np.int64(n_traj_complete),
        **extra_attrs,
    }
    for key, value in {**root, **layout.attrs}.items():
        f.attrs[key] = value

    v = f.create_variable(TRAJ_DIM, (TRAJ_DIM,), np.int64, data=np.arange(n_traj, dtype=np.int64))
    v.attrs["description"] = "trajectory index"
    v = f.create_variable(TIME_DIM, (TIME_DIM,), np.int64, data=np.arange(n_frames, dtype=np.int64))
    v.attrs["units"] = "frames"
    v.attrs["description"] = (
        "stored frame index; physical time = index * per-trajectory dt if present, else * frame_interval"
    )
    for c in layout.coordinates:
        v = f.create_variable(c.name, (c.name,), np.float64, data=_coord_values(c.values))
        v.attrs["units"] = c.units
        v.attrs["description"] = c.description
    for p in layout.parameters:
        v = f.create_variable(p.name, (TRAJ_DIM,), np.float64, fillvalue=np.float64(np.nan))
        v.attrs["units"] = p.units
        v.attrs["description"] = p.description
    v = f.create_variable(SEED_VAR, (TRAJ_DIM,), np.int64)
    v.attrs["description"] = seed_description


def _structure_image(layout: DatasetLayout, fingerprint: str) -> bytes:
    """The bytes of an empty split file, built in memory: no disk write can fail inside h5netcdf or h5py (whose
    failed close on a full disk leaves a file object that crashes the process when it is collected), and the image
    is then written as plain, checked file writes."""
    image = io.BytesIO()
    _create_structure(image, layout, fingerprint)
    return image.getvalue()


def _create_structure(path: Path | IO[bytes], layout: DatasetLayout, fingerprint: str) -> None:
    """Create an empty split file (dims, coordinates, attributes, unfilled variables) with h5netcdf."""
    spatial = tuple(c.name for c in layout.coordinates)
    n_frames = int(layout.n_frames)
    with h5netcdf.File(path, "w") as f:
        write_split_header(f, layout, n_traj_complete=0, extra_attrs={FINGERPRINT_ATTR: fingerprint},
                           seed_description="seed of the random initial condition / parameters of each trajectory")

        chunks = field_chunks(n_frames, layout.spatial_shape)
        for fs in layout.fields:
            v = f.create_variable(
                fs.name,
                (TRAJ_DIM, TIME_DIM, *spatial),
                np.float32,
                chunks=chunks,
                fillvalue=np.float32(np.nan),  # unwritten trajectories read as NaN, never as plausible zeros
                **FIELD_FILTERS,
            )
            v.attrs["units"] = fs.units
            v.attrs["boundary_conditions"] = fs.boundary
            v.attrs["description"] = fs.description


class TrajectoryWriter:
    """Writes one split file in blocks of trajectories; atomic and resumable."""

    def __init__(self, path: str | Path, layout: DatasetLayout) -> None:
        validate_layout(layout)
        self.path = Path(path)
        self.layout = layout
        self.partial = partial_path(self.path)
        self.fingerprint = layout_fingerprint(layout)
        self._finalized = False
        self.resumed = self.partial.exists()
        if not self.resumed:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # The structure is built in memory and written whole under a scratch name, then renamed: a crash or a
            # full disk here leaves no half-made .partial. The name is unique (`.<name>.partial.<random>.tmp`), so two
            # writers never build in one scratch file; a failure removes it (a hard kill can leave one, which the
            # generation driver clears under its lock).
            with reporting_full_disk(self.partial, "nothing of this split was written yet"):
                with atomic_file(self.partial) as scratch:
                    scratch.write(_structure_image(layout, self.fingerprint))
        self._file: h5py.File | None = self._open_partial()
        self.n_done: int = int(attr_to_python(self._file.attrs["n_traj_complete"]))

    def _open_partial(self) -> h5py.File:
        """Open the .partial file for writing and make sure it was started with this very layout."""
        try:
            f = h5py.File(self.partial, "r+", rdcc_nbytes=0)  # no chunk cache: a block's write fails in place
        except OSError as exc:
            raise DatasetError(
                f"cannot open the interrupted write {self.partial} ({exc}); if no other process is writing "
                f"it, it is damaged: delete it to start this split over"
            ) from exc
        stored = attr_to_python(f.attrs.get(FINGERPRINT_ATTR, ""))
        if stored != self.fingerprint:
            f.close()
            raise DatasetError(
                f"{self.partial} was started with a different configuration (layout fingerprint differs); "
                f"rerun with the original configuration to resume it, or delete it to start this split over"
            )
        damage = _chunk_index_damage(f, [fs.name for fs in self.layout.fields])
        if damage is not None:
            f.close()
            raise DatasetError(
                f"cannot resume the interrupted write {self.partial}: {damage} (a write cut short, e.g. by a full "
                f"disk, can leave it so); delete it to start this split over"
            )
        return f

    # --- writing ------------------------------------------------------------------------------------
    def _block_bytes(self, b: int) -> int:
        """An upper bound of the disk space that appending b trajectories takes: every chunk of their fields (edge
        chunks are stored whole, each with its 4-byte checksum) and `BLOCK_METADATA_BYTES`."""
        chunks = field_chunks(int(self.layout.n_frames), self.layout.spatial_shape)
        chunk_bytes = 4 * math.prod(chunks) + 4
        per_trajectory = math.ceil(int(self.layout.n_frames) / chunks[1]) * chunk_bytes * len(self.layout.fields)
        return b * per_trajectory + BLOCK_METADATA_BYTES

    def _check_room(self, b: int) -> None:
        """Raise DiskFull, before anything of the block is written, if the disk has no room for b trajectories (a
        file system that reports no size at all, as some network and FUSE mounts do, is not judged)."""
        usage = shutil.disk_usage(self.partial.parent)
        need, free = self._block_bytes(b), usage.free
        if usage.total > 0 and free < need:
            raise disk_full_error(self.partial, f"{self._kept()}; the next {b} need about {_mib(need)} and "
                                                f"{_mib(free)} are free")

    def _kept(self) -> str:
        """What of the file survives a failed write, for `DiskFull`."""
        if self.n_done == 0:
            return "no trajectory of it was complete yet"
        return f"its first {self.n_done} of {self.layout.n_traj} trajectories are kept"

    def _require_open(self) -> h5py.File:
        if self._file is None:
            state = "finalized" if self._finalized else "closed"
            raise DatasetError(f"writer for {self.partial} is {state}")
        return self._file

    def _as_float_array(
        self, kind: str, name: str, value: Any, shape: tuple[int, ...], dtype: type
    ) -> np.ndarray:
        """Check shape/dtype/finiteness of one input array and return it as `dtype` (no copy if possible)."""
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise DatasetError(
                f"{kind} '{name}' has dtype {arr.dtype}, which cannot be stored as {np.dtype(dtype)}"
            )
        if arr.shape != shape:
            raise DatasetError(f"{kind} '{name}' has shape {arr.shape}; expected {shape} for {self.partial}")
        with np.errstate(over="ignore", invalid="ignore"):
            arr = np.ascontiguousarray(arr, dtype=dtype)  # overflow to inf is caught just below
        finite = np.isfinite(arr).reshape(shape[0], -1).all(axis=1)
        if not finite.all():
            bad = int(np.flatnonzero(~finite)[0]) + self.n_done
            raise DatasetError(
                f"{kind} '{name}' of trajectory {bad} contains non-finite values (NaN or inf, possibly after "
                f"conversion to {np.dtype(dtype)}); refusing to write it to {self.partial}"
            )
        return arr

    def append(
        self, fields: dict[str, np.ndarray], parameters: dict[str, np.ndarray], seeds: np.ndarray
    ) -> None:
        """Write b trajectories at position n_done: fields `[b, n_frames, *space]`, params and seeds `[b]`."""
        f = self._require_open()
        layout = self.layout
        field_names = [fs.name for fs in layout.fields]
        param_names = [p.name for p in layout.parameters]
        if set(fields) != set(field_names):
            raise DatasetError(
                f"append got fields {sorted(fields)}; {self.partial} expects {sorted(field_names)}"
            )
        if set(parameters) != set(param_names):
            raise DatasetError(
                f"append got parameters {sorted(parameters)}; {self.partial} expects {sorted(param_names)}"
            )
        seeds_arr = np.asarray(seeds)
        if seeds_arr.ndim != 1 or seeds_arr.shape[0] < 1:
            raise DatasetError(f"seeds must be a non-empty 1-D array, got shape {seeds_arr.shape}")
        b = int(seeds_arr.shape[0])
        if seeds_arr.dtype.kind not in "iu":
            raise DatasetError(f"seeds must be integers, got dtype {seeds_arr.dtype}")
        if seeds_arr.dtype.kind == "u" and seeds_arr.size and int(seeds_arr.max()) > np.iinfo(np.int64).max:
            raise DatasetError("seeds do not fit in int64")
        if self.n_done + b > layout.n_traj:
            raise DatasetError(
                f"appending {b} trajectories after {self.n_done} exceeds "
                f"n_traj={layout.n_traj} of {self.partial}"
            )
        shape = (b, int(layout.n_frames), *layout.spatial_shape)
        field_data = {n: self._as_float_array("field", n, fields[n], shape, np.float32) for n in field_names}
        param_data = {
            n: self._as_float_array("parameter", n, parameters[n], (b,), np.float64) for n in param_names
        }

        self._check_room(b)
        lo, hi = self.n_done, self.n_done + b
        with reporting_full_disk(self.partial, self._kept()):
            for name, arr in {**field_data, **param_data, SEED_VAR: seeds_arr.astype(np.int64)}.items():
                f[name][lo:hi] = arr
            f.flush()  # the data is on its way to disk before the block is declared complete
            f.attrs["n_traj_complete"] = np.array([hi], dtype=np.int64)
            f.flush()
        self.n_done = hi

    def finalize(self) -> Path:
        """Close the complete file, verify it, and atomically rename `<name>.partial` to its final path, returned.

        Only a file that closed cleanly and passes `check_file` (every trajectory readable, finite, counted) gets
        the final name; one that does not stays `.partial` and a DatasetError names its first problem.
        """
        self._require_open()
        if self.n_done != self.layout.n_traj:
            raise DatasetError(
                f"cannot finalize {self.partial}: {self.n_done} of {self.layout.n_traj} trajectories written"
            )
        self.close()
        problems = check_file(self.partial)
        if problems:
            raise DatasetError(
                f"{self.partial} was written to the end but does not verify, so it was not renamed to "
                f"{self.path.name} ({problems[0]}); delete it and rerun the same command to write it again"
            )
        with reporting_full_disk(self.partial, "every trajectory of it is written and kept"):
            replace_durably(self.partial, self.path)  # fsync, os.replace, fsync of the directory
        self._finalized = True
        return self.path

    def close(self) -> None:
        """Flush and close the .partial file without finalizing (it stays on disk, ready to be resumed); a full
        disk raises `DiskFull` naming it."""
        f, self._file = self._file, None
        if f is None:
            return
        with reporting_full_disk(self.partial, self._kept()):
            try:
                f.flush()
            finally:
                f.close()

    def __enter__(self) -> TrajectoryWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.close()
            return
        # Leaving on an error: that error is what the caller must see, not a second one from closing (a full disk
        # fails the close too). The file keeps what its last successful flush counted, ready to be resumed.
        with contextlib.suppress(Exception):
            self.close()

    def __repr__(self) -> str:
        return f"TrajectoryWriter({str(self.path)!r}, n_done={self.n_done}/{self.layout.n_traj})"
