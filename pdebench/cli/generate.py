"""`pdebench-generate pde=ks preset=small`: generate every split of one dataset."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from data_gen.generate import generate_dataset
from pdebench.cli.common import CONFIG_DIR, HYDRA_VERSION_BASE, report_user_errors, to_container


@hydra.main(config_path=CONFIG_DIR, config_name="generate", version_base=HYDRA_VERSION_BASE)
@report_user_errors
def main(cfg: DictConfig) -> None:
    out_dir = generate_dataset(to_container(cfg.pde), cfg.preset, cfg.root, seed=cfg.seed,
                               batch_size=cfg.batch_size, device=cfg.device, overwrite=cfg.overwrite)
    print(f"dataset written: {out_dir}")


if __name__ == "__main__":
    main()
