"""`evaluate(cfg)` as a library call: identity and provenance come from the checkpoint, contradictions are errors
naming both values, reference rows need no checkpoint, and a trained model beats persistence."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from pdebench.forecast.checkpoint import CheckpointError
from pdebench.rollout.evaluation import evaluate


@pytest.fixture()
def evaluate_cfg(compose_cfg, data_root: Path, tmp_path: Path):
    def make(*overrides: str) -> dict:
        return compose_cfg("evaluate", [f"data.root={data_root}", f"results_dir={tmp_path / 'results'}",
                                        "rollout.device=cpu", *overrides])

    return make


def test_result_identity_comes_from_the_checkpoint(evaluate_cfg, trained_checkpoint: Path, tmp_path: Path) -> None:
    """Trained with seed=1 and a difference target; evaluated without seed= it must not become seed 0."""
    seed0 = tmp_path / "results" / "ks-tiny" / "fno-tiny-seed0.json"
    seed0.parent.mkdir(parents=True)
    seed0.write_text("{}")
    result = evaluate(evaluate_cfg(f"ckpt={trained_checkpoint}"), progress=False)
    assert result.path == tmp_path / "results" / "ks-tiny" / "fno-tiny-seed1.json"
    assert seed0.read_text() == "{}"  # the other seed's result is untouched
    content = json.loads(result.path.read_text())
    assert (content["label"], content["seed"], content["model"]) == ("fno-tiny", 1, "fno")
    assert content["objective"]["target"] == "difference" and content["objective"]["target_scale"] == 0.3
    assert content["config"]["objective"] == content["objective"] == content["run"]["objective"]
    assert content["config"]["data"]["frame_stride"] == 4  # the PDE's model step, from the manifest
    assert content["run"]["data"]["dataset"] == "ks-tiny" and "git_commit" in content["run"]
    assert content["benchmark"]["headline"] == "corr_time_0.8"


@pytest.mark.parametrize(
    ("override", "given", "recorded"),
    [
        ("seed=0", "seed=0", "seed=1"),
        ("objective.history=2", "objective.history=2", "objective.history=1"),
        ("objective.target=state", "objective.target='state'", "objective.target='difference'"),
        ("data.preset=small", "data.preset='small'", "data.preset='tiny'"),
        ("data.frame_stride=2", "data.frame_stride=2", "data.frame_stride=4"),
        ("label=other", "label='other'", "label='fno-tiny'"),
        ("model=persistence", "model='persistence'", "model='fno'"),
    ],
)
def test_a_contradiction_of_the_checkpoint_names_both_values(
    evaluate_cfg, trained_checkpoint: Path, tmp_path: Path, override: str, given: str, recorded: str
) -> None:
    with pytest.raises(CheckpointError) as info:
        evaluate(evaluate_cfg(f"ckpt={trained_checkpoint}", override), progress=False)
    assert given in str(info.value) and recorded in str(info.value)
    assert not (tmp_path / "results").exists()


def test_values_that_agree_with_the_checkpoint_are_accepted(evaluate_cfg, trained_checkpoint: Path) -> None:
    result = evaluate(evaluate_cfg(f"ckpt={trained_checkpoint}", "seed=1", "objective.history=1", "data=ks",
                                   "data.preset=tiny", "rollout.max_steps=2"), progress=False)
    assert result.content["seed"] == 1 and result.content["n_steps"] == 2


def test_reference_row_needs_no_checkpoint(evaluate_cfg, tmp_path: Path) -> None:
    result = evaluate(evaluate_cfg("model=persistence", "data=ks", "data.preset=tiny"), progress=False)
    assert result.path.name == "persistence-seed0.json"
    content = result.content
    assert content["checkpoint_sha256"] is None and content["n_parameters"] == 0 and content["run"] is None
    assert content["n_steps"] == 11 and len(content["curves"]["corr"]) == 11  # 48 frames / 4 -> 12, minus 1 input
    assert 0.7 < content["step_time"] < 0.9


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model=fno", "data=ks", "data.preset=tiny"], "model=fno must be trained first: pass ckpt=PATH"),
        (["data=ks", "data.preset=tiny"], "nothing to evaluate: pass ckpt=PATH"),
        (["model=persistence"], "no dataset given: pass data=<name>"),
        (["model=persistence", "data=ks", "data.preset=huge"], "ks-huge does not exist"),
    ],
)
def test_what_to_evaluate_is_asked_for_by_name(evaluate_cfg, overrides: list[str], message: str) -> None:
    with pytest.raises((ValueError, KeyError), match=message):
        evaluate(evaluate_cfg(*overrides), progress=False)


def test_a_trained_model_beats_persistence_on_the_tiny_preset(evaluate_cfg, trained_checkpoint: Path) -> None:
    trained = evaluate(evaluate_cfg(f"ckpt={trained_checkpoint}"), progress=False).content["summary"]
    reference = evaluate(evaluate_cfg("model=persistence", "data=ks", "data.preset=tiny"), progress=False)
    reference_summary = reference.content["summary"]
    assert all(value is None or math.isfinite(value) for value in trained.values())
    for key in ("one_step_nrmse", "vrmse_mean", "nrmse_gmean"):
        assert trained[key] < reference_summary[key], (key, trained, reference_summary)
