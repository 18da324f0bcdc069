"""A package's public names, imported on first use (PEP 562).

A package `__init__` that imported every module it offers would make importing any one of its modules import all
of them: the leaderboard, which reads result records from `pdebench.rollout`, would import the models through
`pdebench.rollout.evaluation`. With `lazy_exports` the `__init__` still lists what the package offers (`__all__`),
and `from pdebench.rollout import evaluate_all` works, but a name's module is imported when the name is first used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, homes: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`, whose public names live in the modules `homes` maps them to
    (`{"evaluate_all": "pdebench.rollout.evaluation"}`); a name once imported is kept in the package."""
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(homes[name]), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(homes))

    return __getattr__, __dir__
