"""`pdebench-train experiment=ks_fno` or `pdebench-train data=ks model=fno seed=1`: train one surrogate."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from pdebench.cli.common import CONFIG_DIR, HYDRA_VERSION_BASE, report_user_errors, to_container
from pdebench.training.run import train


@hydra.main(config_path=CONFIG_DIR, config_name="train", version_base=HYDRA_VERSION_BASE)
@report_user_errors
def main(cfg: DictConfig) -> None:
    best = train(to_container(cfg))
    print(f"best checkpoint (lowest validation rollout nRMSE): {best}")


if __name__ == "__main__":
    main()
