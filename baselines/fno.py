"""FNO through neuraloperator, conditioned on per-trajectory scalars (dt, dx, PDE parameters)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from neuralop.models import FNO
from torch import Tensor, nn

from baselines.registry import NetShape, register


def _drop_neuralop_metadata(module: nn.Module, state_dict: dict[str, Any], prefix: str, local_metadata: Any) -> None:
    """neuraloperator adds its constructor arguments (functions, classes) to every state dict under `_metadata`;
    they are rebuilt from our config anyway, and dropping them keeps checkpoints loadable with `weights_only=True`."""
    state_dict.pop("_metadata", None)


class ConditionedFNO(nn.Module):
    """neuraloperator's FNO with the conditioning vector broadcast over space as extra input channels.

    No positional-embedding channels are appended, so on periodic data the net is translation equivariant.
    """

    def __init__(self, shape: NetShape, n_modes: list[int], hidden_channels: int, n_layers: int,
                 factorization: str | None = None, rank: float = 1.0) -> None:
        super().__init__()
        if len(n_modes) == 1 and shape.spatial_dims > 1:
            n_modes = n_modes * shape.spatial_dims
        if len(n_modes) != shape.spatial_dims:
            raise ValueError(
                f"model.n_modes has {len(n_modes)} entries but the data has {shape.spatial_dims} spatial dims"
            )
        self.fno = FNO(
            n_modes=tuple(n_modes),
            in_channels=shape.in_channels + shape.n_cond,
            out_channels=shape.out_channels,
            hidden_channels=hidden_channels,
            n_layers=n_layers,
            positional_embedding=None,
            factorization=factorization,
            rank=rank,
        )
        self.register_state_dict_post_hook(_drop_neuralop_metadata)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        """x: [B, C_in, *space], cond: [B, n_cond] -> [B, C_out, *space]."""
        if cond.shape[1]:
            cond_channels = cond.view(*cond.shape, *([1] * (x.dim() - 2))).expand(-1, -1, *x.shape[2:])
            x = torch.cat([x, cond_channels.to(x.dtype)], dim=1)
        return self.fno(x)


@register("fno")
def build_fno(config: Mapping[str, Any], shape: NetShape) -> nn.Module:
    return ConditionedFNO(
        shape,
        n_modes=list(config["n_modes"]),
        hidden_channels=config["hidden_channels"],
        n_layers=config["n_layers"],
        factorization=config.get("factorization"),
        rank=config.get("rank", 1.0),
    )
