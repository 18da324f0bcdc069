"""`pdebench-generate pde=ks preset=small`: generate every split of one dataset."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from data_gen.generate import generate
from pdebench.cli.common import CONFIG_DIR, HYDRA_VERSION_BASE, report_user_errors, to_container


@hydra.main(config_path=CONFIG_DIR, config_name="generate", version_base=HYDRA_VERSION_BASE)
@report_user_errors
def main(cfg: DictConfig) -> None:
    out_dir = generate(to_container(cfg))
    print(f"dataset written: {out_dir}")


if __name__ == "__main__":
    main()
