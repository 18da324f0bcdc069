"""The solver's accuracy-cost frontier and a surrogate's speed-up at equal accuracy.

The `solver` rows (the dataset's own solver at the stored and at coarser settings) each give a point (accuracy,
throughput). A surrogate's speed-up at equal accuracy is its throughput divided by the throughput the solver needs
to reach the surrogate's accuracy, read off the frontier by linear interpolation of log(throughput) against the
headline metric between the two neighbouring frontier points. Comparing at equal grid instead (the stored-resolution
solver) overstates a surrogate whenever a cheaper solver setting is as accurate.

Only solver rows measured like the surrogate count (:class:`RolloutKind`): the same dataset manifest, the same
rollout (model steps scored, time per step, steps of the geometric mean) and the same kind of device. A solver row
scored on 3 steps reaches a correlation time no 11-step rollout can be compared with, and a CPU throughput says
nothing about a GPU's; where no solver row matches there is no speed-up, and :func:`place_on_frontier` says why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from pdebench.rollout.record import ResultRecord

SOLVER_MODEL = "solver"
"""Model name of the numerical-solver rows, which make the accuracy-cost frontier."""


@dataclass(frozen=True)
class RolloutKind:
    """What a solver row and a surrogate must share for their accuracy and throughput to compare.

    manifest: the dataset manifest hash (the same test trajectories); n_steps: model steps scored per trajectory;
    step_time: time units per model step (the frame stride), to 9 significant digits; gmean_steps: steps of the
    geometric-mean and spectral summaries; device: the kind of device the throughput was measured on (`cpu`,
    `cuda`, ...). A field a result does not record is None and matches only None.
    """

    manifest: str | None
    n_steps: int | None
    step_time: float | None
    gmean_steps: int | None
    device: str

    def describe(self, shown: Sequence[str] = ("n_steps", "device")) -> str:
        """The fields named in `shown`, in words: `at 50 steps of 0.8 time units (gmean over 20 steps) on cpu`."""
        parts = []
        if "manifest" in shown:
            parts.append(f"of manifest {(self.manifest or 'unknown')[:8]}")
        if "n_steps" in shown:
            parts.append(f"at {self.n_steps if self.n_steps is not None else '?'} steps")
        if "step_time" in shown:
            parts.append(f"of {self.step_time:g} time units" if self.step_time is not None else "of unknown step")
        if "gmean_steps" in shown and self.gmean_steps != self.n_steps:  # a gmean over the whole rollout goes unsaid
            parts.append(f"(gmean over {self.gmean_steps if self.gmean_steps is not None else '?'} steps)")
        if "device" in shown:
            parts.append(f"on {self.device}")
        return " ".join(parts)


def rollout_kind(record: ResultRecord) -> RolloutKind:
    """How `record` was measured (:class:`RolloutKind`)."""
    step_time = record.step_time
    gmean = record.summary.get("nrmse_gmean_steps")
    return RolloutKind(
        manifest=record.manifest_sha256,
        n_steps=int(record.n_steps) if isinstance(record.n_steps, (int, float)) else None,
        step_time=float(f"{step_time:.9g}") if isinstance(step_time, (int, float)) and math.isfinite(step_time)
        else None,
        gmean_steps=int(gmean) if isinstance(gmean, (int, float)) and math.isfinite(gmean) else None,
        device=record.device_kind)


def differing(kinds: Sequence[RolloutKind]) -> tuple[str, ...]:
    """Names of the :class:`RolloutKind` fields on which `kinds` differ."""
    return tuple(f.name for f in fields(RolloutKind) if len({getattr(k, f.name) for k in kinds}) > 1)


def is_stored_setting(solver_setting: Mapping[str, Any] | None) -> bool:
    """Whether a solver row ran at the stored resolution with the generator's own time step."""
    setting = solver_setting or {}
    return setting.get("resolution") is None and float(setting.get("time_step_factor", 1.0)) == 1.0


@dataclass(frozen=True)
class FrontierPoint:
    """One solver row: its label, headline metric value, throughput (trajectory-steps/s), how it was measured
    (None: not recorded, matches any surrogate) and whether it is the stored setting."""

    label: str
    accuracy: float
    throughput: float
    kind: RolloutKind | None = None
    stored: bool = False


def pareto_front(points: Sequence[FrontierPoint], goal: str) -> list[FrontierPoint]:
    """Points no other point beats in both accuracy and throughput, from the cheapest (fastest) to the most accurate.

    goal: `max` (higher metric is better, e.g. high-correlation time) or `min` (e.g. VRMSE).
    """
    if goal not in ("min", "max"):
        raise ValueError(f"goal must be min or max, got {goal!r}")
    sign = 1.0 if goal == "max" else -1.0
    usable = [p for p in points if math.isfinite(p.accuracy) and math.isfinite(p.throughput) and p.throughput > 0]
    front: list[FrontierPoint] = []
    for p in sorted(usable, key=lambda p: (-p.throughput, -sign * p.accuracy)):
        if not front or sign * p.accuracy > sign * front[-1].accuracy:
            front.append(p)
    return front


def speedup_at_equal_accuracy(points: Sequence[FrontierPoint], accuracy: float | None, throughput: float,
                              goal: str) -> dict[str, Any]:
    """Where a surrogate with `accuracy` and `throughput` sits on the solver frontier.

    Returns a dict with `status`:

    * `interpolated`: the surrogate's accuracy lies between two frontier points; `solver_throughput` is the solver's
      interpolated throughput at that accuracy and `speedup` the surrogate's throughput over it;
    * `below_frontier`: even the cheapest solver setting is at least as accurate; `speedup` is the surrogate's
      throughput over that setting's (an upper bound of the true speed-up at equal accuracy);
    * `above_frontier`: no solver setting reaches the surrogate's accuracy; `speedup` is over the most accurate
      setting's throughput (a lower bound);
    * `undefined`: no usable solver point or no finite surrogate accuracy (`speedup` None).
    """
    front = pareto_front(points, goal)
    base: dict[str, Any] = {"goal": goal, "accuracy": accuracy, "throughput": throughput,
                            "frontier": [{"label": p.label, "accuracy": p.accuracy, "throughput": p.throughput}
                                         for p in front]}
    if not front or accuracy is None or not math.isfinite(accuracy):
        return {**base, "status": "undefined", "solver_throughput": None, "speedup": None}
    sign = 1.0 if goal == "max" else -1.0
    a = sign * accuracy
    if a <= sign * front[0].accuracy:
        return {**base, "status": "below_frontier", "solver_throughput": front[0].throughput,
                "speedup": throughput / front[0].throughput}
    if a > sign * front[-1].accuracy:
        return {**base, "status": "above_frontier", "solver_throughput": front[-1].throughput,
                "speedup": throughput / front[-1].throughput}
    for lo, hi in zip(front, front[1:], strict=False):
        if sign * lo.accuracy < a <= sign * hi.accuracy:
            w = (a - sign * lo.accuracy) / (sign * hi.accuracy - sign * lo.accuracy)
            solver = math.exp((1 - w) * math.log(lo.throughput) + w * math.log(hi.throughput))
            return {**base, "status": "interpolated", "solver_throughput": solver, "speedup": throughput / solver}
    raise AssertionError("unreachable: the frontier is sorted")  # pragma: no cover


def solver_point(record: ResultRecord, metric: str) -> FrontierPoint | None:
    """A solver row's frontier point for `metric`; None for other rows and rows without both numbers."""
    value, speed = record.summary.get(metric), record.throughput_traj_steps_per_s
    if record.model != SOLVER_MODEL or not _finite(value) or not _finite(speed):
        return None
    return FrontierPoint(record.label, float(value), float(speed), rollout_kind(record),
                         is_stored_setting(record.solver_setting))


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def unmatched_reason(kind: RolloutKind, others: Sequence[RolloutKind]) -> str:
    """Why no solver row counts for a surrogate measured as `kind`, the solver rows having been measured as
    `others`: `no solver rows at 11 steps on cuda (solver rows: at 11 steps on cpu)`."""
    if not others:
        return "no solver rows"
    distinct = list(dict.fromkeys(others))
    shown = tuple(dict.fromkeys(("n_steps", *differing([kind, *distinct]), "device")))
    return (f"no solver rows {kind.describe(shown)} (solver rows: "
            f"{'; '.join(k.describe(shown) for k in distinct)})")


def place_on_frontier(points: Sequence[FrontierPoint], kind: RolloutKind, accuracy: float | None, throughput: float,
                      goal: str) -> dict[str, Any]:
    """A surrogate measured as `kind` on the frontier of the solver `points` measured the same way.

    Returns :func:`speedup_at_equal_accuracy`'s dict over the matching points, plus `speedup_at_equal_grid`
    (throughput over the matching stored-setting row's, None without one) and `rollout` (`kind` in words). With no
    matching point: `status` `unmatched`, both speed-ups None, and `reason` (:func:`unmatched_reason`).
    """
    matching = [p for p in points if p.kind is None or p.kind == kind]
    if not matching:
        reason = unmatched_reason(kind, [p.kind for p in points if p.kind is not None])
        return {"goal": goal, "accuracy": accuracy, "throughput": throughput, "frontier": [], "status": "unmatched",
                "reason": reason, "solver_throughput": None, "speedup": None, "speedup_at_equal_grid": None,
                "rollout": kind.describe(("n_steps", "step_time", "gmean_steps", "device"))}
    out = speedup_at_equal_accuracy(matching, accuracy, throughput, goal)
    stored = [p for p in matching if p.stored]
    out["speedup_at_equal_grid"] = throughput / stored[0].throughput if stored else None
    out["rollout"] = kind.describe(("n_steps", "step_time", "gmean_steps", "device"))
    return out
