"""`evaluate_config`: a resolved `pdebench-evaluate` config as the typed `EvaluateConfig` evaluation reads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from baselines.registry import model_config
from pdebench.config import EvaluateConfig, load_config


def evaluate_config(cfg: Mapping[str, Any] | EvaluateConfig) -> EvaluateConfig:
    """`cfg` checked and typed once: every node by its schema (`load_config`), a reference row's `model` by its own
    dataclass from the model registry (with a checkpoint, `model` is null and comes from the checkpoint)."""
    typed = load_config(cfg, EvaluateConfig)
    if typed.model is not None:
        typed.model = model_config(typed.model)
    return typed
