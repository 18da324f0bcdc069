"""Our smoke step against PDEArena's, run in PhiFlow, from the same states: per-step relative differences.

PhiFlow is an optional extra (`pip install 'pdebench[phiflow]'`, PhiFlow 2.2.7): PDEArena generated its smoke with
PhiFlow 2.1 (`pdedatagen/navier_stokes.py`), whose step `data_gen.validation.smoke.phiflow_step` repeats call for
call. The start states are our solver's, regenerated from seeds at the given stored frames with the dataset's
settings (`--pde`, `--preset`); from each, PhiFlow runs `--steps` steps, and every settings variant of ours is
compared with them (one step from PhiFlow's previous state, and running on its own from the start state).

    python scripts/compare_phiflow.py                                   # smoke, paper grid, all variants
    python scripts/compare_phiflow.py --preset tiny --seeds 0 --frames 0 --steps 2
    python scripts/compare_phiflow.py --variants euler,zero,explicit midpoint,free_slip,exact

Columns: `smoke`, `velocity`: relative L2 difference after one step from the same state (velocity over all faces);
`/change`: the same difference over the norm of PhiFlow's change in that step; `run`: relative difference after
`step` steps of each solver on its own. Prints the per-variant range over all states and steps at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import numpy as np

from data_gen.config import generate_config
from data_gen.plan import plan_dataset
from data_gen.smoke import BACKTRACES, VISCOSITIES, WALLS, SmokeConfig, sample_trajectory
from data_gen.validation.smoke import (
    PHIFLOW_INSTALL,
    phiflow_module,
    phiflow_run,
    phiflow_version,
    solver_states,
    step_differences,
)
from pdebench.cli.hydra_setup import composed

ALL_VARIANTS = [f"{b},{w},{v}" for b in BACKTRACES for w in WALLS for v in VISCOSITIES]


def variant_config(base: SmokeConfig, variant: str) -> SmokeConfig:
    """`base` with `backtrace,walls,viscosity` from `variant` (e.g. `euler,zero,explicit`)."""
    parts = variant.split(",")
    if len(parts) != 3:
        raise SystemExit(f"error: a variant is backtrace,walls,viscosity (e.g. euler,zero,explicit), got {variant!r}")
    return dataclasses.replace(base, backtrace=parts[0], walls=parts[1], viscosity=parts[2])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pde", default="smoke", help="a smoke dataset of conf/pde (its solver settings)")
    parser.add_argument("--preset", default="paper", help="preset whose solver grid is used (default: paper)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="trajectory seeds (default: the first two of the dataset's test split)")
    parser.add_argument("--frames", type=int, nargs="+", default=[0, 27, 55],
                        help="stored frames the comparisons start from (default: 0 27 55)")
    parser.add_argument("--steps", type=int, default=3, help="PhiFlow steps from each start state (default: 3)")
    parser.add_argument("--variants", nargs="+", default=ALL_VARIANTS,
                        help="our settings to compare, each backtrace,walls,viscosity (default: all)")
    parser.add_argument("--tolerance", type=float, default=1e-5,
                        help="PhiFlow's pressure solve tolerance, relative and absolute (PDEArena's: 1e-5)")
    args = parser.parse_args(argv)
    flow = phiflow_module()
    if flow is None:
        print(f"error: PhiFlow 2.2 or later 2.x is not installed: {PHIFLOW_INSTALL}", file=sys.stderr)
        return 2
    cfg = generate_config(composed("generate", [f"pde={args.pde}", f"preset={args.preset}"]))
    if cfg.pde.generator != "smoke":
        print(f"error: --pde {args.pde} is not a smoke dataset (generator {cfg.pde.generator})", file=sys.stderr)
        return 2
    plan = plan_dataset(cfg.pde, args.preset, cfg.root, cfg.seed)
    base: SmokeConfig = plan.generator.config  # type: ignore[attr-defined]
    seeds = args.seeds if args.seeds is not None else [int(s) for s in plan.seeds("test")[:2]]
    configs = {v: variant_config(base, v) for v in args.variants}
    print(f"{args.pde}-{args.preset}: grid {base.resolution}, step {base.frame_interval / base.substeps}, seeds "
          f"{seeds}, states regenerated with backtrace {base.backtrace}, walls {base.walls}, viscosity "
          f"{base.viscosity}; PhiFlow {phiflow_version()}, pressure tolerance {args.tolerance:g}")
    states = solver_states(base, seeds, args.frames)
    buoyancy = [sample_trajectory(s, base)["buoyancy"] for s in seeds]
    header = f"{'variant':<27} {'seed':>4} {'frame':>5} {'step':>4} {'smoke':>9} {'velocity':>9} " \
             f"{'s/change':>9} {'v/change':>9} {'s run':>9} {'v run':>9}"
    summary: dict[str, list[tuple[float, float, float, float]]] = {v: [] for v in configs}
    start = time.process_time()
    for frame in args.frames:
        phi_states = phiflow_run(flow, base, states[frame], buoyancy, args.steps, args.tolerance)
        print(f"\nfrom stored frame {frame} (CPU time so far {time.process_time() - start:.1f} s)")
        print(header)
        for variant, config in configs.items():
            for seed, diffs in zip(seeds, step_differences(config, phi_states, buoyancy), strict=True):
                for d in diffs:
                    summary[variant].append((d.smoke, d.velocity, d.smoke_share, d.velocity_share))
                    print(f"{variant:<27} {seed:>4} {frame:>5} {d.step:>4} {d.smoke:9.2e} {d.velocity:9.2e} "
                          f"{d.smoke_share:9.2e} {d.velocity_share:9.2e} {d.smoke_run:9.2e} {d.velocity_run:9.2e}")
    print("\none step from the same state, range over all states and steps (min - max):")
    print(f"{'variant':<27} {'smoke':>19} {'velocity':>19} {'smoke/change':>19} {'velocity/change':>19}")
    for variant, rows in summary.items():
        cols = np.array(rows)
        cells = " ".join(f"{lo:8.1e} - {hi:8.1e}" for lo, hi in zip(cols.min(0), cols.max(0), strict=True))
        print(f"{variant:<27} {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
