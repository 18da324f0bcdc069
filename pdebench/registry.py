"""One registry type for every extension point: models (`baselines`), generators (`data_gen`), objectives
(`pdebench.training`).

A `Registry` maps a name, as written in a config (`model=fno`, `pde.generator=ks`, `objective=pushforward`), to an
entry. It reads like the dict it wraps; a lookup of a name it lacks raises `UnknownName` listing the registered
names, and `add`, which the registering decorators use, refuses a name twice. Assigning (`registry[name] = entry`)
replaces an entry on purpose and `del` removes one, as a test that swaps in a probe does. Each extension point keeps
its own entry type and decorator, built on `add`.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Generic, TypeVar

from pdebench.errors import UnknownName

E = TypeVar("E")


class Registry(MutableMapping[str, E], Generic[E]):
    """Entries of one kind (`kind` names it in errors: `unknown model 'fnoo'; registered models: fno, ...`)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, E] = {}

    def add(self, name: str, entry: E) -> E:
        """Register `entry` under `name`; a second registration of one name is a bug in the code that adds it."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def __getitem__(self, name: str) -> E:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownName(f"unknown {self.kind} {name!r}; registered {self.kind}s: "
                              f"{', '.join(sorted(self._entries))}") from None

    def __setitem__(self, name: str, entry: E) -> None:
        self._entries[name] = entry

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._entries)})"
