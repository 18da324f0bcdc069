"""What a net predicts, in standardised units: the next states, or a scaled difference to the last input state.

A `Target` turns (standardised) input and target frames into the net's label (`encode`) and a net output back
into frames (`decode`). Frames are `[B, C, T, *space]`; the last input frame is `inputs[:, :, -1:]`.
Room is left for `derivative` (du/dt with an integrator), which needs the step time as well.
"""

from __future__ import annotations

from typing import Protocol

from torch import Tensor


class Target(Protocol):
    name: str

    def encode(self, inputs: Tensor, targets: Tensor) -> Tensor:
        """The label `[B, C, bundle, *space]` a net is trained to output for these (standardised) frames."""
        ...

    def decode(self, inputs: Tensor, output: Tensor) -> Tensor:
        """The standardised next frames `[B, C, bundle, *space]` a net output stands for."""
        ...


class StateTarget:
    """The net outputs the next `bundle` standardised states."""

    name = "state"

    def encode(self, inputs: Tensor, targets: Tensor) -> Tensor:
        return targets

    def decode(self, inputs: Tensor, output: Tensor) -> Tensor:
        return output


class DifferenceTarget:
    """The net outputs `(u(t + k) - u(t)) / scale` for k = 1..bundle, standardised units, u(t) the last input.

    PDE-Refiner's MSE baseline on KS uses scale 0.3 (in its data units); here the difference is taken between
    standardised states, so `scale` multiplies the field's std.
    """

    name = "difference"

    def __init__(self, scale: float) -> None:
        if not scale > 0:
            raise ValueError(f"objective.target_scale must be positive, got {scale}")
        self.scale = float(scale)

    def encode(self, inputs: Tensor, targets: Tensor) -> Tensor:
        return (targets - inputs[:, :, -1:]) / self.scale

    def decode(self, inputs: Tensor, output: Tensor) -> Tensor:
        return inputs[:, :, -1:] + self.scale * output


TARGETS = ("state", "difference")


def make_target(name: str, scale: float = 1.0) -> Target:
    """The target called `name` (`objective.target`), with `scale` for `difference`."""
    if name == "state":
        return StateTarget()
    if name == "difference":
        return DifferenceTarget(scale)
    raise ValueError(f"objective.target={name!r} is not a known target; choose one of: {', '.join(TARGETS)}")
