"""Loading training checkpoints safely (`weights_only=True`) with one-sentence errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pdebench.training.module import SurrogateModule


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, not ours, or does not fit what it is used for."""


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[SurrogateModule, dict]:
    """Rebuild the trained module from a checkpoint; returns it (eval mode) and its `pdebench` metadata."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        checkpoint: dict[str, Any] = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for a corrupt or foreign file
        raise CheckpointError(f"checkpoint {path} is not a readable PyTorch checkpoint ({error})") from None
    if not isinstance(checkpoint, dict) or "pdebench" not in checkpoint or "hyper_parameters" not in checkpoint:
        raise CheckpointError(f"checkpoint {path} was not written by pdebench-train (no 'pdebench' metadata)")
    try:
        module = SurrogateModule(**checkpoint["hyper_parameters"])
        module.load_state_dict(checkpoint["state_dict"])
    except (TypeError, KeyError, RuntimeError) as error:
        raise CheckpointError(f"checkpoint {path} does not match this version of its model: {error}") from None
    return module.eval(), checkpoint["pdebench"]
