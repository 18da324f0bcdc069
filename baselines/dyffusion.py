"""DYffusion (Cachay et al., NeurIPS 2023): a forecaster driven by a stochastic temporal interpolator.

Two nets of the zoo, each conditioned on the interpolation time `i` (appended to the data's conditioning as the
scalar `interpolation_time = i / h`, in [0, 1)):

* the interpolator `I(x_0, x_h, i)`: the `history` input frames ending at `x_0` and the frame `x_h` h model steps
  later in, the frame at `0 < i < h` out (one frame);
* the forecaster `F(x_i, x_0, i)`: an estimate of the frame at time `i` (and, with `forward_conditioning=data`, the
  input frames) in, `x_h` out.

The horizon `h` is the bundle (`objective.bundle`): one call of the net walks the schedule from `x_0` to `x_h` and
returns every frame on the way, `[B, n_fields * h, *space]` field-major, so a rollout advances `h` model steps a call.

Sampling (the paper's Algorithm 1, the reference code's `sample_loop`): with `extra_steps = k` auxiliary steps the
schedule has `N = h + k` steps n = 0..N-1 at interpolation times `i(n) = n / (k + 1)` for `n <= k` and `n - k` after
(k = 0: i(n) = n). Starting from `x_s = x_0`, each step predicts `x̂_h = F(x_s, x_0, i(s))` and, with `sampling=cold`,
moves to `x_s - I(x_0, x̂_h, i(s)) + I(x_0, x̂_h, i(s + 1))` (the first step, where `I(., ., 0) = x_0 = x_s`, moves to
`I(x_0, x̂_h, i(1))`); `sampling=naive` moves to `I(x_0, x̂_h, i(s + 1))`. The last step's `x̂_h` is the frame at h.
The frames at whole times `1..h-1` are the states reached there, or, with `refine_intermediate=true` (line 6 of the
algorithm), the interpolator's frames between `x_0` and the last `x̂_h`.

Stochasticity is the interpolator's dropout, kept on while sampling, as the paper's interpolator does
(`enable_interpolator_dropout`). Masks are drawn from the generator `sample(..., generator=)` passes (the
forecaster's `sample(..., seed=)` makes one), so a seed reproduces its samples exactly and two seeds differ. The zoo's
nets have no dropout of their own, so it is placed here, on the outputs of the backbone's activation layers outside
its conditioning embedding (the U-Net: both activations of every residual block and the head's, as the paper's U-Net
drops out inside its blocks) and on the output of every neuraloperator layer (SFNO, whose activations are
functional). The forecaster drops out the same way while training only.

Training takes two stages, each with its own objective (`pdebench.training.dyffusion_objectives`): the interpolator
first (`dyffusion_interpolator`), then the forecaster against the interpolator loaded from the first stage's
checkpoint and frozen (`dyffusion_forecaster`), as `conf/experiment/<dataset>_dyffusion.yaml` runs them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from neuralop.layers.fno_block import FNOBlocks
from torch import Tensor, nn

from baselines.layers import PerScalarEmbedding
from baselines.registry import MODELS, ModelConfig, PublishedSize, build_model, model_entry, register
from baselines.sampling import BatchedSampling
from pdebench.config.checks import SettingError, is_finite_number, whole_number
from pdebench.config.loading import typed_settings
from pdebench.data.netspec import NetSpec, fold_frames, unfold_frames
from pdebench.data.schema import DatasetError
from pdebench.errors import InvalidSetting

INTERPOLATION_TIME = "interpolation_time"
SAMPLING = ("cold", "naive")
FORWARD_CONDITIONING = ("data", "none")
STAGE_OBJECTIVES = ("dyffusion_interpolator", "dyffusion_forecaster")
ACTIVATIONS = (nn.GELU, nn.ReLU, nn.SiLU, nn.LeakyReLU, nn.Tanh)


def _probability(config: Any, key: str) -> None:
    value = getattr(config, key)
    if not (is_finite_number(value) and 0 <= value < 1):
        raise SettingError(key, value, "is not valid: expected a dropout probability in [0, 1)")


@dataclass
class DYffusionConfig(ModelConfig):
    """DYffusion's settings.

    backbone: the model config (`name` plus any of its keys) of both nets, the interpolator and the forecaster; the
        default is the zoo's U-Net at width 16, whose parameter count (18.3M for both nets at the paper's
        Navier-Stokes setting) is the nearest to the reference's 20.5M (on the sphere use `sfno`).
    dropout: the interpolator's dropout probability, on in training and while sampling (the source of the ensemble's
        spread; the paper's Navier-Stokes setting: 0.15).
    forecaster_dropout: the forecaster's, in training only (0.15 there too).
    extra_steps: k, auxiliary sampling steps at fractional interpolation times before `i = 1` (the reference's
        `additional_interpolation_steps`, schedule `before_t1_only`; 0 in its Navier-Stokes and spring-mesh runs).
    sampling: `cold` (the paper's) or `naive`, how a step moves the state (module docstring).
    refine_intermediate: recompute the frames at `1..h-1` by interpolating towards the last `x̂_h` (the reference's
        `refine_intermediate_predictions`, on in its Navier-Stokes run).
    forward_conditioning: `data`, the forecaster also sees the input frames (the reference's default), or `none`.
    reconstruction_weights: `[lambda_1, lambda_2]`, the weights of the forecaster's loss on `F(x̃_i, x_0, i)` and of
        the paper's second term, `F` again from the interpolation towards its own prediction one step on (the
        reference's `lambda_reconstruction`, `lambda_reconstruction2`: 0.5 and 0.5); read by `dyffusion_forecaster`.
    """

    name: str = "dyffusion"
    backbone: dict[str, Any] = field(default_factory=lambda: {"name": "unet", "hidden_channels": 16})
    dropout: float = 0.15
    forecaster_dropout: float = 0.15
    extra_steps: int = 0
    sampling: str = "cold"
    refine_intermediate: bool = True
    forward_conditioning: str = "data"
    reconstruction_weights: list[float] = field(default_factory=lambda: [0.5, 0.5])

    def __post_init__(self) -> None:
        _probability(self, "dropout")
        _probability(self, "forecaster_dropout")
        whole_number(self, "extra_steps", 0, "a number of auxiliary sampling steps")
        if self.sampling not in SAMPLING:
            raise SettingError("sampling", self.sampling, f"is not valid: expected one of {', '.join(SAMPLING)}")
        if self.forward_conditioning not in FORWARD_CONDITIONING:
            raise SettingError("forward_conditioning", self.forward_conditioning,
                               f"is not valid: expected one of {', '.join(FORWARD_CONDITIONING)}")
        weights = list(self.reconstruction_weights)
        if not (len(weights) == 2 and all(is_finite_number(w) and w >= 0 for w in weights) and weights[0] > 0):
            raise SettingError("reconstruction_weights", weights, "is not valid: expected [lambda_1, lambda_2], "
                                                                  "lambda_1 > 0 and lambda_2 >= 0")
        self.backbone_config()

    def backbone_config(self) -> ModelConfig:
        """The backbone's typed config; an unknown backbone, a reference row or a wrapper fails naming it."""
        backbone = dict(self.backbone)
        name = backbone.get("name")
        wrappers = {"dyffusion", "pderefiner"}
        if name not in MODELS or name in wrappers or not MODELS[name].trainable:
            nets = sorted(n for n, e in MODELS.items() if e.trainable and n not in wrappers)
            raise SettingError("backbone.name", name,
                               f"is not valid: expected a trainable net of the zoo, one of {', '.join(nets)}")
        return typed_settings(model_entry(name).config, backbone, "model.backbone",
                              f"the backbone {name} of dyffusion")

    def check_target(self, target: str) -> None:
        if target != "state":
            raise InvalidSetting(f"objective.target={target} cannot be decoded from model dyffusion, whose nets "
                                 "interpolate and forecast states; use objective.target=state")

    def check_objective(self, objective: str) -> None:
        """Refuse an objective other than the two stages' (any other would train the sampling loop end to end)."""
        if objective not in STAGE_OBJECTIVES:
            raise InvalidSetting(f"model=dyffusion is trained in two stages by objective={STAGE_OBJECTIVES[0]} then "
                                 f"objective={STAGE_OBJECTIVES[1]}, not objective={objective}; use "
                                 "experiment=<dataset>_dyffusion, which runs both")

    def check_spec(self, spec: NetSpec) -> None:
        """What the backbone refuses on the specs of the two nets (`interpolator_spec`, `forecaster_spec`)."""
        try:
            backbone = self.backbone_config()
            backbone.check_spec(interpolator_spec(spec))
            backbone.check_spec(forecaster_spec(spec, self.forward_conditioning))
        except InvalidSetting as error:
            if str(error).startswith("model ") and "does not support grid kind" in str(error):
                raise InvalidSetting(f"model dyffusion does not support grid kind '{spec.grid.kind}' with backbone "
                                     f"{self.backbone.get('name')} (settings under model.backbone): {error}") from None
            raise InvalidSetting(f"the backbone of model dyffusion (settings under model.backbone) refuses the data: "
                                 f"{error}") from None

    @classmethod
    def tiny(cls) -> DYffusionConfig:
        return cls(backbone=asdict(MODELS["unet"].config.tiny()))

    @classmethod
    def published_sizes(cls) -> tuple[PublishedSize, ...]:
        """None: the paper's backbones are its own U-Nets, not the zoo's, so no count of ours reproduces a published
        one (docs/models.md sets the two side by side)."""
        return ()


def interpolator_spec(spec: NetSpec) -> NetSpec:
    """The interpolator's NetSpec: the input frames and `x_h` in, one frame out, the interpolation time appended."""
    return NetSpec(spec.fields, spec.history + 1, 1, _conditioning(spec), spec.grid)


def forecaster_spec(spec: NetSpec, forward_conditioning: str) -> NetSpec:
    """The forecaster's NetSpec: the estimate at time i (and the input frames with `data` conditioning) in, `x_h`
    out, the interpolation time appended."""
    frames = 1 + (spec.history if forward_conditioning == "data" else 0)
    return NetSpec(spec.fields, frames, 1, _conditioning(spec), spec.grid)


def _conditioning(spec: NetSpec) -> tuple[str, ...]:
    if INTERPOLATION_TIME in spec.conditioning:
        raise DatasetError(f"the data already has a conditioning scalar named {INTERPOLATION_TIME!r}, which model "
                           "dyffusion appends itself; rename that parameter")
    return (*spec.conditioning, INTERPOLATION_TIME)


def dropout_sites(net: nn.Module) -> list[nn.Module]:
    """The modules whose outputs DYffusion drops out: activation layers outside a conditioning embedding, and
    neuraloperator's layer stacks (`FNOBlocks`, called once per layer)."""
    inside_embedding = {id(m) for e in net.modules() if isinstance(e, PerScalarEmbedding) for m in e.modules()}
    return [m for m in net.modules()
            if (isinstance(m, ACTIVATIONS) and id(m) not in inside_embedding) or isinstance(m, FNOBlocks)]


class SeededDropout:
    """Dropout on the outputs of a net's `dropout_sites`, drawn from a generator of the caller's choosing.

    `torch.nn.functional.dropout` takes no generator, so masks are Bernoulli draws `rand >= p` from `generator`
    (None: the global stream) scaled by `1 / (1 - p)`, as inverted dropout scales them. `active` switches it.
    """

    def __init__(self, net: nn.Module, p: float) -> None:
        self.p = float(p)
        self.active = False
        self.generator: torch.Generator | None = None
        self.n_sites = 0
        if self.p > 0:
            sites = dropout_sites(net)
            if not sites:
                raise InvalidSetting(f"model dyffusion cannot place dropout in backbone {type(net).__name__}: it has "
                                     "no activation layer nor neuraloperator layer stack; set model.dropout=0 and "
                                     "model.forecaster_dropout=0 or choose another backbone")
            for site in sites:
                site.register_forward_hook(self._hook)
            self.n_sites = len(sites)

    def _hook(self, module: nn.Module, args: Any, output: Any) -> Any:
        if not self.active or not isinstance(output, Tensor):
            return output
        keep = torch.rand(output.shape, generator=self.generator, device=output.device) >= self.p
        return output * keep.to(output.dtype) / (1.0 - self.p)


class DYffusion(BatchedSampling):
    """`forward(x [B, n_fields * history, *space], cond [B, n_cond]) -> [B, n_fields * h, *space]`: one sampled
    forecast of the h frames after the input (standardised units); `sample` draws several; `interpolate` and
    `forecast` are the two nets, which the training objectives call.
    """

    def __init__(self, spec: NetSpec, config: DYffusionConfig) -> None:
        super().__init__()
        self.spec = spec
        self.horizon = spec.bundle
        self.extra_steps = int(config.extra_steps)
        self.sampling, self.refine_intermediate = config.sampling, bool(config.refine_intermediate)
        self.forward_conditioning = config.forward_conditioning
        self.reconstruction_weights = tuple(float(w) for w in config.reconstruction_weights)
        backbone = config.backbone_config()
        self.interpolator = build_model(backbone, interpolator_spec(spec))
        self.forecaster = build_model(backbone, forecaster_spec(spec, config.forward_conditioning))
        self.interpolator_dropout = SeededDropout(self.interpolator, config.dropout)
        self.forecaster_dropout = SeededDropout(self.forecaster, config.forecaster_dropout)

    # --- the schedule ---------------------------------------------------------------------------------------------

    @property
    def n_steps(self) -> int:
        """N = h + k: the schedule's steps n = 0..N-1."""
        return self.horizon + self.extra_steps

    def step_time(self, n: Tensor | int) -> Tensor:
        """The interpolation time `i(n)` of schedule steps `n` (in model steps, float): `n / (k + 1)` up to `n = k`,
        then `n - k`, so that `i(0) = 0` and `i(N - 1) = h - 1`."""
        n = torch.as_tensor(n, dtype=torch.float32)
        k = self.extra_steps
        return torch.where(n >= k + 1, n - k, n / (k + 1))

    # --- the two nets ---------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def random_stream(self, generator: torch.Generator | None) -> Iterator[None]:
        """Draw every dropout mask inside the block from `generator` (None: the global torch stream)."""
        previous = self.interpolator_dropout.generator, self.forecaster_dropout.generator
        self.interpolator_dropout.generator = self.forecaster_dropout.generator = generator
        try:
            yield
        finally:
            self.interpolator_dropout.generator, self.forecaster_dropout.generator = previous

    def _time_cond(self, cond: Tensor, time: Tensor) -> Tensor:
        """`cond [B, n_cond]` with `time / h` appended; `time`: `[B]` or a scalar, in model steps."""
        time = torch.as_tensor(time, dtype=cond.dtype, device=cond.device).expand(cond.shape[0])
        return torch.cat([cond, (time / self.horizon).unsqueeze(1)], dim=1)

    def interpolate(self, frames: Tensor, last: Tensor, time: Tensor, cond: Tensor) -> Tensor:
        """`I(x_0, x_h, i)`: `frames [B, C, history, *space]`, `last [B, C, 1, *space]` (x_h), `time [B]` in (0, h)
        -> `[B, C, 1, *space]`, with its dropout on (training and sampling alike)."""
        self.interpolator_dropout.active = True
        x = fold_frames(torch.cat([frames, last], dim=2))
        return unfold_frames(self.interpolator(x, self._time_cond(cond, time)), frames.shape[1])

    def forecast(self, state: Tensor, frames: Tensor, time: Tensor, cond: Tensor) -> Tensor:
        """`F(x_i, x_0, i)`: `state [B, C, 1, *space]` (the estimate at time i), `frames [B, C, history, *space]`,
        `time [B]` in [0, h) -> x_h `[B, C, 1, *space]`; its dropout is on while the module trains."""
        self.forecaster_dropout.active = self.training
        inputs = torch.cat([state, frames], dim=2) if self.forward_conditioning == "data" else state
        return unfold_frames(self.forecaster(fold_frames(inputs), self._time_cond(cond, time)), frames.shape[1])

    # --- sampling ---------------------------------------------------------------------------------------------------

    def _sample_frames(self, frames: Tensor, cond: Tensor) -> Tensor:
        """One pass of the schedule from standardised `frames [B, C, history, *space]`: `[B, C, h, *space]`."""
        n_steps, batch = self.n_steps, frames.shape[0]
        times = self.step_time(torch.arange(n_steps + 1)).tolist()
        state = frames[:, :, -1:]
        reached: dict[int, Tensor] = {}
        last_pred = state
        for s in range(n_steps):
            last_pred = self.forecast(state, frames, frames.new_full((batch,), times[s]), cond)
            if s == n_steps - 1:  # the last step: the forecast itself (the reference's default)
                break
            upcoming = self.interpolate(frames, last_pred, frames.new_full((batch,), times[s + 1]), cond)
            if self.sampling == "naive":
                state = upcoming
            elif s == 0:  # I(x_0, x̂_h, 0) is x_0, the state itself
                state = upcoming
            else:
                state = state - self.interpolate(frames, last_pred, frames.new_full((batch,), times[s]), cond) \
                    + upcoming
            if float(times[s + 1]).is_integer():
                reached[int(times[s + 1])] = state
        if self.refine_intermediate:
            for i in range(1, self.horizon):
                reached[i] = self.interpolate(frames, last_pred, frames.new_full((batch,), float(i)), cond)
        return torch.cat([*(reached[i] for i in range(1, self.horizon)), last_pred], dim=2)

    def forward(self, x: Tensor, cond: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """One forecast of the h frames after the input (dropout masks from `generator`)."""
        with self.random_stream(generator):
            return fold_frames(self._sample_frames(unfold_frames(x, self.spec.n_fields), cond))


@register("dyffusion", config=DYffusionConfig)
def build_dyffusion(config: DYffusionConfig, spec: NetSpec) -> nn.Module:
    return DYffusion(spec, config)

