"""The generation driver: turns a PDE config and a preset into `data/<name>-<preset>/{train,valid,test}.h5`.

Solver-agnostic: each PDE family provides a `TrajectoryGenerator`; this module seeds trajectories, batches them,
writes through `pdebench.data.TrajectoryWriter` (atomic, resumable) and writes the manifest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

import pdebench
from data_gen.base import TrajectoryGenerator
from data_gen.registry import make_generator
from pdebench.data.manifest import write_manifest
from pdebench.data.schema import SPLITS, DatasetLayout, dataset_name
from pdebench.data.writer import TrajectoryWriter, partial_path
from pdebench.devices import resolve_device


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


def generate_dataset(pde: Mapping[str, Any], preset: str, root: str | Path, *, seed: int = 0,
                     batch_size: int = 64, device: str = "auto", overwrite: bool = False,
                     progress: bool = True) -> Path:
    """Generate every split of `<pde.name>-<preset>` under `root`; complete split files are kept unless `overwrite`."""
    presets = pde["presets"]
    if preset not in presets:
        raise ValueError(
            f"unknown preset {preset!r} for pde={pde['name']}; available presets: {', '.join(presets)}"
        )
    sizes = presets[preset]
    solver = {**pde["solver"], **sizes.get("solver", {})}
    generator = make_generator(pde["generator"], solver)
    out_dir = Path(root) / dataset_name(pde["name"], preset)
    out_dir.mkdir(parents=True, exist_ok=True)
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
    for split in SPLITS:
        path = out_dir / f"{split}.h5"
        if overwrite:
            path.unlink(missing_ok=True)
            partial_path(path).unlink(missing_ok=True)
        if path.exists():
            continue
        n_traj, n_frames = sizes[split]["n_traj"], sizes[split]["n_frames"]
        layout = split_layout(generator, pde["name"], preset, split, n_traj, n_frames, attrs)
        generate_split(generator, path, layout, trajectory_seeds(seed, split, n_traj), batch_size, torch_device,
                       progress)
    write_manifest(out_dir, config)
    return out_dir
