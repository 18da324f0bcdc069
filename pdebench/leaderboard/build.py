"""`make_leaderboard(cfg)`: the `pdebench-leaderboard` command as a library call, like `train` and `evaluate`.

The Hydra main only prints around it; tests and scripts call it with a composed config and get the same checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pdebench.config import LeaderboardConfig, validate_config
from pdebench.leaderboard.plots import write_leaderboard
from pdebench.leaderboard.tables import leaderboard_rows, load_results, to_markdown


@dataclass
class Leaderboard:
    """What one leaderboard build wrote, and each dataset's Markdown table (for printing)."""

    written: list[Path]
    markdown: dict[str, str]


def make_leaderboard(cfg: Mapping[str, Any]) -> Leaderboard:
    """Validate `cfg` (shape of `pdebench.config.LeaderboardConfig`), read every result file under `cfg["results"]`
    and write `<out_dir>/<dataset>.{md,csv}` and plots.

    An unknown key or an empty `results` list fails before anything is read or written; no result files at all is
    a FileNotFoundError naming where it looked.
    """
    validate_config(cfg, LeaderboardConfig)
    results = load_results([Path(p) for p in cfg["results"]])
    if not results:
        raise FileNotFoundError(f"no result files found under {', '.join(cfg['results'])}; run pdebench-evaluate first")
    written = write_leaderboard(results, Path(cfg["out_dir"]))
    markdown = {dataset: to_markdown(dataset, rows) for dataset, rows in leaderboard_rows(results).items()}
    return Leaderboard(written, markdown)
