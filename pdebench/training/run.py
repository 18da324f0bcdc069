"""One training run from a resolved config: data loaders, module, Lightning Trainer, checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger
from torch.utils.data import DataLoader

from baselines.registry import model_config, model_entry
from pdebench.data.batch import collate
from pdebench.data.dataset import TrajectoryDataset, WindowDataset, WindowSpec
from pdebench.data.manifest import benchmark_facts, manifest_hash
from pdebench.data.normalization import compute_train_statistics
from pdebench.data.reader import TrajectoryFile, open_dataset_dir, split_path
from pdebench.forecast.targets import make_target
from pdebench.provenance import git_commit
from pdebench.training.module import VAL_METRIC, SurrogateModule
from pdebench.training.objectives import make_objective


def resolve_frame_stride(data: dict[str, Any], dataset_dir: Path) -> int:
    """`data.frame_stride` if given, else the PDE's model step recorded in the dataset's manifest."""
    if data.get("frame_stride") is not None:
        return int(data["frame_stride"])
    return int(benchmark_facts(dataset_dir)["frame_stride"])


def describe_data(dataset_dir: Path, train: TrajectoryFile, frame_stride: int) -> dict[str, Any]:
    """What the module needs to know about the data; statistics come from the train split only."""
    return {
        "dataset": dataset_dir.name,
        "pde": train.pde,
        "preset": train.preset,
        "frame_stride": frame_stride,
        "manifest_sha256": manifest_hash(dataset_dir),
        "fields": list(train.field_names),
        "parameters": list(train.parameter_names),
        "grid": train.grid.to_record(),
        "stats": compute_train_statistics(train),
    }


def make_logger(cfg: dict[str, Any], run_dir: Path) -> Logger:
    """CSV by default; wandb only when asked for, offline unless `logger.offline=false`.

    Each start of the run (a resume included) logs CSV to its own `logs/version_<n>/`, so resuming never
    overwrites the metrics an interrupted attempt wrote.
    """
    if cfg["name"] == "csv":
        return CSVLogger(save_dir=str(run_dir), name="logs")
    if cfg["name"] == "wandb":
        from lightning.pytorch.loggers import WandbLogger

        return WandbLogger(project=cfg["project"], save_dir=str(run_dir), offline=cfg["offline"])
    raise ValueError(f"logger.name={cfg['name']!r} is not a known logger; choose csv or wandb")


def check_training_config(cfg: dict[str, Any]) -> None:
    """Fail before any work on an unknown model key, a reference row, or an unknown objective, target or loss."""
    typed = model_config(cfg["model"])
    if not model_entry(typed.name).trainable:
        raise ValueError(
            f"model={typed.name} has nothing to train; evaluate it directly with "
            f"`pdebench-evaluate model={typed.name} data={cfg['data']['pde']}`"
        )
    make_objective(cfg["objective"])
    make_target(cfg["objective"]["target"], cfg["objective"]["target_scale"])


def train(cfg: dict[str, Any]) -> Path:
    """Train `cfg["model"]` on `cfg["data"]`; returns the path of the checkpoint best on the validation rollout."""
    check_training_config(cfg)
    data, objective = cfg["data"], cfg["objective"]
    L.seed_everything(cfg["seed"], workers=True, verbose=False)
    run_dir = Path(cfg["run_dir"])
    dataset_dir = open_dataset_dir(data["root"], data["pde"], data["preset"])
    frame_stride = resolve_frame_stride(data, dataset_dir)
    spec = WindowSpec(objective["history"], objective["bundle"], frame_stride)
    train_set = WindowDataset(split_path(dataset_dir, "train"), spec)
    val_set = TrajectoryDataset(split_path(dataset_dir, "valid"), frame_stride, cfg["validation"]["max_trajectories"])
    module = SurrogateModule(
        model=cfg["model"], objective=objective, optim=cfg["optim"], validation=cfg["validation"],
        data_info=describe_data(dataset_dir, train_set.file, frame_stride),
        run={"label": cfg["label"], "seed": cfg["seed"], "git_commit": git_commit()},
    )
    loader_kwargs = {"num_workers": data["num_workers"], "persistent_workers": data["num_workers"] > 0,
                     "collate_fn": collate}
    train_loader = DataLoader(train_set, batch_size=data["batch_size"], shuffle=True, drop_last=True,
                              **loader_kwargs)
    val_loader = DataLoader(val_set, batch_size=data["batch_size"], **loader_kwargs)
    checkpoints = ModelCheckpoint(
        dirpath=run_dir / "checkpoints", filename="best", monitor=VAL_METRIC, mode="min", save_top_k=1,
        save_last=True, enable_version_counter=False, auto_insert_metric_name=False,
    )
    trainer = L.Trainer(
        default_root_dir=str(run_dir),
        logger=make_logger(cfg["logger"], run_dir),
        callbacks=[checkpoints, LearningRateMonitor(logging_interval="step")],
        **cfg["trainer"],
    )
    last = run_dir / "checkpoints" / "last.ckpt"
    resume_from = str(last) if cfg["resume"] and last.is_file() else None
    trainer.fit(module, train_loader, val_loader, ckpt_path=resume_from)
    return Path(checkpoints.best_model_path)
