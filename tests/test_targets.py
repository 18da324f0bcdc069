"""Targets and integrators: finite-difference labels on the stored frames and integrators converge at their orders
on analytic signals (ab2 also over a rollout that carries its last rate), each integrator makes its exact number of
net calls over a rollout, the stored spacing beats the model step by frame_stride**order, and what a target encodes
its `advance` gives back."""

from __future__ import annotations

import math
import re

import pytest
import torch
from torch import Tensor, nn

from pdebench.data.grid import Grid
from pdebench.data.netspec import NetSpec
from pdebench.data.normalization import Normalizer
from pdebench.forecast.forecaster import Forecaster
from pdebench.forecast.integrators import INTEGRATORS, ORDERS, ab2, ab2_step
from pdebench.forecast.rollout import rollout
from pdebench.forecast.rollout_state import rollout_scope
from pdebench.forecast.targets import DerivativeTarget, RawDifferenceTarget, make_target, target_from_config

WAVE_SPEED = 1.3
X = torch.linspace(0.0, 2.0 * math.pi, 17, dtype=torch.float64)[:-1]
NOW = 0.4  # physical time of the current state


def travelling_wave(times: Tensor) -> Tensor:
    """u(x, t) = sin(x - c t) at `times [T]`: frames `[1, 1, T, 16]`."""
    return torch.sin(X - WAVE_SPEED * times[:, None]).view(1, 1, -1, X.numel())


def derivative_label_error(target: DerivativeTarget, stored_dt: float) -> float:
    """Largest error of `target`'s label, read as du/dt (divided by the model step `frame_stride * stored_dt`), on
    u = sin(x - c t) stored every `stored_dt` time units; the label frames are those at `target.label_offsets`."""
    offsets = torch.tensor(target.label_offsets(1), dtype=torch.float64)
    labels = travelling_wave(NOW + offsets * stored_dt)
    current = travelling_wave(torch.tensor([NOW], dtype=torch.float64))
    exact = -WAVE_SPEED * torch.cos(X - WAVE_SPEED * NOW)
    label = target.encode(current, current[:, :, :0], labels)
    return (label.flatten() / (target.frame_stride * stored_dt) - exact).abs().max().item()


@pytest.mark.parametrize("order", [1, 2, 4])
def test_stored_frame_labels_converge_at_their_order(order: int) -> None:
    """frame_stride=4: halving the stored interval divides the label error by 2**order."""
    target = target_from_config({"target": "derivative", "fd_order": order}, frame_stride=4)
    errors = [derivative_label_error(target, stored_dt) for stored_dt in (0.02, 0.01)]
    assert math.log2(errors[0] / errors[1]) == pytest.approx(order, abs=0.1)


@pytest.mark.parametrize("order", [1, 2, 4])
def test_stored_frame_labels_are_frame_stride_to_the_order_more_accurate(order: int) -> None:
    """The default label (fd_spacing=1: one stored interval) against the stencil on the model frames (fd_spacing =
    frame_stride = 4, what labels one model step apart give): the error is 4**order times smaller."""
    stored_dt = 0.01
    default = target_from_config({"target": "derivative", "fd_order": order}, frame_stride=4)
    model_step = target_from_config({"target": "derivative", "fd_order": order, "fd_spacing": 4}, frame_stride=4)
    assert (default.fd_spacing, model_step.fd_spacing) == (1, 4)
    ratio = derivative_label_error(model_step, stored_dt) / derivative_label_error(default, stored_dt)
    assert math.log(ratio, 4) == pytest.approx(order, abs=0.05)


def test_label_offsets_and_scale() -> None:
    """Offsets in stored frames: the stencil (times fd_spacing) and the current state; hand-computed labels."""
    assert DerivativeTarget(fd_order=1).label_frames(1) == (0, 0)  # no model frame beyond the net's inputs
    assert DerivativeTarget(fd_order=1).label_offsets(1) == (0, 1)
    assert DerivativeTarget(fd_order=2).label_offsets(1) == (-1, 0, 1)
    assert DerivativeTarget(fd_order=4).label_offsets(1) == (-2, -1, 0, 1, 2)
    assert DerivativeTarget(fd_order=2, fd_spacing=4, frame_stride=4).label_offsets(1) == (-4, 0, 4)
    assert make_target("difference", 0.3).label_frames(3) == make_target("state").label_frames(3) == (0, 3)
    assert make_target("difference", 0.3).label_offsets(3) == make_target("state").label_offsets(1) == ()
    # central difference of [1, 4, 9] one stored interval apart: (9 - 1) / 2 = 4 per stored interval, 16 per model
    # step of frame_stride=4 stored frames, divided by the scale 0.5
    labels = torch.tensor([1.0, 4.0, 9.0]).view(1, 1, 3, 1)
    target = DerivativeTarget(scale=0.5, fd_order=2, frame_stride=4)
    assert target.encode(torch.tensor([4.0]).view(1, 1, 1, 1), labels[:, :, :0], labels).item() == pytest.approx(32.0)
    # the net sees 3 instead of the true 4: the label adds the gap 4 - 3 = 1 per model step, (16 + 1) / 0.5
    assert target.encode(torch.tensor([3.0]).view(1, 1, 1, 1), labels[:, :, :0], labels).item() == pytest.approx(34.0)


def test_derivative_label_without_its_frames_is_refused() -> None:
    target = DerivativeTarget(fd_order=4)
    frames = torch.zeros(1, 1, 1, 4)
    with pytest.raises(ValueError, match=r"reads its label from the 5 stored frames at offsets \[-2, -1, 0, 1, 2\] "
                                         r"around the current state, but the batch holds none; size the training "
                                         r"windows with window_spec$"):
        target.encode(frames, frames[:, :, :0])
    with pytest.raises(ValueError, match="but the batch holds 2"):
        target.encode(frames, frames[:, :, :0], torch.zeros(1, 1, 2, 4))


def logistic_rate(state: Tensor) -> Tensor:
    return state * (1.0 - state)


def logistic_solution(initial: Tensor, time: float) -> Tensor:
    return 1.0 / (1.0 + (1.0 / initial - 1.0) * math.exp(-time))


@pytest.mark.parametrize("name", sorted(INTEGRATORS))
def test_integrators_converge_at_their_order(name: str) -> None:
    """u' = u (1 - u) over one unit of time: halving the substep divides the error by 2**order."""
    initial = torch.linspace(0.1, 0.9, 7, dtype=torch.float64).view(1, 1, 1, 7)
    exact = logistic_solution(initial, 1.0)
    errors = [(INTEGRATORS[name](initial, logistic_rate, n) - exact).abs().max().item() for n in (8, 16)]
    assert math.log2(errors[0] / errors[1]) == pytest.approx(ORDERS[name], abs=0.3)


class LinearRate(nn.Module):
    """A 'net' that outputs the exact du/ds = rate * u of u(s) = exp(rate * s) u0, counting its calls."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate, self.calls = rate, 0

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        self.calls += 1
        return self.rate * x[:, -1:]  # the last history frame of the one field


def derivative_forecaster(integrator: str, substeps: int, history: int = 1) -> Forecaster:
    spec = NetSpec(("u",), history, 1, (), Grid.uniform("periodic", (4,)))
    norm = Normalizer([0.0], [1.0], [], [])
    config = {"target": "derivative", "integrator": integrator, "substeps": substeps}
    return Forecaster(LinearRate(-0.7), norm, target_from_config(config), spec).double()


@pytest.mark.parametrize(("name", "calls_per_substep"), [("euler", 1), ("heun", 2), ("rk4", 4), ("ab2", 1)])
def test_derivative_forecaster_integrates_the_predicted_rate(name: str, calls_per_substep: int) -> None:
    """Given the exact rate, one call (outside any rollout) approaches exp(-0.7) u0 at the integrator's order as
    substeps grow, and every stage is one more net call (ab2 starts afresh: its first substep is Heun's, one call
    more)."""
    frames = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64).view(1, 1, 1, 4)
    cond = torch.zeros(1, 0, dtype=torch.float64)
    exact = math.exp(-0.7) * frames
    errors = []
    for substeps in (4, 8):
        fc = derivative_forecaster(name, substeps)
        errors.append((fc(frames, cond) - exact).abs().max().item())
        assert fc.net.calls == calls_per_substep * substeps + (1 if name == "ab2" else 0)
    assert math.log2(errors[0] / errors[1]) == pytest.approx(ORDERS[name], abs=0.3)


@pytest.mark.parametrize("history", [1, 3])
@pytest.mark.parametrize("frame_stride", [1, 4])
def test_forward_difference_over_a_model_step_with_one_euler_step_round_trips(history: int, frame_stride: int) -> None:
    """fd_order=1 on the model step (fd_spacing = frame_stride) + euler + 1 substep: advancing the label from the
    state the net sees (here noisy) gives back the stored next frame exactly."""
    torch.manual_seed(0)
    inputs, targets, current = torch.randn(2, 3, history, 8), torch.randn(2, 3, 1, 8), torch.randn(2, 3, 1, 8)
    target = make_target("derivative", 0.3, 1, "euler", 1, fd_spacing=frame_stride, frame_stride=frame_stride)
    labels = torch.cat([current, targets], dim=2)  # the true frames at offsets 0 and frame_stride

    def no_more_calls(window: Tensor) -> Tensor:
        raise AssertionError("one Euler step needs no further net call")

    label = target.encode(inputs, targets[:, :, :0], labels)
    torch.testing.assert_close(target.advance(inputs, label, no_more_calls), targets)


@pytest.mark.parametrize("name", ["state", "difference"])
def test_state_and_difference_round_trip(name: str) -> None:
    torch.manual_seed(1)
    inputs, targets = torch.randn(2, 3, 2, 8), torch.randn(2, 3, 4, 8)
    target = make_target(name, 0.3)
    torch.testing.assert_close(target.advance(inputs, target.encode(inputs, targets), lambda w: w), targets)


def test_integrator_stages_keep_the_earlier_history_frames() -> None:
    """With history 2, each stage's window is [earlier frame, stage state]."""
    seen = []
    target = make_target("derivative", 1.0, 1, "heun", 1)
    inputs = torch.tensor([5.0, 1.0]).view(1, 1, 2, 1)

    def net(window: Tensor) -> Tensor:
        seen.append((tuple(window.shape), window.flatten().tolist()))
        return torch.zeros(1, 1, 1, 1)

    target.advance(inputs, torch.ones(1, 1, 1, 1), net)
    assert seen == [((1, 1, 2, 1), [5.0, 2.0])]  # Heun's second stage at u + h * k1 = 1 + 1, after the earlier frame


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"target": "derivative", "fd_order": 3}, r"objective.fd_order=3 .*choose one of: 1, 2, 4"),
        ({"target": "derivative", "integrator": "rk5"}, r"objective.integrator='rk5' .*euler, heun, rk4, ab2"),
        ({"target": "derivative", "substeps": 0}, r"objective.substeps=0 is not valid"),
        ({"target": "derivative", "fd_spacing": 0}, r"objective.fd_spacing=0 is not valid: expected a number of "
                                                    r"stored-frame intervals"),
        ({"target": "derivative", "target_scale": 0.0}, r"objective.target_scale=0.0 is not valid: .* > 0"),
        ({"target": "velocity"}, r"objective.target='velocity' .*state, difference, raw_difference, derivative"),
    ],
)
def test_bad_target_settings_name_the_key(config: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        target_from_config(config)


def test_the_derivative_targets_defaults_are_the_plainest_label() -> None:
    """Scale 1, the forward difference on the finest stored spacing, one Euler substep, one stored frame per model
    step; `make_target` and a config without a frame stride give the same."""
    def settings(target: DerivativeTarget) -> tuple:
        return (target.scale, target.fd_order, target.integrator_name, target.substeps, target.fd_spacing,
                target.frame_stride, target.offsets, target.weights, target.steps_per_spacing)

    plain = (1.0, 1, "euler", 1, 1, 1, (0, 1), (-1.0, 1.0), 1.0)
    assert settings(DerivativeTarget()) == settings(make_target("derivative")) == plain
    assert settings(target_from_config({"target": "derivative"})) == plain
    assert target_from_config({"target": "derivative"}, frame_stride=4).frame_stride == 4
    # the current state has no weight of its own in a central stencil: 0, not a missing weight
    assert DerivativeTarget(fd_order=2).weights == (-0.5, 0.0, 0.5)


@pytest.mark.parametrize(("settings", "message"), [
    ({"scale": 0.0}, "objective.target_scale must be positive, got 0.0"),
    ({"substeps": 0}, "objective.substeps=0 is not valid: expected a positive number of integrator steps per model "
                      "step"),
    ({"substeps": 1.5}, "objective.substeps=1.5 is not valid"),
    ({"fd_spacing": 0}, "objective.fd_spacing=0 is not valid: expected a positive number of stored frame intervals "
                        "between the finite-difference stencil's points"),
    ({"fd_spacing": 2.5}, "objective.fd_spacing=2.5 is not valid"),
    ({"frame_stride": 0}, "frame_stride=0 is not valid: expected a positive number of stored frames per model step"),
    ({"frame_stride": 1.5}, "frame_stride=1.5 is not valid"),
])
def test_the_derivative_target_refuses_settings_built_past_the_config(settings: dict, message: str) -> None:
    """The typed config refuses these first; the target refuses them too when built directly (a zero or fractional
    count must not slip through because it is a whole number or at least 1)."""
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        DerivativeTarget(**settings)


def test_a_raw_difference_divides_the_difference_in_the_datas_units() -> None:
    """Two fields of train std 2 and 0.5, scale 0.3: from the current state 1 (after an earlier frame 7) to 3, a
    standardised difference of 2 is 4 and 1 in the data's units, so the labels are 4 / 0.3 and 1 / 0.3; decoding
    gives the frame back; `make_target` builds it."""
    target = make_target("raw_difference", 0.3)
    assert isinstance(target, RawDifferenceTarget) and (target.name, target.scale) == ("raw_difference", 0.3)
    inputs = torch.tensor([7.0, 1.0], dtype=torch.float64).view(1, 1, 2, 1).expand(1, 2, 2, 3)
    later = torch.full((1, 2, 1, 3), 3.0, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^objective.target=raw_difference applies its scale to the data's own units, "
                                         r"so it needs the train statistics: use it inside a Forecaster"):
        target.encode(inputs, later)
    target.bind_normalizer(Normalizer([0.0, 0.0], [2.0, 0.5], [], []))
    label = target.encode(inputs, later)
    assert label.dtype == torch.float64 and label.shape == (1, 2, 1, 3)
    assert label[0, :, 0, 0].tolist() == pytest.approx([4.0 / 0.3, 1.0 / 0.3], rel=1e-15)
    torch.testing.assert_close(target.advance(inputs, label, lambda w: w), later, rtol=1e-15, atol=0)
    assert target.field_scale(later).shape == (1, 2, 1, 1)


def test_a_carried_rate_of_another_batch_is_refused_with_both_shapes() -> None:
    target = make_target("derivative", 1.0, 1, "ab2", 1)
    rate = torch.zeros(2, 1, 1, 4)
    with rollout_scope() as state:
        state.put(target, rate)
        with pytest.raises(ValueError, match=re.escape(
                "the ab2 integrator carried a rate of shape (2, 1, 1, 4) from the previous model step of this "
                "rollout, but the state now has shape (3, 1, 1, 4): a rollout must keep its batch")):
            target.advance(torch.zeros(3, 1, 1, 4), torch.zeros(3, 1, 1, 4), lambda w: torch.zeros_like(w))


def test_derivative_needs_bundle_one() -> None:
    with pytest.raises(ValueError, match=r"objective.target=derivative .*objective.bundle=1, got objective.bundle=4"):
        DerivativeTarget().label_frames(4)


def carried_ab2_reference(u0: float, rate, n_substeps: int, h: float) -> list[float]:
    """Adams-Bashforth 2 written out on one number: a Heun substep, then u += h (3/2 f_j - 1/2 f_{j-1}); the state
    after every substep."""
    states, previous = [u0 + 0.5 * h * (rate(u0) + rate(u0 + h * rate(u0)))], rate(u0)
    for _ in range(n_substeps - 1):
        current = rate(states[-1])
        states.append(states[-1] + h * (1.5 * current - 0.5 * previous))
        previous = current
    return states


class LogisticRate(nn.Module):
    """A 'net' whose output is the rate `step * u (1 - u)` per model step of `step` time units, counting its calls."""

    def __init__(self, step: float) -> None:
        super().__init__()
        self.step, self.calls = step, 0

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        self.calls += 1
        return self.step * logistic_rate(x[:, -1:])


def logistic_forecaster(integrator: str, substeps: int, step: float) -> Forecaster:
    spec = NetSpec(("u",), 1, 1, (), Grid.uniform("periodic", (7,)))
    config = {"target": "derivative", "integrator": integrator, "substeps": substeps}
    return Forecaster(LogisticRate(step), Normalizer([0.0], [1.0], [], []), target_from_config(config), spec).double()


def rolled(forecaster: Forecaster, initial: Tensor, n_steps: int) -> Tensor:
    """The rollout's frames `[B, C, n_steps, *space]`."""
    cond = initial.new_zeros(initial.shape[0], 0)
    return torch.stack(list(rollout(forecaster, initial, cond, n_steps)), dim=2)


@pytest.mark.parametrize("substeps", [1, 3])
def test_an_ab2_rollout_carries_the_rate_of_the_last_substep(substeps: int) -> None:
    """Over 4 model steps of 0.3 time units, the rollout is one Adams-Bashforth sequence of 4 * substeps substeps:
    Heun only for the very first substep, every later one (across model steps too) reusing the rate of the substep
    before. Restarting each model step with Heun moves the states by 2e-4 (3 substeps) to 5e-3 (1 substep), and with
    3 substeps carrying the model step's first rate instead of its last substep's is wrong too: the 1e-12 tolerance
    tells each apart."""
    step, n_steps = 0.3, 4
    initial = torch.tensor([0.1, 0.35, 0.8], dtype=torch.float64).view(1, 1, 1, 3)
    out = rolled(logistic_forecaster("ab2", substeps, step), initial, n_steps)
    for i, u0 in enumerate(initial.flatten().tolist()):
        states = carried_ab2_reference(u0, lambda u: step * u * (1.0 - u), n_steps * substeps, 1.0 / substeps)
        expected = torch.tensor(states[substeps - 1::substeps], dtype=torch.float64)
        torch.testing.assert_close(out[0, 0, :, i], expected, rtol=0, atol=1e-12)


def test_ab2_starts_from_the_rate_it_is_given() -> None:
    """Given `rate0`, ab2 uses it for the first substep instead of calling the rate there: 2 substeps make 2 calls
    (the Heun start's second stage and the second substep), 3 without it; a `rate0` other than the true rate moves
    the result (here by h / 2 * (5 - (-1)) = 1.5 on the first substep)."""
    calls: list[float] = []

    def rate(u: Tensor) -> Tensor:
        calls.append(u.item())
        return -u

    given = ab2(torch.ones(1, dtype=torch.float64), rate, 2, rate0=torch.full((1,), 5.0, dtype=torch.float64))
    assert len(calls) == 2
    calls.clear()
    fresh = ab2(torch.ones(1, dtype=torch.float64), rate, 2)
    assert len(calls) == 3 and abs(given.item() - fresh.item()) > 1.0


def test_chained_ab2_steps_equal_one_ab2_integration() -> None:
    """ab2_step's second result is the `previous` of the next call: 4 chained model steps of 2 substeps each are one
    AB2 run of 8 substeps (the rate rescaled to the longer interval)."""
    initial = torch.linspace(0.1, 0.9, 5, dtype=torch.float64)
    state, previous = initial, None
    for _ in range(4):
        state, previous = ab2_step(state, logistic_rate, 2, previous=previous)
    torch.testing.assert_close(state, ab2(initial, lambda u: 4.0 * logistic_rate(u), 8), rtol=0, atol=1e-14)


# Net calls of an n-step rollout with S substeps, the forecaster's first call (whose output is the rate at the
# input state) included: euler S, heun 2S, rk4 4S per model step; ab2 S per model step plus 1 for the Heun start of
# the rollout's first substep: n S + 1.
ROLLOUT_CALLS = {("euler", 1): 5, ("euler", 3): 15, ("heun", 1): 10, ("heun", 3): 30, ("rk4", 1): 20,
                 ("rk4", 3): 60, ("ab2", 1): 6, ("ab2", 3): 16}


@pytest.mark.parametrize(("name", "substeps"), sorted(ROLLOUT_CALLS))
def test_net_calls_over_a_rollout(name: str, substeps: int) -> None:
    forecaster = logistic_forecaster(name, substeps, 0.3)
    rolled(forecaster, torch.full((2, 1, 1, 7), 0.4, dtype=torch.float64), 5)
    assert forecaster.net.calls == ROLLOUT_CALLS[name, substeps]


def test_ab2_converges_at_order_2_over_a_multistep_rollout() -> None:
    """u' = u (1 - u) over 2 time units in 8, 16 and 32 model steps of one substep: the rollout's error falls 4x per
    halving of the model step."""
    initial = torch.linspace(0.1, 0.9, 7, dtype=torch.float64).view(1, 1, 1, 7)
    exact = logistic_solution(initial, 2.0).flatten()
    errors = []
    for n_steps in (8, 16, 32):
        out = rolled(logistic_forecaster("ab2", 1, 2.0 / n_steps), initial, n_steps)
        errors.append((out[0, 0, -1] - exact).abs().max().item())
    assert [math.log2(errors[i] / errors[i + 1]) for i in range(2)] == pytest.approx([2.0, 2.0], abs=0.2)
