"""Proof that the seams hold beyond 1-D KS: a synthetic 2-D periodic dataset with two fields and a parameter goes
through training, evaluation and the leaderboard by the public functions, and sphere metrics use area weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic import write_dataset

from pdebench.config import BenchmarkConfig, RolloutConfig
from pdebench.data.dataset import TrajectoryDataset
from pdebench.data.grid import Grid
from pdebench.leaderboard import build_tables, leaderboard_rows, to_markdown, write_leaderboard
from pdebench.rollout.evaluation import evaluate
from pdebench.rollout.scoring import ScoringSpec, score, summarize
from pdebench.training.run import train

GRID_2D = Grid.uniform("periodic", (16, 16))


def advected_waves(rng: np.random.Generator, n_traj: int, n_frames: int):
    """u: a random smooth wave moved one cell in x per frame; v: -u scaled by the parameter `a` ~ U[0.5, 1.5]."""
    x, y = np.meshgrid(*(np.arange(16) * 2 * np.pi / 16,) * 2, indexing="ij")
    a = rng.uniform(0.5, 1.5, n_traj)
    u = np.empty((n_traj, n_frames, 16, 16))
    for i in range(n_traj):
        kx, ky = rng.integers(1, 3, size=2)
        wave = np.sin(kx * x + ky * y + rng.uniform(0, 2 * np.pi))
        for t in range(n_frames):
            u[i, t] = np.roll(wave, t, axis=0)
    return {"u": u, "v": -a[:, None, None, None] * u}, {"a": a}


@pytest.fixture(scope="module")
def root_2d(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data2d")
    write_dataset(root, "waves", GRID_2D, ("u", "v"), ("a",), advected_waves,
                  {"train": (8, 10), "valid": (2, 10), "test": (3, 10)},
                  {"frame_stride": 1, "headline": "vrmse_mean", "headline_goal": "min", "conserved": None})
    return root


@pytest.mark.slow
def test_train_evaluate_and_rank_a_2d_fno(compose_cfg, root_2d: Path, tmp_path: Path) -> None:
    data = ["data=ks", "data.pde=waves", "data.preset=tiny", f"data.root={root_2d}", "data.batch_size=8"]
    best = train(compose_cfg("train", [
        *data, "model=fno", "model.n_modes=[8,8]", "model.hidden_channels=16", "model.n_layers=2",
        "trainer.max_epochs=15", "trainer.enable_progress_bar=false", "optim.lr=5e-3", "validation.rollout_steps=3",
        f"run_dir={tmp_path}/run",
    ]))
    results = tmp_path / "results"
    common = [f"data.root={root_2d}", f"results_dir={results}", "rollout.device=cpu"]
    fno = evaluate(compose_cfg("evaluate", [f"ckpt={best}", *common]), progress=False).content
    persistence = evaluate(compose_cfg("evaluate", ["model=persistence", *data, *common]), progress=False).content
    for content in (fno, persistence):
        assert content["dataset"] == "waves-tiny" and content["n_trajectories"] == 3 and content["n_steps"] == 9
    assert fno["summary"]["one_step_nrmse"] < persistence["summary"]["one_step_nrmse"]

    rows = leaderboard_rows([fno, persistence])["waves-tiny"]
    assert [row["label"] for row in rows] == ["fno-w16", "persistence"]  # sorted by vrmse_mean, lower first
    assert rows[0]["headline"] == ("vrmse_mean", "asc")
    assert "Sorted by `vrmse_mean` (lower is better)" in to_markdown(build_tables([fno, persistence])[0])
    written = write_leaderboard([fno, persistence], tmp_path / "board")
    assert {"waves-tiny.md", "waves-tiny.csv", "waves-tiny_corr.png", "index.html"} <= {p.name for p in written}


SPHERE = Grid.uniform("sphere", (8, 16))


def smooth_height(rng: np.random.Generator, n_traj: int, n_frames: int):
    lat, lon = np.meshgrid(*(np.deg2rad(c) for c in SPHERE.coordinates), indexing="ij")
    h = np.broadcast_to(10 + np.cos(lat) * np.sin(lon), (n_traj, n_frames, *lat.shape))  # steady: persistence is exact
    return {"h": h}, {}


class PerturbRows:
    """Persistence plus 1.0 on the given latitude rows: the same error, placed near the poles or the equator."""

    history, bundle = 1, 1

    def __init__(self, rows: list[int]) -> None:
        self.rows = rows

    def __call__(self, frames: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        out = frames[:, :, -1:].clone()
        out[..., self.rows, :] += 1.0
        return out


def test_sphere_metrics_weight_cells_by_area(tmp_path: Path) -> None:
    out = write_dataset(tmp_path, "globe", SPHERE, ("h",), (), smooth_height,
                        {"train": (2, 4), "valid": (2, 4), "test": (3, 4)},
                        {"frame_stride": 1, "headline": "vrmse_mean", "headline_goal": "min", "conserved": None})
    dataset = TrajectoryDataset(out / "test.h5", frame_stride=1)
    assert dataset.file.grid == SPHERE and dataset.file.grid.periodic == (False, True)
    rollout, bench = RolloutConfig(), BenchmarkConfig()  # the default settings of an evaluation

    def summary(stepper: PerturbRows) -> dict:
        scores = score(stepper, dataset, batch_size=rollout.batch_size, progress=False,
                       spec=ScoringSpec(energy_factor=bench.stability_energy_factor))
        return summarize(scores, rollout.thresholds, bench.gmean_steps, rollout.windows)[0]

    polar, equatorial = summary(PerturbRows([0, 7])), summary(PerturbRows([3, 4]))
    # rows 0 and 7 hold (1 - sin 67.5°) / sin 22.5° = 0.20 of the area of rows 3 and 4 on an 8-row equiangular
    # grid; unweighted, both errors would be equal
    assert polar["one_step_mse"] / equatorial["one_step_mse"] == pytest.approx(0.199, abs=0.002)
    weights = SPHERE.weights()
    assert weights.mean() == pytest.approx(1.0) and weights[0, 0] < weights[3, 0]
    expected = weights[[0, 7]].sum() / weights.size  # mean of the squared error 1 over the perturbed cells
    assert polar["one_step_mse"] == pytest.approx(expected, rel=1e-3)
