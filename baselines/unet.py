"""The modern U-Net of PDEArena in 1-D and 2-D, conditioned on scalars through sinusoidal embeddings.

Residual blocks with GroupNorm and GELU, channel multipliers per level (reference (1, 2, 2, 4)), `blocks_per_level`
blocks per level, optional self-attention in the middle, learned stride-2 down-sampling and transposed-convolution
up-sampling. Every convolution pads by the data's `Grid`: circular on periodic axes (on the sphere: longitude),
zeros elsewhere (latitude, walls), so on a periodic grid the net commutes with rolling its input by any multiple of
its total down-sampling factor `2 ** (len(channel_multipliers) - 1)`.

The 1-D net at width 64 with multipliers (1, 2, 2, 4) is the PDE-Refiner backbone (`UNetConfig.pderefiner_backbone`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from baselines.layers import (
    ConditionedResidualBlock,
    GridConv,
    GridDownsample,
    GridUpsample,
    ScalarEmbedding,
    SelfAttention,
    check_divisible,
    check_spatial_dims,
)
from baselines.registry import ModelConfig, register
from pdebench.config.checks import SettingError, is_whole_number, whole_number
from pdebench.data.netspec import NetSpec
from pdebench.errors import InvalidSetting


@dataclass
class UNetConfig(ModelConfig):
    """The modern U-Net.

    hidden_channels: channels of the first level (the "width"); level i has `hidden_channels * channel_multipliers[i]`.
    channel_multipliers: one whole multiplier per level; the grid is halved between levels, so every grid axis must be
        divisible by `2 ** (len(channel_multipliers) - 1)`.
    blocks_per_level: residual blocks per level on the way down (the way up has one more, for the extra skip).
    mid_attention: self-attention between the two residual blocks at the coarsest level.
    attention_heads: heads of that attention; `hidden_channels * channel_multipliers[-1]` must be divisible by it.
    norm_groups: GroupNorm groups; every level's channel count must be divisible by it.
    scale_shift: apply the conditioning embedding as a scale and shift of the second norm of every block (FiLM)
        instead of adding it to the features.
    """

    name: str = "unet"
    hidden_channels: int = 64
    channel_multipliers: list[int] = field(default_factory=lambda: [1, 2, 2, 4])
    blocks_per_level: int = 2
    mid_attention: bool = False
    attention_heads: int = 1
    norm_groups: int = 8
    scale_shift: bool = False

    def __post_init__(self) -> None:
        for key in ("hidden_channels", "blocks_per_level", "attention_heads", "norm_groups"):
            whole_number(self, key, 1)
        multipliers = list(self.channel_multipliers)
        if not (multipliers and all(is_whole_number(m) and m >= 1 for m in multipliers)):
            raise SettingError("channel_multipliers", multipliers, "is not valid: expected a non-empty list of whole "
                                                                   "numbers >= 1, one per level")
        for channels in (self.hidden_channels * m for m in multipliers):
            if channels % self.norm_groups:
                raise SettingError("norm_groups", self.norm_groups,
                                   f"is not valid: a level has {channels} channels, which GroupNorm cannot split into "
                                   "that many groups")
        if self.mid_attention and (self.hidden_channels * multipliers[-1]) % self.attention_heads:
            raise SettingError("attention_heads", self.attention_heads,
                               f"is not valid: it must divide the {self.hidden_channels * multipliers[-1]} channels "
                               "of the coarsest level")

    @property
    def downsampling_factor(self) -> int:
        """How many times coarser the coarsest level is than the grid, per axis."""
        return 2 ** (len(self.channel_multipliers) - 1)

    @classmethod
    def tiny(cls) -> UNetConfig:
        return cls(hidden_channels=8, channel_multipliers=[1, 2, 2], blocks_per_level=1, mid_attention=True,
                   norm_groups=4)

    @classmethod
    def pderefiner_backbone(cls) -> UNetConfig:
        """PDE-Refiner's KS backbone: the 1-D modern U-Net at width 64, multipliers (1, 2, 2, 4), 2 blocks a level."""
        return cls(hidden_channels=64, channel_multipliers=[1, 2, 2, 4], blocks_per_level=2, mid_attention=False)


class UNet(nn.Module):
    """`x [B, spec.in_channels, *space], cond [B, spec.n_cond] -> [B, spec.out_channels, *space]`."""

    def __init__(self, spec: NetSpec, config: UNetConfig) -> None:
        super().__init__()
        periodic = spec.grid.periodic
        width, groups = config.hidden_channels, config.norm_groups
        emb_dim = 4 * width if spec.n_cond else 0
        self.embedding = ScalarEmbedding(spec.n_cond, width, emb_dim) if spec.n_cond else None

        def block(c_in: int, c_out: int) -> ConditionedResidualBlock:
            return ConditionedResidualBlock(c_in, c_out, periodic, emb_dim, groups, config.scale_shift)

        self.lift = GridConv(spec.in_channels, width, periodic)
        channels = [width * m for m in config.channel_multipliers]
        n_levels = len(channels)

        # Down: every block's and every down-sampling's output is a skip for the way up.
        skips = [width]
        self.down = nn.ModuleList()
        current = width
        for level, c_out in enumerate(channels):
            for _ in range(config.blocks_per_level):
                self.down.append(block(current, c_out))
                current = c_out
                skips.append(current)
            if level < n_levels - 1:
                self.down.append(GridDownsample(current, periodic))
                skips.append(current)

        self.mid_in = block(current, current)
        self.mid_attention = SelfAttention(current, config.attention_heads, groups) if config.mid_attention else None
        self.mid_out = block(current, current)

        # Up: one block per skip, so blocks_per_level + 1 per level, then up-sampling to the next finer level.
        self.up = nn.ModuleList()
        for level in reversed(range(n_levels)):
            for _ in range(config.blocks_per_level + 1):
                self.up.append(block(current + skips.pop(), channels[level]))
                current = channels[level]
            if level > 0:
                self.up.append(GridUpsample(current, periodic))
        assert not skips

        self.head = nn.Sequential(nn.GroupNorm(groups, current), nn.GELU(),
                                  GridConv(current, spec.out_channels, periodic))
        self.n_cond = spec.n_cond

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        if cond.dim() != 2 or cond.shape[1] != self.n_cond:
            raise InvalidSetting(f"model unet expects conditioning of shape [batch, {self.n_cond}], "
                                 f"got {tuple(cond.shape)}")
        emb = self.embedding(cond.to(x.dtype)) if self.embedding is not None else None
        h = self.lift(x)
        skips = [h]
        for layer in self.down:
            h = layer(h, emb) if isinstance(layer, ConditionedResidualBlock) else layer(h)
            skips.append(h)
        h = self.mid_in(h, emb)
        if self.mid_attention is not None:
            h = self.mid_attention(h)
        h = self.mid_out(h, emb)
        for layer in self.up:
            if isinstance(layer, ConditionedResidualBlock):
                h = layer(torch.cat([h, skips.pop()], dim=1), emb)
            else:
                h = layer(h)
        return self.head(h)


@register("unet", config=UNetConfig)
def build_unet(config: UNetConfig, spec: NetSpec) -> nn.Module:
    check_spatial_dims("unet", spec.spatial_dims)
    check_divisible("unet", spec.grid.shape, config.downsampling_factor,
                    f"len(model.channel_multipliers)={len(config.channel_multipliers)}")
    return UNet(spec, config)
