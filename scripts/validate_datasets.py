"""Measure what a generated dataset contains: the validation figures of its card (`docs/pde_<name>.md`).

Reads the split files of `<root>/<pde>-<preset>` (or of one shard of it) and prints the tables the PDE's validator
(`data_gen.validation`) measures. A shard is enough: generate one with
`pdebench-generate pde=<pde> preset=<preset> shard=0 n_shards=<N>`, or pass `--generate` to have this script do it.

    python scripts/validate_datasets.py --pde swe --preset small --shard 0 --n-shards 10 --generate
    python scripts/validate_datasets.py --pde ks --preset tiny --root data --json ks-tiny-figures.json
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from data_gen.config import generate_config
from data_gen.generate import generate_dataset
from data_gen.shards import shard_dir
from data_gen.validation import format_tables, validate
from pdebench.cli.hydra_setup import composed
from pdebench.data.schema import SPLITS, dataset_name
from pdebench.errors import UserError


def split_files(directory: Path, splits: list[str]) -> dict[str, Path]:
    """The split files of `splits` present in `directory` (a dataset or a shard directory)."""
    return {s: directory / f"{s}.h5" for s in splits if (directory / f"{s}.h5").is_file()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pde", required=True, help="a conf/pde entry: ks, ks_visc, swe, smoke, kolmogorov, ...")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--root", default="data", help="data root holding <pde>-<preset> (default: data)")
    parser.add_argument("--shard", type=int, default=None, help="read shard SHARD of N-SHARDS, not the whole set")
    parser.add_argument("--n-shards", type=int, default=None)
    parser.add_argument("--splits", nargs="+", default=list(SPLITS), choices=SPLITS)
    parser.add_argument("--generate", action="store_true", help="generate the dataset (or shard) if it is missing")
    parser.add_argument("--json", type=Path, default=None, help="also write the tables to this JSON file")
    args = parser.parse_args(argv)
    if (args.shard is None) != (args.n_shards is None):
        parser.error("--shard and --n-shards go together")
    try:
        cfg = generate_config(composed("generate", [f"pde={args.pde}", f"preset={args.preset}", f"root={args.root}"]))
        dataset_dir = Path(args.root) / dataset_name(cfg.pde.name, args.preset)
        directory = dataset_dir if args.shard is None else shard_dir(dataset_dir, args.shard, args.n_shards)
        files = split_files(directory, args.splits)
        if len(files) < len(args.splits) and args.generate:
            generate_dataset(cfg.pde, args.preset, args.root, seed=cfg.seed, batch_size=cfg.batch_size,
                             device=cfg.device, shard=args.shard, n_shards=args.n_shards)
            files = split_files(directory, args.splits)
        if not files:
            shard = "" if args.shard is None else f" shard={args.shard} n_shards={args.n_shards}"
            print(f"error: no split file in {directory}; generate it with `pdebench-generate pde={args.pde} "
                  f"preset={args.preset} root={args.root}{shard}` or pass --generate", file=sys.stderr)
            return 2
        tables = validate(dataset_dir, files)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    where = directory if args.shard is None else f"{directory} (shard {args.shard} of {args.n_shards})"
    print(f"{dataset_name(cfg.pde.name, args.preset)}: {', '.join(files)} from {where}\n")
    print(format_tables(tables))
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(t) for t in tables], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
