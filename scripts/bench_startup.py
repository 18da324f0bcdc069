"""Start-up cost of each command: `pdebench-<command> --help` against `python -c "import torch"`.

A command that only prints its help should cost about what importing torch costs (every command needs torch for
its real work, so torch is the floor a user pays anyway); the goal is at most 1 s more than that, and for the
leaderboard and evaluate no model or solver module at all (`--help` of evaluate composes no model; the leaderboard
never does). Each command runs as a fresh process, as a user starts it; the table gives the median wall time of
`--repeats` runs after one warm-up (which fills the OS file cache), its difference from importing torch measured
in the same run, its peak memory, and which of the model/solver libraries it imported.

Usage: python scripts/bench_startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
COMMANDS = ("leaderboard", "evaluate", "train", "generate")
# Imported packages the table names: the zoo and the solvers, and the heavy libraries under them.
ZOO = ("baselines", "data_gen", "torch_geometric", "torch_harmonics", "neuralop", "lightning", "torch")
# Runs a command's main as its console script does, then names the zoo packages it imported.
PROBE = """
import resource, runpy, sys
sys.argv = ["pdebench-{command}", "--help"]
try:
    runpy.run_module("pdebench.cli.{command}", run_name="__main__")
except SystemExit:
    pass
print("peak_kb:", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
print("imported:" + ",".join(sorted({{m.split(".")[0] for m in sys.modules}} & set({zoo!r}))))
"""
TORCH = "import resource, torch; print('peak_kb:', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"


def timed(argv: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak resident memory (MB, as the process itself reports it) and stdout of one run of `argv`."""
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    peak_kb = float(proc.stdout.rpartition("peak_kb:")[2].split()[0])
    return seconds, peak_kb / 1024, proc.stdout


def median_run(argv: list[str], repeats: int) -> tuple[float, float, str]:
    timed(argv)  # warm-up
    runs = [timed(argv) for _ in range(repeats)]
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs), runs[-1][2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch_s, torch_mb, _ = median_run([sys.executable, "-c", TORCH], args.repeats)
    print(f"python -c 'import torch': {torch_s:.2f} s, {torch_mb:.0f} MB (median time of {args.repeats} runs)")
    print(f"{'command':28s} {'median (s)':>10s} {'- torch (s)':>11s} {'goal':>5s} {'peak (MB)':>9s}  imported")
    for command in COMMANDS:
        seconds, mb, out = median_run([sys.executable, "-c", PROBE.format(command=command, zoo=ZOO)], args.repeats)
        imported = out.rpartition("imported:")[2].strip() or "none"
        extra = seconds - torch_s
        verdict = "ok" if extra <= 1 else "over"
        print(f"{'pdebench-' + command + ' --help':28s} {seconds:10.2f} {extra:+11.2f} {verdict:>5s} {mb:9.0f}"
              f"  {imported}")


if __name__ == "__main__":
    main()
