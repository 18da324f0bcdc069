"""The generation driver: turns a PDE config and a preset into `data/<name>-<preset>/{train,valid,test}.h5`.

Solver-agnostic: each PDE family provides a `TrajectoryGenerator`; this module seeds trajectories, batches them,
solves the batches on every core (`data_gen.parallel`), writes through `pdebench.data.TrajectoryWriter` (atomic,
resumable) and writes the manifest.

Scale-out. One job writes a whole dataset. Alternatively `shard=i n_shards=n` writes shard `i` of `n`: for every
split, the contiguous trajectory range `shard_range(n_traj, i, n)` (seeds never depend on the shard, see
`trajectory_seeds`) into `<dataset>/shards/<i>-of-<n>/<split>.h5`; `merge=true` joins the shards into the split
files a single job writes, bitwise the same on one device and dtype, then writes the manifest once and removes the
shards. The bytes of a split file depend only on its content and on `batch_size` (the blocks it is appended in),
so a single job, a resumed one, any number of workers, and a merge (with the same `batch_size`) write the same file.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

import pdebench
from data_gen.base import GeneratedBatch, SolverDiverged, TrajectoryGenerator
from data_gen.parallel import BlockSolver, resolve_workers
from data_gen.registry import make_generator
from pdebench.data.atomic import reporting_full_disk
from pdebench.data.check import check_file
from pdebench.data.lock import directory_lock
from pdebench.data.manifest import VERIFIED_NAME, generate_command, read_manifest, verify_split, write_manifest
from pdebench.data.reader import TrajectoryFile
from pdebench.data.schema import (
    FINGERPRINT_ATTR,
    MANIFEST_NAME,
    SPLITS,
    DatasetError,
    DatasetLayout,
    dataset_name,
)
from pdebench.data.writer import TrajectoryWriter, layout_fingerprint, partial_path, validate_layout
from pdebench.devices import resolve_device

# Held (flock, non-blocking) by the generation writing a dataset directory, so two runs never write one dataset.
LOCK_NAME = ".generate.lock"
# Shard i of n of a dataset lives in `<dataset>/SHARDS_DIR/<i>-of-<n>/<split>.h5` until the merge.
SHARDS_DIR = "shards"
_SHARD_DIR_RE = re.compile(r"(\d+)-of-(\d+)\Z")


class GenerationDiverged(DatasetError):
    """The solver blew up; the message names the split, trajectory index, seed and time, and what was kept."""


def trajectory_seeds(base_seed: int, split: str, n_traj: int) -> np.ndarray:
    """Seed of trajectory i of `split`: depends only on (base_seed, split, i), never on batching or sharding."""
    split_index = SPLITS.index(split)
    return np.array(
        [np.random.SeedSequence([base_seed, split_index, i]).generate_state(1)[0] for i in range(n_traj)],
        dtype=np.int64,
    )


def shard_range(n_traj: int, shard: int, n_shards: int) -> range:
    """Trajectory indices of a split that shard `shard` of `n_shards` generates: contiguous, in order, covering
    `range(n_traj)` exactly once over all shards, sizes differing by at most one (empty if `n_traj < n_shards`)."""
    return range(shard * n_traj // n_shards, (shard + 1) * n_traj // n_shards)


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


def _stopped(layout: DatasetLayout, path: Path, where: str, when: str, reason: str,
             n_kept: int) -> GenerationDiverged:
    return GenerationDiverged(
        f"generation of {layout.dataset_name} stopped: the solver diverged in split '{layout.split}' at {where} "
        f"at {when} ({reason}); the {n_kept} trajectories written before it are kept in {partial_path(path)}, and "
        f"rerunning the same command resumes there"
    )


def _diverged_error(error: SolverDiverged, layout: DatasetLayout, path: Path, block_seeds: Sequence[int],
                    block_index: int, n_kept: int) -> GenerationDiverged:
    """One sentence for a `SolverDiverged` in the block of `block_seeds`, whose first trajectory has split index
    `block_index`."""
    positions = [i for i, s in enumerate(block_seeds) if int(s) in set(error.seeds)]
    if positions:
        where = f"trajectory {block_index + positions[0]} (seed {int(block_seeds[positions[0]])})"
        if len(positions) > 1:
            where += f" and {len(positions) - 1} more of its block"
    else:
        where = f"seed(s) {', '.join(map(str, error.seeds))}"
    return _stopped(layout, path, where, f"t = {error.time:g}", error.reason, n_kept)


def _nonfinite_error(batch: GeneratedBatch, layout: DatasetLayout, path: Path, block_seeds: Sequence[int],
                     block_index: int, n_kept: int) -> GenerationDiverged | None:
    """The same sentence for a block whose fields hold NaN or inf (a blow-up the solver did not notice), naming
    the first such trajectory and stored frame; None if every value is finite."""
    for name, values in batch.fields.items():
        values = np.asarray(values)
        if values.shape[:2] != (len(block_seeds), int(layout.n_frames)) or values.dtype.kind not in "fc":
            continue  # the writer names a wrong shape or dtype
        finite = np.isfinite(values).reshape(len(block_seeds), int(layout.n_frames), -1).all(axis=2)
        if not finite.all():
            position, frame = (int(i) for i in np.argwhere(~finite)[0])
            where = f"trajectory {block_index + position} (seed {int(block_seeds[position])})"
            when = f"stored frame {frame} (t = {frame * layout.frame_interval:g} after frame 0)"
            return _stopped(layout, path, where, when, f"non-finite values in field '{name}'", n_kept)
    return None


@dataclass(frozen=True)
class SplitJob:
    """One file to write: a split file, or a split's part in a shard file.

    seeds: `[layout.n_traj]`, one per trajectory of the file. first_index: the split index of the file's first
    trajectory (non-zero for a shard), used to name a trajectory whose solve diverged (`GenerationDiverged`).
    """

    path: Path
    layout: DatasetLayout
    seeds: np.ndarray
    first_index: int = 0


def generate_files(jobs: Sequence[SplitJob], batch_size: int, solver: BlockSolver, progress: bool = True,
                   desc: str | None = None) -> list[Path]:
    """Write the files of `jobs` (resuming each after its last complete block of an interrupted run), solving
    all of them together on `solver`'s processes; returns their paths.

    Trajectories are appended in blocks of `batch_size` counted from the file's first trajectory, which fixes the
    file's bytes whatever the number of processes. Each file is finished (renamed into place) as soon as its last
    block is written; a divergence stops everything with `GenerationDiverged`, keeping every block written so far.
    One progress bar counts the trajectories of all files (`desc`, default the dataset name).
    """
    solver.start()  # a forked worker must not inherit the open split files
    with contextlib.ExitStack() as stack:
        writers = [stack.enter_context(TrajectoryWriter(job.path, job.layout)) for job in jobs]
        starts = [range(w.n_done, int(job.layout.n_traj), batch_size) for w, job in zip(writers, jobs, strict=True)]
        blocks = [[np.asarray(job.seeds[lo : lo + batch_size]) for lo in run]
                  for job, run in zip(jobs, starts, strict=True)]
        written = [0] * len(jobs)  # blocks written per file by this run
        total = sum(int(job.layout.n_traj) for job in jobs)
        desc = desc or (jobs[0].layout.dataset_name if jobs else "")
        with tqdm(total=total, initial=sum(w.n_done for w in writers), desc=desc, unit="traj", disable=not progress,
                  dynamic_ncols=True) as bar:

            def postfix() -> None:
                bar.set_postfix_str(" ".join(f"{job.layout.split} {w.n_done}/{job.layout.n_traj}"
                                             for job, w in zip(jobs, writers, strict=True)), refresh=False)

            postfix()
            streams = [(b, int(job.layout.n_frames)) for b, job in zip(blocks, jobs, strict=True)]
            for writer, todo in zip(writers, blocks, strict=True):
                if not todo:  # complete, but interrupted before it was renamed into place
                    writer.finalize()
            with contextlib.closing(solver.solve_streams(streams, bar.update)) as solved:
                while True:
                    try:
                        index, batch = next(solved)
                    except StopIteration:
                        break
                    except SolverDiverged as error:
                        index = _failed_stream(error, blocks, written)
                        job, block = jobs[index], blocks[index][written[index]]
                        raise _diverged_error(error, job.layout, job.path, block,
                                              job.first_index + starts[index][written[index]],
                                              writers[index].n_done) from None
                    job, writer, block = jobs[index], writers[index], blocks[index][written[index]]
                    lo = starts[index][written[index]]
                    blow_up = _nonfinite_error(batch, job.layout, job.path, block, job.first_index + lo, writer.n_done)
                    if blow_up is not None:
                        raise blow_up
                    writer.append(batch.fields, batch.parameters, block)
                    written[index] += 1
                    postfix()
                    if written[index] == len(blocks[index]):
                        writer.finalize()
    return [job.path for job in jobs]


def _failed_stream(error: SolverDiverged, blocks: Sequence[Sequence[np.ndarray]], written: Sequence[int]) -> int:
    """The stream whose next block holds the seeds the solver diverged on (the first unfinished one if none)."""
    diverged = {int(s) for s in error.seeds}
    unfinished = [i for i, b in enumerate(blocks) if written[i] < len(b)]
    for index in unfinished:
        if diverged & {int(s) for s in blocks[index][written[index]]}:
            return index
    return unfinished[0]


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _check_driver_arguments(batch_size: Any, seed: Any, overwrite: Any, progress: Any, workers: Any = 1,
                            shard: Any = None, n_shards: Any = None, merge: Any = False) -> None:
    """Raise ValueError naming the first driver argument that cannot work (before any file is created)."""
    if not _is_int(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer (trajectories solved at once), got {batch_size!r}")
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    for name, value in (("overwrite", overwrite), ("progress", progress), ("merge", merge)):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
    if workers is not None and (not _is_int(workers) or workers < 1):
        raise ValueError(f"workers must be a positive integer (processes solving trajectories side by side) or "
                         f"null for every core, got {workers!r}")
    if n_shards is not None and (not _is_int(n_shards) or n_shards < 1):
        raise ValueError(f"n_shards must be a positive integer (the number of shards of the dataset), got "
                         f"{n_shards!r}")
    if shard is not None:
        if merge:
            raise ValueError(f"merge=true joins every shard of the dataset, so it takes no shard (got "
                             f"shard={shard!r}); run it once, without shard=, after every shard has finished")
        if n_shards is None:
            raise ValueError(f"shard={shard!r} needs n_shards, the number of shards: sweep the shards "
                             "(-m shard='range(0,4)') or give it (n_shards=4)")
        if not _is_int(shard) or not 0 <= shard < n_shards:
            raise ValueError(f"shard must be an integer in 0 .. n_shards - 1 = {n_shards - 1}, got {shard!r}")
    elif n_shards is not None and not merge:
        raise ValueError(f"n_shards={n_shards} needs shard=<index> (e.g. -m shard='range(0,{n_shards})') to "
                         "generate shards, or merge=true to join them")


def _generation_lock(out_dir: Path) -> contextlib.AbstractContextManager[None]:
    """Hold `<out_dir>/.generate.lock` for the whole generation; a second generation of it stops at once, naming
    the process that holds it."""

    def busy(holder: str) -> DatasetError:
        return DatasetError(f"another generation is writing this dataset ({out_dir}; {holder}); wait for it to "
                            f"finish (or stop it) and rerun")

    return directory_lock(out_dir, LOCK_NAME, busy)


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


def _write_manifest(out_dir: Path, config: dict[str, Any]) -> None:
    """`write_manifest`, with a full disk reported as one sentence (every split file is finished by then)."""
    with reporting_full_disk(out_dir / MANIFEST_NAME, "every split file is finished and kept"):
        write_manifest(out_dir, config)


def _remove_stale_scratch(out_dir: Path) -> None:
    """Delete structure scratch files of the writer left by killed runs (`.<split>.h5.partial.<random>.tmp`, and
    `<split>.h5.partial.new` of older versions); safe because the lock is held, so no other run is building one."""
    for pattern in (".*.h5.partial.*.tmp", "*.h5.partial.new"):
        for scratch in out_dir.glob(pattern):
            scratch.unlink(missing_ok=True)


@dataclass(frozen=True)
class _Plan:
    """Everything a generation, a shard or a merge of one dataset needs, derived from the config alone."""

    generator: TrajectoryGenerator
    out_dir: Path
    config: dict[str, Any]
    attrs: dict[str, str]
    layouts: dict[str, DatasetLayout]
    seed: int

    def seeds(self, split: str) -> np.ndarray:
        return trajectory_seeds(self.seed, split, int(self.layouts[split].n_traj))

    def shard_layout(self, split: str, shard: int, n_shards: int) -> DatasetLayout | None:
        """The layout of shard `shard` of `n_shards` of `split` (None if that shard holds none of its trajectories).

        Its attributes add the shard's position, so a shard file never passes for a split file (and vice versa)."""
        full = self.layouts[split]
        part = shard_range(int(full.n_traj), shard, n_shards)
        if not part:
            return None
        attrs = {**full.attrs, "shard_index": str(shard), "shard_count": str(n_shards),
                 "shard_first_trajectory": str(part.start)}
        return split_layout(self.generator, full.pde, full.preset, split, len(part), int(full.n_frames), attrs)


def _plan(pde: Mapping[str, Any], preset: str, root: str | Path, seed: int) -> _Plan:
    """Build the generator, config, attributes and layouts of `<pde.name>-<preset>` (nothing is created)."""
    presets = pde["presets"]
    if preset not in presets:
        raise ValueError(
            f"unknown preset {preset!r} for pde={pde['name']}; available presets: {', '.join(presets)}"
        )
    sizes = presets[preset]
    solver = {**pde["solver"], **sizes.get("solver", {})}
    generator = make_generator(pde["generator"], solver)
    config = {"pde": pde["name"], "generator": pde["generator"], "preset": preset, "seed": seed,
              "solver": solver, "benchmark": dict(pde.get("benchmark") or {}),
              "splits": {s: dict(sizes[s]) for s in SPLITS}}
    attrs = {
        "generation_config": yaml.safe_dump(config, sort_keys=False),
        "solver": pde["generator"],
        "solver_settings": yaml.safe_dump(generator.solver_settings(), sort_keys=False),
        "package_version": pdebench.__version__,
    }
    layouts = {
        split: split_layout(generator, pde["name"], preset, split, sizes[split]["n_traj"], sizes[split]["n_frames"],
                            attrs)
        for split in SPLITS
    }
    for layout in layouts.values():
        validate_layout(layout)
    return _Plan(generator, Path(root) / dataset_name(pde["name"], preset), config, attrs, layouts, seed)


def _remove_splits(directory: Path) -> None:
    for split in SPLITS:
        (directory / f"{split}.h5").unlink(missing_ok=True)
        partial_path(directory / f"{split}.h5").unlink(missing_ok=True)


def generate_dataset(pde: Mapping[str, Any], preset: str, root: str | Path, *, seed: int = 0,
                     batch_size: int = 64, device: str = "auto", overwrite: bool = False,
                     progress: bool = True, workers: int | None = 1, shard: int | None = None,
                     n_shards: int | None = None) -> Path:
    """Generate every split of `<pde.name>-<preset>` under `root`; complete split files are kept unless `overwrite`.

    Every argument is checked before anything is created. One generation at a time may write a dataset directory
    (a lock file in it). Split files kept from an earlier run are verified against the manifest first (or, without
    a usable manifest, checked and matched against the layout), so the manifest is never rewritten over a damaged
    or foreign file.

    workers: processes solving trajectories side by side (None: every core on a CPU, one on a GPU); the files are
    bitwise the same for any number. shard, n_shards: write only shard `shard` of `n_shards` (its trajectory
    range of every split, under `<dataset>/shards/`) and return its directory; `merge_shards` joins them.
    """
    _check_driver_arguments(batch_size, seed, overwrite, progress, workers, shard, n_shards)
    plan = _plan(pde, preset, root, seed)
    torch_device = resolve_device(device)
    n_workers = resolve_workers(workers, torch_device)
    if shard is not None:
        assert n_shards is not None  # checked above
        return _generate_shard(plan, shard, n_shards, batch_size, torch_device, n_workers, overwrite, progress)
    out_dir = plan.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    with _generation_lock(out_dir):
        _remove_stale_scratch(out_dir)
        if overwrite:  # the manifest goes first: it must never describe files that are being replaced
            (out_dir / MANIFEST_NAME).unlink(missing_ok=True)
            (out_dir / VERIFIED_NAME).unlink(missing_ok=True)
            _remove_splits(out_dir)
        _check_existing_splits(out_dir, plan.config, plan.layouts)
        jobs = [SplitJob(out_dir / f"{split}.h5", layout, plan.seeds(split))
                for split, layout in plan.layouts.items() if not (out_dir / f"{split}.h5").exists()]
        with BlockSolver(plan.generator, torch_device, n_workers) as solver:
            generate_files(jobs, batch_size, solver, progress)
        _write_manifest(out_dir, plan.config)
    return out_dir


# --- shards -------------------------------------------------------------------------------------------------------
def shard_dir(dataset_dir: Path, shard: int, n_shards: int) -> Path:
    """Where shard `shard` of `n_shards` of a dataset is written: `<dataset_dir>/shards/<shard>-of-<n_shards>`."""
    return Path(dataset_dir) / SHARDS_DIR / f"{shard}-of-{n_shards}"


def _already_generated(plan: _Plan) -> bool:
    """True if the dataset's split files and a manifest of this very config exist (a shard job has nothing to do;
    the merge or a full run verifies the files)."""
    out_dir = plan.out_dir
    if not all((out_dir / f"{split}.h5").exists() for split in SPLITS):
        return False
    try:
        manifest = read_manifest(out_dir)
    except DatasetError:
        return False
    return not _config_difference(manifest["config"], plan.config)


def _generate_shard(plan: _Plan, shard: int, n_shards: int, batch_size: int, device: torch.device, workers: int,
                    overwrite: bool, progress: bool) -> Path:
    """Write shard `shard` of `n_shards` of every split into its shard directory (locked while it is written)."""
    directory = shard_dir(plan.out_dir, shard, n_shards)
    if not overwrite and _already_generated(plan):
        print(f"{plan.out_dir} is already complete; shard {shard} of {n_shards} has nothing to do", file=sys.stderr)
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    with _generation_lock(directory):
        _remove_stale_scratch(directory)
        if overwrite:
            _remove_splits(directory)
        jobs = []
        for split in SPLITS:
            layout = plan.shard_layout(split, shard, n_shards)
            path = directory / f"{split}.h5"
            if layout is None:
                continue
            if path.exists():
                _check_shard_file(plan, path, split, shard, n_shards)
                continue
            part = shard_range(int(plan.layouts[split].n_traj), shard, n_shards)
            jobs.append(SplitJob(path, layout, plan.seeds(split)[part.start : part.stop], part.start))
        with BlockSolver(plan.generator, device, workers) as solver:
            generate_files(jobs, batch_size, solver, progress, f"{plan.out_dir.name} [shard {shard}/{n_shards}]")
    return directory


def _sweep_command(dataset_dir: Path) -> str:
    """The command that generates 4 shards of a dataset as a Hydra sweep."""
    return generate_command(dataset_dir, "-m", "shard='range(0,4)'")


def _shard_command(plan: _Plan, shard: int, n_shards: int, *extra: str) -> str:
    return generate_command(plan.out_dir, f"shard={shard}", f"n_shards={n_shards}", *extra)


def _check_shard_file(plan: _Plan, path: Path, split: str, shard: int, n_shards: int) -> None:
    """A finished shard file must have been written for exactly this shard of this config (layout fingerprint) and
    hold the seeds this shard's trajectories get; the field values are checked as the merge reads them."""
    layout = plan.shard_layout(split, shard, n_shards)
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


def _shard_counts(dataset_dir: Path) -> list[int]:
    """The shard counts `n` of the `<i>-of-<n>` directories under `<dataset_dir>/shards` (sorted, unique)."""
    found = {int(m.group(2)) for d in (Path(dataset_dir) / SHARDS_DIR).glob("*-of-*")
             if d.is_dir() and (m := _SHARD_DIR_RE.match(d.name))}
    return sorted(found)


def _merge_count(plan: _Plan, n_shards: int | None) -> int:
    """The number of shards to merge: `n_shards` if given, else the one count found under `<dataset>/shards`."""
    if n_shards is not None:
        return n_shards
    counts = _shard_counts(plan.out_dir)
    if len(counts) == 1:
        return counts[0]
    where = plan.out_dir / SHARDS_DIR
    if not counts:
        raise DatasetError(
            f"no shards of {plan.out_dir.name} to merge in {where}; generate them first with "
            f"{_sweep_command(plan.out_dir)} (any shard count)"
        )
    raise DatasetError(
        f"{where} holds shards of several shard counts ({', '.join(map(str, counts))}); say which to merge with "
        f"{generate_command(plan.out_dir, 'merge=true', f'n_shards={counts[-1]}')}"
    )


def _shard_sources(plan: _Plan, split: str, n_shards: int) -> list[tuple[range, Path]]:
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
        _check_shard_file(plan, path, split, shard, n_shards)
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


def _merge_split(path: Path, layout: DatasetLayout, sources: Sequence[tuple[range, Path]], batch_size: int,
                 progress: bool) -> Path:
    """Write split file `path` from its shard files, appending blocks of `batch_size` exactly as a single job does
    (so the bytes are the same); resumable like any split file. Memory: one block."""
    with contextlib.ExitStack() as stack:
        files = [(part, stack.enter_context(TrajectoryFile(p))) for part, p in sources]
        writer = stack.enter_context(TrajectoryWriter(path, layout))
        bar = stack.enter_context(tqdm(total=layout.n_traj, initial=writer.n_done, unit="traj", dynamic_ncols=True,
                                       desc=f"{layout.dataset_name} {layout.split} [merge]", disable=not progress))
        for lo in range(writer.n_done, layout.n_traj, batch_size):
            hi = min(lo + batch_size, layout.n_traj)
            batch, seeds = _read_range(files, layout, lo, hi)
            writer.append(batch.fields, batch.parameters, seeds)
            bar.update(hi - lo)
        return writer.finalize()


def _remove_shards(plan: _Plan, n_shards: int) -> None:
    """Delete the merged shards' directories (each under its lock; a shard still held by a job is left alone)."""
    for shard in range(n_shards):
        directory = shard_dir(plan.out_dir, shard, n_shards)
        if not directory.exists():
            continue
        try:
            with _generation_lock(directory):
                shutil.rmtree(directory)
        except DatasetError:
            print(f"warning: {directory} is being written by another job; it was not removed", file=sys.stderr)
    with contextlib.suppress(OSError):
        (plan.out_dir / SHARDS_DIR).rmdir()  # only if empty


def merge_shards(pde: Mapping[str, Any], preset: str, root: str | Path, *, seed: int = 0, batch_size: int = 64,
                 overwrite: bool = False, progress: bool = True, n_shards: int | None = None) -> Path:
    """Join the shards of `<pde.name>-<preset>` into its split files, write the manifest, remove the shards.

    The split files are bitwise those a single `generate_dataset` with the same `batch_size` writes (on the device
    and dtype the shards were solved on). n_shards: the shard count to merge (None: the one found on disk).
    Split files already there are verified and kept, as in `generate_dataset`; every shard file is checked
    (layout fingerprint, seeds) before anything is written, and every field value is checked as it is read.
    """
    _check_driver_arguments(batch_size, seed, overwrite, progress, 1, None, n_shards, True)
    plan = _plan(pde, preset, root, seed)
    out_dir = plan.out_dir
    if not out_dir.is_dir():
        raise DatasetError(f"no dataset directory {out_dir} to merge shards in; generate the shards first with "
                           f"{_sweep_command(out_dir)}")
    with _generation_lock(out_dir):
        _remove_stale_scratch(out_dir)
        if overwrite:  # every shard is checked before the split files it replaces are deleted
            count = _merge_count(plan, n_shards)
            sources = {split: _shard_sources(plan, split, count) for split in SPLITS}
            (out_dir / MANIFEST_NAME).unlink(missing_ok=True)
            (out_dir / VERIFIED_NAME).unlink(missing_ok=True)
            _remove_splits(out_dir)
        else:
            _check_existing_splits(out_dir, plan.config, plan.layouts)
            missing = [split for split in SPLITS if not (out_dir / f"{split}.h5").exists()]
            count = _merge_count(plan, n_shards) if missing else n_shards
            sources = {split: _shard_sources(plan, split, count) for split in missing}  # all checked first
        for split, split_sources in sources.items():
            _merge_split(out_dir / f"{split}.h5", plan.layouts[split], split_sources, batch_size, progress)
        _write_manifest(out_dir, plan.config)
    # the merged shards, or after an earlier merge, shards left over by a rerun shard job: no longer needed
    for merged in [count] if count is not None else _shard_counts(out_dir):
        _remove_shards(plan, merged)
    return out_dir


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
            raise ValueError(f"{text} sweeps the shards {values}, but the shards of a dataset are 0 .. n - 1, each "
                             f"once (e.g. shard='range(0,{max(values, default=0) + 1})'), or give n_shards= as well")
        return len(values)
    return None


def resolve_shard_count(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """`cfg` with `n_shards` taken from the sweep (`shards_in_sweep`) when a shard is asked for without it."""
    cfg = dict(cfg)
    if cfg.get("shard") is not None and cfg.get("n_shards") is None:
        cfg["n_shards"] = shards_in_sweep()
    return cfg


def generate(cfg: Mapping[str, Any], progress: bool = True) -> Path:
    """`pdebench-generate` as a library call: validate the whole resolved config, then generate the dataset, one
    shard of it (`shard`, `n_shards`) or join its shards (`merge=true`); returns the directory written.

    `cfg` has the shape of `pdebench.config.GenerateConfig` (plain containers). An unknown key (`+foo=1`), a value
    out of range or a device this machine lacks fails here, in one sentence, before any directory is created.
    """
    from pdebench.config import GenerateConfig, validate_config  # pdebench.config imports data_gen: import late

    validate_config(cfg, GenerateConfig)
    cfg = resolve_shard_count(cfg)
    common = {"seed": cfg["seed"], "batch_size": cfg["batch_size"], "overwrite": cfg["overwrite"],
              "progress": progress}
    if cfg.get("merge", False):
        _check_driver_arguments(cfg["batch_size"], cfg["seed"], cfg["overwrite"], progress, cfg.get("workers"),
                                cfg.get("shard"), cfg.get("n_shards"), True)
        return merge_shards(cfg["pde"], cfg["preset"], cfg["root"], n_shards=cfg.get("n_shards"), **common)
    return generate_dataset(cfg["pde"], cfg["preset"], cfg["root"], device=cfg["device"],
                            workers=cfg.get("workers"), shard=cfg.get("shard"), n_shards=cfg.get("n_shards"),
                            **common)
