"""The data layer: the trajectory file format (write, read, check), manifests, datasets and normalisation."""

from pdebench.data.batch import TrajectoryBatch, WindowBatch, collate
from pdebench.data.check import check_file, validate_file
from pdebench.data.grid import GRID_KINDS, Grid
from pdebench.data.manifest import benchmark_facts, file_sha256, manifest_hash, read_manifest, write_manifest
from pdebench.data.netspec import NetSpec
from pdebench.data.reader import TrajectoryFile, open_dataset_dir, split_path
from pdebench.data.schema import (
    SCHEMA_NAME,
    SCHEMA_VERSION,
    SPLITS,
    Coordinate,
    DatasetError,
    DatasetLayout,
    FieldSpec,
    ParameterSpec,
    dataset_name,
)
from pdebench.data.writer import TrajectoryWriter

__all__ = [
    "GRID_KINDS",
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "SPLITS",
    "Coordinate",
    "DatasetError",
    "DatasetLayout",
    "FieldSpec",
    "Grid",
    "NetSpec",
    "ParameterSpec",
    "TrajectoryBatch",
    "TrajectoryFile",
    "TrajectoryWriter",
    "WindowBatch",
    "benchmark_facts",
    "check_file",
    "collate",
    "dataset_name",
    "file_sha256",
    "manifest_hash",
    "open_dataset_dir",
    "read_manifest",
    "split_path",
    "validate_file",
    "write_manifest",
]
