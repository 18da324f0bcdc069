"""Command line for dataset files: `python -m pdebench.data check PATH [PATH ...]`.

A PATH is a split file or a dataset directory. A directory's split files are checked and compared with its
manifest (which must exist); split files whose directory holds a manifest are compared with it too.
Exit status: 0 when everything is valid, 1 when anything has a problem, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pdebench.data.check import check_file
from pdebench.data.manifest import manifest_problems
from pdebench.data.reader import TrajectoryFile
from pdebench.data.schema import MANIFEST_NAME, SPLITS, DatasetError


def _check_file(path: Path) -> list[str]:
    """Problems of one split file against the format; prints its OK line when there are none."""
    problems = check_file(path)
    if not problems:
        try:
            with TrajectoryFile(path) as tf:
                summary = f"n_traj={tf.n_traj}, n_frames={tf.n_frames}, fields={','.join(tf.field_names)}"
        except DatasetError as exc:  # the checker and the reader disagree: report it, never pass it
            problems = [str(exc)]
        else:
            print(f"{path}: OK ({summary})")
    return problems


def _check(paths: Sequence[str]) -> int:
    """Print "PATH: OK (...)" or each problem of every file and manifest; return 1 if anything had a problem."""
    files: dict[Path, None] = {}  # ordered sets
    directories: dict[Path, None] = {}
    status = 0
    for arg in paths:
        path = Path(arg)
        if not path.is_dir() or path.suffix == ".h5":  # a directory named like a split file is a broken split
            files[path] = None
            continue
        found = [path / f"{split}.h5" for split in SPLITS if (path / f"{split}.h5").is_file()]
        if not found and not (path / MANIFEST_NAME).is_file():
            status = 1
            print(f"{path} holds no split file ({', '.join(s + '.h5' for s in SPLITS)}) and no manifest")
            continue  # said once: no manifest to compare either
        directories[path] = None
        files.update(dict.fromkeys(found))
    for path in files:
        for problem in _check_file(path):
            status = 1
            print(problem)
    # Compare with a manifest: every directory given, and the directory of given split files when it has one.
    manifests: dict[Path, list[str]] = {directory: [] for directory in directories}
    for path in files:
        split = path.name.removesuffix(".h5")
        if split in SPLITS and path.name == f"{split}.h5":
            if path.parent in manifests or (path.parent / MANIFEST_NAME).is_file():
                manifests.setdefault(path.parent, []).append(split)
    for directory, splits in manifests.items():
        problems = manifest_problems(directory, splits, whole=directory in directories)
        for problem in problems:
            status = 1
            print(problem)
        if not problems:
            print(f"{directory / MANIFEST_NAME}: OK (the split files match it)")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and run a subcommand; returns the process exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m pdebench.data", description="Inspect pdebench dataset files."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser(
        "check", help="validate split files against the format (docs/data_format.md) and their manifest"
    )
    check.add_argument(
        "files", nargs="+", metavar="PATH",
        help="split file(s) or dataset directories, e.g. data/ks-small/train.h5 or data/ks-small",
    )
    args = parser.parse_args(argv)
    if args.command == "check":
        return _check(args.files)
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
