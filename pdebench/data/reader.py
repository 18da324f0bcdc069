"""Read-only, lazy access to one split file of the trajectory format (see docs/data_format.md).

`TrajectoryFile` validates the header on open and then reads windows of trajectories straight from HDF5,
so training never loads a whole split into memory. It pickles without its HDF5 handle, so it can be
handed to DataLoader worker processes, each of which reopens the file on first use.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pdebench.data.grid import Grid, canonical_grid_kind
from pdebench.data.schema import (
    FRAME_DT_PARAMETER,
    PARTIAL_SUFFIX,
    REQUIRED_ROOT_ATTRS,
    SCHEMA_NAME,
    SEED_VAR,
    SPLITS,
    SUPPORTED_SCHEMA_VERSIONS,
    TIME_DIM,
    TRAJ_DIM,
    DatasetError,
    dataset_name,
)

# Raw-data chunk cache per open dataset: a few field chunks (~1 MiB each, see writer.field_chunks).
_CHUNK_CACHE_BYTES = 8 << 20
_FLOAT32 = h5py.h5t.py_create(np.dtype(np.float32))


def attr_to_python(value: Any) -> Any:
    """Convert an HDF5 attribute value (bytes, numpy scalar, 1-element array) into a plain Python value."""
    if isinstance(value, bytes | np.bytes_):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        if value.size == 1:
            return attr_to_python(value.reshape(()).item())
        return [attr_to_python(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def split_names(value: Any) -> tuple[str, ...]:
    """Parse a comma-separated name list attribute ("u,v" -> ("u", "v"); "" -> ())."""
    text = attr_to_python(value)
    if isinstance(text, list):  # tolerate a string array written by other tools
        return tuple(str(t) for t in text)
    return tuple(name for name in str(text).split(",") if name)


def _hint(dataset_dir: Path) -> str:
    """The command that (re)generates a dataset directory named `<pde>-<preset>`."""
    pde, _, preset = dataset_dir.name.rpartition("-")
    if not pde:
        return "generate it with `pdebench-generate`"
    return f"generate it with `pdebench-generate pde={pde} preset={preset}`"


def open_dataset_dir(root: str | Path, pde: str, preset: str) -> Path:
    """Return `root/<pde>-<preset>`, the directory holding the split files, or explain how to create it."""
    dataset_dir = Path(root) / dataset_name(pde, preset)
    if not dataset_dir.is_dir():
        raise DatasetError(
            f"dataset directory {dataset_dir} does not exist; "
            f"generate it with `pdebench-generate pde={pde} preset={preset}`"
        )
    return dataset_dir


def split_path(dataset_dir: Path, split: str) -> Path:
    """Return the path of one split file (`<dataset_dir>/<split>.h5`), or explain how to create it."""
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    dataset_dir = Path(dataset_dir)
    path = dataset_dir / f"{split}.h5"
    if not path.is_file():
        partial = path.with_name(path.name + PARTIAL_SUFFIX)
        if partial.exists():
            raise DatasetError(
                f"split file {path} does not exist, but an interrupted run left {partial.name}; "
                f"rerun the same generation command to resume it ({_hint(dataset_dir)})"
            )
        raise DatasetError(f"split file {path} does not exist; {_hint(dataset_dir)}")
    return path


def open_h5(path: Path) -> h5py.File:
    """Open an HDF5 file read-only, turning every failure into one DatasetError sentence about `path`."""
    if not path.exists():
        raise DatasetError(f"dataset file {path} does not exist")
    if not path.is_file():
        raise DatasetError(f"dataset file {path} is not a regular file")
    try:
        return h5py.File(path, "r", rdcc_nbytes=_CHUNK_CACHE_BYTES)
    except OSError as exc:
        raise DatasetError(
            f"dataset file {path} is not a readable HDF5 file (truncated or corrupted?): {exc}"
        ) from exc


def header_problem(path: Path, attrs: dict[str, Any]) -> str | None:
    """Return a sentence if the root attributes do not identify a supported schema version, else None."""
    schema = attrs.get("schema")
    if schema != SCHEMA_NAME:
        return (
            f"{path}: root attribute 'schema' is {schema!r}; expected {SCHEMA_NAME!r} "
            f"(not a pdebench trajectory file)"
        )
    version = attrs.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        return (
            f"{path}: schema_version {version!r} is not supported by this pdebench "
            f"(supported: {', '.join(SUPPORTED_SCHEMA_VERSIONS)}); regenerate the dataset or upgrade pdebench"
        )
    return None


class TrajectoryFile:
    """Read-only, lazy view of a split file; safe to pickle into DataLoader workers (reopens per process)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: h5py.File | None = None
        self._pid = -1
        self._datasets: dict[str, h5py.Dataset] = {}
        self._params: dict[str, np.ndarray] | None = None
        self._seeds: np.ndarray | None = None
        self._load_header()

    # --- header ---------------------------------------------------------------------------------------
    def _load_header(self) -> None:
        """Open the file, check the schema and read the metadata every reader needs."""
        f = self._handle()
        attrs = {k: attr_to_python(v) for k, v in f.attrs.items() if not k.startswith("_")}
        problem = header_problem(self.path, attrs)
        if problem is not None:
            self.close()
            raise DatasetError(problem)
        missing = [a for a in REQUIRED_ROOT_ATTRS if a not in attrs]
        if missing:
            self.close()
            raise DatasetError(f"{self.path}: missing root attribute(s) {', '.join(missing)}")
        self.attrs: dict[str, Any] = attrs
        self.pde: str = str(attrs["pde"])
        self.preset: str = str(attrs["preset"])
        self.split: str = str(attrs["split"])
        try:
            self.grid_kind: str = canonical_grid_kind(str(attrs["grid"]))
        except ValueError as exc:
            self.close()
            raise DatasetError(f"{self.path}: root attribute 'grid': {exc}") from None
        self.frame_interval: float = float(attrs["frame_interval"])
        self.field_names: tuple[str, ...] = split_names(attrs["fields"])
        self.parameter_names: tuple[str, ...] = split_names(attrs["parameters"])
        self.coordinate_names: tuple[str, ...] = split_names(attrs["spatial_coordinates"])
        needed = (TRAJ_DIM, TIME_DIM, SEED_VAR, *self.coordinate_names, *self.field_names)
        absent = [n for n in (*needed, *self.parameter_names) if n not in f]
        if absent:
            self.close()
            raise DatasetError(f"{self.path}: missing variable(s) {', '.join(absent)}")
        if not self.field_names:
            self.close()
            raise DatasetError(f"{self.path}: root attribute 'fields' lists no field")
        self.n_traj: int = int(f[TRAJ_DIM].shape[0])
        self.n_frames: int = int(f[TIME_DIM].shape[0])
        self.spatial_shape: tuple[int, ...] = tuple(int(f[c].shape[0]) for c in self.coordinate_names)
        expected = (self.n_traj, self.n_frames, *self.spatial_shape)
        for name in self.field_names:
            if f[name].shape != expected:
                self.close()
                raise DatasetError(
                    f"{self.path}: field '{name}' has shape {f[name].shape}; expected {expected}"
                )
            if f[name].dtype != np.float32:
                self.close()
                raise DatasetError(f"{self.path}: field '{name}' has dtype {f[name].dtype}; expected float32")
        if int(attrs["n_traj_complete"]) != self.n_traj:
            self.close()
            raise DatasetError(
                f"{self.path}: only {attrs['n_traj_complete']} of {self.n_traj} trajectories are complete "
                f"(unfinished file)"
            )
        # Hold no handle between construction and the first read: a DataLoader that forks workers after
        # building the dataset then never shares HDF5 state between processes.
        self.close()

    # --- handle management ----------------------------------------------------------------------------
    def _handle(self) -> h5py.File:
        """The open h5py file of this process (reopened after pickling or fork)."""
        if self._file is None or self._pid != os.getpid():
            self._file = open_h5(self.path)
            self._pid = os.getpid()
            self._datasets = {}
        return self._file

    def _dataset(self, name: str) -> h5py.Dataset:
        """Cached h5py Dataset for one variable (lookups by name are slow on the hot path)."""
        f = self._handle()
        dset = self._datasets.get(name)
        if dset is None:
            dset = f[name]
            self._datasets[name] = dset
        return dset

    def close(self) -> None:
        """Close the HDF5 handle (the object can still be used: it reopens on the next read)."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None
        self._datasets = {}

    def __enter__(self) -> TrajectoryFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"] = None
        state["_datasets"] = {}
        state["_pid"] = -1
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return (
            f"TrajectoryFile({str(self.path)!r}, n_traj={self.n_traj}, n_frames={self.n_frames}, "
            f"spatial_shape={self.spatial_shape}, fields={self.field_names})"
        )

    # --- reads ----------------------------------------------------------------------------------------
    def _check_traj(self, traj: int) -> int:
        """Normalise a (possibly negative) trajectory index, raising IndexError when out of range."""
        t = int(traj)
        if t < 0:
            t += self.n_traj
        if not 0 <= t < self.n_traj:
            raise IndexError(
                f"trajectory {traj} out of range for {self.path} with {self.n_traj} trajectories"
            )
        return t

    def read_field(self, name: str, traj: int | slice | np.ndarray, time: slice = slice(None)) -> np.ndarray:
        """Read one field: float32 `[T, *space]` for an int `traj`, `[B, T, *space]` for a slice/array."""
        if name not in self.field_names:
            raise KeyError(f"{self.path} has no field {name!r}; fields: {', '.join(self.field_names)}")
        dset = self._dataset(name)
        if isinstance(traj, slice):
            return np.asarray(dset[traj, time], dtype=np.float32)
        if isinstance(traj, np.ndarray | list | tuple):
            idx = np.asarray(traj, dtype=np.int64).reshape(-1)
            idx = np.where(idx < 0, idx + self.n_traj, idx)
            if idx.size and (idx.min() < 0 or idx.max() >= self.n_traj):
                raise IndexError(
                    f"trajectory index out of range for {self.path} with {self.n_traj} trajectories"
                )
            # h5py fancy indexing needs increasing unique indices: read those, then restore the asked order.
            unique, inverse = np.unique(idx, return_inverse=True)
            block = np.asarray(dset[unique, time] if unique.size else dset[0:0, time], dtype=np.float32)
            if unique.size == idx.size and np.array_equal(unique, idx):
                return block
            return block[inverse]
        return np.asarray(dset[self._check_traj(traj), time], dtype=np.float32)

    def read_window(self, traj: int, start: int, stop: int, step: int = 1) -> np.ndarray:
        """Read frames `start:stop:step` of one trajectory, all fields stacked: float32 `[C, T, *space]`."""
        t = self._check_traj(traj)
        if step < 1 or not 0 <= start < stop <= self.n_frames:
            raise IndexError(
                f"window {start}:{stop}:{step} is not inside the {self.n_frames} frames of {self.path}"
            )
        n_t = len(range(start, stop, step))
        space = self.spatial_shape
        out = np.empty((len(self.field_names), n_t, *space), dtype=np.float32)
        # One hyperslab read per field straight into its output slab (h5py's read_direct does the same
        # through a much slower generic selection path; plain indexing would allocate and copy).
        mem_space = h5py.h5s.create_simple((n_t, *space))
        origin = (t, start, *(0 for _ in space))
        count = (1, n_t, *space)
        stride = (1, step, *(1 for _ in space))
        for c, name in enumerate(self.field_names):
            dset_id = self._dataset(name).id
            file_space = dset_id.get_space()
            file_space.select_hyperslab(origin, count, stride=stride if step > 1 else None)
            dset_id.read(mem_space, file_space, out[c], _FLOAT32)
        return out

    def parameters(self) -> dict[str, np.ndarray]:
        """Per-trajectory parameters: name -> float64 `[n_traj]` (read once, then cached)."""
        if self._params is None:
            self._params = {n: self._dataset(n)[...].astype(np.float64) for n in self.parameter_names}
        return dict(self._params)

    def seeds(self) -> np.ndarray:
        """Per-trajectory generator seeds: int64 `[n_traj]` (read once, then cached)."""
        if self._seeds is None:
            self._seeds = self._dataset(SEED_VAR)[...].astype(np.int64)
        return self._seeds.copy()

    def coordinate(self, name: str) -> np.ndarray:
        """Values of one spatial coordinate: float64 `[n]`."""
        if name not in self.coordinate_names:
            raise KeyError(f"{self.path} has no spatial coordinate {name!r}")
        return self._dataset(name)[...].astype(np.float64)

    @property
    def grid(self) -> Grid:
        """The spatial grid (kind, coordinates, periodic axes, quadrature weights), built from the file."""
        if getattr(self, "_grid", None) is None:
            coords = tuple(self.coordinate(name) for name in self.coordinate_names)
            try:
                self._grid = Grid(self.grid_kind, self.coordinate_names, coords)
            except ValueError as exc:
                raise DatasetError(f"{self.path}: {exc}") from None
        return self._grid

    def frame_intervals(self) -> np.ndarray:
        """Time between stored frames of every trajectory: float64 `[n_traj]`.

        The per-trajectory `dt` parameter when the file has one, else the nominal `frame_interval`.
        """
        if FRAME_DT_PARAMETER in self.parameter_names:
            return self.parameters()[FRAME_DT_PARAMETER]
        return np.full(self.n_traj, self.frame_interval)

    def frame_times(self, traj: int) -> np.ndarray:
        """Physical time of every stored frame of one trajectory: float64 `[n_frames]`."""
        return np.arange(self.n_frames, dtype=np.float64) * self.frame_intervals()[self._check_traj(traj)]
