"""Preloaded datasets: the split read once into memory serves exactly the batches the lazy HDF5 reads give, batched
fetching equals per-item reads plus `collate`, a damaged file still fails in one sentence, and `auto` falls back to
lazy reads above its memory limit."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from synthetic import write_dataset
from torch.utils.data import DataLoader, DistributedSampler

from pdebench.config import ConfigError, TrainConfig, load_config
from pdebench.data import dataset as dataset_module
from pdebench.data.batch import TrajectoryBatch, WindowBatch, collate
from pdebench.data.dataset import (
    TrajectoryDataset,
    WindowDataset,
    WindowSpec,
    gather_frames,
    preload_limit_bytes,
    resolve_preload,
    split_field_bytes,
)
from pdebench.data.grid import Grid
from pdebench.data.reader import TrajectoryFile
from pdebench.data.schema import DatasetError

SPECS = {
    "onestep": WindowSpec(history=1, bundle=1, frame_stride=1),
    "history2-bundle3-stride4": WindowSpec(history=2, bundle=3, frame_stride=4),
    "fd-labels": WindowSpec(history=2, bundle=1, frame_stride=4, label_offsets=(-1, 1)),
    "labels-only": WindowSpec(history=1, bundle=0, frame_stride=2, label_offsets=(-2, -1, 1, 2)),
}


def _two_fields(rng: np.random.Generator, n_traj: int, n_frames: int):
    """Two random fields on a 2-D grid and one parameter: a channel or axis mixed up in the gather shows."""
    values = {name: rng.standard_normal((n_traj, n_frames, 6, 5)) for name in ("u", "v")}
    return values, {"a": rng.uniform(0.0, 1.0, n_traj)}


@pytest.fixture(scope="module")
def two_d(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`train.h5` of a 2-field, 2-D (6 x 5) split with 3 trajectories of 23 frames."""
    bench = {"frame_stride": 1, "headline": "vrmse_mean", "headline_goal": "min", "conserved": None}
    out = write_dataset(tmp_path_factory.mktemp("two_fields"), "toy", Grid.uniform("periodic", (6, 5)), ("u", "v"),
                        ("a",), _two_fields, {"train": (3, 23), "valid": (2, 9), "test": (2, 9)}, bench)
    return out / "train.h5"


@pytest.fixture(scope="module", params=["ks", "two_fields_2d"])
def split(request: pytest.FixtureRequest, ks_tiny: Path) -> Path:
    return ks_tiny / "train.h5" if request.param == "ks" else request.getfixturevalue("two_d")


def assert_same_batch(got: WindowBatch | TrajectoryBatch, want: WindowBatch | TrajectoryBatch) -> None:
    """Every field equal bitwise, with the same dtype and shape (None where the other is None)."""
    assert type(got) is type(want)
    for f in fields(want):
        a, b = getattr(got, f.name), getattr(want, f.name)
        if b is None:
            assert a is None, f.name
            continue
        assert a.dtype == b.dtype and a.shape == b.shape, (f.name, a.dtype, b.dtype, a.shape, b.shape)
        assert torch.equal(a, b), f.name


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_preloaded_windows_equal_lazy_reads(split: Path, spec: WindowSpec) -> None:
    lazy, loaded = WindowDataset(split, spec), WindowDataset(split, spec, preload=True)
    assert not lazy.preloaded and loaded.preloaded and len(lazy) == len(loaded)
    every = list(range(len(lazy)))  # the last window of each trajectory included
    want = collate([lazy[i] for i in every])
    assert_same_batch(loaded.__getitems__(every), want)
    assert_same_batch(collate([loaded[i] for i in every]), want)
    assert_same_batch(lazy.__getitems__(every), want)
    # a shuffled batch with repeats, and the very last window of the split
    picks = [len(lazy) - 1, 0, lazy.windows_per_traj - 1, lazy.windows_per_traj, 0, len(lazy) // 2]
    assert_same_batch(loaded.__getitems__(picks), collate([lazy[i] for i in picks]))
    last = loaded[len(loaded) - 1]
    with TrajectoryFile(split) as file:
        u = torch.from_numpy(file.read_field(file.field_names[-1], file.n_traj - 1))
    last_model_frame = spec.frame_positions[-1] + lazy.windows_per_traj - 1
    assert last_model_frame <= u.shape[0] - 1
    model_frames = torch.cat([last.inputs, last.targets], dim=1)[-1]
    assert torch.equal(model_frames[-1], u[last_model_frame])


def test_an_item_does_not_alias_the_preloaded_split(ks_tiny: Path) -> None:
    data = WindowDataset(ks_tiny / "train.h5", SPECS["onestep"], preload=True)
    item = data[3]
    kept = data[3].inputs.clone()
    item.inputs.add_(1.0)
    item.targets.add_(1.0)
    assert torch.equal(data[3].inputs, kept)


def test_gather_frames_picks_each_rows_trajectory_and_frames() -> None:
    values = torch.arange(4 * 2 * 7 * 3, dtype=torch.float32).reshape(4, 2, 7, 3)
    traj, frames = torch.tensor([2, 0, 2]), torch.tensor([[1, 5], [6, 0], [3, 3]])
    out = gather_frames(values, traj, frames)
    assert out.shape == (3, 2, 2, 3) and out.is_contiguous()
    for b in range(3):
        for t in range(2):
            assert torch.equal(out[b, :, t], values[traj[b], :, frames[b, t]])


@pytest.mark.parametrize("max_trajectories", [None, 3])
def test_preloaded_trajectories_equal_lazy_reads(ks_tiny: Path, max_trajectories: int | None) -> None:
    path = ks_tiny / "valid.h5"
    lazy = TrajectoryDataset(path, 4, max_trajectories)
    loaded = TrajectoryDataset(path, 4, max_trajectories, preload=True)
    assert loaded.preloaded and len(loaded) == len(lazy)
    if max_trajectories is not None:
        assert loaded.fields is not None and loaded.fields.shape[0] == max_trajectories  # no more than served
    every = list(range(len(lazy)))[::-1]
    assert_same_batch(loaded.__getitems__(every), collate([lazy[i] for i in every]))
    assert_same_batch(lazy.__getitems__(every), collate([lazy[i] for i in every]))
    assert_same_batch(collate([loaded[i] for i in every]), collate([lazy[i] for i in every]))
    with pytest.raises(IndexError, match="out of range"):
        loaded.__getitems__([0, len(loaded)])


def test_out_of_range_windows_are_refused(ks_tiny: Path) -> None:
    data = WindowDataset(ks_tiny / "train.h5", SPECS["onestep"], preload=True)
    with pytest.raises(IndexError, match=f"out of range for the {len(data)} windows of .*train.h5"):
        data.__getitems__([0, len(data)])
    with pytest.raises(IndexError, match="out of range"):
        data[len(data)]


def _batches(dataset: WindowDataset, sampler: DistributedSampler, num_workers: int = 0) -> list[WindowBatch]:
    loader = DataLoader(dataset, batch_size=5, sampler=sampler, drop_last=True, collate_fn=collate,
                        num_workers=num_workers)
    return list(loader)


def test_loaders_give_the_same_batches_per_rank_and_in_forked_workers(ks_tiny: Path) -> None:
    """The DistributedSampler order (what `train` and DDP use) over both modes, and forked workers reading the
    preloaded tensor, give the very batches of the lazy single-process loader."""
    spec = SPECS["history2-bundle3-stride4"]
    lazy, loaded = WindowDataset(ks_tiny / "train.h5", spec), WindowDataset(ks_tiny / "train.h5", spec, preload=True)
    for rank in range(2):
        def sampler(data: WindowDataset, rank: int = rank) -> DistributedSampler:
            return DistributedSampler(data, num_replicas=2, rank=rank, shuffle=True, seed=7)

        want = _batches(lazy, sampler(lazy))
        assert len(want) > 2
        for got in (_batches(loaded, sampler(loaded)), _batches(loaded, sampler(loaded), num_workers=2)):
            assert len(got) == len(want)
            for a, b in zip(got, want, strict=True):
                assert_same_batch(a, b)


def test_a_nan_in_a_preloaded_field_names_file_field_trajectory_and_frame(work: Path) -> None:
    path = work / "data" / "ks-tiny" / "train.h5"
    with h5py.File(path, "r+") as f:
        f["u"][5, 7, 3] = np.nan
    with pytest.raises(DatasetError) as info:
        WindowDataset(path, SPECS["onestep"], preload=True)
    assert str(info.value) == (
        f"{path}: field 'u' holds a non-finite value (NaN or inf) in trajectory 5, frame 7; expected finite values "
        "(the file was altered after it was written: regenerate or restore it)"
    )
    with pytest.raises(DatasetError, match="trajectory 5, frame 7"):
        TrajectoryDataset(path, 2, preload=True)
    assert TrajectoryDataset(path, 2, max_trajectories=5, preload=True).preloaded  # the damage lies beyond


def test_a_failed_chunk_checksum_names_file_field_and_trajectory(work: Path) -> None:
    path = work / "data" / "ks-tiny" / "train.h5"
    with h5py.File(path, "r") as f:
        chunk = f["u"].id.get_chunk_info_by_coord((1, 0, 0))
    with path.open("r+b") as raw:
        for k in range(4):
            raw.seek(chunk.byte_offset + chunk.size // 2 + k)
            byte = raw.read(1)[0]
            raw.seek(-1, 1)
            raw.write(bytes([byte ^ 0xFF]))
    with pytest.raises(DatasetError) as info:
        WindowDataset(path, SPECS["onestep"], preload=True)
    message = str(info.value)
    assert message.startswith(f"{path}: variable 'u' of trajectory 1 cannot be read")
    assert "a chunk failed its checksum" in message and "\n" not in message


def test_auto_preloads_up_to_the_limit_and_reads_lazily_above(ks_tiny: Path) -> None:
    path = ks_tiny / "train.h5"
    with TrajectoryFile(path) as file:
        size = split_field_bytes(file)
        assert size == 4 * file.n_traj * file.n_frames * 256
        assert split_field_bytes(file, 2) == 4 * 2 * file.n_frames * 256
    assert WindowDataset(path, SPECS["onestep"], preload="auto", memory_limit=size).preloaded
    above = WindowDataset(path, SPECS["onestep"], preload="auto", memory_limit=size - 1)
    assert not above.preloaded and above.fields is None
    assert not WindowDataset(path, SPECS["onestep"], preload=False, memory_limit=10 * size).preloaded
    assert WindowDataset(path, SPECS["onestep"], preload=True, memory_limit=0).preloaded
    valid = ks_tiny / "valid.h5"
    with TrajectoryFile(valid) as file:
        two = split_field_bytes(file, 2)
    assert TrajectoryDataset(valid, 4, max_trajectories=2, preload="auto", memory_limit=two).preloaded
    assert not TrajectoryDataset(valid, 4, max_trajectories=3, preload="auto", memory_limit=two).preloaded
    with pytest.raises(ValueError, match="preload='yes' is not valid; expected 'auto', True or False"):
        resolve_preload("yes", 1, 10)


def test_the_auto_limit_is_a_share_of_the_headroom_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataset_module, "memory_headroom_bytes", lambda: 8_000)
    assert preload_limit_bytes() == 2_000 and preload_limit_bytes(4) == 500
    assert resolve_preload("auto", 2_000) and not resolve_preload("auto", 2_001)
    monkeypatch.setattr(dataset_module, "memory_headroom_bytes", lambda: None)
    assert preload_limit_bytes() == 0  # unknown memory: read lazily


def test_train_splits_follow_data_preload(compose_cfg, ks_tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`auto` gives the train split the room first and the validation split what is left."""
    from dataclasses import replace
    from types import SimpleNamespace

    from pdebench.training import run
    from pdebench.training.config import train_config

    with TrajectoryFile(ks_tiny / "train.h5") as file:
        train_bytes = split_field_bytes(file)
    with TrajectoryFile(ks_tiny / "valid.h5") as file:
        valid_bytes = split_field_bytes(file, 2)
    trainer = SimpleNamespace(num_devices=1)
    spec = SPECS["onestep"]
    base = train_config(compose_cfg("train", ["trainer.enable_progress_bar=false", "validation.max_trajectories=2"]))

    def splits(preload: object, limit: int) -> tuple[bool, bool]:
        monkeypatch.setattr(run, "preload_limit_bytes", lambda processes: limit)
        cfg = replace(base, data=replace(base.data, preload=preload))
        train_set, val_set = run.load_splits(cfg, ks_tiny, spec, trainer)
        return train_set.preloaded, val_set.preloaded

    assert splits("auto", train_bytes + valid_bytes) == (True, True)
    assert splits("auto", train_bytes + valid_bytes - 1) == (True, False)
    assert splits("auto", train_bytes - 1) == (False, True)
    assert splits("auto", valid_bytes - 1) == (False, False)
    assert splits(False, 10 * train_bytes) == (False, False)
    assert splits(True, 0) == (True, True)


@pytest.mark.parametrize("value", ["yes", 1, 0.5])
def test_a_bad_data_preload_is_refused_naming_the_key(compose_cfg, value: object) -> None:
    cfg = compose_cfg("train", ["data=ks", "model=fno", "run_dir=run", "label=fno"])
    cfg["data"]["preload"] = value
    with pytest.raises(ConfigError, match=r"^data\.preload=.* is not valid: expected auto, true or false"):
        load_config(cfg, TrainConfig)
