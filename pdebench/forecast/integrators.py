"""Time integrators for a learned rate of change: advance a state over one unit of time in `substeps` steps.

A `derivative` target (`pdebench.forecast.targets`) trains the net to output du/ds, the rate of change per model
step (s = t / step_time), so one model step is the interval s in [0, 1] whatever the trajectory's physical step.
At inference the rate is integrated over that interval here, as in "Predicting Change, Not States" (Zhou &
Farimani): `euler` (order 1), `heun` (explicit trapezoid, order 2), `rk4` (classical Runge-Kutta, order 4) or
`ab2` (two-step Adams-Bashforth, order 2). `substeps > 1` splits the model step into equal substeps.

The rate is autonomous (the net sees states, not time), so every method needs only `rate(state)`. The rate at the
starting state may be passed in as `rate0` when the caller has already computed it (the forecaster has: it is the
net's output on the input window), which saves one net call.

`ab2` is a multistep method: each substep reuses the rate of the substep before, so it costs one rate call per
substep. Across model steps that earlier rate is the one the previous model step returned (`ab2_step`'s second
result), carried by the rollout (`pdebench.forecast.rollout_state`); the first model step of a rollout has none and
starts itself with one Heun substep (one call more; "Predicting Change" starts with Euler, also order 2 overall).
Net calls per model step in S substeps, counting the forecaster's first call that gives `rate0`: euler S, heun 2S,
rk4 4S, ab2 S (S + 1 on a rollout's first step), so n model steps of ab2 cost n S + 1.
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


def ab2_step(state: Tensor, rate: Rate, n_substeps: int, rate0: Tensor | None = None,
             previous: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """One model step of two-step Adams-Bashforth, u_{j+1} = u_j + h (3/2 f_j - 1/2 f_{j-1}), h = 1 / n_substeps.

    previous: f_{j-1} for the first substep: the rate at the start of the last substep of the previous model step of
    the same rollout (this function's second result there), or None on a rollout's first step, whose first substep
    is then Heun's (order 2, so the method keeps order 2; one rate call more). Shapes: like `state`.
    Returns `(state after the model step, rate at the start of its last substep)`, the second being the next model
    step's `previous`. Rate calls: n_substeps - 1, plus one without `rate0`, plus one without `previous`.
    """
    h = 1.0 / n_substeps
    current = rate0 if rate0 is not None else rate(state)
    for j in range(n_substeps):
        if j > 0:
            current = rate(state)
        if previous is None:
            state = state + (0.5 * h) * (current + rate(state + h * current))
        else:
            state = state + h * (1.5 * current - 0.5 * previous)
        previous = current
    return state, current


def ab2(state: Tensor, rate: Rate, n_substeps: int, rate0: Tensor | None = None) -> Tensor:
    """Two-step Adams-Bashforth over one model step started afresh (its first substep Heun's): `ab2_step` with no
    carried rate. One rate call per substep, and one more for the start."""
    return ab2_step(state, rate, n_substeps, rate0)[0]


Integrator = Callable[..., Tensor]
INTEGRATORS: dict[str, Integrator] = {"euler": euler, "heun": heun, "rk4": rk4, "ab2": ab2}
# Global order of accuracy of each method (what the convergence tests check).
ORDERS: dict[str, int] = {"euler": 1, "heun": 2, "rk4": 4, "ab2": 2}
# Multistep methods: one model step given the rate carried from the previous one, returning the rate to carry next.
MultistepIntegrator = Callable[..., tuple[Tensor, Tensor]]
MULTISTEP: dict[str, MultistepIntegrator] = {"ab2": ab2_step}


def integrator(name: str) -> Integrator:
    """The integrator called `name` (`objective.integrator`)."""
    if name not in INTEGRATORS:
        raise InvalidSetting(f"objective.integrator={name!r} is not a known integrator; choose one of: "
                             f"{', '.join(INTEGRATORS)}")
    return INTEGRATORS[name]
