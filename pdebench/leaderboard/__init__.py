"""Leaderboard: aggregate result files into per-dataset Markdown/CSV tables and rollout plots."""

from pdebench.leaderboard.plots import plot_curves, write_leaderboard
from pdebench.leaderboard.tables import (
    COLUMNS,
    DEFAULT_HEADLINE,
    HEADLINE,
    VALUE_COLUMNS,
    csv_header,
    format_mean_std,
    format_number,
    headline_for,
    leaderboard_rows,
    load_results,
    to_csv,
    to_markdown,
)

__all__ = [
    "COLUMNS",
    "DEFAULT_HEADLINE",
    "HEADLINE",
    "VALUE_COLUMNS",
    "csv_header",
    "format_mean_std",
    "format_number",
    "headline_for",
    "leaderboard_rows",
    "load_results",
    "plot_curves",
    "to_csv",
    "to_markdown",
    "write_leaderboard",
]
