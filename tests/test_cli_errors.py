"""Bad input stops each command with one clear sentence (exit 1, no stack trace), naming what was wrong.

The conditions themselves are tested through the library (test_evaluate, test_training, test_config); these run
the installed commands once each to check the wiring that turns an error into one line on stderr.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import pytest
from cli import run_cli

from pdebench.data.schema import DatasetError
from pdebench.training.run import train


def assert_one_clear_error(proc, *fragments: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    for fragment in fragments:
        assert fragment in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    """A working directory whose `data/` holds a copy of ks-tiny stamped with an unsupported schema version."""
    work = tmp_path_factory.mktemp("errors")
    shutil.copytree(data_root / "ks-tiny", work / "data" / "ks-old")
    for split in ("train", "valid", "test"):
        with h5py.File(work / "data" / "ks-old" / f"{split}.h5", "r+") as f:
            f.attrs["schema_version"] = "0.9"
    return work


def test_generate_unknown_pde_lists_the_choices(workdir: Path) -> None:
    proc = run_cli("generate", "pde=navier", "preset=tiny", cwd=workdir, check=False)
    assert_one_clear_error(proc, "pde/navier", "ks")


def test_generate_unknown_preset(workdir: Path) -> None:
    proc = run_cli("generate", "pde=ks", "preset=huge", cwd=workdir, check=False)
    assert_one_clear_error(proc, "unknown preset 'huge'", "tiny, small, paper")


def test_train_unknown_model_key_appended_with_plus(workdir: Path) -> None:
    proc = run_cli("train", "data.preset=old", "+model.widht=3", cwd=workdir, check=False)
    assert_one_clear_error(proc, "model.widht for model fno", "hidden_channels")
    assert not list(workdir.glob("runs/**/*.ckpt"))


def test_evaluate_unsupported_schema_version(workdir: Path) -> None:
    proc = run_cli("evaluate", "model=persistence", "data=ks", "data.preset=old", cwd=workdir, check=False)
    assert_one_clear_error(proc, "test.h5", "0.9")
    assert not (workdir / "results").exists()


def test_missing_dataset_directory_names_the_command(compose_cfg, tmp_path: Path) -> None:
    cfg = compose_cfg("train", ["data=ks", "data.preset=small", f"data.root={tmp_path}", f"run_dir={tmp_path}/run"])
    with pytest.raises(DatasetError, match="ks-small does not exist.*pdebench-generate pde=ks preset=small"):
        train(cfg)
