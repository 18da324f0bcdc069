"""What every numerical generator provides to the generation driver (`data_gen.generate`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

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
