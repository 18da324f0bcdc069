"""Write the split file of an imported dataset: our format, with every field a virtual dataset into foreign files.

An imported split file (`<root>/<pde>-<preset>/<split>.h5`) is a complete file of the trajectory format
(docs/data_format.md): root attributes, coordinates, parameters and seeds are stored in it (a few KB), and each field
is an HDF5 virtual dataset whose pieces map the foreign arrays in place, one piece per foreign file, selecting one
component of a vector or tensor field where needed. HDF5 converts the foreign dtype (float64 in LPSDA's files) to the
float32 our fields are read as. Root attribute `sources` (`SOURCES_ATTR`) declares the foreign files, which is what
lets the reader follow these virtual datasets and the manifest pin the files by sha256 (pdebench.data.reader
`storage_problem`, pdebench.data.manifest).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5netcdf
import h5py
import numpy as np

from pdebench.data.atomic import replace_durably, temp_path_for
from pdebench.data.schema import (
    SEED_VAR,
    SOURCES_ATTR,
    TIME_DIM,
    TRAJ_DIM,
    DatasetLayout,
)
from pdebench.data.writer import write_split_header


@dataclass(frozen=True)
class Piece:
    """One foreign array that a field maps for a run of consecutive trajectories.

    file: absolute path of the foreign HDF5 file; dataset: the array's path inside it, of shape `shape` =
    `(n_traj, n_frames, *space, *component_axes)`; component: the index along the trailing component axes (empty for
    a scalar field), so the piece contributes `[n_traj, n_frames, *space]`.
    """

    file: Path
    dataset: str
    shape: tuple[int, ...]
    component: tuple[int, ...] = ()

    @property
    def n_traj(self) -> int:
        return int(self.shape[0])


@dataclass(frozen=True)
class FieldMap:
    """Where a field of the imported split lies: its pieces, in trajectory order (their `n_traj` add up)."""

    name: str
    pieces: tuple[Piece, ...]


@dataclass(frozen=True)
class ImportedSplit:
    """Everything an adapter reads from a foreign layout for one split: the layout of our split file, where each
    field lies, the parameters (float64 `[n_traj]` each), the foreign files (absolute paths) and what of them could
    not be mapped (one sentence each)."""

    layout: DatasetLayout
    fields: tuple[FieldMap, ...]
    parameters: dict[str, np.ndarray]
    sources: tuple[str, ...]
    notes: tuple[str, ...] = ()


def _structure(path: Path, layout: DatasetLayout, sources: Sequence[str]) -> None:
    """Write dims, coordinates, parameters and seeds (unfilled) and the root attributes with h5netcdf, so that the
    file is netCDF4 as any split file is; the fields are added with h5py (`_add_fields`)."""
    with h5netcdf.File(path, "w") as f:
        write_split_header(f, layout, n_traj_complete=layout.n_traj,
                           extra_attrs={SOURCES_ATTR: json.dumps(list(sources))},
                           seed_description="no seed in the foreign layout: the trajectory's index in the split")


def _add_fields(f: h5py.File, layout: DatasetLayout, fields: Sequence[FieldMap]) -> None:
    """Create each field as a float32 virtual dataset `[traj, time, *space]` over its pieces, with the attributes and
    dimension scales of a written field. Unmapped points read as NaN, which the reader refuses."""
    shape = (layout.n_traj, layout.n_frames, *layout.spatial_shape)
    names = (TRAJ_DIM, TIME_DIM, *(c.name for c in layout.coordinates))
    specs = {fs.name: fs for fs in layout.fields}
    for field in fields:
        vds = h5py.VirtualLayout(shape=shape, dtype=np.float32)
        start = 0
        for piece in field.pieces:
            if tuple(piece.shape[1:len(shape)]) != shape[1:]:
                raise ValueError(f"piece {piece} of field {field.name} does not fit the split's shape {shape}")
            source = h5py.VirtualSource(str(piece.file), piece.dataset, shape=piece.shape)
            selection = (slice(None),) * len(shape) + tuple(piece.component)
            vds[start:start + piece.n_traj] = source[selection] if piece.component else source
            start += piece.n_traj
        if start != layout.n_traj:
            raise ValueError(f"the pieces of field {field.name} hold {start} trajectories, not {layout.n_traj}")
        dset = f.create_virtual_dataset(field.name, vds, fillvalue=np.float32(np.nan))
        spec = specs[field.name]
        dset.attrs["units"] = spec.units
        dset.attrs["boundary_conditions"] = spec.boundary
        dset.attrs["description"] = spec.description
        for axis, name in enumerate(names):
            dset.dims[axis].attach_scale(f[name])


def write_index(path: Path, layout: DatasetLayout, fields: Sequence[FieldMap], parameters: Mapping[str, np.ndarray],
                sources: Sequence[str]) -> Path:
    """Write the imported split file `path` for `layout`: its fields mapped by `fields`, its parameters (float64
    `[n_traj]` each) stored, its seeds the trajectory indices, `sources` (absolute paths) declared. The file appears
    under its name only once complete."""
    if [fm.name for fm in fields] != [fs.name for fs in layout.fields]:
        raise ValueError("one field map per field of the layout, in its order")
    tmp = temp_path_for(path)
    try:
        _structure(tmp, layout, sources)
        with h5py.File(tmp, "r+") as f:
            for p in layout.parameters:
                f[p.name][...] = np.asarray(parameters[p.name], dtype=np.float64)
            f[SEED_VAR][...] = np.arange(layout.n_traj, dtype=np.int64)
            _add_fields(f, layout, fields)
        return replace_durably(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
