"""Batches as small dataclasses instead of positional tuples: every consumer names what it reads.

Datasets return one item as the batch dataclass with unbatched tensors; `collate` stacks a list of them (pass it as
a DataLoader's `collate_fn`). Lightning moves dataclass batches to the device field by field.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TypeVar

import torch
from torch import Tensor


@dataclass
class WindowBatch:
    """Training windows, physical units.

    inputs `[B, C, history, *space]`, targets `[B, C, bundle, *space]` (the frames after the inputs, one model step
    apart), cond `[B, P]` per-trajectory parameters, step_time `[B]` time units per model step, index `[B]`
    trajectory index in the split file.
    """

    inputs: Tensor
    targets: Tensor
    cond: Tensor
    step_time: Tensor
    index: Tensor


@dataclass
class TrajectoryBatch:
    """Whole trajectories for rollouts, physical units.

    frames `[B, C, J, *space]` (J model frames), cond `[B, P]`, step_time `[B]` time units per model step,
    index `[B]` trajectory index in the split file (results are keyed by it).
    """

    frames: Tensor
    cond: Tensor
    step_time: Tensor
    index: Tensor


BatchT = TypeVar("BatchT", WindowBatch, TrajectoryBatch)


def collate(items: list[BatchT]) -> BatchT:
    """Stack items (each a batch dataclass of unbatched tensors) along a new leading batch axis."""
    if not items:
        raise ValueError("cannot collate an empty list of items")
    cls = type(items[0])
    return cls(**{f.name: torch.stack([getattr(item, f.name) for item in items]) for f in fields(cls)})
