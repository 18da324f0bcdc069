"""Reference row: the forecast repeats the last input frame."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from baselines.registry import NetShape, register


class Persistence(nn.Module):
    """Maps folded inputs `[B, C*history, *space]` to `[B, C*bundle, *space]` holding the last frame."""

    def __init__(self, n_fields: int, history: int, bundle: int) -> None:
        super().__init__()
        self.n_fields, self.history, self.bundle = n_fields, history, bundle

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        frames = x.view(x.shape[0], self.n_fields, self.history, *x.shape[2:])
        last = frames[:, :, -1:]
        return last.expand(-1, -1, self.bundle, *([-1] * (x.dim() - 2))).reshape(x.shape[0], -1, *x.shape[2:])


@register("persistence", trainable=False)
def build_persistence(config: Mapping[str, Any], shape: NetShape) -> nn.Module:
    return Persistence(shape.n_fields, shape.history, shape.bundle)
