"""The generation driver: turns a PDE config and a preset into `data/<name>-<preset>/{train,valid,test}.h5`.

Solver-agnostic: each PDE family provides a `TrajectoryGenerator`; the driver plans the dataset from the config
(`data_gen.plan`: generator, layouts, per-trajectory seeds), takes the dataset's lock and decides what an earlier
run left is kept (`data_gen.resume`), solves the trajectories on every core (`data_gen.parallel`) and writes them
(`data_gen.writing`, atomic and resumable), then writes the manifest.

Scale-out. One job writes a whole dataset. Alternatively `shard=i n_shards=n` writes shard `i` of `n`
(`data_gen.shards`), and `merge=true` joins the shards into the split files a single job writes, bitwise the same
on one device and dtype, then writes the manifest once and removes the shards. The bytes of a split file depend
only on its content and on `batch_size` (the blocks it is appended in), so a single job, a resumed one, any number
of workers, and a merge (with the same `batch_size`) write the same file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from data_gen.config import generate_config, pde_config
from data_gen.parallel import BlockSolver, resolve_workers
from data_gen.plan import plan_dataset, trajectory_seeds
from data_gen.resume import LOCK_NAME, check_existing_splits, generation_lock, remove_splits, remove_stale_scratch
from data_gen.shards import (
    SHARDS_DIR,
    generate_shard,
    merge_count,
    merge_split,
    remove_shards,
    resolve_shard_count,
    shard_counts,
    shard_range,
    shard_sources,
    sweep_command,
)
from data_gen.writing import GenerationDiverged, SplitJob, generate_files
from pdebench.config import GenerateConfig, PDEGenConfig, is_whole_number
from pdebench.data.atomic import reporting_full_disk
from pdebench.data.manifest import VERIFIED_NAME, write_manifest
from pdebench.data.schema import MANIFEST_NAME, SPLITS, DatasetError
from pdebench.devices import resolve_device
from pdebench.errors import InvalidSetting

__all__ = [
    "LOCK_NAME",
    "SHARDS_DIR",
    "GenerationDiverged",
    "generate",
    "generate_dataset",
    "merge_shards",
    "resolve_shard_count",
    "shard_range",
    "trajectory_seeds",
]


def _check_values(batch_size: Any, seed: Any, flags: Mapping[str, Any], workers: Any, n_shards: Any) -> None:
    """InvalidSetting naming the first of these driver arguments that is out of range or of the wrong type."""
    if not is_whole_number(batch_size) or batch_size < 1:
        raise InvalidSetting(f"batch_size must be a positive integer (trajectories solved at once), got "
                             f"{batch_size!r}")
    if not is_whole_number(seed) or seed < 0:
        raise InvalidSetting(f"seed must be a non-negative integer, got {seed!r}")
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise InvalidSetting(f"{name} must be true or false, got {value!r}")
    if workers is not None and (not is_whole_number(workers) or workers < 1):
        raise InvalidSetting(f"workers must be a positive integer (processes solving trajectories side by side) or "
                             f"null for every core, got {workers!r}")
    if n_shards is not None and (not is_whole_number(n_shards) or n_shards < 1):
        raise InvalidSetting(f"n_shards must be a positive integer (the number of shards of the dataset), got "
                             f"{n_shards!r}")


def _check_scaleout(shard: Any, n_shards: int | None, merge: bool) -> None:
    """InvalidSetting if `shard`, `n_shards` and `merge` do not ask for one of: the whole dataset, one shard of
    it, or the merge of its shards."""
    if shard is not None:
        if merge:
            raise InvalidSetting(f"merge=true joins every shard of the dataset, so it takes no shard (got "
                                 f"shard={shard!r}); run it once, without shard=, after every shard has finished")
        if n_shards is None:
            raise InvalidSetting(f"shard={shard!r} needs n_shards, the number of shards: sweep the shards "
                                 "(-m shard='range(0,4)') or give it (n_shards=4)")
        if not is_whole_number(shard) or not 0 <= shard < n_shards:
            raise InvalidSetting(f"shard must be an integer in 0 .. n_shards - 1 = {n_shards - 1}, got {shard!r}")
    elif n_shards is not None and not merge:
        raise InvalidSetting(f"n_shards={n_shards} needs shard=<index> (e.g. -m shard='range(0,{n_shards})') to "
                             "generate shards, or merge=true to join them")


def _check_driver_arguments(batch_size: Any, seed: Any, overwrite: Any, progress: Any, workers: Any = 1,
                            shard: Any = None, n_shards: Any = None, merge: Any = False) -> None:
    """Name the first driver argument that cannot work (before any file is created)."""
    _check_values(batch_size, seed, {"overwrite": overwrite, "progress": progress, "merge": merge}, workers,
                  n_shards)
    _check_scaleout(shard, n_shards, merge)


def _write_manifest(out_dir: Path, config: dict[str, Any]) -> None:
    """`write_manifest`, with a full disk reported as one sentence (every split file is finished by then)."""
    with reporting_full_disk(out_dir / MANIFEST_NAME, "every split file is finished and kept"):
        write_manifest(out_dir, config)


def _forget_manifest(out_dir: Path) -> None:
    """Delete the manifest and its verification record: they must never describe files that are being replaced."""
    (out_dir / MANIFEST_NAME).unlink(missing_ok=True)
    (out_dir / VERIFIED_NAME).unlink(missing_ok=True)


def generate_dataset(pde: PDEGenConfig | Mapping[str, Any], preset: str, root: str | Path, *,
                     seed: int = GenerateConfig.seed, batch_size: int = GenerateConfig.batch_size,
                     device: str = GenerateConfig.device, overwrite: bool = GenerateConfig.overwrite,
                     progress: bool = True, workers: int | None = 1, shard: int | None = None,
                     n_shards: int | None = None) -> Path:
    """Generate every split of `<pde.name>-<preset>` under `root`; complete split files are kept unless `overwrite`.

    pde: the typed PDE config, or its plain mapping (`pde` node of the `pdebench-generate` config).
    Every argument is checked before anything is created. One generation at a time may write a dataset directory
    (a lock file in it). Split files kept from an earlier run are verified against the manifest first (or, without
    a usable manifest, checked and matched against the layout), so the manifest is never rewritten over a damaged
    or foreign file.

    seed, batch_size, device, overwrite: as in `GenerateConfig`, whose defaults they take. workers: processes
    solving trajectories side by side (None: every core on a CPU, one on a GPU; the library's default is this
    process alone, the command's every core); the files are bitwise the same for any number. shard, n_shards:
    write only shard `shard` of `n_shards` (its trajectory range of every split, under `<dataset>/shards/`) and
    return its directory; `merge_shards` joins them.
    """
    _check_driver_arguments(batch_size, seed, overwrite, progress, workers, shard, n_shards)
    plan = plan_dataset(pde_config(pde), preset, root, seed)
    torch_device = resolve_device(device)
    n_workers = resolve_workers(workers, torch_device)
    if shard is not None:
        assert n_shards is not None  # checked above
        return generate_shard(plan, shard, n_shards, batch_size, torch_device, n_workers, overwrite, progress)
    out_dir = plan.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    with generation_lock(out_dir):
        remove_stale_scratch(out_dir)
        if overwrite:
            _forget_manifest(out_dir)
            remove_splits(out_dir)
        check_existing_splits(out_dir, plan.config, plan.layouts)
        jobs = [SplitJob(out_dir / f"{split}.h5", layout, plan.seeds(split))
                for split, layout in plan.layouts.items() if not (out_dir / f"{split}.h5").exists()]
        with BlockSolver(plan.generator, torch_device, n_workers) as solver:
            generate_files(jobs, batch_size, solver, progress)
        _write_manifest(out_dir, plan.config)
    return out_dir


def merge_shards(pde: PDEGenConfig | Mapping[str, Any], preset: str, root: str | Path, *,
                 seed: int = GenerateConfig.seed, batch_size: int = GenerateConfig.batch_size,
                 overwrite: bool = GenerateConfig.overwrite, progress: bool = True,
                 n_shards: int | None = None) -> Path:
    """Join the shards of `<pde.name>-<preset>` into its split files, write the manifest, remove the shards.

    The split files are bitwise those a single `generate_dataset` with the same `batch_size` writes (on the device
    and dtype the shards were solved on). n_shards: the shard count to merge (None: the one found on disk).
    Split files already there are verified and kept, as in `generate_dataset`; every shard file is checked
    (layout fingerprint, seeds) before anything is written, and every field value is checked as it is read.
    """
    _check_driver_arguments(batch_size, seed, overwrite, progress, 1, None, n_shards, True)
    plan = plan_dataset(pde_config(pde), preset, root, seed)
    out_dir = plan.out_dir
    if not out_dir.is_dir():
        raise DatasetError(f"no dataset directory {out_dir} to merge shards in; generate the shards first with "
                           f"{sweep_command(out_dir)}")
    with generation_lock(out_dir):
        remove_stale_scratch(out_dir)
        if overwrite:  # every shard is checked before the split files it replaces are deleted
            count = merge_count(plan, n_shards)
            sources = {split: shard_sources(plan, split, count) for split in SPLITS}
            _forget_manifest(out_dir)
            remove_splits(out_dir)
        else:
            check_existing_splits(out_dir, plan.config, plan.layouts)
            missing = [split for split in SPLITS if not (out_dir / f"{split}.h5").exists()]
            count = merge_count(plan, n_shards) if missing else n_shards
            sources = {split: shard_sources(plan, split, count) for split in missing}  # all checked first
        for split, split_sources in sources.items():
            merge_split(out_dir / f"{split}.h5", plan.layouts[split], split_sources, batch_size, progress)
        _write_manifest(out_dir, plan.config)
    # the merged shards, or after an earlier merge, shards left over by a rerun shard job: no longer needed
    for merged in [count] if count is not None else shard_counts(out_dir):
        remove_shards(plan, merged)
    return out_dir


def generate(cfg: GenerateConfig | Mapping[str, Any], progress: bool = True) -> Path:
    """`pdebench-generate` as a library call: generate the dataset, one shard of it (`shard`, `n_shards`) or join
    its shards (`merge=true`); returns the directory written.

    `cfg` is the typed `GenerateConfig`, or a plain mapping of its shape, typed here (`generate_config`). An
    unknown key (`+foo=1`), a value out of range, a device this machine lacks or settings that ask for no one
    thing fail in one sentence before any directory is created.
    """
    cfg = resolve_shard_count(generate_config(cfg))
    if cfg.merge:
        _check_scaleout(cfg.shard, cfg.n_shards, merge=True)
        return merge_shards(cfg.pde, cfg.preset, cfg.root, seed=cfg.seed, batch_size=cfg.batch_size,
                            overwrite=cfg.overwrite, progress=progress, n_shards=cfg.n_shards)
    return generate_dataset(cfg.pde, cfg.preset, cfg.root, seed=cfg.seed, batch_size=cfg.batch_size,
                            device=cfg.device, overwrite=cfg.overwrite, progress=progress, workers=cfg.workers,
                            shard=cfg.shard, n_shards=cfg.n_shards)
