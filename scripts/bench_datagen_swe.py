"""Benchmark: the batched `swe` generator against looping torch-harmonics' example `ShallowWaterSolver`.

Both run the same grid (Gaussian 96 x 192 by default) and the same AB3 step (150 s) on one CPU thread, measured in
one run, and the result is a ratio of trajectory-steps per second (goal: >= 5x). Times are process CPU times
(one thread), so that other work on the machine does not count. The example is timed twice: at its
default truncation (l, m < 96 / 97, what it does when given only the grid) and at the generator's T63 truncation
(`lmax = mmax = 64`), so the report separates the gain of the de-aliased truncation from that of batching and of
the contraction layout. The generator's time includes its initial balance, stability checks and float32 output.

    python scripts/bench_datagen_swe.py [--n-lat 96] [--traj 16] [--steps 72] [--example-traj 2]
    python scripts/bench_datagen_swe.py --validate     # physics on the benchmark grid (minutes on one core)
    python scripts/bench_datagen_swe.py --preset-cost [small|paper]  # a preset's time, from a measured fraction

`--preset-cost` plans the preset (default `small`) as `pdebench-generate pde=swe preset=<preset>` does (its grid,
time step, spin-up, chunk, frames and trajectory counts), times one chunk of its generator over a few frames and
extrapolates.

`--validate` measures on the benchmark grid (T63, 96 x 192): the relative height error of Williamson test case 2
after 5 days, and the relative change of total energy, kinetic energy and mass over 20 days with and without the
production hyperdiffusion, for one random-jet trajectory (after the spin-up) and for the Rossby-Haurwitz wave.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from torch_harmonics.examples.shallow_water_equations import ShallowWaterSolver
from tqdm.auto import tqdm

from data_gen.config import generate_config
from data_gen.plan import DatasetPlan, plan_dataset
from data_gen.swe import SphericalShallowWater, SWEConfig, SWEGenerator, hyperdiffusion_time, truncation_degree
from data_gen.williamson import rossby_haurwitz_state, williamson2_state
from pdebench.cli.common import CONFIG_DIR, HYDRA_VERSION_BASE
from pdebench.cli.hydra_setup import register_configs

# The preset whose generation time `--preset-cost` estimates when given none.
COST_PRESET = "small"


def time_example(n_lat: int, n_lon: int, dt: float, n_traj: int, n_steps: int, lmax: int | None) -> float:
    """Seconds per trajectory-step of the example solver, one trajectory at a time (Galewsky initial state)."""
    solver = ShallowWaterSolver(n_lat, n_lon, dt, lmax=lmax, mmax=lmax, grid="legendre-gauss")
    start = time.process_time()
    for _ in tqdm(range(n_traj), desc=f"example lmax={lmax or 'default'}", leave=False):
        state = solver.galewsky_initial_condition()
        solver.timestep(state, n_steps)
    return (time.process_time() - start) / (n_traj * n_steps)


def time_generator(n_lat: int, n_lon: int, dt: float, n_traj: int, n_steps: int, chunk: int) -> float:
    """Seconds per trajectory-step of `SWEGenerator.generate` (no spin-up; frames every `n_steps / 3` steps)."""
    frame_steps = n_steps // 3
    config = SWEConfig(n_lat=n_lat, n_lon=n_lon, time_step=dt, frame_interval_hours=frame_steps * dt / 3600.0,
                       spin_up_hours=0.0, chunk=chunk)
    generator = SWEGenerator(config)
    start = time.process_time()
    generator.generate(list(range(n_traj)), 4, torch.device("cpu"))
    return (time.process_time() - start) / (n_traj * 3 * frame_steps)


def validate(n_lat: int, dt: float) -> None:
    """Print the physics checks of the module docstring on the `n_lat x 2 n_lat` grid with step `dt`."""
    earth = SWEConfig()  # the planet and the hyperdiffusion order of the generator's defaults

    def solver(hours: float, time_step: float = dt) -> SphericalShallowWater:
        return SphericalShallowWater(n_lat, 2 * n_lat, time_step=time_step, hyperdiffusion_hours=hours,
                                     hyperdiffusion_order=earth.hyperdiffusion_order, radius=earth.radius,
                                     omega=earth.omega, gravity=earth.gravity)

    production = hyperdiffusion_time(earth, truncation_degree(n_lat, 2 * n_lat))
    w2 = solver(production, 300.0)
    height, wind = williamson2_state(w2)
    steps = round(5 * 86400 / 300.0)
    out = w2.to_grid(w2.integrate(w2.from_grid(height, wind), steps, steps)[-1])
    error = float((out[0, 0] - height[0]).norm() / height[0].norm())
    print(f"Williamson 2, 5 days, 300 s steps: relative height error {error:.2e}")
    steps = round(20 * 86400 / dt)
    generator = SWEGenerator(dataclasses.replace(earth, n_lat=n_lat, n_lon=2 * n_lat, time_step=dt, chunk=1))
    spin_up = round(earth.spin_up_hours * 3600 / dt)
    for label, hours in (("off", 0.0), (f"production ({production:.3g} h)", production)):
        s = solver(hours)
        jets = generator.initial_states(s, [0])
        jets = s.integrate(jets, spin_up, spin_up)[-1]  # after the spin-up
        rossby = s.from_grid(*rossby_haurwitz_state(s))
        for name, state in (("random jets (seed 0)", jets), ("Rossby-Haurwitz 4", rossby)):
            start = time.process_time()
            final = s.integrate(state, steps, steps)[-1]
            d_energy = float(s.energy(final) / s.energy(state) - 1)
            d_kinetic = float(kinetic(s, final) / kinetic(s, state) - 1)
            d_mass = float(s.mass(final) / s.mass(state) - 1)
            print(f"hyperdiffusion {label:20s} {name:22s}: 20 days, energy change {d_energy:+.2e}, kinetic energy "
                  f"change {d_kinetic:+.2e}, mass change {d_mass:+.1e} ({time.process_time() - start:.0f} s)",
                  flush=True)


def kinetic(s: SphericalShallowWater, state: torch.Tensor) -> torch.Tensor:
    """Kinetic energy `[B]` (m^5/s^2): the integral of `h |u|^2 / 2`."""
    grid = s.to_grid(state)
    return s.integral(0.5 * grid[:, 0] * (grid[:, 1:] ** 2).sum(dim=1))


def swe_plan(preset: str) -> DatasetPlan:
    """The driver's plan of `pdebench-generate pde=swe preset=<preset>` (generator with the preset's solver settings,
    split layouts); nothing is written."""
    register_configs()
    with initialize_config_dir(CONFIG_DIR, version_base=HYDRA_VERSION_BASE):
        cfg = generate_config(OmegaConf.to_container(compose("generate", ["pde=swe", f"preset={preset}"]),
                                                     resolve=True))
    return plan_dataset(cfg.pde, cfg.preset, cfg.root, cfg.seed)


def preset_cost(preset: str, chunk: int | None) -> None:
    """Measure one chunk (`chunk`, default the preset's) of the preset's generator over a few frames, without its
    spin-up, and extrapolate to every trajectory of every split, spin-up included."""
    plan = swe_plan(preset)
    planned = plan.generator.config
    config = dataclasses.replace(planned, spin_up_hours=0.0, chunk=chunk or planned.chunk)
    generator = SWEGenerator(config)
    frames = 4
    start = time.process_time()
    generator.generate(list(range(config.chunk)), frames + 1, torch.device("cpu"))
    per_frame = (time.process_time() - start) / (config.chunk * frames)  # seconds per trajectory-frame interval
    spin_up_frames = planned.spin_up_hours / planned.frame_interval_hours
    layouts = plan.layouts.values()
    total_frames = sum(layout.n_traj * (layout.n_frames - 1 + spin_up_frames) for layout in layouts)
    n_frames = "/".join(str(n) for n in sorted({layout.n_frames for layout in layouts}))
    print(f"{preset}: {config.n_lat} x {config.n_lon}, dt {config.time_step:g} s, chunk {config.chunk}: "
          f"{per_frame:.3f} s per trajectory-frame on one core; {sum(layout.n_traj for layout in layouts)} "
          f"trajectories x ({n_frames} frames + {planned.spin_up_hours:g} h spin-up) = "
          f"{per_frame * total_frames / 60:.1f} core-minutes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-lat", type=int, default=SWEConfig.n_lat, help="Gaussian latitudes (default: the "
                                                                           "generator's)")
    parser.add_argument("--dt", type=float, default=SWEConfig.time_step,
                        help="time step (s), the same for both solvers (default: the generator's)")
    parser.add_argument("--traj", type=int, default=16, help="trajectories for the batched generator")
    parser.add_argument("--chunk", type=int, default=None,
                        help="the generator's chunk size (default: the generator's; --preset-cost: the preset's)")
    parser.add_argument("--steps", type=int, default=72, help="steps per trajectory (a multiple of 3)")
    parser.add_argument("--example-traj", type=int, default=2, help="trajectories looped through the example")
    parser.add_argument("--validate", action="store_true", help="run the physics checks instead")
    parser.add_argument("--preset-cost", nargs="?", const=COST_PRESET, default=None, metavar="PRESET",
                        help=f"estimate a preset's cost instead (default {COST_PRESET})")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.validate:
        validate(args.n_lat, args.dt)
        return
    if args.preset_cost:
        preset_cost(args.preset_cost, args.chunk)
        return
    n_lat, n_lon = args.n_lat, 2 * args.n_lat
    n_modes = truncation_degree(n_lat, n_lon) + 1
    chunk = args.chunk or SWEConfig.chunk
    batched = time_generator(n_lat, n_lon, args.dt, args.traj, args.steps, chunk)
    example_default = time_example(n_lat, n_lon, args.dt, args.example_traj, args.steps, None)
    example_same = time_example(n_lat, n_lon, args.dt, args.example_traj, args.steps, n_modes)
    batched_again = time_generator(n_lat, n_lon, args.dt, args.traj, args.steps, chunk)
    batched = min(batched, batched_again)
    print(f"grid {n_lat} x {n_lon} Gaussian, dt = {args.dt:g} s, 1 thread")
    print(f"batched generator (chunk {chunk}, T{n_modes - 1}): {1e3 * batched:8.2f} ms per trajectory-step")
    print(f"example, default truncation:         {1e3 * example_default:8.2f} ms  -> speed-up "
          f"{example_default / batched:5.2f}x")
    print(f"example, T{n_modes - 1} (lmax = mmax = {n_modes}):      {1e3 * example_same:8.2f} ms  -> speed-up "
          f"{example_same / batched:5.2f}x")


if __name__ == "__main__":
    main()
