"""Data-generation throughput at matched accuracy: our torch solvers against exponax (JAX).

KS (`--pde ks`): `data_gen.ks` against exponax's `KuramotoSivashinskyConservative`. Both solvers integrate
u_t + u u_x + u_xx + u_xxxx = 0 on [0, 64) with N = 256 points (2/3-rule de-aliasing; exponax keeps one mode
fewer), ETDRK4 in float64, for a batch of trajectories that start from the same chaotic states (taken after a
burn-in), storing one frame every 0.2 time units. exponax runs `KuramotoSivashinskyConservative` (order 4) wrapped
in `RepeatedStepper`, rolled out with `exponax.rollout` under `jax.vmap` + `jax.jit`.

Kolmogorov (`--pde kolmogorov`): `data_gen.kolmogorov` against exponax's `KolmogorovFlowVorticity` (order 4,
2/3 de-aliasing, float64) on the same DNS grid (`--kol-grid`, default 128^2): Re = 1000, drag 0.1, forcing
sin(4y), frames every 0.2 time units, from developed-flow states of the generator (shared spin-up plus per-seed
perturbations). Ours produces what the generator stores per frame (the 64^2 filtered vorticity, vx and vy);
exponax produces its full-grid vorticity. exponax computes the velocity with the opposite sign convention, which
is the same flow mirrored in x; it is started from the mirrored states and its converged run is compared with
ours after mirroring back.

Matched accuracy: for each solver, the number of internal substeps per frame is the smallest (i.e. the largest
internal step) whose worst relative L2 error over the batch at the accuracy time against that solver's own
converged run (`--ref-substeps`) is at most the target error (KS: at t = 10; Kolmogorov: at t = 1, on the modes
of the 64^2 stored grid).

Timing: each solver produces the stored frames for the whole batch, warm-up / compilation excluded, in
`--repeats` interleaved rounds (so both see the same background load); the table shows best and median wall
times, stored frames per second (trajectories x frames / best time) and the best process CPU time. On a loaded
machine the wall-time ratio mostly measures how the scheduler shares the cores between the two (measured: our
many-small-op loop got a quarter of a core where exponax's single jitted call got most of one); the ratio of CPU
times is then the fair comparison of the work each does. Our solvers run on one CPU thread; XLA is
restricted to one thread too unless `--threads 0`.

`--pde kolmogorov-checks` prints the measurements behind the Kolmogorov presets instead: how fast branches from the
shared spun-up state decorrelate, the time-step error, and how much the stored 64^2 fields and the enstrophy
spectrum tail change when the DNS grid is refined (about 16 CPU-minutes).

Usage: python scripts/bench_datagen.py [--pde ks|kolmogorov|kolmogorov-checks|all] [--batch 64] [--frames 100]
       [--target-error 1e-5] [--kol-grid 128] [--kol-batch 8] [--kol-frames 10] [--kol-target-error 1e-4] [--device cpu]
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


def interleaved_times(
    runs: dict[str, Callable[[], np.ndarray]], repeats: int, cpu_times: dict[str, list[float]] | None = None
) -> dict[str, list[float]]:
    """Wall times in seconds of `repeats` rounds, each calling every runner once (after a warm-up).

    Interleaving makes the solvers share whatever else the machine is doing at the time. With `cpu_times`, the
    process CPU time (all threads) of each call is recorded there too: on a loaded machine it is the fairer
    measure, since wall time then depends on how the scheduler shares the cores.
    """
    for run in runs.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            run()
            times[name].append(time.perf_counter() - start)
            if cpu_times is not None:
                cpu_times.setdefault(name, []).append(time.process_time() - start_cpu)
    return times


KOL_FRAME_DT = 0.2
KOL_STORED = 64
KOL_SUBSTEP_CANDIDATES = (12, 16, 20, 24, 32, 40, 48, 64)


def kolmogorov_states(batch: int, grid: int, device: torch.device, spinup_time: float) -> torch.Tensor:
    """`[batch, grid, grid // 2 + 1]` complex128 developed-flow vorticity spectra (forward-normalised): the
    generator's shared spin-up plus per-seed perturbations, then 2 time units so each branch has moved on."""
    from data_gen.kolmogorov import KolmogorovConfig, KolmogorovGenerator

    config = KolmogorovConfig(resolution=KOL_STORED, dns_resolution=grid, substeps=max(16, grid // 4),
                              spinup_time=spinup_time, branch_time=2.0, frame_interval=KOL_FRAME_DT)
    generator = KolmogorovGenerator(config)
    solver = generator._solver(generator.initial_spectra(list(range(100, 100 + batch)), device))
    solver.advance(round(config.branch_time / KOL_FRAME_DT) * config.substeps)
    return solver.state.clone()


def kolmogorov_ours_runner(w0: torch.Tensor, substeps: int, n_frames: int) -> Callable[[], np.ndarray]:
    """Callable producing the generator's stored frames `[B, n_frames, 3, 64, 64]` (vorticity, vx, vy after
    `n_frames` frame intervals each) with our solver, from spectra `w0`."""
    from data_gen.kolmogorov import KolmogorovConfig, KolmogorovGenerator, stored_fields

    grid = w0.shape[-2]
    generator = KolmogorovGenerator(KolmogorovConfig(resolution=KOL_STORED, dns_resolution=grid, substeps=substeps,
                                                     frame_interval=KOL_FRAME_DT))

    def run() -> np.ndarray:
        solver = generator._solver(w0)
        frames = []
        for _ in range(n_frames):
            solver.advance(substeps)
            frames.append(stored_fields(solver.state, KOL_STORED).to(torch.float32).cpu().numpy())
        return np.stack(frames, axis=1)

    return run


def mirror_x(omega: np.ndarray) -> np.ndarray:
    """`omega(-x, y)` on the periodic grid (axis -2 is x): the map between our and exponax's velocity signs."""
    return np.roll(np.flip(omega, axis=-2), 1, axis=-2)


def kolmogorov_exponax_runner(omega0: np.ndarray, substeps: int, n_frames: int) -> Callable[[], np.ndarray]:
    """Callable producing `[B, n_frames, N, N]` vorticity frames with exponax's `KolmogorovFlowVorticity` (jit +
    vmap) from the x-mirrored initial vorticity `omega0` `[B, N, N]`."""
    import exponax
    import jax
    import jax.numpy as jnp

    grid = omega0.shape[-1]
    from data_gen.spectral import dealias_cutoff

    # exponax's 2/3 rule keeps one mode fewer than ours; this fraction makes it keep the same modes, so both
    # integrate the same semi-discrete system (their converged runs then agree to round-off).
    fraction = (dealias_cutoff(grid) + 1) / (grid // 2)
    stepper = exponax.stepper.KolmogorovFlowVorticity(
        2, 2.0 * np.pi, grid, KOL_FRAME_DT / substeps, diffusivity=1e-3, drag=-0.1, injection_mode=4,
        injection_scale=1.0, order=4, dealiasing_fraction=fraction,
    )
    rollout = jax.jit(jax.vmap(exponax.rollout(exponax.RepeatedStepper(stepper, substeps), n_frames)))
    x0 = jnp.asarray(mirror_x(omega0)[:, None])  # [B, 1, N, N]

    def run() -> np.ndarray:
        return np.asarray(rollout(x0).block_until_ready())[:, :, 0]

    return run


def stored_modes(omega: np.ndarray) -> np.ndarray:
    """The vorticity `[..., N, N]` filtered to the stored 64^2 grid's modes, sampled on that grid (float64)."""
    from data_gen.kolmogorov import resample_spectrum

    spec = torch.fft.rfft2(torch.from_numpy(np.ascontiguousarray(omega, dtype=np.float64)), norm="forward")
    out = torch.fft.irfft2(resample_spectrum(spec, KOL_STORED), s=(KOL_STORED, KOL_STORED), norm="forward")
    return out.numpy()


def bench_kolmogorov(args: argparse.Namespace) -> None:
    import jax

    device = torch.device(args.device)
    grid, batch = args.kol_grid, args.kol_batch
    n_acc = round(args.kol_accuracy_time / KOL_FRAME_DT)
    w0 = kolmogorov_states(batch, grid, device, args.kol_spinup_time)
    omega0 = torch.fft.irfft2(w0, s=(grid, grid), norm="forward").cpu().numpy()

    def vorticity_ours(s: int, f: int) -> np.ndarray:
        return kolmogorov_ours_runner(w0, s, f)()[:, -1, 0].astype(np.float64)

    def vorticity_exponax(s: int, f: int) -> np.ndarray:
        return stored_modes(mirror_x(kolmogorov_exponax_runner(omega0, s, f)()[:, -1]))

    def pick(make: Callable[[int, int], np.ndarray]) -> tuple[int, float, np.ndarray]:
        ref = make(args.kol_ref_substeps, n_acc)
        for substeps in KOL_SUBSTEP_CANDIDATES:
            try:
                err = kol_rel_error(make(substeps, n_acc), ref)
            except FloatingPointError:
                continue
            if err <= args.kol_target_error:
                return substeps, err, ref
        raise RuntimeError(f"no substep count in {KOL_SUBSTEP_CANDIDATES} reaches {args.kol_target_error:g}")

    s_ours, e_ours, ref_ours = pick(vorticity_ours)
    s_exp, e_exp, ref_exp = pick(vorticity_exponax)
    cross = kol_rel_error(ref_exp, ref_ours)
    runs = {
        "ours": kolmogorov_ours_runner(w0, s_ours, args.kol_frames),
        "exponax": kolmogorov_exponax_runner(omega0, s_exp, args.kol_frames),
    }
    cpu_times: dict[str, list[float]] = {}
    times = interleaved_times(runs, args.repeats, cpu_times)
    substeps = {"ours": s_ours, "exponax": s_exp}
    errors = {"ours": e_ours, "exponax": e_exp}
    print(
        f"Kolmogorov DNS {grid}^2 (stored {KOL_STORED}^2) Re=1000 drag=0.1, batch {batch}, {args.kol_frames} frames "
        f"every {KOL_FRAME_DT:g}, float64, target rel. L2 error {args.kol_target_error:g} at "
        f"t={n_acc * KOL_FRAME_DT:g}; torch {device}, jax {jax.default_backend()}, XLA threads "
        f"{args.threads or 'default'}"
    )
    print(f"converged references ({args.kol_ref_substeps} substeps) of ours and exponax differ by {cross:.1e}")
    print_table(times, substeps, errors, batch * args.kol_frames, args.repeats, cpu_times)


def kolmogorov_checks(args: argparse.Namespace) -> None:
    """The measurements behind the Kolmogorov presets (docs/pde_kolmogorov.md), on one CPU thread, with the
    generator's default settings (those of `small`: 448^2 DNS, 75 substeps, the Courant rule).

    Branches: after the shared spin-up, seeds 1 and 2 branch with each perturbation of `--kol-perturbations`; the
    centred correlation of their stored 64^2 vorticity every time unit up to 10, next to that of seed 1 at t = 0
    and t = 10 (states that far apart are independent).
    Time step: seed 1's state 5 time units after its branch point, evolved 1 time unit with each substep count of
    `--kol-check-substeps` (fixed, no Courant rule) against 4x the default; relative L2 error of the stored vorticity.
    DNS refinement: the same state on each grid of `--kol-check-grids`, all with the step that keeps the finest
    grid at the default Courant number, so that only the grid differs; the stored vorticity against the finest
    grid's at t = 0.2, 1 and 2, and the enstrophy spectrum tail each grid ends on (mean over t = 1..2).
    """
    from data_gen.kolmogorov import (
        KolmogorovConfig,
        KolmogorovGenerator,
        enstrophy_spectrum,
        resample_spectrum,
        spectrum_tail,
    )

    def stored(w: torch.Tensor) -> np.ndarray:
        spec = resample_spectrum(w, KOL_STORED)
        return torch.fft.irfft2(spec, s=(KOL_STORED, KOL_STORED), norm="forward").cpu().numpy()

    def corr(a: np.ndarray, b: np.ndarray) -> float:
        a, b = a - a.mean(), b - b.mean()
        return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))

    device = torch.device(args.device)
    config = KolmogorovConfig()
    base = KolmogorovGenerator(config)
    print(f"DNS {config.dns_resolution}^2, {config.substeps} substeps, courant_target {config.courant_target:g}")
    w5 = None
    for size in args.kol_perturbations:
        generator = KolmogorovGenerator(KolmogorovConfig(perturbation=size))
        generator._spun_up = base._spun_up  # the shared spin-up does not depend on the perturbation
        solver = generator._solver(generator.initial_spectra([1, 2], device))
        first = stored(solver.state)[0]
        values = []
        for t in range(11):
            if t:
                for _ in range(round(1.0 / KOL_FRAME_DT)):
                    solver.advance_frame(config.substeps, config.courant_target)
            if t == 5 and w5 is None:
                w5 = solver.state[:1].clone()
            values.append(corr(*stored(solver.state)))
        print(f"branch correlation, perturbation {size:g}, t = 0..10: " + " ".join(f"{v:.2f}" for v in values))
        print(f"  seed 1 at t = 0 and t = 10: {corr(first, stored(solver.state)[0]):.2f}")
    assert w5 is not None

    def evolve(grid: int, substeps: int, n_frames: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        generator = KolmogorovGenerator(KolmogorovConfig(dns_resolution=grid, substeps=substeps))
        solver = generator._solver(resample_spectrum(w5, grid))
        frames, spectra = [], []
        for _ in range(n_frames):
            solver.advance(substeps)
            frames.append(stored(solver.state)[0])
            spectra.append(enstrophy_spectrum(solver.state)[0].cpu().numpy())
        return frames, spectra

    ref, _ = evolve(config.dns_resolution, 4 * config.substeps, 5)
    print(f"time step on {config.dns_resolution}^2: relative L2 error of the stored vorticity at t = 0.2 / 1 "
          f"against {4 * config.substeps} substeps")
    for substeps in args.kol_check_substeps:
        try:
            frames, _ = evolve(config.dns_resolution, substeps, 5)
            print(f"  {substeps:>4} substeps: {kol_rel_error(frames[0][None], ref[0][None]):.1e} / "
                  f"{kol_rel_error(frames[4][None], ref[4][None]):.1e}")
        except FloatingPointError:
            print(f"  {substeps:>4} substeps: blew up")

    grids = sorted(args.kol_check_grids)
    substeps = round(config.substeps * grids[-1] / config.dns_resolution)
    runs = {grid: evolve(grid, substeps, 10) for grid in grids}
    finest = runs[grids[-1]][0]
    print(f"DNS refinement, {substeps} substeps on every grid: stored vorticity against the {grids[-1]}^2 DNS at "
          "t = 0.2 / 1 / 2; spectrum tail Z(K)/Z peak (mean over t = 1..2)")
    for grid in grids:
        frames, spectra = runs[grid]
        tail = spectrum_tail(np.mean(spectra[5:], axis=0))
        diffs = " / ".join(f"{kol_rel_error(frames[j][None], finest[j][None]):.1e}" for j in (0, 4, 9))
        print(f"  {grid:>4}^2 (K = {(grid - 1) // 3}): {diffs if grid != grids[-1] else 'reference'}; tail {tail:.1e}")
    moved = [kol_rel_error(stored(w5), finest[j][None]) for j in (0, 4, 9)]
    print("  (the flow itself moves by " + " / ".join(f"{d:.2f}" for d in moved) + ")")


def kol_rel_error(u: np.ndarray, ref: np.ndarray) -> float:
    """Worst, over trajectories, relative L2 error of fields `[B, *space]`; non-finite values raise."""
    if not np.isfinite(u).all():
        raise FloatingPointError("non-finite frames")
    axes = tuple(range(1, u.ndim))
    return float(np.max(np.sqrt(((u - ref) ** 2).sum(axes) / (ref**2).sum(axes))))


def print_table(times: dict[str, list[float]], substeps: dict[str, int], errors: dict[str, float], frames: int,
                repeats: int, cpu_times: dict[str, list[float]]) -> dict[str, float]:
    """Print one row per solver and the ours/exponax ratios (wall and CPU time); returns frames/s per solver."""
    print(f"{'solver':<9}{'substeps':>9}{'error':>9}{'best [s]':>10}{'median [s]':>11}{'frames/s':>10}"
          f"{'CPU [s]':>9}{'frames/CPU-s':>13}")
    fps = {}
    for name, t in times.items():
        fps[name] = frames / min(t)
        print(
            f"{name:<9}{substeps[name]:>9d}{errors[name]:>9.1e}{min(t):>10.3f}{float(np.median(t)):>11.3f}"
            f"{fps[name]:>10.1f}{min(cpu_times[name]):>9.3f}{frames / min(cpu_times[name]):>13.1f}"
        )
    ratio = fps["ours"] / fps["exponax"]
    ratio_median = float(np.median(times["exponax"]) / np.median(times["ours"]))
    ratio_cpu = min(cpu_times["exponax"]) / min(cpu_times["ours"])
    print(f"ratio ours/exponax (frames/s): {ratio:.2f} best-of-{repeats}, {ratio_median:.2f} median; "
          f"per CPU-second (best): {ratio_cpu:.2f}")
    return fps


def bench_ks(args: argparse.Namespace) -> None:
    import jax

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
    cpu_times: dict[str, list[float]] = {}
    times = interleaved_times(runs, args.repeats, cpu_times)
    substeps = {"ours": s_ours, "ours*": s_ours, "exponax": s_exp}
    errors = {"ours": e_ours, "ours*": e_ours, "exponax": e_exp}

    print(
        f"KS N={N_POINTS} L={DOMAIN:g} nu=1, batch {args.batch}, {args.frames} frames every {FRAME_DT:g}, "
        f"float64, target rel. L2 error {args.target_error:g} at t={n_acc * FRAME_DT:g}; "
        f"torch {device}, jax {jax.default_backend()}, XLA threads {args.threads or 'default'}"
    )
    print(f"converged references ({args.ref_substeps} substeps) of ours and exponax differ by {cross:.1e}")
    print_table(times, substeps, errors, args.batch * args.frames, args.repeats, cpu_times)
    print("ours*: same run with a distinct L per trajectory (no coefficient sharing across the batch)")


def start_jax(threads: int) -> None:
    """Initialise JAX in float64, on one XLA CPU thread when `threads` is 1 (set before its CPU backend starts)."""
    if threads == 1:
        flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flags).strip()
    import jax

    jax.config.update("jax_enable_x64", True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pde", choices=("ks", "kolmogorov", "kolmogorov-checks", "all"), default="all",
                        help="which benchmark(s); kolmogorov-checks: DNS refinement and branch decorrelation")
    parser.add_argument("--batch", type=int, default=64, help="KS: trajectories per batch")
    parser.add_argument("--frames", type=int, default=100, help="KS: stored frames per trajectory (timed)")
    parser.add_argument("--target-error", type=float, default=1e-5, help="KS: relative L2 error at t=10")
    parser.add_argument("--device", default="cpu", help="torch device for our solver (exponax uses JAX's)")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds (best and median shown)")
    parser.add_argument("--accuracy-time", type=float, default=10.0, help="KS: time of the accuracy check")
    parser.add_argument("--ref-substeps", type=int, default=64, help="KS: substeps of the converged runs")
    parser.add_argument("--kol-grid", type=int, default=128, help="Kolmogorov: DNS grid points per axis")
    parser.add_argument("--kol-batch", type=int, default=8, help="Kolmogorov: trajectories per batch")
    parser.add_argument("--kol-frames", type=int, default=10, help="Kolmogorov: stored frames (timed)")
    parser.add_argument("--kol-target-error", type=float, default=1e-4,
                        help="Kolmogorov: relative L2 error of the stored-grid vorticity at the accuracy time")
    parser.add_argument("--kol-accuracy-time", type=float, default=1.0, help="Kolmogorov: time of the check")
    parser.add_argument("--kol-ref-substeps", type=int, default=128, help="Kolmogorov: substeps of converged runs")
    parser.add_argument("--kol-spinup-time", type=float, default=20.0,
                        help="Kolmogorov: spin-up of the initial states (time units)")
    parser.add_argument("--kol-check-grids", type=int, nargs="+", default=[192, 256, 320, 384, 448, 512, 768],
                        help="Kolmogorov checks: DNS grids compared (the finest is the reference)")
    parser.add_argument("--kol-check-substeps", type=int, nargs="+", default=[56, 64, 75, 90, 112, 150],
                        help="Kolmogorov checks: substep counts of the time-step check")
    parser.add_argument("--kol-perturbations", type=float, nargs="+", default=[1.0],
                        help="Kolmogorov checks: perturbations whose branch decorrelation is measured")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        choices=(0, 1),
        help="XLA CPU threads: 1 (default) matches our solver, which runs single-threaded on CPU; "
        "0 leaves XLA multi-threaded",
    )
    args = parser.parse_args()

    if args.pde != "kolmogorov-checks":  # the checks run our solver alone: no JAX, no exponax needed
        start_jax(args.threads)
    if args.pde in ("ks", "all"):
        bench_ks(args)
    if args.pde in ("kolmogorov", "all"):
        bench_kolmogorov(args)
    if args.pde == "kolmogorov-checks":
        kolmogorov_checks(args)


if __name__ == "__main__":
    main()
