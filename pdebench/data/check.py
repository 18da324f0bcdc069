"""Check a split file against the trajectory format specification (docs/data_format.md).

`check_file` collects every problem as one sentence naming the file and the offending attribute or
variable; it never raises on a malformed file. Every field is read completely, block by block (memory use
does not grow with the size of the file), which finds NaN/inf and makes HDF5 verify the Fletcher-32 checksum
of every chunk: a corrupted chunk is reported with its field and trajectories.

Before any variable is opened, every link of the file is walked (`_foreign_data`): an external, soft or user-defined
link, a virtual dataset or external raw storage anywhere in the file is refused, also where the reader never looks,
and no link is followed (an external link's target is never opened). Root attributes are held to the reader's limits
(`reader.root_attribute_problems`), and no message quotes more than the start of a value.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pdebench.data.grid import QUADRATURE_RULES, SPHERE_AXES, canonical_grid_kind, quadrature_rule
from pdebench.data.names import name_problem, shown
from pdebench.data.reader import (
    HDF5_ERRORS,
    attr_to_python,
    conditioning_problem,
    hdf5_reason,
    header_problem,
    link_problem,
    open_h5,
    root_attribute_problems,
    split_names,
    storage_problem,
)
from pdebench.data.schema import (
    FLETCHER32_SINCE,
    QUADRATURE_ATTR,
    SEED_VAR,
    SPLITS,
    TIME_DIM,
    TRAJ_DIM,
    DatasetError,
    required_root_attrs,
    version_tuple,
)

# Upper bound on the bytes read at once while scanning a field for NaN/inf.
_SCAN_BYTES = 32 << 20


def _dim_names(dset: h5py.Dataset) -> list[str | None]:
    """Name of the dimension scale attached to each axis of a dataset (None where none is attached)."""
    names: list[str | None] = []
    for axis in dset.dims:
        try:
            scales = list(axis.values())
            name = scales[0].name if scales else None
        except Exception:  # any broken reference means "no usable scale"
            name = None
        names.append(name.rsplit("/", 1)[-1] if name else None)  # h5py gives None for a name it cannot resolve
    return names


def _scan_field(dset: h5py.Dataset) -> tuple[list[int], list[int], str | None]:
    """Read a whole field, a bounded number of bytes at a time: which trajectories (axis 0) hold NaN/inf, which
    cannot be read (a chunk that fails its Fletcher-32 checksum, a broken chunk index), and the first read error.

    A block that fails to read is read again trajectory by trajectory, so the damage is located exactly and the
    rest of the field is still checked.
    """
    n_traj = dset.shape[0]
    per_traj = max(1, math.prod(dset.shape[1:]) * dset.dtype.itemsize)
    nonfinite: list[int] = []
    unreadable: list[int] = []
    first_error: str | None = None

    def read(selection: Any) -> np.ndarray | None:
        nonlocal first_error
        try:
            return dset[selection]
        except HDF5_ERRORS as exc:
            first_error = first_error or hdf5_reason(exc)
            return None

    if per_traj <= _SCAN_BYTES:
        step = max(1, _SCAN_BYTES // per_traj)
        for lo in range(0, n_traj, step):
            block = read(np.s_[lo : lo + step])
            if block is None:
                for i in range(lo, min(lo + step, n_traj)):
                    one = read(np.s_[i])
                    if one is None:
                        unreadable.append(i)
                    elif not np.isfinite(one).all():
                        nonfinite.append(i)
                continue
            finite = np.isfinite(block).reshape(block.shape[0], -1).all(axis=1)
            nonfinite.extend(int(i) + lo for i in np.flatnonzero(~finite))
        return nonfinite, unreadable, first_error
    # One trajectory is larger than the scan budget: walk it frame block by frame block.
    per_frame = max(1, per_traj // max(dset.shape[1], 1))
    t_step = max(1, _SCAN_BYTES // per_frame)
    for i in range(n_traj):
        for t0 in range(0, dset.shape[1], t_step):
            part = read(np.s_[i, t0 : t0 + t_step])
            if part is None:
                unreadable.append(i)
                break
            if not np.isfinite(part).all():
                nonfinite.append(i)
                break
    return nonfinite, unreadable, first_error


def _describe(indices: list[int]) -> str:
    listed = ", ".join(str(i) for i in indices[:5])
    return listed + (", ..." if len(indices) > 5 else "")


def _foreign_data(path: Path, f: h5py.File) -> dict[str, str]:
    """Every member of the file whose data is not the file's own: name -> the sentence refusing it.

    HDF5's link walk (H5Lvisit) visits every link once and descends only through hard links to groups, so it never
    follows a soft or external link; only objects reached through hard links are opened (to check their storage).
    """
    found: dict[str, str] = {}

    def visit(raw: bytes) -> None:
        name = raw.decode("utf-8", "replace")
        problem = link_problem(path, f, raw)  # the stored name: one that is no UTF-8 must not escape the check
        if problem is None:
            try:
                obj = f[raw]
            except HDF5_ERRORS:  # a damaged object header: a variable reports it when it is checked
                return
            if isinstance(obj, h5py.Dataset):
                problem = storage_problem(path, name, obj)
        if problem is not None:
            found[name] = problem

    try:
        f.id.links.visit(visit)
    except HDF5_ERRORS as exc:
        found[""] = f"{path}: the links of the file cannot be walked ({hdf5_reason(exc)}); the file is damaged"
    return found


def check_file(path: str | Path) -> list[str]:
    """Return every problem found in a split file as one sentence each (an empty list means valid)."""
    path = Path(path)
    try:
        f = open_h5(path)
    except DatasetError as exc:
        return [str(exc)]
    try:
        return _check_open(path, f)
    except Exception as exc:  # a damaged file must yield a report, not a traceback
        return [f"{path}: could not be read completely ({type(exc).__name__}: {exc}); the file is damaged"]
    finally:
        f.close()


def _check_open(path: Path, f: h5py.File) -> list[str]:
    problems: list[str] = []
    attrs: dict[str, Any] = {k: attr_to_python(v) for k, v in f.attrs.items()}
    problem = header_problem(path, attrs)
    if problem is not None:
        return [problem]  # not (or not yet) our format: the remaining checks would be noise
    for name in required_root_attrs(attrs["schema_version"]):
        if name not in attrs:
            problems.append(f"{path}: missing root attribute '{name}'")
    problems.extend(root_attribute_problems(path, attrs))
    foreign = _foreign_data(path, f)
    problems.extend(foreign.values())

    fields = split_names(attrs.get("fields", ""))
    params = split_names(attrs.get("parameters", ""))
    coords = split_names(attrs.get("spatial_coordinates", ""))
    if "fields" in attrs and not fields:
        problems.append(f"{path}: root attribute 'fields' lists no field; expected at least one")
    if "split" in attrs and attrs["split"] not in SPLITS:
        problems.append(
            f"{path}: root attribute 'split' is {shown(attrs['split'])}; expected one of {', '.join(SPLITS)}"
        )
    named = path.name.removesuffix(".h5")
    if named in SPLITS and attrs.get("split") in SPLITS and attrs["split"] != named:
        # a train file copied to test.h5 would be read, trained on or scored as the test split
        problems.append(
            f"{path}: root attribute 'split' is {shown(attrs['split'])}, but the file is named {path.name}; "
            f"expected '{named}' (a split file is named after its split: was it copied or renamed?)"
        )
    if "spatial_dims" in attrs and "spatial_coordinates" in attrs and attrs["spatial_dims"] != len(coords):
        problems.append(
            f"{path}: root attribute 'spatial_dims' is {shown(attrs['spatial_dims'])}; expected {len(coords)} "
            f"(the number of names in 'spatial_coordinates')"
        )
    if "grid" in attrs and name_problem(attrs["grid"]) is None:  # a grid that is no name is reported above
        try:
            grid_kind = canonical_grid_kind(str(attrs["grid"]))
        except ValueError as exc:
            problems.append(f"{path}: root attribute 'grid': {exc}")
        else:
            if grid_kind == "sphere" and tuple(coords) != SPHERE_AXES:
                problems.append(f"{path}: a sphere grid has spatial_coordinates 'lat,lon', got {','.join(coords)!r}")
    if QUADRATURE_ATTR in attrs and attrs[QUADRATURE_ATTR] not in QUADRATURE_RULES \
            and name_problem(attrs[QUADRATURE_ATTR]) is None:  # a rule that is no name is reported above
        problems.append(f"{path}: root attribute '{QUADRATURE_ATTR}' is {shown(attrs[QUADRATURE_ATTR])}; expected one "
                        f"of {', '.join(QUADRATURE_RULES)}")
    problem = conditioning_problem(path, attrs)
    if problem is not None:
        problems.append(problem)
    if "frame_interval" in attrs:
        fi = attrs["frame_interval"]
        if not isinstance(fi, int | float) or not math.isfinite(fi) or fi <= 0:
            problems.append(f"{path}: root attribute 'frame_interval' is {shown(fi)}; expected a positive number")

    def variable(name: str, role: str) -> h5py.Dataset | None:
        # A name that is no name (an HDF5 path) or a member refused by the link walk is reported already; `in` and
        # `f[name]` would follow its links. For the rest, `name in f` asks only whether the (hard) link exists;
        # opening it reads (and checksums) the object header, so a damaged header is reported as damage, not as a
        # missing variable (h5py's `f.get` would return None).
        if name_problem(name) is not None or name in foreign:
            return None
        try:
            if name not in f:
                problems.append(f"{path}: missing variable '{name}' ({role})")
                return None
            obj = f[name]
        except HDF5_ERRORS as exc:
            problems.append(
                f"{path}: {role} '{name}' cannot be opened ({hdf5_reason(exc)}); the file is damaged: regenerate "
                f"the dataset or restore the file from a copy"
            )
            return None
        if not isinstance(obj, h5py.Dataset):
            problems.append(f"{path}: '{name}' ({role}) is a group; expected a variable")
            return None
        return obj

    # Dimension coordinates: their lengths define n_traj, n_frames and the spatial shape.
    sizes: dict[str, int | None] = {}
    for name, role in ((TRAJ_DIM, "trajectory coordinate"), (TIME_DIM, "frame coordinate")):
        var = variable(name, role)
        sizes[name] = None
        if var is not None:
            if var.ndim != 1:
                problems.append(f"{path}: coordinate '{name}' has shape {var.shape}; expected 1-D")
            else:
                sizes[name] = var.shape[0]
                if not np.array_equal(var[...], np.arange(var.shape[0])):
                    problems.append(f"{path}: coordinate '{name}' must hold 0..{var.shape[0] - 1}")
            if name == TIME_DIM and attr_to_python(var.attrs.get("units")) != "frames":
                problems.append(f"{path}: coordinate 'time' must have units 'frames'")
    positions: dict[str, np.ndarray] = {}
    for name in coords:
        var = variable(name, "spatial coordinate")
        sizes[name] = None
        if var is not None:
            if var.ndim != 1:
                problems.append(f"{path}: coordinate '{name}' has shape {var.shape}; expected 1-D")
            else:
                sizes[name] = var.shape[0]
                with contextlib.suppress(*HDF5_ERRORS):  # damage shows where the reader reads it
                    positions[name] = np.asarray(var[...], dtype=np.float64)
            if "units" not in var.attrs:
                problems.append(f"{path}: coordinate '{name}' has no 'units' attribute")
    problems.extend(_quadrature_problems(path, attrs, coords, positions))

    n_traj = sizes.get(TRAJ_DIM)
    if n_traj is not None and "n_traj_complete" in attrs and attrs["n_traj_complete"] != n_traj:
        problems.append(
            f"{path}: root attribute 'n_traj_complete' is {shown(attrs['n_traj_complete'])}; expected {n_traj} "
            f"(the file was not written to completion)"
        )

    expected_dims = [TRAJ_DIM, TIME_DIM, *coords]
    needs_fletcher32 = version_tuple(attrs["schema_version"]) >= version_tuple(FLETCHER32_SINCE)
    for name in fields:
        var = variable(name, "field")
        if var is None:
            continue
        if var.dtype != np.float32:
            problems.append(f"{path}: field '{name}' has dtype {var.dtype}; expected float32")
        if var.ndim != len(expected_dims):
            problems.append(
                f"{path}: field '{name}' has {var.ndim} dimensions; expected {len(expected_dims)} "
                f"({', '.join(expected_dims)})"
            )
            continue
        dims = _dim_names(var)
        if dims != expected_dims:
            found = ", ".join(d or "?" for d in dims)
            problems.append(
                f"{path}: field '{name}' has dims ({found}); expected ({', '.join(expected_dims)})"
            )
        for axis, (dim, length) in enumerate(zip(expected_dims, var.shape, strict=True)):
            want = sizes.get(dim)
            if want is not None and length != want:
                problems.append(
                    f"{path}: field '{name}' has length {length} along axis {axis} ({dim}); expected {want} "
                    f"(the length of coordinate '{dim}')"
                )
        for key in ("units", "boundary_conditions"):
            if key not in var.attrs:
                problems.append(f"{path}: field '{name}' has no '{key}' attribute")
        # A virtual field maps a foreign file the manifest pins by sha256 (the link walk refuses undeclared ones).
        if needs_fletcher32 and not var.fletcher32 and not var.is_virtual:
            problems.append(
                f"{path}: field '{name}' has no Fletcher-32 checksum filter; expected one "
                f"(schema_version {FLETCHER32_SINCE} and later write every field with it)"
            )
        if var.dtype.kind == "f":
            bad, unreadable, error = _scan_field(var)
            if unreadable:
                problems.append(
                    f"{path}: field '{name}' cannot be read in {len(unreadable)} trajectories (indices "
                    f"{_describe(unreadable)}): {error}; the file is corrupted (a chunk failed its checksum "
                    f"or the file is damaged): regenerate the dataset or restore the file from a copy"
                )
            if bad:
                problems.append(
                    f"{path}: field '{name}' has non-finite values (NaN or inf) in {len(bad)} "
                    f"trajectories (indices {_describe(bad)}); expected finite values"
                )

    for name, role in [(p, "parameter") for p in params] + [(SEED_VAR, "seed")]:
        var = variable(name, role)
        if var is None:
            continue
        want_dtype = np.int64 if name == SEED_VAR else np.float64
        if var.dtype != want_dtype:
            problems.append(f"{path}: {role} '{name}' has dtype {var.dtype}; expected {np.dtype(want_dtype)}")
        if var.ndim != 1 or (n_traj is not None and var.shape[0] != n_traj):
            problems.append(f"{path}: {role} '{name}' has shape {var.shape}; expected ({n_traj},) along traj")
            continue
        if role == "parameter" and var.dtype.kind == "f":
            try:
                values = var[...]
            except HDF5_ERRORS as exc:
                problems.append(f"{path}: parameter '{name}' cannot be read ({hdf5_reason(exc)}); the file is damaged")
                continue
            bad = [int(i) for i in np.flatnonzero(~np.isfinite(values))]
            if bad:
                problems.append(
                    f"{path}: parameter '{name}' is non-finite for trajectories {_describe(bad)}; "
                    f"expected finite values"
                )
    return problems


def _quadrature_problems(path: Path, attrs: dict[str, Any], coords: tuple[str, ...],
                         positions: dict[str, np.ndarray]) -> list[str]:
    """The sentence when the recorded quadrature rule is not the rule of the grid's kind and coordinates (an absent,
    unknown or malformed rule, grid or coordinate is reported elsewhere)."""
    rule = attrs.get(QUADRATURE_ATTR)
    if rule not in QUADRATURE_RULES or len(positions) != len(coords) or not coords:
        return []
    try:
        kind = canonical_grid_kind(str(attrs.get("grid")))
    except ValueError:
        return []
    if kind == "sphere" and (tuple(coords) != SPHERE_AXES or not np.isfinite(positions["lat"]).all()
                             or np.abs(positions["lat"]).max() > 90.0):
        return []
    expected = quadrature_rule(kind, tuple(positions[name] for name in coords))
    if rule == expected:
        return []
    return [f"{path}: root attribute '{QUADRATURE_ATTR}' is {rule!r}; expected {expected!r}, the rule of this {kind} "
            f"grid's coordinates"]


def validate_file(path: str | Path) -> None:
    """Raise DatasetError listing every problem of a split file; return silently if it is valid."""
    problems = check_file(path)
    if problems:
        raise DatasetError(f"{len(problems)} problem(s) in {path}: " + "; ".join(problems))
