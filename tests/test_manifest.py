"""The manifest beyond its format: the foreign files an imported split pins, the verified-once record, the checker's
report over several split files, a split file of another pde, and the benchmark facts as settings."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest

import pdebench
from pdebench.config import BenchmarkConfig
from pdebench.data import manifest as manifest_module
from pdebench.data.manifest import (
    VERIFIED_NAME,
    benchmark_settings,
    file_sha256,
    generate_command,
    manifest_hash,
    manifest_problems,
    read_manifest,
    verify_dataset,
    write_manifest,
)
from pdebench.data.reader import TrajectoryFile
from pdebench.data.schema import (
    SCHEMA_NAME,
    SCHEMA_VERSION,
    Coordinate,
    DatasetError,
    DatasetLayout,
    FieldSpec,
    ParameterSpec,
)
from pdebench.data.writer import TrajectoryWriter

IMPORT_AGAIN = "import it again with `pdebench-import`"
REGENERATE = ("the file was changed or damaged after generation (or replaced by another one): regenerate the dataset "
              "with `pdebench-generate pde=ks preset=tiny overwrite=true`")


X = np.linspace(0.0, 1.0, 4, endpoint=False)
U = np.arange(24.0).reshape(2, 3, 4)
NU, JET, SEEDS = np.array([0.1, 0.2]), np.array([7.0, 9.0]), np.array([5, 6])


def write_split(path: Path, pde: str = "ks", jet: bool = False) -> Path:
    """A finished split file of 2 trajectories, 3 frames, 4 points of one field `u` and the parameter `nu` (and,
    with `jet`, the record parameter `jet` that conditions no model)."""
    parameters = (ParameterSpec("nu", "1"), *([ParameterSpec("jet", "1", conditioning=False)] if jet else []))
    layout = DatasetLayout(
        pde=pde, preset="tiny", split=path.stem, n_traj=2, n_frames=3, frame_interval=0.5, grid="periodic",
        coordinates=(Coordinate("x", X, "m"),), fields=(FieldSpec("u", "1", "periodic"),), parameters=parameters,
    )
    with TrajectoryWriter(path, layout) as writer:
        writer.append({"u": U}, {"nu": NU, **({"jet": JET} if jet else {})}, SEEDS)
        return writer.finalize()


def ks_tiny(root: Path, splits: tuple[str, ...] = ("train", "valid")) -> Path:
    """`<root>/ks-tiny` with the given split files and their manifest (config pde=ks, preset=tiny)."""
    ddir = root / "ks-tiny"
    ddir.mkdir(parents=True)
    for split in splits:
        write_split(ddir / f"{split}.h5")
    write_manifest(ddir, {"pde": "ks", "preset": "tiny"})
    return ddir


def edit_entry(ddir: Path, split: str, **values: object) -> None:
    """Set keys of one split's manifest entry (None deletes the key)."""
    path = ddir / "manifest.json"
    manifest = json.loads(path.read_text())
    for key, value in values.items():
        if value is None:
            del manifest["splits"][split][key]
        else:
            manifest["splits"][split][key] = value
    path.write_text(json.dumps(manifest))


def refused_by_reader(path: Path) -> str:
    """Damage a split file's header so that the reader refuses it; return the reader's sentence."""
    with h5py.File(path, "r+") as f:
        f.attrs["grid"] = "hexagonal"
    with pytest.raises(DatasetError) as info:
        TrajectoryFile(path)
    return str(info.value)


def touch_later(path: Path) -> None:
    """Move a file's mtime one second on, so that a rewrite within the clock's tick still shows as a change."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


# --- the content hash and the identity ---------------------------------------------------------------------------
def canonical_content(jet: bool) -> str:
    """The content hash of `write_split`'s file by the documented canonical order, from the arrays written."""
    digest = hashlib.sha256(b"pdebench-content-v1\n")
    header = {"grid": "periodic", "frame_interval": "0.5", "coordinates": ["x"], "fields": ["u"],
              "parameters": ["nu", "jet"] if jet else ["nu"], **({"conditioning": ["nu"]} if jet else {})}
    digest.update(json.dumps(header, sort_keys=True).encode() + b"\n")
    arrays = [("x", X.astype("<f8")), ("nu", NU.astype("<f8")), *([("jet", JET.astype("<f8"))] if jet else []),
              ("seed", SEEDS.astype("<i8"))]
    for name, values in arrays:
        digest.update(f"{name} {values.dtype.str} {list(values.shape)}\n".encode() + values.tobytes())
    digest.update(b"u <f4 [2, 3, 4]\n")
    for trajectory in U.astype("<f4"):
        digest.update(trajectory.tobytes())
    return digest.hexdigest()


@pytest.mark.parametrize("jet", [False, True])
def test_the_content_hash_follows_the_documented_canonical_order(tmp_path: Path, jet: bool) -> None:
    """Results and checkpoints record hashes of it, so it must not drift: tag, header (with the conditioning names
    only when a parameter is a record), each array little-endian after its name, dtype and shape."""
    path = write_split(tmp_path / "train.h5", jet=jet)
    assert manifest_module.content_sha256(path) == canonical_content(jet)


def test_the_identity_is_the_hash_of_the_config_and_the_content_hashes(tmp_path: Path) -> None:
    """`manifest_hash` as documented: compact sorted JSON of the config and each split's content hash."""
    ddir = ks_tiny(tmp_path, ("train", "test"))
    write_manifest(ddir, {"preset": "tiny", "pde": "ks", "seeds": [1, 2]})
    content = canonical_content(False)
    text = '{"config":{"pde":"ks","preset":"tiny","seeds":[1,2]},"content":{"test":"' + content + '","train":"' + (
        content + '"}}')
    assert manifest_hash(ddir) == hashlib.sha256(text.encode()).hexdigest()
    # the manifest rewritten with its keys in another order (by hand, by another tool) is the same dataset
    path = ddir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["config"] = dict(reversed(manifest["config"].items()))
    manifest["splits"] = dict(reversed(manifest["splits"].items()))
    path.write_text(json.dumps(dict(reversed(manifest.items())), indent=1))
    assert manifest_hash(ddir) == hashlib.sha256(text.encode()).hexdigest()


def test_the_manifest_records_what_was_generated_and_by_which_version(tmp_path: Path) -> None:
    ddir = ks_tiny(tmp_path, ("valid",))
    manifest = json.loads((ddir / "manifest.json").read_text())
    assert {k: v for k, v in manifest.items() if k != "splits"} == {
        "schema": SCHEMA_NAME, "schema_version": SCHEMA_VERSION, "dataset": "ks-tiny",
        "package_version": pdebench.__version__, "config": {"pde": "ks", "preset": "tiny"}}
    valid = ddir / "valid.h5"
    assert manifest["splits"] == {"valid": {
        "file": "valid.h5", "bytes": valid.stat().st_size, "sha256": file_sha256(valid),
        "content_sha256": canonical_content(False), "n_traj": 2, "n_frames": 3, "parameters": ["nu"],
        "conditioning": ["nu"]}}


def test_a_missing_manifest_or_something_else_in_its_place_is_named(tmp_path: Path) -> None:
    ddir = ks_tiny(tmp_path, ("train",))
    path = ddir / "manifest.json"
    rewrite = "rerun `pdebench-generate pde=ks preset=tiny` to rewrite it (finished split files are checked and kept)"
    path.unlink()
    with pytest.raises(DatasetError) as info:
        read_manifest(ddir)
    assert str(info.value) == f"manifest {path} does not exist; {rewrite}"
    path.mkdir()
    with pytest.raises(DatasetError) as info:
        read_manifest(ddir)
    assert str(info.value) == f"manifest {path} is a directory, not a file; {rewrite}"


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_a_manifest_holding_a_number_json_has_not_is_refused_by_name(tmp_path: Path, constant: str) -> None:
    """Python's JSON reader takes NaN and Infinity, which generation never writes and the identity cannot hash: the
    manifest is refused as any invalid one is, not left to fail later where results record the identity."""
    ddir = ks_tiny(tmp_path, ("train",))
    path = ddir / "manifest.json"
    path.write_text(path.read_text().replace('"preset": "tiny"', f'"preset": "tiny", "nu": {constant}'))
    for read in (read_manifest, manifest_hash):
        with pytest.raises(DatasetError) as info:
            read(ddir)
        assert str(info.value) == (f"manifest {path} is not valid JSON ({constant} is not a JSON value); rerun "
                                   "`pdebench-generate pde=ks preset=tiny` to rewrite it (finished split files are "
                                   "checked and kept)"), read.__name__


def test_the_manifest_file_is_indented_with_sorted_keys(tmp_path: Path) -> None:
    """People read and diff it: one key a line, keys sorted, so the same config in another order writes the same
    bytes."""
    ddir = ks_tiny(tmp_path, ("train",))
    path = write_manifest(ddir, {"preset": "tiny", "pde": "ks"})
    text = path.read_text()
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    assert text.splitlines()[:3] == ["{", '  "config": {', '    "pde": "ks",']
    assert write_manifest(ddir, {"pde": "ks", "preset": "tiny"}).read_text() == text


def test_the_generate_command_splits_the_directory_name_at_its_last_dash() -> None:
    assert generate_command(Path("data/ks-tiny")) == "`pdebench-generate pde=ks preset=tiny`"
    assert generate_command(Path("data/my-pde-small"), "overwrite=true", "seed=1") == (
        "`pdebench-generate pde=my-pde preset=small overwrite=true seed=1`")
    assert generate_command(Path("data/lonely"), "overwrite=true") == "`pdebench-generate overwrite=true`"


# --- imported splits: foreign files pinned by the manifest -----------------------------------------------------
def imported(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """ks-tiny whose train split declares two foreign files (`a.bin`: 3 bytes, `b.bin`: 5 bytes) as its sources."""
    foreign_a, foreign_b = tmp_path / "foreign" / "a.bin", tmp_path / "foreign" / "b.bin"
    foreign_a.parent.mkdir()
    foreign_a.write_bytes(b"abc")
    foreign_b.write_bytes(b"hello")
    ddir = tmp_path / "data" / "ks-tiny"
    ddir.mkdir(parents=True)
    train = write_split(ddir / "train.h5")
    with h5py.File(train, "r+") as f:
        f.attrs["sources"] = json.dumps([str(foreign_a), str(foreign_b)])
    write_manifest(ddir, {"pde": "ks", "preset": "tiny"})
    return ddir, train, foreign_a, foreign_b


def test_the_manifest_pins_each_foreign_file_of_an_imported_split_and_records_it_as_verified(tmp_path: Path) -> None:
    """Each declared foreign file is listed in order with its size and sha256, and the verified-once record holds
    it with its size and times, so the first use hashes nothing again."""
    ddir, train, foreign_a, foreign_b = imported(tmp_path)
    entry = json.loads((ddir / "manifest.json").read_text())["splits"]["train"]
    assert entry["sources"] == [
        {"path": str(foreign_a), "bytes": 3, "sha256": hashlib.sha256(b"abc").hexdigest()},
        {"path": str(foreign_b), "bytes": 5, "sha256": hashlib.sha256(b"hello").hexdigest()},
    ]
    record = json.loads((ddir / VERIFIED_NAME).read_text())["splits"]
    for path, data in ((foreign_a, b"abc"), (foreign_b, b"hello"), (train, train.read_bytes())):
        stat = path.stat()
        key = "train" if path == train else str(path)
        assert record[key] == {"bytes": len(data), "mtime_ns": stat.st_mtime_ns, "ctime_ns": stat.st_ctime_ns,
                               "sha256": hashlib.sha256(data).hexdigest()}, key
    assert set(record) == {"train", str(foreign_a), str(foreign_b)}
    # a split that declares no foreign file gets no `sources` key
    write_split(ddir / "valid.h5")
    write_manifest(ddir, {"pde": "ks", "preset": "tiny"})
    assert "sources" not in json.loads((ddir / "manifest.json").read_text())["splits"]["valid"]


def test_a_foreign_file_is_hashed_once_until_it_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As split files are: after the manifest is written nothing is hashed again; without the record every file is
    hashed once and recorded; a foreign file rewritten with other bytes of the same size is hashed and refused."""
    ddir, train, foreign_a, foreign_b = imported(tmp_path)
    hashed: list[str] = []
    original = manifest_module.file_sha256
    monkeypatch.setattr(manifest_module, "file_sha256", lambda path: hashed.append(Path(path).name) or original(path))
    assert verify_dataset(ddir) == ddir
    assert hashed == []
    (ddir / VERIFIED_NAME).unlink()
    verify_dataset(ddir)
    assert hashed == ["train.h5", "a.bin", "b.bin"]
    hashed.clear()
    verify_dataset(ddir)
    assert hashed == []
    foreign_b.write_bytes(b"HELLO")
    touch_later(foreign_b)
    with pytest.raises(DatasetError) as info:
        verify_dataset(ddir)
    assert hashed == ["b.bin"]
    assert str(info.value) == (
        f"foreign file {foreign_b} of split file {train} has sha256 {hashlib.sha256(b'HELLO').hexdigest()} but "
        f"manifest {ddir / 'manifest.json'} records {hashlib.sha256(b'hello').hexdigest()}; it changed since it was "
        f"imported: {IMPORT_AGAIN}")


def test_every_foreign_file_that_is_gone_or_differs_is_named(tmp_path: Path) -> None:
    """The checker names each foreign file with what differs (size before hash), and goes on to the next split;
    verification stops at the first."""
    ddir, train, foreign_a, foreign_b = imported(tmp_path)
    write_split(ddir / "valid.h5")
    write_manifest(ddir, {"pde": "ks", "preset": "tiny"})
    mpath = ddir / "manifest.json"
    assert manifest_problems(ddir, ["train", "valid"], whole=False) == []
    foreign_a.unlink()
    foreign_b.write_bytes(b"hello!")
    edit_entry(ddir, "valid", sha256="0" * 64)
    gone = f"foreign file {foreign_a} does not exist, but split file {train} maps it; {IMPORT_AGAIN}"
    resized = (f"foreign file {foreign_b} of split file {train} has bytes 6 but manifest {mpath} records 5; it changed "
               f"since it was imported: {IMPORT_AGAIN}")
    assert manifest_problems(ddir, ["train", "valid"], whole=False) == [
        gone, resized, f"split file {ddir / 'valid.h5'} has sha256 {file_sha256(ddir / 'valid.h5')} but manifest "
                       f"{mpath} records {'0' * 64}"]
    with pytest.raises(DatasetError) as info:
        verify_dataset(ddir, ["train"])
    assert str(info.value) == gone
    foreign_a.write_bytes(b"abcd")
    foreign_b.write_bytes(b"hellO")  # back to its size, other bytes: the checker hashes it whatever the record says
    assert manifest_problems(ddir, ["train"], whole=False) == [
        f"foreign file {foreign_a} of split file {train} has bytes 4 but manifest {mpath} records 3; it changed since "
        f"it was imported: {IMPORT_AGAIN}",
        f"foreign file {foreign_b} of split file {train} has sha256 {hashlib.sha256(b'hellO').hexdigest()} but "
        f"manifest {mpath} records {hashlib.sha256(b'hello').hexdigest()}; it changed since it was imported: "
        f"{IMPORT_AGAIN}"]


# --- the verified-once record is a cache, never an authority -----------------------------------------------------
@pytest.mark.parametrize("record", ["[]", '{"splits": []}', '{"splits": {"train": 1}}', "{not json", "\xff"])
def test_a_damaged_verified_record_only_costs_a_rehash(tmp_path: Path, record: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    ddir = ks_tiny(tmp_path)
    (ddir / VERIFIED_NAME).write_bytes(record.encode("latin-1"))
    hashed: list[str] = []
    original = manifest_module.file_sha256
    monkeypatch.setattr(manifest_module, "file_sha256", lambda path: hashed.append(Path(path).name) or original(path))
    assert verify_dataset(ddir) == ddir
    assert hashed == ["train.h5", "valid.h5"]
    assert set(json.loads((ddir / VERIFIED_NAME).read_text())["splits"]) == {"train", "valid"}


def test_a_verified_record_that_cannot_be_written_or_read_stops_nothing(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The record is best effort: where it cannot be written (here a directory is in its place) the manifest is
    still written and verification still passes, hashing every time."""
    ddir = tmp_path / "ks-tiny"
    ddir.mkdir()
    write_split(ddir / "train.h5")
    (ddir / VERIFIED_NAME).mkdir()
    assert write_manifest(ddir, {"pde": "ks", "preset": "tiny"}) == ddir / "manifest.json"
    hashed: list[str] = []
    original = manifest_module.file_sha256
    monkeypatch.setattr(manifest_module, "file_sha256", lambda path: hashed.append(Path(path).name) or original(path))
    for _ in range(2):
        assert verify_dataset(ddir) == ddir
    assert hashed == ["train.h5", "train.h5"]
    assert (ddir / VERIFIED_NAME).is_dir()


def test_verifying_an_unchanged_dataset_writes_nothing(tmp_path: Path) -> None:
    """The record is rewritten only when a file was hashed: a dataset on a shared, read-mostly file system is not
    written to by every run that uses it."""
    ddir = ks_tiny(tmp_path)
    record = ddir / VERIFIED_NAME
    before = record.stat()
    verify_dataset(ddir)
    after = record.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    record.unlink()
    verify_dataset(ddir, ["valid"])
    assert set(json.loads(record.read_text())["splits"]) == {"valid"}


def test_a_verified_record_that_trusts_another_hash_is_not_believed(tmp_path: Path) -> None:
    """A record whose size and times match but whose sha256 is not the manifest's does not spare the hash: a file
    that differs from the manifest is refused."""
    ddir = ks_tiny(tmp_path)
    train = ddir / "train.h5"
    actual = file_sha256(train)
    edit_entry(ddir, "train", sha256="0" * 64)
    record = json.loads((ddir / VERIFIED_NAME).read_text())
    assert record["splits"]["train"]["sha256"] == actual
    with pytest.raises(DatasetError) as info:
        verify_dataset(ddir, ["train"])
    assert str(info.value) == (f"split file {train} has sha256 {actual} but manifest {ddir / 'manifest.json'} records "
                               f"{'0' * 64}; {REGENERATE}")


# --- the checker over several split files ------------------------------------------------------------------------
def test_the_checker_goes_on_past_each_kind_of_problem(tmp_path: Path) -> None:
    """One sentence per split in split order, whatever the problem of the splits before it."""
    ddir = ks_tiny(tmp_path, ("valid", "test"))
    mpath, train, valid, test = (ddir / name for name in ("manifest.json", "train.h5", "valid.h5", "test.h5"))
    write_split(train)  # generated after the manifest
    edit_entry(ddir, "valid", sha256="0" * 64)
    edit_entry(ddir, "test", bytes=1)
    problems = [
        f"split file {train} is not listed in manifest {mpath}",
        f"split file {valid} has sha256 {file_sha256(valid)} but manifest {mpath} records {'0' * 64}",
        f"split file {test} has {test.stat().st_size} bytes but manifest {mpath} records 1",
    ]
    assert manifest_problems(ddir, ["train"], whole=True) == problems
    edit_entry(ddir, "valid", sha256=file_sha256(valid), bytes=1)
    edit_entry(ddir, "test", bytes=test.stat().st_size, sha256="0" * 64)
    assert manifest_problems(ddir, ["valid", "test"], whole=False) == [
        f"split file {valid} has {valid.stat().st_size} bytes but manifest {mpath} records 1",
        f"split file {test} has sha256 {file_sha256(test)} but manifest {mpath} records {'0' * 64}",
    ]


def test_the_checker_reports_a_file_the_reader_refuses_though_its_bytes_match(tmp_path: Path) -> None:
    """A split file damaged and then pinned again (bytes and sha256 match) is still read: the reader's refusal is
    the problem, with or without a content hash in the manifest, and the next split is checked too."""
    ddir = ks_tiny(tmp_path, ("train", "valid", "test"))
    sentences = []
    for split in ("train", "valid"):
        path = ddir / f"{split}.h5"
        sentences.append(refused_by_reader(path))
        edit_entry(ddir, split, bytes=path.stat().st_size, sha256=file_sha256(path))
    edit_entry(ddir, "valid", content_sha256=None)  # a manifest written before content hashes
    edit_entry(ddir, "test", content_sha256="0" * 64)
    content = manifest_module.content_sha256(ddir / "test.h5")
    assert manifest_problems(ddir, ["train", "valid", "test"], whole=False) == [
        *sentences,
        f"split file {ddir / 'test.h5'} has content_sha256 {content} but manifest {ddir / 'manifest.json'} records "
        f"{'0' * 64}",
    ]


def test_a_split_file_of_another_pde_than_its_manifest_is_refused(tmp_path: Path) -> None:
    """The `pde` attribute is compared as `preset` is (neither hash covers them)."""
    ddir = tmp_path / "ks-tiny"
    ddir.mkdir()
    train = write_split(ddir / "train.h5", pde="burgers")
    write_manifest(ddir, {"pde": "ks", "preset": "tiny"})
    sentence = (f"{train}: root attribute 'pde' is 'burgers'; expected 'ks', the pde of manifest "
                f"{ddir / 'manifest.json'}; {REGENERATE}")
    with pytest.raises(DatasetError) as info:
        verify_dataset(ddir)
    assert str(info.value) == sentence
    assert manifest_problems(ddir, ["train"], whole=False) == [sentence]


# --- benchmark facts as settings ---------------------------------------------------------------------------------
def test_benchmark_facts_become_settings_or_a_refusal_naming_the_manifest(tmp_path: Path) -> None:
    """A fact the manifest records is taken, one it predates gets its default; a refused fact names the manifest."""
    bench = benchmark_settings({"frame_stride": 4, "headline": "vrmse_mean"})
    assert bench == BenchmarkConfig(frame_stride=4)
    assert bench.frame_stride == 4 and bench.stability_energy_factor == 4.0
    mpath = tmp_path / "ks-tiny" / "manifest.json"
    with pytest.raises(DatasetError) as info:
        benchmark_settings({"frame_stride": 0}, mpath)
    assert str(info.value) == (f"{mpath}: benchmark facts refused: frame_stride=0 is not valid: expected stored "
                               "frames per model step, a whole number >= 1")
    with pytest.raises(DatasetError) as info:
        benchmark_settings({"frame_stride": 2, "gmean_steps": 0})
    assert str(info.value) == ("manifest.json: benchmark facts refused: gmean_steps=0 is not valid: expected a number "
                               "of model steps, a whole number >= 1")


def test_a_manifest_needs_a_split_file(tmp_path: Path) -> None:
    """Nothing to describe (a directory named like a split file is none) is refused, naming the files looked for
    and the directory; no manifest is left."""
    (tmp_path / "ks-tiny" / "train.h5").mkdir(parents=True)
    with pytest.raises(DatasetError) as info:
        write_manifest(tmp_path / "ks-tiny", {"pde": "ks"})
    assert str(info.value) == f"no split file (train.h5, valid.h5, test.h5) in {tmp_path / 'ks-tiny'}"
    assert not (tmp_path / "ks-tiny" / "manifest.json").exists()
