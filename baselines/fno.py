"""FNO (and TFNO) through neuraloperator, conditioned on per-trajectory scalars (dt, dx, PDE parameters).

One config serves 1-D and 2-D grids: `n_modes` is given per axis or once for every axis. TFNO is the same net with
neuraloperator's tensor factorization of the spectral weights (`factorization: tucker`, `rank` a fraction of the
dense parameter count). The spectral convolution treats every axis as periodic; on the axes a `Grid` says are not
periodic (a box's walls, the sphere's latitude) the lifted features are zero-padded by `domain_padding` of the axis
length first (neuraloperator's domain padding), so the FFT does not wrap one wall onto the other.

On a grid that holds fewer Fourier modes along an axis than `n_modes` asks for (an axis of m points, after domain
padding, holds m), neuraloperator keeps every mode the grid holds, with the weights of those lowest frequencies: the
parameter count does not change, and the weights of the other modes act on nothing on that grid (this is how a
trained FNO runs on a coarser grid).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from neuralop.models import FNO
from torch import Tensor, nn

from baselines.registry import ModelConfig, register
from pdebench.config.checks import SettingError, finite_number, is_whole_number, whole_number
from pdebench.data.netspec import NetSpec
from pdebench.errors import InvalidSetting

# The tensor factorizations neuraloperator's spectral convolution builds (through tltorch); null is dense.
FACTORIZATIONS = ("dense", "tucker", "cp", "tt")



@dataclass
class FNOConfig(ModelConfig):
    """neuraloperator's FNO. `n_modes` counts all kept modes per axis (neuraloperator 2.0 convention: `[64]` keeps
    33 rfft modes); one entry is repeated over every spatial axis. `factorization` null gives a dense FNO, "tucker"
    etc. a TFNO with that `rank` (a fraction of the dense spectral weights).

    positional_embedding: append neuraloperator's grid coordinates as input channels (off by default: without it
    the net is translation equivariant on periodic axes).
    domain_padding: fraction of each non-periodic axis zero-padded on both sides before the Fourier layers (0: none);
    periodic axes are never padded.
    """

    name: str = "fno"
    n_modes: list[int] = field(default_factory=lambda: [64])
    hidden_channels: int = 64
    n_layers: int = 4
    factorization: Any = None
    rank: float = 1.0
    positional_embedding: bool = False
    domain_padding: float = 0.125

    def __post_init__(self) -> None:
        """Refuse sizes neuraloperator would only reject (or misuse) once the net is built, after the data loaded."""
        for key, what in (("hidden_channels", "a number of channels"), ("n_layers", "a number of Fourier layers")):
            whole_number(self, key, 1, what)
        if not (len(self.n_modes) >= 1 and all(is_whole_number(m) and m >= 1 for m in self.n_modes)):
            raise SettingError("n_modes", list(self.n_modes), "is not valid: expected a non-empty list of kept Fourier "
                                                              "modes per axis, each a whole number >= 1")
        if self.factorization is not None and str(self.factorization).lower() not in FACTORIZATIONS:
            raise SettingError("factorization", self.factorization,
                               f"is not valid: expected null (dense) or one of {', '.join(FACTORIZATIONS)}")
        finite_number(self, "rank", low_open=True, what="the factorised weights' share of the dense parameter count")
        finite_number(self, "domain_padding", 0.0, 1.0, what="the padded fraction of each non-periodic axis")

    @classmethod
    def tiny(cls) -> FNOConfig:
        return cls(n_modes=[12], hidden_channels=16, n_layers=2)

    def check_spec(self, spec: NetSpec) -> None:
        """Refused: an `n_modes` with neither one entry nor one per spatial axis. Adapted: modes beyond what the grid
        holds (see the module docstring)."""
        modes_per_axis(self.name, self.n_modes, spec.spatial_dims)


def _drop_neuralop_metadata(module: nn.Module, state_dict: dict[str, Any], prefix: str, local_metadata: Any) -> None:
    """neuraloperator adds its constructor arguments (functions, classes) to every state dict under `_metadata`;
    they are rebuilt from our config anyway, and dropping them keeps checkpoints loadable with `weights_only=True`."""
    state_dict.pop("_metadata", None)


def modes_per_axis(model: str, n_modes: list[int], spatial_dims: int) -> tuple[int, ...]:
    """`n_modes` with one entry per spatial axis (a single entry is repeated); a count that fits no axis raises."""
    modes = list(n_modes)
    if len(modes) == 1 and spatial_dims > 1:
        modes = modes * spatial_dims
    if len(modes) != spatial_dims:
        raise InvalidSetting(f"model.n_modes has {len(modes)} entries but the data has {spatial_dims} spatial dims "
                             f"(model {model}: give one entry, or one per axis)")
    return tuple(modes)


def broadcast_cond(x: Tensor, cond: Tensor) -> Tensor:
    """`x [B, C, *space]` with `cond [B, n_cond]` appended as constant channels: `[B, C + n_cond, *space]`."""
    if not cond.shape[1]:
        return x
    cond_channels = cond.view(*cond.shape, *([1] * (x.dim() - 2))).expand(-1, -1, *x.shape[2:])
    return torch.cat([x, cond_channels.to(x.dtype)], dim=1)


class ConditionedFNO(nn.Module):
    """neuraloperator's FNO with the conditioning vector broadcast over space as extra input channels.

    Without positional embedding (the default) the net is translation equivariant along periodic axes. The
    spectral convolutions assume periodic axes; non-periodic ones (box walls, the sphere's latitude) are
    zero-padded by `domain_padding` first, as neuraloperator does for non-periodic domains.
    """

    def __init__(self, spec: NetSpec, config: FNOConfig) -> None:
        super().__init__()
        padding = [0.0 if periodic else float(config.domain_padding) for periodic in spec.grid.periodic]
        self.fno = FNO(
            n_modes=modes_per_axis("fno", config.n_modes, spec.spatial_dims),
            in_channels=spec.in_channels + spec.n_cond,
            out_channels=spec.out_channels,
            hidden_channels=config.hidden_channels,
            n_layers=config.n_layers,
            positional_embedding="grid" if config.positional_embedding else None,
            factorization=config.factorization,
            rank=config.rank,
            domain_padding=padding if any(padding) else None,
        )
        self.register_state_dict_post_hook(_drop_neuralop_metadata)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        """x: [B, C_in, *space], cond: [B, n_cond] -> [B, C_out, *space]."""
        return self.fno(broadcast_cond(x, cond))


@register("fno", config=FNOConfig)
def build_fno(config: FNOConfig, spec: NetSpec) -> nn.Module:
    return ConditionedFNO(spec, config)
