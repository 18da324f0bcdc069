"""Hydra composition of the real config tree, as each app would compose it from command-line overrides.

Hydra's ConfigStore is filled on the first composition, not when this module is imported: tests/conftest.py imports
it, and a schema's `__post_init__` or range check that ran at import would run before any test (mutation testing
makes every mutated function raise once, to see that a test notices, and a conftest that raises stops pytest)."""

from __future__ import annotations

from functools import cache
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from pdebench.cli.common import CONFIG_DIR
from pdebench.cli.hydra_setup import register_configs


@cache
def _register_configs_once() -> None:
    register_configs()


def compose_config(name: str, overrides: list[str] | None = None) -> dict[str, Any]:
    """The resolved config the Hydra app `name` would run with these command-line overrides."""
    _register_configs_once()
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose(name, overrides=overrides or [])
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
