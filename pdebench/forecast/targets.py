"""What a net predicts: the next states, a scaled difference, or a rate of change (standardised units, except the
raw difference, which is scaled in the data's own units).

A `Target` turns (standardised) frames into the net's label (`encode`) and a net output back into the next frames
(`advance`). Frames are `[B, C, T, *space]`, one model step apart; the last input frame `inputs[:, :, -1:]` is the
current state u(t). `label_frames(bundle)` says which model frames `encode` reads around it (`past` input frames
before the current one, `future` frames after it), and `label_offsets(bundle)` which stored frames, in stored frames
from the current state, it reads from `labels` (a finite difference finer than the model step), so that a training
window can be sized to hold them (`pdebench.data.dataset.WindowSpec`).

* `state`: the net outputs the next `bundle` states.
* `difference`: the net outputs `(u(t + k) - u(t)) / scale`, k = 1..bundle, the difference of standardised states.
* `raw_difference`: the same with the difference in the data's own units (before standardisation), as PDE-Refiner's
  public code divides the raw KS difference by 0.3; in standardised units, `difference` with the scale
  `scale / std` of each field (std: the field's train std, read from the forecaster's normaliser).
* `derivative`: the net outputs `du/ds / scale`, the rate of change per model step (s = t / step_time) at the
  current state, labelled by a finite difference of the stored frames (order 1: forward; 2 and 4: central) with a
  spacing of `fd_spacing` stored intervals (1: the finest the data holds, `frame_stride` times finer than a model
  step, so the truncation error is `frame_stride**order` times smaller than a stencil on the model frames). At
  inference it is integrated over one model step by `euler`, `heun`, `rk4` or `ab2` in `substeps` equal substeps
  (as in "Predicting Change, Not States"; see `pdebench.forecast.integrators`; ab2 carries its last rate from one
  model step to the next within a rollout). Each integrator stage calls the net again on the window whose last
  frame is the stage state (earlier history frames are kept). One output frame per call: it needs
  `objective.bundle=1`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import torch
from torch import Tensor

from pdebench.config import ObjectiveConfig, is_whole_number, typed_settings
from pdebench.data.normalization import Normalizer
from pdebench.errors import InvalidSetting
from pdebench.forecast.integrators import MULTISTEP, integrator
from pdebench.forecast.rollout_state import current_rollout

NetCall = Callable[[Tensor], Tensor]  # standardised window [B, C, history, *space] -> raw net output


class Target(Protocol):
    name: str

    def label_frames(self, bundle: int) -> tuple[int, int]:
        """`(past, future)`: input frames before the current state and frames after it that `encode` reads."""
        ...

    def label_offsets(self, bundle: int) -> tuple[int, ...]:
        """Stored-frame offsets from the current state of the frames `encode` reads from `labels` (empty: none)."""
        ...

    def encode(self, inputs: Tensor, targets: Tensor, labels: Tensor | None = None) -> Tensor:
        """The label `[B, C, bundle, *space]` a net is trained to output for these (standardised) frames.

        `inputs` ends with the current state the net sees and holds at least `past + 1` frames; `targets` starts one
        model step later and holds at least `future` frames; `labels [B, C, K, *space]` holds the true stored frames
        at `label_offsets`, in that order.
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

    def label_offsets(self, bundle: int) -> tuple[int, ...]:
        return ()

    def encode(self, inputs: Tensor, targets: Tensor, labels: Tensor | None = None) -> Tensor:
        return targets

    def decode(self, inputs: Tensor, output: Tensor) -> Tensor:
        return output

    def advance(self, inputs: Tensor, output: Tensor, net: NetCall) -> Tensor:
        return self.decode(inputs, output)


class DifferenceTarget:
    """The net outputs `(u(t + k) - u(t)) / scale` for k = 1..bundle, standardised units, u(t) the last input.

    Here the difference is taken between standardised states, so `scale` is in units of each field's std;
    `RawDifferenceTarget` applies it to the data's own units instead, as PDE-Refiner and its MSE baseline do on KS
    (0.3 there).
    """

    name = "difference"

    def __init__(self, scale: float) -> None:
        if not scale > 0:
            raise InvalidSetting(f"objective.target_scale must be positive, got {scale}")
        self.scale = float(scale)

    def label_frames(self, bundle: int) -> tuple[int, int]:
        return 0, bundle

    def label_offsets(self, bundle: int) -> tuple[int, ...]:
        return ()

    def encode(self, inputs: Tensor, targets: Tensor, labels: Tensor | None = None) -> Tensor:
        return (targets - inputs[:, :, -1:]) / self.scale

    def decode(self, inputs: Tensor, output: Tensor) -> Tensor:
        return inputs[:, :, -1:] + self.scale * output

    def advance(self, inputs: Tensor, output: Tensor, net: NetCall) -> Tensor:
        return self.decode(inputs, output)


class RawDifferenceTarget(DifferenceTarget):
    """The net outputs `(u(t + k) - u(t)) / scale` for k = 1..bundle with u in the data's own units (before
    standardisation): the scale is applied where PDE-Refiner's public code applies it (0.3 on raw KS values).

    Frames in and out are standardised, so per field this is the `difference` target with the scale
    `scale / std`, std the field's train std, read from the forecaster's normaliser (`bind_normalizer`, which the
    Forecaster calls; the std follows the normaliser's device, dtype and loaded statistics). A label then grows
    with std: a refinement step's noise of std sigma meets a signal `rms(u(t + 1) - u(t)) / scale`, not that
    divided by std.
    """

    name = "raw_difference"

    def __init__(self, scale: float) -> None:
        super().__init__(scale)
        self.normalizer: Normalizer | None = None  # bound by the forecaster

    def bind_normalizer(self, normalizer: Normalizer) -> None:
        """Read each field's std from `normalizer` (its `field_std [C]`) from now on."""
        self.normalizer = normalizer

    def field_scale(self, like: Tensor) -> Tensor:
        """`scale / std` per field, `[1, C, 1, ...]` to broadcast over frames shaped like `like` `[B, C, T, *space]`."""
        if self.normalizer is None:
            raise ValueError("objective.target=raw_difference applies its scale to the data's own units, so it needs "
                             "the train statistics: use it inside a Forecaster, which binds its normaliser")
        std = self.normalizer.field_std.to(device=like.device, dtype=like.dtype)
        return (self.scale / std).view(1, -1, *([1] * (like.dim() - 2)))

    def encode(self, inputs: Tensor, targets: Tensor, labels: Tensor | None = None) -> Tensor:
        return (targets - inputs[:, :, -1:]) / self.field_scale(targets)

    def decode(self, inputs: Tensor, output: Tensor) -> Tensor:
        return inputs[:, :, -1:] + self.field_scale(output) * output


# Finite-difference stencils for the first derivative at offset 0 on a unit-spaced grid: offsets and weights.
# Order 1 is the forward difference (what a difference target of one step is); 2 and 4 are central.
STENCILS: dict[int, tuple[tuple[int, ...], tuple[float, ...]]] = {
    1: ((0, 1), (-1.0, 1.0)),
    2: ((-1, 1), (-0.5, 0.5)),
    4: ((-2, -1, 1, 2), (1.0 / 12.0, -8.0 / 12.0, 8.0 / 12.0, -1.0 / 12.0)),
}


class DerivativeTarget:
    """The net outputs `du/ds / scale` at the current state (s in model steps), integrated at inference.

    Label: the finite difference of order `fd_order` (1, 2 or 4) of the true standardised stored frames around the
    current state, `fd_spacing` stored intervals apart (`frame_stride` stored intervals make one model step, so
    the rate per model step is the stencil sum times `frame_stride / fd_spacing`), plus `u(t) - v`, the gap between
    the true current state u(t) and the state v the net sees (noisy inputs, or a state reached on the net's own
    outputs): the rate that, held over one model step, carries v back onto the true trajectory, so the net learns
    to correct noise as a `difference` target does. Without noise or unrolling the gap is 0 and the label is the
    finite difference alone.

    Inference: `integrator` (euler, heun, rk4, ab2) over one model step in `substeps` substeps; the net is called
    once per stage (rk4 with 2 substeps: 8 calls per model step, the first reusing the output already computed).
    ab2 carries the rate of its last substep to the next model step of the same rollout (`rollout_state`), so it
    costs `substeps` calls per model step after a rollout's first, which starts with one Heun substep (one more).
    With fd_order=1, `fd_spacing == frame_stride` (the model-step stencil), euler and one substep,
    `advance(encode(...))` gives back the stored next frame exactly.
    """

    name = "derivative"

    def __init__(self, scale: float = 1.0, fd_order: int = 1, integrator_name: str = "euler",
                 substeps: int = 1, fd_spacing: int = 1, frame_stride: int = 1) -> None:
        if not scale > 0:
            raise InvalidSetting(f"objective.target_scale must be positive, got {scale}")
        if isinstance(fd_order, bool) or fd_order not in STENCILS:
            raise InvalidSetting(f"objective.fd_order={fd_order!r} is not a finite-difference order the derivative "
                                 f"target offers; choose one of: {', '.join(map(str, STENCILS))}")
        if not (is_whole_number(substeps) and substeps >= 1):
            raise InvalidSetting(f"objective.substeps={substeps!r} is not valid: expected a positive number of "
                                 "integrator steps per model step")
        if not (is_whole_number(fd_spacing) and fd_spacing >= 1):
            raise InvalidSetting(f"objective.fd_spacing={fd_spacing!r} is not valid: expected a positive number of "
                                 "stored frame intervals between the finite-difference stencil's points")
        if not (is_whole_number(frame_stride) and frame_stride >= 1):
            raise InvalidSetting(f"frame_stride={frame_stride!r} is not valid: expected a positive number of stored "
                                 "frames per model step")
        self.scale = float(scale)
        self.fd_order = int(fd_order)
        self.integrator_name = integrator_name
        self.integrate = integrator(integrator_name)
        self.substeps = substeps
        self.fd_spacing, self.frame_stride = fd_spacing, frame_stride
        offsets, weights = STENCILS[self.fd_order]
        stencil = dict(zip((o * fd_spacing for o in offsets), weights, strict=True))
        # the stencil's stored-frame offsets and the current state (offset 0, for the gap u(t) - v), in order
        self.offsets = tuple(sorted({*stencil, 0}))
        self.weights = tuple(stencil.get(o, 0.0) for o in self.offsets)
        self.steps_per_spacing = frame_stride / fd_spacing  # 1 / (stencil spacing in model steps)

    def label_frames(self, bundle: int) -> tuple[int, int]:
        if bundle != 1:
            raise InvalidSetting(f"objective.target=derivative predicts the rate of change at one state, so it needs "
                                 f"objective.bundle=1, got objective.bundle={bundle}")
        return 0, 0

    def label_offsets(self, bundle: int) -> tuple[int, ...]:
        self.label_frames(bundle)
        return self.offsets

    def encode(self, inputs: Tensor, targets: Tensor, labels: Tensor | None = None) -> Tensor:
        if labels is None or labels.shape[2] != len(self.offsets):
            held = "none" if labels is None else f"{labels.shape[2]}"
            raise ValueError(f"objective.target=derivative reads its label from the {len(self.offsets)} stored frames "
                             f"at offsets {list(self.offsets)} around the current state, but the batch holds {held}; "
                             "size the training windows with window_spec")
        rate = sum(weight * labels[:, :, i:i + 1] for i, weight in enumerate(self.weights) if weight)
        gap = labels[:, :, self.offsets.index(0):self.offsets.index(0) + 1] - inputs[:, :, -1:]
        return (self.steps_per_spacing * rate + gap) / self.scale

    def advance(self, inputs: Tensor, output: Tensor, net: NetCall) -> Tensor:
        earlier = inputs[:, :, :-1]

        def rate(state: Tensor) -> Tensor:
            window = torch.cat([earlier, state], dim=2) if earlier.shape[2] else state
            return self.scale * net(window)

        state, rate0 = inputs[:, :, -1:], self.scale * output
        multistep = MULTISTEP.get(self.integrator_name)
        if multistep is None:
            return self.integrate(state, rate, self.substeps, rate0=rate0)
        return self.advance_multistep(multistep, state, rate, rate0)

    def advance_multistep(self, multistep: Callable[..., tuple[Tensor, Tensor]], state: Tensor,
                          rate: Callable[[Tensor], Tensor], rate0: Tensor) -> Tensor:
        """One model step of a multistep integrator, from the rate this target carried on the previous model step of
        the running rollout (none outside a rollout, or on its first step: the integrator starts itself), storing the
        rate the next step needs. The carried rate is `[B, C, 1, *space]`: each trajectory's own."""
        rollout_state = current_rollout()
        previous = None if rollout_state is None else rollout_state.get(self)
        if previous is not None and previous.shape != state.shape:
            raise ValueError(f"the {self.integrator_name} integrator carried a rate of shape {tuple(previous.shape)} "
                             f"from the previous model step of this rollout, but the state now has shape "
                             f"{tuple(state.shape)}: a rollout must keep its batch")
        state, carried = multistep(state, rate, self.substeps, rate0=rate0, previous=previous)
        if rollout_state is not None:
            rollout_state.put(self, carried)
        return state


TARGETS = ("state", "difference", "raw_difference", "derivative")


def make_target(name: str, scale: float = 1.0, fd_order: int = 1, integrator_name: str = "euler",
                substeps: int = 1, fd_spacing: int = 1, frame_stride: int = 1) -> Target:
    """The target called `name` (`objective.target`), with `scale` for the differences and `derivative`, and the
    finite-difference order and spacing (stored intervals), integrator and substeps of `derivative`, whose label
    also needs the data's `frame_stride` (stored frames per model step)."""
    if name == "state":
        return StateTarget()
    if name == "difference":
        return DifferenceTarget(scale)
    if name == "raw_difference":
        return RawDifferenceTarget(scale)
    if name == "derivative":
        return DerivativeTarget(scale, fd_order, integrator_name, substeps, fd_spacing, frame_stride)
    raise InvalidSetting(f"objective.target={name!r} is not a known target; choose one of: {', '.join(TARGETS)}")


def objective_config(objective: ObjectiveConfig | Mapping[str, Any]) -> ObjectiveConfig:
    """An `objective` section as its typed config: a plain one (a checkpoint's hyper-parameters) is typed again,
    each setting it lacks (a checkpoint written before that setting existed) taking its schema default."""
    return typed_settings(ObjectiveConfig, objective, "objective")


def target_from_config(objective: ObjectiveConfig | Mapping[str, Any], frame_stride: int = 1) -> Target:
    """The target an `objective` config section describes on data with `frame_stride` stored frames per model step
    (only training reads a derivative label's spacing); a plain section is typed first (`objective_config`)."""
    objective = objective_config(objective)
    return make_target(objective.target, objective.target_scale, objective.fd_order, objective.integrator,
                       objective.substeps, objective.fd_spacing, frame_stride)
