"""All cores, same bits: dataset generation with 1 worker process against several, on one machine, in one run.

Generates the same dataset (a preset of one PDE, its trajectory counts scaled by `--fraction`) once per worker count
through the real driver (`data_gen.generate.generate_dataset`, the code `pdebench-generate workers=N` runs), checks
that every split file is bitwise identical to the one-worker run, and prints wall time, trajectories per second and
the speed-up over one worker. Each worker count runs `--repeats` times, interleaved (1, 2, 1, 2, ...), so every
count sees the same background load; the best time of each counts. Times are end to end: worker start-up (a fresh
interpreter importing torch per worker) is included. The CPU time of this process and its workers is printed too:
on a machine shared with other work (the load average is printed before and after) extra processes may get no
extra CPU, and equal CPU time with 1 and N workers then shows that the split itself costs nothing.

Usage: python scripts/bench_datagen_cores.py [--pde ks] [--preset small] [--fraction 0.125] [--workers 1,2]
       [--batch-size 64] [--repeats 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import filecmp
import math
import os
import resource
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from data_gen.config import generate_config
from data_gen.generate import generate_dataset
from data_gen.parallel import available_cores
from pdebench.cli.common import CONFIG_DIR, HYDRA_VERSION_BASE
from pdebench.cli.hydra_setup import register_configs
from pdebench.config import GenerateConfig
from pdebench.data.schema import SPLITS


def scaled_config(overrides: list[str], fraction: float) -> tuple[GenerateConfig, int]:
    """The `pdebench-generate` config of these overrides, typed (`generate_config`), with every split of its preset
    scaled to `fraction` of its trajectories (at least one each); and the number of trajectories in all."""
    register_configs()
    with initialize_config_dir(CONFIG_DIR, version_base=HYDRA_VERSION_BASE):
        cfg = generate_config(OmegaConf.to_container(compose("generate", overrides), resolve=True))
    sizes = cfg.pde.presets[cfg.preset]
    for split in SPLITS:
        getattr(sizes, split).n_traj = max(1, math.ceil(getattr(sizes, split).n_traj * fraction))
    return cfg, sum(getattr(sizes, split).n_traj for split in SPLITS)


def cpu_seconds() -> float:
    """User + system CPU time of this process and of its finished (waited-for) child processes."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pde", default="ks")
    parser.add_argument("--preset", default=None, help="the preset (default: the generate config's)")
    parser.add_argument("--fraction", type=float, default=0.125, help="share of the preset's trajectories")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts; the first is the baseline")
    parser.add_argument("--batch-size", type=int, default=None, help="trajectories per block (default: the "
                                                                       "generate config's)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    overrides = [f"pde={args.pde}", f"device={args.device}"]
    overrides += [f"{key}={value}" for key, value in (("preset", args.preset), ("batch_size", args.batch_size))
                  if value is not None]
    cfg, n_traj = scaled_config(overrides, args.fraction)
    sizes = cfg.pde.presets[cfg.preset]
    per_split = ", ".join(f"{s} {getattr(sizes, s).n_traj}" for s in SPLITS)
    print(f"{cfg.pde.name}-{cfg.preset} x {args.fraction:g}: {n_traj} trajectories ({per_split}), batch_size "
          f"{cfg.batch_size}, device {cfg.device}; {available_cores()} cores available, "
          f"load average {os.getloadavg()[0]:.2f}")
    best: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        outputs: dict[int, Path] = {}
        for repeat in range(args.repeats):
            for workers in counts:
                root = Path(tmp) / f"w{workers}-r{repeat}"
                cpu_start, start = cpu_seconds(), time.perf_counter()
                out = generate_dataset(cfg.pde, cfg.preset, root, seed=cfg.seed, batch_size=cfg.batch_size,
                                       device=cfg.device, progress=False, workers=workers)
                elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
                best[workers] = min(best.get(workers, math.inf), elapsed)
                outputs.setdefault(workers, out)
                print(f"  round {repeat + 1}, workers {workers}: {elapsed:.1f} s wall, {cpu:.1f} s CPU "
                      f"(this process and its workers)", flush=True)
        base = counts[0]
        identical = {w: all(filecmp.cmp(outputs[base] / f"{s}.h5", outputs[w] / f"{s}.h5", shallow=False)
                            for s in SPLITS) for w in counts}
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"\n| workers | best wall s | traj/s | speed-up vs {base} | files identical to {base} worker(s) |")
    print("|---|---|---|---|---|")
    for w in counts:
        print(f"| {w} | {best[w]:.1f} | {n_traj / best[w]:.2f} | {best[base] / best[w]:.2f}x | "
              f"{'yes' if identical[w] else 'NO'} |")
    if not all(identical.values()):
        raise SystemExit("files differ between worker counts")


if __name__ == "__main__":
    main()
