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


# --- the window layout, batches and the net's spec, without a file ---


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"history": 0}, "history must be an integer >= 1, got 0"),
    ({"bundle": -1}, "bundle must be an integer >= 0, got -1"),
    ({"frame_stride": 0}, "frame_stride must be an integer >= 1, got 0"),
    ({"frame_stride": 1.5}, "frame_stride must be an integer >= 1, got 1.5"),
    ({"label_offsets": (1, 0.5)}, "label_offsets must be whole numbers of stored frames, got (1, 0.5)"),
])
def test_a_window_spec_refuses_counts_below_their_least_value(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        WindowSpec(**kwargs)
    assert str(info.value) == message


def test_window_positions_by_hand_with_labels_before_and_after_the_current_frame() -> None:
    """history 2, bundle 1, stride 3, labels at -5 and +1 stored frames from the current (last input) frame: the
    current frame is 3 after the first input, so the label at -5 lies 2 before it: lead 2, inputs at 2 and 5, the
    target at 8, labels at 0 and 6, 9 stored frames in all. Bundle 0 is allowed (labels alone)."""
    spec = WindowSpec(history=2, bundle=1, frame_stride=3, label_offsets=[-5, 1])
    assert spec.label_offsets == (-5, 1)
    assert (spec.lead, spec.frame_positions, spec.label_positions, spec.span) == (2, (2, 5, 8), (0, 6), 9)
    from pdebench.data.dataset import split_window

    block = torch.arange(2 * 9 * 2).reshape(2, 9, 2)  # [C, span, x]: frame f of channel c holds 18 c + 2 f (+1)
    inputs, targets, labels = split_window(block, spec)
    torch.testing.assert_close(inputs, block[:, [2, 5]])
    torch.testing.assert_close(targets, block[:, [8]])
    torch.testing.assert_close(labels, block[:, [0, 6]])
    plain = WindowSpec(history=2, bundle=3, frame_stride=4)
    assert (plain.lead, plain.frame_positions, plain.label_positions, plain.span) == (0, (0, 4, 8, 12, 16), (), 17)
    assert split_window(torch.zeros(1, 17, 3), plain)[2] is None
    late = WindowSpec(history=1, bundle=0, frame_stride=2, label_offsets=(3,))  # a label after the last target
    assert (late.lead, late.frame_positions, late.label_positions, late.span) == (0, (0,), (3,), 4)


def test_a_worker_processes_error_is_the_readers_sentence_again() -> None:
    from pdebench.data.dataset import LoaderDatasetError

    sentence = "split file train.h5: field 'u' of trajectory 3 holds NaN or inf"
    relayed = ("Caught LoaderDatasetError in DataLoader worker process 1.\nOriginal Traceback (most recent call "
               "last):\n  File \"worker.py\", line 308, in _worker_loop\n"
               f"pdebench.data.dataset.LoaderDatasetError: {sentence}\n")
    assert str(LoaderDatasetError(relayed)) == sentence
    assert str(LoaderDatasetError(sentence)) == sentence
    other = "Caught ValueError in DataLoader worker process 0.\nValueError: bad"
    assert str(LoaderDatasetError(other)) == other  # not ours: kept whole


def test_collate_stacks_items_and_keeps_an_absent_optional_field_absent() -> None:
    from pdebench.data.batch import TrajectoryBatch, WindowBatch, collate

    def item(k: int, labels: bool) -> WindowBatch:
        return WindowBatch(torch.full((1, 2, 3), k), torch.full((1, 1, 3), -k), torch.tensor([k / 2]),
                           torch.tensor(0.5 * k), torch.tensor(k), torch.full((1, 2, 3), 10 * k) if labels else None)

    batch = collate([item(1, False), item(2, False)])
    assert batch.inputs.shape == (2, 1, 2, 3) and batch.labels is None
    torch.testing.assert_close(batch.index, torch.tensor([1, 2]))
    torch.testing.assert_close(batch.step_time, torch.tensor([0.5, 1.0]))
    assert collate([item(1, True), item(3, True)]).labels[:, 0, 0, 0].tolist() == [10.0, 30.0]
    assert collate(batch) is batch  # already gathered by a dataset's __getitems__
    with pytest.raises(ValueError) as info:
        collate([item(1, True), item(2, False), item(3, False)])
    assert str(info.value) == ("cannot collate field 'labels': 2 of 3 items have none; expected every item to hold it "
                               "or none")
    with pytest.raises(ValueError, match="^cannot collate an empty list of items$"):
        collate([])
    rollouts = collate([TrajectoryBatch(torch.zeros(1, 4, 3), torch.ones(2), torch.tensor(1.0), torch.tensor(k))
                        for k in (5, 7)])
    assert type(rollouts) is TrajectoryBatch and rollouts.frames.shape == (2, 1, 4, 3)
    assert rollouts.index.tolist() == [5, 7]


def test_frames_fold_into_channels_field_major_and_unfold_back() -> None:
    from pdebench.data.netspec import fold_frames, unfold_frames

    frames = torch.arange(2 * 2 * 3 * 4).reshape(2, 2, 3, 4)  # [B, C=2 fields, T=3 frames, x]
    channels = fold_frames(frames)
    assert channels.shape == (2, 6, 4)
    torch.testing.assert_close(channels[1, 1 * 3 + 2], frames[1, 1, 2])  # channel c * T + t
    torch.testing.assert_close(unfold_frames(channels, 2), frames)
    assert unfold_frames(channels, 3).shape == (2, 3, 2, 4)
    with pytest.raises(ValueError) as info:
        unfold_frames(channels[:, :5], 2)
    assert str(info.value) == "5 channels do not split into 2 fields"


def test_a_net_spec_counts_channels_and_round_trips_through_its_record() -> None:
    from pdebench.data.grid import Grid
    from pdebench.data.netspec import NetSpec
    from pdebench.errors import InvalidSetting

    spec = NetSpec(["u", "v", "w"], 2, 4, ["nu"], Grid.uniform("periodic", (4, 6)))
    assert spec.fields == ("u", "v", "w") and spec.conditioning == ("nu",)
    assert (spec.n_fields, spec.n_cond, spec.spatial_dims, spec.in_channels, spec.out_channels) == (3, 1, 2, 6, 12)
    record = spec.to_record()
    assert record == {"fields": ["u", "v", "w"], "history": 2, "bundle": 4, "conditioning": ["nu"],
                      "grid": spec.grid.to_record()}
    assert NetSpec.from_record(record) == spec
    with pytest.raises(ValueError, match="^a NetSpec needs at least one field$"):
        NetSpec((), 1, 1, (), spec.grid)
    for name, value in (("history", 0), ("bundle", True), ("history", 2.0)):
        with pytest.raises(InvalidSetting) as info:
            NetSpec(("u",), **{"history": 1, "bundle": 1, name: value}, conditioning=(), grid=spec.grid)
        assert str(info.value) == f"objective.{name} must be a positive integer, got {value!r}"


def test_a_window_as_long_as_the_trajectory_is_one_window_and_a_longer_one_is_refused_by_name(ks_tiny: Path) -> None:
    path = ks_tiny / "train.h5"
    with TrajectoryFile(path) as file:
        n_traj, n_frames = file.n_traj, file.n_frames
    whole = WindowDataset(path, WindowSpec(history=1, bundle=n_frames - 1))
    assert (whole.windows_per_traj, len(whole)) == (1, n_traj)
    with pytest.raises(DatasetError) as info:
        WindowDataset(path, WindowSpec(history=2, bundle=n_frames - 1))
    assert str(info.value) == (f"{whole.file.path}: trajectories have {n_frames} frames, but a window of history=2, "
                               f"bundle={n_frames - 1}, frame_stride=1 needs {n_frames + 1}")
    with pytest.raises(DatasetError) as info:
        WindowDataset(path, WindowSpec(history=1, bundle=1, label_offsets=(-n_frames,)))
    assert str(info.value) == (f"{whole.file.path}: trajectories have {n_frames} frames, but a window of history=1, "
                               f"bundle=1, frame_stride=1, label_offsets=[{-n_frames}] needs {n_frames + 2}")
