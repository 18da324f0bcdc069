"""One training run from a resolved config: data loaders, module, Lightning Trainer, checkpoints.

Everything that can be refused without the data is refused first: the config (keys, ranges, the model's own
settings, devices), the Lightning Trainer's settings and the checkpoint a rerun would resume from. Only then is the
dataset opened; so a bad setting never costs a data load, and a bad run never leaves files behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch.utils.data import DataLoader

from baselines.registry import model_config, model_entry
from pdebench.config import TrainConfig, format_value, validate_config
from pdebench.data.batch import collate
from pdebench.data.dataset import TrajectoryDataset, WindowDataset, WindowSpec
from pdebench.data.manifest import benchmark_facts, manifest_hash, verify_dataset
from pdebench.data.normalization import compute_train_statistics
from pdebench.data.reader import TrajectoryFile, open_dataset_dir, split_path
from pdebench.forecast.checkpoint import CheckpointError, load_checkpoint_weights_only
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
    """Fail before any work on an unknown key or out-of-range value anywhere in the config (`validate_config`:
    `+trainer.foo=1`, `trainer.max_epochs=-5`, `model.hidden_channels=-1`, a GPU this machine lacks), a reference
    row, or an unknown objective, target or loss."""
    validate_config(cfg, TrainConfig)
    typed = model_config(cfg["model"])
    if not model_entry(typed.name).trainable:
        raise ValueError(
            f"model={typed.name} has nothing to train; evaluate it directly with "
            f"`pdebench-evaluate model={typed.name} data={cfg['data']['pde']}`"
        )
    make_objective(cfg["objective"])
    make_target(cfg["objective"]["target"], cfg["objective"]["target_scale"])


class WeightsOnlyCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO with every load forced through `load_checkpoint_weights_only`.

    Lightning hands `torch.load` whatever `weights_only` it was given (None unless `Trainer.fit(weights_only=...)`,
    which older Lightning releases lack), so with torch < 2.6 or `TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1` a crafted
    `last.ckpt` would run code when a run resumes. This plugin ignores the argument: every load the Trainer makes
    (resume, `ckpt_path="best"`) is weights-only.
    """

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        return load_checkpoint_weights_only(path, "cpu" if map_location is None else map_location)


# What a resumed run must share with the run that wrote last.ckpt: Lightning restores the weights, the optimiser's
# state (its learning rates included) and the best validation score, so a change here would be silently ignored or
# would mix two runs' numbers.
RESUME_SECTIONS = ("model", "objective", "optim", "validation")


def _resume_conflict(cfg: dict[str, Any], recorded: dict[str, Any]) -> str | None:
    """`section.key=<recorded> ... section.key=<given>` for the first setting the checkpoint disagrees with."""
    for section in RESUME_SECTIONS:
        given, saved = cfg[section], recorded.get(section) or {}
        for key in sorted(set(given) | set(saved)):
            if given.get(key) != saved.get(key):
                return (f"{section}.{key}={format_value(saved.get(key))} but this run asks for "
                        f"{section}.{key}={format_value(given.get(key))}")
    data_info = recorded.get("data_info") or {}
    for key in ("pde", "preset", "frame_stride"):
        given = cfg["data"].get(key)
        if (given is not None or key != "frame_stride") and data_info.get(key) != given:
            return (f"data.{key}={format_value(data_info.get(key))} but this run asks for "
                    f"data.{key}={format_value(given)}")
    return None


def resume_checkpoint(cfg: dict[str, Any], run_dir: Path) -> Path | None:
    """`run_dir/checkpoints/last.ckpt` if this run resumes from it (`resume=true` and it exists), else None.

    Checked before any data is read: it must load weights-only, be a pdebench-train checkpoint, and agree with this
    run's model, objective, optimiser, validation and dataset; otherwise CheckpointError says how to start over.
    """
    last = run_dir / "checkpoints" / "last.ckpt"
    if not cfg["resume"] or not last.is_file():
        return None
    start_over = "pass resume=false to start the run over (replacing its checkpoints), or choose another run_dir"
    try:
        checkpoint = load_checkpoint_weights_only(last)
    except CheckpointError as error:
        raise CheckpointError(f"cannot resume: {error}; {start_over}") from None
    recorded = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not isinstance(recorded, dict) or "pdebench" not in checkpoint:
        raise CheckpointError(f"cannot resume: checkpoint {last} was not written by pdebench-train (no 'pdebench' "
                              f"metadata); {start_over}")
    conflict = _resume_conflict(cfg, recorded)
    if conflict is not None:
        raise CheckpointError(f"cannot resume: checkpoint {last} was trained with {conflict}; {start_over}")
    return last


def make_trainer(cfg: dict[str, Any], run_dir: Path, callbacks: list[Callback]) -> L.Trainer:
    """The Lightning Trainer of `cfg["trainer"]`, built before any data is read (it reads and writes nothing).

    The schema checks the settings it knows; what only Lightning knows (precision names, strategies, device counts)
    it refuses here, as one sentence, before the data loads. Checkpoints load weights-only (WeightsOnlyCheckpointIO).
    """
    logger = make_logger(cfg["logger"], run_dir)
    try:
        return L.Trainer(default_root_dir=str(run_dir), logger=logger, callbacks=callbacks,
                         plugins=[WeightsOnlyCheckpointIO()], **cfg["trainer"])
    except (MisconfigurationException, ValueError, TypeError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0].rstrip(".")
        raise ValueError(f"Lightning refuses the trainer.* settings: {reason}") from None


def train(cfg: dict[str, Any]) -> Path:
    """Train `cfg["model"]` on `cfg["data"]`; returns the path of the checkpoint best on the validation rollout."""
    check_training_config(cfg)
    data, objective = cfg["data"], cfg["objective"]
    run_dir = Path(cfg["run_dir"])
    resume_from = resume_checkpoint(cfg, run_dir)
    L.seed_everything(cfg["seed"], workers=True, verbose=False)
    checkpoints = ModelCheckpoint(
        dirpath=run_dir / "checkpoints", filename="best", monitor=VAL_METRIC, mode="min", save_top_k=1,
        save_last=True, enable_version_counter=False, auto_insert_metric_name=False,
    )
    trainer = make_trainer(cfg, run_dir, [checkpoints, LearningRateMonitor(logging_interval="step")])
    dataset_dir = open_dataset_dir(data["root"], data["pde"], data["preset"])
    verify_dataset(dataset_dir, ("train", "valid"))  # against the manifest, before any split is read
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
    trainer.fit(module, train_loader, val_loader, ckpt_path=None if resume_from is None else str(resume_from))
    return Path(checkpoints.best_model_path)
