"""`NetSpec`: what the data and the objective fix about a net, handed to every model builder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from pdebench.data.grid import Grid
from pdebench.errors import InvalidSetting


def fold_frames(frames: Tensor) -> Tensor:
    """`[B, C, T, *space]` -> `[B, C * T, *space]`: frames folded into channels, field-major (channel `c * T + t`),
    the layout every net of the zoo takes and returns (`NetSpec`)."""
    return frames.reshape(frames.shape[0], frames.shape[1] * frames.shape[2], *frames.shape[3:])


def unfold_frames(channels: Tensor, n_fields: int) -> Tensor:
    """`[B, n_fields * T, *space]` -> `[B, n_fields, T, *space]`, the inverse of `fold_frames`."""
    if channels.shape[1] % n_fields:
        raise ValueError(f"{channels.shape[1]} channels do not split into {n_fields} fields")
    return channels.reshape(channels.shape[0], n_fields, channels.shape[1] // n_fields, *channels.shape[2:])


@dataclass(frozen=True)
class NetSpec:
    """Fields, frames in and out, conditioning and grid of a net.

    A net maps `x: [B, len(fields) * history, *grid.shape]` and `cond: [B, len(conditioning)]` to
    `[B, len(fields) * bundle, *grid.shape]`: history and bundled frames are folded into channels
    (field-major: channel `c * history + t`). Conditioning values arrive standardised.
    """

    fields: tuple[str, ...]
    history: int
    bundle: int
    conditioning: tuple[str, ...]
    grid: Grid

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", tuple(self.fields))
        object.__setattr__(self, "conditioning", tuple(self.conditioning))
        if not self.fields:
            raise ValueError("a NetSpec needs at least one field")
        for name in ("history", "bundle"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidSetting(f"objective.{name} must be a positive integer, got {value!r}")

    @property
    def n_fields(self) -> int:
        return len(self.fields)

    @property
    def n_cond(self) -> int:
        return len(self.conditioning)

    @property
    def spatial_dims(self) -> int:
        return self.grid.ndim

    @property
    def in_channels(self) -> int:
        return self.n_fields * self.history

    @property
    def out_channels(self) -> int:
        return self.n_fields * self.bundle

    def to_record(self) -> dict[str, Any]:
        """Plain containers that `from_record` rebuilds (stored in checkpoints)."""
        return {"fields": list(self.fields), "history": self.history, "bundle": self.bundle,
                "conditioning": list(self.conditioning), "grid": self.grid.to_record()}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> NetSpec:
        return cls(tuple(record["fields"]), int(record["history"]), int(record["bundle"]),
                   tuple(record["conditioning"]), Grid.from_record(record["grid"]))
