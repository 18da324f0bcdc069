"""`train_config`: a resolved `pdebench-train` config as the typed `TrainConfig` training reads, model included."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from baselines.registry import model_config
from pdebench.config import TrainConfig, load_config


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
    `ModelConfig.check_target`; e.g. MP-PDE's `residual=true` with any target but `state`)."""
    cfg.model.check_target(cfg.objective.target)
