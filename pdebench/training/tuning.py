"""A finished Optuna search over one row's optimiser (`pdebench-train -m hydra/sweeper=tune_lr experiment=...`) read
into the row's `TuningRecord`, which `pdebench.config.recipes.write_tuned` records for the row's later runs.

The search folder holds what Hydra's Optuna sweeper leaves: `optimization_results.yaml` (the best trial's
parameters and its value, the best validation selection score), and one folder per trial whose `.hydra/hydra.yaml`
holds the sweeper's settings (the number of trials, the study's name) and `.hydra/config.yaml` the trial's config.
"""

from __future__ import annotations

import datetime
import math
from pathlib import Path
from typing import Any

import yaml

from pdebench.config.schemas import TuningRecord
from pdebench.errors import InvalidSetting, MissingFile

RESULTS_NAME = "optimization_results.yaml"  # written by hydra-optuna-sweeper into the search folder
TUNED_PARAMS = ("optim.lr", "optim.weight_decay")  # what conf/hydra/sweeper/tune_lr.yaml searches


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MissingFile(f"{path} does not exist: the search did not finish there") from None
    except yaml.YAMLError as error:
        raise InvalidSetting(f"{path} is not valid YAML ({str(error).splitlines()[0]})") from None


def trial_folders(search_dir: Path) -> list[Path]:
    """The folders of the search's trials (each holds `.hydra/config.yaml`), in trial order."""
    found = [p.parent.parent for p in search_dir.glob("*/.hydra/config.yaml")]
    return sorted(found, key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name))


def search_winner(search_dir: str | Path, today: datetime.date | None = None) -> TuningRecord:
    """The `TuningRecord` of the finished search in `search_dir`: the best trial's `optim.lr` and
    `optim.weight_decay`, the number of trials and the study's name (from the sweeper's settings), the optimiser
    steps each trial trained, the date (`today`, default the current UTC date) and the best score.

    Refused, in one sentence naming the folder: a search that did not finish (no results file), that ran fewer
    trials than it was set to, that searched other settings than the two, or whose best trial has no finite score
    (every trial diverged or scored nothing)."""
    search_dir = Path(search_dir)
    results = _read_yaml(search_dir / RESULTS_NAME) or {}
    params, value = results.get("best_params") or {}, results.get("best_value")
    if sorted(params) != sorted(TUNED_PARAMS):
        raise InvalidSetting(f"the search in {search_dir} tuned {', '.join(sorted(params)) or 'nothing'}, not "
                             f"{' and '.join(TUNED_PARAMS)}: run it with hydra/sweeper=tune_lr")
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidSetting(f"the best trial of the search in {search_dir} scored {value}: no trial trained to a "
                             "finite validation score, so there is no winner to record")
    trials = trial_folders(search_dir)
    if not trials:
        raise MissingFile(f"{search_dir} holds no trial folder (*/.hydra/config.yaml)")
    sweeper = (_read_yaml(trials[0] / ".hydra" / "hydra.yaml") or {}).get("hydra", {}).get("sweeper", {})
    n_trials = int(sweeper.get("n_trials") or 0)
    if len(trials) != n_trials:
        raise InvalidSetting(f"the search in {search_dir} was set to {n_trials} trials but holds {len(trials)}: "
                             "rerun it to the end before recording its winner")
    day = today or datetime.datetime.now(datetime.timezone.utc).date()
    return TuningRecord(lr=float(params["optim.lr"]), weight_decay=float(params["optim.weight_decay"]),
                        n_trials=n_trials, trial_steps=trial_steps(trials[0]),
                        study=str(sweeper.get("study_name") or search_dir.name), date=day.isoformat(),
                        score=float(value))


def trial_steps(trial: Path) -> int:
    """The optimiser steps a trial trained: its `trainer.max_steps`, which a recipe run's saved config holds as the
    interpolation of `recipe.max_steps` unless the search set it."""
    config = _read_yaml(trial / ".hydra" / "config.yaml") or {}
    steps = (config.get("trainer") or {}).get("max_steps")
    if not isinstance(steps, int):
        steps = (config.get("recipe") or {}).get("max_steps")
    if not isinstance(steps, int) or steps < 1:
        raise InvalidSetting(f"trial {trial} trained no step budget (trainer.max_steps); tune a row that follows a "
                             "recipe (experiment=<dataset>_<model>)")
    return steps
