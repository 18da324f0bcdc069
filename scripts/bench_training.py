"""Training throughput: the full Lightning path against a bare torch loop, same FNO and same windows.

Lightning side: exactly what `pdebench.training.run.train` builds -- `WindowDataset` over the HDF5 train
split, a shuffling `DataLoader` (batch_size, drop_last, `num_workers=0` as in `conf/data/ks.yaml`),
`SurrogateModule` and a `lightning.Trainer` with the default trainer settings (`conf/trainer/cpu.yaml` on
`TrainerConfig`: fp32, gradient clipping at 1.0, log every 10 steps) -- minus what a benchmark must not
time: no validation, no logger, no checkpoints, no progress bar. Bare side: the same net
(`baselines.build_model` inside a `Forecaster`), the same normalisation, loss, AdamW, warmup-cosine schedule
and gradient clipping, on all windows preloaded into one tensor and batched by random-permutation indexing.

Both run `--warmup` untimed steps, then `--steps` timed ones; the timed window runs from the end of the
last warm-up step to the end of the last step, so it holds `--steps` batch fetches and `--steps`
optimisation steps. Best of `--repeats` (the two sides alternate). Prints samples/s for each and the ratio
lightning / bare.

Usage: python scripts/bench_training.py [--steps 60] [--warmup 10] [--batch-size 32] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import copy
import logging
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

from baselines.registry import NetShape, build_model
from data_gen.generate import generate_dataset
from pdebench.config import OptimConfig, TrainerConfig, ValidationConfig
from pdebench.data.dataset import WindowDataset, WindowSpec
from pdebench.data.normalization import Normalizer
from pdebench.data.reader import split_path
from pdebench.training.forecaster import Forecaster
from pdebench.training.module import SurrogateModule, warmup_cosine
from pdebench.training.objectives import loss_function
from pdebench.training.run import describe_data

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
BUNDLE = 1
SEED = 0


def make_dataset(root: Path) -> Path:
    """Generate the KS `bench` preset under `root` and return its dataset directory."""
    pde = yaml.safe_load((REPO / "conf" / "pde" / "ks.yaml").read_text())
    pde.pop("defaults", None)
    pde["presets"] = {BENCH_PRESET: BENCH_SIZES}
    return generate_dataset(pde, BENCH_PRESET, root, seed=SEED, device="cpu", progress=False)


def configs(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The config sections `train` reads, at their defaults except for the benchmark's arguments."""
    return {
        "model": {"name": "fno", "n_modes": [args.modes], "hidden_channels": args.hidden,
                  "n_layers": args.layers, "factorization": None, "rank": 1.0},
        "objective": {"name": "onestep", "history": HISTORY, "bundle": BUNDLE, "loss": "mse"},
        "optim": vars(OptimConfig()),
        "validation": vars(ValidationConfig()),
    }


def trainer_kwargs(max_steps: int) -> dict[str, Any]:
    """`TrainerConfig` defaults with `conf/trainer/cpu.yaml` on top, made into a bare timed training loop."""
    kwargs = vars(TrainerConfig()) | {"accelerator": "cpu", "devices": 1, "precision": "32-true"}
    kwargs |= {"max_epochs": -1, "max_steps": max_steps, "limit_val_batches": 0, "num_sanity_val_steps": 0,
               "enable_progress_bar": False}
    return kwargs | {"logger": False, "enable_checkpointing": False, "enable_model_summary": False}


class StepTimer(Callback):
    """Wall time from the end of optimisation step `warmup` to the end of step `warmup + steps`."""

    def __init__(self, warmup: int, steps: int) -> None:
        self.warmup, self.steps = warmup, steps
        self.done = 0
        self.start = self.stop = 0.0

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self.done += 1
        if self.done == self.warmup:
            self.start = time.perf_counter()
        elif self.done == self.warmup + self.steps:
            self.stop = time.perf_counter()

    @property
    def seconds(self) -> float:
        if self.done < self.warmup + self.steps:
            raise RuntimeError(f"the trainer stopped after {self.done} of {self.warmup + self.steps} steps")
        return self.stop - self.start


def run_lightning(dataset_dir: Path, cfg: dict[str, dict[str, Any]], data_info: dict[str, Any],
                  args: argparse.Namespace) -> float:
    """Seconds for the timed steps of `Trainer.fit` as `pdebench.training.run.train` sets it up."""
    L.seed_everything(SEED, workers=True, verbose=False)
    train_set = WindowDataset(split_path(dataset_dir, "train"), WindowSpec(HISTORY, BUNDLE, FRAME_STRIDE))
    module = SurrogateModule(model=cfg["model"], objective=cfg["objective"], optim=cfg["optim"],
                             validation=cfg["validation"], data_info=data_info, label="bench")
    loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, drop_last=True, num_workers=0,
                        persistent_workers=False)
    timer = StepTimer(args.warmup, args.steps)
    trainer = L.Trainer(callbacks=[timer], **trainer_kwargs(args.warmup + args.steps))
    trainer.fit(module, loader)
    return timer.seconds


def preload_windows(dataset_dir: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every training window of the split, stacked: inputs, targets, params (the `WindowDataset` items)."""
    dataset = WindowDataset(split_path(dataset_dir, "train"), WindowSpec(HISTORY, BUNDLE, FRAME_STRIDE))
    items = [dataset[i] for i in range(len(dataset))]
    return tuple(torch.stack([item[k] for item in items]) for k in range(3))  # type: ignore[return-value]


def run_bare(windows: tuple[torch.Tensor, torch.Tensor, torch.Tensor], cfg: dict[str, dict[str, Any]],
             data_info: dict[str, Any], args: argparse.Namespace) -> float:
    """Seconds for the timed steps of a plain torch loop doing the same optimisation on in-memory windows."""
    L.seed_everything(SEED, workers=True, verbose=False)
    inputs, targets, params = windows
    shape = NetShape(n_fields=len(data_info["fields"]), history=HISTORY, bundle=BUNDLE,
                     n_cond=len(data_info["parameters"]), spatial_dims=data_info["spatial_dims"])
    net = build_model(cfg["model"], shape)
    forecaster = Forecaster(net, Normalizer.from_stats(data_info["stats"]), shape)
    forecaster.train()
    norm = forecaster.normalizer
    loss_fn = loss_function(cfg["objective"]["loss"])
    optim = cfg["optim"]
    total = args.warmup + args.steps
    warmup_lr = max(1, int(optim["warmup_fraction"] * total))
    optimizer = torch.optim.AdamW(forecaster.parameters(), lr=optim["lr"], weight_decay=optim["weight_decay"])
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, total, warmup_lr, optim["min_lr_ratio"])
    )
    clip = TrainerConfig().gradient_clip_val
    n_batches = len(inputs) // args.batch_size
    perm = torch.randperm(len(inputs))
    start = 0.0
    for step in range(total):
        if step == args.warmup:
            start = time.perf_counter()
        b = step % n_batches
        if b == 0 and step:
            perm = torch.randperm(len(inputs))
        idx = perm[b * args.batch_size : (b + 1) * args.batch_size]
        x, y, p = inputs[idx], targets[idx], params[idx]
        pred = forecaster.forward_normalized(norm.normalize_fields(x), norm.normalize_params(p))
        loss = loss_fn(pred, norm.normalize_fields(y))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(forecaster.parameters(), clip)
        optimizer.step()
        schedule.step()
    return time.perf_counter() - start


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
    args = parser.parse_args()
    if args.warmup < 1 or args.steps < 1:
        parser.error("--warmup and --steps must be at least 1")
    return args


def quiet_lightning() -> None:
    """Keep Lightning's set-up chatter and the single-process DataLoader hint out of the table."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")


def benchmark(dataset_dir: Path, args: argparse.Namespace) -> None:
    cfg = configs(args)
    train_set = WindowDataset(split_path(dataset_dir, "train"), WindowSpec(HISTORY, BUNDLE, FRAME_STRIDE))
    data_info = describe_data(dataset_dir, train_set.file, FRAME_STRIDE)
    n_batches = len(train_set) // args.batch_size
    windows = preload_windows(dataset_dir)
    print(f"data: {dataset_dir.name}, {len(train_set)} windows {tuple(windows[0].shape[1:])}, {n_batches} "
          f"batches/epoch; FNO hidden={args.hidden} modes={args.modes} layers={args.layers}; "
          f"batch {args.batch_size}, {args.warmup} warm-up + {args.steps} timed steps; "
          f"torch threads {torch.get_num_threads()}")
    best = {"lightning": float("inf"), "bare": float("inf")}
    for repeat in range(args.repeats):
        lightning_s = run_lightning(dataset_dir, copy.deepcopy(cfg), data_info, args)
        bare_s = run_bare(windows, copy.deepcopy(cfg), data_info, args)
        best["lightning"] = min(best["lightning"], lightning_s)
        best["bare"] = min(best["bare"], bare_s)
        print(f"  repeat {repeat + 1}: lightning {lightning_s:.3f} s, bare {bare_s:.3f} s")
    samples = args.steps * args.batch_size
    rate = {name: samples / seconds for name, seconds in best.items()}
    print(f"\n{'path':<10} {'samples/s':>10} {'ms/step':>8}")
    for name, seconds in best.items():
        print(f"{name:<10} {rate[name]:>10.1f} {1e3 * seconds / args.steps:>8.2f}")
    print(f"ratio lightning/bare: {rate['lightning'] / rate['bare']:.3f}")


def main() -> None:
    args = parse_args()
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
