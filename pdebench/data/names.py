"""What may become part of a file name, and where the suite may write: one rule for every command.

A label names a run folder (`runs/<dataset>/<label>/seed<seed>`), a result file (`<label>-seed<seed>.json`) and a
leaderboard row. It arrives from the command line, from a checkpoint's run record and from result files, and the
last two are untrusted: a label `../../x` or `/tmp/x` would turn into a path outside the folder it was meant for.
So a label (and a dataset's pde and preset name, which become folder names too) is a short *name*:

* 1 to `MAX_NAME_LENGTH` (64) characters: ASCII letters, digits, `.`, `_` and `-`;
* starting with a letter or a digit (so never `.`, `..`, a hidden file or something read as an option).

A seed is a whole number from 0 to `MAX_SEED` (what torch and Lightning accept) wherever it comes from.

`check_name` and `check_seed` refuse anything else with one sentence naming the value and where it came from;
`inside` resolves a path built under a root and refuses one that lands outside it (the last line of defence should
a name ever slip through unchecked); `path_kind` says what a path that is not a regular file is, so that a FIFO or a
symlink loop is never reported as "does not exist".
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path
from typing import Any

from pdebench.errors import UserError

MAX_NAME_LENGTH = 64
# torch.manual_seed and Lightning's seed_everything take seeds in [0, 2**32 - 1]; Lightning silently replaces an
# out-of-range seed by a random one, which would change every number of a run without a word.
MAX_SEED = 2**32 - 1
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # and at most MAX_NAME_LENGTH characters
NAME_RULE = (f"expected 1 to {MAX_NAME_LENGTH} characters of letters, digits, '.', '_' or '-', starting with a "
             "letter or digit")
SEED_RULE = f"expected a whole number from 0 to {MAX_SEED}"
_SHOWN = 80  # characters of a refused value quoted in a message


class UnsafeNameError(UserError, ValueError):
    """A label, name or seed that may not be used (it is a ValueError, so every command reports it in one line)."""


def shown(value: Any) -> str:
    """`value` as quoted in an error: its repr, cut to about 80 characters (a 5 MB label is not echoed)."""
    text = repr(value)
    return text if len(text) <= _SHOWN else f"{text[:_SHOWN]}... ({len(text)} characters)"


def name_problem(value: Any) -> str | None:
    """Why `value` is not a valid name (label, pde, preset), or None if it is one."""
    if not isinstance(value, str):
        return f"is not a name ({type(value).__name__}); {NAME_RULE}"
    if NAME_PATTERN.fullmatch(value) is None:
        return f"is not a name: {NAME_RULE}"
    if len(value) > MAX_NAME_LENGTH:
        return f"is {len(value)} characters long; {NAME_RULE}"
    return None


def check_name(value: Any, key: str = "label", source: str = "the command line") -> str:
    """`value` if it is a valid name, else an UnsafeNameError naming `key`, the value and its `source`."""
    problem = name_problem(value)
    if problem is not None:
        raise UnsafeNameError(f"{key}={shown(value)} (from {source}) {problem}")
    return value


def seed_problem(value: Any) -> str | None:
    """Why `value` is not a valid seed, or None if it is one."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SEED:
        return None
    return f"is not a valid seed: {SEED_RULE}"


def check_seed(value: Any, key: str = "seed", source: str = "the command line") -> int:
    """`value` if it is a valid seed, else an UnsafeNameError naming `key`, the value and its `source`."""
    problem = seed_problem(value)
    if problem is not None:
        raise UnsafeNameError(f"{key}={shown(value)} (from {source}) {problem}")
    return value


def inside(root: str | Path, *parts: str) -> Path:
    """`root / parts...`, refused unless it resolves (symbolic links followed) to a path inside `root`.

    `parts` should already be checked names; this is the check that holds even if one was not: an absolute part,
    `..` or a symbolic link pointing out of `root` all raise UnsafeNameError naming the path and the root.
    """
    base = Path(root)
    path = base.joinpath(*parts)
    resolved_root = base.resolve()
    resolved = path.resolve()
    if resolved != resolved_root and resolved_root not in resolved.parents:
        raise UnsafeNameError(f"{shown(str(path))} resolves to {shown(str(resolved))}, outside {shown(str(base))}; "
                              f"the suite writes only inside its folders")
    return path


def path_kind(path: str | Path) -> str | None:
    """What `path` is when it is not a regular file or a directory ("a named pipe (FIFO)", "a symbolic link loop",
    "a character device", ...); None for a regular file, a directory, or a path that does not exist."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a broken symbolic link" if path.is_symlink() else None
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "a symbolic link loop"
        return f"unreadable ({error.strerror})"
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    for test, what in ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return what
    return "not a regular file"


def missing_or_kind(path: str | Path, what: str, directory: bool = False) -> str:
    """The sentence for `what` at `path` (e.g. "checkpoint", "split file") that cannot be read as a regular file, or
    as a directory where `directory`: what it is instead (a FIFO, a symbolic link loop, a directory, ...), or that
    it does not exist."""
    path = Path(path)
    kind = path_kind(path)
    if kind is not None:
        return f"{what} {path} is {kind}, not {'a directory' if directory else 'a regular file'}"
    if directory and path.is_file():
        return f"{what} {path} is a regular file, not a directory"
    if not directory and path.is_dir():
        return f"{what} {path} is a directory, not a file"
    return f"{what} {path} does not exist"
