"""What every leaderboard plot shares: literal text, result arrays as floats, a headless figure, atomic PNG writing,
legends outside the data, and point labels that neither overlap nor leave the axes.

Figures use matplotlib's Agg canvas directly (no pyplot, no global backend switch), so they draw headless and do not
disturb an interactive session that imports pdebench; matplotlib is imported only once a figure is made. Figures use
matplotlib's constrained layout, which keeps titles, colourbars and legends placed outside the axes inside the figure.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pdebench.data.atomic import atomic_file

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.legend import Legend
    from matplotlib.text import Annotation

LABEL_WIDTH = 36
"""Characters after which a legend entry or point label wraps onto a new line (labels come from result files)."""

DPI = 110


def literal(text: Any) -> str:
    """`text` as matplotlib shows it literally: every `$` escaped, so no part of it is read as mathtext."""
    return str(text).replace("$", r"\$")


def wrapped(text: Any) -> str:
    """`text` shown literally (:func:`literal`), wrapped at :data:`LABEL_WIDTH` characters, so one long label cannot
    squeeze the axes out of its figure."""
    return "\n".join(textwrap.wrap(literal(text), LABEL_WIDTH, break_on_hyphens=False)) or literal(text)


def as_float_array(values: Any) -> np.ndarray:
    """Nested lists with None (a non-finite value in a result file) -> float64 array, NaN for None and inf."""
    arr = np.array(values, dtype=object)
    floats = np.where(arr == None, np.nan, arr).astype(np.float64)  # noqa: E711 (element-wise comparison)
    return np.where(np.isfinite(floats), floats, np.nan)


def new_figure(width: float, height: float) -> Figure:
    """An empty figure of `width` x `height` inches with constrained layout, on its own Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path: Path) -> Path:
    """Write `fig` as PNG to `path` atomically (`pdebench.data.atomic.atomic_file`: a temporary sibling renamed onto
    `path`, so a symbolic link at `path` is replaced, never followed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as fh:
        fig.savefig(fh, format="png")
    return path


def legend_beside(ax: Axes, entries: tuple[Sequence[Any], Sequence[str]] | None = None,
                  fontsize: str = "small") -> Legend | None:
    """A legend to the right of `ax`, outside the data (constrained layout makes room for it), of `entries`
    (handles, labels; default: what `ax` holds); two columns once it holds more entries than fit one beside the
    figure's height. None where there is nothing to list."""
    handles, labels = entries if entries is not None else ax.get_legend_handles_labels()
    if not handles:
        return None
    rows = max(8, int(ax.figure.get_figheight() * 72 / 14))  # entries of small text that fit the figure's height
    return ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                     fontsize=fontsize, ncols=1 if len(handles) <= rows else 2)


# (dx, dy) directions tried around a point, right of it first: labels read left to right
_DIRECTIONS = ((1, 0), (1, 1), (1, -1), (0, 1), (0, -1), (-1, 0), (-1, 1), (-1, -1))
_RADII = (6, 14, 26, 40, 58, 80)
"""Distances (points) from a point to its label's near edge tried in turn; beyond the first, a leader line."""


def _aligned(dx: int, dy: int) -> dict[str, str]:
    return {"ha": {1: "left", 0: "center", -1: "right"}[dx], "va": {1: "bottom", 0: "center", -1: "top"}[dy]}


def place_labels(ax: Axes, points: Sequence[tuple[float, float]], labels: Sequence[str],
                 fontsize: str = "x-small") -> list[Annotation]:
    """Label data `points` of `ax` with `labels` (shown literally) so that no label overlaps another label or a
    point and every label stays inside the axes: each tries positions around its point, nearest first, and takes
    the first free one; a label set off further than the nearest ring gets a leader line to its point. Where no
    position is free (a crowded plot), the one overlapping least is taken.

    Call it once the axes' limits and the figure layout are final (it draws the figure to measure text). Returns the
    annotations, in the order of `points`; they take no part in the layout (they stay inside the axes).
    """
    from matplotlib.transforms import Bbox

    fig = ax.figure
    fig.canvas.draw()  # settles the constrained layout and the transforms
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    half = 5.0 * fig.dpi / 72.0  # half the side of the box kept free around each point (a marker)
    anchors = [ax.transData.transform(p) for p in points]
    taken = [Bbox.from_extents(x - half, y - half, x + half, y + half) for x, y in anchors]
    placed = []
    for point, label in zip(points, labels, strict=True):
        probe = ax.annotate(literal(label), point, xycoords="data", xytext=(0, 0), textcoords="offset points",
                            fontsize=fontsize, annotation_clip=False)
        best: tuple[float, tuple[float, float], dict[str, str], Any] | None = None
        for radius in _RADII:
            for dx, dy in _DIRECTIONS:
                norm = (dx * dx + dy * dy) ** 0.5
                offset, align = (radius * dx / norm, radius * dy / norm), _aligned(dx, dy)
                probe.xyann = offset
                probe.set(**align)
                box = probe.get_window_extent(renderer)
                outside = max(frame.x0 - box.x0, box.x1 - frame.x1, frame.y0 - box.y0, box.y1 - frame.y1, 0.0)
                cost = sum(_overlap_area(box, other) for other in taken) + 1e6 * outside
                if best is None or cost < best[0]:
                    best = (cost, offset, align, box)
            if best is not None and best[0] == 0:
                break
        probe.remove()
        assert best is not None
        _, offset, align, box = best
        leader = {"arrowprops": {"arrowstyle": "-", "color": "0.45", "linewidth": 0.6, "shrinkA": 0.0,
                                 "shrinkB": 3.0}} if max(map(abs, offset)) > _RADII[0] + 0.5 else {}
        note = ax.annotate(literal(label), point, xycoords="data", xytext=offset, textcoords="offset points",
                           fontsize=fontsize, annotation_clip=False, **align, **leader)
        note.set_in_layout(False)
        taken.append(box)
        placed.append(note)
    return placed


def _overlap_area(a: Any, b: Any) -> float:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return width * height if width > 0 and height > 0 else 0.0
