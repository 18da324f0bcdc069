"""Leaderboard tables: load result files, aggregate seeds per label, render Markdown and CSV.

Aggregation rules (per dataset, per label, per column):

* ``mean`` is the mean over seeds and ``std`` the sample standard deviation over seeds (``ddof=1``),
  0 with a single seed.
* If any seed lacks a value or has ``None`` (undefined / not finite, e.g. a diverged rollout), the
  column's mean and std are ``None``: a model is not credited with the seeds that survived.
* Rows are sorted by the headline metric of the dataset's PDE, which the result files carry from the dataset's
  manifest (``benchmark.headline``; :data:`DEFAULT_HEADLINE` for results without it); ``None`` sorts last, ties
  by label. The high-correlation columns are those of the thresholds the results were scored with.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pdebench.rollout.results import ResultError, read_result, try_read_result

DEFAULT_HEADLINE: tuple[str, str] = ("vrmse_mean", "asc")
"""(summary key, "asc" | "desc") for results that record no benchmark facts."""

LEAD_COLUMNS: tuple[str, ...] = ("label", "model", "seeds")
"""Identity columns of every row."""

TAIL_COLUMNS: tuple[str, ...] = (
    "one_step_nrmse",
    "nrmse_gmean",
    "vrmse_mean",
    "stable_horizon_median",
    "throughput_traj_steps_per_s",
)
"""Value columns after the high-correlation times, in display order."""

_CORR_TIME = re.compile(r"^corr_time_(\d+(?:\.\d+)?)$")


def headline_of(results: Sequence[dict]) -> tuple[str, str]:
    """The (summary key, "asc" | "desc") one dataset's results are sorted by: the `benchmark` facts the result
    files copied from the dataset's manifest (`headline`, `headline_goal`), else :data:`DEFAULT_HEADLINE`.

    Raises:
        ResultError: results of one dataset record different headlines.
    """
    found = {(str(b["headline"]), "desc" if b.get("headline_goal") == "max" else "asc")
             for r in results if isinstance(b := r.get("benchmark"), dict) and b.get("headline")}
    if len(found) > 1:
        raise ResultError(f"results of dataset {results[0]['dataset']!r} disagree on the headline metric: {found}")
    return found.pop() if found else DEFAULT_HEADLINE


def value_columns(results: Sequence[dict]) -> tuple[str, ...]:
    """Aggregated columns for one dataset: n_parameters, the high-correlation time of every threshold the results
    were scored with (`rollout.thresholds`), the median first crossing of the lowest one, then :data:`TAIL_COLUMNS`;
    the headline metric is always included."""
    thresholds = sorted({m.group(1) for r in results for key in (r.get("summary") or {})
                         if (m := _CORR_TIME.match(key))}, key=float)
    columns = ["n_parameters", *(f"corr_time_{t}" for t in thresholds)]
    if thresholds:
        columns.append(f"corr_time_median_{thresholds[0]}")
    columns += TAIL_COLUMNS
    headline = headline_of(results)[0]
    if headline not in columns:
        columns.insert(1, headline)
    return tuple(columns)


def row_value_columns(rows: Sequence[dict]) -> tuple[str, ...]:
    """The aggregated columns rows were built with (see :func:`leaderboard_rows`)."""
    return tuple(rows[0]["columns"]) if rows else ("n_parameters", *TAIL_COLUMNS)


def load_results(paths_or_dirs: Sequence[Path]) -> list[dict]:
    """Load result files.

    Args:
        paths_or_dirs: result files (validated strictly) and/or directories, searched recursively for
            ``*.json``; JSON files in a directory that are not results (no ``format`` key, or another
            format) are skipped.

    Returns:
        The result dicts, each file once, in a deterministic (sorted path) order.

    Raises:
        ResultError: a path does not exist, or a result file is broken (the message names the file).
    """
    results: list[dict] = []
    seen: set[Path] = set()
    for entry in paths_or_dirs:
        entry = Path(entry)
        if entry.is_dir():
            for file in sorted(entry.rglob("*.json")):
                key = file.resolve()
                if key in seen or not file.is_file():
                    continue
                seen.add(key)
                data = try_read_result(file)
                if data is not None:
                    results.append(data)
        elif entry.is_file():
            key = entry.resolve()
            if key not in seen:
                seen.add(key)
                results.append(read_result(entry))
        else:
            raise ResultError(f"Result path {entry} does not exist.")
    return results


def _value(result: dict, column: str) -> Any:
    summary = result.get("summary") or {}
    if column in summary:
        return summary[column]
    return result.get(column)


def _aggregate(values: list[Any]) -> dict[str, float | None]:
    numbers: list[float] = []
    for v in values:
        if v is None or isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return {"mean": None, "std": None}
        numbers.append(float(v))
    if not numbers:
        return {"mean": None, "std": None}
    arr = np.asarray(numbers, dtype=np.float64)
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return {"mean": float(arr.mean()), "std": std}


def _sort_key(row: dict, metric: str, direction: str) -> tuple:
    mean = row.get(metric, {}).get("mean") if isinstance(row.get(metric), dict) else None
    if mean is None:
        return (1, 0.0, row["label"])
    return (0, -mean if direction == "desc" else mean, row["label"])


def leaderboard_rows(results: list[dict]) -> dict[str, list[dict]]:
    """Aggregate results into leaderboard rows.

    Args:
        results: result dicts (see :mod:`pdebench.rollout.results`).

    Returns:
        dataset -> rows sorted by the headline metric. Each row has ``dataset``, ``pde``, ``label``,
        ``model`` (models of the label's results joined by "/" if they differ), ``seeds`` (count),
        ``seed_values`` (sorted list), ``headline`` (metric, "asc" | "desc"), ``columns`` (the dataset's
        :func:`value_columns`) and, for each of those columns, ``{"mean": float | None, "std": float | None}``.
        Datasets are in sorted order.

    Raises:
        ResultError: two results share dataset, label and seed.
    """
    groups: dict[str, dict[str, list[dict]]] = {}
    for r in results:
        by_label = groups.setdefault(str(r["dataset"]), {})
        by_label.setdefault(str(r["label"]), []).append(r)
    table: dict[str, list[dict]] = {}
    for dataset in sorted(groups):
        rows = []
        members = [r for group in groups[dataset].values() for r in group]
        pde = str(members[0]["pde"])
        metric, direction = headline_of(members)
        columns = value_columns(members)
        for label, group in groups[dataset].items():
            seeds = [r["seed"] for r in group]
            if len(set(map(repr, seeds))) != len(seeds):
                raise ResultError(
                    f"Dataset {dataset!r}, label {label!r} has several results for the same seed {seeds}; "
                    "pass each evaluation once."
                )
            models = list(dict.fromkeys(str(r["model"]) for r in group))
            row: dict[str, Any] = {
                "dataset": dataset,
                "pde": pde,
                "label": label,
                "model": "/".join(models),
                "seeds": len(group),
                "seed_values": sorted(seeds, key=repr),
                "headline": (metric, direction),
                "columns": columns,
            }
            for column in columns:
                row[column] = _aggregate([_value(r, column) for r in group])
            rows.append(row)
        rows.sort(key=lambda row, m=metric, d=direction: _sort_key(row, m, d))
        table[dataset] = rows
    return table


def _fixed_decimals(x: float, sig: int) -> int | None:
    """Decimals that show ``sig`` significant digits in fixed point, or None if scientific is better."""
    magnitude = math.floor(math.log10(abs(x)))
    if -3 <= magnitude < 5:
        return max(sig - 1 - magnitude, 0)
    return None


def format_number(x: float | None, sig: int = 3) -> str:
    """``x`` with ``sig`` significant digits, fixed-point for 1e-3 <= |x| < 1e5, else scientific."""
    if x is None or not math.isfinite(x):
        return "—"
    if x == 0:
        return "0"
    decimals = _fixed_decimals(x, sig)
    return f"{x:.{sig - 1}e}" if decimals is None else f"{x:.{decimals}f}"


def format_mean_std(mean: float, std: float) -> str:
    """``"mean ± std"``: std with 2 significant digits, mean with 3 and at least to the std's last digit.

    E.g. ``(1000.5, 0.707) -> "1000.50 ± 0.71"``, ``(11.0, 1.414) -> "11.0 ± 1.4"``.
    """
    if not math.isfinite(mean) or not math.isfinite(std) or std == 0 or mean == 0:
        return f"{format_number(mean)} ± {format_number(std, 2)}"
    mean_decimals, std_decimals = _fixed_decimals(mean, 3), _fixed_decimals(std, 2)
    if mean_decimals is None or std_decimals is None:
        return f"{format_number(mean)} ± {format_number(std, 2)}"
    decimals = min(max(mean_decimals, std_decimals), mean_decimals + 3)
    return f"{mean:.{decimals}f} ± {std:.{std_decimals}f}"


def _cell(column: str, stats: dict[str, float | None], seeds: int) -> str:
    mean, std = stats["mean"], stats["std"]
    if mean is None:
        return "—"
    if column == "n_parameters":
        text = f"{round(mean):,}"
        return text if not std else f"{text} ± {round(std):,}"
    if seeds < 2 or std is None:
        return format_number(mean)
    return format_mean_std(mean, std)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(dataset: str, rows: list[dict]) -> str:
    """Render one dataset's rows as a Markdown section: heading, sort note and table.

    Cells show ``mean ± std`` over seeds (just the mean with a single seed), see
    :func:`format_mean_std`; ``—`` marks a value that is missing or not finite in some seed.
    """
    lines = [f"## {_md_escape(dataset)}", ""]
    columns = (*LEAD_COLUMNS, *row_value_columns(rows))
    if rows:
        metric, direction = rows[0]["headline"]
        better = "higher" if direction == "desc" else "lower"
        lines += [
            f"Sorted by `{metric}` ({better} is better). Values are mean ± std over seeds (sample std). "
            "Times (`corr_time_*`, `stable_horizon_median`) are in PDE time units "
            "after the last input frame.",
            "",
        ]
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "|".join(["---", "---"] + ["---:"] * (len(columns) - 2)) + "|")
    for row in rows:
        cells = [_md_escape(str(row["label"])), _md_escape(str(row["model"])), str(row["seeds"])]
        cells += [_cell(c, row[c], int(row["seeds"])) for c in row_value_columns(rows)]
        lines.append("| " + " | ".join(cells) + " |")
    if not rows:
        lines += ["", "_No results._"]
    return "\n".join(lines) + "\n"


def csv_header(rows: Sequence[dict]) -> list[str]:
    """CSV columns: label, model, seeds, n_parameters, then ``<metric>_mean``, ``<metric>_std`` pairs."""
    header = [*LEAD_COLUMNS, "n_parameters"]
    for column in row_value_columns(rows)[1:]:
        header += [f"{column}_mean", f"{column}_std"]
    return header


def _csv_number(x: float | None) -> str:
    return "" if x is None else repr(float(x))


def to_csv(rows: list[dict]) -> str:
    """Render rows as CSV (:func:`csv_header` columns; empty cell = missing / not finite)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(csv_header(rows))
    for row in rows:
        n_params = row["n_parameters"]["mean"]
        out = [row["label"], row["model"], row["seeds"], "" if n_params is None else round(n_params)]
        for column in row_value_columns(rows)[1:]:
            out += [_csv_number(row[column]["mean"]), _csv_number(row[column]["std"])]
        writer.writerow(out)
    return buf.getvalue()
