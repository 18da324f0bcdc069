"""Numerical solvers that write trajectory datasets. Every module is imported here, so a generator registers
itself by being a file in `data_gen/` (see data_gen/registry.py).

What the package offers: the generation driver (`generate_dataset` for one PDE and preset, `merge_shards`; the
whole `pdebench-generate` config goes to `data_gen.generate.generate`, not re-exported here because the name is
its module's), its config loader (`generate_config`), and the generator registry (`GENERATORS`,
`register_generator`, `make_generator`, `solver_config`) with the protocol a generator satisfies
(`TrajectoryGenerator`, `GeneratedBatch`)."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

from data_gen.base import GeneratedBatch, TrajectoryGenerator  # noqa: E402
from data_gen.config import generate_config  # noqa: E402
from data_gen.generate import generate_dataset, merge_shards  # noqa: E402
from data_gen.registry import GENERATORS, make_generator, register_generator, solver_config  # noqa: E402

__all__ = [
    "GENERATORS",
    "GeneratedBatch",
    "TrajectoryGenerator",
    "generate_config",
    "generate_dataset",
    "make_generator",
    "merge_shards",
    "register_generator",
    "solver_config",
]
