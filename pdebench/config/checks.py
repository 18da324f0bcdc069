"""Range checks of single settings, shared by every config dataclass's `__post_init__`.

A check reads `owner.key` and raises `SettingError` naming the field, the value as it would be written on the
command line, and what was expected; `pdebench.config.loading` replaces the field by its full dotted key
(`max_epochs` -> `trainer.max_epochs`). The predicates `is_whole_number` and `is_finite_number` are the one
definition of "a count" and "a number" for every config, model and solver setting.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from pdebench.data.names import name_problem, seed_problem
from pdebench.errors import InvalidSetting


class SettingError(InvalidSetting):
    """A value a config dataclass rejects in `__post_init__`: the one way every schema, model config and solver
    settings class reports a bad value.

    `key` is the field's name within its dataclass; loading replaces it by the full dotted key the user wrote
    (`max_epochs` -> `trainer.max_epochs`, `n_points` -> `pde.solver.n_points`) and may name what the settings
    configure (`model fno`). `problem` follows `key=value` and may contain `{key}`.
    """

    def __init__(self, key: str, value: Any, problem: str) -> None:
        self.key, self.value, self.problem = key, value, problem
        super().__init__(self.sentence(key))

    def sentence(self, full_key: str, owner: str | None = None) -> str:
        """`full_key=value [for owner] problem`, e.g. `model.hidden_channels=0 for model fno is not valid: ...`."""
        where = f" for {owner}" if owner else ""
        return f"{full_key}={format_value(self.value)}{where} {self.problem.format(key=full_key)}"


def format_value(value: Any) -> str:
    """A value as it would be written on the command line (`null`, `true`, `[0.8,0.9]`, `cuda`)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    return str(value)


def is_whole_number(value: Any) -> bool:
    """An int (NumPy's included) that is not a bool (YAML `true` is not a count)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_finite_number(value: Any) -> bool:
    """An int or float (NumPy's included, not a bool) that is finite (an int too large for a float is not)."""
    if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, (bool, np.bool_)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def at_least(owner: Any, key: str, minimum: int, what: str, optional: bool = False) -> None:
    """`owner.key` must be a whole number >= `minimum` (or null when `optional`)."""
    value = getattr(owner, key)
    if optional and value is None:
        return
    if not (is_whole_number(value) and value >= minimum):
        null = " (or null)" if optional else ""
        raise SettingError(key, value, f"is not valid: expected {what}, a whole number >= {minimum}{null}")


def positive(owner: Any, key: str, what: str, allow_zero: bool = False) -> None:
    """`owner.key` must be a finite number > 0 (>= 0 with `allow_zero`)."""
    value = getattr(owner, key)
    if not (is_finite_number(value) and (value >= 0 if allow_zero else value > 0)):
        bound = ">= 0" if allow_zero else "> 0"
        raise SettingError(key, value, f"is not valid: expected {what}, a finite number {bound}")


def fraction(owner: Any, key: str, what: str) -> None:
    """`owner.key` must be a number in [0, 1]."""
    value = getattr(owner, key)
    if not (is_finite_number(value) and 0 <= value <= 1):
        raise SettingError(key, value, f"is not valid: expected {what}, a number between 0 and 1")


def follows(rule: Callable[[Any], str | None], owner: Any, key: str, optional: bool = False) -> None:
    """`owner.key` must pass `rule` (a `pdebench.data.names` check returning the problem, or None); a long value is
    quoted cut to 80 characters."""
    value = getattr(owner, key)
    if optional and value is None:
        return
    problem = rule(value)
    if problem is not None:
        raise SettingError(key, value if len(str(value)) <= 80 else f"{str(value)[:80]}...", problem)


def valid_seed(owner: Any, key: str, optional: bool = False) -> None:
    """`owner.key` must be a seed torch and Lightning take as it is."""
    follows(seed_problem, owner, key, optional)


def valid_name(owner: Any, key: str, optional: bool = False) -> None:
    """`owner.key` must be a name that can become part of a file name (a label, a pde, a preset)."""
    follows(name_problem, owner, key, optional)


def batch_limit(owner: Any, key: str) -> None:
    """Lightning's `limit_*_batches`: a number of batches (int >= 0) or a fraction of them (float in [0, 1])."""
    value = getattr(owner, key)
    if value is None or (is_whole_number(value) and value >= 0) or (isinstance(value, float) and 0.0 <= value <= 1.0):
        return
    raise SettingError(key, value, "is not valid: expected a number of batches (a whole number >= 0) or a fraction "
                                   "of them (a float between 0.0 and 1.0)")


_FROM_OWNER: Any = object()  # whole_number/finite_number: read the value from `owner.key`


def whole_number(owner: Any, key: str, minimum: int, what: str = "", value: Any = _FROM_OWNER) -> int:
    """`owner.key` (or `value`, given for it, e.g. one entry of a pair) as an int >= `minimum`; a SettingError
    otherwise. Returns the value as a Python int."""
    value = getattr(owner, key) if value is _FROM_OWNER else value
    if not (is_whole_number(value) and value >= minimum):
        expected = f"{what}, a whole number" if what else "a whole number"
        raise SettingError(key, value, f"is not valid: expected {expected} >= {minimum}")
    return int(value)


def _bounds(low: float, high: float, low_open: bool) -> str:
    parts = [f"{'>' if low_open else '>='} {low:g}"] if low > -math.inf else []
    parts += [f"<= {high:g}"] if high < math.inf else []
    return f" {' and '.join(parts)}" if parts else ""


def finite_number(owner: Any, key: str, low: float = 0.0, high: float = math.inf, low_open: bool = False,
                  what: str = "", value: Any = _FROM_OWNER) -> float:
    """`owner.key` (or `value` given for it) as a finite float within [low, high] (`(low, high]` with `low_open`);
    a SettingError otherwise. Returns the value as a Python float."""
    value = getattr(owner, key) if value is _FROM_OWNER else value
    if not (is_finite_number(value) and (value > low if low_open else value >= low) and value <= high):
        expected = f"{what}, a finite number" if what else "a finite number"
        raise SettingError(key, value, f"is not valid: expected {expected}{_bounds(low, high, low_open)}")
    return float(value)


def number_interval(owner: Any, key: str, low: float, high: float = math.inf, low_open: bool = False,
                    what: str = "") -> tuple[float, float]:
    """`owner.key` as a `[low, high]` pair of finite numbers with `low <= high` inside the bounds (`low_open`:
    strictly above `low`); a SettingError otherwise. Returns the pair as a tuple of floats."""
    value = getattr(owner, key)
    pair = list(value) if isinstance(value, (list, tuple)) else None
    lower = f"{low:g} {'<' if low_open else '<='} " if low > -math.inf else ""
    upper = f" <= {high:g}" if high < math.inf else ""
    expected = f"{what}, " if what else ""
    if not (pair is not None and len(pair) == 2 and all(is_finite_number(v) for v in pair)
            and (pair[0] > low if low_open else pair[0] >= low) and pair[0] <= pair[1] <= high):
        raise SettingError(key, value, f"is not valid: expected {expected}a pair [low, high] of finite numbers with "
                                       f"{lower}low <= high{upper}")
    return float(pair[0]), float(pair[1])
