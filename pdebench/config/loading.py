"""Resolved config -> typed config objects, once, where a command starts; one sentence naming the key on failure.

Hydra's `+key=value` adds a key whatever the schema says, so composing alone lets `+trainer.foo=1` through; and a
schema's types say nothing of ranges (`trainer.max_epochs=-5`). `load_config` closes both gaps: it merges a resolved
plain config onto its schema dataclass (closed nodes: an unknown key fails, naming the valid keys at that level; a
value of the wrong type fails), runs every node's `__post_init__` range checks deepest first so that the error names
the full dotted key, and returns the schema's dataclass object. The library reads that object by attribute.

`typed_settings` does the same for the settings a registry types (a model's, a solver's), whose dataclass depends
on a name in the config and so is applied by the layer that owns the registry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import fields, is_dataclass
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, MissingMandatoryValue, OmegaConfBaseException

from pdebench.config.checks import SettingError, format_value
from pdebench.errors import InvalidSetting

T = TypeVar("T")


class ConfigError(InvalidSetting):
    """A config key no schema knows, or a value its schema rejects; the message is one sentence naming the key."""


def _unknown_key_sentence(error: ConfigKeyError) -> str:
    """`unknown config key trainer.foo; valid keys under trainer: accelerator, devices, ...`."""
    full_key = str(error.full_key or error.key or "?")
    parent = full_key.rpartition(".")[0]
    where = f"under {parent}" if parent else "at the top level"
    object_type = error.object_type
    valid = ", ".join(f.name for f in fields(object_type)) if is_dataclass(object_type) else "(none)"
    return f"unknown config key {full_key}; valid keys {where}: {valid}"


def _error_sentence(error: OmegaConfBaseException, cfg: Mapping[str, Any]) -> str:
    """One sentence for an OmegaConf error, naming the full key (OmegaConf's own text spans several lines)."""
    if isinstance(error, ConfigKeyError):
        return _unknown_key_sentence(error)
    full_key = str(getattr(error, "full_key", None) or getattr(error, "key", None) or "?")
    if isinstance(error, MissingMandatoryValue):
        return f"config key {full_key} has no value; give one (e.g. {full_key}=...)"
    value: Any = cfg
    for part in re.findall(r"[^.\[\]]+", full_key):  # `a.b[1].c` -> a, b, 1, c
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, Sequence) and not isinstance(value, str) and part.isdigit():
            value = value[int(part)]
        else:
            value = None
    message = (getattr(error, "msg", None) or str(error)).splitlines()[0]
    return f"{full_key}={format_value(value)} is not valid: {message}"


def _check_values(node: DictConfig) -> None:
    """Run the `__post_init__` checks of every dataclass node of `node`, deepest first, naming the full key."""
    for key in node.keys():
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_none() and not child._is_missing():
            _check_values(child)
    if not is_dataclass(OmegaConf.get_type(node)):
        return
    try:
        OmegaConf.to_object(node)
    except SettingError as error:
        prefix = node._get_full_key(None)
        raise ConfigError(error.sentence(f"{prefix}.{error.key}" if prefix else error.key)) from None


def _merged(cfg: Mapping[str, Any], schema: type) -> DictConfig:
    """`cfg` merged onto `schema` with every node's range checks run; a refusal as one ConfigError sentence."""
    try:
        # A dataclass node refuses keys its class lacks by itself; struct mode on the root would also refuse new
        # names in dict-typed nodes (`pde.presets.<preset>`), which are open by design.
        merged = OmegaConf.merge(OmegaConf.structured(schema), dict(cfg))
        _check_values(merged)
    except OmegaConfBaseException as error:
        raise ConfigError(_error_sentence(error, cfg)) from None
    return merged


def load_config(cfg: Mapping[str, Any] | T, schema: type[T]) -> T:
    """The `schema` object of a resolved plain config, or `cfg` itself when it already is one.

    Fails, in one `ConfigError` sentence naming the full key, on a key `schema` lacks, a value of the wrong type
    or a value a node's `__post_init__` rejects. Fields typed `Any` (`model`, `pde.solver`) come back as plain
    dicts, for their registry to type (`typed_settings`).
    """
    if isinstance(cfg, schema):
        return cfg
    if is_dataclass(cfg):
        raise TypeError(f"expected a {schema.__name__} or a plain mapping, got a {type(cfg).__name__}")
    return OmegaConf.to_object(_merged(cfg, schema))  # type: ignore[return-value]


def plain_config(cfg: Any) -> Any:
    """A typed config (nested dataclasses, lists, dicts) as plain containers, for checkpoints, result files and
    loggers, which store only builtins; a plain value comes back as it is."""
    if is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: plain_config(getattr(cfg, f.name)) for f in fields(cfg)}
    if isinstance(cfg, Mapping):
        return {key: plain_config(value) for key, value in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return [plain_config(value) for value in cfg]
    return cfg


def typed_settings(config_cls: type[T], settings: Mapping[str, Any] | T, prefix: str, owner: str | None = None) -> T:
    """`config_cls` built from `settings`, rejecting unknown keys and values of the wrong type (a typed object is
    returned as it is).

    `prefix` is how the keys are spelt on the command line (`model`, `pde.solver`, `optim`) and `owner`, if given,
    names what they configure (`model fno`), so an error reads `unknown key(s) model.widht for model fno; valid
    keys: ...`, and a range check of the dataclass (`SettingError`) `model.hidden_channels=0 for model fno is not
    valid: ...`. A setting `settings` lacks takes its default (a checkpoint written before the setting existed).
    """
    if isinstance(settings, config_cls):
        return settings
    valid = [f.name for f in fields(config_cls)]  # type: ignore[arg-type]
    unknown = sorted(set(settings) - set(valid))  # type: ignore[arg-type]
    if unknown:
        where = f" for {owner}" if owner else ""
        raise ConfigError(
            f"unknown key(s) {', '.join(f'{prefix}.{k}' for k in unknown)}{where}; valid keys: {', '.join(valid)}"
        )
    try:
        merged = OmegaConf.merge(OmegaConf.structured(config_cls), dict(settings))  # type: ignore[arg-type]
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except SettingError as error:  # a range check of the dataclass: name the key as the user writes it
        raise ConfigError(error.sentence(f"{prefix}.{error.key}", owner)) from None
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None) or "?"
        where = f" for {owner}" if owner else ""
        raise ConfigError(f"{prefix}.{key}{where}: {str(error).splitlines()[0]}") from None
