"""Numerical solvers that write trajectory datasets. Every module is imported here, so a generator registers
itself by being a file in `data_gen/` (see data_gen/registry.py)."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
