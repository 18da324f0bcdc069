"""DYffusion's two training objectives (`baselines.dyffusion`), one per stage.

`dyffusion_interpolator` (stage 1): per sample an interpolation time `i` is drawn uniformly from 1..h-1 and the
interpolator, given the input frames ending at `x_0` and the window's frame `x_h`, is scored against the window's
frame at `i` (the reference code's `InterpolationExperiment.get_loss`). Its stage is not a Stepper, so it validates
itself (`StageMetric`): the interpolation nRMSE over every whole time 1..h-1 of every complete window of each
validation trajectory, the error `best.ckpt` is chosen on.

`dyffusion_forecaster` (stage 2, the interpolator loaded frozen): per sample a schedule step `n` is drawn uniformly
from 0..N-1 (N = h + k) at time `i = i(n)`; the estimate `x̃_i` is the interpolator's between `x_0` and the true
`x_h` (without gradient), or `x_0` itself at `n = 0`; the forecaster `F(x̃_i, x_0, i)` is scored against `x_h`,
weighted `lambda_1`. The paper's second term (`lambda_2`, where `n + 1 < N`) interpolates between `x_0` and that
prediction one step on, `I(x_0, F(...), i(n + 1))`, and scores the forecaster again from there against `x_h`; as in
the reference code (`DYffusion.p_losses`) its gradient flows through the frozen interpolator's input into the first
prediction. The weights are the model's `reconstruction_weights`. Validation rolls out the whole model, as for any
forecaster.

Every draw (times, dropout masks) comes from the batch's own stream (`BatchRandomness`), so a resumed run draws what
an uninterrupted one would. Losses compare standardised frames.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pdebench.config import ObjectiveConfig
from pdebench.data.batch import TrajectoryBatch, WindowBatch
from pdebench.errors import InvalidSetting
from pdebench.forecast.forecaster import Forecaster
from pdebench.training.objectives import BatchRandomness, loss_function, register_objective


class DYffusionStage(BatchRandomness):
    """What both stages share: the window (`history` frames in, the `bundle = h` frames after them), the loss, the
    standardised batch, and the refusal of a net that is not DYffusion's."""

    targets = ("state",)
    requires = "interpolate"
    hint = "train DYffusion instead: experiment=<dataset>_dyffusion"

    def __init__(self, config: ObjectiveConfig) -> None:
        self.loss_fn = loss_function(config.loss)
        self.history, self.bundle = config.history, config.bundle

    def window_frames(self) -> tuple[int, int]:
        return self.history, self.bundle

    @staticmethod
    def standardised(forecaster: Forecaster, batch: WindowBatch) -> tuple[Tensor, Tensor, Tensor]:
        """`(frames [B, C, history, *space], future [B, C, h, *space], cond [B, P])`, standardised."""
        norm = forecaster.normalizer
        return (norm.normalize_fields(batch.inputs), norm.normalize_fields(batch.targets),
                norm.normalize_params(batch.cond))


@register_objective("dyffusion_interpolator")
class Interpolation(DYffusionStage):
    """Stage 1: the interpolator against the window's frame at a random whole time 1..h-1."""

    metric = "interpolation_nrmse"
    goal = "min"

    def __init__(self, config: ObjectiveConfig) -> None:
        super().__init__(config)
        if self.bundle < 2:
            raise InvalidSetting(f"objective.bundle={self.bundle} leaves DYffusion's interpolator no frame between x_0 "
                                 "and x_h; set objective.bundle to the horizon h >= 2")

    def loss(self, forecaster: Forecaster, batch: WindowBatch) -> Tensor:
        net = forecaster.net
        frames, future, cond = self.standardised(forecaster, batch)
        generator = self.generator(frames.device)
        batch_size = frames.shape[0]
        time = torch.randint(1, self.bundle, (batch_size,), device=frames.device, generator=generator)
        truth = future[torch.arange(batch_size, device=frames.device), :, time - 1].unsqueeze(2)  # [B, C, 1, *space]
        with net.random_stream(generator):
            prediction = net.interpolate(frames, future[:, :, -1:], time.to(frames.dtype), cond)
        return self.loss_fn(prediction, truth)

    def validation_errors(self, forecaster: Forecaster, batch: TrajectoryBatch) -> Tensor:
        """`[B]`: per validation trajectory, the nRMSE `||I - x|| / ||x||` of the interpolations at times 1..h-1 of
        its complete windows (starting every h model steps), over all fields, in standardised units. Dropout masks
        are seeded by the trajectories' indices, so an epoch's score does not depend on the training stream."""
        net, norm = forecaster.net, forecaster.normalizer
        frames = norm.normalize_fields(batch.frames)
        cond = norm.normalize_params(batch.cond)
        span = self.history + self.bundle
        starts = range(0, frames.shape[2] - span + 1, self.bundle)
        if not starts:
            raise ValueError(f"validation trajectories of {frames.shape[2]} model frames hold no window of {span}")
        error = frames.new_zeros(frames.shape[0])
        reference = frames.new_zeros(frames.shape[0])
        seed = int(batch.index[0]) if batch.index.numel() else 0
        generator = torch.Generator(device=frames.device).manual_seed(seed)
        with torch.no_grad(), net.random_stream(generator):
            for start in starts:
                inputs = frames[:, :, start:start + self.history]
                last = frames[:, :, start + span - 1:start + span]
                for time in range(1, self.bundle):
                    truth = frames[:, :, start + self.history + time - 1:start + self.history + time]
                    guess = net.interpolate(inputs, last, frames.new_full((frames.shape[0],), float(time)), cond)
                    error += (guess - truth).pow(2).flatten(1).sum(dim=1)
                    reference += truth.pow(2).flatten(1).sum(dim=1)
        return (error / reference.clamp_min(torch.finfo(reference.dtype).tiny)).sqrt()


@register_objective("dyffusion_forecaster")
class Forecasting(DYffusionStage):
    """Stage 2: the forecaster against `x_h` from the interpolator's estimate at a random schedule step (and the
    paper's second, one-step-on term)."""

    def loss(self, forecaster: Forecaster, batch: WindowBatch) -> Tensor:
        net = forecaster.net
        frames, future, cond = self.standardised(forecaster, batch)
        generator = self.generator(frames.device)
        batch_size, last = frames.shape[0], future[:, :, -1:]
        step = torch.randint(0, net.n_steps, (batch_size,), device=frames.device, generator=generator)
        time = net.step_time(step.cpu()).to(device=frames.device, dtype=frames.dtype)
        first_weight, second_weight = net.reconstruction_weights
        with net.random_stream(generator):
            with torch.no_grad():
                interpolated = net.interpolate(frames, last, time, cond)
            start = frames[:, :, -1:]
            at_zero = (step == 0).view(-1, *([1] * (start.dim() - 1)))
            estimate = torch.where(at_zero, start, interpolated)
            prediction = net.forecast(estimate, frames, time, cond)
            loss = first_weight * self.loss_fn(prediction, last)
            rows = step < net.n_steps - 1
            if second_weight > 0 and bool(rows.any()):
                next_time = net.step_time(step[rows].cpu() + 1).to(device=frames.device, dtype=frames.dtype)
                again = net.interpolate(frames[rows], prediction[rows], next_time, cond[rows])
                second = net.forecast(again, frames[rows], next_time, cond[rows])
                loss = loss + second_weight * self.loss_fn(second, last[rows])
        return loss
