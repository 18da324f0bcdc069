"""SFNO: neuraloperator's spherical Fourier neural operator (torch-harmonics transforms), for sphere grids only.

On a grid that holds fewer spherical-harmonic modes than `n_modes` asks for, the net keeps the modes the grid holds
(`spherical_modes_in_use`), as neuraloperator's FNO does with Fourier modes: the same weights, fewer of them in use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import torch
from neuralop.layers.spherical_convolution import SphericalConv
from neuralop.models import SFNO
from torch import Tensor, nn

from baselines.fno import _drop_neuralop_metadata, broadcast_cond, modes_per_axis
from baselines.registry import ModelConfig, register
from pdebench.config.checks import SettingError, finite_number, is_whole_number, whole_number
from pdebench.data.grid import Grid
from pdebench.data.netspec import NetSpec
from pdebench.errors import InvalidSetting

SHT_GRIDS = ("equiangular", "legendre-gauss")


@dataclass
class SFNOConfig(ModelConfig):
    """neuraloperator's SFNO: Fourier layers in the spherical-harmonic basis instead of the 2-D FFT.

    n_modes: kept (lat, lon) modes of the spherical-harmonic transform, neuraloperator's convention (one entry is
    used for both): degrees l < n_modes[0] and orders m < n_modes[1] // 2; a grid holding fewer keeps what it holds
    (`spherical_modes_in_use`). Width `hidden_channels`, `n_layers` spherical convolutions. `factorization`/`rank` as
    for fno.
    sht_grid: the quadrature torch-harmonics assumes for the latitudes: "equiangular" or "legendre-gauss"; null
    picks "legendre-gauss" when the grid's latitudes are the Gauss-Legendre nodes and "equiangular" otherwise.
    """

    name: str = "sfno"
    n_modes: list[int] = field(default_factory=lambda: [32, 64])
    hidden_channels: int = 64
    n_layers: int = 4
    factorization: str | None = None
    rank: float = 1.0
    sht_grid: str | None = None

    def __post_init__(self) -> None:
        for key in ("hidden_channels", "n_layers"):
            whole_number(self, key, 1)
        if not (1 <= len(self.n_modes) <= 2 and all(is_whole_number(m) and m >= 1 for m in self.n_modes)):
            raise SettingError("n_modes", list(self.n_modes), "is not valid: expected one or two (lat, lon) mode "
                                                              "counts, each a whole number >= 1")
        if self.sht_grid is not None and self.sht_grid not in SHT_GRIDS:
            raise SettingError("sht_grid", self.sht_grid,
                               f"is not valid: expected null or one of {', '.join(SHT_GRIDS)}")
        finite_number(self, "rank", low_open=True)

    @classmethod
    def tiny(cls) -> SFNOConfig:
        return cls(n_modes=[8, 16], hidden_channels=16, n_layers=2)

    def check_spec(self, spec: NetSpec) -> None:
        """Refused: any grid but the sphere. Adapted: `n_modes` beyond what the sphere grid holds (a sphere grid has
        two axes, which every `n_modes` serves)."""
        if spec.grid.kind != "sphere":
            raise InvalidSetting(f"model sfno does not support grid kind {spec.grid.kind!r}: its spherical-harmonic "
                                 "layers need a sphere grid (lat, lon); use model=fno on periodic and box grids")


def spherical_modes_in_use(n_modes: tuple[int, int], grid_shape: tuple[int, int]) -> tuple[int, int]:
    """(degrees, orders) a spherical convolution with `n_modes` (neuraloperator's (lat, lon) convention: degrees
    l < n_modes[0], orders m < n_modes[1] // 2) transforms on an `(n_lat, n_lon)` grid: at most `n_lat` degrees (what
    torch-harmonics resolves on n_lat latitudes) and `n_lon // 2 + 1` orders (the real FFT of a latitude ring)."""
    n_lat, n_lon = grid_shape
    return min(int(n_modes[0]), n_lat), min(int(n_modes[1]) // 2, n_lon // 2 + 1)


class GridSphericalConv(SphericalConv):
    """neuraloperator's spherical convolution, transforming with at most the modes the input grid holds.

    `x [B, C_in, n_lat, n_lon] -> [B, C_out, n_lat, n_lon]` (or `output_shape`). The weights are neuraloperator's:
    one complex `C_in x C_out` matrix per degree l < n_modes[0], shared by every order. neuraloperator transforms with
    exactly `n_modes`, which fails inside torch-harmonics when a latitude ring holds fewer orders; here the transform
    keeps `spherical_modes_in_use` and the weights of the degrees kept. Where the grid holds every mode asked for,
    this is neuraloperator's forward exactly (built, as `ConditionedSFNO` builds it, without resolution scaling).
    """

    def forward(self, x: Tensor, output_shape: tuple[int, int] | None = None) -> Tensor:
        height, width = output_shape if output_shape is not None else x.shape[-2:]
        degrees, orders = spherical_modes_in_use(self.n_modes, x.shape[-2:])
        coefficients = self.sht_handle.sht(x, s=(degrees, orders), norm=self.sht_norm, grid=self.sht_grids[0])
        coefficients = self._contract(coefficients, self.weight[:, :, :degrees], separable=self.separable, dhconv=True)
        out = self.sht_handle.isht(coefficients, s=(height, width), norm=self.sht_norm, grid=self.sht_grids[1])
        return out if self.bias is None else out + self.bias


def latitude_quadrature(grid: Grid) -> str:
    """torch-harmonics' name of the grid's latitude rule: "legendre-gauss" on Gauss-Legendre latitudes (the grid's
    own `quadrature`, `pdebench.data.grid`), else "equiangular"."""
    return "legendre-gauss" if grid.quadrature == "gauss-legendre" else "equiangular"


class ConditionedSFNO(nn.Module):
    """neuraloperator's SFNO with the conditioning broadcast as extra input channels.

    `x [B, C_in, n_lat, n_lon], cond [B, n_cond] -> [B, C_out, n_lat, n_lon]`; longitude is periodic through the
    spherical harmonics, and the latitude axis is treated as the sphere's colatitude (no padding needed).
    """

    def __init__(self, spec: NetSpec, config: SFNOConfig) -> None:
        super().__init__()
        grid = config.sht_grid or latitude_quadrature(spec.grid)
        self.sfno = SFNO(
            n_modes=modes_per_axis("sfno", config.n_modes, 2),
            in_channels=spec.in_channels + spec.n_cond,
            out_channels=spec.out_channels,
            hidden_channels=config.hidden_channels,
            n_layers=config.n_layers,
            positional_embedding=None,
            factorization=config.factorization or "dense",
            rank=config.rank,
            conv_module=partial(GridSphericalConv, sht_grids=grid),
        )
        self.register_state_dict_post_hook(_drop_neuralop_metadata)
        self._materialise_transforms(spec)

    def _materialise_transforms(self, spec: NetSpec) -> None:
        """Run the net once on zeros of the grid's shape (no gradient, random streams untouched): neuraloperator's
        spherical convolutions create their transforms' buffers on their first forward, and whatever pairs a
        module's buffers by position with a copy made earlier (the EMA average, DDP's broadcast) needs them to exist
        from the start."""
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            self(torch.zeros(1, spec.in_channels, *spec.grid.shape), torch.zeros(1, spec.n_cond))

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        return self.sfno(broadcast_cond(x, cond))


@register("sfno", config=SFNOConfig)
def build_sfno(config: SFNOConfig, spec: NetSpec) -> nn.Module:
    return ConditionedSFNO(spec, config)
