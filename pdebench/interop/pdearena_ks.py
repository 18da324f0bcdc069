"""The Kuramoto–Sivashinsky files of LPSDA's generator, as PDEArena and PDE-Refiner read them.

LPSDA (`generate/generate_data.py`, `generate_trajectories`) writes one file per split, `KS_<mode>[_<n>].h5`, with one
group named by the split (`train`, `valid`, `test`) holding float64 arrays and no attributes:

- `pde_<nt>-<nx>` `[n, nt, nx]`: the solution u of `u_t + (u^2/2 + u_x + u_xxx)_x = 0` (unit coefficients), the last
  `nt` frames of each trajectory;
- `x` `[n, nx]`: `linspace(0, (1 - 1/nx) L, nx)`, the periodic grid of the trajectory's domain length L;
- `dx` `[n]`: `L / nx`;
- `t` `[n, nt]`: the times of the stored frames;
- `dt` `[n]`: the time between frames, `T / (nt_total - 1)`.

PDEArena's loader (`pdearena/data/oned/datapipes/kuramotosivashinsky1d.py`) reads the group of its mode, the first
key starting with `pde_`, `dt`, `dx` and, where present, a per-trajectory viscosity `v`.

Mapped to our KS (`data_gen/ks.py`, `u_t + u u_x + u_xx + nu u_xxxx = 0`, the same equation): field `u`; parameters
`L = dx * nx`, `nu` (`v` where the file has it, else 1, LPSDA's coefficient), `dt`, `dx`; a periodic grid `x` in
fractions of L (`i / nx`, as our KS files store it). The files' `x` and `t` are checked against `dx` and `dt` and
not stored (they follow from them).
"""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np

from pdebench.data.schema import SPLITS, Coordinate, DatasetError, DatasetLayout, FieldSpec, ParameterSpec
from pdebench.interop.foreign import array, hdf5_files, member, open_foreign, values
from pdebench.interop.index import FieldMap, ImportedSplit, Piece

LAYOUT = "LPSDA/PDEArena KS"
FIELD_KEY = re.compile(r"pde_(\d+)-(\d+)\Z")
# Relative disagreement allowed between `x` and `i * dx`, and between the steps of `t` and `dt`: the files hold
# float64 linspace values (rounding ~1e-15); a grid that is not the one `dx` or `dt` describes is off by far more.
GRID_TOLERANCE = 1e-6

PARAMETERS = (
    ParameterSpec("L", "length units", "domain length (period): dx * nx"),
    ParameterSpec("nu", "length^4/time units", "coefficient of u_xxxx: the file's v, else 1 (LPSDA's equation)"),
    ParameterSpec("dt", "time units", "time between stored frames (the file's dt)"),
    ParameterSpec("dx", "length units", "grid spacing L/N (the file's dx)"),
)


class _Part:
    """One split group of one foreign file, checked: its field array and per-trajectory parameters."""

    def __init__(self, path: Path, group: h5py.Group) -> None:
        keys = [k for k in group if FIELD_KEY.match(k)]
        if len(keys) != 1:
            raise DatasetError(f"{path}: group '{group.name}' holds {len(keys)} arrays named pde_<nt>-<nx> "
                               f"({', '.join(keys) or 'none'}); the {LAYOUT} layout has exactly one")
        self.key = keys[0]
        u = array(path, group, self.key, LAYOUT, ndim=3)
        n, nt, nx = (int(s) for s in u.shape)
        if (nt, nx) != tuple(int(g) for g in FIELD_KEY.match(self.key).groups()):
            raise DatasetError(f"{path}: '{u.name}' has shape {u.shape}; its name says {nt} frames of {nx} points")
        if min(n, nt, nx) < 1:
            raise DatasetError(f"{path}: '{u.name}' has shape {u.shape}; expected at least one trajectory and frame")
        self.path, self.dataset, self.shape = path, u.name.lstrip("/"), (n, nt, nx)
        dt = values(path, array(path, group, "dt", LAYOUT, ndim=1))
        dx = values(path, array(path, group, "dx", LAYOUT, ndim=1))
        x = values(path, array(path, group, "x", LAYOUT, ndim=2))
        t = values(path, array(path, group, "t", LAYOUT, ndim=2))
        has_v = group.id.links.exists(b"v")  # the link table: `in` would follow an external link
        nu = values(path, array(path, group, "v", LAYOUT, ndim=1)) if has_v else np.ones(n)
        for name, arr, shape in (("dt", dt, (n,)), ("dx", dx, (n,)), ("x", x, (n, nx)), ("t", t, (n, nt)),
                                 ("v", nu, (n,))):
            if arr.shape != shape:
                raise DatasetError(f"{path}: '{group.name}/{name}' has shape {arr.shape}; expected {shape} "
                                   f"(from '{u.name}')")
        for name, arr in (("dt", dt), ("dx", dx)):
            if (arr <= 0).any():
                raise DatasetError(f"{path}: '{group.name}/{name}' is {arr[arr <= 0][0]} for trajectory "
                                   f"{int(np.argmax(arr <= 0))}; expected a positive number")
        self._check_grids(group, x, t, dx, dt)
        self.parameters = {"L": dx * nx, "nu": nu, "dt": dt, "dx": dx}

    def _check_grids(self, group: h5py.Group, x: np.ndarray, t: np.ndarray, dx: np.ndarray, dt: np.ndarray) -> None:
        """Refuse `x` that is not `i * dx` and `t` whose steps are not `dt` (a file that is not LPSDA's)."""
        nx = x.shape[1]
        off = np.abs(x - np.arange(nx)[None, :] * dx[:, None]).max(axis=1) / (dx * nx)
        if (off > GRID_TOLERANCE).any():
            i = int(np.argmax(off))
            raise DatasetError(f"{self.path}: '{group.name}/x' of trajectory {i} is not i * dx (dx = {dx[i]:.6g}, "
                               f"off by {off[i]:.2g} of L); expected LPSDA's grid linspace(0, (1 - 1/nx) L, nx)")
        if t.shape[1] > 1:
            steps = np.abs(np.diff(t, axis=1) - dt[:, None]).max(axis=1) / dt
            if (steps > GRID_TOLERANCE).any():
                i = int(np.argmax(steps))
                raise DatasetError(f"{self.path}: the time grid '{group.name}/t' of trajectory {i} does not step by "
                                   f"its dt = {dt[i]:.6g} (off by {steps[i]:.2g} of dt); inconsistent time grids")


def _parts(files: list[Path]) -> dict[str, list[_Part]]:
    """The split groups of every file, by split; a file with none is not of this layout."""
    parts: dict[str, list[_Part]] = {}
    for path in files:
        with open_foreign(path) as f:
            splits = [s for s in SPLITS if f.id.links.exists(s.encode())]
            if not splits:
                raise DatasetError(f"{path} is not a {LAYOUT} file: it has no group {', '.join(map(repr, SPLITS))} "
                                   f"(top level holds {', '.join(sorted(f)) or 'nothing'})")
            for split in splits:
                group = member(path, f, split, LAYOUT)
                if not isinstance(group, h5py.Group):
                    raise DatasetError(f"{path}: '{split}' is an array; the {LAYOUT} layout has a group per split")
                parts.setdefault(split, []).append(_Part(path, group))
    return parts


def _split(pde: str, preset: str, split: str, parts: list[_Part]) -> ImportedSplit:
    """Our split `split` of the files' groups `parts` (concatenated in file name order)."""
    nt, nx = parts[0].shape[1:]
    for part in parts[1:]:
        if part.shape[1:] != (nt, nx):
            raise DatasetError(f"{part.path}: split '{split}' has {part.shape[1]} frames of {part.shape[2]} points, "
                               f"{parts[0].path} has {nt} of {nx}; inconsistent time grids")
    params = {p.name: np.concatenate([part.parameters[p.name] for part in parts]) for p in PARAMETERS}
    n_traj = sum(part.shape[0] for part in parts)
    field = FieldSpec("u", units="1", boundary="periodic",
                      description="solution of u_t + u u_x + u_xx + nu u_xxxx = 0 on [0, L) (LPSDA's KS)")
    layout = DatasetLayout(
        pde=pde, preset=preset, split=split, n_traj=n_traj, n_frames=nt, frame_interval=float(params["dt"].mean()),
        grid="periodic",
        coordinates=(Coordinate("x", np.arange(nx, dtype=np.float64) / nx, "1 (fraction of L)",
                                "grid point i at x = i/N of the domain; multiply by the trajectory's L"),),
        fields=(field,), parameters=PARAMETERS, attrs={"imported_from": "pdearena_ks"},
    )
    pieces = tuple(Piece(part.path, part.dataset, part.shape) for part in parts)
    sources = tuple(dict.fromkeys(str(part.path) for part in parts))
    return ImportedSplit(layout, (FieldMap("u", pieces),), params, sources)


def read_pdearena_ks(directory: Path, pde: str | None, preset: str) -> dict[str, ImportedSplit]:
    """Every split of the LPSDA/PDEArena KS files directly in `directory` (absolute paths are recorded), mapped to
    our KS as dataset `<pde>-<preset>` (pde None: `ks`); one sentence for a file of another layout, a missing array or
    inconsistent grids."""
    files = hdf5_files(directory.resolve(), f"{LAYOUT} directory")
    return {split: _split(pde or "ks", preset, split, parts) for split, parts in _parts(files).items()}
