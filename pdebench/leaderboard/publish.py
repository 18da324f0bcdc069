"""Replace a leaderboard folder as a whole: build the new board in a staging folder beside it, then swap it in.

A reader of `out_dir` must see the previous board or the new one, never a mix: not a half-written PNG after a
SIGKILL while plotting, not new Markdown next to the old `index.html` after a full disk. So every file of a build
goes into a fresh staging folder next to `out_dir` (same parent, hence the same file system: `.<name>.<random>.tmp`),
and only a complete build is swapped in: `out_dir` is renamed aside (`.<name>.<random>.old`), the staging folder is
renamed onto `out_dir`, and the old folder is removed. If anything fails, the staging folder is removed and the old
board is left as it was (renamed back if the swap itself failed). A process killed mid-build leaves at most a
staging folder beside `out_dir`, never a change inside it; such a `.<name>.*.tmp` folder can be deleted.

`out_dir` is shared with its owner: entries the leaderboard did not write (notes, a README, a folder of extras) are
carried over into the new board (hard-linked, or copied where a link is impossible). What a build wrote is recorded
in the hidden file :data:`RECORD_NAME`, so the next build drops exactly those (e.g. the tables of a dataset whose
results are gone) and keeps everything else. Without a record (a board of an older pdebench) every entry the new
build does not write is kept.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

from pdebench.data.atomic import atomic_write_text, fsync_path, temp_path_for
from pdebench.data.names import path_kind
from pdebench.errors import UserError

RECORD_NAME = ".leaderboard-files.json"
"""Hidden file in `out_dir`: the names of the files the last build wrote there (a JSON list)."""


class LeaderboardWriteError(UserError, ValueError):
    """The leaderboard could not be written (a full disk, no permission, `out_dir` not a folder); the previous board
    in `out_dir` is unchanged. A ValueError, so every command reports it in one sentence."""


def _written_before(out_dir: Path) -> set[str]:
    """Names the previous build recorded; none if there is no record or it is unreadable."""
    try:
        names = json.loads((out_dir / RECORD_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return set()
    return {n for n in names if isinstance(n, str)} if isinstance(names, list) else set()


def _link_or_copy(src: str, dst: str) -> None:
    """`dst` becomes a hard link to `src` (no data copied), or a copy where the file system refuses links."""
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


def _carry_over(out_dir: Path, stage: Path, written: set[str]) -> None:
    """Put every entry of `out_dir` that no build of the leaderboard wrote into `stage` (symbolic links as links)."""
    if not out_dir.is_dir():
        return
    ours = written | _written_before(out_dir) | {RECORD_NAME}
    for entry in os.scandir(out_dir):
        if entry.name in ours:
            continue
        target = stage / entry.name
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), target)
        elif entry.is_dir():
            shutil.copytree(entry.path, target, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry.path, str(target))


def _swap(stage: Path, out_dir: Path) -> None:
    """Rename `stage` onto `out_dir`; a previous `out_dir` is renamed aside first and removed after (renamed back
    if the swap fails)."""
    if not out_dir.exists():
        os.rename(stage, out_dir)
        fsync_path(out_dir.parent)
        return
    aside = out_dir.with_name(f".{out_dir.name}.{uuid.uuid4().hex[:12]}.old")
    os.rename(out_dir, aside)
    try:
        os.rename(stage, out_dir)
    except BaseException:
        os.rename(aside, out_dir)
        raise
    fsync_path(out_dir.parent)
    shutil.rmtree(aside, ignore_errors=True)


def _target(out_dir: Path) -> Path:
    """The folder to replace: `out_dir`, or the folder it links to; refused if it is not a folder, or if it is the
    current folder or one above it (swapping that would move the user's project, not a board)."""
    here = Path.cwd().resolve()
    if out_dir.resolve() in (here, *here.parents):
        raise LeaderboardWriteError(f"out_dir {out_dir} is the current folder or one above it; the leaderboard "
                                    "replaces its folder as a whole, so give it a folder of its own (e.g. "
                                    "out_dir=leaderboard)")
    if out_dir.is_symlink() and out_dir.is_dir():
        return out_dir.resolve()
    if out_dir.exists() and not out_dir.is_dir():
        kind = path_kind(out_dir) or "a file"
        raise LeaderboardWriteError(f"out_dir {out_dir} is {kind}, not a directory; pass a folder for the leaderboard "
                                    "(it is created if missing)")
    return out_dir


def _failure(error: OSError, out_dir: Path, existed: bool) -> LeaderboardWriteError:
    kept = "the previous leaderboard there is unchanged" if existed else "nothing was written"
    return LeaderboardWriteError(f"cannot write the leaderboard to {out_dir} ({error.strerror or error}); {kept}")


@contextlib.contextmanager
def staged_folder(out_dir: Path) -> Iterator[Path]:
    """A fresh, empty staging folder for the new board; on leaving the block without error, what the leaderboard did
    not write is carried over from `out_dir`, the written names are recorded, and the folder replaces `out_dir`.

    Raises:
        LeaderboardWriteError: `out_dir` is not a folder, or the file system refused a write, a link or a rename
            (one sentence; `out_dir` keeps its previous board, and the staging folder is removed).
    """
    out_dir = Path(out_dir)
    target = _target(out_dir)
    stage, existed = temp_path_for(target), target.is_dir()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(stage)
        if existed:
            os.chmod(stage, stat.S_IMODE(target.stat().st_mode))  # the board keeps its folder's permissions
        yield stage
        written = set(os.listdir(stage))
        _carry_over(target, stage, written)
        atomic_write_text(stage / RECORD_NAME, json.dumps(sorted(written)) + "\n")
        _swap(stage, target)
    except OSError as error:
        raise _failure(error, out_dir, existed) from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
