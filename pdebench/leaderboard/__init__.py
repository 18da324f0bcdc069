"""Leaderboard: aggregate result files into per-dataset Markdown/CSV tables and rollout plots."""

from pdebench.leaderboard.build import Leaderboard, make_leaderboard
from pdebench.leaderboard.plots import plot_curves, write_leaderboard
from pdebench.leaderboard.tables import (
    DEFAULT_HEADLINE,
    csv_header,
    format_mean_std,
    format_number,
    headline_of,
    leaderboard_rows,
    load_results,
    to_csv,
    to_markdown,
    value_columns,
)

__all__ = [
    "DEFAULT_HEADLINE",
    "csv_header",
    "format_mean_std",
    "format_number",
    "headline_of",
    "Leaderboard",
    "leaderboard_rows",
    "load_results",
    "make_leaderboard",
    "plot_curves",
    "to_csv",
    "to_markdown",
    "value_columns",
    "write_leaderboard",
]
