"""The rollout engine and evaluator: scoring starts at the first predicted frame, and reference rows are exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from baselines import NetShape, build_model
from pdebench.data.dataset import TrajectoryDataset
from pdebench.data.normalization import Normalizer
from pdebench.rollout.engine import rollout
from pdebench.rollout.evaluator import evaluate_rollouts
from pdebench.training.forecaster import Forecaster


def persistence(history: int = 1, bundle: int = 1) -> Forecaster:
    shape = NetShape(n_fields=1, history=history, bundle=bundle, n_cond=4, spatial_dims=1)
    return Forecaster(build_model({"name": "persistence"}, shape), Normalizer.identity(1, 4), shape)


def test_rollout_feeds_predictions_back_and_cuts_the_last_bundle() -> None:
    calls = []

    def add_one(frames: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        calls.append(frames.clone())
        return frames[:, :, -1:].repeat(1, 1, 3, 1) + torch.arange(1, 4).view(1, 1, 3, 1)

    start = torch.zeros(2, 1, 2, 4)
    start[:, :, 1] = 10.0
    frames = list(rollout(add_one, start, torch.zeros(2, 0), n_steps=5))
    assert [f[0, 0, 0].item() for f in frames] == [11, 12, 13, 14, 15]
    assert len(calls) == 2 and calls[1][0, 0, :, 0].tolist() == [12, 13]  # window = last `history` predictions


class Oracle:
    """Predicts the stored next model frame exactly, to check which frames the evaluator scores."""

    def __init__(self, trajectories: torch.Tensor) -> None:
        self.trajectories = trajectories  # [N, C, J, *space]
        self.calls = 0

    def __call__(self, frames: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.trajectories[: len(frames), :, self.calls : self.calls + 1]


def test_scores_start_at_the_first_predicted_frame(ks_tiny: Path) -> None:
    data = TrajectoryDataset(ks_tiny / "test.h5", frame_stride=4)
    trajectories = torch.stack([data[i][0] for i in range(len(data))])
    report = evaluate_rollouts(Oracle(trajectories), data, history=1, batch_size=len(data), progress=False)
    assert report.n_steps == data.n_model_frames - 1
    assert np.all(report.per_step["mse"] == 0) and np.allclose(report.per_step["corr"], 1)
    assert report.summary["corr_time_0.8"] == pytest.approx(report.n_steps * report.step_time.mean())


def relative_l2(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """||pred - truth|| / ||truth|| along the last axis, computed independently of the metrics module."""
    return np.linalg.norm(pred - truth, axis=-1) / np.linalg.norm(truth, axis=-1)


def test_persistence_first_step_error_is_the_frame_to_frame_change(ks_tiny: Path) -> None:
    data = TrajectoryDataset(ks_tiny / "test.h5", frame_stride=4)
    report = evaluate_rollouts(persistence(), data, history=1, batch_size=3, progress=False)
    frames = np.stack([data[i][0].numpy() for i in range(len(data))]).astype(np.float64)  # [N, 1, J, X]
    expected = relative_l2(frames[:, 0, 0], frames[:, 0, 1])
    np.testing.assert_allclose(report.per_step["nrmse"][:, 0, 0], expected, rtol=1e-6)
    assert report.summary["one_step_nrmse"] == pytest.approx(expected.mean(), rel=1e-6)
    # later steps compare the initial frame with ever later truth
    k = 5
    np.testing.assert_allclose(report.per_step["nrmse"][:, k, 0], relative_l2(frames[:, 0, 0], frames[:, 0, k + 1]),
                               rtol=1e-6)


def test_batching_does_not_change_the_numbers(ks_tiny: Path) -> None:
    data = TrajectoryDataset(ks_tiny / "test.h5", frame_stride=4)
    one = evaluate_rollouts(persistence(), data, history=1, batch_size=1, progress=False)
    all_ = evaluate_rollouts(persistence(), data, history=1, batch_size=len(data), progress=False)
    for name in one.per_step:
        np.testing.assert_allclose(one.per_step[name], all_.per_step[name], rtol=1e-12)
    assert one.summary == pytest.approx(all_.summary)


def test_max_steps_truncates_and_history_shifts_the_first_target(ks_tiny: Path) -> None:
    data = TrajectoryDataset(ks_tiny / "test.h5", frame_stride=4)
    report = evaluate_rollouts(persistence(history=2), data, history=2, max_steps=3, progress=False)
    frames = np.stack([data[i][0].numpy() for i in range(len(data))]).astype(np.float64)
    expected = np.mean((frames[:, 0, 2] - frames[:, 0, 1]) ** 2, axis=-1)
    assert report.n_steps == 3
    np.testing.assert_allclose(report.per_step["mse"][:, 0, 0], expected, rtol=1e-6)
