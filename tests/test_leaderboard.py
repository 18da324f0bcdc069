"""Result files and the leaderboard built from them: grouping, aggregation, ranking, speed-ups, every output format."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest
from compose import compose_config

from pdebench.leaderboard import (
    SkippedResultWarning,
    build_tables,
    leaderboard_rows,
    load_results,
    make_leaderboard,
    plot_curves,
    plot_sample,
    table_html,
    to_csv,
    to_latex,
    to_markdown,
    write_leaderboard,
)
from pdebench.leaderboard.plots import sample_figure
from pdebench.leaderboard.render import LEAD_HEADERS, latex_escape
from pdebench.rollout.results import (
    RESULT_FORMAT,
    RESULT_FORMAT_VERSION,
    ResultError,
    read_result,
    write_result,
)

MANIFEST = "a" * 64
KS_FACTS = {"frame_stride": 4, "headline": "corr_time_0.8", "headline_goal": "max"}
N_STEPS, STEP_TIME = 50, 0.8


def _result(label: str, seed: int, corr08: float, vrmse: float | None, dataset: str = "ks-small",
            pde: str = "ks", model: str | None = None, manifest: str = MANIFEST, **extra) -> dict:
    """A result file's content, shaped as `pdebench-evaluate` writes it, with hand-picked summary values."""
    corr = np.exp(-np.arange(1, N_STEPS + 1) / (0.1 * corr08))
    result = {
        "dataset": dataset, "pde": pde, "preset": "small",
        "benchmark": KS_FACTS if pde == "ks" else {},
        "model": model or label.split("-")[0], "label": label, "seed": seed,
        "objective": {"name": "onestep", "history": 1, "bundle": 1, "loss": "mse", "target": "state",
                      "target_scale": 1.0},
        "n_parameters": 12345, "train_time_s": 60.0 + seed, "step_time": STEP_TIME,
        "n_trajectories": 4, "n_steps": N_STEPS,
        "summary": {
            "corr_time_0.8": corr08,
            "corr_time_0.9": np.float64(corr08 / 2),  # numpy scalars are converted on write
            "corr_time_0.95": corr08 / 4,
            "corr_time_median_0.8": corr08,
            "time_ceiling": N_STEPS * STEP_TIME, "time_ceiling_median": N_STEPS * STEP_TIME,
            "one_step_nrmse": 0.01, "one_step_mse": 1e-4,
            "nrmse_steps_1": 0.01, "nrmse_steps_2-5": 0.03,
            "nrmse_gmean": 0.1, "nrmse_gmean_steps": N_STEPS,
            "vrmse_mean": vrmse,
            "stable_horizon_median": N_STEPS * STEP_TIME, "stable_fraction": 1.0,
        },
        "intervals": {"corr_time_0.8": [corr08 - 1.0, corr08 + 2.0], "corr_time_0.9": None,
                      "one_step_nrmse": [0.005, 0.02]},
        "curves": {
            "step": np.arange(1, N_STEPS + 1), "time": np.arange(1, N_STEPS + 1) * STEP_TIME,
            "corr": corr, "nrmse": 0.01 * np.arange(1, N_STEPS + 1),
        },
        "throughput_traj_steps_per_s": 1000.0 + seed, "device": "cpu",
        "config": {"lr": 1e-3}, "checkpoint_sha256": "c" * 64, "manifest_sha256": manifest,
        "package_version": "0.1.0", "git_commit": "f" * 40,
    }
    result.update(extra)
    return result


def _plain(result: dict) -> dict:
    """What reading the written file gives (numpy values as plain JSON)."""
    return json.loads(json.dumps(result, default=lambda a: a.tolist() if hasattr(a, "tolist") else a.item()))


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
    # JSON that is not a result (a config dump in a sweep folder) is passed over silently
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
    assert back["curves"]["step"] == list(range(1, N_STEPS + 1))


def test_read_result_errors_name_file_and_key(tmp_path):
    missing = _result("fno", 0, 10.0, 0.5)
    bad = tmp_path / "missing_label.json"
    skip = ("label", "summary", "curves")
    data = _plain({k: v for k, v in missing.items() if k not in skip})
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


def test_rows_mean_std_and_order(results_dir):
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
    # bootstrap interval ends averaged over seeds: fno [9, 12] and [11, 14] -> [10, 13]
    assert fno["corr_time_0.8"]["interval"] == pytest.approx([10.0, 13.0])
    assert fno["corr_time_0.9"]["interval"] is None  # a seed without an interval gives none
    assert fno["corr_time_0.8"]["ceiling"] == pytest.approx(N_STEPS * STEP_TIME)
    # top-level columns: n_parameters, throughput 1000, 1001 -> 1000.5; train time 60, 61
    assert (fno["n_parameters"]["mean"], fno["n_parameters"]["std"]) == (12345.0, 0.0)
    assert fno["throughput_traj_steps_per_s"]["mean"] == pytest.approx(1000.5)
    assert fno["train_time_s"]["mean"] == pytest.approx(60.5)

    burgers = table["burgers-small"]
    # default headline vrmse_mean ascending; "a" has None -> last; single seed -> std 0
    assert [row["label"] for row in burgers] == ["b", "a"]
    assert (burgers[0]["vrmse_mean"]["mean"], burgers[0]["vrmse_mean"]["std"]) == (0.9, 0.0)
    assert burgers[1]["vrmse_mean"]["mean"] is None and burgers[1]["vrmse_mean"]["std"] is None


def test_a_row_is_one_label_model_and_objective():
    """A persistence result labelled like the FNO is a row of its own, never averaged into "fno/persistence"; the
    same label trained with another objective is another row too."""
    fno = [_result("fno", s, 20.0 + s, 0.5) for s in (0, 1)]
    mislabelled = _result("fno", 2, 2.0, 1.0, model="persistence", checkpoint_sha256=None)
    other_objective = _result("fno", 0, 30.0, 0.2)
    other_objective["objective"] = {**other_objective["objective"], "target": "difference", "target_scale": 0.3}
    rows = leaderboard_rows([_plain(r) for r in (*fno, mislabelled, other_objective)])["ks-small"]
    assert len(rows) == 3
    by_key = {(row["model"], row["objective"]): row for row in rows}
    assert set(by_key) == {("fno", "onestep"), ("fno", "onestep target=difference target_scale=0.3"),
                           ("persistence", "reference")}
    assert by_key["fno", "onestep"]["seeds"] == 2
    assert by_key["fno", "onestep"]["corr_time_0.8"]["mean"] == pytest.approx(20.5)  # persistence not in it
    assert by_key["persistence", "reference"]["corr_time_0.8"]["mean"] == pytest.approx(2.0)
    assert not any("/" in row["model"] for row in rows)
    names = {row["name"] for row in rows}
    assert len(names) == 3 and "fno [persistence, reference]" in names  # a shared label gets told apart


def test_results_of_different_manifests_are_never_mixed():
    """Seeds evaluated on a regenerated dataset (another manifest hash) make their own table."""
    old = [_result("fno", s, 10.0, 0.5) for s in (0, 1)]
    new = [_result("fno", 2, 30.0, 0.1, manifest="b" * 64), _result("unet", 0, 5.0, 0.9, manifest="b" * 64)]
    tables = build_tables([_plain(r) for r in (*old, *new)])
    assert [t.name for t in tables] == ["ks-small@aaaaaaaa", "ks-small@bbbbbbbb"]
    first, second = tables
    assert {r["manifest_sha256"] for row in first.rows for r in row["results"]} == {"a" * 64}
    assert [row["label"] for row in first.rows] == ["fno"]
    assert first.rows[0]["seeds"] == 2 and first.rows[0]["corr_time_0.8"]["mean"] == pytest.approx(10.0)
    assert [row["label"] for row in second.rows] == ["fno", "unet"] and second.rows[0]["seeds"] == 1
    assert "2 dataset manifests" in to_markdown(first)
    # one manifest: the table is named after the dataset alone
    assert [t.name for t in build_tables([_plain(r) for r in old])] == ["ks-small"]


def test_markdown_and_csv(results_dir):
    tables = {t.name: t for t in build_tables(load_results([results_dir]))}
    md = to_markdown(tables["ks-small"])
    assert "## ks-small" in md and MANIFEST in md
    header = next(line for line in md.splitlines() if line.startswith("| model |"))
    for title in ("label", "objective", "seeds", "parameters", "one-step nRMSE", "nRMSE steps 2-5",
                  "nRMSE gmean steps 1-50", "corr > 0.8 time", "corr > 0.9 time", "rollout length",
                  "stable horizon / ceiling", "throughput (traj-steps/s)", "speed-up at equal accuracy (x)",
                  "speed-up at equal grid (x)", "train time (s)"):
        assert f"| {title} |" in header, title
    assert "nRMSE steps 1 |" not in header  # the one-step window is the one-step column
    lines = md.splitlines()
    unet_line = next(i for i, line in enumerate(lines) if line.startswith("| unet | unet |"))
    fno_line = next(i for i, line in enumerate(lines) if line.startswith("| fno | fno |"))
    assert unet_line < fno_line
    assert "14.50 ± 0.71 [13.5, 16.5]" in lines[unet_line]  # mean to the std's last digit, then the interval
    assert "11.0 ± 1.4 [10.0, 13.0]" in lines[fno_line]
    assert "12,345" in lines[fno_line]
    assert "| ≥ 40.0 / 40.0 |" in lines[fno_line]  # stable horizon at its ceiling is a lower bound
    assert "| 0.0100 |" in lines[fno_line]  # intervals are shown for the correlation times and the headline only
    md_b = to_markdown(tables["burgers-small"])
    assert "—" in next(line for line in md_b.splitlines() if line.startswith("| a | a |"))

    rows = list(csv.DictReader(io.StringIO(to_csv(tables["ks-small"]))))
    assert [r["label"] for r in rows] == ["unet", "fno"]
    fno = rows[1]
    assert fno["seeds"] == "2" and fno["n_parameters"] == "12345" and fno["seed_values"] == "0 1"
    assert float(fno["corr_time_0.8_mean"]) == pytest.approx(11.0)
    assert float(fno["corr_time_0.8_std"]) == pytest.approx(math.sqrt(2.0))
    assert (float(fno["corr_time_0.8_ci_low"]), float(fno["corr_time_0.8_ci_high"])) == (10.0, 13.0)
    assert float(fno["stable_horizon_median_ceiling"]) == pytest.approx(40.0)
    assert (float(fno["one_step_nrmse_ci_low"]), float(fno["one_step_nrmse_ci_high"])) == (0.005, 0.02)
    assert fno["manifest_sha256"] == MANIFEST and fno["dataset"] == "ks-small"
    rows_b = list(csv.DictReader(io.StringIO(to_csv(tables["burgers-small"]))))
    assert rows_b[1]["vrmse_mean_mean"] == "" and rows_b[1]["vrmse_mean_std"] == ""


def test_latex_table(results_dir):
    table = next(t for t in build_tables(load_results([results_dir])) if t.name == "ks-small")
    tex = to_latex(table)
    body = tex[tex.index("\\midrule"):tex.index("\\bottomrule")].splitlines()[1:]
    assert [line.split(" & ")[1] for line in body] == ["unet", "fno"]
    assert all(line.endswith(" \\\\") and line.count(" & ") == len(table.columns) + len(LEAD_HEADERS) - 1
               for line in body)
    assert "14.50 $\\pm$ 0.71 [13.5, 16.5]" in body[0]
    assert "$\\geq$ 40.0 / 40.0" in body[1]
    assert "\\label{tab:ks-small}" in tex and tex.count("{") == tex.count("}")
    assert latex_escape("a_b & 5% #1 {x} ± —") == "a\\_b \\& 5\\% \\#1 \\{x\\} $\\pm$ --"


def _solver(label: str, corr08: float, speed: float, stored: bool, device: str = "cpu") -> dict:
    setting = {"resolution": None if stored else [64], "time_step_factor": 1.0}
    return _result(label, 0, corr08, 0.5, model="solver", checkpoint_sha256=None, n_parameters=0,
                   train_time_s=None, throughput_traj_steps_per_s=speed, solver_setting=setting, device=device)


def test_speedup_at_equal_accuracy_and_at_equal_grid():
    """Solver frontier (corr time 10 at 1000 traj-steps/s, 20 at 100): a surrogate at 15 needs the solver at
    exp((ln 1000 + ln 100) / 2) = 316.2 traj-steps/s; at 5000 its speed-up is 15.81 at equal accuracy and
    5000 / 100 = 50 over the stored-resolution solver. Off the midpoint, where weights taken the wrong way round
    give another answer: a surrogate at 12 (a fifth of the way) needs 10^(0.8 * 3 + 0.2 * 2) = 631.0, not 158.5."""
    results = [_solver("solver-n64", 10.0, 1000.0, stored=False), _solver("solver", 20.0, 100.0, stored=True),
               _result("fno", 0, 15.0, 0.5, throughput_traj_steps_per_s=5000.0),
               _result("near", 0, 12.0, 0.5, throughput_traj_steps_per_s=5000.0),
               _result("weak", 0, 5.0, 0.9, throughput_traj_steps_per_s=5000.0),
               _result("strong", 0, 40.0, 0.1, throughput_traj_steps_per_s=50.0),
               _result("gpu", 0, 15.0, 0.5, throughput_traj_steps_per_s=5000.0, device="cuda:0")]
    table = build_tables([_plain(r) for r in results])[0]
    rows = {row["label"]: row for row in table.rows}
    fno = rows["fno"]
    assert fno["speedup_equal_accuracy"]["mean"] == pytest.approx(5000.0 / math.sqrt(1000.0 * 100.0))
    assert fno["speedup_equal_accuracy"]["status"] == "interpolated"
    assert fno["speedup_equal_grid"]["mean"] == pytest.approx(50.0)
    assert rows["near"]["speedup_equal_accuracy"]["mean"] == pytest.approx(5000.0 / 10**2.8, rel=1e-9)
    # below the frontier: even the cheapest setting is more accurate -> an upper bound over that setting
    assert rows["weak"]["speedup_equal_accuracy"]["mean"] == pytest.approx(5.0)
    assert rows["weak"]["speedup_equal_accuracy"]["status"] == "below_frontier"
    # above it: no setting is as accurate -> a lower bound over the most accurate setting
    assert rows["strong"]["speedup_equal_accuracy"]["mean"] == pytest.approx(0.5)
    # no solver row measured on a GPU: no speed-up
    assert rows["gpu"]["speedup_equal_accuracy"]["mean"] is None and rows["gpu"]["speedup_equal_grid"]["mean"] is None
    assert rows["solver"]["speedup_equal_accuracy"]["mean"] is None
    lines = {line.split(" | ")[1]: line for line in to_markdown(table).splitlines() if line.startswith("| ")}
    assert "| 15.8 |" in lines["fno"] and "| 50.0 |" in lines["fno"]
    assert "| ≤ 5.00 |" in lines["weak"] and "| ≥ 0.500 |" in lines["strong"]
    assert [p["name"] for p in table.frontier] == ["solver", "solver-n64"]
    status = {r["label"]: r["speedup_equal_accuracy_status"] for r in csv.DictReader(io.StringIO(to_csv(table)))}
    assert status["fno"] == "interpolated" and status["strong"] == "above_frontier"


def _scored_on(result: dict, n_steps: int) -> dict:
    """`result` as a rollout of `n_steps` model steps would have scored it (ceilings and gmean steps follow)."""
    result["n_steps"] = n_steps
    result["summary"].update(time_ceiling=n_steps * STEP_TIME, time_ceiling_median=n_steps * STEP_TIME,
                             nrmse_gmean_steps=min(n_steps, N_STEPS))
    return result


def test_only_solver_rows_of_the_same_rollout_and_device_count():
    """Solver rows at 50 and at 3 steps on the CPU, and at 50 steps on a GPU, each a frontier of its own: a
    surrogate is placed on the one it was measured like, and one scored on 11 steps gets no speed-up and a note.

    cpu, 50 steps: corr time 10 at 1000/s, 20 at 100/s (stored) -> fno (15 at 5000/s): 5000 / sqrt(1000 * 100) =
    15.81, 50 at equal grid. cuda, 50 steps: 10 at 50000/s, 20 at 5000/s -> fno-gpu (15 at 5000/s): 5000 /
    sqrt(50000 * 5000) = 0.3162, 1 at equal grid. cpu, 3 steps: both at the ceiling 2.4, 30000/s and 3000/s
    (stored) -> fno-short (2.4 at 6000/s) is below that frontier: 6000 / 30000 = 0.2, 2 at equal grid."""
    solver = [_solver("solver-n64", 10.0, 1000.0, stored=False), _solver("solver", 20.0, 100.0, stored=True),
              _scored_on(_solver("solver-n64", 2.4, 30000.0, stored=False), 3),
              _scored_on(_solver("solver", 2.4, 3000.0, stored=True), 3),
              _solver("solver-n64", 10.0, 50000.0, stored=False, device="cuda:0"),
              _solver("solver", 20.0, 5000.0, stored=True, device="cuda:1")]
    surrogates = [_result("fno", 0, 15.0, 0.5, throughput_traj_steps_per_s=5000.0),
                  _result("fno-gpu", 0, 15.0, 0.5, throughput_traj_steps_per_s=5000.0, device="cuda:0"),
                  _scored_on(_result("fno-short", 0, 2.4, 0.5, throughput_traj_steps_per_s=6000.0), 3),
                  _scored_on(_result("fno-11", 0, 8.8, 0.5, throughput_traj_steps_per_s=5000.0), 11)]
    table = build_tables([_plain(r) for r in (*solver, *surrogates)])[0]
    rows = {row["name"]: row for row in table.rows}
    expected = {"fno [at 50 steps]": (5000.0 / math.sqrt(1000.0 * 100.0), 50.0, "interpolated"),
                "fno-gpu [at 50 steps]": (5000.0 / math.sqrt(50000.0 * 5000.0), 1.0, "interpolated"),
                "fno-short [at 3 steps]": (0.2, 2.0, "below_frontier")}
    for name, (accuracy, grid, status) in expected.items():
        assert rows[name]["speedup_equal_accuracy"]["mean"] == pytest.approx(accuracy), name
        assert rows[name]["speedup_equal_grid"]["mean"] == pytest.approx(grid), name
        assert rows[name]["speedup_equal_accuracy"]["status"] == status, name
    unmatched = rows["fno-11 [at 11 steps]"]
    assert unmatched["speedup_equal_accuracy"]["mean"] is None and unmatched["speedup_equal_grid"]["mean"] is None
    assert unmatched["speedup_equal_accuracy"]["status"] == "unmatched"
    # one row per solver setting and rollout, named apart; the table says why fno-11 has no speed-up
    assert {"solver [at 50 steps on cpu]", "solver [at 3 steps on cpu]", "solver [at 50 steps on cuda]",
            "solver-n64 [at 3 steps on cpu]"} <= set(rows)
    md = to_markdown(table)
    assert ("fno-11 [at 11 steps]: no speed-up, no solver rows at 11 steps on cpu (solver rows: at 50 steps on cpu; "
            "at 3 steps on cpu; at 50 steps on cuda).") in md
    assert "Rows were scored on different rollouts" in md
    assert "at 11 steps (rollout length 8.8 time units): fno-11" in md


def test_rows_of_different_rollout_lengths_are_ranked_apart_and_marked():
    """A smoke table whose rows were scored on rollouts of 3 and 2 model steps of 6 time units (ceilings 18 and 12,
    as models of history 1 and 2 on the tiny preset): the time ceilings do not compare, so each rollout's rows are
    ranked among themselves (the rollout holding more rows first), every row's name says its rollout, and the note
    gives both rollout lengths in time units. Where all rows share one rollout, names and order are as before."""

    def smoke(label: str, corr08: float, n_steps: int) -> dict:
        result = _result(label, 0, corr08, 0.5, "smoke-tiny", "smoke", step_time=6.0, n_steps=n_steps,
                         benchmark=KS_FACTS)
        ceiling = 6.0 * n_steps
        result["summary"].update(time_ceiling=ceiling, time_ceiling_median=ceiling, nrmse_gmean_steps=n_steps)
        return result

    results = [smoke("unet", 18.0, 3), smoke("fno", 12.0, 2), smoke("persistence", 6.0, 3),
               smoke("sinenet", 11.0, 2), smoke("mpnn", 15.0, 3)]
    table = build_tables([_plain(r) for r in results])[0]
    # ranked within each rollout: 3 steps (3 rows) first, then 2 steps; never 18 > 15 > 12 > 11 > 6 across them
    assert [row["name"] for row in table.rows] == [
        "unet [at 3 steps]", "mpnn [at 3 steps]", "persistence [at 3 steps]", "fno [at 2 steps]",
        "sinenet [at 2 steps]"]
    assert [row["rollout_group"] for row in table.rows] == [0, 0, 0, 1, 1]
    md = to_markdown(table)
    assert ("rows of each rollout are ranked among themselves: at 3 steps (rollout length 18 time units): unet, mpnn, "
            "persistence; at 2 steps (rollout length 12 time units): fno, sinenet.") in md
    body = [line.split(" | ")[1] for line in md.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert body == [row["name"] for row in table.rows]
    cells = {row["label"]: row["time_ceiling"]["mean"] for row in table.rows}
    assert cells == {"unet": 18.0, "mpnn": 18.0, "persistence": 18.0, "fno": 12.0, "sinenet": 12.0}
    # one rollout: plain names, one ranking, no note
    same = build_tables([_plain(r) for r in results if r["n_steps"] == 3])[0]
    assert [row["name"] for row in same.rows] == ["unet", "mpnn", "persistence"]
    assert not any("different rollouts" in note for note in same.notes)


def test_a_recipe_deviation_is_shown_in_its_row(tmp_path):
    """The run record's recipe deviations and tuning make the row's recipe cell, escaped in every format; a result
    file whose recipe is not made of short texts is refused."""
    tuned = {"lr": 3e-4, "weight_decay": 1e-5, "n_trials": 20, "trial_steps": 400, "study": "ks-mpnn",
             "date": "2026-01-02", "score": 12.5}
    mpnn = _result("mpnn", 0, 12.0, 0.4, run={"label": "mpnn", "seed": 0, "recipe": "ks", "tuning": tuned,
                                               "deviations": ["bundle: 25 (MP-PDE temporal bundling)"]})
    fno = _result("fno", 0, 10.0, 0.5, run={"label": "fno", "seed": 0, "recipe": "ks", "deviations": [],
                                             "tuning": "untuned"})
    marked = _result("marked", 0, 9.0, 0.5, run={"deviations": ["<b>x</b> | y"], "tuning": "untuned"})
    paths = [write_result(tmp_path / f"{r['label']}.json", r) for r in (mpnn, fno, marked)]
    table = build_tables(load_results(paths))[0]
    lines = {line.split(" | ")[1]: line for line in to_markdown(table).splitlines() if line.startswith("| ")}
    assert "| model | label | objective | recipe | seeds |" in lines["label"]
    shown = "bundle: 25 (MP-PDE temporal bundling); tuned (20 trials): lr=0.0003, weight_decay=1e-05"
    assert f"| {shown} |" in lines["mpnn"]
    assert "| recipe ks; untuned |" in lines["fno"]
    assert "| &lt;b>x&lt;/b> \\| y; untuned |" in lines["marked"]
    recipes = {r["label"]: r["recipe"] for r in csv.DictReader(io.StringIO(to_csv(table)))}
    assert recipes["mpnn"] == shown
    page = table_html(table)
    assert f"<td>{shown}</td>" in page
    assert "&lt;b&gt;x&lt;/b&gt; | y; untuned" in page and "<b>x" not in page
    for run, problem in (({"deviations": [5]}, "deviations"), ({"deviations": "bundle: 25"}, "deviations"),
                         ({"recipe": ["ks"]}, "recipe"), ({"tuning": {"lr": [1, 2]}}, "tuning"),
                         ({"tuning": "x" * 201}, "tuning")):
        bad = write_result(tmp_path / "bad.json", {**mpnn, "run": run})
        with pytest.raises(ResultError, match=rf"bad\.json has run '{problem}' = "):
            read_result(bad)


def test_columns_show_the_digits_that_tell_rows_apart():
    """Two solver settings whose one-step errors differ at the 5th significant digit print 5 digits in that column;
    a column whose values agree, or differ only beyond 8 digits, keeps 3."""
    a = _solver("solver", 20.0, 100.0, stored=True)
    b = _solver("solver-dt4x", 20.0, 400.0, stored=False)
    a["summary"].update(one_step_nrmse=0.012345, nrmse_gmean=0.1)
    b["summary"].update(one_step_nrmse=0.012346, nrmse_gmean=0.1 * (1 + 1e-10))
    table = build_tables([_plain(a), _plain(b)])[0]
    lines = {line.split(" | ")[1]: line for line in to_markdown(table).splitlines() if line.startswith("| ")}
    assert "| 0.012345 |" in lines["solver"] and "| 0.012346 |" in lines["solver-dt4x"]
    assert "| 0.0300 |" in lines["solver"]  # nrmse_steps_2-5, equal in both rows
    assert "| 0.100 |" in lines["solver"] and "| 0.100 |" in lines["solver-dt4x"]
    tex = to_latex(table)
    assert "0.012345" in tex and "0.012346" in tex


def test_crps_column_only_where_an_ensemble_was_scored():
    plain = [_plain(_result("fno", 0, 10.0, 0.5))]
    assert "crps_mean" not in build_tables(plain)[0].rows[0]["columns"]
    ensemble = _result("refiner", 0, 12.0, 0.4)
    ensemble["summary"].update(crps_mean=0.25, spread_skill_ratio=0.9, n_members=4)
    rows = build_tables([*plain, _plain(ensemble)])[0].rows
    assert rows[0]["crps_mean"]["mean"] == 0.25 and rows[1]["crps_mean"]["mean"] is None
    assert "| CRPS | spread/skill |" in to_markdown(build_tables([*plain, _plain(ensemble)])[0])


def test_corrupt_and_partial_result_files_are_skipped_with_a_warning(results_dir, tmp_path):
    (results_dir / "fno" / "seed2.json").write_text('{"format": "pdebench-result", "dataset": ')  # cut short
    partial = _plain(_result("unet", 2, 30.0, 0.1))
    del partial["summary"]["corr_time_0.8"]
    write_result(results_dir / "unet" / "seed2.json", partial)
    no_label = _plain(_result("x", 0, 1.0, 0.1))
    del no_label["label"]
    (results_dir / "x.json").write_text(json.dumps({"format": RESULT_FORMAT, "format_version": 1, **no_label}))
    with pytest.warns(SkippedResultWarning) as caught:
        tables = build_tables(load_results([results_dir]))
    messages = [str(w.message) for w in caught]
    assert any("seed2.json" in m and "fno" in m and "not valid JSON" in m for m in messages)
    assert any("unet" in m and "seed2.json" in m and "'corr_time_0.8'" in m for m in messages)
    assert any("x.json" in m and "'label'" in m for m in messages)
    ks = next(t for t in tables if t.name == "ks-small")
    assert [(row["label"], row["seeds"]) for row in ks.rows] == [("unet", 2), ("fno", 2)]  # the rest is intact
    # a file named explicitly that is not a result is skipped with a warning too
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"lr": 0.1}))
    with pytest.warns(SkippedResultWarning, match="plain.json"):
        assert load_results([plain]) == []
    with pytest.raises(FileNotFoundError, match="nope"):
        load_results([tmp_path / "nope"])


def test_duplicate_seed_is_an_error_naming_both_files(results_dir, tmp_path):
    write_result(tmp_path / "again" / "dup.json", _result("fno", 0, 10.0, 0.5))
    with pytest.raises(ResultError, match="seed0.json and .*dup.json are both seed 0 of row 'fno'"):
        leaderboard_rows(load_results([results_dir, tmp_path / "again"]))


def test_headline_and_threshold_columns_come_from_the_results():
    """The sort key is the PDE's (from the manifest via the result files), not a table in the leaderboard code;
    the correlation columns are the thresholds the results were scored with."""
    results = []
    for label, corr08, vrmse in (("a", 20.0, 0.9), ("b", 10.0, 0.1)):
        r = _plain(_result(label, 0, corr08, vrmse, "ks-small", "ks"))
        r["summary"]["corr_time_0.5"] = corr08 * 2
        results.append(r)
    ranked = leaderboard_rows(results)["ks-small"]
    assert [row["label"] for row in ranked] == ["a", "b"]  # corr_time_0.8, higher first
    corr_columns = [c for c in ranked[0]["columns"] if c.startswith("corr_time")]
    assert corr_columns == ["corr_time_0.5", "corr_time_0.8", "corr_time_0.9", "corr_time_0.95",
                            "corr_time_median_0.5"]
    for r in results:
        r["benchmark"] = {"frame_stride": 1, "headline": "vrmse_mean", "headline_goal": "min"}
    assert [row["label"] for row in leaderboard_rows(results)["ks-small"]] == ["b", "a"]
    table = build_tables(results)[0]
    assert table.columns[1].key == "vrmse_mean"  # a headline outside the standard columns is shown second
    assert "corr_time_0.5_mean" in to_csv(table).splitlines()[0]
    results[0]["benchmark"] = {"frame_stride": 1, "headline": "corr_time_0.8", "headline_goal": "max"}
    with pytest.raises(ResultError, match="disagree on the headline metric"):
        leaderboard_rows(results)


def _spectra(scale: float) -> dict:
    shells = np.arange(0, 9)
    true = np.exp(-shells / 2.0)[None, None, :].repeat(2, axis=0)  # [S=2, C=1, K]
    return {"steps": [1, 3], "shell": shells, "shell_unit": "mode number |m|", "band_edges": [2, 5],
            "pred": true * scale, "true": true, "ratio": np.full_like(true, scale)}


def test_file_names_of_two_tables_must_differ(tmp_path):
    with pytest.raises(ValueError, match="same file name"):
        write_leaderboard([_plain(_result("a", 0, 1.0, 0.1, dataset="x y")),
                           _plain(_result("a", 0, 1.0, 0.1, dataset="x_y"))], tmp_path / "clash")
    assert not (tmp_path / "clash" / "index.html").exists()


def test_curve_plot_draws_one_line_per_row(results_dir, tmp_path):
    table = next(t for t in build_tables(load_results([results_dir])) if t.name == "ks-small")
    png = plot_curves(table, tmp_path / "corr.png", "corr")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("space", [(16,), (6, 8)])
def test_sample_rollout_plot(tmp_path, space):
    """A result that stores one sample trajectory gets a space-time image (1-D) or frames (2-D); none, no plot."""
    table = build_tables([_plain(_result("fno", 0, 10.0, 0.5))])[0]
    assert plot_sample(table, tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()
    rng = np.random.default_rng(0)
    true = rng.standard_normal((5, *space))
    sample = {"trajectory": 3, "field": "u", "time": np.arange(1, 6) * 0.8, "true": true, "pred": true + 0.1}
    table = build_tables([_plain(_result("fno", 0, 10.0, 0.5, sample=sample))])[0]
    png = plot_sample(table, tmp_path / "sample.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_sample_plot_shows_the_best_surrogate_before_reference_rows():
    """A solver row ranked above the surrogate (it is more accurate) must not take the sample plot from it."""
    truth = np.zeros((3, 8))
    solver = _result("solver", 0, 20.0, 0.1, model="solver", checkpoint_sha256=None,
                     sample={"trajectory": 0, "field": "u", "time": [1, 2, 3], "true": truth, "pred": truth + 1})
    fno = _result("fno", 0, 10.0, 0.5, sample={"trajectory": 0, "field": "u", "time": [1, 2, 3], "true": truth,
                                                "pred": truth + 2})
    table = build_tables([_plain(solver), _plain(fno)])[0]
    assert [row["label"] for row in table.rows] == ["solver", "fno"]
    fig = sample_figure(table)
    prediction = next(ax for ax in fig.axes if ax.get_title("left").startswith("prediction"))
    assert prediction.get_title("left") == "prediction: fno"
    np.testing.assert_array_equal(prediction.collections[0].get_array().reshape(8, 3), truth.T + 2)


@pytest.mark.slow
def test_make_leaderboard_from_a_sweep_folder(results_dir, tmp_path):
    """`pdebench-leaderboard results=<sweep folder>` (a single path) reads it recursively, skips what is broken with
    a warning naming the file, and writes every format and every plot the results allow; a path that does not
    exist fails naming it."""
    write_result(results_dir / "solver" / "a.json", _solver("solver", 20.0, 100.0, stored=True))
    write_result(results_dir / "solver" / "b.json", _solver("solver-n64", 8.0, 2000.0, stored=False))
    for path in (results_dir / "fno" / "seed0.json", results_dir / "fno" / "seed1.json"):
        data = read_result(path)
        data["spectra"] = _spectra(0.9)
        write_result(path, data)
    (results_dir / "burgers" / "broken.json").write_text("{")
    out = tmp_path / "board"
    cfg = compose_config("leaderboard", [f"results={results_dir}", f"out_dir={out}", "print=false"])
    with pytest.warns(SkippedResultWarning, match="broken.json"):
        board = make_leaderboard(cfg, progress=False)
    assert [t.name for t in board.tables] == ["burgers-small", "ks-small"]
    assert len(board.skipped) == 1 and "broken.json" in board.skipped[0]
    assert sorted(p.name for p in board.written) == sorted([
        "ks-small.md", "ks-small.csv", "ks-small.tex", "ks-small_corr.png", "ks-small_nrmse.png",
        "ks-small_spectra.png", "ks-small_frontier.png",
        "burgers-small.md", "burgers-small.csv", "burgers-small.tex", "burgers-small_corr.png",
        "burgers-small_nrmse.png", "burgers-small_frontier.png", "index.html",
    ])
    for p in board.written:
        assert p.is_file() and p.stat().st_size > 0
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000
    assert board.written[-1].name == "index.html" and "broken.json" in (out / "index.html").read_text()
    assert set(board.markdown) == {"burgers-small", "ks-small"}
    with pytest.raises(FileNotFoundError, match="missing"):
        make_leaderboard(compose_config("leaderboard", [f"results=[{tmp_path / 'missing'}]",
                                                        f"out_dir={out}"]), progress=False)
    with pytest.raises(ValueError, match="results=3 is not valid: expected a result directory or file"):
        make_leaderboard(compose_config("leaderboard", ["results=3", f"out_dir={out}"]), progress=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no usable result files"):
        make_leaderboard(compose_config("leaderboard", [f"results=[{empty}]", f"out_dir={out}"]), progress=False)
