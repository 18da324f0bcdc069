"""`pdebench-train experiment=ks_fno` or `pdebench-train data=ks model=fno seed=1`: train one surrogate.

`pdebench-train -m model=fno,unet seed=0,1,2` sweeps (any Hydra launcher: basic, submitit_local, slurm); each job
then trains into its own sweep folder (`runs/multirun/<time>/<job>`), which holds its resolved config (`.hydra/`),
checkpoints and metrics, and takes the evaluation's result file. With `hydra/sweeper=optuna` the returned number
(the best validation score of the PDE's headline metric, higher is better) is what the search optimises.
"""

from __future__ import annotations

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from pdebench.cli.common import hydra_app, to_container
from pdebench.config import TrainConfig
from pdebench.training.run import fit


def sweep_run_dir(cfg: dict, overrides: list[str]) -> dict:
    """In a sweep, each job trains in its Hydra output folder unless `run_dir=` was given on the command line."""
    if not HydraConfig.initialized():
        return cfg
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN and not any(o.split("=", 1)[0].lstrip("+~") == "run_dir" for o in overrides):
        cfg = {**cfg, "run_dir": hydra_cfg.runtime.output_dir}
    return cfg


@hydra_app("train", TrainConfig)
def main(cfg: DictConfig) -> float:
    plain = to_container(cfg)
    if HydraConfig.initialized():
        plain = sweep_run_dir(plain, list(HydraConfig.get().overrides.task))
    best, score = fit(plain)
    if rank_zero_only.rank == 0:
        print(f"best checkpoint (highest validation selection score {score:.6g}): {best}")
    return score


if __name__ == "__main__":
    main()
