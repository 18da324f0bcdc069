"""Running the installed console scripts the way a user does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
# A tiny FNO and a few training batches: enough to exercise every stage of the pipeline.
TINY_TRAIN = [
    "data.preset=tiny",
    "trainer=debug",
    "trainer.enable_progress_bar=false",
    "data.batch_size=8",
    "model.hidden_channels=16",
    "model.n_modes=[16]",
    "validation.rollout_steps=4",
]


def run_cli(command: str, *args: str, cwd: Path, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `pdebench-<command> args...` in `cwd` (with `env` added to the environment); with `check`, fail the test
    showing its output."""
    env = {**os.environ, "MPLBACKEND": "Agg", "HYDRA_FULL_ERROR": "0", **(env or {})}
    proc = subprocess.run([str(BIN / f"pdebench-{command}"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"pdebench-{command} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc
