"""Leaderboard plots: per-step rollout curves, one line per label.

Uses matplotlib's Agg canvas directly (no pyplot, no global backend switch), so it works headless
and does not disturb an interactive session that imports pdebench.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pdebench.leaderboard.tables import leaderboard_rows, to_csv, to_markdown

CORR_REFERENCE = 0.8
"""Correlation level drawn as a dashed line on correlation plots."""

_ERROR_METRICS = {"mse", "rmse", "nrmse", "vrmse"}


def _as_float_array(values: list) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def plot_curves(results_for_dataset: list[dict], path: Path, metric: str = "corr") -> Path:
    """Plot a per-step metric against rollout time and save it as PNG.

    Args:
        results_for_dataset: results of ONE dataset (any labels and seeds).
        path: output PNG path (parents are created).
        metric: a key of the results' ``curves`` (``corr``, ``nrmse``, ``vrmse``, ``mse``, ...).

    One line per label: the mean over seeds (truncated to the shortest seed's curve), with the
    min-max band over seeds shaded. Time is ``curves["time"]`` (PDE time units after the last input
    frame). Correlation plots get a dashed line at 0.8; error plots use a log y-axis. Results without
    the requested curve are left out. Labels are ordered as on the leaderboard.

    Returns:
        ``path``.
    """
    if not results_for_dataset:
        raise ValueError("plot_curves needs at least one result")
    datasets = sorted({str(r["dataset"]) for r in results_for_dataset})
    if len(datasets) != 1:
        raise ValueError(f"plot_curves takes the results of one dataset, got {datasets}")
    dataset = datasets[0]
    order = [row["label"] for row in leaderboard_rows(results_for_dataset)[dataset]]

    fig = Figure(figsize=(7.0, 4.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    positive = True
    plotted = 0
    for label in order:
        curves = [
            r["curves"] for r in results_for_dataset
            if str(r["label"]) == label and metric in r["curves"] and "time" in r["curves"]
        ]
        if not curves:
            continue
        n = min(min(len(c[metric]), len(c["time"])) for c in curves)
        if n == 0:
            continue
        time = _as_float_array(curves[0]["time"][:n])
        stack = np.stack([_as_float_array(c[metric][:n]) for c in curves])
        with np.errstate(invalid="ignore"):
            mean = stack.mean(axis=0)
            lo, hi = stack.min(axis=0), stack.max(axis=0)
        (line,) = ax.plot(time, mean, label=f"{label} ({len(curves)} seed{'s' if len(curves) > 1 else ''})")
        if len(curves) > 1:
            ax.fill_between(time, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
        finite = stack[np.isfinite(stack)]
        positive = positive and bool((finite > 0).all())
        plotted += 1

    if metric == "corr":
        ax.axhline(
            CORR_REFERENCE, color="0.3", linestyle="--", linewidth=1.0, label=f"corr = {CORR_REFERENCE}"
        )
        ax.set_ylim(min(-0.05, ax.get_ylim()[0]), 1.05)
    elif metric in _ERROR_METRICS and positive and plotted:
        ax.set_yscale("log")
    ax.set_xlabel("rollout time (PDE time units)")
    ax.set_ylabel(metric)
    ax.set_title(f"{dataset}: {metric} over the rollout")
    ax.grid(True, alpha=0.3)
    if plotted or metric == "corr":
        ax.legend(loc="best", fontsize="small")
    fig.tight_layout()

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def _safe_name(dataset: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", dataset).strip("._") or "dataset"


def write_leaderboard(results: list[dict], out_dir: Path) -> list[Path]:
    """Write ``<out_dir>/<dataset>.md``, ``<dataset>.csv`` and ``<dataset>_corr.png`` per dataset.

    Dataset names are made file-system safe (runs of characters other than ``A-Za-z0-9._-`` become
    ``_``). Returns the written paths, three per dataset, datasets in sorted order.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    names: dict[str, str] = {}
    for dataset, rows in leaderboard_rows(results).items():
        name = _safe_name(dataset)
        if name in names:
            raise ValueError(f"datasets {names[name]!r} and {dataset!r} map to the same file name {name!r}")
        names[name] = dataset
        md = out_dir / f"{name}.md"
        md.write_text(to_markdown(dataset, rows), encoding="utf-8")
        csv_path = out_dir / f"{name}.csv"
        csv_path.write_text(to_csv(rows), encoding="utf-8")
        png = plot_curves([r for r in results if str(r["dataset"]) == dataset], out_dir / f"{name}_corr.png")
        written += [md, csv_path, png]
    return written
