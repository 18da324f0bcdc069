"""`pdebench-models`: the model zoo as a table: each registered model, the grids it serves, and its parameter count
at its reference configuration (`conf/model/<name>.yaml`) on each dataset of `conf/data/`.

A dataset's fields, parameters and grid are read from its generator (`conf/pde/<pde>.yaml` through the generator
registry) without generating any data; the net is built as training would build it (`objective` history and
bundle, the dataset's conditioning). Example: `pdebench-models`, `pdebench-models --model sinenet --dataset smoke`.

`pdebench-models --reference` prints instead, per model that reproduces a paper's layout, each published setting
(`ModelConfig.published_sizes`), our parameter count there, the count of the reference code and its source.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from baselines.registry import MODELS, PublishedSize, build_model
from data_gen.registry import make_generator
from pdebench.cli.common import CONFIG_DIR, HYDRA_VERSION_BASE
from pdebench.cli.hydra_setup import register_configs
from pdebench.data.grid import Grid
from pdebench.data.netspec import NetSpec
from pdebench.errors import InvalidSetting, UserError

# The grids a model is tried on to say which kinds it serves (tiny config, small grids).
PROBE_GRIDS = {
    "1-D periodic": Grid.uniform("periodic", (32,)),
    "2-D periodic": Grid.uniform("periodic", (32, 32)),
    "2-D box": Grid.uniform("box", (32, 32)),
    "sphere": Grid.uniform("sphere", (16, 32)),
}


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset fixes about a net, read from its configs (no data is generated or read)."""

    name: str
    pde: str
    preset: str
    fields: tuple[str, ...]
    parameters: tuple[str, ...]
    grid: Grid


def _compose(app: str, overrides: list[str]) -> dict:
    register_configs()
    with initialize_config_dir(CONFIG_DIR, version_base=HYDRA_VERSION_BASE):
        cfg = compose(app, overrides=overrides)
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def dataset_names() -> list[str]:
    """Every dataset with a `conf/data/<name>.yaml`."""
    return sorted(path.stem for path in (Path(CONFIG_DIR) / "data").glob("*.yaml"))


def dataset_info(name: str, preset: str | None = None) -> DatasetInfo:
    """Fields, parameters and grid of `data=<name>` at its preset (or `preset`), from the generator's settings."""
    data = _compose("train", [f"data={name}"])["data"]
    preset = preset or data["preset"]
    pde = _compose("generate", [f"pde={data['pde']}"])["pde"]
    if preset not in pde["presets"]:
        raise InvalidSetting(f"dataset {name} (pde={data['pde']}) has no preset {preset!r}; available presets: "
                         f"{', '.join(pde['presets'])}")
    solver = {**pde["solver"], **(pde["presets"][preset].get("solver") or {})}
    generator = make_generator(pde["generator"], solver)
    coordinates = generator.coordinates()
    grid = Grid(generator.grid, tuple(c.name for c in coordinates), tuple(c.values for c in coordinates))
    return DatasetInfo(name, data["pde"], preset, tuple(f.name for f in generator.fields),
                       tuple(p.name for p in generator.parameters), grid)


def reference_config(model: str) -> dict:
    """The model's reference settings: `conf/model/<model>.yaml` as training composes it."""
    return _compose("train", [f"model={model}"])["model"]


def reference_objective(model: str) -> dict:
    """The objective a model trains with by default: its own objective file if one exists, else `onestep`."""
    name = model if (Path(CONFIG_DIR) / "objective" / f"{model}.yaml").is_file() else "onestep"
    return _compose("train", [f"objective={name}"])["objective"]


def supported_grids(model: str) -> list[str]:
    """The probe grids the model's tiny config builds on (a refusal is the model saying it cannot serve them)."""
    served = []
    for label, grid in PROBE_GRIDS.items():
        try:
            build_model(MODELS[model].config.tiny(), NetSpec(("u",), 1, 1, ("a",), grid))
        except ValueError:
            continue
        served.append(label)
    return served


def parameter_count(model: str, dataset: DatasetInfo) -> int | str:
    """Trainable parameters of the model's reference config on the dataset, or the one-sentence refusal."""
    objective = reference_objective(model)
    spec = NetSpec(dataset.fields, objective["history"], objective["bundle"], dataset.parameters, dataset.grid)
    try:
        net = build_model(reference_config(model), spec)
    except ValueError as error:
        return f"refused: {error}"
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def format_count(count: int | str) -> str:
    if isinstance(count, str):
        return "—"
    return f"{count / 1e6:.2f}M" if count >= 1e5 else f"{count:,}"


def zoo_table(models: Sequence[str] | None = None, datasets: Sequence[str] | None = None,
              preset: str | None = None) -> tuple[str, list[str]]:
    """The Markdown table of the zoo and the notes under it (refusals, datasets whose configs do not load)."""
    models = list(models or sorted(MODELS))
    for name in models:
        MODELS[name]  # an unknown name: UnknownName, listing the registered models
    infos, notes = [], []
    for name in datasets or dataset_names():
        try:
            infos.append(dataset_info(name, preset))
        except Exception as error:  # a dataset whose configs another change broke should not hide the others
            notes.append(f"dataset {name}: not available ({str(error).splitlines()[0]})")
    header = ["model", "kind", "grids"] + [f"{d.name} ({'x'.join(map(str, d.grid.shape))})" for d in infos]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in models:
        entry = MODELS[name]
        cells = [name, entry.kind, ", ".join(supported_grids(name)) or "none"]
        for info in infos:
            count = parameter_count(name, info)
            cells.append(format_count(count))
            if isinstance(count, str):
                notes.append(f"{name} on {info.name}: {count}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines), notes


def published_sizes(models: Sequence[str] | None = None) -> list[tuple[str, PublishedSize]]:
    """`(model, size)` for every published setting of `models` (default: every registered model), in name order."""
    names = list(models or sorted(MODELS))
    return [(name, size) for name in names for size in MODELS[name].config.published_sizes()]


def reference_table(models: Sequence[str] | None = None) -> str:
    """The Markdown table of `published_sizes`: model, setting, our count, the published count, its source.

    Our count builds the net at the setting (`PublishedSize.count`); the published one was counted by instantiating
    the reference code's modules."""
    lines = ["| model | setting | ours | published | source |", "|---|---|---|---|---|"]
    for name, size in published_sizes(models):
        cells = [name, size.setting, f"{size.count():,}", f"{size.published:,}", size.source]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="pdebench-models", description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--model", action="append", help="only this model (repeatable)")
    parser.add_argument("--dataset", action="append", help="only this dataset of conf/data (repeatable)")
    parser.add_argument("--preset", help="the datasets' preset (default: each data config's own, usually small)")
    parser.add_argument("--reference", action="store_true",
                        help="print, per model, each paper setting it reproduces with our and the published parameter "
                             "count (datasets are not read)")
    args = parser.parse_args(argv)
    if args.reference:
        _print_reference(args.model)
        return
    try:
        table, notes = zoo_table(args.model, args.dataset, args.preset)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    print("Parameter counts at the reference configs (conf/model/<name>.yaml); — where a model refuses the grid.")
    print(table)
    for note in notes:
        print(f"- {note}")


def _print_reference(models: Sequence[str] | None) -> None:
    """`--reference`: the table of published settings, or one line naming an unknown model."""
    try:
        table = reference_table(models)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    print("Parameter counts at the published settings: ours (this layout built there) and the reference code's.")
    print(table)
    for name in models or sorted(MODELS):
        if not MODELS[name].config.published_sizes():
            print(f"- {name}: no published setting to count against")


if __name__ == "__main__":
    main()
