"""Cost of checking a command line before Hydra runs it (`pdebench.cli.common.check_command_line`).

Every command composes its config once more before `hydra.main` does, so that a bad override is refused in one
line before anything is written. This measures that check against Hydra's own composition of the same command
line (`hydra.compose`, which `hydra.main` also pays), for a run and for sweeps, in one process, median of
`--repeats` rounds after a warm-up. The ratio is the added start-up work in units of Hydra's own; in absolute
terms it is milliseconds against the seconds a command spends importing torch and Lightning.

Usage: python scripts/bench_config_check.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from hydra import compose, initialize_config_dir

from pdebench.cli.common import CONFIG_DIR, HYDRA_VERSION_BASE, check_command_line
from pdebench.cli.hydra_setup import register_configs
from pdebench.training.config import train_config

# command line -> the overrides of its config as Hydra composes it (a sweep's at its first values)
CASES = {
    "run: data.preset=tiny": (["data.preset=tiny"], ["data.preset=tiny"]),
    "run: experiment=ks_fno": (["experiment=ks_fno"], ["experiment=ks_fno"]),
    "print: --cfg job": (["--cfg", "job"], []),
    "sweep: -m model=fno,unet seed=0,1,2": (["-m", "model=fno,unet", "seed=0,1,2"], ["model=fno", "seed=0"]),
    "sweep: -m seed=range(0,100)": (["-m", "seed=range(0,100)"], ["seed=0"]),
}


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def hydra_compose(overrides: list[str]) -> None:
    """Hydra's own composition of the config, as `hydra.main` composes it once per command."""
    with initialize_config_dir(CONFIG_DIR, version_base=HYDRA_VERSION_BASE):
        compose("train", overrides=overrides, return_hydra_config=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    register_configs()
    print(f"{'command line':40s} {'check (ms)':>11s} {'compose (ms)':>13s} {'ratio':>6s}")
    for name, (argv, overrides) in CASES.items():
        check = median_ms(lambda argv=argv: check_command_line("train", train_config, argv), args.repeats)
        own = median_ms(lambda overrides=overrides: hydra_compose(overrides), args.repeats)
        print(f"{name:40s} {check:11.0f} {own:13.0f} {check / own:6.2f}")


if __name__ == "__main__":
    main()
