"""Typed schemas for the Hydra config tree in `conf/`: one dataclass per node, with its defaults and range checks.

Every YAML file in `conf/` is merged onto one of these dataclasses, so a misspelt key or a value of the wrong type
fails before any work starts. Range checks live in each dataclass's `__post_init__` (`pdebench.config.checks`).
`pdebench.config.loading.load_config` turns a resolved config into these objects once, where a command starts;
the library then reads them by attribute. Each default is written here and nowhere else.

This module imports nothing above the data layer: the model and solver settings (`model`, `pde.solver`) are typed
by their registries (`baselines`, `data_gen`), which the layer that owns them applies after loading, and Hydra's
ConfigStore is filled where the commands start (`pdebench.cli.hydra_setup`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from pdebench.config.checks import (
    SettingError,
    at_least,
    batch_limit,
    fraction,
    is_finite_number,
    is_whole_number,
    positive,
    valid_name,
    valid_seed,
)
from pdebench.config.loading import typed_settings
from pdebench.devices import accelerator_problem, device_problem

# A bootstrap costs one resampled summary per resample; past this many the interval's own Monte-Carlo error (about
# 1/sqrt(n) of its width's) is far below anything a table shows, and the time grows without bound.
MAX_BOOTSTRAP_RESAMPLES = 100_000


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
        valid_name(self, "pde", optional=True)  # the dataset folder <root>/<pde>-<preset> and the run folder name them
        valid_name(self, "preset", optional=True)
        at_least(self, "frame_stride", 1, "stored frames per model step", optional=True)
        at_least(self, "batch_size", 1, "a batch size")
        at_least(self, "num_workers", 0, "a number of data-loader worker processes")
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
        at_least(objective, "history", 1, "a number of input frames")
    if objective.bundle is not None:
        at_least(objective, "bundle", 1, "a number of output frames per call")
    if objective.target_scale is not None:
        positive(objective, "target_scale", "the scale the difference target is divided by")


@dataclass
class ObjectiveConfig:
    """What the net is trained to predict from what, and how the loss is formed (`name` picks the Objective)."""

    name: str = "onestep"
    history: int = 1  # input frames (model steps) folded into channels
    bundle: int = 1  # output frames per call
    loss: str = "mse"  # mse | rel_l2
    # state | difference (the net predicts (u(t+k) - u(t)) / target_scale, standardised) | raw_difference (the same
    # in the data's own units, as PDE-Refiner's code) | derivative
    target: str = "state"
    target_scale: float = 1.0
    # pushforward: at most this many no-grad steps per batch (0..min(epoch, unroll_steps)); unrolled: BPTT steps
    unroll_steps: int = 0
    # pushforward: the length of each stage of the curriculum as a fraction of the budget (trainer.max_steps): no
    # unrolled step in the first stage, at most 1 in the second, ... MP-PDE trains 20 epochs, so 0.05 is its
    # curriculum at any budget; null = one epoch a stage (never past the first in a budget shorter than a pass)
    curriculum_fraction: float | None = None
    input_noise_std: float = 0.0  # Gaussian noise added to the standardised inputs of the net during training
    fd_order: int = 1  # target=derivative: finite-difference order of the du/dt label (1, 2 or 4)
    fd_spacing: int = 1  # target=derivative: stored-frame intervals between the label stencil's points (1: finest)
    integrator: str = "euler"  # target=derivative: euler | heun | rk4 | ab2, over one model step at inference
    substeps: int = 1  # target=derivative: integrator steps per model step

    def __post_init__(self) -> None:
        _check_objective(self)
        at_least(self, "unroll_steps", 0, "a number of unrolled steps")
        if self.curriculum_fraction is not None and not (is_finite_number(self.curriculum_fraction)
                                                         and 0 < self.curriculum_fraction <= 1):
            raise SettingError("curriculum_fraction", self.curriculum_fraction,
                               "is not valid: expected a fraction of the training budget in (0, 1], or null (epochs)")
        positive(self, "input_noise_std", "the std of the input noise", allow_zero=True)
        at_least(self, "substeps", 1, "a number of integrator steps per model step")
        at_least(self, "fd_spacing", 1, "a number of stored-frame intervals between finite-difference points")


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
        if self.ema_decay is not None and not (is_finite_number(self.ema_decay) and 0 < self.ema_decay < 1):
            raise SettingError("ema_decay", self.ema_decay, "is not valid: expected a decay strictly between 0 and 1 "
                                                            "(or null for no weight averaging)")
        positive(self, "lr", "a learning rate")
        positive(self, "weight_decay", "a weight decay", allow_zero=True)
        fraction(self, "warmup_fraction", "the fraction of the steps spent warming up")
        fraction(self, "min_lr_ratio", "the final learning rate as a fraction of lr")


@dataclass
class ValidationConfig:
    """Validation rollout used to choose the checkpoint (never the test split)."""

    rollout_steps: int = 40  # model steps rolled out per validation trajectory
    max_trajectories: int = 32
    nrmse_cap: float = 10.0  # per-step nRMSE is clipped here so one blow-up cannot produce inf/NaN

    def __post_init__(self) -> None:
        at_least(self, "rollout_steps", 1, "a number of model steps")
        at_least(self, "max_trajectories", 1, "a number of validation trajectories")
        positive(self, "nrmse_cap", "the cap of the per-step nRMSE")


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
        at_least(self, "max_epochs", -1, "a number of epochs (-1: no limit)")
        at_least(self, "max_steps", -1, "a number of optimiser steps (-1: no limit)")
        at_least(self, "num_nodes", 1, "a number of machines")
        positive(self, "gradient_clip_val", "the gradient-norm clip (0: no clipping)", allow_zero=True)
        at_least(self, "check_val_every_n_epoch", 1, "a number of epochs between validations")
        at_least(self, "log_every_n_steps", 1, "a number of steps between logged metrics")
        batch_limit(self, "limit_train_batches")
        batch_limit(self, "limit_val_batches")


@dataclass
class LoggerConfig:
    """Experiment logger: `csv` (default) or `wandb` (offline unless an API key is configured)."""

    name: str = "csv"
    project: str = "pdebench"
    offline: bool = True

    def __post_init__(self) -> None:
        if self.name not in ("csv", "wandb"):
            raise SettingError("name", self.name, "is not a known logger: expected csv or wandb")


# Each value of a recipe and the setting of the run it sets (`conf/recipe/_apply.yaml` writes one interpolation per
# entry): what a row's deviations are measured on.
RECIPE_KEYS = {
    "max_steps": "trainer.max_steps",
    "batch_size": "data.batch_size",
    "lr": "optim.lr",
    "weight_decay": "optim.weight_decay",
    "warmup_fraction": "optim.warmup_fraction",
    "min_lr_ratio": "optim.min_lr_ratio",
    "ema_decay": "optim.ema_decay",
    "objective": "objective.name",
    "loss": "objective.loss",
    "target": "objective.target",
    "target_scale": "objective.target_scale",
    "history": "objective.history",
    "bundle": "objective.bundle",
}


@dataclass
class TuningRecord:
    """One row's winner of its Optuna search over the optimiser (`pdebench-tune <dataset>`), as the
    tuned-settings file of its dataset holds it (`conf/tuned/<dataset>.yaml`, one entry per row label)."""

    lr: float = MISSING
    weight_decay: float = MISSING
    n_trials: int = MISSING  # trials of the search; the same for every row of a dataset
    trial_steps: int = MISSING  # optimiser steps each trial trained (the recipe's max_steps unless cut for the search)
    study: str = MISSING  # the Optuna study's name
    date: str = MISSING  # when the winner was recorded, ISO 8601 (YYYY-MM-DD)
    score: float = MISSING  # its best validation selection score (the PDE's headline, higher is better)

    def __post_init__(self) -> None:
        positive(self, "lr", "a learning rate")
        positive(self, "weight_decay", "a weight decay", allow_zero=True)
        at_least(self, "n_trials", 1, "a number of trials")
        at_least(self, "trial_steps", 1, "a number of optimiser steps")


@dataclass
class RecipeConfig:
    """A dataset's training recipe (`conf/recipe/<dataset>.yaml`): what every learned row of the dataset shares.

    The recipe's files set the run's own settings from these values (`trainer.max_steps`, `data.batch_size`,
    `optim.*`, `objective.*`: `RECIPE_KEYS` in `pdebench.config.recipes`), so both what the recipe says and what the
    run used are recorded; a row differs from its recipe only where its experiment says why (`reasons`), and the run
    record lists every difference (`pdebench.config.recipes.recipe_deviations`). Every value is required: a recipe
    states all of them.
    """

    name: str = MISSING  # the dataset the recipe is for (its `data.pde`)
    max_steps: int = MISSING  # the training budget: optimiser steps
    batch_size: int = MISSING
    lr: float = MISSING  # the learning rate of a row not yet tuned
    weight_decay: float = MISSING  # likewise
    warmup_fraction: float = MISSING  # the schedule: linear warmup over this fraction of the steps, then cosine
    min_lr_ratio: float = MISSING  # ... down to lr * min_lr_ratio
    ema_decay: float | None = MISSING  # EMA of the weights; null: none
    objective: str = MISSING  # objective.name
    loss: str = MISSING
    target: str = MISSING
    target_scale: float = MISSING
    history: int = MISSING
    bundle: int = MISSING
    # why a row departs from a recipe value: recipe field (`bundle`, `objective`, ...) -> the reason, in a few words
    reasons: dict[str, str] = field(default_factory=dict)
    # where the tuned-settings files live; null: the `tuned/` folder of the config tree
    tuned_dir: str | None = None
    # this row's Optuna winner, read from `tuned_dir` while the config resolves (null: untuned); a `TuningRecord`
    # once loaded. Declared `Any` because OmegaConf would resolve the interpolation that fills it while merging a
    # recipe file, before the rest of the recipe is there.
    tuning: Any = None

    def __post_init__(self) -> None:
        valid_name(self, "name")
        at_least(self, "max_steps", 1, "a number of optimiser steps")
        at_least(self, "batch_size", 1, "a batch size")
        at_least(self, "history", 1, "a number of input frames")
        at_least(self, "bundle", 1, "a number of output frames per call")
        if self.tuning is not None and not isinstance(self.tuning, TuningRecord):
            self.tuning = typed_settings(TuningRecord, self.tuning, "recipe.tuning")
        unknown = sorted(set(self.reasons) - set(RECIPE_KEYS))
        if unknown:
            raise SettingError("reasons", dict(self.reasons), f"is not valid: {', '.join(unknown)} is not a recipe "
                                                              f"setting; expected some of {', '.join(RECIPE_KEYS)}")


@dataclass
class FrozenConfig:
    """A sub-network a run takes from another run's checkpoint and keeps frozen: loaded weights-only once the
    checkpoint's data record matches this run's dataset, then left untrained (`pdebench.training.stages`)."""

    module: str = MISSING  # its dotted path in this run's net (`interpolator`)
    checkpoint: str | None = None  # a pdebench-train checkpoint (`runs/.../checkpoints/best.ckpt`)
    stage: str | None = None  # or: an earlier stage of this run (`stages`), whose best checkpoint is read
    source: str | None = None  # its path in the checkpoint's net; null: the same as `module`

    def __post_init__(self) -> None:
        if (self.checkpoint is None) == (self.stage is None):
            raise SettingError("checkpoint", self.checkpoint, f"is not valid with stage={self.stage}: expected "
                                                              "exactly one of a checkpoint path and an earlier stage")


@dataclass
class StageConfig:
    """One stage of a multi-stage run: its objective and the sub-networks it loads frozen. Stages run in order,
    each into `<run_dir>/<name>`, with the run's settings but for the objective's name."""

    name: str = MISSING
    objective: str = MISSING  # objective.name of this stage
    frozen: list[FrozenConfig] = field(default_factory=list)

    def __post_init__(self) -> None:
        valid_name(self, "name")


@dataclass
class TrainConfig:
    data: DataConfig = MISSING
    # Any here: after loading, the model's own dataclass (`baselines.registry.model_config`, applied by training)
    model: Any = MISSING
    objective: ObjectiveConfig = MISSING
    optim: OptimConfig = field(default_factory=OptimConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    trainer: TrainerConfig = MISSING
    logger: LoggerConfig = MISSING
    seed: int = 0
    label: str = MISSING  # leaderboard row name
    run_dir: str = MISSING
    resume: bool = True  # continue from run_dir/checkpoints/last.ckpt if it exists
    # without a terminal (a SLURM log, CI): a progress line after the first step, then one per this many steps and
    # one per `progress_every_n_seconds` of training, whichever comes first, and one per epoch (0: that rule is off)
    progress_every_n_steps: int = 100
    progress_every_n_seconds: float = 30.0
    recipe: RecipeConfig | None = None  # the dataset recipe the run follows (`recipe=<dataset>`); null: none
    frozen: list[FrozenConfig] = field(default_factory=list)  # sub-networks loaded from checkpoints, kept frozen
    stages: list[StageConfig] = field(default_factory=list)  # a multi-stage run (DYffusion); empty: one stage
    stage: str | None = None  # run only this stage of `stages` (null: all, in order)

    def __post_init__(self) -> None:
        valid_seed(self, "seed")
        valid_name(self, "label")
        at_least(self, "progress_every_n_steps", 0, "a number of steps between progress lines")
        positive(self, "progress_every_n_seconds", "seconds between progress lines (0: none by time)", allow_zero=True)


@dataclass
class RolloutConfig:
    """Settings of the long-rollout evaluation (DESIGN section 7); null values take the PDE's benchmark facts."""

    batch_size: int = 32  # trajectories per stepper call; a short last batch is padded to this size
    max_steps: Any = None  # null = to the end of each trajectory
    thresholds: list[float] = field(default_factory=lambda: [0.8, 0.9, 0.95])
    gmean_steps: int | None = None  # null = the PDE's benchmark.gmean_steps
    # [first, last] model steps each windowed mean averages, cut at the rollout's end (keys name the steps actually
    # averaged: a 23-step rollout gives nrmse_steps_13-23); null = The Well's windows, derived from the rollout length
    windows: list[list[int]] | None = field(default_factory=lambda: [[1, 1], [2, 5], [6, 12], [13, 30]])
    stability_factor: float | None = None  # null = the PDE's benchmark.stability_energy_factor
    ensemble: int = 1  # members drawn with the stepper's `sample` (CRPS, spread-skill); 1 = deterministic
    bootstrap_resamples: int = 1000  # resamples of the test trajectories for the 95% intervals
    bootstrap_seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        at_least(self, "batch_size", 1, "a number of trajectories rolled out together")
        at_least(self, "max_steps", 1, "a number of model steps", optional=True)
        thresholds = list(self.thresholds)
        if not thresholds or not all(is_finite_number(t) and 0 < t < 1 for t in thresholds):
            raise SettingError("thresholds", thresholds, "is not valid: expected a non-empty list of correlation "
                                                         "thresholds, each strictly between 0 and 1")
        at_least(self, "gmean_steps", 1, "a number of model steps", optional=True)
        windows = [] if self.windows is None else [list(w) for w in self.windows]
        if not all(len(w) == 2 and all(is_whole_number(v) for v in w) and 1 <= w[0] <= w[1] for w in windows):
            raise SettingError("windows", windows, "is not valid: expected a list of [first, last] model steps, "
                                                   "1 <= first <= last")
        if self.stability_factor is not None and not (is_finite_number(self.stability_factor)
                                                      and self.stability_factor >= 1):
            raise SettingError("stability_factor", self.stability_factor,
                               "is not valid: expected a finite number >= 1 (below 1 the truth itself is unstable)")
        at_least(self, "ensemble", 1, "a number of ensemble members")
        if not (is_whole_number(self.bootstrap_resamples) and 1 <= self.bootstrap_resamples <= MAX_BOOTSTRAP_RESAMPLES):
            raise SettingError("bootstrap_resamples", self.bootstrap_resamples,
                               f"is not valid: expected a number of bootstrap resamples, a whole number from 1 to "
                               f"{MAX_BOOTSTRAP_RESAMPLES:,}")
        valid_seed(self, "bootstrap_seed")
        problem = device_problem(self.device)
        if problem is not None:
            raise SettingError("device", self.device, problem)


@dataclass
class EvaluateConfig:
    data: EvaluateDataConfig = field(default_factory=EvaluateDataConfig)
    # a reference row (e.g. persistence) when there is no checkpoint; typed by its model's dataclass on loading
    model: Any = None
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
        valid_seed(self, "seed", optional=True)
        valid_name(self, "label", optional=True)


@dataclass
class PresetSplitConfig:
    n_traj: int = MISSING
    n_frames: int = MISSING

    def __post_init__(self) -> None:
        at_least(self, "n_traj", 1, "a number of trajectories")
        at_least(self, "n_frames", 2, "a number of stored frames per trajectory")


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
    # The fields the invariant applies to (SWE: [height], not the winds); null = every field, which is also what a
    # manifest written before this key existed gets. Checked against the dataset's fields where it is evaluated.
    conserved_fields: list[str] | None = None
    spectral_bands: list[float] = field(default_factory=lambda: [4.0, 12.0])  # low < a <= mid < b <= high (shells)
    spectrum_steps: list[int] = field(default_factory=lambda: [1, 10, 30])  # model steps with stored energy spectra
    gmean_steps: int = 100  # steps of the geometric-mean nRMSE; set before the errors saturate
    stability_energy_factor: float = 4.0  # unstable once energy > factor x the trajectory's largest stored energy

    def __post_init__(self) -> None:
        at_least(self, "frame_stride", 1, "stored frames per model step")
        if self.headline_goal not in ("min", "max"):
            raise SettingError("headline_goal", self.headline_goal, "is not valid: expected min or max")
        bands = list(self.spectral_bands)
        if not (len(bands) == 2 and all(is_finite_number(b) for b in bands) and 0 < bands[0] < bands[1]):
            raise SettingError("spectral_bands", bands, "is not valid: expected two wavenumber-shell edges [a, b] "
                                                        "with 0 < a < b")
        if not all(is_whole_number(s) and s >= 1 for s in self.spectrum_steps):
            raise SettingError("spectrum_steps", list(self.spectrum_steps),
                               "is not valid: expected a list of model steps, each a whole number >= 1")
        self._check_conserved_fields()
        at_least(self, "gmean_steps", 1, "a number of model steps")
        if not (is_finite_number(self.stability_energy_factor) and self.stability_energy_factor >= 1):
            raise SettingError("stability_energy_factor", self.stability_energy_factor,
                               "is not valid: expected a finite number >= 1 (below 1 the truth itself is unstable)")


    def _check_conserved_fields(self) -> None:
        """`conserved_fields`: null, or distinct field names of an invariant that `conserved` names."""
        names = self.conserved_fields
        if names is None:
            return
        names = list(names)
        if self.conserved is None:
            raise SettingError("conserved_fields", names, "is not valid: it names the fields of an invariant, but "
                                                          "conserved is null (name the invariant, or set it null)")
        if not names or not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
            raise SettingError("conserved_fields", names, "is not valid: expected a non-empty list of distinct field "
                                                          "names, e.g. [height]")


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
        valid_name(self, "name")  # the dataset folder <root>/<name>-<preset>


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
    shard: int | None = None  # write only shard `shard` of `n_shards` (data_gen/shards.py); null: the whole dataset
    n_shards: int | None = None  # number of shards; with merge=true, null takes the one count found on disk
    merge: bool = False  # join the finished shards into the split files and write the manifest

    def __post_init__(self) -> None:
        valid_name(self, "preset")
        at_least(self, "batch_size", 1, "a number of trajectories per solver call")
        valid_seed(self, "seed")
        at_least(self, "workers", 1, "a number of worker processes", optional=True)
        at_least(self, "shard", 0, "a shard index", optional=True)
        at_least(self, "n_shards", 1, "a number of shards", optional=True)
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


def default_run_label(model: str, objective: str, target: str, width: int | None = None,
                      reference_width: int | None = None, base: tuple[str, str] = ("onestep", "state")) -> str:
    """A training run's default `label` (`${run_label:...}` in train.yaml), which names its run folder and its
    leaderboard row: the model name, then `w<width>` where the net's width is not the model's reference width (`unet`
    at width 16 is `unet-w16`, another row than `unet`), then the objective and the target where they differ from
    `base` (`onestep`, `state` without a recipe; a recipe's own objective and target with one), so that e.g.
    `objective=derivative` (a onestep objective) trains into `fno-derivative` instead of resuming a plain `fno` run; a
    model trained with its own objective (PDE-Refiner's) keeps its name."""
    parts = [model]
    if width is not None and reference_width is not None and width != reference_width:
        parts.append(f"w{width}")
    if objective != model:
        parts += [objective] if objective != base[0] else []
        parts += [target] if target != base[1] else []
    return "-".join(parts)
