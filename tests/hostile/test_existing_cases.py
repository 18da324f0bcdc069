"""Hostile inputs the suite already stops cleanly (one row each); later rows live beside this file by area."""

from __future__ import annotations

from pathlib import Path

import h5py
import pytest
from matrix import assert_one_sentence, dataset_dir, run_command


def stamp_old_schema(work: Path) -> None:
    for split in ("train", "valid", "test"):
        with h5py.File(dataset_dir(work) / f"{split}.h5", "r+") as f:
            f.attrs["schema_version"] = "0.9"


def delete_test_split(work: Path) -> None:
    (dataset_dir(work) / "test.h5").unlink()


@pytest.mark.parametrize(
    ("damage", "command", "fragments"),
    [
        (stamp_old_schema, "check", ("test.h5", "schema_version '0.9' is not supported")),
        (stamp_old_schema, "train", ("train.h5", "schema_version '0.9' is not supported")),
        (stamp_old_schema, "evaluate", ("test.h5", "schema_version '0.9' is not supported")),
        (delete_test_split, "evaluate", ("test.h5 does not exist", "pdebench-generate pde=ks preset=tiny")),
    ],
    ids=lambda v: getattr(v, "__name__", None) if callable(v) else None,
)
def test_damage_stops_the_command(work: Path, damage, command: str, fragments: tuple[str, ...]) -> None:
    damage(work)
    assert_one_sentence(run_command(command, work), *fragments)


def test_no_results_for_the_leaderboard(work: Path) -> None:
    assert_one_sentence(run_command("leaderboard", work), "results does not exist")
