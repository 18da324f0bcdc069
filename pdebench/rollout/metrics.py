"""Rollout metrics: pure functions, computed in float64.

Conventions used throughout:

* Every error is defined per trajectory, per step and per channel; spatial reductions happen first,
  averages over channels / trajectories / steps happen later, in :func:`summarize_rollout`.
* Step index 0 is the FIRST PREDICTED frame (one model step after the last input frame), never an
  input frame. Step ``k`` (0-based) therefore lies ``(k + 1) * step_time`` time units after the
  last input frame, and a trajectory that stays good for ``n`` steps covers ``n * step_time``.
* A non-finite prediction is a failed prediction: its errors are ``inf`` and its correlation is 0
  (below every threshold). Nothing here raises because of NaN/inf in a prediction.
* The summary returned by :func:`summarize_rollout` is JSON-serialisable: every value is a Python
  ``float``/``int`` or ``None``. ``None`` means "undefined or not finite", e.g. the mean error of a
  rollout where some trajectory diverged (an ``inf`` error) - there is no finite number to report.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

ERROR_METRICS = ("mse", "rmse", "nrmse", "vrmse")
"""Metrics where lower is better; a non-finite prediction scores ``inf``."""

STEP_METRICS = (*ERROR_METRICS, "corr")
"""Every name returned by :func:`step_errors`."""

CURVE_METRICS = ("mse", "nrmse", "vrmse", "corr")
"""Per-step metrics that :func:`summarize_rollout` requires (``rmse`` is optional)."""

DEFAULT_THRESHOLDS = (0.8, 0.9, 0.95)


def threshold_key(threshold: float) -> str:
    """Format a correlation threshold for a summary key: 0.8 -> "0.8", 0.95 -> "0.95"."""
    return f"{float(threshold):g}"


# ----------------------------------------------------------------------------------------------------
# per-step metrics (torch)
# ----------------------------------------------------------------------------------------------------


def _flatten_space(x: Tensor, name: str) -> Tensor:
    if x.dim() < 3:
        raise ValueError(f"{name} must have shape [B, C, *space] (>= 1 space axis), got {tuple(x.shape)}")
    return x.detach().reshape(x.shape[0], x.shape[1], -1).to(torch.float64)


def step_errors(
    pred: Tensor, target: Tensor, eps: float = 1e-7, weights: Tensor | None = None
) -> dict[str, Tensor]:
    """Errors of one predicted frame against the reference, per trajectory and channel.

    Args:
        pred, target: ``[B, C, *space]`` (1-D or 2-D space; any number of space axes works).
        eps: guard added to every denominator (``||y||``, ``var(y)``, ``std(p) std(y)``).
        weights: optional non-negative quadrature weights of shape ``space`` (e.g. cell areas on the
            sphere). They are normalised to mean 1, so uniform weights reproduce the unweighted
            definitions exactly. ``None`` means uniform.

    Returns:
        name -> ``[B, C]`` float64 tensor, with ``d = p - y`` and ``mean`` the (weighted) mean over space:

        * ``mse = mean(d^2)``, ``rmse = sqrt(mse)``;
        * ``nrmse = ||d||_2 / (||y||_2 + eps)`` (norms over space, weighted by ``weights``);
        * ``vrmse = sqrt(mse / (var(y) + eps))`` with the population variance over space, so
          predicting the spatial mean of ``y`` scores ~1;
        * ``corr = cov(p, y) / (std(p) std(y) + eps)``, the centred Pearson correlation over space,
          clipped to [-1, 1].

        Where a prediction has any non-finite value in a (trajectory, channel), the errors are
        ``inf`` and ``corr`` is 0; a correlation that is otherwise not finite (overflow) is 0 too.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    p = _flatten_space(pred, "pred")
    y = _flatten_space(target, "target").to(p.device)
    if weights is None:
        w = torch.ones(p.shape[-1], dtype=torch.float64, device=p.device)
    else:
        if tuple(weights.shape) != tuple(pred.shape[2:]):
            raise ValueError(
                f"weights must have the space shape {tuple(pred.shape[2:])}, got {tuple(weights.shape)}"
            )
        w = weights.detach().reshape(-1).to(device=p.device, dtype=torch.float64)
        if not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or float(w.sum()) <= 0:
            raise ValueError("weights must be finite, non-negative and not all zero")
        w = w / w.mean()

    def wmean(x: Tensor) -> Tensor:
        return (x * w).mean(dim=-1)

    def wsum(x: Tensor) -> Tensor:
        return (x * w).sum(dim=-1)

    d = p - y
    mse = wmean(d * d)
    rmse = torch.sqrt(mse)
    nrmse = torch.sqrt(wsum(d * d)) / (torch.sqrt(wsum(y * y)) + eps)
    y_c = y - wmean(y).unsqueeze(-1)
    var_y = wmean(y_c * y_c)
    vrmse = torch.sqrt(mse / (var_y + eps))
    p_c = p - wmean(p).unsqueeze(-1)
    var_p = wmean(p_c * p_c)
    corr = wmean(p_c * y_c) / (torch.sqrt(var_p) * torch.sqrt(var_y) + eps)

    bad = ~torch.isfinite(p).all(dim=-1)
    inf = torch.full_like(mse, math.inf)
    out = {name: torch.where(bad, inf, value) for name, value in
           (("mse", mse), ("rmse", rmse), ("nrmse", nrmse), ("vrmse", vrmse))}
    corr = torch.where(bad | ~torch.isfinite(corr), torch.zeros_like(corr), corr)
    out["corr"] = corr.clamp(-1.0, 1.0)
    return out


def unstable(pred: Tensor, bound: Tensor | float) -> Tensor:
    """Flag blown-up predictions.

    Args:
        pred: ``[B, C, *space]`` predicted frame.
        bound: ``[B]`` (or a scalar) upper bound on ``max |p|``, e.g. a multiple of the reference's
            maximum absolute value.

    Returns:
        ``[B]`` bool: the prediction has a non-finite value or ``max |p|`` over channels and space
        exceeds ``bound``.
    """
    if pred.dim() < 2:
        raise ValueError(f"pred must have shape [B, C, *space], got {tuple(pred.shape)}")
    flat = pred.detach().reshape(pred.shape[0], -1).to(torch.float64)
    nonfinite = ~torch.isfinite(flat).all(dim=-1)
    max_abs = flat.abs().nan_to_num(nan=math.inf).amax(dim=-1)
    b = torch.as_tensor(bound, dtype=torch.float64, device=flat.device).detach().reshape(-1)
    return nonfinite | (max_abs > b)


# ----------------------------------------------------------------------------------------------------
# rollout-level reductions (numpy)
# ----------------------------------------------------------------------------------------------------


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


def high_correlation_time(
    corr: np.ndarray, threshold: float, step_time: np.ndarray | float
) -> tuple[float, float]:
    """Time a rollout stays correlated with the reference, in time units.

    Args:
        corr: ``[n_traj, n_steps]`` correlation per step (already averaged over channels); step 0 is
            the first predicted frame. Non-finite values count as 0.
        threshold: correlation threshold (e.g. 0.8).
        step_time: ``[n_traj]`` (or scalar) time units per model step.

    Returns:
        ``(pderefiner_time, median_first_crossing_time)``:

        1. PDE-Refiner convention: the number of steps whose trajectory-averaged correlation is
           ``> threshold`` (anywhere in the rollout, not necessarily consecutive), times the mean step time;
        2. the median over trajectories of ``(index of the first step with corr <= threshold) *
           step_time``, i.e. consecutive steps above the threshold from the start
           (``n_steps * step_time`` if it never drops).
    """
    c = _clean_corr(corr)
    if c.ndim != 2 or c.shape[0] == 0 or c.shape[1] == 0:
        raise ValueError(f"corr must be a non-empty [n_traj, n_steps] array, got shape {c.shape}")
    n_traj, n_steps = c.shape
    st = _step_time_per_traj(step_time, n_traj)
    pderefiner = float(np.count_nonzero(c.mean(axis=0) > threshold)) * float(st.mean())
    below = c <= threshold
    first = np.where(below.any(axis=1), np.argmax(below, axis=1), n_steps)
    median_first = float(np.median(first * st))
    return pderefiner, median_first


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


def _finite_or_none(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _curve(values: np.ndarray) -> list[float | int | None]:
    return [_finite_or_none(v) for v in values]


def summarize_rollout(
    per_step: dict[str, np.ndarray],
    unstable_flags: np.ndarray,
    step_time: np.ndarray | float,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    gmean_steps: int = 100,
) -> tuple[dict[str, float | int | None], dict[str, list[float | int | None]]]:
    """Reduce a whole rollout to headline numbers and per-step curves.

    Args:
        per_step: name -> ``[n_traj, n_steps, C]`` arrays of :func:`step_errors` outputs stacked over
            steps by the caller; must contain ``mse``, ``nrmse``, ``vrmse``, ``corr``. Step index 0 is
            the first predicted frame. Non-finite correlations count as 0 and NaN errors as ``inf``.
        unstable_flags: ``[n_traj, n_steps]`` bool from :func:`unstable`.
        step_time: ``[n_traj]`` (or scalar) time units per model step.
        thresholds: correlation thresholds for the ``corr_time_*`` keys.
        gmean_steps: steps aggregated by ``nrmse_gmean`` (clipped to ``n_steps``).

    Returns:
        ``(summary, curves)``. ``summary`` holds, as float (or ``None`` when undefined / not finite,
        e.g. a mean error over a diverged trajectory):

        * ``corr_time_{t}``, ``corr_time_median_{t}`` for each threshold ``t`` (time units, see
          :func:`high_correlation_time`), keys like ``corr_time_0.8``;
        * ``one_step_nrmse``, ``one_step_mse``: step 0, mean over trajectories and channels;
        * ``nrmse_gmean``: geometric mean of the nrmse curve over the first ``nrmse_gmean_steps``
          (int) steps;
        * ``vrmse_mean``: mean over trajectories, steps and channels;
        * ``stable_horizon_median``: median over trajectories of ``stable_steps * step_time`` (time units);
        * ``stable_fraction``: fraction of trajectories never flagged unstable.

        ``curves`` holds ``step`` (1..n_steps), ``time`` (``step * mean step_time``) and, for every
        metric in ``per_step``, the mean over trajectories and channels per step.
    """
    missing = [name for name in CURVE_METRICS if name not in per_step]
    if missing:
        raise ValueError(f"per_step is missing metric(s) {missing}; it must contain {list(CURVE_METRICS)}")
    arrays: dict[str, np.ndarray] = {}
    shape = None
    for name, values in per_step.items():
        a = np.asarray(values, dtype=np.float64)
        if a.ndim != 3 or a.shape[0] == 0 or a.shape[1] == 0:
            raise ValueError(f"per_step[{name!r}] must be a non-empty [n_traj, n_steps, C] array: {a.shape}")
        if shape is None:
            shape = a.shape
        elif a.shape != shape:
            raise ValueError(f"per_step[{name!r}] has shape {a.shape}, expected {shape} like the others")
        arrays[name] = _clean_corr(a) if name == "corr" else np.where(np.isnan(a), math.inf, a)
    assert shape is not None
    n_traj, n_steps, _ = shape
    flags = np.asarray(unstable_flags, dtype=bool)
    if flags.shape != (n_traj, n_steps):
        raise ValueError(f"unstable_flags must have shape {(n_traj, n_steps)}, got {flags.shape}")
    st = _step_time_per_traj(step_time, n_traj)

    with np.errstate(invalid="ignore", over="ignore"):
        curve_means = {name: a.mean(axis=(0, 2)) for name, a in arrays.items()}
        summary: dict[str, float | int | None] = {}
        corr_traj = arrays["corr"].mean(axis=2)
        for t in thresholds:
            pderefiner, median_first = high_correlation_time(corr_traj, t, st)
            summary[f"corr_time_{threshold_key(t)}"] = _finite_or_none(pderefiner)
            summary[f"corr_time_median_{threshold_key(t)}"] = _finite_or_none(median_first)
        summary["one_step_nrmse"] = _finite_or_none(arrays["nrmse"][:, 0, :].mean())
        summary["one_step_mse"] = _finite_or_none(arrays["mse"][:, 0, :].mean())
        n_gmean = max(1, min(int(gmean_steps), n_steps))
        summary["nrmse_gmean"] = _finite_or_none(geometric_mean_over_steps(curve_means["nrmse"], n_gmean))
        summary["nrmse_gmean_steps"] = n_gmean
        summary["vrmse_mean"] = _finite_or_none(arrays["vrmse"].mean())
        summary["stable_horizon_median"] = _finite_or_none(np.median(stable_steps(flags) * st))
        summary["stable_fraction"] = float((~flags.any(axis=1)).mean())

    steps = np.arange(1, n_steps + 1)
    curves: dict[str, list[float | int | None]] = {
        "step": [int(s) for s in steps],
        "time": [float(s) * float(st.mean()) for s in steps],
    }
    for name, values in curve_means.items():
        curves[name] = _curve(values)
    return summary, curves
