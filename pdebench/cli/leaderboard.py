"""`pdebench-leaderboard`: result files -> leaderboard/<dataset>.{md,csv} and plots."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from pdebench.cli.common import CONFIG_DIR, HYDRA_VERSION_BASE, report_user_errors, to_container
from pdebench.leaderboard import make_leaderboard


@hydra.main(config_path=CONFIG_DIR, config_name="leaderboard", version_base=HYDRA_VERSION_BASE)
@report_user_errors
def main(cfg: DictConfig) -> None:
    board = make_leaderboard(to_container(cfg))
    if cfg.print:
        for table in board.markdown.values():
            print(table)
    print("written: " + ", ".join(str(p) for p in board.written))


if __name__ == "__main__":
    main()
