"""`make mutate` covers every module: each Python file of the three packages is mutated by exactly one entry of the
table in `scripts/mutate.py`, and every test file an entry names exists (a renamed test file would otherwise leave
its module judged by no test)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.script_module import load_script

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("pdebench", "data_gen", "baselines")


def _covered_files(sources: tuple[str, ...]) -> list[str]:
    files = []
    for source in sources:
        path = REPO / source
        found = sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.is_file() else []
        files += [p.relative_to(REPO).as_posix() for p in found]
    return files


def test_every_module_of_the_packages_is_in_exactly_one_mutation_entry() -> None:
    table = load_script("mutate").MODULES
    counts = Counter(f for module in table.values() for f in _covered_files(module.sources))
    every = {p.relative_to(REPO).as_posix() for package in PACKAGES for p in (REPO / package).rglob("*.py")}
    assert sorted(every - set(counts)) == []
    assert sorted(f for f, n in counts.items() if n > 1) == []


def test_every_test_file_an_entry_names_exists() -> None:
    table = load_script("mutate").MODULES
    missing = sorted({t for module in table.values() for t in module.tests if not (REPO / t).is_file()})
    assert missing == []
