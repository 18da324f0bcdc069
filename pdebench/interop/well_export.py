"""`pdebench-export the_well DATASET OUT`: write one of our datasets in The Well's layout, streaming.

Each split becomes `OUT/data/<split>/<pde>-<preset>.hdf5`, the path `the_well.data.WellDataset(path=OUT,
well_split_name=split)` reads, written one trajectory at a time (memory stays at one trajectory of one field) under
a temporary name and renamed once complete. The mapping is the inverse of the import's (`pdebench.interop.the_well`,
docs/interop.md): every field is a `t0_fields` array `[n_traj, T, *space]` float32; every parameter a scalar that
varies between trajectories (float64 `[n_traj]`, also listed in `simulation_parameters`); the coordinates are
`dimensions/<name>` (float64, so the grid survives a round trip bit for bit); the frame times are `dimensions/time`,
`[T]` or, where the dataset has a per-trajectory `dt`, `[n_traj, T]` marked `sample_varying`; the grid kind gives
the boundary conditions (PERIODIC on every axis, WALL on every axis, or a sphere's PERIODIC longitude and OPEN
latitude, `grid_type` equiangular). The nominal frame interval is kept as root attribute `pdebench_frame_interval`.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from pdebench.console import progress_bar
from pdebench.data.atomic import replace_durably, temp_path_for
from pdebench.data.manifest import verify_dataset
from pdebench.data.reader import TrajectoryFile
from pdebench.data.schema import FRAME_DT_PARAMETER, SPLITS
from pdebench.interop.the_well import FIELD_GROUPS, FRAME_INTERVAL_ATTR

# Root attributes of a Well file; a parameter of the same name is written to `scalars` only, never over one of them.
_WELL_ROOT_ATTRS = ("dataset_name", "grid_type", "n_spatial_dims", "n_trajectories", "simulation_parameters",
                    FRAME_INTERVAL_ATTR)


def _flags(dset: h5py.Dataset, sample: bool, time: bool, spatial_dims: int | None = None) -> None:
    dset.attrs["sample_varying"] = sample
    dset.attrs["time_varying"] = time
    if spatial_dims is not None:
        dset.attrs["dim_varying"] = [True] * spatial_dims


def _boundaries(f: h5py.File, tf: TrajectoryFile) -> None:
    """One boundary condition per axis, masking both ends of it (as The Well's files do)."""
    group = f.create_group("boundary_conditions")
    for axis, (name, periodic) in enumerate(zip(tf.coordinate_names, tf.grid.periodic, strict=True)):
        kind = "PERIODIC" if periodic else ("OPEN" if tf.grid_kind == "sphere" else "WALL")
        bc = group.create_group(f"{name}_{kind.lower()}")
        bc.attrs["associated_dims"] = [name]
        bc.attrs["associated_fields"] = []
        bc.attrs["bc_type"] = kind
        bc.attrs["sample_varying"] = False
        bc.attrs["time_varying"] = False
        mask = np.zeros(tf.spatial_shape[axis], dtype=bool)
        mask[[0, -1]] = True
        bc.create_dataset("mask", data=mask)


def _write_split(tf: TrajectoryFile, path: Path, name: str, progress: bool) -> None:
    """Write one split file of The Well's layout at `path` from `tf`, a trajectory of a field at a time."""
    ndim = len(tf.coordinate_names)
    params = tf.parameters()
    with h5py.File(path, "w") as f:
        f.attrs["dataset_name"] = name
        f.attrs["grid_type"] = "equiangular" if tf.grid_kind == "sphere" else "cartesian"
        f.attrs["n_spatial_dims"] = ndim
        f.attrs["n_trajectories"] = tf.n_traj
        f.attrs["simulation_parameters"] = list(tf.parameter_names)
        for key in tf.parameter_names:
            if key not in _WELL_ROOT_ATTRS:
                f.attrs[key] = params[key]
        f.attrs[FRAME_INTERVAL_ATTR] = tf.frame_interval
        _boundaries(f, tf)
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = list(tf.coordinate_names)
        per_trajectory = FRAME_DT_PARAMETER in tf.parameter_names
        times = (np.stack([tf.frame_times(i) for i in range(tf.n_traj)]) if per_trajectory
                 else tf.frame_times(0))
        dims.create_dataset("time", data=times).attrs["sample_varying"] = per_trajectory
        for coord in tf.coordinate_names:
            _flags(dims.create_dataset(coord, data=tf.coordinate(coord)), False, False)
        scalars = f.create_group("scalars")
        scalars.attrs["field_names"] = list(tf.parameter_names)
        for key in tf.parameter_names:
            _flags(scalars.create_dataset(key, data=params[key]), True, False)
        groups = {key: f.create_group(key) for key in FIELD_GROUPS}
        groups["t0_fields"].attrs["field_names"] = list(tf.field_names)
        for key in FIELD_GROUPS[1:]:
            groups[key].attrs["field_names"] = []
        shape = (tf.n_traj, tf.n_frames, *tf.spatial_shape)
        with progress_bar(tf.n_traj * len(tf.field_names), f"export {path.name}", "traj", progress) as bar:
            for field in tf.field_names:
                dset = groups["t0_fields"].create_dataset(field, shape=shape, dtype=np.float32,
                                                          chunks=(1, *shape[1:]))
                _flags(dset, True, True, ndim)
                for i in range(tf.n_traj):
                    dset[i] = tf.read_field(field, i)
                    bar.update(1)


def export_the_well(dataset_dir: str | Path, out: str | Path, progress: bool = True) -> list[Path]:
    """Write every split of dataset directory `dataset_dir` (checked against its manifest first) in The Well's
    layout under `out`; returns the files written. A file appears under its final name only once complete."""
    dataset_dir = verify_dataset(Path(dataset_dir))
    written = []
    for split in SPLITS:
        source = dataset_dir / f"{split}.h5"
        if not source.is_file():
            continue
        target_dir = Path(out) / "data" / split
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / f"{dataset_dir.name}.hdf5"
        tmp = temp_path_for(target)
        try:
            with TrajectoryFile(source) as tf:
                _write_split(tf, tmp, tf.pde, progress)
            written.append(replace_durably(tmp, target))
        finally:
            tmp.unlink(missing_ok=True)
    return written
