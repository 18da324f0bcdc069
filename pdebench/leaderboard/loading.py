"""Find and read result files for the leaderboard: from `results/`, a Hydra sweep folder, or named files.

A leaderboard is built from whatever evaluations finished. One corrupt or partial result file (a write cut short, a
hand-edited file, a file of an older or newer format) must not hide all the others, so it is skipped with a
:class:`SkippedResultWarning` that names it, and the build goes on. A path that does not exist is a typo, not a
damaged result, and fails.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

from pdebench.errors import MissingFile
from pdebench.rollout.results import ResultError, read_result, try_read_result

SOURCE_KEY = "source"
"""Key under which :func:`load_results` records the file a result was read from (shown as provenance)."""


class SkippedResultWarning(UserWarning):
    """A result file was left out of the leaderboard; the message names the file and why."""


def skip(message: str) -> None:
    """Warn that a result is left out (one sentence naming the file and the reason)."""
    warnings.warn(message, SkippedResultWarning, stacklevel=3)


def _read(file: Path, strict: bool) -> dict | None:
    """The result in `file`; None (with a warning) when it is damaged, None (silently) when it is other JSON.

    `strict`: the file was named explicitly, so JSON that is not a result is reported too.
    """
    try:
        data = read_result(file) if strict else try_read_result(file)
    except ResultError as error:
        skip(f"skipped: {error}")
        return None
    if data is not None:
        data[SOURCE_KEY] = str(file)  # the file it was read from, whatever the file claims
    return data


def load_results(paths_or_dirs: Sequence[Path | str]) -> list[dict]:
    """Read every result file under `paths_or_dirs`.

    Args:
        paths_or_dirs: result files and/or directories (e.g. `results`, or a Hydra sweep folder
            `runs/multirun/<date>`), searched recursively for `*.json`. In a directory, JSON that is not a result
            (no `format` key, or another format, e.g. a config dump) is passed over silently.

    Returns:
        The result dicts, each file once, in sorted path order; each records the file it came from under
        :data:`SOURCE_KEY`.

    Warns:
        SkippedResultWarning: for every file that is not valid JSON, misses a required key, has another format
            or a newer format version, or holds a name, type or value no evaluation writes (see
            `pdebench.rollout.results.read_result`), and, for a file named explicitly, for JSON that is not a
            result at all. The message names the file and what is wrong.

    Raises:
        MissingFile: a FileNotFoundError: a given path does not exist.
    """
    results: list[dict] = []
    seen: set[Path] = set()
    for entry in map(Path, paths_or_dirs):
        if entry.is_dir():
            files, strict = [f for f in sorted(entry.rglob("*.json")) if f.is_file()], False
        elif entry.is_file():
            files, strict = [entry], True
        else:
            raise MissingFile(f"result path {entry} does not exist (expected a result file or a directory "
                                    "of result files, e.g. results or runs/multirun/<date>)")
        for file in files:
            key = file.resolve()
            if key in seen:
                continue
            seen.add(key)
            data = _read(file, strict)
            if data is not None:
                results.append(data)
    return results
