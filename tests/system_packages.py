"""One `apt-get` at a time among the processes of a test run.

`make test` runs its test files on several pytest-xdist workers: the browser tests (tests/test_leaderboard_html.py)
and the cluster tests (tests/cluster) may each install their Debian packages at the same moment, and a second
`apt-get` that finds dpkg's lock taken stops at once. Both installs hold this lock while they run."""

from __future__ import annotations

import fcntl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = Path(tempfile.gettempdir()) / "pdebench-tests-apt.lock"


@contextmanager
def one_apt_at_a_time() -> Iterator[None]:
    """Hold the test run's package lock (waiting for whoever holds it) for the body of the `with`."""
    with LOCK_FILE.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
