"""Scoring rollouts: scores start at the first predicted frame, are keyed by trajectory index with each trajectory's
own step time, run the stepper in eval mode, do not depend on the evaluation batch size, and roll an ab2 forecaster
out with its carried rate (as training validation does)."""

from __future__ import annotations

import math
import re
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from baselines import build_model
from pdebench.config import BenchmarkConfig, RolloutConfig
from pdebench.data.batch import TrajectoryBatch, collate
from pdebench.data.dataset import TrajectoryDataset
from pdebench.data.netspec import NetSpec
from pdebench.data.normalization import Normalizer
from pdebench.errors import InvalidSetting
from pdebench.forecast.checkpoint import load_forecaster
from pdebench.forecast.forecaster import Forecaster
from pdebench.forecast.targets import make_target
from pdebench.rollout.scoring import Scores, ScoringSpec, score, score_batch, summarize

ROLLOUT = RolloutConfig()  # evaluate's default rollout settings
BENCHMARK = BenchmarkConfig()  # a PDE's default benchmark facts
SPEC = ScoringSpec(energy_factor=BENCHMARK.stability_energy_factor)


def scored(stepper, dataset: TrajectoryDataset, indices=None, **options) -> Scores:
    """`score` with evaluate's default batch size and pointwise scoring, where a test leaves them out."""
    return score(stepper, dataset, indices, **{"batch_size": ROLLOUT.batch_size, "spec": SPEC, **options})


def summarized(scores: Scores, **settings):
    """`summarize` with evaluate's default thresholds and windows and a PDE's default geometric-mean steps, where a
    test leaves them out."""
    defaults = {"thresholds": ROLLOUT.thresholds, "gmean_steps": BENCHMARK.gmean_steps, "windows": ROLLOUT.windows}
    return summarize(scores, **{**defaults, **settings})


def persistence(dataset: TrajectoryDataset, history: int = 1, bundle: int = 1):
    f = dataset.file
    return build_model({"name": "persistence"}, NetSpec(f.field_names, history, bundle, f.parameter_names, f.grid))


class Oracle:
    """Predicts the stored next model frame of whichever trajectory it is shown (found by its last input frame)."""

    history, bundle = 1, 1

    def __init__(self, trajectories: Tensor) -> None:
        self.trajectories = trajectories  # [N, C, J, *space]

    def __call__(self, frames: Tensor, cond: Tensor) -> Tensor:
        out = []
        for last in frames[:, :, -1]:
            hits = (self.trajectories == last[:, None]).flatten(3).all(-1).all(1).nonzero()  # [[traj, time]]
            traj, time = hits[0].tolist()
            out.append(self.trajectories[traj, :, time + 1])
        return torch.stack(out)[:, :, None]


@pytest.fixture(scope="module")
def test_set(ks_tiny: Path) -> TrajectoryDataset:
    return TrajectoryDataset(ks_tiny / "test.h5", frame_stride=4)


def all_frames(data: TrajectoryDataset) -> np.ndarray:
    return np.stack([data[i].frames.numpy() for i in range(len(data))]).astype(np.float64)  # [N, C, J, X]


def test_scores_start_at_the_first_predicted_frame(test_set: TrajectoryDataset) -> None:
    oracle = Oracle(torch.from_numpy(all_frames(test_set)).float())
    scores = scored(oracle, test_set, batch_size=3, progress=False)
    assert scores.n_steps == test_set.n_model_frames - 1
    assert np.all(scores.per_step["mse"] == 0) and np.allclose(scores.per_step["corr"], 1)
    summary, _ = summarized(scores)
    assert summary["corr_time_0.8"] == pytest.approx(scores.n_steps * scores.step_time.mean())


def relative_l2(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """||pred - truth|| / ||truth|| along the last axis, computed independently of the metrics module."""
    return np.linalg.norm(pred - truth, axis=-1) / np.linalg.norm(truth, axis=-1)


def test_persistence_errors_are_the_change_since_the_initial_frame(test_set: TrajectoryDataset) -> None:
    scores = scored(persistence(test_set), test_set, batch_size=3, progress=False)
    frames = all_frames(test_set)
    for k in (0, 5):
        np.testing.assert_allclose(scores.per_step["nrmse"][:, k, 0],
                                   relative_l2(frames[:, 0, 0], frames[:, 0, k + 1]), rtol=1e-6)
    summary, _ = summarized(scores)
    assert summary["one_step_nrmse"] == pytest.approx(relative_l2(frames[:, 0, 0], frames[:, 0, 1]).mean(), rel=1e-6)


def test_max_steps_truncates_and_history_shifts_the_first_target(test_set: TrajectoryDataset) -> None:
    scores = scored(persistence(test_set, history=2), test_set, max_steps=3, progress=False)
    frames = all_frames(test_set)
    assert scores.n_steps == 3
    np.testing.assert_allclose(scores.per_step["mse"][:, 0, 0],
                               np.mean((frames[:, 0, 2] - frames[:, 0, 1]) ** 2, axis=-1), rtol=1e-6)


def test_scores_are_keyed_by_trajectory_with_its_own_step_time(test_set: TrajectoryDataset) -> None:
    """A subset in any order: rows come back sorted by trajectory index, each with its own step time (the dataset's
    order would give trajectory 0's and 1's times to trajectories 1 and 3)."""
    scores = scored(persistence(test_set), test_set, indices=[3, 1], batch_size=1, progress=False)
    assert scores.index.tolist() == [1, 3]
    np.testing.assert_array_equal(scores.step_time, test_set.step_times.numpy()[[1, 3]])
    assert len(set(test_set.step_times.tolist())) == len(test_set)  # the tiny preset draws dt per trajectory
    whole = scored(persistence(test_set), test_set, batch_size=4, progress=False)
    np.testing.assert_allclose(scores.per_step["nrmse"], whole.per_step["nrmse"][[1, 3]], rtol=1e-12)


def test_joining_shards_equals_one_pass(test_set: TrajectoryDataset) -> None:
    stepper = persistence(test_set)
    parts = [scored(stepper, test_set, indices=shard, progress=False) for shard in ([2, 0], [3, 1])]
    joined, whole = Scores.join(parts), scored(stepper, test_set, progress=False)
    assert joined.index.tolist() == [0, 1, 2, 3]
    for name in whole.per_step:
        np.testing.assert_array_equal(joined.per_step[name], whole.per_step[name])
    with pytest.raises(ValueError, match="more than once"):
        Scores.join([parts[0], parts[0]])


class ModeRecorder(nn.Module):
    """Persistence that records whether it was called in training mode (dropout would be on)."""

    history, bundle = 1, 1

    def __init__(self) -> None:
        super().__init__()
        self.modes: list[bool] = []

    def forward(self, frames: Tensor, cond: Tensor) -> Tensor:
        self.modes.append(self.training)
        return frames[:, :, -1:]


@pytest.mark.slow
def test_the_stepper_runs_in_eval_mode_and_gets_its_mode_back(test_set: TrajectoryDataset) -> None:
    stepper = ModeRecorder().train()
    scored(stepper, test_set, max_steps=2, progress=False)
    assert stepper.modes and not any(stepper.modes) and stepper.training


@pytest.mark.slow
def test_batch_size_does_not_change_a_trained_nets_scores(test_set: TrajectoryDataset,
                                                          trained_checkpoint: Path) -> None:
    """Persistence cannot see batch effects; a trained FNO can (batched kernels round differently, and a single row
    takes another path). Batches of 1 (each padded to 2 rows), 3 (padded: 3 + 1 + 2 copies) and 4 give bitwise
    equal scores."""
    forecaster = load_forecaster(trained_checkpoint).forecaster
    one = scored(forecaster, test_set, batch_size=1, progress=False)
    three = scored(forecaster, test_set, batch_size=3, progress=False)
    four = scored(forecaster, test_set, batch_size=4, progress=False)
    for name in three.per_step:
        np.testing.assert_array_equal(three.per_step[name], four.per_step[name])
        np.testing.assert_array_equal(one.per_step[name], four.per_step[name])
    assert summarized(one)[0] == summarized(three)[0] == summarized(four)[0]


class CallRecorder:
    """Persistence that records the batch size of every call."""

    history, bundle = 1, 1

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def __call__(self, frames: Tensor, cond: Tensor) -> Tensor:
        self.sizes.append(frames.shape[0])
        return frames[:, :, -1:]


def test_a_short_last_batch_is_padded_and_its_copies_discarded(test_set: TrajectoryDataset) -> None:
    stepper = CallRecorder()
    scores = scored(stepper, test_set, batch_size=3, max_steps=2, progress=False)
    assert stepper.sizes == [3, 3, 3, 3]  # 4 trajectories: batches of 3 and 1 + 2 copies, 2 steps each
    assert scores.index.tolist() == [0, 1, 2, 3] and scores.per_step["mse"].shape[0] == 4
    stepper = CallRecorder()
    scored(stepper, test_set, indices=[1], batch_size=32, max_steps=1, progress=False)
    assert stepper.sizes == [4], "a batch larger than the split is cut to the split's size, whatever the shard"
    stepper = CallRecorder()
    scored(stepper, test_set, indices=[2], batch_size=1, max_steps=1, progress=False)
    assert stepper.sizes == [2], "never one row alone: single-row batches take other kernel paths"


class NoisyEnsemble:
    """A toy EnsembleStepper: persistence plus N(0, sigma^2) noise per sample; its call is the noiseless mean."""

    history, bundle = 1, 1

    def __init__(self, sigma: float) -> None:
        self.sigma = sigma

    def __call__(self, frames: Tensor, cond: Tensor) -> Tensor:
        return frames[:, :, -1:]

    def sample(self, frames: Tensor, cond: Tensor, n: int) -> Tensor:
        last = frames[:, :, -1:]
        return last + self.sigma * torch.randn(n, *last.shape, dtype=last.dtype)


def test_an_ensemble_stepper_gets_crps_and_spread_skill_per_step(test_set: TrajectoryDataset) -> None:
    spec = ScoringSpec(energy_factor=SPEC.energy_factor, ensemble=8)
    scores = scored(NoisyEnsemble(0.05), test_set, spec=spec, max_steps=3, progress=False)
    assert {"crps", "spread2", "ens_mse"} <= set(scores.per_step)
    # step 1: members are last + noise, so the unbiased spread^2 is about sigma^2 = 0.0025 at every point
    assert scores.per_step["spread2"][:, 0].mean() == pytest.approx(0.0025, rel=0.1)
    again = scored(NoisyEnsemble(0.05), test_set, spec=spec, max_steps=3, progress=False)
    np.testing.assert_array_equal(again.per_step["crps"], scores.per_step["crps"])  # seeded draws
    summary, curves = summarized(scores, n_members=8, gmean_steps=3)
    assert summary["n_members"] == 8 and summary["crps_mean"] > 0 and len(curves["spread_skill"]) == 3
    # noise far below the persistence error: an under-dispersed ensemble
    assert summary["spread_skill_ratio"] < 0.5
    with pytest.raises(ValueError, match="rollout.ensemble=8 needs a stochastic stepper with a `sample` method"):
        scored(CallRecorder(), test_set, spec=spec, max_steps=1, progress=False)


def test_spectra_drift_and_bands_are_scored_from_the_spec(test_set: TrajectoryDataset) -> None:
    spec = ScoringSpec(energy_factor=SPEC.energy_factor, band_edges=(5, 12), spectrum_steps=(1, 3, 99),
                       conserved="mean")
    scores = scored(persistence(test_set), test_set, spec=spec, max_steps=4, progress=False)
    bands = sum(scores.per_step[f"mse_{b}"] for b in ("low", "mid", "high"))
    np.testing.assert_allclose(bands, scores.per_step["mse"], rtol=1e-9)  # Parseval: the bands split the MSE
    np.testing.assert_allclose(scores.per_step["drift"], 0.0, atol=1e-12)  # persistence conserves the mean
    assert scores.extra["spectrum_pred"].shape[:3] == (4, 2, 1)  # steps 1 and 3; 99 is past the rollout
    # persistence's step-1 prediction is the input frame: its spectrum is the input's, not the target's
    frames = all_frames(test_set)
    spectrum = np.abs(np.fft.rfft(frames[:, 0, 0], norm="forward")) ** 2
    spectrum[:, 1:-1] *= 2
    assert scores.extra["spectrum_pred"][:, 0, 0, 5] == pytest.approx(spectrum[:, 5], rel=1e-6)


# ---------------------------------------------------------------- score_batch on a hand-made batch


def hand_batch() -> TrajectoryBatch:
    """Two trajectories, two fields, 3 model frames on 8 points. Trajectory 0: field a is 1 and field b is 10
    everywhere; trajectory 1: both fields are 4. So max|truth| over fields, frames and space is 10 and 4."""
    frames = torch.ones(2, 2, 3, 8)
    frames[0, 1] = 10.0
    frames[1] = 4.0
    return TrajectoryBatch(frames, torch.tensor([[0.5], [2.0]]), torch.tensor([0.1, 0.2]), torch.tensor([0, 1]))


class Constant:
    """Predicts the same value for every field and point of every trajectory, ignoring its input."""

    history, bundle = 1, 1

    def __init__(self, value: float) -> None:
        self.value = value

    def __call__(self, frames: Tensor, cond: Tensor) -> Tensor:
        return torch.full_like(frames[:, :, -1:], self.value)


def test_unstable_means_beyond_the_factor_times_the_trajectorys_largest_energy() -> None:
    """Energy = mean over space of u^2 summed over fields. Trajectory 0: 1 + 100 = 101, trajectory 1: 16 + 16 = 32.
    A constant prediction c has energy 2 c^2; the default factor 4 gives bounds 404 and 128."""
    assert SPEC.energy_factor == 4.0
    batch = hand_batch()
    _, flags = score_batch(Constant(10.0), batch, 2, spec=SPEC)  # 200: <= 404, > 128
    assert flags.tolist() == [[False, False], [True, True]]
    _, flags = score_batch(Constant(8.0), batch, 2, spec=SPEC)  # 128: exactly at the bound is still stable
    assert flags.tolist() == [[False, False], [False, False]]
    _, flags = score_batch(Constant(15.0), batch, 1, spec=SPEC)  # 450
    assert flags.tolist() == [[True], [True]]
    _, flags = score_batch(Constant(15.0), batch, 1, spec=ScoringSpec(energy_factor=5.0))  # bounds 505 and 160
    assert flags.tolist() == [[False], [True]]


def test_score_batch_checks_the_number_of_steps() -> None:
    batch = hand_batch()  # 3 model frames: history 1 leaves 2 steps
    per_step, flags = score_batch(Constant(1.0), batch, 1, spec=SPEC)
    assert flags.shape == (2, 1) and all(values.shape == (2, 1, 2) for values in per_step.values())
    for n_steps in (0, 3):
        with pytest.raises(ValueError, match=rf"trajectories have 3 model frames, too few for history=1 plus "
                                             rf"{n_steps} predicted step"):
            score_batch(Constant(1.0), batch, n_steps, spec=SPEC)


class CondRecorder:
    """Persistence that records the conditioning it is called with."""

    history, bundle = 1, 1

    def __init__(self) -> None:
        self.conds: list[Tensor] = []

    def __call__(self, frames: Tensor, cond: Tensor) -> Tensor:
        self.conds.append(cond.clone())
        return frames[:, :, -1:]


def test_every_step_gets_each_trajectorys_own_parameters(test_set: TrajectoryDataset) -> None:
    stepper = CondRecorder()
    scored(stepper, test_set, indices=[2, 0], max_steps=2, batch_size=2, progress=False)
    expected = torch.stack([test_set[2].cond, test_set[0].cond])
    assert len(stepper.conds) == 2 and all(torch.equal(cond, expected) for cond in stepper.conds)


class Sleeper:
    """Persistence that takes 10 ms per call."""

    history, bundle = 1, 1

    def __call__(self, frames: Tensor, cond: Tensor) -> Tensor:
        time.sleep(0.01)
        return frames[:, :, -1:]


def test_forecast_time_adds_up_every_stepper_call(test_set: TrajectoryDataset) -> None:
    start = time.perf_counter()
    scores = scored(Sleeper(), test_set, indices=[0, 1, 2, 3], max_steps=3, batch_size=2, progress=False)
    wall = time.perf_counter() - start
    assert 6 * 0.01 <= scores.forecast_seconds <= wall  # 2 batches x 3 steps, at least 10 ms each
    assert scores.throughput == pytest.approx(4 * 3 / scores.forecast_seconds)


def synthetic_scores(index: list[int], n_steps: int, seconds: float = 0.0) -> Scores:
    n = len(index)
    per_step = {name: np.full((n, n_steps, 1), 0.5) for name in ("mse", "rmse", "nrmse", "vrmse")}
    per_step["corr"] = np.full((n, n_steps, 1), 0.9)
    return Scores(index=index, per_step=per_step, unstable=np.zeros((n, n_steps), dtype=bool),
                  step_time=np.full(n, 0.5), forecast_seconds=seconds)


def test_joined_scores_add_their_stepper_time_and_validate_shapes() -> None:
    joined = Scores.join([synthetic_scores([3, 1], 4, seconds=1.5), synthetic_scores([0], 4, seconds=2.0)])
    assert joined.index.tolist() == [0, 1, 3] and joined.forecast_seconds == 3.5
    assert joined.throughput == pytest.approx(3 * 4 / 3.5)
    assert synthetic_scores([0], 4).throughput > 1e12  # no measurable stepper time: huge, not a division by zero
    with pytest.raises(ValueError, match=r"^nothing to join$"):
        Scores.join([])
    with pytest.raises(ValueError, match=r"^scores hold a trajectory index more than once$"):
        Scores.join([synthetic_scores([1, 2], 4), synthetic_scores([2], 4)])
    good = synthetic_scores([1, 0], 3)
    assert good.index.dtype == np.int64 and Scores(index=[1.0, 0.0], per_step={}, unstable=good.unstable,
                                                   step_time=good.step_time).index.dtype == np.int64
    with pytest.raises(ValueError, match=r"per_step\['mse'\] has shape \(2, 4, 1\), expected \(2, 3, C\)"):
        Scores(index=[1, 0], per_step={"mse": np.zeros((2, 4, 1))}, unstable=good.unstable, step_time=good.step_time)
    with pytest.raises(ValueError, match=r"^unstable must be \[n, n_steps\] and step_time \[n\] like index$"):
        Scores(index=[1, 0], per_step={}, unstable=good.unstable, step_time=np.ones(3))
    with pytest.raises(ValueError, match=r"unstable must be \[n, n_steps\]"):
        Scores(index=[1, 0], per_step={}, unstable=np.zeros(2, dtype=bool), step_time=good.step_time)


def test_summarize_passes_its_thresholds_and_aggregates_100_steps_by_default() -> None:
    scores = synthetic_scores([0, 1], 120)
    assert BENCHMARK.gmean_steps == 100
    summary, curves = summarized(scores)
    assert summary["nrmse_gmean_steps"] == 100 and "corr_time_0.95" in summary and len(curves["step"]) == 120
    summary, _ = summarized(scores, thresholds=(0.5,), gmean_steps=7)
    assert summary["nrmse_gmean_steps"] == 7
    assert summary["corr_time_0.5"] == pytest.approx(120 * 0.5) and "corr_time_0.8" not in summary


class CountedRate(nn.Module):
    """A pointwise 'rate' net, 0.05 x (1 - x / 8), counting its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        self.calls += 1
        return 0.05 * x * (1.0 - 0.125 * x)


def test_the_evaluator_and_validation_carry_the_ab2_rate(test_set: TrajectoryDataset) -> None:
    """Through the evaluator's timer and padding (`score`) and through `score_batch` (training validation), an ab2
    forecaster at 2 substeps makes 4 * 2 + 1 net calls per batch over 4 steps (restarting every model step would make
    4 * 3), and its scores do not depend on the batch size."""
    f = test_set.file
    spec = NetSpec(f.field_names, 1, 1, f.parameter_names, f.grid)
    forecaster = Forecaster(CountedRate(), Normalizer.identity(len(f.field_names), len(f.parameter_names)),
                            make_target("derivative", 1.0, 1, "ab2", 2), spec)
    in_pairs = scored(forecaster, test_set, indices=[0, 1, 2, 3], max_steps=4, batch_size=2, progress=False)
    assert forecaster.net.calls == 2 * (4 * 2 + 1)
    together = scored(forecaster, test_set, indices=[0, 1, 2, 3], max_steps=4, batch_size=4, progress=False)
    for name in together.per_step:
        np.testing.assert_array_equal(in_pairs.per_step[name], together.per_step[name])
    forecaster.net.calls = 0
    score_batch(forecaster, collate([test_set[0], test_set[1]]), 4, spec=SPEC)
    assert forecaster.net.calls == 4 * 2 + 1


class RaiseSecond:
    """Keeps field a and adds 2 to field b each step; with `blow_up`, field b is NaN from the second step on."""

    history, bundle = 1, 1

    def __init__(self, blow_up: bool = False) -> None:
        self.blow_up, self.calls = blow_up, 0

    def __call__(self, frames: Tensor, cond: Tensor) -> Tensor:
        self.calls += 1
        out = frames[:, :, -1:].clone()
        out[:, 1] += math.nan if self.blow_up and self.calls > 1 else 2.0
        return out


def test_the_drift_covers_the_conserved_channels_in_their_order_and_a_nan_drift_is_infinite() -> None:
    """Field b's spatial mean grows by 2 per step and field a's stays: the drift from the last input frame is 2 then 4
    for b and 0 for a; the conserved channels pick and order them (None: every channel), and a NaN prediction drifts
    infinitely far."""
    batch = hand_batch()
    every = score_batch(RaiseSecond(), batch, 2, spec=ScoringSpec(energy_factor=1e9, conserved="mean"))[0]["drift"]
    np.testing.assert_array_equal(every.numpy(), [[[0.0, 2.0], [0.0, 4.0]]] * 2)
    spec = ScoringSpec(energy_factor=1e9, conserved="mean", conserved_channels=(1, 0))
    ordered = score_batch(RaiseSecond(), batch, 2, spec=spec)[0]["drift"]
    np.testing.assert_array_equal(ordered.numpy(), [[[2.0, 0.0], [4.0, 0.0]]] * 2)
    spec = ScoringSpec(energy_factor=1e9, conserved="mean", conserved_channels=(1,))
    blown = score_batch(RaiseSecond(blow_up=True), batch, 2, spec=spec)[0]["drift"]
    np.testing.assert_array_equal(blown.numpy(), [[[2.0], [math.inf]]] * 2)
    assert "drift" not in score_batch(RaiseSecond(), batch, 2, spec=ScoringSpec(energy_factor=1e9))[0]


def test_settings_that_leave_no_step_name_the_file_and_the_frames(test_set: TrajectoryDataset) -> None:
    frames = test_set.n_model_frames
    with pytest.raises(InvalidSetting, match=rf"^{re.escape(str(test_set.file.path))}: trajectories have {frames} "
                                             rf"model frames, too few for history=1 plus at least one predicted "
                                             rf"step$"):
        scored(persistence(test_set), test_set, max_steps=0, progress=False)
    with pytest.raises(InvalidSetting, match=rf"have {frames} model frames, too few for history={frames} plus"):
        scored(persistence(test_set, history=frames), test_set, progress=False)
    one = scored(persistence(test_set, history=frames - 1), test_set, progress=False)
    assert one.n_steps == 1


def test_an_empty_shard_scores_no_trajectory_over_the_rollouts_steps(test_set: TrajectoryDataset) -> None:
    """A rank with no trajectory returns empty scores of the rollout's length, which join with the others'."""
    stepper = CallRecorder()
    empty = scored(stepper, test_set, indices=[], max_steps=3, progress=False)
    assert stepper.sizes == [] and len(empty) == 0 and empty.n_steps == 3 and empty.sample is None
    assert empty.unstable.shape == (0, 3) and empty.step_time.shape == (0,) and empty.index.dtype == np.int64
    other = scored(persistence(test_set), test_set, indices=[1], max_steps=3, progress=False)
    joined = Scores.join([empty, other])
    assert joined.index.tolist() == [1] and joined.per_step.keys() == other.per_step.keys()
    assert len(Scores.join([empty])) == 0


def test_scores_refuse_extra_arrays_and_a_sample_that_do_not_fit_the_trajectories() -> None:
    from pdebench.rollout.scoring import RolloutSample

    good = synthetic_scores([4, 7], 3)
    with pytest.raises(ValueError, match=r"^extra\['spectrum_pred'\] has shape \(3, 1\), expected 2 rows$"):
        Scores(index=[4, 7], per_step={}, unstable=good.unstable, step_time=good.step_time,
               extra={"spectrum_pred": np.zeros((3, 1))})
    sample = RolloutSample(trajectory=5, channel=0, step=np.arange(1, 4), time=np.arange(1, 4) * 0.5,
                           pred=np.zeros((3, 8)), true=np.zeros((3, 8)), time_stride=1, space_stride=(1,))
    with pytest.raises(ValueError, match=r"^the sample's trajectory 5 is not among the scored trajectories$"):
        Scores(index=[4, 7], per_step={}, unstable=good.unstable, step_time=good.step_time, sample=sample)
    sample.trajectory = 7
    assert Scores(index=[4, 7], per_step={}, unstable=good.unstable, step_time=good.step_time,
                  sample=sample).sample is sample
