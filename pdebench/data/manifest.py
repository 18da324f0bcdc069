"""`manifest.json` of a dataset directory: what was generated, how, and the checksum of every split file.

The manifest pins a dataset: results record `manifest_hash(dataset_dir)`, so a leaderboard entry can be
traced to the exact bytes it was computed on.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pdebench.data.atomic import atomic_write_text
from pdebench.data.reader import TrajectoryFile
from pdebench.data.schema import MANIFEST_NAME, SCHEMA_NAME, SCHEMA_VERSION, SPLITS, DatasetError

_MANIFEST_KEYS = ("schema", "schema_version", "dataset", "package_version", "config", "splits")
_SPLIT_KEYS = ("file", "bytes", "sha256", "n_traj", "n_frames")


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (memory does not grow with the file)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _package_version() -> str:
    from pdebench import __version__

    return str(__version__)


def write_manifest(dataset_dir: Path, config: dict[str, Any]) -> Path:
    """Write `<dataset_dir>/manifest.json` describing the split files present; atomic and durable (atomic.py)."""
    dataset_dir = Path(dataset_dir)
    splits: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        path = dataset_dir / f"{split}.h5"
        if not path.is_file():
            continue
        with TrajectoryFile(path) as tf:
            n_traj, n_frames = tf.n_traj, tf.n_frames
        splits[split] = {
            "file": path.name,
            "bytes": path.stat().st_size,
            "sha256": file_sha256(path),
            "n_traj": n_traj,
            "n_frames": n_frames,
        }
    if not splits:
        raise DatasetError(f"no split file ({', '.join(s + '.h5' for s in SPLITS)}) in {dataset_dir}")
    manifest = {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "dataset": dataset_dir.name,
        "package_version": _package_version(),
        "config": config,
        "splits": splits,
    }
    try:
        text = json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise DatasetError(
            f"the config for {dataset_dir / MANIFEST_NAME} is not plain JSON data: {exc}"
        ) from exc
    return atomic_write_text(dataset_dir / MANIFEST_NAME, text)


def read_manifest(dataset_dir: Path) -> dict[str, Any]:
    """Load and sanity-check `<dataset_dir>/manifest.json`; DatasetError naming it if missing/invalid."""
    path = Path(dataset_dir) / MANIFEST_NAME
    if not path.is_file():
        raise DatasetError(f"manifest {path} does not exist; regenerate the dataset to create it")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"manifest {path} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise DatasetError(f"manifest {path} must hold a JSON object")
    missing = [k for k in _MANIFEST_KEYS if k not in manifest]
    if missing:
        raise DatasetError(f"manifest {path} lacks key(s) {', '.join(missing)}")
    if manifest["schema"] != SCHEMA_NAME:
        raise DatasetError(f"manifest {path} has schema {manifest['schema']!r}; expected {SCHEMA_NAME!r}")
    splits = manifest["splits"]
    if not isinstance(splits, dict) or not all(
        isinstance(v, dict) and all(k in v for k in _SPLIT_KEYS) for v in splits.values()
    ):
        raise DatasetError(f"manifest {path}: 'splits' must map each split to {{{', '.join(_SPLIT_KEYS)}}}")
    return manifest


def manifest_hash(dataset_dir: Path) -> str:
    """Hex sha256 of the bytes of `<dataset_dir>/manifest.json` (identifies the dataset in results)."""
    path = Path(dataset_dir) / MANIFEST_NAME
    if not path.is_file():
        raise DatasetError(f"manifest {path} does not exist; regenerate the dataset to create it")
    return file_sha256(path)


def benchmark_facts(dataset_dir: Path) -> dict[str, Any]:
    """The PDE's benchmark facts (model step, headline metric, conserved quantity) recorded in the manifest.

    They come from `benchmark:` of `conf/pde/<pde>.yaml` when the dataset was generated; see
    `pdebench.config.BenchmarkConfig`.
    """
    dataset_dir = Path(dataset_dir)
    facts = read_manifest(dataset_dir)["config"].get("benchmark")
    if not isinstance(facts, dict) or not isinstance(facts.get("frame_stride"), int):
        raise DatasetError(
            f"manifest {dataset_dir / MANIFEST_NAME} records no benchmark facts (config.benchmark.frame_stride); "
            f"rerun the generation command of {dataset_dir.name} to rewrite it (finished split files are kept)"
        )
    return facts
