"""The Well's HDF5 layout (docs/data_format.md of PolymathicAI/the_well; read by `the_well.data.WellDataset`).

A Well dataset directory holds `data/<split>/*.hdf5` (split `train`, `valid`, `test`), each file a group of
trajectories sharing a set of simulation parameters:

- root attributes `dataset_name`, `grid_type` (`cartesian`, `equiangular`), `n_spatial_dims`, `n_trajectories`,
  `simulation_parameters` (names, each also a root attribute);
- `dimensions`: attribute `spatial_dims` (names, in axis order), arrays `time` `[T]` (`[n_traj, T]` where its
  attribute `sample_varying` is true) and one per spatial dimension `[N]`;
- `boundary_conditions/<name>`: attributes `bc_type` (`PERIODIC`, `WALL`, `OPEN`), `associated_dims`, a `mask`;
- `scalars`: attribute `field_names`; arrays with attributes `sample_varying` and `time_varying`;
- `t0_fields`, `t1_fields`, `t2_fields`: attribute `field_names`; arrays `[n_traj, T, *space, D^order]` float32 with
  attributes `sample_varying`, `time_varying`, `dim_varying`.

Mapping (docs/interop.md has the full table): time-varying, sample-varying fields that vary along every axis become
our fields, a vector field `velocity` becoming `velocity_x`, `velocity_y` and a tensor `stress` becoming
`stress_xx`, `stress_xy`, ... (The Well's own flattened names); constant scalars become per-trajectory parameters
(also `simulation_parameters` that are only root attributes); the spatial dimensions and boundary conditions give the
grid (`periodic` when every axis is periodic, `box` when none is, `sphere` for an equiangular `theta`, `phi` grid
in radians, or `lat`, `lon` in degrees); the time grid gives `frame_interval`, or a per-trajectory `dt` where
files or trajectories step differently. What cannot be mapped (a field constant in time or shared by all
trajectories, a time-varying scalar) is left out and named in the import's notes; what would make a wrong dataset
(mixed periodic and wall axes, a non-uniform time grid, splits that disagree) is refused in one sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pdebench.data.grid import SPHERE_AXES
from pdebench.data.names import name_problem, shown
from pdebench.data.schema import (
    FRAME_DT_PARAMETER,
    SEED_VAR,
    SPLITS,
    TIME_DIM,
    TRAJ_DIM,
    Coordinate,
    DatasetError,
    DatasetLayout,
    FieldSpec,
    ParameterSpec,
)
from pdebench.interop.foreign import array, attribute, hdf5_files, member, name_list, open_foreign, values
from pdebench.interop.index import FieldMap, ImportedSplit, Piece

LAYOUT = "The Well"
FIELD_GROUPS = ("t0_fields", "t1_fields", "t2_fields")
# Relative spread of a time grid's steps still taken as uniform: times are float32 in The Well's files (relative
# rounding 6e-8 of the largest time, i.e. ~1e-5 of a step over a few hundred steps); a non-uniform grid differs by
# far more.
TIME_TOLERANCE = 1e-3
# Root attribute our export adds (`pdebench.interop.well_export`): the nominal frame interval, which a per-trajectory
# time grid does not determine. The Well's readers ignore it.
FRAME_INTERVAL_ATTR = "pdebench_frame_interval"
_VARIABLE = "[A-Za-z][A-Za-z0-9_]*"


def _is_variable(name: str) -> bool:
    """Whether `name` can be a variable of our files (`[A-Za-z][A-Za-z0-9_]*`)."""
    return name_problem(name) is None and name[0].isalpha() and all(c.isalnum() or c == "_" for c in name)


@dataclass(frozen=True)
class _Component:
    """One of our fields: a component of a Well field."""

    name: str
    dataset: str
    component: tuple[int, ...]
    boundary: str
    description: str


class _File:
    """One Well file, read and checked: grid, time grid, parameters, the fields that map and the notes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with open_foreign(path) as f:
            for key in ("dimensions", "scalars", "boundary_conditions", *FIELD_GROUPS):
                if not f.id.links.exists(key.encode()):
                    raise DatasetError(f"{path} is not a file of {LAYOUT}: it has no group '{key}' (a Well file has "
                                       f"dimensions, scalars, boundary_conditions and t0/t1/t2_fields)")
            self.dataset_name = str(attribute(path, f, "dataset_name", LAYOUT))
            self.n_traj = _whole(path, f, "n_trajectories")
            self.notes: list[str] = []
            self._read_grid(f)
            self._read_time(f)
            self._read_parameters(f)
            self._read_fields(f)

    # --- grid ---------------------------------------------------------------------------------------
    def _read_grid(self, f: h5py.File) -> None:
        dims = member(self.path, f, "dimensions", LAYOUT)
        self.dims = name_list(self.path, dims, "spatial_dims", LAYOUT)
        if len(self.dims) != _whole(self.path, f, "n_spatial_dims"):
            raise DatasetError(f"{self.path}: dimensions.spatial_dims lists {self.dims}, but n_spatial_dims is "
                               f"{shown(attribute(self.path, f, 'n_spatial_dims', LAYOUT))}")
        coords = []
        for name in self.dims:
            dset = array(self.path, dims, name, LAYOUT)
            if dset.ndim != 1 or _flag(self.path, dset, "sample_varying", False):
                raise DatasetError(f"{self.path}: dimension '{name}' has shape {dset.shape} or varies between "
                                   f"trajectories; only one coordinate array per axis can be mapped")
            coords.append(values(self.path, dset))
        self.coords = tuple(coords)
        self.shape = tuple(len(c) for c in coords)
        periodic = self._periodic_axes(f)
        grid_type = str(attribute(self.path, f, "grid_type", LAYOUT))
        if grid_type == "cartesian":
            if all(periodic.values()):
                self.grid = "periodic"
            elif not any(periodic.values()):
                self.grid = "box"
            else:
                axes = ", ".join(f"{d} {'periodic' if p else 'not periodic'}" for d, p in periodic.items())
                raise DatasetError(f"{self.path}: boundary conditions mix periodic and non-periodic axes ({axes}); a "
                                   f"pdebench grid is periodic on every axis or on none, so this cannot be mapped")
            self.names = tuple(self.dims)
        elif grid_type == "equiangular" or "spher" in grid_type:
            self.grid = "sphere"
            self.names, self.coords = self._sphere_axes()
        else:
            raise DatasetError(f"{self.path}: grid_type is {shown(grid_type)}; expected cartesian or equiangular")
        # The Well's readers take an axis without a boundary condition as open.
        self.bc_text = ", ".join(f"{d} {self.bc_kinds.get(d, 'open')}" for d in self.dims)
        for name in self.names:
            if not _is_variable(name) or name in (TRAJ_DIM, TIME_DIM, SEED_VAR):
                raise DatasetError(f"{self.path}: dimension {shown(name)} cannot name a coordinate of ours "
                                   f"(expected {_VARIABLE}, not traj, time or seed)")

    def _periodic_axes(self, f: h5py.File) -> dict[str, bool]:
        """Whether each spatial dimension is periodic, from the boundary conditions associated with it."""
        periodic = dict.fromkeys(self.dims, False)
        self.bc_kinds: dict[str, str] = {}
        bcs = member(self.path, f, "boundary_conditions", LAYOUT)
        for key in bcs:
            bc = member(self.path, bcs, key, LAYOUT)
            kind = str(attribute(self.path, bc, "bc_type", LAYOUT)).upper()
            if kind not in ("PERIODIC", "WALL", "OPEN"):
                raise DatasetError(f"{self.path}: boundary condition '{key}' has bc_type {shown(kind)}; expected "
                                   f"PERIODIC, WALL or OPEN")
            for dim in name_list(self.path, bc, "associated_dims", LAYOUT):
                if dim not in periodic:
                    raise DatasetError(f"{self.path}: boundary condition '{key}' names dimension {shown(dim)}, which "
                                       f"spatial_dims ({', '.join(self.dims)}) does not list")
                periodic[dim] = periodic[dim] or kind == "PERIODIC"
                self.bc_kinds[dim] = "periodic" if periodic[dim] else kind.lower()
        return periodic

    def _sphere_axes(self) -> tuple[tuple[str, ...], tuple[np.ndarray, ...]]:
        """(lat, lon) in degrees from an equiangular grid: `theta` (colatitude) and `phi` in radians, or `lat`,
        `lon` in degrees (as our export writes them)."""
        if tuple(self.dims) == SPHERE_AXES:
            return SPHERE_AXES, self.coords
        if tuple(self.dims) == ("theta", "phi"):
            theta, phi = self.coords
            return SPHERE_AXES, (90.0 - np.rad2deg(theta), np.rad2deg(phi))
        raise DatasetError(f"{self.path}: a spherical grid has spatial_dims {self.dims}; expected theta, phi "
                           f"(radians) or lat, lon (degrees)")

    # --- time ---------------------------------------------------------------------------------------
    def _read_time(self, f: h5py.File) -> None:
        dims = f["dimensions"]
        dset = array(self.path, dims, "time", LAYOUT)
        times = values(self.path, dset)
        if _flag(self.path, dset, "sample_varying", False):
            if times.shape[:1] != (self.n_traj,) or times.ndim != 2:
                raise DatasetError(f"{self.path}: dimensions/time varies between trajectories but has shape "
                                   f"{times.shape}; expected ({self.n_traj}, T)")
        else:
            times = np.broadcast_to(times.reshape(1, -1), (self.n_traj, times.size))
        self.n_frames = times.shape[1]
        if self.n_frames < 2:
            self.dt = np.ones(self.n_traj)
        else:
            steps = np.diff(times, axis=1)
            self.dt = steps[:, 0].copy()
            spread = np.abs(steps - self.dt[:, None]).max(axis=1) / np.abs(self.dt)
            if (self.dt <= 0).any() or (spread > TIME_TOLERANCE).any():
                i = int(np.argmax((self.dt <= 0) | (spread > TIME_TOLERANCE)))
                raise DatasetError(f"{self.path}: the time grid of trajectory {i} is not uniform and increasing "
                                   f"(steps from {steps[i].min():.6g} to {steps[i].max():.6g}); inconsistent time "
                                   f"grids cannot be mapped")
        self.recorded_interval = FRAME_INTERVAL_ATTR in f.attrs
        self.frame_interval = (float(attribute(self.path, f, FRAME_INTERVAL_ATTR, LAYOUT))
                               if self.recorded_interval else float(self.dt.mean()))

    # --- parameters ---------------------------------------------------------------------------------
    def _read_parameters(self, f: h5py.File) -> None:
        scalars = member(self.path, f, "scalars", LAYOUT)
        self.parameters: dict[str, np.ndarray] = {}
        for name in name_list(self.path, scalars, "field_names", LAYOUT):
            if not scalars.id.links.exists(name.encode()):
                raise DatasetError(f"{self.path}: scalars.field_names lists {shown(name)}, but scalars has no such "
                                   f"array (missing scalar)")
            dset = array(self.path, scalars, name, LAYOUT)
            if _flag(self.path, dset, "time_varying", False):
                self.notes.append(f"scalar {name!r} varies in time and is not mapped (a parameter is one value per "
                                  f"trajectory)")
                continue
            data = values(self.path, dset)
            self.parameters[name] = self._per_trajectory(name, data, _flag(self.path, dset, "sample_varying", False))
        for name in name_list(self.path, f, "simulation_parameters", LAYOUT):
            if name in self.parameters:
                continue
            if name not in f.attrs:
                raise DatasetError(f"{self.path}: simulation parameter {shown(name)} has neither a root attribute nor "
                                   f"an array in scalars (missing scalar)")
            value = np.asarray(attribute(self.path, f, name, LAYOUT), dtype=np.float64)
            self.parameters[name] = self._per_trajectory(name, value, value.size == self.n_traj and value.size > 1)
        for name in self.parameters:
            if not _is_variable(name) or name in (TRAJ_DIM, TIME_DIM, SEED_VAR, *self.names):
                raise DatasetError(f"{self.path}: scalar {shown(name)} cannot name a parameter of ours (expected "
                                   f"{_VARIABLE}, not a coordinate, traj, time or seed)")

    def _per_trajectory(self, name: str, data: np.ndarray, sample_varying: bool) -> np.ndarray:
        """A constant scalar as float64 `[n_traj]`."""
        if sample_varying:
            if data.shape != (self.n_traj,):
                raise DatasetError(f"{self.path}: scalar {shown(name)} varies between trajectories but has shape "
                                   f"{data.shape}; expected ({self.n_traj},)")
            return data.astype(np.float64)
        if data.size != 1 or not np.isfinite(data).all():
            raise DatasetError(f"{self.path}: scalar {shown(name)} has shape {data.shape}; expected one value")
        return np.full(self.n_traj, float(data.reshape(())), dtype=np.float64)

    # --- fields -------------------------------------------------------------------------------------
    def _read_fields(self, f: h5py.File) -> None:
        self.components: list[_Component] = []
        self.field_shapes: dict[str, tuple[int, ...]] = {}
        axes = self.dims
        for order, key in enumerate(FIELD_GROUPS):
            group = member(self.path, f, key, LAYOUT)
            for name in name_list(self.path, group, "field_names", LAYOUT):
                dset = array(self.path, group, name, LAYOUT)
                flags = {k: _flag(self.path, dset, k, True) for k in ("sample_varying", "time_varying")}
                dim_varying = attribute(self.path, dset, "dim_varying", LAYOUT) if "dim_varying" in dset.attrs \
                    else [True] * len(axes)
                if not (all(flags.values()) and all(np.atleast_1d(dim_varying))):
                    constant = [k for k, v in flags.items() if not v] + ([] if all(np.atleast_1d(dim_varying))
                                                                         else ["dim_varying"])
                    self.notes.append(f"{key} field {name!r} is not mapped: it does not vary along every axis "
                                      f"({', '.join(k.replace('_varying', '') for k in constant)} constant)")
                    continue
                want = (self.n_traj, self.n_frames, *self.shape, *([len(axes)] * order))
                if dset.shape != want:
                    raise DatasetError(f"{self.path}: {key}/{name} has shape {dset.shape}; expected {want}")
                self.field_shapes[f"{key}/{name}"] = want
                for component in np.ndindex(*([len(axes)] * order)):
                    suffix = "".join(axes[i] for i in component)
                    our = f"{name}_{suffix}" if suffix else name
                    if not _is_variable(our):
                        raise DatasetError(f"{self.path}: field {shown(our)} cannot name a field of ours "
                                           f"(expected {_VARIABLE})")
                    what = f"component {suffix} of " if suffix else ""
                    self.components.append(_Component(our, f"{key}/{name}", tuple(component), self.bc_text,
                                                      f"{what}The Well's {key} field {name}"))

    def signature(self) -> tuple[Any, ...]:
        """What every file of one dataset must share."""
        return (self.dataset_name, self.grid, self.names, self.shape, tuple(c.name for c in self.components),
                tuple(self.parameters))


def _flag(path: Path, dset: h5py.Dataset, key: str, default: bool) -> bool:
    """A boolean attribute of a Well array (`sample_varying`, `time_varying`), `default` where absent."""
    if key not in dset.attrs:
        return default
    value = attribute(path, dset, key, LAYOUT)
    if not isinstance(value, bool | int):
        raise DatasetError(f"{path}: attribute '{key}' of '{dset.name}' is {shown(value)}; expected a boolean")
    return bool(value)


def _whole(path: Path, f: h5py.File, key: str) -> int:
    """A root attribute that is a positive whole number."""
    value = attribute(path, f, key, LAYOUT)
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise DatasetError(f"{path}: root attribute '{key}' is {shown(value)}; expected a positive whole number")
    return int(value)


def _split_dirs(directory: Path) -> dict[str, Path]:
    """The split directories of a Well dataset: `<dir>/data/<split>` (the Well's layout) or `<dir>/<split>`."""
    base = directory / "data" if (directory / "data").is_dir() else directory
    found = {split: base / split for split in SPLITS if (base / split).is_dir()}
    if not found:
        raise DatasetError(f"{directory} is not a dataset directory of {LAYOUT}: it has no data/train, data/valid or "
                           f"data/test directory of .hdf5 files")
    return found


def _split(pde: str, preset: str, split: str, files: list[_File], uniform_dt: float | None) -> ImportedSplit:
    """Our split `split` of its Well files (in file name order)."""
    first = files[0]
    for other in files[1:]:
        if other.n_frames != first.n_frames:
            raise DatasetError(f"{other.path} has {other.n_frames} time steps, {first.path} has {first.n_frames}; "
                               f"inconsistent time grids (a split has one number of frames)")
    params = {name: np.concatenate([f.parameters[name] for f in files]) for name in first.parameters}
    specs = [ParameterSpec(name, "", f"The Well's scalar {name}") for name in first.parameters]
    if uniform_dt is None and FRAME_DT_PARAMETER not in params:
        params[FRAME_DT_PARAMETER] = np.concatenate([f.dt for f in files])
        specs.append(ParameterSpec(FRAME_DT_PARAMETER, "time units", "time between stored frames"))
    coordinates = tuple(Coordinate(name, values, "degrees" if first.grid == "sphere" else "length units",
                                   f"The Well's dimension {dim}")
                        for name, values, dim in zip(first.names, first.coords, first.dims, strict=True))
    layout = DatasetLayout(
        pde=pde, preset=preset, split=split, n_traj=sum(f.n_traj for f in files), n_frames=first.n_frames,
        frame_interval=uniform_dt if uniform_dt is not None else float(np.mean([f.frame_interval for f in files])),
        grid=first.grid, coordinates=coordinates,
        fields=tuple(FieldSpec(c.name, "", c.boundary, c.description) for c in first.components),
        parameters=tuple(specs), attrs={"imported_from": "the_well"},
    )
    fields = tuple(FieldMap(c.name, tuple(Piece(f.path, c.dataset, f.field_shapes[c.dataset], c.component)
                                          for f in files))
                   for c in first.components)
    return ImportedSplit(layout, fields, params, tuple(str(f.path) for f in files),
                         tuple(dict.fromkeys(note for f in files for note in f.notes)))


def read_the_well(directory: Path, pde: str | None, preset: str) -> dict[str, ImportedSplit]:
    """Every split of the Well dataset directory `directory`, mapped to dataset `<pde>-<preset>` (pde None: the
    Well's `dataset_name`); one sentence for a file of another layout, a missing scalar, inconsistent time grids or
    files that disagree."""
    directory = directory.resolve()
    files = {split: [_File(p) for p in hdf5_files(d, f"{LAYOUT} split directory")]
             for split, d in _split_dirs(directory).items()}
    reference = next(iter(files.values()))[0]
    for split_files in files.values():
        for other in split_files:
            if other.signature() != reference.signature():
                raise DatasetError(f"{other.path} and {reference.path} disagree on the dataset name, grid, fields or "
                                   f"scalars; the files of one dataset share them")
    intervals = np.concatenate([f.dt for split_files in files.values() for f in split_files])
    has_dt = FRAME_DT_PARAMETER in reference.parameters
    # One frame interval for all: a nominal `frame_interval`; else a per-trajectory `dt` (unless a scalar is one).
    recorded = all(f.recorded_interval for split_files in files.values() for f in split_files)
    uniform = None if has_dt or np.ptp(intervals) > TIME_TOLERANCE * np.abs(intervals).max() else \
        float(reference.frame_interval if recorded else intervals.mean())
    if has_dt:
        for split_files in files.values():
            for f in split_files:
                off = np.abs(f.parameters[FRAME_DT_PARAMETER] - f.dt) / f.dt
                if f.n_frames > 1 and (off > TIME_TOLERANCE).any():
                    raise DatasetError(f"{f.path}: scalar dt of trajectory {int(np.argmax(off))} is not the step of "
                                       f"its time grid; inconsistent time grids")
    name = pde if pde is not None else reference.dataset_name
    if name_problem(name) is not None:
        raise DatasetError(f"{reference.path}: dataset_name {shown(name)} {name_problem(name)}; pass --pde NAME")
    return {split: _split(name, preset, split, split_files, uniform) for split, split_files in files.items()}
