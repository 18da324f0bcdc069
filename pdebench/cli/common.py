"""Shared plumbing of the Hydra mains: config location, schema registration, one-sentence errors."""

from __future__ import annotations

import functools
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pdebench.config import register_configs

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")
HYDRA_VERSION_BASE = "1.3"
# Errors whose message is already the one sentence a user needs (DatasetError, CheckpointError, ResultError and
# bad settings are ValueErrors; unknown registry names KeyErrors); anything else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, KeyError, FileNotFoundError)

register_configs()


def report_user_errors(task: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """Print a user error as one line on stderr and exit 1 instead of showing a stack trace."""

    @functools.wraps(task)
    def wrapped(cfg: DictConfig) -> Any:
        try:
            return task(cfg)
        except USER_ERRORS as error:
            message = error.args[0] if isinstance(error, KeyError) and error.args else error
            print(f"error: {message}", file=sys.stderr)
            sys.exit(1)

    return wrapped


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """Resolved plain-dict copy of a config (for hyper-parameters, result files and manifests)."""
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # type: ignore[return-value]


def git_commit() -> str | None:
    """The commit of the source tree this package runs from, if it is a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
