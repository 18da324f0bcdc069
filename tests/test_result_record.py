"""The typed result record and the one pair of functions that write and read metric keys."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pdebench.rollout.frontier import RolloutKind, rollout_kind
from pdebench.rollout.keys import MetricKey, format_key, parse_key
from pdebench.rollout.record import ResultRecord
from pdebench.rollout.reductions import summarize_rollout
from pdebench.rollout.results import ResultError, read_record, read_result, write_result


def _summary(n_members: int) -> tuple[dict, dict]:
    """A summary and curves of every kind `summarize_rollout` writes: bands, drift and (n_members > 1) ensembles."""
    rng = np.random.default_rng(0)
    shape = (3, 7, 2)
    per_step = {name: rng.uniform(0.1, 0.9, shape) for name in ("mse", "nrmse", "vrmse", "corr", "mse_low",
                                                               "mse_mid", "mse_high", "drift")}
    if n_members > 1:
        per_step.update({name: rng.uniform(0.1, 0.9, shape) for name in ("crps", "spread2", "ens_mse")})
    return summarize_rollout(per_step, np.zeros(shape[:2], dtype=bool), 0.5, (0.8, 0.95), 4, [(1, 1), (2, 5)],
                             n_members)


EXPECTED = {
    "corr_time_0.8": MetricKey("corr_time", threshold=0.8),
    "corr_time_median_0.95": MetricKey("corr_time_median", threshold=0.95),
    "nrmse_steps_2-5": MetricKey("nrmse", window=(2, 5)),
    "vrmse_steps_1": MetricKey("vrmse", window=(1, 1)),
    "one_step_nrmse": MetricKey("nrmse", one_step=True),
    "spectral_rmse_mid": MetricKey("spectral_rmse", band="mid"),
    "one_step_spectral_rmse_high": MetricKey("spectral_rmse", band="high", one_step=True),
    "mse_low": MetricKey("mse", band="low"),
    "vrmse_mean": MetricKey("vrmse_mean"),
    "time_ceiling_median": MetricKey("time_ceiling_median"),
}


def test_every_key_the_summary_writes_parses_to_its_kind_and_formats_back() -> None:
    summary, curves = _summary(n_members=3)
    intervals = {"corr_time_0.95": None}  # intervals are keyed like the summary
    for key in [*summary, *curves, *intervals]:
        assert format_key(parse_key(key)) == key, key
    for key, typed in EXPECTED.items():
        assert key in summary or key in curves, key
        assert parse_key(key) == typed and format_key(typed) == key
    assert parse_key("corr_time_0.8").ceiling == "time_ceiling"
    assert parse_key("corr_time_median_0.8").ceiling == "time_ceiling_median"
    assert parse_key("stable_horizon_median").ceiling == "time_ceiling_median"
    assert parse_key("one_step_nrmse").ceiling is None and parse_key("nrmse_steps_2-5").ceiling is None
    # thresholds are written in %g form, so 0.80 and 0.8 are one key
    assert format_key(MetricKey("corr_time", threshold=0.80)) == "corr_time_0.8"
    assert parse_key("corr_time_1e999") == MetricKey("corr_time_1e999")  # not a finite threshold: a plain key
    assert parse_key("nrmse_steps_3-2") == MetricKey("nrmse_steps_3-2")  # an empty window: a plain key
    with pytest.raises(ValueError, match="at most one of threshold, window and band"):
        MetricKey("corr_time", threshold=0.8, window=(1, 2))
    with pytest.raises(ValueError, match="only .* carry a threshold"):
        MetricKey("nrmse", threshold=0.8)


OLD_FILE = {
    "format": "pdebench-result", "format_version": 1, "dataset": "ks-tiny", "pde": "ks", "preset": "tiny",
    "model": "persistence", "label": "persistence", "seed": 0, "objective": {"name": "onestep"},
    "benchmark": {"headline": "corr_time_0.8", "headline_goal": "max"}, "n_parameters": 0, "train_time_s": None,
    "step_time": 0.8, "n_trajectories": 4, "n_steps": 11,
    "summary": {"corr_time_0.8": 1.6, "time_ceiling": 8.8, "nrmse_gmean_steps": 11},
    "intervals": {"corr_time_0.8": [0.8, 2.4]}, "curves": {"step": list(range(1, 12))},
    "throughput_traj_steps_per_s": 1500.0, "device": "cuda:1", "run": None, "frontier": None,
    "manifest_sha256": "ab" * 32, "written_by_a_newer_pdebench": {"x": 1},
}


def test_a_result_file_reads_into_the_record_and_writes_back_the_same(tmp_path: Path) -> None:
    """A version-1 file (with a key this record does not know) reads as typed fields and writes back every key it
    holds (the ones it lacks as their defaults);
    a solver row writes its `solver_setting` and no `frontier`, every other row a `frontier`, null or not."""
    path = tmp_path / "old.json"
    path.write_text(json.dumps(OLD_FILE))
    record = read_record(path)
    assert (record.label, record.seed, record.n_steps, record.device_kind) == ("persistence", 0, 11, "cuda")
    assert record.summary["corr_time_0.8"] == 1.6 and record.extra == {"written_by_a_newer_pdebench": {"x": 1}}
    assert record.value("corr_time_0.8") == 1.6 and record.value("n_parameters") == 0
    written = record.to_json()
    assert {key: written[key] for key in OLD_FILE} == OLD_FILE  # every key of the file, value for value
    assert set(written) - set(OLD_FILE) <= {"checkpoint", "checkpoint_sha256", "config", "git_commit", "sample",
                                            "spectra", "scoring", "interval_method", "package_version", "n_processes"}
    assert rollout_kind(record) == RolloutKind("ab" * 32, 11, 0.8, 11, "cuda")
    again = write_result(tmp_path / "again.json", record)
    assert read_result(again) == written and read_record(again) == record
    solver = ResultRecord.from_json({**OLD_FILE, "model": "solver", "solver_setting": {"resolution": [64]}})
    assert "frontier" not in solver.to_json() and solver.to_json()["solver_setting"] == {"resolution": [64]}
    assert "solver_setting" not in record.to_json() and record.to_json()["frontier"] is None
    with pytest.raises(ResultError, match="old.json is missing the required key 'label'"):
        ResultRecord.from_json({k: v for k, v in OLD_FILE.items() if k != "label"}, str(path))
