"""Result files and the leaderboard built from them."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest

from pdebench.leaderboard import (
    leaderboard_rows,
    load_results,
    plot_curves,
    to_csv,
    to_markdown,
    write_leaderboard,
)
from pdebench.rollout.results import (
    RESULT_FORMAT,
    RESULT_FORMAT_VERSION,
    ResultError,
    read_result,
    write_result,
)


def _result(label: str, seed: int, corr08: float, vrmse: float | None, dataset: str = "ks-small",
            pde: str = "ks") -> dict:
    n_steps = 5
    step_time = 0.8
    decay = 0.1 * corr08
    corr = np.exp(-np.arange(1, n_steps + 1) / decay)
    return {
        "dataset": dataset,
        "pde": pde,
        "preset": "small",
        "benchmark": {"frame_stride": 4, "headline": "corr_time_0.8", "headline_goal": "max"} if pde == "ks" else {},
        "model": label.split("-")[0],
        "label": label,
        "seed": seed,
        "n_parameters": 12345,
        "train_time_s": None,
        "step_time": step_time,
        "n_trajectories": 4,
        "n_steps": n_steps,
        "summary": {
            "corr_time_0.8": corr08,
            "corr_time_0.9": np.float64(corr08 / 2),  # numpy scalars are converted on write
            "corr_time_0.95": corr08 / 4,
            "corr_time_median_0.8": corr08,
            "one_step_nrmse": 0.01,
            "one_step_mse": 1e-4,
            "nrmse_gmean": 0.1,
            "nrmse_gmean_steps": n_steps,
            "vrmse_mean": vrmse,
            "stable_horizon_median": n_steps * step_time,
            "stable_fraction": 1.0,
        },
        "curves": {
            "step": np.arange(1, n_steps + 1),
            "time": np.arange(1, n_steps + 1) * step_time,
            "corr": corr,
            "nrmse": 0.01 * np.arange(1, n_steps + 1),
        },
        "throughput_traj_steps_per_s": 1000.0 + seed,
        "config": {"lr": 1e-3},
        "checkpoint_sha256": None,
        "manifest_sha256": "0" * 64,
        "package_version": "0.1.0",
        "git_commit": None,
    }


@pytest.fixture()
def results_dir(tmp_path):
    runs = tmp_path / "runs"
    write_result(runs / "fno" / "seed0.json", _result("fno", 0, 10.0, 0.5))
    write_result(runs / "fno" / "seed1.json", _result("fno", 1, 12.0, 0.7))
    write_result(runs / "unet" / "seed0.json", _result("unet", 0, 14.0, 0.4))
    write_result(runs / "unet" / "seed1.json", _result("unet", 1, 15.0, 0.3))
    # another dataset with the default headline (vrmse_mean, ascending); None sorts last
    write_result(runs / "burgers" / "a.json", _result("a", 0, 1.0, None, "burgers-small", "burgers"))
    write_result(runs / "burgers" / "b.json", _result("b", 0, 1.0, 0.9, "burgers-small", "burgers"))
    # JSON that is not a result is skipped
    (runs / "config.json").write_text(json.dumps({"lr": 0.1}))
    return runs


def test_write_and_read_result(tmp_path):
    r = _result("fno", 0, 10.0, 0.5)
    r["summary"]["nrmse_gmean"] = float("inf")
    r["curves"]["nrmse"][2] = np.nan
    path = write_result(tmp_path / "deep" / "dir" / "r.json", r)
    assert path.is_file()
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]  # no temporary file left behind
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    back = read_result(path)
    assert back["format"] == RESULT_FORMAT and back["format_version"] == RESULT_FORMAT_VERSION
    assert back["summary"]["nrmse_gmean"] is None
    assert back["summary"]["corr_time_0.9"] == 5.0
    assert back["curves"]["nrmse"][2] is None
    assert back["curves"]["step"] == [1, 2, 3, 4, 5]


def test_read_result_errors_name_file_and_key(tmp_path):
    missing = _result("fno", 0, 10.0, 0.5)
    bad = tmp_path / "missing_label.json"
    skip = ("label", "summary", "curves")
    data = json.loads(json.dumps({k: v for k, v in missing.items() if k not in skip}))
    data.update(format=RESULT_FORMAT, format_version=1, summary={}, curves={})
    bad.write_text(json.dumps(data))
    with pytest.raises(ResultError, match="missing_label.json.*'label'"):
        read_result(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**data, "label": "x", "format": "something-else"}))
    with pytest.raises(ResultError, match="other.json.*'format'"):
        read_result(other)
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({**data, "label": "x", "format_version": RESULT_FORMAT_VERSION + 1}))
    with pytest.raises(ResultError, match="newer.json.*'format_version'"):
        read_result(newer)
    with pytest.raises(ResultError, match="'label'"):
        write_result(tmp_path / "w.json", {k: v for k, v in missing.items() if k != "label"})


def test_leaderboard_rows_mean_std_and_order(results_dir):
    results = load_results([results_dir])
    assert len(results) == 6
    table = leaderboard_rows(results)
    assert list(table) == ["burgers-small", "ks-small"]

    ks = table["ks-small"]
    # ks headline: corr_time_0.8, descending -> unet (14.5) before fno (11.0)
    assert [row["label"] for row in ks] == ["unet", "fno"]
    unet, fno = ks
    assert fno["seeds"] == 2 and fno["seed_values"] == [0, 1]
    # fno: 10, 12 -> mean 11, sample std sqrt(((10-11)^2 + (12-11)^2) / 1) = sqrt(2)
    assert fno["corr_time_0.8"]["mean"] == pytest.approx(11.0)
    assert fno["corr_time_0.8"]["std"] == pytest.approx(math.sqrt(2.0))
    # unet: 14, 15 -> mean 14.5, std sqrt(0.25 + 0.25) = sqrt(0.5)
    assert unet["corr_time_0.8"]["mean"] == pytest.approx(14.5)
    assert unet["corr_time_0.8"]["std"] == pytest.approx(math.sqrt(0.5))
    # vrmse 0.5, 0.7 -> 0.6 +- sqrt(0.02)
    assert fno["vrmse_mean"]["mean"] == pytest.approx(0.6)
    assert fno["vrmse_mean"]["std"] == pytest.approx(math.sqrt(0.02))
    # top-level columns: n_parameters, throughput 1000, 1001 -> 1000.5
    assert fno["n_parameters"] == {"mean": 12345.0, "std": 0.0}
    assert fno["throughput_traj_steps_per_s"]["mean"] == pytest.approx(1000.5)

    burgers = table["burgers-small"]
    # default headline vrmse_mean ascending; "a" has None -> last; single seed -> std 0
    assert [row["label"] for row in burgers] == ["b", "a"]
    assert burgers[0]["vrmse_mean"] == {"mean": 0.9, "std": 0.0}
    assert burgers[1]["vrmse_mean"] == {"mean": None, "std": None}


def test_markdown_and_csv(results_dir):
    table = leaderboard_rows(load_results([results_dir]))
    md = to_markdown("ks-small", table["ks-small"])
    assert "## ks-small" in md
    header = "| label | model | seeds | n_parameters | corr_time_0.8 | corr_time_0.9 | corr_time_0.95 |"
    assert header in md
    lines = md.splitlines()
    unet_line = next(i for i, line in enumerate(lines) if line.startswith("| unet |"))
    fno_line = next(i for i, line in enumerate(lines) if line.startswith("| fno |"))
    assert unet_line < fno_line
    assert "14.50 ± 0.71" in lines[unet_line]  # mean shown to the std's last digit
    assert "11.0 ± 1.4" in lines[fno_line]
    assert "12,345" in lines[fno_line]
    md_b = to_markdown("burgers-small", table["burgers-small"])
    assert "—" in next(line for line in md_b.splitlines() if line.startswith("| a |"))

    rows = list(csv.DictReader(io.StringIO(to_csv(table["ks-small"]))))
    assert [r["label"] for r in rows] == ["unet", "fno"]
    fno = rows[1]
    assert fno["seeds"] == "2" and fno["n_parameters"] == "12345"
    assert float(fno["corr_time_0.8_mean"]) == pytest.approx(11.0)
    assert float(fno["corr_time_0.8_std"]) == pytest.approx(math.sqrt(2.0))
    assert float(fno["vrmse_mean_mean"]) == pytest.approx(0.6)
    rows_b = list(csv.DictReader(io.StringIO(to_csv(table["burgers-small"]))))
    assert rows_b[1]["vrmse_mean_mean"] == "" and rows_b[1]["vrmse_mean_std"] == ""


def test_plot_and_write_leaderboard(results_dir, tmp_path):
    results = load_results([results_dir])
    ks = [r for r in results if r["dataset"] == "ks-small"]
    png = plot_curves(ks, tmp_path / "plots" / "ks.png")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    with pytest.raises(ValueError):
        plot_curves(results, tmp_path / "mixed.png")  # two datasets

    out = tmp_path / "board"
    paths = write_leaderboard(results, out)
    names = sorted(p.name for p in paths)
    assert names == sorted([
        "ks-small.md", "ks-small.csv", "ks-small_corr.png",
        "burgers-small.md", "burgers-small.csv", "burgers-small_corr.png",
    ])
    for p in paths:
        assert p.is_file() and p.stat().st_size > 0


def test_load_results_broken_file(results_dir, tmp_path):
    broken = results_dir / "fno" / "seed2.json"
    broken.write_text('{"format": "pdebench-result", "dataset": ')
    with pytest.raises(ResultError, match="seed2.json"):
        load_results([results_dir])
    # a result file passed explicitly is validated strictly, even without a format key
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"lr": 0.1}))
    with pytest.raises(ResultError, match="plain.json"):
        load_results([plain])
    with pytest.raises(ResultError, match="nope"):
        load_results([tmp_path / "nope"])


def test_duplicate_seed_is_an_error(results_dir, tmp_path):
    write_result(tmp_path / "again" / "dup.json", _result("fno", 0, 10.0, 0.5))
    with pytest.raises(ResultError, match="fno"):
        leaderboard_rows(load_results([results_dir, tmp_path / "again"]))


def test_headline_and_threshold_columns_come_from_the_results():
    """The sort key is the PDE's (from the manifest via the result files), not a table in the leaderboard code;
    the correlation columns are the thresholds the results were scored with."""
    results = []
    for label, corr08, vrmse in (("a", 20.0, 0.9), ("b", 10.0, 0.1)):
        r = json.loads(json.dumps(_result(label, 0, corr08, vrmse, "ks-small", "ks"), default=lambda a: a.tolist()))
        r["summary"]["corr_time_0.5"] = corr08 * 2
        results.append(r)
    ranked = leaderboard_rows(results)["ks-small"]
    assert [row["label"] for row in ranked] == ["a", "b"]  # corr_time_0.8, higher first
    assert ranked[0]["columns"][:6] == ("n_parameters", "corr_time_0.5", "corr_time_0.8", "corr_time_0.9",
                                         "corr_time_0.95", "corr_time_median_0.5")
    for r in results:
        r["benchmark"] = {"frame_stride": 1, "headline": "vrmse_mean", "headline_goal": "min"}
    assert [row["label"] for row in leaderboard_rows(results)["ks-small"]] == ["b", "a"]
    header = to_csv(leaderboard_rows(results)["ks-small"]).splitlines()[0]
    assert "corr_time_0.5_mean" in header
    results[0]["benchmark"] = {"frame_stride": 1, "headline": "corr_time_0.8", "headline_goal": "max"}
    with pytest.raises(ResultError, match="disagree on the headline metric"):
        leaderboard_rows(results)
