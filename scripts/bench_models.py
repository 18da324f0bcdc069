"""Cost columns of the leaderboard, per model of the zoo at its reference configuration (conf/model/<name>.yaml):

* parameter count;
* training throughput: forward + backward (MSE, no optimiser) samples/s (PDE-Refiner: one backbone call per
  batch, as its objective trains it);
* inference throughput: trajectory-steps/s of an autoregressive rollout through the Forecaster (the Stepper the
  evaluator scores: standardise, fold, net, decode the target, de-standardise) under inference mode;
* the same number of bare `net(x, cond)` calls on the same inputs, and the ratio rollout / bare, which is what the
  Stepper and normaliser layer costs (goal: >= 0.9).

The data shapes are those of a real dataset (`--dataset`, read from its configs without generating data: fields,
parameters, grid of its preset), with `--history`/`--bundle` frames; a model that cannot serve that grid is run on
`--sphere-dataset` instead (SFNO). On a GPU (torch.cuda.is_available()) every number is also reported under bf16
autocast. Timings: `--warmup` untimed calls, then the median of `--repeats` timed runs; the bare loop and the
rollout take turns, so a neighbour process taking the cores hits both.

`--width W` (repeatable) runs each model at width W as well (`hidden_channels`, of the backbone for PDE-Refiner): the
same layout narrower, as a CPU row trains it; every width is measured in the same run, so their ratio is fair.

Usage: python scripts/bench_models.py [--dataset ks] [--batch-size 8] [--steps 10] [--model unet --model fno]
       [--width 64 --width 16]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext

import torch

from baselines.registry import MODELS, build_model
from pdebench.cli.models import DatasetInfo, dataset_info, reference_config, reference_objective
from pdebench.data.netspec import NetSpec
from pdebench.data.normalization import Normalizer
from pdebench.forecast.forecaster import make_forecaster
from pdebench.forecast.rollout import rollout
from pdebench.forecast.targets import objective_config, target_from_config


def timed(fn: Callable[[], object], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def config_at_width(config: dict, width: int | None) -> dict:
    """The model config with its width (`hidden_channels`, or the backbone's) set to `width`; None keeps it."""
    if width is None:
        return config
    if "hidden_channels" in config:
        return {**config, "hidden_channels": width}
    if isinstance(config.get("backbone"), dict):
        return {**config, "backbone": config_at_width(config["backbone"], width)}
    raise SystemExit(f"model {config['name']} has no hidden_channels setting to change the width of")


def bench_model(name: str, info: DatasetInfo, args: argparse.Namespace, device: torch.device,
                dtype: torch.dtype | None, width: int | None = None) -> dict[str, float]:
    """Numbers of one model on one dataset's shapes at `width` (None: the reference's); `dtype` bf16 runs
    everything under autocast."""
    objective = objective_config(reference_objective(name))
    history = args.history or objective.history
    spec = NetSpec(info.fields, history, args.bundle, info.parameters, info.grid)
    torch.manual_seed(0)
    net = build_model(config_at_width(reference_config(name), width), spec).to(device)
    n_params = sum(p.numel() for p in net.parameters())
    batch, space = args.batch_size, info.grid.shape
    x = torch.randn(batch, spec.in_channels, *space, device=device)
    cond = torch.randn(batch, spec.n_cond, device=device)
    frames = torch.randn(batch, spec.n_fields, history, *space, device=device)
    params = torch.randn(batch, spec.n_cond, device=device)
    normalizer = Normalizer([0.5] * spec.n_fields, [2.0] * spec.n_fields, [0.1] * spec.n_cond, [3.0] * spec.n_cond)
    stepper = make_forecaster(net, normalizer, target_from_config(objective), spec).to(device)
    autocast = torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()

    label = torch.randn(batch, spec.out_channels, *space, device=device)
    refinement_steps = torch.arange(batch, device=device) % (getattr(net, "refinement_steps", 0) + 1)

    def train_step() -> None:
        with autocast:
            if hasattr(net, "refinement_pair"):  # PDE-Refiner trains one backbone call per batch, not the chain
                output, goal = net.refinement_pair(x, cond, label, refinement_steps, torch.randn_like(label))
            else:
                output, goal = net(x, cond), label
            loss = (output.float() - goal).square().mean()
        loss.backward()
        net.zero_grad(set_to_none=True)

    calls = -(-args.steps // args.bundle)  # net calls of one rollout of `steps` model steps

    def bare() -> None:
        with torch.inference_mode(), autocast:
            for _ in range(calls):
                net(x, cond)

    def through_stepper() -> None:
        with torch.inference_mode(), autocast:
            for _ in rollout(stepper, frames, params, args.steps):
                pass

    net.train()
    for _ in range(args.warmup):
        train_step()
    train_times = [timed(train_step, device) for _ in range(args.repeats)]
    net.eval()
    for _ in range(args.warmup):
        bare()
        through_stepper()
    bare_times, stepper_times = [], []
    for repeat in range(args.repeats):
        order = (bare, through_stepper) if repeat % 2 == 0 else (through_stepper, bare)
        for fn in order:
            (bare_times if fn is bare else stepper_times).append(timed(fn, device))
    bare_rate = batch * calls * args.bundle / statistics.median(bare_times)
    stepper_rate = batch * args.steps / statistics.median(stepper_times)
    return {"params": n_params, "train_samples_s": batch / statistics.median(train_times),
            "infer_traj_steps_s": stepper_rate, "bare_traj_steps_s": bare_rate, "ratio": stepper_rate / bare_rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--model", action="append", help="only this model (repeatable); default: every net")
    parser.add_argument("--dataset", default="ks", help="dataset whose shapes are used (conf/data/<name>.yaml)")
    parser.add_argument("--sphere-dataset", default="swe", help="dataset for models that only serve the sphere")
    parser.add_argument("--preset", default=None, help="the datasets' preset (default: the data config's)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--history", type=int, default=None, help="input frames (default: the model's objective)")
    parser.add_argument("--bundle", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10, help="model steps of one timed rollout")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--width", type=int, action="append", help="also at this width (repeatable); default: the "
                                                                  "reference config's only")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.model or sorted(n for n, e in MODELS.items() if e.trainable)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    precisions: list[tuple[str, torch.dtype | None]] = [("fp32", None)]
    if device.type == "cuda":
        precisions.append(("bf16", torch.bfloat16))
    datasets = {key: dataset_info(key, args.preset) for key in {args.dataset, args.sphere_dataset}}
    print(f"device {device} ({torch.get_num_threads()} CPU threads), batch {args.batch_size}, rollout of "
          f"{args.steps} model steps, median of {args.repeats}")
    print("| model | width | data (grid) | precision | params | train samples/s | infer traj-steps/s "
          "| bare net traj-steps/s | stepper / bare |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in names:
        info = datasets[args.dataset]
        try:
            build_model(MODELS[name].config.tiny(), NetSpec(info.fields, 1, 1, info.parameters, info.grid))
        except ValueError:
            info = datasets[args.sphere_dataset]
        for width in args.width or [None]:
            for label, dtype in precisions:
                row = bench_model(name, info, args, device, dtype, width)
                grid = "x".join(map(str, info.grid.shape))
                print(f"| {name} | {width or 'reference'} | {info.name} ({grid}) | {label} | "
                      f"{row['params'] / 1e6:.2f}M | {row['train_samples_s']:.1f} | {row['infer_traj_steps_s']:.1f} | "
                      f"{row['bare_traj_steps_s']:.1f} | {row['ratio']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
