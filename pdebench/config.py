"""Typed schemas for the Hydra config tree in `conf/`.

Every YAML file in `conf/` is merged onto one of these dataclasses, so a misspelt key or a value of the wrong
type fails before any work starts, with Hydra/OmegaConf naming the key. Registered in Hydra's ConfigStore
under `schema/...`, which the YAML files list first in their defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field, make_dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

import baselines
import data_gen


@dataclass
class EvaluateDataConfig:
    """Evaluate's `data.*`: with a checkpoint, pde/preset/frame_stride come from it (a given value must agree)."""

    pde: str | None = None
    preset: str | None = None
    root: str = "data"
    frame_stride: int | None = None
    batch_size: int = 32
    num_workers: int = 0


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


@dataclass
class ObjectiveConfig:
    """What the net is trained to predict from what, and how the loss is formed (`name` picks the Objective)."""

    name: str = "onestep"
    history: int = 1  # input frames (model steps) folded into channels
    bundle: int = 1  # output frames per call
    loss: str = "mse"  # mse | rel_l2
    target: str = "state"  # state | difference (the net predicts (u(t+k) - u(t)) / target_scale, standardised)
    target_scale: float = 1.0


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


@dataclass
class OptimConfig:
    """AdamW with linear warmup then cosine decay to `lr * min_lr_ratio` over the whole run."""

    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05
    min_lr_ratio: float = 0.01


@dataclass
class ValidationConfig:
    """Validation rollout used to choose the checkpoint (never the test split)."""

    rollout_steps: int = 40  # model steps rolled out per validation trajectory
    max_trajectories: int = 32
    nrmse_cap: float = 10.0  # per-step nRMSE is clipped here so one blow-up cannot produce inf/NaN


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


@dataclass
class LoggerConfig:
    """Experiment logger: `csv` (default) or `wandb` (offline unless an API key is configured)."""

    name: str = "csv"
    project: str = "pdebench"
    offline: bool = True


@dataclass
class TrainConfig:
    data: DataConfig = MISSING
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


@dataclass
class RolloutConfig:
    """Settings of the long-rollout evaluation (DESIGN section 7)."""

    batch_size: int = 32
    max_steps: Any = None  # null = to the end of each trajectory
    thresholds: list[float] = field(default_factory=lambda: [0.8, 0.9, 0.95])
    gmean_steps: int = 100
    stability_factor: float = 2.0  # unstable once max|pred| > factor * max|truth| of the trajectory
    device: str = "auto"


@dataclass
class EvaluateConfig:
    data: EvaluateDataConfig = field(default_factory=EvaluateDataConfig)
    model: Any = None  # a reference row (e.g. persistence) when there is no checkpoint
    objective: ObjectiveOverrides = field(default_factory=ObjectiveOverrides)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    ckpt: str | None = None  # a training checkpoint; null evaluates a reference row (`model=...`)
    seed: int | None = None  # default: the checkpoint's seed (0 for a reference row)
    label: str | None = None  # default: the checkpoint's label (the model name for a reference row)
    results_dir: str = "results"


@dataclass
class PresetSplitConfig:
    n_traj: int = MISSING
    n_frames: int = MISSING


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
    from where training, evaluation and the leaderboard read it."""

    frame_stride: int = 1  # stored frames per model step
    headline: str = "vrmse_mean"  # the summary metric leaderboards sort by (and checkpoints will be chosen on)
    headline_goal: str = "min"  # min | max
    conserved: str | None = None  # the PDE's invariant, e.g. "mean" (KS); null if it has none


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


@dataclass
class GenerateConfig:
    pde: PDEGenConfig = MISSING
    preset: str = "small"
    root: str = "data"
    device: str = "auto"
    batch_size: int = 64  # trajectories per solver call
    seed: int = 0  # base seed; trajectory i of split s always gets the same seed from (seed, s, i)
    overwrite: bool = False


@dataclass
class LeaderboardConfig:
    results: list[str] = field(default_factory=lambda: ["results"])
    out_dir: str = "leaderboard"
    print: bool = True


def _pde_schema(generator: str, settings: type) -> type:
    """`PDEGenConfig` with `solver` typed as generator `generator`'s settings dataclass."""
    return make_dataclass(f"{settings.__name__}PDE", [("solver", settings, field(default_factory=settings))],
                          bases=(PDEGenConfig,))


def register_configs() -> None:
    """Register the schemas with Hydra's ConfigStore (idempotent), looping over the model and generator
    registries: adding a model or a PDE never edits this file."""
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
