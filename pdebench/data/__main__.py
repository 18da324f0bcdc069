"""Command line for dataset files: `python -m pdebench.data check FILE [FILE ...]`.

Exit status: 0 when every file is valid, 1 when any file has a problem, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pdebench.data.check import check_file
from pdebench.data.reader import TrajectoryFile
from pdebench.data.schema import DatasetError


def _check(paths: Sequence[str]) -> int:
    """Print "FILE: OK (...)" or each problem of every file; return 1 if any file had a problem."""
    status = 0
    for path in paths:
        problems = check_file(path)
        if not problems:
            try:
                with TrajectoryFile(path) as tf:
                    summary = f"n_traj={tf.n_traj}, n_frames={tf.n_frames}, fields={','.join(tf.field_names)}"
            except DatasetError as exc:  # the checker and the reader disagree: report it, never pass it
                problems = [str(exc)]
        if problems:
            status = 1
            for problem in problems:
                print(problem)
        else:
            print(f"{path}: OK ({summary})")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and run a subcommand; returns the process exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m pdebench.data", description="Inspect pdebench dataset files."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="validate split files against the format (docs/data_format.md)")
    check.add_argument("files", nargs="+", metavar="FILE", help="split file(s), e.g. data/ks-small/train.h5")
    args = parser.parse_args(argv)
    if args.command == "check":
        return _check(args.files)
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
