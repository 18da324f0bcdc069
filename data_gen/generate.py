"""The generation driver: turns a PDE config and a preset into `data/<name>-<preset>/{train,valid,test}.h5`.

Solver-agnostic: each PDE family provides a `TrajectoryGenerator`; this module seeds trajectories, batches them,
writes through `pdebench.data.TrajectoryWriter` (atomic, resumable) and writes the manifest.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

import pdebench
from data_gen.base import TrajectoryGenerator
from data_gen.registry import make_generator
from pdebench.data.check import check_file
from pdebench.data.manifest import VERIFIED_NAME, generate_command, read_manifest, verify_split, write_manifest
from pdebench.data.reader import TrajectoryFile
from pdebench.data.schema import MANIFEST_NAME, SPLITS, DatasetError, DatasetLayout, dataset_name
from pdebench.data.writer import TrajectoryWriter, partial_path, validate_layout
from pdebench.devices import resolve_device

# Held (flock, non-blocking) by the generation writing a dataset directory, so two runs never write one dataset.
LOCK_NAME = ".generate.lock"


def trajectory_seeds(base_seed: int, split: str, n_traj: int) -> np.ndarray:
    """Seed of trajectory i of `split`: depends only on (base_seed, split, i), never on batching or sharding."""
    split_index = SPLITS.index(split)
    return np.array(
        [np.random.SeedSequence([base_seed, split_index, i]).generate_state(1)[0] for i in range(n_traj)],
        dtype=np.int64,
    )


def split_layout(generator: TrajectoryGenerator, name: str, preset: str, split: str, n_traj: int,
                 n_frames: int, attrs: dict[str, str]) -> DatasetLayout:
    return DatasetLayout(
        pde=name,
        preset=preset,
        split=split,
        n_traj=n_traj,
        n_frames=n_frames,
        frame_interval=generator.frame_interval,
        grid=generator.grid,
        coordinates=generator.coordinates(),
        fields=generator.fields,
        parameters=generator.parameters,
        attrs=attrs,
    )


def generate_split(generator: TrajectoryGenerator, path: Path, layout: DatasetLayout, seeds: Sequence[int],
                   batch_size: int, device: torch.device, progress: bool = True) -> Path:
    """Write one split file, resuming after the last complete block of an interrupted run."""
    with TrajectoryWriter(path, layout) as writer:
        desc = f"{layout.dataset_name} {layout.split}"
        with tqdm(total=layout.n_traj, initial=writer.n_done, desc=desc, unit="traj", disable=not progress,
                  dynamic_ncols=True) as bar:
            while writer.n_done < layout.n_traj:
                block = np.asarray(seeds[writer.n_done : writer.n_done + batch_size])
                batch = generator.generate([int(s) for s in block], layout.n_frames, device)
                writer.append(batch.fields, batch.parameters, block)
                bar.update(len(block))
        return writer.finalize()


def _check_driver_arguments(batch_size: Any, seed: Any, overwrite: Any, progress: Any) -> None:
    """Raise ValueError naming the first driver argument that cannot work (before any file is created)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer (trajectories solved at once), got {batch_size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    for name, value in (("overwrite", overwrite), ("progress", progress)):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")


@contextlib.contextmanager
def _generation_lock(out_dir: Path) -> Iterator[None]:
    """Hold `<out_dir>/.generate.lock` for the whole generation; a second generation of it stops at once."""
    try:
        import fcntl
    except ImportError:  # no flock on this platform (Windows): generate unguarded, as before
        yield
        return
    with open(out_dir / LOCK_NAME, "a+b") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DatasetError(
                f"another generation is writing this dataset ({out_dir}); wait for it to finish (or stop it) "
                f"and rerun"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _config_difference(recorded: Any, config: Mapping[str, Any]) -> list[str]:
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
    keys = _config_difference(recorded, config) if recorded is not None else []  # None: not written by generate
    if keys:
        raise _different_config(f"split file {path}", path.parent, keys)


def _check_existing_splits(out_dir: Path, config: Mapping[str, Any], layouts: Mapping[str, DatasetLayout]) -> None:
    """Before finished split files are kept, make sure they are what the manifest (or, without one, the layout and
    config) says: a damaged or foreign file must stop generation, never be blessed by a rewritten manifest."""
    existing = [split for split in SPLITS if (out_dir / f"{split}.h5").exists()]
    if not existing:
        return
    try:
        manifest: dict[str, Any] | None = read_manifest(out_dir)
    except DatasetError:
        manifest = None
        if (out_dir / MANIFEST_NAME).exists():
            print(f"warning: {out_dir / MANIFEST_NAME} is not a valid manifest; the split files kept from an "
                  "earlier run are checked and it is rewritten", file=sys.stderr)
    if manifest is not None:
        keys = _config_difference(manifest["config"], config)
        if keys:
            raise _different_config(f"dataset {out_dir} (manifest {out_dir / MANIFEST_NAME})", out_dir, keys)
    verified: dict[str, Any] = {}
    for split in existing:
        if manifest is not None and split in manifest["splits"]:
            verify_split(out_dir, manifest, split, verified)
        else:
            _check_unlisted_split(out_dir / f"{split}.h5", layouts[split], config)


def _remove_stale_scratch(out_dir: Path) -> None:
    """Delete structure scratch files of the writer left by killed runs (`.<split>.h5.partial.<random>.tmp`, and
    `<split>.h5.partial.new` of older versions); safe because the lock is held, so no other run is building one."""
    for pattern in (".*.h5.partial.*.tmp", "*.h5.partial.new"):
        for scratch in out_dir.glob(pattern):
            scratch.unlink(missing_ok=True)


def generate_dataset(pde: Mapping[str, Any], preset: str, root: str | Path, *, seed: int = 0,
                     batch_size: int = 64, device: str = "auto", overwrite: bool = False,
                     progress: bool = True) -> Path:
    """Generate every split of `<pde.name>-<preset>` under `root`; complete split files are kept unless `overwrite`.

    Every argument is checked before anything is created. One generation at a time may write a dataset directory
    (a lock file in it). Split files kept from an earlier run are verified against the manifest first (or, without
    a usable manifest, checked and matched against the layout), so the manifest is never rewritten over a damaged
    or foreign file.
    """
    presets = pde["presets"]
    if preset not in presets:
        raise ValueError(
            f"unknown preset {preset!r} for pde={pde['name']}; available presets: {', '.join(presets)}"
        )
    _check_driver_arguments(batch_size, seed, overwrite, progress)
    sizes = presets[preset]
    solver = {**pde["solver"], **sizes.get("solver", {})}
    generator = make_generator(pde["generator"], solver)
    out_dir = Path(root) / dataset_name(pde["name"], preset)
    config = {"pde": pde["name"], "generator": pde["generator"], "preset": preset, "seed": seed,
              "solver": solver, "benchmark": dict(pde.get("benchmark") or {}),
              "splits": {s: dict(sizes[s]) for s in SPLITS}}
    attrs = {
        "generation_config": yaml.safe_dump(config, sort_keys=False),
        "solver": pde["generator"],
        "solver_settings": yaml.safe_dump(generator.solver_settings(), sort_keys=False),
        "package_version": pdebench.__version__,
    }
    torch_device = resolve_device(device)
    layouts = {
        split: split_layout(generator, pde["name"], preset, split, sizes[split]["n_traj"], sizes[split]["n_frames"],
                            attrs)
        for split in SPLITS
    }
    for layout in layouts.values():
        validate_layout(layout)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _generation_lock(out_dir):
        _remove_stale_scratch(out_dir)
        if overwrite:  # the manifest goes first: it must never describe files that are being replaced
            (out_dir / MANIFEST_NAME).unlink(missing_ok=True)
            (out_dir / VERIFIED_NAME).unlink(missing_ok=True)
            for split in SPLITS:
                (out_dir / f"{split}.h5").unlink(missing_ok=True)
                partial_path(out_dir / f"{split}.h5").unlink(missing_ok=True)
        _check_existing_splits(out_dir, config, layouts)
        for split, layout in layouts.items():
            path = out_dir / f"{split}.h5"
            if path.exists():
                continue
            generate_split(generator, path, layout, trajectory_seeds(seed, split, layout.n_traj), batch_size,
                           torch_device, progress)
        write_manifest(out_dir, config)
    return out_dir


def generate(cfg: Mapping[str, Any], progress: bool = True) -> Path:
    """`pdebench-generate` as a library call: validate the whole resolved config, then `generate_dataset`.

    `cfg` has the shape of `pdebench.config.GenerateConfig` (plain containers). An unknown key (`+foo=1`), a value
    out of range or a device this machine lacks fails here, in one sentence, before any directory is created.
    """
    from pdebench.config import GenerateConfig, validate_config  # pdebench.config imports data_gen: import late

    validate_config(cfg, GenerateConfig)
    return generate_dataset(cfg["pde"], cfg["preset"], cfg["root"], seed=cfg["seed"], batch_size=cfg["batch_size"],
                            device=cfg["device"], overwrite=cfg["overwrite"], progress=progress)
