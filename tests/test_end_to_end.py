"""generate tiny -> train a few steps -> evaluate (checkpoint and persistence) -> leaderboard, via the real CLIs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from cli import TINY_TRAIN, run_cli

from pdebench.data.manifest import manifest_hash
from pdebench.data.reader import TrajectoryFile


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("e2e")
    run_cli("generate", "pde=ks", "preset=tiny", "batch_size=4", "device=cpu", cwd=work)
    run_cli("train", "data=ks", "model=fno", *TINY_TRAIN, cwd=work)
    ckpt = "runs/ks-tiny/fno-w16/seed0/checkpoints/best.ckpt"  # the label names the width (16, not 64)
    run_cli("evaluate", f"ckpt={ckpt}", cwd=work)  # dataset, label and seed come from the checkpoint
    run_cli("evaluate", "model=persistence", "data=ks", "data.preset=tiny", cwd=work)
    run_cli("leaderboard", cwd=work)
    return work


@pytest.mark.slow
@pytest.mark.subprocess
def test_generate_writes_every_split_and_manifest(pipeline: Path) -> None:
    dataset = pipeline / "data" / "ks-tiny"
    manifest = json.loads((dataset / "manifest.json").read_text())
    assert set(manifest["splits"]) == {"train", "valid", "test"}
    with TrajectoryFile(dataset / "test.h5") as test:
        assert (test.pde, test.preset, test.split) == ("ks", "tiny", "test")
        assert test.n_traj == manifest["splits"]["test"]["n_traj"]


@pytest.mark.slow
@pytest.mark.subprocess
def test_training_keeps_best_and_last_checkpoints(pipeline: Path) -> None:
    checkpoints = pipeline / "runs" / "ks-tiny" / "fno-w16" / "seed0" / "checkpoints"
    assert (checkpoints / "best.ckpt").is_file() and (checkpoints / "last.ckpt").is_file()
    log = pipeline / "runs" / "ks-tiny" / "fno-w16" / "seed0" / "logs" / "version_0" / "metrics.csv"
    metrics = list(csv.DictReader(log.open()))
    assert any(row.get("val/rollout_nrmse") for row in metrics), "validation rollout metric was never logged"


@pytest.mark.slow
@pytest.mark.subprocess
def test_result_files_carry_provenance(pipeline: Path) -> None:
    fno = json.loads((pipeline / "results" / "ks-tiny" / "fno-w16-seed0.json").read_text())
    persistence = json.loads((pipeline / "results" / "ks-tiny" / "persistence-seed0.json").read_text())
    manifest = manifest_hash(pipeline / "data" / "ks-tiny")
    assert fno["manifest_sha256"] == persistence["manifest_sha256"] == manifest
    assert len(fno["checkpoint_sha256"]) == 64 and fno["n_parameters"] > 0 and fno["train_time_s"] > 0
    assert persistence["checkpoint_sha256"] is None and persistence["n_parameters"] == 0
    assert fno["config"]["model"]["hidden_channels"] == 16
    # tiny test trajectories: 48 frames at stride 4 -> 12 model frames, 1 input -> 11 predicted steps
    assert fno["n_steps"] == persistence["n_steps"] == 11
    assert len(fno["curves"]["corr"]) == 11
    assert 0.7 < fno["step_time"] < 0.9


@pytest.mark.slow
@pytest.mark.subprocess
def test_leaderboard_tables_and_plot(pipeline: Path) -> None:
    board = pipeline / "leaderboard"
    table = (board / "ks-tiny.md").read_text()
    assert "| fno-w16 |" in table and "| persistence |" in table
    rows = list(csv.DictReader((board / "ks-tiny.csv").open()))
    assert {row["label"] for row in rows} == {"fno-w16", "persistence"}
    assert (board / "ks-tiny_corr.png").stat().st_size > 1000


@pytest.mark.slow
@pytest.mark.subprocess
def test_seed_sweep_on_submitit_launcher_aggregates_in_the_leaderboard(pipeline: Path) -> None:
    """`-m seed=0,1` through real submitit jobs writes one result per seed; the leaderboard counts both."""
    run_cli("evaluate", "-m", "model=persistence", "data=ks", "data.preset=tiny", "seed=0,1", "results_dir=sweep",
            "hydra/launcher=submitit_local", cwd=pipeline)
    assert sorted(p.name for p in (pipeline / "sweep" / "ks-tiny").glob("*.json")) == [
        "persistence-seed0.json", "persistence-seed1.json"]
    run_cli("leaderboard", "results=[sweep]", "out_dir=sweep_board", cwd=pipeline)
    row = next(csv.DictReader((pipeline / "sweep_board" / "ks-tiny.csv").open()))
    assert row["seeds"] == "2" and float(row["corr_time_0.8_std"]) == 0.0  # persistence is deterministic
