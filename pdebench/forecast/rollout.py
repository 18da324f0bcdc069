"""Autoregressive rollout: feed a Stepper its own predictions, one model step (or bundle) at a time."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from pdebench.forecast.rollout_state import RolloutState
from pdebench.forecast.stepper import Stepper


def rollout(stepper: Stepper, initial: Tensor, cond: Tensor, n_steps: int) -> Iterator[Tensor]:
    """Yield the predicted frames `[B, C, *space]` for model steps 1..n_steps after the `initial` window.

    initial: `[B, C, history, *space]`. The first yielded frame is the first prediction (never an input frame).
    A bundle that runs past `n_steps` is cut. Each call of this function is one rollout with a state of its own
    (`pdebench.forecast.rollout_state`): a multistep integrator carries its last rate from one model step to the
    next within it, and starts fresh on its first step, wherever in a trajectory `initial` comes from.
    """
    history = initial.shape[2]
    window = initial
    produced = 0
    state = RolloutState()
    while produced < n_steps:
        with state.current():  # around the call only: never across the yield below
            out = stepper(window, cond)
        for j in range(min(out.shape[2], n_steps - produced)):
            yield out[:, :, j]
        produced += out.shape[2]
        window = torch.cat([window, out], dim=2)[:, :, -history:]
