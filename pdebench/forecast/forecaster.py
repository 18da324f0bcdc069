"""A trained surrogate as a Stepper: standardise, fold history into channels, run the net, decode the target."""

from __future__ import annotations

from torch import Tensor, nn

from pdebench.data.netspec import NetSpec
from pdebench.data.normalization import Normalizer
from pdebench.forecast.targets import Target


class Forecaster(nn.Module):
    """`forward(frames [B, C, history, *space], cond [B, P]) -> [B, C, bundle, *space]`, physical units.

    The net sees standardised frames folded to `[B, C * history, *space]` and standardised conditioning, and its
    output `[B, C * bundle, *space]` is read through `target` (a state or a scaled difference).
    """

    def __init__(self, net: nn.Module, normalizer: Normalizer, target: Target, spec: NetSpec) -> None:
        super().__init__()
        self.net = net
        self.normalizer = normalizer
        self.target = target
        self.spec = spec
        self.history, self.bundle = spec.history, spec.bundle

    def net_output(self, frames: Tensor, cond: Tensor) -> Tensor:
        """The raw net output `[B, C, bundle, *space]` for standardised frames and conditioning."""
        batch, n_fields, history = frames.shape[:3]
        out = self.net(frames.reshape(batch, n_fields * history, *frames.shape[3:]), cond)
        return out.view(batch, n_fields, self.bundle, *frames.shape[3:])

    def forward_normalized(self, frames: Tensor, cond: Tensor) -> Tensor:
        """The next `bundle` frames in standardised units, from standardised frames and conditioning."""
        return self.target.decode(frames, self.net_output(frames, cond))

    def forward(self, frames: Tensor, cond: Tensor) -> Tensor:
        norm = self.normalizer
        out = self.forward_normalized(norm.normalize_fields(frames), norm.normalize_params(cond))
        return norm.denormalize_fields(out)
