"""Grid-aware building blocks shared by the convolutional models (`unet`, `sinenet`), in 1-D and 2-D.

Every spatial operation here takes the per-axis `periodic` flags of the data's `Grid` (`spec.grid.periodic`):
periodic axes are padded circularly, the others with zeros (or by replicating the edge, where that is what the
operation means, as for cubic interpolation). On the sphere that gives circular longitude and zero-padded
latitude. With circular padding, convolutions, stride-2 down-sampling, 2x up-sampling and pooling commute with
rolling the input by a multiple of their total down-sampling factor along the periodic axes.

Tensors are channels-first: `[B, C, *space]` with one or two spatial axes. Conditioning vectors `cond [B, n_cond]`
(standardised scalars: dt, dx, PDE parameters, a refinement step) enter through `PerScalarEmbedding` (one MLP
per scalar, summed, as PDEArena's conditioned U-Nets and SineNet), whose output `emb [B, emb_dim]` the models' blocks
add to their features (or apply as a scale and shift).

Interfaces here are used by several models; keep them stable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pdebench.errors import InvalidSetting

SPATIAL_DIMS = (1, 2)


def check_spatial_dims(model: str, ndim: int) -> None:
    """Refuse, in one sentence, a grid with a number of spatial axes the convolutional models do not serve."""
    if ndim not in SPATIAL_DIMS:
        raise InvalidSetting(f"model {model} supports 1-D and 2-D grids, got a grid with {ndim} spatial axes")


def evenly_halvable(shape: Sequence[int]) -> int:
    """How many times every axis of `shape` can be halved without remainder (the exponent of the largest power of
    two dividing them all): 2 for (12, 24), 4 for (16, 32)."""
    halvings = 0
    while all(n % 2 ** (halvings + 1) == 0 for n in shape):
        halvings += 1
    return halvings


def check_divisible(model: str, shape: Sequence[int], factor: int, how: str) -> None:
    """Refuse, in one sentence, a grid whose axes cannot be halved as often as the model's layout needs, saying how
    often they can be (the most halvings a setting may ask for on this grid).

    `factor` is the total down-sampling factor; `how` names the setting that fixes it (e.g. "model.levels=4").
    """
    if any(n % factor for n in shape):
        most = evenly_halvable(shape)
        raise InvalidSetting(f"model {model} halves the grid {int(math.log2(factor))} times ({how}), so every grid "
                             f"axis must be divisible by {factor}; the grid shape {tuple(shape)} is not (it halves "
                             f"evenly at most {most} time{'' if most == 1 else 's'})")


def _conv_cls(ndim: int, transposed: bool = False) -> type[nn.Module]:
    if transposed:
        return {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d}[ndim]
    return {1: nn.Conv1d, 2: nn.Conv2d}[ndim]


def grid_pad(x: Tensor, pad: int, periodic: Sequence[bool], mode: str = "zeros") -> Tensor:
    """Pad every spatial axis of `x [B, C, *space]` by `pad` cells on both sides.

    Periodic axes wrap around (circular); the others get `mode`: "zeros", "replicate" (repeat the edge value) or
    "none" (left as they are, for a convolution that zero-pads them itself). Returns `[B, C, *(n + 2 * pad)]` (the
    non-periodic axes unchanged with "none").
    """
    if len(periodic) != x.dim() - 2:
        raise ValueError(f"grid_pad got {len(periodic)} periodic flags for a tensor with {x.dim() - 2} spatial axes")
    if pad == 0:
        return x
    for axis, wraps in enumerate(periodic):
        dim = 2 + axis
        if wraps:
            n = x.shape[dim]
            if pad <= n:
                x = torch.cat([x.narrow(dim, n - pad, pad), x, x.narrow(dim, 0, pad)], dim=dim)
            else:  # an axis shorter than the padding (a coarse level): wrap around as often as needed
                copies = -(-pad // n)
                x = torch.cat([x] * (2 * copies + 1), dim=dim).narrow(dim, copies * n - pad, n + 2 * pad)
        elif mode == "none":
            continue
        elif mode == "zeros":
            widths = [0, 0] * (x.dim() - 2)
            slot = 2 * (x.dim() - 1 - dim)  # F.pad lists the last axis first
            widths[slot: slot + 2] = [pad, pad]
            x = F.pad(x, widths)
        elif mode == "replicate":
            first = x.narrow(dim, 0, 1)
            last = x.narrow(dim, x.shape[dim] - 1, 1)
            reps = [1] * x.dim()
            reps[dim] = pad
            x = torch.cat([first.repeat(reps), x, last.repeat(reps)], dim=dim)
        else:
            raise ValueError(f"grid_pad mode must be 'zeros', 'replicate' or 'none', got {mode!r}")
    return x


class GridConv(nn.Module):
    """Convolution with an odd kernel that keeps the grid shape ("same"), padded by `grid_pad` along each axis.

    `[B, in_channels, *space] -> [B, out_channels, *space]`; with `stride=2` the output has `n // 2` cells per axis
    (for even `n`), the down-sampling of the modern U-Net.
    """

    def __init__(self, in_channels: int, out_channels: int, periodic: Sequence[bool], kernel_size: int = 3,
                 stride: int = 1) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"GridConv needs an odd kernel size, got {kernel_size}")
        self.periodic = tuple(bool(p) for p in periodic)
        self.pad = kernel_size // 2
        # Zero padding of the non-periodic axes is left to the convolution itself (no copy); periodic axes are
        # wrapped before it.
        zero_pad = tuple(0 if wraps else self.pad for wraps in self.periodic)
        self.conv = _conv_cls(len(self.periodic))(in_channels, out_channels, kernel_size, stride=stride,
                                                  padding=zero_pad)
        self.wrap = (False,) * len(self.periodic) != self.periodic

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(grid_pad(x, self.pad, self.periodic, mode="none") if self.wrap else x)


class GridDownsample(nn.Module):
    """Learned 2x down-sampling: a 3-wide convolution with stride 2, `[B, C, *n] -> [B, C, *(n // 2)]`.

    Commutes with rolling the input by an even number of cells along periodic axes (by k/2 at the output).
    """

    def __init__(self, channels: int, periodic: Sequence[bool]) -> None:
        super().__init__()
        self.conv = GridConv(channels, channels, periodic, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class GridUpsample(nn.Module):
    """Learned 2x up-sampling: a transposed convolution (kernel 4, stride 2), `[B, C, *n] -> [B, C, *(2 n)]`.

    The input is padded by one cell (circular on periodic axes, zeros elsewhere) and the transposed convolution
    run without padding; cropping 3 cells at the start of each axis keeps exactly the `2 n` outputs that
    `ConvTranspose(kernel 4, stride 2, padding 1)` produces, but on periodic axes the outputs near the edges
    receive the wrapped-around neighbours instead of nothing. Commutes with rolling by k cells (2 k at the output).
    """

    def __init__(self, channels: int, periodic: Sequence[bool]) -> None:
        super().__init__()
        self.periodic = tuple(bool(p) for p in periodic)
        self.conv = _conv_cls(len(self.periodic), transposed=True)(channels, channels, 4, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        sizes = x.shape[2:]
        out = self.conv(grid_pad(x, 1, self.periodic))
        for axis, n in enumerate(sizes):
            out = out.narrow(2 + axis, 3, 2 * n)
        return out


def grid_avg_pool(x: Tensor) -> Tensor:
    """2x average pooling over every spatial axis, `[B, C, *n] -> [B, C, *(n // 2)]` (no padding needed)."""
    return F.avg_pool1d(x, 2) if x.dim() == 3 else F.avg_pool2d(x, 2)


def grid_interpolate_up(x: Tensor, periodic: Sequence[bool]) -> Tensor:
    """2x cubic up-sampling that wraps around periodic axes, `[B, C, *n] -> [B, C, *(2 n)]`.

    Each axis is padded by 2 cells (the cubic stencil's reach): circularly where periodic, by repeating the edge
    elsewhere (which is what plain bicubic interpolation does at a border), then interpolated and cropped by 4
    cells on each side. In 1-D the cubic kernel runs as a bicubic one on a one-row image.
    """
    sizes = x.shape[2:]
    padded = grid_pad(x, 2, periodic, mode="replicate")
    if x.dim() == 3:
        up = F.interpolate(padded.unsqueeze(2), scale_factor=(1, 2), mode="bicubic", align_corners=False).squeeze(2)
    else:
        up = F.interpolate(padded, scale_factor=2, mode="bicubic", align_corners=False)
    for axis, n in enumerate(sizes):
        up = up.narrow(2 + axis, 4, 2 * n)
    return up


def sinusoidal_embedding(values: Tensor, dim: int, max_frequency: float = 100.0) -> Tensor:
    """Sine/cosine features of scalars, `[...] -> [..., dim]` (`dim` even).

    Angular frequencies run geometrically from 1 to `max_frequency` (radians per unit of the value): standardised
    conditioning values of order 1 and a refinement step k/K in [0, 1] are resolved from a smooth trend down to
    differences of about 1/`max_frequency`.
    """
    if dim % 2:
        raise ValueError(f"a sinusoidal embedding needs an even width, got {dim}")
    half = dim // 2
    exponent = torch.arange(half, device=values.device, dtype=values.dtype) / max(half - 1, 1)
    frequencies = max_frequency ** exponent
    angles = values.unsqueeze(-1) * frequencies
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class PerScalarEmbedding(nn.Module):
    """One embedding MLP per conditioning scalar, their outputs summed, `[B, n_scalars] -> [B, out_dim]`.

    Scalar i gets `dim` sinusoidal features (`sinusoidal_embedding`) and its own Linear(dim, out_dim) -> GELU ->
    Linear(out_dim, out_dim); the embedding is the sum over scalars. This is how PDEArena's conditioned U-Nets embed
    a diffusion/refinement time and each PDE parameter (one MLP each), so the parameter count grows by one MLP per
    scalar. Models with no conditioning (`n_scalars == 0`) build no embedding at all.
    """

    def __init__(self, n_scalars: int, dim: int, out_dim: int) -> None:
        super().__init__()
        if n_scalars < 1:
            raise ValueError("PerScalarEmbedding needs at least one scalar; build none when there is no conditioning")
        self.n_scalars, self.dim = n_scalars, dim
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim)) for _ in range(n_scalars))

    def forward(self, cond: Tensor) -> Tensor:
        if cond.dim() != 2 or cond.shape[1] != self.n_scalars:
            raise ValueError(f"the conditioning must have shape [batch, {self.n_scalars}], got {tuple(cond.shape)}")
        features = sinusoidal_embedding(cond, self.dim)  # [B, n_scalars, dim]
        return sum(mlp(features[:, i]) for i, mlp in enumerate(self.mlps))


def zero_parameters(module: nn.Module) -> nn.Module:
    """Set every parameter of `module` to zero in place (a layer whose output starts at zero); returns `module`."""
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.zero_()
    return module


def broadcast_channels(values: Tensor, like: Tensor) -> Tensor:
    """`[B, C]` -> `[B, C, 1, ...]` with as many unit axes as `like` has spatial axes."""
    return values.view(*values.shape, *([1] * (like.dim() - 2)))


class ConditionedResidualBlock(nn.Module):
    """Pre-activation residual block of the modern U-Net, `[B, in, *space] -> [B, out, *space]`.

    `GroupNorm -> GELU -> conv3 (+ embedding) -> GroupNorm -> GELU -> conv3`, plus the input (through a 1x1
    convolution when the channel counts differ). The embedding `emb [B, emb_dim]` is added per channel after the
    first convolution, or, with `scale_shift=True`, applied as `norm(h) * (1 + scale) + shift` in the second norm
    (FiLM). `emb_dim == 0` builds a block that takes no embedding.

    A conditioned block (`emb_dim > 0`) starts with its second convolution zeroed, as in PDEArena's conditioned
    U-Nets: at initialisation it is its shortcut, and the residual branch (embedding included) grows from zero. An
    unconditioned block keeps the default initialisation, as PDEArena's unconditioned U-Net_mod does.
    """

    def __init__(self, in_channels: int, out_channels: int, periodic: Sequence[bool], emb_dim: int = 0,
                 norm_groups: int = 1, scale_shift: bool = False) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(norm_groups, in_channels)
        self.conv1 = GridConv(in_channels, out_channels, periodic)
        self.norm2 = nn.GroupNorm(norm_groups, out_channels)
        self.conv2 = GridConv(out_channels, out_channels, periodic)
        self.act = nn.GELU()
        self.scale_shift = scale_shift
        self.emb = nn.Linear(emb_dim, out_channels * (2 if scale_shift else 1)) if emb_dim else None
        if emb_dim:
            zero_parameters(self.conv2)
        ndim = len(tuple(periodic))
        self.shortcut = (_conv_cls(ndim)(in_channels, out_channels, 1) if in_channels != out_channels
                         else nn.Identity())

    def forward(self, x: Tensor, emb: Tensor | None = None) -> Tensor:
        h = self.conv1(self.act(self.norm1(x)))
        if self.emb is not None and not self.scale_shift:
            h = h + broadcast_channels(self.emb(emb), h)
        h = self.norm2(h)
        if self.emb is not None and self.scale_shift:
            scale, shift = broadcast_channels(self.emb(emb), h).chunk(2, dim=1)
            h = h * (1 + scale) + shift
        h = self.conv2(self.act(h))
        return h + self.shortcut(x)


class SelfAttention(nn.Module):
    """Single- or multi-head self-attention over all grid points, with GroupNorm before and a residual around it.

    `[B, C, *space] -> [B, C, *space]`. It has no positional encoding, so it commutes with any permutation of the
    grid points, translations on periodic axes included.
    """

    def __init__(self, channels: int, heads: int = 1, norm_groups: int = 1) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(norm_groups, channels)
        self.attention = nn.MultiheadAttention(channels, heads, batch_first=True)

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # [B, N, C]
        mixed, _ = self.attention(tokens, tokens, tokens, need_weights=False)
        return x + mixed.transpose(1, 2).reshape(x.shape)
