"""Hydra's ConfigStore, filled where the commands start: the schemas of `pdebench.config`, and, for the commands
that compose a model or a PDE, one schema per registered model and generator.

The model and generator schemas are the dataclasses of `baselines` and `data_gen`, so registering them imports the
model zoo and the solvers. Only a command that runs with a `model` or `pde` group pays that (train, evaluate,
generate). `--help` only prints the composed config, so it composes against untyped stand-ins of those schemas
(same keys and values: every `conf/model/*.yaml` lists all of its model's settings), and no command's help imports
the zoo. The label resolver (`run_label`) reads a model's reference width from the registry, importing it only when
a label is resolved (a run, never `--help`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import MISSING, Field, field, fields, make_dataclass
from pathlib import Path
from typing import Any

import yaml
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from pdebench.config import (
    DataConfig,
    EvaluateConfig,
    GenerateConfig,
    LeaderboardConfig,
    LoggerConfig,
    ObjectiveConfig,
    PDEGenConfig,
    TrainConfig,
    TrainerConfig,
    default_run_label,
)
from pdebench.config.location import CONFIG_DIR
from pdebench.config.recipes import tuned_or, tuned_row

# The Hydra version whose defaults every command and composition uses.
HYDRA_VERSION_BASE = "1.3"

# The settings that hold a net's width (channels of its first level or latent features), looked up in this order.
WIDTH_FIELDS = ("width", "hidden_channels")


def _pde_schema(generator: str, settings: type) -> type:
    """`PDEGenConfig` with `solver` typed as generator `generator`'s settings dataclass."""
    return make_dataclass(f"{settings.__name__}PDE", [("solver", settings, field(default_factory=settings))],
                          bases=(PDEGenConfig,))


def composed(app: str, overrides: Sequence[str]) -> dict[str, Any]:
    """The resolved config of `pdebench-<app>` (`train`, `generate`, ...) with these command-line overrides, as Hydra
    composes it (schemas and resolvers registered first)."""
    from hydra import compose, initialize_config_dir

    register_configs()
    with initialize_config_dir(CONFIG_DIR, version_base=HYDRA_VERSION_BASE):
        return OmegaConf.to_container(compose(app, overrides=list(overrides)), resolve=True)  # type: ignore[return-value]


def register_configs(models: bool = True, generators: bool = True) -> None:
    """Register the command schemas with Hydra's ConfigStore and the resolvers the train config uses (`run_label`;
    `tuned_row` and `tuned_or`, which read a recipe's tuned settings: `pdebench.config.recipes`) (idempotent); with
    `models`/`generators`, also one schema per registered model/generator (`schema/model/<name>`,
    `schema/pde/<generator>`), looping over the registries: adding a model or a PDE never edits this file. Without
    them, untyped stand-ins where no schema is registered yet (enough to compose a config for display)."""
    OmegaConf.register_new_resolver("run_label", run_label, replace=True)
    OmegaConf.register_new_resolver("tuned_row", tuned_row, replace=True)
    OmegaConf.register_new_resolver("tuned_or", tuned_or, replace=True)
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="evaluate_schema", node=EvaluateConfig)
    cs.store(name="generate_schema", node=GenerateConfig)
    cs.store(name="leaderboard_schema", node=LeaderboardConfig)
    cs.store(group="schema/data", name="data", node=DataConfig)
    cs.store(group="schema/objective", name="objective", node=ObjectiveConfig)
    cs.store(group="schema/trainer", name="trainer", node=TrainerConfig)
    cs.store(group="schema/logger", name="logger", node=LoggerConfig)
    if models:
        from baselines import MODELS  # importing baselines imports (so registers) every model

        for name, entry in MODELS.items():
            cs.store(group="schema/model", name=name, node=entry.config)
    else:
        _register_stand_ins("model", {})
    if generators:
        from data_gen.registry import GENERATORS  # importing data_gen imports (so registers) every generator

        for name, entry in GENERATORS.items():
            cs.store(group="schema/pde", name=name, node=_pde_schema(name, entry.config))
    else:
        _register_stand_ins("pde", PDEGenConfig)


def _field_default(spec: Field) -> Any:
    return spec.default_factory() if spec.default_factory is not MISSING else spec.default  # type: ignore[misc]


def width_setting(settings: Mapping[str, Any]) -> tuple[str, Any, int] | None:
    """`(key, width, reference width)` of a net's model settings: the setting that holds its width (`WIDTH_FIELDS`,
    dotted under `model`; a wrapper's, such as PDE-Refiner's, is its backbone's), the width these settings give and
    the model's reference width, its config dataclass's default. None for a model with no width (a reference row)
    or a name the registry does not know (loading the config refuses that, naming it)."""
    from baselines import MODELS  # the registry: imported only where a label is resolved, never for `--help`

    name = settings.get("name")
    if name not in MODELS:
        return None
    specs = {spec.name: spec for spec in fields(MODELS[name].config)}
    if "backbone" in specs:
        default = _field_default(specs["backbone"])
        backbone = settings.get("backbone") or default
        inner = width_setting(backbone) if isinstance(backbone, Mapping) else None
        if inner is None:
            return None
        # A wrapper whose paper sized its backbone (DYffusion: the zoo U-Net at width 16 comes nearest its reference's
        # count) states that width in its default backbone; that width is then the reference, not the backbone's own.
        reference = inner[2]
        if backbone.get("name") == default.get("name") and inner[0] in default:
            reference = default[inner[0]]
        return f"backbone.{inner[0]}", inner[1], reference
    for key in WIDTH_FIELDS:
        if key in specs:
            reference = _field_default(specs[key])
            return key, settings.get(key, reference), reference
    return None


def run_label(model: Mapping[str, Any], objective: Mapping[str, Any], recipe: Mapping[str, Any] | None) -> str:
    """`${run_label:${model},${objective},${oc.select:recipe,null}}`: `default_run_label` of the run, with the net's
    width and, under a recipe, the recipe's objective and target as the base (a departure its experiment gives a
    reason for, such as MP-PDE's pushforward, names no other row, so it adds nothing)."""
    width = width_setting(model)
    base = ("onestep", "state")
    if recipe is not None:
        reasons = recipe.get("reasons") or {}
        base = (objective["name"] if "objective" in reasons else recipe["objective"],
                objective["target"] if "target" in reasons else recipe["target"])
    return default_run_label(str(model["name"]), str(objective["name"]), str(objective["target"]),
                             None if width is None else width[1], None if width is None else width[2], base)


def _schema_names(group: str) -> set[str]:
    """The `schema/<group>` entries the YAML files of `conf/<group>/` name in their defaults."""
    names = set()
    for path in (Path(CONFIG_DIR) / group).glob("*.yaml"):
        defaults = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("defaults", [])
        names |= {str(entry[key]) for entry in defaults if isinstance(entry, dict)
                  for key in entry if key.startswith(f"/schema/{group}")}
    return names


def _register_stand_ins(group: str, node: Any) -> None:
    """An untyped `schema/<group>/<name>` (`node`) for each name the configs use that has no schema yet, so that a
    config composes for display without importing the registries; a real schema is never replaced."""
    cs = ConfigStore.instance()
    try:
        stored = {key.removesuffix(".yaml") for key in cs.list(f"schema/{group}")}
    except OSError:  # no schema of the group registered yet
        stored = set()
    for name in _schema_names(group) - stored:
        cs.store(group=f"schema/{group}", name=name, node=node)
