"""Small helpers shared by tests (model configs sized for CPU tests)."""

from __future__ import annotations

from typing import Any

SMALL_HYPERPARAMETERS: dict[str, dict[str, Any]] = {
    "fno": {"n_modes": [12], "hidden_channels": 16, "n_layers": 2, "factorization": None, "rank": 1.0},
    "persistence": {},
}


def small_model_config(name: str) -> dict[str, Any]:
    """A small but complete config for registry entry `name`; a new model must add itself here."""
    if name not in SMALL_HYPERPARAMETERS:
        raise KeyError(f"add a small test config for the new model {name!r} to tests/tests_support.py")
    return {"name": name, **SMALL_HYPERPARAMETERS[name]}
