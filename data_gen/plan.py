"""What a dataset is, derived from its PDE config alone: the generator, the split layouts, the seeds, the record.

A `DatasetPlan` is everything a generation, a shard or a merge of `<root>/<pde.name>-<preset>` needs before any
file is touched. Seeds never depend on batching or sharding (`trajectory_seeds`), so every way of writing a
dataset writes the same trajectories.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

import pdebench
from data_gen.base import TrajectoryGenerator
from data_gen.registry import generator_entry, solver_config
from pdebench.config import PDEGenConfig, PresetConfig, plain_config
from pdebench.data.schema import SPLITS, DatasetLayout, dataset_name
from pdebench.data.writer import validate_layout
from pdebench.errors import InvalidSetting, UnknownName


def name_entropy(name: str) -> int:
    """A stable 64-bit number for a dataset's PDE name: the first 8 bytes (little-endian) of its sha256.

    Python's `hash()` of a string changes from one process to the next, so it cannot seed data."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


def trajectory_seeds(base_seed: int, split: str, n_traj: int, name: str) -> np.ndarray:
    """Seed of trajectory i of `split` of the datasets of PDE `name` (`pde.name`, e.g. `ks` or `ks_visc`): depends
    only on (base_seed, name, split, i), never on batching or sharding.

    The name takes part so that two datasets of one generator (`ks` and `ks_visc`) never start from the same draws:
    with the same seeds their trajectories would share domain lengths, frame intervals and initial sines and differ
    only in the viscosity. The preset does not, so a trajectory of `small` is the one at the same index of `paper`
    where both presets solve it alike."""
    split_index = SPLITS.index(split)
    entropy = name_entropy(name)
    return np.array(
        [np.random.SeedSequence([base_seed, entropy, split_index, i]).generate_state(1)[0] for i in range(n_traj)],
        dtype=np.int64,
    )


def split_layout(generator: TrajectoryGenerator, name: str, preset: str, split: str, n_traj: int,
                 n_frames: int, attrs: dict[str, str]) -> DatasetLayout:
    """The layout of one file of `n_traj` trajectories of `n_frames` frames that `generator` writes."""
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


@dataclass(frozen=True)
class DatasetPlan:
    """Everything a generation, a shard or a merge of one dataset needs, derived from the config alone.

    config: the plain record of the generation (pde, generator, preset, seed, solver, benchmark, splits) written
    into the manifest and, as YAML, into every split file's `generation_config` attribute.
    """

    generator: TrajectoryGenerator
    out_dir: Path
    config: dict[str, Any]
    attrs: dict[str, str]
    layouts: dict[str, DatasetLayout]
    seed: int

    def seeds(self, split: str) -> np.ndarray:
        """`[n_traj]` seeds of the trajectories of `split`."""
        return trajectory_seeds(self.seed, split, int(self.layouts[split].n_traj), str(self.config["pde"]))


def preset_sizes(pde: PDEGenConfig, preset: str) -> PresetConfig:
    """Preset `preset` of `pde` (`UnknownName`, listing the presets it has, if there is none)."""
    if preset not in pde.presets:
        raise UnknownName(f"unknown preset {preset!r} for pde={pde.name}; available presets: "
                          f"{', '.join(pde.presets)}")
    return pde.presets[preset]


def check_conserved_fields(pde: PDEGenConfig, generator: TrajectoryGenerator) -> None:
    """Refuse, before anything is generated, a `benchmark.conserved_fields` naming a field the generator does not
    write (the evaluator would refuse the finished dataset)."""
    written = [f.name for f in generator.fields]
    unknown = [name for name in pde.benchmark.conserved_fields or () if name not in written]
    if unknown:
        raise InvalidSetting(f"pde.benchmark.conserved_fields={list(pde.benchmark.conserved_fields)} for pde "
                             f"{pde.name} names {', '.join(unknown)}, which the {pde.generator} generator does not "
                             f"write (its fields: {', '.join(written)})")


def plan_dataset(pde: PDEGenConfig, preset: str, root: str | Path, seed: int) -> DatasetPlan:
    """Build the generator, record, attributes and layouts of `<pde.name>-<preset>` (nothing is created).

    The solver settings are the PDE's with the preset's overrides on top, typed again as a whole so that a
    misspelt or out-of-range override fails naming it."""
    sizes = preset_sizes(pde, preset)
    settings = solver_config(pde.generator, {**plain_config(pde.solver), **sizes.solver})
    generator = generator_entry(pde.generator).generator(settings)
    check_conserved_fields(pde, generator)
    config = {"pde": pde.name, "generator": pde.generator, "preset": preset, "seed": seed,
              "solver": plain_config(settings), "benchmark": plain_config(pde.benchmark),
              "splits": {split: plain_config(getattr(sizes, split)) for split in SPLITS}}
    attrs = {
        "generation_config": yaml.safe_dump(config, sort_keys=False),
        "solver": pde.generator,
        "solver_settings": yaml.safe_dump(generator.solver_settings(), sort_keys=False),
        "package_version": pdebench.__version__,
    }
    layouts = {}
    for split in SPLITS:
        split_sizes = getattr(sizes, split)
        layouts[split] = split_layout(generator, pde.name, preset, split, split_sizes.n_traj, split_sizes.n_frames,
                                      attrs)
        validate_layout(layouts[split])
    return DatasetPlan(generator, Path(root) / dataset_name(pde.name, preset), config, attrs, layouts, seed)
