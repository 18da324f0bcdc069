"""Shared plumbing of the Hydra mains: config location, schema registration, one-sentence errors."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pdebench.config import register_configs


def _config_dir() -> str:
    """The Hydra config directory: `pdebench/conf` of an installed wheel, else `conf/` of the source checkout.

    The configs live in `conf/` at the repository root; a regular (non-editable) install ships them as package
    data under `pdebench/conf` (see pyproject.toml), while a checkout or an editable install has no such
    directory next to the code and reads the repository's `conf/` directly. Hydra needs a real directory, so a
    zipped install is not supported.
    """
    packaged = Path(str(resources.files("pdebench") / "conf"))
    if packaged.is_dir():
        return str(packaged)
    return str(Path(__file__).resolve().parents[2] / "conf")


CONFIG_DIR = _config_dir()
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
