"""Evaluation results do not depend on the batch size or the number of processes: a trained FNO (which, unlike
persistence, would show batch effects) gives the same result file with batch sizes 8 and 5, and on 2 gloo processes
as on 1; shards are disjoint, cover every trajectory and need not be of equal size."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pdebench.config import BenchmarkConfig
from pdebench.data.dataset import TrajectoryDataset
from pdebench.forecast.checkpoint import load_forecaster
from pdebench.rollout.evaluation import evaluate, evaluate_all, shard
from pdebench.rollout.scoring import Scores, ScoringSpec, score

# What may differ between two runs of the same evaluation: where it ran, how long it took, how it was batched.
RUN_KEYS = ("throughput_traj_steps_per_s", "n_processes", "config", "git_commit", "frontier")
SPEC = ScoringSpec(energy_factor=BenchmarkConfig().stability_energy_factor)  # a PDE's default scoring


@pytest.fixture()
def evaluate_cfg(compose_cfg, data_root: Path, tmp_path: Path):
    def make(*overrides: str) -> dict:
        return compose_cfg("evaluate", [f"data.root={data_root}", "rollout.device=cpu",
                                        "rollout.bootstrap_resamples=200", *overrides])

    return make


def metric_values(content: dict[str, Any], drop_ratio: bool = False) -> dict[str, Any]:
    """The result without its run record; `drop_ratio` also leaves out the spectrum ratio, a quotient of two stored
    spectra whose highest shells hold ~1e-12 of the energy, so that 1e-6 of the compared values can be far more of
    their ratio."""
    out = {key: value for key, value in content.items() if key not in RUN_KEYS}
    if drop_ratio:  # the sample's pointwise values of a chaotic rollout drift past 1e-6 too (plot aid, not a metric)
        out.pop("sample", None)
    if drop_ratio and out.get("spectra"):
        out["spectra"] = {key: value for key, value in out["spectra"].items() if key != "ratio"}
    return out


def assert_same_numbers(a: Any, b: Any, where: str = "") -> None:
    """Equal structure, equal strings, numbers equal to 1e-6 (relative or absolute)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_same_numbers(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_numbers(x, y, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6), (where, a, b)
    else:
        assert a == b, (where, a, b)


def test_shards_are_disjoint_cover_everything_and_need_not_divide() -> None:
    for n, world in ((4, 2), (5, 2), (7, 3), (2, 3)):
        parts = [shard(n, rank, world) for rank in range(world)]
        flat = sorted(i for part in parts for i in part)
        assert flat == list(range(n)), (n, world)
        assert max(map(len, parts)) - min(map(len, parts)) <= 1


@pytest.mark.slow
def test_uneven_shards_joined_equal_one_pass_for_a_trained_net(data_root: Path, trained_checkpoint: Path) -> None:
    """3 shards of 4 trajectories (sizes 2, 1, 1), each padded to the full batch: the joined scores are bitwise those
    of one pass."""
    forecaster = load_forecaster(trained_checkpoint).forecaster
    dataset = TrajectoryDataset(data_root / "ks-tiny" / "test.h5", frame_stride=4)
    whole = score(forecaster, dataset, batch_size=8, spec=SPEC, progress=False)
    joined = Scores.join([score(forecaster, dataset, shard(len(dataset), r, 3), batch_size=8, spec=SPEC,
                                progress=False) for r in range(3)])
    assert joined.index.tolist() == whole.index.tolist() == [0, 1, 2, 3]
    for name in whole.per_step:
        np.testing.assert_array_equal(joined.per_step[name], whole.per_step[name])


@pytest.mark.slow
def test_batch_sizes_8_and_5_give_equal_result_files(evaluate_cfg, trained_checkpoint: Path, tmp_path: Path) -> None:
    files = []
    for batch_size in (8, 5):
        out = tmp_path / f"bs{batch_size}"
        result = evaluate(evaluate_cfg(f"ckpt={trained_checkpoint}", f"rollout.batch_size={batch_size}",
                                       f"results_dir={out}"), progress=False)
        files.append(json.loads(result.path.read_text()))
    assert files[0]["model"] == "fno" and files[0]["summary"]["one_step_nrmse"] > 0
    assert metric_values(files[0]) == metric_values(files[1])  # exactly equal, not merely close


@pytest.mark.slow
def test_two_gloo_processes_write_the_result_file_of_one(evaluate_cfg, trained_checkpoint: Path,
                                                         tmp_path: Path) -> None:
    one = evaluate(evaluate_cfg(f"ckpt={trained_checkpoint}", f"results_dir={tmp_path / 'one'}"), progress=False)
    two = evaluate_all(evaluate_cfg(f"ckpt={trained_checkpoint}", f"results_dir={tmp_path / 'two'}", "trainer=cpu",
                                    "trainer.devices=2", "trainer.strategy=ddp_spawn"), progress=False)
    assert len(two) == 1, "rank 0 returns the one row it wrote"
    written = sorted((tmp_path / "two").rglob("*.json"))
    assert [p.name for p in written] == [one.path.name], "one result file, written once"
    a, b = json.loads(one.path.read_text()), json.loads(written[0].read_text())
    assert b["n_processes"] == 2 and a["n_processes"] == 1 and b["n_trajectories"] == a["n_trajectories"] == 4
    assert_same_numbers(metric_values(a, drop_ratio=True), metric_values(b, drop_ratio=True))
