"""`pdebench-leaderboard`: result files -> leaderboard/<dataset>.{md,csv,tex}, PNG plots and leaderboard/index.html.

`results=` takes a directory (default `results`), a Hydra sweep folder (`results=runs/multirun/<date>`), a result
file, or a list of them. A corrupt or partial result file is skipped with a warning naming it.
"""

from __future__ import annotations

import sys
import warnings

from pdebench.cli.common import hydra_app
from pdebench.config import LeaderboardConfig
from pdebench.leaderboard import SkippedResultWarning, make_leaderboard
from pdebench.leaderboard.config import leaderboard_config


@hydra_app("leaderboard", leaderboard_config)
def main(cfg: LeaderboardConfig) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedResultWarning)  # printed below as one line each
        board = make_leaderboard(cfg)
    for message in board.skipped:
        print(f"warning: {message}", file=sys.stderr)
    if cfg.print:
        for table in board.markdown.values():
            print(table)
    print("written: " + ", ".join(str(p) for p in board.written))


if __name__ == "__main__":
    main()
