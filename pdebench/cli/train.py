"""`pdebench-train experiment=ks_fno` or `pdebench-train data=ks model=fno seed=1`: train one surrogate.

`pdebench-train -m model=fno,unet seed=0,1,2` sweeps (any Hydra launcher: basic, submitit_local, slurm); each job
then trains into its own sweep folder (`runs/multirun/<time>/<job>`), which holds its resolved config (`.hydra/`),
checkpoints and metrics, and takes the evaluation's result file. With `hydra/sweeper=optuna` the returned number
(the best validation score of the PDE's headline metric, higher is better) is what the search optimises.

A single run that stops before training starts (a missing dataset, a model with nothing to train, a batch larger
than the data) leaves no run folder behind: Hydra creates the folder and its `.hydra/` record before the task runs,
so `NewRunFolders` (a Hydra callback, `hydra.callbacks` in conf/train.yaml) notes which folders did not exist yet,
and `remove_unused_run_folder` takes away exactly what Hydra wrote into them.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

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


# The files Hydra writes into a run folder's `hydra.output_subdir` before the task starts.
HYDRA_RECORD = ("config.yaml", "hydra.yaml", "overrides.yaml")
# The folders (absolute, innermost first) that `hydra.run.dir` of the current single run adds; set by `NewRunFolders`.
_NEW_FOLDERS: list[Path] = []


class NewRunFolders(Callback):
    """Hydra callback: before a single run (not a sweep) creates its folder `hydra.run.dir`, note which of that
    folder and its parents do not exist yet (`_NEW_FOLDERS`), the folders this run may remove if it fails early."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _NEW_FOLDERS.clear()
        try:
            folder = Path(str(OmegaConf.select(config, "hydra.run.dir"))).absolute()
        except Exception:  # noqa: BLE001 - a folder that cannot be named here is Hydra's to report; remove nothing
            return
        _NEW_FOLDERS.extend(p for p in (folder, *folder.parents) if not p.exists())


def remove_unused_run_folder(folder: Path, output_subdir: str | None) -> bool:
    """Remove run folder `folder` and the parents this run created (`NewRunFolders`) if this run created it and it
    holds nothing but Hydra's record of the run (`<output_subdir>/` with `HYDRA_RECORD`): a run that failed before
    training started. Anything else in it (a checkpoint, a log, a lock: training began; a file someone put there)
    keeps it whole. Returns whether it was removed."""
    folder = folder.absolute()
    if folder not in _NEW_FOLDERS or not folder.is_dir():
        return False
    expected: set[Path] = set()
    if output_subdir:
        record = folder / output_subdir
        expected = {record, *(record / name for name in HYDRA_RECORD)}
    present = set(folder.rglob("*"))
    if not present <= expected:
        return False
    for path in sorted(present, key=lambda p: len(p.parts), reverse=True):  # files first, then their folder
        path.rmdir() if path.is_dir() else path.unlink()
    for created in _NEW_FOLDERS[_NEW_FOLDERS.index(folder):]:  # the folder, then each parent it added, while empty
        with contextlib.suppress(OSError):
            created.rmdir()
    _NEW_FOLDERS.clear()
    return True


@hydra_app("train", lazy_loader("pdebench.training.config", "train_config"), zoo_groups=("model",))
def main(cfg: TrainConfig) -> float:
    from lightning.pytorch.utilities import rank_zero_only  # Lightning and the zoo: not for `--help`

    from pdebench.training.run import fit

    hydra_cfg = HydraConfig.get() if HydraConfig.initialized() else None
    if hydra_cfg is not None:
        cfg = sweep_run_dir(cfg, list(hydra_cfg.overrides.task))
    try:
        best, score = fit(cfg)
    except BaseException:
        if hydra_cfg is not None and hydra_cfg.mode == RunMode.RUN:
            remove_unused_run_folder(Path(hydra_cfg.runtime.output_dir), hydra_cfg.output_subdir)
        raise
    if rank_zero_only.rank == 0:
        print(f"best checkpoint (highest validation selection score {score:.6g}): {best}")
    return score


if __name__ == "__main__":
    main()
