"""KS data-generation throughput at matched accuracy: `data_gen.ks` (torch) against exponax (JAX).

Both solvers integrate u_t + u u_x + u_xx + u_xxxx = 0 on [0, 64) with N = 256 points (2/3-rule
de-aliasing; exponax keeps one mode fewer), ETDRK4 in float64, for a batch of trajectories that
start from the same chaotic states (taken after a burn-in), storing one frame every 0.2 time units.
exponax runs `KuramotoSivashinskyConservative` (order 4) wrapped in `RepeatedStepper`, rolled out
with `exponax.rollout` under `jax.vmap` + `jax.jit`.

Matched accuracy: for each solver, the number of internal substeps per frame is the smallest (i.e.
the largest internal step) whose worst relative L2 error over the batch at t = 10 against that
solver's own converged run (`--ref-substeps`) is at most `--target-error`.

Timing: each solver produces `--frames` stored frames for the whole batch, warm-up / compilation
excluded, in `--repeats` interleaved rounds (so both see the same background load); the table shows
best and median wall times and stored frames per second (trajectories x frames / best time).
Our solver runs on one CPU thread; XLA is restricted to one thread too unless `--threads 0`.

Usage: python scripts/bench_datagen.py [--batch 64] [--frames 100] [--target-error 1e-5] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np
import torch

from data_gen.ks import KSConfig, initial_state, sample_trajectory, solve_ks

DOMAIN = 64.0
N_POINTS = 256
FRAME_DT = 0.2


def chaotic_states(batch: int, device: torch.device, burn_in_time: float = 72.0) -> torch.Tensor:
    """`[batch, N]` float64 states on the KS attractor (L = 64, nu = 1), from the generator's draws."""
    config = KSConfig(n_points=N_POINTS, length_range=(DOMAIN, DOMAIN), dt_range=(FRAME_DT, FRAME_DT))
    u0 = np.stack([initial_state(sample_trajectory(1000 + i, config), N_POINTS) for i in range(batch)])
    ones = torch.ones(batch, dtype=torch.float64, device=device)
    steps = round(burn_in_time / 0.05)
    out = solve_ks(torch.from_numpy(u0).to(device), DOMAIN * ones, ones, 0.05 * ones, 0, 1, steps)
    return out[:, 0]


def ours_runner(
    u0: torch.Tensor, substeps: int, n_frames: int, distinct_lengths: bool = False
) -> Callable[[], np.ndarray]:
    """Callable producing `[B, n_frames + 1, N]` frames (the first is `u0`) with our solver.

    With `distinct_lengths`, trajectory i gets L = 64 (1 + 1e-12 i): the physics is unchanged but the
    solver cannot share one set of ETDRK4 coefficients across the batch, as in real generation where
    L and dt are drawn per trajectory.
    """
    batch = u0.shape[0]
    ones = torch.ones(batch, dtype=torch.float64, device=u0.device)
    h = (FRAME_DT / substeps) * ones
    length = DOMAIN * ones
    if distinct_lengths:
        length = length * (1.0 + 1e-12 * torch.arange(batch, dtype=torch.float64, device=u0.device))

    def run() -> np.ndarray:
        frames = solve_ks(u0, length, ones, h, n_frames * substeps, substeps)
        return frames.cpu().numpy()

    return run


def exponax_runner(u0: np.ndarray, substeps: int, n_frames: int) -> Callable[[], np.ndarray]:
    """Callable producing `[B, n_frames + 1, N]` frames (the first is `u0`) with exponax, jit + vmap."""
    import exponax
    import jax
    import jax.numpy as jnp

    stepper = exponax.stepper.KuramotoSivashinskyConservative(
        1,
        DOMAIN,
        N_POINTS,
        FRAME_DT / substeps,
        convection_scale=1.0,  # u_t + 1/2 (u^2)_x + u_xx + u_xxxx = 0: exponax's own signs
        second_order_scale=1.0,
        fourth_order_scale=1.0,
        order=4,
    )
    frame_stepper = exponax.RepeatedStepper(stepper, substeps)
    rollout = jax.jit(jax.vmap(exponax.rollout(frame_stepper, n_frames, include_init=True)))
    x0 = jnp.asarray(u0[:, None, :])  # exponax states carry a channel axis: [B, 1, N]

    def run() -> np.ndarray:
        return np.asarray(rollout(x0).block_until_ready())[:, :, 0, :]

    return run


def rel_error(u: np.ndarray, ref: np.ndarray) -> float:
    """Worst, over trajectories, relative L2 error of the last frame."""
    num = np.linalg.norm(u[:, -1] - ref[:, -1], axis=-1)
    return float(np.max(num / np.linalg.norm(ref[:, -1], axis=-1)))


def pick_substeps(
    make: Callable[[int, int], Callable[[], np.ndarray]], n_acc: int, target: float, ref_substeps: int
) -> tuple[int, float, np.ndarray]:
    """Smallest substep count whose error at frame n_acc is <= target, its error and the reference."""
    ref = make(ref_substeps, n_acc)()
    for substeps in range(1, ref_substeps):
        err = rel_error(make(substeps, n_acc)(), ref)
        if err <= target:
            return substeps, err, ref
    raise RuntimeError(f"no substep count below {ref_substeps} reaches {target:g}")


def interleaved_times(runs: dict[str, Callable[[], np.ndarray]], repeats: int) -> dict[str, list[float]]:
    """Wall times in seconds of `repeats` rounds, each calling every runner once (after a warm-up).

    Interleaving makes the solvers share whatever else the machine is doing at the time.
    """
    for run in runs.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64, help="trajectories per batch")
    parser.add_argument("--frames", type=int, default=100, help="stored frames per trajectory (timed)")
    parser.add_argument("--target-error", type=float, default=1e-5, help="relative L2 error at t=10")
    parser.add_argument("--device", default="cpu", help="torch device for our solver (exponax uses JAX's)")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds (best and median shown)")
    parser.add_argument("--accuracy-time", type=float, default=10.0, help="time of the accuracy check")
    parser.add_argument("--ref-substeps", type=int, default=64, help="substeps of the converged runs")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        choices=(0, 1),
        help="XLA CPU threads: 1 (default) matches our solver, which runs single-threaded on CPU; "
        "0 leaves XLA multi-threaded",
    )
    args = parser.parse_args()

    if args.threads == 1:  # must be set before JAX initialises its CPU backend
        flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flags).strip()
    import jax

    jax.config.update("jax_enable_x64", True)
    device = torch.device(args.device)
    u0 = chaotic_states(args.batch, device)
    u0_np = u0.cpu().numpy()
    n_acc = round(args.accuracy_time / FRAME_DT)

    def make_ours(s: int, f: int) -> Callable[[], np.ndarray]:
        return ours_runner(u0, s, f)

    def make_exponax(s: int, f: int) -> Callable[[], np.ndarray]:
        return exponax_runner(u0_np, s, f)

    s_ours, e_ours, ref_ours = pick_substeps(make_ours, n_acc, args.target_error, args.ref_substeps)
    s_exp, e_exp, ref_exp = pick_substeps(make_exponax, n_acc, args.target_error, args.ref_substeps)
    cross = rel_error(ref_exp, ref_ours)

    runs = {
        "ours": make_ours(s_ours, args.frames),
        "ours*": ours_runner(u0, s_ours, args.frames, distinct_lengths=True),
        "exponax": make_exponax(s_exp, args.frames),
    }
    times = interleaved_times(runs, args.repeats)
    substeps = {"ours": s_ours, "ours*": s_ours, "exponax": s_exp}
    errors = {"ours": e_ours, "ours*": e_ours, "exponax": e_exp}

    print(
        f"KS N={N_POINTS} L={DOMAIN:g} nu=1, batch {args.batch}, {args.frames} frames every {FRAME_DT:g}, "
        f"float64, target rel. L2 error {args.target_error:g} at t={n_acc * FRAME_DT:g}; "
        f"torch {device}, jax {jax.default_backend()}, XLA threads {args.threads or 'default'}"
    )
    print(f"converged references ({args.ref_substeps} substeps) of ours and exponax differ by {cross:.1e}")
    print(f"{'solver':<9}{'substeps':>9}{'error':>9}{'best [s]':>10}{'median [s]':>11}{'frames/s':>10}")
    fps = {}
    for name, t in times.items():
        fps[name] = args.batch * args.frames / min(t)
        print(
            f"{name:<9}{substeps[name]:>9d}{errors[name]:>9.1e}{min(t):>10.3f}{float(np.median(t)):>11.3f}"
            f"{fps[name]:>10.0f}"
        )
    print("ours*: same run with a distinct L per trajectory (no coefficient sharing across the batch)")
    ratio = fps["ours"] / fps["exponax"]
    ratio_median = float(np.median(times["exponax"]) / np.median(times["ours"]))
    print(f"ratio ours/exponax (frames/s): {ratio:.2f} best-of-{args.repeats}, {ratio_median:.2f} median")


if __name__ == "__main__":
    main()
