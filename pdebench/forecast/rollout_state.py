"""What a stepper carries from one model step to the next within one rollout (a multistep integrator's last rate).

A Stepper maps an input window to the next frames; a multistep method (two-step Adams-Bashforth) also needs what
it computed on the previous model step of the same trajectory. That memory belongs to one rollout, not to the
stepper: `rollout` opens a fresh `RolloutState` and makes it the current one (a context variable) only while it
calls the stepper, so

* nothing carries from one rollout into the next: each rollout starts fresh, whether it starts at a trajectory's
  first frame or in its middle (each batch the evaluator scores, each validation batch, each plotted rollout);
* two rollouts interleaved (two generators stepped in turn) never see each other's state;
* wrappers between the rollout and the forecaster (the evaluator's timer, an ensemble's one-draw adaptor) pass it
  through without knowing about it;
* a stepper called outside any rollout finds no state and starts fresh on every call, as a pure function of its
  window.

A loop that steps a forecaster itself instead of through `rollout` (a training unroll) opens one with
`rollout_scope()` around the whole loop. The state holds one entry per owner (a derivative target, which belongs to
one forecaster), each a tensor with one row per trajectory of the batch, so a trajectory's carried value is its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_CURRENT: ContextVar[RolloutState | None] = ContextVar("pdebench_rollout_state", default=None)


class RolloutState:
    """Per-owner values carried between the model steps of one rollout."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[object, Any]] = {}  # id(owner) -> (owner, value); the owner is kept alive

    def get(self, owner: object) -> Any | None:
        """What `owner` stored on an earlier model step of this rollout, or None on its first step."""
        entry = self._entries.get(id(owner))
        return None if entry is None else entry[1]

    def put(self, owner: object, value: Any) -> None:
        """Store `owner`'s value for its next model step of this rollout."""
        self._entries[id(owner)] = (owner, value)

    @contextmanager
    def current(self) -> Iterator[RolloutState]:
        """Make this the current rollout's state for the block (steppers called in it read and write it)."""
        token = _CURRENT.set(self)
        try:
            yield self
        finally:
            _CURRENT.reset(token)


def current_rollout() -> RolloutState | None:
    """The state of the rollout whose stepper call is running, or None outside any rollout."""
    return _CURRENT.get()


@contextmanager
def rollout_scope() -> Iterator[RolloutState]:
    """A fresh rollout state, current for the block: wrap a loop that steps a forecaster model step after model step
    on its own outputs. Never hold it open across a `yield` (the caller's code would run inside it): a generator
    enters `RolloutState.current()` around each stepper call instead, as `rollout` does."""
    with RolloutState().current() as state:
        yield state
