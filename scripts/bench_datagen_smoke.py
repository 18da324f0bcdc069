"""Buoyant smoke data-generation cost: stored frames per second, and the time to generate the `small` and `paper`
presets, measured on a subset of trajectories and extrapolated (or, with `--full-small`, by generating `small`).

For each preset the generator is built exactly as `pdebench-generate pde=smoke preset=<preset>` builds it, and
`--traj` trajectories (seeds of the train split) are generated in one batch of `--batch`, warm-up frames
included, after one untimed warm-up call on a single trajectory. Reported per preset: seconds per trajectory,
stored frames per second (trajectories x stored frames / wall time; the 8 dropped warm-up frames cost time but
are not counted), solver steps per second, and the preset's time = its trajectory count (all splits) x seconds per
trajectory, on one core; divide by the number of processes generating in parallel for a multi-core run. The
solver runs on one CPU thread (`data_gen.spectral.single_threaded`).

Rates come from the process's CPU time on CPU (the solver is single-threaded, so this is its cost even on a
machine busy with other work; `--wall` uses wall time), from wall time on a GPU; `wall/cpu` shows the load.

Usage: python scripts/bench_datagen_smoke.py [--traj 8] [--batch 8] [--presets small paper] [--device cpu]
                                             [--full-small]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from data_gen.config import generate_config
from data_gen.generate import generate_dataset
from data_gen.plan import DatasetPlan, plan_dataset
from pdebench.cli.common import CONFIG_DIR, HYDRA_VERSION_BASE
from pdebench.cli.hydra_setup import register_configs
from pdebench.config import GenerateConfig


def preset_plan(pde: str, preset: str) -> tuple[GenerateConfig, DatasetPlan]:
    """The typed config of `pdebench-generate pde=<pde> preset=<preset>` and the driver's plan of it: the generator
    with the preset's solver settings, the split layouts and the seeds (nothing is written)."""
    register_configs()
    with initialize_config_dir(CONFIG_DIR, version_base=HYDRA_VERSION_BASE):
        cfg = compose("generate", overrides=[f"pde={pde}", f"preset={preset}"])
    typed = generate_config(OmegaConf.to_container(cfg, resolve=True))
    return typed, plan_dataset(typed.pde, typed.preset, typed.root, typed.seed)


def measure(plan: DatasetPlan, n_traj: int, batch: int, device: torch.device, use_cpu_time: bool) -> dict[str, Any]:
    """Cost of `n_traj` train trajectories of the planned preset, generated in batches of `batch`, and the whole
    preset's time extrapolated from it (every split charged at its own frame count)."""
    generator = plan.generator
    n_frames = plan.layouts["train"].n_frames
    seeds = [int(s) for s in plan.seeds("train")[:n_traj]]
    n_traj = len(seeds)  # a preset with fewer train trajectories is measured on all of them
    generator.generate(seeds[:1], 2, device)  # untimed warm-up (allocator, kernels)
    start, start_cpu = time.perf_counter(), time.process_time()
    for i in range(0, n_traj, batch):
        generator.generate(seeds[i : i + batch], n_frames, device)
    wall = time.perf_counter() - start
    cpu = time.process_time() - start_cpu
    # On a CPU shared with other work the process's CPU time is the cost; the wall time includes waiting.
    seconds = cpu if device.type == "cpu" and use_cpu_time else wall
    c = generator.config
    steps = n_traj * (c.warmup_frames + n_frames) * c.substeps
    per_traj = seconds / n_traj
    layouts = plan.layouts.values()
    preset_seconds = sum(layout.n_traj * per_traj * (c.warmup_frames + layout.n_frames) / (c.warmup_frames + n_frames)
                         for layout in layouts)
    return {
        "grid": f"{c.resolution[0]}x{c.resolution[1]}",
        "wall_over_cpu": wall / cpu,
        "seconds_per_traj": per_traj,
        "frames_per_s": n_traj * n_frames / seconds,
        "steps_per_s": steps / seconds,
        "total_traj": sum(layout.n_traj for layout in layouts),
        "preset_seconds": preset_seconds,
    }


def generate_whole(cfg: GenerateConfig, root: Path, batch: int, device: str) -> float:
    """Minutes to generate every split of the preset of `cfg` under `root` through the driver."""
    start = time.perf_counter()
    generate_dataset(cfg.pde, cfg.preset, root, seed=cfg.seed, batch_size=batch, device=device, progress=True)
    return (time.perf_counter() - start) / 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pde", default="smoke")
    parser.add_argument("--presets", nargs="+", default=["small", "paper"])
    parser.add_argument("--traj", type=int, default=8, help="trajectories measured per preset")
    parser.add_argument("--batch", type=int, default=8, help="trajectories per solver call")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--full-small", action="store_true", help="also generate the whole small preset (timed)")
    parser.add_argument("--wall", action="store_true",
                        help="rates from wall time (default on CPU: process CPU time, robust to other load)")
    args = parser.parse_args()
    device = torch.device(args.device)
    clock = "wall" if args.wall or device.type != "cpu" else "CPU"
    print(f"{args.pde}: {args.traj} trajectories per preset in batches of {args.batch} on {device} (one thread), "
          f"{clock} time")
    print(f"{'preset':<8}{'grid':>9}{'s/traj':>9}{'frames/s':>10}{'steps/s':>10}{'traj':>7}{'preset time':>14}"
          f"{'wall/cpu':>10}")
    for preset in args.presets:
        r = measure(preset_plan(args.pde, preset)[1], args.traj, args.batch, device, use_cpu_time=not args.wall)
        hours = r["preset_seconds"] / 3600
        when = f"{r['preset_seconds'] / 60:.1f} min" if hours < 1 else f"{hours:.1f} h"
        print(f"{preset:<8}{r['grid']:>9}{r['seconds_per_traj']:>9.3f}{r['frames_per_s']:>10.1f}"
              f"{r['steps_per_s']:>10.1f}{r['total_traj']:>7}{when:>14}{r['wall_over_cpu']:>10.2f}")
    if args.full_small:
        with tempfile.TemporaryDirectory() as root:
            minutes = generate_whole(preset_plan(args.pde, "small")[0], Path(root), args.batch, args.device)
            print(f"small generated through the driver in {minutes:.1f} min")


if __name__ == "__main__":
    main()
