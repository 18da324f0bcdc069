"""One sentence for each config error Hydra or OmegaConf raises while composing a command line.

Hydra reports a bad override as a multi-line dump (the available options one per line, the config search path,
OmegaConf's `full_key`/`object_type` lines). `describe_composition_error` turns the exception into the one sentence
a user needs, read from the exception's attributes, not from its text: `MissingConfigException.options` for an
unknown choice (`model=fnoo`), the OmegaConf cause's `full_key` and `object_type` (a schema dataclass, whose fields
are the valid keys and whose type hints say what a value must be) for a misspelt key or a value of the wrong type,
and `OverrideParseException.override` for an override Hydra's grammar cannot read. Anything it does not recognise is
Hydra's own message folded onto one line.
"""

from __future__ import annotations

import difflib
import enum
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields, is_dataclass
from typing import Any

from hydra.core.override_parser.types import Override
from hydra.errors import MissingConfigException, OverrideParseException
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    MissingMandatoryValue,
    OmegaConfBaseException,
    ValidationError,
)

# How a config group is named in a sentence ("model=fnoo is not a model"); other groups by their last path part.
GROUP_NOUNS = {"data": "dataset", "pde": "PDE", "hydra/launcher": "launcher", "hydra/sweeper": "sweeper"}
# Lines of Hydra's and OmegaConf's messages that only repeat what the sentence already says or point elsewhere.
NOISE_PREFIXES = ("full_key:", "object_type=", "reference_type=", "See https://", "Set the environment variable")


def one_line(message: str) -> str:
    """Hydra's message on one line: its lines joined, without the search path dump and OmegaConf's key lines."""
    kept = []
    for line in message.splitlines():
        line = line.strip()
        if line.startswith(("Config search path:", "Search path:")):
            break
        if line and not line.startswith(NOISE_PREFIXES):
            kept.append(line)
    return " ".join(kept) or message.strip() or "invalid configuration"


def _article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"


def _did_you_mean(word: str, candidates: Iterable[str], prefix: str = "") -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


def describe_type(hint: Any) -> str | None:
    """What a value of type `hint` looks like on the command line ("a number (float)"); None if anything goes."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        present = [a for a in args if a is not type(None)]
        parts = [describe_type(a) for a in present]
        if not parts or any(p is None for p in parts):
            return None
        text = " or ".join(typing.cast(list[str], parts))
        return f"{text} or null" if len(present) < len(args) else text
    if hint is bool:
        return "true or false"
    if hint is int:
        return "a whole number (int)"
    if hint is float:
        return "a number (float)"
    if hint is str:
        return "a string"
    if origin in (list, tuple, Sequence) or hint in (list, tuple):
        inner = describe_type(args[0]) if args else None
        return f"a list, each {inner}" if inner else "a list"
    if origin in (dict, Mapping) or hint is dict:
        return "a mapping of keys to values"
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "one of: " + ", ".join(m.name for m in hint)
    if is_dataclass(hint):
        return "a group of settings (" + ", ".join(f.name for f in fields(hint)) + ")"
    return None


def expected_type(object_type: Any, key: Any) -> str | None:
    """What field `key` of the schema dataclass `object_type` takes, in words; None if unknown."""
    if not (isinstance(object_type, type) and is_dataclass(object_type)) or not isinstance(key, str):
        return None
    try:
        hints = typing.get_type_hints(object_type)
    except Exception:  # an annotation that does not resolve: say what OmegaConf said instead
        return None
    return describe_type(hints[key]) if key in hints else None


def _shown_value(override: Override) -> str:
    """The override's value as the user typed it: `null` bare, anything else quoted."""
    text = override.get_value_element_as_str()
    return text if text == "null" else f"'{text}'"


def _valid_keys(object_type: Any) -> list[str] | None:
    if isinstance(object_type, type) and is_dataclass(object_type):
        return [f.name for f in fields(object_type)]
    return None


def unknown_key_sentence(error: ConfigKeyError | ConfigAttributeError, command: str, value: str | None) -> str:
    """`optim.lrr is not a setting of optim (did you mean optim.lr?); valid keys: lr, weight_decay, ...`."""
    full_key = str(error.full_key or error.key)
    parent, _, leaf = full_key.rpartition(".")
    valid = _valid_keys(error.object_type)
    hint = _did_you_mean(leaf, valid or [], f"{parent}." if parent else "")
    where = f"a setting of {parent}" if parent else f"a setting or config group of {command}"
    sentence = f"{full_key} is not {where}{hint}"
    if valid is not None:
        sentence += "; valid keys: " + ", ".join(valid)
    if value is not None and valid is None:
        sentence += f" (to add a new key use +{full_key}={value})"
    return sentence


def describe_omegaconf_error(error: OmegaConfBaseException, override: Override | None, command: str) -> str:
    """One sentence for OmegaConf's refusal of `override` (None when it came from a config file)."""
    value = override.get_value_element_as_str() if override is not None and not override.is_delete() else None
    if isinstance(error, (ConfigKeyError, ConfigAttributeError)) and not (override and override.is_delete()):
        return unknown_key_sentence(error, command, value)
    full_key = str(getattr(error, "full_key", None) or getattr(error, "key", None) or "?")
    where = override.input_line if override is not None else full_key
    if override is not None and override.is_delete():
        return (f"{where}: {full_key} cannot be removed, every run needs it; set it instead "
                f"({full_key}=...)")
    if isinstance(error, MissingMandatoryValue):
        return f"config key {full_key} has no value; give one (e.g. {full_key}=...)"
    if isinstance(error, ValidationError) and override is not None:
        expected = expected_type(error.object_type, error.key)
        if expected is not None:
            return f"{where}: expected {expected}, got {_shown_value(override)}"
    return f"{where} is not valid: {one_line(str(getattr(error, 'msg', None) or error))}"


def _override_for(full_key: str, overrides: Sequence[Override]) -> Override | None:
    """The command-line override that set `full_key`: the same key, else the one above it (`optim={...}`)."""
    for override in overrides:
        if override.key_or_group == full_key:
            return override
    for override in overrides:
        if full_key.startswith(override.key_or_group + "."):
            return override
    return None


def unknown_choice_sentence(error: MissingConfigException, overrides: Sequence[Override]) -> str | None:
    """`model=fnoo is not a model (did you mean model=fno?); choose one of: fno, mpnn, ...`."""
    if not error.missing_cfg_file or not error.options:
        return None
    group, _, name = error.missing_cfg_file.rpartition("/")
    if not group:
        return None
    noun = GROUP_NOUNS.get(group, group.rpartition("/")[2])
    given = any(o.key_or_group == group for o in overrides)
    source = "" if given else " (asked for by a config file's defaults list)"
    hint = _did_you_mean(name, error.options, f"{group}=")
    return (f"{group}={name}{source} is not {_article(noun)} {noun}{hint}; choose one of: "
            + ", ".join(error.options))


def describe_composition_error(error: Exception, overrides: Sequence[Override], command: str) -> str:
    """One sentence for an exception Hydra raised composing `overrides` (parsed command-line overrides)."""
    if isinstance(error, OverrideParseException):
        return (f"{error.override} is not a valid override: {one_line(error.message)}; write key=value "
                "(a list as key=[a,b], a value with spaces or commas in quotes)")
    if isinstance(error, MissingConfigException):
        sentence = unknown_choice_sentence(error, overrides)
        if sentence is not None:
            return sentence
    cause = error.__cause__
    if isinstance(cause, OmegaConfBaseException):
        full_key = str(getattr(cause, "full_key", None) or getattr(cause, "key", None) or "")
        override = _override_for(full_key, overrides) if full_key else None
        if override is not None:
            return describe_omegaconf_error(cause, override, command)
        return f"{one_line(str(error))}: {one_line(str(getattr(cause, 'msg', None) or cause))}"
    if isinstance(error, OmegaConfBaseException):
        return describe_omegaconf_error(error, None, command)
    return one_line(str(error))
