"""The solver's accuracy-cost frontier and a surrogate's speed-up at equal accuracy.

The `solver` rows (the dataset's own solver at the stored and at coarser settings) each give a point (accuracy,
throughput). A surrogate's speed-up at equal accuracy is its throughput divided by the throughput the solver needs
to reach the surrogate's accuracy, read off the frontier by linear interpolation of log(throughput) against the
headline metric between the two neighbouring frontier points. Comparing at equal grid instead (the stored-resolution
solver) overstates a surrogate whenever a cheaper solver setting is as accurate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FrontierPoint:
    """One solver row: its label, headline metric value and throughput (trajectory-steps/s)."""

    label: str
    accuracy: float
    throughput: float


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


def frontier_points(results: Sequence[dict[str, Any]], metric: str, manifest: str | None) -> list[FrontierPoint]:
    """Solver rows among result dicts (model `solver`, same `manifest_sha256`) as frontier points for `metric`."""
    points = []
    for r in results:
        if r.get("model") != "solver" or r.get("manifest_sha256") != manifest:
            continue
        value = (r.get("summary") or {}).get(metric)
        speed = r.get("throughput_traj_steps_per_s")
        if isinstance(value, (int, float)) and isinstance(speed, (int, float)):
            points.append(FrontierPoint(str(r.get("label")), float(value), float(speed)))
    return points
