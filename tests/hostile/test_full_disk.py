"""A full disk: generate and train write into a small real disk (a tmpfs, `disk.small_disk`) that a filler file has
all but filled, so the write fails with ENOSPC part way.

Each command must stop with one sentence that names the file it was writing and says to free space and rerun; no
file may be left under its final name half-written (no incomplete `valid.h5`, no truncated checkpoint; the
previous `last.ckpt` survives); and once the filler is deleted, the same command resumes and completes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from disk import FILLER_NAME, fill_disk, small_disk
from matrix import RUNNERS, assert_one_sentence, dataset_dir, run_command

import data_gen.generate as generate_module
from data_gen.ks import KSGenerator
from pdebench.data.check import check_file
from pdebench.data.manifest import verify_dataset
from pdebench.data.reader import TrajectoryFile
from pdebench.data.schema import SPLITS
from pdebench.data.writer import TrajectoryWriter
from pdebench.training.module import SurrogateModule

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FULL_DISK = ("no space left on device while writing", "free space and rerun the same command to resume")
# ks-tiny's three split files take ~850 KiB on disk; this much room fails the generation part way through. Blocks
# of 2 trajectories, so that every split has several; one process, so that the solves can be counted here.
GENERATE_ROOM = 464 << 10
GENERATE = ("workers=1", "batch_size=2")
# A tiny run's checkpoint is ~115 KiB and its CSV logs take three 4 KiB pages: the logs fit, a checkpoint does not.
TRAIN_ROOM = 64 << 10


@pytest.fixture()
def unraisable(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Errors Python could only print as "Exception ignored in ..." (h5py's unchecked closes) during the test."""
    seen: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    return seen


def _count_solved(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record how many trajectories each solve of the KS generator gets (generation runs in-process: workers=1)."""
    solved: list[int] = []
    original = KSGenerator.generate

    def counting(self, seeds, n_frames, device):  # type: ignore[no-untyped-def]
        solved.append(len(seeds))
        return original(self, seeds, n_frames, device)

    monkeypatch.setattr(KSGenerator, "generate", counting)
    return solved


def _n_complete(path: Path) -> int:
    with h5py.File(path, "r") as f:  # the reader refuses an unfinished file, rightly
        return int(np.asarray(f.attrs["n_traj_complete"]).item())


@pytest.mark.slow
@pytest.mark.parametrize("when", ["before a block", "under a block"])
def test_generate_on_a_full_disk_finalises_nothing_incomplete_and_the_rerun_resumes(
    tmp_path: Path, ks_tiny: Path, monkeypatch: pytest.MonkeyPatch, unraisable: list[object], when: str
) -> None:
    """The writer sees that the next block does not fit and stops before it; or (another process filling the disk
    meanwhile, here: its room check skipped) the disk fills up under the block, and the failed write is caught."""
    with small_disk(tmp_path / "data", "2m") as disk:
        filler = fill_disk(disk, GENERATE_ROOM)
        with monkeypatch.context() as patch:
            if when == "under a block":
                patch.setattr(TrajectoryWriter, "_check_room", lambda self, b: None, raising=False)
            message = run_command("generate", tmp_path, *GENERATE)
        assert_one_sentence(message, *FULL_DISK, ".h5.partial", "trajector")
        out = dataset_dir(tmp_path)
        assert not (out / "manifest.json").exists()
        for split in SPLITS:  # a split under its final name is complete and valid, or absent
            final = out / f"{split}.h5"
            assert not final.exists() or check_file(final) == [], check_file(final)
        kept = {p.name: _n_complete(p) for p in out.glob("*.h5.partial")}
        assert kept and sum(kept.values()) > 0, kept  # the blocks written before the disk filled up are kept
        assert not unraisable, unraisable

        filler.unlink()
        solved = _count_solved(monkeypatch)
        RUNNERS["generate"](tmp_path, list(GENERATE))
        total = sum(int(TrajectoryFile(ks_tiny / f"{split}.h5").n_traj) for split in SPLITS)
        assert sum(solved) <= total - sum(kept.values()), (solved, kept)  # resumed, not started over
        verify_dataset(out)
        for split in SPLITS:
            with TrajectoryFile(ks_tiny / f"{split}.h5") as ref, TrajectoryFile(out / f"{split}.h5") as new:
                assert np.array_equal(ref.read_field("u", slice(None)), new.read_field("u", slice(None)))
                assert np.array_equal(ref.seeds(), new.seeds())
        assert not list(out.glob("*.partial*")) and not list(out.glob(".*.tmp"))
        assert not unraisable, unraisable


@pytest.mark.slow
def test_generate_on_a_disk_that_fills_up_before_the_manifest_keeps_every_split_and_the_rerun_writes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills up (another process, here a filler written at that very moment) after the last split file is
    finished, as the manifest is written: the split files stay, and the rerun checks them and writes the manifest."""
    with small_disk(tmp_path / "data", "2m") as disk:
        write_manifest = generate_module.write_manifest

        def fill_then_write(out_dir: Path, config: dict) -> Path:
            fill_disk(disk, 0)
            return write_manifest(out_dir, config)

        with monkeypatch.context() as patch:
            patch.setattr(generate_module, "write_manifest", fill_then_write)
            message = run_command("generate", tmp_path, *GENERATE)
        out = dataset_dir(tmp_path)
        assert_one_sentence(message, *FULL_DISK, str(out / "manifest.json"), "every split file is finished and kept")
        assert not (out / "manifest.json").exists()
        assert all(check_file(out / f"{split}.h5") == [] for split in SPLITS)

        (disk / FILLER_NAME).unlink()
        solved = _count_solved(monkeypatch)
        RUNNERS["generate"](tmp_path, list(GENERATE))
        assert solved == [] and verify_dataset(out) == out  # nothing solved again: the split files were kept


def _checkpoints(work: Path) -> dict[str, dict]:
    """Every file in the run's checkpoint folder, loaded (a truncated or half-written one fails the load)."""
    folder = work / "runs" / "checkpoints"
    files = sorted(folder.iterdir()) if folder.is_dir() else []
    return {p.name: torch.load(p, map_location="cpu", weights_only=True) for p in files}


def _count_training_steps(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the batch index of every training step from now on."""
    steps: list[int] = []
    original = SurrogateModule.training_step

    def counting(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        steps.append(batch_idx)
        return original(self, batch, batch_idx)

    monkeypatch.setattr(SurrogateModule, "training_step", counting)
    return steps


@pytest.mark.slow
def test_train_on_a_full_disk_keeps_every_checkpoint_whole_and_the_rerun_resumes(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """First a new run on an almost full disk (nothing to keep yet), then a resumed run whose next `last.ckpt`
    does not fit: the previous one must survive, and after freeing space the same command resumes from it."""
    with small_disk(work / "runs", "8m") as disk:
        filler = fill_disk(disk, TRAIN_ROOM)
        message = run_command("train", work, "trainer.max_epochs=1")
        assert_one_sentence(message, *FULL_DISK, str(work / "runs"), ".ckpt")
        assert _checkpoints(work) == {}  # no checkpoint was written, so none is left half-written

        filler.unlink()
        RUNNERS["train"](work, ["trainer.max_epochs=1"])
        last = work / "runs" / "checkpoints" / "last.ckpt"
        first = last.read_bytes()
        assert _checkpoints(work)["last.ckpt"]["epoch"] == 0

        filler = fill_disk(disk, TRAIN_ROOM)
        message = run_command("train", work, "trainer.max_epochs=2")
        assert_one_sentence(message, *FULL_DISK, "checkpoints", ".ckpt", "kept")
        assert last.read_bytes() == first  # the previous last.ckpt survives the failed write
        assert sorted(_checkpoints(work)) == ["best.ckpt", "last.ckpt"]  # whole, and no temporary file left

        filler.unlink()
        steps = _count_training_steps(monkeypatch)
        RUNNERS["train"](work, ["trainer.max_epochs=2"])
        resumed = _checkpoints(work)["last.ckpt"]
        assert resumed["epoch"] == 1 and resumed["global_step"] == 8
        assert len(steps) == 4  # only epoch 1 was trained: the rerun resumed from epoch 0's last.ckpt
