"""Bad input stops each command with one clear sentence (exit 1, no stack trace), naming what was wrong."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import pytest
from cli import TINY_TRAIN, run_cli


def assert_one_clear_error(proc, *fragments: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    for fragment in fragments:
        assert fragment in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    """A working directory whose `data/` holds ks-tiny plus two doctored copies of it."""
    work = tmp_path_factory.mktemp("errors")
    shutil.copytree(data_root / "ks-tiny", work / "data" / "ks-tiny")
    shutil.copytree(data_root / "ks-tiny", work / "data" / "ks-copy")
    shutil.copytree(data_root / "ks-tiny", work / "data" / "ks-old")
    for split in ("train", "valid", "test"):
        with h5py.File(work / "data" / "ks-old" / f"{split}.h5", "r+") as f:
            f.attrs["schema_version"] = "0.9"
    return work


def test_unknown_pde(workdir: Path) -> None:
    proc = run_cli("generate", "pde=navier", "preset=tiny", cwd=workdir, check=False)
    assert_one_clear_error(proc, "pde/navier", "ks")


def test_unknown_preset(workdir: Path) -> None:
    proc = run_cli("generate", "pde=ks", "preset=huge", cwd=workdir, check=False)
    assert_one_clear_error(proc, "unknown preset 'huge'", "tiny, small, paper")


def test_missing_dataset_directory(workdir: Path) -> None:
    proc = run_cli("train", "data=ks", "data.preset=small", cwd=workdir, check=False)
    assert_one_clear_error(proc, "ks-small", "pdebench-generate pde=ks preset=small")


def test_unsupported_schema_version(workdir: Path) -> None:
    proc = run_cli("evaluate", "model=persistence", "data.preset=old", cwd=workdir, check=False)
    assert_one_clear_error(proc, "test.h5", "0.9")


def test_checkpoint_from_another_dataset(workdir: Path) -> None:
    run_cli("train", *TINY_TRAIN, "trainer.limit_train_batches=1", cwd=workdir)
    ckpt = "runs/ks-tiny/fno/seed0/checkpoints/best.ckpt"
    proc = run_cli("evaluate", f"ckpt={ckpt}", "data.preset=copy", cwd=workdir, check=False)
    assert_one_clear_error(proc, "trained on dataset ks-tiny", "ks-copy")
    proc = run_cli("evaluate", f"ckpt={ckpt}", "data.preset=tiny", "data.frame_stride=2", cwd=workdir, check=False)
    assert_one_clear_error(proc, "steps 4 stored frames per model step", "data.frame_stride=2")
    assert not (workdir / "results").exists()


def test_learned_model_without_checkpoint(workdir: Path) -> None:
    proc = run_cli("evaluate", "model=fno", "data.preset=tiny", cwd=workdir, check=False)
    assert_one_clear_error(proc, "model=fno must be trained first", "ckpt=PATH")
