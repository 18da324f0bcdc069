"""Hostile inputs around the manifest and generation: a wrong, missing or unparsable manifest, a split replaced or
changed after generation, a second generation of the same dataset, driver arguments that cannot work, and a
dataset identity that must not depend on the batch size the data was generated with.

Matrix rows are `(damage, command, expected fragments)`; a command may carry overrides (`"generate seed=1"`), and
`check-dir` runs the checker on the dataset directory instead of its split files.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import h5py
import pytest
from compose import compose_config
from matrix import assert_one_sentence, dataset_dir, run_command

import data_gen.generate as generate_module
from data_gen.generate import generate_dataset
from pdebench.data import manifest as manifest_module
from pdebench.data.__main__ import main as data_main
from pdebench.data.manifest import VERIFIED_NAME, manifest_hash, read_manifest, verify_dataset
from pdebench.data.schema import DatasetError

ZEROS = "0" * 64


def _edit_manifest(work: Path, split: str, key: str, value: object) -> None:
    path = dataset_dir(work) / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["splits"][split][key] = value
    path.write_text(json.dumps(manifest))


def delete_manifest(work: Path) -> None:
    (dataset_dir(work) / "manifest.json").unlink()


def unparsable_manifest(work: Path) -> None:
    (dataset_dir(work) / "manifest.json").write_text('{"schema": "pdebench-trajectories", "splits": {')


def wrong_test_sha256(work: Path) -> None:
    _edit_manifest(work, "test", "sha256", ZEROS)


def wrong_train_size(work: Path) -> None:
    _edit_manifest(work, "train", "bytes", 12345)


def valid_over_test(work: Path) -> None:
    shutil.copyfile(dataset_dir(work) / "valid.h5", dataset_dir(work) / "test.h5")


def _change_one_value(path: Path) -> None:
    """A silent corruption: one number changes through HDF5 itself, so the file stays valid and finite."""
    with h5py.File(path, "r+") as f:
        f["u"][0, 0, 0] = f["u"][0, 0, 0] + 1.0


def changed_test_value(work: Path) -> None:
    _change_one_value(dataset_dir(work) / "test.h5")


def changed_train_value(work: Path) -> None:
    _change_one_value(dataset_dir(work) / "train.h5")


def no_manifest_and_valid_over_test(work: Path) -> None:
    delete_manifest(work)
    valid_over_test(work)


def unparsable_manifest_and_changed_test(work: Path) -> None:
    unparsable_manifest(work)
    with h5py.File(dataset_dir(work) / "test.h5", "r+") as f:
        f["u"][0, 0, 0] = float("nan")  # a generation would never have written it: the checker refuses it


def nothing(work: Path) -> None:
    """No damage: the command itself is the hostile input."""


REWRITE = "`pdebench-generate pde=ks preset=tiny`"
OVERWRITE = "`pdebench-generate pde=ks preset=tiny overwrite=true`"
MISSING = ("manifest.json does not exist", REWRITE, "to rewrite it")
UNPARSABLE = ("manifest.json is not valid JSON", REWRITE, "to rewrite it")
TEST_SHA = ("test.h5 has sha256", "manifest.json records", OVERWRITE)
TRAIN_SIZE = ("train.h5 has", "bytes but manifest", "records 12345", OVERWRITE)


@pytest.mark.parametrize(
    ("damage", "command", "fragments"),
    [
        (delete_manifest, "check-dir", MISSING),
        (delete_manifest, "train", MISSING),
        (delete_manifest, "evaluate", MISSING),
        (unparsable_manifest, "check", UNPARSABLE),
        (unparsable_manifest, "check-dir", UNPARSABLE),
        (unparsable_manifest, "train", UNPARSABLE),
        (unparsable_manifest, "evaluate", UNPARSABLE),
        (wrong_test_sha256, "check", ("test.h5 has sha256", f"records {ZEROS}")),
        (wrong_test_sha256, "evaluate", (*TEST_SHA, f"records {ZEROS}")),
        (wrong_test_sha256, "generate", (*TEST_SHA, f"records {ZEROS}")),
        (wrong_train_size, "check", ("train.h5 has", "records 12345")),
        (wrong_train_size, "train", TRAIN_SIZE),
        (wrong_train_size, "generate", TRAIN_SIZE),
        (valid_over_test, "check", ("test.h5 has sha256", "manifest.json records")),
        (valid_over_test, "evaluate", TEST_SHA),
        (valid_over_test, "generate", TEST_SHA),
        (changed_test_value, "check", ("test.h5 has sha256", "manifest.json records")),
        (changed_test_value, "evaluate", TEST_SHA),
        (changed_test_value, "generate", TEST_SHA),
        (changed_train_value, "train", ("train.h5 has sha256", "manifest.json records", OVERWRITE)),
        (no_manifest_and_valid_over_test, "generate", ("test.h5: root attribute 'split' is 'valid', but the file is "
                                                       "named test.h5; expected 'test'", OVERWRITE)),
        (unparsable_manifest_and_changed_test, "generate", ("test.h5", "non-finite", OVERWRITE)),
        (nothing, "generate seed=1", ("ks-tiny", "different seed", OVERWRITE)),
        (nothing, "generate batch_size=0", ("batch_size=0 is not valid", "a whole number >= 1")),
        (nothing, "train data.preset=huge", ("ks-huge does not exist", "no preset 'huge'", "tiny, small, paper",
                                             "holds ks-tiny")),
        (nothing, "evaluate data.preset=huge", ("ks-huge does not exist", "no preset 'huge'", "holds ks-tiny")),
    ],
    ids=lambda v: getattr(v, "__name__", None) if callable(v) else None,
)
def test_damage_stops_the_command(work: Path, damage, command: str, fragments: tuple[str, ...]) -> None:
    damage(work)
    name, *overrides = command.split()
    if name == "check-dir":
        name, overrides = "check", [str(dataset_dir(work))]
    message = run_command(name, work, *overrides)
    assert_one_sentence(message, *fragments)
    assert "preset=huge`" not in message  # never suggest a command that fails itself


def _generate(root: Path, batch_size: int = 4) -> Path:
    """`pdebench-generate pde=ks preset=tiny root=ROOT batch_size=B device=cpu` through the library."""
    pde = compose_config("generate", ["pde=ks", "preset=tiny"])["pde"]
    return generate_dataset(pde, "tiny", root, batch_size=batch_size, device="cpu", progress=False)


def test_generate_rewrites_a_missing_or_unparsable_manifest_over_good_splits(work: Path) -> None:
    """The command the manifest errors name does rewrite it, and to the same identity."""
    before = manifest_hash(dataset_dir(work))
    for damage in (delete_manifest, unparsable_manifest):
        damage(work)
        _generate(work / "data")
        assert manifest_hash(dataset_dir(work)) == before
    assert data_main(["check", str(dataset_dir(work))]) == 0


def test_identity_does_not_depend_on_the_batch_size(data_root: Path, tmp_path: Path) -> None:
    """ks-tiny of the session was generated with batch_size=4; the same data in blocks of 2 is the same dataset."""
    other = _generate(tmp_path, batch_size=2)
    reference = data_root / "ks-tiny"
    assert manifest_hash(other) == manifest_hash(reference)
    ours, theirs = read_manifest(other)["splits"], read_manifest(reference)["splits"]
    for split in ("train", "valid", "test"):
        assert ours[split]["content_sha256"] == theirs[split]["content_sha256"], split


def test_batch_size_zero_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch_size must be a positive integer.*got 0"):
        _generate(tmp_path / "data", batch_size=0)
    assert not (tmp_path / "data").exists()


def test_a_second_generation_of_the_same_dataset_stops_clearly(tmp_path: Path, monkeypatch) -> None:
    """Run A holds the dataset (blocked inside its first split); run B, started meanwhile, gets one clear error."""
    entered, release = threading.Event(), threading.Event()
    original = generate_module.generate_files
    outcome: dict[str, object] = {}

    def held(*args, **kwargs):
        entered.set()
        assert release.wait(30)
        return original(*args, **kwargs)

    def run_a() -> None:
        try:
            outcome["a"] = _generate(tmp_path)
        except BaseException as exc:  # reported by the assertion below
            outcome["a"] = exc

    monkeypatch.setattr(generate_module, "generate_files", held)
    thread = threading.Thread(target=run_a)
    thread.start()
    try:
        assert entered.wait(30), "run A never started writing"
        with pytest.raises(DatasetError) as info:
            _generate(tmp_path)
    finally:
        release.set()
        thread.join(60)
    assert_one_sentence(str(info.value), "another generation is writing this dataset", "ks-tiny")
    assert outcome["a"] == tmp_path / "ks-tiny", outcome["a"]
    monkeypatch.setattr(generate_module, "generate_files", original)
    verify_dataset(_generate(tmp_path))  # the lock is released: a rerun keeps and verifies everything


def test_verification_hashes_a_file_once_until_it_changes(work: Path, monkeypatch) -> None:
    """`verify_dataset` re-hashes only what changed since it last verified it; sizes are compared every time."""
    hashed: list[str] = []
    original = manifest_module.file_sha256
    monkeypatch.setattr(manifest_module, "file_sha256", lambda path: hashed.append(path.name) or original(path))
    directory = dataset_dir(work)
    (directory / VERIFIED_NAME).unlink(missing_ok=True)
    verify_dataset(directory)
    assert sorted(hashed) == ["test.h5", "train.h5", "valid.h5"]
    hashed.clear()
    verify_dataset(directory)
    assert hashed == []
    changed_test_value(work)
    with pytest.raises(DatasetError, match="test.h5 has sha256"):
        verify_dataset(directory)
    assert hashed == ["test.h5"]


def test_check_accepts_a_dataset_directory(work: Path, capsys) -> None:
    assert data_main(["check", str(dataset_dir(work))]) == 0
    assert "manifest.json: OK" in capsys.readouterr().out
