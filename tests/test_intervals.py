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


def test_the_resample_count_and_the_level_are_checked_and_one_resample_is_enough():
    """n_resamples 0, level 0 and level 1 are refused with one message naming both values; one resample is allowed
    and gives the zero-width interval of that resample's estimate."""
    n, steps = 6, 3
    per_step = _per_step(n, steps, np.random.default_rng(6))
    flags = np.zeros((n, steps), bool)
    for n_resamples, level in ((0, 0.95), (1, 0.0), (1, 1.0)):
        with pytest.raises(ValueError) as excinfo:
            bootstrap_intervals(per_step, flags, 0.5, **SETTINGS, n_resamples=n_resamples, seed=0, level=level)
        assert str(excinfo.value) == (f"need n_resamples >= 1 and 0 < level < 1, got {n_resamples} and {level}")
    (idx,) = _resamples(n, 1, seed=7)
    value = per_step["nrmse"][idx, 0, 0].mean()
    got = bootstrap_intervals(per_step, flags, 0.5, **SETTINGS, n_resamples=1, seed=7)["one_step_nrmse"]
    assert got == pytest.approx([value, value], rel=1e-12)


def test_a_geometric_mean_over_one_step_has_the_interval_of_the_one_step_error():
    """gmean_steps=1 aggregates step 1 only, in the resamples too: its interval is the one-step nRMSE's, and two
    steps give another one."""
    n, steps = 8, 4
    per_step = _per_step(n, steps, np.random.default_rng(9))
    flags = np.zeros((n, steps), bool)
    one = bootstrap_intervals(per_step, flags, 0.5, **{**SETTINGS, "gmean_steps": 1}, n_resamples=200, seed=5)
    assert one["nrmse_gmean"] == pytest.approx(one["one_step_nrmse"], rel=1e-12)
    two = bootstrap_intervals(per_step, flags, 0.5, **{**SETTINGS, "gmean_steps": 2}, n_resamples=200, seed=5)
    assert abs(two["nrmse_gmean"][0] - one["nrmse_gmean"][0]) > 1e-3


def _ensemble_per_step(n: int, steps: int) -> dict[str, np.ndarray]:
    """Errors 1 and full correlation; ensemble scores 0 everywhere except trajectory 0 (CRPS 0.5, spread2 and
    ens_mse 1): its spread-skill ratio sqrt(1.5) is undefined (0 / 0) in a resample that leaves trajectory 0 out."""
    ones = np.ones((n, steps, 1))
    per_step = {"mse": ones, "nrmse": ones, "vrmse": ones, "corr": ones}
    for name, value in (("crps", 0.5), ("spread2", 1.0), ("ens_mse", 1.0)):
        per_step[name] = np.zeros((n, steps, 1))
        per_step[name][0] = value
    return per_step


def test_an_estimate_undefined_in_some_resample_has_no_interval():
    """Five trajectories: about a third of the resamples leave trajectory 0 out, where the spread-skill ratio is
    0 / 0. The sample's ratio is finite, but it gets no interval; the CRPS mean, defined in every resample, keeps its
    percentile interval."""
    n, steps = 5, 3
    per_step = _ensemble_per_step(n, steps)
    flags = np.zeros((n, steps), bool)
    summary, _ = summarize_rollout(per_step, flags, 1.0, **SETTINGS, n_members=2)
    assert summary["spread_skill_ratio"] == pytest.approx(np.sqrt(1.5), rel=1e-12)
    draws = _resamples(n, 200, seed=0)
    assert sum(0 not in idx for idx in draws) > 50
    got = bootstrap_intervals(per_step, flags, 1.0, **SETTINGS, n_members=2, n_resamples=200, seed=0)
    assert got["spread_skill_ratio"] is None
    crps = np.array([0.5 * np.count_nonzero(idx == 0) / n for idx in draws])
    assert got["crps_mean"] == pytest.approx(list(np.quantile(crps, (0.025, 0.975))), rel=1e-12, abs=1e-15)


def test_a_bootstrap_without_members_reports_no_ensemble_scores():
    """A single member (the default) has no ensemble scores even where the per-step metrics hold them."""
    n, steps = 5, 3
    per_step = _ensemble_per_step(n, steps)
    got = bootstrap_intervals(per_step, np.zeros((n, steps), bool), 1.0, **SETTINGS, n_resamples=20, seed=0)
    assert not {"crps_mean", "spread_skill_ratio"} & set(got)
    assert "one_step_nrmse" in got


def test_intervals_of_blown_up_trajectories_emit_no_floating_point_warning():
    """Two of six trajectories have a finite one-step error of 1e308, whose mean over trajectories overflows, and one
    a drift that is infinite from step 2 (inf - inf in the band's deviations): no warning, and no interval where
    the sample has no finite value."""
    n, steps = 6, 3
    per_step = _per_step(n, steps, np.random.default_rng(11))
    per_step["mse"][:2, 0] = 1e308
    drift = np.full((n, steps, 1), 0.1)
    drift[0, 1:] = np.inf
    per_step["drift"] = drift
    flags = np.zeros((n, steps), bool)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = bootstrap_intervals(per_step, flags, 0.5, **SETTINGS, n_resamples=50, seed=1)
    assert got["one_step_mse"] is None and got["conservation_drift_max"] is None
    assert got["one_step_nrmse"] is not None


def test_interval_notes_are_whole_sentences_and_a_value_at_its_ceiling_is_within_1e_12():
    """The notes a result file records, compared whole: a time metric counts as at its ceiling down to a relative
    1e-12 below it (rounding of n_steps x step time) and not one float below that; a maximum over steps is noted
    with the level; a key without a value gets no note."""
    ceiling = 2.8
    at = ceiling * (1 - 1e-12)
    summary = {"corr_time_0.8": at, "corr_time_median_0.8": np.nextafter(at, 0.0), "time_ceiling": ceiling,
               "time_ceiling_median": ceiling, "stable_horizon_median": None, "conservation_drift_max": 0.3,
               "one_step_nrmse": 0.1}
    notes = interval_notes(summary, 5, level=0.9)
    assert notes == {
        "corr_time_0.8": "at its ceiling time_ceiling = 2.8: the rollout ended before the metric did, so the value "
                         "is a lower bound and the interval ends at the ceiling",
        "conservation_drift_max": "a maximum over steps: value +- the 0.9 quantile of the largest deviation of a "
                                  "resample's step means from the sample's (a simultaneous band over steps), low end "
                                  "clipped at 0; it contains the value",
    }
    assert interval_notes({**summary, "conservation_drift_max": None}, 5) == {"corr_time_0.8": notes["corr_time_0.8"]}
