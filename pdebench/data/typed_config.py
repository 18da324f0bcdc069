"""Plain settings -> a typed config dataclass, with one-sentence errors naming the key (used by both registries)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

T = TypeVar("T")


def to_typed(config_cls: type[T], settings: Mapping[str, Any], prefix: str, owner: str) -> T:
    """Build `config_cls` from `settings`, rejecting unknown keys and values of the wrong type.

    `prefix` is how the keys are spelt on the command line (`model`, `pde.solver`) and `owner` names what they
    configure (`model fno`), so an error reads `unknown key(s) model.widht for model fno; valid keys: ...`.
    Checks in the dataclass's `__post_init__` (ValueError) pass through unchanged.
    """
    valid = [f.name for f in fields(config_cls)]  # type: ignore[arg-type]
    unknown = sorted(set(settings) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown key(s) {', '.join(f'{prefix}.{k}' for k in unknown)} for {owner}; valid keys: {', '.join(valid)}"
        )
    try:
        merged = OmegaConf.merge(OmegaConf.structured(config_cls), dict(settings))
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None) or "?"
        raise ValueError(f"{prefix}.{key} for {owner}: {str(error).splitlines()[0]}") from None
