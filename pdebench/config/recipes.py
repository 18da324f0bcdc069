"""Dataset recipes and their tuned settings: what a run records about the recipe it follows.

A recipe (`conf/recipe/<dataset>.yaml`, typed by `RecipeConfig`) holds the training settings every learned row of
one dataset shares; `conf/recipe/_apply.yaml` sets the run's own settings from it (`RECIPE_KEYS`). An experiment
(`conf/experiment/<dataset>_<model>.yaml`) adds the model and, where the model's paper requires it, departs from a
recipe value, naming why in `recipe.reasons`. `recipe_deviations` lists every difference between what the recipe
says and what the run used, with its reason (or the recipe's value where none was given), for the run record and the
leaderboard.

Tuning: the Optuna search over `optim.lr` and `optim.weight_decay` (`pdebench-tune <dataset>`) writes
each row's winner to `<tuned_dir>/<dataset>.yaml` under the row's label (`write_tuned`). A recipe reads its row's
entry back while the config resolves (the `tuned_row` and `tuned_or` resolvers, registered where the commands start),
so a later run of the row trains with the winner and records it (`tuning_entry`); a row with no entry trains with
the recipe's `lr` and `weight_decay` and records "untuned".
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from pdebench.config.checks import format_value
from pdebench.config.loading import ConfigError, plain_config, typed_settings
from pdebench.config.location import CONFIG_DIR
from pdebench.config.schemas import RECIPE_KEYS, RecipeConfig, TrainConfig, TuningRecord
from pdebench.data.atomic import atomic_file
from pdebench.errors import InvalidSetting

UNTUNED = "untuned"  # the run record's `tuning` of a row trained without a recorded winner
TUNED_HEADER = (
    "# The Optuna winners of the {dataset} recipe's rows (optim.lr, optim.weight_decay), one entry per row label,\n"
    "# written by `pdebench-tune {dataset}` after its search; never edited by hand. A row listed here\n"
    "# trains with its winner and records it; any other row trains with the recipe's lr and weight_decay (untuned).\n"
)


def tuned_path(tuned_dir: str | Path | None, dataset: str) -> Path:
    """The tuned-settings file of `dataset`: `<tuned_dir>/<dataset>.yaml`, `tuned/` of the config tree by default."""
    return Path(tuned_dir if tuned_dir is not None else Path(CONFIG_DIR) / "tuned") / f"{dataset}.yaml"


def read_tuned(tuned_dir: str | Path | None, dataset: str) -> dict[str, TuningRecord]:
    """The winners recorded for `dataset`'s rows, by row label (empty when no row was tuned yet); a file that is not
    such a table is refused in one sentence naming it."""
    path = tuned_path(tuned_dir, dataset)
    if not path.is_file():
        return {}
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise InvalidSetting(f"tuned-settings file {path} is not valid YAML ({str(error).splitlines()[0]}); rerun "
                             f"the tuning of {dataset} to write it again") from None
    rows = content.get("rows") if isinstance(content, Mapping) else None
    if not isinstance(rows, Mapping) or not all(isinstance(entry, Mapping) for entry in rows.values()):
        raise InvalidSetting(f"tuned-settings file {path} holds no `rows:` table of row label -> winner; rerun the "
                             f"tuning of {dataset} to write it again")
    return {str(label): typed_settings(TuningRecord, entry, f"rows.{label}", f"file {path}")
            for label, entry in rows.items()}


def tuned_row(tuned_dir: str | None, dataset: str, label: str) -> dict[str, Any] | None:
    """`${tuned_row:dir,dataset,label}`: the winner recorded for row `label` of `dataset` as a plain dict, or None."""
    record = read_tuned(tuned_dir, str(dataset)).get(str(label))
    return None if record is None else plain_config(record)


def tuned_or(record: Mapping[str, Any] | None, key: str, default: Any) -> Any:
    """`${tuned_or:${recipe.tuning},lr,${recipe.lr}}`: the tuned value of `key`, or the recipe's when untuned."""
    return default if record is None else record[key]


def write_tuned(tuned_dir: str | Path | None, dataset: str, label: str, record: TuningRecord) -> Path:
    """Record `record` as the winner of row `label` of `dataset` (other rows kept), atomically.

    Every row of a dataset is tuned with the same number of trials: a winner found with another count than the rows
    already recorded is refused, naming both counts."""
    rows = read_tuned(tuned_dir, dataset)
    others = {label_: row.n_trials for label_, row in rows.items() if label_ != label}
    unequal = sorted(f"{label_} ({n})" for label_, n in others.items() if n != record.n_trials)
    if unequal:
        raise InvalidSetting(
            f"row {label} of {dataset} was tuned with {record.n_trials} trials, but {', '.join(unequal)} in "
            f"{tuned_path(tuned_dir, dataset)} with another count; every row of a dataset gets the same number of "
            "trials: tune this row with theirs, or delete the file and tune every row again"
        )
    rows[label] = record
    path = tuned_path(tuned_dir, dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = yaml.safe_dump({"rows": {name: plain_config(rows[name]) for name in sorted(rows)}}, sort_keys=False)
    with atomic_file(path) as fh:
        fh.write((TUNED_HEADER.format(dataset=dataset) + body).encode("utf-8"))
    return path


def check_recipe(cfg: TrainConfig) -> None:
    """Refuse a recipe applied to another dataset than its own (`recipe=ks data=smoke`), before any data loads."""
    if cfg.recipe is not None and cfg.recipe.name != cfg.data.pde:
        raise ConfigError(f"recipe={cfg.recipe.name} is the recipe of dataset {cfg.recipe.name}, but data.pde="
                          f"{cfg.data.pde}; use recipe={cfg.data.pde} (or an experiment={cfg.data.pde}_<model>)")


def run_value(cfg: TrainConfig, key: str) -> Any:
    """The value of the dotted setting `key` (`objective.bundle`) of a typed run config."""
    value: Any = cfg
    for part in key.split("."):
        value = getattr(value, part)
    return value


def recipe_value(recipe: RecipeConfig, name: str) -> Any:
    """What `recipe` asks of setting `name`: its own value, or for `lr` and `weight_decay` its row's tuned winner
    where one is recorded."""
    if name in ("lr", "weight_decay") and recipe.tuning is not None:
        return getattr(recipe.tuning, name)
    return getattr(recipe, name)


def recipe_deviations(cfg: TrainConfig) -> list[str]:
    """Every recipe setting the run departs from, one short sentence each in `RECIPE_KEYS` order:
    `"bundle: 3 (MP-PDE temporal bundling)"` with the reason its experiment gives, or `"max_steps: 10 (the recipe
    says 40000)"` where none is given. Empty without a recipe."""
    if cfg.recipe is None:
        return []
    deviations = []
    for name, key in RECIPE_KEYS.items():
        used, asked = run_value(cfg, key), recipe_value(cfg.recipe, name)
        if used == asked:
            continue
        reason = cfg.recipe.reasons.get(name) or f"the recipe says {format_value(asked)}"
        deviations.append(f"{name}: {format_value(used)} ({reason})")
    return deviations


def tuning_entry(cfg: TrainConfig) -> dict[str, Any] | str:
    """The run record's `tuning`: the row's Optuna winner (lr, weight_decay, n_trials, study, date, score) when the
    run trains with it, else "untuned" (no recipe, no winner recorded, or lr / weight decay set otherwise)."""
    tuning = None if cfg.recipe is None else cfg.recipe.tuning
    if tuning is None or (cfg.optim.lr, cfg.optim.weight_decay) != (tuning.lr, tuning.weight_decay):
        return UNTUNED
    return plain_config(tuning)


def recipe_record(cfg: TrainConfig) -> dict[str, Any]:
    """What the run record (`run` of checkpoints and result files) says about the recipe: `recipe` (its name, or
    None), `deviations` (`recipe_deviations`) and `tuning` (`tuning_entry`)."""
    return {"recipe": None if cfg.recipe is None else cfg.recipe.name, "deviations": recipe_deviations(cfg),
            "tuning": tuning_entry(cfg)}
