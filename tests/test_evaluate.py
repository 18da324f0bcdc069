"""`evaluate(cfg)` as a library call: identity and provenance come from the checkpoint, contradictions are errors
naming both values, reference rows need no checkpoint, and a trained model beats persistence."""

from __future__ import annotations

import array
import hashlib
import json
import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from checkpoints import save_untrained_checkpoint
from synthetic import write_dataset

import pdebench
from pdebench.config import BenchmarkConfig, ObjectiveConfig, RolloutConfig
from pdebench.data.dataset import TrajectoryDataset
from pdebench.data.grid import Grid
from pdebench.data.manifest import benchmark_facts, benchmark_settings, file_sha256, manifest_hash
from pdebench.data.reader import TrajectoryFile
from pdebench.data.schema import DatasetError
from pdebench.forecast.checkpoint import CheckpointError, load_forecaster
from pdebench.provenance import git_commit
from pdebench.rollout.evaluation import evaluate, evaluate_all, scoring_spec
from pdebench.rollout.frontier import (
    FrontierPoint,
    RolloutKind,
    is_stored_setting,
    pareto_front,
    place_on_frontier,
    rollout_kind,
    solver_point,
    speedup_at_equal_accuracy,
)
from pdebench.rollout.record import ResultRecord
from pdebench.rollout.reductions import FewTrajectoriesWarning
from pdebench.rollout.results import ResultError, read_record, read_result, to_jsonable, try_read_result, write_result


@pytest.fixture()
def evaluate_cfg(compose_cfg, data_root: Path, tmp_path: Path):
    def make(*overrides: str) -> dict:
        return compose_cfg("evaluate", [f"data.root={data_root}", f"results_dir={tmp_path / 'results'}",
                                        "rollout.device=cpu", *overrides])

    return make


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_values_that_agree_with_the_checkpoint_are_accepted(evaluate_cfg, trained_checkpoint: Path) -> None:
    result = evaluate(evaluate_cfg(f"ckpt={trained_checkpoint}", "seed=1", "objective.history=1", "data=ks",
                                   "data.preset=tiny", "rollout.max_steps=2"), progress=False)
    assert result.content["seed"] == 1 and result.content["n_steps"] == 2


@pytest.mark.slow
def test_a_run_folder_stands_for_its_best_checkpoint(evaluate_cfg, trained_checkpoint: Path, tmp_path: Path) -> None:
    run_dir = trained_checkpoint.parent.parent
    assert trained_checkpoint == run_dir / "checkpoints" / "best.ckpt"
    result = evaluate(evaluate_cfg(f"ckpt={run_dir}", "rollout.max_steps=2"), progress=False)
    assert result.content["checkpoint"] == str(trained_checkpoint)
    assert result.content["checkpoint_sha256"] == file_sha256(trained_checkpoint)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"ckpt=.*empty is a folder without checkpoints/best\.ckpt"):
        evaluate(evaluate_cfg(f"ckpt={tmp_path / 'empty'}"), progress=False)


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


@pytest.mark.slow
def test_a_trained_model_beats_persistence_on_the_tiny_preset(evaluate_cfg, trained_checkpoint: Path) -> None:
    trained = evaluate(evaluate_cfg(f"ckpt={trained_checkpoint}"), progress=False).content["summary"]
    reference = evaluate(evaluate_cfg("model=persistence", "data=ks", "data.preset=tiny"), progress=False)
    reference_summary = reference.content["summary"]
    assert all(value is None or math.isfinite(value) for value in trained.values())
    for key in ("one_step_nrmse", "vrmse_mean", "nrmse_gmean"):
        assert trained[key] < reference_summary[key], (key, trained, reference_summary)


# ---------------------------------------------------------------- the same contract on an untrained checkpoint (fast)


@pytest.fixture(scope="module")
def untrained_checkpoint(compose_cfg, data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `pdebench-train` would write for a small FNO on ks-tiny before its first step (label fno-untrained, seed 7,
    difference target): the module and record are built exactly as `train` builds them, without a training run."""
    run_dir = tmp_path_factory.mktemp("untrained")
    cfg = compose_cfg("train", [
        "data=ks", "data.preset=tiny", f"data.root={data_root}", "model=fno", "model.hidden_channels=8",
        "model.n_modes=[8]", "model.n_layers=1", "objective.target=difference", "objective.target_scale=0.3",
        "seed=7", "label=fno-untrained", f"run_dir={run_dir}",
    ])
    return save_untrained_checkpoint(cfg, data_root / "ks-tiny", run_dir / "best.ckpt", train_time_s=2.5)


def test_an_untrained_checkpoint_gives_the_result_its_identity_and_provenance(
    evaluate_cfg, untrained_checkpoint: Path, data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = evaluate(evaluate_cfg(f"ckpt={untrained_checkpoint}", "rollout.max_steps=2"), progress=False)
    assert result.path == tmp_path / "results" / "ks-tiny" / "fno-untrained-seed7.json"
    content = read_result(result.path)
    record = load_forecaster(untrained_checkpoint).record
    assert (content["label"], content["seed"], content["model"]) == ("fno-untrained", 7, "fno")
    assert content["run"] == record and record["data"]["dataset"] == "ks-tiny"
    assert content["objective"] == content["config"]["objective"] == record["objective"]
    assert content["objective"]["target"] == "difference" and content["objective"]["target_scale"] == 0.3
    assert content["config"]["model"] == record["model"] and content["config"]["model"]["hidden_channels"] == 8
    assert content["config"]["data"] == {"pde": "ks", "preset": "tiny", "frame_stride": 4, "root": str(data_root)}
    assert (content["config"]["label"], content["config"]["seed"]) == ("fno-untrained", 7)
    assert content["checkpoint"] == content["config"]["ckpt"] == str(untrained_checkpoint)
    assert content["checkpoint_sha256"] == hashlib.sha256(untrained_checkpoint.read_bytes()).hexdigest()
    assert content["manifest_sha256"] == record["data"]["manifest_sha256"]
    assert content["n_parameters"] == load_forecaster(untrained_checkpoint).n_parameters > 0
    assert content["train_time_s"] == 2.5
    assert (content["n_trajectories"], content["n_steps"]) == (4, 2)
    assert "warning" not in capsys.readouterr().err  # the dataset is the one the checkpoint was made on


@pytest.mark.parametrize(
    ("override", "given", "recorded"),
    [
        ("seed=0", "seed=0", "seed=7"),
        ("label=other", "label='other'", "label='fno-untrained'"),
        ("model=persistence", "model='persistence'", "model='fno'"),
        ("objective.target_scale=1.0", "objective.target_scale=1.0", "objective.target_scale=0.3"),
        ("objective.bundle=2", "objective.bundle=2", "objective.bundle=1"),
        ("data.pde=burgers", "data.pde='burgers'", "data.pde='ks'"),
        ("data.preset=small", "data.preset='small'", "data.preset='tiny'"),
        ("data.frame_stride=2", "data.frame_stride=2", "data.frame_stride=4"),
    ],
)
def test_a_contradiction_of_an_untrained_checkpoint_names_both_values(
    evaluate_cfg, untrained_checkpoint: Path, tmp_path: Path, override: str, given: str, recorded: str
) -> None:
    with pytest.raises(CheckpointError) as info:
        evaluate(evaluate_cfg(f"ckpt={untrained_checkpoint}", override), progress=False)
    key = given.split("=")[0]
    message = str(info.value)
    assert f"{given} contradicts checkpoint {untrained_checkpoint}, which was trained with {recorded}" in message
    assert f"leave {key} out to use the checkpoint's" in message
    assert not (tmp_path / "results").exists()


def test_values_that_agree_with_an_untrained_checkpoint_are_accepted(evaluate_cfg, untrained_checkpoint: Path) -> None:
    result = evaluate(evaluate_cfg(f"ckpt={untrained_checkpoint}", "seed=7", "label=fno-untrained", "model=fno",
                                   "objective.target=difference", "data=ks", "data.preset=tiny",
                                   "data.frame_stride=4", "rollout.max_steps=1"), progress=False)
    content = result.content
    assert (content["label"], content["seed"], content["n_steps"]) == ("fno-untrained", 7, 1)
    assert content["config"]["model"]["hidden_channels"] == 8  # the checkpoint's model, not model=fno's defaults


def test_a_regenerated_dataset_is_warned_about_and_the_result_records_the_data_used(
    evaluate_cfg, untrained_checkpoint: Path, ks_tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = torch.load(untrained_checkpoint, map_location="cpu", weights_only=True)
    raw["hyper_parameters"]["data_info"]["manifest_sha256"] = "0" * 64  # trained on an earlier generation
    stale = tmp_path / "stale.ckpt"
    torch.save(raw, stale)
    result = evaluate(evaluate_cfg(f"ckpt={stale}", "rollout.max_steps=1"), progress=False)
    err = capsys.readouterr().err
    assert f"warning: ks-tiny was regenerated since checkpoint {stale} was trained (manifest hash differs)" in err
    assert result.content["manifest_sha256"] == manifest_hash(ks_tiny) != "0" * 64
    assert result.content["run"]["data"]["manifest_sha256"] == "0" * 64


def test_a_reference_result_records_what_it_was_scored_with(
    evaluate_cfg, data_root: Path, ks_tiny: Path, tmp_path: Path
) -> None:
    result = evaluate(evaluate_cfg("model=persistence", "data=ks", "data.preset=tiny", "objective.history=2",
                                   "label=still", "seed=3", "rollout.max_steps=4", "rollout.thresholds=[0.5]",
                                   "rollout.gmean_steps=2", "rollout.batch_size=3"), progress=False)
    assert result.path == tmp_path / "results" / "ks-tiny" / "still-seed3.json"
    content = read_result(result.path)
    assert set(content) == {
        "format", "format_version", "dataset", "pde", "preset", "model", "label", "seed", "objective", "benchmark",
        "n_parameters", "train_time_s", "step_time", "n_trajectories", "n_steps", "summary", "curves",
        "throughput_traj_steps_per_s", "device", "config", "run", "checkpoint", "checkpoint_sha256",
        "manifest_sha256", "package_version", "git_commit", "intervals", "interval_method", "spectra", "scoring",
        "n_processes", "frontier", "sample",
    }
    assert (content["format"], content["format_version"]) == ("pdebench-result", 1)
    assert read_record(result.path).to_json() == content == to_jsonable(result.content)  # the record, key for key
    defaults = ObjectiveConfig()  # a reference row's objective: the given values, and the defaults for the rest
    assert content["objective"] == {"name": defaults.name, "history": 2, "bundle": defaults.bundle,
                                    "loss": defaults.loss, "target": defaults.target,
                                    "target_scale": defaults.target_scale}
    identity = ("dataset", "pde", "preset", "model", "label", "seed", "n_trajectories", "n_steps")
    assert tuple(content[key] for key in identity) == ("ks-tiny", "ks", "tiny", "persistence", "still", 3, 4, 4)
    assert content["benchmark"] == benchmark_facts(ks_tiny) and content["manifest_sha256"] == manifest_hash(ks_tiny)
    assert content["config"] == {
        "data": {"pde": "ks", "preset": "tiny", "frame_stride": 4, "root": str(data_root)},
        "model": {"name": "persistence"}, "objective": content["objective"],
        "rollout": {"batch_size": 3, "max_steps": 4, "thresholds": [0.5], "gmean_steps": 2, "stability_factor": None,
                    "windows": [[1, 1], [2, 5], [6, 12], [13, 30]], "ensemble": 1, "bootstrap_resamples": 1000,
                    "bootstrap_seed": 0, "device": "cpu"},
        "ckpt": None, "label": "still", "seed": 3, "results_dir": str(tmp_path / "results"),
    }
    assert content["checkpoint"] is None and content["train_time_s"] is None
    assert "corr_time_0.5" in content["summary"] and "corr_time_0.8" not in content["summary"]
    assert content["summary"]["nrmse_gmean_steps"] == 2 and len(content["curves"]["step"]) == 4
    step_times = TrajectoryDataset(ks_tiny / "test.h5", frame_stride=4).step_times
    assert content["step_time"] == pytest.approx(float(step_times.double().mean()), rel=1e-12)
    assert content["device"] == "cpu" and content["throughput_traj_steps_per_s"] > 0
    assert content["package_version"] == pdebench.__version__ and content["git_commit"] == git_commit()
    # persistence with two input frames repeats frame 1: its first error is the change from frame 1 to frame 2
    frames = np.stack([TrajectoryDataset(ks_tiny / "test.h5", frame_stride=4)[i].frames.numpy() for i in range(4)])
    first = np.mean((frames[:, 0, 2] - frames[:, 0, 1]).astype(np.float64) ** 2, axis=-1).mean()
    assert content["summary"]["one_step_mse"] == pytest.approx(first, rel=1e-6)


def test_a_reference_row_without_a_preset_reads_the_small_one(evaluate_cfg) -> None:
    with pytest.raises((ValueError, KeyError), match="ks-small does not exist"):
        evaluate(evaluate_cfg("model=persistence", "data=ks", "data.preset=null"), progress=False)


def test_a_reference_row_honours_its_frame_stride_and_progress(
    evaluate_cfg, ks_tiny: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = evaluate(evaluate_cfg("model=persistence", "data=ks", "data.preset=tiny", "data.frame_stride=2"),
                      progress=False)
    assert capsys.readouterr().err == ""  # progress=False: nothing on stderr
    content = result.content
    assert content["config"]["data"]["frame_stride"] == 2 and content["n_steps"] == 23  # 48 / 2 frames, 1 input
    assert len(result.scores) == 4 and result.scores.n_steps == 23
    step_times = TrajectoryDataset(ks_tiny / "test.h5", frame_stride=2).step_times
    assert content["step_time"] == pytest.approx(float(step_times.double().mean()), rel=1e-12)
    evaluate(evaluate_cfg("model=persistence", "data=ks", "data.preset=tiny", "rollout.max_steps=1"))
    assert "rollout" in capsys.readouterr().err  # by default (as pdebench-evaluate runs it) a progress bar


def decaying(rng: np.random.Generator, n_traj: int, n_frames: int):
    """u = 10^(1 - t) at frame t, everywhere: persistence from frame 0 predicts 10 where the truth is at most 1."""
    u = np.broadcast_to(10.0 ** (1 - np.arange(n_frames))[None, :, None], (n_traj, n_frames, 8))
    return {"u": u.copy()}, {}


def test_the_stability_factor_of_the_rollout_config_overrides_the_pdes(tmp_path: Path) -> None:
    out = write_dataset(tmp_path / "data", "decay", Grid.uniform("periodic", (8,)), ("u",), (), decaying,
                        {"train": (2, 4), "valid": (2, 4), "test": (2, 4)},
                        {"frame_stride": 1, "headline": "vrmse_mean", "headline_goal": "min", "conserved": None})
    bench = benchmark_settings(benchmark_facts(out), out / "manifest.json")
    test = TrajectoryFile(out / "test.h5")
    assert isinstance(bench, BenchmarkConfig)
    assert bench.stability_energy_factor == 4.0  # a manifest that predates the field gets the default
    assert scoring_spec(bench, RolloutConfig(stability_factor=None), test, out).energy_factor == 4.0
    assert scoring_spec(bench, RolloutConfig(stability_factor=20.0), test, out).energy_factor == 20.0
    with pytest.raises(DatasetError, match=r"benchmark.conserved='energy' is not a quantity the evaluator knows"):
        scoring_spec(replace(bench, conserved="energy"), RolloutConfig(), test, out / "manifest.json")
    with pytest.raises(DatasetError, match=r"benchmark.conserved_fields names \['h'\], which .* lacks"):
        scoring_spec(replace(bench, conserved="mass", conserved_fields=["h"]), RolloutConfig(), test,
                     out / "manifest.json")
    with pytest.raises(DatasetError, match=r"manifest.json: benchmark facts refused: .*stability_energy_factor=0.5"):
        benchmark_settings({**benchmark_facts(out), "stability_energy_factor": 0.5}, out / "manifest.json")


def test_a_result_stores_intervals_spectra_and_ks_benchmark_settings(evaluate_cfg, ks_tiny: Path) -> None:
    with pytest.warns(FewTrajectoriesWarning, match="^4 test trajectories are too few"):
        content = evaluate(evaluate_cfg("model=persistence", "data=ks", "data.preset=tiny",
                                        "rollout.bootstrap_resamples=100"), progress=False).content
    summary, intervals = content["summary"], content["intervals"]
    assert content["benchmark"]["gmean_steps"] == 25 and content["scoring"]["band_edges"] == [5, 12]
    assert summary["nrmse_gmean_steps"] == 11  # 25 clipped to the 11 steps of ks-tiny
    # ks-tiny's 4 test trajectories are too few for a bootstrap: every interval is null, and the file says so
    assert set(intervals) >= {"corr_time_0.8", "one_step_nrmse", "nrmse_gmean", "vrmse_mean"}
    assert all(value is None for value in intervals.values())
    assert content["interval_method"]["min_trajectories"] == 5
    assert summary["corr_time_0.8"] <= summary["time_ceiling"]
    assert summary["conservation_drift_max"] == pytest.approx(0.0, abs=1e-12)  # persistence keeps the mean
    assert summary["stable_fraction"] == 1.0  # persistence never leaves the energy bound
    spectra = content["spectra"]
    assert spectra["steps"] == [1, 10] and len(spectra["shell"]) == 129  # 25 and 50 lie past the 11 steps
    assert np.asarray(spectra["pred"]).shape == (2, 1, 129)


def test_the_ks_reference_solver_reproduces_the_stored_frames(ks_tiny: Path) -> None:
    from data_gen.ks import KSConfig, KSGenerator

    file = TrajectoryFile(ks_tiny / "test.h5")
    u = torch.from_numpy(file.read_field("u", slice(0, 4), slice(0, 9))).double()
    params = {name: torch.from_numpy(values[:4]) for name, values in file.parameters().items()}
    stored = KSGenerator(KSConfig()).reference_solver()
    after = stored.advance(u[:, :1], params, 4)
    error = (after[:, 0] - u[:, 4]).norm(dim=-1) / u[:, 4].norm(dim=-1)
    assert float(error.max()) < 1e-6  # float32 storage of the start frame is all that differs
    coarse = KSGenerator(KSConfig()).reference_solver([64], 2.0).advance(u[:, :1], params, 4)
    coarse_error = (coarse[:, 0] - u[:, 4]).norm(dim=-1) / u[:, 4].norm(dim=-1)
    assert 1e-4 < float(coarse_error.max()) < 0.2
    with pytest.raises(ValueError, match="one even number of points from 8 to the stored 256"):
        KSGenerator(KSConfig()).reference_solver([63])


def test_solver_rows_trace_a_frontier_that_surrogates_are_placed_on(evaluate_cfg, tmp_path: Path) -> None:
    data = ("data=ks", "data.preset=tiny", "rollout.max_steps=3", "rollout.bootstrap_resamples=20")
    rows = evaluate_all(evaluate_cfg("model=solver", "model.resolutions=[64]", "model.time_step_factors=[1.0]",
                                     *data), progress=False)
    assert [r.content["label"] for r in rows] == ["solver", "solver-n64"]
    stored, coarse = (r.content for r in rows)
    assert stored["solver_setting"]["resolution"] is None and coarse["solver_setting"]["resolution"] == [64]
    assert stored["summary"]["one_step_nrmse"] < 1e-5 < coarse["summary"]["one_step_nrmse"]
    assert stored["n_parameters"] == 0 and all(r["throughput_traj_steps_per_s"] > 0 for r in (stored, coarse))
    assert "frontier" not in stored
    reference = evaluate(evaluate_cfg("model=persistence", *data), progress=False).content
    frontier = reference["frontier"]
    assert frontier["metric"] == "corr_time_0.8" and frontier["status"] in ("below_frontier", "interpolated")
    assert frontier["speedup_at_equal_grid"] == pytest.approx(
        reference["throughput_traj_steps_per_s"] / stored["throughput_traj_steps_per_s"])
    # a rollout of another length is not set against these solver rows: no speed-up, and the file says why
    shorter = evaluate(evaluate_cfg("model=persistence", "label=short", *data[:2], "rollout.max_steps=2", data[3]),
                       progress=False).content["frontier"]
    assert shorter["status"] == "unmatched" and shorter["speedup"] is None and shorter["speedup_at_equal_grid"] is None
    assert shorter["reason"] == "no solver rows at 2 steps on cpu (solver rows: at 3 steps on cpu)"


def test_the_solver_row_needs_a_generator_with_a_reference_solver(evaluate_cfg, tmp_path: Path) -> None:
    write_dataset(tmp_path / "data", "decay", Grid.uniform("periodic", (8,)), ("u",), (), decaying,
                  {"train": (2, 4), "valid": (2, 4), "test": (2, 4)},
                  {"frame_stride": 1, "headline": "vrmse_mean", "headline_goal": "min", "conserved": None})
    with pytest.raises(ValueError, match=r"test.h5: root attribute 'solver' is None, not a generator"):
        evaluate(evaluate_cfg("model=solver", "data=ks", "data.pde=decay", "data.preset=tiny",
                              f"data.root={tmp_path / 'data'}"), progress=False)


def test_speedup_at_equal_accuracy_interpolates_log_throughput_on_the_frontier() -> None:
    """Solver points (accuracy, throughput): (10, 1000), (20, 100), (30, 10); (15, 50) is dominated by (20, 100).
    A surrogate at accuracy 25 sits halfway between 100 and 10 in log: sqrt(1000) = 31.62 trajectory-steps/s."""
    points = [FrontierPoint("a", 10, 1000), FrontierPoint("b", 20, 100), FrontierPoint("c", 30, 10),
              FrontierPoint("d", 15, 50)]
    assert [p.label for p in pareto_front(points, "max")] == ["a", "b", "c"]
    out = speedup_at_equal_accuracy(points, 25.0, 3162.28, "max")
    assert out["status"] == "interpolated" and out["solver_throughput"] == pytest.approx(math.sqrt(1000))
    assert out["speedup"] == pytest.approx(100.0, rel=1e-5)
    assert speedup_at_equal_accuracy(points, 5.0, 500.0, "max")["status"] == "below_frontier"
    above = speedup_at_equal_accuracy(points, 40.0, 500.0, "max")
    assert above["status"] == "above_frontier" and above["speedup"] == pytest.approx(50.0)
    assert speedup_at_equal_accuracy(points, None, 1.0, "max")["speedup"] is None
    # lower is better: error 0.15 between errors 0.2 (throughput 100) and 0.1 (throughput 10)
    errors = [FrontierPoint("a", 0.2, 100), FrontierPoint("b", 0.1, 10)]
    low = speedup_at_equal_accuracy(errors, 0.15, 100.0, "min")
    assert low["status"] == "interpolated" and low["solver_throughput"] == pytest.approx(math.sqrt(1000))


def test_speedup_interpolation_weighs_the_nearer_frontier_point_more() -> None:
    """Off the midpoint, where taking the weights the wrong way round gives another answer: accuracy 22 lies a fifth
    of the way from (20, 100) to (30, 10), so log10 of the solver's throughput is 0.8 * 2 + 0.2 * 1 = 1.8 (63.10, not
    the swapped 10^1.2 = 15.85); error 0.18 lies a fifth of the way from (0.2, 100) to (0.1, 10), the same 63.10."""
    points = [FrontierPoint("a", 10, 1000), FrontierPoint("b", 20, 100), FrontierPoint("c", 30, 10)]
    out = speedup_at_equal_accuracy(points, 22.0, 631.0, "max")
    assert out["status"] == "interpolated" and out["solver_throughput"] == pytest.approx(10**1.8, rel=1e-12)
    assert out["speedup"] == pytest.approx(631.0 / 10**1.8, rel=1e-12)
    assert out["frontier"] == [{"label": p.label, "accuracy": p.accuracy, "throughput": p.throughput} for p in points]
    assert (out["goal"], out["accuracy"], out["throughput"]) == ("max", 22.0, 631.0)
    # exactly on a frontier point: that point's throughput (the interval is open below, closed above)
    on_b = speedup_at_equal_accuracy(points, 20.0, 100.0, "max")
    assert on_b["status"] == "interpolated" and on_b["solver_throughput"] == pytest.approx(100.0, rel=1e-12)
    on_a = speedup_at_equal_accuracy(points, 10.0, 100.0, "max")
    assert on_a["status"] == "below_frontier" and on_a["speedup"] == pytest.approx(0.1, rel=1e-12)
    on_c = speedup_at_equal_accuracy(points, 30.0, 100.0, "max")
    assert on_c["status"] == "interpolated" and on_c["speedup"] == pytest.approx(10.0, rel=1e-12)
    errors = [FrontierPoint("a", 0.2, 100), FrontierPoint("b", 0.1, 10)]
    low = speedup_at_equal_accuracy(errors, 0.18, 100.0, "min")
    assert low["status"] == "interpolated" and low["solver_throughput"] == pytest.approx(10**1.8, rel=1e-12)
    below = speedup_at_equal_accuracy(errors, 0.3, 50.0, "min")
    assert below["status"] == "below_frontier" and below["speedup"] == pytest.approx(0.5, rel=1e-12)
    above = speedup_at_equal_accuracy(errors, 0.05, 50.0, "min")
    assert above["status"] == "above_frontier" and above["speedup"] == pytest.approx(5.0, rel=1e-12)
    with pytest.raises(ValueError, match=r"^goal must be min or max, got 'best'$"):
        pareto_front(points, "best")


def test_a_surrogate_is_placed_only_among_solver_points_measured_like_it() -> None:
    """Solver points of 11 steps on cpu make the frontier of an 11-step cpu surrogate; a point of 5 steps, one on
    cuda and one of another step time are left out (each would change the answer: the cuda point is the most
    accurate, the 5-step one the fastest). A point that does not record how it was measured counts for any kind."""
    kind = RolloutKind("ab" * 32, 11, 0.8, 11, "cpu")
    points = [FrontierPoint("solver", 20, 100, kind, stored=True), FrontierPoint("solver-n64", 10, 1000, kind),
              FrontierPoint("gpu", 50, 1e6, RolloutKind("ab" * 32, 11, 0.8, 11, "cuda")),
              FrontierPoint("short", 15, 1e5, RolloutKind("ab" * 32, 5, 0.8, 5, "cpu")),
              FrontierPoint("strided", 60, 1e4, RolloutKind("ab" * 32, 11, 1.6, 11, "cpu")),
              FrontierPoint("unrecorded", 30, 10)]
    out = place_on_frontier(points, kind, 22.0, 631.0, "max")
    assert [p["label"] for p in out["frontier"]] == ["solver-n64", "solver", "unrecorded"]
    assert out["status"] == "interpolated" and out["solver_throughput"] == pytest.approx(10**1.8, rel=1e-12)
    assert out["speedup_at_equal_grid"] == pytest.approx(6.31, rel=1e-12)  # over the stored row's 100
    assert out["rollout"] == "at 11 steps of 0.8 time units on cpu"
    no_stored = place_on_frontier(points[1:], kind, 22.0, 631.0, "max")
    assert no_stored["speedup_at_equal_grid"] is None and no_stored["speedup"] is not None
    gmean = RolloutKind("ab" * 32, 11, 0.8, 4, "cuda")
    other = place_on_frontier(points[:2], gmean, 22.0, 631.0, "max")
    assert other["status"] == "unmatched" and other["speedup"] is None and other["speedup_at_equal_grid"] is None
    assert other["frontier"] == [] and other["solver_throughput"] is None
    assert other["reason"] == ("no solver rows at 11 steps (gmean over 4 steps) on cuda "
                               "(solver rows: at 11 steps on cpu)")
    assert other["rollout"] == "at 11 steps of 0.8 time units (gmean over 4 steps) on cuda"
    assert place_on_frontier([], kind, 22.0, 631.0, "max")["reason"] == "no solver rows"
    manifest = RolloutKind("cd" * 32, 11, 0.8, 11, "cpu")
    assert place_on_frontier(points[:2], manifest, 22.0, 1.0, "max")["reason"] == (
        "no solver rows of manifest cdcdcdcd at 11 steps on cpu (solver rows: of manifest abababab at 11 steps on cpu)")


def test_the_pareto_front_keeps_only_undominated_usable_points_fastest_first() -> None:
    """A slower point must be strictly more accurate to join; a tie in accuracy keeps the faster point; points with
    no finite accuracy or no positive finite throughput never join. Lower is better with goal `min`."""
    points = [FrontierPoint("slow-same", 20, 50), FrontierPoint("fast", 10, 1000), FrontierPoint("mid", 20, 100),
              FrontierPoint("nan", math.nan, 5000), FrontierPoint("zero", 40, 0.0), FrontierPoint("inf", 50, math.inf),
              FrontierPoint("best", 30, 10)]
    assert [p.label for p in pareto_front(points, "max")] == ["fast", "mid", "best"]
    # the same throughputs read as errors: only the fastest survives, every slower one has a larger error
    assert [p.label for p in pareto_front(points, "min")] == ["fast"]
    errors = [FrontierPoint("coarse", 0.3, 1000), FrontierPoint("fine", 0.1, 10), FrontierPoint("worse", 0.4, 20)]
    assert [p.label for p in pareto_front(errors, "min")] == ["coarse", "fine"]
    # equal throughputs: only the more accurate joins, whichever comes first; a throughput below 1 is still usable
    tied = [FrontierPoint("less", 10, 100), FrontierPoint("more", 20, 100), FrontierPoint("slow", 30, 0.5)]
    assert [p.label for p in pareto_front(tied, "max")] == ["more", "slow"]
    assert [p.label for p in pareto_front(tied[::-1], "max")] == ["more", "slow"]
    assert [p.label for p in pareto_front(tied, "min")] == ["less"]


def test_each_placement_is_read_back_whole() -> None:
    """Every key of each outcome, so that a renamed key or a neighbour taken for the end of the frontier shows. The
    accuracies are below 1, where a product and a quotient with the goal's sign part ways."""
    points = [FrontierPoint("a", 0.1, 1000), FrontierPoint("b", 0.2, 100), FrontierPoint("c", 0.3, 10)]
    frontier = [{"label": p.label, "accuracy": p.accuracy, "throughput": p.throughput} for p in points]
    base = {"goal": "max", "throughput": 50.0, "frontier": frontier}
    assert speedup_at_equal_accuracy(points, math.nan, 50.0, "max") == {
        **base, "accuracy": math.nan, "status": "undefined", "solver_throughput": None, "speedup": None}
    undefined = speedup_at_equal_accuracy(points, None, 50.0, "max")
    assert undefined == {**base, "accuracy": None, "status": "undefined", "solver_throughput": None, "speedup": None}
    assert speedup_at_equal_accuracy(points, 0.05, 50.0, "max") == {
        **base, "accuracy": 0.05, "status": "below_frontier", "solver_throughput": 1000, "speedup": 0.05}
    assert speedup_at_equal_accuracy(points, 0.4, 50.0, "max") == {
        **base, "accuracy": 0.4, "status": "above_frontier", "solver_throughput": 10, "speedup": 5.0}
    inside_ = speedup_at_equal_accuracy(points, 0.22, 50.0, "max")
    assert inside_.pop("solver_throughput") == pytest.approx(10**1.8, rel=1e-12)
    assert inside_.pop("speedup") == pytest.approx(50.0 / 10**1.8, rel=1e-12)
    assert inside_ == {**base, "accuracy": 0.22, "status": "interpolated"}


def test_an_unmatched_surrogate_is_read_back_whole_with_every_kind_of_solver_row() -> None:
    """Two kinds of solver rows are both named, `; ` between them; what is not recorded is said so, not printed as
    None."""
    kind = RolloutKind(None, 11, None, None, "cpu")
    points = [FrontierPoint("gpu", 0.2, 100, RolloutKind("ab" * 32, 11, 0.8, 4, "cuda")),
              FrontierPoint("cpu", 0.1, 1000, RolloutKind("ab" * 32, 5, 0.8, 5, "cpu"))]
    assert place_on_frontier(points, kind, 0.3, 7.0, "min") == {
        "goal": "min", "accuracy": 0.3, "throughput": 7.0, "frontier": [], "status": "unmatched",
        "reason": ("no solver rows of manifest unknown at 11 steps of unknown step (gmean over ? steps) on cpu (solver "
                   "rows: of manifest abababab at 11 steps of 0.8 time units (gmean over 4 steps) on cuda; of manifest "
                   "abababab at 5 steps of 0.8 time units on cpu)"),
        "solver_throughput": None, "speedup": None, "speedup_at_equal_grid": None,
        "rollout": "at 11 steps of unknown step (gmean over ? steps) on cpu"}
    every = ("manifest", "n_steps", "step_time", "gmean_steps", "device")
    assert RolloutKind(None, None, None, 3, "mps").describe(every) == (
        "of manifest unknown at ? steps of unknown step (gmean over 3 steps) on mps")
    matched = place_on_frontier(points[:1], points[0].kind, 0.3, 7.0, "min")
    assert matched["rollout"] == "at 11 steps of 0.8 time units (gmean over 4 steps) on cuda"


def _solver_record(**fields: object) -> ResultRecord:
    return ResultRecord(**{"dataset": "ks-tiny", "pde": "ks", "model": "solver", "label": "solver", "seed": 0,
                           "summary": {"corr_time_0.8": 3.5, "nrmse_gmean_steps": 4.0}, "curves": {},
                           "step_time": 0.123456789123, "n_steps": 11.0, "throughput_traj_steps_per_s": 200.0,
                           "device": "cuda:1", "manifest_sha256": "ab" * 32, **fields})


def test_how_a_record_was_measured_is_read_off_it() -> None:
    """Step time to 9 significant digits, whole step counts from floats, the device's kind without its index; what a
    record lacks or holds as a non-number is None, never a crash or a NaN that matches nothing."""
    assert rollout_kind(_solver_record()) == RolloutKind("ab" * 32, 11, 0.123456789, 4, "cuda")
    lacking = _solver_record(step_time=math.nan, n_steps=None, summary={"nrmse_gmean_steps": math.inf}, device=None)
    assert rollout_kind(lacking) == RolloutKind("ab" * 32, None, None, None, "unknown")
    text = _solver_record(step_time="0.8", summary={"nrmse_gmean_steps": "4"})
    assert rollout_kind(text) == RolloutKind("ab" * 32, 11, None, None, "cuda")
    assert rollout_kind(_solver_record(summary={})).gmean_steps is None


def test_a_solver_point_needs_two_finite_numbers_and_the_solver_model() -> None:
    point = solver_point(_solver_record(solver_setting={"resolution": [64]}), "corr_time_0.8")
    assert point == FrontierPoint("solver", 3.5, 200.0, RolloutKind("ab" * 32, 11, 0.123456789, 4, "cuda"), False)
    assert solver_point(_solver_record(), "corr_time_0.8").stored
    for record in (_solver_record(model="fno"), _solver_record(summary={"corr_time_0.8": True}),
                   _solver_record(summary={"corr_time_0.8": "3.5"}),
                   _solver_record(summary={"corr_time_0.8": math.nan}),
                   _solver_record(throughput_traj_steps_per_s=None)):
        assert solver_point(record, "corr_time_0.8") is None


@pytest.mark.parametrize(("setting", "stored"), [
    (None, True), ({}, True), ({"resolution": None, "time_step_factor": 1.0}, True), ({"resolution": [64]}, False),
    ({"time_step_factor": 0.5}, False), ({"time_step_factor": 2}, False)])
def test_the_stored_setting_is_the_stored_grid_at_the_generators_own_step(setting, stored: bool) -> None:
    assert is_stored_setting(setting) is stored


def test_what_to_evaluate_messages_say_how_to_fix_it(evaluate_cfg) -> None:
    with pytest.raises(ValueError, match=r"nothing to evaluate: pass ckpt=PATH \(a checkpoint from pdebench-train\) "
                                         r"or model=<reference row> \(e\.g\. model=persistence\)"):
        evaluate(evaluate_cfg("data=ks", "data.preset=tiny"), progress=False)
    with pytest.raises(ValueError, match=r"^no dataset given: pass data=<name> \(e\.g\. data=ks\), "
                                         r"or ckpt=PATH to use the checkpoint's$"):
        evaluate(evaluate_cfg("model=persistence"), progress=False)


# ---------------------------------------------------------------- result files


RESULT = {"dataset": "ks-tiny", "pde": "ks", "model": "persistence", "label": "persistence", "seed": 0,
          "summary": {}, "curves": {}}


def test_result_files_store_numpy_torch_and_path_values_and_refuse_others(tmp_path: Path) -> None:
    path = write_result(tmp_path / "r.json", {
        **RESULT, "checkpoint": tmp_path / "best.ckpt",
        "summary": {"a": np.float32(0.5), "b": torch.tensor(0.25), "diverged": torch.tensor(math.nan)},
        "curves": {"corr": torch.tensor([1.0, math.inf]), "step": np.arange(2)},
    })
    back = read_result(path)
    assert back["summary"] == {"a": 0.5, "b": 0.25, "diverged": None}
    assert back["curves"] == {"corr": [1.0, None], "step": [0, 1]}
    assert back["checkpoint"] == str(tmp_path / "best.ckpt") and back["format_version"] == 1
    for value, kind in (({1, 2}, "set"), (array.array("d", [1.0]), "array")):
        with pytest.raises(TypeError, match=f"cannot store a value of type {kind} in a result file"):
            write_result(tmp_path / "s.json", {**RESULT, "extra": value})
    with pytest.raises(ResultError, match=r"nolabel\.json is missing the required key 'label'"):
        write_result(tmp_path / "nolabel.json", {key: value for key, value in RESULT.items() if key != "label"})


def test_reading_result_files_names_the_file_and_the_problem(tmp_path: Path) -> None:
    def write(name: str, **changes) -> Path:
        path = tmp_path / name
        path.write_text(json.dumps({"format": "pdebench-result", "format_version": 1, **RESULT, **changes}))
        return path

    foreign = tmp_path / "foreign.json"  # NaN and Infinity are not strict JSON, but other writers produce them
    foreign.write_text(write("ok.json").read_text().replace('"summary": {}', '"summary": {"x": NaN, "y": Infinity}'))
    assert read_result(foreign)["summary"] == {"x": None, "y": None}
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ResultError, match=r"list\.json does not hold a JSON object at the top level"):
        read_result(tmp_path / "list.json")
    assert try_read_result(tmp_path / "list.json") is None
    for name, version in (("bool.json", True), ("text.json", "1")):
        with pytest.raises(ResultError, match=rf"{name} has key 'format_version' = "):
            read_result(write(name, format_version=version))
    with pytest.raises(ResultError, match=r"flat\.json has key 'summary' that is not a JSON object"):
        read_result(write("flat.json", summary=[1.0]))
    broken = tmp_path / "broken.json"  # a result (by its format) that misses a key is an error, not "not a result"
    broken.write_text(json.dumps({"format": "pdebench-result", "format_version": 1,
                                  **{key: value for key, value in RESULT.items() if key != "seed"}}))
    with pytest.raises(ResultError, match=r"broken\.json is missing the required key 'seed'"):
        try_read_result(broken)
    with pytest.raises(ResultError, match=rf"Result file {re.escape(str(tmp_path))} cannot be read"):
        read_result(tmp_path)  # a directory


def test_evaluate_checks_the_test_split_it_reads_against_the_manifest(compose_cfg, work: Path, tmp_path: Path) -> None:
    """Only the split evaluation reads is verified: damage to train does not stop it, a damaged test split does."""
    def run() -> None:
        evaluate(compose_cfg("evaluate", ["model=persistence", "data=ks", "data.preset=tiny", "rollout.max_steps=1",
                                          f"data.root={work / 'data'}", f"results_dir={tmp_path / 'results'}",
                                          "rollout.device=cpu"]), progress=False)

    with open(work / "data" / "ks-tiny" / "train.h5", "ab") as fh:
        fh.write(b"\0")
    run()
    with open(work / "data" / "ks-tiny" / "test.h5", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(DatasetError, match=r"test\.h5"):
        run()



@pytest.mark.parametrize("pde", ["kolmogorov", "smoke", "swe"])
def test_the_solver_row_serves_every_dataset_and_skips_what_its_solver_cannot_do(
    compose_cfg, pde: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One list of solver settings (conf/model/solver.yaml, made for KS) on the 2-D and spherical datasets: the stored
    grid reproduces the stored frames, settings no coarser than the stored grid make no row, and a setting the
    dataset's solver refuses is skipped with a warning naming it (SWE's tiny preset cannot take 4x its step)."""
    from data_gen.generate import generate

    root = tmp_path / "data"
    generate(compose_cfg("generate", [f"pde={pde}", "preset=tiny", f"root={root}", "workers=1"]), progress=False)
    rows = evaluate_all(compose_cfg("evaluate", [f"data={pde}", "data.preset=tiny", f"data.root={root}",
                                                 f"results_dir={tmp_path / 'results'}", "model=solver",
                                                 "rollout.device=cpu"]), progress=False)
    labels = [row.content["label"] for row in rows]
    assert labels[0] == "solver" and all("-n" not in label for label in labels)  # tiny grids are <= 32 points
    assert rows[0].content["summary"]["one_step_nrmse"] < 1e-5
    skipped = "solver-dt4x" not in labels
    assert skipped == (pde == "swe")
    assert ("warning: model=solver skips solver-dt4x" in capsys.readouterr().err) == skipped
