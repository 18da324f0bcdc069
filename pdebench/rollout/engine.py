"""Autoregressive rollout: feed a forecaster its own predictions, one model step (or bundle) at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor

# frames [B, C, history, *space], params [B, P] -> next frames [B, C, bundle, *space]
Stepper = Callable[[Tensor, Tensor], Tensor]


def rollout(stepper: Stepper, initial: Tensor, params: Tensor, n_steps: int) -> Iterator[Tensor]:
    """Yield the predicted frames `[B, C, *space]` for model steps 1..n_steps after the `initial` window.

    The first yielded frame is the first prediction (never an input frame). A bundle that runs past
    `n_steps` is cut.
    """
    history = initial.shape[2]
    window = initial
    produced = 0
    while produced < n_steps:
        out = stepper(window, params)
        for j in range(min(out.shape[2], n_steps - produced)):
            yield out[:, :, j]
        produced += out.shape[2]
        window = torch.cat([window, out], dim=2)[:, :, -history:]
