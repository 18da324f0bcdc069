"""The model zoo: plain conditioned nn.Modules and their registry (no training code here)."""

from baselines import fno, persistence  # noqa: F401  (importing registers the models)
from baselines.registry import MODELS, NetShape, build_model, model_entry, register

__all__ = ["MODELS", "NetShape", "build_model", "model_entry", "register"]
