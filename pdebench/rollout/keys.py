"""Metric keys: the names under which a result file stores its summary values, intervals and per-step curves.

One pair of functions owns their spelling: :func:`format_key` writes a key from a typed :class:`MetricKey` and
:func:`parse_key` reads one back. The evaluator writes summary keys with the first, the leaderboard and the
result-file checks read them with the second; no other code builds or splits a key with string operations.

The kinds of key (`docs/metrics.md`):

* a threshold time: ``corr_time_0.8``, ``corr_time_median_0.95`` (name, correlation threshold in ``%g`` form);
* a step-window mean: ``nrmse_steps_2-5``, ``vrmse_steps_1`` (name, 1-based inclusive steps; one step alone is
  written once);
* a wavenumber band: ``spectral_rmse_low``, per-step band energies ``mse_mid`` (name, band);
* a one-step value: ``one_step_nrmse``, ``one_step_spectral_rmse_high`` (the prefix ``one_step_`` before a plain or
  band key);
* anything else is a plain key (``vrmse_mean``, ``nrmse_gmean``, ``time_ceiling``, ``corr``, ...).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

THRESHOLD_NAMES = ("corr_time", "corr_time_median")
"""Names whose keys carry a correlation threshold."""

BANDS = ("low", "mid", "high")
"""Wavenumber bands of the spectral error keys (`pdebench.rollout.spectra`)."""

ONE_STEP = "one_step_"
"""Prefix of a key that holds the value at the first predicted step."""

CEILINGS = {"corr_time": "time_ceiling", "corr_time_median": "time_ceiling_median",
            "stable_horizon_median": "time_ceiling_median"}
"""Name of a time metric -> the summary key of its ceiling (the rollout length it cannot exceed)."""

_NUMBER = r"[0-9]+(?:\.[0-9]*)?(?:e[-+]?[0-9]+)?"
_THRESHOLD = re.compile(rf"({'|'.join(THRESHOLD_NAMES)})_({_NUMBER})")
_WINDOW = re.compile(r"(.+?)_steps_([0-9]+)(?:-([0-9]+))?")
_BAND = re.compile(rf"(.+)_({'|'.join(BANDS)})")


@dataclass(frozen=True)
class MetricKey:
    """One metric key, typed.

    name: the metric or statistic (``corr_time``, ``nrmse``, ``spectral_rmse``, ``vrmse_mean``, ...).
    threshold: correlation threshold of a threshold time (a finite number, in (0, 1) as the config sets it), else
        None.
    window: ``(first, last)`` 1-based inclusive model steps of a window mean, else None.
    band: wavenumber band (one of :data:`BANDS`) of a band key, else None.
    one_step: the value at the first predicted step (``one_step_`` prefix).
    At most one of threshold, window and band is set; a one-step key has no threshold or window.
    """

    name: str
    threshold: float | None = None
    window: tuple[int, int] | None = None
    band: str | None = None
    one_step: bool = False

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.threshold, self.window, self.band)) > 1:
            raise ValueError(f"a metric key has at most one of threshold, window and band: {self!r}")
        if self.one_step and (self.threshold is not None or self.window is not None):
            raise ValueError(f"a one-step key has no threshold or window: {self!r}")
        if self.band is not None and self.band not in BANDS:
            raise ValueError(f"band must be one of {BANDS}, got {self.band!r}")
        if self.window is not None and not 1 <= self.window[0] <= self.window[1]:
            raise ValueError(f"window must be (first, last) with 1 <= first <= last, got {self.window!r}")
        if self.threshold is not None and self.name not in THRESHOLD_NAMES:
            raise ValueError(f"only {THRESHOLD_NAMES} carry a threshold, not {self.name!r}")

    @property
    def ceiling(self) -> str | None:
        """The summary key of this time metric's ceiling (`time_ceiling`, `time_ceiling_median`); None for others."""
        return None if self.one_step or self.window is not None else CEILINGS.get(self.name)


def threshold_key(threshold: float) -> str:
    """The threshold part of a key: 0.8 -> "0.8", 0.95 -> "0.95" (``%g``, so 0.80 and 0.8 give one key)."""
    return f"{float(threshold):g}"


def window_key(window: Sequence[int]) -> str:
    """The window part of a key: (1, 1) -> "1", (2, 5) -> "2-5"."""
    first, last = int(window[0]), int(window[1])
    return f"{first}" if first == last else f"{first}-{last}"


def format_key(key: MetricKey) -> str:
    """The key as a result file stores it: ``corr_time_0.8``, ``nrmse_steps_2-5``, ``one_step_spectral_rmse_low``."""
    if key.threshold is not None:
        text = f"{key.name}_{threshold_key(key.threshold)}"
    elif key.window is not None:
        text = f"{key.name}_steps_{window_key(key.window)}"
    elif key.band is not None:
        text = f"{key.name}_{key.band}"
    else:
        text = key.name
    return ONE_STEP + text if key.one_step else text


def parse_key(text: str) -> MetricKey:
    """The typed form of a key :func:`format_key` writes; any other text is a plain key named `text`.

    A threshold that is not a finite number (``corr_time_1e999``) leaves the key plain, as does a window whose first
    step is 0 or after its last. Thresholds outside (0, 1) parse (the config refuses them, a key need not).
    """
    one_step = text.startswith(ONE_STEP) and len(text) > len(ONE_STEP)
    rest = text.removeprefix(ONE_STEP) if one_step else text
    if not one_step and (m := _THRESHOLD.fullmatch(rest)):
        threshold = float(m.group(2))
        if math.isfinite(threshold):
            return MetricKey(m.group(1), threshold=threshold)
    if not one_step and (m := _WINDOW.fullmatch(rest)):
        first, last = int(m.group(2)), int(m.group(3) or m.group(2))
        if 1 <= first <= last:
            return MetricKey(m.group(1), window=(first, last))
    if m := _BAND.fullmatch(rest):
        return MetricKey(m.group(1), band=m.group(2), one_step=one_step)
    return MetricKey(rest, one_step=one_step)
