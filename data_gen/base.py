"""What every numerical generator provides to the generation driver (`data_gen.generate`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from pdebench.config.checks import SettingError, is_whole_number
from pdebench.data.schema import Coordinate, FieldSpec, ParameterSpec


@dataclass
class GeneratedBatch:
    """A block of finished trajectories.

    fields: name -> float32 array `[B, n_frames, *space]`; parameters: name -> float64 array `[B]`.
    """

    fields: dict[str, np.ndarray]
    parameters: dict[str, np.ndarray]


class TrajectoryGenerator(Protocol):
    """A batched, per-trajectory-seeded solver for one PDE family.

    Trajectory content depends only on its seed (never on the batch it is generated in or on the device).
    """

    pde: str
    grid: str
    frame_interval: float  # nominal time between stored frames
    fields: tuple[FieldSpec, ...]
    parameters: tuple[ParameterSpec, ...]

    def coordinates(self) -> tuple[Coordinate, ...]: ...

    def solver_settings(self) -> dict[str, Any]: ...

    def generate(self, seeds: Sequence[int], n_frames: int, device: torch.device) -> GeneratedBatch: ...


def check_generate_request(seeds: Sequence[int], n_frames: int) -> None:
    """The arguments every `TrajectoryGenerator.generate` refuses: no seeds, or fewer than one frame."""
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    if len(seeds) == 0:
        raise ValueError("seeds must not be empty")


def even_number(owner: Any, key: str, minimum: int, what: str, why: str) -> int:
    """`owner.key` as an even int >= `minimum` (a grid size, a number of contour points); otherwise `SettingError`
    `key=value is not valid: expected <what>, an even whole number >= <minimum> (<why>)`. Returns the int."""
    value = getattr(owner, key)
    if not (is_whole_number(value) and value >= minimum and value % 2 == 0):
        raise SettingError(key, value, f"is not valid: expected {what}, an even whole number >= {minimum} ({why})")
    return int(value)


class SolverDiverged(RuntimeError):
    """A solver produced non-finite values or broke its stability limit (e.g. CFL).

    Raised by a generator with the seeds of the trajectories that failed and the simulated time of the failure; the
    generation driver adds the split and trajectory index and keeps every block already written.
    """

    def __init__(self, seeds: Sequence[int], time: float, reason: str) -> None:
        self.seeds, self.time, self.reason = [int(s) for s in seeds], float(time), reason
        super().__init__(f"the solver diverged at t = {time:g} for seed(s) {', '.join(map(str, self.seeds))}: {reason}")


class ReferenceSolver(Protocol):
    """The dataset's own numerical solver stepping stored states: the evaluator's `solver` reference row.

    Built by a generator's `reference_solver(resolution, time_step_factor)`:
    * `resolution` — the spatial shape the solver works on: the stored grid's shape (None) or a coarser one the grid
      allows. States are restricted to it (spectral truncation, area averaging, ...) and the result is brought back to
      the stored grid, so the output can be scored against the stored frames.
    * `time_step_factor` — the solver's internal time step times this (>= 1 is cheaper and less accurate).
    """

    def advance(self, fields: Tensor, params: Mapping[str, Tensor], n_frames: int) -> Tensor:
        """`fields [B, C, *space]` (the file's field order and units, stored grid) -> the fields `n_frames` stored
        frame intervals later, same shape. `params`: the split file's per-trajectory parameters, name -> `[B]`."""
        ...


class HasReferenceSolver(Protocol):
    """A generator that can also serve as the evaluator's `solver` row."""

    def reference_solver(self, resolution: Sequence[int] | None = None,
                         time_step_factor: float = 1.0) -> ReferenceSolver: ...
