"""Checkpoints as `pdebench-train` writes them, built without a training run (the module and its record exactly as
`train` builds them, before the first step), for tests of what reads checkpoints."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from pdebench.data.reader import TrajectoryFile
from pdebench.provenance import git_commit
from pdebench.training.module import SurrogateModule
from pdebench.training.run import describe_data


def save_untrained_checkpoint(cfg: Mapping[str, Any], dataset_dir: Path, path: Path, train_time_s: float,
                              frame_stride: int = 4) -> Path:
    """Write the untrained module of the composed train config `cfg` on `dataset_dir` to `path`: a net seeded with
    `cfg["seed"]` (the global random state of other tests left alone), the train record's time `train_time_s`."""
    data_info = describe_data(dataset_dir, TrajectoryFile(dataset_dir / "train.h5"), frame_stride=frame_stride)
    with torch.random.fork_rng():
        torch.manual_seed(cfg["seed"])
        module = SurrogateModule(cfg["model"], cfg["objective"], cfg["optim"], cfg["validation"], data_info,
                                 {"label": cfg["label"], "seed": cfg["seed"], "git_commit": git_commit()})
    n_parameters = sum(p.numel() for p in module.forecaster.parameters())
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict(),
                "pdebench": {"train_time_s": train_time_s, "n_parameters": n_parameters}}, path)
    return path
