"""A net plus its normalisation: frames in physical units -> the next `bundle` frames in physical units."""

from __future__ import annotations

from torch import Tensor, nn

from baselines.registry import NetShape
from pdebench.data.normalization import Normalizer


class Forecaster(nn.Module):
    """Standardises inputs, folds history into channels, runs the net and unfolds the bundle.

    `forward(frames [B, C, history, *space], params [B, P]) -> [B, C, bundle, *space]`, physical units.
    """

    def __init__(self, net: nn.Module, normalizer: Normalizer, shape: NetShape) -> None:
        super().__init__()
        self.net = net
        self.normalizer = normalizer
        self.shape = shape

    def forward_normalized(self, frames: Tensor, params: Tensor) -> Tensor:
        """Same as `forward` on standardised frames and parameters (the training path)."""
        batch, n_fields, history = frames.shape[:3]
        out = self.net(frames.reshape(batch, n_fields * history, *frames.shape[3:]), params)
        return out.view(batch, n_fields, self.shape.bundle, *frames.shape[3:])

    def forward(self, frames: Tensor, params: Tensor) -> Tensor:
        norm = self.normalizer
        out = self.forward_normalized(norm.normalize_fields(frames), norm.normalize_params(params))
        return norm.denormalize_fields(out)
