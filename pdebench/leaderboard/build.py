"""Write a leaderboard: per table Markdown, CSV, LaTeX and PNG plots, and one HTML page for all tables.

`make_leaderboard(cfg)` is the `pdebench-leaderboard` command as a library call, like `train` and `evaluate`: the
Hydra main only prints around it, and tests and scripts call it with a composed config and get the same checks.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from pdebench.config import LeaderboardConfig, validate_config
from pdebench.data.atomic import atomic_write_text
from pdebench.leaderboard.html import leaderboard_page
from pdebench.leaderboard.loading import SkippedResultWarning, load_results
from pdebench.leaderboard.plots import plot_curves, plot_frontier, plot_sample, plot_spectra
from pdebench.leaderboard.render import to_csv, to_latex, to_markdown
from pdebench.leaderboard.tables import Table, build_tables

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
    """A table name made file-system safe: runs of characters other than `A-Za-z0-9._-@` become `_`."""
    return re.sub(r"[^A-Za-z0-9._@-]+", "_", name).strip("._") or "dataset"


def _plots(table: Table, out_dir: Path, stem: str) -> list[tuple[str, Path]]:
    """Every plot the table's results allow, as (caption, path)."""
    made: list[tuple[str, Path | None]] = [
        ("correlation vs time", plot_curves(table, out_dir / f"{stem}_corr.png", "corr")),
        ("nRMSE vs time", plot_curves(table, out_dir / f"{stem}_nrmse.png", "nrmse")),
        ("energy spectra at chosen steps", plot_spectra(table, out_dir / f"{stem}_spectra.png")),
        ("sample rollout next to the truth", plot_sample(table, out_dir / f"{stem}_sample.png")),
        ("accuracy-cost frontier", plot_frontier(table, out_dir / f"{stem}_frontier.png")),
    ]
    return [(caption, path) for caption, path in made if path is not None]


def write_tables(tables: Sequence[Table], out_dir: Path, skipped: Sequence[str] = (),
                 progress: bool = False) -> list[Path]:
    """Write `<stem>.md`, `.csv`, `.tex` and `<stem>_{corr,nrmse,spectra,sample,frontier}.png` per table (spectra and
    sample only where the results hold them) and `index.html` for all; returns the paths, the page last."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stems: dict[str, str] = {}
    for table in tables:
        stem = file_stem(table.name)
        if stem in stems:
            raise ValueError(f"tables {stems[stem]!r} and {table.name!r} map to the same file name {stem!r}")
        stems[stem] = table.name
    written: list[Path] = []
    plots: dict[str, list[tuple[str, Path]]] = {}
    downloads: dict[str, list[tuple[str, str]]] = {}
    for table in tqdm(tables, desc="leaderboard tables", disable=not progress):
        stem = file_stem(table.name)
        for suffix, text in ((".md", to_markdown(table)), (".csv", to_csv(table)), (".tex", to_latex(table))):
            written.append(atomic_write_text(out_dir / f"{stem}{suffix}", text))
        plots[table.name] = _plots(table, out_dir, stem)
        written += [path for _, path in plots[table.name]]
        downloads[table.name] = [("Markdown", f"{stem}.md"), ("CSV", f"{stem}.csv"), ("LaTeX", f"{stem}.tex")]
    page = leaderboard_page(tables, plots, downloads, skipped)
    written.append(atomic_write_text(out_dir / PAGE_NAME, page))
    return written


def write_leaderboard(results: Sequence[dict], out_dir: Path, progress: bool = False) -> list[Path]:
    """Build the tables of `results` and write them (see :func:`write_tables`)."""
    return write_tables(build_tables(results), out_dir, progress=progress)


def make_leaderboard(cfg: Mapping[str, Any], progress: bool = True) -> Leaderboard:
    """Validate `cfg` (shape of `pdebench.config.LeaderboardConfig`), read every result file under `cfg["results"]`
    (directories such as `results/` or a Hydra sweep folder, or files) and write the leaderboard to
    `cfg["out_dir"]`.

    A corrupt or partial result file is skipped with a :class:`SkippedResultWarning` naming it (the page lists them
    too). An unknown key or an empty `results` fails before anything is read; a path that does not exist, or no
    usable result file at all, is a FileNotFoundError naming where it looked.
    """
    validate_config(cfg, LeaderboardConfig)
    sources = [cfg["results"]] if isinstance(cfg["results"], str) else list(cfg["results"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkippedResultWarning)
        results = load_results([Path(p) for p in sources])
        tables = build_tables(results)
    skipped = [str(w.message) for w in caught if issubclass(w.category, SkippedResultWarning)]
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if not tables:
        raise FileNotFoundError(f"no usable result files found under {', '.join(map(str, sources))}; "
                                "run pdebench-evaluate first")
    written = write_tables(tables, Path(cfg["out_dir"]), skipped, progress)
    return Leaderboard(written, {t.name: to_markdown(t) for t in tables}, tables, skipped)
