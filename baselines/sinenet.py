"""SineNet in 1-D and 2-D: K sequential U-shaped waves, each with a residual around it, conditioned on scalars.

A lifting convolution maps the input frames to `hidden_channels` features; K waves then each add a correction
`x <- x + wave_k(x)`; a last convolution maps to the output frames. A wave is a small U-Net with `levels` pooled
levels: on the way down every level average-pools the previous level's features and, from the second level on,
concatenates the wave's own input pooled to that level ("disentangled" down-sampling: the coarse levels see the
wave input directly, not only what the finer convolutions kept); on the way up, features are cubically
interpolated to the finer level and concatenated with its skip. Level l has `int(hidden_channels * m ** l)`
channels, where `m` is the channel multiplier.

The multiplier defaults, per K, to the published values that keep the parameter count about constant over K
(~35.5M at width 64 on 2-D smoke with 4 history frames): K = 2: 1.8075, 4: 1.611, 6: 1.5, 8: 1.425. Other K need
an explicit `channel_multiplier`.

Every convolution and every up-sampling wraps around the `Grid`'s periodic axes (on the sphere: longitude) and
pads the others (zeros for convolutions, edge values for interpolation); 2x average pooling needs no padding. So on
a periodic grid the net commutes with rolling its input by any multiple of `2 ** levels`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from baselines.layers import (
    ConvBlock,
    GridConv,
    ScalarEmbedding,
    check_divisible,
    check_spatial_dims,
    grid_avg_pool,
    grid_interpolate_up,
)
from baselines.registry import ModelConfig, register
from pdebench.config.checks import SettingError, finite_number, whole_number
from pdebench.data.netspec import NetSpec
from pdebench.errors import InvalidSetting

# Published channel multipliers giving every number of waves about the same parameter count (~35.5M at width 64).
PUBLISHED_MULTIPLIERS = {2: 1.8075, 4: 1.611, 6: 1.5, 8: 1.425}



@dataclass
class SineNetConfig(ModelConfig):
    """SineNet.

    hidden_channels: channels of the full-resolution level (the "width").
    waves: K, the number of sequential U-shaped waves.
    channel_multiplier: channel growth per level; null takes the published value for `waves` (2, 4, 6 or 8), which
        keeps the parameter count about equal over K.
    levels: pooled levels per wave; every grid axis must be divisible by `2 ** levels`.
    blocks_per_level: double-convolution blocks per level, each with a residual.
    norm_groups: GroupNorm groups (the published net uses 1); must divide every level's channel count.
    """

    name: str = "sinenet"
    hidden_channels: int = 64
    waves: int = 8
    channel_multiplier: float | None = None
    levels: int = 4
    blocks_per_level: int = 1
    norm_groups: int = 1

    def __post_init__(self) -> None:
        for key in ("hidden_channels", "waves", "levels", "blocks_per_level", "norm_groups"):
            whole_number(self, key, 1)
        if self.channel_multiplier is None and self.waves not in PUBLISHED_MULTIPLIERS:
            raise SettingError("waves", self.waves, "has no published channel multiplier (those exist for waves "
                                                    f"{', '.join(map(str, PUBLISHED_MULTIPLIERS))}); set "
                                                    "model.channel_multiplier")
        if self.channel_multiplier is not None:
            finite_number(self, "channel_multiplier", 1.0, what="the channel growth towards the coarse levels")
        bad = [c for c in self.level_channels if c % self.norm_groups]
        if bad:
            raise SettingError("norm_groups", self.norm_groups, f"is not valid: a level has {bad[0]} channels, which "
                                                                "GroupNorm cannot split into that many groups")

    @property
    def multiplier(self) -> float:
        """The channel multiplier in use: the configured one, or the published one for `waves`."""
        if self.channel_multiplier is not None:
            return float(self.channel_multiplier)
        return PUBLISHED_MULTIPLIERS[self.waves]

    @property
    def level_channels(self) -> list[int]:
        """Channels of levels 0 (full resolution) to `levels` (coarsest)."""
        return [int(self.hidden_channels * self.multiplier**level) for level in range(self.levels + 1)]

    @property
    def downsampling_factor(self) -> int:
        return 2**self.levels

    @classmethod
    def tiny(cls) -> SineNetConfig:
        return cls(hidden_channels=8, waves=2, channel_multiplier=1.5, levels=2)


class Wave(nn.Module):
    """One U-shaped wave without its residual, `[B, C0, *space] -> [B, C0, *space]` (C0 = `channels[0]`)."""

    def __init__(self, channels: Sequence[int], periodic: Sequence[bool], emb_dim: int, blocks: int,
                 norm_groups: int) -> None:
        super().__init__()
        self.periodic = tuple(periodic)
        self.blocks = blocks
        width = channels[0]
        self.down_blocks, self.down_shortcuts = nn.ModuleList(), nn.ModuleList()
        for level in range(1, len(channels)):
            c_prev, c = channels[level - 1], channels[level]
            c_in = c_prev + (width if level > 1 else 0)  # disentangled: the pooled wave input joins from level 2
            self.down_blocks.append(nn.ModuleList(
                ConvBlock(c_in if i == 0 else c, c, periodic, emb_dim, norm_groups) for i in range(blocks)))
            self.down_shortcuts.append(_pointwise(len(self.periodic), c_prev, c))
        self.up_blocks, self.up_shortcuts = nn.ModuleList(), nn.ModuleList()
        for level in reversed(range(1, len(channels))):
            c_fine, c = channels[level - 1], channels[level]
            self.up_blocks.append(nn.ModuleList(
                ConvBlock(c + c_fine if i == 0 else c_fine, c_fine, periodic, emb_dim, norm_groups)
                for i in range(blocks)))
            self.up_shortcuts.append(_pointwise(len(self.periodic), c, c_fine))

    def _residual_blocks(self, blocks: nn.ModuleList, shortcut: nn.Module, h: Tensor, source: Tensor,
                         emb: Tensor | None) -> Tensor:
        """Each block adds its input's residual: the first through `shortcut` from `source`, the others directly."""
        residual = shortcut(source)
        for block in blocks:
            h = block(h, emb) + residual
            residual = h
        return h

    def forward(self, x: Tensor, emb: Tensor | None) -> Tensor:
        skips, h, pooled_input = [x], x, x
        for level, (blocks, shortcut) in enumerate(zip(self.down_blocks, self.down_shortcuts, strict=True), 1):
            h = grid_avg_pool(h)
            pooled_input = grid_avg_pool(pooled_input)
            joined = torch.cat([h, pooled_input], dim=1) if level > 1 else h
            h = self._residual_blocks(blocks, shortcut, joined, h, emb)
            skips.append(h)
        h = skips.pop()
        for blocks, shortcut in zip(self.up_blocks, self.up_shortcuts, strict=True):
            up = grid_interpolate_up(h, self.periodic)
            h = self._residual_blocks(blocks, shortcut, torch.cat([skips.pop(), up], dim=1), up, emb)
        return h


def _pointwise(ndim: int, c_in: int, c_out: int) -> nn.Module:
    return (nn.Conv1d if ndim == 1 else nn.Conv2d)(c_in, c_out, 1)


class SineNet(nn.Module):
    """`x [B, spec.in_channels, *space], cond [B, spec.n_cond] -> [B, spec.out_channels, *space]`."""

    def __init__(self, spec: NetSpec, config: SineNetConfig) -> None:
        super().__init__()
        periodic = spec.grid.periodic
        channels = config.level_channels
        width = channels[0]
        # The embedding is `width` wide (not 4x as in the U-Net): every block of every wave projects it, and a narrow
        # one keeps the conditioning's share of the parameters small (about 1% at the reference size).
        emb_dim = width if spec.n_cond else 0
        self.embedding = ScalarEmbedding(spec.n_cond, width, emb_dim) if spec.n_cond else None
        self.lift = GridConv(spec.in_channels, width, periodic)
        self.waves = nn.ModuleList(
            Wave(channels, periodic, emb_dim, config.blocks_per_level, config.norm_groups) for _ in range(config.waves))
        self.project = GridConv(width, spec.out_channels, periodic)
        self.n_cond = spec.n_cond

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        if cond.dim() != 2 or cond.shape[1] != self.n_cond:
            raise InvalidSetting(f"model sinenet expects conditioning of shape [batch, {self.n_cond}], "
                                 f"got {tuple(cond.shape)}")
        emb = self.embedding(cond.to(x.dtype)) if self.embedding is not None else None
        h = self.lift(x)
        for wave in self.waves:
            h = h + wave(h, emb)
        return self.project(h)


def parameter_count(config: SineNetConfig, spec: NetSpec) -> int:
    """Parameters of the SineNet `config` builds for `spec`, counted on the meta device (no memory, no init).

    The waves are alike, so one is built and counted `waves` times.
    """
    with torch.device("meta"):
        net = SineNet(spec, dataclasses.replace(config, waves=1, channel_multiplier=config.multiplier))
    one_wave = sum(p.numel() for p in net.waves[0].parameters())
    return sum(p.numel() for p in net.parameters()) + (config.waves - 1) * one_wave


def multiplier_for_budget(config: SineNetConfig, spec: NetSpec, n_params: int, highest: float = 4.0) -> float:
    """The channel multiplier that gives `config` (its `waves`, width and levels) about `n_params` parameters on
    `spec`: the largest multiplier in [1, `highest`] whose count does not exceed the budget, found by bisection
    (the count grows with the multiplier, in steps, as channel counts are whole). Use it to match SineNet's size to
    another net's, e.g. `unet`'s, for any K.
    """
    def count(multiplier: float) -> int:
        return parameter_count(dataclasses.replace(config, channel_multiplier=multiplier), spec)

    if not count(1.0) <= n_params <= count(highest):
        raise InvalidSetting(f"a budget of {n_params} parameters is outside what model sinenet with "
                             f"waves={config.waves} "
                             f"and hidden_channels={config.hidden_channels} reaches with channel multipliers in "
                             f"[1, {highest}]: {count(1.0)} to {count(highest)}")
    low, high = 1.0, highest
    while high - low > 1e-4:
        middle = 0.5 * (low + high)
        low, high = (middle, high) if count(middle) <= n_params else (low, middle)
    return low


@register("sinenet", config=SineNetConfig)
def build_sinenet(config: SineNetConfig, spec: NetSpec) -> nn.Module:
    check_spatial_dims("sinenet", spec.spatial_dims)
    check_divisible("sinenet", spec.grid.shape, config.downsampling_factor, f"model.levels={config.levels}")
    return SineNet(spec, config)
