"""Resuming a dataset directory: its lock, and the checks that decide which files an earlier run left are kept.

One generation at a time writes a directory (`generation_lock`). A rerun keeps every finished split file, but only
after making sure it is what the manifest (or, without a usable manifest, the layout and the config asked for)
says it is: a damaged or foreign file must stop generation, never be blessed by a rewritten manifest. An
unfinished file is resumed by `pdebench.data.TrajectoryWriter` itself; what killed runs leave besides is removed.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from pdebench.data.check import check_file
from pdebench.data.lock import directory_lock
from pdebench.data.manifest import generate_command, read_manifest, verify_split
from pdebench.data.reader import TrajectoryFile
from pdebench.data.schema import MANIFEST_NAME, SPLITS, DatasetError, DatasetLayout
from pdebench.data.writer import partial_path

# Held (flock, non-blocking) by the generation writing a dataset directory, so two runs never write one dataset.
LOCK_NAME = ".generate.lock"


def generation_lock(out_dir: Path) -> contextlib.AbstractContextManager[None]:
    """Hold `<out_dir>/.generate.lock` for the whole generation; a second generation of it stops at once, naming
    the process that holds it."""

    def busy(holder: str) -> DatasetError:
        return DatasetError(f"another generation is writing this dataset ({out_dir}; {holder}); wait for it to "
                            f"finish (or stop it) and rerun")

    return directory_lock(out_dir, LOCK_NAME, busy)


def config_difference(recorded: Any, config: Mapping[str, Any]) -> list[str]:
    """Top-level keys (benchmark facts aside) whose recorded value differs from the requested config."""
    if not isinstance(recorded, dict):
        return ["(no config recorded)"]
    wanted = json.loads(json.dumps(config))
    return sorted(k for k in (set(recorded) & set(wanted)) - {"benchmark"} if recorded[k] != wanted[k])


def _different_config(what: str, out_dir: Path, keys: list[str]) -> DatasetError:
    return DatasetError(
        f"{what} was generated with a different {', '.join(keys)} than asked for now; regenerate the dataset with "
        f"{generate_command(out_dir, 'overwrite=true')} or generate into another root"
    )


def _check_unlisted_split(path: Path, layout: DatasetLayout, config: Mapping[str, Any]) -> None:
    """A split file the manifest does not vouch for: it must pass the checker and be the split asked for."""
    problems = check_file(path)
    if problems:
        raise DatasetError(
            f"{problems[0]}; this split file kept from an earlier run is not usable: regenerate the dataset with "
            f"{generate_command(path.parent, 'overwrite=true')}"
        )
    with TrajectoryFile(path) as tf:
        found = (tf.pde, tf.preset, tf.split, tf.n_traj, tf.n_frames)
        recorded = yaml.safe_load(str(tf.attrs.get("generation_config", "")) or "null")
    wanted = (layout.pde, layout.preset, layout.split, int(layout.n_traj), int(layout.n_frames))
    if found != wanted:
        raise DatasetError(
            f"split file {path} holds split {found[2]!r} of {found[0]}-{found[1]} ({found[3]} trajectories of "
            f"{found[4]} frames); expected split {wanted[2]!r} of {layout.dataset_name} ({wanted[3]} trajectories "
            f"of {wanted[4]} frames): regenerate the dataset with {generate_command(path.parent, 'overwrite=true')}"
        )
    keys = config_difference(recorded, config) if recorded is not None else []  # None: not written by generate
    if keys:
        raise _different_config(f"split file {path}", path.parent, keys)


def _usable_manifest(out_dir: Path) -> dict[str, Any] | None:
    """The dataset's manifest, or None (with a warning if there is one that cannot be read)."""
    try:
        return read_manifest(out_dir)
    except DatasetError:
        if (out_dir / MANIFEST_NAME).exists():
            print(f"warning: {out_dir / MANIFEST_NAME} is not a valid manifest; the split files kept from an "
                  "earlier run are checked and it is rewritten", file=sys.stderr)
        return None


def check_existing_splits(out_dir: Path, config: Mapping[str, Any], layouts: Mapping[str, DatasetLayout]) -> None:
    """Before finished split files are kept, make sure they are what the manifest (or, without one, the layout and
    config) says: a damaged or foreign file must stop generation, never be blessed by a rewritten manifest."""
    existing = [split for split in SPLITS if (out_dir / f"{split}.h5").exists()]
    if not existing:
        return
    manifest = _usable_manifest(out_dir)
    if manifest is not None:
        keys = config_difference(manifest["config"], config)
        if keys:
            raise _different_config(f"dataset {out_dir} (manifest {out_dir / MANIFEST_NAME})", out_dir, keys)
    verified: dict[str, Any] = {}
    for split in existing:
        if manifest is not None and split in manifest["splits"]:
            verify_split(out_dir, manifest, split, verified)
        else:
            _check_unlisted_split(out_dir / f"{split}.h5", layouts[split], config)


def dataset_is_complete(out_dir: Path, config: Mapping[str, Any]) -> bool:
    """True if the dataset's split files and a manifest of this very config exist (whoever reads them next
    verifies the files)."""
    if not all((out_dir / f"{split}.h5").exists() for split in SPLITS):
        return False
    try:
        manifest = read_manifest(out_dir)
    except DatasetError:
        return False
    return not config_difference(manifest["config"], config)


def remove_stale_scratch(out_dir: Path) -> None:
    """Delete structure scratch files of the writer left by killed runs (`.<split>.h5.partial.<random>.tmp`, and
    `<split>.h5.partial.new` of older versions); safe because the lock is held, so no other run is building one."""
    for pattern in (".*.h5.partial.*.tmp", "*.h5.partial.new"):
        for scratch in out_dir.glob(pattern):
            scratch.unlink(missing_ok=True)


def remove_splits(directory: Path) -> None:
    """Delete every split file of `directory`, finished or not (`overwrite=true`)."""
    for split in SPLITS:
        (directory / f"{split}.h5").unlink(missing_ok=True)
        partial_path(directory / f"{split}.h5").unlink(missing_ok=True)
