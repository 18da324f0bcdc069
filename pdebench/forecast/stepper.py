"""The `Stepper` protocol: anything that advances frames by one model step (or one bundle of steps).

A trained `Forecaster`, persistence and a numerical solver row are all Steppers, so the rollout engine, validation
and the evaluator treat them alike. A Stepper's output depends on its input window alone, except that within one
rollout (`pdebench.forecast.rollout`) it may carry what it computed on the previous model step of each trajectory
(the ab2 integrator's last rate) through the rollout's own state (`pdebench.forecast.rollout_state`); called outside
a rollout, it starts fresh every time.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor


@runtime_checkable
class Stepper(Protocol):
    """`(frames [B, C, history, *space], cond [B, P]) -> [B, C, bundle, *space]`, physical units.

    `cond` holds the per-trajectory parameters in the split file's `parameters` order, unnormalised. The output's
    first frame is one model step after the last input frame.
    """

    history: int
    bundle: int

    def __call__(self, frames: Tensor, cond: Tensor) -> Tensor: ...


@runtime_checkable
class EnsembleStepper(Stepper, Protocol):
    """A stochastic Stepper that can also draw `n` samples: `[n, B, C, bundle, *space]` (PDE-Refiner, DYffusion,
    ensembles). Draws come from the global torch stream; a trained one (`EnsembleForecaster`) also takes `seed=`,
    which seeds a generator of its own that drives every random draw of the net (PDE-Refiner's noise, DYffusion's
    dropout), so a seed reproduces its samples exactly."""

    def sample(self, frames: Tensor, cond: Tensor, n: int) -> Tensor: ...
