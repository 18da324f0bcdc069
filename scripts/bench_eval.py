"""Evaluation cost: the rollout evaluator against a bare loop of model calls, and its peak memory against the split
size.

Throughput: `pdebench.rollout.scoring.score` (reading the test split batch by batch, padding, scoring every step
with every metric: errors, correlation, spectral bands, conservation drift, energy stability, spectra at chosen
steps) against a bare loop that feeds the same net its own outputs for the same trajectories and steps, with the
inputs preloaded and nothing scored. Both in inference mode on the same device; best of `--repeats`, the two sides
taking turns. Prints trajectory-steps/s for each and the ratio evaluator / bare (goal: >= 0.9).

Memory: peak resident memory of a fresh process that scores a test split of `--n-traj` trajectories and of one
8 times larger (same net, same batch size); reading is batch by batch, so the peak must not grow with the split.

The data are synthetic 1-D periodic fields (a few travelling sines, 256 points, like KS) written through the real
writer, so the benchmark needs no generated dataset; their manifest records KS's benchmark facts (`benchmark:` of
`conf/pde/ks.yaml`), from which the evaluator's scoring settings come as `pdebench-evaluate` derives them
(`scoring_spec` with the `RolloutConfig` defaults). The net is an untrained FNO at `conf/model/fno.yaml`.

Usage: python scripts/bench_eval.py [--n-traj 16] [--n-frames 161] [--batch-size 16] [--repeats 3]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import Tensor, nn

from baselines import build_model
from pdebench.cli.common import CONFIG_DIR
from pdebench.cli.models import reference_config
from pdebench.config import BenchmarkConfig, RolloutConfig
from pdebench.data.dataset import TrajectoryDataset
from pdebench.data.grid import Grid
from pdebench.data.manifest import benchmark_facts, benchmark_settings, write_manifest
from pdebench.data.netspec import NetSpec
from pdebench.data.reader import TrajectoryFile
from pdebench.data.schema import MANIFEST_NAME, Coordinate, DatasetLayout, FieldSpec, ParameterSpec
from pdebench.data.writer import TrajectoryWriter
from pdebench.rollout.evaluation import scoring_spec
from pdebench.rollout.scoring import ScoringSpec, score

N_POINTS = 256


def ks_benchmark_facts() -> dict[str, Any]:
    """KS's benchmark facts (`benchmark:` of `conf/pde/ks.yaml`), as generation records them in a manifest."""
    return yaml.safe_load((Path(CONFIG_DIR) / "pde" / "ks.yaml").read_text())["benchmark"]


def write_dataset(directory: Path, n_traj: int, n_frames: int) -> None:
    """A dataset of one test split (`write_split`) whose manifest records KS's benchmark facts."""
    directory.mkdir()
    write_split(directory / "test.h5", n_traj, n_frames)
    write_manifest(directory, {"pde": "bench", "benchmark": ks_benchmark_facts()})


def dataset_settings(directory: Path) -> tuple[BenchmarkConfig, ScoringSpec]:
    """The benchmark facts of a dataset written by `write_dataset` and what the evaluator scores on its test split,
    read back as `pdebench-evaluate` reads them (the rollout settings at their defaults)."""
    manifest = directory / MANIFEST_NAME
    bench = benchmark_settings(benchmark_facts(directory), manifest)
    with TrajectoryFile(directory / "test.h5") as test:
        return bench, scoring_spec(bench, RolloutConfig(), test, manifest)


def write_split(path: Path, n_traj: int, n_frames: int, seed: int = 0) -> None:
    """A test split of travelling sines: u(x, t) = sum_j a_j sin(2 pi (m_j x - c_j t) + phi_j)."""
    rng = np.random.default_rng(seed)
    x = np.arange(N_POINTS) / N_POINTS
    t = np.arange(n_frames) * 0.2
    layout = DatasetLayout(pde="bench", preset="tiny", split="test", n_traj=n_traj, n_frames=n_frames,
                           frame_interval=0.2, grid="periodic", coordinates=(Coordinate("x", x, "1"),),
                           fields=(FieldSpec("u", "1", "periodic"),), parameters=(ParameterSpec("dt", "1"),))
    with TrajectoryWriter(path, layout) as writer:
        for start in range(0, n_traj, 16):
            b = min(16, n_traj - start)
            a, m = rng.uniform(-1, 1, (b, 6)), rng.integers(1, 12, (b, 6))
            c, phi = rng.uniform(-1, 1, (b, 6)), rng.uniform(0, 2 * np.pi, (b, 6))
            arg = 2 * np.pi * (m[:, :, None, None] * x[None, None, None, :] - c[:, :, None, None] * t[None, None, :,
                                                                                                      None])
            u = (a[:, :, None, None] * np.sin(arg + phi[:, :, None, None])).sum(axis=1).astype(np.float32)
            writer.append({"u": u}, {"dt": np.full(b, 0.2)}, np.arange(start, start + b))
        writer.finalize()


class NetStepper(nn.Module):
    """The net as a Stepper: the last frame in, the next frame out (what a bare loop calls as `model(x)`)."""

    history, bundle = 1, 1

    def __init__(self) -> None:
        super().__init__()
        spec = NetSpec(("u",), 1, 1, ("dt",), Grid.uniform("periodic", (N_POINTS,)))
        self.net = build_model(reference_config("fno"), spec)

    def forward(self, frames: Tensor, cond: Tensor) -> Tensor:
        return self.net(frames[:, :, -1], cond)[:, :, None]


def bare_loop(model: NetStepper, dataset: TrajectoryDataset, batch_size: int) -> tuple[float, int]:
    """Seconds and trajectory-steps of feeding `model` its own outputs from each trajectory's first frame."""
    frames = torch.stack([dataset[i].frames for i in range(len(dataset))])
    cond = torch.stack([dataset[i].cond for i in range(len(dataset))])
    n_steps = frames.shape[2] - 1
    start = time.perf_counter()
    with torch.inference_mode():
        for lo in range(0, len(dataset), batch_size):
            x, c = frames[lo : lo + batch_size, :, :1], cond[lo : lo + batch_size]
            for _ in range(n_steps):
                x = model(x, c)
    return time.perf_counter() - start, len(dataset) * n_steps


def evaluator(model: NetStepper, dataset: TrajectoryDataset, batch_size: int, spec: ScoringSpec
              ) -> tuple[float, int]:
    """Seconds and trajectory-steps of `score` on every trajectory of `dataset`."""
    start = time.perf_counter()
    scores = score(model, dataset, batch_size=batch_size, spec=spec, progress=False)
    return time.perf_counter() - start, len(scores) * scores.n_steps


def _peak_rss(directory: str, batch_size: int, queue: mp.Queue) -> None:
    torch.manual_seed(0)
    model = NetStepper()
    bench, spec = dataset_settings(Path(directory))
    score(model, TrajectoryDataset(Path(directory) / "test.h5", bench.frame_stride), batch_size=batch_size,
          spec=spec, progress=False)
    queue.put(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # MiB on Linux


def peak_memory(directory: Path, batch_size: int) -> float:
    """Peak resident memory (MiB) of a fresh process that scores the test split of `directory`."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_peak_rss, args=(str(directory), batch_size, queue))
    proc.start()
    value = queue.get()
    proc.join()
    return float(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-traj", type=int, default=16)
    parser.add_argument("--n-frames", type=int, default=161)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, n in (("small", args.n_traj), ("large", 8 * args.n_traj)):
            write_dataset(root / name, n, args.n_frames)
        bench, spec = dataset_settings(root / "small")
        dataset = TrajectoryDataset(root / "small" / "test.h5", bench.frame_stride)
        torch.manual_seed(0)
        model = NetStepper().eval()
        evaluator(model, dataset, args.batch_size, spec)  # warm-up
        bare_s, eval_s = [], []
        for r in range(args.repeats):
            for side in ("bare", "evaluator") if r % 2 == 0 else ("evaluator", "bare"):
                if side == "bare":
                    seconds, steps = bare_loop(model, dataset, args.batch_size)
                else:
                    seconds, steps = evaluator(model, dataset, args.batch_size, spec)
                (bare_s if side == "bare" else eval_s).append(steps / seconds)
        bare, ours = max(bare_s), max(eval_s)
        print(f"threads {torch.get_num_threads()}, {len(dataset)} trajectories x {dataset.n_model_frames - 1} steps, "
              f"batch {args.batch_size}")
        print(f"bare loop of model(x): {bare:10.1f} trajectory-steps/s")
        print(f"evaluator (score):     {ours:10.1f} trajectory-steps/s")
        print(f"ratio evaluator / bare: {ours / bare:.3f}  (goal >= 0.9)")
        small = peak_memory(root / "small", args.batch_size)
        large = peak_memory(root / "large", args.batch_size)
        print(f"peak RSS scoring {args.n_traj} trajectories: {small:8.1f} MiB; {8 * args.n_traj}: {large:8.1f} MiB "
              f"(ratio {large / small:.3f}; must not grow with the split)")


if __name__ == "__main__":
    main()
