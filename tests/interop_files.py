"""Small files in the foreign layouts pdebench imports, written the way their own tools write them.

- LPSDA's KS files: exactly the arrays, names, shapes and dtypes of `generate_trajectories` in LPSDA's
  `generate/generate_data.py` (a group named by the split; `pde_<nt>-<nx>`, `x`, `dx`, `t`, `dt`, all float64 via
  `dtype=float`, no attributes), with PDEArena's optional per-trajectory viscosity `v`.
- The Well's files: the structure of `the_well.utils.dummy_data.write_dummy_data` (the package's own writer of test
  data) and of the dataset scripts it follows, with the sizes, fields and boundary conditions a test asks for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np

from pdebench.data.reader import TrajectoryFile


def write_lpsda_ks(path: Path, split: str, u: np.ndarray, dx: np.ndarray, dt: np.ndarray,
                   t0: np.ndarray | None = None, v: np.ndarray | None = None) -> Path:
    """An LPSDA KS file `path` with one group `split`: u `[n, nt, nx]`, per-trajectory `dx`, `dt` `[n]`, the grid
    `x = linspace(0, (1 - 1/nx) L, nx)` with `L = dx * nx`, times `t = t0 + k dt` (t0: per-trajectory first time,
    default 0); `v` adds PDEArena's viscosity array."""
    n, nt, nx = u.shape
    t0 = np.zeros(n) if t0 is None else t0
    with h5py.File(path, "a") as f:
        group = f.create_group(split)
        field = group.create_dataset(f"pde_{nt}-{nx}", (n, nt, nx), dtype=float)
        x = group.create_dataset("x", (n, nx), dtype=float)
        dxs = group.create_dataset("dx", (n,), dtype=float)
        t = group.create_dataset("t", (n, nt), dtype=float)
        dts = group.create_dataset("dt", (n,), dtype=float)
        for i in range(n):
            length = dx[i] * nx
            field[i:i + 1, :, :] = u[i]
            x[i:i + 1, :] = np.linspace(0, (1 - 1.0 / nx) * length, nx)
            dxs[i:i + 1] = dx[i]
            t[i:i + 1, :] = t0[i] + np.arange(nt) * dt[i]
            dts[i:i + 1] = dt[i]
        if v is not None:
            group.create_dataset("v", data=np.asarray(v, dtype=float))
    return path


def ks_as_lpsda(dataset_dir: Path, out_dir: Path) -> Path:
    """Every split of one of our KS datasets written as LPSDA's files `KS_<split>.h5` in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid", "test"):
        with TrajectoryFile(dataset_dir / f"{split}.h5") as tf:
            params = tf.parameters()
            u = tf.read_field("u", slice(None)).astype(np.float64)
            write_lpsda_ks(out_dir / f"KS_{split}.h5", split, u, params["dx"], params["dt"],
                           t0=np.full(tf.n_traj, 71.5))
    return out_dir


def _flags(dset: h5py.Dataset, sample: bool, time: bool, ndim: int | None = None) -> None:
    dset.attrs["sample_varying"] = sample
    dset.attrs["time_varying"] = time
    if ndim is not None:
        dset.attrs["dim_varying"] = [True] * ndim


def write_well_file(path: Path, *, dataset_name: str = "toy_flow", n_traj: int = 2, times: np.ndarray,
                    coords: Mapping[str, np.ndarray], bcs: Mapping[str, str],
                    fields: Sequence[Mapping[str, np.ndarray]], scalars: Mapping[str, float | np.ndarray],
                    time_scalars: Mapping[str, np.ndarray] | None = None, grid_type: str = "cartesian",
                    constant_fields: Mapping[str, np.ndarray] | None = None,
                    sample_varying_time: bool = False) -> Path:
    """One Well file: `fields[order]` maps names to arrays `[n_traj, T, *space, D^order]`; `scalars` are constant
    (a float: shared, an array `[n_traj]`: per trajectory) and also listed as `simulation_parameters` root
    attributes; `bcs` maps each dimension to PERIODIC, WALL or OPEN; `constant_fields` are t0 fields constant in
    time `[n_traj, *space]`; `time_scalars` vary in time `[T]`."""
    dims = list(coords)
    with h5py.File(path, "w") as file:
        file.attrs["dataset_name"] = dataset_name
        file.attrs["grid_type"] = grid_type
        file.attrs["n_spatial_dims"] = len(dims)
        file.attrs["n_trajectories"] = n_traj
        file.attrs["simulation_parameters"] = list(scalars)
        for key, val in scalars.items():
            file.attrs[key] = val
        group = file.create_group("boundary_conditions")
        for dim, kind in bcs.items():
            sub = group.create_group(f"{dim}_{kind.lower()}")
            sub.attrs["associated_dims"] = [dim]
            sub.attrs["associated_fields"] = []
            sub.attrs["bc_type"] = kind
            sub.attrs["sample_varying"] = False
            sub.attrs["time_varying"] = False
            mask = np.zeros(len(coords[dim]), dtype=bool)
            mask[[0, -1]] = True
            sub.create_dataset("mask", data=mask)
        group = file.create_group("dimensions")
        group.attrs["spatial_dims"] = dims
        dset = group.create_dataset("time", data=times)
        dset.attrs["sample_varying"] = sample_varying_time
        for key, val in coords.items():
            dset = group.create_dataset(key, data=val)
            _flags(dset, False, False)
        group = file.create_group("scalars")
        group.attrs["field_names"] = [*scalars, *(time_scalars or {})]
        for key, val in scalars.items():
            varying = np.ndim(val) > 0
            dset = group.create_dataset(key, data=np.asarray(val))
            _flags(dset, varying, False)
        for key, val in (time_scalars or {}).items():
            _flags(group.create_dataset(key, data=val), False, True)
        for order in range(3):
            group = file.create_group(f"t{order}_fields")
            names = list(fields[order]) if order < len(fields) else []
            extra = list(constant_fields or {}) if order == 0 else []
            group.attrs["field_names"] = names + extra
            for name in names:
                _flags(group.create_dataset(name, data=fields[order][name]), True, True, len(dims))
            for name in extra:
                _flags(group.create_dataset(name, data=constant_fields[name]), True, False, len(dims))
    return path
