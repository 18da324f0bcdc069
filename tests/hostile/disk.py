"""A real small disk for full-disk tests: a tmpfs mounted on a test folder, and a filler file that leaves only a
few KiB of it free.

    with small_disk(tmp_path / "data", "2m") as disk:
        filler = fill_disk(disk, leave=400 << 10)  # a write past the last 400 KiB fails with ENOSPC
        ...
        filler.unlink()  # free the space again

Mounting needs root (or CAP_SYS_ADMIN); where it is not permitted the test is skipped, saying why. The tmpfs is
always unmounted when the block ends (lazily if a file on it is still open, so no mount outlives the test).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

FILLER_NAME = "filler"
_WRITE_CHUNK = 64 << 10


@contextlib.contextmanager
def small_disk(directory: Path, size: str = "2m") -> Iterator[Path]:
    """Mount a tmpfs of `size` (mount's syntax: "2m", "512k") on `directory` (created if missing) for the block;
    skip the test if mounting is not permitted here."""
    directory.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a {size} tmpfs on {directory} for a full-disk test: {mounted.stderr.strip()}")
    try:
        yield directory
    finally:
        if subprocess.run(["umount", str(directory)], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(directory)], capture_output=True, check=True)


def fill_disk(directory: Path, leave: int) -> Path:
    """Write `<directory>/filler` until only about `leave` bytes of the disk stay free; returns the filler (unlink
    it to free the space)."""
    filler = directory / FILLER_NAME
    to_write = shutil.disk_usage(directory).free - leave
    with filler.open("ab") as fh:
        while to_write > 0:
            n = min(_WRITE_CHUNK, to_write)
            fh.write(b"\xff" * n)
            to_write -= n
    return filler
