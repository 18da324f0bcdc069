"""The stochastic path end to end: an (untrained) PDE-Refiner on ks-tiny evaluated with `rollout.ensemble=4`. The
result's CRPS, spread-skill and deterministic columns are recomputed here from the members, rolled out again from
the same seed, with formulas of their own: the CRPS as the integral of the squared difference of the ensemble's and
the truth's distribution functions."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from checkpoints import save_untrained_checkpoint

from pdebench.data.batch import collate
from pdebench.data.dataset import TrajectoryDataset
from pdebench.forecast.checkpoint import load_forecaster
from pdebench.rollout.evaluation import evaluate
from pdebench.rollout.reductions import FewTrajectoriesWarning

MEMBERS = 4
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def refiner_checkpoint(compose_cfg, data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `pdebench-train` would write for a small PDE-Refiner (U-Net backbone of width 8, 2 refinement steps) on
    ks-tiny before its first step; built as `train` builds the module, without a training run."""
    run_dir = tmp_path_factory.mktemp("refiner")
    cfg = compose_cfg("train", [
        "data=ks", "data.preset=tiny", f"data.root={data_root}", "model=pderefiner", "objective=pderefiner",
        "++model.backbone={name:unet,hidden_channels:8,channel_multipliers:[1,2],blocks_per_level:1,norm_groups:4}",
        "model.refinement_steps=2", "seed=5", "label=refiner-untrained", f"run_dir={run_dir}",
    ])
    return save_untrained_checkpoint(cfg, data_root / "ks-tiny", run_dir / "best.ckpt", train_time_s=1.0)


def members_again(checkpoint: Path, dataset: TrajectoryDataset, n_steps: int, seed: int) -> np.ndarray:
    """The members `[M, n_steps, B, C, *space]` float64 the evaluation draws: the global random state seeded with
    `seed` before the one batch of all trajectories, each member rolled on from its own previous sample."""
    forecaster = load_forecaster(checkpoint).forecaster.eval()
    batch = collate([dataset[i] for i in range(len(dataset))])
    history = forecaster.history
    window = batch.frames[:, :, :history].repeat(MEMBERS, *([1] * (batch.frames.dim() - 1)))
    cond = batch.cond.repeat(MEMBERS, 1)
    frames = []
    torch.manual_seed(seed)
    with torch.inference_mode():
        while len(frames) < n_steps:
            out = forecaster.sample(window, cond, 1)[0]  # [M * B, C, bundle, *space], member-major
            frames += [out[:, :, j] for j in range(out.shape[2])]
            window = torch.cat([window, out], dim=2)[:, :, -history:]
    stacked = torch.stack(frames[:n_steps]).double().numpy()  # [n_steps, M * B, C, *space]
    b = batch.frames.shape[0]
    return stacked.reshape(n_steps, MEMBERS, b, *stacked.shape[2:]).swapaxes(0, 1)


def crps_by_integral(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """CRPS of the ensemble `x [M, ...]` against `y [...]`: the integral over t of (F_M(t) - 1{t >= y})^2, exact on
    the pieces between the sorted values (F_M the members' empirical distribution function)."""
    m = x.shape[0]
    values = np.concatenate([x, y[None]], axis=0)
    order = np.argsort(values, axis=0, kind="stable")
    z = np.take_along_axis(values, order, axis=0)
    truth_at = np.argmax(order == m, axis=0)  # position of y among the sorted values
    total = np.zeros_like(y)
    for j in range(m):  # the piece [z_j, z_{j+1}]
        past_truth = j >= truth_at
        members_below = (j + 1) - past_truth
        total += (members_below / m - past_truth) ** 2 * (z[j + 1] - z[j])
    return total


def test_an_ensemble_scores_its_mean_and_crps_and_spread_skill_from_its_members(
    compose_cfg, data_root: Path, tmp_path: Path, refiner_checkpoint: Path
) -> None:
    with pytest.warns(FewTrajectoriesWarning, match="^4 test trajectories are too few"):  # ks-tiny's test split
        result = evaluate(compose_cfg("evaluate", [
            f"ckpt={refiner_checkpoint}", f"data.root={data_root}", f"results_dir={tmp_path / 'results'}",
            "rollout.device=cpu", f"rollout.ensemble={MEMBERS}",
        ]), progress=False)
    content = json.loads(result.path.read_text())  # the result file as written
    summary, curves = content["summary"], content["curves"]
    n_steps, gmean = content["n_steps"], summary["nrmse_gmean_steps"]
    assert (content["n_trajectories"], n_steps, gmean, summary["n_members"]) == (4, 11, 11, MEMBERS)
    assert content["scoring"]["ensemble"] == MEMBERS and content["scoring"]["ensemble_scored"] == "mean"
    assert content["intervals"]["crps_mean"] is None and content["intervals"]["spread_skill_ratio"] is None

    dataset = TrajectoryDataset(data_root / "ks-tiny" / "test.h5", frame_stride=4)
    x = members_again(refiner_checkpoint, dataset, n_steps, seed=0)  # [M, T, B, C, X]
    history = 1
    y = np.stack([dataset[i].frames.double().numpy() for i in range(len(dataset))])  # [B, C, J, X]
    y = np.moveaxis(y[:, :, history : history + n_steps], 2, 0)  # [T, B, C, X]

    crps = crps_by_integral(x, y).mean(axis=-1)  # [T, B, C]: spatial mean (uniform grid)
    assert summary["crps_mean"] == pytest.approx(crps[:gmean].mean(), rel=1e-9)
    assert curves["crps"] == pytest.approx(crps.mean(axis=(1, 2)).tolist(), rel=1e-9)

    mean = x.mean(axis=0)  # [T, B, C, X]
    spread2 = x.var(axis=0, ddof=1).mean(axis=-1).mean(axis=-1)  # [T, B]
    ens_mse = ((mean - y) ** 2).mean(axis=-1).mean(axis=-1)  # [T, B]
    ratio = math.sqrt((MEMBERS + 1) / MEMBERS * spread2[:gmean].mean() / ens_mse[:gmean].mean())
    assert summary["spread_skill_ratio"] == pytest.approx(ratio, rel=1e-9)
    per_step_ratio = np.sqrt((MEMBERS + 1) / MEMBERS * spread2.mean(axis=1) / ens_mse.mean(axis=1))
    assert curves["spread_skill"] == pytest.approx(per_step_ratio.tolist(), rel=1e-9)

    # the deterministic columns score the ensemble mean, not a member
    assert summary["one_step_mse"] == pytest.approx(ens_mse[0].mean(), rel=1e-9)
    assert curves["mse"] == pytest.approx(ens_mse.mean(axis=1).tolist(), rel=1e-9)
    first_member = ((x[0] - y) ** 2).mean(axis=-1).mean(axis=-1)  # [T, B]
    # ... which a member's curve would not match: it departs from the mean's by far more than the 1e-9 held above
    gap = np.abs(first_member.mean(axis=1) - ens_mse.mean(axis=1)) / ens_mse.mean(axis=1)
    assert gap.max() > 1e-4
    nrmse = np.sqrt(((mean - y) ** 2).sum(axis=-1)) / np.sqrt((y**2).sum(axis=-1))  # [T, B, C] (eps aside)
    assert summary["one_step_nrmse"] == pytest.approx(nrmse[0].mean(), rel=1e-6)
