"""Hydra composition of the real config tree, as each app would compose it from command-line overrides."""

from __future__ import annotations

from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from pdebench.cli.common import CONFIG_DIR
from pdebench.cli.hydra_setup import register_configs

register_configs()


def compose_config(name: str, overrides: list[str] | None = None) -> dict[str, Any]:
    """The resolved config the Hydra app `name` would run with these command-line overrides."""
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose(name, overrides=overrides or [])
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
