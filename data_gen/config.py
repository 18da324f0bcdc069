"""`generate_config`: a resolved `pdebench-generate` config as the typed `GenerateConfig` generation reads.

`pde_config` types one PDE node alone (the library call `generate_dataset` takes a PDE without the rest of the
command's config)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from data_gen.registry import solver_config
from pdebench.config import GenerateConfig, PDEGenConfig, load_config


def pde_config(pde: Mapping[str, Any] | PDEGenConfig) -> PDEGenConfig:
    """`pde` checked and typed: the node by `PDEGenConfig`, `solver` by the settings dataclass of generator
    `pde.generator` (a typed object is returned as it is, its solver typed if it is not yet)."""
    typed = load_config(pde, PDEGenConfig)
    typed.solver = solver_config(typed.generator, typed.solver)
    return typed


def generate_config(cfg: Mapping[str, Any] | GenerateConfig) -> GenerateConfig:
    """`cfg` checked and typed once: every node by its schema (`load_config`), `pde.solver` by the settings
    dataclass of generator `pde.generator` (a misspelt solver key fails naming it and the generator)."""
    typed = load_config(cfg, GenerateConfig)
    typed.pde = pde_config(typed.pde)
    return typed
