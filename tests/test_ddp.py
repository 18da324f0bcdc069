"""`trainer=ddp trainer.devices=2` on the CPU (gloo): two processes with batch B end where one process with batch 2B
ends."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pdebench.training.run import train

RUN = [
    "data=ks", "data.preset=tiny", "model=fno", "model.hidden_channels=8", "model.n_modes=[8]", "trainer.max_epochs=2",
    "trainer.limit_train_batches=3", "trainer.enable_progress_bar=false", "validation.rollout_steps=4",
    "validation.max_trajectories=2", "seed=5", "label=ddp",
]


@pytest.mark.slow
@pytest.mark.subprocess
def test_two_gloo_processes_equal_one_process_with_the_same_global_batch(compose_cfg, data_root: Path,
                                                                        tmp_path: Path) -> None:
    """Same samples per step (DDP's distributed sampler splits the single run's permutation between the ranks),
    gradients averaged over ranks = the mean over the global batch, so the weights after 6 AdamW steps agree.

    Tolerance rtol=1e-4, atol=1e-6: the two runs differ only in float32 summation order (a batch mean of 8 against
    the mean of two means of 4, then gloo's all-reduce), ~1e-7 relative per gradient; Adam's normalisation can
    amplify a round-off difference where a gradient is near zero, and six steps of learning rate 1e-3 bound the
    effect far below any real discrepancy (a wrong batch split or an unsynchronised rank moves weights by ~1e-3).
    """
    single_dir, ddp_dir = tmp_path / "single", tmp_path / "ddp"
    train(compose_cfg("train", [*RUN, "data.batch_size=8", f"data.root={data_root}", f"run_dir={single_dir}"]))
    env = {**os.environ, "MPLBACKEND": "Agg", "HYDRA_FULL_ERROR": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "pdebench.cli.train", *RUN, "trainer=ddp", "trainer.accelerator=cpu",
         "trainer.devices=2", "trainer.precision=32-true", "data.batch_size=4", f"data.root={data_root}",
         f"run_dir={ddp_dir}"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("best checkpoint") == 1  # reported once, by rank 0
    single = torch.load(single_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    ddp = torch.load(ddp_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert single["global_step"] == ddp["global_step"] == 6
    largest_gap = 0.0
    for name, value in single["state_dict"].items():
        torch.testing.assert_close(ddp["state_dict"][name], value, rtol=1e-4, atol=1e-6)
        largest_gap = max(largest_gap, float((value - ddp["state_dict"][name]).abs().max()))
    assert largest_gap < 1e-5
