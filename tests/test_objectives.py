"""Training objectives: losses against hand-computed values; pushforward and unrolled gradients against their
closed forms on a one-parameter model; the pushforward curriculum; input noise, per rank and step; windows sized to
what each objective reads, label frames read from the right stored frames; every misfit refused by key; default run
labels; and each objective trained end to end through the Lightning module."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from pdebench.config import ObjectiveConfig, default_run_label
from pdebench.data.batch import TrajectoryBatch, WindowBatch, collate
from pdebench.data.dataset import DatasetError, WindowDataset, WindowSpec, split_window
from pdebench.data.grid import Grid
from pdebench.data.netspec import NetSpec
from pdebench.data.normalization import Normalizer
from pdebench.data.reader import TrajectoryFile
from pdebench.errors import InvalidSetting
from pdebench.forecast.checkpoint import load_forecaster
from pdebench.forecast.forecaster import Forecaster
from pdebench.forecast.targets import DerivativeTarget, DifferenceTarget, target_from_config
from pdebench.training.config import train_config
from pdebench.training.objectives import (
    OneStep,
    Pushforward,
    Refinement,
    Unrolled,
    check_window_fits,
    make_objective,
    mse_loss,
    noise_seed,
    relative_l2_loss,
    window_frames,
    window_spec,
)
from pdebench.training.run import check_training_config, train

# One torch thread: the trainings here then round alike on every machine and in any test order (one and two threads
# round differently), and two threads on two busy cores make each step about 50 times slower.
pytestmark = pytest.mark.usefixtures("one_torch_thread")

TRUE_FACTOR = 0.9  # the data: u_k = TRUE_FACTOR**k * u_0
U0 = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)


def objective_config(name: str = "onestep", **settings) -> ObjectiveConfig:
    return ObjectiveConfig(**{"name": name, **settings})


class Scale(nn.Module):
    """net(x) = a * x with one parameter a, recording for every call whether autograd was on and its input."""

    def __init__(self, a: float) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a, dtype=torch.float64))
        self.grad_enabled: list[bool] = []
        self.inputs: list[Tensor] = []

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        self.grad_enabled.append(torch.is_grad_enabled())
        self.inputs.append(x.detach().clone())
        return self.a * x


def scale_forecaster(a: float, target: str = "state") -> Forecaster:
    spec = NetSpec(("u",), 1, 1, (), Grid.uniform("periodic", (4,)))
    return Forecaster(Scale(a), Normalizer([0.0], [1.0], [], []), target_from_config({"target": target}), spec)


def geometric_batch(n_targets: int) -> WindowBatch:
    """One window of the data u_k = 0.9**k u_0: the input u_0 and targets u_1..u_n."""
    k = torch.arange(1, n_targets + 1, dtype=torch.float64)
    targets = (TRUE_FACTOR ** k[:, None] * U0).view(1, 1, n_targets, 4)
    return WindowBatch(U0.view(1, 1, 1, 4), targets, torch.zeros(1, 0, dtype=torch.float64),
                       torch.ones(1, dtype=torch.float64), torch.zeros(1, dtype=torch.long))


def test_losses_match_hand_computed_values() -> None:
    pred = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    target = torch.tensor([[1.0, 0.0], [3.0, 4.0]])
    assert mse_loss(pred, target).item() == pytest.approx((0 + 4 + 9 + 16) / 4)
    # sample 1: ||(0, 2)|| / ||(1, 0)|| = 2; sample 2: ||(3, 4)|| / ||(3, 4)|| = 1
    assert relative_l2_loss(pred, target).item() == pytest.approx(1.5)


@pytest.mark.parametrize("free_steps", [0, 1, 3])
def test_pushforward_takes_no_gradient_through_its_unrolled_steps(free_steps: int,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """net = a u, data u_k = b^k u_0. After k no-grad steps the input is a^k u_0 and the loss
    mean((a^(k+1) - b^(k+1))^2 u_0^2) has, with a^k held constant, the gradient 2 mean((a^(k+1) - b^(k+1)) a^k u_0^2);
    backpropagating through the unrolled steps would multiply it by k + 1."""
    a, b = 1.2, TRUE_FACTOR
    fc = scale_forecaster(a)
    objective = Pushforward(objective_config("pushforward", unroll_steps=3))
    monkeypatch.setattr(objective, "draw_steps", lambda: free_steps)
    loss = objective.loss(fc, geometric_batch(4))
    loss.backward()
    u0_sq = (U0**2).mean().item()
    assert loss.item() == pytest.approx((a ** (free_steps + 1) - b ** (free_steps + 1)) ** 2 * u0_sq)
    expected = 2 * (a ** (free_steps + 1) - b ** (free_steps + 1)) * a**free_steps * u0_sq
    assert fc.net.a.grad.item() == pytest.approx(expected)
    assert fc.net.grad_enabled == [False] * free_steps + [True]


def test_unrolled_training_backpropagates_through_every_step() -> None:
    """The mean over j = 1..N of mean((a^j - b^j)^2 u_0^2) has the gradient mean_j 2 (a^j - b^j) j a^(j-1) u_0^2:
    the factor j is the gradient flowing back through the j - 1 earlier steps."""
    a, b, n = 1.2, TRUE_FACTOR, 3
    fc = scale_forecaster(a)
    loss = Unrolled(objective_config("unrolled", unroll_steps=n)).loss(fc, geometric_batch(n))
    loss.backward()
    u0_sq = (U0**2).mean().item()
    steps = range(1, n + 1)
    assert loss.item() == pytest.approx(sum((a**j - b**j) ** 2 * u0_sq for j in steps) / n)
    expected = sum(2 * (a**j - b**j) * j * a ** (j - 1) * u0_sq for j in steps) / n
    assert fc.net.a.grad.item() == pytest.approx(expected)
    assert fc.net.grad_enabled == [True] * n


def test_unrolled_with_one_step_is_one_step_training() -> None:
    torch.manual_seed(0)
    batch = WindowBatch(torch.randn(3, 1, 1, 4, dtype=torch.float64), torch.randn(3, 1, 1, 4, dtype=torch.float64),
                        torch.zeros(3, 0, dtype=torch.float64), torch.ones(3), torch.arange(3))
    config = objective_config(target="difference", target_scale=0.3)
    one = OneStep(config).loss(scale_forecaster(0.7, "difference"), batch)
    config = dataclasses.replace(config, name="unrolled", unroll_steps=1)
    unrolled = Unrolled(config).loss(scale_forecaster(0.7, "difference"), batch)
    assert unrolled.item() == pytest.approx(one.item())


def test_pushforward_curriculum_draws_zero_to_min_epoch_n() -> None:
    torch.manual_seed(0)
    objective = Pushforward(objective_config("pushforward", unroll_steps=3))
    for epoch, allowed in [(0, {0}), (1, {0, 1}), (2, {0, 1, 2}), (7, {0, 1, 2, 3})]:
        objective.set_epoch(epoch)
        assert {objective.draw_steps() for _ in range(300)} == allowed


def test_pushforward_curriculum_by_share_of_the_budget_ignores_the_epoch() -> None:
    """With curriculum_fraction 0.05 of 1,500 steps a stage is 75 steps: steps 0-74 never unroll, 75-149 unroll at
    most once, and from 150 on at most twice, all within the first epoch; a budget-less run is refused."""
    torch.manual_seed(0)
    objective = Pushforward(objective_config("pushforward", unroll_steps=3, curriculum_fraction=0.05))
    objective.set_epoch(5)  # the epoch does not count
    for step, allowed in [(0, {0}), (74, {0}), (75, {0, 1}), (149, {0, 1}), (150, {0, 1, 2}), (1499, {0, 1, 2, 3})]:
        objective.set_step(step, 1500)
        assert {objective.draw_steps() for _ in range(300)} == allowed, step
    with pytest.raises(InvalidSetting, match=r"curriculum_fraction=0.05 needs a budget of optimiser steps; set "
                                             r"trainer.max_steps \(it is -1\)"):
        objective.set_step(0, -1)
    by_epoch = Pushforward(objective_config("pushforward", unroll_steps=3))
    by_epoch.set_step(1499, 1500)  # without the setting the step does not count
    assert {by_epoch.draw_steps() for _ in range(100)} == {0}


def test_a_checkpoint_from_before_the_curriculum_fraction_resumes_and_one_with_another_does_not(compose_cfg) -> None:
    from pdebench.config import plain_config
    from pdebench.training.run import _resume_conflict

    plain = plain_config(train_config(compose_cfg("train", ["experiment=ks_unet"])))
    older = {**plain, "objective": {k: v for k, v in plain["objective"].items() if k != "curriculum_fraction"}}
    assert _resume_conflict(plain, {}, older) is None
    pushed = plain_config(train_config(compose_cfg("train", ["experiment=ks_mpnn"])))
    older = {**pushed, "objective": {k: v for k, v in pushed["objective"].items() if k != "curriculum_fraction"}}
    assert _resume_conflict(pushed, {}, older) == ("objective.curriculum_fraction=null but this run asks for "
                                                   "objective.curriculum_fraction=0.05")


@pytest.mark.parametrize("fraction", [0.0, 1.5, float("nan")])
def test_a_curriculum_fraction_outside_0_1_is_refused(fraction: float) -> None:
    with pytest.raises(InvalidSetting, match="curriculum_fraction"):
        objective_config("pushforward", unroll_steps=1, curriculum_fraction=fraction)


def test_input_noise_perturbs_what_the_net_sees_by_the_configured_std() -> None:
    torch.manual_seed(0)
    fc = scale_forecaster(1.0)
    inputs = torch.randn(64, 1, 1, 4, dtype=torch.float64)
    batch = WindowBatch(inputs, inputs.clone(), torch.zeros(64, 0, dtype=torch.float64), torch.ones(64),
                        torch.arange(64))
    assert OneStep(objective_config()).loss(fc, batch).item() == 0.0  # identity net, no noise: exact
    OneStep(objective_config(input_noise_std=0.05)).loss(fc, batch)
    seen = fc.net.inputs[-1].view(64, 1, 1, 4)
    assert (seen - inputs).std().item() == pytest.approx(0.05, rel=0.15)
    pushed = Pushforward(objective_config("pushforward", unroll_steps=1, input_noise_std=0.05))
    pushed.loss(fc, WindowBatch(inputs, torch.cat([inputs, inputs], 2), batch.cond, batch.step_time, batch.index))
    assert (fc.net.inputs[-1].view(64, 1, 1, 4) - inputs).std().item() == pytest.approx(0.05, rel=0.15)


@pytest.mark.parametrize("name", ["onestep", "pushforward", "unrolled"])
def test_input_noise_enters_the_difference_label_so_the_net_learns_to_undo_it(name: str) -> None:
    """With the difference target the label is `(u(t+1) - v) / scale` for the noisy state v the net sees, not the
    clean u(t): the loss is recomputed from the frames the net was given (a label against the clean state, which
    the state target cannot tell apart, gives another loss: 0.01 against ~4 here), and the noise has the
    configured std (0.2, not 0.05 or none)."""
    torch.manual_seed(0)
    scale, a = 0.1, 0.5
    spec = NetSpec(("u",), 1, 1, (), Grid.uniform("periodic", (4,)))
    fc = Forecaster(Scale(a), Normalizer([0.0], [1.0], [], []),
                    target_from_config({"target": "difference", "target_scale": scale}), spec)
    inputs = torch.randn(64, 1, 1, 4, dtype=torch.float64)
    targets = inputs + 0.01  # the true change is 0.01 everywhere: label 0.1 without noise
    settings = {"target": "difference", "target_scale": scale, "input_noise_std": 0.2}
    objective = {"onestep": OneStep, "pushforward": Pushforward, "unrolled": Unrolled}[name](
        objective_config(name, **settings, **({} if name == "onestep" else {"unroll_steps": 1})))
    batch = WindowBatch(inputs, targets if name != "pushforward" else torch.cat([targets, targets + 0.01], 2),
                        torch.zeros(64, 0, dtype=torch.float64), torch.ones(64, dtype=torch.float64), torch.arange(64))
    loss = objective.loss(fc, batch).item()
    seen = fc.net.inputs[-1].view(64, 1, 1, 4)
    assert (seen - inputs).std().item() == pytest.approx(0.2, rel=0.1)
    assert loss == pytest.approx(((a * seen - (targets - seen) / scale) ** 2).mean().item(), rel=1e-12)
    clean = ((a * seen - (targets - inputs) / scale) ** 2).mean().item()
    assert abs(loss - clean) > 0.5 * loss


def test_input_noise_differs_between_ranks_and_repeats_for_a_rank() -> None:
    """Data-parallel ranks draw their own noise (a seed per rank and step), and the same rank, seed and step draw the
    same noise again (what a resumed run relies on: the step is restored, no generator state is needed)."""
    seeds = {(rank, step): noise_seed(5, rank, step) for rank in range(3) for step in range(3)}
    assert len(set(seeds.values())) == 9 and noise_seed(5, 1, 2) == seeds[1, 2] != noise_seed(6, 1, 2)
    inputs = torch.zeros(64, 1, 1, 4, dtype=torch.float64)
    batch = WindowBatch(inputs, inputs.clone(), torch.zeros(64, 0, dtype=torch.float64), torch.ones(64),
                        torch.arange(64))
    objective = OneStep(objective_config(input_noise_std=0.05))
    seen: dict[int, list[Tensor]] = {}
    for rank in (0, 1, 0):
        fc = scale_forecaster(1.0)
        objective.start_batch(noise_seed(5, rank, 3))
        objective.loss(fc, batch)
        seen.setdefault(rank, []).append(fc.net.inputs[-1])
    torch.testing.assert_close(seen[0][0], seen[0][1], rtol=0, atol=0)
    assert (seen[0][0] - seen[1][0]).abs().min() > 0  # not one element in common
    for noise in (seen[0][0], seen[1][0]):
        assert noise.std().item() == pytest.approx(0.05, rel=0.15)
    refiner = Refinement(objective_config("pderefiner", target="difference"))  # its refinement noise, likewise
    draws = []
    for rank in (0, 1, 0):
        refiner.start_batch(noise_seed(5, rank, 3))
        draws.append(refiner.gaussian_like(torch.zeros(64)))
    assert torch.equal(draws[0], draws[2]) and not torch.equal(draws[0], draws[1])


def test_training_step_seeds_the_noise_by_run_rank_and_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Lightning module hands the objective the seed of its run, rank and step before every loss."""
    from pdebench.training.module import SurrogateModule

    data_info = {"fields": ["u"], "parameters": [], "grid": Grid.uniform("periodic", (8,)).to_record(),
                 "stats": Normalizer([0.0], [1.0], [], []).stats(), "frame_stride": 1}
    module = SurrogateModule({"name": "fno", "hidden_channels": 4, "n_modes": [4], "n_layers": 1},
                             objective_config(input_noise_std=0.1), {"lr": 1e-3}, {}, data_info,
                             {"label": "x", "seed": 7})
    seeds: list[int] = []
    monkeypatch.setattr(module.objective, "start_batch", seeds.append)
    batch = WindowBatch(torch.zeros(2, 1, 1, 8), torch.zeros(2, 1, 1, 8), torch.zeros(2, 0), torch.ones(2),
                        torch.arange(2))
    for rank in (0, 1):
        monkeypatch.setattr(SurrogateModule, "global_rank", property(lambda self, rank=rank: rank))
        module.training_step(batch, 0)
    assert seeds == [noise_seed(7, 0, 0), noise_seed(7, 1, 0)]


def test_derivative_label_reads_the_stored_label_frames() -> None:
    """The central difference reads the stored frames around the current state (`batch.labels`), not the model
    frames; the net sees only `history` frames; the label is (u_{+1} - u_{-1}) / 2 per stored interval, times
    frame_stride = 4 per model step."""
    fc = scale_forecaster(0.0, "derivative")
    fc.target = DerivativeTarget(fd_order=2, frame_stride=4)
    labels = torch.tensor([1.0, 4.0, 9.0], dtype=torch.float64).view(1, 1, 3, 1).expand(1, 1, 3, 4)
    batch = WindowBatch(labels[:, :, 1:2], labels[:, :, :0], torch.zeros(1, 0, dtype=torch.float64), torch.ones(1),
                        torch.zeros(1, dtype=torch.long), labels)
    loss = OneStep(objective_config(target="derivative", fd_order=2)).loss(fc, batch)
    assert loss.item() == pytest.approx(16.0**2)  # net outputs 0, label 4 * (9 - 1) / 2 = 16
    assert fc.net.inputs[-1].shape == (1, 1, 4)


def test_pushforward_derivative_label_is_taken_around_the_state_it_reached(monkeypatch: pytest.MonkeyPatch) -> None:
    """net = a u as a rate, Euler over one model step: the state after one free step is v = (1 + a) u_0. Its label
    is the forward difference of the stored frames one and two states on plus the gap to the true state,
    (u_2 - u_1) + (u_1 - v) = u_2 - v, so the loss is mean(((1 + a) v - u_2)^2) = ((1 + a)^2 - b^2)^2 mean(u_0^2)."""
    a, b = 0.2, TRUE_FACTOR
    fc = scale_forecaster(a, "derivative")
    config = objective_config("pushforward", unroll_steps=2, target="derivative")
    assert window_spec(config, 1).label_offsets == (0, 1, 1, 2, 2, 3)
    objective = Pushforward(config)
    monkeypatch.setattr(objective, "draw_steps", lambda: 1)
    frames = geometric_batch(3).targets
    labels = torch.cat([U0.view(1, 1, 1, 4), frames], dim=2)[:, :, [0, 1, 1, 2, 2, 3]]
    batch = WindowBatch(U0.view(1, 1, 1, 4), frames[:, :, :2], torch.zeros(1, 0, dtype=torch.float64),
                        torch.ones(1, dtype=torch.float64), torch.zeros(1, dtype=torch.long), labels)
    loss = objective.loss(fc, batch)
    assert loss.item() == pytest.approx(((1 + a) ** 2 - b**2) ** 2 * (U0**2).mean().item())
    with pytest.raises(ValueError, match=r"needs 2 label frames around the state 1 model steps on, but the batch "
                                         r"holds 2 label frames in all"):
        objective.loss(fc, WindowBatch(batch.inputs, batch.targets, batch.cond, batch.step_time, batch.index,
                                       labels[:, :, :2]))


def test_window_layout_on_an_integer_ramp() -> None:
    """Stored frames numbered 0.. in a window: inputs, targets and label frames land where the spec says."""
    ramp = torch.arange(40.0).view(1, 40)
    spec = WindowSpec(history=2, bundle=1, frame_stride=4, label_offsets=(-2, -1, 0, 1, 2))
    assert (spec.lead, spec.span) == (0, 9)  # the current state (stored frame 4) has two frames before it
    inputs, targets, labels = split_window(ramp[:, : spec.span], spec)
    assert inputs.tolist() == [[0.0, 4.0]] and targets.tolist() == [[8.0]] and labels.tolist() == [[2, 3, 4, 5, 6]]
    spec = WindowSpec(history=1, bundle=0, frame_stride=4, label_offsets=(-2, -1, 0, 1, 2))
    assert (spec.lead, spec.span) == (2, 5)  # the window starts two stored frames before its one input
    inputs, targets, labels = split_window(ramp[:, 10: 10 + spec.span], spec)
    assert inputs.tolist() == [[12.0]] and targets.shape == (1, 0) and labels.tolist() == [[10, 11, 12, 13, 14]]
    spec = WindowSpec(history=1, bundle=2, frame_stride=4, label_offsets=(0, 1, 4, 5, 8, 9))  # unrolled, order 1
    inputs, targets, labels = split_window(ramp[:, : spec.span], spec)
    assert (inputs.tolist(), targets.tolist(), labels.tolist()) == ([[0.0]], [[4.0, 8.0]], [[0, 1, 4, 5, 8, 9]])
    assert split_window(ramp[:, :9], WindowSpec(2, 1, 4))[2] is None


def test_windows_carry_the_stored_label_frames(ks_tiny: Path) -> None:
    """On the real file: an unrolled derivative window (order 4, frame_stride 4) holds, per reachable state j, the
    stored frames current + 4 j + (-2..2); collated batches stack them and leave `labels` None without them."""
    spec = window_spec(objective_config("unrolled", unroll_steps=2, target="derivative", fd_order=4), 4)
    assert spec.label_offsets == (-2, -1, 0, 1, 2, 2, 3, 4, 5, 6)
    data = WindowDataset(ks_tiny / "train.h5", spec)
    with TrajectoryFile(ks_tiny / "train.h5") as file:
        u = file.read_field("u", 2)
        assert data.windows_per_traj == file.n_frames - 8  # stored frames -2..6 around the first current state
    item = data[2 * data.windows_per_traj + 5]  # trajectory 2, window starting at stored frame 5, current at 7
    np.testing.assert_array_equal(item.inputs[0].numpy(), u[[7]])
    np.testing.assert_array_equal(item.targets[0].numpy(), u[[11]])
    np.testing.assert_array_equal(item.labels[0].numpy(), u[[5, 6, 7, 8, 9, 9, 10, 11, 12, 13]])
    batch = collate([data[0], data[3]])
    assert batch.labels.shape == (2, 1, 10, 256)
    plain = WindowDataset(ks_tiny / "train.h5", window_spec(objective_config(), 4))
    assert collate([plain[0], plain[1]]).labels is None


@pytest.mark.parametrize(
    ("settings", "frames"),
    [
        ({}, (1, 1)),
        ({"history": 3, "bundle": 2}, (3, 2)),
        ({"name": "pushforward", "unroll_steps": 2, "history": 3, "bundle": 2}, (3, 6)),
        ({"name": "unrolled", "unroll_steps": 3}, (1, 3)),
        ({"target": "derivative", "fd_order": 4}, (1, 0)),
        ({"name": "pushforward", "unroll_steps": 1, "target": "derivative", "fd_order": 2, "history": 2}, (2, 1)),
        ({"name": "pderefiner", "target": "difference"}, (1, 1)),
    ],
)
def test_windows_hold_what_each_objective_reads(settings: dict, frames: tuple[int, int]) -> None:
    assert window_frames(objective_config(**settings)) == frames


@pytest.mark.parametrize(
    ("settings", "offsets", "span"),
    [
        ({}, (), 5),
        ({"target": "derivative", "fd_order": 2}, (-1, 0, 1), 3),
        ({"target": "derivative", "fd_order": 2, "fd_spacing": 4}, (-4, 0, 4), 9),
        ({"target": "derivative", "fd_order": 1, "history": 2}, (0, 1), 6),
        ({"name": "pushforward", "unroll_steps": 2, "target": "derivative", "fd_order": 2},
         (-1, 0, 1, 3, 4, 5, 7, 8, 9), 11),
        ({"name": "unrolled", "unroll_steps": 2, "target": "derivative"}, (0, 1, 4, 5), 6),
    ],
)
def test_window_spec_adds_the_label_frames_of_every_reachable_state(settings: dict, offsets: tuple, span: int) -> None:
    """frame_stride=4: label offsets (stored frames) around the current state and each state an unroll reaches."""
    spec = window_spec(objective_config(**settings), 4)
    assert (spec.label_offsets, spec.span) == (offsets, span)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"name": "pushfoward"}, r"objective.name='pushfoward' is not a known objective; choose one of: onestep, "),
        ({"unroll_steps": 2}, r"objective.unroll_steps=2 is not used by objective.name=onestep; .*: pushforward, "),
        ({"name": "pushforward"}, r"objective.unroll_steps=0 gives pushforward no unrolled step"),
        ({"name": "unrolled"}, r"objective.unroll_steps=0 gives unrolled training no step"),
        ({"name": "pderefiner", "input_noise_std": 0.1}, r"objective.input_noise_std=0.1 is not used by "
                                                           r"objective.name=pderefiner"),
        ({"name": "pderefiner", "target": "derivative"}, r"objective.target=derivative cannot be trained with "
                                                         r"objective.name=pderefiner; choose one of: state, "),
        ({"integrator": "rk4"}, r"objective.integrator=rk4 only applies to objective.target=derivative"),
        ({"target": "derivative", "bundle": 2}, r"needs objective.bundle=1, got objective.bundle=2"),
        ({"loss": "l1"}, r"objective.loss='l1' is not a known loss; choose one of: mse, rel_l2"),
    ],
)
def test_objective_misfits_are_refused_by_key(settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_objective(objective_config(**settings))


def test_window_longer_than_the_trajectories_names_the_keys() -> None:
    config = objective_config("pushforward", unroll_steps=9)
    check_window_fits(config, n_train_frames=41, frame_stride=4)  # 11 model frames hold 1 + 10
    with pytest.raises(DatasetError, match=r"objective.name=pushforward, objective.history=1, objective.bundle=1, "
                                           r"objective.unroll_steps=9 need training windows of 11 model frames .* "
                                           r"hold 10 \(37 stored frames, frame_stride=4\)"):
        check_window_fits(config, n_train_frames=37, frame_stride=4)
    derivative = objective_config(target="derivative", fd_order=4)
    check_window_fits(derivative, n_train_frames=5, frame_stride=4)  # stored frames -2..2: less than 2 model steps
    with pytest.raises(DatasetError, match=r"^objective.name=onestep, objective.history=1, objective.bundle=1, "
                                           r"objective.target=derivative, objective.fd_order=4, objective.fd_spacing=1 "
                                           r"need training windows of 5 stored frames \(1 model frames in, 0 after, "
                                           r"frame_stride=4, and label frames from 2 stored frames before to 2 after "
                                           r"the current state\), but the train trajectories hold 4 stored frames; "
                                           r"lower one of these settings or generate longer trajectories$"):
        check_window_fits(derivative, n_train_frames=4, frame_stride=4)
    with pytest.raises(DatasetError, match=r"objective.fd_spacing=4 need training windows of 17 stored frames"):
        check_window_fits(dataclasses.replace(derivative, fd_spacing=4), n_train_frames=16, frame_stride=4)


# A small, fast FNO; each run trains two steps an epoch and validates a short rollout.
FAST = ["data=ks", "data.preset=tiny", "data.batch_size=4", "model=fno", "model.hidden_channels=8",
        "model.n_modes=[8]", "model.n_layers=1", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
        "trainer.enable_progress_bar=false", "validation.rollout_steps=2", "validation.max_trajectories=2"]


def test_config_errors_come_before_any_data(compose_cfg, tmp_path: Path) -> None:
    cfg = compose_cfg("train", [*FAST, "objective=pushforward", "objective.unroll_steps=0",
                                f"data.root={tmp_path}/nowhere", f"run_dir={tmp_path}/run"])
    with pytest.raises(ValueError, match="objective.unroll_steps=0 gives pushforward no unrolled step"):
        check_training_config(train_config(cfg))
    with pytest.raises(ValueError, match="objective.unroll_steps=0 gives pushforward"):
        train(cfg)
    assert not (tmp_path / "run").exists()


def test_unroll_beyond_the_trajectories_fails_before_training(compose_cfg, data_root: Path, tmp_path: Path) -> None:
    cfg = compose_cfg("train", [*FAST, "objective=unrolled", "objective.unroll_steps=30", f"data.root={data_root}",
                                f"run_dir={tmp_path}/run"])
    with pytest.raises(DatasetError, match=r"objective.unroll_steps=30 need training windows of 31 model frames"):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides",
    [
        ["objective=onestep", "objective.history=2", "objective.bundle=2", "objective.target=difference",
         "objective.target_scale=0.3", "objective.loss=rel_l2"],
        ["objective=derivative", "objective.history=2", "objective.fd_order=4", "objective.integrator=rk4",
         "objective.substeps=2"],
        ["objective=pushforward", "objective.unroll_steps=2", "objective.input_noise_std=0.01",
         "objective.target=derivative", "objective.integrator=heun", "trainer.max_epochs=2"],
        ["objective=unrolled", "objective.unroll_steps=2", "objective.bundle=2", "objective.loss=rel_l2"],
    ],
    ids=["onestep-history-bundle", "derivative-rk4", "pushforward-noise-derivative", "unrolled-bundle"],
)
def test_each_objective_trains_end_to_end(compose_cfg, data_root: Path, tmp_path: Path, overrides: list[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Real Lightning module and HDF5 windows: training runs, the checkpoint rebuilds the same forecaster (target,
    integrator) and it rolls out finite frames; pushforward sees the epoch advance."""
    epochs_seen: set[int] = set()
    honest_draw = Pushforward.draw_steps

    def recording_draw(self: Pushforward) -> int:
        epochs_seen.add(self.epoch)
        return honest_draw(self)

    monkeypatch.setattr(Pushforward, "draw_steps", recording_draw)
    cfg = compose_cfg("train", [*FAST, *overrides, f"data.root={data_root}", f"run_dir={tmp_path}/run"])
    best = train(cfg)
    trained = load_forecaster(best)
    expected = target_from_config(cfg["objective"])
    assert type(trained.forecaster.target) is type(expected)
    assert trained.record["objective"] == cfg["objective"]
    if isinstance(expected, DerivativeTarget):
        assert trained.forecaster.target.integrator_name == cfg["objective"]["integrator"]
        # labelled one stored interval apart on frame_stride=4 data, as the record says
        assert (trained.forecaster.target.fd_spacing, trained.forecaster.target.frame_stride) == (1, 4)
        assert trained.record["objective"]["fd_spacing"] == 1 and trained.record["data"]["frame_stride"] == 4
    if isinstance(expected, DifferenceTarget):
        assert trained.forecaster.target.scale == 0.3
    if cfg["objective"]["name"] == "pushforward":
        assert epochs_seen == {0, 1}
    spec = trained.forecaster.spec
    frames = torch.randn(2, spec.n_fields, spec.history, *spec.grid.shape)
    with torch.no_grad():
        out = trained.forecaster(frames, torch.zeros(2, spec.n_cond))
    assert out.shape == (2, spec.n_fields, spec.bundle, *spec.grid.shape)
    assert math.isfinite(out.abs().sum().item())


def test_ks_unet_preset_is_pde_refiners_mse_baseline(compose_cfg) -> None:
    """U-Net, one-step MSE on the raw difference to the last state divided by 0.3 (PDE-Refiner's code divides the
    unstandardised KS difference), EMA 0.995."""
    cfg = compose_cfg("train", ["experiment=ks_unet"])
    check_training_config(train_config(cfg))
    assert (cfg["model"]["name"], cfg["objective"]["name"], cfg["objective"]["loss"]) == ("unet", "onestep", "mse")
    assert (cfg["objective"]["target"], cfg["objective"]["target_scale"]) == ("raw_difference", 0.3)
    assert cfg["optim"]["ema_decay"] == 0.995


@pytest.mark.parametrize(
    ("overrides", "label"),
    [
        ([], "fno"),
        (["objective=derivative"], "fno-derivative"),
        (["objective=pushforward"], "fno-pushforward"),
        (["objective=unrolled", "objective.target=derivative"], "fno-unrolled-derivative"),
        (["objective.target=difference"], "fno-difference"),
        (["experiment=ks_pderefiner"], "pderefiner"),
        (["experiment=ks_fno_quickstart"], "fno-quickstart"),
        (["objective=derivative", "label=mine"], "mine"),
    ],
)
def test_default_label_names_objective_and_target(compose_cfg, overrides: list[str], label: str) -> None:
    """A derivative or pushforward run gets its own run folder instead of resuming (or being refused by) the plain
    onestep run of the same model; default runs keep theirs."""
    cfg = compose_cfg("train", overrides)
    assert cfg["label"] == label and cfg["run_dir"] == f"runs/ks-small/{label}/seed0"
    assert default_run_label("unet", "onestep", "state") == "unet"


def test_pushforward_free_steps_carry_the_ab2_rate_as_a_rollout_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """ab2 over two free model steps and one gradient step: the first free step starts itself (Heun: 2 net calls),
    the second reuses the carried rate (1 call), the gradient step's output is 1 more: 4 calls. Restarting every
    step would make 5. The state the free steps reach equals a rollout's two steps."""
    from pdebench.forecast import rollout

    spec = NetSpec(("u",), 1, 1, (), Grid.uniform("periodic", (4,)))
    target = target_from_config({"target": "derivative", "integrator": "ab2"})
    fc = Forecaster(Scale(0.2), Normalizer([0.0], [1.0], [], []), target, spec)
    objective = Pushforward(objective_config("pushforward", unroll_steps=2, target="derivative", integrator="ab2"))
    monkeypatch.setattr(objective, "draw_steps", lambda: 2)
    frames = geometric_batch(4).targets
    labels = torch.cat([U0.view(1, 1, 1, 4), frames], dim=2)[:, :, [0, 1, 1, 2, 2, 3, 3, 4]]
    batch = WindowBatch(U0.view(1, 1, 1, 4), frames[:, :, :3], torch.zeros(1, 0, dtype=torch.float64),
                        torch.ones(1, dtype=torch.float64), torch.zeros(1, dtype=torch.long), labels)
    objective.loss(fc, batch)
    assert len(fc.net.inputs) == 4
    reached = fc.net.inputs[-1]  # the gradient step's input: the state after the two free steps
    fc.net.inputs.clear()
    rolled = list(rollout(fc, U0.view(1, 1, 1, 4), torch.zeros(1, 0, dtype=torch.float64), 2))
    torch.testing.assert_close(reached, rolled[-1].view_as(reached))


class ToyRefiner(nn.Module):
    """PDE-Refiner's training interface on a stand-in: K = 3 refinement steps; `refinement_pair` records what it is
    given and returns the drawn step (per sample, everywhere) as the prediction and the noise as the goal."""

    refinement_steps = 3

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[Tensor, ...]] = []

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        return x

    def refinement_pair(self, x: Tensor, cond: Tensor, label: Tensor, step: Tensor, noise: Tensor
                        ) -> tuple[Tensor, Tensor]:
        self.seen.append((x, cond, label, step, noise))
        return step.to(label.dtype).view(-1, *([1] * (label.dim() - 1))).expand_as(label), noise


def test_the_refinement_objective_scores_the_nets_pair_on_the_difference_label_and_a_drawn_step() -> None:
    """The net gets the standardised inputs and conditioning, the difference label `(u(t+1) - u(t)) / scale`
    (standardised), a step per sample drawn from 0..K (each value seen on 64 samples) and unit noise shaped like the
    label, both from the batch's own stream; the loss is the mse between the pair it returns."""
    spec = NetSpec(("u",), 1, 1, ("nu",), Grid.uniform("periodic", (4,)))
    fc = Forecaster(ToyRefiner(), Normalizer([1.0], [2.0], [3.0], [4.0]),
                    target_from_config({"target": "difference", "target_scale": 0.5}), spec)
    inputs = torch.randn(64, 1, 1, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    batch = WindowBatch(inputs, inputs + 1.0, torch.full((64, 1), 7.0, dtype=torch.float64), torch.ones(64),
                        torch.arange(64))
    objective = Refinement(objective_config("pderefiner", target="difference", target_scale=0.5))
    objective.start_batch(noise_seed(1, 0, 5))
    loss = objective.loss(fc, batch)
    x, cond, label, step, noise = fc.net.seen[-1]
    torch.testing.assert_close(x, ((inputs - 1.0) / 2.0).view(64, 1, 4))
    torch.testing.assert_close(cond, torch.ones(64, 1, dtype=torch.float64))
    torch.testing.assert_close(label, torch.ones(64, 1, 4, dtype=torch.float64))  # (1 / 2) / 0.5
    assert set(step.tolist()) == {0, 1, 2, 3} and noise.shape == label.shape
    assert noise.std().item() == pytest.approx(1.0, rel=0.2)
    expected = ((step.to(torch.float64).view(64, 1, 1) - noise) ** 2).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)
    objective.start_batch(noise_seed(1, 0, 5))
    objective.loss(fc, batch)
    assert torch.equal(fc.net.seen[-1][3], step) and torch.equal(fc.net.seen[-1][4], noise)  # the step's own stream
    objective.loss(fc, batch)  # a second loss on the same batch stream continues it: fresh steps and noise
    assert not torch.equal(fc.net.seen[-1][3], step) and not torch.equal(fc.net.seen[-1][4], noise)


def test_a_net_and_an_objective_that_do_not_fit_are_refused_in_one_sentence() -> None:
    """A net that names its objective refuses another; an objective that needs a net method the net lacks says so,
    with its own hint (the model's name filled in) or a plain one."""
    from types import SimpleNamespace

    from pdebench.training.objectives import check_objective_fits

    named = nn.Linear(1, 1)
    named.training_objective = "pderefiner"
    with pytest.raises(InvalidSetting, match=r"^model=refiner is trained with objective=pderefiner, not "
                                             r"objective=onestep; pass objective=pderefiner$"):
        check_objective_fits("onestep", OneStep(objective_config()), named, "refiner")
    check_objective_fits("pderefiner", SimpleNamespace(), named, "refiner")
    needs = SimpleNamespace(requires="interpolate", hint="try {model} elsewhere")
    with pytest.raises(InvalidSetting, match=r"^objective=stage cannot train model=fno, whose net has no "
                                             r"interpolate\(\); try fno elsewhere$"):
        check_objective_fits("stage", needs, nn.Linear(1, 1), "fno")
    with pytest.raises(InvalidSetting, match=r"whose net has no interpolate\(\); choose another objective$"):
        check_objective_fits("stage", SimpleNamespace(requires="interpolate"), nn.Linear(1, 1), "fno")
    check_objective_fits("stage", needs, SimpleNamespace(interpolate=lambda: None), "dyffusion")


class StraightLine(nn.Module):
    """DYffusion's interpolator interface on a stand-in: the straight line from x_0 to x_h at time i of h = 5."""

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        return x

    def interpolate(self, frames: Tensor, last: Tensor, time: Tensor, cond: Tensor) -> Tensor:
        w = (time / 5).view(-1, 1, 1, 1)
        return frames[:, :, -1:] * (1 - w) + last * w

    @contextlib.contextmanager
    def random_stream(self, generator: torch.Generator | None) -> Iterator[None]:
        yield


def test_dyffusion_stages_read_history_and_horizon_and_validate_on_the_complete_windows_only() -> None:
    """Both stages read `history` frames in and the `h` after them. Frames u_k = k^2 with h = 5: the one complete
    window of 6 frames scores the line 5 i against i^2 at i = 1..4, nRMSE sqrt(104 / 354); 5 frames hold none."""
    for name in ("dyffusion_interpolator", "dyffusion_forecaster"):
        assert window_frames(objective_config(name, history=2, bundle=5)) == (2, 5)
    objective = make_objective(objective_config("dyffusion_interpolator", bundle=5))
    spec = NetSpec(("u",), 1, 5, (), Grid.uniform("periodic", (4,)))
    fc = Forecaster(StraightLine(), Normalizer([0.0], [1.0], [], []), target_from_config({"target": "state"}), spec)
    frames = (torch.arange(6.0) ** 2).view(1, 1, 6, 1).expand(2, 1, 6, 4)
    batch = TrajectoryBatch(frames, torch.zeros(2, 0), torch.ones(2), torch.arange(2))
    errors = objective.validation_errors(fc, batch)
    torch.testing.assert_close(errors, torch.full((2,), math.sqrt(104 / 354)))
    short = TrajectoryBatch(frames[:, :, :5], torch.zeros(2, 0), torch.ones(2), torch.arange(2))
    with pytest.raises(ValueError, match=r"^validation trajectories of 5 model frames hold no window of 6$"):
        objective.validation_errors(fc, short)


def test_relative_l2_of_a_zero_target_is_the_error_over_eps() -> None:
    """eps keeps the relative error of an all-zero target finite and positive: ||(3, 4)|| / 1e-8."""
    loss = relative_l2_loss(torch.tensor([[3.0, 4.0]], dtype=torch.float64), torch.zeros(1, 2, dtype=torch.float64))
    assert loss.item() == pytest.approx(5e8, rel=1e-9)


def test_a_batch_stream_continues_from_draw_to_draw_in_the_drawn_tensors_dtype() -> None:
    """After `start_batch(seed)` successive draws continue one stream seeded `seed` (two draws are not the same
    noise), in the dtype of the tensor they are shaped like; `start_batch` again restarts it; without it the draws
    come from the global torch stream."""
    randomness = OneStep(objective_config(input_noise_std=0.1))
    like = torch.zeros(3, dtype=torch.float64)
    randomness.start_batch(7)
    first, second = randomness.gaussian_like(like), randomness.gaussian_like(like)
    expected = torch.randn(6, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    assert first.dtype == second.dtype == torch.float64
    assert torch.equal(torch.cat([first, second]), expected)
    randomness.start_batch(7)
    assert torch.equal(randomness.gaussian_like(like), first)
    torch.manual_seed(3)
    unseeded = OneStep(objective_config(input_noise_std=0.1)).gaussian_like(like)
    torch.manual_seed(3)
    assert torch.equal(unseeded, torch.randn(3, dtype=torch.float64))


def test_unroll_refusals_and_the_dyffusion_horizon_are_whole_sentences() -> None:
    """An unrolled objective without a step and DYffusion's interpolator without a frame between x_0 and x_h are
    refused in one sentence naming the key and the fix; h = 2, the shortest horizon, is accepted."""
    cases = [
        (objective_config("pushforward"), "objective.unroll_steps=0 gives pushforward no unrolled step; set "
         "objective.unroll_steps to at least 1 (MP-PDE: 1), or use objective=onestep"),
        (objective_config("unrolled"), "objective.unroll_steps=0 gives unrolled training no step; set "
         "objective.unroll_steps to the number of steps to backpropagate through (>= 1)"),
        (objective_config("dyffusion_interpolator"), "objective.bundle=1 leaves DYffusion's interpolator no frame "
         "between x_0 and x_h; set objective.bundle to the horizon h >= 2"),
    ]
    for config, message in cases:
        with pytest.raises(InvalidSetting) as refused:
            make_objective(config)
        assert str(refused.value) == message
    assert window_frames(objective_config("dyffusion_interpolator", bundle=2)) == (1, 2)


def test_the_budget_curriculum_needs_at_least_one_step_and_starts_at_stage_zero() -> None:
    """A budget of 0 optimiser steps is refused (a stage would be 0 steps long), one of 1 step is accepted; before
    the first `set_step` the curriculum is at stage 0 and unrolls nothing."""
    objective = Pushforward(objective_config("pushforward", unroll_steps=3, curriculum_fraction=0.5))
    assert (objective.stage(), objective.draw_steps()) == (0, 0)
    with pytest.raises(InvalidSetting) as refused:
        objective.set_step(0, 0)
    assert str(refused.value) == ("objective.curriculum_fraction=0.5 needs a budget of optimiser steps; set "
                                  "trainer.max_steps (it is 0) or leave curriculum_fraction null")
    objective.set_step(1, 1)  # a stage of half a step: step 1 is stage 2
    assert objective.stage() == 2


def test_without_noise_or_an_unroll_to_draw_training_takes_nothing_from_the_global_stream() -> None:
    """One-step training without input noise, and pushforward at stage 0 (nothing to draw), leave the global torch
    stream, which dropout masks and the data order also read, untouched: pushforward's first stage is one-step
    training draw for draw. At stage 1 k is drawn from it."""
    torch.manual_seed(0)
    OneStep(objective_config()).loss(scale_forecaster(1.0), geometric_batch(1))
    objective = Pushforward(objective_config("pushforward", unroll_steps=2))
    assert objective.draw_steps() == 0
    after = torch.rand(4)
    torch.manual_seed(0)
    assert torch.equal(after, torch.rand(4))
    objective.set_epoch(1)
    torch.manual_seed(0)
    objective.draw_steps()
    assert not torch.equal(torch.rand(4), after)


class AffineRate(nn.Module):
    """net(x, cond) = a x + cond (one field, one parameter), recording every input it is called on."""

    def __init__(self, a: float) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a, dtype=torch.float64))
        self.inputs: list[Tensor] = []

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        self.inputs.append(x.detach().clone())
        return self.a * x + cond[:, :, None]


def test_unrolled_derivative_training_integrates_each_step_and_reads_each_states_labels() -> None:
    """Two unrolled steps of a heun-integrated rate net r(v) = a v + c on the forward-difference label: step 0 scores
    r(u_0) against u_1 - u_0; Heun carries u_0 to v_1 = u_0 + (r(u_0) + r(u_0 + r(u_0))) / 2 (one more net call, with
    the conditioning); step 1 scores r(v_1) against the labels around the state one step on, (u_2 - u_1) + (u_1 - v_1).
    Three net calls: the last step's output is not integrated further."""
    a, b = 0.2, TRUE_FACTOR
    c = torch.tensor([[0.3]], dtype=torch.float64)
    spec = NetSpec(("u",), 1, 1, ("nu",), Grid.uniform("periodic", (4,)))
    target = target_from_config({"target": "derivative", "integrator": "heun"})
    fc = Forecaster(AffineRate(a), Normalizer([0.0], [1.0], [0.0], [1.0]), target, spec)
    config = objective_config("unrolled", unroll_steps=2, target="derivative", integrator="heun")
    assert window_spec(config, 1).label_offsets == (0, 1, 1, 2)
    u = [b**k * U0.view(1, 1, 1, 4) for k in range(3)]
    batch = WindowBatch(u[0], u[1], c, torch.ones(1, dtype=torch.float64), torch.zeros(1, dtype=torch.long),
                        torch.cat([u[0], u[1], u[1], u[2]], dim=2))
    loss = Unrolled(config).loss(fc, batch)

    def rate(v: Tensor) -> Tensor:
        return a * v + 0.3

    v1 = u[0] + (rate(u[0]) + rate(u[0] + rate(u[0]))) / 2
    expected = (((rate(u[0]) - (u[1] - u[0])) ** 2).mean() + ((rate(v1) - (u[2] - v1)) ** 2).mean()) / 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)
    assert len(fc.net.inputs) == 3
    torch.testing.assert_close(fc.net.inputs[-1], v1.view(1, 1, 4))


class LineDYffusion(nn.Module):
    """DYffusion's training interface on a stand-in of horizon h, with N = h + 1 schedule steps at the times
    i(n) = n / 2 up to n = 1, n - 1 after (DYffusion's with one extra step). The interpolator draws the straight line
    from x_0 to x_h at time i, shifted by the sample's first conditioning value, plus `jitter` times unit noise from
    the stream `random_stream` sets (its dropout); the forecaster returns its state + i / 10 + the first input frame
    / 4. Every call is recorded with the time it was given."""

    def __init__(self, horizon: int, weights: tuple[float, float] = (0.5, 0.5), jitter: float = 0.0) -> None:
        super().__init__()
        self.horizon, self.reconstruction_weights, self.jitter = horizon, weights, jitter
        self.stream: torch.Generator | None = None
        self.calls: list[tuple[str, Tensor]] = []

    @property
    def n_steps(self) -> int:
        return self.horizon + 1

    def step_time(self, n: Tensor | int) -> Tensor:
        n = torch.as_tensor(n, dtype=torch.float32)
        return torch.where(n >= 2, n - 1, n / 2)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        return x

    @contextlib.contextmanager
    def random_stream(self, generator: torch.Generator | None) -> Iterator[None]:
        previous, self.stream = self.stream, generator
        try:
            yield
        finally:
            self.stream = previous

    def interpolate(self, frames: Tensor, last: Tensor, time: Tensor, cond: Tensor) -> Tensor:
        self.calls.append(("interpolate", time.clone()))
        start = frames[:, :, -1:]
        line = start + (last - start) * (time / self.horizon).view(-1, 1, 1, 1) + cond[:, :1].view(-1, 1, 1, 1)
        return line + self.jitter * torch.randn(line.shape, generator=self.stream, dtype=line.dtype)

    def forecast(self, state: Tensor, frames: Tensor, time: Tensor, cond: Tensor) -> Tensor:
        self.calls.append(("forecast", time.clone()))
        return state + time.view(-1, 1, 1, 1) / 10 + frames[:, :, :1] / 4


def line_forecaster(net: LineDYffusion, n_fields: int = 1, history: int = 1) -> Forecaster:
    fields = tuple(f"u{k}" for k in range(n_fields))
    spec = NetSpec(fields, history, net.horizon, ("nu",), Grid.uniform("periodic", (2,)))
    return Forecaster(net, Normalizer([0.0] * n_fields, [1.0] * n_fields, [0.0], [1.0]), target_from_config({}), spec)


def dyffusion_windows(n: int, history: int, horizon: int) -> WindowBatch:
    """`n` windows of `history + horizon` frames of 2 points, no two frames alike, and one conditioning value each."""
    frames = torch.randn(n, 1, history + horizon, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    cond = torch.linspace(-0.5, 0.5, n, dtype=torch.float64)[:, None]
    return WindowBatch(frames[:, :, :history], frames[:, :, history:], cond, torch.ones(n, dtype=torch.float64),
                       torch.arange(n))


def test_the_interpolator_objective_is_the_mse_at_times_drawn_from_1_to_h_minus_1_on_the_batch_stream() -> None:
    """h = 4, 32 windows: every time 1..3 is drawn, given in the frames' precision, and the loss is the mse of
    I(x_0, x_h, i) (the line, shifted by the conditioning) against the window's frame at i. The times and the
    dropout come from the batch's stream: the same under another global seed, and a second loss on the stream draws
    afresh."""
    net = LineDYffusion(4)
    batch = dyffusion_windows(32, 1, 4)
    objective = make_objective(objective_config("dyffusion_interpolator", bundle=4))
    objective.start_batch(3)
    loss = objective.loss(line_forecaster(net), batch)
    (kind, time), = net.calls
    assert kind == "interpolate" and set(time.tolist()) == {1.0, 2.0, 3.0} and time.dtype == torch.float64
    start, last = batch.inputs[:, :, -1:], batch.targets[:, :, -1:]
    guess = start + (last - start) * (time / 4).view(-1, 1, 1, 1) + batch.cond.view(-1, 1, 1, 1)
    truth = batch.targets[torch.arange(32), :, time.long() - 1].unsqueeze(2)
    assert loss.item() == pytest.approx(((guess - truth) ** 2).mean().item(), rel=1e-12)
    net = LineDYffusion(4, jitter=0.1)
    losses = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)
        objective.start_batch(3)
        losses.append(objective.loss(line_forecaster(net), batch).item())
    losses.append(objective.loss(line_forecaster(net), batch).item())
    assert losses[0] == losses[1] != losses[2]


def test_the_forecaster_objective_scores_both_terms_against_x_h() -> None:
    """h = 3 (N = 4 steps at times 0, 1/2, 1, 2), history 2, weights (0.7, 0.3), 24 windows: each sample's step n is
    read from the time its first forecast is given, and every step is drawn. The estimate is x_0 at n = 0 and the
    interpolation at i(n) otherwise; the first term scores F(estimate, frames, i(n)) against x_h; the second,
    for the samples with n + 1 < N, interpolates between x_0 and that prediction at i(n + 1), forecasts again from
    there and scores that against x_h: 0.7 term_1 + 0.3 term_2, computed by hand."""
    net = LineDYffusion(3, weights=(0.7, 0.3))
    batch = dyffusion_windows(24, 2, 3)
    objective = make_objective(objective_config("dyffusion_forecaster", history=2, bundle=3))
    objective.start_batch(5)
    loss = objective.loss(line_forecaster(net, history=2), batch)
    time = net.calls[1][1]
    assert [kind for kind, _ in net.calls] == ["interpolate", "forecast", "interpolate", "forecast"]
    assert all(given.dtype == torch.float64 for _, given in net.calls)  # the times in the frames' precision
    step = torch.where(time >= 1, time + 1, 2 * time).long()
    assert set(step.tolist()) == {0, 1, 2, 3}

    def at(values: Tensor) -> Tensor:
        return values.to(torch.float64).view(-1, 1, 1, 1)

    first, start, last, cond = batch.inputs[:, :, :1], batch.inputs[:, :, -1:], batch.targets[:, :, -1:], batch.cond
    i = torch.tensor([0.0, 0.5, 1.0, 2.0, 3.0], dtype=torch.float64)
    estimate = torch.where(at(step) == 0, start, start + (last - start) * at(i[step]) / 3 + at(cond))
    prediction = estimate + at(i[step]) / 10 + first / 4
    rows = step < 3
    again = start[rows] + (prediction[rows] - start[rows]) * at(i[step[rows] + 1]) / 3 + at(cond[rows])
    second = again + at(i[step[rows] + 1]) / 10 + first[rows] / 4
    expected = 0.7 * ((prediction - last) ** 2).mean() + 0.3 * ((second - last[rows]) ** 2).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)
    net = LineDYffusion(3, jitter=0.1)
    losses = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)
        objective.start_batch(5)
        losses.append(objective.loss(line_forecaster(net, history=2), batch).item())
    losses.append(objective.loss(line_forecaster(net, history=2), batch).item())
    assert losses[0] == losses[1] != losses[2]


def test_the_interpolation_metric_scores_each_window_every_h_frames_per_trajectory() -> None:
    """Two fields u_k = k^2 and 2 k^2, h = 2, 7 frames: the windows start at 0, 2 and 4 (every h frames); the line
    shifted by the conditioning c misses the middle frame (s + 1)^2 by 1 + c and 2 + c, so the nRMSE is
    sqrt(3 ((1 + c)^2 + (2 + c)^2) / (5 (1 + 81 + 625))); one trajectory alone, and none, are scored too. The
    dropout is seeded by the first trajectory's index: the same under another global seed, other for other
    trajectories."""
    objective = make_objective(objective_config("dyffusion_interpolator", bundle=2))
    squares = (torch.arange(7.0, dtype=torch.float64) ** 2).view(1, 1, 7, 1)
    frames = torch.cat([squares, 2 * squares], dim=1).expand(3, 2, 7, 2)
    cond = torch.tensor([[0.0], [1.0], [-0.5]], dtype=torch.float64)
    batch = TrajectoryBatch(frames, cond, torch.ones(3, dtype=torch.float64), torch.tensor([4, 5, 6]))
    forecaster = line_forecaster(LineDYffusion(2), n_fields=2)
    expected = (3 * ((1 + cond[:, 0]) ** 2 + (2 + cond[:, 0]) ** 2) / (5 * 707)).sqrt()
    torch.testing.assert_close(objective.validation_errors(forecaster, batch), expected, rtol=1e-12, atol=0)
    one = TrajectoryBatch(frames[1:2], cond[1:2], torch.ones(1, dtype=torch.float64), torch.tensor([5]))
    torch.testing.assert_close(objective.validation_errors(forecaster, one), expected[1:2], rtol=1e-12, atol=0)
    none = TrajectoryBatch(frames[:0], cond[:0], torch.ones(0, dtype=torch.float64), torch.zeros(0, dtype=torch.long))
    assert objective.validation_errors(forecaster, none).shape == (0,)
    forecaster = line_forecaster(LineDYffusion(2, jitter=0.1), n_fields=2)
    errors = []
    for global_seed, index in ((0, [4, 5, 6]), (1, [4, 5, 6]), (0, [7, 8, 9])):
        torch.manual_seed(global_seed)
        errors.append(objective.validation_errors(forecaster, dataclasses.replace(batch, index=torch.tensor(index))))
    assert torch.equal(errors[0], errors[1]) and not torch.equal(errors[0], errors[2])


def test_input_noise_is_the_batch_streams_draw_times_the_std_on_each_step_the_net_sees() -> None:
    """Unrolled over two steps with input_noise_std 0.1 and the net a u: the net sees u_0 + 0.1 n_1, then
    a (u_0 + 0.1 n_1) + 0.1 n_2, n_1 and n_2 the batch stream's next two draws shaped like one frame (the
    frame it sees, not the whole window)."""
    fc = scale_forecaster(0.5)
    objective = Unrolled(objective_config("unrolled", unroll_steps=2, input_noise_std=0.1))
    objective.start_batch(7)
    objective.loss(fc, geometric_batch(2))
    stream = torch.Generator().manual_seed(7)
    n_1, n_2 = (torch.randn(1, 4, generator=stream, dtype=torch.float64) for _ in range(2))
    seen_first = U0.view(1, 4) + 0.1 * n_1
    torch.testing.assert_close(fc.net.inputs[0].view(1, 4), seen_first, rtol=1e-12, atol=0)
    torch.testing.assert_close(fc.net.inputs[1].view(1, 4), 0.5 * seen_first + 0.1 * n_2, rtol=1e-12, atol=0)


def test_noise_seeds_span_64_bits() -> None:
    """A seed per rank and step out of 2**64, not 2**32: a run of millions of steps on many ranks would otherwise
    repeat noise patterns (a 32-bit birthday collision is likely after ~10**5 draws)."""
    assert max(noise_seed(5, rank, step) for rank in range(3) for step in range(3)) >= 2**32


def test_a_derivative_label_without_its_stored_frames_is_refused_in_one_sentence() -> None:
    """A batch without `labels` (windows not sized by window_spec) is refused naming the target, the frames it needs
    and the fix."""
    fc = scale_forecaster(0.0, "derivative")
    with pytest.raises(ValueError) as refused:
        OneStep(objective_config(target="derivative")).loss(fc, geometric_batch(1))
    assert str(refused.value) == ("objective.target=derivative needs 2 label frames around the state 0 model steps on, "
                                  "but the batch holds 0 label frames in all; size the training windows with "
                                  "window_spec")


def test_window_spec_of_objectives_that_size_no_labels_is_their_window_at_the_stride() -> None:
    """PDE-Refiner's and DYffusion's objectives read no label frames: their spec is `(history, bundle)` model frames,
    frame_stride stored frames apart."""
    assert window_spec(objective_config("pderefiner", target="difference", history=2), 4) == WindowSpec(2, 1, 4)
    assert window_spec(objective_config("dyffusion_forecaster", bundle=3), 2) == WindowSpec(1, 3, 2)


def test_window_refusals_count_the_model_frames_and_the_label_frames_before_the_state() -> None:
    """39 stored frames, a model step every 4: model frames 0, 4, ..., 36, i.e. 10. The forward difference reads
    the state and the stored frame after it: 0 stored frames before, 1 after."""
    with pytest.raises(DatasetError) as refused:
        check_window_fits(objective_config("pushforward", unroll_steps=9), n_train_frames=39, frame_stride=4)
    assert str(refused.value) == (
        "objective.name=pushforward, objective.history=1, objective.bundle=1, objective.unroll_steps=9 need training "
        "windows of 11 model frames (1 in, 10 after), but the train trajectories hold 10 (39 stored frames, "
        "frame_stride=4); lower one of these settings or generate longer trajectories")
    with pytest.raises(DatasetError) as refused:
        check_window_fits(objective_config(target="derivative", fd_spacing=8), n_train_frames=8, frame_stride=4)
    assert str(refused.value) == (
        "objective.name=onestep, objective.history=1, objective.bundle=1, objective.target=derivative, "
        "objective.fd_order=1, objective.fd_spacing=8 need training windows of 9 stored frames (1 model frames in, "
        "0 after, frame_stride=4, and label frames from 0 stored frames before to 8 after the current state), but "
        "the train trajectories hold 8 stored frames; lower one of these settings or generate longer trajectories")


def test_an_objective_that_names_no_targets_trains_state_and_difference_only() -> None:
    """A newly registered objective that declares no `targets` may train the state and the difference target (the
    ones that need nothing of it); another target is refused naming the two. Its `window_frames` (here one frame
    more after the state than `bundle`), without a `window_spec` of its own, size its windows at the stride."""
    from pdebench.training.objectives import OBJECTIVES, register_objective

    @register_objective("plain_for_test")
    class Plain:
        def __init__(self, config: ObjectiveConfig) -> None:
            self.config = config

        def window_frames(self) -> tuple[int, int]:
            return self.config.history, self.config.bundle + 1

    try:
        for target in ("state", "difference"):
            assert isinstance(make_objective(objective_config("plain_for_test", target=target)), Plain)
        for target in ("raw_difference", "derivative"):
            with pytest.raises(InvalidSetting) as refused:
                make_objective(objective_config("plain_for_test", target=target))
            assert str(refused.value) == (f"objective.target={target} cannot be trained with "
                                          "objective.name=plain_for_test; choose one of: state, difference")
        assert window_spec(objective_config("plain_for_test", history=3, bundle=2), 4) == WindowSpec(3, 3, 4)
    finally:
        del OBJECTIVES["plain_for_test"]
