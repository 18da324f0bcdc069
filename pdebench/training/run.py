"""One training run from a resolved config: data loaders, module, Lightning Trainer, checkpoints.

Everything that can be refused without the data is refused first: the config (keys, ranges, the model's own
settings, devices), the Lightning Trainer's settings and the checkpoint a rerun would resume from. Only then is the
dataset opened, and what needs the data (windows that fit, a batch that fits) refused; so a bad setting never costs
a data load, and a bad run never leaves files behind.

Only then does the run write: under a lock on its run folder (`RUN_LOCK_NAME`; a second run of the same folder
stops, naming the process that holds it), with every checkpoint written to a temporary file beside it and renamed
into place (`WeightsOnlyCheckpointIO`), and a full disk reported as one sentence (`DiskFull`) instead of a traceback.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch.utils.data import DataLoader, DistributedSampler

from baselines.registry import model_entry
from pdebench.config import (
    BenchmarkConfig,
    DataConfig,
    LoggerConfig,
    TrainConfig,
    format_value,
    plain_config,
)
from pdebench.config.recipes import check_recipe, recipe_record
from pdebench.console import quiet_third_party
from pdebench.data.atomic import atomic_file, reporting_full_disk
from pdebench.data.batch import collate
from pdebench.data.dataset import (
    DatasetError,
    TrajectoryDataset,
    WindowDataset,
    WindowSpec,
    preload_limit_bytes,
    split_field_bytes,
)
from pdebench.data.lock import DirectoryBusy, directory_lock
from pdebench.data.manifest import benchmark_facts, benchmark_settings, manifest_hash, verify_dataset
from pdebench.data.normalization import compute_train_statistics
from pdebench.data.reader import TrajectoryFile, open_dataset_dir, split_path
from pdebench.data.schema import MANIFEST_NAME
from pdebench.errors import InvalidSetting
from pdebench.forecast.checkpoint import CheckpointError, load_checkpoint_weights_only
from pdebench.provenance import git_commit
from pdebench.training.callbacks import ParameterSummary, RolloutPlot, progress_callback, weight_averaging
from pdebench.training.config import check_model_data, check_model_objective, train_config
from pdebench.training.module import SELECTION_METRIC, SurrogateModule, selection_record, validation_metric_names
from pdebench.training.objectives import check_window_fits, make_objective, window_spec
from pdebench.training.stages import (
    check_frozen_present,
    check_stages,
    frozen_in_eval_mode,
    load_frozen,
    run_stages,
    stage_selection,
)

# Held (flock, non-blocking; `pdebench.data.lock`) by the run training in a run folder, so that two runs of one folder
# never overwrite each other's checkpoints.
RUN_LOCK_NAME = ".train.lock"


def resolve_frame_stride(data: DataConfig, bench: BenchmarkConfig) -> int:
    """`data.frame_stride` if given, else the PDE's model step recorded in the dataset's manifest."""
    return bench.frame_stride if data.frame_stride is None else data.frame_stride


def describe_data(dataset_dir: Path, train: TrajectoryFile, frame_stride: int) -> dict[str, Any]:
    """What the module needs to know about the data; statistics come from the train split only."""
    return {
        "dataset": dataset_dir.name,
        "pde": train.pde,
        "preset": train.preset,
        "frame_stride": frame_stride,
        "manifest_sha256": manifest_hash(dataset_dir),
        "fields": list(train.field_names),
        "parameters": list(train.conditioning_names),
        "grid": train.grid.to_record(),
        "stats": compute_train_statistics(train),
    }


def make_logger(cfg: LoggerConfig, run_dir: Path) -> Logger:
    """CSV by default; wandb only when asked for, offline unless `logger.offline=false`.

    Each start of the run (a resume included) logs CSV to its own `logs/version_<n>/`, so resuming never
    overwrites the metrics an interrupted attempt wrote.
    """
    if cfg.name == "csv":
        # written through at every logged step (every trainer.log_every_n_steps and each validation): a killed run
        # keeps every row it logged, instead of losing up to 100 logged steps still buffered
        return CSVLogger(save_dir=str(run_dir), name="logs", flush_logs_every_n_steps=1)
    if cfg.name == "wandb":
        from lightning.pytorch.loggers import WandbLogger

        return WandbLogger(project=cfg.project, save_dir=str(run_dir), offline=cfg.offline)
    raise InvalidSetting(f"logger.name={cfg.name!r} is not a known logger; choose csv or wandb")


def check_training_config(cfg: TrainConfig) -> None:
    """Fail before any work on what loading the config (`train_config`: unknown keys, out-of-range values, the
    model's own settings, a GPU this machine lacks) cannot see: a reference row, which has nothing to train, a recipe
    applied to another dataset than its own, or an objective that is unknown, reads an unknown target or loss, or is
    given a setting it would ignore, stages that cannot run, or a frozen sub-network whose checkpoint is missing."""
    check_recipe(cfg)
    check_stages(cfg)
    check_frozen_present(cfg.frozen)
    if not model_entry(cfg.model.name).trainable:
        raise InvalidSetting(
            f"model={cfg.model.name} has nothing to train; evaluate it directly with "
            f"`pdebench-evaluate model={cfg.model.name} data={cfg.data.pde}`"
        )
    make_objective(cfg.objective)
    check_model_objective(cfg)  # again: a stage's objective is not the one the config was loaded with


class WeightsOnlyCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO with every load forced through `load_checkpoint_weights_only`, and every save
    atomic.

    Loads: Lightning hands `torch.load` whatever `weights_only` it was given (None unless
    `Trainer.fit(weights_only=...)`, which older Lightning releases lack), so with torch < 2.6 or
    `TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1` a crafted `last.ckpt` would run code when a run resumes. This plugin ignores
    the argument: every load the Trainer makes (resume, `ckpt_path="best"`) is weights-only.

    Saves: Lightning's own save writes the checkpoint to the system temp folder and copies it over the old one, so a
    full disk leaves a truncated `last.ckpt` under its final name, which no rerun can resume from. Here it goes to a
    temporary file beside it, is fsynced and renamed over the old one (`pdebench.data.atomic.atomic_file`): a failed
    write leaves the previous checkpoint as it was, and a full disk is one `DiskFull` sentence naming the file.
    """

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        return load_checkpoint_weights_only(path, "cpu" if map_location is None else map_location)

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:  # refused, as Lightning's own save refuses them
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        path = Path(path)
        buffer = io.BytesIO()  # serialised first: the file sees plain writes, whose errors say what failed
        torch.save(checkpoint, buffer)
        kept = f"the previous {path.name} is kept" if path.is_file() else f"no {path.name} was written"
        with reporting_full_disk(path, kept):
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_file(path) as fh:
                fh.write(buffer.getbuffer())


# Settings a resumed run may change: how long it runs, how it reports, where and how it reads the (same,
# manifest-checked) data (preloaded or lazily: identical batches) and on which kind of device. Any other difference
# would be silently ignored by the restored state (the optimiser keeps its learning rates, the net its shape) or would
# mix two runs' numbers under one label.
RESUMABLE_CHANGES = (
    "trainer.max_epochs", "trainer.max_steps", "trainer.max_time", "trainer.enable_progress_bar",
    "trainer.log_every_n_steps", "trainer.accelerator", "data.root", "data.num_workers", "data.preload", "logger.",
    "resume", "run_dir", "progress_every_n_steps", "progress_every_n_seconds",
)
# Settings added after checkpoints began recording the whole config, with their defaults: a checkpoint without one
# resumes under its default.
LATER_SETTINGS = {"frozen": [], "stages": [], "stage": None, "objective.curriculum_fraction": None}
# Checkpoints written before the whole config was recorded: compare what their hyper-parameters hold.
RESUME_SECTIONS = ("model", "objective", "optim", "validation")


def _leaves(tree: Any, prefix: str = "") -> dict[str, Any]:
    """`{"optim.lr": 0.001, ...}`: the dotted leaves of a nested config (lists are leaves)."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(_leaves(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _may_change(key: str) -> bool:
    return any(key == allowed or (allowed.endswith(".") and key.startswith(allowed)) for allowed in RESUMABLE_CHANGES)


def _resume_conflict(config: dict[str, Any], recorded: dict[str, Any], recorded_config: dict[str, Any] | None = None
                     ) -> str | None:
    """`A=<recorded>, B=<recorded> but this run asks for A=<given>, B=<given>` listing every setting the checkpoint
    disagrees with (apart from `RESUMABLE_CHANGES`), or None when it may resume.

    `config` is this run's config as the plain containers a checkpoint records (`plain_config`), compared leaf by
    leaf with `recorded_config`, the whole resolved config the checkpoint's run started with; without it (older
    checkpoints) the hyper-parameter sections `recorded` holds and the dataset identity are compared.
    """
    if recorded_config is not None:
        # a config that predates a setting (a checkpoint's record) ran with that setting's default
        given, saved = ({**LATER_SETTINGS, **_leaves(c)} for c in (config, recorded_config))
    else:
        given = _leaves({s: config[s] for s in RESUME_SECTIONS})
        saved = _leaves({s: recorded.get(s) or {} for s in RESUME_SECTIONS})
        data_info = recorded.get("data_info") or {}
        for key in ("pde", "preset", "frame_stride"):
            if config["data"][key] is not None or key != "frame_stride":
                given[f"data.{key}"], saved[f"data.{key}"] = config["data"][key], data_info.get(key)
    differing = [key for key in sorted(set(given) | set(saved))
                 if not _may_change(key) and given.get(key, "<absent>") != saved.get(key, "<absent>")]
    if not differing:
        return None

    def listed(values: dict[str, Any]) -> str:
        return ", ".join(f"{key}={format_value(values.get(key))}" for key in differing)

    return f"{listed(saved)} but this run asks for {listed(given)}"


def resume_checkpoint(cfg: TrainConfig, run_dir: Path) -> Path | None:
    """`run_dir/checkpoints/last.ckpt` if this run resumes from it (`resume=true` and it exists), else None.

    Checked before any data is read: it must load weights-only, be a pdebench-train checkpoint, and agree with this
    run's model, objective, optimiser, validation and dataset; otherwise CheckpointError says how to start over.
    """
    last = run_dir / "checkpoints" / "last.ckpt"
    if not cfg.resume or not last.is_file():
        return None
    start_over = "pass resume=false to start the run over (replacing its checkpoints)"
    try:
        checkpoint = load_checkpoint_weights_only(last)
    except CheckpointError as error:
        raise CheckpointError(f"cannot resume: {error}; {start_over}") from None
    recorded = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not isinstance(recorded, dict) or "pdebench" not in checkpoint:
        raise CheckpointError(f"cannot resume: checkpoint {last} was not written by pdebench-train (no 'pdebench' "
                              f"metadata); {start_over}")
    conflict = _resume_conflict(plain_config(cfg), recorded, checkpoint["pdebench"].get("config"))
    if conflict is not None:
        raise CheckpointError(f"cannot resume: checkpoint {last} was trained with {conflict}; choose a new label "
                              f"(label=...) for a separate run, or {start_over}")
    return last


def make_trainer(cfg: TrainConfig, run_dir: Path, callbacks: list[Callback]) -> L.Trainer:
    """The Lightning Trainer of `cfg.trainer` logging to `cfg.logger`, built before any data is read (it reads and
    writes nothing).

    The schema checks the settings it knows; what only Lightning knows (precision names, strategies, device counts)
    it refuses here, as one sentence, before the data loads. Checkpoints load weights-only (WeightsOnlyCheckpointIO).
    The model summary is `ParameterSummary` (Lightning's without its FLOPs, which are always 0 here), and the lines
    Lightning prints that ask nothing of the user are silenced (`pdebench.console.quiet_third_party`).
    """
    quiet_third_party()
    logger = make_logger(cfg.logger, run_dir)
    try:
        return L.Trainer(default_root_dir=str(run_dir), logger=logger, callbacks=[*callbacks, ParameterSummary()],
                         enable_model_summary=False, plugins=[WeightsOnlyCheckpointIO()], **plain_config(cfg.trainer))
    except (MisconfigurationException, ValueError, TypeError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0].rstrip(".")
        raise InvalidSetting(f"Lightning refuses the trainer.* settings: {reason}") from None


def check_validation_fits(history: int, n_valid_frames: int, frame_stride: int) -> None:
    """Refuse, in one sentence naming the key, a `history` that leaves no step to roll out on the validation
    trajectories (the training windows are `check_window_fits`'s)."""
    valid_model_frames = (n_valid_frames - 1) // frame_stride + 1
    if history + 1 > valid_model_frames:
        raise DatasetError(
            f"objective.history={history} leaves no step to roll out on the validation trajectories "
            f"({valid_model_frames} model frames, {n_valid_frames} stored frames, frame_stride={frame_stride}); "
            f"history must be below {valid_model_frames}"
        )


def selection_of(bench: BenchmarkConfig) -> dict[str, Any]:
    """What `best.ckpt` is chosen on: the PDE's headline metric and its direction, from the dataset's benchmark
    facts (the PDE's `benchmark.headline`), checked against what a validation rollout can compute; a plain dict,
    as the module keeps it among its hyper-parameters."""
    known = validation_metric_names()
    if bench.headline not in known:
        raise DatasetError(f"benchmark.headline={bench.headline} of this dataset's manifest is not a validation "
                           f"rollout metric; choose one of: {', '.join(known)}")
    return selection_record(bench)


def train_sampler(dataset: Any, trainer: L.Trainer, seed: int) -> DistributedSampler | None:
    """The shuffling of a single-process run: the permutation Lightning's `DistributedSampler` draws for DDP
    (seeded by `seed` and the epoch), so that one process with batch 2B sees, step by step, exactly the samples two
    processes with batch B see together; and an interrupted run that resumes at epoch k draws epoch k's order.
    None under DDP, where Lightning injects the distributed sampler itself."""
    if trainer.world_size > 1:
        return None
    return DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=seed, drop_last=False)


def load_splits(cfg: TrainConfig, dataset_dir: Path, spec: WindowSpec, trainer: L.Trainer
                ) -> tuple[WindowDataset, TrajectoryDataset]:
    """The train windows and the validation trajectories, each held in memory or read lazily as `data.preload`
    says; `auto` preloads while both together fit under `preload_limit_bytes` for this node's training processes
    (train first: it is read every step, validation once an epoch)."""
    preload, progress = cfg.data.preload, cfg.trainer.enable_progress_bar
    room = preload_limit_bytes(trainer.num_devices) if preload == "auto" else None
    train_set = WindowDataset(split_path(dataset_dir, "train"), spec, preload, room, progress)
    if room is not None and train_set.preloaded:
        room -= split_field_bytes(train_set.file)
    val_set = TrajectoryDataset(split_path(dataset_dir, "valid"), spec.frame_stride,
                                cfg.validation.max_trajectories, preload, room, progress)
    return train_set, val_set


def loader_options(data: DataConfig) -> dict[str, Any]:
    """DataLoader settings shared by the train and validation loaders. Batches come whole from the datasets'
    `__getitems__` (one gather when preloaded); `collate` passes them through. Forked workers share a preloaded
    split copy-on-write."""
    return {"num_workers": data.num_workers, "persistent_workers": data.num_workers > 0, "collate_fn": collate}


def check_batch_fits(batch_size: int, n_windows: int, world_size: int, path: Path) -> None:
    """Refuse a `data.batch_size` for which the train loader yields no batch at all (Lightning would "train" nothing
    and exit as if it had).

    The loader drops an incomplete last batch (`drop_last=True`), so a process needs at least `batch_size` windows.
    One process gets all `n_windows`; each of `world_size` DDP processes gets ceil(n_windows / world_size) (the
    distributed sampler pads the last share with repeats).
    """
    per_process = math.ceil(n_windows / world_size)
    if batch_size <= per_process:
        return
    share = (f"the {n_windows} training windows of {path}" if world_size == 1 else
             f"the {per_process} training windows each of the {world_size} processes gets from the {n_windows} of "
             f"{path}")
    raise InvalidSetting(f"data.batch_size={batch_size} is larger than {share} (the train loader drops an incomplete "
                         f"last batch, so no batch would be trained); use data.batch_size<={per_process}")


def train_loader(train_set: WindowDataset, data: DataConfig, trainer: L.Trainer, seed: int) -> DataLoader:
    """Batches of `data.batch_size` windows (the last short one dropped), in `train_sampler`'s order."""
    sampler = train_sampler(train_set, trainer, seed)
    return DataLoader(train_set, batch_size=data.batch_size, shuffle=sampler is None, sampler=sampler,
                      drop_last=True, **loader_options(data))


@contextlib.contextmanager
def run_folder_lock(run_dir: Path, trainer: L.Trainer) -> Iterator[None]:
    """Hold `<run_dir>/RUN_LOCK_NAME` while the run writes; another run holding it stops this one at once, naming its
    pid and host. Only global rank 0 locks: the other DDP processes are the same run."""
    if trainer.global_rank != 0:
        yield
        return

    def busy(holder: str) -> DirectoryBusy:
        return DirectoryBusy(f"another pdebench-train ({holder}) is training in run folder {run_dir}; wait for it to "
                             f"finish (or stop it) and rerun, or train into another folder (label= or run_dir=)")

    run_dir.mkdir(parents=True, exist_ok=True)
    with directory_lock(run_dir, RUN_LOCK_NAME, busy):
        yield


def run_identity(cfg: TrainConfig) -> dict[str, Any]:
    """The run record every checkpoint keeps and every result file copies (`run`): label, seed, git commit, and the
    recipe the run follows (`recipe`: its name or None; `deviations`: one sentence per recipe setting it departs
    from; `tuning`: its row's Optuna winner or "untuned"; `pdebench.config.recipes.recipe_record`)."""
    return {"label": cfg.label, "seed": cfg.seed, "git_commit": git_commit(), **recipe_record(cfg)}


def train(cfg: TrainConfig | Mapping[str, Any]) -> Path:
    """Train `cfg.model` on `cfg.data`; returns the path of the checkpoint best on the validation rollout (on the
    PDE's headline metric; `checkpoints/last.ckpt` is the run's latest state, which a rerun resumes). A plain
    resolved config is typed first (`train_config`)."""
    return fit(cfg)[0]


def fit(cfg: TrainConfig | Mapping[str, Any]) -> tuple[Path, float]:
    """`train`, also returning the best validation selection score (the PDE's headline, higher is better), the
    number a hyper-parameter sweep optimises. A run with `stages` trains them in order (or `stage` alone), each into
    its own folder under `run_dir` (`pdebench.training.stages`); the last one's checkpoint and score are returned."""
    cfg = train_config(cfg)
    if cfg.stages:
        return run_stages(cfg, fit_run)
    return fit_run(cfg)


def fit_run(cfg: TrainConfig) -> tuple[Path, float]:
    """One training run of a typed config (one stage of a multi-stage run): `fit` without the stages."""
    check_training_config(cfg)
    data, objective = cfg.data, cfg.objective
    run_dir = Path(cfg.run_dir)
    resume_from = resume_checkpoint(cfg, run_dir)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    checkpoints = ModelCheckpoint(
        dirpath=run_dir / "checkpoints", filename="best", monitor=SELECTION_METRIC, mode="max", save_top_k=1,
        save_last=False, enable_version_counter=False, auto_insert_metric_name=False,
    )
    # last.ckpt after every validation (what a rerun resumes from); its own callback, since ModelCheckpoint's
    # save_last writes it only when `best` improved. Listed after `best` so that it records best's updated state.
    latest = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="last", monitor=None, save_top_k=1,
                             enable_version_counter=False, auto_insert_metric_name=False)
    callbacks: list[Callback] = [checkpoints, latest, LearningRateMonitor(logging_interval="step")]
    averaging = weight_averaging(cfg.optim.ema_decay)
    if averaging is not None:
        callbacks.append(averaging)
    progress = progress_callback(cfg.trainer.enable_progress_bar, cfg.progress_every_n_steps,
                                 cfg.progress_every_n_seconds)
    if progress is not None:
        callbacks.append(progress)
    if cfg.logger.name == "wandb":
        callbacks.append(RolloutPlot(run_dir / "plots", cfg.validation.rollout_steps))
    trainer = make_trainer(cfg, run_dir, callbacks)
    dataset_dir = open_dataset_dir(data.root, data.pde, data.preset)
    with TrajectoryFile(split_path(dataset_dir, "train")) as train_header:  # the model and the grid: a header read
        check_model_data(cfg, train_header)
    verify_dataset(dataset_dir, ("train", "valid"))  # against the manifest, before any split is read
    bench = benchmark_settings(benchmark_facts(dataset_dir), dataset_dir / MANIFEST_NAME)
    frame_stride = resolve_frame_stride(data, bench)
    selection = stage_selection(make_objective(objective)) or selection_of(bench)
    check_window_fits(objective, TrajectoryFile(split_path(dataset_dir, "train")).n_frames, frame_stride)
    check_validation_fits(objective.history, TrajectoryFile(split_path(dataset_dir, "valid")).n_frames, frame_stride)
    spec = window_spec(objective, frame_stride)  # unrolled steps and label stencils included
    train_set, val_set = load_splits(cfg, dataset_dir, spec, trainer)
    check_batch_fits(data.batch_size, len(train_set), trainer.world_size, train_set.file.path)
    module = SurrogateModule(
        model=cfg.model, objective=objective, optim=cfg.optim, validation=cfg.validation,
        data_info=describe_data(dataset_dir, train_set.file, frame_stride),
        run=run_identity(cfg), selection=selection,
    )
    module.run_config = plain_config(cfg)  # checkpoints and loggers keep plain containers only
    if cfg.frozen:  # sub-networks taken from other runs' checkpoints, kept frozen; the run record names them
        module.hparams["run"]["frozen"] = load_frozen(module.forecaster.net, cfg.frozen, module.hparams["data_info"],
                                                      plain_config(objective))
        module.frozen = [entry.module for entry in cfg.frozen]
    val_loader = DataLoader(val_set, batch_size=data.batch_size, **loader_options(data))
    with reporting_full_disk(run_dir, "the checkpoints written before are kept"), run_folder_lock(run_dir, trainer), \
            frozen_in_eval_mode(bool(cfg.frozen)):
        if cfg.logger.name != "csv":  # the CSV run keeps its config beside it (.hydra/, checkpoints)
            trainer.logger.log_hyperparams({"config": module.run_config})
        trainer.fit(module, train_loader(train_set, data, trainer, cfg.seed), val_loader,
                    ckpt_path=None if resume_from is None else str(resume_from))
        if cfg.logger.name == "wandb" and trainer.is_global_zero:
            trainer.logger.experiment.finish()  # writes the summary; the next run of a sweep starts its own
    best = checkpoints.best_model_score
    return Path(checkpoints.best_model_path), float("nan") if best is None else float(best)
