"""FNO through neuraloperator, conditioned on per-trajectory scalars (dt, dx, PDE parameters)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from neuralop.models import FNO
from torch import Tensor, nn

from baselines.registry import ModelConfig, register
from pdebench.data.netspec import NetSpec

# The tensor factorizations neuraloperator's spectral convolution builds (through tltorch); null is dense.
FACTORIZATIONS = ("dense", "tucker", "cp", "tt")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class FNOConfig(ModelConfig):
    """neuraloperator's FNO. `n_modes` counts all kept modes per axis (neuraloperator 2.0 convention: `[64]` keeps
    33 rfft modes); one entry is repeated over every spatial axis. `factorization` null gives a dense FNO, "tucker"
    etc. a TFNO with that `rank`."""

    name: str = "fno"
    n_modes: list[int] = field(default_factory=lambda: [64])
    hidden_channels: int = 64
    n_layers: int = 4
    factorization: Any = None
    rank: float = 1.0

    def __post_init__(self) -> None:
        """Refuse sizes neuraloperator would only reject (or misuse) once the net is built, after the data loaded."""
        for key, what in (("hidden_channels", "a number of channels"), ("n_layers", "a number of Fourier layers")):
            value = getattr(self, key)
            if not (_is_int(value) and value >= 1):
                raise ValueError(f"model.{key}={value} for model fno is not valid: expected {what}, "
                                 "a whole number >= 1")
        if not (len(self.n_modes) >= 1 and all(_is_int(m) and m >= 1 for m in self.n_modes)):
            raise ValueError(f"model.n_modes={list(self.n_modes)} for model fno is not valid: expected a non-empty "
                             "list of kept Fourier modes per axis, each a whole number >= 1")
        if self.factorization is not None and str(self.factorization).lower() not in FACTORIZATIONS:
            raise ValueError(f"model.factorization={self.factorization} for model fno is not valid: expected null "
                             f"(dense) or one of {', '.join(FACTORIZATIONS)}")
        if not (isinstance(self.rank, (int, float)) and not isinstance(self.rank, bool) and math.isfinite(self.rank)
                and self.rank > 0):
            raise ValueError(f"model.rank={self.rank} for model fno is not valid: expected a finite number > 0 (the "
                             "factorised weights' share of the dense parameter count)")

    @classmethod
    def tiny(cls) -> FNOConfig:
        return cls(n_modes=[12], hidden_channels=16, n_layers=2)


def _drop_neuralop_metadata(module: nn.Module, state_dict: dict[str, Any], prefix: str, local_metadata: Any) -> None:
    """neuraloperator adds its constructor arguments (functions, classes) to every state dict under `_metadata`;
    they are rebuilt from our config anyway, and dropping them keeps checkpoints loadable with `weights_only=True`."""
    state_dict.pop("_metadata", None)


class ConditionedFNO(nn.Module):
    """neuraloperator's FNO with the conditioning vector broadcast over space as extra input channels.

    No positional-embedding channels are appended, so on periodic data the net is translation equivariant.
    Its spectral convolutions assume periodic axes; on a `box` or `sphere` grid it still runs (as in PDEArena and
    The Well, where FNO is a baseline on non-periodic data), treating every axis as periodic.
    """

    def __init__(self, spec: NetSpec, config: FNOConfig) -> None:
        super().__init__()
        n_modes = list(config.n_modes)
        if len(n_modes) == 1 and spec.spatial_dims > 1:
            n_modes = n_modes * spec.spatial_dims
        if len(n_modes) != spec.spatial_dims:
            raise ValueError(
                f"model.n_modes has {len(n_modes)} entries but the data has {spec.spatial_dims} spatial dims"
            )
        self.fno = FNO(
            n_modes=tuple(n_modes),
            in_channels=spec.in_channels + spec.n_cond,
            out_channels=spec.out_channels,
            hidden_channels=config.hidden_channels,
            n_layers=config.n_layers,
            positional_embedding=None,
            factorization=config.factorization,
            rank=config.rank,
        )
        self.register_state_dict_post_hook(_drop_neuralop_metadata)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        """x: [B, C_in, *space], cond: [B, n_cond] -> [B, C_out, *space]."""
        if cond.shape[1]:
            cond_channels = cond.view(*cond.shape, *([1] * (x.dim() - 2))).expand(-1, -1, *x.shape[2:])
            x = torch.cat([x, cond_channels.to(x.dtype)], dim=1)
        return self.fno(x)


@register("fno", config=FNOConfig)
def build_fno(config: FNOConfig, spec: NetSpec) -> nn.Module:
    return ConditionedFNO(spec, config)
