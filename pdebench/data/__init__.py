"""The data layer: the trajectory file format (write, read, check), manifests, datasets and normalisation.

Its names are imported on first use (`pdebench.exports`), so that importing one small module of the layer (`names`,
`atomic`, `lock`) does not import torch and h5py with every other one: the leaderboard and `--help` stay light."""

from __future__ import annotations

from pdebench.exports import lazy_exports

# public name -> the module of this package that defines it
_HOMES = {
    "TrajectoryBatch": "pdebench.data.batch",
    "WindowBatch": "pdebench.data.batch",
    "collate": "pdebench.data.batch",
    "check_file": "pdebench.data.check",
    "validate_file": "pdebench.data.check",
    "GRID_KINDS": "pdebench.data.grid",
    "Grid": "pdebench.data.grid",
    "benchmark_facts": "pdebench.data.manifest",
    "file_sha256": "pdebench.data.manifest",
    "manifest_hash": "pdebench.data.manifest",
    "read_manifest": "pdebench.data.manifest",
    "write_manifest": "pdebench.data.manifest",
    "NetSpec": "pdebench.data.netspec",
    "TrajectoryFile": "pdebench.data.reader",
    "open_dataset_dir": "pdebench.data.reader",
    "split_path": "pdebench.data.reader",
    "SCHEMA_NAME": "pdebench.data.schema",
    "SCHEMA_VERSION": "pdebench.data.schema",
    "SPLITS": "pdebench.data.schema",
    "Coordinate": "pdebench.data.schema",
    "DatasetError": "pdebench.data.schema",
    "DatasetLayout": "pdebench.data.schema",
    "FieldSpec": "pdebench.data.schema",
    "ParameterSpec": "pdebench.data.schema",
    "dataset_name": "pdebench.data.schema",
    "TrajectoryWriter": "pdebench.data.writer",
}

__all__ = sorted(_HOMES)
__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
