"""Device selection shared by generation, training and evaluation.

A device that this machine lacks (`device=cuda` without a GPU) is a user error found when the config is validated,
before any data is read or written; torch would otherwise fail deep inside the first kernel with an AssertionError.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pdebench.errors import InvalidSetting

if TYPE_CHECKING:
    import torch

# torch is imported inside each function: the config schemas check devices with these, and a command that never
# touches a tensor (the leaderboard, `--help`) should not pay for importing torch.


def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def device_problem(name: str) -> str | None:
    """Why `name` cannot be used on this machine (a phrase that follows `key=name`), or None if it can.

    `auto`, `cpu`, a CUDA device that exists and `mps` where Apple's backend is available are accepted; the phrase
    may contain `{key}`, which the caller replaces by the config key the value came from.
    """
    if name == "auto":
        return None
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        return "is not a device torch knows; use {key}=cpu, cuda, cuda:N or auto"
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return "asks for a CUDA device but no CUDA device is available; use {key}=cpu or auto"
        if device.index is not None and device.index >= torch.cuda.device_count():
            return (f"asks for a CUDA device this machine does not have (it has {torch.cuda.device_count()}); "
                    "use {key}=cuda, cpu or auto")
    if device.type == "mps" and not _mps_available():
        return "asks for Apple's MPS backend but it is not available; use {key}=cpu or auto"
    return None


def accelerator_problem(name: str) -> str | None:
    """Why Lightning's `trainer.accelerator=name` cannot run here (a phrase like `device_problem`'s), or None.

    Only the accelerators this machine may lack are checked (`gpu`, `cuda`, `mps`); Lightning validates the rest
    when the Trainer is built, which `pdebench.training.run.train` also does before reading any data.
    """
    import torch

    if name in ("gpu", "cuda") and torch.cuda.is_available():
        return None
    if name == "gpu" and _mps_available():
        return None
    if name in ("gpu", "cuda"):
        return "asks for a GPU but no CUDA device is available; use {key}=cpu or auto"
    if name == "mps" and not _mps_available():
        return "asks for Apple's MPS backend but it is not available; use {key}=cpu or auto"
    return None


def resolve_device(name: str, key: str = "device") -> torch.device:
    """`auto` picks the GPU when there is one, else the CPU; anything else is passed to `torch.device`.

    Raises InvalidSetting, in one sentence naming `key`, for a device this machine does not have.
    """
    import torch

    problem = device_problem(name)
    if problem is not None:
        raise InvalidSetting(f"{key}={name} {problem.format(key=key)}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
