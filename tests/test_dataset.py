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


def test_a_record_parameter_reaches_no_model_input(work: Path) -> None:
    """With `dx` marked a record (not conditioning), the windows, the rollout view, the train statistics and the
    data description a run builds its net from carry L, nu, dt only, in that order."""
    import h5py

    from pdebench.data.manifest import write_manifest
    from pdebench.training.run import describe_data

    dataset_dir = work / "data" / "ks-tiny"
    for split in ("train", "test"):
        with h5py.File(dataset_dir / f"{split}.h5", "r+") as f:
            assert f.attrs["parameters"] == "L,nu,dt,dx"
            f.attrs["conditioning"] = "L,nu,dt"
    write_manifest(dataset_dir, {"pde": "ks", "preset": "tiny"})
    with TrajectoryFile(dataset_dir / "train.h5") as train:
        params = train.parameters()
    expected = np.stack([params["L"], params["nu"], params["dt"]], axis=1).astype(np.float32)
    windows = WindowDataset(dataset_dir / "train.h5", WindowSpec(history=1, bundle=1, frame_stride=4))
    item = windows[2 * windows.windows_per_traj]
    np.testing.assert_array_equal(item.cond.numpy(), expected[2])
    with TrajectoryFile(dataset_dir / "test.h5") as test:
        p = test.parameters()
    np.testing.assert_array_equal(TrajectoryDataset(dataset_dir / "test.h5", frame_stride=4)[1].cond.numpy(),
                                  np.array([p["L"][1], p["nu"][1], p["dt"][1]], dtype=np.float32))
    described = describe_data(dataset_dir, TrajectoryFile(dataset_dir / "train.h5"), 4)
    assert described["parameters"] == ["L", "nu", "dt"]
    np.testing.assert_allclose(described["stats"]["param_mean"], expected.astype(np.float64).mean(axis=0), rtol=1e-6)
