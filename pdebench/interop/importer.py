"""`pdebench-import LAYOUT PATH`: register a foreign dataset directory as a pdebench dataset, reading it in place.

The dataset directory `<root>/<pde>-<preset>/` gets one imported split file per split the foreign files hold (our
format, fields mapped into the foreign files, `pdebench.interop.index`) and a manifest that pins the split files and
the foreign files by size and sha256. Training, evaluation and the leaderboard then use it as any generated dataset:
`verify_dataset` checks the foreign files as it checks split files, and a changed foreign file stops them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pdebench.config import BenchmarkConfig, ConfigError, load_config, plain_config
from pdebench.config.location import CONFIG_DIR
from pdebench.data.manifest import write_manifest
from pdebench.data.names import check_name, missing_or_kind
from pdebench.data.schema import SPLITS, DatasetError, dataset_name
from pdebench.errors import InvalidSetting, UnknownName
from pdebench.interop.index import ImportedSplit, write_index
from pdebench.interop.pdearena_ks import read_pdearena_ks
from pdebench.interop.the_well import read_the_well

# An adapter reads a foreign directory as our splits, given the pde name (None: the layout's own) and the preset.
Adapter = Callable[[Path, str | None, str], dict[str, ImportedSplit]]
# The foreign layouts `pdebench-import` reads. The pde name defaults to `ks` for PDEArena's KS and to the Well
# dataset's own `dataset_name` for The Well.
LAYOUTS: dict[str, Adapter] = {"the_well": read_the_well, "pdearena_ks": read_pdearena_ks}
DEFAULT_PRESET = {"the_well": "well", "pdearena_ks": "pdearena"}


def benchmark_facts_for(pde: str) -> dict[str, Any]:
    """The benchmark facts of `conf/pde/<pde>.yaml` (following its `defaults` to the PDE it extends), completed by
    `BenchmarkConfig`'s defaults; the defaults alone for a PDE this suite has no config of (most of The Well's)."""
    facts: dict[str, Any] = {}
    name = pde
    for _ in range(8):
        path = Path(CONFIG_DIR) / "pde" / f"{name}.yaml"
        if not path.is_file():
            break
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if isinstance(doc.get("benchmark"), dict):
            facts = {**doc["benchmark"], **facts}
        parents = [d for d in doc.get("defaults", []) if isinstance(d, str) and d != "_self_"]
        if not parents:
            break
        name = parents[0]
    try:
        return plain_config(load_config(facts, BenchmarkConfig))
    except ConfigError as error:
        raise DatasetError(f"conf/pde/{pde}.yaml: benchmark facts refused: {error}") from None


@dataclass(frozen=True)
class Imported:
    """What `import_dataset` made: the dataset directory, the trajectories of each split, and what of the foreign
    files could not be mapped (one sentence each)."""

    directory: Path
    n_traj: dict[str, int]
    notes: tuple[str, ...]


def import_dataset(layout: str, path: str | Path, root: str | Path, pde: str | None = None,
                   preset: str | None = None) -> Imported:
    """Import the foreign dataset directory `path` of `layout` (`LAYOUTS`) as `<root>/<pde>-<preset>`.

    Refuses an unknown layout, names that are no names, an existing dataset directory and any foreign file the
    adapter refuses, each in one sentence, before anything is written."""
    if layout not in LAYOUTS:
        raise UnknownName(f"unknown foreign layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    preset = check_name(preset if preset is not None else DEFAULT_PRESET[layout], "preset")
    if pde is not None:
        pde = check_name(pde, "pde")
    splits = LAYOUTS[layout](Path(path), pde, preset)
    pde = next(iter(splits.values())).layout.pde
    dataset_dir = Path(root) / dataset_name(pde, preset)
    if dataset_dir.exists() or dataset_dir.is_symlink():
        if not dataset_dir.is_dir():
            raise DatasetError(missing_or_kind(dataset_dir, "dataset directory", directory=True))
        if any(dataset_dir.iterdir()):
            raise InvalidSetting(f"dataset directory {dataset_dir} exists and is not empty; remove it or import "
                                 f"under another name (--preset)")
    dataset_dir.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        if split in splits:
            s = splits[split]
            write_index(dataset_dir / f"{split}.h5", s.layout, s.fields, s.parameters, s.sources)
    config = {"pde": pde, "preset": preset, "benchmark": benchmark_facts_for(pde),
              "imported": {"layout": layout, "path": str(Path(path).resolve())}}
    write_manifest(dataset_dir, config)  # last: without it the directory is no dataset yet
    notes = tuple(dict.fromkeys(note for s in splits.values() for note in s.notes))
    return Imported(dataset_dir, {split: splits[split].layout.n_traj for split in SPLITS if split in splits}, notes)
