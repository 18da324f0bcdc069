"""Targets and integrators: finite-difference labels on the stored frames and integrators converge at their orders
on analytic signals, the stored spacing beats the model step by frame_stride**order, and what a target encodes its
`advance` gives back."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from pdebench.data.grid import Grid
from pdebench.data.netspec import NetSpec
from pdebench.data.normalization import Normalizer
from pdebench.forecast.forecaster import Forecaster
from pdebench.forecast.integrators import INTEGRATORS, ORDERS
from pdebench.forecast.targets import DerivativeTarget, make_target, target_from_config

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
    assert make_target("difference", 0.3).label_frames(3) == (0, 3)
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
                                         r"around the current state, but the batch holds none"):
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
    """Given the exact rate, the forecast approaches exp(-0.7) u0 at the integrator's order as substeps grow, and
    every stage is one more net call (ab2's first substep is Heun's: one call more)."""
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
        seen.append(window.flatten().tolist())
        return torch.zeros(1, 1, 1, 1)

    target.advance(inputs, torch.ones(1, 1, 1, 1), net)
    assert seen == [[5.0, 2.0]]  # Heun's second stage at u + h * k1 = 1 + 1


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"target": "derivative", "fd_order": 3}, r"objective.fd_order=3 .*choose one of: 1, 2, 4"),
        ({"target": "derivative", "integrator": "rk5"}, r"objective.integrator='rk5' .*euler, heun, rk4, ab2"),
        ({"target": "derivative", "substeps": 0}, r"objective.substeps=0 is not valid"),
        ({"target": "derivative", "fd_spacing": 0}, r"objective.fd_spacing=0 is not valid: expected a number of "
                                                    r"stored-frame intervals"),
        ({"target": "derivative", "target_scale": 0.0}, r"objective.target_scale=0.0 is not valid: .* > 0"),
        ({"target": "velocity"}, r"objective.target='velocity' .*state, difference, derivative"),
    ],
)
def test_bad_target_settings_name_the_key(config: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        target_from_config(config)


def test_derivative_needs_bundle_one() -> None:
    with pytest.raises(ValueError, match=r"objective.target=derivative .*objective.bundle=1, got objective.bundle=4"):
        DerivativeTarget().label_frames(4)
