"""Transform Once, T1 (Poli et al., "Transform Once: Efficient Operator Learning in Frequency Domain", NeurIPS 2022),
in 1-D and 2-D: one forward transform, every layer on the kept low modes, one inverse transform.

`x [B, C_in, *space], cond [B, n_cond] -> [B, C_out, *space]`:

1. Lift: a pointwise linear map (1x1 convolution) of the input frames, the conditioning broadcast over space and, with
   `positional_embedding`, each axis's coordinate in [0, 1] (the reference's `fc0` on `(a(x), x)`) to the width W.
2. One forward transform per axis, truncated to the lowest `n_modes` (`baselines.spectral_transforms`): by default
   the DCT on axes with walls and the FFT on periodic ones (`transform: grid`); `transform: dct` takes the DCT on every
   axis, the paper's default even on the torus.
3. `n_layers` reduced-order layers on the kept coefficients `z [B, W, *modes]`, each
   `z <- z + mix_axes(act(mix_channels(z)))`: a channel mixing with its own W x W matrix per mode, GELU, then along
   each axis a dense mixing of that axis's modes with its own matrix per channel, and the residual.
4. Head on the coefficients (pointwise over modes, no bias): `Linear(W, head_channels) -> sin -> Linear(head_channels,
   C_out)`, then one inverse transform to the grid. Kept modes stay kept and dropped ones zero, so the output holds
   the kept modes only.

Initialisation, as the reference code's T1 (`weight_init=2`, variance preserving): the channel mixing ~ N(0, s^2)
with `s = g * sqrt(N / (W * M))`, N the grid's points and M the coefficients kept on it, so that the inverse transform
of the kept coefficients has the variance white noise had over all N; the mode mixings ~ N(0, g^2 / M_axis)
(Kaiming over the modes of their axis); the head ~ N(0, 1e-16), so the net starts at an output of about 0. `g` is 1
for real (DCT) coefficients and 1/2 for complex (FFT) ones, whose real and imaginary parts each get `s`.

Where this differs from the reference code (github.com/DiffEqML/kairos, `src/models/t1.py` `T1_2d`, layers in
`src/models/layers/fdm2d.py` `T1Layer2d`), and why:

* The inverse transform is part of the net (the reference's `perform_inverse=True`; its experiments train with
  `perform_inverse=False` and a loss on the DCT of the target). Returning the physical field lets every target,
  objective and Stepper of the suite work unchanged. The parameters are the same.
* FFT on periodic axes by default, the DCT as an option. The reference's FFT ("dft") path does not build (a name is
  undefined in `T1Layer2d`, and its 1-D layer reads a missing attribute), so only its DCT layout is a reference; our
  FFT layout is the same with complex weights (twice the parameters of a DCT layer at the same slots). On complex
  coefficients GELU and the head's sine act on the real and imaginary parts separately; the reference names complex
  tanh and sine, which grow without bound off the real axis (tanh has poles at +-i pi / 2).
* Conditioning scalars enter the lift as constant channels (the reference takes none).
* Each axis keeps its own number of modes (`n_modes` per axis); the reference's 2-D layers keep `modes1` on both.
* The head is applied to the kept coefficients only, which gives the reference's output exactly (its head has no bias
  and sin(0) = 0, so the dropped modes it carries stay zero) at a fraction of the cost.

On a grid holding fewer modes than `n_modes` asks for, T1 keeps the modes the grid holds with the weights of those
slots (the parameter count does not change); the variance-preserving scales use the modes kept on the grid the net is
built for. The sphere is refused.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.fno import broadcast_cond, modes_per_axis
from baselines.layers import check_spatial_dims
from baselines.registry import ModelConfig, PublishedSize, register
from baselines.spectral_transforms import GridTransform, axis_kinds
from pdebench.config.checks import SettingError, is_whole_number, whole_number
from pdebench.data.grid import Grid
from pdebench.data.netspec import NetSpec
from pdebench.errors import InvalidSetting

TRANSFORMS = ("grid", "dct")

# The reference initialises its head this small (its output starts at about zero).
HEAD_INIT_STD = 1e-8

# Reduced-precision dtypes that mixed precision gives the lift's output; the spectral part runs in float32 instead.
HALF = (torch.float16, torch.bfloat16)

REFERENCE_SOURCE = "github.com/DiffEqML/kairos: src/models/t1.py T1_2d (layers: src/models/layers/fdm2d.py T1Layer2d)"


@dataclass
class T1Config(ModelConfig):
    """Transform Once.

    hidden_channels: W, the channels of the lift and of every reduced-order layer (the reference's `width`, 48).
    n_modes: m, the kept modes per axis (one entry: every axis), a shortest wavelength of about 2 / m of the axis:
        the first m DCT coefficients, the frequencies 0 .. m // 2 of the real FFT's axis, -(m // 2) .. m // 2 of
        another FFT axis (`baselines.spectral_transforms`). The reference's Navier-Stokes setting: 24.
    n_layers: reduced-order layers (Navier-Stokes setting: 8).
    transform: "grid" takes the DCT on axes with walls and the FFT on periodic ones; "dct" the DCT on every axis (the
        paper's default, also on the torus).
    head_channels: hidden channels of the head (the reference fixes 128).
    residual: add each layer's input to its output (the reference's `residual=True`).
    positional_embedding: append each axis's coordinate, from 0 to 1 over the grid, to the lift's input (the
        reference does).
    """

    name: str = "t1"
    hidden_channels: int = 48
    n_modes: list[int] = field(default_factory=lambda: [24])
    n_layers: int = 8
    transform: str = "grid"
    head_channels: int = 128
    residual: bool = True
    positional_embedding: bool = True

    def __post_init__(self) -> None:
        for key, what in (("hidden_channels", "a number of channels"), ("n_layers", "a number of layers"),
                          ("head_channels", "a number of channels")):
            whole_number(self, key, 1, what)
        if not (len(self.n_modes) >= 1 and all(is_whole_number(m) and m >= 1 for m in self.n_modes)):
            raise SettingError("n_modes", list(self.n_modes), "is not valid: expected a non-empty list of kept modes "
                                                              "per axis, each a whole number >= 1")
        if self.transform not in TRANSFORMS:
            raise SettingError("transform", self.transform,
                               f"is not valid: expected one of {', '.join(TRANSFORMS)} (grid: the DCT on axes with "
                               "walls and the FFT on periodic ones; dct: the DCT on every axis)")

    @classmethod
    def tiny(cls) -> T1Config:
        return cls(hidden_channels=8, n_modes=[16], n_layers=2, head_channels=16)

    def check_spec(self, spec: NetSpec) -> None:
        """Refused: the sphere (its transform is not a per-axis one), grids with other than 1 or 2 axes, an `n_modes`
        with neither one entry nor one per axis. Adapted: modes beyond what the grid holds (module docstring)."""
        if spec.grid.kind == "sphere":
            raise InvalidSetting("model t1 does not support grid kind 'sphere': it transforms each axis by a DCT or "
                                 "an FFT, which the sphere's latitude and poles do not fit (sfno serves the sphere)")
        check_spatial_dims(self.name, spec.spatial_dims)
        modes_per_axis(self.name, self.n_modes, spec.spatial_dims)

    @classmethod
    def published_sizes(cls) -> tuple[PublishedSize, ...]:
        """The reference code's two T1 experiments on grids: Navier-Stokes (FNO's 2-D torus data) and the airfoil
        flows (DFP) at 128 x 128, both with the DCT on both axes."""
        return (
            PublishedSize(
                setting="T1 on Navier-Stokes (FNO's vorticity data, 64 x 64 torus): the vorticity at one time in, at "
                        "a later time out, width 48, 24 x 24 DCT modes (the DCT also on the periodic axes), 8 layers",
                config=cls(transform="dct"),
                spec=NetSpec(("vorticity",), 1, 1, (), Grid.uniform("periodic", (64, 64))), published=11_065_664,
                source=f"{REFERENCE_SOURCE} with configs/experiment/navier-stokes/t1.yaml (modes 24, width 48, "
                       "nlayers 8, signal_resolution 64 x 64, transform dct), counted by instantiating T1_2d"),
            PublishedSize(
                setting="T1 on the airfoil flows (DFP, 128 x 128 box): 3 channels in, 3 out, width 48, 64 x 64 DCT "
                        "modes, 6 layers",
                config=cls(n_modes=[64], n_layers=6),
                spec=NetSpec(("p", "vx", "vy"), 1, 1, (), Grid.uniform("box", (128, 128))), published=58_989_216,
                source=f"{REFERENCE_SOURCE} with configs/experiment/dfp128/t1.yaml (modes 64, width 48, nlayers 6, "
                       "in and out channels 3, transform dct), counted by instantiating T1_2d"),
        )


def split_complex(fn: Callable[[Tensor], Tensor], z: Tensor) -> Tensor:
    """A real function applied to `z`, to the real and imaginary parts separately when `z` is complex."""
    if z.is_complex():
        return torch.complex(fn(z.real), fn(z.imag))
    return fn(z)


def as_weight(parameter: Tensor, is_complex: bool) -> Tensor:
    """A stored weight as the layers use it: complex from its trailing (real, imaginary) axis, or as it is."""
    return torch.view_as_complex(parameter) if is_complex else parameter


class T1Layer(nn.Module):
    """One reduced-order layer on kept coefficients, `z [B, W, *kept] -> [B, W, *kept]` (real, or complex for FFT
    axes): `z + mix_axes(gelu(mix_channels(z)))` (without the residual with `residual=False`).

    Weights are stored real, a trailing axis of 2 holding real and imaginary parts when complex:
    `channel_mixing [W, W, *slots]` (a W x W matrix per mode) and, per axis a, `axis_mixing[a] [slots_a, slots_a, W]`
    (a mode x mode matrix per channel).
    """

    def __init__(self, width: int, transform: GridTransform, residual: bool) -> None:
        super().__init__()
        self.transform, self.residual = transform, residual
        complex_part = (2,) if transform.is_complex else ()
        gain = 0.5 if transform.is_complex else 1.0
        points = math.prod(transform.shape)
        channel_std = gain * math.sqrt(points / (width * transform.coefficient_count()))
        self.channel_mixing = nn.Parameter(channel_std * torch.randn(width, width, *transform.slot_shape,
                                                                     *complex_part))
        self.axis_mixing = nn.ParameterList(
            nn.Parameter(gain / math.sqrt(axis.kept) * torch.randn(axis.slots, axis.slots, width, *complex_part))
            for axis in transform.axes)
        letters = string.ascii_lowercase[-transform.ndim:]  # spatial axes: "z" in 1-D, "yz" in 2-D
        self._channel_equation = f"bi{letters},io{letters}->bo{letters}"
        self._axis_equations = [f"bc{letters},{a}oc->bc{letters.replace(a, 'o')}" for a in letters]

    def mix_channels(self, z: Tensor) -> Tensor:
        """The per-mode channel mixing alone, `[B, W, *kept] -> [B, W, *kept]`."""
        channels = as_weight(self.channel_mixing, self.transform.is_complex)
        for axis in range(self.transform.ndim):
            channels = self.transform.kept_slots(channels, axis, (2 + axis,))
        return torch.einsum(self._channel_equation, z, channels)

    def forward(self, z: Tensor) -> Tensor:
        h = split_complex(F.gelu, self.mix_channels(z))
        for axis, (equation, parameter) in enumerate(zip(self._axis_equations, self.axis_mixing, strict=True)):
            weight = as_weight(parameter, self.transform.is_complex)
            h = torch.einsum(equation, h, self.transform.kept_slots(weight, axis, (0, 1)))
        return h + z if self.residual else h


class T1(nn.Module):
    """`x [B, spec.in_channels, *space], cond [B, spec.n_cond] -> [B, spec.out_channels, *space]` (module docstring)."""

    def __init__(self, spec: NetSpec, config: T1Config) -> None:
        super().__init__()
        shape = spec.grid.shape
        kinds = axis_kinds(spec.grid.periodic, dct_everywhere=config.transform == "dct")
        self.transform = GridTransform(shape, kinds, modes_per_axis("t1", config.n_modes, spec.spatial_dims))
        self.n_cond, self.positional_embedding = spec.n_cond, config.positional_embedding
        lift_in = spec.in_channels + spec.n_cond + (spec.spatial_dims if config.positional_embedding else 0)
        self.lift = (nn.Conv1d if spec.spatial_dims == 1 else nn.Conv2d)(lift_in, config.hidden_channels, 1)
        self.layers = nn.Sequential(*(T1Layer(config.hidden_channels, self.transform, config.residual)
                                      for _ in range(config.n_layers)))
        complex_part = (2,) if self.transform.is_complex else ()
        self.head_in = nn.Parameter(HEAD_INIT_STD * torch.randn(config.hidden_channels, config.head_channels,
                                                                *complex_part))
        self.head_out = nn.Parameter(HEAD_INIT_STD * torch.randn(config.head_channels, spec.out_channels,
                                                                 *complex_part))
        letters = string.ascii_lowercase[-spec.spatial_dims:]
        self._head_equation = f"bi{letters},io->bo{letters}"

    def coordinates(self, x: Tensor) -> Tensor:
        """`[B, ndim, *space]`: each axis's coordinate, 0 at its first point and 1 at its last (the reference's)."""
        space = x.shape[2:]
        axes = [torch.linspace(0.0, 1.0, n, dtype=x.dtype, device=x.device) for n in space]
        grids = torch.meshgrid(*axes, indexing="ij")
        return torch.stack(grids).unsqueeze(0).expand(x.shape[0], -1, *space)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        if cond.dim() != 2 or cond.shape[1] != self.n_cond:
            raise ValueError(f"model t1 expects conditioning of shape [batch, {self.n_cond}], got {tuple(cond.shape)}")
        inputs = broadcast_cond(x, cond)
        if self.positional_embedding:
            inputs = torch.cat([inputs, self.coordinates(x)], dim=1)
        lifted = self.lift(inputs)
        is_complex = self.transform.is_complex
        # The transforms run on torch.fft, which takes no bfloat16: under mixed precision the spectral part runs in
        # float32 (its output too).
        with torch.autocast(lifted.device.type, enabled=False):
            z = self.layers(self.transform.forward(lifted.float() if lifted.dtype in HALF else lifted))
            h = split_complex(torch.sin, torch.einsum(self._head_equation, z, as_weight(self.head_in, is_complex)))
            return self.transform.inverse(torch.einsum(self._head_equation, h, as_weight(self.head_out, is_complex)))


@register("t1", config=T1Config)
def build_t1(config: T1Config, spec: NetSpec) -> nn.Module:
    return T1(spec, config)
