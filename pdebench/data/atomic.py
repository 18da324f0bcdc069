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
elsewhere under a temporary name (the HDF5 ``.partial`` files of :mod:`pdebench.data.writer`).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

TEMP_SUFFIX = ".tmp"


def fsync_path(path: str | Path) -> None:
    """Flush a file's or directory's data to disk; best effort.

    Directories cannot be opened or fsynced on some platforms and file systems (Windows, some network
    mounts); durability is then up to the OS, which is no reason to fail a write that did succeed.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temp_path_for(path: str | Path) -> Path:
    """A fresh hidden sibling name for writing `path` (`dir/.name.<random>.tmp`): same file system, no clash."""
    path = Path(path)
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}{TEMP_SUFFIX}")


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Replace the content of `path` by `text` atomically and durably; returns `path`.

    The text goes to a temporary sibling that is fsynced and then renamed onto `path`, and the directory
    is fsynced after the rename. On any exception (including KeyboardInterrupt) the temporary file is
    removed and `path` keeps its previous content (or stays absent). The parent directory must exist.
    The temporary file is created with mode 0o666 minus the umask, like ``open(path, "w")``, so the
    final file gets the usual permissions (``tempfile.mkstemp`` would make it owner-only).
    """
    path = Path(path)
    tmp = temp_path_for(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "w", encoding=encoding) as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_path(path.parent)
    return path


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
