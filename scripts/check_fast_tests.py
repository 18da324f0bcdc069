"""Check that the fast tests (`make test-fast`: every test not marked `slow` or `cluster`) still exercise every module
of pdebench/, data_gen/ and baselines/: run them under coverage and list each module none of whose functions ran.

A module counts as exercised when at least one line inside one of its functions or methods ran. Importing a module
runs only its `def` lines and module-level statements, which shows nothing about whether its code works, so an
import alone does not count; a module without any function (constants, re-exports, a package's `__init__`) counts
once it was imported. Only this process is measured: code that runs solely in a child process (an installed console
script started by a test, a generation worker) does not count, so a module exercised only that way is listed too.

Run it after marking tests `slow` or `cluster`. Exit status 1 lists the modules no fast test exercises (mark fewer
of their tests slow, or give them a fast test); 0 prints how many modules were checked.

Usage: python scripts/check_fast_tests.py [--data-file F] [--reuse] [PYTEST_ARGS...]
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("pdebench", "data_gen", "baselines")
FAST = "not slow and not cluster"


def function_spans(source: str) -> list[tuple[int, int]]:
    """(first, last) line of the body of every function and method in `source` (nested ones included)."""
    spans = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            spans.append((node.body[0].lineno, node.end_lineno or node.body[-1].lineno))
    return spans


def exercised(source: str, imported: bool, ran: set[int]) -> bool:
    """Whether a module whose lines `ran` (empty if it was never imported) counts as exercised (see the module
    docstring)."""
    spans = function_spans(source)
    if not spans:
        return imported
    return any(first <= line <= last for first, last in spans for line in ran)


def modules() -> list[Path]:
    """Every Python module of the three packages, relative to the repository."""
    return sorted(path.relative_to(REPO) for package in PACKAGES for path in (REPO / package).rglob("*.py")
                  if "__pycache__" not in path.parts)


def run_fast_tests(data_file: Path, pytest_args: list[str]) -> int:
    """The fast tests under coverage, measuring the three packages; returns pytest's exit status."""
    command = [sys.executable, "-m", "coverage", "run", f"--data-file={data_file}",
               f"--source={','.join(PACKAGES)}", "-m", "pytest", "-m", FAST, "-q", "-p", "no:cacheprovider",
               *pytest_args]
    return subprocess.run(command, cwd=REPO, check=False).returncode


def unexercised(data_file: Path) -> list[Path]:
    """The modules the coverage data in `data_file` shows no fast test exercised."""
    import coverage

    data = coverage.CoverageData(basename=str(data_file))
    data.read()
    lines = {Path(name).resolve(): set(data.lines(name) or ()) for name in data.measured_files()}
    missing = []
    for module in modules():
        path = (REPO / module).resolve()
        if not exercised(path.read_text(encoding="utf-8"), path in lines, lines.get(path, set())):
            missing.append(module)
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-file", type=Path, default=REPO / ".coverage.fast",
                        help="where coverage keeps its data (default: .coverage.fast in the repository)")
    parser.add_argument("--reuse", action="store_true", help="check the data file of an earlier run, run no test")
    args, pytest_args = parser.parse_known_args(argv)
    try:
        import coverage  # noqa: F401
    except ImportError:
        print("error: the check needs coverage; install it with pip install coverage (the mutate extra has it)",
              file=sys.stderr)
        return 1
    if not args.reuse:
        status = run_fast_tests(args.data_file, pytest_args)
        if status not in (0, 1):  # 1: some test failed, which does not change what ran
            print(f"error: pytest stopped with exit status {status}; nothing to check", file=sys.stderr)
            return 1
    missing = unexercised(args.data_file)
    for module in missing:
        print(f"not exercised by a fast test: {module}")
    if missing:
        return 1
    print(f"every one of the {len(modules())} modules of {', '.join(PACKAGES)} is exercised by a fast test")
    return 0


if __name__ == "__main__":
    sys.exit(main())
