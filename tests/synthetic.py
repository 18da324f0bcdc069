"""Small synthetic datasets written through the real writer, for proving the seams on other grids than KS's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from pdebench.data.grid import Grid
from pdebench.data.manifest import write_manifest
from pdebench.data.schema import SPLITS, Coordinate, DatasetLayout, FieldSpec, ParameterSpec, dataset_name
from pdebench.data.writer import TrajectoryWriter

# fields [n_traj, n_frames, *space] per name, parameters [n_traj] per name, from an rng and the split's sizes
Maker = Callable[[np.random.Generator, int, int], tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]


def write_dataset(root: Path, pde: str, grid: Grid, fields: tuple[str, ...], parameters: tuple[str, ...],
                  make: Maker, sizes: dict[str, tuple[int, int]], benchmark: dict) -> Path:
    """Write `<root>/<pde>-tiny/{train,valid,test}.h5` and a manifest recording `benchmark`."""
    out = root / dataset_name(pde, "tiny")
    units = "degrees" if grid.kind == "sphere" else "1"
    for index, split in enumerate(SPLITS):
        n_traj, n_frames = sizes[split]
        layout = DatasetLayout(
            pde=pde, preset="tiny", split=split, n_traj=n_traj, n_frames=n_frames, frame_interval=0.5,
            grid=grid.kind,
            coordinates=tuple(Coordinate(n, c, units) for n, c in zip(grid.axis_names, grid.coordinates, strict=True)),
            fields=tuple(FieldSpec(f, "1", grid.kind) for f in fields),
            parameters=tuple(ParameterSpec(p, "1") for p in parameters),
        )
        field_data, param_data = make(np.random.default_rng(index), n_traj, n_frames)
        with TrajectoryWriter(out / f"{split}.h5", layout) as writer:
            writer.append(field_data, param_data, np.arange(n_traj))
            writer.finalize()
    write_manifest(out, {"pde": pde, "benchmark": benchmark})
    return out
