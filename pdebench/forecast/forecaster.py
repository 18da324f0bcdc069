"""A trained surrogate as a Stepper: standardise, fold history into channels, run the net, decode the target."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pdebench.data.netspec import NetSpec, fold_frames, unfold_frames
from pdebench.data.normalization import Normalizer
from pdebench.forecast.targets import Target


class Forecaster(nn.Module):
    """`forward(frames [B, C, history, *space], cond [B, P]) -> [B, C, bundle, *space]`, physical units.

    The net sees standardised frames folded to `[B, C * history, *space]` and standardised conditioning, and its
    output `[B, C * bundle, *space]` is read through `target` (a state, a scaled difference, or a rate of change
    that is integrated over the model step with further net calls). A target that needs the train statistics
    (`raw_difference`: its scale is in data units) is bound to this forecaster's normaliser here.
    """

    def __init__(self, net: nn.Module, normalizer: Normalizer, target: Target, spec: NetSpec) -> None:
        super().__init__()
        self.net = net
        self.normalizer = normalizer
        self.target = target
        bind = getattr(target, "bind_normalizer", None)
        if callable(bind):
            bind(normalizer)
        self.spec = spec
        self.history, self.bundle = spec.history, spec.bundle

    def net_output(self, frames: Tensor, cond: Tensor) -> Tensor:
        """The raw net output `[B, C, bundle, *space]` for standardised frames and conditioning."""
        return unfold_frames(self.net(fold_frames(frames), cond), frames.shape[1])

    def advance(self, frames: Tensor, output: Tensor, cond: Tensor) -> Tensor:
        """The next `bundle` standardised frames from standardised frames and the net's `output` on them.

        A `derivative` target integrates, calling the net again for each integrator stage; `state` and
        `difference` read the output alone. Training objectives call this on an output they already hold.
        """
        return self.target.advance(frames, output, lambda window: self.net_output(window, cond))

    def forward_normalized(self, frames: Tensor, cond: Tensor) -> Tensor:
        """The next `bundle` frames in standardised units, from standardised frames and conditioning."""
        return self.advance(frames, self.net_output(frames, cond), cond)

    def forward(self, frames: Tensor, cond: Tensor) -> Tensor:
        norm = self.normalizer
        out = self.forward_normalized(norm.normalize_fields(frames), norm.normalize_params(cond))
        return norm.denormalize_fields(out)


class EnsembleForecaster(Forecaster):
    """A Forecaster around a stochastic net that can draw samples (PDE-Refiner): an `EnsembleStepper`.

    The net provides `sample(x [B, C * history, *space], cond [B, n_cond], n, generator) -> [n, B, C * bundle,
    *space]`; calling the forecaster draws one forecast with the global random state.
    """

    def sample(self, frames: Tensor, cond: Tensor, n: int, seed: int | None = None) -> Tensor:
        """`n` forecasts `[n, B, C, bundle, *space]` in physical units; the same `seed` gives the same samples."""
        norm = self.normalizer
        inputs, params = norm.normalize_fields(frames), norm.normalize_params(cond)
        generator = None if seed is None else torch.Generator(device=frames.device).manual_seed(int(seed))
        out = self.net.sample(fold_frames(inputs), params, n, generator)  # [n, B, C * bundle, *space]
        repeated = inputs.unsqueeze(0).expand(n, *inputs.shape).flatten(0, 1)  # member-major, as `out` flattened
        repeated_params = params.unsqueeze(0).expand(n, *params.shape).flatten(0, 1)
        decoded = self.advance(repeated, unfold_frames(out.flatten(0, 1), inputs.shape[1]), repeated_params)
        return norm.denormalize_fields(decoded).unflatten(0, (n, inputs.shape[0]))


def make_forecaster(net: nn.Module, normalizer: Normalizer, target: Target, spec: NetSpec) -> Forecaster:
    """An `EnsembleForecaster` if the net can draw samples (has `sample`), else a plain `Forecaster`."""
    cls = EnsembleForecaster if callable(getattr(net, "sample", None)) else Forecaster
    return cls(net, normalizer, target, spec)
