"""`pdebench-board` and `make leaderboard-ks`: the board file, its entries at each scale, the commands it launches,
the whole pipeline on ks-tiny (resumed), and the committed KS board traced back to its result files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from pdebench.cli import board as board_cli
from pdebench.cli.board import Plan, evaluate_commands, generate_command, load_board, plan_board, train_command
from pdebench.cli.hydra_setup import composed, width_setting
from pdebench.cli.tune import scaled_width
from pdebench.errors import InvalidSetting
from pdebench.leaderboard.board_report import (
    against_baseline,
    board_report,
    render_board_md,
    source_numbers,
    spread_against_error,
    untraceable_numbers,
)
from tests.cli import run_main

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "leaderboard" / "ks"
# The rows issue 26 names, as entries of the KS board.
ISSUE_ROWS = {"ks_fno", "ks_unet", "ks_unet_pushforward", "ks_unet_derivative", "ks_mpnn", "ks_sinenet",
              "ks_pderefiner", "ks_t1", "ks_dyffusion"}


@pytest.fixture(scope="module")
def ks_board() -> board_cli.Board:
    return load_board("ks")


@pytest.fixture(scope="module")
def cpu_plan(ks_board: board_cli.Board) -> Plan:
    return plan_board(ks_board, "cpu", "data")


def _train_cfg(plan: Plan, entry: str) -> dict[str, Any]:
    return composed("train", [plan.entry_override([entry]), f"data.preset={plan.scale.preset}", *plan.scale.train])


def test_the_ks_board_holds_every_row_of_the_issue(ks_board: board_cli.Board) -> None:
    assert set(ks_board.entries) == ISSUE_ROWS
    assert ks_board.references == ("solver", "persistence")  # the solver first: the others' speed-ups need it
    assert ks_board.baseline == "ks_unet"
    assert ks_board.stochastic == {"ks_pderefiner", "ks_dyffusion"}


@pytest.mark.slow  # composes every entry of the board at both scales: seconds
def test_the_stochastic_entries_are_the_ones_whose_model_samples(ks_board: board_cli.Board) -> None:
    """An entry is evaluated as an ensemble exactly when its net can draw members (`sample`)."""
    from baselines import MODELS, NetSpec, build_model
    from baselines.sampling import BatchedSampling
    from pdebench.data.grid import Grid

    spec = NetSpec(("u",), 1, 1, ("L", "dt"), Grid.uniform("periodic", (32,)))
    names = {e: composed("train", [f"experiment={e}"])["model"]["name"] for e in ks_board.entries}
    sampling = {e for e, name in names.items()
                if isinstance(build_model(MODELS[name].config.tiny(), spec), BatchedSampling)}
    assert sampling == ks_board.stochastic


@pytest.mark.slow  # composes every entry of the board at both scales: seconds
def test_cpu_entries_are_at_a_quarter_of_their_reference_width_and_paper_entries_at_it(
        ks_board: board_cli.Board, cpu_plan: Plan) -> None:
    paper = plan_board(ks_board, "paper", "data", launcher="slurm")
    for entry in ks_board.entries:
        key, cpu_width, reference = width_setting(_train_cfg(cpu_plan, entry)["model"])
        _, paper_width, paper_reference = width_setting(_train_cfg(paper, entry)["model"])
        assert (paper_width, paper_reference) == (reference, reference), entry
        # DYffusion's reference (the zoo U-Net at 16) is halved, not quartered: its output head normalises in 8
        # groups, so 8 channels is the narrowest it builds (conf/board/cpu/ks_dyffusion.yaml).
        expected = 8 if entry == "ks_dyffusion" else scaled_width(reference, 0.25)
        assert cpu_width == expected, entry
    head_groups = composed("train", ["experiment=ks_dyffusion"])["model"]["backbone"].get("head_norm_groups", 8)
    assert scaled_width(16, 0.25) < head_groups == 8
    labels = {j.entry: j.label for j in cpu_plan.jobs}
    assert labels["ks_unet"] == "unet-w16" and labels["ks_mpnn"] == "mpnn-w32" and labels["ks_t1"] == "t1-w12"
    assert labels["ks_unet_pushforward"] == "unet-w16-pushforward"
    assert labels["ks_unet_derivative"] == "unet-w16-derivative"
    assert {j.label for j in paper.jobs} >= {"unet", "unet-pushforward", "unet-derivative", "pderefiner", "fno"}


@pytest.mark.slow  # composes every entry of the board at both scales: seconds
def test_every_cpu_entry_trains_under_the_one_recipe_and_budget(ks_board: board_cli.Board, cpu_plan: Plan) -> None:
    """One budget and one recipe for every learned row: steps, batch, optimiser, schedule, EMA and loss agree, and
    the rows depart from the recipe only in their objective, target or bundle (each the row's point)."""
    recipe = composed("train", ["recipe=ks"])
    for entry in ks_board.entries:
        cfg = _train_cfg(cpu_plan, entry)
        assert cfg["trainer"]["max_steps"] == 1500, entry
        assert cfg["data"]["batch_size"] == recipe["data"]["batch_size"] == 32, entry
        assert cfg["data"]["preset"] == "small"
        for key in ("lr", "weight_decay", "warmup_fraction", "min_lr_ratio", "ema_decay"):
            assert cfg["optim"][key] == recipe["optim"][key], (entry, key)
        assert cfg["objective"]["loss"] == "mse", entry
    derivative = _train_cfg(cpu_plan, "ks_unet_derivative")["objective"]
    assert (derivative["target"], derivative["integrator"], derivative["fd_order"]) == ("derivative", "rk4", 2)
    assert _train_cfg(cpu_plan, "ks_unet_pushforward")["objective"]["name"] == "pushforward"


@pytest.mark.slow  # composes every entry of the board at both scales: seconds
def test_the_paper_scale_composes_for_gpus_with_pde_refiners_training_length(ks_board: board_cli.Board) -> None:
    plan = plan_board(ks_board, "paper", "data", launcher="slurm")
    assert len(plan.jobs) == len(ks_board.entries) * 3
    if not torch.cuda.is_available():  # on this machine, without a cluster, the GPU scale is refused up front
        with pytest.raises(InvalidSetting, match="trainer.accelerator=gpu asks for a GPU but no CUDA device"):
            plan_board(ks_board, "paper", "data")
    cfg = _train_cfg(plan, "ks_pderefiner")
    # PDE-Refiner: 400 epochs x 140 windows of 2,048 trajectories at batch 128
    assert cfg["trainer"]["max_steps"] == 400 * 140 * 2048 // 128 == 896_000
    assert cfg["data"]["batch_size"] == 128 and cfg["trainer"]["accelerator"] == "gpu"
    assert cfg["data"]["preset"] == "paper" and cfg["model"]["backbone"].get("hidden_channels", 64) == 64
    command = train_command(plan, "T")
    assert "hydra/launcher=slurm" in command and "seed=0,1,2" in command
    assert any(a.startswith("experiment=ks_fno,") for a in command)


def test_commands_skip_what_has_a_result(tmp_path: Path, ks_board: board_cli.Board,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    plan = plan_board(ks_board, "cpu", "data", entries=["ks_fno", "ks_pderefiner"], preset="tiny")
    assert generate_command(plan)[-3:] == ["pde=ks", "preset=tiny", "root=data"]
    assert plan.results_dir == Path("leaderboard/ks-tiny/results")  # a check never writes into the board's folder
    assert plan.scale.runs_dir == Path("runs/board/ks-cpu-tiny")
    deterministic, stochastic = evaluate_commands(plan, "T")
    assert "ckpt=runs/board/ks-cpu-tiny/fno-w16/seed0" in deterministic and "rollout.ensemble=4" not in deterministic
    assert "ckpt=runs/board/ks-cpu-tiny/pderefiner-w16/seed0" in stochastic and "rollout.ensemble=4" in stochastic
    fno = next(j for j in plan.jobs if j.entry == "ks_fno")
    fno.result.parent.mkdir(parents=True)
    fno.result.write_text("{}")
    (stochastic_only,) = evaluate_commands(plan, "T")
    assert "rollout.ensemble=4" in stochastic_only
    assert "+board/cpu=ks_pderefiner" in train_command(plan, "T")  # fno has its result: not trained again
    (tmp_path / "data" / "ks-tiny").mkdir(parents=True)
    (tmp_path / "data" / "ks-tiny" / "manifest.json").write_text("{}")
    assert generate_command(plan) is None


GOOD_SCALE = {"preset": "tiny", "seeds": [0], "entry_group": None, "train": [], "out_dir": "o", "runs_dir": "r"}
GOOD_BOARD = {"pde": "ks", "entries": ["ks_fno"], "baseline": "ks_fno", "references": [], "stochastic": [],
              "ensemble": 4, "published": {"source": "x"}, "scales": {"cpu": GOOD_SCALE}}


def _board_text(**changes: Any) -> str:
    return yaml.safe_dump({**GOOD_BOARD, **changes})


@pytest.mark.parametrize(("text", "message"), [
    ("pde: ks\n", "expected exactly the keys"),
    (_board_text(baseline="ks_unet"), "baseline 'ks_unet' is not an entry"),
    (_board_text(stochastic=["ks_t1"]), "stochastic names ['ks_t1'], which are not entries"),
    (_board_text(scales={"cpu": {**GOOD_SCALE, "seeds": [0, 0]}}),
     "scales.cpu.seeds must be a non-empty list of distinct seeds"),
    (_board_text(scales={"cpu": {**GOOD_SCALE, "entry_group": "nowhere"}}),
     "scales.cpu.entry_group='nowhere' is not a config group"),
    (_board_text(published=75), "published must be a mapping of the published facts the board is set against"),
    (_board_text(ensemble=1), "ensemble must be a number of members >= 2"),
    ("entries: [unclosed\n", "is not valid YAML"),
])
def test_a_bad_board_file_is_refused_naming_its_file_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              text: str, message: str) -> None:
    (tmp_path / "board").mkdir()
    (tmp_path / "board" / "mine.yaml").write_text(text)
    monkeypatch.setattr(board_cli, "CONFIG_DIR", str(tmp_path))
    with pytest.raises(InvalidSetting, match="mine.yaml") as caught:
        load_board("mine")
    assert message in str(caught.value)


@pytest.mark.parametrize(("args", "message"), [
    (["nosuch"], "error: board 'nosuch' does not exist; boards: ks"),
    (["ks", "--scale", "huge"], "no scale 'huge'; scales: cpu, paper"),
    (["ks", "--entry", "ks_nosuch"], "has no entry ks_nosuch; entries: ks_fno"),
    (["ks", "--launcher", "nosuch"], "--launcher nosuch is not a launcher of conf/hydra/launcher/"),
    (["ks", "model.nosuch=1", "--dry-run"], "error: model.nosuch is not a setting of model; valid keys: name, n_modes"),
])
def test_bad_command_lines_get_one_sentence_and_write_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str], args: list[str],
                                                               message: str) -> None:
    finished = run_main("board", *args, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert finished.returncode == 1
    assert len(finished.stderr.strip().splitlines()) == 1 and message in finished.stderr
    assert list(tmp_path.iterdir()) == []


def _result(label: str, seed: int, value: float, interval: list[float], **curves: list[float]) -> dict[str, Any]:
    return {"label": label, "seed": seed, "dataset": "d", "summary": {"corr_time_0.8": value},
            "intervals": {"corr_time_0.8": interval}, "curves": {"step": list(range(1, 1 + len(
                next(iter(curves.values()), [])))), **curves}, "scoring": {"ensemble": 4}}


def test_the_ratio_over_the_baseline_and_its_crosswise_interval() -> None:
    rows = [{"label": "base", "h": 40.0, "h_interval": [36.0, 44.0]},
            {"label": "new", "h": 50.0, "h_interval": [45.0, 55.0]}]
    ratios = {r["label"]: r for r in against_baseline(rows, "base", "h")}
    assert ratios["new"]["ratio"] == 50.0 / 40.0
    assert ratios["new"]["ratio_interval"] == [45.0 / 44.0, 55.0 / 36.0]  # low over high, high over low
    assert ratios["base"]["ratio"] == 1.0
    with pytest.raises(KeyError, match="no row labelled 'gone'"):
        against_baseline(rows, "gone", "h")


def test_spread_against_error_reads_stds_and_correlates_over_the_first_steps() -> None:
    spread2 = [0.01, 0.04, 0.09, 0.16, 0.25, 0.25]  # spread 0.1 .. 0.5, then flat
    ens_mse = [0.04, 0.16, 0.36, 0.64, 1.0, 0.25]   # error 0.2 .. 1.0, then falls
    seeds = [_result("r", 0, 1.0, [0.9, 1.1], spread2=spread2, ens_mse=ens_mse),
             _result("r", 1, 1.0, [0.9, 1.1], spread2=[4 * v for v in spread2], ens_mse=ens_mse)]
    seeds[0]["summary"].update(crps_mean=0.3, spread_skill_ratio=0.5)
    seeds[1]["summary"].update(crps_mean=0.5, spread_skill_ratio=0.7)
    report = spread_against_error("r", seeds, horizon=5)
    assert report["steps"] == [1, 5]
    assert report["spread"] == pytest.approx([0.15, 0.75])  # seed mean of 0.1 and 0.2, of 0.5 and 1.0
    assert report["error"] == pytest.approx([0.2, 1.0])
    assert report["correlation_first_steps"] == pytest.approx(1.0)  # both rise linearly over steps 1-5
    assert report["correlation_all_steps"] < 0.9  # step 6: the error falls while the spread stays
    assert report["crps_mean"] == pytest.approx(0.4) and report["spread_skill_ratio"] == pytest.approx(0.6)
    assert spread_against_error("r", [_result("r", 0, 1.0, [0.9, 1.1], mse=[1.0])], 5) is None


def _seed(seed: int, corr: float, interval: list[float] | None, one_step: float | None, frontier: dict | None,
          throughput: float, train_time: float | None, **extra: Any) -> dict[str, Any]:
    return {"seed": seed, "summary": {"corr_time_0.8": corr, "one_step_nrmse": one_step, **extra.pop("summary", {})},
            "intervals": {"corr_time_0.8": interval}, "frontier": frontier, "throughput_traj_steps_per_s": throughput,
            "train_time_s": train_time, "n_parameters": extra.pop("n_parameters", 1000),
            "benchmark": {"headline": "corr_time_0.8", "gmean_steps": 3}, "curves": extra.pop("curves", {}), **extra}


def test_the_board_report_is_read_back_whole() -> None:
    """Two learned rows: a U-Net of two seeds (given in the order 1, 0) and a one-seed ensemble. Seed means by hand;
    the ensemble's spread and error are the square roots of its curves, correlated over the benchmark's 3 gmean steps
    and over all 6."""
    unet = [_seed(1, 22.0, [20.0, 26.0], 0.03, {"speedup": 1.5, "status": "interpolated", "speedup_at_equal_grid": 4.0},
                  300.0, 50.0),
            _seed(0, 20.0, [18.0, 22.0], 0.01, {"speedup": 0.5, "status": "below_frontier",
                                                "speedup_at_equal_grid": 2.0}, 100.0, 30.0)]
    spread, error = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2.0, 4.0, 6.0, 8.0, 10.0, 13.0]
    refiner = [_seed(0, 10.5, [9.5, 12.0], 0.05, None, 30.0, None, n_parameters=2000, scoring={"ensemble": 4},
                     summary={"crps_mean": 0.4, "spread_skill_ratio": 0.25},
                     curves={"step": [1, 2, 3, 4, 5, 6], "spread2": [v * v for v in spread],
                             "ens_mse": [v * v for v in error]})]
    report = board_report({"unet": unet, "refiner": refiner}, "unet")
    assert report == {
        "headline": "corr_time_0.8", "baseline": "unet",
        "rows": [
            {"label": "unet", "seeds": [0, 1], "corr_time_0.8": 21.0, "corr_time_0.8_interval": [19.0, 24.0],
             "one_step_nrmse": pytest.approx(0.02, rel=1e-15), "throughput_traj_steps_per_s": 200.0,
             "speedup_at_equal_accuracy": 1.0, "frontier_status": ["below_frontier", "interpolated"],
             "speedup_at_equal_grid": 3.0, "train_time_s": 40.0, "n_parameters": 1000},
            {"label": "refiner", "seeds": [0], "corr_time_0.8": 10.5, "corr_time_0.8_interval": [9.5, 12.0],
             "one_step_nrmse": 0.05, "throughput_traj_steps_per_s": 30.0, "speedup_at_equal_accuracy": None,
             "frontier_status": ["None"], "speedup_at_equal_grid": None, "train_time_s": None,
             "n_parameters": 2000}],
        "against_baseline": [
            {"label": "unet", "over": "unet", "ratio": 1.0, "ratio_interval": [19.0 / 24.0, 24.0 / 19.0]},
            {"label": "refiner", "over": "unet", "ratio": 0.5, "ratio_interval": [9.5 / 24.0, 12.0 / 19.0]}],
        "ensembles": [
            {"label": "refiner", "members": 4, "crps_mean": 0.4, "spread_skill_ratio": 0.25, "horizon_steps": 3,
             "correlation_first_steps": pytest.approx(1.0, rel=1e-12),
             "correlation_all_steps": pytest.approx(float(np.corrcoef(spread, error)[0, 1]), rel=1e-12),
             "steps": [1, 5], "spread": [1.0, 5.0], "error": [2.0, 10.0]}]}
    assert report["ensembles"][0]["correlation_all_steps"] < 0.999  # the last step bends, so all 6 are not a line


def test_a_seed_without_a_number_leaves_the_rows_mean_empty() -> None:
    """A diverged seed (NaN) or one without an interval is never averaged away; a zero baseline gives no ratio."""
    seeds = [_seed(0, 20.0, [18.0, 22.0], float("nan"), None, 100.0, 30.0),
             _seed(1, 22.0, None, 0.02, None, 100.0, 30.0)]
    row = board_report({"x": seeds}, "x")["rows"][0]
    assert (row["one_step_nrmse"], row["corr_time_0.8_interval"]) == (None, None)
    zero = [_seed(0, 0.0, [0.0, 0.0], 0.02, None, 100.0, 30.0)]
    assert board_report({"z": zero}, "z")["against_baseline"] == [
        {"label": "z", "over": "z", "ratio": None, "ratio_interval": None}]
    with pytest.raises(ValueError, match="^no results to report on$"):
        board_report({}, "x")


def test_board_md_is_read_back_whole() -> None:
    """The page of a small record, line for line: every number formatted from the record (ratio 10.5 / 20 = 0.525,
    its interval 9.5 / 22 and 12 / 18), a missing value as a dash, commits cut to 7 characters, a scale whose entry
    group is not a plain group name escaped."""
    spread, error = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2.0, 4.0, 6.0, 8.0, 10.0, 13.0]
    unet = [_seed(0, 20.0, [18.0, 22.0], 0.01, {"speedup": 0.5, "status": "below_frontier",
                                                "speedup_at_equal_grid": 2.0}, 100.0, 30.0)]
    refiner = [_seed(0, 10.5, [9.5, 12.0], 0.05, None, 30.0, None, n_parameters=2000, scoring={"ensemble": 4},
                     summary={"crps_mean": 0.4, "spread_skill_ratio": 0.25},
                     curves={"step": [1, 2, 3, 4, 5, 6], "spread2": [v * v for v in spread],
                             "ens_mse": [v * v for v in error]})]
    record = {
        "board": "ks", "scale": "cpu", "command": "pdebench-board ks", "dataset": "ks-small",
        "manifest_sha256": ["abc123"], "git_commit": "0123456789abcdef", "date": "2026-12-07",
        "machine": {"cpu": "x86_64", "logical_cpus": 2, "system": "Linux", "python": "3.11.7"}, "launcher": "basic",
        "seeds": [0], "train_overrides": ["trainer.max_steps=1500"],
        "step_wall_s": {"train": 3116.4, "evaluate": 670.2},
        "entries": [{"entry": "ks_unet", "label": "unet", "seed": 0, "n_parameters": 1000, "train_time_s": 30.0,
                     "train_commit": "fedcba9876543210", "git_commit": "0123456789abcdef", "deviations": []},
                    {"entry": "ks_pderefiner", "label": "refiner", "seed": 0, "n_parameters": 2000,
                     "train_time_s": None, "train_commit": None, "git_commit": "0123456789abcdef",
                     "deviations": ["max_steps: 1500", "lr: 1e-4"]}],
        "comparisons": board_report({"unet": unet, "refiner": refiner}, "unet"),
        "scales": {"cpu": {"entry_group": "board/cpu", "preset": "small", "seeds": [0],
                           "train": ["trainer.max_steps=1500"]},
                   "paper": {"entry_group": None, "preset": "paper", "seeds": [0, 1, 2],
                             "train": ["trainer=gpu", "data.batch_size=128"]},
                   "odd": {"entry_group": "a b", "preset": "small", "seeds": [0], "train": []}}}
    assert render_board_md(record).splitlines() == (
    '# ks board, cpu scale: how it was built\n'
    '\n'
    'Written by `pdebench-board` from the result files in `results/` (every number below is in `board.json` or a '
    'result file). The narrative is in `README.md`.\n'
    '\n'
    '- command: `pdebench-board ks`\n'
    '- dataset: `ks-small`, manifest sha256 `abc123`\n'
    '- source: git commit `0123456789abcdef`, built 2026-12-07\n'
    '- machine: x86_64, 2 logical CPUs, Linux, Python 3.11.7; launcher basic\n'
    '- seeds: 0; training overrides of every entry: `trainer.max_steps=1500`\n'
    '- wall time of each step (s; the last time it had work): train 3116, evaluate 670\n'
    '\n'
    '## Entries\n'
    '\n'
    '| entry | label | seed | parameters | training wall time (s) | trained at, evaluated at | departures from the '
    'recipe |\n'
    '|---|---|---:|---:|---:|---|---|\n'
    '| ks_unet | unet | 0 | 1,000 | 30 | `fedcba9`, `0123456` | — |\n'
    '| ks_pderefiner | refiner | 0 | 2,000 | — | —, `0123456` | max_steps: 1500; lr: 1e-4 |\n'
    '\n'
    '## corr_time_0.8 against unet\n'
    '\n'
    "Seed means; brackets: 95% intervals (bootstrap over test trajectories; the ratio's interval divides the two "
    "intervals' ends crosswise, so it is conservative).\n"
    '\n'
    '| label | corr_time_0.8 | ratio over unet | one-step nRMSE | throughput (traj-steps/s) | speed-up at equal '
    'accuracy (x) | frontier | speed-up at equal grid (x) |\n'
    '|---|---:|---:|---:|---:|---:|---|---:|\n'
    '| unet | 20 [18, 22] | 1 [0.8182, 1.222] | 0.01 | 100 | 0.5 | below_frontier | 2 |\n'
    '| refiner | 10.5 [9.5, 12] | 0.525 [0.4318, 0.6667] | 0.05 | 30 | — | None | — |\n'
    '\n'
    '## Ensembles: spread against error over rollout time\n'
    '\n'
    "Spread: RMS std of the members about their mean; error: RMSE of the ensemble mean (both trajectory means, "
    "seed means). Correlation: Pearson's over steps.\n"
    '\n'
    '| label | members | CRPS | spread/skill | corr(spread, error), first steps | all steps | spread at steps | '
    'error at steps |\n'
    '|---|---:|---:|---:|---:|---:|---|---|\n'
    '| refiner | 4 | 0.4 | 0.25 | 1.000 (3 steps) | 0.997 | 1: 1, 5: 5 | 1: 2, 5: 10 |\n'
    '\n'
    '## Scales of this board\n'
    '\n'
    '| scale | preset | seeds | entries | training overrides |\n'
    '|---|---|---|---|---|\n'
    '| cpu | small | 0 | `+board/cpu=<entry>` | `trainer.max_steps=1500` |\n'
    '| paper | paper | 0, 1, 2 | `experiment=<entry>` | `trainer=gpu`, `data.batch_size=128` |\n'
    '| odd | small | 0 | +a b=&lt;entry> |  |\n'
    ).splitlines()
    record["train_overrides"], record["comparisons"]["ensembles"] = [], []
    page = render_board_md(record)
    assert "training overrides of every entry: none" in page and "## Ensembles" not in page


def test_a_number_is_traceable_only_when_a_source_prints_as_it() -> None:
    sources = source_numbers([{"summary": {"a": 0.123456, "b": 1706722}, "label": "x", "curves": {"c": [0.5]},
                               "run": {"deviations": ["max_steps: 1500 (the recipe says 40000)"]}}])
    ok = "| x | 0.1235 | 0.12 | 1,706,722 | 1500 | 40000 | 12.3% | 1.235e-01 | ends at 1,706,722. Or 0.1235, then |"
    assert untraceable_numbers(ok, sources) == []
    # curves are left out; a number inside a name is not a number, nor is code (a command, a commit such as 5809e24)
    assert untraceable_numbers("| 0.1236 | 0.5 | unet-w16 | solver-n48-dt4x | `5809e24` |\n```\nmake 77\n```\n",
                               sources) == ["0.1236", "0.5"]


def test_seed_std_is_traceable() -> None:
    seeds = [{"label": "x", "dataset": "d", "summary": {"a": v}} for v in (1.0, 2.0, 4.0)]
    sources = source_numbers(seeds)
    assert untraceable_numbers("2.333 ± 1.528", sources) == []
    assert untraceable_numbers("2.333 ± 1.529", sources) == ["1.529"]


def _committed_sources() -> Any:
    records = [json.loads(p.read_text()) for p in sorted((COMMITTED / "results").rglob("*.json"))]
    records.append(json.loads((COMMITTED / "board.json").read_text()))
    return source_numbers(records)


def test_every_number_of_the_committed_ks_board_comes_from_its_result_files() -> None:
    """leaderboard/ks/*.md (tables, board.md, README) against the result files and board.json committed beside
    them: a number typed by hand, or a table left stale by a rerun, fails here."""
    pages = sorted(COMMITTED.glob("*.md"))
    assert {p.name for p in pages} >= {"README.md", "board.md", "ks-small.md"}
    sources = _committed_sources()
    for page in pages:
        assert untraceable_numbers(page.read_text(), sources) == [], page.name


def test_the_check_of_the_committed_board_fails_on_a_changed_digit() -> None:
    table = (COMMITTED / "ks-small.md").read_text()
    sources = _committed_sources()
    row = next(line for line in table.splitlines() if line.startswith("| unet |"))
    cells = row.split(" | ")
    nrmse = cells[7]  # one-step nRMSE of the U-Net row
    doctored = nrmse[:-1] + str((int(nrmse[-1]) + 3) % 10)
    assert untraceable_numbers(row.replace(nrmse, doctored), sources) == [doctored]


def test_the_committed_board_names_no_absolute_path_and_every_result_is_its_commands() -> None:
    board = json.loads((COMMITTED / "board.json").read_text())
    assert board["command"].startswith("pdebench-board ks")
    for path in [*(COMMITTED / "results").rglob("*.json"), COMMITTED / "board.json"]:
        text = path.read_text()
        assert '"/' not in text, path.name
    results = {p.stem for p in (COMMITTED / "results" / board["dataset"]).glob("*.json")}
    assert {f"{e['label']}-seed{e['seed']}" for e in board["entries"]} <= results
    assert {e["entry"] for e in board["entries"]} == ISSUE_ROWS
    assert "persistence-seed0" in results and {"solver-seed0", "solver-n48-seed0"} <= results


@pytest.mark.slow
@pytest.mark.subprocess
def test_the_board_pipeline_on_tiny_builds_then_resumes(data_root: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The command `make leaderboard-ks` runs, on ks-tiny with two cheap entries (one of them an ensemble) and one
    seed: dataset, references, training, evaluation, tables, board.json; then a rerun does no work, and a lost
    result is evaluated again alone."""
    root = tmp_path / "data"
    shutil.copytree(data_root / "ks-tiny", root / "ks-tiny")
    args = ["ks", "--preset", "tiny", "--entry", "ks_fno", "--entry", "ks_pderefiner", "--root", str(root),
            "trainer.max_steps=4"]
    first = run_main("board", *args, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert first.returncode == 0, first.stderr
    out = tmp_path / "leaderboard" / "ks-tiny"  # beside the board's own folder, never in it
    results = out / "results" / "ks-tiny"
    assert {"fno-w16-seed0.json", "pderefiner-w16-seed0.json", "persistence-seed0.json",
            "solver-seed0.json"} <= {p.name for p in results.iterdir()}
    table = (out / "ks-tiny.md").read_text()
    assert "| fno-w16 |" in table and "| pderefiner-w16 |" in table
    board = json.loads((out / "board.json").read_text())
    fno = json.loads((results / "fno-w16-seed0.json").read_text())
    entry = next(e for e in board["entries"] if e["label"] == "fno-w16")
    assert entry["n_parameters"] == fno["n_parameters"] and entry["train_time_s"] == fno["train_time_s"]
    assert [e["label"] for e in board["comparisons"]["ensembles"]] == ["pderefiner-w16"]
    assert board["comparisons"]["ensembles"][0]["members"] == 4
    assert board["command"] == "pdebench-board " + " ".join(args)
    sources = source_numbers([*(json.loads(p.read_text()) for p in results.glob("*.json")), board])
    assert untraceable_numbers(table + (out / "board.md").read_text(), sources) == []

    stamps = {p.name: p.stat().st_mtime_ns for p in results.iterdir()}
    again = run_main("board", *args, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert again.returncode == 0, again.stderr
    for step in ("generate the dataset", "evaluate the reference rows", "train"):
        assert f"- {step}: nothing to do" in again.stdout
    assert {p.name: p.stat().st_mtime_ns for p in results.iterdir()} == stamps
    rewritten = json.loads((out / "board.json").read_text())
    assert rewritten["step_wall_s"]["train"] == board["step_wall_s"]["train"] > 0  # the time it took when it ran

    (results / "fno-w16-seed0.json").unlink()
    third = run_main("board", *args, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert third.returncode == 0, third.stderr
    trained = third.stdout.split("- train:")[1].split("\n")[0]
    assert "+board/cpu=ks_fno " in trained and "ks_pderefiner" not in trained
    assert (results / "fno-w16-seed0.json").is_file()
    assert (results / "pderefiner-w16-seed0.json").stat().st_mtime_ns == stamps["pderefiner-w16-seed0.json"]


def test_board_md_writes_texts_of_the_record_as_literal_markdown() -> None:
    """Labels and departures come from result files: a `|`, a tag or a link in them stays text in board.md."""
    from pdebench.leaderboard.board_report import render_board_md

    record = json.loads((COMMITTED / "board.json").read_text())
    hostile = "x|<img src=y onerror=z>[a](javascript:b)"
    record["entries"][0]["label"] = hostile
    record["entries"][0]["deviations"] = [hostile]
    record["comparisons"]["rows"][0]["label"] = hostile
    record["comparisons"]["against_baseline"][0]["label"] = hostile
    page = render_board_md(record)
    assert "<img" not in page and "](javascript" not in page and "x|<" not in page
    assert page.count("x\\|&lt;img src=y onerror=z>[a]\\(javascript:b)") == 3
    row = next(line for line in page.splitlines() if "onerror" in line and line.startswith("| ks_fno"))
    assert row.replace("\\|", "").count("|") == 8  # the 7 cells of the entries table, none added
