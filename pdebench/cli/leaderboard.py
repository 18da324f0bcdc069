"""`pdebench-leaderboard`: result files -> leaderboard/<dataset>.{md,csv} and plots."""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from pdebench.cli.common import CONFIG_DIR, HYDRA_VERSION_BASE, report_user_errors
from pdebench.leaderboard import leaderboard_rows, load_results, to_markdown, write_leaderboard


@hydra.main(config_path=CONFIG_DIR, config_name="leaderboard", version_base=HYDRA_VERSION_BASE)
@report_user_errors
def main(cfg: DictConfig) -> None:
    results = load_results([Path(p) for p in cfg.results])
    if not results:
        raise FileNotFoundError(f"no result files found under {', '.join(cfg.results)}; run pdebench-evaluate first")
    written = write_leaderboard(results, Path(cfg.out_dir))
    if cfg.print:
        for dataset, rows in leaderboard_rows(results).items():
            print(to_markdown(dataset, rows))
    print("written: " + ", ".join(str(p) for p in written))


if __name__ == "__main__":
    main()
