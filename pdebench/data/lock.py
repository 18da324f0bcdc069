"""One writer per directory: an exclusive, non-blocking lock on a file in it, naming its holder.

Generation locks a dataset directory (`data_gen.resume`), training its run folder (`pdebench.training.run`), so
two processes never write one dataset or overwrite each other's checkpoints. The lock is `flock` on
`<directory>/<name>`: the operating system releases it when its holder exits, however it exits, so a killed run
never leaves a stale lock. The holder writes `<pid> <host>` into the file, so that a refused process can say which
process holds it. Where `flock` does not exist (Windows) the directory is not guarded, as before.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from pdebench.errors import UserError


class DirectoryBusy(UserError, ValueError):
    """Another process holds the lock of a directory; the message names the directory and the holder."""


def _busy(directory: Path, holder: str) -> DirectoryBusy:
    return DirectoryBusy(f"{directory} is in use by another process ({holder}); wait for it to finish (or stop it) "
                         f"and rerun")


def describe_holder(record: str) -> str:
    """`pid 1234 on node07` from a lock file's `1234 node07`; a generic phrase if the holder has not written it yet."""
    parts = record.split()
    if len(parts) == 2 and parts[0].isdigit():
        return f"pid {parts[0]} on {parts[1]}"
    return "a process that has not recorded its pid yet"


def _record_holder(fh: IO[bytes]) -> None:
    """Write this process's pid and host into the lock file; best effort (a full disk must not stop a run here)."""
    with contextlib.suppress(OSError):
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()} {socket.gethostname()}\n".encode())
        fh.flush()


def _read_holder(fh: IO[bytes]) -> str:
    with contextlib.suppress(OSError):
        fh.seek(0)
        return fh.read(256).decode("utf-8", errors="replace")
    return ""


@contextlib.contextmanager
def directory_lock(directory: str | Path, name: str,
                   busy: Callable[[str], Exception] | None = None) -> Iterator[None]:
    """Hold the lock `<directory>/<name>` for the block (the directory must exist).

    If another process holds it, raise `busy(holder)` at once, where holder is e.g. `pid 1234 on node07`; by
    default a `DirectoryBusy` naming the directory and the holder.
    """
    directory = Path(directory)
    try:
        import fcntl
    except ImportError:  # no flock on this platform (Windows): unguarded
        yield
        return
    fd = os.open(directory / name, os.O_RDWR | os.O_CREAT, 0o666)
    with os.fdopen(fd, "r+b") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = describe_holder(_read_holder(fh))
            raise (busy(holder) if busy is not None else _busy(directory, holder)) from None
        _record_holder(fh)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                fh.truncate(0)  # no stale pid for the next holder's refusals to name
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
