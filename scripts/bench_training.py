"""Training throughput: the full Lightning path against a bare torch loop, same FNO and same windows.

Config: what `pdebench-train data=ks model=fno objective=<case's> trainer=cpu` composes, typed once by
`train_config`, with the benchmark's arguments as overrides (`--batch-size`, `--hidden`, `--modes`, `--layers`,
`--clip`, `--preload`; each left out keeps the config tree's value). Lightning side: exactly what
`pdebench.training.run.train` builds from it -- the objective's training window (`window_spec`, at the frame stride
the dataset's manifest records), the train split as `run.load_splits` loads it (`data.preload`, default `auto`:
held in memory when it fits, else read lazily from HDF5), the loader of `run.train_loader` (the seeded
`DistributedSampler` order, batch_size, drop_last, `num_workers` of `conf/data/ks.yaml`), `SurrogateModule` and a
`lightning.Trainer` with the trainer settings (`conf/trainer/cpu.yaml` on `TrainerConfig`: fp32, gradient
clipping, log every 10 steps) -- minus what a benchmark must not time: no validation, no logger, no checkpoints, no
progress bar. Bare side: the same net (`baselines.build_model` inside a `Forecaster`), the same normalisation, loss,
AdamW, warmup-cosine schedule and gradient clipping, on all windows stacked into in-memory tensors and batched by
random-permutation indexing.

The two sides run interleaved in one process: after every Lightning step, one bare step (`InterleavedBare`).
Step k of each side thus runs right after step k of the other and both meet the machine in the same state (clock
speed, a neighbour's load); separate runs of the two differ by up to +-10% on a shared machine, which hid a few
percent of difference. Both take `--warmup` untimed steps, then `--steps` timed ones, `--repeats` times. Prints,
per case, samples/s of each side (median over repeats), the speed ratio lightning / bare as the median of the
per-step ratios with a distribution-free ~95% interval, and the Lightning path's extra milliseconds per step (with
a tiny net, e.g. `--hidden 4 --modes 4 --layers 1`, that is the fixed cost of the loop itself).

Cases (`--cases`): `onestep` (history 1, bundle 1), `bundle4` (one call predicts 4 frames) and `pushforward`
(when that objective is registered), timed with its curriculum at full depth (as from epoch `unroll_steps` on) and
the same draws of the number of unrolled steps on both sides, so that step k does the same work on each. Then the
EMA of the weights (`optim.ema_decay`, updated after every step): its update is timed inside the run, in ms and as
a share of the step, for `pdebench.training.callbacks.weight_averaging` and for Lightning's `EMAWeightAveraging`
as it comes.

Usage: python scripts/bench_training.py [--steps 60] [--warmup 10] [--batch-size N] [--data-dir DIR]
       [--cases onestep,bundle4,pushforward] [--preload auto|true|false] [--profile FILE]
"""

from __future__ import annotations

import argparse
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
from lightning.pytorch.callbacks import Callback, EMAWeightAveraging
from torch.utils.data import DataLoader

from data_gen.generate import generate_dataset
from pdebench.cli.hydra_setup import composed, register_configs
from pdebench.config import TrainConfig, plain_config
from pdebench.data.batch import WindowBatch, collate
from pdebench.data.dataset import WindowDataset
from pdebench.data.manifest import benchmark_facts, benchmark_settings
from pdebench.data.reader import split_path
from pdebench.data.schema import MANIFEST_NAME
from pdebench.forecast.checkpoint import build_forecaster
from pdebench.training.callbacks import weight_averaging
from pdebench.training.config import train_config
from pdebench.training.module import SurrogateModule, clip_gradient_norm, warmup_cosine
from pdebench.training.objectives import OBJECTIVES, Objective, Pushforward, make_objective, window_spec
from pdebench.training.run import describe_data, load_splits, resolve_frame_stride, train_loader

BENCH_PRESET = "bench"
# Small enough to generate in seconds, large enough for more than one epoch of 32-sample batches.
BENCH_SIZES: dict[str, Any] = {
    "train": {"n_traj": 64, "n_frames": 40},
    "valid": {"n_traj": 2, "n_frames": 16},
    "test": {"n_traj": 2, "n_frames": 16},
    "solver": {"burn_in_time": 10.0},
}
SEED = 0
# case -> (objective name, bundle)
CASES = {"onestep": ("onestep", 1), "bundle4": ("onestep", 4), "pushforward": ("pushforward", 1)}


def pin_unroll_draws(objective: Objective) -> None:
    """Pushforward only: its curriculum at full depth whatever the epoch, and its draws of k (unrolled steps) from a
    stream of its own seeded `SEED`, so that the Lightning and the bare side unroll equally far at every step."""
    if not isinstance(objective, Pushforward):
        return
    draws = torch.Generator().manual_seed(SEED)
    objective.set_epoch = lambda epoch: None  # type: ignore[method-assign]
    objective.draw_steps = lambda: int(  # type: ignore[method-assign]
        torch.randint(0, objective.unroll_steps + 1, (), generator=draws))


def make_dataset(root: Path) -> Path:
    """Generate the KS `bench` preset (`BENCH_SIZES`) under `root` and return its dataset directory."""
    pde = composed("generate", ["pde=ks"])["pde"]
    pde["presets"][BENCH_PRESET] = BENCH_SIZES
    return generate_dataset(pde, BENCH_PRESET, root, seed=SEED, device="cpu", progress=False)


def configs(args: argparse.Namespace, objective: str = "onestep", bundle: int = 1) -> TrainConfig:
    """The config `pdebench-train data=ks model=fno objective=<objective> trainer=cpu` runs with, the benchmark's
    arguments as overrides, typed once (`train_config`); every other setting is the config tree's own."""
    overrides = ["data=ks", f"data.preload={args.preload}", "model=fno", f"objective={objective}",
                 f"objective.bundle={bundle}", "trainer=cpu", "trainer.enable_progress_bar=false", f"seed={SEED}"]
    given = {"data.batch_size": args.batch_size, "model.n_modes": None if args.modes is None else [args.modes],
             "model.hidden_channels": args.hidden, "model.n_layers": args.layers,
             "trainer.gradient_clip_val": args.clip}
    overrides += [f"{key}={value}" for key, value in given.items() if value is not None]
    return train_config(composed("train", overrides))


def frame_stride_of(cfg: TrainConfig, dataset_dir: Path) -> int:
    """Stored frames per model step, as training resolves it: `data.frame_stride`, else the dataset's manifest."""
    bench = benchmark_settings(benchmark_facts(dataset_dir), dataset_dir / MANIFEST_NAME)
    return resolve_frame_stride(cfg.data, bench)


def trainer_kwargs(cfg: TrainConfig, max_steps: int) -> dict[str, Any]:
    """The `trainer` settings of `cfg` (`conf/trainer/cpu.yaml` on `TrainerConfig`), made into a bare timed training
    loop: `max_steps` steps, no validation, logger, checkpoints or progress bar."""
    kwargs = plain_config(cfg.trainer) | {"gradient_clip_val": cfg.trainer.gradient_clip_val or None}
    kwargs |= {"max_epochs": -1, "max_steps": max_steps, "limit_val_batches": 0, "num_sanity_val_steps": 0,
               "enable_progress_bar": False}
    return kwargs | {"logger": False, "enable_checkpointing": False, "enable_model_summary": False}


class TimedUpdates(Callback):
    """Times the per-step update of a weight-averaging callback (it does all its per-step work in
    `on_train_batch_end`) and the whole Lightning iteration around it; list it after that callback."""

    def __init__(self, averaging: Callback) -> None:
        self.update_s: list[float] = []
        self.ends: list[float] = []
        update = averaging.on_train_batch_end

        def timed_update(*args: Any, **kwargs: Any) -> None:
            start = time.perf_counter()
            update(*args, **kwargs)
            self.update_s.append(time.perf_counter() - start)

        averaging.on_train_batch_end = timed_update  # type: ignore[method-assign]

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self.ends.append(time.perf_counter())


def run_averaging(dataset_dir: Path, cfg: TrainConfig, data_info: dict[str, Any],
                  args: argparse.Namespace, averaging: Callback) -> tuple[list[float], list[float]]:
    """Per timed step of one `Trainer.fit` with `averaging`: (seconds of its update, seconds of the iteration)."""
    L.seed_everything(SEED, workers=True, verbose=False)
    timed = TimedUpdates(averaging)
    fit_lightning(dataset_dir, cfg, data_info, args, [averaging, timed])
    steps = [b - a for a, b in itertools.pairwise(timed.ends)][args.warmup - 1 :]
    if len(steps) < args.steps:
        raise RuntimeError(f"training stopped after {len(timed.ends)} of {args.warmup + args.steps} steps")
    return timed.update_s[args.warmup :], steps


def fit_lightning(dataset_dir: Path, cfg: TrainConfig, data_info: dict[str, Any],
                  args: argparse.Namespace, callbacks: list[Callback]) -> None:
    """`Trainer.fit` of `--warmup + --steps` steps, built as `pdebench.training.run.train` builds it."""
    trainer = L.Trainer(callbacks=callbacks, **trainer_kwargs(cfg, args.warmup + args.steps))
    train_set, _ = load_splits(cfg, dataset_dir, window_spec(cfg.objective, data_info["frame_stride"]), trainer)
    module = SurrogateModule(model=cfg.model, objective=cfg.objective, optim=cfg.optim, validation=cfg.validation,
                             data_info=data_info, run={"label": cfg.label, "seed": cfg.seed, "git_commit": None})
    pin_unroll_draws(module.objective)
    loader = train_loader(train_set, cfg.data, trainer, cfg.seed)
    if args.profile is None:
        trainer.fit(module, loader)
    else:
        profile_fit(trainer, module, loader, args.profile)


def profile_fit(trainer: L.Trainer, module: SurrogateModule, loader: DataLoader, path: Path) -> None:
    """`trainer.fit` under cProfile; writes the stats to `path` and prints the 25 largest cumulative entries."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.runcall(trainer.fit, module, loader)
    profiler.dump_stats(str(path))
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


def preload_windows(dataset_dir: Path, cfg: TrainConfig, frame_stride: int) -> WindowBatch:
    """Every training window of the split for this objective, stacked (the lazily read `WindowDataset` items)."""
    dataset = WindowDataset(split_path(dataset_dir, "train"), window_spec(cfg.objective, frame_stride))
    return collate([dataset[i] for i in range(len(dataset))])


class BareLoop:
    """A plain torch training loop on in-memory windows: the same net, normalisation, loss, AdamW, warmup-cosine
    schedule and gradient clipping as the Lightning side, batches drawn by random-permutation indexing."""

    def __init__(self, windows: WindowBatch, cfg: TrainConfig, data_info: dict[str, Any],
                 args: argparse.Namespace) -> None:
        self.windows, self.batch_size, self.clip = windows, cfg.data.batch_size, cfg.trainer.gradient_clip_val
        self.forecaster = build_forecaster(cfg.model, cfg.objective, data_info)
        self.forecaster.train()
        self.objective = make_objective(cfg.objective)
        pin_unroll_draws(self.objective)
        optim = cfg.optim
        total = args.warmup + args.steps
        warmup_lr = max(1, int(optim.warmup_fraction * total))
        self.optimizer = torch.optim.AdamW(self.forecaster.parameters(), lr=optim.lr, weight_decay=optim.weight_decay)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: warmup_cosine(step, total, warmup_lr, optim.min_lr_ratio)
        )
        self.n_batches = len(windows.inputs) // self.batch_size
        self.steps = 0
        self.perm = torch.randperm(len(windows.inputs))

    def step(self) -> None:
        """One batch: gather it, forward, backward, clip, AdamW, schedule."""
        b = self.steps % self.n_batches
        if b == 0 and self.steps:
            self.perm = torch.randperm(len(self.windows.inputs))
        idx = self.perm[b * self.batch_size : (b + 1) * self.batch_size]
        w = self.windows
        batch = WindowBatch(w.inputs[idx], w.targets[idx], w.cond[idx], w.step_time[idx], w.index[idx],
                            None if w.labels is None else w.labels[idx])
        with torch.enable_grad():
            loss = self.objective.loss(self.forecaster, batch)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        if self.clip:
            clip_gradient_norm(self.forecaster.parameters(), self.clip)
        self.optimizer.step()
        self.schedule.step()
        self.steps += 1


class InterleavedBare(Callback):
    """One `BareLoop` step after every Lightning step, in the same process: step k of each side runs right after
    step k of the other, so both see the machine in the same state (clock speed, a neighbour's load), and the
    per-step ratios cancel what makes separate runs of the two differ by +-10% on a shared machine.

    `lightning[k]`: seconds from the end of bare step k to the end of Lightning step k + 1 (the whole Lightning
    iteration: loop bookkeeping, batch fetch, hooks, forward, backward, clipping, optimizer, schedule).
    `bare[k]`: seconds of bare step k.
    """

    def __init__(self, bare: BareLoop) -> None:
        self.loop = bare
        self.lightning: list[float] = []
        self.bare: list[float] = []
        self._last: float | None = None

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.lightning.append(now - self._last)
        self.loop.step()
        self._last = time.perf_counter()
        self.bare.append(self._last - now)


def run_interleaved(dataset_dir: Path, windows: WindowBatch, cfg: TrainConfig,
                    data_info: dict[str, Any], args: argparse.Namespace) -> tuple[list[float], list[float]]:
    """Per timed step, (Lightning seconds, bare seconds) from one `Trainer.fit` interleaved with a `BareLoop`."""
    L.seed_everything(SEED, workers=True, verbose=False)
    interleaved = InterleavedBare(BareLoop(windows, cfg, data_info, args))
    fit_lightning(dataset_dir, cfg, data_info, args, [interleaved])
    timed = slice(args.warmup - 1, args.warmup - 1 + args.steps)
    lightning, bare = interleaved.lightning[timed], interleaved.bare[args.warmup : args.warmup + args.steps]
    if len(lightning) < args.steps:
        raise RuntimeError(f"training stopped after {len(interleaved.bare)} of {args.warmup + args.steps} steps")
    return lightning, bare


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60, help="timed optimisation steps")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps before them (>= 1)")
    parser.add_argument("--batch-size", type=int, default=None, help="data.batch_size (default: conf/data/ks.yaml's)")
    parser.add_argument("--hidden", type=int, default=None, help="FNO hidden channels (default: conf/model/fno.yaml's)")
    parser.add_argument("--modes", type=int, default=None, help="FNO Fourier modes (default: conf/model/fno.yaml's)")
    parser.add_argument("--layers", type=int, default=None, help="FNO layers (default: conf/model/fno.yaml's)")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs per side")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="existing KS dataset directory (holding train.h5); default: generate one in a "
                             "temporary directory")
    parser.add_argument("--clip", type=float, default=None,
                        help="gradient-norm clipping on both sides, as trainer.gradient_clip_val (0: none; default: "
                             "the trainer config's)")
    parser.add_argument("--cases", default="onestep,bundle4,pushforward",
                        help=f"comma-separated cases among {', '.join(CASES)}")
    parser.add_argument("--ema-decay", type=float, default=0.995, help="decay of the timed EMA (0: skip that part)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice, one per core)")
    parser.add_argument("--preload", choices=("auto", "true", "false"), default="auto",
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


def median_interval(values: list[float], z: float = 1.96) -> tuple[float, float, float]:
    """(median, low, high): the sample median and a distribution-free ~95% confidence interval for the population
    median, between the order statistics of ranks n/2 -+ z sqrt(n)/2 (the normal approximation of the binomial)."""
    ordered = sorted(values)
    n = len(ordered)
    half = z * math.sqrt(n) / 2
    low = max(0, math.floor(n / 2 - half))
    high = min(n - 1, math.ceil(n / 2 + half) - 1)
    return statistics.median(ordered), ordered[low], ordered[high]


def interleaved_case(case: str, dataset_dir: Path, cfg: TrainConfig, data_info: dict[str, Any],
                     args: argparse.Namespace) -> tuple[str, ...]:
    """One case, `--repeats` interleaved fits: a table row (samples/s of each side, the per-step speed ratio
    lightning / bare with its ~95% interval, the extra milliseconds per step of the Lightning path)."""
    windows = preload_windows(dataset_dir, cfg, data_info["frame_stride"])
    batch_size = cfg.data.batch_size
    ratios: list[float] = []
    extra: list[float] = []
    rates: dict[str, list[float]] = {"lightning": [], "bare": []}
    for repeat in range(args.repeats):
        load = cpu_snapshot()
        lightning, bare = run_interleaved(dataset_dir, windows, cfg, data_info, args)
        ratios += [b / t for t, b in zip(lightning, bare, strict=True)]
        extra += [t - b for t, b in zip(lightning, bare, strict=True)]
        rates["lightning"].append(args.steps * batch_size / sum(lightning))
        rates["bare"].append(args.steps * batch_size / sum(bare))
        print(f"  {case} repeat {repeat + 1}: median step lightning {1e3 * statistics.median(lightning):.1f} ms, "
              f"bare {1e3 * statistics.median(bare):.1f} ms; speed ratio over the repeat "
              f"{sum(bare) / sum(lightning):.3f}"
              f"; other processes: {foreign_load(load)}")
    ratio, low, high = median_interval(ratios)
    cost, cost_low, cost_high = (1e3 * v for v in median_interval(extra))
    return (case, f"{statistics.median(rates['lightning']):.1f}", f"{statistics.median(rates['bare']):.1f}",
            f"{ratio:.3f} [{low:.3f}, {high:.3f}]", f"{cost:.2f} [{cost_low:.2f}, {cost_high:.2f}]")


def benchmark(dataset_dir: Path, args: argparse.Namespace) -> None:
    """Time both sides, interleaved, `--repeats` times per case on `dataset_dir`, then the EMA; print the tables."""
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        raise SystemExit(f"--cases: unknown case(s) {', '.join(unknown)}; choose among {', '.join(CASES)}")
    cfg = configs(args)
    frame_stride = frame_stride_of(cfg, dataset_dir)
    train_set, _ = load_splits(cfg, dataset_dir, window_spec(cfg.objective, frame_stride),
                               L.Trainer(**trainer_kwargs(cfg, 1)))
    data_info = describe_data(dataset_dir, train_set.file, frame_stride)
    mode = "preloaded" if train_set.preloaded else "read lazily from HDF5"
    print(f"data: {dataset_dir.name}, {len(train_set)} windows, {mode} (data.preload={cfg.data.preload}); FNO "
          f"hidden={cfg.model.hidden_channels} modes={cfg.model.n_modes} layers={cfg.model.n_layers}; batch "
          f"{cfg.data.batch_size}, {args.warmup} warm-up + {args.steps} timed steps; gradient clip "
          f"{cfg.trainer.gradient_clip_val}; torch threads {torch.get_num_threads()}; load average "
          f"{load_average()}")
    rows = []
    for case in cases:
        objective, bundle = CASES[case]
        if objective not in OBJECTIVES:
            print(f"  {case}: skipped, objective {objective!r} is not registered")
            continue
        rows.append(interleaved_case(case, dataset_dir, configs(args, objective, bundle), data_info, args))
    header = ("case", "lightning", "bare", "ratio [95% CI]", "extra ms/step [95% CI]")
    widths = [max(len(str(r[k])) for r in [header, *rows]) for k in range(len(header))]
    print("\nsamples/s (median over repeats); ratio: per-step speed lightning / bare, median over all timed steps; "
          "extra: lightning - bare step time")
    for row in [header, *rows]:
        cells = [str(v).rjust(w) if k else str(v).ljust(w) for k, (v, w) in enumerate(zip(row, widths, strict=True))]
        print("  ".join(cells))
    if args.ema_decay:
        ema_table(dataset_dir, cfg, data_info, args)


def ema_table(dataset_dir: Path, cfg: TrainConfig, data_info: dict[str, Any],
              args: argparse.Namespace) -> None:
    """The EMA's update per step, timed inside the run (one-step case): ours (`weight_averaging`, one in-place
    `_foreach_lerp_`) against Lightning's `EMAWeightAveraging` as it comes (per-tensor arithmetic), taking turns."""
    variants = {"weight_averaging": lambda: weight_averaging(args.ema_decay),
                "EMAWeightAveraging": lambda: EMAWeightAveraging(decay=args.ema_decay)}
    updates: dict[str, list[float]] = {name: [] for name in variants}
    steps: dict[str, list[float]] = {name: [] for name in variants}
    for repeat in range(args.repeats):
        order = list(variants) if repeat % 2 == 0 else list(variants)[::-1]
        for name in order:
            update_s, step_s = run_averaging(dataset_dir, cfg, data_info, args, variants[name]())
            updates[name] += update_s
            steps[name] += step_s
    print(f"\nEMA of the weights (decay {args.ema_decay}), updated after every step; medians over all timed steps")
    for name in variants:
        update, low, high = (1e3 * v for v in median_interval(updates[name]))
        step = 1e3 * statistics.median(steps[name])
        print(f"  {name:<20} update {update:.2f} ms [{low:.2f}, {high:.2f}] per step of {step:.1f} ms "
              f"({100 * update / step:.1f}% of the step)")
    ours, default = (statistics.median(updates[name]) for name in variants)
    print(f"  update time, ours / EMAWeightAveraging's default: {ours / default:.2f}")


def main() -> None:
    args = parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    quiet_lightning()
    register_configs()
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
