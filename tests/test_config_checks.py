"""The range checks every config dataclass shares (`pdebench.config.checks`) and every check of every schema
(`pdebench.config.schemas`): each bound on both sides, and each refusal read back as the whole sentence a user sees
(`key=value is not valid: expected ...`)."""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

import numpy as np
import pytest

from pdebench.config.checks import (
    SettingError,
    at_least,
    batch_limit,
    finite_number,
    follows,
    format_value,
    fraction,
    is_finite_number,
    is_whole_number,
    number_interval,
    positive,
    valid_name,
    valid_seed,
    whole_number,
)
from pdebench.config.schemas import (
    BenchmarkConfig,
    DataConfig,
    EvaluateConfig,
    EvaluateDataConfig,
    FrozenConfig,
    GenerateConfig,
    LeaderboardConfig,
    LoggerConfig,
    ObjectiveConfig,
    ObjectiveOverrides,
    OptimConfig,
    PDEGenConfig,
    PresetSplitConfig,
    RecipeConfig,
    RolloutConfig,
    StageConfig,
    TrainConfig,
    TrainerConfig,
    TuningRecord,
    ValidationConfig,
)
from pdebench.data.names import name_problem


def refusal(check, *args, **kwargs) -> str:
    """The sentence of the SettingError `check(*args, **kwargs)` raises."""
    with pytest.raises(SettingError) as raised:
        check(*args, **kwargs)
    return str(raised.value)


def owner(value: object) -> SimpleNamespace:
    return SimpleNamespace(k=value)


def test_a_setting_error_keeps_its_parts_and_names_the_full_key_and_owner() -> None:
    error = SettingError("hidden", 0, "is not valid: expected {key} > 0")
    assert (error.key, error.value, error.problem) == ("hidden", 0, "is not valid: expected {key} > 0")
    assert str(error) == "hidden=0 is not valid: expected hidden > 0"
    assert error.sentence("model.hidden", "model fno") == (
        "model.hidden=0 for model fno is not valid: expected model.hidden > 0")
    assert isinstance(error, ValueError)  # every command reports it in one line


@pytest.mark.parametrize(("value", "written"), [
    (None, "null"), (True, "true"), (False, "false"), ([0.8, True, None], "[0.8,true,null]"), ((1, 2), "[1,2]"),
    ("cuda", "cuda"), (3, "3")])
def test_values_are_written_as_on_the_command_line(value: object, written: str) -> None:
    assert format_value(value) == written


def test_what_counts_as_a_whole_number_and_a_finite_number() -> None:
    assert all(is_whole_number(v) for v in (0, 3, -2, np.int64(3), np.int8(1)))
    assert not any(is_whole_number(v) for v in (True, np.bool_(True), 3.0, "3", None))
    assert all(is_finite_number(v) for v in (0, 1.5, -2, np.float32(2.0), np.int64(3), 10**300))
    assert not any(is_finite_number(v) for v in (True, np.bool_(False), "1", None, math.nan, math.inf, -math.inf,
                                                 10**400))


def test_at_least_takes_its_minimum_and_refuses_one_below() -> None:
    at_least(owner(2), "k", 2, "a count")
    at_least(owner(None), "k", 2, "a count", optional=True)
    assert refusal(at_least, owner(1), "k", 2, "a count") == "k=1 is not valid: expected a count, a whole number >= 2"
    assert refusal(at_least, owner(1), "k", 2, "a count", optional=True) == (
        "k=1 is not valid: expected a count, a whole number >= 2 (or null)")
    assert refusal(at_least, owner(None), "k", 2, "a count").startswith("k=null is not valid")
    assert refusal(at_least, owner(2.0), "k", 2, "a count").startswith("k=2.0 is not valid")


def test_positive_refuses_zero_unless_allowed() -> None:
    positive(owner(1e-300), "k", "a rate")
    positive(owner(0), "k", "a rate", allow_zero=True)
    assert refusal(positive, owner(0), "k", "a rate") == "k=0 is not valid: expected a rate, a finite number > 0"
    assert refusal(positive, owner(-1e-300), "k", "a rate", allow_zero=True) == (
        "k=-1e-300 is not valid: expected a rate, a finite number >= 0")
    for bad in (math.nan, math.inf, True, "1"):
        with pytest.raises(SettingError):
            positive(owner(bad), "k", "a rate", allow_zero=True)


def test_fraction_takes_both_ends_and_nothing_beyond() -> None:
    for good in (0, 0.5, 1):
        fraction(owner(good), "k", "a share")
    assert refusal(fraction, owner(1.01), "k", "a share") == (
        "k=1.01 is not valid: expected a share, a number between 0 and 1")
    for bad in (-0.01, math.nan, True):
        with pytest.raises(SettingError):
            fraction(owner(bad), "k", "a share")


def test_seeds_and_names_are_checked_by_the_one_rule_and_long_values_are_cut() -> None:
    valid_seed(owner(0), "k")
    valid_seed(owner(None), "k", optional=True)
    valid_name(owner(None), "k", optional=True)
    assert refusal(valid_seed, owner(-1), "k") == (
        "k=-1 is not a valid seed: expected a whole number from 0 to 4294967295")
    assert refusal(valid_seed, owner(None), "k").startswith("k=null is not a valid seed")
    assert refusal(valid_name, owner(None), "k").startswith("k=null is not a name")  # not optional unless asked
    assert refusal(follows, name_problem, owner(None), "k").startswith("k=null is not a name")
    assert refusal(valid_name, owner("a/b"), "k").startswith("k=a/b is not a name: expected 1 to 64 characters")
    eighty, longer = "/" * 80, "/" * 81
    assert refusal(valid_name, owner(eighty), "k").startswith(f"k={eighty} is not a name")
    assert refusal(valid_name, owner(longer), "k").startswith(f"k={eighty}... is not a name")


@pytest.mark.parametrize("good", [None, 0, 7, 0.0, 0.25, 1.0])
def test_a_batch_limit_is_a_count_or_a_fraction(good: object) -> None:
    batch_limit(owner(good), "k")


@pytest.mark.parametrize("bad", [-1, 1.5, -0.5, True, "2"])
def test_a_batch_limit_refuses_anything_else(bad: object) -> None:
    assert refusal(batch_limit, owner(bad), "k") == (
        f"k={format_value(bad)} is not valid: expected a number of batches (a whole number >= 0) or a fraction of "
        "them (a float between 0.0 and 1.0)")


def test_whole_number_returns_a_python_int_from_the_owner_or_the_value_given() -> None:
    count = whole_number(owner(np.int64(3)), "k", 3)
    assert count == 3 and type(count) is int
    assert whole_number(owner("ignored"), "k", 0, value=5) == 5
    assert refusal(whole_number, owner(2), "k", 3) == "k=2 is not valid: expected a whole number >= 3"
    assert refusal(whole_number, owner(2), "k", 3, "a width") == (
        "k=2 is not valid: expected a width, a whole number >= 3")
    assert refusal(whole_number, owner(5), "k", 0, value=-1).startswith("k=-1 is not valid")


def test_finite_number_takes_its_closed_bounds_and_refuses_an_open_one() -> None:
    value = finite_number(owner(np.float32(0.5)), "k")
    assert value == 0.5 and type(value) is float
    assert finite_number(owner(0), "k") == 0.0 and finite_number(owner(2), "k", high=2) == 2.0
    assert finite_number(owner("ignored"), "k", value=-3, low=-math.inf) == -3.0
    assert refusal(finite_number, owner(-0.5), "k") == "k=-0.5 is not valid: expected a finite number >= 0"
    assert refusal(finite_number, owner(0), "k", low_open=True) == "k=0 is not valid: expected a finite number > 0"
    assert refusal(finite_number, owner(2.5), "k", high=2, what="a factor") == (
        "k=2.5 is not valid: expected a factor, a finite number >= 0 and <= 2")
    assert refusal(finite_number, owner(math.nan), "k", low=-math.inf, high=1) == (
        "k=nan is not valid: expected a finite number <= 1")
    assert refusal(finite_number, owner(math.inf), "k", low=-math.inf) == "k=inf is not valid: expected a finite number"


def test_a_number_interval_is_an_ordered_pair_inside_its_bounds() -> None:
    pair = number_interval(owner([0, 2]), "k", 0, 2)
    assert pair == (0.0, 2.0) and all(type(v) is float for v in pair)
    assert number_interval(owner((0.5, 0.5)), "k", 0, low_open=True) == (0.5, 0.5)
    expected = "is not valid: expected a pair [low, high] of finite numbers with 0 <= low <= high <= 2"
    for bad in ([1, 0.5], [0, 3], [-1, 1], [0, 1, 2], [0], "01", None, [0, math.nan], [True, 1]):
        assert refusal(number_interval, owner(bad), "k", 0, 2) == f"k={format_value(bad)} {expected}"
    assert refusal(number_interval, owner([0, 1]), "k", 0, low_open=True, what="band edges") == (
        "k=[0,1] is not valid: expected band edges, a pair [low, high] of finite numbers with 0 < low <= high")
    assert refusal(number_interval, owner([1, 0]), "k", -math.inf) == (
        "k=[1,0] is not valid: expected a pair [low, high] of finite numbers with low <= high")
    assert re.fullmatch(r"k=\[2,1\] .* 1 < low <= high", refusal(number_interval, owner([2, 1]), "k", 1, low_open=True))


# ---------------------------------------------------------------------------------------------------------------
# Every range check of every schema (pdebench.config.schemas): the value at the bound is taken, the value one step
# beyond it is refused with the whole sentence. Fields a schema requires get a valid value first.

NAME_RULE = ("is not a name: expected 1 to 64 characters of letters, digits, '.', '_' or '-', starting with a letter "
             "or digit")
REQUIRED = {DataConfig: {"pde": "ks"}, TuningRecord: {"lr": 1e-3, "weight_decay": 0.0, "n_trials": 1, "trial_steps": 1},
            RecipeConfig: {"name": "ks", "max_steps": 1, "batch_size": 1, "lr": 1e-3, "weight_decay": 0.0,
                           "warmup_fraction": 0.0, "min_lr_ratio": 0.0, "ema_decay": None, "objective": "onestep",
                           "loss": "mse", "target": "state", "target_scale": 1.0, "history": 1, "bundle": 1},
            FrozenConfig: {"checkpoint": "a.ckpt"}, StageConfig: {"name": "s"},
            TrainConfig: {"label": "fno"}, PresetSplitConfig: {"n_traj": 1, "n_frames": 2},
            PDEGenConfig: {"name": "ks"}}
BOUNDS = [
    (EvaluateDataConfig, 'pde', 'a.b-c_1', 'a/b',
     f"pde=a/b {NAME_RULE}"),
    (EvaluateDataConfig, 'preset', 'a.b-c_1', 'a/b',
     f"preset=a/b {NAME_RULE}"),
    (EvaluateDataConfig, 'frame_stride', 1, 0,
     'frame_stride=0 is not valid: expected stored frames per model step, a whole number >= 1 (or null)'),
    (EvaluateDataConfig, 'batch_size', 1, 0,
     'batch_size=0 is not valid: expected a batch size, a whole number >= 1'),
    (EvaluateDataConfig, 'num_workers', 0, -1,
     'num_workers=-1 is not valid: expected a number of data-loader worker processes, a whole number >= 0'),
    (ObjectiveConfig, 'history', 1, 0,
     'history=0 is not valid: expected a number of input frames, a whole number >= 1'),
    (ObjectiveConfig, 'bundle', 1, 0,
     'bundle=0 is not valid: expected a number of output frames per call, a whole number >= 1'),
    (ObjectiveConfig, 'target_scale', 1e-300, 0,
     'target_scale=0 is not valid: expected the scale the difference target is divided by, a finite number > 0'),
    (ObjectiveConfig, 'unroll_steps', 0, -1,
     'unroll_steps=-1 is not valid: expected a number of unrolled steps, a whole number >= 0'),
    (ObjectiveConfig, 'input_noise_std', 0, -0.5,
     'input_noise_std=-0.5 is not valid: expected the std of the input noise, a finite number >= 0'),
    (ObjectiveConfig, 'substeps', 1, 0,
     'substeps=0 is not valid: expected a number of integrator steps per model step, a whole number >= 1'),
    (ObjectiveConfig, 'fd_spacing', 1, 0,
     'fd_spacing=0 is not valid: expected a number of stored-frame intervals between finite-difference points, '
     'a whole number >= 1'),
    (ObjectiveOverrides, 'history', 1, 0,
     'history=0 is not valid: expected a number of input frames, a whole number >= 1'),
    (ObjectiveOverrides, 'bundle', 1, 0,
     'bundle=0 is not valid: expected a number of output frames per call, a whole number >= 1'),
    (ObjectiveOverrides, 'target_scale', 1e-300, 0,
     'target_scale=0 is not valid: expected the scale the difference target is divided by, a finite number > 0'),
    (OptimConfig, 'lr', 1e-300, 0,
     'lr=0 is not valid: expected a learning rate, a finite number > 0'),
    (OptimConfig, 'weight_decay', 0, -0.5,
     'weight_decay=-0.5 is not valid: expected a weight decay, a finite number >= 0'),
    (OptimConfig, 'warmup_fraction', 1, 1.5,
     'warmup_fraction=1.5 is not valid: expected the fraction of the steps spent warming up, a number between 0 and 1'),
    (OptimConfig, 'min_lr_ratio', 1, 1.5,
     'min_lr_ratio=1.5 is not valid: expected the final learning rate as a fraction of lr, a number between 0 and 1'),
    (ValidationConfig, 'rollout_steps', 1, 0,
     'rollout_steps=0 is not valid: expected a number of model steps, a whole number >= 1'),
    (ValidationConfig, 'max_trajectories', 1, 0,
     'max_trajectories=0 is not valid: expected a number of validation trajectories, a whole number >= 1'),
    (ValidationConfig, 'nrmse_cap', 1e-300, 0,
     'nrmse_cap=0 is not valid: expected the cap of the per-step nRMSE, a finite number > 0'),
    (TrainerConfig, 'max_epochs', -1, -2,
     'max_epochs=-2 is not valid: expected a number of epochs (-1: no limit), a whole number >= -1'),
    (TrainerConfig, 'max_steps', -1, -2,
     'max_steps=-2 is not valid: expected a number of optimiser steps (-1: no limit), a whole number >= -1'),
    (TrainerConfig, 'num_nodes', 1, 0,
     'num_nodes=0 is not valid: expected a number of machines, a whole number >= 1'),
    (TrainerConfig, 'gradient_clip_val', 0, -0.5,
     'gradient_clip_val=-0.5 is not valid: expected the gradient-norm clip (0: no clipping), a finite number >= 0'),
    (TrainerConfig, 'check_val_every_n_epoch', 1, 0,
     'check_val_every_n_epoch=0 is not valid: expected a number of epochs between validations, a whole number >= 1'),
    (TrainerConfig, 'log_every_n_steps', 1, 0,
     'log_every_n_steps=0 is not valid: expected a number of steps between logged metrics, a whole number >= 1'),
    (TrainerConfig, 'limit_train_batches', 1.0, 1.5,
     'limit_train_batches=1.5 is not valid: expected a number of batches (a whole number >= 0) or a fraction '
     'of them (a float between 0.0 and 1.0)'),
    (TrainerConfig, 'limit_val_batches', 1.0, 1.5,
     'limit_val_batches=1.5 is not valid: expected a number of batches (a whole number >= 0) or a fraction of '
     'them (a float between 0.0 and 1.0)'),
    (TuningRecord, 'lr', 1e-300, 0,
     'lr=0 is not valid: expected a learning rate, a finite number > 0'),
    (TuningRecord, 'weight_decay', 0, -0.5,
     'weight_decay=-0.5 is not valid: expected a weight decay, a finite number >= 0'),
    (TuningRecord, 'n_trials', 1, 0,
     'n_trials=0 is not valid: expected a number of trials, a whole number >= 1'),
    (TuningRecord, 'trial_steps', 1, 0,
     'trial_steps=0 is not valid: expected a number of optimiser steps, a whole number >= 1'),
    (RecipeConfig, 'name', 'a.b-c_1', 'a/b',
     f"name=a/b {NAME_RULE}"),
    (RecipeConfig, 'max_steps', 1, 0,
     'max_steps=0 is not valid: expected a number of optimiser steps, a whole number >= 1'),
    (RecipeConfig, 'batch_size', 1, 0,
     'batch_size=0 is not valid: expected a batch size, a whole number >= 1'),
    (RecipeConfig, 'history', 1, 0,
     'history=0 is not valid: expected a number of input frames, a whole number >= 1'),
    (RecipeConfig, 'bundle', 1, 0,
     'bundle=0 is not valid: expected a number of output frames per call, a whole number >= 1'),
    (StageConfig, 'name', 'a.b-c_1', 'a/b',
     f"name=a/b {NAME_RULE}"),
    (TrainConfig, 'seed', 4294967295, -1,
     'seed=-1 is not a valid seed: expected a whole number from 0 to 4294967295'),
    (TrainConfig, 'label', 'a.b-c_1', 'a/b',
     f"label=a/b {NAME_RULE}"),
    (TrainConfig, 'progress_every_n_steps', 0, -1,
     'progress_every_n_steps=-1 is not valid: expected a number of steps between progress lines, a whole number >= 0'),
    (TrainConfig, 'progress_every_n_seconds', 0, -0.5,
     'progress_every_n_seconds=-0.5 is not valid: expected seconds between progress lines (0: none by time), a '
     'finite number >= 0'),
    (RolloutConfig, 'batch_size', 1, 0,
     'batch_size=0 is not valid: expected a number of trajectories rolled out together, a whole number >= 1'),
    (RolloutConfig, 'max_steps', 1, 0,
     'max_steps=0 is not valid: expected a number of model steps, a whole number >= 1 (or null)'),
    (RolloutConfig, 'gmean_steps', 1, 0,
     'gmean_steps=0 is not valid: expected a number of model steps, a whole number >= 1 (or null)'),
    (RolloutConfig, 'ensemble', 1, 0,
     'ensemble=0 is not valid: expected a number of ensemble members, a whole number >= 1'),
    (RolloutConfig, 'bootstrap_seed', 4294967295, -1,
     'bootstrap_seed=-1 is not a valid seed: expected a whole number from 0 to 4294967295'),
    (EvaluateConfig, 'seed', 4294967295, -1,
     'seed=-1 is not a valid seed: expected a whole number from 0 to 4294967295'),
    (EvaluateConfig, 'label', 'a.b-c_1', 'a/b',
     f"label=a/b {NAME_RULE}"),
    (PresetSplitConfig, 'n_traj', 1, 0,
     'n_traj=0 is not valid: expected a number of trajectories, a whole number >= 1'),
    (PresetSplitConfig, 'n_frames', 2, 1,
     'n_frames=1 is not valid: expected a number of stored frames per trajectory, a whole number >= 2'),
    (BenchmarkConfig, 'frame_stride', 1, 0,
     'frame_stride=0 is not valid: expected stored frames per model step, a whole number >= 1'),
    (BenchmarkConfig, 'gmean_steps', 1, 0,
     'gmean_steps=0 is not valid: expected a number of model steps, a whole number >= 1'),
    (PDEGenConfig, 'name', 'a.b-c_1', 'a/b',
     f"name=a/b {NAME_RULE}"),
    (GenerateConfig, 'preset', 'a.b-c_1', 'a/b',
     f"preset=a/b {NAME_RULE}"),
    (GenerateConfig, 'batch_size', 1, 0,
     'batch_size=0 is not valid: expected a number of trajectories per solver call, a whole number >= 1'),
    (GenerateConfig, 'seed', 4294967295, -1,
     'seed=-1 is not a valid seed: expected a whole number from 0 to 4294967295'),
    (GenerateConfig, 'workers', 1, 0,
     'workers=0 is not valid: expected a number of worker processes, a whole number >= 1 (or null)'),
    (GenerateConfig, 'shard', 0, -1,
     'shard=-1 is not valid: expected a shard index, a whole number >= 0 (or null)'),
    (GenerateConfig, 'n_shards', 1, 0,
     'n_shards=0 is not valid: expected a number of shards, a whole number >= 1 (or null)'),
    # the checks each schema writes out itself
    (EvaluateDataConfig, "preload", "auto", "yes", "preload=yes is not valid: expected auto, true or false"),
    (EvaluateDataConfig, "preload", True, 1, "preload=1 is not valid: expected auto, true or false"),
    (EvaluateDataConfig, "preload", False, 0, "preload=0 is not valid: expected auto, true or false"),
    (ObjectiveConfig, "curriculum_fraction", 1, 0,
     "curriculum_fraction=0 is not valid: expected a fraction of the training budget in (0, 1], or null (epochs)"),
    (ObjectiveConfig, "curriculum_fraction", 1e-300, 1.5,
     "curriculum_fraction=1.5 is not valid: expected a fraction of the training budget in (0, 1], or null (epochs)"),
    (OptimConfig, "ema_decay", 0.999, 1,
     "ema_decay=1 is not valid: expected a decay strictly between 0 and 1 (or null for no weight averaging)"),
    (OptimConfig, "ema_decay", 1e-300, 0,
     "ema_decay=0 is not valid: expected a decay strictly between 0 and 1 (or null for no weight averaging)"),
    (LoggerConfig, "name", "wandb", "tensorboard", "name=tensorboard is not a known logger: expected csv or wandb"),
    (RecipeConfig, "reasons", {"lr": "tuned"}, {"lr": "tuned", "width": "why", "depth": "why"},
     "reasons={'lr': 'tuned', 'width': 'why', 'depth': 'why'} is not valid: depth, width is not a recipe setting; "
     "expected some of "
     "max_steps, batch_size, lr, weight_decay, warmup_fraction, min_lr_ratio, ema_decay, objective, loss, target, "
     "target_scale, history, bundle"),
    (FrozenConfig, "stage", None, "first",
     "checkpoint=a.ckpt is not valid with stage=first: expected exactly one of a checkpoint path and an earlier stage"),
    (RolloutConfig, "thresholds", [0.5], [0.5, 1.0],
     "thresholds=[0.5,1.0] is not valid: expected a non-empty list of correlation thresholds, each strictly between 0 "
     "and 1"),
    (RolloutConfig, "thresholds", [0.5], [0.0],
     "thresholds=[0.0] is not valid: expected a non-empty list of correlation thresholds, each strictly between 0 "
     "and 1"),
    (RolloutConfig, "windows", [[1, 1]], [[2, 1]],
     "windows=[[2,1]] is not valid: expected a list of [first, last] model steps, 1 <= first <= last"),
    (RolloutConfig, "windows", None, [[0, 1]],
     "windows=[[0,1]] is not valid: expected a list of [first, last] model steps, 1 <= first <= last"),
    (RolloutConfig, "bootstrap_resamples", 1, 0,
     "bootstrap_resamples=0 is not valid: expected a number of bootstrap resamples, a whole number from 1 to "
     "100,000"),
    (RolloutConfig, "stability_factor", 1, 0.99,
     "stability_factor=0.99 is not valid: expected a finite number >= 1 (below 1 the truth itself is unstable)"),
    (RolloutConfig, "bootstrap_resamples", 100_000, 100_001,
     "bootstrap_resamples=100001 is not valid: expected a number of bootstrap resamples, a whole number from 1 to "
     "100,000"),
    (RolloutConfig, "device", "cpu", "toaster",
     "device=toaster is not a device torch knows; use device=cpu, cuda, cuda:N or auto"),
    (GenerateConfig, "device", "cpu", "toaster",
     "device=toaster is not a device torch knows; use device=cpu, cuda, cuda:N or auto"),
    (BenchmarkConfig, "headline_goal", "max", "best", "headline_goal=best is not valid: expected min or max"),
    (BenchmarkConfig, "spectral_bands", [0.5, 0.6], [0.5, 0.5],
     "spectral_bands=[0.5,0.5] is not valid: expected two wavenumber-shell edges [a, b] with 0 < a < b"),
    (BenchmarkConfig, "spectral_bands", [1e-300, 0.6], [0, 0.6],
     "spectral_bands=[0,0.6] is not valid: expected two wavenumber-shell edges [a, b] with 0 < a < b"),
    (BenchmarkConfig, "spectrum_steps", [1], [1, 0],
     "spectrum_steps=[1,0] is not valid: expected a list of model steps, each a whole number >= 1"),
    (BenchmarkConfig, "stability_energy_factor", 1, 0.99,
     "stability_energy_factor=0.99 is not valid: expected a finite number >= 1 (below 1 the truth itself is "
     "unstable)"),
    (LeaderboardConfig, "results", "results", [],
     "results=[] is not valid: expected a result directory or file, or a non-empty list of them"),
]


def _built(schema: type, key: str, value: object) -> object:
    return schema(**{**REQUIRED.get(schema, {}), key: value})


@pytest.mark.parametrize(("schema", "key", "taken", "refused", "sentence"), BOUNDS,
                         ids=[f"{row[0].__name__}.{row[1]}" for row in BOUNDS])
def test_every_schema_bound_takes_its_edge_and_refuses_one_step_beyond(schema: type, key: str, taken: object,
                                                                       refused: object, sentence: str) -> None:
    assert getattr(_built(schema, key, taken), key) == taken
    with pytest.raises(SettingError) as raised:
        _built(schema, key, refused)
    assert str(raised.value) == sentence


def test_conserved_fields_name_distinct_fields_of_a_named_invariant() -> None:
    assert BenchmarkConfig(conserved="mass", conserved_fields=["height"]).conserved_fields == ["height"]
    with pytest.raises(SettingError) as raised:
        BenchmarkConfig(conserved_fields=["height"])
    assert str(raised.value) == ("conserved_fields=[height] is not valid: it names the fields of an invariant, but "
                                 "conserved is null (name the invariant, or set it null)")
    for bad in ([], ["height", "height"], [""], [3]):
        with pytest.raises(SettingError) as raised:
            BenchmarkConfig(conserved="mass", conserved_fields=bad)
        assert str(raised.value) == (f"conserved_fields={format_value(bad)} is not valid: expected a non-empty list of "
                                     "distinct field names, e.g. [height]")


def test_a_recipes_tuning_record_is_typed_under_its_own_key() -> None:
    tuning = {"lr": 1e-3, "weight_decay": 0.0, "n_trials": 1, "trial_steps": 1, "study": "s", "date": "d", "score": 1.0}
    assert isinstance(_built(RecipeConfig, "tuning", tuning).tuning, TuningRecord)
    with pytest.raises(ValueError, match=r"^recipe\.tuning\.lr: Value 'fast' of type 'str' could not be converted"):
        _built(RecipeConfig, "tuning", {**tuning, "lr": "fast"})
