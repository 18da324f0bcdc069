"""The sample plot: one test trajectory of the best-ranked surrogate next to the truth, as three rows of images
(truth, prediction, prediction − truth), each row with its colourbar, every panel with ticks on the grid's
coordinates.

A result stores the sample as `pdebench-evaluate` writes it (docs/metrics.md):
`{"trajectory", "field", "step": [T], "time": [T], "time_stride", "space_stride": [s_1, ...], "pred": [T, *space'],
"true": [T, *space'], "axes": [{"name", "units", "values": [n_i']}, ...]}`. `axes` holds the kept points'
coordinates per spatial axis (in array order) and their units; a sample without them (an older result file) is drawn
on grid indices of the full grid (every `space_stride`-th index), so a 256-point axis kept at every 2nd point reads
0 to 254, not 0 to 127.

1-D: space-time images, rollout time across, space up. 2-D (a box, a torus, or the sphere as lat x lon): the first,
middle and last kept frames across, `x` (or `lon`) across each panel. Truth and prediction share one colour scale
(the truth's range; sequential where the truth is never negative, else diverging); the error has its own, symmetric
about zero. A prediction that is not finite somewhere says so
in its row's title (those points are left blank).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pdebench.leaderboard.figures import as_float_array, literal, new_figure, save
from pdebench.leaderboard.tables import Table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["SampleAxis", "plot_sample", "sample_axes", "sample_figure"]

_HORIZONTAL = ("x", "lon")
"""Axis names drawn across a 2-D panel (the other axis runs up); without either, the last array axis runs across."""


@dataclass(frozen=True)
class SampleAxis:
    """One spatial axis of a sample: `label` (name and units, as the axis title) and `values` (the kept points'
    coordinates, float64 `[n]`, monotonic)."""

    name: str
    label: str
    values: np.ndarray


def _units_text(units: Any) -> str:
    """Units as an axis label shows them: `1 (fraction of L)` as `fraction of L`, a plain `1` as nothing."""
    text = str(units or "").strip()
    if text == "1":
        return ""
    if text.startswith("1 (") and text.endswith(")"):
        return text[3:-1]
    return text


def _monotonic(values: np.ndarray) -> bool:
    steps = np.diff(values)
    return bool(np.isfinite(values).all() and ((steps > 0).all() or (steps < 0).all()))


def _recorded_axis(entry: Any, size: int) -> SampleAxis | None:
    """A stored `axes` entry as a :class:`SampleAxis`, or None where it is not `{"name", "units", "values": [size]}`
    with finite, strictly monotonic values."""
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        return None
    try:
        values = as_float_array(entry.get("values"))
    except (TypeError, ValueError):
        return None
    if values.shape != (size,) or not _monotonic(values):
        return None
    units = _units_text(entry.get("units"))
    name = entry["name"]
    return SampleAxis(name, f"{name} ({units})" if units else name, values)


def sample_axes(sample: dict, shape: Sequence[int]) -> list[SampleAxis]:
    """The spatial axes of a sample whose arrays have spatial shape `shape`: the stored coordinates where the sample
    holds them for every axis, else grid indices of the full grid (`space_stride` apart) named `x` (1-D) or
    `axis 0`, `axis 1` (2-D)."""
    stored = sample.get("axes")
    if isinstance(stored, list) and len(stored) == len(shape):
        axes = [_recorded_axis(entry, n) for entry, n in zip(stored, shape, strict=True)]
        if all(a is not None for a in axes):
            return [a for a in axes if a is not None]
    strides = sample.get("space_stride")
    if not (isinstance(strides, list) and len(strides) == len(shape)
            and all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in strides)):
        strides = [1] * len(shape)
    names = ["x"] if len(shape) == 1 else [f"axis {i}" for i in range(len(shape))]
    return [SampleAxis(name, f"{name} (grid index)", np.arange(n, dtype=np.float64) * s)
            for name, n, s in zip(names, shape, strides, strict=True)]


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges around monotonic `centres` [n] -> [n + 1]: midpoints inside, half a spacing beyond the ends (one
    point: a cell of width 1)."""
    if centres.size == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    middle = 0.5 * (centres[1:] + centres[:-1])
    return np.concatenate([[2 * centres[0] - middle[0]], middle, [2 * centres[-1] - middle[-1]]])


def _values(sample: dict, key: str) -> np.ndarray:
    """`sample[key]` as a float array (NaN where not finite); empty where the sample lacks it or it is not numeric."""
    value = sample.get(key)
    try:
        return as_float_array(value if value is not None else [])
    except (TypeError, ValueError):
        return np.zeros(0)


def _sample_time(sample: dict, frames: int) -> tuple[np.ndarray, str]:
    """The kept frames' times and the axis title: the sample's times (time units after the last input frame), or
    model steps (`step`, else 1..T) where it has no finite times."""
    time = _values(sample, "time")
    if time.shape == (frames,) and _monotonic(time):
        return time, "rollout time (PDE time units)"
    steps = _values(sample, "step")
    if steps.shape == (frames,) and _monotonic(steps):
        return steps, "model step"
    return np.arange(1.0, frames + 1), "kept frame"


def _pick(table: Table) -> tuple[dict, dict] | None:
    """(row, sample) of the best-ranked trained row holding a sample; a reference row only where none does."""
    ranked = sorted(table.rows, key=lambda row: row["objective"] == "reference")  # stable: keeps the table order
    for row in ranked:
        sample = next((r["sample"] for r in row["results"] if isinstance(r.get("sample"), dict)), None)
        if sample is not None:
            return row, sample
    return None


def _limits(values: np.ndarray, symmetric: bool = False) -> dict[str, float]:
    """vmin/vmax of the finite `values` (symmetric about 0 if asked); a constant or empty field gets a unit range."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return {"vmin": -1.0, "vmax": 1.0}
    if symmetric:
        top = float(np.abs(finite).max()) or 1.0
        return {"vmin": -top, "vmax": top}
    low, high = float(finite.min()), float(finite.max())
    return {"vmin": low, "vmax": high} if high > low else {"vmin": low - 0.5, "vmax": high + 0.5}


def _not_finite_note(pred: np.ndarray, time: np.ndarray, time_title: str) -> str:
    """` (not finite from t = 3.2: blank)` where the prediction stops being finite, or
    ` (not finite at 12 of 800 points: blank)`; empty where it is finite everywhere."""
    bad = ~np.isfinite(pred.reshape(pred.shape[0], -1))
    if not bad.any():
        return ""
    frames = bad.any(axis=1)
    first = int(np.argmax(frames))
    if frames[first:].all() and bad[first:].all():
        where = f"t = {time[first]:.3g}" if time_title.startswith("rollout time") else f"{time_title} {time[first]:g}"
        return f" (not finite from {where}: blank)"
    return f" (not finite at {int(bad.sum())} of {bad.size} points: blank)"


@dataclass(frozen=True)
class _Row:
    """One row of the figure: its title, values `[T, *space]`, colour map, colour limits and colourbar label."""

    title: str
    values: np.ndarray
    cmap: str
    limits: dict[str, float]
    bar: str


def _when(time: np.ndarray, k: int, time_title: str) -> str:
    return f"t = {time[k]:.3g}" if time_title.startswith("rollout time") else f"{time_title} {time[k]:g}"


def _one_d(fig: Figure, rows: Sequence[_Row], axis: SampleAxis, time: np.ndarray, time_title: str) -> None:
    """Space-time images, one panel per row: rollout time across, space up."""
    grid = fig.subplots(len(rows), 1, sharex=True, squeeze=False)[:, 0]
    t_edges, x_edges = _edges(time), _edges(axis.values)
    for ax, row in zip(grid, rows, strict=True):
        image = ax.pcolormesh(t_edges, x_edges, row.values.T, cmap=row.cmap, shading="flat", **row.limits)
        ax.set_title(literal(row.title), fontsize="medium", loc="left")
        ax.set_ylabel(literal(axis.label))
        fig.colorbar(image, ax=ax, fraction=0.04, pad=0.015).set_label(literal(row.bar))
    grid[-1].set_xlabel(time_title)
    grid[-1].set_xlim(t_edges.min(), t_edges.max())
    grid[-1].set_ylim(x_edges.min(), x_edges.max())


def _two_d(fig: Figure, rows: Sequence[_Row], axes: Sequence[SampleAxis], time: np.ndarray, time_title: str) -> None:
    """One line of panels per row, the first, middle and last frames across, the axis named `x` or `lon` (else axis
    1) across each panel; one colourbar per row (its panels share a colour scale)."""
    frames = sorted({0, time.size // 2, time.size - 1})
    across = next((i for i, a in enumerate(axes) if a.name in _HORIZONTAL), 1)
    up = 1 - across
    x_edges, y_edges = _edges(axes[across].values), _edges(axes[up].values)
    grid = fig.subplots(len(rows), len(frames), sharex=True, sharey=True, squeeze=False)
    same_units = axes[0].label.partition(" (")[2] == axes[1].label.partition(" (")[2]
    for r, row in enumerate(rows):
        images = []
        for c, k in enumerate(frames):
            ax = grid[r, c]
            frame = row.values[k] if across == 1 else row.values[k].T  # [up, across]
            images.append(ax.pcolormesh(x_edges, y_edges, frame, cmap=row.cmap, shading="flat", **row.limits))
            when = _when(time, k, time_title)
            ax.set_title(literal(f"{row.title}, {when}") if c == 0 else when, fontsize="small", loc="left")
            if same_units:
                ax.set_aspect("equal")
            if r == len(rows) - 1:
                ax.set_xlabel(literal(axes[across].label))
            if c == 0:
                ax.set_ylabel(literal(axes[up].label))
        fig.colorbar(images[0], ax=list(grid[r]), fraction=0.04, pad=0.015).set_label(literal(row.bar))
    grid[0, 0].set_xlim(x_edges.min(), x_edges.max())
    grid[0, 0].set_ylim(y_edges.min(), y_edges.max())


def sample_figure(table: Table) -> Figure | None:
    """The figure of :func:`plot_sample`; None if no result of the table stores a sample."""
    picked = _pick(table)
    if picked is None:
        return None
    row, sample = picked
    true, pred = as_float_array(sample["true"]), as_float_array(sample["pred"])
    time, time_title = _sample_time(sample, true.shape[0])
    axes = sample_axes(sample, true.shape[1:])
    with np.errstate(over="ignore", invalid="ignore"):
        error = as_float_array(pred - true)
    field = str(sample.get("field") or "value")
    shared = _limits(true)
    cmap = "viridis" if shared["vmin"] >= 0 else "RdBu_r"  # a field that is never negative (a density) is sequential
    rows = [_Row("truth", true, cmap, shared, field),
            _Row(f"prediction: {row['name']}{_not_finite_note(pred, time, time_title)}", pred, cmap, shared, field),
            _Row("error", error, "PuOr_r", _limits(error, symmetric=True), f"{field}: prediction − truth")]
    if true.ndim == 2:
        fig = new_figure(10.0, 7.6)
        _one_d(fig, rows, axes[0], time, time_title)
    else:
        n_frames = len({0, time.size // 2, time.size - 1})
        fig = new_figure(3.0 * n_frames + 1.8, 8.6)
        _two_d(fig, rows, axes, time, time_title)
    fig.suptitle(literal(f"{table.name}: test trajectory {sample.get('trajectory', '?')}, field {field}"))
    return fig


def plot_sample(table: Table, path: Path) -> Path | None:
    """One test trajectory of the best-ranked surrogate (a trained row; a reference row only if there is none) next to
    the truth, if a result stores one under `sample` (see the module docstring): rows of truth, prediction and error,
    each with its colourbar, on the grid's coordinates. None (nothing written) if no result of the table stores a
    sample."""
    fig = sample_figure(table)
    return None if fig is None else save(fig, path)
