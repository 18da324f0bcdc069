"""Import of a ~1 GB foreign file vs a copy of it, measured in one run.

Writes an LPSDA/PDEArena KS file of about `--size-gb` GB (float64 `pde_<nt>-<nx>`, as LPSDA's generator writes it) in
a temporary directory (or takes `--file`, a directory of such files), then times, in the same run:

- `copy`: `shutil.copyfile` of the foreign file(s), what an import that converted or copied the data would cost at
  the very least;
- `sha256`: one sha256 pass over the foreign bytes, which pinning them in the manifest needs;
- `import`: `pdebench-import pdearena_ks` (`import_dataset`): the split files (header, parameters, virtual fields)
  and the manifest, whose content hash reads every value once more.

It prints the seconds of each, the ratios import/copy and import/sha256, and the bytes the imported dataset
directory takes next to the foreign bytes. Everything it wrote is deleted at the end.
Usage: `python scripts/bench_import.py [--size-gb 1.0] [--dir DIR | --file DIR]`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from pdebench.data.manifest import file_sha256
from pdebench.interop.importer import import_dataset

NT, NX = 140, 256  # PDE-Refiner's KS training frames and points


def write_foreign(folder: Path, size_gb: float) -> Path:
    """An LPSDA KS test file of about `size_gb` GB in `folder` (written in blocks; values are smooth random waves)."""
    n = max(1, round(size_gb * 1e9 / (NT * NX * 8)))
    rng = np.random.default_rng(0)
    x = np.arange(NX) / NX
    with h5py.File(folder / "KS_test.h5", "w") as f:
        group = f.create_group("test")
        field = group.create_dataset(f"pde_{NT}-{NX}", (n, NT, NX), dtype=float)
        dx = 64.0 * rng.uniform(0.9, 1.1, n) / NX
        dt = rng.uniform(0.18, 0.22, n)
        group.create_dataset("x", data=np.arange(NX)[None, :] * dx[:, None])
        group.create_dataset("dx", data=dx)
        group.create_dataset("t", data=np.arange(NT)[None, :] * dt[:, None])
        group.create_dataset("dt", data=dt)
        block = 64
        for start in range(0, n, block):
            b = min(block, n - start)
            phase = rng.uniform(0, 2 * np.pi, (b, 1, 1))
            field[start:start + b] = np.sin(2 * np.pi * 3 * x[None, None, :] + phase
                                            + 0.01 * np.arange(NT)[None, :, None])
    return folder


def _timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=1.0, help="size of the foreign file written (default 1.0)")
    parser.add_argument("--dir", help="where to write the temporary files (default: the system's temporary folder)")
    parser.add_argument("--file", help="a directory of LPSDA KS files to import instead of writing one")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-import-", dir=args.dir))
    try:
        if args.file:
            foreign = Path(args.file)
        else:
            foreign = work / "foreign"
            foreign.mkdir()
            seconds = _timed(lambda: write_foreign(foreign, args.size_gb))
            print(f"wrote the foreign file in {seconds:.1f} s")
        files = sorted(p for p in foreign.iterdir() if p.suffix in (".h5", ".hdf5"))
        foreign_bytes = sum(p.stat().st_size for p in files)
        for path in files:  # warm the page cache for every contender alike
            file_sha256(path)
        copies = work / "copy"
        copies.mkdir()
        t_copy = _timed(lambda: [shutil.copyfile(p, copies / p.name) for p in files])
        shutil.rmtree(copies)
        t_hash = _timed(lambda: [file_sha256(p) for p in files])
        imported = {}
        t_import = _timed(lambda: imported.setdefault("x", import_dataset("pdearena_ks", foreign, work / "data",
                                                                          preset="bench")))
        dataset = imported["x"].directory
        dataset_bytes = sum(p.stat().st_size for p in dataset.iterdir())
        print(f"foreign data: {foreign_bytes / 1e9:.2f} GB in {len(files)} file(s)")
        print(f"copy:   {t_copy:6.2f} s")
        print(f"sha256: {t_hash:6.2f} s")
        print(f"import: {t_import:6.2f} s  (import/copy = {t_import / t_copy:.2f}, import/sha256 = "
              f"{t_import / t_hash:.2f})")
        print(f"imported dataset directory: {dataset_bytes / 1e3:.1f} kB ({dataset_bytes / foreign_bytes:.2e} of the "
              f"foreign bytes; a copy takes 1.0)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
