"""Bootstrap intervals: recomputed from the same resamples, clipped at a time metric's ceiling, a band for a maximum
over steps, and none below five trajectories."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from pdebench.rollout.reductions import (
    MIN_INTERVAL_TRAJECTORIES,
    FewTrajectoriesWarning,
    bootstrap_intervals,
    interval_notes,
    summarize_rollout,
)

SETTINGS = {"thresholds": (0.8,), "gmean_steps": 3, "windows": [[1, 1]]}


def _per_step(n: int, steps: int, rng: np.random.Generator, **given: np.ndarray) -> dict[str, np.ndarray]:
    """Per-step metrics `[n, steps, 1]`: nrmse uniform in [0.1, 0.5] (mse its square, vrmse equal), corr 1 - nrmse,
    and whatever `given` replaces."""
    nrmse = rng.uniform(0.1, 0.5, size=(n, steps, 1))
    return {"mse": nrmse**2, "nrmse": nrmse, "vrmse": nrmse, "corr": 1 - nrmse, **given}


def _resamples(n: int, n_resamples: int, seed: int) -> list[np.ndarray]:
    """The trajectory indices each resample draws: one `integers(0, n, n)` call per resample of PCG64(seed)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, n, size=n) for _ in range(n_resamples)]


def test_a_percentile_interval_is_the_quantiles_of_the_resampled_estimates_at_the_asked_level():
    """The one-step nRMSE interval recomputed from the same draws: equal to 1e-12 at 95%, and the 90% interval (a
    different pair of quantiles, ~15% narrower here) is told apart from it."""
    n, steps = 12, 6
    per_step = _per_step(n, steps, np.random.default_rng(3))
    flags = np.zeros((n, steps), bool)
    first = per_step["nrmse"][:, 0, 0]
    means = np.array([first[idx].mean() for idx in _resamples(n, 400, seed=1)])
    for level in (0.95, 0.90):
        expected = np.quantile(means, ((1 - level) / 2, (1 + level) / 2))
        got = bootstrap_intervals(per_step, flags, 0.5, **SETTINGS, n_resamples=400, seed=1, level=level)
        assert got["one_step_nrmse"] == pytest.approx(list(expected), rel=1e-12, abs=0)
    wide = np.quantile(means, (0.025, 0.975))
    narrow = np.quantile(means, (0.05, 0.95))
    assert min(narrow[0] - wide[0], wide[1] - narrow[1]) > 1e-3  # far beyond the 1e-12 the check allows


def test_a_time_metric_at_its_ceiling_reports_the_ceiling_as_its_top():
    """Every trajectory stays correlated, so both times sit at their ceilings: 4 steps x mean step time 0.7 = 2.8 and
    the median of 4 x [0.5 .. 0.9] = 2.8. A resample of longer step times has a longer rollout (up to 3.6), so the
    plain percentile top lies above 2.8; the interval must stop at 2.8, its low end the recomputed quantile."""
    n, steps = 5, 4
    per_step = {"mse": np.ones((n, steps, 1)), "nrmse": np.ones((n, steps, 1)), "vrmse": np.ones((n, steps, 1)),
                "corr": np.full((n, steps, 1), 0.99)}
    flags = np.zeros((n, steps), bool)
    step_time = np.array([0.5, 0.6, 0.7, 0.8, 0.9])
    summary, _ = summarize_rollout(per_step, flags, step_time, **SETTINGS)
    assert summary["corr_time_0.8"] == pytest.approx(2.8) == summary["time_ceiling"]
    assert summary["corr_time_median_0.8"] == pytest.approx(2.8) == summary["time_ceiling_median"]
    got = bootstrap_intervals(per_step, flags, step_time, **SETTINGS, n_resamples=300, seed=4)
    draws = _resamples(n, 300, seed=4)
    count = np.array([steps * step_time[idx].mean() for idx in draws])
    median = np.array([np.median(steps * step_time[idx]) for idx in draws])
    assert np.quantile(count, 0.975) > 2.8 + 0.1 and np.quantile(median, 0.975) > 2.8 + 0.1  # unclipped: above
    assert got["corr_time_0.8"] == pytest.approx([np.quantile(count, 0.025), 2.8], rel=1e-12)
    assert got["corr_time_median_0.8"] == pytest.approx([np.quantile(median, 0.025), 2.8], rel=1e-12)
    assert got["stable_horizon_median"] == pytest.approx([np.quantile(median, 0.025), 2.8], rel=1e-12)
    notes = interval_notes(summary, n)
    for key in ("corr_time_0.8", "corr_time_median_0.8", "stable_horizon_median"):
        assert "at its ceiling" in notes[key] and "lower bound" in notes[key]
    assert "one_step_nrmse" not in notes


def test_a_time_metric_below_its_ceiling_is_not_noted_and_keeps_its_quantiles():
    n, steps = 6, 5
    corr = np.full((n, steps, 1), 0.9)
    corr[:, 3:] = 0.5  # every trajectory drops at step 4: 3 steps of 1.0 against a ceiling of 5.0
    per_step = {"mse": np.ones((n, steps, 1)), "nrmse": np.ones((n, steps, 1)), "vrmse": np.ones((n, steps, 1)),
                "corr": corr}
    summary, _ = summarize_rollout(per_step, np.zeros((n, steps), bool), 1.0, **SETTINGS)
    assert summary["corr_time_0.8"] == 3.0 and summary["time_ceiling"] == 5.0
    got = bootstrap_intervals(per_step, np.zeros((n, steps), bool), 1.0, **SETTINGS, n_resamples=50, seed=0)
    assert got["corr_time_0.8"] == [3.0, 3.0]
    assert "corr_time_0.8" not in interval_notes(summary, n)


def test_a_maximum_over_steps_gets_a_band_that_contains_it_where_a_percentile_interval_does_not():
    """Drift uniform in [0, 1] on 6 trajectories x 40 steps: the largest step mean is 0.689, while the resampled
    maxima lie above it (2.5% quantile 0.707). The interval is value +- c, c the 95% quantile of the largest
    deviation of a resample's step means, recomputed here."""
    n, steps = 6, 40
    rng = np.random.default_rng(34)
    drift = rng.uniform(0, 1, size=(n, steps, 1))
    per_step = {"mse": np.ones((n, steps, 1)), "nrmse": np.ones((n, steps, 1)), "vrmse": np.ones((n, steps, 1)),
                "corr": np.ones((n, steps, 1)), "drift": drift}
    flags = np.zeros((n, steps), bool)
    summary, _ = summarize_rollout(per_step, flags, 1.0, **SETTINGS)
    value = summary["conservation_drift_max"]
    curve = drift[:, :, 0].mean(axis=0)
    assert value == pytest.approx(curve.max()) and value == pytest.approx(0.6893, abs=1e-4)
    draws = _resamples(n, 1000, seed=0)
    maxima = np.array([drift[idx, :, 0].mean(axis=0).max() for idx in draws])
    assert np.quantile(maxima, 0.025) > value + 0.01  # the percentile interval would leave its own value out
    c = np.quantile([np.abs(drift[idx, :, 0].mean(axis=0) - curve).max() for idx in draws], 0.95)
    got = bootstrap_intervals(per_step, flags, 1.0, **SETTINGS, n_resamples=1000, seed=0)["conservation_drift_max"]
    assert got == pytest.approx([value - c, value + c], rel=1e-12)
    assert got[0] < value < got[1]
    assert "simultaneous band" in interval_notes(summary, n)["conservation_drift_max"]
    # a curve every trajectory shares has no deviation: the band is the value itself
    same = {**per_step, "drift": np.repeat(drift[:1], n, axis=0)}
    point = bootstrap_intervals(same, flags, 1.0, **SETTINGS, n_resamples=50, seed=0)["conservation_drift_max"]
    assert point == pytest.approx([drift[0, :, 0].max()] * 2, rel=1e-12)


def test_the_band_of_a_maximum_stops_at_zero():
    """Drift 0 or 1 at one step of 5 trajectories (mean 0.2): c = the largest deviation quantile exceeds 0.2, and a
    drift cannot be negative, so the low end is 0."""
    n, steps = 5, 1
    drift = np.array([1.0, 0.0, 0.0, 0.0, 0.0]).reshape(n, steps, 1)
    per_step = {"mse": np.ones((n, steps, 1)), "nrmse": np.ones((n, steps, 1)), "vrmse": np.ones((n, steps, 1)),
                "corr": np.ones((n, steps, 1)), "drift": drift}
    got = bootstrap_intervals(per_step, np.zeros((n, steps), bool), 1.0, **SETTINGS, n_resamples=500, seed=2)
    c = np.quantile([abs(drift[idx, 0, 0].mean() - 0.2) for idx in _resamples(n, 500, seed=2)], 0.95)
    assert c > 0.2
    assert got["conservation_drift_max"] == pytest.approx([0.0, 0.2 + c], rel=1e-12)


@pytest.mark.parametrize("n", [1, 2, 4])
def test_fewer_than_five_trajectories_give_no_interval_and_a_warning_naming_the_count(n: int):
    steps = 3
    per_step = _per_step(n, steps, np.random.default_rng(n))
    flags = np.zeros((n, steps), bool)
    with pytest.warns(FewTrajectoriesWarning, match=rf"^{n} test trajectories are too few for a bootstrap interval "
                                                    r"\(at least 5 are needed\)"):
        got = bootstrap_intervals(per_step, flags, 0.5, **SETTINGS, n_resamples=100, seed=0)
    summary, _ = summarize_rollout(per_step, flags, 0.5, **SETTINGS)
    assert set(got) == set(summary) - {"time_ceiling", "time_ceiling_median", "nrmse_gmean_steps"}
    assert all(value is None for value in got.values())
    notes = interval_notes(summary, n)
    assert notes["one_step_nrmse"] == f"no interval: {n} test trajectories, fewer than 5"


def test_five_trajectories_are_enough_and_give_no_warning():
    assert MIN_INTERVAL_TRAJECTORIES == 5
    per_step = _per_step(5, 3, np.random.default_rng(5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = bootstrap_intervals(per_step, np.zeros((5, 3), bool), 0.5, **SETTINGS, n_resamples=100, seed=0)
    low, high = got["one_step_nrmse"]
    assert low < high


def test_an_estimate_with_no_finite_value_has_no_interval_and_the_others_keep_theirs():
    """Six trajectories, one of which diverges at step 2 (an infinite error from there on): its one-step error is
    finite, so that interval stays, but every error mean over step 2 has no finite value in the sample (the geometric
    mean, the 1-2 window) and no interval; the correlation times, which a diverged trajectory only shortens, keep
    theirs."""
    n, steps = 6, 3
    per_step = _per_step(n, steps, np.random.default_rng(8))
    for name in ("mse", "nrmse", "vrmse"):
        per_step[name][0, 1:] = np.inf
    flags = np.zeros((n, steps), bool)
    settings = {**SETTINGS, "windows": [[1, 1], [1, 2]]}
    summary, _ = summarize_rollout(per_step, flags, 0.5, **settings)
    got = bootstrap_intervals(per_step, flags, 0.5, **settings, n_resamples=200, seed=3)
    assert summary["nrmse_gmean"] is None and got["nrmse_gmean"] is None
    assert summary["nrmse_steps_1-2"] is None and got["nrmse_steps_1-2"] is None
    low, high = got["one_step_nrmse"]
    assert low < summary["one_step_nrmse"] < high
    assert got["corr_time_0.8"] is not None and got["corr_time_0.8"][0] <= got["corr_time_0.8"][1]
