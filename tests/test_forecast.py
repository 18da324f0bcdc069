"""The forecast layer: a Forecaster is a Stepper in physical units, targets encode and decode, rollouts chain."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from baselines import build_model
from pdebench.data.batch import WindowBatch
from pdebench.data.grid import Grid
from pdebench.data.netspec import NetSpec
from pdebench.data.normalization import Normalizer
from pdebench.forecast import DifferenceTarget, Forecaster, StateTarget, Stepper, make_target, rollout
from pdebench.training.objectives import OneStep

FIELD_MEAN, FIELD_STD = [1.0, -2.0], [2.0, 0.5]
PARAM_MEAN, PARAM_STD = [3.0], [4.0]


class Affine(nn.Module):
    """net(x, c) = 2 x + c, broadcast over channels and space: simple enough to predict by hand."""

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        return 2 * x + cond.view(-1, 1, *([1] * (x.dim() - 2)))


def forecaster(target_name: str = "state", scale: float = 1.0) -> Forecaster:
    spec = NetSpec(("u", "v"), 1, 1, ("nu",), Grid.uniform("periodic", (3,)))
    norm = Normalizer(FIELD_MEAN, FIELD_STD, PARAM_MEAN, PARAM_STD)
    return Forecaster(Affine(), norm, make_target(target_name, scale), spec)


FRAMES = torch.tensor([[[[3.0, 1.0, 5.0]], [[-2.5, -1.0, -2.0]]]])  # [B=1, C=2, history=1, X=3], physical
COND = torch.tensor([[7.0]])  # physical nu = 7 -> standardised (7 - 3) / 4 = 1


def test_state_forecast_is_in_physical_units() -> None:
    # u: x_n = (u - 1) / 2 = [1, 0, 2]; out_n = 2 x_n + 1 = [3, 1, 5]; u' = 2 out_n + 1 = [7, 3, 11]
    # v: x_n = (v + 2) / 0.5 = [-1, 2, 0]; out_n = [-1, 5, 1]; v' = 0.5 out_n - 2 = [-2.5, 0.5, -1.5]
    out = forecaster()(FRAMES, COND)
    expected = torch.tensor([[[[7.0, 3.0, 11.0]], [[-2.5, 0.5, -1.5]]]])
    torch.testing.assert_close(out, expected)
    assert isinstance(forecaster(), Stepper)


def test_difference_forecast_adds_the_scaled_output_to_the_last_state() -> None:
    # u: x_n + 0.5 (2 x_n + 1) = [2.5, 0.5, 4.5] -> u' = [6, 2, 10]; v: [-1.5, 4.5, 0.5] -> v' = [-2.75, 0.25, -1.75]
    out = forecaster("difference", 0.5)(FRAMES, COND)
    expected = torch.tensor([[[[6.0, 2.0, 10.0]], [[-2.75, 0.25, -1.75]]]])
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("target", [StateTarget(), DifferenceTarget(0.3)])
def test_targets_decode_what_they_encode(target) -> None:
    torch.manual_seed(0)
    inputs, targets = torch.randn(2, 3, 2, 8), torch.randn(2, 3, 4, 8)
    torch.testing.assert_close(target.decode(inputs, target.encode(inputs, targets)), targets)


def test_difference_label_is_the_scaled_change_from_the_last_input() -> None:
    inputs = torch.tensor([[[[0.0], [1.0]]]])  # last input frame = 1
    targets = torch.tensor([[[[1.6], [0.4]]]])
    label = DifferenceTarget(0.3).encode(inputs, targets)
    torch.testing.assert_close(label, torch.tensor([[[[2.0], [-2.0]]]]))


def test_unknown_target_and_bad_scale_are_named() -> None:
    with pytest.raises(ValueError, match="objective.target='derivate'.*state, difference"):
        make_target("derivate")
    with pytest.raises(ValueError, match="objective.target_scale must be positive"):
        make_target("difference", 0.0)


@pytest.mark.parametrize("target_name", ["state", "difference"])
def test_one_step_loss_is_zero_for_the_exact_next_state(target_name: str) -> None:
    """The objective standardises the batch and compares the net output with the target's label."""
    fc = forecaster(target_name, 0.5)
    truth = fc(FRAMES, COND).detach()  # what the net's output decodes to is the label's frames
    batch = WindowBatch(FRAMES, truth, COND, torch.ones(1), torch.zeros(1, dtype=torch.long))
    assert OneStep({"loss": "mse"}).loss(fc, batch).item() == pytest.approx(0.0, abs=1e-12)
    wrong = WindowBatch(FRAMES, truth + 1.0, COND, torch.ones(1), torch.zeros(1, dtype=torch.long))
    assert OneStep({"loss": "mse"}).loss(fc, wrong).item() > 0.1


def test_rollout_feeds_predictions_back_and_cuts_the_last_bundle() -> None:
    calls = []

    def add_one(frames: Tensor, cond: Tensor) -> Tensor:
        calls.append(frames.clone())
        return frames[:, :, -1:].repeat(1, 1, 3, 1) + torch.arange(1, 4).view(1, 1, 3, 1)

    start = torch.zeros(2, 1, 2, 4)
    start[:, :, 1] = 10.0
    frames = list(rollout(add_one, start, torch.zeros(2, 0), n_steps=5))
    assert [f[0, 0, 0].item() for f in frames] == [11, 12, 13, 14, 15]
    assert len(calls) == 2 and calls[1][0, 0, :, 0].tolist() == [12, 13]  # window = last `history` predictions


def test_persistence_is_a_stepper_that_needs_no_normaliser() -> None:
    spec = NetSpec(("u",), 2, 3, (), Grid.uniform("periodic", (4,)))
    stepper = build_model({"name": "persistence"}, spec)
    assert isinstance(stepper, Stepper) and (stepper.history, stepper.bundle) == (2, 3)
    frames = torch.arange(8.0).view(1, 1, 2, 4)
    assert torch.equal(stepper(frames, torch.zeros(1, 0)), frames[:, :, 1:].expand(1, 1, 3, 4))
