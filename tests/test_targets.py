"""Targets and integrators: finite-difference labels and integrators converge at their orders on analytic signals,
and what a target encodes its `advance` gives back."""

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

OMEGA = 1.3
PHASES = torch.linspace(0.0, 2.0, 5, dtype=torch.float64)


def sampled_sine(spacing: float, past: int, future: int) -> tuple[Tensor, Tensor, Tensor]:
    """Frames of u(t) = sin(omega t + phase) at t = k * spacing, k = -past..future, split at k = 0 into inputs
    `[B, 1, past + 1, 5]` and targets `[B, 1, future, 5]`, with the exact du/dt at t = 0 `[B, 1, 1, 5]`."""
    k = torch.arange(-past, future + 1, dtype=torch.float64)
    frames = torch.sin(OMEGA * spacing * k[:, None] + PHASES).view(1, 1, -1, 5)
    rate = (OMEGA * torch.cos(PHASES)).view(1, 1, 1, 5)
    return frames[:, :, : past + 1], frames[:, :, past + 1:], rate


@pytest.mark.parametrize("order", [1, 2, 4])
def test_finite_difference_labels_converge_at_their_order(order: int) -> None:
    """The label is du/ds (per model step): divided by the spacing it approaches du/dt with error ~ spacing**order."""
    target = DerivativeTarget(fd_order=order)
    past, future = target.label_frames(1)
    errors = []
    for spacing in (0.1, 0.05):
        inputs, targets, rate = sampled_sine(spacing, past, future)
        errors.append((target.encode(inputs, targets) / spacing - rate).abs().max().item())
    assert math.log2(errors[0] / errors[1]) == pytest.approx(order, abs=0.25)


def test_label_frames_and_scale() -> None:
    assert DerivativeTarget(fd_order=1).label_frames(1) == (0, 1)
    assert DerivativeTarget(fd_order=2).label_frames(1) == (1, 1)
    assert DerivativeTarget(fd_order=4).label_frames(1) == (2, 2)
    assert make_target("difference", 0.3).label_frames(3) == (0, 3)
    # hand-computed: central difference of [1, 4, 9] is (9 - 1) / 2 = 4, divided by the scale 0.5
    inputs, targets = torch.tensor([1.0, 4.0]).view(1, 1, 2, 1), torch.tensor([9.0]).view(1, 1, 1, 1)
    assert DerivativeTarget(scale=0.5, fd_order=2).encode(inputs, targets).item() == pytest.approx(8.0)


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
def test_forward_difference_with_one_euler_step_round_trips(history: int) -> None:
    """fd_order=1 + euler + 1 substep: advancing the label gives back the stored next frame exactly."""
    torch.manual_seed(0)
    inputs, targets = torch.randn(2, 3, history, 8), torch.randn(2, 3, 1, 8)
    target = make_target("derivative", 0.3, 1, "euler", 1)

    def no_more_calls(window: Tensor) -> Tensor:
        raise AssertionError("one Euler step needs no further net call")

    torch.testing.assert_close(target.advance(inputs, target.encode(inputs, targets), no_more_calls), targets)


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
        ({"target": "derivative", "target_scale": 0.0}, r"objective.target_scale must be positive"),
        ({"target": "velocity"}, r"objective.target='velocity' .*state, difference, derivative"),
    ],
)
def test_bad_target_settings_name_the_key(config: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        target_from_config(config)


def test_derivative_needs_bundle_one() -> None:
    with pytest.raises(ValueError, match=r"objective.target=derivative .*objective.bundle=1, got objective.bundle=4"):
        DerivativeTarget().label_frames(4)
