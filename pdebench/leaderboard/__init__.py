"""Leaderboard: result files -> per-dataset Markdown/CSV/LaTeX tables, PNG plots and one static HTML page.

The package stands on the result records (`pdebench.rollout.results`) alone: it imports no model, solver or
training code, and matplotlib only once a plot is drawn. The helpers behind these entry points (cell formatting,
escaping, aggregation) live in the modules: `tables`, `render`, `html`, `plots` (with `figures` and `sample_plot`),
`loading`, `publish`.
"""

from pdebench.leaderboard.build import Leaderboard, make_leaderboard, write_leaderboard, write_tables
from pdebench.leaderboard.config import leaderboard_config
from pdebench.leaderboard.html import leaderboard_page, table_html
from pdebench.leaderboard.loading import SkippedResultWarning, load_results
from pdebench.leaderboard.plots import plot_curves, plot_frontier, plot_sample, plot_spectra
from pdebench.leaderboard.publish import LeaderboardWriteError
from pdebench.leaderboard.render import to_csv, to_latex, to_markdown
from pdebench.leaderboard.tables import Column, Table, build_tables, leaderboard_rows

__all__ = [
    "Column",
    "Leaderboard",
    "LeaderboardWriteError",
    "SkippedResultWarning",
    "Table",
    "build_tables",
    "leaderboard_config",
    "leaderboard_page",
    "leaderboard_rows",
    "load_results",
    "make_leaderboard",
    "plot_curves",
    "plot_frontier",
    "plot_sample",
    "plot_spectra",
    "table_html",
    "to_csv",
    "to_latex",
    "to_markdown",
    "write_leaderboard",
    "write_tables",
]
