"""Rollout metrics against values worked out by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from pdebench.rollout.metrics import (
    geometric_mean_over_steps,
    high_correlation_time,
    stable_steps,
    step_errors,
    summarize_rollout,
    unstable,
)


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
    pderefiner, median_first = high_correlation_time(corr, 0.8, step_time)
    # trajectory means: [0.97, 0.925, 0.775, 0.86, 0.83, 0.45] -> 4 steps > 0.8 -> 4 * 0.5 = 2.0
    assert pderefiner == pytest.approx(2.0)
    # first crossings: index 2 -> 1.0, index 5 -> 2.5; median = 1.75
    assert median_first == pytest.approx(1.75)


def test_high_correlation_time_edges():
    # exactly at the threshold counts as a drop (strictly above is required)
    assert high_correlation_time(np.array([[0.8, 0.9]]), 0.8, np.array([2.0])) == (2.0, 0.0)
    # never drops: n_steps * step_time; per-trajectory step times
    never = np.full((2, 3), 0.99)
    pderefiner, median_first = high_correlation_time(never, 0.8, np.array([1.0, 3.0]))
    assert pderefiner == pytest.approx(3 * 2.0)  # 3 steps * mean step time 2.0
    assert median_first == pytest.approx((3.0 + 9.0) / 2)
    # NaN correlation counts as 0
    nan_corr = np.array([[0.9, np.nan, 0.9]])
    assert high_correlation_time(nan_corr, 0.8, np.array([1.0])) == (2.0, 1.0)


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
    summary, curves = summarize_rollout(
        _hand_per_step(), np.zeros((2, 3), dtype=bool), np.array([0.25, 0.25]), gmean_steps=100
    )
    assert set(summary) == {
        "corr_time_0.8", "corr_time_0.9", "corr_time_0.95",
        "corr_time_median_0.8", "corr_time_median_0.9", "corr_time_median_0.95",
        "one_step_nrmse", "one_step_mse", "nrmse_gmean", "nrmse_gmean_steps",
        "vrmse_mean", "stable_horizon_median", "stable_fraction",
    }
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

    summary2, _ = summarize_rollout(_hand_per_step(), np.zeros((2, 3), bool), 0.25, gmean_steps=2)
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
    summary, curves = summarize_rollout(per_step, np.stack(flags, axis=1), np.array([0.5, 0.5]))
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
        summarize_rollout({k: v for k, v in per_step.items() if k != "corr"}, np.zeros((2, 3), bool), 1.0)
    with pytest.raises(ValueError):
        summarize_rollout(per_step, np.zeros((2, 4), bool), 1.0)


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
    summary, _ = summarize_rollout(per_step, flags, step_time, thresholds=(0.8,))
    # first crossings in time: 2 * 1.0 = 2.0, 4 * 0.5 = 2.0, 0 * 4.0 = 0 -> median 2.0 (mean 1.33; shared 1.83 -> 3.67)
    assert summary["corr_time_median_0.8"] == pytest.approx(2.0)
    # stable steps 3, 4, 1 -> times 3.0, 2.0, 4.0 -> median 3.0 (mean 3.0 too, but shared step 1.83: 5.5)
    assert summary["stable_horizon_median"] == pytest.approx(3.0)
    # PDE-Refiner count: mean corr per step [0.88, 0.9, 0.783, 0.75] -> 2 steps x mean step time 1.833
    assert summary["corr_time_0.8"] == pytest.approx(2 * 5.5 / 3)
    flags[0, 3] = False  # stable steps 4, 4, 1 -> times 4.0, 2.0, 4.0: median 4.0, mean 3.33
    summary, _ = summarize_rollout(per_step, flags, step_time, thresholds=(0.8,))
    assert summary["stable_horizon_median"] == pytest.approx(4.0)
