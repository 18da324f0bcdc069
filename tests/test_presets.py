"""Every experiment with every dataset preset: `pdebench-train experiment=<e> data.preset=<p>` trains, or refuses in
one sentence before any data loads.

* The tiny presets are long enough for every experiment's training window, one batch of the recipe's size and a
  validation and test rollout (config only).
* Every experiment trains one optimiser step with its recipe on its dataset's tiny preset, generated once as
  `pdebench-generate` writes it. The net is narrowed (width 8; MP-PDE 40, whose decoder must still emit a bundle of 8
  from its latent vector) for the CPU; every setting that meets the grid (modes, levels, multipliers, radius) is the
  experiment's own: SFNO's reference 32 x 64 modes on the 16 x 32 tiny sphere included.
* On the small and paper grids (not generated: read from the generator's settings, as `pdebench-models` reads them)
  every experiment's model serves the grid, by the check training runs on the train split's header.
* A setting the grid cannot serve is refused by training in one sentence naming the dataset, the grid and the
  setting, before the splits load; through the command, as one `error:` line and exit code 1.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from compose import compose_config

from baselines import MODELS, NetSpec, check_model_spec
from pdebench.cli.common import CONFIG_DIR
from pdebench.cli.hydra_setup import width_setting
from pdebench.cli.models import DatasetInfo, dataset_info, dataset_names
from pdebench.config.recipes import UNTUNED
from pdebench.data.schema import DatasetError
from pdebench.errors import InvalidSetting
from pdebench.forecast.checkpoint import load_checkpoint_weights_only
from pdebench.training.config import train_config
from pdebench.training.objectives import check_window_fits, window_spec
from pdebench.training.run import check_batch_fits, check_validation_fits, fit

pytestmark = pytest.mark.usefixtures("one_torch_thread")

EXPERIMENTS = sorted(path.stem for path in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))
DATASETS = dataset_names()
RUN = ["trainer.enable_progress_bar=false", "validation.rollout_steps=2", "validation.max_trajectories=2"]


@functools.cache
def experiment_config(experiment: str, *overrides: str) -> dict[str, Any]:
    """`pdebench-train experiment=<experiment> overrides...` composed, once per command line (read, never change)."""
    return compose_config("train", [f"experiment={experiment}", *overrides])


@functools.cache
def preset_info(dataset: str, preset: str) -> DatasetInfo:
    """Fields, parameters and grid of a dataset preset, from its generator's settings (no data)."""
    return dataset_info(dataset, preset)


MISSING = object()


def leaves(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"backbone.hidden_channels": 8, ...}`: the settings of a nested config by dotted key."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(leaves(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return flat


def width_key(model: dict[str, Any]) -> str:
    return width_setting(model)[0]  # type: ignore[index]


def narrow(model: dict[str, Any]) -> list[str]:
    """The override that narrows the experiment's net for one CPU step: its width setting at 8 (MP-PDE at 40)."""
    return [f"++model.{width_key(model)}={40 if model['name'] == 'mpnn' else 8}"]


@pytest.mark.slow
def test_every_dataset_and_every_net_of_the_zoo_has_experiments() -> None:
    """So that the tests below reach every net's grid check on every dataset."""
    composed = [experiment_config(e) for e in EXPERIMENTS]
    assert {cfg["data"]["pde"] for cfg in composed} == set(DATASETS)
    assert {cfg["model"]["name"] for cfg in composed} == {name for name, e in MODELS.items() if e.trainable}


# --- the tiny presets hold every experiment's windows (no data) --------------------------------------------------


@pytest.mark.parametrize("dataset", DATASETS)
def test_the_tiny_preset_holds_every_window_and_batch_of_its_experiments(compose_cfg, dataset: str) -> None:
    """Training windows (history, bundle, pushforward's unrolled step, in stored frames) fit the tiny train
    trajectories, as many as one batch of the recipe's size, and a validation and a test rollout of at least one step
    fit theirs: the checks training runs (`check_window_fits`, `check_batch_fits`, `check_validation_fits`) pass for
    every experiment of the dataset, so `pdebench-train experiment=<e> data.preset=tiny` trains as it stands."""
    pde = compose_cfg("generate", [f"pde={dataset}", "preset=tiny"])["pde"]
    tiny, stride = pde["presets"]["tiny"], pde["benchmark"]["frame_stride"]
    train = tiny["train"]
    experiments = [e for e in EXPERIMENTS if experiment_config(e)["data"]["pde"] == dataset]
    for experiment in experiments:
        cfg = train_config(experiment_config(experiment))  # the preset changes neither objective nor batch size
        try:
            check_window_fits(cfg.objective, train["n_frames"], stride)
            windows = train["n_traj"] * (train["n_frames"] - window_spec(cfg.objective, stride).span + 1)
            check_batch_fits(cfg.data.batch_size, windows, 1, Path(f"{dataset}-tiny", "train.h5"))
            for split in ("valid", "test"):
                check_validation_fits(cfg.objective.history, tiny[split]["n_frames"], stride)
        except (DatasetError, InvalidSetting) as error:
            pytest.fail(f"experiment={experiment} does not fit {dataset}'s tiny preset: {error}")


# --- every experiment on the small and paper grids (no data) -----------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["small", "paper"])
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_is_served_on_the_small_and_paper_grids(experiment: str, preset: str) -> None:
    """The model check training runs before any data loads passes on the preset's grid (the tiny grid is served by
    training on it below, which also shows that `data.preset` changes neither the model nor the objective)."""
    cfg = train_config(experiment_config(experiment))
    info = preset_info(cfg.data.pde, preset)
    check_model_spec(cfg.model, NetSpec(info.fields, cfg.objective.history, cfg.objective.bundle, info.parameters,
                                        info.grid))


# --- every experiment trains one step on tiny ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_root(compose_cfg, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """`tiny_root(dataset)`: the data root holding `<dataset>-tiny`, generated on first request as
    `pdebench-generate pde=<dataset> preset=tiny` writes it (a test that needs one dataset pays for that one)."""
    from data_gen.generate import generate_dataset

    root = tmp_path_factory.mktemp("tiny")

    def generated(dataset: str) -> Path:
        if not (root / f"{dataset}-tiny").is_dir():
            cfg = compose_cfg("generate", [f"pde={dataset}", "preset=tiny"])
            generate_dataset(cfg["pde"], "tiny", root, seed=cfg["seed"], batch_size=4, device="cpu", progress=False)
        return root

    return generated


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_trains_one_step_on_tiny(compose_cfg, tiny_root: Callable[[str], Path], tmp_path: Path,
                                                   experiment: str) -> None:
    """One optimiser step with the experiment's recipe (its objective, target, history and bundle, the recipe's
    optimiser and EMA) at batch 2; the run record names the recipe and the two departures the test makes."""
    base = experiment_config(experiment)
    cfg = compose_cfg("train", [f"experiment={experiment}", "data.preset=tiny",
                                f"data.root={tiny_root(base['data']['pde'])}",
                                "data.batch_size=2", "trainer.max_steps=1", *RUN, *narrow(base["model"]),
                                f"run_dir={tmp_path}/run"])
    ours, theirs = leaves(cfg["model"]), leaves(base["model"])
    differ = {key for key in ours.keys() | theirs.keys() if ours.get(key, MISSING) != theirs.get(key, MISSING)}
    assert differ == {width_key(base["model"])}  # modes, levels, multipliers, radius: the experiment's
    assert cfg["objective"] == base["objective"] and cfg["optim"] == base["optim"]
    best, _ = fit(cfg)
    checkpoint = load_checkpoint_weights_only(best)
    assert checkpoint["global_step"] == 1
    assert checkpoint["hyper_parameters"]["data_info"]["dataset"] == f"{base['data']['pde']}-tiny"
    run = checkpoint["hyper_parameters"]["run"]
    assert run["recipe"] == base["recipe"]["name"] and run["tuning"] == UNTUNED
    recipe = base["recipe"]
    reasons = recipe.get("reasons") or {}  # the quickstart's own reason for its budget
    assert run["deviations"][:2] == [f"{name}: {value} ({reasons.get(name) or f'the recipe says {recipe[name]}'})"
                                     for name, value in (("max_steps", 1), ("batch_size", 2))]


# --- a setting the grid cannot serve: one sentence before any data loads ------------------------------------------


@pytest.fixture()
def no_split_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Training reading a split's data now fails the test: a refusal must come from the split headers alone."""
    import pdebench.training.run as run

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the splits were loaded before the model refused the grid")

    monkeypatch.setattr(run, "load_splits", refuse)


# (dataset, overrides, the sentence): one per way a grid is refused
REFUSALS = [
    ("swe", ["model=sinenet", "model.hidden_channels=8", "model.levels=5"],
     "on dataset swe-tiny (16x32 sphere grid): model sinenet halves the grid 5 times (model.levels=5), so every grid "
     "axis must be divisible by 32; the grid shape (16, 32) is not (it halves evenly at most 4 times)"),
    ("kolmogorov", ["model=unet", "model.hidden_channels=8", "model.channel_multipliers=[1,1,1,1,1,1,1]"],
     "on dataset kolmogorov-tiny (32x32 periodic grid): model unet halves the grid 6 times "
     "(len(model.channel_multipliers)=7), so every grid axis must be divisible by 64; the grid shape (32, 32) is not "
     "(it halves evenly at most 5 times)"),
    ("kolmogorov", ["model=mpnn", "model.hidden_channels=16", "model.radius=16"],
     "on dataset kolmogorov-tiny (32x32 periodic grid): model mpnn's neighbourhood (model.radius=16 grid spacings) "
     "reaches half-way round the periodic axis x of 32 points, where the opposite point is a neighbour from both "
     "sides at once; use model.radius below 16 on this grid"),
    ("smoke", ["model=sfno", "model.hidden_channels=8"],
     "on dataset smoke-tiny (32x32 box grid): model sfno does not support grid kind 'box': its spherical-harmonic "
     "layers need a sphere grid (lat, lon); use model=fno on periodic and box grids"),
    ("swe", ["model=pderefiner", "objective=pderefiner", "++model.backbone={name:sinenet,hidden_channels:8,levels:5}"],
     "on dataset swe-tiny (16x32 sphere grid): the backbone of model pderefiner (settings under model.backbone) "
     "refuses the data: model sinenet halves the grid 5 times (model.levels=5)"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("dataset", "overrides", "sentence"), REFUSALS, ids=[r[1][0] for r in REFUSALS])
def test_a_grid_the_model_cannot_serve_is_refused_before_the_splits_load(
        compose_cfg, tiny_root: Callable[[str], Path], tmp_path: Path, no_split_loads: None, dataset: str,
        overrides: list[str],
        sentence: str) -> None:
    cfg = compose_cfg("train", [f"data={dataset}", *overrides, "data.preset=tiny", f"data.root={tiny_root(dataset)}",
                                "trainer.max_steps=1", *RUN, f"run_dir={tmp_path}/run"])
    with pytest.raises(InvalidSetting) as refused:
        fit(cfg)
    assert str(refused.value).startswith(sentence) and "\n" not in str(refused.value)


def test_the_command_refuses_in_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                         tiny_root: Callable[[str], Path], tmp_path: Path,
                                         no_split_loads: None) -> None:
    """`pdebench-train` (in this process): exit code 1, one `error:` line on stderr, no traceback."""
    from pdebench.cli import train as train_cli

    dataset, overrides, sentence = REFUSALS[0]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.setattr(sys, "argv", ["pdebench-train", f"data={dataset}", *overrides, "data.preset=tiny",
                                      f"data.root={tiny_root(dataset)}", *RUN, f"run_dir={tmp_path}/run"])
    with pytest.raises(SystemExit) as stopped:
        train_cli.main()
    out, err = capsys.readouterr()
    assert stopped.value.code == 1
    assert [line for line in err.splitlines() if line.strip()] == [f"error: {sentence}"]
    assert "Traceback" not in out + err

