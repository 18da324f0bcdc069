"""Training objectives: `loss(forecaster, batch) -> scalar Tensor`, chosen by `objective.name`.

An objective owns everything between a batch and the loss (standardising, unrolling, noise, the label), so one
LightningModule trains every recipe; nothing here assumes one net call per step. Losses compare tensors
`[B, C, bundle, *space]` in the net's (standardised) units.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from torch import Tensor

from pdebench.data.batch import WindowBatch
from pdebench.forecast.forecaster import Forecaster


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


class Objective(Protocol):
    def loss(self, forecaster: Forecaster, batch: WindowBatch) -> Tensor: ...


class OneStep:
    """One call of the net on the true input window, compared with the label of the next `bundle` frames."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.loss_fn = loss_function(config["loss"])

    def loss(self, forecaster: Forecaster, batch: WindowBatch) -> Tensor:
        norm = forecaster.normalizer
        inputs = norm.normalize_fields(batch.inputs)
        label = forecaster.target.encode(inputs, norm.normalize_fields(batch.targets))
        return self.loss_fn(forecaster.net_output(inputs, norm.normalize_params(batch.cond)), label)


OBJECTIVES: dict[str, Callable[[Mapping[str, Any]], Objective]] = {"onestep": OneStep}


def make_objective(config: Mapping[str, Any]) -> Objective:
    """The objective `config["name"]` built from the whole `objective` config."""
    name = config["name"]
    if name not in OBJECTIVES:
        raise ValueError(f"objective.name={name!r} is not a known objective; choose one of: {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name](config)
