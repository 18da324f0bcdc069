"""Leaderboard plots of one table, as PNG: per-step curves, energy spectra and the accuracy-cost frontier.

Uses matplotlib's Agg canvas directly (no pyplot, no global backend switch), so it works headless and does not
disturb an interactive session that imports pdebench. matplotlib is imported by the functions that draw, so importing
the leaderboard (to build or render tables) does not load it. Rows are drawn in leaderboard order with the row's display
name; a row with several seeds is drawn as the seed mean with the min-max band over seeds shaded.

Text from result files (row names, a sample's field, a spectrum's unit) is drawn literally: matplotlib reads text
between two `$` as mathtext (and stops on `$\\foo{$`), so every `$` is escaped (:func:`literal`). Each PNG is
written atomically (a temporary sibling renamed into place), so a plot that exists is a whole plot.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pdebench.data.atomic import atomic_file
from pdebench.leaderboard.tables import SOLVER_MODEL, Table
from pdebench.rollout.frontier import FrontierPoint, differing, pareto_front

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CORR_REFERENCE = 0.8
"""Correlation level drawn as a dashed line on correlation plots."""

_ERROR_METRICS = {"mse", "rmse", "nrmse", "vrmse"}
_MAX_SPECTRUM_PANELS = 4


def literal(text: Any) -> str:
    """`text` as matplotlib shows it literally: every `$` escaped, so no part of it is read as mathtext."""
    return str(text).replace("$", r"\$")


def _as_float_array(values: Any) -> np.ndarray:
    """Nested lists with None (a non-finite value in a result file) -> float64 array, NaN for None and inf."""
    arr = np.array(values, dtype=object)
    floats = np.where(arr == None, np.nan, arr).astype(np.float64)  # noqa: E711 (element-wise comparison)
    return np.where(np.isfinite(floats), floats, np.nan)


def _figure(width: float = 7.0, height: float = 4.5) -> Figure:
    """An empty figure of `width` x `height` inches on its own Agg canvas (matplotlib imported here, see above)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    """Write `fig` as PNG to `path` atomically (`pdebench.data.atomic.atomic_file`: a temporary sibling renamed onto
    `path`, so a symbolic link at `path` is replaced, never followed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as fh:
        fig.savefig(fh, format="png")
    return path


def _series(row: dict, metric: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(time [T], values [seeds, T]) of a row's per-step curve, cut to its shortest seed; None if a seed lacks it."""
    curves = [r["curves"] for r in row["results"]]
    if not curves or any(metric not in c or "time" not in c for c in curves):
        return None
    n = min(min(len(c[metric]), len(c["time"])) for c in curves)
    if n == 0:
        return None
    return _as_float_array(curves[0]["time"][:n]), np.stack([_as_float_array(c[metric][:n]) for c in curves])


def plot_curves(table: Table, path: Path, metric: str = "corr") -> Path:
    """Plot a per-step metric of every row against rollout time (PDE time units after the last input frame).

    metric: a key of the results' `curves` (`corr`, `nrmse`, `vrmse`, ...). Rows whose results lack it are left
    out. Correlation plots get a dashed line at :data:`CORR_REFERENCE`; error plots a log y-axis.
    """
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    positive, plotted = True, 0
    for row in table.rows:
        series = _series(row, metric)
        if series is None:
            continue
        time, stack = series
        with np.errstate(invalid="ignore"):
            mean, lo, hi = stack.mean(axis=0), stack.min(axis=0), stack.max(axis=0)
        seeds = stack.shape[0]
        style = {"linestyle": "--"} if row["model"] == SOLVER_MODEL else {}
        (line,) = ax.plot(time, mean, label=literal(f"{row['name']} ({seeds} seed{'s' if seeds > 1 else ''})"),
                          **style)
        if seeds > 1:
            ax.fill_between(time, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
        finite = stack[np.isfinite(stack)]
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
    if plotted or metric == "corr":
        ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return _save(fig, path)


def _spectra(result: dict) -> dict | None:
    spectra = result.get("spectra")
    needed = ("steps", "shell", "pred", "true")
    return spectra if isinstance(spectra, dict) and all(spectra.get(k) is not None for k in needed) else None


def _spectrum_shape(spectra: dict) -> tuple[list[int], int]:
    """(kept steps, shells) of one result's spectra, as far as its `pred` and `true` arrays hold them."""
    n_steps = min(len(spectra["pred"]), len(spectra["true"]))
    return [int(s) for s in spectra["steps"]][:n_steps], len(spectra["shell"])


def plot_spectra(table: Table, path: Path) -> Path | None:
    """Energy spectra (summed over fields) of every row and of the truth at the steps the results kept, one panel
    per step (at most four); band edges dotted. None (nothing written) if no result holds spectra. A row whose
    spectra were kept at other steps or on other shells than the first row's is left out."""
    rows = [(row, [_spectra(r) for r in row["results"]]) for row in table.rows]
    rows = [(row, spectra) for row, spectra in rows if all(s is not None for s in spectra)]
    if not rows:
        return None
    reference = rows[0][1][0]
    all_steps, n_shells = _spectrum_shape(reference)
    steps = all_steps[:_MAX_SPECTRUM_PANELS]
    if not steps:
        return None
    from matplotlib.ticker import NullFormatter

    shell = _as_float_array(reference["shell"])
    fig = _figure(3.4 * len(steps) + 0.6, 3.8)
    axes = [fig.add_subplot(1, len(steps), i + 1) for i in range(len(steps))]
    true = _as_float_array(reference["true"]).sum(axis=1)  # [S, K]
    comparable = [(row, spectra) for row, spectra in rows
                  if all(_spectrum_shape(s)[0][: len(steps)] == steps and _spectrum_shape(s)[1] == n_shells
                         for s in spectra)]
    for i, (ax, step) in enumerate(zip(axes, steps, strict=True)):
        keep = shell > 0
        ax.loglog(shell[keep], true[i][keep], color="black", linewidth=2.0, label="truth")
        for row, spectra in comparable:
            pred = np.stack([_as_float_array(s["pred"]).sum(axis=1)[i] for s in spectra]).mean(axis=0)
            style = {"linestyle": "--"} if row["model"] == SOLVER_MODEL else {}
            ax.loglog(shell[keep], pred[keep], linewidth=1.0, label=literal(row["name"]), **style)
        positive = true[i][keep][true[i][keep] > 0]
        if positive.size:  # a coarse solver's zeroed modes would stretch the axis to 1e-35
            ax.set_ylim(bottom=float(positive.min()) / 10)
        for edge in _as_float_array(reference.get("band_edges") or []):
            if np.isfinite(edge):
                ax.axvline(float(edge), color="0.5", linestyle=":", linewidth=1.0)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(f"step {step}")
        ax.set_xlabel(literal(reference.get("shell_unit") or "shell"))
        ax.grid(True, alpha=0.3, which="both")
    axes[0].set_ylabel("energy per shell")
    axes[-1].legend(loc="best", fontsize="x-small")
    fig.suptitle(literal(f"{table.name}: energy spectra (trajectory mean, all fields)"))
    fig.tight_layout()
    return _save(fig, path)


def _draw_solver_rows(ax: Any, solver: list[tuple[dict, dict, dict]], goal: str, caption: str,
                      color: str | None) -> None:
    """Solver rows of one rollout: the Pareto frontier as a named curve, the others as open squares (`color`: None
    takes the next of matplotlib's cycle)."""
    front = {p.label for p in pareto_front([FrontierPoint(r["name"], a["mean"], v["mean"]) for r, a, v in solver],
                                           goal)}
    on_front = sorted([p for p in solver if p[0]["name"] in front], key=lambda p: p[2]["mean"])
    if on_front:
        line = ax.plot([p[2]["mean"] for p in on_front], [p[1]["mean"] for p in on_front], "-s", color=color,
                       label=literal(f"solver frontier{caption}"))
        color = line[0].get_color()
    off_front = [p for p in solver if p[0]["name"] not in front]
    if off_front:
        ax.plot([p[2]["mean"] for p in off_front], [p[1]["mean"] for p in off_front], "s", color=color,
                markerfacecolor="none", label=literal(f"solver, off the frontier{caption}"))
    for i, (row, acc, speed) in enumerate(on_front):
        ax.annotate(literal(row["name"]), (speed["mean"], acc["mean"]), textcoords="offset points",
                    xytext=(5, -12 - 9 * (i % 2)), fontsize="x-small")


def plot_frontier(table: Table, path: Path) -> Path | None:
    """The accuracy-cost plane: throughput (log x) against the headline metric; the solver settings on the Pareto
    frontier as a named curve, the others as open squares, every other row as a point with its seed std as
    error bars. Solver rows scored on different rollouts or devices (`pdebench.rollout.frontier.RolloutKind`) make
    one frontier each, named by what tells them apart. None if no row has both numbers."""
    metric, direction = table.headline
    points = []
    for row in table.rows:
        acc, speed = row[metric], row["throughput_traj_steps_per_s"]
        if acc["mean"] is not None and speed["mean"] is not None and speed["mean"] > 0:
            points.append((row, acc, speed))
    if not points:
        return None
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    solver = [p for p in points if p[0]["model"] == SOLVER_MODEL]
    goal = "max" if direction == "desc" else "min"
    by_kind: dict[Any, list[tuple[dict, dict, dict]]] = {}
    for p in solver:
        by_kind.setdefault(p[0]["rollout"], []).append(p)
    shown = differing(list(by_kind))
    for i, (kind, group) in enumerate(by_kind.items()):
        _draw_solver_rows(ax, group, goal, f" ({kind.describe(shown)})" if shown else "", "black" if i == 0 else None)
    for row, acc, speed in (p for p in points if p[0]["model"] != SOLVER_MODEL):
        ax.errorbar(speed["mean"], acc["mean"], xerr=speed["std"] or None, yerr=acc["std"] or None, fmt="o",
                    capsize=3, label=literal(row["name"]))
    ax.set_xscale("log")
    ax.set_xlabel("throughput (trajectory-steps / s, higher is cheaper)")
    ax.set_ylabel(literal(f"{metric} ({'higher' if direction == 'desc' else 'lower'} is better)"))
    title = f"{table.name}: accuracy vs cost"
    if not solver:
        title += " (no solver rows)"
    ax.set_title(literal(title))
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return _save(fig, path)


def _sample_time(sample: dict, frames: int) -> np.ndarray:
    """The sample's times, or the frame numbers 1..T where it has none or some is not finite."""
    time = _as_float_array(sample.get("time") or [])
    return time if time.shape == (frames,) and np.isfinite(time).all() else np.arange(1.0, frames + 1)


def plot_sample(table: Table, path: Path) -> Path | None:
    """One test trajectory of the best-ranked surrogate (a trained row; a reference row only if there is none) next to
    the truth, if a result stores one under `sample`:
    `{"trajectory": int, "field": str, "time": [T], "pred": [T, *space], "true": [T, *space]}`.

    1-D: space-time images (time down) of truth, prediction and error; 2-D (or the sphere, lat x lon): the first,
    middle and last sampled frames of truth and prediction. None if no result of the table stores a sample.
    """
    ranked = sorted(table.rows, key=lambda row: row["objective"] == "reference")  # stable: keeps the table order
    for row in ranked:
        sample = next((r["sample"] for r in row["results"] if isinstance(r.get("sample"), dict)), None)
        if sample is not None:
            break
    else:
        return None
    true, pred = _as_float_array(sample["true"]), _as_float_array(sample["pred"])
    time = _sample_time(sample, true.shape[0])
    finite = true[np.isfinite(true)]
    limits = {"vmin": float(finite.min()), "vmax": float(finite.max())} if finite.size else {}
    name = literal(row["name"])
    if true.ndim == 2:
        fig = _figure(10.0, 4.0)
        top, bottom = (float(time[0]), float(time[-1])) if time[-1] > time[0] else (time[0] - 0.5, time[0] + 0.5)
        with np.errstate(over="ignore", invalid="ignore"):
            error = _as_float_array(pred - true)
        for i, (title, data, cmap) in enumerate((("truth", true, "RdBu_r"), (name, pred, "RdBu_r"),
                                                 ("error", error, "PuOr_r"))):
            ax = fig.add_subplot(1, 3, i + 1)
            image = ax.imshow(data, aspect="auto", extent=(0, true.shape[1], bottom, top), cmap=cmap,
                              **(limits if i < 2 else {}))
            fig.colorbar(image, ax=ax, fraction=0.05)
            ax.set_title(title)
            ax.set_xlabel("grid point")
        fig.axes[0].set_ylabel("rollout time")
    else:
        frames = sorted({0, true.shape[0] // 2, true.shape[0] - 1})
        fig = _figure(3.2 * len(frames), 5.6)
        for j, k in enumerate(frames):
            for i, (title, data) in enumerate((("truth", true), (name, pred))):
                ax = fig.add_subplot(2, len(frames), i * len(frames) + j + 1)
                ax.imshow(data[k], cmap="RdBu_r", origin="lower", aspect="auto", **limits)
                ax.set_title(f"{title}, t = {time[k]:.3g}", fontsize="small")
                ax.set_xticks([])
                ax.set_yticks([])
    title = f"{table.name}: test trajectory {sample.get('trajectory', '?')} {sample.get('field') or ''}"
    fig.suptitle(literal(title.rstrip()))
    fig.tight_layout()
    return _save(fig, path)
