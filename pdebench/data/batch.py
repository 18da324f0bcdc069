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
    trajectory index in the split file. labels `[B, C, K, *space]`: the stored frames at the K offsets the window
    was asked for (`WindowSpec.label_offsets`, in stored frames from the last input frame), finer than a model step
    when `frame_stride > 1`; None when none were asked for.
    """

    inputs: Tensor
    targets: Tensor
    cond: Tensor
    step_time: Tensor
    index: Tensor
    labels: Tensor | None = None


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


def _stack(name: str, values: list[Tensor | None]) -> Tensor | None:
    """The values of one field stacked along a new leading axis; None if every item leaves the field out."""
    missing = sum(value is None for value in values)
    if missing == len(values):
        return None
    if missing:
        raise ValueError(f"cannot collate field '{name}': {missing} of {len(values)} items have none; expected every "
                         "item to hold it or none")
    return torch.stack(values)  # type: ignore[arg-type]


def collate(items: list[BatchT] | BatchT) -> BatchT:
    """Stack items (each a batch dataclass of unbatched tensors) along a new leading batch axis; an optional field
    (`WindowBatch.labels`) stays None when no item holds it. A batch a dataset's `__getitems__` already gathered
    passes through unchanged."""
    if isinstance(items, WindowBatch | TrajectoryBatch):
        return items
    if not items:
        raise ValueError("cannot collate an empty list of items")
    cls = type(items[0])
    return cls(**{f.name: _stack(f.name, [getattr(item, f.name) for item in items]) for f in fields(cls)})
