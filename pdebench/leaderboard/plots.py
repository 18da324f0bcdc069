"""Leaderboard plots of one table, as PNG: per-step curves, energy spectra and the accuracy-cost frontier (the sample
rollout is :mod:`pdebench.leaderboard.sample_plot`).

matplotlib is imported by the functions that draw (`pdebench.leaderboard.figures`), so importing the leaderboard (to
build or render tables) does not load it. Rows are drawn in leaderboard order with the row's display name; a row with
several seeds is drawn as the seed mean with the min-max band over seeds shaded. Legends sit outside the axes, so they
never cover a curve; a row that is listed but draws nothing (a rollout that diverged, a spectrum of no finite value)
says why in its legend entry. Point labels on the frontier never overlap and stay inside the figure.

Text from result files (row names, a sample's field, a spectrum's unit) is drawn literally: matplotlib reads text
between two `$` as mathtext (and stops on `$\\foo{$`), so every `$` is escaped (:func:`literal`). Each PNG is
written atomically (a temporary sibling renamed into place), so a plot that exists is a whole plot.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pdebench.leaderboard.figures import as_float_array, legend_beside, literal, new_figure, place_labels, save, wrapped
from pdebench.leaderboard.sample_plot import plot_sample, sample_figure
from pdebench.leaderboard.tables import SOLVER_MODEL, Table
from pdebench.rollout.frontier import FrontierPoint, differing, pareto_front

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["CORR_REFERENCE", "curves_figure", "divergence_note", "frontier_figure", "literal", "plot_curves",
           "plot_frontier", "plot_sample", "plot_spectra", "sample_figure", "spectra_figure"]

CORR_REFERENCE = 0.8
"""Correlation level drawn as a dashed line on correlation plots."""

_ERROR_METRICS = {"mse", "rmse", "nrmse", "vrmse"}
_MAX_SPECTRUM_PANELS = 4
_SURROGATE_MARKERS = ("o", "^", "v", "D", "P", "X", "*", "h")


def divergence_note(values: np.ndarray, steps: np.ndarray, seeds_failed: int = 0, seeds: int = 1) -> str:
    """What a legend entry adds for a curve `values` [T] (NaN where not finite) at model `steps` [T]: `""` where every
    value is finite, ` (no finite values)` where none is, ` (diverged at step k)` where the values stop being finite
    at step k for good (`(k of n seeds diverged ...)` where only some seeds did), else ` (not finite at m of T
    steps)`."""
    finite = np.isfinite(values)
    if finite.all():
        return ""
    if not finite.any():
        return " (no finite values)"
    first_bad = int(np.argmin(finite))
    if not finite[first_bad:].any():
        who = f"{seeds_failed} of {seeds} seeds diverged" if 0 < seeds_failed < seeds else "diverged"
        return f" ({who} at step {int(steps[first_bad])})"
    return f" (not finite at {int((~finite).sum())} of {finite.size} steps)"


def _series(row: dict, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(time [T], model steps [T], values [seeds, T]) of a row's per-step curve, cut to its shortest seed; None if a
    seed lacks it."""
    curves = [r["curves"] for r in row["results"]]
    if not curves or any(metric not in c or "time" not in c for c in curves):
        return None
    n = min(min(len(c[metric]), len(c["time"])) for c in curves)
    if n == 0:
        return None
    step = curves[0].get("step")
    steps = as_float_array(step if step is not None else [])
    steps = steps[:n] if steps.shape[0] >= n and np.isfinite(steps[:n]).all() else np.arange(1.0, n + 1)
    return as_float_array(curves[0]["time"][:n]), steps, np.stack([as_float_array(c[metric][:n]) for c in curves])


def _seeds_text(seeds: int) -> str:
    return f"{seeds} seed{'s' if seeds > 1 else ''}"


def _draw_curve(ax: Axes, row: dict, time: np.ndarray, steps: np.ndarray, stack: np.ndarray) -> None:
    """One row's seed mean (and min-max band) against `time`; isolated finite values as dots (a line needs two), the
    last finite value of a curve that diverged marked with a cross; the legend entry says what is not drawn."""
    with np.errstate(invalid="ignore"):
        mean, lo, hi = stack.mean(axis=0), stack.min(axis=0), stack.max(axis=0)
    seeds = stack.shape[0]
    failed = int((~np.isfinite(stack[:, -1])).sum()) if stack.shape[1] else 0
    note = divergence_note(mean, steps, failed, seeds)
    style = {"linestyle": "--"} if row["model"] == SOLVER_MODEL else {}
    (line,) = ax.plot(time, mean, label=wrapped(f"{row['name']} ({_seeds_text(seeds)}){note}"), **style)
    if seeds > 1:
        ax.fill_between(time, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
    finite = np.isfinite(mean)
    padded = np.concatenate([[False], finite, [False]])
    isolated = finite & ~padded[:-2] & ~padded[2:]
    if isolated.any():
        ax.plot(time[isolated], mean[isolated], ".", color=line.get_color())
    if finite.any() and not finite[-1]:
        last = int(np.flatnonzero(finite)[-1])
        ax.plot(time[last], mean[last], "x", color=line.get_color(), markersize=7)


def curves_figure(table: Table, metric: str = "corr") -> Figure:
    """The figure of :func:`plot_curves`."""
    fig = new_figure(9.5, 4.6)
    ax = fig.add_subplot(1, 1, 1)
    positive, plotted = True, 0
    for row in table.rows:
        series = _series(row, metric)
        if series is None:
            continue
        _draw_curve(ax, row, *series)
        finite = series[2][np.isfinite(series[2])]
        positive = positive and bool((finite > 0).all())
        plotted += 1
    if metric == "corr":
        ax.axhline(CORR_REFERENCE, color="0.3", linestyle=":", linewidth=1.0, label=f"corr = {CORR_REFERENCE}")
        ax.set_ylim(min(-0.05, ax.get_ylim()[0]), 1.05)
    elif metric in _ERROR_METRICS and positive and plotted:
        ax.set_yscale("log")
    ax.set_xlabel("rollout time (PDE time units)")
    ax.set_ylabel(literal(metric))
    ax.set_title(literal(f"{table.name}: {metric} over the rollout"))
    ax.grid(True, alpha=0.3)
    legend_beside(ax)
    return fig


def plot_curves(table: Table, path: Path, metric: str = "corr") -> Path:
    """Plot a per-step metric of every row against rollout time (PDE time units after the last input frame).

    metric: a key of the results' `curves` (`corr`, `nrmse`, `vrmse`, ...). Rows whose results lack it are left
    out. Correlation plots get a dashed line at :data:`CORR_REFERENCE`; error plots a log y-axis. The legend sits
    beside the axes; a row whose curve stops being finite says at which step (:func:`divergence_note`).
    """
    return save(curves_figure(table, metric), path)


def _spectra(result: dict) -> dict | None:
    spectra = result.get("spectra")
    needed = ("steps", "shell", "pred", "true")
    return spectra if isinstance(spectra, dict) and all(spectra.get(k) is not None for k in needed) else None


def _spectrum_shape(spectra: dict) -> tuple[list[int], int]:
    """(kept steps, shells) of one result's spectra, as far as its `pred` and `true` arrays hold them."""
    n_steps = min(len(spectra["pred"]), len(spectra["true"]))
    return [int(s) for s in spectra["steps"]][:n_steps], len(spectra["shell"])


def _spectrum_note(pred: np.ndarray, steps: list[int]) -> str:
    """Legend text for a row's predicted spectra `pred` [panels, K] (NaN where not finite): which panels it cannot
    draw."""
    drawable = np.isfinite(pred).any(axis=1)
    if drawable.all():
        return ""
    if not drawable.any():
        return " (no finite values)"
    return f" (no finite values at step {', '.join(str(s) for s, ok in zip(steps, drawable, strict=True) if not ok)})"


def spectra_figure(table: Table) -> Figure | None:
    """The figure of :func:`plot_spectra`; None if no result holds spectra."""
    rows = [(row, [_spectra(r) for r in row["results"]]) for row in table.rows]
    rows = [(row, spectra) for row, spectra in rows if all(s is not None for s in spectra)]
    if not rows:
        return None
    reference = rows[0][1][0]
    all_steps, n_shells = _spectrum_shape(reference)
    steps = all_steps[:_MAX_SPECTRUM_PANELS]
    if not steps:
        return None
    from matplotlib.lines import Line2D
    from matplotlib.ticker import NullFormatter

    shell = as_float_array(reference["shell"])
    keep = shell > 0
    n_cols = len(steps) if len(steps) <= 3 else 2  # four panels as 2 x 2: the figure stays readable when scaled
    n_rows = -(-len(steps) // n_cols)
    fig = new_figure(3.5 * n_cols + 2.4, 3.2 * n_rows + 0.7)
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()[: len(steps)]
    true = as_float_array(reference["true"]).sum(axis=1)  # [S, K]
    handles = [Line2D([], [], color="black", linewidth=2.0)]
    labels = ["truth"]
    for i, ax in enumerate(axes):
        ax.loglog(shell[keep], true[i][keep], color="black", linewidth=2.0)
    for row, spectra in rows:
        if not all(_spectrum_shape(s)[0][: len(steps)] == steps and _spectrum_shape(s)[1] == n_shells
                   for s in spectra):
            handles.append(Line2D([], [], color="0.6", linestyle=":"))
            labels.append(wrapped(f"{row['name']} (spectra kept at other steps or shells: not drawn)"))
            continue
        with np.errstate(invalid="ignore"):
            pred = np.stack([as_float_array(s["pred"]).sum(axis=1)[: len(steps)] for s in spectra]).mean(axis=0)
        style = {"linestyle": "--"} if row["model"] == SOLVER_MODEL else {}
        lines = [ax.loglog(shell[keep], pred[i][keep], linewidth=1.0, **style)[0] for i, ax in enumerate(axes)]
        handles.append(lines[0])
        labels.append(wrapped(row["name"] + _spectrum_note(pred[:, keep], steps)))
        for line in lines[1:]:
            line.set_color(lines[0].get_color())
    for i, (ax, step) in enumerate(zip(axes, steps, strict=True)):
        positive = true[i][keep][true[i][keep] > 0]
        if positive.size:  # a coarse solver's zeroed modes would stretch the axis to 1e-35
            ax.set_ylim(bottom=float(positive.min()) / 10)
        for edge in as_float_array(reference.get("band_edges") or []):
            if np.isfinite(edge):
                ax.axvline(float(edge), color="0.5", linestyle=":", linewidth=1.0)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(f"step {step}")
        ax.set_xlabel(literal(reference.get("shell_unit") or "shell"))
        ax.grid(True, alpha=0.3, which="both")
    for ax in axes[::n_cols]:
        ax.set_ylabel("energy per shell")
    legend_beside(axes[min(n_cols, len(axes)) - 1], (handles, labels), fontsize="x-small")
    fig.suptitle(literal(f"{table.name}: energy spectra (trajectory mean, all fields)"))
    return fig


def plot_spectra(table: Table, path: Path) -> Path | None:
    """Energy spectra (summed over fields) of every row and of the truth at the steps the results kept, one panel
    per step (at most four); band edges dotted; one legend beside the panels. None (nothing written) if no result
    holds spectra. A row whose spectra were kept at other steps or on other shells than the first row's is listed,
    saying so, and not drawn; a row with no finite spectrum at some step says so too."""
    fig = spectra_figure(table)
    return None if fig is None else save(fig, path)


def _draw_solver_rows(ax: Axes, solver: list[tuple[dict, dict, dict]], goal: str, caption: str,
                      color: str | None) -> list[tuple[float, float, str]]:
    """Solver rows of one rollout: the Pareto frontier as a line, the others as open squares (`color`: None takes the
    next of matplotlib's cycle). Returns (throughput, accuracy, name) of every solver point, to be labelled."""
    front = {p.label for p in pareto_front([FrontierPoint(r["name"], a["mean"], v["mean"]) for r, a, v in solver],
                                           goal)}
    on_front = sorted([p for p in solver if p[0]["name"] in front], key=lambda p: p[2]["mean"])
    if on_front:
        line = ax.plot([p[2]["mean"] for p in on_front], [p[1]["mean"] for p in on_front], "-s", color=color,
                       label=wrapped(f"solver frontier{caption}"))
        color = line[0].get_color()
    off_front = [p for p in solver if p[0]["name"] not in front]
    if off_front:
        ax.plot([p[2]["mean"] for p in off_front], [p[1]["mean"] for p in off_front], "s", color=color,
                markerfacecolor="none", label=wrapped(f"solver, off the frontier{caption}"))
    return [(speed["mean"], acc["mean"], row["name"]) for row, acc, speed in (*on_front, *off_front)]


def frontier_figure(table: Table) -> Figure | None:
    """The figure of :func:`plot_frontier`; None if no row has both numbers."""
    metric, direction = table.headline
    points, missing = [], []
    for row in table.rows:
        acc, speed = row[metric], row["throughput_traj_steps_per_s"]
        if acc["mean"] is not None and speed["mean"] is not None and speed["mean"] > 0:
            points.append((row, acc, speed))
        else:
            missing.append(f"{row['name']} (no finite {metric if acc['mean'] is None else 'throughput'}: not drawn)")
    if not points:
        return None
    fig = new_figure(9.5, 5.0)
    ax = fig.add_subplot(1, 1, 1)
    solver = [p for p in points if p[0]["model"] == SOLVER_MODEL]
    goal = "max" if direction == "desc" else "min"
    by_kind: dict[Any, list[tuple[dict, dict, dict]]] = {}
    for p in solver:
        by_kind.setdefault(p[0]["rollout"], []).append(p)
    shown = differing(list(by_kind))
    named: list[tuple[float, float, str]] = []
    for i, (kind, group) in enumerate(by_kind.items()):
        named += _draw_solver_rows(ax, group, goal, f" ({kind.describe(shown)})" if shown else "",
                                   "black" if i == 0 else None)
    surrogates = [p for p in points if p[0]["model"] != SOLVER_MODEL]
    for i, (row, acc, speed) in enumerate(surrogates):
        ax.errorbar(speed["mean"], acc["mean"], xerr=speed["std"] or None, yerr=acc["std"] or None,
                    fmt=_SURROGATE_MARKERS[i // 10 % len(_SURROGATE_MARKERS)], capsize=3, label=wrapped(row["name"]))
    for text in missing:  # listed, so that a row that diverged is not silently absent
        ax.plot([], [], linestyle="none", marker="s", markerfacecolor="none", markeredgecolor="0.7",
                label=wrapped(text))
    ax.set_xscale("log")
    ax.margins(x=0.12, y=0.1)  # room for the labels of the outermost points
    ax.set_xlabel("throughput (trajectory-steps / s, higher is cheaper)")
    ax.set_ylabel(literal(f"{metric} ({'higher' if direction == 'desc' else 'lower'} is better)"))
    title = f"{table.name}: accuracy vs cost"
    if not solver:
        title += " (no solver rows)"
    ax.set_title(literal(title))
    ax.grid(True, alpha=0.3, which="both")
    legend_beside(ax)
    named += [(speed["mean"], acc["mean"], row["name"]) for row, acc, speed in surrogates]
    place_labels(ax, [(x, y) for x, y, _ in named], [name for _, _, name in named])
    return fig


def plot_frontier(table: Table, path: Path) -> Path | None:
    """The accuracy-cost plane: throughput (log x) against the headline metric; the solver settings on the Pareto
    frontier as a line, the others as open squares, each labelled with its name (labels never overlap, leader lines
    where a label sits away from its point), every other row as a point in the legend with its seed std as error
    bars. Solver rows scored on different rollouts or devices (`pdebench.rollout.frontier.RolloutKind`) make one
    frontier each, named by what tells them apart. None if no row has both numbers."""
    fig = frontier_figure(table)
    return None if fig is None else save(fig, path)
