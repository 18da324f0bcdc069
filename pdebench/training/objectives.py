"""Training objectives: `loss(forecaster, batch) -> scalar Tensor`, chosen by `objective.name`.

An objective owns everything between a batch and the loss (standardising, unrolling, noise, the label), so one
LightningModule trains every recipe; nothing here assumes one net call per step. Losses compare tensors
`[B, C, bundle, *space]` in the net's (standardised) units. An objective registers itself under its
`objective.name` with `@register_objective("name")`, from whichever file holds it.

Built in: `onestep` (one net call on the true window), `pushforward` (MP-PDE: 0..min(epoch, unroll_steps)
no-grad steps on the net's own outputs, then one gradient step), `unrolled` (backpropagation through
`unroll_steps` steps), each with `history`, `bundle`, any target (`state`, `difference`, `derivative`), input noise
(`input_noise_std`) and the loss `mse` or `rel_l2`; and `pderefiner` (PDE-Refiner's, for `model=pderefiner`).

Training windows are sized by the objective (`window_spec`): a batch's `inputs` hold the `history` frames the net
sees (more if a target's label reads earlier model frames), its `targets` every model frame after the current state
that the longest unroll and its last label read, and its `labels` the stored frames a finer label reads (the
derivative target's finite difference) around every state a gradient step may start from: the current one, and
with pushforward or unrolled training each state reached after j <= `unroll_steps` model steps. `check_window_fits`
refuses, naming the keys, an objective the stored trajectories are too short for; `make_objective` refuses every
other misfit (unknown choices, a setting the objective would ignore, a target it cannot train) before any data is
read.

Per-sample random draws (input noise; PDE-Refiner's refinement steps and noise) come from a stream of their own per
optimisation step and rank (`noise_seed(seed, rank, step)`, set by the training loop through `start_batch`):
data-parallel ranks perturb their samples independently, and a resumed run draws exactly what an uninterrupted one
would (the step is restored; no generator state to save). Pushforward's number of unrolled steps stays on the
global torch stream, identical on every rank, so that ranks unroll in step.

A net may name the one objective it can be trained with (`training_objective`, e.g. PDE-Refiner's), and an
objective may need a net with particular methods; `check_objective_fits` refuses a mismatch in one sentence.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch
from torch import Tensor, nn

from pdebench.config import ObjectiveConfig
from pdebench.data.batch import WindowBatch
from pdebench.data.dataset import DatasetError, WindowSpec
from pdebench.data.netspec import fold_frames
from pdebench.errors import InvalidSetting, UnknownName
from pdebench.forecast.forecaster import Forecaster
from pdebench.forecast.rollout_state import rollout_scope
from pdebench.forecast.targets import TARGETS, target_from_config
from pdebench.registry import Registry


def mse_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error over every element."""
    return (pred - target).pow(2).mean()


def relative_l2_loss(pred: Tensor, target: Tensor, eps: float = 1e-8) -> Tensor:
    """Per-sample ||pred - target|| / ||target||, averaged over the batch."""
    diff = (pred - target).flatten(1).norm(dim=1)
    return (diff / (target.flatten(1).norm(dim=1) + eps)).mean()


LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"mse": mse_loss, "rel_l2": relative_l2_loss}


def loss_function(name: str) -> Callable[[Tensor, Tensor], Tensor]:
    if name not in LOSSES:
        raise InvalidSetting(f"objective.loss={name!r} is not a known loss; choose one of: {', '.join(LOSSES)}")
    return LOSSES[name]


class Objective(Protocol):
    def loss(self, forecaster: Forecaster, batch: WindowBatch) -> Tensor: ...


ObjectiveFactory = Callable[[ObjectiveConfig], Objective]
OBJECTIVES: Registry[ObjectiveFactory] = Registry("objective")


def register_objective(name: str) -> Callable[[ObjectiveFactory], ObjectiveFactory]:
    """Decorator adding an objective (a class built from the whole typed `objective` config) under
    `objective.name`."""

    def wrap(factory: ObjectiveFactory) -> ObjectiveFactory:
        return OBJECTIVES.add(name, factory)

    return wrap


def noise_seed(seed: int, rank: int, step: int) -> int:
    """The seed of the random draws (input noise, refinement noise) of optimisation step `step` on data-parallel rank
    `rank` of a run seeded `seed`: a pure function (NumPy's SeedSequence hash of the three), distinct for every rank
    and step, so ranks never share a noise pattern and a resumed run, whose step counter is restored, draws the noise
    an uninterrupted one would."""
    return int(np.random.SeedSequence((int(seed), int(rank), int(step))).generate_state(1, dtype=np.uint64)[0])


class BatchRandomness:
    """The random stream of one training batch: seeded by `start_batch` (the training loop passes `noise_seed(seed,
    rank, step)`), created on the device of the first tensor drawn; without `start_batch` (direct calls) draws come
    from the global torch stream."""

    _batch_seed: int | None = None
    _batch_generator: torch.Generator | None = None

    def start_batch(self, seed: int) -> None:
        """Draw this batch's random numbers from a stream seeded `seed` (see `noise_seed`)."""
        self._batch_seed, self._batch_generator = int(seed), None

    def generator(self, device: torch.device) -> torch.Generator | None:
        """The batch's generator on `device`, or None (the global stream) when no batch stream was started."""
        if self._batch_seed is None:
            return None
        if self._batch_generator is None or self._batch_generator.device != device:
            self._batch_generator = torch.Generator(device=device).manual_seed(self._batch_seed)
        return self._batch_generator

    def gaussian_like(self, like: Tensor) -> Tensor:
        """Standard normal noise shaped like `like`, from the batch's stream."""
        return torch.randn(like.shape, generator=self.generator(like.device), device=like.device, dtype=like.dtype)


class WindowedObjective(BatchRandomness):
    """What every built-in objective shares: `history`, `bundle`, the loss, input noise, the target's label frames.

    `window_frames()` is the training window it reads in model frames, `(input frames, frames after them)`: at least
    `history` inputs, more when the target's label reads earlier model frames, and enough later frames for every step
    it unrolls plus the last label; `window_spec(frame_stride)` adds the stored label frames (`label_offsets`) around
    every state a gradient step may start from. Input noise (`input_noise_std`, standardised units) is added to the
    frames the net sees on every step that takes a gradient, and the label is formed against the same noisy frames,
    so the net learns to land on the true next state (for `difference` and `derivative`: to correct the noise).
    """

    targets = TARGETS  # the targets this objective can train
    uses = ("input_noise_std",)  # the optional objective settings it reads (see `check_settings_used`)

    def __init__(self, config: ObjectiveConfig) -> None:
        self.loss_fn = loss_function(config.loss)
        self.history, self.bundle = config.history, config.bundle
        self.noise_std = float(config.input_noise_std)
        self.unroll_steps = config.unroll_steps
        self.target = target_from_config(config)
        self.label_past, self.label_future = self.target.label_frames(self.bundle)

    @property
    def context(self) -> int:
        """Input frames a step reads: the net's `history`, or more if the label looks further back."""
        return max(self.history, self.label_past + 1)

    def steps_after_first(self) -> int:
        """Model steps the longest unroll takes before its last net call (0 for one-step training)."""
        return 0

    def window_frames(self) -> tuple[int, int]:
        """`(inputs, targets)`: the model frames a training window holds before and after the current state."""
        return self.context, self.steps_after_first() * self.bundle + self.label_future

    def label_offsets(self, frame_stride: int) -> tuple[int, ...]:
        """Stored-frame offsets, from the window's current state, of the label frames of every state a gradient step
        may start from (j = 0..steps_after_first model steps later), grouped by j: `batch.labels[:, :, j*K:(j+1)*K]`
        are the K frames around the state j model steps on."""
        per_state = self.target.label_offsets(self.bundle)  # in stored frames whatever the frame_stride
        shift = self.bundle * frame_stride
        return tuple(o + j * shift for j in range(self.steps_after_first() + 1) for o in per_state)

    def window_spec(self, frame_stride: int) -> WindowSpec:
        """The training window on data with `frame_stride` stored frames per model step."""
        return WindowSpec(*self.window_frames(), frame_stride, self.label_offsets(frame_stride))

    def noisy(self, frames: Tensor) -> Tensor:
        """`frames` plus Gaussian noise of std `input_noise_std` (unchanged when it is 0), drawn on `frames`' device
        from the batch's own stream (`start_batch`)."""
        if self.noise_std <= 0:
            return frames
        return frames + self.noise_std * self.gaussian_like(frames)

    @staticmethod
    def state_labels(forecaster: Forecaster, batch: WindowBatch, state: int) -> Tensor | None:
        """The standardised label frames `[B, C, K, *space]` around the state `state` model steps after the window's
        current state (None when the target reads none)."""
        count = len(forecaster.target.label_offsets(forecaster.bundle))
        if not count:
            return None
        held = 0 if batch.labels is None else batch.labels.shape[2]
        if held < (state + 1) * count:
            raise ValueError(f"objective.target={forecaster.target.name} needs {count} label frames around the state "
                             f"{state} model steps on, but the batch holds {held} label frames in all; size the "
                             "training windows with window_spec")
        return forecaster.normalizer.normalize_fields(batch.labels[:, :, state * count:(state + 1) * count])

    def unrolled_loss(self, forecaster: Forecaster, batch: WindowBatch, free_steps: int, grad_steps: int) -> Tensor:
        """`free_steps` model steps on the net's own outputs without gradient, then `grad_steps` steps whose losses
        (averaged) backpropagate through every one of them; each step may call the net several times (a
        derivative target's integrator), and the steps form one rollout (`rollout_scope`), so ab2 carries its last
        rate from step to step as it does at inference."""
        norm, target, history = forecaster.normalizer, forecaster.target, forecaster.history
        past, future = target.label_frames(forecaster.bundle)
        context = max(history, past + 1)
        truth = norm.normalize_fields(torch.cat([batch.inputs, batch.targets], dim=2))
        cond = norm.normalize_params(batch.cond)
        frames = truth[:, :, : batch.inputs.shape[2]]
        with rollout_scope():  # a multistep integrator (ab2) carries its rate from step to step, as in a rollout
            if free_steps:
                with torch.no_grad():
                    for _ in range(free_steps):
                        step_frames = forecaster.forward_normalized(frames[:, :, -history:], cond)
                        frames = torch.cat([frames, step_frames], dim=2)
            total = truth.new_zeros(())
            for step in range(grad_steps):
                now = frames.shape[2]  # index in `truth` of the first frame after the current state
                window = self.noisy(frames[:, :, -context:])
                labels = self.state_labels(forecaster, batch, free_steps + step)
                label = target.encode(window, truth[:, :, now: now + future], labels)
                output = forecaster.net_output(window[:, :, -history:], cond)
                total = total + self.loss_fn(output, label)
                if step + 1 < grad_steps:
                    frames = torch.cat([frames, forecaster.advance(window[:, :, -history:], output, cond)], dim=2)
        return total / grad_steps


@register_objective("onestep")
class OneStep(WindowedObjective):
    """One call of the net on the true input window, compared with the label of the next `bundle` frames."""

    def loss(self, forecaster: Forecaster, batch: WindowBatch) -> Tensor:
        norm = forecaster.normalizer
        inputs = self.noisy(norm.normalize_fields(batch.inputs))
        label = forecaster.target.encode(inputs, norm.normalize_fields(batch.targets),
                                         self.state_labels(forecaster, batch, 0))
        net_inputs = inputs[:, :, -forecaster.history:]
        return self.loss_fn(forecaster.net_output(net_inputs, norm.normalize_params(batch.cond)), label)


@register_objective("pushforward")
class Pushforward(WindowedObjective):
    """MP-PDE's pushforward trick: per batch, draw k uniformly from 0..min(stage, unroll_steps), run k model steps
    on the net's own outputs without gradient, then take one gradient step from the state they reach, against the
    true frames there. The curriculum's stage is the epoch the training loop reports through `set_epoch` (MP-PDE's),
    or with `curriculum_fraction` f the share of the budget done, `floor(step / (f * max_steps))` (`set_step`), so
    that a budget shorter than one pass over the data still unrolls (MP-PDE's 20 epochs: f = 0.05)."""

    uses = ("input_noise_std", "unroll_steps", "curriculum_fraction")

    def __init__(self, config: ObjectiveConfig) -> None:
        super().__init__(config)
        if self.unroll_steps < 1:
            raise InvalidSetting(f"objective.unroll_steps={self.unroll_steps} gives pushforward no unrolled step; set "
                                 "objective.unroll_steps to at least 1 (MP-PDE: 1), or use objective=onestep")
        self.fraction = config.curriculum_fraction
        self.epoch = 0
        self.step = 0
        self.max_steps = -1
        self.last_steps = 0  # the k drawn for the latest batch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def set_step(self, step: int, max_steps: int) -> None:
        """The optimiser step about to be taken and the budget (`trainer.max_steps`), before each batch."""
        if self.fraction is not None and max_steps <= 0:
            raise InvalidSetting(f"objective.curriculum_fraction={self.fraction} needs a budget of optimiser steps; "
                                 f"set trainer.max_steps (it is {max_steps}) or leave curriculum_fraction null")
        self.step, self.max_steps = int(step), int(max_steps)

    def stage(self) -> int:
        """The curriculum's stage: the epoch, or the number of budget fractions done."""
        if self.fraction is None:
            return self.epoch
        return int(self.step // (self.fraction * self.max_steps))

    def steps_after_first(self) -> int:
        return self.unroll_steps

    def draw_steps(self) -> int:
        """k ~ U{0, ..., min(stage, unroll_steps)}, from the global torch stream (saved in checkpoints)."""
        most = min(self.stage(), self.unroll_steps)
        return int(torch.randint(0, most + 1, ()).item()) if most > 0 else 0

    def loss(self, forecaster: Forecaster, batch: WindowBatch) -> Tensor:
        self.last_steps = self.draw_steps()
        return self.unrolled_loss(forecaster, batch, free_steps=self.last_steps, grad_steps=1)


@register_objective("unrolled")
class Unrolled(WindowedObjective):
    """Backpropagation through time: `unroll_steps` model steps on the net's own outputs, the loss averaged over
    all of them and the gradient flowing through every step (unroll_steps=1 is one-step training)."""

    uses = ("input_noise_std", "unroll_steps")

    def __init__(self, config: ObjectiveConfig) -> None:
        super().__init__(config)
        if self.unroll_steps < 1:
            raise InvalidSetting(f"objective.unroll_steps={self.unroll_steps} gives unrolled training no step; set "
                                 "objective.unroll_steps to the number of steps to backpropagate through (>= 1)")

    def steps_after_first(self) -> int:
        return self.unroll_steps - 1

    def loss(self, forecaster: Forecaster, batch: WindowBatch) -> Tensor:
        return self.unrolled_loss(forecaster, batch, free_steps=0, grad_steps=self.unroll_steps)


@register_objective("pderefiner")
class Refinement(BatchRandomness):
    """PDE-Refiner's training (see `baselines.pderefiner`): per sample a refinement step k is drawn uniformly from
    0..K; step 0 predicts the label from an empty estimate, step k >= 1 predicts the unit noise added with std
    sigma_k to the label. One backbone call per batch; `loss` (mse) compares the output with its goal. The label is
    the forecaster's target: `raw_difference` (the scale in data units, as the public code has it) or `difference`
    (in units of each field's std), whose noise-to-signal ratios differ by the field's std (docs/models.md)."""

    targets = ("state", "difference", "raw_difference")
    requires = "refinement_pair"
    hint = "wrap it in PDE-Refiner instead: model=pderefiner model.backbone.name={model}"

    def __init__(self, config: ObjectiveConfig) -> None:
        self.loss_fn = loss_function(config.loss)

    def loss(self, forecaster: Forecaster, batch: WindowBatch) -> Tensor:
        norm, net = forecaster.normalizer, forecaster.net
        inputs = norm.normalize_fields(batch.inputs)
        label = fold_frames(forecaster.target.encode(inputs, norm.normalize_fields(batch.targets)))
        step = torch.randint(0, net.refinement_steps + 1, (label.shape[0],), device=label.device,
                             generator=self.generator(label.device))
        prediction, goal = net.refinement_pair(fold_frames(inputs), norm.normalize_params(batch.cond), label, step,
                                               self.gaussian_like(label))
        return self.loss_fn(prediction, goal)


# Optional objective settings: one set to anything but its schema default where nothing reads it is refused (a
# setting silently ignored is how a "conditioned" or "noisy" run ends up being neither). The objective says which of
# `OBJECTIVE_OPTIONS` it reads (`uses`); only the derivative target reads `DERIVATIVE_OPTIONS`.
OBJECTIVE_OPTIONS = ("unroll_steps", "input_noise_std", "curriculum_fraction")
DERIVATIVE_OPTIONS = ("fd_order", "fd_spacing", "integrator", "substeps")
_DEFAULTS = ObjectiveConfig()


def _is_set(config: ObjectiveConfig, key: str) -> bool:
    """Whether `objective.<key>` differs from its schema default (its "off" value)."""
    return getattr(config, key) != getattr(_DEFAULTS, key)


def check_settings_used(name: str, factory: ObjectiveFactory, config: ObjectiveConfig) -> None:
    """Refuse, naming the key, a setting that objective `name` or its target would ignore, and a target it cannot
    train."""
    target_from_config(config)  # a known target with valid settings
    supported = getattr(factory, "targets", ("state", "difference"))
    if config.target not in supported:
        raise InvalidSetting(f"objective.target={config.target} cannot be trained with objective.name={name}; choose "
                             f"one of: {', '.join(supported)}")
    uses = getattr(factory, "uses", ())
    for key in OBJECTIVE_OPTIONS:
        if key not in uses and _is_set(config, key):
            users = [n for n, f in OBJECTIVES.items() if key in getattr(f, "uses", ())]
            raise InvalidSetting(f"objective.{key}={getattr(config, key)} is not used by objective.name={name}; use it "
                                 f"with one of: {', '.join(users)}, or leave it at {getattr(_DEFAULTS, key)}")
    if config.target != "derivative":
        for key in DERIVATIVE_OPTIONS:
            if _is_set(config, key):
                raise InvalidSetting(f"objective.{key}={getattr(config, key)} only applies to "
                                     f"objective.target=derivative, not objective.target={config.target}; leave it at "
                                     f"{getattr(_DEFAULTS, key)}")


def make_objective(config: ObjectiveConfig) -> Objective:
    """The objective `config.name` built from the whole `objective` config; every setting is checked here (known
    names and choices, settings the objective reads), so a bad objective fails before any data is read."""
    if config.name not in OBJECTIVES:
        raise UnknownName(f"objective.name={config.name!r} is not a known objective; choose one of: "
                          f"{', '.join(OBJECTIVES)}")
    factory = OBJECTIVES[config.name]
    check_settings_used(config.name, factory, config)
    return factory(config)


def window_frames(config: ObjectiveConfig) -> tuple[int, int]:
    """`(inputs, targets)`: the model frames a training window of this objective holds before and after the current
    state; `(history, bundle)` for an objective that does not say."""
    return _window_frames(make_objective(config), config)


def _window_frames(objective: Objective, config: ObjectiveConfig) -> tuple[int, int]:
    frames = getattr(objective, "window_frames", None)
    return frames() if callable(frames) else (config.history, config.bundle)


def window_spec(config: ObjectiveConfig, frame_stride: int) -> WindowSpec:
    """The training window of this objective on data with `frame_stride` stored frames per model step: its model
    frames (`window_frames`) and the stored label frames its target reads around every state a gradient step may
    start from."""
    objective = make_objective(config)
    spec = getattr(objective, "window_spec", None)
    return spec(frame_stride) if callable(spec) else WindowSpec(*_window_frames(objective, config), frame_stride)


def check_window_fits(config: ObjectiveConfig, n_train_frames: int, frame_stride: int) -> None:
    """Refuse, in one sentence naming the keys, an objective whose training windows the stored train trajectories
    (`n_train_frames` stored frames, a model step every `frame_stride`) cannot hold: `history`, `bundle`,
    `unroll_steps` or a finite-difference stencil too long for them."""
    spec = window_spec(config, frame_stride)
    if spec.span <= n_train_frames:
        return
    inputs, targets = spec.history, spec.bundle
    keys = ["name", "history", "bundle"]
    keys += ["unroll_steps"] if _is_set(config, "unroll_steps") else []
    if config.target == "derivative":
        keys += ["target", "fd_order", "fd_spacing"]
    settings = ", ".join(f"objective.{key}={getattr(config, key)}" for key in keys)
    model_frames = (n_train_frames - 1) // frame_stride + 1
    if not spec.label_offsets:
        raise DatasetError(
            f"{settings} need training windows of {inputs + targets} model frames ({inputs} in, {targets} after), but "
            f"the train trajectories hold {model_frames} ({n_train_frames} stored frames, "
            f"frame_stride={frame_stride}); lower one of these settings or generate longer trajectories"
        )
    before, after = max(0, -min(spec.label_offsets)), max(0, max(spec.label_offsets))
    raise DatasetError(
        f"{settings} need training windows of {spec.span} stored frames ({inputs} model frames in, {targets} after, "
        f"frame_stride={frame_stride}, and label frames from {before} stored frames before to {after} after the "
        f"current state), but the train trajectories hold {n_train_frames} stored frames; lower one of these "
        "settings or generate longer trajectories"
    )


def check_objective_fits(objective_name: str, objective: Objective, net: nn.Module, model_name: str) -> None:
    """Refuse, in one sentence, a net trained with an objective it does not fit (e.g. PDE-Refiner with onestep)."""
    wanted = getattr(net, "training_objective", None)
    if wanted is not None and wanted != objective_name:
        raise InvalidSetting(f"model={model_name} is trained with objective={wanted}, not objective={objective_name}; "
                             f"pass objective={wanted}")
    required = getattr(objective, "requires", None)
    if required is not None and not callable(getattr(net, required, None)):
        hint = getattr(objective, "hint", "choose another objective").format(model=model_name)
        raise InvalidSetting(f"objective={objective_name} cannot train model={model_name}, whose net has no "
                             f"{required}(); {hint}")


# Objectives that live in modules of their own register when imported: import them here, so that every lookup by name
# (make_objective, window_spec) sees them whichever module the caller imported first.
from pdebench.training import dyffusion_objectives  # noqa: E402, F401
