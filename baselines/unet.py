"""PDEArena's modern U-Net (U-Net_mod) in 1-D and 2-D, conditioned on scalars through sinusoidal embeddings.

Layout, as PDEArena's `Unet` (pdearena/modules/twod_unet.py, and the conditioned variants in
pdearena/modules/conditioned/):

* a 3-wide lifting convolution to `hidden_channels` (C);
* down path: level i has `C * m_0 * ... * m_i` channels (the multipliers are cumulative: 64/128/256/1024 for
  (1, 2, 2, 4) at width 64), `blocks_per_level` pre-activation residual blocks a level, a learned stride-2
  down-sampling between levels;
* middle: residual block, optional self-attention, residual block;
* up path, per level from the coarsest: `blocks_per_level` blocks that keep the level's channels, then one block
  that cuts them to the next finer level's (to C at the finest), each block fed the concatenated skip of the
  matching down-path output, then a transposed-convolution 2x up-sampling;
* head: GroupNorm (8 groups) -> GELU -> 3-wide convolution.

Residual blocks use GroupNorm with one group (`norm_groups`). With conditioning (`spec.n_cond > 0`) the net is the
conditioned U-Net: every scalar gets its own sinusoidal embedding MLP (width C -> 4 C -> 4 C), the embeddings are
summed and added after each block's first convolution, and the second convolution of every block and the head's
convolution start at zero (so the untrained net outputs zero). Without conditioning it is U-Net_mod itself, with
PyTorch's default initialisation everywhere. Parameter counts equal the reference code's at its settings
(`UNetConfig.published_sizes`).

Deliberate differences from the reference, none of which changes a parameter count:

* Padding follows the data's `Grid`: circular on periodic axes (on the sphere: longitude), zeros elsewhere. PDEArena's
  U-Net_mod pads zeros everywhere, and PDE-Refiner's KS run pads its convolutions circularly but lets its transposed
  convolutions see zeros past the edges. Padding by the grid keeps the net translation equivariant on a periodic
  domain: it commutes with rolling its input by any multiple of its total down-sampling factor
  `2 ** (len(channel_multipliers) - 1)`, as the PDE it learns does.
* Conditioning scalars arrive standardised (a refinement step as k / K in [0, 1]) and are embedded with angular
  frequencies from 1 to 100 (`sinusoidal_embedding`); the reference embeds raw values (the refinement step as
  k * 1000 / K) with frequencies from 1 down to 1e-4.
* The optional middle self-attention is PyTorch's multi-head attention (softmax over keys, `C / heads` channels a
  head); it has the reference's parameter count at one head. The reference settings use no attention.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from baselines.layers import (
    ConditionedResidualBlock,
    GridConv,
    GridDownsample,
    GridUpsample,
    PerScalarEmbedding,
    SelfAttention,
    check_divisible,
    check_spatial_dims,
    zero_parameters,
)
from baselines.pderefiner import backbone_spec
from baselines.registry import ModelConfig, PublishedSize, register
from pdebench.config.checks import SettingError, is_whole_number, whole_number
from pdebench.data.grid import Grid
from pdebench.data.netspec import NetSpec
from pdebench.errors import InvalidSetting

REFERENCE_REPO = "github.com/pdearena/pdearena"


@dataclass
class UNetConfig(ModelConfig):
    """The modern U-Net; the defaults are PDEArena's U-Net_mod-64 (and PDE-Refiner's KS backbone on 1-D data).

    hidden_channels: the width C: channels of the lifting convolution, of the finest level's input and of the head.
    channel_multipliers: one whole multiplier per level, cumulative: level i has `C * m_0 * ... * m_i` channels. The
        grid is halved between levels, so every grid axis must be divisible by `2 ** (len(channel_multipliers) - 1)`.
    blocks_per_level: residual blocks per level on the way down (the way up has one more, for the extra skip).
    mid_attention: self-attention between the two residual blocks at the coarsest level.
    attention_heads: heads of that attention; the coarsest level's channel count must be divisible by it.
    norm_groups: GroupNorm groups of the residual blocks and the attention (the reference: 1); must divide C.
    head_norm_groups: GroupNorm groups of the head's norm (the reference: 8); must divide C.
    scale_shift: apply the conditioning embedding as a scale and shift of the second norm of every block (FiLM,
        PDEArena's "AdaGN" variants) instead of adding it to the features.
    """

    name: str = "unet"
    hidden_channels: int = 64
    channel_multipliers: list[int] = field(default_factory=lambda: [1, 2, 2, 4])
    blocks_per_level: int = 2
    mid_attention: bool = False
    attention_heads: int = 1
    norm_groups: int = 1
    head_norm_groups: int = 8
    scale_shift: bool = False

    def __post_init__(self) -> None:
        for key in ("hidden_channels", "blocks_per_level", "attention_heads", "norm_groups", "head_norm_groups"):
            whole_number(self, key, 1)
        multipliers = list(self.channel_multipliers)
        if not (multipliers and all(is_whole_number(m) and m >= 1 for m in multipliers)):
            raise SettingError("channel_multipliers", multipliers, "is not valid: expected a non-empty list of whole "
                                                                   "numbers >= 1, one per level")
        # Every GroupNorm sees a multiple of C (levels, concatenated skips, the head), so dividing C is enough.
        for key in ("norm_groups", "head_norm_groups"):
            if self.hidden_channels % getattr(self, key):
                raise SettingError(key, getattr(self, key),
                                   f"is not valid: GroupNorm cannot split hidden_channels={self.hidden_channels} "
                                   "channels into that many groups")
        coarsest = self.level_channels[-1]
        if self.mid_attention and coarsest % self.attention_heads:
            raise SettingError("attention_heads", self.attention_heads,
                               f"is not valid: it must divide the {coarsest} channels of the coarsest level")

    @property
    def level_channels(self) -> list[int]:
        """Channels of each level, finest first: the width times the running product of the multipliers."""
        return [self.hidden_channels * math.prod(self.channel_multipliers[: i + 1])
                for i in range(len(self.channel_multipliers))]

    @property
    def downsampling_factor(self) -> int:
        """How many times coarser the coarsest level is than the grid, per axis."""
        return 2 ** (len(self.channel_multipliers) - 1)

    @classmethod
    def tiny(cls) -> UNetConfig:
        return cls(hidden_channels=8, channel_multipliers=[1, 2, 2], blocks_per_level=1, mid_attention=True)

    def check_spec(self, spec: NetSpec) -> None:
        """Refused, not adapted: a grid with other than 1 or 2 axes, and one whose axes do not halve evenly
        `len(channel_multipliers) - 1` times (dropping or padding a level would change the layout the row names)."""
        check_spatial_dims(self.name, spec.spatial_dims)
        check_divisible(self.name, spec.grid.shape, self.downsampling_factor,
                        f"len(model.channel_multipliers)={len(self.channel_multipliers)}")

    @classmethod
    def published_sizes(cls) -> tuple[PublishedSize, ...]:
        """U-Net_mod-64 on NavierStokes2D and PDE-Refiner's KS backbone, both at the default settings (width 64)."""
        navier_stokes = NetSpec(("smoke", "vx", "vy"), 4, 1, (), Grid.uniform("box", (128, 128)))
        ks = NetSpec(("u",), 1, 1, ("dt", "dx"), Grid.uniform("periodic", (256,)))
        return (
            PublishedSize(
                "U-Net_mod-64 on NavierStokes2D: 3 fields (smoke, vx, vy) x 4 history frames in, 1 frame out, "
                "no conditioning", cls(), navier_stokes, 144_263_683,
                f"{REFERENCE_REPO}: pdearena/modules/twod_unet.py Unet (model zoo name Unetmod-64, hidden_channels=64, "
                "norm=True); the same count is listed in docs/models_fwd_time.json"),
            PublishedSize(
                "PDE-Refiner's KS backbone (Unetmod-1d-64): 1-D, 1 field x (1 history frame + 1 estimate frame) in, "
                "1 frame out, conditioned on dt, dx and the refinement step", cls(), backbone_spec(ks), 53_924_225,
                f"{REFERENCE_REPO}: pdearena/modules/conditioned/oned_unet.py Unet (Unetmod-1d-64) as "
                "pdearena/models/pderefiner.py builds it with configs/kuramotosivashinsky1d.yaml "
                "(param_conditioning=scalar_2, time_history=1, time_future=1)"),
        )


class UNet(nn.Module):
    """`x [B, spec.in_channels, *space], cond [B, spec.n_cond] -> [B, spec.out_channels, *space]`."""

    def __init__(self, spec: NetSpec, config: UNetConfig) -> None:
        super().__init__()
        periodic = spec.grid.periodic
        width, groups = config.hidden_channels, config.norm_groups
        conditioned = spec.n_cond > 0
        emb_dim = 4 * width if conditioned else 0
        self.embedding = PerScalarEmbedding(spec.n_cond, width, emb_dim) if conditioned else None

        def block(c_in: int, c_out: int) -> ConditionedResidualBlock:
            return ConditionedResidualBlock(c_in, c_out, periodic, emb_dim, groups, config.scale_shift)

        self.lift = GridConv(spec.in_channels, width, periodic)
        channels = config.level_channels
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

        # Up: one block per skip. A level's blocks keep its channels except the last, which cuts them to the next
        # finer level's (to the width at the finest) before the up-sampling.
        self.up = nn.ModuleList()
        for level in reversed(range(n_levels)):
            finer = channels[level - 1] if level > 0 else width
            for c_out in [channels[level]] * config.blocks_per_level + [finer]:
                self.up.append(block(current + skips.pop(), c_out))
                current = c_out
            if level > 0:
                self.up.append(GridUpsample(current, periodic))
        assert not skips

        out = GridConv(current, spec.out_channels, periodic)
        self.head = nn.Sequential(nn.GroupNorm(config.head_norm_groups, current), nn.GELU(),
                                  zero_parameters(out) if conditioned else out)
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
    return UNet(spec, config)
