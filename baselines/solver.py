"""Reference row: the dataset's own numerical solver as a Stepper (`model=solver`), at the stored resolution and at
coarser resolutions / larger internal steps, so every surrogate can be placed on the solver's accuracy-cost curve.

The solver is the generator recorded in the split file (`solver` attribute and `generation_config`); it advances
the last input frame by one model step (`frame_stride` stored frame intervals) per output frame. The evaluator
builds the registry's stepper and attaches the dataset's `ReferenceSolver` to it (`attach`); an unattached solver
row refuses to run, since nothing but the dataset knows which equations to solve.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor, nn

from baselines.registry import ModelConfig, register
from pdebench.config.checks import SettingError, is_finite_number, is_whole_number
from pdebench.data.netspec import NetSpec


class AdvancesFields(Protocol):
    """`data_gen.base.ReferenceSolver`, restated here so the model zoo does not import the generators."""

    def advance(self, fields: Tensor, params: Mapping[str, Tensor], n_frames: int) -> Tensor: ...


@dataclass
class SolverConfig(ModelConfig):
    """The settings of the solver rows; every (resolution, time_step_factor) pair is one row.

    resolutions: coarser grid point counts along the first axis besides the stored grid, which is always a row; the
        other axes keep the stored aspect ratio (a 96 x 192 sphere at 48 is 48 x 96). Counts not below the stored
        grid's are ignored, and a setting the dataset's solver cannot run is skipped with a warning, so one list
        serves every dataset.
    time_step_factors: multipliers of the solver's internal step (1 = the generator's own step).
    """

    name: str = "solver"
    resolutions: list[int] = field(default_factory=list)
    time_step_factors: list[float] = field(default_factory=lambda: [1.0])

    def __post_init__(self) -> None:
        if not all(is_whole_number(r) and r >= 2 for r in self.resolutions):
            raise SettingError("resolutions", list(self.resolutions),
                               "is not valid: expected grid point counts, each a whole number >= 2")
        if not self.time_step_factors or not all(is_finite_number(f) and f > 0 for f in self.time_step_factors):
            raise SettingError("time_step_factors", list(self.time_step_factors),
                               "is not valid: expected a non-empty list of finite numbers > 0")

    def settings(self, grid_shape: Sequence[int]) -> list[tuple[tuple[int, ...] | None, float]]:
        """`(resolution or None for the stored grid, time_step_factor)` of every row, the stored grid first."""
        resolutions: list[tuple[int, ...] | None] = [None]
        for r in self.resolutions:
            if int(r) >= grid_shape[0]:  # only coarser grids than the stored one make rows
                continue
            shape = tuple(max(1, round(n * int(r) / grid_shape[0])) for n in grid_shape)
            if shape not in resolutions:
                resolutions.append(shape)
        return [(r, float(f)) for r in resolutions for f in self.time_step_factors]


def setting_label(resolution: Sequence[int] | None, time_step_factor: float) -> str:
    """`solver` for the stored grid and the generator's step; else e.g. `solver-n64-dt4x`."""
    parts = ["solver"]
    if resolution is not None:
        parts.append("n" + "x".join(str(int(r)) for r in resolution))
    if float(time_step_factor) != 1.0:
        parts.append(f"dt{float(time_step_factor):g}x")
    return "-".join(parts)


class SolverStepper(nn.Module):
    """Stepper: `frames [B, C, history, *space]` -> `[B, C, bundle, *space]` float64, each output frame the solver's
    state one model step after the previous one, starting from the last input frame.

    `cond` holds the split file's per-trajectory parameters (unnormalised, in `parameter_names` order); the solver
    reads them by name.
    """

    needs_dataset_solver = True  # runs only once `attach` has given it the dataset's solver

    def __init__(self, spec: NetSpec) -> None:
        super().__init__()
        self.history, self.bundle = spec.history, spec.bundle
        self.parameter_names = tuple(spec.conditioning)
        self.reference: AdvancesFields | None = None
        self.frames_per_step = 1

    def attach(self, reference: AdvancesFields, frames_per_step: int) -> SolverStepper:
        """Use `reference` (the dataset's `ReferenceSolver`), advancing `frames_per_step` stored frames per step."""
        self.reference, self.frames_per_step = reference, int(frames_per_step)
        return self

    def forward(self, frames: Tensor, cond: Tensor) -> Tensor:
        if self.reference is None:
            raise RuntimeError("the solver row has no solver attached: it steps the dataset's own solver, which "
                               "pdebench-evaluate model=solver builds from the split file")
        params = {name: cond[:, i] for i, name in enumerate(self.parameter_names)}
        state = frames[:, :, -1]
        out = []
        for _ in range(self.bundle):
            state = self.reference.advance(state, params, self.frames_per_step)
            out.append(state)
        return torch.stack(out, dim=2)

    def extra_repr(self) -> str:
        return f"history={self.history}, bundle={self.bundle}, frames_per_step={self.frames_per_step}"


@register("solver", config=SolverConfig, kind="stepper")
def build_solver(config: SolverConfig, spec: NetSpec) -> SolverStepper:
    return SolverStepper(spec)

