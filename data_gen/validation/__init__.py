"""What a generated dataset contains, measured: the figures each dataset card quotes (`docs/pde_*.md`).

A solver can reproduce its own frames to rounding error and still write data that are not what the card says (jets
damped before the first frame, a flow that has stopped moving). A validator reads a dataset's split files (the whole
dataset or one shard of it, `pdebench-generate ... shard=0 n_shards=N`) and returns tables of measured figures;
`scripts/validate_datasets.py --pde NAME` prints them. One module per generator in this package registers its
validator with `@register_validator("<generator>")`, so adding a PDE touches its own file only.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from data_gen.base import TrajectoryGenerator
from data_gen.registry import make_generator
from pdebench.data.reader import TrajectoryFile
from pdebench.data.schema import DatasetError
from pdebench.registry import Registry

__all__ = ["VALIDATORS", "ValidationInput", "ValidationTable", "register_validator", "validate"]

Cell = str | int | float | None


@dataclass(frozen=True)
class ValidationTable:
    """One printed table: `rows` of cells (numbers are printed to 4 significant digits), one per trajectory or per
    measured quantity; `note` says what the figures mean and the criterion they are held to (one or two sentences)."""

    title: str
    columns: tuple[str, ...]
    rows: list[tuple[Cell, ...]]
    note: str = ""

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(f"table {self.title!r}: a row has {len(row)} cells for {len(self.columns)} columns")


@dataclass
class ValidationInput:
    """The dataset a validator measures.

    files: split -> path of the HDF5 file to read (a full split file or a shard's); config: the generation record
    (`generation_config`: pde, generator, preset, seed, solver, benchmark, splits) of those files.
    """

    dataset_dir: Path
    files: dict[str, Path]
    config: dict[str, Any]
    _generator: TrajectoryGenerator | None = field(default=None, repr=False)

    @property
    def generator(self) -> TrajectoryGenerator:
        """The generator the files were written with, rebuilt from their recorded solver settings."""
        if self._generator is None:
            self._generator = make_generator(self.config["generator"], self.config["solver"])
        return self._generator

    def open(self, split: str) -> TrajectoryFile:
        return TrajectoryFile(self.files[split])


Validator = Callable[[ValidationInput], list[ValidationTable]]
VALIDATORS: Registry[Validator] = Registry("validator")


def register_validator(generator: str) -> Callable[[Validator], Validator]:
    """Function decorator adding the validator of the datasets `generator` writes to `VALIDATORS`."""

    def wrap(fn: Validator) -> Validator:
        VALIDATORS.add(generator, fn)
        return fn

    return wrap


def read_generation_config(path: Path) -> dict[str, Any]:
    """The `generation_config` record of split file `path` (YAML in a root attribute)."""
    with TrajectoryFile(path) as tf:
        text = tf.attrs.get("generation_config")
    try:
        config = yaml.safe_load(text) if isinstance(text, str) else None
    except yaml.YAMLError:
        config = None
    if not (isinstance(config, dict) and isinstance(config.get("generator"), str)
            and isinstance(config.get("solver"), dict)):
        raise DatasetError(f"{path}: root attribute 'generation_config' is missing or is not the YAML record of a "
                           "generation (a mapping with 'generator' and 'solver'); was the file written by "
                           "pdebench-generate?")
    return config


def validate(dataset_dir: Path, files: Mapping[str, Path]) -> list[ValidationTable]:
    """Run the validator of the generator that wrote `files` (split -> path, at least one)."""
    if not files:
        raise ValueError(f"no split file to validate in {dataset_dir}")
    config = read_generation_config(next(iter(files.values())))
    inputs = ValidationInput(Path(dataset_dir), dict(files), config)
    return VALIDATORS[config["generator"]](inputs)


def format_cell(value: Cell) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_tables(tables: Sequence[ValidationTable]) -> str:
    """Plain-text tables, columns aligned, each under its title and above its note."""
    blocks = []
    for table in tables:
        cells = [list(table.columns)] + [[format_cell(v) for v in row] for row in table.rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(table.columns))]
        lines = [table.title, "-" * len(table.title)]
        lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
        if table.note:
            lines.append(table.note)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
