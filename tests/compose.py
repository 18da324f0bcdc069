"""Hydra composition of the real config tree, as each app would compose it from command-line overrides.

Hydra's ConfigStore is filled on the first composition, not when this module is imported: tests/conftest.py imports
it, and a schema's `__post_init__` or range check that ran at import would run before any test (mutation testing
makes every mutated function raise once, to see that a test notices, and a conftest that raises stops pytest)."""

from __future__ import annotations

import copy
import hashlib
import os
import pickle
from functools import cache
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from pdebench.cli.common import CONFIG_DIR
from pdebench.cli.hydra_setup import register_configs


@cache
def _register_configs_once() -> None:
    register_configs()


# Where the processes of one test run (pytest-xdist workers) share their compositions; None: this process only.
_shared: Path | None = None


def compose_config(name: str, overrides: list[str] | None = None) -> dict[str, Any]:
    """The resolved config the Hydra app `name` would run with these command-line overrides (a fresh copy: the
    caller may change it)."""
    return copy.deepcopy(_composed(name, tuple(overrides or ())))


@cache
def _composed(name: str, overrides: tuple[str, ...]) -> dict[str, Any]:
    """Hydra composes a command line in about a third of a second on one core, and the test files compose the same
    experiments again and again; the config tree does not change while the tests run, so each command line is
    composed once per test run (read back from the shared folder when another worker composed it first)."""
    kept = _shared / f"{hashlib.sha256(repr((name, overrides)).encode()).hexdigest()}.pickle" if _shared else None
    if kept is not None and kept.is_file():
        return pickle.loads(kept.read_bytes())
    _register_configs_once()
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose(name, overrides=list(overrides))
    composed = OmegaConf.to_container(cfg, resolve=True)
    if kept is not None:  # whole or not at all: another worker may read it at any moment
        partial = kept.with_name(f"{kept.name}.{os.getpid()}.partial")
        partial.write_bytes(pickle.dumps(composed))
        os.replace(partial, kept)
    return composed  # type: ignore[return-value]


def share_compositions(folder: Path | None) -> None:
    """Start a test run: forget every composition of this process, and share the run's compositions through
    `folder` (a folder of this run alone; None keeps them in this process)."""
    global _shared
    _shared = folder
    _composed.cache_clear()
