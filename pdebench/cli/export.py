"""`pdebench-export the_well DATASET OUT`: write a pdebench dataset directory in The Well's layout, one HDF5 file
per split under `OUT/data/<split>/`, streaming, so that `the_well.data.WellDataset(path=OUT, well_split_name=...)`
loads it (docs/interop.md). Example: `pdebench-export the_well data/ks-small exported/ks-small`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pdebench.errors import UserError

# The layouts `pdebench-export` writes.
LAYOUTS = ("the_well",)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="pdebench-export", description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("layout", choices=LAYOUTS, help="the foreign layout to write")
    parser.add_argument("dataset", help="the dataset directory, e.g. data/ks-small")
    parser.add_argument("out", help="the directory to write (its data/<split>/ files are replaced)")
    parser.add_argument("--no-progress", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    from pdebench.interop.well_export import export_the_well

    try:
        written = export_the_well(args.dataset, args.out, progress=not args.no_progress)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    for path in written:
        print(f"wrote {path}")
