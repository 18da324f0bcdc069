"""Shards of a dataset: which trajectories each holds, writing one, checking them, and joining them split by split.

`shard=i n_shards=n` writes, for every split, the contiguous trajectory range `shard_range(n_traj, i, n)` (seeds
never depend on the shard, see `data_gen.plan.trajectory_seeds`) into `<dataset>/shards/<i>-of-<n>/<split>.h5`.
`merge_split` joins a split's shard files into the split file a single job writes, appending the same blocks, so
the bytes are the same (on one device and dtype). A shard file records its position in its attributes, so a shard
file never passes for a split file, nor for another shard.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import yaml

from data_gen.base import GeneratedBatch
from data_gen.parallel import BlockSolver
from data_gen.plan import DatasetPlan, split_layout
from data_gen.resume import dataset_is_complete, generation_lock, remove_splits, remove_stale_scratch
from data_gen.writing import SplitJob, generate_files
from pdebench.config import GenerateConfig
from pdebench.console import progress_bar
from pdebench.data.manifest import generate_command
from pdebench.data.reader import TrajectoryFile
from pdebench.data.schema import FINGERPRINT_ATTR, SPLITS, DatasetError, DatasetLayout
from pdebench.data.writer import TrajectoryWriter, layout_fingerprint, partial_path
from pdebench.errors import InvalidSetting

# Shard i of n of a dataset lives in `<dataset>/SHARDS_DIR/<i>-of-<n>/<split>.h5` until the merge.
SHARDS_DIR = "shards"
_SHARD_DIR_RE = re.compile(r"(\d+)-of-(\d+)\Z")


# --- planning -----------------------------------------------------------------------------------------------------
def shard_range(n_traj: int, shard: int, n_shards: int) -> range:
    """Trajectory indices of a split that shard `shard` of `n_shards` generates: contiguous, in order, covering
    `range(n_traj)` exactly once over all shards, sizes differing by at most one (empty if `n_traj < n_shards`)."""
    return range(shard * n_traj // n_shards, (shard + 1) * n_traj // n_shards)


def shard_dir(dataset_dir: Path, shard: int, n_shards: int) -> Path:
    """Where shard `shard` of `n_shards` of a dataset is written: `<dataset_dir>/shards/<shard>-of-<n_shards>`."""
    return Path(dataset_dir) / SHARDS_DIR / f"{shard}-of-{n_shards}"


def shard_layout(plan: DatasetPlan, split: str, shard: int, n_shards: int) -> DatasetLayout | None:
    """The layout of shard `shard` of `n_shards` of `split` (None if that shard holds none of its trajectories).

    Its attributes add the shard's position, so a shard file never passes for a split file (and vice versa)."""
    full = plan.layouts[split]
    part = shard_range(int(full.n_traj), shard, n_shards)
    if not part:
        return None
    attrs = {**full.attrs, "shard_index": str(shard), "shard_count": str(n_shards),
             "shard_first_trajectory": str(part.start)}
    return split_layout(plan.generator, full.pde, full.preset, split, len(part), int(full.n_frames), attrs)


def sweep_command(dataset_dir: Path) -> str:
    """The command that generates 4 shards of a dataset as a Hydra sweep."""
    return generate_command(dataset_dir, "-m", "shard='range(0,4)'")


def _shard_command(plan: DatasetPlan, shard: int, n_shards: int, *extra: str) -> str:
    return generate_command(plan.out_dir, f"shard={shard}", f"n_shards={n_shards}", *extra)


# --- writing one shard --------------------------------------------------------------------------------------------
def generate_shard(plan: DatasetPlan, shard: int, n_shards: int, batch_size: int, device: torch.device,
                   workers: int, overwrite: bool, progress: bool) -> Path:
    """Write shard `shard` of `n_shards` of every split into its shard directory (locked while it is written);
    returns the directory. Finished shard files of an earlier run are checked and kept."""
    directory = shard_dir(plan.out_dir, shard, n_shards)
    if not overwrite and dataset_is_complete(plan.out_dir, plan.config):
        print(f"{plan.out_dir} is already complete; shard {shard} of {n_shards} has nothing to do", file=sys.stderr)
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    with generation_lock(directory):
        remove_stale_scratch(directory)
        if overwrite:
            remove_splits(directory)
        jobs = []
        for split in SPLITS:
            layout = shard_layout(plan, split, shard, n_shards)
            path = directory / f"{split}.h5"
            if layout is None:
                continue
            if path.exists():
                check_shard_file(plan, path, split, shard, n_shards)
                continue
            part = shard_range(int(plan.layouts[split].n_traj), shard, n_shards)
            jobs.append(SplitJob(path, layout, plan.seeds(split)[part.start : part.stop], part.start))
        with BlockSolver(plan.generator, device, workers) as solver:
            generate_files(jobs, batch_size, solver, progress, f"{plan.out_dir.name} [shard {shard}/{n_shards}]")
    return directory


def check_shard_file(plan: DatasetPlan, path: Path, split: str, shard: int, n_shards: int) -> None:
    """A finished shard file must have been written for exactly this shard of this config (layout fingerprint) and
    hold the seeds this shard's trajectories get; the field values are checked as the merge reads them."""
    layout = shard_layout(plan, split, shard, n_shards)
    assert layout is not None
    redo = _shard_command(plan, shard, n_shards, "overwrite=true")
    with TrajectoryFile(path) as tf:
        fingerprint = tf.attrs.get(FINGERPRINT_ATTR)
        if fingerprint != layout_fingerprint(layout):
            raise DatasetError(
                f"shard file {path} was not written for shard {shard} of {n_shards} of {layout.dataset_name} with "
                f"the configuration asked for now (its layout differs); regenerate that shard with {redo}"
            )
        part = shard_range(int(plan.layouts[split].n_traj), shard, n_shards)
        if not np.array_equal(tf.seeds(), plan.seeds(split)[part.start : part.stop]):
            raise DatasetError(
                f"shard file {path} holds other seeds than trajectories {part.start}..{part.stop - 1} of split "
                f"'{split}' get; regenerate that shard with {redo}"
            )


# --- merging ------------------------------------------------------------------------------------------------------
def shard_counts(dataset_dir: Path) -> list[int]:
    """The shard counts `n` of the `<i>-of-<n>` directories under `<dataset_dir>/shards` (sorted, unique)."""
    found = {int(m.group(2)) for d in (Path(dataset_dir) / SHARDS_DIR).glob("*-of-*")
             if d.is_dir() and (m := _SHARD_DIR_RE.match(d.name))}
    return sorted(found)


def merge_count(plan: DatasetPlan, n_shards: int | None) -> int:
    """The number of shards to merge: `n_shards` if given, else the one count found under `<dataset>/shards`."""
    if n_shards is not None:
        return n_shards
    counts = shard_counts(plan.out_dir)
    if len(counts) == 1:
        return counts[0]
    where = plan.out_dir / SHARDS_DIR
    if not counts:
        raise DatasetError(
            f"no shards of {plan.out_dir.name} to merge in {where}; generate them first with "
            f"{sweep_command(plan.out_dir)} (any shard count)"
        )
    raise DatasetError(
        f"{where} holds shards of several shard counts ({', '.join(map(str, counts))}); say which to merge with "
        f"{generate_command(plan.out_dir, 'merge=true', f'n_shards={counts[-1]}')}"
    )


def shard_sources(plan: DatasetPlan, split: str, n_shards: int) -> list[tuple[range, Path]]:
    """Every shard file of `split` with the split trajectory range it holds; all must be finished and valid."""
    sources = []
    for shard in range(n_shards):
        part = shard_range(int(plan.layouts[split].n_traj), shard, n_shards)
        if not part:
            continue
        path = shard_dir(plan.out_dir, shard, n_shards) / f"{split}.h5"
        if not path.exists():
            state = "is still being written or was interrupted" if partial_path(path).exists() else "does not exist"
            raise DatasetError(
                f"cannot merge {plan.out_dir.name}: shard {shard} of {n_shards} of split '{split}' ({path}) {state}; "
                f"finish it with {_shard_command(plan, shard, n_shards)} and merge again"
            )
        check_shard_file(plan, path, split, shard, n_shards)
        sources.append((part, path))
    return sources


def _read_range(sources: Sequence[tuple[range, TrajectoryFile]], layout: DatasetLayout, lo: int,
                hi: int) -> tuple[GeneratedBatch, np.ndarray]:
    """Trajectories `lo .. hi - 1` of a split, read from the shard files that hold them, and their seeds."""
    fields: dict[str, list[np.ndarray]] = {f.name: [] for f in layout.fields}
    params: dict[str, list[np.ndarray]] = {p.name: [] for p in layout.parameters}
    seeds: list[np.ndarray] = []
    for part, tf in sources:
        a, b = max(lo, part.start) - part.start, min(hi, part.stop) - part.start
        if a >= b:
            continue
        for name in fields:
            fields[name].append(tf.read_field(name, slice(a, b)))
        values = tf.parameters()
        for name in params:
            params[name].append(values[name][a:b])
        seeds.append(tf.seeds()[a:b])
    batch = GeneratedBatch({k: np.concatenate(v) for k, v in fields.items()},
                           {k: np.concatenate(v) for k, v in params.items()})
    return batch, np.concatenate(seeds)


def merge_split(path: Path, layout: DatasetLayout, sources: Sequence[tuple[range, Path]], batch_size: int,
                progress: bool) -> Path:
    """Write split file `path` from its shard files, appending blocks of `batch_size` exactly as a single job does
    (so the bytes are the same); resumable like any split file. Memory: one block."""
    with contextlib.ExitStack() as stack:
        files = [(part, stack.enter_context(TrajectoryFile(p))) for part, p in sources]
        writer = stack.enter_context(TrajectoryWriter(path, layout))
        bar = stack.enter_context(progress_bar(layout.n_traj, f"{layout.dataset_name} {layout.split} [merge]",
                                               "traj", enabled=progress, initial=writer.n_done))
        for lo in range(writer.n_done, layout.n_traj, batch_size):
            hi = min(lo + batch_size, layout.n_traj)
            batch, seeds = _read_range(files, layout, lo, hi)
            writer.append(batch.fields, batch.parameters, seeds)
            bar.update(hi - lo)
        return writer.finalize()


def remove_shards(plan: DatasetPlan, n_shards: int) -> None:
    """Delete the merged shards' directories (each under its lock; a shard still held by a job is left alone)."""
    for shard in range(n_shards):
        directory = shard_dir(plan.out_dir, shard, n_shards)
        if not directory.exists():
            continue
        try:
            with generation_lock(directory):
                shutil.rmtree(directory)
        except DatasetError:
            print(f"warning: {directory} is being written by another job; it was not removed", file=sys.stderr)
    with contextlib.suppress(OSError):
        (plan.out_dir / SHARDS_DIR).rmdir()  # only if empty


# --- the shard count of a sweep -----------------------------------------------------------------------------------
def shards_in_sweep() -> int | None:
    """The shard count of the Hydra sweep this job belongs to, e.g. 16 for `-m shard='range(0,16)'` (None outside a
    sweep, or when the sweep does not sweep `shard`).

    A job of a sweep sees only its own `shard=k`; the sweep as typed is in `<hydra.sweep.dir>/multirun.yaml`, which
    the sweeper writes before launching any job (on a cluster the jobs share that folder). The swept values must be
    exactly 0 .. n - 1, so that no shard is missing or written twice.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    sweep_file = Path(HydraConfig.get().sweep.dir) / "multirun.yaml"
    try:
        typed = yaml.safe_load(sweep_file.read_text())["hydra"]["overrides"]["task"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return None
    for text in typed:
        override = OverridesParser.create().parse_override(text)
        if override.get_key_element().lstrip("+~") != "shard" or not override.is_sweep_override():
            continue
        values = [int(v) for v in override.sweep_iterator()]
        if sorted(values) != list(range(len(values))):
            raise InvalidSetting(f"{text} sweeps the shards {values}, but the shards of a dataset are 0 .. n - 1, "
                                 f"each once (e.g. shard='range(0,{max(values, default=0) + 1})'), or give n_shards= "
                                 "as well")
        return len(values)
    return None


def resolve_shard_count(cfg: GenerateConfig) -> GenerateConfig:
    """`cfg` with `n_shards` taken from the sweep (`shards_in_sweep`) when a shard is asked for without it (`cfg`
    itself otherwise)."""
    if cfg.shard is not None and cfg.n_shards is None:
        return replace(cfg, n_shards=shards_in_sweep())
    return cfg
