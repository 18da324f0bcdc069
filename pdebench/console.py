"""What the commands print while they work: progress a person can read in a terminal and in a log file.

A terminal gets tqdm's bars, redrawn in place. Written to a file (a SLURM log, CI, `> log 2>&1`), those redraws are
carriage returns that every viewer shows as one endless line, so off a terminal `progress_bar` prints plain lines
instead: one every `every_n_seconds` and one when the work ends (`PlainProgress`). Generation (and the merging of
shards) and evaluation share it; training has its own Lightning callback (`pdebench.training.callbacks.LineProgress`),
which formats times and rates with the same helpers (`clock`, `rate_text`).

And what they do not print: `quiet_third_party` silences, each by its own text, the lines Lightning and torch print
on every run that ask nothing of the user, so that a log holds pdebench's lines and the warnings that need action.
"""

from __future__ import annotations

import logging
import math
import re
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any, TextIO

PROGRESS_EVERY_N_SECONDS = 30.0
"""Seconds between two progress lines off a terminal (generation, evaluation)."""


def clock(seconds: float) -> str:
    """`3:25` or `1:02:03` (h:mm:ss) for a number of seconds (negative counts as 0)."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def significant(value: float, digits: int = 3) -> str:
    """`value` with `digits` significant digits and no exponent: 0.0674 -> `0.0674`, 12.34 -> `12.3`, 1234.5 ->
    `1,234` (at least the integer part, with thousands separators); non-finite values as Python writes them."""
    if not math.isfinite(value) or value == 0:
        return f"{value:g}"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    rounded = round(value, decimals)
    if rounded and math.floor(math.log10(abs(rounded))) > magnitude:  # carried into a new digit: 0.09996 -> 0.1000
        decimals = max(0, decimals - 1)
    return f"{value:,.{decimals}f}"


def rate_text(count: float, seconds: float, unit: str) -> str:
    """A throughput to three significant digits, as tqdm writes it: `12.5 step/s`, or `40.2 s/step` below one per
    second (so that a slow run never reads `0 step/s`); `? <unit>/s` before any time has passed or anything was
    counted."""
    if seconds <= 0 or count <= 0:
        return f"? {unit}/s"
    per_second = count / seconds
    return f"{significant(per_second)} {unit}/s" if per_second >= 1 else f"{significant(1 / per_second)} s/{unit}"


def is_terminal(stream: TextIO) -> bool:
    """Whether `stream` is an interactive terminal (False for files, pipes, and streams without `isatty`)."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except ValueError:  # a closed stream
        return False


class PlainProgress:
    """tqdm's interface as far as pdebench uses it (`update`, `set_postfix_str`, `close`, a context manager), printing
    one plain line every `every_n_seconds` and one at `close` (unless the last one showed the same count), never a
    carriage return.

    A line reads `<desc>: <done>/<total> <unit> (<percent>%) <rate> elapsed <h:mm:ss> eta <h:mm:ss>[ <postfix>]`;
    the rate and ETA count only the work done by this process (`initial` is what an earlier run left done).
    `timer` gives the time in seconds (`time.monotonic`; replaceable in tests).
    """

    def __init__(self, total: int | None, desc: str = "", unit: str = "it", initial: int = 0,
                 every_n_seconds: float = PROGRESS_EVERY_N_SECONDS, stream: TextIO | None = None,
                 timer: Callable[[], float] = time.monotonic) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.n = self._initial = initial
        self.every_n_seconds = every_n_seconds
        self.stream = stream
        self._timer = timer
        self._start = self._last = timer()
        self._postfix = ""
        self._printed: float | None = None  # the count the last line showed
        self._closed = False

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        """Text shown at the end of the next line (as tqdm's postfix)."""
        self._postfix = text

    def update(self, n: float = 1) -> None:
        """Count `n` more units; prints a line when `every_n_seconds` have passed since the last one."""
        self.n += n
        now = self._timer()
        if self.every_n_seconds > 0 and now - self._last >= self.every_n_seconds:
            self._print(now)

    def close(self) -> None:
        """Print the final line (once; not when the last line already showed this count)."""
        if not self._closed:
            self._closed = True
            if self._printed != self.n:
                self._print(self._timer())

    def line(self, now: float) -> str:
        """The progress line at time `now` (the `timer`'s seconds)."""
        elapsed = now - self._start
        done = self.n - self._initial
        count = f"{_count(self.n)}/{_count(self.total)}" if self.total else _count(self.n)
        percent = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        eta = "?"
        if self.total and done > 0:
            eta = clock(elapsed / done * max(0.0, self.total - self.n))
        text = (f"{self.desc + ': ' if self.desc else ''}{count} {self.unit}{percent} "
                f"{rate_text(done, elapsed, self.unit)} elapsed {clock(elapsed)} eta {eta}")
        return f"{text} {self._postfix}" if self._postfix else text

    def _print(self, now: float) -> None:
        self._last, self._printed = now, self.n
        print(self.line(now), file=self.stream or sys.stderr, flush=True)


def _count(value: float | None) -> str:
    return "?" if value is None else str(int(value)) if float(value).is_integer() else f"{value:.3g}"


def progress_bar(total: int | None, desc: str = "", unit: str = "it", enabled: bool = True, initial: int = 0,
                 every_n_seconds: float = PROGRESS_EVERY_N_SECONDS, stream: TextIO | None = None) -> Any:
    """A tqdm bar on a terminal, a `PlainProgress` elsewhere (both on stderr unless `stream`), or a silent bar when
    not `enabled`. The result takes `update(n)`, `set_postfix_str(text, refresh=False)`, `close()` and `with`."""
    out = stream or sys.stderr
    if enabled and not is_terminal(out):
        return PlainProgress(total, desc, unit, initial, every_n_seconds, out)
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=not enabled, dynamic_ncols=True,
                file=out)


# Lines Lightning prints on every run that ask nothing of the user, matched on their own text (Lightning 2.4-2.6):
# which accelerators exist (`GPU available: False, used: False`; a GPU left unused is still a warning), that a batch
# limit of 1.0 uses every batch, that a learning-rate schedule over the whole run reads the train loader's length,
# and its advertisements for its cloud packages.
LIGHTNING_INFO_NOISE = (
    re.compile(r"(GPU|TPU|HPU) available: "),
    re.compile(r"`Trainer\(limit_(train|val|test|predict)_batches=1\.0\)` was configured so 100% of the batches"),
    re.compile(r"Loading `train_dataloader` to estimate number of stepping batches\."),
    re.compile(r".*\[lit(logger|models)\]\(https://pypi\.org/project/lit(logger|models)/?\)"),
)
# Warnings about Lightning's and torch's own code, or wrong about pdebench's runs: the `srun` hint (SLURM's tools are
# installed, but pdebench runs on SLURM through submitit, which starts each job under srun), torch's deprecation of the
# `LeafSpec` check that Lightning's result collection makes on every logged value, and the claim that epochs shorter
# than `log_every_n_steps` log nothing (Lightning counts logged steps over the whole run, so the metrics still get a
# row every `log_every_n_steps` steps).
WARNING_NOISE = (
    (r"The `srun` command is available on your system but is not used", UserWarning),
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning),
    (r"The number of training batches \(\d+\) is smaller than the logging interval Trainer\(log_every_n_steps=",
     UserWarning),
)
LIGHTNING_RANK_ZERO_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


class _DropLines(logging.Filter):
    """Drops the log records whose message matches one of `patterns` (from the start)."""

    def __init__(self, patterns: tuple[re.Pattern[str], ...]) -> None:
        super().__init__()
        self.patterns = patterns

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(pattern.match(message) for pattern in self.patterns)


def quiet_third_party() -> None:
    """Silence, by their exact text, the lines Lightning and torch print that ask nothing of the user
    (`LIGHTNING_INFO_NOISE`, `WARNING_NOISE`), and print each remaining Lightning message once. Idempotent.

    Lightning's `lightning` logger has its own stderr handler and also passes every record on to the root logger,
    so once an application configures logging (Hydra does) each message appears twice; here it stops at Lightning's
    handler. Every other warning and log line is left as it was.
    """
    for name in LIGHTNING_RANK_ZERO_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropLines) for f in logger.filters):
            logger.addFilter(_DropLines(LIGHTNING_INFO_NOISE))
    for message, category in WARNING_NOISE:
        warnings.filterwarnings("ignore", message=message, category=category)
    lightning = logging.getLogger("lightning")
    if lightning.handlers:
        lightning.propagate = False
