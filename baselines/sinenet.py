"""SineNet (Zhang et al., ICLR 2024) in 1-D and 2-D: K sequential U-shaped waves, each with a residual around it.

`x [B, C_in, *space], cond [B, n_cond] -> [B, C_out, *space]`. A 3-wide convolution lifts the input frames to
`hidden_channels` features; K waves then each add a correction `h <- h + wave_k(h)`; a last 3-wide convolution maps
to the output frames. A wave is a U-Net with `levels` pooled levels. Level l has `int(hidden_channels * m ** l)`
channels (`m`, the channel multiplier, compounds per level). On the way down every level 2x average-pools the
previous level's features and, from the second level on, concatenates the wave's own input average-pooled to that
level ("disentangled" down-sampling: the coarse levels see the wave input directly, not only what the finer
convolutions kept). On the way up, features are 2x bicubically interpolated and concatenated after the finer
level's skip. Every level runs `blocks_per_level` double convolutions (`conv3 -> GroupNorm -> GELU`, twice; one norm
group); the first block of a level adds a 1x1-convolution shortcut from the level's pooled (down) or interpolated
(up) features, every later block adds its own input.

This is the layout of the reference code, `sinenet` in divelab/AIRS `OpenPDE/SineNet/pdearena/pdearena/modules/
sinenet_dual.py` (unconditioned) and `.../modules/conditioned/sinenet_cond.py` (conditioned). At the published
setting (SineNet-8, width 64, m = 1.425, 3 fields x 4 history frames -> 1 frame, no conditioning) both count
35,490,219 parameters (`SineNetConfig.published_sizes`). The multiplier defaults, per K, to the published values
that keep the count near 35.5M: K = 2: 1.8075, 4: 1.611, 6: 1.5, 8: 1.425.

Conditioning (as in the reference's conditioned SineNet, "add" variant; "adagn" with `scale_shift`): every scalar of
`cond` gets `hidden_channels` sinusoidal features and its own MLP (`Linear(W, 4W) -> GELU -> Linear(4W, 4W)`, W the
width; `PerScalarEmbedding`); the MLP outputs are summed into one embedding, which every double convolution projects
(`Linear(4W, C)`) and adds to its features after the first activation (or applies as `h * (1 + scale) + shift`). No
layer is zero-initialised, as in the reference. With no conditioning the net has no embedding at all, exactly the
unconditioned reference.

Deliberate differences from the reference, and why:

* Padding follows the `Grid`: convolutions and up-sampling wrap around periodic axes (on the sphere: longitude) and
  pad the others (zeros for convolutions, edge values for interpolation, which is what bicubic interpolation does at
  a border). The reference picks one `padding_mode` for both axes per named model (zeros for its published
  "sinenet8-dual", circular for the "-circ" variants). On a closed box (PDEArena's smoke) ours equals the zero-padded
  reference; on a periodic grid the circular one, so the net commutes with rolls by multiples of `2 ** levels` (the
  paper reports circular padding matters on periodic data); on the sphere latitude is not wrapped, since wrapping it
  would join the two poles. Padding adds no parameters.
* The sinusoidal features of a conditioning scalar use angular frequencies from 1 to 100 (`sinusoidal_embedding`)
  where the reference uses 1 down to 1e-4 on raw values: our conditioning arrives standardised (order 1), and
  frequencies far below 1 would make the features nearly constant over its range. Same number of features, same
  parameters. An odd width with conditioning is refused (the reference pads one zero feature): features come in
  sine/cosine pairs.
* Input frames are folded field-major (channel `field * history + t`, `NetSpec`), the reference folds time-major:
  a permutation of the lifting convolution's input channels, nothing else.
* 1-D grids use the same layout with 1-D convolutions and pooling (the reference is 2-D only), and `levels` is a
  setting (the reference always builds 4, our default).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from baselines.layers import (
    GridConv,
    PerScalarEmbedding,
    broadcast_channels,
    check_divisible,
    check_spatial_dims,
    grid_avg_pool,
    grid_interpolate_up,
)
from baselines.registry import ModelConfig, PublishedSize, register
from pdebench.config.checks import SettingError, finite_number, whole_number
from pdebench.data.grid import Grid
from pdebench.data.netspec import NetSpec
from pdebench.errors import InvalidSetting

# Published channel multipliers giving every number of waves about the same parameter count (~35.5M at width 64).
PUBLISHED_MULTIPLIERS = {2: 1.8075, 4: 1.611, 6: 1.5, 8: 1.425}

# The conditioning embedding is this many times the width wide, as in the reference.
EMBEDDING_FACTOR = 4

REFERENCE_SOURCE = "github.com/divelab/AIRS: OpenPDE/SineNet/pdearena/pdearena/modules/"


@dataclass
class SineNetConfig(ModelConfig):
    """SineNet.

    hidden_channels: channels of the full-resolution level (the width; the published net: 64). A narrower width
        keeps the layout (levels, multiplier, blocks) and shrinks every level in proportion.
    waves: K, the number of sequential U-shaped waves.
    channel_multiplier: channel growth per level; null takes the published value for `waves` (2, 4, 6 or 8), which
        keeps the parameter count about equal over K.
    levels: pooled levels per wave; every grid axis must be divisible by `2 ** levels`.
    blocks_per_level: double-convolution blocks per level, each with a residual.
    norm_groups: GroupNorm groups (the published net uses 1); must divide every level's channel count.
    scale_shift: apply the conditioning as `h * (1 + scale) + shift` (the reference's "adagn" variant) instead of
        adding it (its "add" variant, the default); no effect without conditioning.
    """

    name: str = "sinenet"
    hidden_channels: int = 64
    waves: int = 8
    channel_multiplier: float | None = None
    levels: int = 4
    blocks_per_level: int = 1
    norm_groups: int = 1
    scale_shift: bool = False

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
        """Channels of levels 0 (full resolution) to `levels` (coarsest), rounded down as the reference does."""
        return [int(self.hidden_channels * self.multiplier**level) for level in range(self.levels + 1)]

    @property
    def downsampling_factor(self) -> int:
        return 2**self.levels

    @classmethod
    def tiny(cls) -> SineNetConfig:
        return cls(hidden_channels=8, waves=2, channel_multiplier=1.5, levels=2)

    def check_spec(self, spec: NetSpec) -> None:
        """Refused, not adapted: a grid with other than 1 or 2 axes, one whose axes do not halve evenly `levels` times
        (dropping or padding a level would change the layout the row names), and an odd width with conditioning
        (each scalar's embedding is sine/cosine pairs)."""
        check_spatial_dims(self.name, spec.spatial_dims)
        check_divisible(self.name, spec.grid.shape, self.downsampling_factor, f"model.levels={self.levels}")
        if spec.n_cond and self.hidden_channels % 2:
            raise InvalidSetting(f"model sinenet embeds each conditioning scalar in hidden_channels sine/cosine pairs, "
                                 f"so model.hidden_channels must be even with conditioning, got {self.hidden_channels}")

    @classmethod
    def published_sizes(cls) -> tuple[PublishedSize, ...]:
        """SineNet-8 on PDEArena's incompressible Navier-Stokes (smoke) task, unconditioned as published, and the
        reference's conditioned SineNet-8 on PDEArena's buoyancy-conditioned task (both conditioning variants)."""
        box = Grid.uniform("box", (128, 128))
        fields = ("smoke", "vx", "vy")
        conditioned = NetSpec(fields, 1, 1, ("dt", "buoyancy"), box)
        cond_setting = ("SineNet-8 ({}) on PDEArena's Cond-NavierStokes2D: 3 fields x 1 frame in, 1 frame out, "
                        "conditioned on the time step and the buoyancy, 128 x 128 box")
        cond_source = (f"{REFERENCE_SOURCE}conditioned/sinenet_cond.py sinenet (COND_MODEL_REGISTRY entry {{}} "
                       "of pdearena/models/registry.py, param_conditioning=scalar, time_history=1)")
        return (
            PublishedSize(
                setting="SineNet-8 on PDEArena's NavierStokes2D (INS): 3 fields (smoke, vx, vy) x 4 history frames "
                        "in, 1 frame out, no conditioning, width 64, multiplier 1.425, 128 x 128 box",
                config=cls(), spec=NetSpec(fields, 4, 1, (), box), published=35_490_219,
                source=f"{REFERENCE_SOURCE}sinenet_dual.py sinenet (MODEL_REGISTRY entry sinenet8-dual of "
                       "pdearena/models/registry.py, which notes 35490219 next to it; time_history=4, "
                       "configs/navierstokes2d.yaml)"),
            PublishedSize(setting=cond_setting.format("add"), config=cls(), spec=conditioned, published=37_987_571,
                          source=cond_source.format("sinenet8-add")),
            PublishedSize(setting=cond_setting.format("adagn"), config=cls(scale_shift=True), spec=conditioned,
                          published=40_325_243, source=cond_source.format("sinenet8-adagn")),
        )


class DoubleConv(nn.Module):
    """SineNet's double convolution, `[B, in, *space] -> [B, out, *space]`.

    `conv3 -> GroupNorm -> GELU -> (+ embedding) -> conv3 -> GroupNorm -> GELU` (post-activation). The embedding
    `emb [B, emb_dim]` is projected per block and added after the first activation, or with `scale_shift` applied
    there as `h * (1 + scale) + shift`; `emb_dim == 0` builds a block that takes none.
    """

    def __init__(self, in_channels: int, out_channels: int, periodic: Sequence[bool], emb_dim: int, norm_groups: int,
                 scale_shift: bool) -> None:
        super().__init__()
        self.conv1 = GridConv(in_channels, out_channels, periodic)
        self.norm1 = nn.GroupNorm(norm_groups, out_channels)
        self.conv2 = GridConv(out_channels, out_channels, periodic)
        self.norm2 = nn.GroupNorm(norm_groups, out_channels)
        self.act = nn.GELU()
        self.scale_shift = scale_shift
        self.emb = nn.Linear(emb_dim, out_channels * (2 if scale_shift else 1)) if emb_dim else None

    def forward(self, x: Tensor, emb: Tensor | None) -> Tensor:
        h = self.act(self.norm1(self.conv1(x)))
        if self.emb is not None:
            projected = broadcast_channels(self.emb(emb), h)
            if self.scale_shift:
                scale, shift = projected.chunk(2, dim=1)
                h = h * (1 + scale) + shift
            else:
                h = h + projected
        return self.act(self.norm2(self.conv2(h)))


class Wave(nn.Module):
    """One U-shaped wave without its residual, `[B, C0, *space] -> [B, C0, *space]` (C0 = `channels[0]`)."""

    def __init__(self, channels: Sequence[int], periodic: Sequence[bool], emb_dim: int, blocks: int,
                 norm_groups: int, scale_shift: bool) -> None:
        super().__init__()
        self.periodic = tuple(periodic)
        width, ndim = channels[0], len(self.periodic)

        def level(c_in: int, c_out: int) -> nn.ModuleList:
            return nn.ModuleList(DoubleConv(c_in if i == 0 else c_out, c_out, periodic, emb_dim, norm_groups,
                                            scale_shift) for i in range(blocks))

        self.down_blocks, self.down_shortcuts = nn.ModuleList(), nn.ModuleList()
        for lvl in range(1, len(channels)):
            c_prev, c = channels[lvl - 1], channels[lvl]
            # Disentangled: from level 2 on, the wave input pooled to this level joins the pooled features.
            self.down_blocks.append(level(c_prev + (width if lvl > 1 else 0), c))
            self.down_shortcuts.append(_pointwise(ndim, c_prev, c))
        self.up_blocks, self.up_shortcuts = nn.ModuleList(), nn.ModuleList()
        for lvl in reversed(range(1, len(channels))):
            c_fine, c = channels[lvl - 1], channels[lvl]
            self.up_blocks.append(level(c + c_fine, c_fine))
            self.up_shortcuts.append(_pointwise(ndim, c, c_fine))

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
        for lvl, (blocks, shortcut) in enumerate(zip(self.down_blocks, self.down_shortcuts, strict=True), 1):
            h = grid_avg_pool(h)
            pooled_input = grid_avg_pool(pooled_input)
            joined = torch.cat([h, pooled_input], dim=1) if lvl > 1 else h
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
        emb_dim = EMBEDDING_FACTOR * width if spec.n_cond else 0
        self.embedding = PerScalarEmbedding(spec.n_cond, width, emb_dim) if spec.n_cond else None
        self.lift = GridConv(spec.in_channels, width, periodic)
        self.waves = nn.ModuleList(
            Wave(channels, periodic, emb_dim, config.blocks_per_level, config.norm_groups, config.scale_shift)
            for _ in range(config.waves))
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
    return SineNet(spec, config)
