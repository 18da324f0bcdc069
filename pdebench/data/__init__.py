"""The data layer: the trajectory file format (write, read, check), manifests, datasets and normalisation."""

from pdebench.data.check import check_file, validate_file
from pdebench.data.manifest import file_sha256, manifest_hash, read_manifest, write_manifest
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
)
from pdebench.data.writer import TrajectoryWriter

__all__ = [
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "SPLITS",
    "Coordinate",
    "DatasetError",
    "DatasetLayout",
    "FieldSpec",
    "ParameterSpec",
    "TrajectoryFile",
    "TrajectoryWriter",
    "check_file",
    "file_sha256",
    "manifest_hash",
    "open_dataset_dir",
    "read_manifest",
    "split_path",
    "validate_file",
    "write_manifest",
]
