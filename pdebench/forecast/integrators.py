"""Time integrators for a learned rate of change: advance a state over one unit of time in `substeps` steps.

A `derivative` target (`pdebench.forecast.targets`) trains the net to output du/ds, the rate of change per model
step (s = t / step_time), so one model step is the interval s in [0, 1] whatever the trajectory's physical step.
At inference the rate is integrated over that interval here, as in "Predicting Change, Not States" (Zhou &
Farimani): `euler` (order 1), `heun` (explicit trapezoid, order 2), `rk4` (classical Runge-Kutta, order 4) or
`ab2` (two-step Adams-Bashforth, order 2; self-starting: its first substep is Heun's, so each call is independent
of the previous one, as a Stepper must be). `substeps > 1` splits the model step into equal substeps.

The rate is autonomous (the net sees states, not time), so every method needs only `rate(state)`. The rate at the
starting state may be passed in as `rate0` when the caller has already computed it (the training objective has),
which saves one net call.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from pdebench.errors import InvalidSetting

Rate = Callable[[Tensor], Tensor]


def euler(state: Tensor, rate: Rate, n_substeps: int, rate0: Tensor | None = None) -> Tensor:
    """Forward Euler: u <- u + h f(u), h = 1 / n_substeps. One rate call per substep."""
    h = 1.0 / n_substeps
    for i in range(n_substeps):
        slope = rate0 if (i == 0 and rate0 is not None) else rate(state)
        state = state + h * slope
    return state


def heun(state: Tensor, rate: Rate, n_substeps: int, rate0: Tensor | None = None) -> Tensor:
    """Heun's method (explicit trapezoid): u <- u + h/2 (f(u) + f(u + h f(u))). Two rate calls per substep."""
    h = 1.0 / n_substeps
    for i in range(n_substeps):
        k1 = rate0 if (i == 0 and rate0 is not None) else rate(state)
        k2 = rate(state + h * k1)
        state = state + (0.5 * h) * (k1 + k2)
    return state


def rk4(state: Tensor, rate: Rate, n_substeps: int, rate0: Tensor | None = None) -> Tensor:
    """Classical fourth-order Runge-Kutta. Four rate calls per substep."""
    h = 1.0 / n_substeps
    for i in range(n_substeps):
        k1 = rate0 if (i == 0 and rate0 is not None) else rate(state)
        k2 = rate(state + (0.5 * h) * k1)
        k3 = rate(state + (0.5 * h) * k2)
        k4 = rate(state + h * k3)
        state = state + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    return state


def ab2(state: Tensor, rate: Rate, n_substeps: int, rate0: Tensor | None = None) -> Tensor:
    """Two-step Adams-Bashforth, u_{j+1} = u_j + h (3/2 f_j - 1/2 f_{j-1}), started with one Heun substep.

    One rate call per substep after the first (which costs two); with `n_substeps=1` it is Heun's method.
    """
    h = 1.0 / n_substeps
    previous = rate0 if rate0 is not None else rate(state)
    state = state + (0.5 * h) * (previous + rate(state + h * previous))
    for _ in range(1, n_substeps):
        current = rate(state)
        state = state + h * (1.5 * current - 0.5 * previous)
        previous = current
    return state


Integrator = Callable[..., Tensor]
INTEGRATORS: dict[str, Integrator] = {"euler": euler, "heun": heun, "rk4": rk4, "ab2": ab2}
# Global order of accuracy of each method (what the convergence tests check).
ORDERS: dict[str, int] = {"euler": 1, "heun": 2, "rk4": 4, "ab2": 2}


def integrator(name: str) -> Integrator:
    """The integrator called `name` (`objective.integrator`)."""
    if name not in INTEGRATORS:
        raise InvalidSetting(f"objective.integrator={name!r} is not a known integrator; choose one of: "
                             f"{', '.join(INTEGRATORS)}")
    return INTEGRATORS[name]
