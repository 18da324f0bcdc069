"""What every numerical generator provides to the generation driver (`data_gen.generate`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

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


_FROM_CONFIG: Any = object()  # check_*: read the value from the config attribute


def check_integer(config: object, name: str, minimum: int, value: Any = _FROM_CONFIG) -> int:
    """A solver setting (`config.<name>`, or `value` given for it) as an int >= `minimum`; otherwise ValueError
    `<ConfigClass>.<name> must be an integer >= <minimum>, got <value>` (bools are refused)."""
    value = getattr(config, name) if value is _FROM_CONFIG else value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{type(config).__name__}.{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_number(config: object, name: str, low: float = 0.0, high: float = math.inf, low_open: bool = False,
                 value: Any = _FROM_CONFIG) -> float:
    """A solver setting (`config.<name>`, or `value` given for it) as a finite float within [low, high] (`(low,
    high]` if `low_open`); otherwise ValueError `<ConfigClass>.<name> must be a finite number > 0, got <value>`."""
    value = getattr(config, name) if value is _FROM_CONFIG else value
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and (value > low if low_open else value >= low) and value <= high):
        bounds = [f"{'>' if low_open else '>='} {low:g}"] if low > -math.inf else []
        bounds += [f"<= {high:g}"] if high < math.inf else []
        bound = f" {' and '.join(bounds)}" if bounds else ""
        raise ValueError(f"{type(config).__name__}.{name} must be a finite number{bound}, got {value!r}")
    return float(value)


def check_interval(config: object, name: str, low: float, high: float = math.inf, low_open: bool = False
                   ) -> tuple[float, float]:
    """A `(low, high)` solver setting `config.<name>` as two finite floats with low <= high inside the bounds
    (`low_open`: strictly above `low`); otherwise ValueError naming `<ConfigClass>.<name>`."""
    where, value = f"{type(config).__name__}.{name}", getattr(config, name)
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{where} must be a (low, high) pair of numbers, got {value!r}") from None
    above_low = a > low if low_open else a >= low
    if not (math.isfinite(a) and math.isfinite(b) and above_low and a <= b <= high):
        lower = f"{low:g} {'<' if low_open else '<='} " if low > -math.inf else ""
        upper = f" <= {high:g}" if high < math.inf else " (finite)"
        raise ValueError(f"{where} must satisfy {lower}low <= high{upper}, got {value!r}")
    return a, b


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
