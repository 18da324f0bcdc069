"""`train_config`: a resolved `pdebench-train` config as the typed `TrainConfig` training reads, model included; and
the checks of the model against the objective (`check_model_objective`, from the config alone) and against the
dataset (`check_model_data`, from the train split's header), both before any data loads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from baselines.registry import model_config
from pdebench.config import TrainConfig, load_config
from pdebench.data.netspec import NetSpec
from pdebench.data.reader import TrajectoryFile
from pdebench.errors import InvalidSetting


def train_config(cfg: Mapping[str, Any] | TrainConfig) -> TrainConfig:
    """`cfg` checked and typed once: every node by its schema (`load_config`), `model` by its own dataclass from
    the model registry (`model.widht=3` fails naming the key, the model and the valid keys), and the model's
    settings against the objective's (`check_model_objective`)."""
    typed = load_config(cfg, TrainConfig)
    typed.model = model_config(typed.model)
    check_model_objective(typed)
    return typed


def check_model_objective(cfg: TrainConfig) -> None:
    """Refuse a model output that the target would decode wrongly, before any data loads (each model's
    `ModelConfig.check_target`; e.g. MP-PDE's `residual=true` with any target but `state`), and an objective a model
    trained only by its own objectives cannot take (its config's `check_objective(name)`, where it has one: DYffusion's
    two stages)."""
    cfg.model.check_target(cfg.objective.target)
    check_objective = getattr(cfg.model, "check_objective", None)
    if callable(check_objective):
        check_objective(cfg.objective.name)


def model_data_spec(cfg: TrainConfig, train: TrajectoryFile) -> NetSpec:
    """The `NetSpec` the run's net is built with, from the train split's header alone (fields, conditioning
    parameters, grid) and the objective's history and bundle: what `pdebench.forecast.checkpoint.net_spec` rebuilds
    from the run's data record."""
    return NetSpec(train.field_names, cfg.objective.history, cfg.objective.bundle, train.conditioning_names, train.grid)


def check_model_data(cfg: TrainConfig, train: TrajectoryFile) -> None:
    """Refuse, in one sentence naming the dataset, a model that cannot serve the dataset's grid (or the objective's
    history and bundle on it) at its settings: each model's `ModelConfig.check_spec` on `model_data_spec`. Reads the
    train split's header only, so it runs before any data loads; a model that adapts to the grid instead (the
    spectral models keep the modes the grid holds) passes."""
    try:
        cfg.model.check_spec(model_data_spec(cfg, train))
    except InvalidSetting as error:
        raise InvalidSetting(f"on dataset {train.pde}-{train.preset} ({'x'.join(map(str, train.grid.shape))} "
                             f"{train.grid.kind} grid): {error}") from None
