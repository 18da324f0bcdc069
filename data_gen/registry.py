"""The generator registry: `pde.generator` -> a batched trajectory generator class and its typed solver settings.

A PDE is one file in `data_gen/`: its settings dataclass, its generator class (satisfying
`data_gen.base.TrajectoryGenerator`) decorated with `@register_generator("name", config=NameConfig)`, plus a
`conf/pde/<name>.yaml`. Every module of the package is imported when `data_gen` is, so the generation driver,
Hydra's ConfigStore and the tests find it by looping over `GENERATORS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, is_dataclass
from typing import Any

from data_gen.base import TrajectoryGenerator
from pdebench.config.loading import typed_settings
from pdebench.registry import Registry


@dataclass(frozen=True)
class GeneratorEntry:
    name: str
    generator: Callable[[Any], TrajectoryGenerator]  # the class, called with its typed settings
    config: type


GENERATORS: Registry[GeneratorEntry] = Registry("generator")


def register_generator(name: str, *, config: type) -> Callable[[type], type]:
    """Class decorator adding a generator (constructed as `cls(config_instance)`) to `GENERATORS`."""
    if not (isinstance(config, type) and is_dataclass(config)):
        raise TypeError(f"generator {name!r}: config must be a dataclass")

    def wrap(cls: type) -> type:
        GENERATORS.add(name, GeneratorEntry(name, cls, config))
        return cls

    return wrap


def generator_entry(name: str) -> GeneratorEntry:
    """The entry registered as `name` (`UnknownName`, listing the registered generators, if there is none)."""
    return GENERATORS[name]


def solver_config(name: str, settings: Mapping[str, Any]) -> Any:
    """The typed solver settings of generator `name`; an unknown key or a wrong type fails naming it."""
    entry = generator_entry(name)
    return typed_settings(entry.config, settings, "pde.solver", f"the {name} generator")


def make_generator(name: str, settings: Mapping[str, Any]) -> TrajectoryGenerator:
    """Build generator `name` from plain solver settings (validated by `solver_config`)."""
    return generator_entry(name).generator(solver_config(name, settings))
