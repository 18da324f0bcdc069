"""The on-disk trajectory format: names, version and the small records that describe a dataset file.

The written specification is `docs/data_format.md`; `pdebench.data.check` enforces it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pdebench.errors import UserError

SCHEMA_NAME = "pdebench-trajectories"
# 1.1: root attribute `grid` is one of `periodic`, `box`, `sphere` (1.0 wrote `periodic-uniform` for `periodic`).
# 1.2: every field carries HDF5's Fletcher-32 checksum filter, so a corrupted chunk fails to read.
# 1.3: root attribute `quadrature` records the grid's quadrature rule (`pdebench.data.grid.QUADRATURE_RULES`).
# 1.4: root attribute `conditioning` lists the parameters that condition a model (the others are records only).
SCHEMA_VERSION = "1.4"
SUPPORTED_SCHEMA_VERSIONS = ("1.0", "1.1", "1.2", "1.3", "1.4")
# The first version whose fields must carry the Fletcher-32 filter (older files are read without it).
FLETCHER32_SINCE = "1.2"
# The first version that records the quadrature rule; older files get the rule of their grid kind and coordinates,
# the one a 1.3 writer records for them (`pdebench.data.grid.quadrature_rule`).
QUADRATURE_SINCE = "1.3"
QUADRATURE_ATTR = "quadrature"
# The first version that records which parameters condition a model; in older files every parameter does.
CONDITIONING_SINCE = "1.4"
CONDITIONING_ATTR = "conditioning"
SPLITS = ("train", "valid", "test")
# A per-trajectory parameter with this name is the physical time between stored frames of that trajectory;
# without it, frame k of every trajectory is at time k * frame_interval (see docs/data_format.md).
FRAME_DT_PARAMETER = "dt"
# Root attribute of an imported split file (pdebench.interop): the JSON list of the absolute paths of the foreign files
# its virtual fields map. The reader follows a virtual dataset only into files listed here, and the manifest pins each
# of them by size and sha256 (docs/interop.md).
SOURCES_ATTR = "sources"

# Root attributes every split file carries (the writer also adds FINGERPRINT_ATTR; from 1.3, QUADRATURE_ATTR; from
# 1.4, CONDITIONING_ATTR).
REQUIRED_ROOT_ATTRS = (
    "schema",
    "schema_version",
    "pde",
    "preset",
    "split",
    "grid",
    "spatial_dims",
    "spatial_coordinates",
    "frame_interval",
    "fields",
    "parameters",
    "n_traj_complete",
)


def version_tuple(version: str) -> tuple[int, ...]:
    """`"1.2"` -> `(1, 2)`, for ordering schema versions (only for a version in SUPPORTED_SCHEMA_VERSIONS)."""
    return tuple(int(part) for part in str(version).split("."))


def required_root_attrs(version: str) -> tuple[str, ...]:
    """The root attributes a split file of schema `version` (a supported one) must carry."""
    required = REQUIRED_ROOT_ATTRS
    if version_tuple(version) >= version_tuple(QUADRATURE_SINCE):
        required = (*required, QUADRATURE_ATTR)
    if version_tuple(version) >= version_tuple(CONDITIONING_SINCE):
        required = (*required, CONDITIONING_ATTR)
    return required


TRAJ_DIM = "traj"
TIME_DIM = "time"
SEED_VAR = "seed"
# sha256 of the layout a file was created with, so an interrupted write resumes only with the same layout.
FINGERPRINT_ATTR = "layout_fingerprint"
# A split file is written as `<name>.partial` and renamed when complete.
PARTIAL_SUFFIX = ".partial"
# The dataset directory's description and checksums.
MANIFEST_NAME = "manifest.json"


def dataset_name(pde: str, preset: str) -> str:
    """The name of a dataset and of its directory under the data root: `<pde>-<preset>`, e.g. `ks-small`."""
    return f"{pde}-{preset}"


class DatasetError(UserError, ValueError):
    """A dataset file or directory is missing, malformed or does not match what was asked for."""


@dataclass(frozen=True)
class FieldSpec:
    """One physical field stored as a float32 variable `[traj, time, *space]`."""

    name: str
    units: str
    boundary: str
    description: str = ""


@dataclass(frozen=True)
class ParameterSpec:
    """One per-trajectory scalar (PDE parameter, grid spacing, frame interval) stored along `traj`.

    conditioning: whether models see it. True for what defines the problem a model must solve (a coefficient, the
    domain length, the frame interval). False for a record of what a trajectory's initial condition drew (e.g. the
    latitudes and speeds of its jets): it is written and read like any other parameter (float64 `[n_traj]`,
    `TrajectoryFile.parameters()`), but it is never a model input and never standardised, since the initial frames
    already carry it and a model given it would be told more than the data it forecasts from.
    """

    name: str
    units: str
    description: str = ""
    conditioning: bool = True


@dataclass(frozen=True)
class Coordinate:
    """A spatial coordinate stored as a dimension scale (values along one axis)."""

    name: str
    values: np.ndarray
    units: str
    description: str = ""


@dataclass(frozen=True)
class DatasetLayout:
    """Everything needed to create one split file before any trajectory is written."""

    pde: str
    preset: str
    split: str
    n_traj: int
    n_frames: int
    frame_interval: float
    grid: str
    coordinates: tuple[Coordinate, ...]
    fields: tuple[FieldSpec, ...]
    parameters: tuple[ParameterSpec, ...]
    attrs: dict[str, str] = field(default_factory=dict)

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(len(c.values) for c in self.coordinates)

    @property
    def dataset_name(self) -> str:
        return dataset_name(self.pde, self.preset)
