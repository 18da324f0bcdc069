"""KS data-generation throughput at matched accuracy: `data_gen.ks` (torch) against exponax (JAX).

Both solvers integrate u_t + u u_x + u_xx + u_xxxx = 0 on [0, 64) with N = 256 points, ETDRK4 in
float64, a batch of trajectories starting from the same chaotic states (taken after a burn-in),
storing one frame every 0.2 time units. For each solver the number of internal substeps per frame
is the smallest (i.e. the largest internal step) whose worst relative L2 error at t = 10 against
that solver's own converged run (`--ref-substeps`) is below `--target-error`. Both are then timed
producing `--frames` stored frames for the whole batch (compilation / warm-up excluded, best of
`--repeats`), and the table reports stored frames per second (trajectories x frames / second).

Usage: python scripts/bench_datagen.py [--batch 64] [--frames 100] [--target-error 1e-5] [--device cpu]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import numpy as np
import torch

from data_gen.ks import initial_state, sample_trajectory, solve_ks

DOMAIN = 64.0
N_POINTS = 256
FRAME_DT = 0.2


def chaotic_states(batch: int, device: torch.device, burn_in_time: float = 72.0) -> torch.Tensor:
    """`[batch, N]` float64 states on the KS attractor (L = 64, nu = 1), from the generator's draws."""
    from data_gen.ks import KSConfig

    config = KSConfig(n_points=N_POINTS, length_range=(DOMAIN, DOMAIN), dt_range=(FRAME_DT, FRAME_DT))
    u0 = np.stack([initial_state(sample_trajectory(1000 + i, config), N_POINTS) for i in range(batch)])
    ones = torch.ones(batch, dtype=torch.float64, device=device)
    steps = round(burn_in_time / 0.05)
    out = solve_ks(torch.from_numpy(u0).to(device), DOMAIN * ones, ones, 0.05 * ones, 0, 1, steps)
    return out[:, 0]


def ours_runner(u0: torch.Tensor, substeps: int, n_frames: int) -> Callable[[], np.ndarray]:
    """Callable producing `[B, n_frames + 1, N]` frames (the first is `u0`) with our solver."""
    batch = u0.shape[0]
    ones = torch.ones(batch, dtype=torch.float64, device=u0.device)
    h = (FRAME_DT / substeps) * ones

    def run() -> np.ndarray:
        frames = solve_ks(u0, DOMAIN * ones, ones, h, n_frames * substeps, substeps)
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


def best_time(run: Callable[[], np.ndarray], repeats: int) -> float:
    """Best wall time in seconds of `repeats` calls, after one untimed warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64, help="trajectories per batch")
    parser.add_argument("--frames", type=int, default=100, help="stored frames per trajectory (timed)")
    parser.add_argument("--target-error", type=float, default=1e-5, help="relative L2 error at t=10")
    parser.add_argument("--device", default="cpu", help="torch device for our solver (exponax uses JAX's)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (best is kept)")
    parser.add_argument("--accuracy-time", type=float, default=10.0, help="time of the accuracy check")
    parser.add_argument("--ref-substeps", type=int, default=64, help="substeps of the converged runs")
    args = parser.parse_args()

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

    t_ours = best_time(make_ours(s_ours, args.frames), args.repeats)
    t_exp = best_time(make_exponax(s_exp, args.frames), args.repeats)
    fps_ours = args.batch * args.frames / t_ours
    fps_exp = args.batch * args.frames / t_exp

    print(
        f"KS N={N_POINTS} L={DOMAIN:g} nu=1, batch {args.batch}, {args.frames} frames every {FRAME_DT:g}, "
        f"target rel. L2 error {args.target_error:g} at t={n_acc * FRAME_DT:g} "
        f"(torch device {device}, jax {jax.default_backend()})"
    )
    print(f"references (ours vs exponax, {args.ref_substeps} substeps) differ by {cross:.1e}")
    print(f"{'solver':<10}{'substeps':>9}{'error':>10}{'time [s]':>10}{'frames/s':>12}")
    print(f"{'ours':<10}{s_ours:>9d}{e_ours:>10.1e}{t_ours:>10.3f}{fps_ours:>12.0f}")
    print(f"{'exponax':<10}{s_exp:>9d}{e_exp:>10.1e}{t_exp:>10.3f}{fps_exp:>12.0f}")
    ratio = fps_ours / fps_exp
    print(f"ratio ours/exponax: {ratio:.2f}" + ("" if math.isfinite(ratio) else " (?)"))


if __name__ == "__main__":
    main()
