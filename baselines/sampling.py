"""`sample(x, cond, n, generator)` for the zoo's stochastic nets (PDE-Refiner, DYffusion): the `n` forecasts of
every input are drawn in one batched pass of `forward(x, cond, generator)`, the entry point of `EnsembleStepper`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pdebench.config.checks import is_whole_number


class BatchedSampling(nn.Module):
    """A mixin for a net whose `forward(x [B, C_in, *space], cond [B, P], generator)` draws its randomness from
    `generator` and whose `spec.out_channels` is its output's channel count."""

    def sample(self, x: Tensor, cond: Tensor, n: int, generator: torch.Generator | None = None) -> Tensor:
        """`n` forecasts of every input, batched into one pass: `[n, B, spec.out_channels, *space]`."""
        if not (is_whole_number(n) and n >= 1):
            raise ValueError(f"the number of samples must be a whole number >= 1, got {n!r}")
        batch = x.shape[0]
        repeated = x.unsqueeze(0).expand(n, *x.shape).reshape(n * batch, *x.shape[1:])
        cond = cond.unsqueeze(0).expand(n, *cond.shape).reshape(n * batch, cond.shape[1])
        out = self.forward(repeated, cond, generator)
        return out.view(n, batch, self.spec.out_channels, *x.shape[2:])
