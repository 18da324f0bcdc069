"""`pdebench-tune <dataset> [--trials N] [--width-scale S] [override ...]`: tune every learned row of a
dataset alike, and record each row's winner where its later runs read it.

Per row (`conf/experiment/<dataset>_<model>.yaml`, every trainable model with one; `--model` picks some), one Optuna
search (`pdebench-train -m hydra/sweeper=tune_lr`) over `optim.lr` and `optim.weight_decay`, with the same number of
trials for every row, each trial a full training run on the recipe's budget; then the best trial's settings go to
the dataset's tuned-settings file (`conf/tuned/<dataset>.yaml`, or `recipe.tuned_dir=`), under the row's label.
The recipe reads that file: `pdebench-train experiment=<dataset>_<model>` then trains with the winner and its run
record says so (`tuning`: lr, weight decay, trials, trial steps, study, date, score); an untuned row says "untuned".

`--width-scale 0.25` tunes the rows at a quarter of each model's reference width (16 for the width-64 nets, 32 for
MP-PDE's 128): narrower rows have labels of their own (`unet-w16`), so their winners never stand in for the
reference rows'. Overrides apply to every row and trial (`trainer=gpu`, `data.root=...`).
Example: `pdebench-tune ks --trials 20 --width-scale 0.25` (`make tune-ks`).
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pdebench.cli.hydra_setup import composed as composed_config
from pdebench.cli.hydra_setup import width_setting
from pdebench.config.location import CONFIG_DIR
from pdebench.config.recipes import write_tuned
from pdebench.config.schemas import TuningRecord
from pdebench.errors import InvalidSetting, UnknownName, UserError

SEARCH_ROOT = "runs/tune"  # searches run in <root>/<dataset>/<label>/<time>/ (one folder per trial)


class SearchFailed(UserError, RuntimeError):
    """A row's search stopped before its end (its own error is printed above this sentence)."""


@dataclass(frozen=True)
class Row:
    """One learned row of a dataset as a search will train it: its experiment, label, and the extra overrides."""

    experiment: str
    label: str
    tuned_dir: str | None
    overrides: tuple[str, ...]


def recipes() -> list[str]:
    """The datasets with a recipe (`conf/recipe/<dataset>.yaml`; `_apply.yaml` is none)."""
    return sorted(p.stem for p in (Path(CONFIG_DIR) / "recipe").glob("*.yaml") if not p.stem.startswith("_"))


def dataset_rows(dataset: str, models: Sequence[str] | None = None) -> list[str]:
    """The experiments of `dataset`'s learned rows, `<dataset>_<model>` for every trainable model that has one (or
    for `models` only, each of which must have one)."""
    from baselines import MODELS

    if dataset not in recipes():
        raise UnknownName(f"dataset {dataset!r} has no recipe; recipes: {', '.join(recipes())}")
    trainable = [name for name, entry in MODELS.items() if entry.trainable]
    present = [name for name in trainable if (Path(CONFIG_DIR) / "experiment" / f"{dataset}_{name}.yaml").is_file()]
    if not models:
        return [f"{dataset}_{name}" for name in present]
    missing = [name for name in models if name not in present]
    if missing:
        raise UnknownName(f"no row of {dataset} for model {', '.join(missing)}; rows: {', '.join(present)}")
    return [f"{dataset}_{name}" for name in models]


def composed(overrides: Sequence[str]) -> dict[str, Any]:
    """The resolved `pdebench-train` config of these overrides (resolvers and schemas registered)."""
    return composed_config("train", overrides)


def scaled_width(reference: int, scale: float) -> int:
    """`reference * scale` rounded to an even number of channels, at least 2 (SineNet's conditioning halves it)."""
    return max(2, 2 * round(reference * scale / 2))


def plan_row(experiment: str, overrides: Sequence[str], width_scale: float | None) -> Row:
    """The row `experiment` with `overrides` (and its width scaled by `width_scale`), its label resolved."""
    extra = list(overrides)
    if width_scale is not None:
        width = width_setting(composed([f"experiment={experiment}", *extra])["model"])
        if width is None:
            raise InvalidSetting(f"--width-scale: the model of {experiment} has no width setting to scale")
        extra.append(f"++model.{width[0]}={scaled_width(width[2], width_scale)}")
    cfg = composed([f"experiment={experiment}", *extra])
    if cfg.get("recipe") is None:
        raise InvalidSetting(f"experiment={experiment} follows no recipe (recipe=<dataset>), so it has nothing to tune")
    return Row(experiment, cfg["label"], cfg["recipe"]["tuned_dir"], tuple(extra))


def search_command(row: Row, trials: int, study: str, search_dir: Path) -> list[str]:
    """The `pdebench-train -m hydra/sweeper=tune_lr` command line of `row`'s search."""
    return [sys.executable, "-m", "pdebench.cli.train", "-m", "hydra/sweeper=tune_lr", f"experiment={row.experiment}",
            *row.overrides, f"hydra.sweeper.n_trials={trials}", f"hydra.sweeper.study_name={study}",
            f"hydra.sweep.dir={search_dir}"]


Runner = Callable[[list[str]], int]  # runs a command line, returns its exit status


def run_command(command: list[str]) -> int:
    """The exit status of `command`, run as its own process (its output goes where this process's goes)."""
    return subprocess.run(command, check=False).returncode


def tune_row(row: Row, dataset: str, trials: int, root: Path, stamp: str, runner: Runner = run_command
             ) -> TuningRecord:
    """Run `row`'s search of `trials` trials under `root` (by `runner`), then record its winner; returns it."""
    from pdebench.training.tuning import search_winner

    study = f"{dataset}-{row.label}-{stamp}"
    search_dir = root / dataset / row.label / stamp
    print(f"tuning {row.label} ({row.experiment}): {trials} trials in {search_dir}", flush=True)
    status = runner(search_command(row, trials, study, search_dir))
    if status != 0:
        raise SearchFailed(f"the search of row {row.label} ({row.experiment}) stopped with exit code {status}; its "
                           f"error is above, and the rows before it are recorded")
    record = search_winner(search_dir)
    path = write_tuned(row.tuned_dir, dataset, row.label, record)
    print(f"recorded {row.label}: lr={record.lr:.3g} weight_decay={record.weight_decay:.3g} "
          f"(score {record.score:.4g}) in {path}", flush=True)
    return record


def tune_dataset(dataset: str, trials: int, models: Sequence[str] | None = None, overrides: Sequence[str] = (),
                 width_scale: float | None = None, root: str | Path = SEARCH_ROOT, runner: Runner = run_command
                 ) -> dict[str, TuningRecord]:
    """Tune every row of `dataset` (or those of `models`) with `trials` trials each and record the winners; returns
    them by row label. Every row is planned (composed, its label resolved) before the first search starts; each
    search runs as its own `pdebench-train` process (`runner`)."""
    if trials < 1:
        raise InvalidSetting(f"--trials={trials} is not valid: expected a number of trials >= 1")
    if width_scale is not None and not 0 < width_scale:
        raise InvalidSetting(f"--width-scale={width_scale} is not valid: expected a positive fraction of the "
                             "reference width")
    rows = [plan_row(name, overrides, width_scale) for name in dataset_rows(dataset, models)]
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    return {row.label: tune_row(row, dataset, trials, Path(root), stamp, runner) for row in rows}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="pdebench-tune",
                                     description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("dataset", help="the dataset whose rows to tune (a recipe of conf/recipe/)")
    parser.add_argument("overrides", nargs="*", help="pdebench-train overrides for every row and trial")
    parser.add_argument("--trials", type=int, default=20, help="Optuna trials per row (default 20)")
    parser.add_argument("--model", action="append", help="only this model's row (repeatable)")
    parser.add_argument("--width-scale", type=float, help="train every row at this fraction of its reference width")
    parser.add_argument("--root", default=SEARCH_ROOT, help=f"where the searches run (default {SEARCH_ROOT})")
    args = parser.parse_intermixed_args(argv)
    try:
        tune_dataset(args.dataset, args.trials, args.model, args.overrides, args.width_scale, args.root)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
