"""Leaderboard: result files -> per-dataset Markdown/CSV/LaTeX tables, PNG plots and one static HTML page."""

from pdebench.leaderboard.build import Leaderboard, file_stem, make_leaderboard, write_leaderboard, write_tables
from pdebench.leaderboard.html import leaderboard_page, table_html, table_id
from pdebench.leaderboard.loading import SkippedResultWarning, load_results
from pdebench.leaderboard.plots import plot_curves, plot_frontier, plot_sample, plot_spectra
from pdebench.leaderboard.publish import LeaderboardWriteError
from pdebench.leaderboard.render import (
    cell_text,
    csv_header,
    csv_text,
    format_mean_std,
    format_number,
    latex_escape,
    md_escape,
    to_csv,
    to_latex,
    to_markdown,
)
from pdebench.leaderboard.tables import (
    DEFAULT_HEADLINE,
    Column,
    Table,
    aggregate,
    build_tables,
    headline_of,
    leaderboard_rows,
    objective_text,
    value_columns,
)

__all__ = [
    "DEFAULT_HEADLINE",
    "Column",
    "Leaderboard",
    "LeaderboardWriteError",
    "SkippedResultWarning",
    "Table",
    "aggregate",
    "build_tables",
    "cell_text",
    "csv_header",
    "csv_text",
    "file_stem",
    "format_mean_std",
    "format_number",
    "headline_of",
    "latex_escape",
    "leaderboard_page",
    "leaderboard_rows",
    "load_results",
    "make_leaderboard",
    "md_escape",
    "objective_text",
    "plot_curves",
    "plot_frontier",
    "plot_sample",
    "plot_spectra",
    "table_html",
    "table_id",
    "to_csv",
    "to_latex",
    "to_markdown",
    "value_columns",
    "write_leaderboard",
    "write_tables",
]
