"""Hostile split files, round two: data that lives outside the split file, header strings that do not belong in a
result, and paths that are no regular file.

* An HDF5 external link, a soft link, a virtual dataset or external raw storage makes a variable read bytes that the
  manifest's sha256 of the split file does not cover: a changed link target changes the scores under the same
  `manifest_sha256`. The reader refuses each one for every variable it opens, without opening the target; the
  checker refuses one anywhere in the file.
* Root attributes are copied into results (`pde`, `preset`, `solver`) and parsed (`generation_config`): names must
  follow the name rule of `pdebench.data.names`, free text has a cap, and `pde`/`preset` must agree with the
  manifest of the dataset directory. No message echoes a long value.
* A FIFO, a character device or a symbolic link loop where a split file, a manifest or a dataset directory should
  be is called what it is, never "does not exist", and is never opened (reading a FIFO would block).

Rows are `(damage, command, expected fragments)` as in test_files.py: each damage re-records the damaged split files
in the manifest, as if it happened before the manifest was written, so only the reader and the checker can catch it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from matrix import assert_one_sentence, dataset_dir, run_command, run_command_without_blocking
from test_files import _rerecord_manifest

from pdebench.data.check import check_file
from pdebench.data.reader import MAX_TEXT_ATTRIBUTE, TrajectoryFile
from pdebench.data.schema import SPLITS, DatasetError

OWN_DATA = "a split file must hold its data itself"
SHORT = 1000  # no message may echo a long value
GENERATE = "pdebench-generate pde=ks preset=tiny"


# --- damage -------------------------------------------------------------------------------------------------------
def _splits(work: Path) -> list[Path]:
    return [dataset_dir(work) / f"{split}.h5" for split in SPLITS]


def _each_split(edit: Callable[[Path, Path], None]) -> Callable[[Path], None]:
    """A damage that applies `edit(split_file, outside)` to every split file, then re-records them in the manifest;
    `outside` is a folder next to the dataset for the files a link points to."""

    def damage(work: Path) -> None:
        outside = work / "outside"
        outside.mkdir(exist_ok=True)
        for path in _splits(work):
            edit(path, outside)
        _rerecord_manifest(work)

    damage.__name__ = edit.__name__
    return damage


def _target(path: Path, outside: Path, scale: float = 2.0) -> Path:
    """A copy of split file `path` in `outside` whose field u holds other numbers (u * `scale`): a valid file, so
    that following a link into it passes every check the reader makes of the data."""
    target = outside / path.name
    shutil.copyfile(path, target)
    with h5py.File(target, "r+") as f:
        f["u"][...] = f["u"][...] * np.float32(scale)
    return target


def _replace_u(f: h5py.File, make: Callable[[h5py.File], None]) -> None:
    """Delete field u of `f`, let `make` create the new u, and carry over u's attributes and dimension scales where
    the new u is a dataset of this file."""
    attrs = {k: v for k, v in f["u"].attrs.items() if k not in ("DIMENSION_LIST", "_Netcdf4Coordinates",
                                                                 "_Netcdf4Dimid")}
    del f["u"]
    make(f)
    if f.id.links.get_info(b"u").type == h5py.h5l.TYPE_HARD:
        for key, value in attrs.items():
            f["u"].attrs[key] = value
        for axis, dim in enumerate(("traj", "time", "x")):
            f["u"].dims[axis].attach_scale(f[dim])


@_each_split
def external_link_field(path: Path, outside: Path) -> None:
    """u is an external link to u of a copy that holds other numbers (the attack: swap the target, same manifest)."""
    target = _target(path, outside)
    with h5py.File(path, "r+") as f:
        _replace_u(f, lambda g: g.__setitem__("u", h5py.ExternalLink(str(target), "/u")))


@_each_split
def dangling_external_link_field(path: Path, outside: Path) -> None:
    """u is an external link to a file that does not exist: the error is the link's, so the target is not opened."""
    with h5py.File(path, "r+") as f:
        _replace_u(f, lambda g: g.__setitem__("u", h5py.ExternalLink(str(outside / "absent.h5"), "/u")))


@_each_split
def soft_link_field(path: Path, outside: Path) -> None:
    """u is a soft link to the same data under another name."""
    with h5py.File(path, "r+") as f:
        f.move("u", "u_data")
        f["u"] = h5py.SoftLink("/u_data")


@_each_split
def virtual_field(path: Path, outside: Path) -> None:
    """u is a virtual dataset mapping u of a copy that holds other numbers."""
    target = _target(path, outside)
    with h5py.File(path, "r") as f:
        shape = f["u"].shape
    layout = h5py.VirtualLayout(shape=shape, dtype=np.float32)
    layout[...] = h5py.VirtualSource(str(target), "u", shape=shape)
    with h5py.File(path, "r+") as f:
        _replace_u(f, lambda g: g.create_virtual_dataset("u", layout, fillvalue=np.nan))


@_each_split
def external_storage_field(path: Path, outside: Path) -> None:
    """u keeps its bytes in a raw file outside the split file (HDF5 external storage)."""
    raw = outside / f"{path.stem}-u.raw"
    with h5py.File(path, "r") as f:
        data = f["u"][...] * np.float32(2)
    data.tofile(raw)
    with h5py.File(path, "r+") as f:
        _replace_u(f, lambda g: g.create_dataset("u", shape=data.shape, dtype=np.float32,
                                                 external=[(str(raw), 0, data.nbytes)]))


@_each_split
def external_link_elsewhere(path: Path, outside: Path) -> None:
    """An external link in a group the reader never opens."""
    target = _target(path, outside)
    with h5py.File(path, "r+") as f:
        f.create_group("extra")["u"] = h5py.ExternalLink(str(target), "/u")


def _root_attribute(name: str, value: object) -> Callable[[Path], None]:
    def edit(path: Path, outside: Path) -> None:
        with h5py.File(path, "r+") as f:
            f.attrs[name] = value

    edit.__name__ = f"{name}_{'long' if len(str(value)) > 100 else value}"
    return _each_split(edit)


huge_pde = _root_attribute("pde", "k" * 5_000_000)
other_pde = _root_attribute("pde", "burgers")
other_preset = _root_attribute("preset", "small")
huge_generation_config = _root_attribute("generation_config", "# padding\n" * 200_000)
huge_schema = _root_attribute("schema", "x" * 2_000_000)
huge_grid = _root_attribute("grid", "p" * 2_000_000)
field_path = _root_attribute("fields", "u,g/u")


def _replace_each_split(make: Callable[[Path], None]) -> Callable[[Path], None]:
    """A damage that replaces every split file by what `make(path)` creates at its path."""

    def damage(work: Path) -> None:
        for path in _splits(work):
            path.unlink()
            make(path)

    damage.__name__ = make.__name__
    return damage


@_replace_each_split
def fifo_split(path: Path) -> None:
    os.mkfifo(path)


@_replace_each_split
def dev_zero_split(path: Path) -> None:
    path.symlink_to("/dev/zero")


@_replace_each_split
def symlink_loop_split(path: Path) -> None:
    other = path.with_name(path.stem + "-loop.h5")
    other.symlink_to(path.name)
    path.symlink_to(other.name)


def fifo_manifest(work: Path) -> None:
    path = dataset_dir(work) / "manifest.json"
    path.unlink()
    os.mkfifo(path)


def symlink_loop_dataset(work: Path) -> None:
    path = dataset_dir(work)
    shutil.rmtree(path)
    path.symlink_to("ks-loop")
    path.with_name("ks-loop").symlink_to(path.name)


def file_for_dataset(work: Path) -> None:
    path = dataset_dir(work)
    shutil.rmtree(path)
    path.write_text("not a directory\n")


def _link(split: str, what: str) -> tuple[str, ...]:
    return (f"{split}.h5: variable 'u' is {what}", OWN_DATA)


def _attribute(split: str, name: str, *what: str) -> tuple[str, ...]:
    return (f"{split}.h5: root attribute '{name}'", *what)


EXTERNAL = "an external link to "
SOFT = "a soft link to /u_data"
VIRTUAL = "a virtual dataset mapping "
STORAGE = "stored in external raw file(s) "
NAME_RULE = "expected 1 to 64 characters"
LONG = "5000000 characters long"

ROWS = [
    (external_link_field, "check", _link("train", EXTERNAL) + ("outside/train.h5:/u",)),
    (external_link_field, "train", _link("train", EXTERNAL) + ("outside/train.h5:/u",)),
    (external_link_field, "evaluate", _link("test", EXTERNAL) + ("outside/test.h5:/u",)),
    (dangling_external_link_field, "check", _link("valid", EXTERNAL) + ("outside/absent.h5:/u",)),
    (dangling_external_link_field, "train", _link("train", EXTERNAL) + ("outside/absent.h5:/u",)),
    (dangling_external_link_field, "evaluate", _link("test", EXTERNAL) + ("outside/absent.h5:/u",)),
    (soft_link_field, "check", _link("test", SOFT)),
    (soft_link_field, "train", _link("train", SOFT)),
    (soft_link_field, "evaluate", _link("test", SOFT)),
    (virtual_field, "check", _link("train", VIRTUAL) + ("outside/train.h5:u",)),
    (virtual_field, "train", _link("train", VIRTUAL) + ("outside/train.h5:u",)),
    (virtual_field, "evaluate", _link("test", VIRTUAL) + ("outside/test.h5:u",)),
    (external_storage_field, "check", _link("train", STORAGE) + ("outside/train-u.raw",)),
    (external_storage_field, "train", _link("train", STORAGE) + ("outside/train-u.raw",)),
    (external_storage_field, "evaluate", _link("test", STORAGE) + ("outside/test-u.raw",)),
    (external_link_elsewhere, "check", ("test.h5: variable 'extra/u' is an external link to ", OWN_DATA)),
    (huge_pde, "check", _attribute("valid", "pde", LONG, NAME_RULE)),
    (huge_pde, "train", _attribute("train", "pde", LONG, NAME_RULE)),
    (huge_pde, "evaluate", _attribute("test", "pde", LONG, NAME_RULE)),
    (other_pde, "check", _attribute("test", "pde", "is 'burgers'; expected 'ks'", "manifest.json")),
    (other_pde, "train", _attribute("train", "pde", "is 'burgers'; expected 'ks'", "manifest.json")),
    (other_pde, "evaluate", _attribute("test", "pde", "is 'burgers'; expected 'ks'", "manifest.json")),
    (other_preset, "evaluate", _attribute("test", "preset", "is 'small'; expected 'tiny'", "manifest.json")),
    (huge_generation_config, "check", _attribute("train", "generation_config", "holds 2000000 characters",
                                                 f"expected at most {MAX_TEXT_ATTRIBUTE} characters")),
    (huge_generation_config, "evaluate", _attribute("test", "generation_config", "holds 2000000 characters",
                                                    f"expected at most {MAX_TEXT_ATTRIBUTE} characters")),
    (huge_schema, "check", _attribute("train", "schema", "(2000002 characters)", "expected 'pdebench-trajectories'")),
    (huge_schema, "evaluate", _attribute("test", "schema", "(2000002 characters)", "expected 'pdebench-trajectories'")),
    (huge_grid, "check", _attribute("train", "grid", "2000000 characters long", NAME_RULE)),
    (huge_grid, "evaluate", _attribute("test", "grid", "2000000 characters long", NAME_RULE)),
    (field_path, "check", _attribute("train", "fields", "names 'g/u', which is not a name", NAME_RULE)),
    (field_path, "evaluate", _attribute("test", "fields", "names 'g/u', which is not a name", NAME_RULE)),
]

KIND_ROWS = [
    (fifo_split, "check", ("test.h5 is a named pipe (FIFO), not a regular file",)),
    (fifo_split, "train", ("train.h5 is a named pipe (FIFO), not a regular file", GENERATE)),
    (fifo_split, "evaluate", ("test.h5 is a named pipe (FIFO), not a regular file", GENERATE)),
    (dev_zero_split, "check", ("valid.h5 is a character device, not a regular file",)),
    (dev_zero_split, "train", ("train.h5 is a character device, not a regular file", GENERATE)),
    (dev_zero_split, "evaluate", ("test.h5 is a character device, not a regular file", GENERATE)),
    (symlink_loop_split, "check", ("train.h5 is a symbolic link loop, not a regular file",)),
    (symlink_loop_split, "train", ("train.h5 is a symbolic link loop, not a regular file", GENERATE)),
    (symlink_loop_split, "evaluate", ("test.h5 is a symbolic link loop, not a regular file", GENERATE)),
    (fifo_manifest, "train", ("manifest.json is a named pipe (FIFO), not a regular file", "to rewrite it")),
    (fifo_manifest, "evaluate", ("manifest.json is a named pipe (FIFO), not a regular file", "to rewrite it")),
    (symlink_loop_dataset, "train", ("ks-tiny is a symbolic link loop, not a directory", GENERATE)),
    (symlink_loop_dataset, "evaluate", ("ks-tiny is a symbolic link loop, not a directory", GENERATE)),
    (file_for_dataset, "train", ("ks-tiny is a regular file, not a directory", GENERATE)),
    (file_for_dataset, "evaluate", ("ks-tiny is a regular file, not a directory", GENERATE)),
]


def _ids(value: object) -> str | None:
    return getattr(value, "__name__", None) if callable(value) else None


@pytest.mark.parametrize(("damage", "command", "fragments"), ROWS, ids=_ids)
def test_foreign_data_and_bad_headers_stop_the_command(work: Path, damage, command: str,
                                                       fragments: tuple[str, ...]) -> None:
    damage(work)
    message = run_command(command, work)
    assert_one_sentence(message, *fragments)
    assert len(message) < SHORT * (3 if command == "check" else 1), message[:SHORT]


@pytest.mark.parametrize(("damage", "command", "fragments"), KIND_ROWS, ids=_ids)
def test_what_a_path_is_is_named_and_never_opened(work: Path, damage, command: str,
                                                  fragments: tuple[str, ...]) -> None:
    damage(work)
    message = run_command_without_blocking(command, work)
    assert_one_sentence(message, *fragments)
    assert "does not exist" not in message, message


# --- focused ---------------------------------------------------------------------------------------------------------
def _message(call: Callable[[], object]) -> str:
    with pytest.raises(DatasetError) as info:
        call()
    return str(info.value)


def test_the_link_target_is_never_opened(work: Path) -> None:
    """With the target absent, the reader and the checker still give the link's sentence (following the link would
    give "missing variable" or an HDF5 error), each exactly once; the same sentence with the target present."""
    dangling_external_link_field(work)
    path = dataset_dir(work) / "train.h5"
    expected = (f"{path}: variable 'u' is an external link to {work / 'outside' / 'absent.h5'}:/u; a split file must "
                f"hold its data itself")
    assert _message(lambda: TrajectoryFile(path)) == expected
    assert check_file(path) == [expected]


def test_a_link_is_refused_where_a_reader_reopens_the_file(work: Path) -> None:
    """A file swapped after the header was read: the first read in a (worker) process checks the variable again."""
    path = dataset_dir(work) / "train.h5"
    tf = TrajectoryFile(path)
    outside = work / "outside"
    outside.mkdir()
    target = _target(path, outside)
    with h5py.File(path, "r+") as f:
        _replace_u(f, lambda g: g.__setitem__("u", h5py.ExternalLink(str(target), "/u")))
    message = _message(lambda: tf.read_window(0, 0, 2))
    assert message.startswith(f"{path}: variable 'u' is an external link to {target}:/u;"), message


def test_header_strings_within_the_limits_are_read(work: Path) -> None:
    path = dataset_dir(work) / "train.h5"
    with h5py.File(path, "r+") as f:
        f.attrs["generation_config"] = "x" * MAX_TEXT_ATTRIBUTE
        f.attrs["pde"] = "k" * 64
    with TrajectoryFile(path) as tf:
        assert tf.pde == "k" * 64 and len(tf.attrs["generation_config"]) == MAX_TEXT_ATTRIBUTE
    with h5py.File(path, "r+") as f:
        f.attrs["pde"] = "k" * 65
    assert "root attribute 'pde'" in _message(lambda: TrajectoryFile(path))


@pytest.mark.parametrize(("damage", "what"), [(virtual_field, "is a virtual dataset mapping {outside}/train.h5:u"),
                                              (external_storage_field, "is stored in external raw file(s) "
                                                                       "{outside}/train-u.raw")], ids=_ids)
def test_the_checker_refuses_a_virtual_field_and_external_storage_by_themselves(work: Path, damage,
                                                                               what: str) -> None:
    """The link walk alone refuses foreign storage (the manifest comparison of the check command would too): one
    sentence naming the variable and where its data lies, and no other problem of that field."""
    damage(work)
    path = dataset_dir(work) / "train.h5"
    assert check_file(path) == [f"{path}: variable 'u' {what.format(outside=work / 'outside')}; {OWN_DATA}"]


@pytest.mark.parametrize("link", ["external", "soft"])
def test_a_link_whose_name_is_no_utf8_is_refused_and_not_followed(work: Path, link: str) -> None:
    """HDF5 stores link names as bytes: a link named `extra\\xff` anywhere in the file is refused like any other (its
    name shown with the replacement character), and an external link's absent target is never opened."""
    path = dataset_dir(work) / "train.h5"
    absent = work / "outside" / "absent.h5"
    with h5py.File(path, "r+") as f:
        f.create_group("extra")[b"u\xff"] = h5py.ExternalLink(str(absent), "/u") if link == "external" else \
            h5py.SoftLink("/u")
    what = f"an external link to {absent}:/u" if link == "external" else "a soft link to /u"
    assert check_file(path) == [f"{path}: variable 'extra/u\ufffd' is {what}; {OWN_DATA}"]
