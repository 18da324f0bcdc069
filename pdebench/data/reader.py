"""Read-only, lazy access to one split file of the trajectory format (see docs/data_format.md).

`TrajectoryFile` validates the header on open and then reads windows of trajectories straight from HDF5,
so training never loads a whole split into memory. It pickles without its HDF5 handle, so it can be
handed to DataLoader worker processes, each of which reopens the file on first use.

No damaged file may change a number silently: every HDF5 access goes through `_Hdf5Reads`, which turns the
errors h5py raises on a corrupted file (a failed Fletcher-32 chunk checksum, a broken object header) into one
`DatasetError` naming the file, the variable and the trajectory, and every array read is checked to be finite
(a NaN or inf written into a finished file is reported with its variable, trajectory and frame).

A split file must hold its data itself: the manifest pins a split file by the sha256 of its bytes, so data reached
through an HDF5 external or soft link, a virtual dataset or external raw storage could change every score under the
same `manifest_sha256`. `open_variable` refuses each of them for every variable the reader opens, looking at the link
and the dataset's creation properties only (O(1), and an external link's target is never opened). The root
attributes are checked too (`root_attribute_problems`): names follow `pdebench.data.names`' rule and free text has a
cap (`MAX_TEXT_ATTRIBUTE`), because they are copied into results and echoed in messages. A path that is no regular
file (a FIFO, a device, a symbolic link loop) is refused by what it is before anything opens it, so nothing blocks.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from pdebench.data.grid import QUADRATURE_RULES, Grid, canonical_grid_kind
from pdebench.data.names import missing_or_kind, name_problem, shown
from pdebench.data.schema import (
    CONDITIONING_ATTR,
    FRAME_DT_PARAMETER,
    PARTIAL_SUFFIX,
    QUADRATURE_ATTR,
    SCHEMA_NAME,
    SEED_VAR,
    SOURCES_ATTR,
    SPLITS,
    SUPPORTED_SCHEMA_VERSIONS,
    TIME_DIM,
    TRAJ_DIM,
    DatasetError,
    dataset_name,
    required_root_attrs,
)

# Raw-data chunk cache per open dataset: a few field chunks (~1 MiB each, see writer.field_chunks).
_CHUNK_CACHE_BYTES = 8 << 20
_FLOAT32 = h5py.h5t.py_create(np.dtype(np.float32))
# What h5py raises when the bytes of a file are damaged: OSError (a read or a Fletcher-32 checksum failed, a
# truncated file), RuntimeError and KeyError (a broken object header, B-tree or link), ValueError and TypeError
# (an undecodable datatype, dataspace or attribute message).
HDF5_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError)
# Longest text (in characters) a root attribute may hold. The longest ones a generator writes, `generation_config`
# and `solver_settings`, are YAML of a few KB; every open reads all root attributes and results copy some of them.
MAX_TEXT_ATTRIBUTE = 1 << 20
# Root attributes that are names (`names.NAME_RULE`): they name folders and datasets and are copied into results.
NAME_ATTRS = ("pde", "preset", "split", "grid", "quadrature", "solver")
# Root attributes that list variable names, comma-separated: each one is a name (so never an HDF5 path like `g/u`).
NAME_LIST_ATTRS = ("fields", "parameters", "spatial_coordinates", CONDITIONING_ATTR)
# How a variable whose data is not in the split file is refused (the end of the sentence).
OWN_DATA = "a split file must hold its data itself"
# Characters of a link target or source file name quoted in a message before it is cut.
_TARGET_SHOWN = 200
# Characters quoted from the beginning of a root attribute's text that is too long.
_TEXT_QUOTED = 40


def attr_to_python(value: Any) -> Any:
    """Convert an HDF5 attribute value (bytes, numpy scalar, 1-element array) into a plain Python value."""
    if isinstance(value, bytes | np.bytes_):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        if value.size == 1:
            return attr_to_python(value.reshape(()).item())
        return [attr_to_python(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def split_names(value: Any) -> tuple[str, ...]:
    """Parse a comma-separated name list attribute ("u,v" -> ("u", "v"); "" -> ())."""
    text = attr_to_python(value)
    if isinstance(text, list):  # tolerate a string array written by other tools
        return tuple(str(t) for t in text)
    return tuple(name for name in str(text).split(",") if name)


def _hint(dataset_dir: Path) -> str:
    """The command that (re)generates a dataset directory named `<pde>-<preset>`, naming only presets that exist.

    The presets are those of `conf/pde/<pde>.yaml`. For a preset it does not define, a `pdebench-generate` command
    would fail too, so the hint lists the defined presets and the `<pde>-*` dataset directories next to this one.
    """
    pde, _, preset = dataset_dir.name.rpartition("-")
    if not pde:
        return "generate it with `pdebench-generate`"
    import yaml

    from pdebench.config.location import CONFIG_DIR

    try:
        name, doc = pde, {}
        for _ in range(8):  # a PDE config may take its presets from another one through `defaults` (ks_visc: ks)
            doc = yaml.safe_load((Path(CONFIG_DIR) / "pde" / f"{name}.yaml").read_text(encoding="utf-8"))
            if "presets" in doc:
                break
            name = next(d for d in doc.get("defaults", []) if isinstance(d, str) and d != "_self_")
        presets = [str(p) for p in doc["presets"]]
    except FileNotFoundError:
        return f"pde={pde} has no conf/pde/{pde}.yaml, so `pdebench-generate` cannot make it"
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError, AttributeError, StopIteration):
        presets = [preset]  # an unreadable PDE config is reported by pdebench-generate itself
    if preset in presets:
        return f"generate it with `pdebench-generate pde={pde} preset={preset}`"
    present = sorted(p.name for p in dataset_dir.parent.glob(f"{pde}-*") if p.is_dir())
    held = f"; {dataset_dir.parent} holds {', '.join(present)}" if present else ""
    return (
        f"pde={pde} has no preset {preset!r} to generate it from (conf/pde/{pde}.yaml defines "
        f"{', '.join(presets)}{held})"
    )


def open_dataset_dir(root: str | Path, pde: str, preset: str) -> Path:
    """Return `root/<pde>-<preset>`, the directory holding the split files, or say what is there instead (a file, a
    symbolic link loop, nothing) and how to create it."""
    dataset_dir = Path(root) / dataset_name(pde, preset)
    if not dataset_dir.is_dir():
        raise DatasetError(f"{missing_or_kind(dataset_dir, 'dataset directory', directory=True)}; {_hint(dataset_dir)}")
    return dataset_dir


def split_path(dataset_dir: Path, split: str) -> Path:
    """Return the path of one split file (`<dataset_dir>/<split>.h5`), or explain how to create it."""
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    dataset_dir = Path(dataset_dir)
    path = dataset_dir / f"{split}.h5"
    if path.is_file():
        return path
    sentence = missing_or_kind(path, "split file")  # what is there (a directory, a FIFO, a link loop) or nothing
    if os.path.lexists(path):
        raise DatasetError(f"{sentence}; remove it and {_hint(dataset_dir)}")
    partial = path.with_name(path.name + PARTIAL_SUFFIX)
    if partial.exists():
        raise DatasetError(
            f"{sentence}, but an interrupted run left {partial.name}; "
            f"rerun the same generation command to resume it ({_hint(dataset_dir)})"
        )
    raise DatasetError(f"{sentence}; {_hint(dataset_dir)}")


def open_h5(path: Path) -> h5py.File:
    """Open an HDF5 file read-only, turning every failure into one DatasetError sentence about `path`.

    Anything but a regular file is refused by what it is before it is opened (opening a FIFO would block).
    """
    if not path.is_file():
        raise DatasetError(missing_or_kind(path, "dataset file"))
    try:
        return h5py.File(path, "r", rdcc_nbytes=_CHUNK_CACHE_BYTES)
    except OSError as exc:
        raise DatasetError(
            f"dataset file {path} is not a readable HDF5 file (truncated or corrupted?): {exc}"
        ) from exc


def header_problem(path: Path, attrs: dict[str, Any]) -> str | None:
    """Return a sentence if the root attributes do not identify a supported schema version, else None."""
    schema = attrs.get("schema")
    if schema != SCHEMA_NAME:
        return (
            f"{path}: root attribute 'schema' is {shown(schema)}; expected {SCHEMA_NAME!r} "
            f"(not a pdebench trajectory file)"
        )
    version = attrs.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        return (
            f"{path}: schema_version {shown(version)} is not supported by this pdebench "
            f"(supported: {', '.join(SUPPORTED_SCHEMA_VERSIONS)}); regenerate the dataset or upgrade pdebench"
        )
    return None


def conditioning_problem(path: Path, attrs: dict[str, Any]) -> str | None:
    """The sentence refusing root attribute `conditioning` when it names a parameter the file does not list in
    `parameters` or names one twice, else None (also when the attribute is absent, as in files before schema 1.4)."""
    if CONDITIONING_ATTR not in attrs:
        return None
    listed = split_names(attrs.get("parameters", ""))
    names = split_names(attrs[CONDITIONING_ATTR])
    unknown = [name for name in names if name not in listed]
    if unknown:
        return (f"{path}: root attribute '{CONDITIONING_ATTR}' names {', '.join(map(shown, unknown))}; expected "
                f"parameters listed in 'parameters' ({', '.join(listed) or 'none'})")
    if len(set(names)) != len(names):
        return (f"{path}: root attribute '{CONDITIONING_ATTR}' is {shown(attrs[CONDITIONING_ATTR])}; expected each "
                f"parameter at most once")
    return None


def conditioning_names(attrs: dict[str, Any]) -> tuple[str, ...]:
    """The parameters that condition a model, in the order of `parameters`: those root attribute `conditioning`
    lists (schema 1.4 on), every parameter in older files, which have no such attribute."""
    parameters = split_names(attrs.get("parameters", ""))
    if CONDITIONING_ATTR not in attrs:
        return parameters
    listed = set(split_names(attrs[CONDITIONING_ATTR]))
    return tuple(name for name in parameters if name in listed)


def _text_size(value: Any) -> int:
    """Characters of text in an attribute value (a string, or a list of them); 0 for numbers."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_text_size(v) for v in value)
    return 0


def _attribute_problem(key: str, value: Any) -> str | None:
    """What is wrong with root attribute `key` = `value` (a phrase after "root attribute 'key'"), or None."""
    if key in NAME_ATTRS:
        problem = name_problem(value)
        return None if problem is None else f"is {shown(value)}, which {problem}"
    size = _text_size(value)
    if size > MAX_TEXT_ATTRIBUTE:
        beginning = shown(value[:_TEXT_QUOTED] if isinstance(value, str) else value)
        return f"holds {size} characters, beginning {beginning}; expected at most {MAX_TEXT_ATTRIBUTE} characters"
    if key in NAME_LIST_ATTRS:
        for name in split_names(value):
            problem = name_problem(name)
            if problem is not None:
                return f"names {shown(name)}, which {problem}"
    return None


def root_attribute_problems(path: Path, attrs: dict[str, Any]) -> list[str]:
    """One sentence per root attribute that breaks the limits: a name (`NAME_ATTRS`, each entry of `NAME_LIST_ATTRS`)
    that is no name, a text longer than `MAX_TEXT_ATTRIBUTE`. No sentence quotes more than the start of a value."""
    problems = []
    for key, value in attrs.items():
        problem = _attribute_problem(key, value)
        if problem is not None:
            problems.append(f"{path}: root attribute {shown(key)} {problem}")
    return problems


def _target_text(raw: bytes | str) -> str:
    """A link target or source file name as quoted in a message (cut when long)."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return text if len(text) <= _TARGET_SHOWN else shown(text)


def link_problem(path: Path, group: h5py.Group, name: str | bytes) -> str | None:
    """The sentence refusing member `name` of `group` when it is not a hard link (an external, soft or user-defined
    link); None for a hard link or no link at all.

    Reads the link itself, never what it points to: h5py's `name in group` and `group.get(name, getlink=True)` open
    an external link's target file to see whether it exists. `name` is one link name, or a path through hard links;
    as bytes it is the name as HDF5 stores it, which need not be UTF-8 (the sentence shows it decoded).
    """
    links = group.id.links
    key = name if isinstance(name, bytes) else name.encode()
    name = key.decode("utf-8", "replace")
    if not links.exists(key):
        return None
    kind = links.get_info(key).type
    if kind == h5py.h5l.TYPE_HARD:
        return None
    if kind == h5py.h5l.TYPE_EXTERNAL:
        file_name, target = links.get_val(key)
        what = f"an external link to {_target_text(file_name)}:{_target_text(target)}"
    elif kind == h5py.h5l.TYPE_SOFT:
        what = f"a soft link to {_target_text(links.get_val(key))}"
    else:
        what = f"a user-defined link (HDF5 link type {kind})"
    return f"{path}: variable '{name}' is {what}; {OWN_DATA}"


def declared_sources(value: Any) -> tuple[str, ...]:
    """The foreign files a root attribute `sources` (`SOURCES_ATTR`, written by `pdebench-import`) declares: its JSON
    list of absolute paths; () when the attribute is absent (None) or is anything else, so that nothing is declared."""
    text = None if value is None else attr_to_python(value)
    if not isinstance(text, str):
        return ()
    try:
        paths = json.loads(text)
    except json.JSONDecodeError:
        return ()
    if not isinstance(paths, list) or not all(isinstance(p, str) and os.path.isabs(p) and "\0" not in p for p in paths):
        return ()
    return tuple(paths)


def storage_problem(path: Path, name: str, dset: h5py.Dataset) -> str | None:
    """The sentence refusing dataset `name` when its data lies outside the file (a virtual dataset, external raw
    storage), else None; reads the dataset's creation properties only.

    One exception: a virtual dataset of an imported split file, every source of which is a foreign file that the
    file's root attribute `sources` declares (the manifest pins those files by size and sha256, `verify_dataset`), is
    the file's data; it is refused only when a declared source is not there (HDF5 would read fill values instead).
    """
    if dset.is_virtual:
        files = [source.file_name for source in dset.virtual_sources()]
        declared = declared_sources(dset.file.attrs.get(SOURCES_ATTR))
        if declared and all(file_name in declared for file_name in files):
            gone = next((file_name for file_name in files if not Path(file_name).is_file()), None)
            if gone is None:
                return None
            return (f"{path}: variable '{name}' maps {missing_or_kind(gone, 'foreign file')}; import the foreign "
                    f"dataset again (`pdebench-import`)")
        sources = ", ".join(f"{source.file_name}:{source.dset_name}" for source in dset.virtual_sources())
        return f"{path}: variable '{name}' is a virtual dataset mapping {_target_text(sources)}; {OWN_DATA}"
    external = dset.external
    if external:
        files = ", ".join(_target_text(entry[0]) for entry in external)
        return f"{path}: variable '{name}' is stored in external raw file(s) {_target_text(files)}; {OWN_DATA}"
    return None


def open_variable(path: Path, group: h5py.Group, name: str) -> h5py.Dataset:
    """`group[name]`, refused with one DatasetError sentence unless it is a dataset of this file holding its own
    data (no external or soft link, no group, no virtual dataset or external storage)."""
    problem = link_problem(path, group, name)
    if problem is not None:
        raise DatasetError(problem)
    obj = group[name]
    if not isinstance(obj, h5py.Dataset):
        raise DatasetError(f"{path}: '{name}' is a group; expected a variable")
    problem = storage_problem(path, name, obj)
    if problem is not None:
        raise DatasetError(problem)
    return obj


def hdf5_reason(exc: BaseException) -> str:
    """The text of an h5py error (a KeyError's str() would add quotes), or its type name when it has none."""
    return str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc) or type(exc).__name__


def damaged_message(path: Path, exc: BaseException, variable: str | None = None, traj: int | None = None) -> str:
    """One sentence for an HDF5 failure while reading `path` (naming the variable and trajectory when known)."""
    what = "the file"
    if variable is not None:
        what = f"variable '{variable}'" + (f" of trajectory {traj}" if traj is not None else "")
    reason = hdf5_reason(exc)
    # HDF5's wording when a filter rejects a chunk; the only filter of our files is the Fletcher-32 checksum.
    cause = "a chunk failed its checksum" if "filter returned failure" in reason else "corrupted or truncated"
    return (
        f"{path}: {what} cannot be read (HDF5: {reason}); the file is damaged ({cause}): regenerate the dataset "
        f"or restore the file from a copy"
    )


class _Hdf5Reads:
    """Context manager around HDF5 reads: re-raises h5py's errors as one `DatasetError` naming the file.

    The one place where `TrajectoryFile` converts HDF5 failures, so a damaged file never surfaces as a raw
    RuntimeError/OSError/KeyError without its name. A class, not a generator, because it sits on the hot path
    of `read_window`.
    """

    __slots__ = ("path", "traj", "variable")

    def __init__(self, path: Path, variable: str | None, traj: int | None) -> None:
        self.path = path
        self.variable = variable
        self.traj = traj

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None or isinstance(exc, DatasetError) or not isinstance(exc, HDF5_ERRORS):
            return
        raise DatasetError(damaged_message(self.path, exc, self.variable, self.traj)) from exc


def _as_number(value: Any, kind: type[float] | type[int]) -> float:
    """A numeric root attribute as `kind`, or NaN when it is no number (so the caller's check reports it)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return kind(value) if math.isfinite(value) else math.nan


def _first_nonfinite(values: np.ndarray) -> tuple[int, ...]:
    """Index of the first NaN/inf of an array that is known to hold one (only called on the error path)."""
    return tuple(int(i) for i in np.argwhere(~np.isfinite(values))[0])


class TrajectoryFile:
    """Read-only, lazy view of a split file; safe to pickle into DataLoader workers (reopens per process)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: h5py.File | None = None
        self._pid = -1
        self._datasets: dict[str, h5py.Dataset] = {}
        self._params: dict[str, np.ndarray] | None = None
        self._seeds: np.ndarray | None = None
        self._load_header()

    # --- header ---------------------------------------------------------------------------------------
    def _reading(self, variable: str | None = None, traj: int | None = None) -> _Hdf5Reads:
        """Wrap HDF5 reads of `variable` (of trajectory `traj`): h5py errors become one `DatasetError`."""
        return _Hdf5Reads(self.path, variable, traj)

    def _load_header(self) -> None:
        """Open the file, check the schema and read the metadata every reader needs.

        Every message is built while the file is still open (shapes and dtypes are read from live handles),
        and the handle is closed on every way out.
        """
        try:
            with self._reading():
                self._read_header(self._handle())
        finally:
            # Hold no handle between construction and the first read: a DataLoader that forks workers after
            # building the dataset then never shares HDF5 state between processes.
            self.close()

    def _read_header(self, f: h5py.File) -> None:
        """Validate the root attributes and the shape and dtype of every listed variable of the open file `f`."""
        attrs = {k: attr_to_python(v) for k, v in f.attrs.items() if not k.startswith("_")}
        problem = header_problem(self.path, attrs)
        if problem is not None:
            raise DatasetError(problem)
        missing = [a for a in required_root_attrs(attrs["schema_version"]) if a not in attrs]
        if missing:
            raise DatasetError(f"{self.path}: missing root attribute(s) {', '.join(missing)}")
        problems = root_attribute_problems(self.path, attrs)
        if problems:
            raise DatasetError(problems[0])
        self.attrs: dict[str, Any] = attrs
        self.pde: str = str(attrs["pde"])
        self.preset: str = str(attrs["preset"])
        self.split: str = str(attrs["split"])
        try:
            self.grid_kind: str = canonical_grid_kind(str(attrs["grid"]))
        except ValueError as exc:
            raise DatasetError(f"{self.path}: root attribute 'grid': {exc}") from None
        # The grid's quadrature rule as recorded (schema 1.3 on); None in older files, whose grid gets the rule of its
        # kind and coordinates (`Grid`).
        self.quadrature: str | None = attrs.get(QUADRATURE_ATTR)
        if self.quadrature is not None and self.quadrature not in QUADRATURE_RULES:
            raise DatasetError(f"{self.path}: root attribute '{QUADRATURE_ATTR}' is {shown(self.quadrature)}; "
                               f"expected one of {', '.join(QUADRATURE_RULES)}")
        self.frame_interval: float = _as_number(attrs["frame_interval"], float)
        if not (math.isfinite(self.frame_interval) and self.frame_interval > 0):
            raise DatasetError(
                f"{self.path}: root attribute 'frame_interval' is {shown(attrs['frame_interval'])}; "
                f"expected a positive number"
            )
        self.field_names: tuple[str, ...] = split_names(attrs["fields"])
        self.parameter_names: tuple[str, ...] = split_names(attrs["parameters"])
        problem = conditioning_problem(self.path, attrs)
        if problem is not None:
            raise DatasetError(problem)
        # The parameters that are model inputs (conditioning), in `parameters` order; the others are per-trajectory
        # records, read by `parameters()` but never given to a model or standardised.
        self.conditioning_names: tuple[str, ...] = conditioning_names(attrs)
        self.coordinate_names: tuple[str, ...] = split_names(attrs["spatial_coordinates"])
        needed = (TRAJ_DIM, TIME_DIM, SEED_VAR, *self.coordinate_names, *self.field_names)
        # the link table, not `name in f`, which would open an external link's target file to see if it exists
        absent = [n for n in (*needed, *self.parameter_names) if not f.id.links.exists(n.encode())]
        if absent:
            raise DatasetError(f"{self.path}: missing variable(s) {', '.join(absent)}")
        if not self.field_names:
            raise DatasetError(f"{self.path}: root attribute 'fields' lists no field")
        variables: dict[str, h5py.Dataset] = {}
        for name in (*needed, *self.parameter_names):
            with self._reading(name):
                variables[name] = open_variable(self.path, f, name)
        for name in (TRAJ_DIM, TIME_DIM, *self.coordinate_names):
            self._expect(variables[name], name, "coordinate", None, None)
        self.n_traj: int = int(variables[TRAJ_DIM].shape[0])
        self.n_frames: int = int(variables[TIME_DIM].shape[0])
        self.spatial_shape: tuple[int, ...] = tuple(int(variables[c].shape[0]) for c in self.coordinate_names)
        sizes = zip((TRAJ_DIM, TIME_DIM, *self.coordinate_names), (self.n_traj, self.n_frames, *self.spatial_shape),
                    strict=True)
        empty = [f"'{name}'" for name, size in sizes if size < 1]
        if empty:
            raise DatasetError(f"{self.path}: coordinate(s) {', '.join(empty)} have length 0; expected at least 1")
        for name in self.field_names:
            shape = (self.n_traj, self.n_frames, *self.spatial_shape)
            self._expect(variables[name], name, "field", shape, np.dtype(np.float32))
        for name in self.parameter_names:
            self._expect(variables[name], name, "parameter", (self.n_traj,), np.dtype(np.float64))
        self._expect(variables[SEED_VAR], SEED_VAR, "seed", (self.n_traj,), np.dtype(np.int64))
        if _as_number(attrs["n_traj_complete"], int) != self.n_traj:
            raise DatasetError(
                f"{self.path}: only {shown(attrs['n_traj_complete'])} of {self.n_traj} trajectories are complete "
                f"(unfinished file)"
            )

    def _expect(
        self, dset: h5py.Dataset, name: str, role: str, shape: tuple[int, ...] | None, dtype: np.dtype | None
    ) -> None:
        """Raise one sentence naming file, variable and expectation unless `dset` has `shape` (1-D if None) and
        `dtype` (any real number type if None)."""
        with self._reading(name):
            got_shape, got_dtype = dset.shape, dset.dtype
        if shape is None and len(got_shape) != 1:
            raise DatasetError(f"{self.path}: {role} '{name}' has shape {got_shape}; expected 1-D")
        if shape is not None and got_shape != shape:
            raise DatasetError(f"{self.path}: {role} '{name}' has shape {got_shape}; expected {shape}")
        if dtype is None and got_dtype.kind not in "iuf":
            raise DatasetError(f"{self.path}: {role} '{name}' has dtype {got_dtype}; expected a number type")
        if dtype is not None and got_dtype != dtype:
            raise DatasetError(f"{self.path}: {role} '{name}' has dtype {got_dtype}; expected {dtype}")

    # --- handle management ----------------------------------------------------------------------------
    def _handle(self) -> h5py.File:
        """The open h5py file of this process (reopened after pickling or fork)."""
        if self._file is None or self._pid != os.getpid():
            self._file = open_h5(self.path)
            self._pid = os.getpid()
            self._datasets = {}
        return self._file

    def _dataset(self, name: str) -> h5py.Dataset:
        """Cached h5py Dataset for one variable (lookups by name are slow on the hot path).

        Checked again on first use in each process (`open_variable`, O(1)): the file may have been replaced since the
        header was read, and a link must never be followed.
        """
        f = self._handle()
        dset = self._datasets.get(name)
        if dset is None:
            dset = open_variable(self.path, f, name)
            self._datasets[name] = dset
        return dset

    def close(self) -> None:
        """Close the HDF5 handle (the object can still be used: it reopens on the next read)."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None
        self._datasets = {}

    def __enter__(self) -> TrajectoryFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"] = None
        state["_datasets"] = {}
        state["_pid"] = -1
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return (
            f"TrajectoryFile({str(self.path)!r}, n_traj={self.n_traj}, n_frames={self.n_frames}, "
            f"spatial_shape={self.spatial_shape}, fields={self.field_names})"
        )

    # --- reads ----------------------------------------------------------------------------------------
    def _check_traj(self, traj: int) -> int:
        """Normalise a (possibly negative) trajectory index, raising IndexError when out of range."""
        t = int(traj)
        if t < 0:
            t += self.n_traj
        if not 0 <= t < self.n_traj:
            raise IndexError(
                f"trajectory {traj} out of range for {self.path} with {self.n_traj} trajectories"
            )
        return t

    def _nonfinite(self, name: str, traj: int, frame: int) -> DatasetError:
        """The error for a NaN/inf found in field `name` at `traj`, `frame` (written into the file after generation)."""
        return DatasetError(
            f"{self.path}: field '{name}' holds a non-finite value (NaN or inf) in trajectory {traj}, frame "
            f"{frame}; expected finite values (the file was altered after it was written: regenerate or restore it)"
        )

    def read_field(self, name: str, traj: int | slice | np.ndarray, time: slice = slice(None)) -> np.ndarray:
        """Read one field: float32 `[T, *space]` for an int `traj`, `[B, T, *space]` for a slice/array.

        Raises `DatasetError` if what was read holds a NaN/inf or a chunk fails its checksum.
        """
        if name not in self.field_names:
            raise KeyError(f"{self.path} has no field {name!r}; fields: {', '.join(self.field_names)}")
        # Stored frame index of position k along the time axis of the result (an int `time` has no such axis).
        frames = range(self.n_frames)[time] if isinstance(time, slice) else None
        if isinstance(traj, slice):
            trajs: range | np.ndarray = range(self.n_traj)[traj]
            try:
                with self._reading(name):
                    values = np.asarray(self._dataset(name)[traj, time], dtype=np.float32)
            except DatasetError:
                self._locate_unreadable(name, trajs, time)
                raise
        elif isinstance(traj, np.ndarray | list | tuple):
            idx = np.asarray(traj, dtype=np.int64).reshape(-1)
            idx = np.where(idx < 0, idx + self.n_traj, idx)
            if idx.size and (idx.min() < 0 or idx.max() >= self.n_traj):
                raise IndexError(
                    f"trajectory index out of range for {self.path} with {self.n_traj} trajectories"
                )
            trajs = idx
            # h5py fancy indexing needs increasing unique indices: read those, then restore the asked order.
            unique, inverse = np.unique(idx, return_inverse=True)
            try:
                with self._reading(name):
                    dset = self._dataset(name)
                    block = np.asarray(dset[unique, time] if unique.size else dset[0:0, time], dtype=np.float32)
            except DatasetError:
                self._locate_unreadable(name, unique, time)
                raise
            values = block if unique.size == idx.size and np.array_equal(unique, idx) else block[inverse]
        else:
            t = self._check_traj(traj)
            with self._reading(name, t):
                values = np.asarray(self._dataset(name)[t, time], dtype=np.float32)
            if not np.isfinite(values).all():
                k = _first_nonfinite(values)[0]
                raise self._nonfinite(name, t, frames[k] if frames is not None else int(time))
            return values
        if not np.isfinite(values).all():
            b, k = _first_nonfinite(values)[:2]
            raise self._nonfinite(name, int(trajs[b]), frames[k] if frames is not None else int(time))
        return values

    def _locate_unreadable(self, name: str, trajs: range | np.ndarray, time: slice) -> None:
        """After a read of several trajectories failed: read them one by one, so that the error names the first
        trajectory that cannot be read (returns, and the caller re-raises the original error, if none fails)."""
        for t in trajs:
            with self._reading(name, int(t)):
                self._dataset(name)[int(t), time]

    def read_window(self, traj: int, start: int, stop: int, step: int = 1) -> np.ndarray:
        """Read frames `start:stop:step` of one trajectory, all fields stacked: float32 `[C, T, *space]`.

        Raises `DatasetError` if what was read holds a NaN/inf or a chunk fails its checksum.
        """
        t = self._check_traj(traj)
        if step < 1 or not 0 <= start < stop <= self.n_frames:
            raise IndexError(
                f"window {start}:{stop}:{step} is not inside the {self.n_frames} frames of {self.path}"
            )
        n_t = len(range(start, stop, step))
        space = self.spatial_shape
        out = np.empty((len(self.field_names), n_t, *space), dtype=np.float32)
        # One hyperslab read per field straight into its output slab (h5py's read_direct does the same
        # through a much slower generic selection path; plain indexing would allocate and copy).
        mem_space = h5py.h5s.create_simple((n_t, *space))
        origin = (t, start, *(0 for _ in space))
        count = (1, n_t, *space)
        stride = (1, step, *(1 for _ in space))
        for c, name in enumerate(self.field_names):
            with self._reading(name, t):
                dset_id = self._dataset(name).id
                file_space = dset_id.get_space()
                file_space.select_hyperslab(origin, count, stride=stride if step > 1 else None)
                dset_id.read(mem_space, file_space, out[c], _FLOAT32)
        if not np.isfinite(out).all():
            c, k = _first_nonfinite(out)[:2]
            raise self._nonfinite(self.field_names[c], t, start + k * step)
        return out

    def parameters(self) -> dict[str, np.ndarray]:
        """Per-trajectory parameters: name -> float64 `[n_traj]` (read and checked to be finite once, then cached)."""
        if self._params is None:
            params: dict[str, np.ndarray] = {}
            for name in self.parameter_names:
                with self._reading(name):
                    values = self._dataset(name)[...].astype(np.float64)
                if not np.isfinite(values).all():
                    raise DatasetError(
                        f"{self.path}: parameter '{name}' is non-finite (NaN or inf) for trajectory "
                        f"{_first_nonfinite(values)[0]}; expected finite values (the file was altered after it "
                        f"was written: regenerate or restore it)"
                    )
                params[name] = values
            self._params = params
        return dict(self._params)

    def seeds(self) -> np.ndarray:
        """Per-trajectory generator seeds: int64 `[n_traj]` (read once, then cached)."""
        if self._seeds is None:
            with self._reading(SEED_VAR):
                self._seeds = self._dataset(SEED_VAR)[...].astype(np.int64)
        return self._seeds.copy()

    def coordinate(self, name: str) -> np.ndarray:
        """Values of one spatial coordinate: float64 `[n]`, checked to be finite."""
        if name not in self.coordinate_names:
            raise KeyError(f"{self.path} has no spatial coordinate {name!r}")
        with self._reading(name):
            values = self._dataset(name)[...].astype(np.float64)
        if not np.isfinite(values).all():
            raise DatasetError(
                f"{self.path}: coordinate '{name}' is non-finite (NaN or inf) at index {_first_nonfinite(values)[0]}; "
                f"expected finite values"
            )
        return values

    def coordinate_units(self, name: str) -> str:
        """Units of one spatial coordinate as the file records them (its `units` attribute; empty where it has
        none), e.g. `length units`, `degrees_north`, `1 (fraction of L)`."""
        if name not in self.coordinate_names:
            raise KeyError(f"{self.path} has no spatial coordinate {name!r}")
        with self._reading(name):
            units = self._dataset(name).attrs.get("units", "")
        return str(attr_to_python(units))

    @property
    def grid(self) -> Grid:
        """The spatial grid (kind, coordinates, periodic axes, quadrature rule and weights), built from the file; a
        recorded quadrature rule that does not fit the coordinates is a DatasetError."""
        if getattr(self, "_grid", None) is None:
            coords = tuple(self.coordinate(name) for name in self.coordinate_names)
            try:
                self._grid = Grid(self.grid_kind, self.coordinate_names, coords, self.quadrature)
            except ValueError as exc:
                raise DatasetError(f"{self.path}: {exc}") from None
        return self._grid

    def frame_intervals(self) -> np.ndarray:
        """Time between stored frames of every trajectory: float64 `[n_traj]`.

        The per-trajectory `dt` parameter when the file has one, else the nominal `frame_interval`.
        """
        if FRAME_DT_PARAMETER in self.parameter_names:
            return self.parameters()[FRAME_DT_PARAMETER]
        return np.full(self.n_traj, self.frame_interval)

    def frame_times(self, traj: int) -> np.ndarray:
        """Physical time of every stored frame of one trajectory: float64 `[n_frames]`."""
        return np.arange(self.n_frames, dtype=np.float64) * self.frame_intervals()[self._check_traj(traj)]
