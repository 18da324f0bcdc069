"""What a net predicts, in standardised units: the next states, a scaled difference, or a rate of change.

A `Target` turns (standardised) frames into the net's label (`encode`) and a net output back into the next frames
(`advance`). Frames are `[B, C, T, *space]`, one model step apart; the last input frame `inputs[:, :, -1:]` is the
current state u(t). `label_frames(bundle)` says which frames `encode` reads around it: `past` input frames before
the current one and `future` frames after it, so a training window can be sized to hold them.

* `state`: the net outputs the next `bundle` states.
* `difference`: the net outputs `(u(t + k) - u(t)) / scale`, k = 1..bundle.
* `derivative`: the net outputs `du/ds / scale`, the rate of change per model step (s = t / step_time) at the
  current state, labelled by a finite difference of the stored frames (order 1: forward; 2 and 4: central), and at
  inference integrated over one model step by `euler`, `heun`, `rk4` or `ab2` in `substeps` equal substeps (as in
  "Predicting Change, Not States"; see `pdebench.forecast.integrators`). Each integrator stage calls the net again
  on the window whose last frame is the stage state (earlier history frames are kept). One output frame per call:
  it needs `objective.bundle=1`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import torch
from torch import Tensor

from pdebench.forecast.integrators import integrator

NetCall = Callable[[Tensor], Tensor]  # standardised window [B, C, history, *space] -> raw net output


class Target(Protocol):
    name: str

    def label_frames(self, bundle: int) -> tuple[int, int]:
        """`(past, future)`: input frames before the current state and frames after it that `encode` reads."""
        ...

    def encode(self, inputs: Tensor, targets: Tensor) -> Tensor:
        """The label `[B, C, bundle, *space]` a net is trained to output for these (standardised) frames.

        `inputs` ends with the current state and holds at least `past + 1` frames; `targets` starts one model step
        later and holds at least `future` frames.
        """
        ...

    def advance(self, inputs: Tensor, output: Tensor, net: NetCall) -> Tensor:
        """The standardised next frames `[B, C, bundle, *space]` from the input window, the net's output on it, and
        `net` for any further calls the target needs (an integrator's stages)."""
        ...


class StateTarget:
    """The net outputs the next `bundle` standardised states."""

    name = "state"

    def label_frames(self, bundle: int) -> tuple[int, int]:
        return 0, bundle

    def encode(self, inputs: Tensor, targets: Tensor) -> Tensor:
        return targets

    def decode(self, inputs: Tensor, output: Tensor) -> Tensor:
        return output

    def advance(self, inputs: Tensor, output: Tensor, net: NetCall) -> Tensor:
        return self.decode(inputs, output)


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

    def label_frames(self, bundle: int) -> tuple[int, int]:
        return 0, bundle

    def encode(self, inputs: Tensor, targets: Tensor) -> Tensor:
        return (targets - inputs[:, :, -1:]) / self.scale

    def decode(self, inputs: Tensor, output: Tensor) -> Tensor:
        return inputs[:, :, -1:] + self.scale * output

    def advance(self, inputs: Tensor, output: Tensor, net: NetCall) -> Tensor:
        return self.decode(inputs, output)


# Finite-difference stencils for the first derivative at offset 0 on a unit-spaced grid: offsets and weights.
# Order 1 is the forward difference (what a difference target of one step is); 2 and 4 are central.
STENCILS: dict[int, tuple[tuple[int, ...], tuple[float, ...]]] = {
    1: ((0, 1), (-1.0, 1.0)),
    2: ((-1, 1), (-0.5, 0.5)),
    4: ((-2, -1, 1, 2), (1.0 / 12.0, -8.0 / 12.0, 8.0 / 12.0, -1.0 / 12.0)),
}


class DerivativeTarget:
    """The net outputs `du/ds / scale` at the current state (s in model steps), integrated at inference.

    Label: the finite difference of order `fd_order` (1, 2 or 4) of the standardised frames, one model step apart.
    Inference: `integrator` (euler, heun, rk4, ab2) over one model step in `substeps` substeps; the net is called
    once per stage (rk4 with 2 substeps: 8 calls per model step, the first reusing the output already computed).
    With fd_order=1, euler and one substep, `advance(encode(...))` gives back the stored next frame exactly.
    """

    name = "derivative"

    def __init__(self, scale: float = 1.0, fd_order: int = 1, integrator_name: str = "euler",
                 substeps: int = 1) -> None:
        if not scale > 0:
            raise ValueError(f"objective.target_scale must be positive, got {scale}")
        if isinstance(fd_order, bool) or fd_order not in STENCILS:
            raise ValueError(f"objective.fd_order={fd_order!r} is not a finite-difference order the derivative target "
                             f"offers; choose one of: {', '.join(map(str, STENCILS))}")
        if isinstance(substeps, bool) or not isinstance(substeps, int) or substeps < 1:
            raise ValueError(f"objective.substeps={substeps!r} is not valid: expected a positive number of integrator "
                             "steps per model step")
        self.scale = float(scale)
        self.fd_order = int(fd_order)
        self.integrator_name = integrator_name
        self.integrate = integrator(integrator_name)
        self.substeps = substeps
        offsets, weights = STENCILS[self.fd_order]
        self.offsets, self.weights = offsets, weights

    def label_frames(self, bundle: int) -> tuple[int, int]:
        if bundle != 1:
            raise ValueError(f"objective.target=derivative predicts the rate of change at one state, so it needs "
                             f"objective.bundle=1, got objective.bundle={bundle}")
        return max(0, -min(self.offsets)), max(self.offsets)

    def encode(self, inputs: Tensor, targets: Tensor) -> Tensor:
        frames = {0: inputs[:, :, -1:]}
        for offset in self.offsets:
            if offset < 0:
                frames[offset] = inputs[:, :, offset - 1:offset]
            elif offset > 0:
                frames[offset] = targets[:, :, offset - 1:offset]
        rate = sum(weight * frames[offset] for offset, weight in zip(self.offsets, self.weights, strict=True))
        return rate / self.scale

    def advance(self, inputs: Tensor, output: Tensor, net: NetCall) -> Tensor:
        earlier = inputs[:, :, :-1]

        def rate(state: Tensor) -> Tensor:
            window = torch.cat([earlier, state], dim=2) if earlier.shape[2] else state
            return self.scale * net(window)

        return self.integrate(inputs[:, :, -1:], rate, self.substeps, rate0=self.scale * output)


TARGETS = ("state", "difference", "derivative")


def make_target(name: str, scale: float = 1.0, fd_order: int = 1, integrator_name: str = "euler",
                substeps: int = 1) -> Target:
    """The target called `name` (`objective.target`), with `scale` for `difference` and `derivative`, and the
    finite-difference order, integrator and substeps of `derivative`."""
    if name == "state":
        return StateTarget()
    if name == "difference":
        return DifferenceTarget(scale)
    if name == "derivative":
        return DerivativeTarget(scale, fd_order, integrator_name, substeps)
    raise ValueError(f"objective.target={name!r} is not a known target; choose one of: {', '.join(TARGETS)}")


def target_from_config(objective: Mapping[str, Any]) -> Target:
    """The target an `objective` config section describes (keys absent from older checkpoints take defaults)."""
    return make_target(objective.get("target", "state"), objective.get("target_scale", 1.0),
                       objective.get("fd_order", 1), objective.get("integrator", "euler"),
                       objective.get("substeps", 1))
