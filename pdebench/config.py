"""Typed schemas for the Hydra config tree in `conf/`, and `validate_config`, which every command runs first.

Every YAML file in `conf/` is merged onto one of these dataclasses, so a misspelt key or a value of the wrong
type fails before any work starts, with Hydra/OmegaConf naming the key. Registered in Hydra's ConfigStore
under `schema/...`, which the YAML files list first in their defaults.

Hydra's `+key=value` adds a key whatever the schema says, so composing alone lets `+trainer.foo=1` through; and
a schema's types say nothing of ranges (`trainer.max_epochs=-5`). `validate_config` closes both gaps: each library
entry point (`train`, `evaluate`, `generate`, `make_leaderboard`) calls it on its whole resolved config before it
reads or writes anything, and it fails with one sentence naming the full key. Range checks live in the
dataclasses' `__post_init__` (a `SettingError` naming the field), which `validate_config` runs node by node so
that the error names the full dotted key.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, make_dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, MissingMandatoryValue, OmegaConfBaseException

import baselines
import data_gen
from baselines.registry import model_config
from pdebench.data.names import name_problem, seed_problem
from pdebench.devices import accelerator_problem, device_problem

# A bootstrap costs one resampled summary per resample; past this many the interval's own Monte-Carlo error (about
# 1/sqrt(n) of its width's) is far below anything a table shows, and the time grows without bound.
MAX_BOOTSTRAP_RESAMPLES = 100_000


class ConfigError(ValueError):
    """A config key no schema knows, or a value its schema rejects; the message is one sentence naming the key."""


class SettingError(ValueError):
    """A value a schema dataclass rejects in `__post_init__`.

    `key` is the field's name within its dataclass; `validate_config` replaces it by the full dotted key
    (`max_epochs` -> `trainer.max_epochs`). `problem` follows `key=value` and may contain `{key}`.
    """

    def __init__(self, key: str, value: Any, problem: str) -> None:
        self.key, self.value, self.problem = key, value, problem
        super().__init__(self.sentence(key))

    def sentence(self, full_key: str) -> str:
        return f"{full_key}={format_value(self.value)} {self.problem.format(key=full_key)}"


def format_value(value: Any) -> str:
    """A value as it would be written on the command line (`null`, `true`, `[0.8,0.9]`, `cuda`)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    return str(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _at_least(owner: Any, key: str, minimum: int, what: str, optional: bool = False) -> None:
    """`owner.key` must be a whole number >= `minimum` (or null when `optional`)."""
    value = getattr(owner, key)
    if optional and value is None:
        return
    if not (_is_int(value) and value >= minimum):
        null = " (or null)" if optional else ""
        raise SettingError(key, value, f"is not valid: expected {what}, a whole number >= {minimum}{null}")


def _positive(owner: Any, key: str, what: str, allow_zero: bool = False) -> None:
    """`owner.key` must be a finite number > 0 (>= 0 with `allow_zero`)."""
    value = getattr(owner, key)
    if not (_is_number(value) and (value >= 0 if allow_zero else value > 0)):
        bound = ">= 0" if allow_zero else "> 0"
        raise SettingError(key, value, f"is not valid: expected {what}, a finite number {bound}")


def _fraction(owner: Any, key: str, what: str) -> None:
    """`owner.key` must be a number in [0, 1]."""
    value = getattr(owner, key)
    if not (_is_number(value) and 0 <= value <= 1):
        raise SettingError(key, value, f"is not valid: expected {what}, a number between 0 and 1")


def _follows(rule: Callable[[Any], str | None], owner: Any, key: str, optional: bool = False) -> None:
    """`owner.key` must pass `rule` (a `pdebench.data.names` check returning the problem, or None); a long value is
    quoted cut to 80 characters."""
    value = getattr(owner, key)
    if optional and value is None:
        return
    problem = rule(value)
    if problem is not None:
        raise SettingError(key, value if len(str(value)) <= 80 else f"{str(value)[:80]}...", problem)


def _seed(owner: Any, key: str, optional: bool = False) -> None:
    """`owner.key` must be a seed torch and Lightning take as it is."""
    _follows(seed_problem, owner, key, optional)


def _name(owner: Any, key: str, optional: bool = False) -> None:
    """`owner.key` must be a name that can become part of a file name (a label, a pde, a preset)."""
    _follows(name_problem, owner, key, optional)


def _batch_limit(owner: Any, key: str) -> None:
    """Lightning's `limit_*_batches`: a number of batches (int >= 0) or a fraction of them (float in [0, 1])."""
    value = getattr(owner, key)
    if value is None or (_is_int(value) and value >= 0) or (isinstance(value, float) and 0.0 <= value <= 1.0):
        return
    raise SettingError(key, value, "is not valid: expected a number of batches (a whole number >= 0) or a fraction "
                                   "of them (a float between 0.0 and 1.0)")


@dataclass
class EvaluateDataConfig:
    """Evaluate's `data.*`: with a checkpoint, pde/preset/frame_stride come from it (a given value must agree)."""

    pde: str | None = None
    preset: str | None = None
    root: str = "data"
    frame_stride: int | None = None
    batch_size: int = 32
    num_workers: int = 0
    # training: hold the train (and validation) split in memory (true), read it lazily from HDF5 (false), or the
    # former when it fits under a quarter of the free memory shared by the node's training processes (auto;
    # pdebench.data.dataset.preload_limit_bytes). Batches are identical either way.
    preload: Any = "auto"  # auto | true | false (Any: OmegaConf unions break Hydra composition)

    def __post_init__(self) -> None:
        _name(self, "pde", optional=True)  # the dataset folder <root>/<pde>-<preset> and the run folder name them
        _name(self, "preset", optional=True)
        _at_least(self, "frame_stride", 1, "stored frames per model step", optional=True)
        _at_least(self, "batch_size", 1, "a batch size")
        _at_least(self, "num_workers", 0, "a number of data-loader worker processes")
        if not (self.preload is True or self.preload is False or self.preload == "auto"):
            raise SettingError("preload", self.preload, "is not valid: expected auto, true or false")


@dataclass
class DataConfig(EvaluateDataConfig):
    """Which dataset to read and how to cut it into model steps (evaluate's `data` is the same with every value
    optional, so a `data/*.yaml` composes into either)."""

    pde: str = MISSING
    preset: str = "small"
    root: str = "data"
    frame_stride: int | None = None  # stored frames per model step; null = the PDE's (benchmark.frame_stride)
    batch_size: int = 32
    num_workers: int = 0


def _check_objective(objective: Any) -> None:
    """Ranges shared by `ObjectiveConfig` and `ObjectiveOverrides` (a null override is not checked)."""
    if objective.history is not None:
        _at_least(objective, "history", 1, "a number of input frames")
    if objective.bundle is not None:
        _at_least(objective, "bundle", 1, "a number of output frames per call")
    if objective.target_scale is not None:
        _positive(objective, "target_scale", "the scale the difference target is divided by")


@dataclass
class ObjectiveConfig:
    """What the net is trained to predict from what, and how the loss is formed (`name` picks the Objective)."""

    name: str = "onestep"
    history: int = 1  # input frames (model steps) folded into channels
    bundle: int = 1  # output frames per call
    loss: str = "mse"  # mse | rel_l2
    target: str = "state"  # state | difference (the net predicts (u(t+k) - u(t)) / target_scale, standardised)
    target_scale: float = 1.0
    # pushforward: at most this many no-grad steps per batch (0..min(epoch, unroll_steps)); unrolled: BPTT steps
    unroll_steps: int = 0
    input_noise_std: float = 0.0  # Gaussian noise added to the standardised inputs of the net during training
    fd_order: int = 1  # target=derivative: finite-difference order of the du/dt label (1, 2 or 4)
    fd_spacing: int = 1  # target=derivative: stored-frame intervals between the label stencil's points (1: finest)
    integrator: str = "euler"  # target=derivative: euler | heun | rk4 | ab2, over one model step at inference
    substeps: int = 1  # target=derivative: integrator steps per model step

    def __post_init__(self) -> None:
        _check_objective(self)
        _at_least(self, "unroll_steps", 0, "a number of unrolled steps")
        _positive(self, "input_noise_std", "the std of the input noise", allow_zero=True)
        _at_least(self, "substeps", 1, "a number of integrator steps per model step")
        _at_least(self, "fd_spacing", 1, "a number of stored-frame intervals between finite-difference points")


@dataclass
class ObjectiveOverrides:
    """Evaluate's `objective.*`: null everywhere unless given. With a checkpoint, a given value must equal the
    checkpoint's; for a reference row, null means the `ObjectiveConfig` default."""

    name: str | None = None
    history: int | None = None
    bundle: int | None = None
    loss: str | None = None
    target: str | None = None
    target_scale: float | None = None

    def __post_init__(self) -> None:
        _check_objective(self)


@dataclass
class OptimConfig:
    """AdamW with linear warmup then cosine decay to `lr * min_lr_ratio` over the whole run."""

    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05
    min_lr_ratio: float = 0.01
    ema_decay: float | None = None  # exponential moving average of the weights (PDE-Refiner: 0.995); null = none

    def __post_init__(self) -> None:
        if self.ema_decay is not None and not (_is_number(self.ema_decay) and 0 < self.ema_decay < 1):
            raise SettingError("ema_decay", self.ema_decay, "is not valid: expected a decay strictly between 0 and 1 "
                                                            "(or null for no weight averaging)")
        _positive(self, "lr", "a learning rate")
        _positive(self, "weight_decay", "a weight decay", allow_zero=True)
        _fraction(self, "warmup_fraction", "the fraction of the steps spent warming up")
        _fraction(self, "min_lr_ratio", "the final learning rate as a fraction of lr")


@dataclass
class ValidationConfig:
    """Validation rollout used to choose the checkpoint (never the test split)."""

    rollout_steps: int = 40  # model steps rolled out per validation trajectory
    max_trajectories: int = 32
    nrmse_cap: float = 10.0  # per-step nRMSE is clipped here so one blow-up cannot produce inf/NaN

    def __post_init__(self) -> None:
        _at_least(self, "rollout_steps", 1, "a number of model steps")
        _at_least(self, "max_trajectories", 1, "a number of validation trajectories")
        _positive(self, "nrmse_cap", "the cap of the per-step nRMSE")


@dataclass
class TrainerConfig:
    """Arguments passed to `lightning.Trainer` (see trainer/*.yaml)."""

    accelerator: str = "auto"
    devices: Any = 1
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
    max_epochs: int = 10
    max_steps: int = -1
    max_time: Any = None  # "DD:HH:MM:SS" or null
    gradient_clip_val: float = 1.0
    check_val_every_n_epoch: int = 1
    log_every_n_steps: int = 10
    limit_train_batches: Any = 1.0
    limit_val_batches: Any = 1.0
    deterministic: bool = False
    enable_progress_bar: bool = True

    def __post_init__(self) -> None:
        problem = accelerator_problem(self.accelerator)
        if problem is not None:
            raise SettingError("accelerator", self.accelerator, problem)
        _at_least(self, "max_epochs", -1, "a number of epochs (-1: no limit)")
        _at_least(self, "max_steps", -1, "a number of optimiser steps (-1: no limit)")
        _at_least(self, "num_nodes", 1, "a number of machines")
        _positive(self, "gradient_clip_val", "the gradient-norm clip (0: no clipping)", allow_zero=True)
        _at_least(self, "check_val_every_n_epoch", 1, "a number of epochs between validations")
        _at_least(self, "log_every_n_steps", 1, "a number of steps between logged metrics")
        _batch_limit(self, "limit_train_batches")
        _batch_limit(self, "limit_val_batches")


@dataclass
class LoggerConfig:
    """Experiment logger: `csv` (default) or `wandb` (offline unless an API key is configured)."""

    name: str = "csv"
    project: str = "pdebench"
    offline: bool = True

    def __post_init__(self) -> None:
        if self.name not in ("csv", "wandb"):
            raise SettingError("name", self.name, "is not a known logger: expected csv or wandb")


@dataclass
class TrainConfig:
    data: DataConfig = MISSING
    # Any here: each model's own dataclass checks it (`check` runs in validate_config; see baselines.registry).
    model: Any = field(default=MISSING, metadata={"check": model_config})
    objective: ObjectiveConfig = MISSING
    optim: OptimConfig = field(default_factory=OptimConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    trainer: TrainerConfig = MISSING
    logger: LoggerConfig = MISSING
    seed: int = 0
    label: str = MISSING  # leaderboard row name
    run_dir: str = MISSING
    resume: bool = True  # continue from run_dir/checkpoints/last.ckpt if it exists
    # without a terminal (a SLURM log, CI): one progress line per this many steps, and one per epoch (0: per epoch)
    progress_every_n_steps: int = 100

    def __post_init__(self) -> None:
        _seed(self, "seed")
        _name(self, "label")
        _at_least(self, "progress_every_n_steps", 0, "a number of steps between progress lines")


@dataclass
class RolloutConfig:
    """Settings of the long-rollout evaluation (DESIGN section 7); null values take the PDE's benchmark facts."""

    batch_size: int = 32  # trajectories per stepper call; a short last batch is padded to this size
    max_steps: Any = None  # null = to the end of each trajectory
    thresholds: list[float] = field(default_factory=lambda: [0.8, 0.9, 0.95])
    gmean_steps: int | None = None  # null = the PDE's benchmark.gmean_steps
    windows: list[list[int]] = field(default_factory=lambda: [[1, 1], [2, 5], [6, 12], [13, 30]])
    stability_factor: float | None = None  # null = the PDE's benchmark.stability_energy_factor
    ensemble: int = 1  # members drawn with the stepper's `sample` (CRPS, spread-skill); 1 = deterministic
    bootstrap_resamples: int = 1000  # resamples of the test trajectories for the 95% intervals
    bootstrap_seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        _at_least(self, "batch_size", 1, "a number of trajectories rolled out together")
        _at_least(self, "max_steps", 1, "a number of model steps", optional=True)
        thresholds = list(self.thresholds)
        if not thresholds or not all(_is_number(t) and 0 < t < 1 for t in thresholds):
            raise SettingError("thresholds", thresholds, "is not valid: expected a non-empty list of correlation "
                                                         "thresholds, each strictly between 0 and 1")
        _at_least(self, "gmean_steps", 1, "a number of model steps", optional=True)
        windows = [list(w) for w in self.windows]
        if not all(len(w) == 2 and all(_is_int(v) for v in w) and 1 <= w[0] <= w[1] for w in windows):
            raise SettingError("windows", windows, "is not valid: expected a list of [first, last] model steps, "
                                                   "1 <= first <= last")
        if self.stability_factor is not None and not (_is_number(self.stability_factor)
                                                      and self.stability_factor >= 1):
            raise SettingError("stability_factor", self.stability_factor,
                               "is not valid: expected a finite number >= 1 (below 1 the truth itself is unstable)")
        _at_least(self, "ensemble", 1, "a number of ensemble members")
        if not (_is_int(self.bootstrap_resamples) and 1 <= self.bootstrap_resamples <= MAX_BOOTSTRAP_RESAMPLES):
            raise SettingError("bootstrap_resamples", self.bootstrap_resamples,
                               f"is not valid: expected a number of bootstrap resamples, a whole number from 1 to "
                               f"{MAX_BOOTSTRAP_RESAMPLES:,}")
        _seed(self, "bootstrap_seed")
        problem = device_problem(self.device)
        if problem is not None:
            raise SettingError("device", self.device, problem)


@dataclass
class EvaluateConfig:
    data: EvaluateDataConfig = field(default_factory=EvaluateDataConfig)
    # a reference row (e.g. persistence) when there is no checkpoint; checked by its model's dataclass
    model: Any = field(default=None, metadata={"check": model_config})
    objective: ObjectiveOverrides = field(default_factory=ObjectiveOverrides)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    # trainer=ddp trainer.devices=N shards the test trajectories over N processes; only accelerator, devices,
    # num_nodes and strategy are read (evaluation runs in the checkpoint's precision)
    trainer: TrainerConfig | None = None
    ckpt: str | None = None  # a training checkpoint; null evaluates a reference row (`model=...`)
    seed: int | None = None  # default: the checkpoint's seed (0 for a reference row)
    label: str | None = None  # default: the checkpoint's label (the model name for a reference row)
    results_dir: str = "results"

    def __post_init__(self) -> None:
        _seed(self, "seed", optional=True)
        _name(self, "label", optional=True)


@dataclass
class PresetSplitConfig:
    n_traj: int = MISSING
    n_frames: int = MISSING

    def __post_init__(self) -> None:
        _at_least(self, "n_traj", 1, "a number of trajectories")
        _at_least(self, "n_frames", 2, "a number of stored frames per trajectory")


@dataclass
class PresetConfig:
    """Sizes of one preset of one PDE; `solver` overrides the PDE's solver settings for this preset."""

    train: PresetSplitConfig = MISSING
    valid: PresetSplitConfig = MISSING
    test: PresetSplitConfig = MISSING
    solver: dict[str, Any] = field(default_factory=dict)


@dataclass
class BenchmarkConfig:
    """What is particular to a PDE when it is trained, evaluated and ranked; recorded in the dataset's manifest,
    from where training, evaluation and the leaderboard read it (a manifest written before a field existed gets the
    field's default here)."""

    frame_stride: int = 1  # stored frames per model step
    headline: str = "vrmse_mean"  # the summary metric leaderboards sort by (and checkpoints will be chosen on)
    headline_goal: str = "min"  # min | max
    conserved: str | None = None  # the PDE's invariant, e.g. "mean" (KS); null if it has none
    conserved_fields: list[str] | None = None  # the fields the invariant applies to; null = every field
    spectral_bands: list[float] = field(default_factory=lambda: [4.0, 12.0])  # low < a <= mid < b <= high (shells)
    spectrum_steps: list[int] = field(default_factory=lambda: [1, 10, 30])  # model steps with stored energy spectra
    gmean_steps: int = 100  # steps of the geometric-mean nRMSE; set before the errors saturate
    stability_energy_factor: float = 4.0  # unstable once energy > factor x the trajectory's largest stored energy

    def __post_init__(self) -> None:
        _at_least(self, "frame_stride", 1, "stored frames per model step")
        if self.headline_goal not in ("min", "max"):
            raise SettingError("headline_goal", self.headline_goal, "is not valid: expected min or max")
        bands = list(self.spectral_bands)
        if not (len(bands) == 2 and all(_is_number(b) for b in bands) and 0 < bands[0] < bands[1]):
            raise SettingError("spectral_bands", bands, "is not valid: expected two wavenumber-shell edges [a, b] "
                                                        "with 0 < a < b")
        if not all(_is_int(s) and s >= 1 for s in self.spectrum_steps):
            raise SettingError("spectrum_steps", list(self.spectrum_steps),
                               "is not valid: expected a list of model steps, each a whole number >= 1")
        _at_least(self, "gmean_steps", 1, "a number of model steps")
        if not (_is_number(self.stability_energy_factor) and self.stability_energy_factor >= 1):
            raise SettingError("stability_energy_factor", self.stability_energy_factor,
                               "is not valid: expected a finite number >= 1 (below 1 the truth itself is unstable)")


@dataclass
class PDEGenConfig:
    """One dataset family: which generator, its solver settings, its benchmark facts and its presets.

    The ConfigStore holds one subclass per registered generator (`schema/pde/<generator>`) whose `solver` is that
    generator's typed settings dataclass, so a misspelt solver key in `conf/pde/*.yaml` fails when composed.
    """

    name: str = MISSING  # dataset name prefix, e.g. ks or ks_visc
    generator: str = MISSING  # key in data_gen.registry.GENERATORS
    solver: Any = MISSING
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)
    presets: dict[str, PresetConfig] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _name(self, "name")  # the dataset folder <root>/<name>-<preset>


@dataclass
class GenerateConfig:
    pde: PDEGenConfig = MISSING
    preset: str = "small"
    root: str = "data"
    device: str = "auto"
    batch_size: int = 64  # trajectories per solver call
    seed: int = 0  # base seed; trajectory i of split s always gets the same seed from (seed, s, i)
    overwrite: bool = False
    workers: int | None = None  # processes solving trajectories side by side; null: every core (one on a GPU)
    shard: int | None = None  # write only shard `shard` of `n_shards` (data_gen/generate.py); null: the whole dataset
    n_shards: int | None = None  # number of shards; with merge=true, null takes the one count found on disk
    merge: bool = False  # join the finished shards into the split files and write the manifest

    def __post_init__(self) -> None:
        _name(self, "preset")
        _at_least(self, "batch_size", 1, "a number of trajectories per solver call")
        _seed(self, "seed")
        _at_least(self, "workers", 1, "a number of worker processes", optional=True)
        _at_least(self, "shard", 0, "a shard index", optional=True)
        _at_least(self, "n_shards", 1, "a number of shards", optional=True)
        problem = device_problem(self.device)
        if problem is not None:
            raise SettingError("device", self.device, problem)


@dataclass
class LeaderboardConfig:
    # result directories or files: a list, or one path (`results=runs/multirun/<date>`, a Hydra sweep folder)
    results: Any = field(default_factory=lambda: ["results"])
    out_dir: str = "leaderboard"
    print: bool = True

    def __post_init__(self) -> None:
        paths = [self.results] if isinstance(self.results, str) else self.results
        if not isinstance(paths, (list, tuple)) or not paths or not all(isinstance(p, str) and p for p in paths):
            raise SettingError("results", self.results, "is not valid: expected a result directory or file, or a "
                                                        "non-empty list of them")


def _unknown_key_sentence(error: ConfigKeyError) -> str:
    """`unknown config key trainer.foo; valid keys under trainer: accelerator, devices, ...`."""
    full_key = str(error.full_key or error.key or "?")
    parent = full_key.rpartition(".")[0]
    where = f"under {parent}" if parent else "at the top level"
    object_type = error.object_type
    valid = ", ".join(f.name for f in fields(object_type)) if is_dataclass(object_type) else "(none)"
    return f"unknown config key {full_key}; valid keys {where}: {valid}"


def _error_sentence(error: OmegaConfBaseException, cfg: Mapping[str, Any]) -> str:
    """One sentence for an OmegaConf error, naming the full key (OmegaConf's own text spans several lines)."""
    if isinstance(error, ConfigKeyError):
        return _unknown_key_sentence(error)
    full_key = str(getattr(error, "full_key", None) or getattr(error, "key", None) or "?")
    if isinstance(error, MissingMandatoryValue):
        return f"config key {full_key} has no value; give one (e.g. {full_key}=...)"
    value: Any = cfg
    for part in full_key.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    message = (getattr(error, "msg", None) or str(error)).splitlines()[0]
    return f"{full_key}={format_value(value)} is not valid: {message}"


def _check_values(node: DictConfig) -> None:
    """Run the `__post_init__` checks of every dataclass node of `node`, deepest first, naming the full key."""
    for key in node.keys():
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_none() and not child._is_missing():
            _check_values(child)
    if not is_dataclass(OmegaConf.get_type(node)):
        return
    try:
        OmegaConf.to_object(node)
    except SettingError as error:
        prefix = node._get_full_key(None)
        raise ConfigError(error.sentence(f"{prefix}.{error.key}" if prefix else error.key)) from None


def validate_config(cfg: Mapping[str, Any], schema: type) -> None:
    """Fail, in one sentence naming the full key, on a key `schema` lacks or a value it rejects.

    `cfg` is a resolved plain config (what the Hydra main passes to the library). It is merged onto
    `OmegaConf.structured(schema)`, whose dataclass nodes are closed, so a key added with `+key=value` that the
    schema lacks fails (naming the valid keys at that level), as does a value of the wrong type; then every node's
    `__post_init__` range checks run. A field with a `check` in its metadata (the `model` node, typed `Any` here)
    is handed to that function, which for models is `baselines.registry.model_config`. Raises `ConfigError`
    (a ValueError, so the commands print it as one line) or what the `check` raises.
    """
    try:
        # A dataclass node refuses keys its class lacks by itself; struct mode on the root would also refuse new
        # names in dict-typed nodes (`pde.presets.<preset>`), which are open by design.
        merged = OmegaConf.merge(OmegaConf.structured(schema), dict(cfg))
        _check_values(merged)
    except OmegaConfBaseException as error:
        raise ConfigError(_error_sentence(error, cfg)) from None
    for spec in fields(schema):
        check = spec.metadata.get("check")
        if check is not None and cfg.get(spec.name) is not None:
            check(cfg[spec.name])


def _pde_schema(generator: str, settings: type) -> type:
    """`PDEGenConfig` with `solver` typed as generator `generator`'s settings dataclass."""
    return make_dataclass(f"{settings.__name__}PDE", [("solver", settings, field(default_factory=settings))],
                          bases=(PDEGenConfig,))


def default_run_label(model: str, objective: str, target: str) -> str:
    """A training run's default `label` (`${run_label:...}` in train.yaml), which names its run folder and its
    leaderboard row: the model name, then the objective and the target where they differ from the defaults
    (`onestep`, `state`), so that e.g. `objective=derivative` (a onestep objective) trains into `fno-derivative`
    instead of resuming a plain `fno` run; a model trained with its own objective (PDE-Refiner's) keeps its name."""
    if objective == model:
        return model
    return "-".join([model, *([objective] if objective != "onestep" else []), *([target] if target != "state" else [])])


def register_configs() -> None:
    """Register the schemas with Hydra's ConfigStore and the `run_label` resolver (idempotent), looping over the
    model and generator registries: adding a model or a PDE never edits this file."""
    OmegaConf.register_new_resolver("run_label", default_run_label, replace=True)
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="evaluate_schema", node=EvaluateConfig)
    cs.store(name="generate_schema", node=GenerateConfig)
    cs.store(name="leaderboard_schema", node=LeaderboardConfig)
    cs.store(group="schema/data", name="data", node=DataConfig)
    cs.store(group="schema/objective", name="objective", node=ObjectiveConfig)
    cs.store(group="schema/trainer", name="trainer", node=TrainerConfig)
    cs.store(group="schema/logger", name="logger", node=LoggerConfig)
    for name, entry in baselines.MODELS.items():
        cs.store(group="schema/model", name=name, node=entry.config)
    for name, entry in data_gen.registry.GENERATORS.items():
        cs.store(group="schema/pde", name=name, node=_pde_schema(name, entry.config))
