"""Reading a foreign HDF5 file as untrusted input: each failure is one `DatasetError` sentence naming the file.

A foreign file's arrays are mapped in place by an imported split file, so an array is accepted only when it holds
its own data (no external or soft link, no virtual dataset, no external raw storage; the same rule as for our split
files, `pdebench.data.reader.link_problem` and `storage_problem`): the manifest pins the foreign file by sha256, and
data reached through it from a third file would not be pinned.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pdebench.data.names import missing_or_kind, shown
from pdebench.data.reader import HDF5_ERRORS, attr_to_python, hdf5_reason, link_problem, storage_problem
from pdebench.data.schema import DatasetError

# HDF5 file name endings a foreign directory's files may have (The Well writes .hdf5, LPSDA .h5).
HDF5_SUFFIXES = (".h5", ".hdf5")


def hdf5_files(directory: Path, what: str) -> list[Path]:
    """The HDF5 files directly in `directory`, sorted by name; refuses a directory that is missing or holds none."""
    if not directory.is_dir():
        raise DatasetError(missing_or_kind(directory, what, directory=True))
    files = sorted(p for p in directory.iterdir() if p.suffix in HDF5_SUFFIXES and p.is_file())
    if not files:
        raise DatasetError(f"{what} {directory} holds no HDF5 file (*.h5, *.hdf5)")
    return files


def open_foreign(path: Path) -> h5py.File:
    """Open foreign file `path` read-only; a missing, special or unreadable file is one sentence."""
    if not path.is_file():
        raise DatasetError(missing_or_kind(path, "foreign file"))
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DatasetError(f"foreign file {path} is not a readable HDF5 file: {hdf5_reason(exc)}") from None


def member(path: Path, group: h5py.Group, name: str, layout: str) -> h5py.Group | h5py.Dataset:
    """`group[name]` of foreign file `path`, refused when absent or when it is a link (the link itself is read, never
    followed); `layout` names the foreign layout that expects it."""
    where = f"{group.name.rstrip('/')}/{name}"
    if not group.id.links.exists(name.encode()):
        raise DatasetError(f"{path}: missing '{where}', which the {layout} layout requires")
    problem = link_problem(path, group, name)
    if problem is not None:
        raise DatasetError(problem)
    try:
        return group[name]
    except HDF5_ERRORS as exc:
        raise DatasetError(f"{path}: '{where}' cannot be read (HDF5: {hdf5_reason(exc)})") from None


def array(path: Path, group: h5py.Group, name: str, layout: str, ndim: int | None = None) -> h5py.Dataset:
    """The real-valued dataset `group[name]` of foreign file `path` holding its own data, with `ndim` axes if given."""
    obj = member(path, group, name, layout)
    where = f"{group.name.rstrip('/')}/{name}"
    if not isinstance(obj, h5py.Dataset):
        raise DatasetError(f"{path}: '{where}' is a group; the {layout} layout expects an array")
    problem = storage_problem(path, where, obj)
    if problem is not None:
        raise DatasetError(problem)
    if obj.dtype.kind not in "iuf":
        raise DatasetError(f"{path}: '{where}' has dtype {obj.dtype}; expected a real number type")
    if ndim is not None and obj.ndim != ndim:
        raise DatasetError(f"{path}: '{where}' has shape {obj.shape}; the {layout} layout expects {ndim} axes")
    return obj


def values(path: Path, dset: h5py.Dataset) -> np.ndarray:
    """All of a (small) foreign array as float64, checked to be finite."""
    try:
        data = np.asarray(dset[()], dtype=np.float64)
    except HDF5_ERRORS as exc:
        raise DatasetError(f"{path}: '{dset.name}' cannot be read (HDF5: {hdf5_reason(exc)})") from None
    if not np.isfinite(data).all():
        raise DatasetError(f"{path}: '{dset.name}' holds a NaN or inf; expected finite values")
    return data


def attribute(path: Path, obj: h5py.Group | h5py.Dataset, key: str, layout: str) -> Any:
    """Attribute `key` of a foreign object as a plain Python value (bytes decoded, 1-element arrays unwrapped)."""
    if key not in obj.attrs:
        raise DatasetError(f"{path}: '{obj.name}' has no attribute '{key}', which the {layout} layout requires")
    try:
        return attr_to_python(obj.attrs[key])
    except HDF5_ERRORS as exc:
        raise DatasetError(f"{path}: attribute '{key}' of '{obj.name}' cannot be read ({hdf5_reason(exc)})") from None


def name_list(path: Path, obj: h5py.Group | h5py.Dataset, key: str, layout: str) -> list[str]:
    """A foreign attribute that lists names (a string array, or one string for a single name) as a list of str."""
    value = attribute(path, obj, key, layout)
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, str) for item in items):
        raise DatasetError(f"{path}: attribute '{key}' of '{obj.name}' is {shown(value)}; expected a list of names")
    return [item for item in items if item]
