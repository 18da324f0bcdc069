"""`train_config`: a resolved `pdebench-train` config as the typed `TrainConfig` training reads, model included;
`typed_section`: one section of it kept plain in a checkpoint, typed again."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from baselines.registry import model_config
from pdebench.config import TrainConfig, load_config, typed_settings

T = TypeVar("T")


def train_config(cfg: Mapping[str, Any] | TrainConfig) -> TrainConfig:
    """`cfg` checked and typed once: every node by its schema (`load_config`), `model` by its own dataclass from
    the model registry (`model.widht=3` fails naming the key, the model and the valid keys)."""
    typed = load_config(cfg, TrainConfig)
    typed.model = model_config(typed.model)
    return typed


def typed_section(section: T | Mapping[str, Any], schema: type[T], prefix: str) -> T:
    """A config section (`optim`, `validation`) as its `schema` object: a plain one (a checkpoint's
    hyper-parameters) is typed again (`typed_settings`: an unknown key, a wrong type or a value the schema refuses
    is one ConfigError naming `<prefix>.<key>`; a setting it lacks takes its schema default)."""
    return typed_settings(schema, section, prefix)
