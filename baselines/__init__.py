"""The model zoo: plain conditioned nn.Modules and their registry (no training code here).

Every module of this package is imported here, so a model registers itself by being a file in `baselines/`.
"""

import importlib
import pkgutil

from baselines.registry import (
    MODELS,
    ModelConfig,
    build_model,
    check_model_spec,
    model_config,
    model_entry,
    register,
)
from pdebench.data.netspec import NetSpec

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["MODELS", "ModelConfig", "NetSpec", "build_model", "check_model_spec", "model_config", "model_entry",
           "register"]
