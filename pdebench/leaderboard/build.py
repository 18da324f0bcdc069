"""Write a leaderboard: per table Markdown, CSV, LaTeX and PNG plots, and one HTML page for all tables.

`make_leaderboard(cfg)` is the `pdebench-leaderboard` command as a library call, like `train` and `evaluate`: it
takes the typed `LeaderboardConfig` (a plain mapping is typed and checked at the entry), the Hydra main only prints
around it, and tests and scripts call it with a composed config and get the same checks.

The whole board is built in a staging folder beside `out_dir` and swapped in at the end (`pdebench.leaderboard.
publish`): a reader sees the previous board or the new one, never a mix, and a failed or killed build changes
nothing in `out_dir`. Files in `out_dir` that the leaderboard did not write are kept.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pdebench.config import LeaderboardConfig
from pdebench.console import progress_bar
from pdebench.data.atomic import atomic_write_text
from pdebench.data.names import inside
from pdebench.errors import MissingFile
from pdebench.leaderboard.config import leaderboard_config
from pdebench.leaderboard.html import leaderboard_page
from pdebench.leaderboard.loading import SkippedResultWarning, load_results
from pdebench.leaderboard.plots import plot_curves, plot_frontier, plot_sample, plot_spectra
from pdebench.leaderboard.publish import staged_folder
from pdebench.leaderboard.render import to_csv, to_latex, to_markdown
from pdebench.leaderboard.tables import Table, build_tables
from pdebench.rollout.result_content import ResultError

PAGE_NAME = "index.html"


@dataclass
class Leaderboard:
    """What one leaderboard build wrote: paths, each table's Markdown (for printing), the tables, and the messages
    of result files it skipped."""

    written: list[Path]
    markdown: dict[str, str]
    tables: list[Table] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def file_stem(name: str) -> str:
    """A table name made file-system safe: runs of characters other than `A-Za-z0-9._-@` become `_`.

    Table names come from result files (`<dataset>` or `<dataset>@<manifest hash>`), whose dataset is a checked name
    and whose hash is hexadecimal when read from a file; result dicts passed in directly get the same safety here.
    """
    return re.sub(r"[^A-Za-z0-9._@-]+", "_", name).strip("._") or "dataset"


def _stems(tables: Sequence[Table]) -> list[str]:
    """Each table's file stem; two tables that would share one are a ResultError naming both (their names come
    from the results given)."""
    stems: dict[str, str] = {}
    for table in tables:
        stem = file_stem(table.name)
        if stem in stems:
            raise ResultError(f"tables {stems[stem]!r} and {table.name!r} map to the same file name {stem!r}")
        stems[stem] = table.name
    return list(stems)


def _plots(table: Table, folder: Path, stem: str) -> list[tuple[str, Path]]:
    """Every plot the table's results allow, as (caption, path)."""
    made: list[tuple[str, Path | None]] = [
        ("correlation vs time", plot_curves(table, inside(folder, f"{stem}_corr.png"), "corr")),
        ("nRMSE vs time", plot_curves(table, inside(folder, f"{stem}_nrmse.png"), "nrmse")),
        ("energy spectra at chosen steps", plot_spectra(table, inside(folder, f"{stem}_spectra.png"))),
        ("sample rollout next to the truth", plot_sample(table, inside(folder, f"{stem}_sample.png"))),
        ("accuracy-cost frontier", plot_frontier(table, inside(folder, f"{stem}_frontier.png"))),
    ]
    return [(caption, path) for caption, path in made if path is not None]


def _write_board(tables: Sequence[Table], stems: Sequence[str], folder: Path, skipped: Sequence[str],
                 progress: bool) -> list[str]:
    """Write every table's files and the page into `folder`; returns the file names, the page last."""
    written: list[str] = []
    plots: dict[str, list[tuple[str, Path]]] = {}
    downloads: dict[str, list[tuple[str, str]]] = {}
    bar = progress_bar(len(tables), "leaderboard tables", "table", enabled=progress)
    for table, stem in zip(tables, stems, strict=True):
        for suffix, text in ((".md", to_markdown(table)), (".csv", to_csv(table)), (".tex", to_latex(table))):
            written.append(atomic_write_text(inside(folder, f"{stem}{suffix}"), text).name)
        plots[table.name] = _plots(table, folder, stem)
        written += [path.name for _, path in plots[table.name]]
        downloads[table.name] = [("Markdown", f"{stem}.md"), ("CSV", f"{stem}.csv"), ("LaTeX", f"{stem}.tex")]
        bar.update(1)
    bar.close()
    page = leaderboard_page(tables, plots, downloads, skipped)
    written.append(atomic_write_text(inside(folder, PAGE_NAME), page).name)
    return written


def write_tables(tables: Sequence[Table], out_dir: Path, skipped: Sequence[str] = (),
                 progress: bool = False) -> list[Path]:
    """Write `<stem>.md`, `.csv`, `.tex` and `<stem>_{corr,nrmse,spectra,sample,frontier}.png` per table (spectra and
    sample only where the results hold them) and `index.html` for all; returns the paths, the page last.

    The board replaces the previous one in `out_dir` as a whole (built beside it, then swapped in, see
    `pdebench.leaderboard.publish`): files a previous build wrote and this one does not are gone, files the
    leaderboard never wrote stay. Every path written resolves inside the new folder (`pdebench.data.names.inside`).

    Raises:
        ResultError: a ValueError: two tables map to one file name (before anything is written).
        LeaderboardWriteError: a ValueError: `out_dir` is not a folder or the file system refused a write (a full
            disk); one sentence, and `out_dir` keeps its previous board.
    """
    out_dir = Path(out_dir)
    stems = _stems(tables)
    with staged_folder(out_dir) as folder:
        written = _write_board(tables, stems, folder, skipped, progress)
    return [out_dir / name for name in written]


def write_leaderboard(results: Sequence[dict], out_dir: Path, progress: bool = False) -> list[Path]:
    """Build the tables of `results` and write them (see :func:`write_tables`)."""
    return write_tables(build_tables(results), out_dir, progress=progress)


def _sources(cfg: LeaderboardConfig) -> list[str]:
    """The result paths of `cfg.results`, which is one path (`results=runs/multirun/<date>`) or a list of them."""
    return [cfg.results] if isinstance(cfg.results, str) else list(cfg.results)


def make_leaderboard(cfg: LeaderboardConfig | Mapping[str, Any], progress: bool = True) -> Leaderboard:
    """Read every result file under `cfg.results` (directories such as `results/` or a Hydra sweep folder, or
    files) and write the leaderboard to `cfg.out_dir`.

    `cfg` is a `pdebench.config.LeaderboardConfig`; a plain mapping of that shape is typed and checked first
    (`pdebench.leaderboard.config.leaderboard_config`: an unknown key or an empty `results` is a ConfigError).

    A corrupt or partial result file, or one holding what no evaluation writes (a label, model, dataset or seed that
    breaks the name rule of `pdebench.data.names`, a value outside what its metric allows, a wrongly typed field), is
    skipped with a :class:`SkippedResultWarning` naming it and why (the page lists them too). A path that does not
    exist, or no usable result file at all, is a MissingFile (a FileNotFoundError) naming where it looked.
    `out_dir` is replaced as a whole (see :func:`write_tables`); a full disk is one sentence and leaves the previous
    board.
    """
    cfg = leaderboard_config(cfg)
    sources = _sources(cfg)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkippedResultWarning)
        results = load_results([Path(p) for p in sources])
        tables = build_tables(results)
    skipped = [str(w.message) for w in caught if issubclass(w.category, SkippedResultWarning)]
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if not tables:
        raise MissingFile(f"no usable result files found under {', '.join(map(str, sources))}; "
                          "run pdebench-evaluate first")
    written = write_tables(tables, Path(cfg.out_dir), skipped, progress)
    return Leaderboard(written, {t.name: to_markdown(t) for t in tables}, tables, skipped)
