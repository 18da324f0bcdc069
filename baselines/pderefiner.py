"""PDE-Refiner (Lippe et al., 2023) around any conditioned backbone of the zoo.

One forecast is K + 1 calls of the backbone, all on the same input frames:

* step 0 sees an empty (zero) estimate and predicts the target directly (trained with MSE);
* refinement step k = 1..K adds Gaussian noise of standard deviation `sigma_k = sigma_min ** (k / K)` to the
  current estimate, the backbone predicts that noise (in units of sigma_k), and the estimate is denoised:
  `estimate = noisy - sigma_k * predicted_noise`.

Training (the `pderefiner` objective in `pdebench.training.objectives`) draws k uniformly from 0..K per sample,
so one backbone learns all K + 1 tasks; it is told which by the conditioning scalar `refinement_step = k / K`,
appended to the data's conditioning (the backbone is built with a NetSpec whose `conditioning` has that one extra
trailing name). The backbone sees the input frames and the estimate folded together into channels, field-major,
as if the estimate were `bundle` more frames: `[B, n_fields * (history + bundle), *space]`.

`sigma_min` here is a standard deviation: the std of the noise of the last refinement step. The paper quotes
sigma_min = 4e-7, but its public implementation passes that number to a DDPM scheduler (diffusers 0.17.1,
v-prediction) where it acts as a variance: the noise std of refinement step k there is sqrt(1 - alpha_bar) of its
diffusion step, computed in float32, 0.0861533, 0.0073971 and 6.45935e-4 for K = 3. Our default, sqrt(4e-7) =
6.32456e-4 as a std, gives sigma_min ** (k / K) = 0.0858374, 0.0073681 and 6.32456e-4: 0.37%, 0.39% and 2.1% below
the public code's (in exact arithmetic its stds are 0.0861531, 0.0073952 and 6.32456e-4, so the gaps are 0.37%,
0.37% and 0; the last one is float32 rounding 1 - 4e-7). The public code also shrinks the label by sqrt(alpha_bar)
(0.9963 at k = 1) before adding the noise and starts its first step from noise rather than from zero; we follow the
paper there. Set sigma_min = 4e-7 for the paper's formula taken literally.

The noise is added to the label, the scaled difference of one model step. The public code divides the raw KS
difference by 0.3 (`objective.target=raw_difference`, `objective.target_scale=0.3`, the default of
`objective=pderefiner`); with `objective.target=difference` the same 0.3 applies to standardised states, which
divides the label, and so multiplies every step's noise-to-signal ratio, by the field's std. `sigma_min` and 0.3
are the public code's KS values: on other data they are untuned (docs/models.md lists each step's noise-to-signal
ratio per dataset).

The refinement noise makes forecasts stochastic: `sample(x, cond, n)` draws n of them at once, and the
Forecaster around this net is an EnsembleStepper whose `sample` the evaluator uses for spread and CRPS.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from baselines.registry import MODELS, ModelConfig, PublishedSize, build_model, model_entry, register
from baselines.sampling import BatchedSampling
from pdebench.config.checks import SettingError, is_finite_number, whole_number
from pdebench.config.loading import typed_settings
from pdebench.data.grid import Grid
from pdebench.data.netspec import NetSpec, fold_frames, unfold_frames
from pdebench.data.schema import DatasetError
from pdebench.errors import InvalidSetting

REFINEMENT_STEP = "refinement_step"
DEFAULT_SIGMA_MIN = math.sqrt(4e-7)  # the std the public implementation's "min_noise_std = 4e-7" amounts to


@dataclass
class PDERefinerConfig(ModelConfig):
    """PDE-Refiner's settings.

    backbone: the wrapped net's model config, `name` plus any of its keys (its own dataclass checks them); the
    default is the PDEArena modern U-Net at its reference settings (width 64, multipliers 1, 2, 2, 4).
    refinement_steps: K, the number of denoising steps after the first prediction (inference costs K + 1 calls).
    sigma_min: the noise std of the last refinement step (a std, not a variance; see the module docstring), in the
    label's units (the scaled difference the objective's target defines); step k uses `sigma_min ** (k / K)`. The
    default is the public code's KS value.
    """

    name: str = "pderefiner"
    backbone: dict[str, Any] = field(default_factory=lambda: {"name": "unet"})
    refinement_steps: int = 3
    sigma_min: float = DEFAULT_SIGMA_MIN

    def __post_init__(self) -> None:
        whole_number(self, "refinement_steps", 1, "the number of refinement steps K")
        if not (is_finite_number(self.sigma_min) and 0 < self.sigma_min < 1):
            raise SettingError("sigma_min", self.sigma_min, "is not valid: expected the last refinement step's noise "
                                                            "std, a number strictly between 0 and 1")
        self.backbone_config()

    def backbone_config(self) -> ModelConfig:
        """The backbone's typed config; an unknown backbone, a reference row or a bad key fails naming it."""
        backbone = dict(self.backbone)
        name = backbone.get("name")
        if name not in MODELS or name == "pderefiner" or not MODELS[name].trainable:
            nets = sorted(n for n, e in MODELS.items() if e.trainable and n != "pderefiner")
            raise SettingError("backbone.name", name,
                               f"is not valid: expected a trainable net of the zoo, one of {', '.join(nets)}")
        return typed_settings(model_entry(name).config, backbone, "model.backbone",
                              f"the backbone {name} of pderefiner")

    @classmethod
    def published_sizes(cls) -> tuple[PublishedSize, ...]:
        """PDE-Refiner on 1-D KS with the default settings (K = 3, the U-Net backbone at width 64): its parameters are
        the backbone's (the noise schedule is a buffer)."""
        ks = NetSpec(("u",), 1, 1, ("dt", "dx"), Grid.uniform("periodic", (256,)))
        return (PublishedSize(
            "PDE-Refiner on KS: 1-D, 256 points, 1 field, 1 history frame in, 1 frame out, conditioned on dt and dx "
            "(the backbone also on the refinement step), K = 3, backbone Unetmod-1d-64", cls(), ks, 53_924_225,
            "github.com/pdearena/pdearena: pdearena/models/pderefiner.py PDERefiner with "
            "configs/kuramotosivashinsky1d.yaml (Unetmod-1d-64, param_conditioning=scalar_2, time_history=1, "
            "time_future=1, num_refinement_steps=3)"),)

    def check_spec(self, spec: NetSpec) -> None:
        """What the backbone refuses (or adapts to) on the spec it is built with: the data's, with the estimate's
        frames among the inputs and the refinement step among the conditioning (`backbone_spec`). The refusal is the
        backbone's sentence, whose `model.` keys are under `model.backbone.` here."""
        try:
            self.backbone_config().check_spec(backbone_spec(spec))
        except InvalidSetting as error:
            raise InvalidSetting(f"the backbone of model pderefiner (settings under model.backbone) refuses the data: "
                                 f"{error}") from None

    @classmethod
    def tiny(cls) -> PDERefinerConfig:
        return cls(backbone=asdict(MODELS["unet"].config.tiny()), refinement_steps=2)


def backbone_spec(spec: NetSpec) -> NetSpec:
    """The NetSpec the backbone is built with: the estimate's frames join the input, `refinement_step` the cond."""
    if REFINEMENT_STEP in spec.conditioning:
        raise DatasetError(f"the data already has a conditioning scalar named {REFINEMENT_STEP!r}, which model "
                           "pderefiner appends itself; rename that parameter")
    return NetSpec(spec.fields, spec.history + spec.bundle, spec.bundle, (*spec.conditioning, REFINEMENT_STEP),
                   spec.grid)


class PDERefiner(BatchedSampling):
    """`forward(x [B, n_fields * history, *space], cond [B, n_cond]) -> [B, n_fields * bundle, *space]`: one
    refined forecast (K + 1 backbone calls); `sample` draws several; `refinement_pair` is what training compares.
    """

    training_objective = "pderefiner"

    def __init__(self, spec: NetSpec, config: PDERefinerConfig) -> None:
        super().__init__()
        self.spec = spec
        self.refinement_steps = int(config.refinement_steps)
        self.backbone = build_model(config.backbone_config(), backbone_spec(spec))
        steps = torch.arange(self.refinement_steps + 1, dtype=torch.float64)
        # noise_std[k] for k = 1..K; entry 0 (the first prediction, which sees no noise) is never used
        self.register_buffer("noise_std", (config.sigma_min ** (steps / self.refinement_steps)).float(),
                             persistent=False)

    def denoiser(self, x: Tensor, estimate: Tensor, step: Tensor, cond: Tensor) -> Tensor:
        """One backbone call for refinement steps `step [B]` (integers 0..K) on `estimate [B, n_fields * bundle,
        *space]`: the first prediction for step 0, the predicted unit-variance noise for steps >= 1."""
        n_fields = self.spec.n_fields
        frames = torch.cat([unfold_frames(x, n_fields), unfold_frames(estimate, n_fields)], dim=2)
        step_cond = (step.to(cond.dtype) / self.refinement_steps).unsqueeze(1)
        return self.backbone(fold_frames(frames), torch.cat([cond, step_cond], dim=1))

    def refinement_pair(self, x: Tensor, cond: Tensor, label: Tensor, step: Tensor, noise: Tensor
                        ) -> tuple[Tensor, Tensor]:
        """(backbone output, what it should equal) for a training batch: per sample, step 0 predicts `label`
        from an empty estimate; step k >= 1 sees `label + sigma_k * noise` and should output `noise`.

        label, noise: `[B, n_fields * bundle, *space]`; step: `[B]` integers in 0..K.
        """
        shape = (-1,) + (1,) * (label.dim() - 1)
        first = (step == 0).view(shape)
        sigma = self.noise_std.to(label.dtype)[step].view(shape)
        estimate = torch.where(first, torch.zeros_like(label), label + sigma * noise)
        return self.denoiser(x, estimate, step, cond), torch.where(first, label, noise)

    def forward(self, x: Tensor, cond: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """One forecast: the first prediction, then K noise-and-denoise steps (noise from `generator`)."""
        batch = x.shape[0]
        estimate = torch.zeros(batch, self.spec.out_channels, *x.shape[2:], dtype=x.dtype, device=x.device)
        steps = torch.zeros(batch, dtype=torch.long, device=x.device)
        estimate = self.denoiser(x, estimate, steps, cond)
        for k in range(1, self.refinement_steps + 1):
            sigma = self.noise_std[k].to(estimate.dtype)
            noise = torch.randn(estimate.shape, generator=generator, dtype=estimate.dtype, device=estimate.device)
            noisy = estimate + sigma * noise
            estimate = noisy - sigma * self.denoiser(x, noisy, steps + k, cond)
        return estimate


@register("pderefiner", config=PDERefinerConfig)
def build_pderefiner(config: PDERefinerConfig, spec: NetSpec) -> nn.Module:
    return PDERefiner(spec, config)
