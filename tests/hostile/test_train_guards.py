"""Training runs that must not start: a second run in a run folder another process is training in (the lock names
the holder), and a batch larger than the training windows (which would train nothing and still exit 0).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
from matrix import RUNNERS, assert_one_sentence, dataset_dir, run_command

from data_gen.generate import LOCK_NAME
from pdebench.data.lock import directory_lock
from pdebench.training.run import RUN_LOCK_NAME, check_batch_fits

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HOLDER = f"pid {os.getpid()} on {socket.gethostname()}"
# ks-tiny's train split: 8 trajectories of 32 frames; the tiny run's windows span 5 frames (frame_stride 4).
TRAIN_WINDOWS = 8 * (32 - 5 + 1)


@pytest.mark.slow
def test_a_second_train_of_the_same_run_folder_stops_naming_the_process_that_holds_it(work: Path) -> None:
    run_dir = work / "runs"
    run_dir.mkdir()
    with directory_lock(run_dir, RUN_LOCK_NAME):  # this test process is the run in progress
        message = run_command("train", work)
    assert_one_sentence(message, "another pdebench-train", str(run_dir), HOLDER)
    assert not (run_dir / "checkpoints").exists()  # it trained nothing and wrote no checkpoint

    RUNNERS["train"](work, [])  # the holder is gone: a later run proceeds
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    with directory_lock(run_dir, RUN_LOCK_NAME):  # and the run released the folder when it ended
        pass


def test_a_second_generation_names_the_process_that_holds_the_dataset(work: Path) -> None:
    """Generation takes the same lock (shared code): its refusal names the holder as well."""
    with directory_lock(dataset_dir(work), LOCK_NAME):
        message = run_command("generate", work)
    assert_one_sentence(message, "another generation is writing this dataset", "ks-tiny", HOLDER)


def test_a_batch_larger_than_the_training_windows_is_refused_before_training(work: Path) -> None:
    """The train loader drops the last short batch, so a batch of more windows than there are yields no batch at
    all: refused, naming the numbers. A batch of exactly all the windows is one batch, and trains."""
    message = run_command("train", work, f"data.batch_size={TRAIN_WINDOWS + 1}")
    train_file = dataset_dir(work) / "train.h5"
    assert_one_sentence(message, f"data.batch_size={TRAIN_WINDOWS + 1} is larger than the {TRAIN_WINDOWS} training "
                                 f"windows of {train_file}", f"use data.batch_size<={TRAIN_WINDOWS}")
    assert not (work / "runs" / "checkpoints").exists()

    RUNNERS["train"](work, [f"data.batch_size={TRAIN_WINDOWS}"])
    last = torch.load(work / "runs" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["global_step"] == 1


def test_under_ddp_each_process_needs_a_whole_batch_of_its_share_of_the_windows(tmp_path: Path) -> None:
    """Each of n processes gets ceil(windows / n) windows (the distributed sampler pads the last share); its batch
    must fit in them."""
    path = tmp_path / "train.h5"
    check_batch_fits(112, 224, 2, path)
    check_batch_fits(113, 225, 2, path)
    with pytest.raises(ValueError, match=r"data.batch_size=113 is larger than the 112 training windows each of the "
                                         r"2 processes gets from the 224 of .*train.h5.*use data.batch_size<=112"):
        check_batch_fits(113, 224, 2, path)
