"""Reference row: the forecast repeats the last input frame (a Stepper; nothing to train)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from baselines.registry import ModelConfig, register
from pdebench.data.netspec import NetSpec


@dataclass
class PersistenceConfig(ModelConfig):
    """Persistence has no settings."""

    name: str = "persistence"


class Persistence(nn.Module):
    """Stepper: `frames [B, C, history, *space]` -> `[B, C, bundle, *space]`, every output frame = the last input."""

    def __init__(self, history: int, bundle: int) -> None:
        super().__init__()
        self.history, self.bundle = history, bundle

    def forward(self, frames: Tensor, cond: Tensor) -> Tensor:
        last = frames[:, :, -1:]
        return last.expand(-1, -1, self.bundle, *last.shape[3:]).clone()


@register("persistence", config=PersistenceConfig, kind="stepper")
def build_persistence(config: PersistenceConfig, spec: NetSpec) -> Persistence:
    return Persistence(spec.history, spec.bundle)
