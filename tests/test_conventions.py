"""The conventions docs/metrics.md states, each against the reference it follows: step windows (The Well's trainer),
the two high-correlation times (PDE-Refiner's code, and the first crossing), throughput (per process)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic import write_dataset

from pdebench.data.grid import Grid
from pdebench.rollout.evaluation import evaluate
from pdebench.rollout.keys import MetricKey, format_key
from pdebench.rollout.reductions import (
    first_crossing_time_median,
    high_correlation_time,
    rollout_windows,
    summarize_rollout,
    well_windows,
)
from pdebench.rollout.scoring import Scores

# ------------------------------------------------------------------------------------------------- step windows


def the_wells_slices(n_steps: int, n_intervals: int = 5) -> list[tuple[int, int]]:
    """The Well's `split_up_losses` (the_well/benchmark/trainer/training.py), restated: `[start, end)` slices of the
    per-step loss between `[0] + [int(exp(x)) for x in linspace(0, log T, min(T, n_intervals))]`."""
    points = np.linspace(0, np.log(n_steps), min(n_steps, n_intervals))
    edges = [0] + [int(np.exp(x)) for x in points]
    return list(zip(edges[:-1], edges[1:], strict=True))


@pytest.mark.parametrize(("n_steps", "expected"), [
    (30, [(1, 1), (2, 2), (3, 5), (6, 12), (13, 30)]),
    (23, [(1, 1), (2, 2), (3, 4), (5, 10), (11, 23)]),
    (11, [(1, 1), (2, 3), (4, 6), (7, 11)]),
    (3, [(1, 1), (2, 3)]),
    (1, [(1, 1)]),
])
def test_windows_follow_the_rollout_length_as_the_well_does(n_steps: int, expected: list[tuple[int, int]]):
    """Where The Well's slices are not empty and end at the rollout's end, ours are the same steps (1-based)."""
    ours = well_windows(n_steps)
    assert ours == expected
    theirs = [(start + 1, end) for start, end in the_wells_slices(n_steps) if end > start]
    if theirs[-1][1] == n_steps:
        assert ours == theirs


@pytest.mark.parametrize("n_steps", [5, 7, 640])
def test_the_last_window_ends_at_the_rollout_end_where_the_wells_rounding_drops_a_step(n_steps: int):
    """int(exp(log T)) is T - 1 for these T: The Well's last slice stops one step short; ours ends at T and is
    otherwise its slices (empty ones left out)."""
    theirs = [(start + 1, end) for start, end in the_wells_slices(n_steps) if end > start]
    assert theirs[-1][1] == n_steps - 1
    ours = well_windows(n_steps)
    assert ours[:-1] == theirs[:-1] and ours[-1] == (theirs[-1][0], n_steps)
    covered = [s for first, last in ours for s in range(first, last + 1)]
    assert covered == list(range(1, n_steps + 1))  # every step in exactly one window


def _rollout(n_steps: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Two trajectories whose nRMSE at step s (1-based) is s / 100 and 3 s / 100: the step mean is s / 50."""
    steps = np.arange(1, n_steps + 1) / 100
    nrmse = np.stack([steps, 3 * steps])[:, :, None]
    per_step = {"mse": nrmse**2, "nrmse": nrmse, "vrmse": 2 * nrmse, "corr": np.ones_like(nrmse)}
    return per_step, np.zeros((2, n_steps), dtype=bool)


def test_a_23_step_rollout_names_each_window_by_the_steps_it_averages():
    """The fixed windows 1, 2-5, 6-12, 13-30 on 23 steps: the last averages steps 13-23 and is named so."""
    per_step, flags = _rollout(23)
    summary, _ = summarize_rollout(per_step, flags, 0.5, (0.8,), 5, [[1, 1], [2, 5], [6, 12], [13, 30]])
    windows = sorted(key for key in summary if key.startswith("nrmse_steps_"))
    assert windows == ["nrmse_steps_1", "nrmse_steps_13-23", "nrmse_steps_2-5", "nrmse_steps_6-12"]
    assert "vrmse_steps_13-30" not in summary
    # mean of s / 50 over s = 13..23 is 18 / 50; over 13..30 it would be 21.5 / 50
    assert summary["nrmse_steps_13-23"] == pytest.approx(18 / 50, rel=1e-12)
    assert summary["vrmse_steps_13-23"] == pytest.approx(2 * 18 / 50, rel=1e-12)
    assert summary["nrmse_steps_6-12"] == pytest.approx(9 / 50, rel=1e-12)


def test_the_wells_windows_on_a_23_step_rollout_average_what_its_slices_average():
    per_step, flags = _rollout(23)
    summary, curves = summarize_rollout(per_step, flags, 0.5, (0.8,), 5, None)
    curve = np.asarray(curves["nrmse"])
    for start, end in the_wells_slices(23):
        if end > start:
            key = f"nrmse_steps_{start + 1}" if end == start + 1 else f"nrmse_steps_{start + 1}-{end}"
            assert summary[key] == pytest.approx(curve[start:end].mean(), rel=1e-12), key
    assert {key for key in summary if key.startswith("nrmse_steps_")} == {
        "nrmse_steps_1", "nrmse_steps_2", "nrmse_steps_3-4", "nrmse_steps_5-10", "nrmse_steps_11-23"}


def test_given_windows_are_cut_deduplicated_and_dropped_past_the_end():
    assert rollout_windows([[1, 1], [2, 5], [6, 12], [13, 30], [13, 40], [31, 40]], 23) == [
        (1, 1), (2, 5), (6, 12), (13, 23)]
    assert rollout_windows(None, 30) == well_windows(30)


# ------------------------------------------------------------------------------ high-correlation time conventions

# A curve on which the two conventions differ: trajectory 0 dips below 0.8 at step 3 and recovers, trajectory 1
# recovers late, trajectory 2 never drops, trajectory 3 drops at step 2 and stays low.
CORR = np.array([
    [0.99, 0.95, 0.70, 0.92, 0.90, 0.88, 0.60, 0.50],
    [0.97, 0.93, 0.90, 0.75, 0.79, 0.85, 0.86, 0.40],
    [0.99, 0.98, 0.97, 0.96, 0.95, 0.94, 0.93, 0.92],
    [0.95, 0.60, 0.55, 0.50, 0.45, 0.40, 0.35, 0.30],
])
STEP_TIME = np.array([0.8, 0.9, 0.7, 0.6])


def pderefiner_logged_count(corr: np.ndarray, batch_size: int, threshold: float) -> float:
    """PDE-Refiner's logged `time_till_corr_lower_<t>` (pdearena/models/pderefiner.py, validation_epoch_end),
    restated: per batch the correlation `[B, T]` averaged over the batch, those means averaged over batches, then
    `(corr_timesteps > threshold).float().sum()`: a number of steps."""
    per_batch = [torch.from_numpy(corr[i : i + batch_size]).mean(dim=0) for i in range(0, len(corr), batch_size)]
    corr_timesteps = torch.stack(per_batch, dim=0).mean(dim=0)
    return float((corr_timesteps > threshold).float().sum())


def first_crossing_by_hand(corr: np.ndarray, threshold: float, step_time: np.ndarray) -> float:
    """Per trajectory: steps before the first correlation <= threshold (all if none), times its step; the median."""
    times = []
    for row, dt in zip(corr, step_time, strict=True):
        steps = next((k for k, c in enumerate(row) if c <= threshold), len(row))
        times.append(steps * dt)
    return float(np.median(times))


@pytest.mark.parametrize("threshold", [0.8, 0.9])
def test_the_headline_time_is_pderefiners_count_of_steps_above_the_threshold(threshold: float):
    """Batches of 2 (equal sizes, as PDE-Refiner's evaluation has them); the count times the mean model step."""
    steps = pderefiner_logged_count(CORR, 2, threshold)
    assert high_correlation_time(CORR, threshold, STEP_TIME) == pytest.approx(steps * STEP_TIME.mean(), rel=1e-12)


def test_the_two_conventions_differ_on_a_curve_that_dips_and_recovers():
    """At 0.8 the step means are [0.975, 0.865, 0.78, 0.7825, 0.7725, 0.7675, 0.685, 0.53]: 2 steps above, so
    2 x 0.75 = 1.5. First crossings: steps 2, 3, 8 (never), 1 -> times 1.6, 2.7, 5.6, 0.6 -> median 2.15."""
    assert pderefiner_logged_count(CORR, 2, 0.8) == 2
    assert high_correlation_time(CORR, 0.8, STEP_TIME) == pytest.approx(1.5, rel=1e-12)
    assert first_crossing_by_hand(CORR, 0.8, STEP_TIME) == pytest.approx(2.15)
    assert first_crossing_time_median(CORR, 0.8, STEP_TIME) == pytest.approx(2.15, rel=1e-12)
    # trajectory 0 alone: the count sees 5 steps above 0.8 (it recovers after the dip), the first crossing 2
    assert high_correlation_time(CORR[:1], 0.8, STEP_TIME[:1]) == pytest.approx(5 * 0.8)
    assert first_crossing_time_median(CORR[:1], 0.8, STEP_TIME[:1]) == pytest.approx(2 * 0.8)


@pytest.mark.parametrize("threshold", [0.8, 0.85, 0.9, 0.95])
def test_the_median_time_is_the_median_first_crossing(threshold: float):
    expected = first_crossing_by_hand(CORR, threshold, STEP_TIME)
    assert first_crossing_time_median(CORR, threshold, STEP_TIME) == pytest.approx(expected, rel=1e-12)


def test_the_summary_keys_carry_each_convention():
    per_step = {"corr": CORR[:, :, None], "mse": np.ones((4, 8, 1)), "nrmse": np.ones((4, 8, 1)),
                "vrmse": np.ones((4, 8, 1))}
    summary, _ = summarize_rollout(per_step, np.zeros((4, 8), bool), STEP_TIME, (0.8,), 5, [[1, 1]])
    assert summary["corr_time_0.8"] == pytest.approx(1.5) and summary["corr_time_median_0.8"] == pytest.approx(2.15)


# --------------------------------------------------------------------------------------------------- throughput


def _scores(index: list[int], n_steps: int, seconds: float) -> Scores:
    n = len(index)
    per_step = {name: np.full((n, n_steps, 1), 0.5) for name in ("mse", "rmse", "nrmse", "vrmse", "corr")}
    return Scores(index=index, per_step=per_step, unstable=np.zeros((n, n_steps), dtype=bool),
                  step_time=np.full(n, 0.5), forecast_seconds=seconds)


def test_throughput_is_the_rate_of_one_process_in_a_two_process_join():
    """Process A forecasts 2 trajectories x 4 steps in 1 s (8/s), process B 2 x 4 in 4 s (2/s). Per process, over
    all stepper time: 16 trajectory-steps / 5 s = 3.2; the sum of the two rates would be 10, their mean 5."""
    joined = Scores.join([_scores([0, 2], 4, seconds=1.0), _scores([1, 3], 4, seconds=4.0)])
    assert joined.forecast_seconds == 5.0
    assert joined.throughput == pytest.approx(3.2, rel=1e-12)
    assert not math.isclose(joined.throughput, 10.0) and not math.isclose(joined.throughput, 5.0)
    # two equal processes each at 8/s: still 8 per process, not 16
    equal = Scores.join([_scores([0, 2], 4, seconds=1.0), _scores([1, 3], 4, seconds=1.0)])
    assert equal.throughput == pytest.approx(8.0, rel=1e-12)


# ---------------------------------------------------------------------------- the conventions in a result file


def slowly_drifting(rng: np.random.Generator, n_traj: int, n_frames: int):
    """u = a sin(2 pi x + phase) + 0.02 t cos(2 pi x): persistence stays correlated (corr > 0.99) while its error
    grows with the step t, and trajectories differ in amplitude a ~ U[0.5, 1.5]."""
    x = np.arange(16) / 16
    a, phase = rng.uniform(0.5, 1.5, n_traj), rng.uniform(0, 2 * np.pi, n_traj)
    t = np.arange(n_frames)
    u = (a[:, None, None] * np.sin(2 * np.pi * x[None, None, :] + phase[:, None, None])
         + 0.02 * t[None, :, None] * np.cos(2 * np.pi * x)[None, None, :])
    return {"u": u}, {}


def persistence_on_drift(compose_cfg, tmp_path: Path, *overrides: str) -> dict:
    """The result file of persistence on six test trajectories of eight frames of `slowly_drifting` (seven steps)."""
    write_dataset(tmp_path / "data", "drift", Grid.uniform("periodic", (16,)), ("u",), (), slowly_drifting,
                  {"train": (2, 8), "valid": (2, 8), "test": (6, 8)},
                  {"frame_stride": 1, "headline": "vrmse_mean", "headline_goal": "min", "conserved": None})
    return evaluate(compose_cfg("evaluate", [
        "model=persistence", "data=ks", "data.pde=drift", "data.preset=tiny", f"data.root={tmp_path / 'data'}",
        f"results_dir={tmp_path / 'results'}", "rollout.device=cpu", *overrides,
    ]), progress=False).content


def test_a_result_file_names_its_windows_by_their_steps_and_notes_a_time_at_its_ceiling(compose_cfg,
                                                                                       tmp_path: Path) -> None:
    """Six test trajectories of eight frames (seven steps, not a window boundary): the default windows become 1, 2-5
    and 6-7; persistence never decorrelates, so its correlation times sit at their ceiling 7 x 0.5 = 3.5, with
    intervals ending there and a note saying so."""
    content = persistence_on_drift(compose_cfg, tmp_path, "rollout.bootstrap_resamples=200")
    summary, intervals = content["summary"], content["intervals"]
    assert content["n_steps"] == 7 and content["scoring"]["windows"] == [[1, 1], [2, 5], [6, 7]]
    assert {key for key in summary if key.startswith("nrmse_steps_")} == {
        "nrmse_steps_1", "nrmse_steps_2-5", "nrmse_steps_6-7"}
    assert summary["nrmse_steps_6-7"] == pytest.approx(np.mean(content["curves"]["nrmse"][5:7]), rel=1e-12)
    assert summary["corr_time_0.95"] == summary["time_ceiling"] == pytest.approx(3.5)
    assert intervals["corr_time_0.95"] == pytest.approx([3.5, 3.5])
    low, high = intervals["one_step_nrmse"]
    assert low < summary["one_step_nrmse"] < high
    method = content["interval_method"]
    assert method["level"] == 0.95 and method["min_trajectories"] == 5
    assert "at its ceiling time_ceiling = 3.5" in method["notes"]["corr_time_0.95"]
    assert content["scoring"]["ensemble_scored"] is None  # one member: the deterministic call


def test_null_windows_on_the_command_line_give_the_well_windows_of_the_rollout(compose_cfg, tmp_path: Path) -> None:
    """`rollout.windows=null`: the windows come from the 7-step rollout by The Well's rule (1, 2, 3-4, 5-7), not the
    fixed list."""
    content = persistence_on_drift(compose_cfg, tmp_path, "rollout.bootstrap_resamples=20", "rollout.windows=null")
    expected = [list(w) for w in well_windows(7)]
    assert expected != [[1, 1], [2, 5], [6, 7]] and content["scoring"]["windows"] == expected
    assert {key for key in content["summary"] if key.startswith("nrmse_steps_")} == {
        format_key(MetricKey("nrmse", window=tuple(w))) for w in expected}
