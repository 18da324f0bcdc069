"""`pdebench-train experiment=ks_fno` or `pdebench-train data=ks model=fno seed=1`: train one surrogate.

`pdebench-train -m model=fno,unet seed=0,1,2` sweeps (any Hydra launcher: basic, submitit_local, slurm); each job
then trains into its own sweep folder (`runs/multirun/<time>/<job>`), which holds its resolved config (`.hydra/`),
checkpoints and metrics, and takes the evaluation's result file. With `hydra/sweeper=optuna` the returned number
(the best validation score of the PDE's headline metric, higher is better) is what the search optimises.
"""

from __future__ import annotations

import dataclasses

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from pdebench.cli.common import hydra_app, lazy_loader
from pdebench.config import TrainConfig


def sweep_run_dir(cfg: TrainConfig, overrides: list[str]) -> TrainConfig:
    """In a sweep, each job trains in its Hydra output folder unless `run_dir=` was given on the command line."""
    if not HydraConfig.initialized():
        return cfg
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN and not any(o.split("=", 1)[0].lstrip("+~") == "run_dir" for o in overrides):
        cfg = dataclasses.replace(cfg, run_dir=hydra_cfg.runtime.output_dir)
    return cfg


@hydra_app("train", lazy_loader("pdebench.training.config", "train_config"), zoo_groups=("model",))
def main(cfg: TrainConfig) -> float:
    from lightning.pytorch.utilities import rank_zero_only  # Lightning and the zoo: not for `--help`

    from pdebench.training.run import fit

    if HydraConfig.initialized():
        cfg = sweep_run_dir(cfg, list(HydraConfig.get().overrides.task))
    best, score = fit(cfg)
    if rank_zero_only.rank == 0:
        print(f"best checkpoint (highest validation selection score {score:.6g}): {best}")
    return score


if __name__ == "__main__":
    main()
