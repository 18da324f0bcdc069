"""Training throughput: the full Lightning path against a bare torch loop, same FNO and same windows.

Lightning side: exactly what `pdebench.training.run.train` builds -- the objective's training window
(`window_spec`), the train split as `run.load_splits` loads it (`data.preload`, default `auto`: held in memory
when it fits, else read lazily from HDF5; `--preload`), the loader of `run.train_loader` (the seeded
`DistributedSampler` order, batch_size, drop_last, `num_workers=0` as in `conf/data/ks.yaml`), `SurrogateModule`
and a `lightning.Trainer` with the default trainer settings (`conf/trainer/cpu.yaml` on `TrainerConfig`: fp32,
gradient clipping at 1.0 (`--clip`), log every 10 steps) -- minus what a benchmark must not time: no validation,
no logger, no checkpoints, no progress bar. Bare side: the same net (`baselines.build_model` inside a
`Forecaster`), the same normalisation, loss, AdamW, warmup-cosine schedule and gradient clipping, on all windows
stacked into in-memory tensors and batched by random-permutation indexing.

Both run `--warmup` untimed steps, then `--steps` timed ones; the timed window runs from the end of the
last warm-up step to the end of the last step, so it holds `--steps` batch fetches and `--steps`
optimisation steps. Best of `--repeats`; the two sides take turns, first one then the other first. Prints
samples/s for each and the ratio lightning / bare, both from the whole timed window and from the median step
time (the latter shrugs off a neighbour process taking the cores for part of a run).

Cases (`--cases`): `onestep` (history 1, bundle 1), `bundle4` (one call predicts 4 frames) and `pushforward`
(when that objective is registered). Then the EMA of the weights (`optim.ema_decay`, Lightning's
EMAWeightAveraging, updated after every step) is timed on the Lightning side against the same run without it:
its overhead per step in ms and as a fraction of the step.

Usage: python scripts/bench_training.py [--steps 60] [--warmup 10] [--batch-size 32] [--data-dir DIR]
       [--cases onestep,bundle4,pushforward] [--preload auto|true|false] [--profile FILE]
"""

from __future__ import annotations

import argparse
import copy
import itertools
import logging
import math
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader

from data_gen.generate import generate_dataset
from pdebench.config import OptimConfig, TrainerConfig, ValidationConfig
from pdebench.data.batch import WindowBatch, collate
from pdebench.data.dataset import WindowDataset
from pdebench.data.reader import split_path
from pdebench.forecast.checkpoint import build_forecaster
from pdebench.training.callbacks import weight_averaging
from pdebench.training.module import SurrogateModule, clip_gradient_norm, warmup_cosine
from pdebench.training.objectives import OBJECTIVES, make_objective, window_spec
from pdebench.training.run import describe_data, load_splits, train_loader

REPO = Path(__file__).resolve().parents[1]
BENCH_PRESET = "bench"
# Small enough to generate in seconds, large enough for more than one epoch of 32-sample batches.
BENCH_SIZES: dict[str, Any] = {
    "train": {"n_traj": 64, "n_frames": 40},
    "valid": {"n_traj": 2, "n_frames": 16},
    "test": {"n_traj": 2, "n_frames": 16},
    "solver": {"burn_in_time": 10.0},
}
FRAME_STRIDE = 4
HISTORY = 1
SEED = 0
# case -> (objective name, bundle)
CASES = {"onestep": ("onestep", 1), "bundle4": ("onestep", 4), "pushforward": ("pushforward", 1)}


def make_dataset(root: Path) -> Path:
    """Generate the KS `bench` preset under `root` and return its dataset directory."""
    pde = yaml.safe_load((REPO / "conf" / "pde" / "ks.yaml").read_text())
    pde.pop("defaults", None)
    pde["presets"] = {BENCH_PRESET: BENCH_SIZES}
    return generate_dataset(pde, BENCH_PRESET, root, seed=SEED, device="cpu", progress=False)


def configs(args: argparse.Namespace, objective: str = "onestep", bundle: int = 1) -> dict[str, dict[str, Any]]:
    """The config sections `train` reads, at their defaults except for the benchmark's arguments."""
    objective_cfg = dict(compose_objective(objective))
    objective_cfg.update({"history": HISTORY, "bundle": bundle, "loss": "mse", "target": "state",
                          "target_scale": 1.0})
    return {
        "data": {"preload": args.preload, "batch_size": args.batch_size, "num_workers": 0},
        "trainer": {"enable_progress_bar": False},
        "model": {"name": "fno", "n_modes": [args.modes], "hidden_channels": args.hidden,
                  "n_layers": args.layers, "factorization": None, "rank": 1.0},
        "objective": objective_cfg,
        "optim": vars(OptimConfig()),
        "validation": vars(ValidationConfig()),
    }


def compose_objective(name: str) -> dict[str, Any]:
    """`conf/objective/<name>.yaml` over the schema defaults (what `objective=<name>` composes to)."""
    from dataclasses import asdict

    from pdebench.config import ObjectiveConfig

    values = asdict(ObjectiveConfig()) | {"name": name}
    path = REPO / "conf" / "objective" / f"{name}.yaml"
    if path.is_file():
        values |= {k: v for k, v in (yaml.safe_load(path.read_text()) or {}).items() if k != "defaults"}
    return values


def trainer_kwargs(max_steps: int, clip: float) -> dict[str, Any]:
    """`TrainerConfig` defaults with `conf/trainer/cpu.yaml` on top, made into a bare timed training loop."""
    kwargs = vars(TrainerConfig()) | {"accelerator": "cpu", "devices": 1, "precision": "32-true"}
    kwargs |= {"gradient_clip_val": clip or None, "max_epochs": -1, "max_steps": max_steps,
               "limit_val_batches": 0, "num_sanity_val_steps": 0, "enable_progress_bar": False}
    return kwargs | {"logger": False, "enable_checkpointing": False, "enable_model_summary": False}


class StepTimer(Callback):
    """Clock reading at the end of every optimisation step (`ends[k]`: end of step k + 1)."""

    def __init__(self) -> None:
        self.ends: list[float] = []

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self.ends.append(time.perf_counter())


def timed_window(ends: list[float], warmup: int, steps: int) -> tuple[float, float]:
    """(seconds from the end of step `warmup` to the end of step `warmup + steps`, median step seconds)."""
    if len(ends) < warmup + steps:
        raise RuntimeError(f"training stopped after {len(ends)} of {warmup + steps} steps")
    window = ends[warmup - 1 : warmup + steps]
    return window[-1] - window[0], statistics.median(b - a for a, b in itertools.pairwise(window))


def run_lightning(dataset_dir: Path, cfg: dict[str, dict[str, Any]], data_info: dict[str, Any],
                  args: argparse.Namespace, ema_decay: float | None = None) -> tuple[float, float]:
    """(window, median step) seconds of `Trainer.fit` set up as `pdebench.training.run.train` does."""
    L.seed_everything(SEED, workers=True, verbose=False)
    timer = StepTimer()
    averaging = weight_averaging(ema_decay)
    callbacks = [timer] if averaging is None else [averaging, timer]  # the timer reads after the EMA update
    trainer = L.Trainer(callbacks=callbacks, **trainer_kwargs(args.warmup + args.steps, args.clip))
    train_set, _ = load_splits(cfg, dataset_dir, window_spec(cfg["objective"], FRAME_STRIDE), trainer)
    module = SurrogateModule(model=cfg["model"], objective=cfg["objective"], optim=cfg["optim"],
                             validation=cfg["validation"], data_info=data_info,
                             run={"label": "bench", "seed": SEED, "git_commit": None})
    loader = train_loader(train_set, cfg["data"], trainer, SEED)
    if args.profile is None:
        trainer.fit(module, loader)
    else:
        profile_fit(trainer, module, loader, args.profile)
    return timed_window(timer.ends, args.warmup, args.steps)


def profile_fit(trainer: L.Trainer, module: SurrogateModule, loader: DataLoader, path: Path) -> None:
    """`trainer.fit` under cProfile; writes the stats to `path` and prints the 25 largest cumulative entries."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.runcall(trainer.fit, module, loader)
    profiler.dump_stats(str(path))
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


def preload_windows(dataset_dir: Path, cfg: dict[str, dict[str, Any]]) -> WindowBatch:
    """Every training window of the split for this objective, stacked (the lazily read `WindowDataset` items)."""
    dataset = WindowDataset(split_path(dataset_dir, "train"), window_spec(cfg["objective"], FRAME_STRIDE))
    return collate([dataset[i] for i in range(len(dataset))])


def run_bare(windows: WindowBatch, cfg: dict[str, dict[str, Any]],
             data_info: dict[str, Any], args: argparse.Namespace) -> tuple[float, float]:
    """(window, median step) seconds of a plain torch loop, same optimisation and loss, on in-memory windows."""
    L.seed_everything(SEED, workers=True, verbose=False)
    forecaster = build_forecaster(cfg["model"], cfg["objective"], data_info)
    forecaster.train()
    objective = make_objective(cfg["objective"])
    optim = cfg["optim"]
    total = args.warmup + args.steps
    warmup_lr = max(1, int(optim["warmup_fraction"] * total))
    optimizer = torch.optim.AdamW(forecaster.parameters(), lr=optim["lr"], weight_decay=optim["weight_decay"])
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, total, warmup_lr, optim["min_lr_ratio"])
    )
    n_samples = len(windows.inputs)
    n_batches = n_samples // args.batch_size
    perm = torch.randperm(n_samples)
    ends = []
    for step in range(total):
        b = step % n_batches
        if b == 0 and step:
            perm = torch.randperm(n_samples)
        idx = perm[b * args.batch_size : (b + 1) * args.batch_size]
        batch = WindowBatch(windows.inputs[idx], windows.targets[idx], windows.cond[idx], windows.step_time[idx],
                            windows.index[idx], None if windows.labels is None else windows.labels[idx])
        loss = objective.loss(forecaster, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if args.clip:
            clip_gradient_norm(forecaster.parameters(), args.clip)
        optimizer.step()
        schedule.step()
        ends.append(time.perf_counter())
    return timed_window(ends, args.warmup, args.steps)


def _preload_choice(text: str) -> bool | str:
    choices = {"auto": "auto", "true": True, "false": False}
    if text not in choices:
        raise argparse.ArgumentTypeError(f"expected auto, true or false, got {text!r}")
    return choices[text]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60, help="timed optimisation steps")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps before them (>= 1)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=64, help="FNO hidden channels")
    parser.add_argument("--modes", type=int, default=64, help="FNO Fourier modes")
    parser.add_argument("--layers", type=int, default=4, help="FNO layers")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs per side")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="existing KS dataset directory (holding train.h5); default: generate one in a "
                             "temporary directory")
    parser.add_argument("--clip", type=float, default=TrainerConfig().gradient_clip_val,
                        help="gradient-norm clipping on both sides, as trainer.gradient_clip_val (0: none)")
    parser.add_argument("--cases", default="onestep,bundle4,pushforward",
                        help=f"comma-separated cases among {', '.join(CASES)}")
    parser.add_argument("--ema-decay", type=float, default=0.995, help="decay of the timed EMA (0: skip that part)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice, one per core)")
    parser.add_argument("--preload", type=_preload_choice, default="auto",
                        help="data.preload of the Lightning side: auto (as train chooses), true or false")
    parser.add_argument("--profile", type=Path, default=None,
                        help="run each Lightning fit under cProfile, writing the stats to this file (overwritten); "
                             "timings are then not comparable")
    args = parser.parse_args()
    if args.warmup < 1 or args.steps < 1:
        parser.error("--warmup and --steps must be at least 1")
    return args


def quiet_lightning() -> None:
    """Keep Lightning's set-up chatter and its warnings about what the benchmark leaves out off the table."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for message in (".*does not have many workers.*", ".*no `val_dataloader`.*", ".*LeafSpec.*",
                    ".*`srun` command is available.*"):
        warnings.filterwarnings("ignore", message=message)


def cpu_snapshot() -> tuple[float, float, float] | None:
    """(busy seconds of the whole machine, seconds of this process, wall clock), or None off Linux."""
    try:
        fields = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    busy = (sum(fields[:8]) - fields[3] - fields[4]) / tick  # all but idle and iowait
    own = os.times()
    return busy, own.user + own.system, time.perf_counter()


def load_average() -> str:
    """The 1, 5 and 15 minute load averages of the machine, or "unknown"."""
    try:
        return ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def foreign_load(before: tuple[float, float, float] | None) -> str:
    """Mean number of cores other processes kept busy since `before` (they distort every timing here)."""
    after = cpu_snapshot()
    if before is None or after is None:
        return "unknown"
    return f"{max(0.0, (after[0] - before[0]) - (after[1] - before[1])) / (after[2] - before[2]):.2f} cores"


def compare(label: str, runners: dict[str, Any], args: argparse.Namespace
            ) -> tuple[dict[str, tuple[float, float]], list[float]]:
    """Best (window, median step) seconds of each runner over `--repeats`, alternating which goes first; and, per
    repeat, the first runner's speed relative to the second's from their median steps (two runs back to back share
    the machine's state of the moment, so these ratios vary less than the runs do)."""
    best: dict[str, tuple[float, float]] = {}
    paired: list[float] = []
    names = list(runners)
    for repeat in range(args.repeats):
        load = cpu_snapshot()
        order = names if repeat % 2 == 0 else names[::-1]  # cancel drifts
        times = {name: runners[name]() for name in order}
        for name, (window, median) in times.items():
            old = best.get(name, (math.inf, math.inf))
            best[name] = (min(old[0], window), min(old[1], median))
        paired.append(times[names[1]][1] / times[names[0]][1])
        parts = [f"{name} {window:.3f} s (median step {1e3 * median:.1f} ms)"
                 for name, (window, median) in times.items()]
        print(f"  {label} repeat {repeat + 1}: " + ", ".join(parts) + f"; other processes: {foreign_load(load)}")
    return best, paired


def spread(values: list[float]) -> str:
    """`median [min-max]` of a few ratios."""
    return f"{statistics.median(values):.3f} [{min(values):.3f}-{max(values):.3f}]"


def benchmark(dataset_dir: Path, args: argparse.Namespace) -> None:
    """Time both sides `--repeats` times per case on `dataset_dir`, then the EMA, and print the tables."""
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        raise SystemExit(f"--cases: unknown case(s) {', '.join(unknown)}; choose among {', '.join(CASES)}")
    cfg = configs(args)
    train_set, _ = load_splits(cfg, dataset_dir, window_spec(cfg["objective"], FRAME_STRIDE),
                               L.Trainer(**trainer_kwargs(1, args.clip)))
    data_info = describe_data(dataset_dir, train_set.file, FRAME_STRIDE)
    mode = "preloaded" if train_set.preloaded else "read lazily from HDF5"
    print(f"data: {dataset_dir.name}, {len(train_set)} windows, {mode} (data.preload={args.preload}); FNO "
          f"hidden={args.hidden} modes={args.modes} layers={args.layers}; batch {args.batch_size}, {args.warmup} "
          f"warm-up + {args.steps} timed steps; torch threads {torch.get_num_threads()}; load average "
          f"{load_average()}")
    rows = []
    for case in cases:
        objective, bundle = CASES[case]
        if objective not in OBJECTIVES:
            print(f"  {case}: skipped, objective {objective!r} is not registered")
            continue
        cfg = configs(args, objective, bundle)
        windows = preload_windows(dataset_dir, cfg)
        best, paired = compare(case, {
            "lightning": lambda cfg=cfg: run_lightning(dataset_dir, copy.deepcopy(cfg), data_info, args),
            "bare": lambda cfg=cfg, windows=windows: run_bare(windows, copy.deepcopy(cfg), data_info, args),
        }, args)
        # samples/s over the whole timed window of the best repeat, and from the best median step time (the latter
        # is robust to a neighbour process taking the cores during part of a repeat).
        rate = {name: (args.steps * args.batch_size / window, args.batch_size / median)
                for name, (window, median) in best.items()}
        rows.append((case, rate, paired))
    print(f"\n{'case':<12} {'lightning':>10} {'bare':>10} {'ratio':>7} {'ratio (median step)':>20} "
          f"{'paired ratio, median [range]':>29}   samples/s; ratios lightning / bare")
    for case, rate, paired in rows:
        ratio = [rate["lightning"][k] / rate["bare"][k] for k in range(2)]
        print(f"{case:<12} {rate['lightning'][0]:>10.1f} {rate['bare'][0]:>10.1f} {ratio[0]:>7.3f} {ratio[1]:>20.3f} "
              f"{spread(paired):>29}")
    if args.ema_decay:
        cfg = configs(args)
        best, paired = compare("ema", {
            "no EMA": lambda: run_lightning(dataset_dir, copy.deepcopy(cfg), data_info, args),
            "EMA": lambda: run_lightning(dataset_dir, copy.deepcopy(cfg), data_info, args, args.ema_decay),
        }, args)
        plain, averaged = best["no EMA"][1], best["EMA"][1]
        print(f"\nEMA (decay {args.ema_decay}) overhead per step: {1e3 * (averaged - plain):.2f} ms on "
              f"{1e3 * plain:.2f} ms ({100 * (averaged - plain) / plain:+.1f}%, best median step times); per "
              f"repeat, step time with EMA / without: {spread(paired)}")


def main() -> None:
    args = parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    quiet_lightning()
    if args.data_dir is not None:
        benchmark(args.data_dir, args)
        return
    with tempfile.TemporaryDirectory(prefix="pdebench-bench-") as root:
        started = time.perf_counter()
        dataset_dir = make_dataset(Path(root))
        print(f"generated {dataset_dir.name} in {time.perf_counter() - started:.1f} s")
        benchmark(dataset_dir, args)


if __name__ == "__main__":
    main()
