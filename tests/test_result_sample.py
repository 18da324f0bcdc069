"""The result file's `sample`: one field of test trajectory 0 rolled out next to the truth, subsampled to at most
64 frames and 128 points per axis, equal to the stepper's own rollout, kept by one rank only, and drawn by the
leaderboard."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic import write_dataset
from torch import Tensor

from pdebench.config import BenchmarkConfig
from pdebench.data.dataset import TrajectoryDataset
from pdebench.data.grid import Grid
from pdebench.forecast.rollout import rollout
from pdebench.leaderboard import make_leaderboard
from pdebench.leaderboard.sample_plot import sample_figure
from pdebench.rollout.evaluation import evaluate, evaluate_all, shard
from pdebench.rollout.scoring import (
    SAMPLE_MAX_FRAMES,
    SAMPLE_MAX_POINTS,
    Scores,
    ScoringSpec,
    sample_strides,
    score,
)

BENCH = {"frame_stride": 1, "headline": "vrmse_mean", "headline_goal": "min", "conserved": None}
SPEC = ScoringSpec(energy_factor=BenchmarkConfig().stability_energy_factor)  # a PDE's default scoring


class ShiftMix:
    """A toy stepper of history 2: the mean of the last frame and the previous one shifted by one grid point (along
    the last axis), plus the trajectory's parameter `a`. Elementwise, so any batch gives bitwise the same rows."""

    history, bundle = 2, 1

    def __call__(self, frames: Tensor, cond: Tensor) -> Tensor:
        mixed = 0.5 * (frames[:, :, -1] + torch.roll(frames[:, :, -2], 1, dims=-1))
        return (mixed + cond[:, 0].reshape(-1, *[1] * (mixed.dim() - 1)))[:, :, None]


def random_fields(space: tuple[int, ...]):
    def make(rng: np.random.Generator, n_traj: int, n_frames: int):
        fields = {name: rng.standard_normal((n_traj, n_frames, *space)) for name in ("u", "v")}
        return fields, {"a": rng.uniform(-0.1, 0.1, n_traj)}

    return make


@pytest.fixture(scope="module", params=[(256,), (130, 6)], ids=["1d-256", "2d-130x6"])
def toy_split(request, tmp_path_factory) -> TrajectoryDataset:
    """3 test trajectories of 72 frames: 70 predicted steps after a history of 2, more than the sample keeps."""
    space = request.param
    out = write_dataset(tmp_path_factory.mktemp("toy"), "toy", Grid.uniform("periodic", space), ("u", "v"), ("a",),
                        random_fields(space), {"train": (2, 4), "valid": (2, 4), "test": (3, 72)}, BENCH)
    return TrajectoryDataset(out / "test.h5", frame_stride=1)


def test_strides_keep_at_most_64_frames_and_128_points_per_axis() -> None:
    assert sample_strides(10, (64,)) == (1, (1,))
    assert sample_strides(64, (128,)) == (1, (1,))
    assert sample_strides(65, (129,)) == (2, (2,))  # 33 frames of 65 points
    assert sample_strides(200, (256,)) == (4, (2,))  # 50 frames of 128 points
    # 2-D: 128 x 128 points per frame leave room for 4 frames within 65536 values per array
    assert sample_strides(100, (256, 512)) == (25, (2, 4))
    for n_steps, space in ((1000, (1000,)), (7, (3, 300)), (500, (64, 64))):
        t, s = sample_strides(n_steps, space)
        assert len(range(0, n_steps, t)) <= SAMPLE_MAX_FRAMES
        assert all(len(range(0, n, k)) <= SAMPLE_MAX_POINTS for n, k in zip(space, s, strict=True))


def test_the_sample_is_the_steppers_rollout_of_the_lowest_trajectory(toy_split: TrajectoryDataset) -> None:
    stepper = ShiftMix()
    scores = score(stepper, toy_split, [2, 1], batch_size=2, spec=SPEC, progress=False)
    sample = scores.sample
    assert sample is not None and sample.trajectory == 1 and sample.channel == 0
    traj = toy_split[1]
    frames = traj.frames.double()  # [C, T, *space]
    n_steps = toy_split.n_model_frames - stepper.history
    expected = torch.stack([out[0, 0] for out in rollout(stepper, frames[None, :, :2], traj.cond[None].double(),
                                                         n_steps)])  # [n_steps, *space], field u
    t, s = sample_strides(n_steps, frames.shape[2:])
    assert (t, s) == (sample.time_stride, sample.space_stride) and t > 1 and s[0] > 1
    thin = (slice(None, None, t), *(slice(None, None, k) for k in s))
    assert sample.pred.dtype == np.float32 and sample.pred.shape == sample.true.shape
    assert sample.pred.shape[0] <= SAMPLE_MAX_FRAMES and max(sample.pred.shape[1:]) <= SAMPLE_MAX_POINTS
    np.testing.assert_allclose(sample.pred, expected[thin].numpy().astype(np.float32), rtol=1e-6, atol=1e-6)
    # the first stored frame is the first prediction (model frame `history`), never an input frame
    np.testing.assert_array_equal(sample.true, frames[0, 2:][thin].numpy().astype(np.float32))
    assert sample.step[0] == 1 and sample.step.tolist() == list(range(1, n_steps + 1, t))
    step_time = float(traj.step_time)
    np.testing.assert_allclose(sample.time, sample.step * step_time)
    assert sample.time[0] == pytest.approx(step_time)


def test_only_the_rank_holding_trajectory_0_keeps_it_and_the_join_has_it(toy_split: TrajectoryDataset) -> None:
    stepper = ShiftMix()
    whole = score(stepper, toy_split, batch_size=2, spec=SPEC, progress=False)
    parts = [score(stepper, toy_split, shard(len(toy_split), rank, 2), batch_size=2, spec=SPEC, progress=False,
                   sample_trajectory=0) for rank in range(2)]
    assert parts[0].sample is not None and parts[1].sample is None
    joined = Scores.join(parts[::-1])
    assert whole.sample is not None and joined.sample is not None and joined.sample.trajectory == 0
    np.testing.assert_array_equal(joined.sample.pred, whole.sample.pred)
    np.testing.assert_array_equal(joined.sample.true, whole.sample.true)
    for name in whole.per_step:  # keeping a sample changes no metric
        np.testing.assert_array_equal(whole.per_step[name],
                                      score(stepper, toy_split, batch_size=2, spec=SPEC, progress=False,
                                            keep_sample=False).per_step[name])
    assert score(stepper, toy_split, batch_size=2, spec=SPEC, progress=False, keep_sample=False).sample is None


def test_persistence_result_stores_the_sample_and_the_leaderboard_draws_it(compose_cfg, data_root: Path,
                                                                          tmp_path: Path) -> None:
    results = tmp_path / "results"
    result = evaluate(compose_cfg("evaluate", [f"data.root={data_root}", f"results_dir={results}",
                                               "rollout.device=cpu", "data=ks", "data.preset=tiny",
                                               "model=persistence"]), progress=False)
    stored = json.loads(result.path.read_text())["sample"]
    dataset = TrajectoryDataset(data_root / "ks-tiny" / "test.h5", result.content["config"]["data"]["frame_stride"])
    frames = dataset[0].frames.numpy()[0]  # [T, *space], the first field of trajectory 0
    assert stored["trajectory"] == 0 and stored["field"] == dataset.file.field_names[0]
    true, pred = np.asarray(stored["true"], dtype=np.float32), np.asarray(stored["pred"], dtype=np.float32)
    t, (s,) = stored["time_stride"], stored["space_stride"]
    assert stored["step"][0] == 1 and len(stored["time"]) == true.shape[0] == pred.shape[0]
    assert stored["time"][0] == pytest.approx(float(dataset[0].step_time))  # trajectory 0's own model step
    np.testing.assert_array_equal(true, frames[1::t, ::s][: true.shape[0]].astype(np.float32))
    np.testing.assert_array_equal(pred, np.broadcast_to(frames[0, ::s], pred.shape).astype(np.float32))  # persistence
    # the kept points' coordinates and units, so the plot's space axis reads x in the file's units
    x = dataset.file.coordinate("x")
    assert stored["axes"] == [{"name": "x", "units": "1 (fraction of L)", "values": x[::s].tolist()}]
    assert len(stored["axes"][0]["values"]) == true.shape[1]
    board = make_leaderboard(compose_cfg("leaderboard", [f"results=[{results}]", f"out_dir={tmp_path / 'board'}"]),
                             progress=False)
    drawn = [p for p in board.written if p.name.endswith("_sample.png")]
    assert len(drawn) == 1 and drawn[0].stat().st_size > 0 and drawn[0].read_bytes()[:4] == b"\x89PNG"
    assert drawn[0].name.startswith("ks-tiny")
    image = next(ax for ax in sample_figure(board.tables[0]).axes if ax.get_label() != "<colorbar>")
    edge = (x[s] - x[0]) / 2  # the image's cells reach half a kept spacing beyond the first and last point
    assert image.get_ylabel() == "x (fraction of L)"
    assert image.get_ylim() == pytest.approx((x[0] - edge, x[::s][-1] + edge))


@pytest.mark.slow  # two processes evaluate
def test_two_processes_store_the_sample_of_one(compose_cfg, data_root: Path, tmp_path: Path) -> None:
    """Trajectory 0 lives on rank 0's shard of 2; the file rank 0 writes holds the same sample as one process's."""
    base = [f"data.root={data_root}", "rollout.device=cpu", "data=ks", "data.preset=tiny", "model=persistence"]
    one = evaluate(compose_cfg("evaluate", [*base, f"results_dir={tmp_path / 'one'}"]), progress=False)
    two = evaluate_all(compose_cfg("evaluate", [*base, f"results_dir={tmp_path / 'two'}", "trainer=cpu",
                                                "trainer.devices=2", "trainer.strategy=ddp_spawn"]), progress=False)
    written = sorted((tmp_path / "two").rglob("*.json"))
    assert len(two) == 1 and [p.name for p in written] == [one.path.name]
    a, b = json.loads(one.path.read_text()), json.loads(written[0].read_text())
    assert b["n_processes"] == 2 and a["sample"] is not None
    assert b["sample"] == a["sample"]
