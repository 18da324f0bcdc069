"""Rollout metrics against values worked out by hand."""

from __future__ import annotations

import json
import math
import re
import warnings

import numpy as np
import pytest
import torch

from pdebench.config import BenchmarkConfig, RolloutConfig
from pdebench.data.grid import Grid
from pdebench.rollout import reductions
from pdebench.rollout.reductions import (
    first_crossing_time_median,
    geometric_mean_over_steps,
    high_correlation_time,
    spread_skill_ratio,
    stable_steps,
)
from pdebench.rollout.spectra import GridSpectrum
from pdebench.rollout.step_metrics import energy, ensemble_scores, invariant, step_errors, unstable, unstable_energy

# evaluate's default summary settings (the schemas'), for the tests that leave them out
ROLLOUT = RolloutConfig()
SUMMARY_DEFAULTS = {"thresholds": ROLLOUT.thresholds, "gmean_steps": BenchmarkConfig().gmean_steps,
                    "windows": ROLLOUT.windows}


def summarized(per_step, flags, step_time, **settings):
    """`reductions.summarize_rollout` with evaluate's default settings where a test leaves them out."""
    return reductions.summarize_rollout(per_step, flags, step_time, **{**SUMMARY_DEFAULTS, **settings})


def bootstrapped(per_step, flags, step_time, **settings):
    """`reductions.bootstrap_intervals` with evaluate's default settings where a test leaves them out."""
    defaults = {**SUMMARY_DEFAULTS, "n_resamples": ROLLOUT.bootstrap_resamples, "seed": ROLLOUT.bootstrap_seed}
    return reductions.bootstrap_intervals(per_step, flags, step_time, **{**defaults, **settings})


def _t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


# ----------------------------------------------------------------------------------------------------
# step_errors
# ----------------------------------------------------------------------------------------------------


def test_step_errors_hand_computed_1d():
    pred = _t([[[1.0, 2.0, 3.0, 4.0]]])  # [B=1, C=1, X=4]
    target = _t([[[1.0, 2.0, 3.0, 6.0]]])
    e = step_errors(pred, target)
    assert set(e) == {"mse", "rmse", "nrmse", "vrmse", "corr"}
    for v in e.values():
        assert v.shape == (1, 1) and v.dtype == torch.float64
    # d = p - y = [0, 0, 0, -2]
    # mse = (0 + 0 + 0 + 4) / 4 = 1, rmse = 1
    assert e["mse"].item() == pytest.approx(1.0, rel=1e-12)
    assert e["rmse"].item() == pytest.approx(1.0, rel=1e-12)
    # ||d|| = 2, ||y|| = sqrt(1 + 4 + 9 + 36) = sqrt(50)
    assert e["nrmse"].item() == pytest.approx(2.0 / math.sqrt(50.0), rel=1e-6)
    # mean(y) = 3, var(y) = (4 + 1 + 0 + 9) / 4 = 3.5, vrmse = sqrt(1 / 3.5)
    assert e["vrmse"].item() == pytest.approx(math.sqrt(1.0 / 3.5), rel=1e-6)
    # p - 2.5 = [-1.5, -0.5, 0.5, 1.5], y - 3 = [-2, -1, 0, 3]
    # cov = (3 + 0.5 + 0 + 4.5) / 4 = 2, var(p) = (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25
    assert e["corr"].item() == pytest.approx(2.0 / math.sqrt(1.25 * 3.5), rel=1e-6)


def test_step_errors_weights():
    pred = _t([[[1.0, 2.0, 3.0, 4.0]]])
    target = _t([[[1.0, 2.0, 3.0, 6.0]]])
    w = torch.tensor([1.0, 1.0, 1.0, 3.0])
    e = step_errors(pred, target, weights=w)
    # weighted mean of d^2 = (1*0 + 1*0 + 1*0 + 3*4) / (1 + 1 + 1 + 3) = 2
    assert e["mse"].item() == pytest.approx(2.0, rel=1e-12)
    # weighted mean of y = (1 + 2 + 3 + 18) / 6 = 4; var = (9 + 4 + 1 + 3*4) / 6 = 26/6
    assert e["vrmse"].item() == pytest.approx(math.sqrt(2.0 / (26.0 / 6.0)), rel=1e-6)
    # ||d||_w / ||y||_w = sqrt(12) / sqrt(1 + 4 + 9 + 3*36)
    assert e["nrmse"].item() == pytest.approx(math.sqrt(12.0 / 122.0), rel=1e-6)
    # uniform weights (any scale) reproduce the unweighted values
    e_uniform = step_errors(pred, target, weights=torch.full((4,), 7.0))
    e_plain = step_errors(pred, target)
    for name in e_plain:
        assert torch.allclose(e_uniform[name], e_plain[name], rtol=1e-12, atol=0)
    with pytest.raises(ValueError):
        step_errors(pred, target, weights=torch.ones(3))


def test_vrmse_of_spatial_mean_prediction_is_one():
    g = torch.Generator().manual_seed(0)
    target = torch.randn(3, 2, 64, generator=g) * 2.0 + 5.0
    pred = target.mean(dim=-1, keepdim=True).expand_as(target)
    e = step_errors(pred, target)
    assert torch.allclose(e["vrmse"], torch.ones(3, 2, dtype=torch.float64), atol=1e-6)
    # a constant prediction has no spatial variance: correlation 0
    assert torch.allclose(e["corr"], torch.zeros(3, 2, dtype=torch.float64), atol=1e-6)


def test_corr_of_affine_transform():
    g = torch.Generator().manual_seed(1)
    target = torch.randn(2, 3, 32, generator=g)
    up = step_errors(2.5 * target - 1.0, target)["corr"]
    down = step_errors(-0.5 * target + 3.0, target)["corr"]
    assert torch.allclose(up, torch.ones_like(up), atol=1e-6)
    assert torch.allclose(down, -torch.ones_like(down), atol=1e-6)
    assert step_errors(target, target)["mse"].abs().max().item() == 0.0


def test_step_errors_2d():
    g = torch.Generator().manual_seed(2)
    target = torch.randn(2, 3, 4, 5, generator=g)
    pred = target + 1.0
    e = step_errors(pred, target)
    assert e["mse"].shape == (2, 3)
    # d = 1 everywhere: mse = rmse = 1
    assert torch.allclose(e["mse"], torch.ones(2, 3, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(e["rmse"], torch.ones(2, 3, dtype=torch.float64), atol=1e-6)
    # a shift does not change the centred correlation
    assert torch.allclose(e["corr"], torch.ones(2, 3, dtype=torch.float64), atol=1e-6)
    # 2-D is the same as the flattened 1-D field
    e_flat = step_errors(pred.reshape(2, 3, 20), target.reshape(2, 3, 20))
    for name in e:
        assert torch.allclose(e[name], e_flat[name], rtol=1e-12, atol=0)


def test_step_errors_non_finite_prediction():
    target = _t([[[1.0, 2.0, 3.0], [1.0, 0.0, 1.0]]])  # [1, 2, 3]
    pred = _t([[[1.0, float("nan"), 3.0], [1.0, 0.5, 1.0]]])
    e = step_errors(pred, target)
    for name in ("mse", "rmse", "nrmse", "vrmse"):
        assert math.isinf(e[name][0, 0].item())
        assert math.isfinite(e[name][0, 1].item())
    assert e["corr"][0, 0].item() == 0.0
    # channel 1: d = [0, -0.5, 0] -> mse = 0.25 / 3
    assert e["mse"][0, 1].item() == pytest.approx(0.25 / 3.0, rel=1e-12)


def test_unstable():
    pred = _t([
        [[0.0, 1.0], [2.0, -3.0]],  # max |p| = 3 <= 5
        [[0.0, 1.0], [2.0, -9.0]],  # 9 > 5
        [[0.0, float("inf")], [0.0, 0.0]],  # non-finite
        [[0.0, float("nan")], [0.0, 0.0]],  # non-finite
    ])
    flags = unstable(pred, torch.full((4,), 5.0))
    assert flags.dtype == torch.bool
    assert flags.tolist() == [False, True, True, True]
    # per-trajectory bounds
    assert unstable(pred[:2], torch.tensor([2.0, 10.0])).tolist() == [True, False]


# ----------------------------------------------------------------------------------------------------
# rollout reductions
# ----------------------------------------------------------------------------------------------------


def test_stable_steps():
    flags = np.array([
        [False, False, True, False],  # first unstable at index 2 (recovering later does not count)
        [False, False, False, False],  # never -> n_steps
        [True, True, True, True],  # unstable at once -> 0
    ])
    assert stable_steps(flags).tolist() == [2, 4, 0]


def test_high_correlation_time_two_conventions():
    corr = np.array([
        [0.99, 0.95, 0.70, 0.90, 0.85, 0.50],  # dips at index 2, recovers, drops at 5
        [0.95, 0.90, 0.85, 0.82, 0.81, 0.40],  # first <= 0.8 at index 5
    ])
    step_time = np.array([0.5, 0.5])
    # trajectory means: [0.97, 0.925, 0.775, 0.86, 0.83, 0.45] -> 4 steps > 0.8 -> 4 * 0.5 = 2.0
    assert high_correlation_time(corr, 0.8, step_time) == pytest.approx(2.0)
    # first crossings: index 2 -> 1.0, index 5 -> 2.5; median = 1.75
    assert first_crossing_time_median(corr, 0.8, step_time) == pytest.approx(1.75)


def test_high_correlation_time_edges():
    # exactly at the threshold counts as a drop (strictly above is required)
    assert high_correlation_time(np.array([[0.8, 0.9]]), 0.8, np.array([2.0])) == 2.0
    assert first_crossing_time_median(np.array([[0.8, 0.9]]), 0.8, np.array([2.0])) == 0.0
    # never drops: n_steps * step_time; per-trajectory step times
    never = np.full((2, 3), 0.99)
    assert high_correlation_time(never, 0.8, np.array([1.0, 3.0])) == pytest.approx(3 * 2.0)  # x mean step 2.0
    assert first_crossing_time_median(never, 0.8, np.array([1.0, 3.0])) == pytest.approx((3.0 + 9.0) / 2)
    # NaN correlation counts as 0
    nan_corr = np.array([[0.9, np.nan, 0.9]])
    assert high_correlation_time(nan_corr, 0.8, np.array([1.0])) == 2.0
    assert first_crossing_time_median(nan_corr, 0.8, np.array([1.0])) == 1.0


def test_geometric_mean_over_steps():
    curve = np.array([1.0, 4.0, 16.0, 1e9])
    assert geometric_mean_over_steps(curve, 3) == pytest.approx(4.0)  # (1 * 4 * 16) ** (1/3)
    assert geometric_mean_over_steps(curve, 2) == pytest.approx(2.0)  # sqrt(1 * 4)
    zero = geometric_mean_over_steps(np.array([0.0, 1.0]), 2)
    assert math.isfinite(zero) and 0.0 < zero < 1e-100
    assert math.isinf(geometric_mean_over_steps(np.array([1.0, np.inf]), 2))
    assert math.isinf(geometric_mean_over_steps(np.array([1.0, np.nan]), 2))


def _hand_per_step() -> dict[str, np.ndarray]:
    """n_traj=2, n_steps=3, C=2; step 0 is the first predicted frame and has distinctive values."""
    ones = np.ones((2, 3, 2))
    nrmse = ones * np.array([0.1, 0.2, 0.4])[None, :, None]
    corr = np.stack([
        np.repeat(np.array([0.99, 0.90, 0.85])[:, None], 2, axis=1),
        np.repeat(np.array([0.95, 0.85, 0.70])[:, None], 2, axis=1),
    ])
    vrmse = ones * np.array([0.5, 1.5])[:, None, None]
    return {"mse": nrmse**2, "rmse": nrmse, "nrmse": nrmse, "vrmse": vrmse, "corr": corr}


def test_summarize_rollout_hand_computed():
    summary, curves = summarized(
        _hand_per_step(), np.zeros((2, 3), dtype=bool), np.array([0.25, 0.25]), gmean_steps=100
    )
    assert set(summary) == {
        "corr_time_0.8", "corr_time_0.9", "corr_time_0.95",
        "corr_time_median_0.8", "corr_time_median_0.9", "corr_time_median_0.95",
        "one_step_nrmse", "one_step_mse", "one_step_vrmse", "nrmse_gmean", "nrmse_gmean_steps",
        "vrmse_mean", "stable_horizon_median", "stable_fraction", "time_ceiling", "time_ceiling_median",
        *(f"{m}_steps_{w}" for m in ("nrmse", "vrmse") for w in ("1", "2-3")),
    }
    assert summary["time_ceiling"] == pytest.approx(0.75) and summary["time_ceiling_median"] == pytest.approx(0.75)
    # windows cut at the rollout's end (3 steps) and named by what they average: 2-5 is steps 2-3, 6-12 and 13-30
    # average nothing and have no key
    assert summary["nrmse_steps_1"] == pytest.approx(0.1)
    assert summary["nrmse_steps_2-3"] == pytest.approx(0.3)
    # step index 0 is the first predicted frame
    assert summary["one_step_nrmse"] == pytest.approx(0.1)
    assert summary["one_step_mse"] == pytest.approx(0.01)
    # (0.1 * 0.2 * 0.4) ** (1/3) = 0.008 ** (1/3) = 0.2, over min(100, 3) = 3 steps
    assert summary["nrmse_gmean"] == pytest.approx(0.2)
    assert summary["nrmse_gmean_steps"] == 3
    assert summary["vrmse_mean"] == pytest.approx(1.0)  # (0.5 + 1.5) / 2
    # trajectory-mean corr per step: [0.97, 0.875, 0.775]
    assert summary["corr_time_0.8"] == pytest.approx(2 * 0.25)
    assert summary["corr_time_0.9"] == pytest.approx(1 * 0.25)
    assert summary["corr_time_0.95"] == pytest.approx(1 * 0.25)
    # first crossings at 0.8: never (3 steps) and index 2 -> median of 0.75 and 0.5
    assert summary["corr_time_median_0.8"] == pytest.approx(0.625)
    # at 0.9: index 1 (0.90 <= 0.9) for both -> 0.25
    assert summary["corr_time_median_0.9"] == pytest.approx(0.25)
    # at 0.95: index 1 and index 0 -> median of 0.25 and 0.0
    assert summary["corr_time_median_0.95"] == pytest.approx(0.125)
    assert summary["stable_fraction"] == 1.0
    assert summary["stable_horizon_median"] == pytest.approx(0.75)

    assert curves["step"] == [1, 2, 3]
    assert curves["time"] == pytest.approx([0.25, 0.5, 0.75])
    assert curves["nrmse"] == pytest.approx([0.1, 0.2, 0.4])
    assert curves["corr"] == pytest.approx([0.97, 0.875, 0.775])
    assert curves["vrmse"] == pytest.approx([1.0, 1.0, 1.0])
    json.dumps({"summary": summary, "curves": curves}, allow_nan=False)

    summary2, _ = summarized(_hand_per_step(), np.zeros((2, 3), bool), 0.25, gmean_steps=2)
    assert summary2["nrmse_gmean"] == pytest.approx(math.sqrt(0.1 * 0.2))
    assert summary2["nrmse_gmean_steps"] == 2


def test_summarize_rollout_with_nan_prediction():
    g = torch.Generator().manual_seed(3)
    n_traj, n_steps = 2, 4
    target = torch.randn(n_traj, n_steps, 1, 16, generator=g)
    pred = target + 0.01 * torch.randn(n_traj, n_steps, 1, 16, generator=g)
    pred[1, 1:] = float("nan")  # trajectory 1 blows up after its first predicted step
    per_step_lists: dict[str, list[np.ndarray]] = {}
    flags = []
    for k in range(n_steps):
        for name, value in step_errors(pred[:, k], target[:, k]).items():
            per_step_lists.setdefault(name, []).append(value.numpy())
        flags.append(unstable(pred[:, k], torch.full((n_traj,), 100.0)).numpy())
    per_step = {name: np.stack(v, axis=1) for name, v in per_step_lists.items()}  # [n_traj, n_steps, C]
    summary, curves = summarized(per_step, np.stack(flags, axis=1), np.array([0.5, 0.5]))
    assert summary["stable_fraction"] == 0.5
    assert summary["stable_fraction"] < 1
    # stable steps 4 and 1 -> times 2.0 and 0.5 -> median 1.25
    assert summary["stable_horizon_median"] == pytest.approx(1.25)
    assert summary["vrmse_mean"] is None  # an infinite error has no finite mean
    assert summary["one_step_nrmse"] is not None and summary["one_step_nrmse"] < 0.1
    # corr of the NaN trajectory counts as 0: mean corr ~0.5 after step 0, below every threshold
    assert summary["corr_time_0.8"] == pytest.approx(0.5)
    assert summary["corr_time_median_0.8"] == pytest.approx((2.0 + 0.5) / 2)
    assert curves["corr"][1] == pytest.approx(0.5, abs=1e-3)
    assert curves["nrmse"][1] is None
    json.dumps({"summary": summary, "curves": curves}, allow_nan=False)


def test_summarize_rollout_rejects_bad_input():
    per_step = _hand_per_step()
    with pytest.raises(ValueError):
        summarized({k: v for k, v in per_step.items() if k != "corr"}, np.zeros((2, 3), bool), 1.0)
    with pytest.raises(ValueError):
        summarized(per_step, np.zeros((2, 4), bool), 1.0)


def test_median_aggregates_use_each_trajectory_step_time():
    """Three trajectories with unequal step times and skewed crossings: every median differs from the mean and from
    what a shared (mean) step time would give, so both mistakes fail here."""
    corr = np.array([
        [0.99, 0.85, 0.50, 0.40],  # first <= 0.8 at index 2
        [0.95, 0.95, 0.95, 0.95],  # never: 4 steps
        [0.70, 0.90, 0.90, 0.90],  # at index 0
    ])
    per_step = {
        "corr": np.repeat(corr[:, :, None], 2, axis=2),
        "mse": np.ones((3, 4, 2)), "nrmse": np.ones((3, 4, 2)), "vrmse": np.ones((3, 4, 2)),
    }
    flags = np.array([
        [False, False, False, True],  # unstable from index 3
        [False, False, False, False],  # never: 4 steps
        [False, True, True, True],  # from index 1
    ])
    step_time = np.array([1.0, 0.5, 4.0])
    summary, _ = summarized(per_step, flags, step_time, thresholds=(0.8,))
    # first crossings in time: 2 * 1.0 = 2.0, 4 * 0.5 = 2.0, 0 * 4.0 = 0 -> median 2.0 (mean 1.33; shared 1.83 -> 3.67)
    assert summary["corr_time_median_0.8"] == pytest.approx(2.0)
    # stable steps 3, 4, 1 -> times 3.0, 2.0, 4.0 -> median 3.0 (mean 3.0 too, but shared step 1.83: 5.5)
    assert summary["stable_horizon_median"] == pytest.approx(3.0)
    # PDE-Refiner count: mean corr per step [0.88, 0.9, 0.783, 0.75] -> 2 steps x mean step time 1.833
    assert summary["corr_time_0.8"] == pytest.approx(2 * 5.5 / 3)
    flags[0, 3] = False  # stable steps 4, 4, 1 -> times 4.0, 2.0, 4.0: median 4.0, mean 3.33
    summary, _ = summarized(per_step, flags, step_time, thresholds=(0.8,))
    assert summary["stable_horizon_median"] == pytest.approx(4.0)


# ----------------------------------------------------------------------------------------------------
# edge cases: invalid weights, rounding, overflow, boundaries and argument checks
# ----------------------------------------------------------------------------------------------------


def test_weights_must_be_usable_and_a_zero_weight_leaves_a_point_out():
    pred = _t([[[1.0, 2.0, 3.0, 4.0]]])
    target = _t([[[1.0, 2.0, 3.0, 6.0]]])
    bad_weights = (torch.zeros(4), torch.tensor([1.0, -1.0, 1.0, 1.0]), torch.tensor([1.0, math.nan, 1.0, 1.0]),
                   torch.tensor([1.0, math.inf, 1.0, 1.0]))
    for bad in bad_weights:
        with pytest.raises(ValueError, match=r"^weights must be finite, non-negative and not all zero$"):
            step_errors(pred, target, weights=bad)
    with pytest.raises(ValueError, match=r"weights must have the space shape \(4,\), got \(3,\)"):
        step_errors(pred, target, weights=torch.ones(3))
    dropped = step_errors(pred, target, weights=torch.tensor([0.0, 1.0, 1.0, 1.0]))
    rest = step_errors(pred[..., 1:], target[..., 1:])
    for name in rest:  # equal up to where eps enters (the norms are over weights of mean 1)
        assert torch.allclose(dropped[name], rest[name], rtol=1e-6, atol=0), name


def test_correlation_never_leaves_minus_one_to_one_even_without_eps():
    """With eps=0 the self-correlation of a random field rounds above 1 for about a quarter of fields."""
    x = torch.randn(200, 1, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    same, opposite = step_errors(x, x, eps=0.0)["corr"], step_errors(-x, x, eps=0.0)["corr"]
    assert same.max().item() == 1.0 and same.min().item() > 1 - 1e-12
    assert opposite.min().item() == -1.0 and opposite.max().item() < -1 + 1e-12


def test_correlation_that_overflows_is_zero():
    huge = torch.tensor([[[1e300, -1e300, 1e300, -1e300]]], dtype=torch.float64)  # finite, but cov overflows
    e = step_errors(huge, huge)
    assert e["corr"].item() == 0.0 and e["mse"].item() == 0.0


def test_step_errors_and_unstable_check_their_shapes():
    with pytest.raises(ValueError, match=r"pred \(1, 1, 3\) and target \(1, 1, 4\) differ in shape"):
        step_errors(torch.zeros(1, 1, 3), torch.zeros(1, 1, 4))
    with pytest.raises(ValueError, match=r"^pred must have shape \[B, C, \*space\] \(>= 1 space axis\), got \(2, 3\)"):
        step_errors(torch.zeros(2, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"pred must have shape \[B, C, \*space\], got \(4,\)"):
        unstable(torch.zeros(4), 1.0)
    # a scalar bound applies to every trajectory; exactly at the bound is not unstable
    assert unstable(_t([[[1.0, -5.0]], [[5.0, 0.0]], [[0.0, 5.5]]]), 5.0).tolist() == [False, False, True]
    # the bound is compared in double precision: just above 0.1 is above 0.1 (not above 0.1 rounded to float32)
    just_above = torch.full((1, 1, 2), 0.1 + 1e-12, dtype=torch.float64)
    assert unstable(just_above, 0.1).tolist() == [True]
    # a state without space axes ([B, C], e.g. an ODE) is judged the same way
    assert unstable(_t([[1.0, 9.0], [1.0, 2.0]]), 5.0).tolist() == [True, False]


def test_stable_steps_are_integer_counts_of_a_2d_flag_array():
    counts = stable_steps(np.array([[False, True], [False, False]]))
    assert counts.dtype == np.int64 and counts.tolist() == [1, 2]
    with pytest.raises(ValueError, match=r"unstable_flags must be \[n_traj, n_steps\], got shape \(3,\)"):
        stable_steps(np.zeros(3, dtype=bool))


def test_high_correlation_time_checks_its_arguments():
    for shape in ((2, 0), (0, 3), (3,)):
        message = r"corr must be a non-empty \[n_traj, n_steps\] array, got shape " + re.escape(str(shape))
        for convention in (high_correlation_time, first_crossing_time_median):
            with pytest.raises(ValueError, match=message):
                convention(np.zeros(shape), 0.8, 1.0)
    for convention in (high_correlation_time, first_crossing_time_median):
        with pytest.raises(ValueError, match=r"step_time must be a scalar or one value per trajectory \(2\)"):
            convention(np.ones((2, 3)), 0.8, np.ones(3))


def test_geometric_mean_of_one_step_and_of_none():
    assert geometric_mean_over_steps(np.array([0.3, 100.0]), 1) == pytest.approx(0.3)
    with pytest.raises(ValueError, match=r"^geometric_mean_over_steps needs at least one step$"):
        geometric_mean_over_steps(np.array([]), 1)


def test_summarize_rollout_aggregates_100_steps_by_default_and_at_least_one():
    assert SUMMARY_DEFAULTS["gmean_steps"] == 100  # the PDE's default benchmark.gmean_steps
    n_steps = 120
    nrmse = np.full((1, n_steps, 1), 0.5)
    nrmse[0, 100:] = 8.0  # steps beyond the first 100 do not enter the default aggregate
    per_step = {"mse": nrmse**2, "nrmse": nrmse, "vrmse": nrmse, "corr": np.ones((1, n_steps, 1))}
    flags = np.zeros((1, n_steps), dtype=bool)
    summary, _ = summarized(per_step, flags, 0.1)
    assert summary["nrmse_gmean_steps"] == 100 and summary["nrmse_gmean"] == pytest.approx(0.5)
    for asked in (1, 0):
        summary, _ = summarized(per_step, flags, 0.1, gmean_steps=asked)
        assert summary["nrmse_gmean_steps"] == 1 and summary["nrmse_gmean"] == pytest.approx(0.5)
    one, _ = summarized({k: v[:, :1] for k, v in per_step.items()}, flags[:, :1], 0.1)  # a single step
    assert one["nrmse_gmean"] == pytest.approx(0.5) and one["corr_time_0.8"] == pytest.approx(0.1)


def test_summarize_rollout_counts_nan_correlation_as_zero_and_nan_errors_as_diverged():
    per_step = _hand_per_step()
    per_step["corr"][1, 2, :] = np.nan  # trajectory 1, last step: no correlation
    per_step["vrmse"][0, 1, 0] = np.nan  # trajectory 0, step 1: a diverged error
    summary, curves = summarized(per_step, np.zeros((2, 3), dtype=bool), 0.25)
    assert curves["corr"] == pytest.approx([0.97, 0.875, 0.85 / 2])  # (0.85 + 0) / 2
    assert summary["vrmse_mean"] is None and curves["vrmse"] == [1.0, None, 1.0]
    json.dumps({"summary": summary, "curves": curves}, allow_nan=False)


def test_summarize_rollout_is_computed_in_float64_whatever_it_is_given():
    rng = np.random.default_rng(4)
    per_step = {name: rng.uniform(0.1, 1.0, size=(5, 7, 3)) for name in ("mse", "rmse", "nrmse", "vrmse", "corr")}
    single = {name: values.astype(np.float32) for name, values in per_step.items()}
    double = {name: values.astype(np.float32).astype(np.float64) for name, values in per_step.items()}
    flags = np.zeros((5, 7), dtype=bool)
    assert summarized(single, flags, 0.25) == summarized(double, flags, 0.25)


def test_summarizing_a_blown_up_rollout_emits_no_warning():
    per_step = _hand_per_step()
    per_step["mse"][:, 0, :] = 1e308  # finite per entry, but their mean overflows
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summary, curves = summarized(per_step, np.zeros((2, 3), dtype=bool), 0.25)
    assert summary["one_step_mse"] is None and curves["mse"][0] is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"corr": np.ones((0, 3, 2))}, r"per_step\['corr'\] must be a non-empty \[n_traj, n_steps, C\] array"),
        ({"corr": np.ones((2, 0, 2))}, r"per_step\['corr'\] must be a non-empty \[n_traj, n_steps, C\] array"),
        ({"corr": np.ones((2, 3))}, r"per_step\['corr'\] must be a non-empty \[n_traj, n_steps, C\] array"),
        ({"corr": np.ones((2, 3, 1))}, r"per_step\['corr'\] has shape \(2, 3, 1\), expected \(2, 3, 2\) like"),
    ],
)
def test_summarize_rollout_names_the_malformed_metric(change, message):
    with pytest.raises(ValueError, match=message):
        summarized({**_hand_per_step(), **change}, np.zeros((2, 3), dtype=bool), 1.0)


def test_summarize_rollout_names_what_is_missing_and_accepts_one_trajectory():
    with pytest.raises(ValueError, match=r"per_step is missing metric\(s\) \['corr'\]"):
        summarized({k: v for k, v in _hand_per_step().items() if k != "corr"}, np.zeros((2, 3), bool), 1.0)
    with pytest.raises(ValueError, match=r"unstable_flags must have shape \(2, 3\), got \(2, 4\)"):
        summarized(_hand_per_step(), np.zeros((2, 4), bool), 1.0)
    first = {name: values[:1] for name, values in _hand_per_step().items()}
    summary, _ = summarized(first, np.zeros((1, 3), dtype=bool), 0.25)
    assert summary["one_step_nrmse"] == pytest.approx(0.1) and summary["vrmse_mean"] == pytest.approx(0.5)


def test_float32_frames_and_weights_are_compared_in_double_precision():
    # 16777216 - 1 is exact in float64 but rounds back to 16777216 in float32
    e = step_errors(_t([[[16777216.0, 0.0]]]), _t([[[1.0, 0.0]]]))
    assert e["mse"].item() == 16777215.0**2 / 2
    pred, target = _t([[[1.0, 2.0, 3.0, 4.0]]]), _t([[[1.0, 2.5, 3.0, 6.0]]])
    w = torch.tensor([1.0, 1.0, 1.0, 3.0])  # normalised to mean 1: 2/3, which float32 cannot hold exactly
    single, double = step_errors(pred, target, weights=w), step_errors(pred, target, weights=w.double())
    assert all(torch.equal(single[name], double[name]) for name in single)
    # weights of any scale give the same errors, e.g. normalised to sum 1
    unit = step_errors(pred, target, weights=w.double() / 6)
    assert all(torch.allclose(unit[name], double[name], rtol=1e-12, atol=0) for name in unit)


def test_eps_is_relative_so_a_field_of_spatial_std_1e_3_predicted_exactly_scores_corr_1_and_vrmse_0():
    """An absolute 1e-7 in the denominators gave this perfect prediction corr var / (var + 1e-7) = 0.909."""
    g = torch.Generator().manual_seed(5)
    noise = torch.randn(2, 1, 64, generator=g, dtype=torch.float64)
    y = 5.0 + 1e-3 * (noise - noise.mean(-1, keepdim=True)) / noise.std(-1, unbiased=False, keepdim=True)
    e = step_errors(y, y)
    assert e["corr"].min().item() == pytest.approx(1.0, abs=1e-6) and e["vrmse"].max().item() == 0.0
    var = y.var(-1, unbiased=False)
    assert (var / (var + 1e-7)).max().item() == pytest.approx(0.909, abs=1e-3)  # the old convention's score
    # the ratios do not depend on the field's units: the same errors in units 1e3 or 1e-3 times as large
    pred = y + 1e-4 * torch.randn(2, 1, 64, generator=g, dtype=torch.float64)
    base = step_errors(pred, y)
    for factor in (1e-3, 1e3):
        scaled = step_errors(factor * pred, factor * y)
        for name in ("nrmse", "vrmse", "corr"):
            assert torch.allclose(scaled[name], base[name], rtol=1e-9, atol=0), (name, factor)


def test_vrmse_differs_from_the_wells_by_the_sample_variance_and_the_absolute_eps():
    """The Well: sqrt(mean(d^2) / (std(y)^2 + 1e-7)) with torch.std's sample (n - 1) variance and an absolute eps.
    Ours: sqrt(mse / ((1 + 1e-7) var(y))), the population variance. On 64 points of variance 1 the two differ by the
    factor sqrt(64 / 63) (0.79%); at variance 1e-6 The Well's absolute eps moves it by another 4.8%."""
    g = torch.Generator().manual_seed(6)
    noise = torch.randn(3, 2, 64, generator=g, dtype=torch.float64)
    y = (noise - noise.mean(-1, keepdim=True)) / noise.std(-1, unbiased=False, keepdim=True)  # population var 1
    pred = y + 0.3 * torch.randn(3, 2, 64, generator=g, dtype=torch.float64)

    def the_well(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(((p - t) ** 2).mean(-1) / (torch.std(t, dim=-1) ** 2 + 1e-7))

    ours = step_errors(pred, y)["vrmse"]
    ratio = ours / the_well(pred, y)
    expected = math.sqrt((64 / 63 + 1e-7) / (1 + 1e-7))
    assert torch.allclose(ratio, torch.full_like(ratio, expected), rtol=1e-12, atol=0)
    small = step_errors(1e-3 * pred, 1e-3 * y)["vrmse"] / the_well(1e-3 * pred, 1e-3 * y)
    small_expected = math.sqrt((64 / 63 * 1e-6 + 1e-7) / ((1 + 1e-7) * 1e-6))
    assert torch.allclose(small, torch.full_like(small, small_expected), rtol=1e-9, atol=0)


def test_a_target_without_spatial_scale_has_no_ratio_to_measure_by():
    """A constant target (0.1: its direct spatial mean rounds, which left a variance of ~1e-34 to divide by) and an
    all-zero one: nrmse/vrmse are 0 for the exact prediction and inf otherwise, corr is 0."""
    flat = torch.full((1, 1, 7), 0.1, dtype=torch.float64)
    varied = flat + torch.linspace(-1.0, 1.0, 7, dtype=torch.float64)
    e = step_errors(varied, flat)
    assert math.isinf(e["vrmse"].item()) and e["corr"].item() == 0.0 and math.isfinite(e["nrmse"].item())
    exact = step_errors(flat, flat)
    assert exact["vrmse"].item() == 0.0 and exact["corr"].item() == 0.0
    zero = torch.zeros(1, 1, 4, dtype=torch.float64)
    e = step_errors(_t([[[1.0, -1.0, 0.0, 0.0]]]), zero)
    assert math.isinf(e["nrmse"].item()) and math.isinf(e["vrmse"].item()) and e["corr"].item() == 0.0
    assert step_errors(zero, zero)["nrmse"].item() == 0.0
    # a constant prediction of a varying target: corr exactly 0 (a direct mean of 0.1s leaves rounding to correlate)
    assert step_errors(flat, varied)["corr"].item() == 0.0
    # a target of spatial std 1e-200, whose variance underflows to 0 while its covariance with the prediction does
    # not (~1e-200): no scale to measure by, so corr is exactly 0
    assert step_errors(varied, 1e-200 * varied)["corr"].item() == 0.0


def test_eps_scales_every_ratio_where_it_is_large_enough_to_see():
    """The hand-computed frame of test_step_errors_hand_computed_1d with eps = 0.5, where `1 + eps` and `1 - eps`
    differ by a factor 3 (at the default 1e-7 they differ by 2e-7): mean(y^2) = 12.5, var(y) = 3.5, var(p) = 1.25,
    cov = 2, mse = 1."""
    e = step_errors(_t([[[1.0, 2.0, 3.0, 4.0]]]), _t([[[1.0, 2.0, 3.0, 6.0]]]), eps=0.5)
    assert e["nrmse"].item() == pytest.approx(math.sqrt(1.0 / (1.5 * 12.5)), rel=1e-12)
    assert e["vrmse"].item() == pytest.approx(math.sqrt(1.0 / (1.5 * 3.5)), rel=1e-12)
    assert e["corr"].item() == pytest.approx(2.0 / (1.5 * math.sqrt(1.25 * 3.5)), rel=1e-12)
    assert e["mse"].item() == e["rmse"].item() == 1.0


# ----------------------------------------------------------------------------------------------------
# spectra, energy stability, conservation, ensembles, windows, intervals
# ----------------------------------------------------------------------------------------------------


def test_band_energies_split_the_full_periodic_spectrum_and_add_up_to_the_mse():
    """cos(2 pi 3 x) has mean square 1/2 on mode 3 (low, < 4); 0.5 sin(2 pi 7 x) has 1/8 on mode 7 (mid);
    cos(2 pi 20 x) 1/2 on mode 20 (high, >= 12). The energy of mode m is counted on both +m and -m."""
    x = torch.arange(64, dtype=torch.float64) / 64
    field = torch.cos(2 * math.pi * 3 * x) + 0.5 * torch.sin(2 * math.pi * 7 * x) + torch.cos(2 * math.pi * 20 * x)
    spectrum = GridSpectrum(Grid.uniform("periodic", (64,)), (4, 12))
    bands = spectrum.band_energy(field[None, None])[0, 0]
    assert bands.tolist() == pytest.approx([0.5, 0.125, 0.5], abs=1e-12)
    shells = spectrum.energy_spectrum(field)
    assert shells[3].item() == pytest.approx(0.5) and shells[7].item() == pytest.approx(0.125)
    assert shells.sum().item() == pytest.approx((field**2).mean().item(), abs=1e-12)
    assert spectrum.band_counts() == {"low": 4, "mid": 8, "high": 21}


def test_two_d_shells_use_signed_modes_on_every_axis():
    """(kx, ky) = (3, -4) lies on shell 5: mid for edges (4, 6); a quadrant-only spectrum would miss -4."""
    g = Grid.uniform("periodic", (16, 16))
    x = torch.arange(16, dtype=torch.float64) / 16
    field = torch.cos(2 * math.pi * (3 * x[:, None] - 4 * x[None, :]))
    spectrum = GridSpectrum(g, (4, 6))
    assert spectrum.energy_spectrum(field)[5].item() == pytest.approx(0.5)
    assert spectrum.band_energy(field).tolist() == pytest.approx([0.0, 0.5, 0.0], abs=1e-12)


def test_sphere_spectrum_is_per_spherical_harmonic_degree_with_area_weights():
    """Y_6^2 (real part) on a cell-centred 32 x 64 grid: its energy at degree 6, up to what the cell-area quadrature
    leaves of its overlap with degrees 2 to 5 (which the orthonormalisation moves there)."""
    from scipy.special import sph_harm_y

    grid = Grid.uniform("sphere", (32, 64))
    colat = np.deg2rad(90.0 - grid.coordinates[0])
    lon = np.deg2rad(grid.coordinates[1])
    field = torch.tensor(np.real(sph_harm_y(6, 2, colat[:, None], lon[None, :])))
    spectrum = GridSpectrum(grid, (4, 10))
    shells = spectrum.energy_spectrum(field)
    mean_square = float((torch.from_numpy(grid.weights()) * field**2).mean())
    assert int(shells.argmax()) == 6
    assert shells[6].item() == pytest.approx(mean_square, rel=1e-3)
    assert spectrum.band_energy(field)[1].item() == pytest.approx(mean_square, rel=1e-3)  # 4 <= 6 < 10: mid


GRID_KINDS_FOR_BANDS = {
    "periodic 1-D": Grid.uniform("periodic", (48,)),
    "periodic 2-D": Grid.uniform("periodic", (12, 10)),
    "box": Grid.uniform("box", (9, 14)),
    "sphere gaussian": Grid.gaussian(12, 24),
    "sphere equiangular": Grid.uniform("sphere", (11, 24)),
}


@pytest.mark.parametrize("name", list(GRID_KINDS_FOR_BANDS))
def test_band_energies_add_up_to_the_mse_to_1e_12_on_every_grid_kind(name: str) -> None:
    """Random fields (every scale present, grid-scale noise included) with the grid's own quadrature weights: the
    band energies of the error and its shells both add up to the weighted MSE the pointwise metrics report."""
    grid = GRID_KINDS_FOR_BANDS[name]
    g = torch.Generator().manual_seed(11)
    pred, target = (torch.randn(3, 2, *grid.shape, generator=g, dtype=torch.float64) for _ in range(2))
    spectrum = GridSpectrum(grid, (3, 6))
    mse = step_errors(pred, target, weights=torch.from_numpy(grid.weights()))["mse"]
    bands = spectrum.band_energy(pred - target)
    assert bands.min().item() > 0  # every band holds energy, so a band that is dropped shows
    assert torch.allclose(bands.sum(-1), mse, rtol=1e-12, atol=0)
    assert torch.allclose(spectrum.energy_spectrum(pred - target).sum(-1), mse, rtol=1e-12, atol=0)


def test_gaussian_sphere_degrees_are_torch_harmonics_and_the_remainder_is_the_last_shell():
    """A field band-limited below degree n_lat on the Gaussian grid: per-degree energies equal torch-harmonics'
    RealSHT ones (orthonormal, orders m > 0 twice, / 4 pi) and the remainder shell is empty; a grid-scale checkerboard
    in longitude (order n_lon / 2 = n_lat, beyond every degree below n_lat) lies whole in the remainder, high band."""
    import torch_harmonics as th

    n_lat, n_lon = 12, 24
    grid = Grid.gaussian(n_lat, n_lon)
    sht = th.RealSHT(n_lat, n_lon, grid="legendre-gauss", norm="ortho").double()
    isht = th.InverseRealSHT(n_lat, n_lon, grid="legendre-gauss", norm="ortho").double()
    g = torch.Generator().manual_seed(12)
    coeff = torch.complex(*(torch.randn(2, sht.lmax, sht.mmax, generator=g, dtype=torch.float64) for _ in range(2)))
    coeff = torch.tril(coeff.real) + 1j * torch.tril(coeff.imag)
    coeff[..., 0] = coeff[..., 0].real + 0j
    field = isht(coeff)
    found = sht(field)
    factor = torch.full((sht.mmax,), 2.0, dtype=torch.float64)
    factor[0] = 1.0
    reference = ((found.real**2 + found.imag**2) * factor).sum(-1) / (4 * math.pi)
    spectrum = GridSpectrum(grid, (3, 8))
    shells = spectrum.energy_spectrum(field)
    assert spectrum.n_shells == n_lat + 1
    assert torch.allclose(shells[:, :n_lat], reference, rtol=1e-12, atol=1e-12 * reference.max().item())
    assert shells[:, n_lat].abs().max().item() < 1e-25 * reference.sum().item()
    checkerboard = torch.cos(torch.pi * torch.arange(n_lon, dtype=torch.float64)).expand(n_lat, n_lon)
    assert spectrum.energy_spectrum(checkerboard)[n_lat].item() == pytest.approx(1.0, rel=1e-12)
    assert spectrum.band_energy(checkerboard).tolist() == pytest.approx([0.0, 0.0, 1.0], abs=1e-12)


@pytest.mark.parametrize("edges", [(5, 3), (2, 2), (0, 2), (-1, 2), (1, 2, 3)])
def test_band_edges_must_be_increasing_and_positive(edges) -> None:
    with pytest.raises(ValueError, match=re.escape(f"two numbers 0 < a < b, got {list(edges)}")):
        GridSpectrum(Grid.uniform("periodic", (8,)), edges)


def test_a_band_edge_below_one_mode_holds_only_the_mean_in_the_low_band() -> None:
    """Edges (0.5, 100) on 8 points: the mean alone is low, modes 1 to 4 mid, and the empty high band is counted as 0
    (not left out)."""
    spectrum = GridSpectrum(Grid.uniform("periodic", (8,)), (0.5, 100))
    assert spectrum.band_counts() == {"low": 1, "mid": 4, "high": 0}
    assert spectrum.n_shells == 5 and spectrum.shells.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert spectrum.shells.dtype == np.float64 and GridSpectrum(Grid.gaussian(4, 8), (1, 2)).shells.dtype == np.float64


def test_an_odd_grid_counts_every_mode_but_the_mean_twice() -> None:
    """7 points: rfft keeps modes 0..3, none of them a Nyquist mode, so modes 1..3 weigh 2; Parseval holds."""
    x = torch.arange(7, dtype=torch.float64) / 7
    field = 0.3 + torch.cos(2 * math.pi * 3 * x)
    spectrum = GridSpectrum(Grid.uniform("periodic", (7,)), (1, 3))
    assert spectrum.energy_spectrum(field).tolist() == pytest.approx([0.09, 0.0, 0.0, 0.5], abs=1e-15)
    assert spectrum.band_energy(field).tolist() == pytest.approx([0.09, 0.0, 0.5], abs=1e-15)


def test_a_float32_field_is_transformed_in_float64() -> None:
    """The spectrum of a float32 field equals that of its float64 copy to float64 rounding (a float32 transform
    would differ by about 1e-7)."""
    g = torch.Generator().manual_seed(5)
    field = torch.randn(2, 16, 12, generator=g)
    for grid in (Grid.uniform("periodic", (16, 12)), Grid.uniform("sphere", (16, 12))):
        spectrum = GridSpectrum(grid, (2, 5))
        for view in (spectrum.energy_spectrum, spectrum.band_energy):
            single, double = view(field), view(field.double())
            assert single.dtype == torch.float64
            assert torch.allclose(single, double, rtol=1e-13, atol=0)


def test_a_fourier_spectrum_refuses_a_grid_without_uniform_quadrature() -> None:
    """No valid periodic or box grid has another rule (`Grid` refuses it); a grid forged past that check is still
    refused here rather than given a wrong Parseval sum."""
    grid = Grid.uniform("box", (8, 8))
    object.__setattr__(grid, "quadrature", "cell-area")
    with pytest.raises(ValueError, match=r"^Fourier spectra need uniform quadrature; this box grid has 'cell-area'$"):
        GridSpectrum(grid, (1, 2))


def test_energy_bound_catches_what_twice_the_max_norm_cannot():
    """Truth in [-1, 1] with energy 0.5 (a sine). Persistence repeats a true frame: it never leaves either bound.
    Noise of +-1.9 (below 2 x max|y|) has energy 3.61 = 7.2 x 0.5: the max-norm bound passes it, the energy bound
    (factor 2) flags it."""
    x = torch.arange(32, dtype=torch.float64) / 32
    truth = torch.sin(2 * math.pi * x)[None, None]  # [1, 1, 32]
    noise = 1.9 * torch.sign(torch.sin(2 * math.pi * 5 * x + 0.1))[None, None]
    true_energy = energy(truth)
    assert true_energy.item() == pytest.approx(0.5)
    max_norm_bound = 2.0 * truth.abs().amax()
    energy_bound = 2.0 * true_energy
    assert not unstable(truth, max_norm_bound).item() and not unstable_energy(truth, energy_bound).item()
    assert not unstable(noise, max_norm_bound).item()  # the old bound never trips on bounded noise
    assert unstable_energy(noise, energy_bound).item()
    assert energy(noise).item() == pytest.approx(1.9**2)
    nan = truth.clone()
    nan[0, 0, 3] = math.nan
    assert unstable_energy(nan, 1e30).item() and energy(nan).item() == math.inf


def test_energy_and_invariants_use_the_grid_weights():
    """Two rows with weights 1 and 3 (normalised to 0.5 and 1.5): mean of [2, 4] weighted is (0.5*2 + 1.5*4)/2."""
    w = torch.tensor([[1.0], [3.0]])
    x = torch.tensor([[[[2.0], [4.0]]]])  # [B=1, C=1, 2, 1]
    assert invariant(x, "mean", w).item() == pytest.approx(3.5)
    assert energy(x, w).item() == pytest.approx((0.5 * 4 + 1.5 * 16) / 2)
    with pytest.raises(ValueError, match="unknown conserved quantity 'energy'"):
        invariant(x, "energy")


def test_the_energy_bound_is_weighted_and_compared_in_double_precision():
    """Rows of 1 and 3 with weights 1 and 3 (normalised 0.5 and 1.5): weighted energy (0.5 + 1.5 * 9) / 2 = 7, plain
    (1 + 9) / 2 = 5, so a bound of 6 flags the prediction only where the weights are applied. An energy 1e-10 above
    0.1 lies above the bound 0.1, though not above 0.1 rounded to float32 (0.1000000015)."""
    w = torch.tensor([[1.0], [3.0]])
    x = torch.tensor([[[[1.0], [3.0]]]])  # [B=1, C=1, 2, 1]
    assert energy(x, w).item() == pytest.approx(7.0) and energy(x).item() == pytest.approx(5.0)
    assert unstable_energy(x, 6.0, w).tolist() == [True]
    assert unstable_energy(x, 6.0).tolist() == [False]
    # per trajectory, summed over channels: trajectory 0 has channel energies 7 and 1, trajectory 1 has 3 and 1; a
    # per-trajectory bound equal to the energy is not exceeded
    pair = torch.tensor([[[[1.0], [3.0]], [[1.0], [1.0]]], [[[0.0], [2.0]], [[2.0], [0.0]]]])  # [B=2, C=2, 2, 1]
    assert energy(pair, w).tolist() == pytest.approx([8.0, 4.0], rel=1e-12)
    assert unstable_energy(pair, torch.tensor([8.0, 3.5]), w).tolist() == [False, True]
    assert unstable_energy(pair, torch.tensor([7.5, 4.0]), w).tolist() == [True, False]
    blown = pair.clone()
    blown[1, 0, 1, 0] = math.nan  # only trajectory 1 has a non-finite value: only its energy is inf
    assert energy(blown, w).tolist() == [pytest.approx(8.0, rel=1e-12), math.inf]
    just_above = torch.full((1, 1, 4), math.sqrt(0.1 + 1e-10), dtype=torch.float64)
    assert energy(just_above).item() > 0.1
    assert unstable_energy(just_above, 0.1).tolist() == [True]
    # per trajectory and channel: a second channel of rows 5 and 1 has the weighted mean (0.5 * 5 + 1.5 * 1) / 2 = 2
    two = invariant(torch.tensor([[[[1.0], [3.0]], [[5.0], [1.0]]]]), "mean", w)
    assert two.shape == (1, 2) and two.flatten().tolist() == pytest.approx([2.5, 2.0], rel=1e-12)
    with pytest.raises(ValueError, match=r"^unknown conserved quantity 'energy'; known: mean, mass$"):
        invariant(x, "energy")
    with pytest.raises(ValueError, match=r"^x must have shape \[B, C, \*space\] \(>= 1 space axis\), got \(2, 3\)$"):
        invariant(torch.zeros(2, 3), "mean")
    with pytest.raises(ValueError, match=r"^x must have shape \[B, C, \*space\] \(>= 1 space axis\), got \(4,\)$"):
        energy(torch.zeros(4))
    with pytest.raises(ValueError, match=r"^weights must have the space shape \(2, 1\), got \(3,\)$"):
        energy(x, torch.ones(3))
    # float32 weights are normalised in double precision: 3 / mean(1, 1, 1, 3) = 2 exactly, 1 / 1.5 not in float32
    row = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]])
    single, double = torch.tensor([1.0, 1.0, 1.0, 3.0]), torch.tensor([1.0, 1.0, 1.0, 3.0], dtype=torch.float64)
    assert torch.equal(energy(row, single), energy(row, double))
    assert torch.equal(invariant(row, "mean", single), invariant(row, "mean", double))


def test_crps_and_spread_of_a_hand_made_ensemble():
    """Members 0 and 2 at one point, truth 0: CRPS = mean|x - y| - sum|x_i - x_j| / (2 M^2) = 1 - 4 / 8 = 0.5;
    unbiased variance 2; ensemble mean 1, so ens_mse 1."""
    samples = torch.tensor([0.0, 2.0]).reshape(2, 1, 1, 1)
    out = ensemble_scores(samples, torch.zeros(1, 1, 1))
    assert out["crps"].item() == pytest.approx(0.5)
    assert out["spread2"].item() == pytest.approx(2.0)
    assert out["ens_mse"].item() == pytest.approx(1.0)
    # sqrt((2 + 1) / 2 * 2 / 1)
    assert spread_skill_ratio(np.array([2.0]), np.array([1.0]), 2) == pytest.approx(math.sqrt(3.0))
    # a point ensemble (all members equal) is the absolute error
    same = ensemble_scores(torch.full((3, 1, 1, 2), 1.5), torch.zeros(1, 1, 2))
    assert same["crps"].item() == pytest.approx(1.5) and same["spread2"].item() == 0.0
    bad = samples.clone()
    bad[1] = math.inf
    assert ensemble_scores(bad, torch.zeros(1, 1, 1))["crps"].item() == math.inf
    with pytest.raises(ValueError, match="M >= 2"):
        ensemble_scores(samples[:1], torch.zeros(1, 1, 1))


def test_ensemble_scores_of_three_members_at_two_unequally_weighted_points():
    """M = 3, truth [0, 1], members [0, 1, 5] and [1, 2, 4], weights 1 and 3 (normalised to 0.5 and 1.5).
    Point 0: CRPS 2 - 20 / 18 = 8/9, unbiased variance 14 / 2 = 7, ensemble mean 2 so squared error 4.
    Point 1: CRPS 4/3 - 12 / 18 = 2/3, variance (42/9) / 2 = 7/3, ensemble mean 7/3 so squared error 16/9.
    Weighted means: CRPS 13/18 (unweighted 7/9), spread2 3.5 (unweighted 14/3, divisor M: 7/3), ens_mse 7/3
    (unweighted 26/9). float32 members are scored in float64."""
    samples = torch.tensor([[0.0, 1.0], [1.0, 2.0], [5.0, 4.0]], dtype=torch.float32).reshape(3, 1, 1, 2)
    target = torch.tensor([0.0, 1.0], dtype=torch.float32).reshape(1, 1, 2)
    out = ensemble_scores(samples, target, weights=torch.tensor([1.0, 3.0]))
    assert all(value.dtype == torch.float64 and value.shape == (1, 1) for value in out.values())
    assert out["crps"].item() == pytest.approx(13 / 18, rel=1e-12)
    assert out["spread2"].item() == pytest.approx(3.5, rel=1e-12)
    assert out["ens_mse"].item() == pytest.approx(7 / 3, rel=1e-12)
    plain = ensemble_scores(samples, target)
    assert [plain[name].item() for name in ("crps", "spread2", "ens_mse")] == pytest.approx([7 / 9, 14 / 3, 26 / 9],
                                                                                           rel=1e-12)
    # each trajectory is scored on its own: a second one, a point ensemble at 1.5 against truth [0, 1], has CRPS and
    # ens_mse (0.5 * 1.5^2 or 1.5 + 1.5 * 0.5^2 or 0.5) / 2 = 0.75 and no spread
    pair = ensemble_scores(torch.cat([samples, torch.full_like(samples, 1.5)], dim=1), target.expand(2, 1, 2),
                           weights=torch.tensor([1.0, 3.0]))
    assert pair["crps"].flatten().tolist() == pytest.approx([13 / 18, 0.75], rel=1e-12)
    assert pair["spread2"].flatten().tolist() == pytest.approx([3.5, 0.0], rel=1e-12)
    assert pair["ens_mse"].flatten().tolist() == pytest.approx([7 / 3, 0.75], rel=1e-12)
    # a member that blew up makes only its own trajectory's scores infinite
    blown = torch.cat([samples, torch.full_like(samples, 1.5)], dim=1)
    blown[2, 1, 0, 1] = math.nan
    broken = ensemble_scores(blown, target.expand(2, 1, 2), weights=torch.tensor([1.0, 3.0]))
    for name in ("crps", "spread2", "ens_mse"):
        assert broken[name][0].item() == pair[name][0].item() and broken[name][1].item() == math.inf, name
    # two members are enough; members that do not match the target's shape are refused, naming both shapes
    assert ensemble_scores(samples[:2], target)["spread2"].item() == pytest.approx((0.5 + 0.5) / 2, rel=1e-12)
    with pytest.raises(ValueError, match=r"^samples must be \[M >= 2, \*target.shape\] for target \(1, 1, 2\), "
                                         r"got \(3, 1, 1, 3\)$"):
        ensemble_scores(torch.zeros(3, 1, 1, 3), target)


def test_summary_reports_bands_drift_and_ensemble_scores():
    n, steps = 2, 4
    per_step = {
        "mse": np.full((n, steps, 1), 0.04), "nrmse": np.full((n, steps, 1), 0.2),
        "vrmse": np.full((n, steps, 1), 0.3), "corr": np.full((n, steps, 1), 0.99),
        "mse_low": np.full((n, steps, 1), 0.01), "mse_mid": np.full((n, steps, 1), 0.04),
        "mse_high": np.full((n, steps, 1), 0.09),
        "drift": np.array([[[0.0], [0.1], [0.2], [0.3]], [[0.0], [0.3], [0.2], [0.1]]]),
        "crps": np.full((n, steps, 1), 0.5), "spread2": np.full((n, steps, 1), 2.0),
        "ens_mse": np.full((n, steps, 1), 1.0),
    }
    summary, curves = summarized(per_step, np.zeros((n, steps), bool), 0.5, gmean_steps=2, n_members=2)
    assert summary["spectral_rmse_low"] == pytest.approx(0.1) and summary["spectral_rmse_high"] == pytest.approx(0.3)
    assert summary["one_step_spectral_rmse_mid"] == pytest.approx(0.2)
    assert summary["conservation_drift_final"] == pytest.approx(0.2)  # (0.3 + 0.1) / 2
    assert summary["conservation_drift_max"] == pytest.approx(0.2)
    assert summary["crps_mean"] == pytest.approx(0.5) and summary["n_members"] == 2
    assert summary["spread_skill_ratio"] == pytest.approx(math.sqrt(3.0))
    assert curves["spread_skill"] == pytest.approx([math.sqrt(3.0)] * steps)
    assert curves["spectral_rmse_mid"] == pytest.approx([0.2] * steps)


def test_a_blown_up_trajectory_keeps_its_record_and_the_others_go_on():
    """Trajectory 1 blows up at step 3 (index 2): its first two steps still count, trajectory 0 is untouched."""
    nrmse = np.array([[[0.1], [0.1], [0.1], [0.1]], [[0.2], [0.2], [np.inf], [np.inf]]])
    corr = np.array([[[0.99]] * 4, [[0.95], [0.9], [0.0], [0.0]]])
    per_step = {"mse": nrmse**2, "nrmse": nrmse, "vrmse": nrmse, "corr": corr}
    flags = np.array([[False] * 4, [False, False, True, True]])
    summary, curves = summarized(per_step, flags, 1.0, gmean_steps=2)
    assert summary["one_step_nrmse"] == pytest.approx(0.15)
    assert summary["nrmse_gmean"] == pytest.approx(0.15)  # the first two steps are finite for both
    assert summary["vrmse_mean"] is None  # a diverged trajectory has no finite mean error
    assert curves["nrmse"][:2] == pytest.approx([0.15, 0.15]) and curves["nrmse"][2] is None
    assert summary["stable_fraction"] == 0.5
    assert summary["stable_horizon_median"] == pytest.approx(3.0)  # median of 4 and 2 steps x 1.0
    assert summary["corr_time_median_0.8"] == pytest.approx(3.0)


def test_bootstrap_intervals_are_reproducible_and_bracket_the_estimate():
    rng = np.random.default_rng(3)
    n, steps = 12, 6
    nrmse = rng.uniform(0.1, 0.5, size=(n, steps, 1))
    per_step = {"mse": nrmse**2, "nrmse": nrmse, "vrmse": nrmse, "corr": 1 - nrmse}
    flags = np.zeros((n, steps), bool)
    summary, _ = summarized(per_step, flags, 0.5)
    a = bootstrapped(per_step, flags, 0.5, n_resamples=300, seed=1)
    b = bootstrapped(per_step, flags, 0.5, n_resamples=300, seed=1)
    assert a == b
    assert "time_ceiling" not in a and "nrmse_gmean_steps" not in a
    low, high = a["one_step_nrmse"]
    assert low < summary["one_step_nrmse"] < high
    # identical trajectories leave nothing to resample: zero width
    same = {k: np.repeat(v[:1], n, axis=0) for k, v in per_step.items()}
    low, high = bootstrapped(same, flags, 0.5, n_resamples=50)["corr_time_0.8"]
    assert low == high
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrapped(per_step, flags, 0.5, n_resamples=0)


# ----------------------------------------------------------------------------------------------------
# reductions: ensemble keys, band steps, the drift's channels, float64 and the shapes of the inputs
# ----------------------------------------------------------------------------------------------------


def _with_ensemble_scores(per_step: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`per_step` plus constant ensemble scores of its shape: CRPS 0.5, spread2 2, ens_mse 1."""
    shape = per_step["mse"].shape
    return {**per_step, "crps": np.full(shape, 0.5), "spread2": np.full(shape, 2.0), "ens_mse": np.full(shape, 1.0)}


def test_ensemble_scores_are_reported_for_two_members_or_more_and_only_where_they_were_scored():
    """A single member (the default, or said) has no ensemble keys and no spread-skill curve even where the ensemble
    scores are given; two members without ensemble scores (a deterministic model) have none either, and no error."""
    flags = np.zeros((2, 3), dtype=bool)
    ensemble = _with_ensemble_scores(_hand_per_step())
    two, two_curves = summarized(ensemble, flags, 0.25, n_members=2)
    assert two["n_members"] == 2 and two["crps_mean"] == pytest.approx(0.5)
    assert two["spread_skill_ratio"] == pytest.approx(math.sqrt(3.0))
    assert two_curves["spread_skill"] == pytest.approx([math.sqrt(3.0)] * 3)
    ensemble_keys = {"n_members", "crps_mean", "spread_skill_ratio"}
    for single, curves in (summarized(ensemble, flags, 0.25), summarized(ensemble, flags, 0.25, n_members=1)):
        assert not ensemble_keys & set(single) and "spread_skill" not in curves
        assert curves["crps"] == pytest.approx([0.5] * 3)  # the scores themselves are still curves
    deterministic, curves = summarized(_hand_per_step(), flags, 0.25, n_members=2)
    assert not ensemble_keys & set(deterministic) and "spread_skill" not in curves
    assert deterministic["one_step_nrmse"] == pytest.approx(0.1)


def test_one_step_band_errors_are_those_of_the_first_predicted_step():
    """Band energies that grow over steps (low 0.01, 0.04, 0.09, ...): the one-step RMSE is step 1's, sqrt(0.01) =
    0.1 (step 2 would give 0.2), and the aggregate over gmean_steps=2 is sqrt((0.01 + 0.04) / 2)."""
    per_step = _hand_per_step()
    growth = (np.arange(1, 4) ** 2)[None, :, None] * np.ones((2, 3, 2))
    for name, scale in (("mse_low", 0.01), ("mse_mid", 0.04), ("mse_high", 0.09)):
        per_step[name] = scale * growth
    summary, curves = summarized(per_step, np.zeros((2, 3), dtype=bool), 0.25, gmean_steps=2)
    assert summary["one_step_spectral_rmse_low"] == pytest.approx(0.1, rel=1e-12)
    assert summary["one_step_spectral_rmse_high"] == pytest.approx(0.3, rel=1e-12)
    assert summary["spectral_rmse_mid"] == pytest.approx(math.sqrt((0.04 + 0.16) / 2), rel=1e-12)
    assert curves["spectral_rmse_low"] == pytest.approx([0.1, 0.2, 0.3], rel=1e-12)


def test_the_drift_may_cover_fewer_channels_than_the_other_metrics_wherever_it_comes():
    """Two channels, one conserved: a one-channel drift is accepted before or after the other metrics, while a drift
    over other steps is refused, naming the shape it should have."""
    drift = np.array([[[0.0], [0.1], [0.4]], [[0.0], [0.3], [0.2]]])
    flags = np.zeros((2, 3), dtype=bool)
    for per_step in ({**_hand_per_step(), "drift": drift}, {"drift": drift, **_hand_per_step()}):
        summary, curves = summarized(per_step, flags, 0.25)
        assert summary["conservation_drift_final"] == pytest.approx(0.3) and curves["drift"] == pytest.approx(
            [0.0, 0.2, 0.3])
        assert summary["conservation_drift_max"] == pytest.approx(0.3)
    for per_step in ({**_hand_per_step(), "drift": drift[:, :2]}, {"drift": drift[:, :2], **_hand_per_step()}):
        with pytest.raises(ValueError) as excinfo:
            summarized(per_step, flags, 0.25)
        assert str(excinfo.value) == "per_step['drift'] has shape (2, 2, 1), expected (2, 3, 1) like the others"


def test_overflowing_means_over_trajectories_emit_no_warning():
    """One channel, so a per-trajectory error of 1e308 is finite until the mean over two trajectories overflows: the
    summary has no value there and says nothing."""
    nrmse = np.full((2, 3, 1), 0.5)
    per_step = {"mse": nrmse**2, "nrmse": nrmse, "vrmse": nrmse, "corr": np.ones((2, 3, 1))}
    per_step["mse"][:, 1] = 1e308
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summary, curves = summarized(per_step, np.zeros((2, 3), dtype=bool), 0.25)
    assert curves["mse"] == [0.25, None, 0.25] and summary["one_step_mse"] == pytest.approx(0.25)


def test_spread_skill_ratio_is_float64_and_silent_where_the_ensemble_mean_is_exact():
    """float32 scores are averaged in float64 (their float32 means are off by ~1e-8 here); an exact ensemble mean
    (ens_mse 0) gives inf for a spread and NaN for none, without a floating-point warning."""
    spread2 = np.array([[0.1, 1.0, 0.0], [0.2, 1.0, 0.0], [0.7, 1.0, 0.0]], dtype=np.float32)
    ens_mse = np.array([[0.3, 0.0, 0.0], [0.3, 0.0, 0.0], [0.1, 0.0, 0.0]], dtype=np.float32)
    s2, e2 = spread2[:, 0].astype(np.float64).mean(), ens_mse[:, 0].astype(np.float64).mean()
    assert abs(float(spread2[:, 0].mean()) - s2) > 1e-9 and abs(float(ens_mse[:, 0].mean()) - e2) > 1e-9
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ratio = spread_skill_ratio(spread2, ens_mse, 2)
    assert ratio.dtype == np.float64
    assert ratio[0] == pytest.approx(math.sqrt(1.5 * s2 / e2), rel=1e-12)
    assert ratio[1] == math.inf and math.isnan(ratio[2])


def test_step_times_are_taken_in_float64_and_in_any_shape_with_one_per_trajectory():
    """float32 step times [0.1, 0.2, 0.7] average to 0.33333334 in float32: the ceiling is 3 steps x their float64
    mean. A column of step times is the same as a flat list, for both high-correlation times."""
    corr = np.array([[0.5, 0.99, 0.5], [0.99, 0.99, 0.5], [0.99, 0.99, 0.99]])
    per_step = {"mse": np.ones((3, 3, 1)), "nrmse": np.ones((3, 3, 1)), "vrmse": np.ones((3, 3, 1)),
                "corr": corr[:, :, None]}
    step_time = np.array([0.1, 0.2, 0.7], dtype=np.float32)
    mean = step_time.astype(np.float64).mean()
    assert abs(float(step_time.mean()) - mean) > 1e-9
    summary, curves = summarized(per_step, np.zeros((3, 3), dtype=bool), step_time, thresholds=(0.8,))
    assert summary["time_ceiling"] == pytest.approx(3 * mean, rel=1e-12)
    assert curves["time"] == pytest.approx([mean, 2 * mean, 3 * mean], rel=1e-12)
    flat = np.array([0.1, 0.2, 0.7])
    # first crossings at indices 0, 2 and never (3): times 0, 0.4, 2.1 -> median 0.4 (the median of all nine
    # products of a crossing and a step time would be 0.3)
    assert first_crossing_time_median(corr, 0.8, flat) == pytest.approx(0.4)
    assert first_crossing_time_median(corr, 0.8, flat[:, None]) == pytest.approx(0.4)
    assert high_correlation_time(corr, 0.8, flat[:, None]) == pytest.approx(high_correlation_time(corr, 0.8, flat))


def test_a_float32_correlation_is_averaged_over_trajectories_in_float64():
    """Two float32 correlations one float32 step apart: their float32 mean rounds down to the lower one, their exact
    mean lies half a step above it. A threshold between the two counts the step above it only in float64."""
    low = np.float32(0.8000001)
    corr = np.array([[low], [np.nextafter(low, np.float32(1))]], dtype=np.float32)
    exact = corr.astype(np.float64).mean()
    assert corr.mean() == low and exact > float(low)
    threshold = (float(low) + exact) / 2
    assert high_correlation_time(corr, threshold, 1.0) == 1.0
    assert high_correlation_time(corr.astype(np.float64), threshold, 1.0) == 1.0


def test_a_curve_of_any_shape_is_taken_as_its_steps_and_the_well_needs_one_step():
    """The geometric mean flattens its curve (a [1, steps] row counts its first n_steps steps, not the row); The
    Well's windows refuse a rollout without steps, naming the count."""
    row = np.array([[1.0, 4.0, 16.0]])
    assert geometric_mean_over_steps(row, 2) == pytest.approx(2.0, rel=1e-12)
    with pytest.raises(ValueError) as excinfo:
        reductions.well_windows(0)
    assert str(excinfo.value) == "a rollout has at least one step, got n_steps=0"
