"""`pdebench.data.atomic`: a write either fully replaces the file or leaves it (and its directory) untouched."""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

import pytest

from pdebench.data import atomic
from pdebench.data.atomic import atomic_write_text, replace_durably
from pdebench.data.lock import DirectoryBusy, directory_lock
from pdebench.rollout.results import ResultError, read_result, write_result


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_write_creates_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "manifest.json"
    assert atomic_write_text(target, '{"a": 1}\n') == target
    assert target.read_text(encoding="utf-8") == '{"a": 1}\n'
    assert _names(tmp_path) == ["manifest.json"]


def test_write_replaces_existing_content(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old", encoding="utf-8")
    atomic_write_text(target, "new ünïcode")
    assert target.read_text(encoding="utf-8") == "new ünïcode"
    assert _names(tmp_path) == ["out.txt"]


@pytest.mark.skipif(os.name != "posix", reason="permission bits are POSIX")
def test_written_file_has_umask_permissions_not_owner_only(tmp_path: Path) -> None:
    """Datasets and results are shared: the file must get the same mode as open(path, 'w') would give it."""
    umask = os.umask(0o022)
    try:
        target = atomic_write_text(tmp_path / "f.json", "{}")
    finally:
        os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o644


def test_failed_replace_keeps_original_and_removes_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "result.json"
    target.write_text("original", encoding="utf-8")

    def failing_replace(src: object, dst: object) -> None:
        raise OSError("disk went away")

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk went away"):
        atomic_write_text(target, "new")
    assert target.read_text(encoding="utf-8") == "original"
    assert _names(tmp_path) == ["result.json"]


def test_failed_write_midway_keeps_original_and_removes_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupt after the temp file exists but before its data is synced (here: in fsync) leaves no trace."""
    target = tmp_path / "result.json"
    target.write_text("original", encoding="utf-8")

    def interrupted_fsync(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "fsync", interrupted_fsync)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(target, "new")
    assert target.read_text(encoding="utf-8") == "original"
    assert _names(tmp_path) == ["result.json"]


def test_failed_first_write_leaves_nothing(tmp_path: Path) -> None:
    """Text that cannot be encoded fails inside the write: no target, no temp file."""
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(tmp_path / "f.txt", "snow \u2603", encoding="ascii")
    assert _names(tmp_path) == []


def test_missing_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write_text(tmp_path / "no" / "such" / "f.txt", "x")


def test_replace_durably_moves_file(tmp_path: Path) -> None:
    src, dst = tmp_path / "train.h5.partial", tmp_path / "train.h5"
    src.write_bytes(b"complete")
    dst.write_bytes(b"stale")
    assert replace_durably(src, dst) == dst
    assert dst.read_bytes() == b"complete"
    assert _names(tmp_path) == ["train.h5"]


def test_write_result_uses_the_helper_and_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """write_result goes through the helper: a failing replace leaves the previous result and no temp file."""
    path = tmp_path / "results" / "r.json"
    base = {"dataset": "ks-tiny", "pde": "ks", "model": "fno", "label": "fno", "seed": 0, "summary": {}, "curves": {}}
    write_result(path, base)
    assert read_result(path)["seed"] == 0
    assert _names(path.parent) == ["r.json"]

    def failing_replace(src: object, dst: object) -> None:
        raise OSError("no space")

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    with pytest.raises(ResultError, match=r"could not be written \(no space\); the previous result there is kept"):
        write_result(path, {**base, "seed": 1})
    assert read_result(path)["seed"] == 0
    assert _names(path.parent) == ["r.json"]


_HDF5_WRITE_FAILED = ("Can't write data (file write failed: time = Mon Dec  7 10:00:00 2026, filename = "
                      "'train.h5.partial', file descriptor = 5, errno = {}, error message = 'No space left on "
                      "device', buf = 0x1, total write size = 8, bytes this sub-write = 8, bytes actually written = "
                      "18446744073709551615)")


@pytest.mark.parametrize(("error", "full"), [
    (OSError(errno.ENOSPC, "No space left on device"), True),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), True),
    (OSError(errno.EACCES, "Permission denied"), False),
    (OSError(_HDF5_WRITE_FAILED.format(28)), True),  # h5py's OSError: no errno of its own, the text has it
    (RuntimeError(_HDF5_WRITE_FAILED.format(errno.EDQUOT)), True),
    (RuntimeError(_HDF5_WRITE_FAILED.format(13)), False),  # a write refused for another reason
    (RuntimeError("Can't write data"), False),
    (ValueError(_HDF5_WRITE_FAILED.format(28)), False),  # only OS and HDF5 errors are writes
])
def test_a_full_disk_is_told_from_other_write_failures(error: BaseException, full: bool) -> None:
    """ENOSPC or EDQUOT, as an errno or in the text of an HDF5 error, is a full disk; any other failure is not."""
    assert atomic.is_disk_full(error) is full


def test_a_held_directory_lock_refuses_a_second_holder_naming_the_directory_and_the_holder(tmp_path: Path) -> None:
    """Without a caller's own refusal, the lock's names the directory and the process that holds it."""
    holder = f"pid {os.getpid()} on {socket.gethostname()}"
    with directory_lock(tmp_path, "run.lock"):
        with pytest.raises(DirectoryBusy) as info, directory_lock(tmp_path, "run.lock"):
            pass
    assert str(info.value) == (f"{tmp_path} is in use by another process ({holder}); wait for it to finish (or stop "
                               "it) and rerun")
    with directory_lock(tmp_path, "run.lock"):  # released when its holder's block ends
        pass
