"""One recipe per dataset: every learned row of a dataset trains with the same budget, optimiser, schedule, EMA,
loss, target, history and bundle, departing only where its experiment says why; the budget is a number of optimiser
steps that bounds training and survives a resume; a row's width names it; its run record carries the recipe, its
deviations and its tuning; the tuning command records each row's Optuna winner where the row's later runs read it."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from baselines import MODELS
from pdebench.cli.common import CONFIG_DIR
from pdebench.cli.hydra_setup import width_setting
from pdebench.config import ConfigError
from pdebench.config.recipes import (
    UNTUNED,
    read_tuned,
    recipe_deviations,
    tuned_path,
    write_tuned,
)
from pdebench.config.schemas import RECIPE_KEYS, TuningRecord
from pdebench.errors import InvalidSetting, MissingFile
from pdebench.forecast.checkpoint import load_checkpoint_weights_only
from pdebench.training.config import train_config
from pdebench.training.run import check_training_config, fit

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RECIPES = sorted(p.stem for p in (Path(CONFIG_DIR) / "recipe").glob("*.yaml") if not p.stem.startswith("_"))
# every learned row: `<dataset>_<model>` for each dataset with a recipe and each trainable model with a preset there
ROWS = sorted(f"{dataset}_{name}" for dataset in RECIPES for name, entry in MODELS.items()
              if entry.trainable and (Path(CONFIG_DIR) / "experiment" / f"{dataset}_{name}.yaml").is_file())
RUN = ["trainer.enable_progress_bar=false", "validation.rollout_steps=2", "validation.max_trajectories=2"]


def run_value(cfg: dict[str, Any], key: str) -> Any:
    value: Any = cfg
    for part in key.split("."):
        value = value[part]
    return value


def declared_reasons(experiment: str) -> dict[str, str]:
    """The reasons an experiment file itself gives for departing from its recipe."""
    text = yaml.safe_load((Path(CONFIG_DIR) / "experiment" / f"{experiment}.yaml").read_text())
    return dict((text.get("recipe") or {}).get("reasons") or {})


# --- the recipes ---------------------------------------------------------------------------------------------------


def test_every_dataset_has_a_recipe_and_every_preset_of_a_net_is_a_row() -> None:
    """A recipe per dataset of conf/data, and no `<dataset>_<model>` preset outside `ROWS` (the quickstart is
    `<dataset>_<model>_<variant>`)."""
    from pdebench.cli.models import dataset_names

    assert RECIPES == sorted(dataset_names())
    presets = {p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml")}
    nets = {name for name, entry in MODELS.items() if entry.trainable}
    assert {p for p in presets if any(p == f"{d}_{n}" for d in RECIPES for n in nets)} == set(ROWS)


@pytest.mark.parametrize("row", ROWS)
def test_a_row_departs_from_its_recipe_only_where_its_experiment_says_why(compose_cfg, row: str) -> None:
    """Every recipe setting of the row is the recipe's (the budget, batch, optimiser, schedule, EMA, loss, target,
    history, bundle), except those its experiment names a reason for, each of which it really changes; the run
    record lists exactly those, with the reason."""
    cfg = compose_cfg("train", [f"experiment={row}"])
    recipe, reasons = cfg["recipe"], declared_reasons(row)
    assert recipe["name"] == cfg["data"]["pde"] and row.startswith(f"{recipe['name']}_")
    departing = {name for name, key in RECIPE_KEYS.items() if run_value(cfg, key) != recipe[name]}
    assert departing == set(reasons)
    typed = train_config(cfg)
    check_training_config(typed)
    deviations = recipe_deviations(typed)
    assert deviations == [f"{name}: {run_value(cfg, RECIPE_KEYS[name])} ({reasons[name]})"
                          for name in RECIPE_KEYS if name in reasons]
    assert (cfg["trainer"]["max_steps"], cfg["trainer"]["max_epochs"]) == (recipe["max_steps"], -1)
    assert recipe["tuning"] is None and typed.recipe.tuning is None  # nothing tuned in the shipped tree
    assert cfg["label"] == typed.model.name  # a row at its model's reference width is named after the model


@pytest.mark.slow
@pytest.mark.parametrize("dataset", RECIPES)
def test_the_rows_of_a_dataset_share_every_undeclared_setting(compose_cfg, dataset: str) -> None:
    rows = [row for row in ROWS if row.startswith(f"{dataset}_") and row[len(dataset) + 1:] in MODELS]
    assert len(rows) >= 5
    settings = {row: compose_cfg("train", [f"experiment={row}"]) for row in rows}
    for name, key in RECIPE_KEYS.items():
        values = {row: run_value(cfg, key) for row, cfg in settings.items() if name not in declared_reasons(row)}
        assert len(set(map(repr, values.values()))) == 1, f"{dataset} rows differ in {key}: {values}"


@pytest.mark.parametrize("dataset", RECIPES)
def test_mp_pde_rows_bundle_and_push_forward_as_published(compose_cfg, dataset: str) -> None:
    """MP-PDE's two training devices on every dataset: the pushforward trick with one unrolled step (N = 1), and a
    bundle of a tenth of the small preset's training trajectory in model steps, rounded down (its code bundles 25 of
    its trajectories' 250 steps): ks 35 -> 3, smoke 14 -> 1, swe 81 -> 8, kolmogorov 80 -> 8. No double residual
    with the recipe's difference target."""
    cfg = compose_cfg("train", [f"experiment={dataset}_mpnn"])
    assert (cfg["objective"]["name"], cfg["objective"]["unroll_steps"]) == ("pushforward", 1)
    assert cfg["objective"]["target"] in ("difference", "raw_difference") and cfg["model"]["residual"] is False
    pde = compose_cfg("generate", [f"pde={dataset}", "preset=small"])["pde"]
    model_frames = (pde["presets"]["small"]["train"]["n_frames"] - 1) // pde["benchmark"]["frame_stride"] + 1
    assert cfg["objective"]["bundle"] == max(1, model_frames // 10)
    assert declared_reasons(f"{dataset}_mpnn").get("bundle") == (
        "MP-PDE temporal bundling" if model_frames >= 20 else None)


def test_the_ks_recipe_is_pde_refiners_training(compose_cfg) -> None:
    """Every KS row trains as PDE-Refiner and its MSE baseline did: the raw difference over 0.3, EMA 0.995, MSE,
    one history frame; only the budget and batch are the CPU preset's."""
    cfg = compose_cfg("train", ["experiment=ks_fno"])
    objective = cfg["objective"]
    assert (objective["target"], objective["target_scale"], objective["loss"], objective["history"]) == (
        "raw_difference", 0.3, "mse", 1)
    assert (cfg["optim"]["ema_decay"], cfg["optim"]["lr"], cfg["optim"]["weight_decay"]) == (0.995, 1e-4, 0.0)
    assert (cfg["trainer"]["max_steps"], cfg["data"]["batch_size"]) == (40000, 32)


def test_a_recipe_trains_any_net_and_names_a_command_line_departure(compose_cfg) -> None:
    cfg = compose_cfg("train", ["recipe=swe", "model=unet", "objective.loss=rel_l2", "trainer.max_steps=7"])
    assert (cfg["data"]["pde"], cfg["objective"]["history"], cfg["label"]) == ("swe", 2, "unet")
    assert recipe_deviations(train_config(cfg)) == ["max_steps: 7 (the recipe says 20000)",
                                                     "loss: rel_l2 (the recipe says mse)"]
    # a departure of the objective or target that no experiment gives a reason for names another row
    assert compose_cfg("train", ["recipe=ks", "model=fno", "objective=pushforward"])["label"] == "fno-pushforward"
    assert compose_cfg("train", ["recipe=ks", "model=fno", "objective.target=state"])["label"] == "fno-state"
    assert recipe_deviations(train_config(compose_cfg("train", ["data=ks", "model=fno"]))) == []


def test_a_recipe_on_another_dataset_is_refused_before_any_data(compose_cfg) -> None:
    cfg = train_config(compose_cfg("train", ["recipe=ks", "model=fno", "data=smoke"]))
    with pytest.raises(ConfigError, match=r"^recipe=ks is the recipe of dataset ks, but data.pde=smoke; use "
                                          r"recipe=smoke"):
        check_training_config(cfg)


def test_a_reason_for_no_recipe_setting_is_refused(compose_cfg) -> None:
    cfg = compose_cfg("train", ["experiment=ks_unet", "+recipe.reasons.widht=why"])
    with pytest.raises(ConfigError, match=r"recipe.reasons=.* widht is not a recipe setting"):
        train_config(cfg)


# --- width in the row ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "label"),
    [
        (["experiment=ks_unet", "model.hidden_channels=16"], "unet-w16"),
        (["experiment=ks_unet", "model.hidden_channels=64"], "unet"),
        (["experiment=kolmogorov_mpnn", "model.hidden_channels=32"], "mpnn-w32"),
        (["experiment=ks_pderefiner", "++model.backbone.hidden_channels=16"], "pderefiner-w16"),
        (["experiment=ks_pderefiner", "++model.backbone={name:fno,hidden_channels:32}"], "pderefiner-w32"),
        (["experiment=swe_sfno", "model.hidden_channels=8"], "sfno-w8"),
        # DYffusion's reference width is its default backbone's (16, nearest the paper's count), not the U-Net's 64
        (["experiment=ks_dyffusion"], "dyffusion"),
        (["experiment=ks_dyffusion", "model.backbone.hidden_channels=64"], "dyffusion-w64"),
        (["data=ks", "model=fno", "model.hidden_channels=16", "objective.target=difference"], "fno-w16-difference"),
        (["data=ks", "model=fno", "objective=derivative"], "fno-derivative"),
    ],
)
def test_a_row_at_another_width_than_its_models_reference_is_another_row(compose_cfg, overrides: list[str],
                                                                          label: str) -> None:
    cfg = compose_cfg("train", overrides)
    assert cfg["label"] == label and cfg["run_dir"] == f"runs/{cfg['data']['pde']}-small/{label}/seed0"


def test_every_net_has_a_width_and_its_reference_is_its_config_default() -> None:
    for name, entry in MODELS.items():
        found = width_setting({"name": name})
        if not entry.trainable:
            assert found is None
            continue
        assert found is not None, f"model {name} has no width setting"
        key, width, reference = found
        assert width == reference and reference >= 8
    assert width_setting({"name": "mpnn"}) == ("hidden_channels", 128, 128)
    assert width_setting({"name": "pderefiner", "backbone": {"name": "unet", "hidden_channels": 16}}) == (
        "backbone.hidden_channels", 16, MODELS["unet"].config().hidden_channels)


# --- the budget in optimiser steps ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_step_budget_bounds_training_validates_its_last_step_and_resumes_to_a_larger_one(
        compose_cfg, data_root: Path, tmp_path: Path) -> None:
    """ks-tiny has 28 batches of 8 an epoch: a budget of 5 steps stops inside the first epoch, validated and
    checkpointed there; the same command again trains nothing more; a budget of 9 continues from step 5 to 9."""
    run_dir = tmp_path / "run"
    overrides = ["experiment=ks_fno", "data.preset=tiny", f"data.root={data_root}", "data.batch_size=8",
                 "model.hidden_channels=8", *RUN, f"run_dir={run_dir}"]
    last = run_dir / "checkpoints" / "last.ckpt"
    for steps, expected in ((5, 5), (5, 5), (9, 9)):
        fit(compose_cfg("train", [*overrides, f"trainer.max_steps={steps}"]))
        assert load_checkpoint_weights_only(last)["global_step"] == expected
    rows = [line.split(",") for metrics in sorted((run_dir / "logs").glob("version_*/metrics.csv"))
            for line in metrics.read_text().splitlines()[1:] if line]
    assert [int(r[1]) for r in rows] == [4, 8]  # a validation at steps 5 and 9 (Lightning counts from 0), none else


@pytest.mark.slow
def test_the_schedule_spans_the_step_budget(compose_cfg, data_root: Path, tmp_path: Path) -> None:
    """Warmup then cosine over the 6 steps of the budget (not over epochs, of which there is none to count): the
    learning rate each step trained with, as logged."""
    from pdebench.training.module import warmup_cosine

    run_dir = tmp_path / "run"
    cfg = train_config(compose_cfg("train", ["experiment=ks_fno", "data.preset=tiny", f"data.root={data_root}",
                                             "data.batch_size=8", "model.hidden_channels=8", "trainer.max_steps=6",
                                             "trainer.log_every_n_steps=1", *RUN, f"run_dir={run_dir}"]))
    fit(cfg)
    lines = (run_dir / "logs" / "version_0" / "metrics.csv").read_text().splitlines()
    column = lines[0].split(",").index("lr-AdamW")
    logged = [float(cells[column]) for cells in (line.split(",") for line in lines[1:]) if cells[column]]
    lr, ratio = cfg.optim.lr, cfg.optim.min_lr_ratio
    assert logged == pytest.approx([lr * warmup_cosine(step, 6, 1, ratio) for step in range(6)], rel=1e-6)


# --- tuning --------------------------------------------------------------------------------------------------------


def record(n_trials: int = 2, lr: float = 3e-3) -> TuningRecord:
    return TuningRecord(lr=lr, weight_decay=2e-5, n_trials=n_trials, trial_steps=3, study="ks-fno-x",
                        date="2026-01-02", score=1.5)


def test_a_recorded_winner_is_what_the_row_trains_with_and_says_so(compose_cfg, tmp_path: Path) -> None:
    tuned = tmp_path / "tuned"
    write_tuned(tuned, "ks", "fno", record())
    cfg = compose_cfg("train", ["experiment=ks_fno", f"recipe.tuned_dir={tuned}"])
    assert (cfg["optim"]["lr"], cfg["optim"]["weight_decay"]) == (3e-3, 2e-5)
    typed = train_config(cfg)
    from pdebench.config.recipes import recipe_record

    assert recipe_record(typed) == {"recipe": "ks", "deviations": [], "tuning": {
        "lr": 3e-3, "weight_decay": 2e-5, "n_trials": 2, "trial_steps": 3, "study": "ks-fno-x",
        "date": "2026-01-02", "score": 1.5}}
    # the row at another width, another row, and a row whose lr is set by hand, are untuned
    narrow = compose_cfg("train", ["experiment=ks_fno", f"recipe.tuned_dir={tuned}", "model.hidden_channels=16"])
    assert narrow["optim"]["lr"] == 1e-4 and recipe_record(train_config(narrow))["tuning"] == UNTUNED
    by_hand = train_config(compose_cfg("train", ["experiment=ks_fno", f"recipe.tuned_dir={tuned}", "optim.lr=0.01"]))
    assert recipe_record(by_hand)["tuning"] == UNTUNED
    assert recipe_deviations(by_hand) == ["lr: 0.01 (the recipe says 0.003)"]


def test_tuned_settings_live_in_the_config_trees_tuned_folder_unless_a_folder_is_given(tmp_path: Path) -> None:
    """`make tune` writes, and every experiment reads, `conf/tuned/<dataset>.yaml` by default (docs/recipes.md)."""
    assert tuned_path(None, "ks") == Path(CONFIG_DIR) / "tuned" / "ks.yaml"
    assert tuned_path(tmp_path, "swe") == tmp_path / "swe.yaml"


def test_every_row_of_a_dataset_is_tuned_with_the_same_number_of_trials(tmp_path: Path) -> None:
    write_tuned(tmp_path, "ks", "fno", record(n_trials=2))
    write_tuned(tmp_path, "ks", "fno", record(n_trials=2, lr=5e-3))  # the same row again replaces its winner
    with pytest.raises(InvalidSetting, match=r"^row unet of ks was tuned with 3 trials, but fno \(2\) in "):
        write_tuned(tmp_path, "ks", "unet", record(n_trials=3))
    assert {label: r.lr for label, r in read_tuned(tmp_path, "ks").items()} == {"fno": 5e-3}
    tuned_path(tmp_path, "ks").write_text("rows: [1, 2]\n")
    with pytest.raises(InvalidSetting, match="holds no `rows:` table"):
        read_tuned(tmp_path, "ks")


def test_an_unfinished_search_is_not_recorded(tmp_path: Path) -> None:
    from pdebench.training.tuning import search_winner

    with pytest.raises(MissingFile, match="optimization_results.yaml does not exist"):
        search_winner(tmp_path)
    (tmp_path / "optimization_results.yaml").write_text(
        "best_params: {optim.lr: 0.001, optim.weight_decay: 0.0001}\nbest_value: -.inf\n")
    with pytest.raises(InvalidSetting, match="scored -inf: no trial trained to a finite validation score"):
        search_winner(tmp_path)


def in_process(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[str]], int]:
    """A runner of `python -m pdebench.cli.train ...` command lines in this process (saves a start-up per row)."""
    from pdebench.cli import train as train_cli

    def run(command: list[str]) -> int:
        monkeypatch.setattr(sys, "argv", ["pdebench-train", *command[command.index("pdebench.cli.train") + 1:]])
        try:
            train_cli.main()
        except SystemExit as stop:
            return int(stop.code or 0)
        return 0

    return run


@pytest.mark.slow
def test_the_tuning_command_tunes_each_row_alike_and_the_rows_later_runs_read_the_winners(
        compose_cfg, monkeypatch: pytest.MonkeyPatch, data_root: Path, tmp_path: Path) -> None:
    """Two KS rows at an eighth of their width (their own labels), 2 trials of 3 steps each on ks-tiny: each row's
    winner is one of its trials', recorded with the trial count, the steps and the study; the row's next run trains
    with it and records it, while a row left out stays untuned."""
    from pdebench.cli.tune import tune_dataset

    monkeypatch.setenv("MPLBACKEND", "Agg")
    tuned = tmp_path / "tuned"
    overrides = ["data.preset=tiny", f"data.root={data_root}", "data.batch_size=8", "trainer.max_steps=3", *RUN,
                 f"recipe.tuned_dir={tuned}"]
    winners = tune_dataset("ks", 2, ["fno", "unet"], overrides, width_scale=0.125, root=tmp_path / "search",
                           runner=in_process(monkeypatch))
    assert sorted(winners) == ["fno-w8", "unet-w8"]
    assert read_tuned(tuned, "ks") == winners
    for label, winner in winners.items():
        trials = sorted((tmp_path / "search" / "ks" / label).glob("*/*/.hydra/config.yaml"))
        tried = {yaml.safe_load(path.read_text())["optim"]["lr"] for path in trials}
        assert len(trials) == 2 and winner.lr in tried and 1e-4 <= winner.lr <= 1e-2
        assert (winner.n_trials, winner.trial_steps) == (2, 3) and winner.study.startswith(f"ks-{label}-")
    cfg = compose_cfg("train", ["experiment=ks_fno", "model.hidden_channels=8", *overrides,
                                f"run_dir={tmp_path}/after"])
    assert (cfg["label"], cfg["optim"]["lr"]) == ("fno-w8", winners["fno-w8"].lr)
    run = load_checkpoint_weights_only(fit(cfg)[0])["hyper_parameters"]["run"]
    assert run["tuning"] == dataclasses.asdict(winners["fno-w8"])
    untuned = compose_cfg("train", ["experiment=ks_sinenet", "model.hidden_channels=8", *overrides])
    assert untuned["recipe"]["tuning"] is None and untuned["optim"]["lr"] == untuned["recipe"]["lr"]


def test_the_tuned_file_lists_the_rows_by_label_with_their_fields_in_record_order(tmp_path: Path) -> None:
    """The file a user reads (and commits): the header naming the dataset and its command, then `rows:` sorted by
    label, each winner's fields in the record's own order; its folder is made, parents included."""
    tuned = tmp_path / "conf" / "tuned"
    path = write_tuned(tuned, "kolmogorov", "unet", record(lr=5e-3))
    assert path == tuned / "kolmogorov.yaml"
    write_tuned(tuned, "kolmogorov", "fno", record())
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# The Optuna winners of the kolmogorov recipe's rows (optim.lr, optim.weight_decay), one "
                           "entry per row label,\n# written by `pdebench-tune kolmogorov` after its search;")
    assert text.endswith("# trains with its winner and records it; any other row trains with the recipe's lr and "
                         "weight_decay (untuned).\n"
                         "rows:\n"
                         "  fno:\n    lr: 0.003\n    weight_decay: 2.0e-05\n    n_trials: 2\n    trial_steps: 3\n"
                         "    study: ks-fno-x\n    date: '2026-01-02'\n    score: 1.5\n"
                         "  unet:\n    lr: 0.005\n    weight_decay: 2.0e-05\n    n_trials: 2\n    trial_steps: 3\n"
                         "    study: ks-fno-x\n    date: '2026-01-02'\n    score: 1.5\n")


def test_a_winner_with_another_trial_count_names_every_row_that_differs_and_the_file(tmp_path: Path) -> None:
    tuned = tmp_path / "tuned"
    write_tuned(tuned, "ks", "fno", record(n_trials=2))
    write_tuned(tuned, "ks", "unet", record(n_trials=2))
    with pytest.raises(InvalidSetting) as info:
        write_tuned(tuned, "ks", "fno", record(n_trials=4))  # a row that reruns its search with more trials
    assert str(info.value) == (f"row fno of ks was tuned with 4 trials, but unet (2) in {tuned / 'ks.yaml'} with "
                               "another count; every row of a dataset gets the same number of trials: tune this row "
                               "with theirs, or delete the file and tune every row again")
    (tuned / "ks.yaml").write_text("rows:\n  fno: {lr: 0.1, weight_decay: 0.0, n_trials: 4, trial_steps: 3, "
                                   "study: s, date: d, score: 1.0}\n  unet: {lr: 0.1, weight_decay: 0.0, n_trials: 3, "
                                   "trial_steps: 3, study: s, date: d, score: 1.0}\n")
    with pytest.raises(InvalidSetting) as info:
        write_tuned(tuned, "ks", "mpnn", record(n_trials=2))
    assert str(info.value).startswith("row mpnn of ks was tuned with 2 trials, but fno (4), unet (3) in ")


def test_the_config_tree_is_the_checkouts_conf_or_the_installed_package_data(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A checkout (or an editable install) reads `conf/` beside the packages; an installed wheel ships the tree as
    `pdebench/conf`, which wins where it exists."""
    from pdebench.config import location

    checkout = Path(location._config_dir())
    assert checkout == Path(CONFIG_DIR) and checkout.name == "conf"
    assert (checkout / "train.yaml").is_file() and (checkout / "recipe" / "ks.yaml").is_file()
    installed = tmp_path / "site-packages" / "pdebench"
    (installed / "conf").mkdir(parents=True)
    monkeypatch.setattr(location.resources, "files", lambda package: installed if package == "pdebench" else None)
    assert location._config_dir() == str(installed / "conf")
