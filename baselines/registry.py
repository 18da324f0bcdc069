"""The model zoo's registry: a name in `model.name` -> a builder of a conditioned `nn.Module`.

Every net maps `x: [B, C_in, *space]` and conditioning `cond: [B, n_cond]` to `[B, C_out, *space]`; history and
bundled outputs are folded into channels by the training code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn


@dataclass(frozen=True)
class NetShape:
    """What the data and objective fix about a net: fields, frames in/out, conditioning width, spatial dims."""

    n_fields: int
    history: int
    bundle: int
    n_cond: int
    spatial_dims: int

    @property
    def in_channels(self) -> int:
        return self.n_fields * self.history

    @property
    def out_channels(self) -> int:
        return self.n_fields * self.bundle


Builder = Callable[[Mapping[str, Any], NetShape], nn.Module]


@dataclass(frozen=True)
class ModelEntry:
    builder: Builder
    trainable: bool  # False for reference rows (persistence) that are evaluated without a checkpoint


MODELS: dict[str, ModelEntry] = {}


def register(name: str, *, trainable: bool = True) -> Callable[[Builder], Builder]:
    """Decorator adding a builder to `MODELS` under `name`."""

    def wrap(builder: Builder) -> Builder:
        if name in MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        MODELS[name] = ModelEntry(builder, trainable)
        return builder

    return wrap


def model_entry(name: str) -> ModelEntry:
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; registered models: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def build_model(config: Mapping[str, Any], shape: NetShape) -> nn.Module:
    """Build the net named by `config["name"]`; the rest of `config` are its hyper-parameters."""
    return model_entry(config["name"]).builder(config, shape)
