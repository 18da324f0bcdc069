"""`pdebench-import LAYOUT PATH`: register a foreign dataset directory (The Well, PDEArena/LPSDA KS) as a pdebench
dataset, read in place: split files whose fields map the foreign arrays, and a manifest pinning the foreign files by
sha256 (docs/interop.md). Example: `pdebench-import pdearena_ks /data/pderefiner_ks --preset paper` makes
`data/ks-paper`, which `pdebench-train data=ks data.preset=paper` and `pdebench-evaluate` then use.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pdebench.errors import UserError


def main(argv: Sequence[str] | None = None) -> None:
    from pdebench.interop.importer import DEFAULT_PRESET, LAYOUTS

    parser = argparse.ArgumentParser(prog="pdebench-import", description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("layout", choices=sorted(LAYOUTS), help="the foreign layout")
    parser.add_argument("path", help="the foreign dataset directory (The Well: the one holding data/<split>/)")
    parser.add_argument("--root", default="data", help="data root the dataset directory is made in (default: data)")
    parser.add_argument("--pde", help="the dataset's pde name (default: ks for pdearena_ks, the Well's dataset_name)")
    parser.add_argument("--preset", help="the dataset's preset name (default: " +
                        ", ".join(f"{preset} for {layout}" for layout, preset in DEFAULT_PRESET.items()) + ")")
    args = parser.parse_args(argv)
    from pdebench.interop.importer import import_dataset

    try:
        imported = import_dataset(args.layout, args.path, args.root, args.pde, args.preset)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    splits = ", ".join(f"{split} {n}" for split, n in imported.n_traj.items())
    print(f"imported {args.path} as {imported.directory} (trajectories: {splits})")
    for note in imported.notes:
        print(f"- not mapped: {note}")
