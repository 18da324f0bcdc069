"""What a result file may hold, checked whenever one is read (`pdebench.rollout.results.read_result`).

A result file is untrusted input: the leaderboard ranks its numbers, draws its sample and prints its names. So names
follow the one rule of `pdebench.data.names`, and every value is typed and within what its metric allows: a
`corr_time_0.8` of 1e308 against a ceiling of 8.43 is refused, not ranked first; a sample or spectra of the wrong
shape is refused, not a crash in the middle of plotting.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from pdebench.config.checks import is_whole_number
from pdebench.data.names import UnsafeNameError, check_name, check_seed, shown
from pdebench.errors import UserError
from pdebench.rollout.keys import MetricKey, parse_key


class ResultError(UserError, ValueError):
    """A result file is unreadable, not valid JSON, of another format, missing a required key, or holding a name,
    type or value that no evaluation writes (see :func:`read_result`)."""


_LARGEST_FLOAT_INT = int(sys.float_info.max)
_HEX = re.compile(r"[0-9a-fA-F]{1,128}")


@dataclass(frozen=True)
class Allowed:
    """The values a metric may take: `low`..`high` (`low_open`: `low` itself excluded), whole numbers only where
    `integer`; `ceiling` names the summary key whose value is the upper bound instead of `high` (a time metric
    cannot exceed the rollout length). Bounds are checked with a relative tolerance of 1e-9 (float rounding)."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    integer: bool = False
    ceiling: str | None = None

    def bounds(self, summary: Mapping[str, Any]) -> tuple[float, float]:
        """(low, high), `high` read from `summary[ceiling]` where that is a finite number."""
        if self.ceiling is None:
            return self.low, self.high
        ceiling = summary.get(self.ceiling)
        usable = _json_number(ceiling) and abs(ceiling) <= _LARGEST_FLOAT_INT  # finite, and within float range
        return self.low, ceiling if usable else self.high

    def admits(self, value: float, low: float, high: float) -> bool:
        above_low = value > low if self.low_open else value >= low - 1e-9 * max(1.0, abs(low))
        return above_low and value <= high + 1e-9 * max(1.0, abs(high))

    def text(self, low: float, high: float) -> str:
        """`[0, 8.43] (0 to the summary's 'time_ceiling')`, `(0, inf)`, `[-1, 1]`."""
        shown_range = f"{'(' if self.low_open else '['}{low!r}, {high!r}{']' if math.isfinite(high) else ')'}"
        return shown_range + (f" ({low!r} to the summary's {self.ceiling!r})" if self.ceiling else "")


_NON_NEGATIVE = Allowed(0)
_COUNT = Allowed(1, integer=True)
_ERROR_NAMES = ("mse", "rmse", "nrmse", "vrmse")
_NON_NEGATIVE_SUMMARIES = ("time_ceiling", "time_ceiling_median", "crps_mean", "spread_skill_ratio")
_NON_NEGATIVE_CURVES = ("time", "drift", "crps", "spread2", "ens_mse", "spread_skill")


def _is_error(name: str) -> bool:
    """An error statistic: mse, rmse, nrmse, vrmse and what reduces them (`nrmse_gmean`, `vrmse_mean`), spectral
    errors (the name of a parsed key, `pdebench.rollout.keys`)."""
    return name.split("_")[0] in _ERROR_NAMES or name == "spectral_rmse" or name.startswith("spectral_rmse_")


def summary_range(key: str) -> Allowed:
    """What a summary value (or an interval end) under `key` may hold (docs/metrics.md, `pdebench.rollout.reductions`):
    times within [0, their ceiling], counts whole and >= 1, `stable_fraction` in [0, 1], errors, drifts, CRPS,
    spread-skill and ceilings >= 0; a key the suite does not know may hold any number (a PDE's own headline metric
    may be negative). Keys are read with `pdebench.rollout.keys.parse_key`."""
    metric = parse_key(key)
    name = metric.name
    if metric.ceiling is not None:
        return Allowed(0, ceiling=metric.ceiling)
    if metric == MetricKey("stable_fraction"):
        return Allowed(0, 1)
    if metric in (MetricKey("nrmse_gmean_steps"), MetricKey("n_members")):
        return _COUNT
    if _is_error(name) or name.startswith("conservation_drift_") or (
            not metric.one_step and name in _NON_NEGATIVE_SUMMARIES):
        return _NON_NEGATIVE
    return Allowed()


def curve_range(key: str) -> Allowed:
    """What a per-step curve under `key` may hold: step numbers whole and >= 0, correlations in [-1, 1], errors,
    times, drifts, CRPS and spreads >= 0; any number for a curve the suite does not know."""
    metric = parse_key(key)
    if metric == MetricKey("step"):
        return Allowed(0, integer=True)
    if metric == MetricKey("corr"):
        return Allowed(-1, 1)
    if _is_error(metric.name) or metric in {MetricKey(name) for name in _NON_NEGATIVE_CURVES}:
        return _NON_NEGATIVE
    return Allowed()


TOP_LEVEL_RANGES = {"n_parameters": Allowed(0, integer=True), "train_time_s": _NON_NEGATIVE,
                    "throughput_traj_steps_per_s": Allowed(0, low_open=True)}
"""Top-level numbers the leaderboard ranks or divides by (a throughput of 0 would divide by zero)."""

NAME_KEYS = ("label", "model", "dataset", "pde")
"""Result keys that must be names (`pdebench.data.names`): they become file names, table rows and plot labels."""


def _fail(path: Path, text: str) -> ResultError:
    return ResultError(f"Result file {path} {text}.")


def _json_number(value: Any) -> bool:
    """A number as JSON reads one: a whole number (not a bool) or any float. Unlike
    `pdebench.config.checks.is_finite_number`, a non-finite float counts (a literal like 1e999 reads as inf, which a
    result may hold and which reads as "not finite")."""
    return is_whole_number(value) or isinstance(value, float)


def _check_number(value: Any, where: str, allowed: Allowed, path: Path, summary: Mapping[str, Any]) -> None:
    """`value` is null or a number `allowed` admits (non-finite floats, read as "not finite", pass)."""
    if value is None:
        return
    if not _json_number(value):
        raise _fail(path, f"has {where} = {shown(value)}, not a number or null")
    if isinstance(value, int) and abs(value) > _LARGEST_FLOAT_INT:
        raise _fail(path, f"has {where} = {shown(value)}, an integer too large for a float")
    if allowed.integer and not isinstance(value, int):
        raise _fail(path, f"has {where} = {shown(value)}, not a whole number")
    low, high = allowed.bounds(summary)
    if math.isfinite(value) and not allowed.admits(value, low, high):
        raise _fail(path, f"has {where} = {shown(value)}, outside its allowed range {allowed.text(low, high)}")


def _numbers(values: Any, where: str, allowed: Allowed, path: Path) -> list:
    """`values`, a JSON list of numbers (or nulls) `allowed` admits."""
    if not isinstance(values, list):
        raise _fail(path, f"has {where} = {shown(values)}, not a list of numbers")
    for i, value in enumerate(values):
        _check_number(value, f"{where} item {i}", replace(allowed, ceiling=None), path, {})
    return values


def _array(value: Any, ndims: tuple[int, ...]) -> np.ndarray | None:
    """`value` as an object array if it is a rectangular, non-empty array of numbers or nulls of one of `ndims`."""
    try:
        array = np.array(value, dtype=object)
    except (ValueError, TypeError, RecursionError):
        return None
    if array.ndim not in ndims or 0 in array.shape:
        return None
    fits = all(v is None or (_json_number(v) and abs(v) <= _LARGEST_FLOAT_INT) for v in array.flat)
    return array if fits else None


def _object(result: dict, key: str, path: Path) -> dict:
    """`result[key]`, a JSON object or absent/null (then `{}`)."""
    value = result.get(key)
    if value is not None and not isinstance(value, dict):
        raise _fail(path, f"has key {key!r} that is not a JSON object")
    return value or {}


def _check_names(result: dict, path: Path) -> None:
    source = f"result file {path}"
    try:
        for key in NAME_KEYS:
            check_name(result[key], key, source)
        check_seed(result["seed"], "seed", source)
    except UnsafeNameError as error:
        raise ResultError(str(error)) from None


def _check_benchmark(result: dict, path: Path) -> None:
    """The headline metric is a name (it becomes a column header); its goal min or max. A result whose summary lacks
    it (evaluated with other thresholds) is valid: the leaderboard leaves it out of that table with a warning."""
    benchmark = _object(result, "benchmark", path)
    headline, goal = benchmark.get("headline"), benchmark.get("headline_goal")
    if goal not in (None, "min", "max"):
        raise _fail(path, f"has benchmark.headline_goal = {shown(goal)}, expected 'min' or 'max'")
    if headline in (None, ""):
        return
    try:
        check_name(headline, "benchmark.headline", f"result file {path}")
    except UnsafeNameError as error:
        raise ResultError(str(error)) from None


def _check_provenance(result: dict, path: Path) -> None:
    """The manifest hash (whose start names a table) is hexadecimal; the objects the leaderboard reads are objects."""
    manifest = result.get("manifest_sha256")
    if manifest is not None and not (isinstance(manifest, str) and _HEX.fullmatch(manifest)):
        raise _fail(path, f"has 'manifest_sha256' = {shown(manifest)}, not a hexadecimal hash")
    _object(result, "objective", path)
    setting = _object(result, "solver_setting", path)
    if "time_step_factor" in setting:
        factor = setting["time_step_factor"]
        if not _json_number(factor):
            raise _fail(path, f"has solver_setting 'time_step_factor' = {shown(factor)}, not a number")
        _check_number(factor, "solver_setting 'time_step_factor'", Allowed(0, low_open=True), path, {})


RECIPE_TEXT_LIMIT = 200
"""Longest text of a recipe deviation or a tuning entry (the leaderboard shows them in one cell)."""


def _short_text(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= RECIPE_TEXT_LIMIT


def _check_recipe(result: dict, path: Path) -> None:
    """The recipe the leaderboard shows from the run record (`pdebench.config.recipes.recipe_record`): `run.recipe`,
    the recipe's name (a short text, or null); `run.deviations`, a list of short texts (how the row's training departs
    from its dataset's recipe); `run.tuning`, a short text ("untuned") or an object of setting name -> number or
    short text (the tuned values). Each may be absent; rendering escapes them."""
    run = _object(result, "run", path)
    recipe = run.get("recipe")
    if recipe is not None and not _short_text(recipe):
        raise _fail(path, f"has run 'recipe' = {shown(recipe)}, not a text of 1 to {RECIPE_TEXT_LIMIT} characters")
    deviations = run.get("deviations")
    if deviations is not None and not (isinstance(deviations, list) and all(map(_short_text, deviations))):
        raise _fail(path, f"has run 'deviations' = {shown(deviations)}, not a list of texts of 1 to "
                          f"{RECIPE_TEXT_LIMIT} characters")
    tuning = run.get("tuning")
    if tuning is None or _short_text(tuning):
        return
    entries = tuning.items() if isinstance(tuning, dict) else None
    if entries is None or not all(_short_text(k) and (_short_text(v) or (_json_number(v) and not isinstance(v, bool)))
                                  for k, v in entries):
        raise _fail(path, f"has run 'tuning' = {shown(tuning)}, not a text or an object of setting -> number or text "
                          f"(texts of 1 to {RECIPE_TEXT_LIMIT} characters)")


def _check_metrics(result: dict, path: Path) -> None:
    """Top-level numbers, summary values, intervals and curves: typed, and within what each metric allows."""
    summary = result["summary"]
    for key, allowed in TOP_LEVEL_RANGES.items():
        _check_number(result.get(key), repr(key), allowed, path, summary)
    for key, value in summary.items():
        _check_number(value, f"summary {key!r}", summary_range(key), path, summary)
    for key, interval in _object(result, "intervals", path).items():
        _check_interval(interval, key, path)
    for key, values in result["curves"].items():
        _numbers(values, f"curves {key!r}", curve_range(key), path)


def _check_interval(interval: Any, key: str, path: Path) -> None:
    """A bootstrap interval is null or [low, high], each end null or a number in the metric's range (its ceiling
    aside: a resample's rollout length differs), low <= high."""
    where = f"intervals {key!r}"
    if interval is None:
        return
    if not isinstance(interval, list) or len(interval) != 2:
        raise _fail(path, f"has {where} = {shown(interval)}, not a [low, high] pair or null")
    _numbers(interval, where, summary_range(key), path)
    low, high = interval
    if low is not None and high is not None and low > high:
        raise _fail(path, f"has {where} = {shown(interval)}, whose low end is above its high end")


def _check_sample(result: dict, path: Path) -> None:
    """`sample` (drawn by the leaderboard): `true` and `pred` arrays [T, x] or [T, y, x] of one shape, `time` T
    numbers, `field` text."""
    sample = result.get("sample")
    if sample is None:
        return
    if not isinstance(sample, dict):
        raise _fail(path, "has key 'sample' that is not a JSON object or null")
    arrays = {key: _array(sample.get(key), (2, 3)) for key in ("true", "pred")}
    for key, array in arrays.items():
        if array is None:
            raise _fail(path, f"has sample {key!r} that is not a [T, x] or [T, y, x] array of numbers")
    if arrays["true"].shape != arrays["pred"].shape:
        raise _fail(path, f"has sample 'pred' of shape {arrays['pred'].shape} and 'true' of shape "
                          f"{arrays['true'].shape}; they must match")
    if sample.get("time") is not None:
        frames = arrays["true"].shape[0]
        if len(_numbers(sample["time"], "sample 'time'", Allowed(), path)) != frames:
            raise _fail(path, f"has sample 'time' of {len(sample['time'])} values for {frames} frames")
    if not isinstance(sample.get("field") or "", str):
        raise _fail(path, f"has sample 'field' = {shown(sample['field'])}, not text")
    _check_sample_axes(sample.get("axes"), arrays["true"].shape[1:], path)


def _check_sample_axes(axes: Any, shape: tuple[int, ...], path: Path) -> None:
    """`sample.axes` (optional; older files lack it): one `{"name": text, "units": text, "values": [n_i] numbers}`
    per spatial axis of the sample's arrays, `values` as long as that axis."""
    if axes is None:
        return
    if not isinstance(axes, list) or len(axes) != len(shape):
        raise _fail(path, f"has sample 'axes' = {shown(axes)}, not a list of {len(shape)} axis records (one per "
                          "spatial axis of 'true')")
    for i, (axis, size) in enumerate(zip(axes, shape, strict=True)):
        if not isinstance(axis, dict) or not isinstance(axis.get("name"), str) \
                or not isinstance(axis.get("units", ""), str):
            raise _fail(path, f"has sample 'axes'[{i}] = {shown(axis)}, not {{\"name\": text, \"units\": text, "
                              "\"values\": [numbers]}")
        if len(_numbers(axis.get("values"), f"sample 'axes'[{i}] 'values'", Allowed(), path)) != size:
            raise _fail(path, f"has sample 'axes'[{i}] 'values' of {len(axis['values'])} numbers for an axis of "
                              f"{size} points")


def _check_spectra(result: dict, path: Path) -> None:
    """`spectra` (plotted): `steps` whole numbers, `shell` K numbers, `pred`/`true` [steps, channels, K] arrays."""
    spectra = result.get("spectra")
    if spectra is None:
        return
    if not isinstance(spectra, dict):
        raise _fail(path, "has key 'spectra' that is not a JSON object or null")
    steps = spectra.get("steps")
    if steps is not None and not (isinstance(steps, list) and all(is_whole_number(s) for s in steps)):
        raise _fail(path, f"has spectra 'steps' = {shown(steps)}, not a list of whole numbers")
    for key in ("shell", "band_edges"):
        if spectra.get(key) is not None:
            _numbers(spectra[key], f"spectra {key!r}", Allowed(), path)
    if not isinstance(spectra.get("shell_unit") or "", str):
        raise _fail(path, f"has spectra 'shell_unit' = {shown(spectra['shell_unit'])}, not text")
    shells = "shells" if spectra.get("shell") is None else f"{len(spectra['shell'])} shells"
    for key in ("pred", "true"):
        if spectra.get(key) is not None:
            array = _array(spectra[key], (3,))
            if array is None or (spectra.get("shell") is not None and array.shape[2] != len(spectra["shell"])):
                raise _fail(path, f"has spectra {key!r} that is not a [steps, channels, {shells}] array of numbers")


def check_content(result: dict, path: Path) -> dict:
    """What the leaderboard (and anyone plotting a result) relies on, checked when a file is read: names by the
    one rule of `pdebench.data.names`, every value typed and within what its metric allows (so a corr_time of
    1e308 is refused, not ranked first), the sample and spectra shaped as the plots need."""
    _check_names(result, path)
    _check_benchmark(result, path)
    _check_provenance(result, path)
    _check_recipe(result, path)
    _check_metrics(result, path)
    _check_spectra(result, path)
    _check_sample(result, path)
    return result
