"""Atomic, durable file replacement: the one place pdebench writes "temp file + fsync + os.replace".

A reader of a manifest, a result file or a split file must see either the previous complete file or the
new complete file, never a torn one, even if the process is killed or the machine loses power mid-write.
The recipe is always the same:

1. write the new content to a temporary file in the *same directory* (``os.replace`` is only atomic
   within one file system),
2. ``fsync`` it, so its bytes are on disk before any name points at them,
3. ``os.replace`` it onto the final name (atomic on POSIX and Windows),
4. ``fsync`` the directory, so the rename itself survives a crash.

:func:`atomic_write_text` does all four for small text files (JSON manifests and results) and removes its
temporary file if anything fails; :func:`replace_durably` does steps 2-4 for a file that was built
elsewhere under a temporary name (the HDF5 ``.partial`` files of :mod:`pdebench.data.writer`), and
:func:`atomic_file` all four for a file written through a file object (training checkpoints).

A full disk is a user error, not a bug: :func:`reporting_full_disk` turns the ENOSPC (or exhausted quota) of a
block of writes into :class:`DiskFull`, one sentence naming the file, what was kept, and that freeing space and
rerunning the same command resumes. Other ``OSError`` s stay what they are.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from pdebench.errors import UserError

TEMP_SUFFIX = ".tmp"
# errno values of a write that failed for want of space: a full file system, or the user's quota used up.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# h5py raises some HDF5 write failures as RuntimeError whose text alone carries the errno ("errno = 28, ...").
_HDF5_ERRNO_RE = re.compile(r"errno = (\d+)")


class DiskFull(UserError, ValueError):
    """The disk (or quota) filled up while a file was written: one sentence naming the file and what was kept; the
    user frees space and reruns the same command, which resumes."""


def is_disk_full(error: BaseException) -> bool:
    """True if `error` is a write that failed for want of space: an OSError with errno ENOSPC or EDQUOT, or an HDF5
    error (h5py's OSError or RuntimeError) whose message records one of them."""
    if isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS:
        return True
    if not isinstance(error, OSError | RuntimeError):
        return False
    return any(int(found) in DISK_FULL_ERRNOS for found in _HDF5_ERRNO_RE.findall(str(error)))


def disk_full_error(path: str | Path, kept: str) -> DiskFull:
    """The one sentence of a full disk met while writing `path`; `kept` says what survives (e.g. "the previous
    last.ckpt is kept")."""
    return DiskFull(f"no space left on device while writing {path} ({kept}); free space and rerun the same command "
                    f"to resume")


@contextlib.contextmanager
def reporting_full_disk(path: str | Path, kept: str) -> Iterator[None]:
    """Turn a full disk met in the block into `disk_full_error(path, kept)`; any other error passes unchanged."""
    try:
        yield
    except (OSError, RuntimeError) as error:
        if not is_disk_full(error):
            raise
        raise disk_full_error(path, kept) from error


def fsync_path(path: str | Path) -> None:
    """Flush a file's or directory's data to disk; best effort.

    Directories cannot be opened or fsynced on some platforms and file systems (Windows, some network
    mounts); durability is then up to the OS, which is no reason to fail a write that did succeed. A full disk
    reported by fsync (network file systems report it only then) is raised: that write did not succeed.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as error:
        if is_disk_full(error):  # data that never reached the disk (e.g. on NFS): the write did not succeed
            raise
    finally:
        os.close(fd)


def temp_path_for(path: str | Path) -> Path:
    """A fresh hidden sibling name for writing `path` (`dir/.name.<random>.tmp`): same file system, no clash."""
    path = Path(path)
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}{TEMP_SUFFIX}")


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "wb", encoding: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary sibling of `path` for writing (`mode` "wb" or "w"); when the block ends without an error,
    fsync it, rename it onto `path` and fsync the directory.

    On any exception (including KeyboardInterrupt) the temporary file is removed and `path` keeps its previous
    content (or stays absent). The parent directory must exist. The temporary file is created with mode 0o666
    minus the umask, like ``open(path, "w")``, so the final file gets the usual permissions (``tempfile.mkstemp``
    would make it owner-only).
    """
    path = Path(path)
    tmp = temp_path_for(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, mode, encoding=encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_path(path.parent)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Replace the content of `path` by `text` atomically and durably (`atomic_file`); returns `path`."""
    with atomic_file(path, "w", encoding) as fh:
        fh.write(text)
    return Path(path)


def replace_durably(src: str | Path, dst: str | Path) -> Path:
    """Atomically rename the finished file `src` onto `dst` (same directory), durably; returns `dst`.

    `src` is fsynced before the rename so `dst` never names a file whose data is still only in the page
    cache, and the directory of `dst` is fsynced after it so the rename survives a crash.
    """
    src, dst = Path(src), Path(dst)
    fsync_path(src)
    os.replace(src, dst)
    fsync_path(dst.parent)
    return dst
