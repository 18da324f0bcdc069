"""Reductions of per-step rollout scores over steps and trajectories: the headline numbers, per-step curves and
bootstrap intervals of a rollout, in numpy float64.

Conventions used throughout (docs/metrics.md states each with the reference it follows):

* The inputs are per-step metrics of `pdebench.rollout.step_metrics` stacked by the caller: ``[n_traj, n_steps, C]``
  per metric. Channels are averaged first (each channel scored on its own), then trajectories and steps.
* Step index 0 is the FIRST PREDICTED frame (one model step after the last input frame), never an input frame.
  Step ``k`` (0-based) therefore lies ``(k + 1) * step_time`` time units after the last input frame, and a
  trajectory that stays good for ``n`` steps covers ``n * step_time``.
* A non-finite correlation counts as 0 and a NaN error as ``inf`` (a failed prediction).
* Two high-correlation times: PDE-Refiner's count of steps above the threshold anywhere in the rollout
  (:func:`high_correlation_time`, the ``corr_time_<t>`` keys) and the median over trajectories of the time before
  the first step at or below it (:func:`first_crossing_time_median`, ``corr_time_median_<t>``).
* A step window names exactly the steps it averages: a window is cut at the rollout's end (``13-30`` on a 23-step
  rollout is ``13-23``), one that starts after the end has no key, and ``windows=None`` derives the windows from the
  rollout length as The Well does (:func:`well_windows`).
* The summary returned by :func:`summarize_rollout` is JSON-serialisable: every value is a Python ``float``/``int``
  or ``None``. ``None`` means "undefined or not finite", e.g. the mean error of a rollout where some trajectory
  diverged (an ``inf`` error) - there is no finite number to report.
* The settings of a summary (correlation thresholds, geometric-mean steps, step windows, bootstrap resamples) are
  always given by the caller: their defaults live in the config schemas (`RolloutConfig`, `BenchmarkConfig`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

from pdebench.rollout.keys import MetricKey, format_key, parse_key
from pdebench.rollout.keys import threshold_key as threshold_key  # the command line's summary line imports it here

CURVE_METRICS = ("mse", "nrmse", "vrmse", "corr")
"""Per-step metrics that :func:`summarize_rollout` requires (``rmse`` is optional)."""

BAND_METRICS = ("mse_low", "mse_mid", "mse_high")
"""Per-step error energy in the low / mid / high wavenumber bands (see `pdebench.rollout.spectra`)."""

NOT_BOOTSTRAPPED = ("nrmse_gmean_steps", "time_ceiling", "time_ceiling_median", "n_members")
"""Summary keys that are settings or ceilings, not estimates: they get no interval."""

MAX_OVER_STEPS = {"conservation_drift_max": "drift"}
"""Summary keys that are a maximum over steps of a trajectory-mean curve -> that per-step metric. Their interval is
a simultaneous band over steps (see :func:`bootstrap_intervals`), not a percentile interval."""

INTERVAL_LEVEL = 0.95
"""Coverage of the bootstrap intervals a result file records (its `interval_method.level`)."""

MIN_INTERVAL_TRAJECTORIES = 5
"""The fewest test trajectories a bootstrap interval is given for: one trajectory has a single resample (a
zero-width interval), two have three distinct ones; five have 126."""

WELL_INTERVALS = 5
"""The number of step windows The Well splits a rollout into (its trainer's `num_time_intervals` default)."""


class FewTrajectoriesWarning(UserWarning):
    """Too few test trajectories for a bootstrap interval: every interval is null."""


def spread_skill_ratio(spread2: np.ndarray, ens_mse: np.ndarray, n_members: int) -> np.ndarray:
    """``sqrt((M + 1) / M * mean spread2 / mean ens_mse)`` along axis 0 (trajectories); 1 for a consistent ensemble.

    The factor (M + 1) / M corrects for the finite ensemble: the ensemble mean of M draws from the true
    distribution misses the truth by (1 + 1/M) times the true variance on average.
    """
    s2 = np.asarray(spread2, dtype=np.float64).mean(axis=0)
    e2 = np.asarray(ens_mse, dtype=np.float64).mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((n_members + 1) / n_members * s2 / e2)


def stable_steps(unstable_flags: np.ndarray) -> np.ndarray:
    """Number of steps before the first unstable one.

    Args:
        unstable_flags: ``[n_traj, n_steps]`` bool, True where the prediction of that step is unstable.

    Returns:
        ``[n_traj]`` int64: index of the first unstable step, ``n_steps`` if never unstable.
    """
    flags = np.asarray(unstable_flags, dtype=bool)
    if flags.ndim != 2:
        raise ValueError(f"unstable_flags must be [n_traj, n_steps], got shape {flags.shape}")
    n_steps = flags.shape[1]
    first = np.argmax(flags, axis=1)
    return np.where(flags.any(axis=1), first, n_steps).astype(np.int64)


def _step_time_per_traj(step_time: np.ndarray | float, n_traj: int) -> np.ndarray:
    st = np.asarray(step_time, dtype=np.float64)
    if st.ndim == 0:
        return np.full(n_traj, float(st))
    st = st.reshape(-1)
    if st.shape[0] != n_traj:
        raise ValueError(f"step_time must be a scalar or one value per trajectory ({n_traj}), got {st.shape}")
    return st


def _clean_corr(corr: np.ndarray) -> np.ndarray:
    c = np.asarray(corr, dtype=np.float64)
    return np.where(np.isfinite(c), c, 0.0)


def _corr_matrix(corr: np.ndarray) -> np.ndarray:
    """`corr` as a non-empty ``[n_traj, n_steps]`` float64 array with non-finite values set to 0."""
    c = _clean_corr(corr)
    if c.ndim != 2 or c.shape[0] == 0 or c.shape[1] == 0:
        raise ValueError(f"corr must be a non-empty [n_traj, n_steps] array, got shape {c.shape}")
    return c


def high_correlation_time(corr: np.ndarray, threshold: float, step_time: np.ndarray | float) -> float:
    """PDE-Refiner's high-correlation time (the headline convention), in time units.

    The number of steps whose trajectory-averaged correlation is ``> threshold`` ANYWHERE in the rollout (not
    necessarily consecutive: a curve that dips below and recovers counts the steps after the dip), times the mean
    step time. This is what PDE-Refiner's code logs (`pdearena/models/pderefiner.py`:
    ``(corr_timesteps > threshold).float().sum()`` over the batch-mean correlation per step), and what its KS tables
    report once multiplied by the model step.

    Args:
        corr: ``[n_traj, n_steps]`` correlation per step (already averaged over channels); step 0 is the first
            predicted frame. Non-finite values count as 0.
        threshold: correlation threshold (e.g. 0.8).
        step_time: ``[n_traj]`` (or scalar) time units per model step.
    """
    c = _corr_matrix(corr)
    st = _step_time_per_traj(step_time, c.shape[0])
    return float(np.count_nonzero(c.mean(axis=0) > threshold)) * float(st.mean())


def first_crossing_time_median(corr: np.ndarray, threshold: float, step_time: np.ndarray | float) -> float:
    """The median over trajectories of the time before a trajectory's first step with correlation ``<= threshold``,
    in time units: consecutive steps above the threshold from the start, times that trajectory's step time
    (``n_steps * step_time`` if it never drops). A dip ends the count even if the correlation recovers.

    Args are those of :func:`high_correlation_time`.
    """
    c = _corr_matrix(corr)
    n_traj, n_steps = c.shape
    st = _step_time_per_traj(step_time, n_traj)
    below = c <= threshold
    first = np.where(below.any(axis=1), np.argmax(below, axis=1), n_steps)
    return float(np.median(first * st))


def geometric_mean_over_steps(curve: np.ndarray, n_steps: int) -> float:
    """APEBench-style aggregate: ``exp(mean(log(curve[:n_steps])))``.

    Args:
        curve: ``[steps]`` per-step error curve, already averaged over trajectories (and channels).
        n_steps: number of leading steps to aggregate (clipped to the curve length, must be >= 1).

    Returns:
        The geometric mean. Zeros are floored at the smallest positive float64 so the log stays
        finite; an ``inf`` or NaN entry makes the result ``inf`` (a diverged rollout).
    """
    c = np.asarray(curve, dtype=np.float64).reshape(-1)[: int(n_steps)]
    if c.size == 0:
        raise ValueError("geometric_mean_over_steps needs at least one step")
    if not np.isfinite(c).all():
        return math.inf
    c = np.maximum(c, np.finfo(np.float64).tiny)
    return float(np.exp(np.mean(np.log(c))))


def well_windows(n_steps: int, n_intervals: int = WELL_INTERVALS) -> list[tuple[int, int]]:
    """The step windows The Well reports for a rollout of `n_steps` steps, as 1-based inclusive `(first, last)`.

    The Well's trainer (`the_well/benchmark/trainer/training.py`, `split_up_losses`) places
    ``min(n_steps, n_intervals)`` points evenly in ``[0, log n_steps]`` and cuts the rollout at ``[0] + [int(exp(x))
    for x in those points]``, averaging each slice ``[start, end)``: 30 steps give 1, 2, 3-5, 6-12, 13-30. Two
    departures, both where its rule averages nothing or drops a step: an empty slice (``1:1`` on short rollouts) makes
    no window, and the last window ends at ``n_steps`` (``int(exp(log n))`` rounds to ``n - 1`` for many ``n``, e.g.
    5, 7 and 640, which would leave the last step out of every window).
    """
    n_steps = int(n_steps)
    if n_steps < 1:
        raise ValueError(f"a rollout has at least one step, got n_steps={n_steps}")
    points = np.linspace(0.0, math.log(n_steps), min(n_steps, int(n_intervals)))
    edges = [0] + [int(np.exp(x)) for x in points[:-1]] + [n_steps]
    return [(start + 1, end) for start, end in zip(edges[:-1], edges[1:], strict=True) if end > start]


def rollout_windows(windows: Sequence[Sequence[int]] | None, n_steps: int) -> list[tuple[int, int]]:
    """The steps each window averages on a rollout of `n_steps` steps, 1-based inclusive `(first, last)`.

    None: The Well's windows (:func:`well_windows`). Otherwise each given window is cut at the rollout's end, one
    that starts after it is dropped, and a window equal to an earlier one after the cut is dropped; so a key named
    from these steps says exactly which steps it averages.
    """
    if windows is None:
        return well_windows(n_steps)
    out: list[tuple[int, int]] = []
    for window in windows:
        first, last = int(window[0]), min(int(window[1]), int(n_steps))
        if first <= last and (first, last) not in out:
            out.append((first, last))
    return out


def _finite_or_none(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _curve(values: np.ndarray) -> list[float | int | None]:
    return [_finite_or_none(v) for v in values]


def _reduce(
    traj: dict[str, np.ndarray], stable: np.ndarray, st: np.ndarray, thresholds: Sequence[float], n_gmean: int,
    windows: Sequence[tuple[int, int]], n_members: int, idx: np.ndarray | None,
) -> dict[str, float | int | None]:
    """Headline numbers of the trajectories `idx` (None: all; repeats allowed, as in a bootstrap resample).

    traj: metric -> `[n_traj, n_steps]` (channel means); stable: `[n_traj]` stable steps; st: `[n_traj]` step times;
    windows: the steps each window averages (:func:`rollout_windows`).
    """
    if idx is not None:
        traj = {name: a[idx] for name, a in traj.items()}
        stable, st = stable[idx], st[idx]
    n_steps = next(iter(traj.values())).shape[1]
    curve = {name: a.mean(axis=0) for name, a in traj.items()}
    summary: dict[str, float | int | None] = {}
    for t in thresholds:
        summary[format_key(MetricKey("corr_time", threshold=t))] = _finite_or_none(
            high_correlation_time(traj["corr"], t, st))
        summary[format_key(MetricKey("corr_time_median", threshold=t))] = _finite_or_none(
            first_crossing_time_median(traj["corr"], t, st))
    summary["time_ceiling"] = float(n_steps * st.mean())
    summary["time_ceiling_median"] = float(np.median(n_steps * st))
    for name in ("nrmse", "mse", "vrmse"):
        summary[format_key(MetricKey(name, one_step=True))] = _finite_or_none(curve[name][0])
    summary["nrmse_gmean"] = _finite_or_none(geometric_mean_over_steps(curve["nrmse"], n_gmean))
    summary["nrmse_gmean_steps"] = n_gmean
    summary["vrmse_mean"] = _finite_or_none(curve["vrmse"].mean())
    for first, last in windows:
        for name in ("nrmse", "vrmse"):
            part = curve[name][first - 1 : last]
            summary[format_key(MetricKey(name, window=(first, last)))] = _finite_or_none(part.mean())
    if all(name in curve for name in BAND_METRICS):
        for name in BAND_METRICS:
            band = parse_key(name).band
            summary[format_key(MetricKey("spectral_rmse", band=band, one_step=True))] = _finite_or_none(
                math.sqrt(curve[name][0]))
            summary[format_key(MetricKey("spectral_rmse", band=band))] = _finite_or_none(
                math.sqrt(curve[name][:n_gmean].mean()))
    if "drift" in curve:
        summary["conservation_drift_final"] = _finite_or_none(curve["drift"][-1])
        summary["conservation_drift_max"] = _finite_or_none(curve["drift"].max())
    summary["stable_horizon_median"] = _finite_or_none(np.median(stable * st))
    summary["stable_fraction"] = float((stable == n_steps).mean())
    if n_members > 1 and "crps" in curve:
        summary["n_members"] = int(n_members)
        summary["crps_mean"] = _finite_or_none(curve["crps"][:n_gmean].mean())
        summary["spread_skill_ratio"] = _finite_or_none(float(spread_skill_ratio(
            traj["spread2"][:, :n_gmean].mean(axis=1), traj["ens_mse"][:, :n_gmean].mean(axis=1), n_members)))
    return summary


def _prepare(
    per_step: dict[str, np.ndarray], unstable_flags: np.ndarray, step_time: np.ndarray | float
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Check shapes; channel means `[n_traj, n_steps]` per metric (NaN errors -> inf, bad corr -> 0), flags, st."""
    missing = [name for name in CURVE_METRICS if name not in per_step]
    if missing:
        raise ValueError(f"per_step is missing metric(s) {missing}; it must contain {list(CURVE_METRICS)}")
    traj: dict[str, np.ndarray] = {}
    # every metric has the shape of the first one but the drift, which covers only the conserved channels (so the
    # drift sets no shape, wherever it comes in `per_step`)
    shape = next(tuple(np.shape(values)) for name, values in per_step.items() if name != "drift")
    for name, values in per_step.items():
        a = np.asarray(values, dtype=np.float64)
        if a.ndim != 3 or a.shape[0] == 0 or a.shape[1] == 0:
            raise ValueError(f"per_step[{name!r}] must be a non-empty [n_traj, n_steps, C] array: {a.shape}")
        expected = shape if name != "drift" else (*shape[:2], a.shape[2])
        if a.shape != expected:
            raise ValueError(f"per_step[{name!r}] has shape {a.shape}, expected {expected} like the others")
        a = _clean_corr(a) if name == "corr" else np.where(np.isnan(a), math.inf, a)
        with np.errstate(invalid="ignore", over="ignore"):
            traj[name] = a.mean(axis=2)
    flags = np.asarray(unstable_flags, dtype=bool)
    if flags.shape != shape[:2]:
        raise ValueError(f"unstable_flags must have shape {shape[:2]}, got {flags.shape}")
    return traj, flags, _step_time_per_traj(step_time, shape[0])


def summarize_rollout(
    per_step: dict[str, np.ndarray],
    unstable_flags: np.ndarray,
    step_time: np.ndarray | float,
    thresholds: Sequence[float],
    gmean_steps: int,
    windows: Sequence[Sequence[int]] | None,
    n_members: int = 1,
) -> tuple[dict[str, float | int | None], dict[str, list[float | int | None]]]:
    """Reduce a whole rollout to headline numbers and per-step curves.

    Channels are combined by scoring each channel separately and averaging the per-channel values (a field with
    small values weighs as much as one with large values); PDEArena's flattening of all channels into one vector
    differs from this for multi-field data.

    Args:
        per_step: name -> ``[n_traj, n_steps, C]`` arrays of per-step metrics stacked over steps by the caller;
            must contain ``mse``, ``nrmse``, ``vrmse``, ``corr``; may contain ``mse_low/mid/high`` (band error
            energies), ``drift`` (conservation drift) and, for ensembles, ``crps``, ``spread2``, ``ens_mse``. Step
            index 0 is the first predicted frame. Non-finite correlations count as 0 and NaN errors as ``inf``.
        unstable_flags: ``[n_traj, n_steps]`` bool from :func:`unstable_energy` (or :func:`unstable`).
        step_time: ``[n_traj]`` (or scalar) time units per model step.
        thresholds: correlation thresholds for the ``corr_time_*`` keys.
        gmean_steps: steps aggregated by ``nrmse_gmean``, ``spectral_rmse_*`` and ``crps_mean`` (clipped to
            ``n_steps``); set per PDE before the errors saturate.
        windows: 1-based inclusive step windows of the ``nrmse_steps_*`` / ``vrmse_steps_*`` means, each cut at the
            rollout's end and named by the steps it then averages (:func:`rollout_windows`); None: The Well's
            windows for this rollout length (:func:`well_windows`).
        n_members: ensemble size (``crps_mean`` and ``spread_skill_ratio`` are reported when > 1).

    Returns:
        ``(summary, curves)``. ``summary`` holds, as float (or ``None`` when undefined / not finite):

        * ``corr_time_{t}`` (:func:`high_correlation_time`, PDE-Refiner's count) and ``corr_time_median_{t}``
          (:func:`first_crossing_time_median`) for each threshold ``t``, in time units, with their ceilings
          ``time_ceiling`` (rollout length: ``n_steps`` times the mean step time) and ``time_ceiling_median``
          (median of ``n_steps * step_time``);
        * ``one_step_nrmse``, ``one_step_mse``, ``one_step_vrmse``: step 1, mean over trajectories and channels;
        * ``nrmse_gmean``: geometric mean of the nrmse curve over the first ``nrmse_gmean_steps`` (int) steps;
        * ``vrmse_mean``: mean over trajectories, steps and channels;
        * ``nrmse_steps_<w>``, ``vrmse_steps_<w>``: means over the steps ``w`` (e.g. ``vrmse_steps_6-12``);
        * ``one_step_spectral_rmse_<band>``, ``spectral_rmse_<band>`` (band = low, mid, high): square root of the
          mean error energy in the band at step 1 and over the first ``nrmse_gmean_steps`` steps;
        * ``conservation_drift_final``, ``conservation_drift_max``: mean drift of the invariant at the last step and
          the largest step mean;
        * ``stable_horizon_median``: median over trajectories of ``stable_steps * step_time`` (time units; ceiling
          ``time_ceiling_median``); ``stable_fraction``: fraction of trajectories never flagged unstable;
        * ``n_members``, ``crps_mean``, ``spread_skill_ratio`` for ensembles.

        ``curves`` holds ``step`` (1..n_steps), ``time`` (``step * mean step_time``), for every metric in
        ``per_step`` the mean over trajectories and channels per step, ``spectral_rmse_<band>`` and, for ensembles,
        ``spread_skill`` per step.
    """
    traj, flags, st = _prepare(per_step, unstable_flags, step_time)
    n_steps = flags.shape[1]
    n_gmean = max(1, min(int(gmean_steps), n_steps))
    steps_of = rollout_windows(windows, n_steps)
    with np.errstate(invalid="ignore", over="ignore"):
        summary = _reduce(traj, stable_steps(flags), st, thresholds, n_gmean, steps_of, n_members, None)
        curve_means = {name: a.mean(axis=0) for name, a in traj.items()}
    steps = np.arange(1, n_steps + 1)
    curves: dict[str, list[float | int | None]] = {
        "step": [int(s) for s in steps],
        "time": [float(s) * float(st.mean()) for s in steps],
    }
    for name, values in curve_means.items():
        curves[name] = _curve(values)
    if all(name in curve_means for name in BAND_METRICS):
        for name in BAND_METRICS:
            curves[format_key(MetricKey("spectral_rmse", band=parse_key(name).band))] = _curve(
                np.sqrt(curve_means[name]))
    if n_members > 1 and "spread2" in traj:
        curves["spread_skill"] = _curve(spread_skill_ratio(traj["spread2"], traj["ens_mse"], n_members))
    return summary, curves


def _ceiling_of(key: str) -> str | None:
    """The summary key of the ceiling `key` cannot exceed (a time metric's rollout length), or None."""
    return parse_key(key).ceiling


def bootstrap_intervals(
    per_step: dict[str, np.ndarray],
    unstable_flags: np.ndarray,
    step_time: np.ndarray | float,
    thresholds: Sequence[float],
    gmean_steps: int,
    windows: Sequence[Sequence[int]] | None,
    n_members: int = 1,
    *,
    n_resamples: int,
    seed: int,
    level: float = INTERVAL_LEVEL,
) -> dict[str, list[float] | None]:
    """Bootstrap intervals over test trajectories for every estimate of :func:`summarize_rollout`.

    Each resample draws ``n_traj`` trajectories with replacement (numpy's PCG64 seeded with ``seed``, one
    ``integers(0, n_traj, n_traj)`` call per resample, so the interval is reproducible) and recomputes the summary
    from them. Returns key -> ``[low, high]`` or ``None``:

    * an estimate: the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of its resampled values (percentile
      bootstrap); a time metric's ends are clipped to its ceiling in the full sample (``time_ceiling``,
      ``time_ceiling_median``: a resample whose trajectories have longer step times has a longer rollout, but the
      estimate cannot exceed this rollout's length), so a value at its ceiling has the ceiling as its top;
    * a maximum over steps (:data:`MAX_OVER_STEPS`): ``[max(0, value - c), value + c]`` with ``c`` the ``level``
      quantile over resamples of ``max_k |resampled step mean_k - step mean_k|``. That makes ``step mean_k +- c`` a
      simultaneous band over all steps, and since ``|max a - max b| <= max |a - b|``, the interval covers the true
      maximum whenever the band covers the true curve, and always contains the value. (A percentile interval of the
      resampled maxima need not: the maximum of resampled means lies above the sample's maximum more often than
      not, so the sample's value can fall below the interval.)
    * ``None`` where the estimate is undefined in some resample (e.g. an error mean over a diverged trajectory) or
      in the full sample, and for EVERY key when there are fewer than :data:`MIN_INTERVAL_TRAJECTORIES` trajectories
      (with a :class:`FewTrajectoriesWarning` naming the count).

    Ceilings and counts (:data:`NOT_BOOTSTRAPPED`) get no key. `thresholds`, `gmean_steps`, `windows` and
    `n_members` are those of the summary (see :func:`summarize_rollout`); `n_resamples` >= 1.
    """
    if n_resamples < 1 or not 0 < level < 1:
        raise ValueError(f"need n_resamples >= 1 and 0 < level < 1, got {n_resamples} and {level}")
    traj, flags, st = _prepare(per_step, unstable_flags, step_time)
    n_traj, n_steps = flags.shape
    n_gmean = max(1, min(int(gmean_steps), n_steps))
    steps_of = rollout_windows(windows, n_steps)
    stable = stable_steps(flags)
    with np.errstate(invalid="ignore", over="ignore"):
        full = _reduce(traj, stable, st, thresholds, n_gmean, steps_of, n_members, None)
    estimates = [key for key in full if key not in NOT_BOOTSTRAPPED]
    if n_traj < MIN_INTERVAL_TRAJECTORIES:
        warnings.warn(f"{n_traj} test trajectories are too few for a bootstrap interval (at least "
                      f"{MIN_INTERVAL_TRAJECTORIES} are needed): every interval is null", FewTrajectoriesWarning,
                      stacklevel=2)
        return {key: None for key in estimates}
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float | None]] = {key: [] for key in estimates}
    deviations: dict[str, list[float]] = {key: [] for key in MAX_OVER_STEPS if key in full}
    with np.errstate(invalid="ignore", over="ignore"):
        curve = {name: traj[name].mean(axis=0) for name in set(MAX_OVER_STEPS.values()) if name in traj}
        for _ in range(n_resamples):
            idx = rng.integers(0, n_traj, size=n_traj)
            resampled = _reduce(traj, stable, st, thresholds, n_gmean, steps_of, n_members, idx)
            for key in estimates:
                draws[key].append(resampled[key])
            for key, values in deviations.items():
                name = MAX_OVER_STEPS[key]
                values.append(float(np.abs(traj[name][idx].mean(axis=0) - curve[name]).max()))
    out: dict[str, list[float] | None] = {}
    for key in estimates:
        value = full[key]
        if value is None or any(v is None for v in draws[key]):
            out[key] = None
        elif key in deviations:
            c = float(np.quantile(np.asarray(deviations[key]), level))
            out[key] = None if not math.isfinite(c) else [max(0.0, float(value) - c), float(value) + c]
        else:
            ceiling_key = _ceiling_of(key)
            out[key] = _percentile_interval(draws[key], level, full[ceiling_key] if ceiling_key else None)
    return out


def _percentile_interval(values: list[float | None], level: float, ceiling: float | int | None) -> list[float]:
    """The `(1 - level) / 2` and `(1 + level) / 2` quantiles of `values`, both clipped to `ceiling` (None: none)."""
    low, high = np.quantile(np.asarray(values, dtype=np.float64), ((1 - level) / 2, (1 + level) / 2))
    if ceiling is not None:
        low, high = min(low, ceiling), min(high, ceiling)
    return [float(low), float(high)]


def interval_notes(summary: dict[str, float | int | None], n_traj: int, level: float = INTERVAL_LEVEL
                   ) -> dict[str, str]:
    """Why an interval is what it is, per summary key, where a rule other than the plain percentile bootstrap
    applies (a result's `interval_method.notes`): every key when there are too few trajectories, a time metric at
    its ceiling (a lower bound; the interval stops at the ceiling), a maximum over steps (a simultaneous band)."""
    estimates = [key for key in summary if key not in NOT_BOOTSTRAPPED]
    if n_traj < MIN_INTERVAL_TRAJECTORIES:
        return {key: f"no interval: {n_traj} test trajectories, fewer than {MIN_INTERVAL_TRAJECTORIES}"
                for key in estimates}
    notes: dict[str, str] = {}
    for key in estimates:
        value, ceiling_key = summary[key], _ceiling_of(key)
        ceiling = summary.get(ceiling_key) if ceiling_key else None
        if value is not None and ceiling is not None and value >= ceiling * (1 - 1e-12):
            notes[key] = (f"at its ceiling {ceiling_key} = {ceiling:g}: the rollout ended before the metric did, so "
                          f"the value is a lower bound and the interval ends at the ceiling")
        elif key in MAX_OVER_STEPS and value is not None:
            notes[key] = (f"a maximum over steps: value +- the {level:g} quantile of the largest deviation of a "
                          f"resample's step means from the sample's (a simultaneous band over steps), low end "
                          f"clipped at 0; it contains the value")
    return notes
