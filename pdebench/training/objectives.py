"""Training losses on standardised tensors `[B, C, bundle, *space]`."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor


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
        raise ValueError(f"objective.loss={name!r} is not a known loss; choose one of: {', '.join(LOSSES)}")
    return LOSSES[name]
