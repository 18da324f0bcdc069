"""Training windows, rollout trajectories and train-only normalisation read the right frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pdebench.data.dataset import TrajectoryDataset, WindowDataset, WindowSpec
from pdebench.data.normalization import Normalizer, compute_train_statistics
from pdebench.data.reader import TrajectoryFile
from pdebench.data.schema import DatasetError


def test_windows_hold_strided_frames_of_one_trajectory(ks_tiny: Path) -> None:
    spec = WindowSpec(history=2, bundle=3, frame_stride=4)
    data = WindowDataset(ks_tiny / "train.h5", spec)
    with TrajectoryFile(ks_tiny / "train.h5") as file:
        u = file.read_field("u", slice(None))
        params = np.stack([file.parameters()[n] for n in file.parameter_names], axis=1)
        names = file.parameter_names
        assert data.windows_per_traj == file.n_frames - (2 + 3 - 1) * 4
        assert len(data) == file.n_traj * data.windows_per_traj
    index = 3 * data.windows_per_traj + 5  # trajectory 3, first frame 5
    item = data[index]
    inputs, targets, cond = item.inputs, item.targets, item.cond
    assert item.index.item() == 3 and item.step_time.item() == pytest.approx(4 * params[3, names.index("dt")])
    assert inputs.shape == (1, 2, 256) and targets.shape == (1, 3, 256)
    np.testing.assert_array_equal(inputs[0].numpy(), u[3, [5, 9]])
    np.testing.assert_array_equal(targets[0].numpy(), u[3, [13, 17, 21]])
    np.testing.assert_allclose(cond.numpy(), params[3].astype(np.float32))


def test_window_longer_than_trajectory_is_refused(ks_tiny: Path) -> None:
    with pytest.raises(DatasetError, match="needs 101"):
        WindowDataset(ks_tiny / "train.h5", WindowSpec(history=1, bundle=1, frame_stride=100))


def test_rollout_view_returns_whole_strided_trajectories(ks_tiny: Path) -> None:
    data = TrajectoryDataset(ks_tiny / "test.h5", frame_stride=4)
    with TrajectoryFile(ks_tiny / "test.h5") as file:
        u = file.read_field("u", 1)
        dt = file.parameters()["dt"][1]
    item = data[1]
    frames, step_time = item.frames, item.step_time
    assert item.index.item() == 1
    assert data.n_model_frames == (len(u) - 1) // 4 + 1
    np.testing.assert_array_equal(frames[0].numpy(), u[::4])
    assert step_time.item() == pytest.approx(4 * dt)


def test_statistics_come_from_the_train_split_only(ks_tiny: Path) -> None:
    with TrajectoryFile(ks_tiny / "train.h5") as train:
        stats = compute_train_statistics(train)
        u = train.read_field("u", slice(None)).astype(np.float64)
        nu = train.parameters()["nu"]
        length = train.parameters()["L"]
        names = train.parameter_names
    assert stats["field_mean"][0] == pytest.approx(u.mean(), abs=1e-9)
    assert stats["field_std"][0] == pytest.approx(u.std(), rel=1e-9)
    assert stats["param_mean"][names.index("L")] == pytest.approx(length.mean())
    assert np.ptp(nu) == 0 and stats["param_std"][names.index("nu")] == 1.0  # constant nu: no division by 0


def test_normalizer_round_trips_and_standardises() -> None:
    norm = Normalizer([1.0, -2.0], [2.0, 0.5], [3.0], [4.0])
    x = torch.randn(5, 2, 7, 16)
    torch.testing.assert_close(norm.denormalize_fields(norm.normalize_fields(x)), x)
    z = norm.normalize_fields(torch.tensor([[[1.0], [-2.0]]]))
    assert torch.equal(z, torch.zeros_like(z))
    assert Normalizer.from_stats(norm.stats()).stats() == norm.stats()
