"""Scoring rollouts: scores start at the first predicted frame, are keyed by trajectory index with each trajectory's
own step time, run the stepper in eval mode, and do not depend on the evaluation batch size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from baselines import build_model
from pdebench.data.dataset import TrajectoryDataset
from pdebench.forecast.checkpoint import load_forecaster
from pdebench.rollout.scoring import Scores, score, summarize


def persistence(dataset: TrajectoryDataset, history: int = 1, bundle: int = 1):
    f = dataset.file
    from pdebench.data.netspec import NetSpec

    return build_model({"name": "persistence"}, NetSpec(f.field_names, history, bundle, f.parameter_names, f.grid))


class Oracle:
    """Predicts the stored next model frame of whichever trajectory it is shown (found by its last input frame)."""

    history, bundle = 1, 1

    def __init__(self, trajectories: Tensor) -> None:
        self.trajectories = trajectories  # [N, C, J, *space]

    def __call__(self, frames: Tensor, cond: Tensor) -> Tensor:
        out = []
        for last in frames[:, :, -1]:
            hits = (self.trajectories == last[:, None]).flatten(3).all(-1).all(1).nonzero()  # [[traj, time]]
            traj, time = hits[0].tolist()
            out.append(self.trajectories[traj, :, time + 1])
        return torch.stack(out)[:, :, None]


@pytest.fixture(scope="module")
def test_set(ks_tiny: Path) -> TrajectoryDataset:
    return TrajectoryDataset(ks_tiny / "test.h5", frame_stride=4)


def all_frames(data: TrajectoryDataset) -> np.ndarray:
    return np.stack([data[i].frames.numpy() for i in range(len(data))]).astype(np.float64)  # [N, C, J, X]


def test_scores_start_at_the_first_predicted_frame(test_set: TrajectoryDataset) -> None:
    oracle = Oracle(torch.from_numpy(all_frames(test_set)).float())
    scores = score(oracle, test_set, batch_size=3, progress=False)
    assert scores.n_steps == test_set.n_model_frames - 1
    assert np.all(scores.per_step["mse"] == 0) and np.allclose(scores.per_step["corr"], 1)
    summary, _ = summarize(scores)
    assert summary["corr_time_0.8"] == pytest.approx(scores.n_steps * scores.step_time.mean())


def relative_l2(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """||pred - truth|| / ||truth|| along the last axis, computed independently of the metrics module."""
    return np.linalg.norm(pred - truth, axis=-1) / np.linalg.norm(truth, axis=-1)


def test_persistence_errors_are_the_change_since_the_initial_frame(test_set: TrajectoryDataset) -> None:
    scores = score(persistence(test_set), test_set, batch_size=3, progress=False)
    frames = all_frames(test_set)
    for k in (0, 5):
        np.testing.assert_allclose(scores.per_step["nrmse"][:, k, 0],
                                   relative_l2(frames[:, 0, 0], frames[:, 0, k + 1]), rtol=1e-6)
    summary, _ = summarize(scores)
    assert summary["one_step_nrmse"] == pytest.approx(relative_l2(frames[:, 0, 0], frames[:, 0, 1]).mean(), rel=1e-6)


def test_max_steps_truncates_and_history_shifts_the_first_target(test_set: TrajectoryDataset) -> None:
    scores = score(persistence(test_set, history=2), test_set, max_steps=3, progress=False)
    frames = all_frames(test_set)
    assert scores.n_steps == 3
    np.testing.assert_allclose(scores.per_step["mse"][:, 0, 0],
                               np.mean((frames[:, 0, 2] - frames[:, 0, 1]) ** 2, axis=-1), rtol=1e-6)


def test_scores_are_keyed_by_trajectory_with_its_own_step_time(test_set: TrajectoryDataset) -> None:
    """A subset in any order: rows come back sorted by trajectory index, each with its own step time (the dataset's
    order would give trajectory 0's and 1's times to trajectories 1 and 3)."""
    scores = score(persistence(test_set), test_set, indices=[3, 1], batch_size=1, progress=False)
    assert scores.index.tolist() == [1, 3]
    np.testing.assert_array_equal(scores.step_time, test_set.step_times.numpy()[[1, 3]])
    assert len(set(test_set.step_times.tolist())) == len(test_set)  # the tiny preset draws dt per trajectory
    whole = score(persistence(test_set), test_set, batch_size=4, progress=False)
    np.testing.assert_allclose(scores.per_step["nrmse"], whole.per_step["nrmse"][[1, 3]], rtol=1e-12)


def test_joining_shards_equals_one_pass(test_set: TrajectoryDataset) -> None:
    stepper = persistence(test_set)
    parts = [score(stepper, test_set, indices=shard, progress=False) for shard in ([2, 0], [3, 1])]
    joined, whole = Scores.join(parts), score(stepper, test_set, progress=False)
    assert joined.index.tolist() == [0, 1, 2, 3]
    for name in whole.per_step:
        np.testing.assert_array_equal(joined.per_step[name], whole.per_step[name])
    with pytest.raises(ValueError, match="more than once"):
        Scores.join([parts[0], parts[0]])


class ModeRecorder(nn.Module):
    """Persistence that records whether it was called in training mode (dropout would be on)."""

    history, bundle = 1, 1

    def __init__(self) -> None:
        super().__init__()
        self.modes: list[bool] = []

    def forward(self, frames: Tensor, cond: Tensor) -> Tensor:
        self.modes.append(self.training)
        return frames[:, :, -1:]


def test_the_stepper_runs_in_eval_mode_and_gets_its_mode_back(test_set: TrajectoryDataset) -> None:
    stepper = ModeRecorder().train()
    score(stepper, test_set, max_steps=2, progress=False)
    assert stepper.modes and not any(stepper.modes) and stepper.training


def test_batch_size_does_not_change_a_trained_nets_scores(test_set: TrajectoryDataset,
                                                          trained_checkpoint: Path) -> None:
    """Persistence cannot see batch effects; a trained FNO can (batched kernels round differently)."""
    forecaster = load_forecaster(trained_checkpoint).forecaster
    one = score(forecaster, test_set, batch_size=1, progress=False)
    many = score(forecaster, test_set, batch_size=4, progress=False)
    for name in ("nrmse", "corr"):
        np.testing.assert_allclose(one.per_step[name], many.per_step[name], rtol=1e-4, atol=1e-6)
    assert summarize(one)[0] == pytest.approx(summarize(many)[0], rel=1e-4)
