"""The model zoo: every registry entry builds from its typed config (or refuses a grid kind in one sentence), runs
forward and backward with the right shapes on 1-D, 2-D, box and sphere grids, and learns a tiny batch (here, unless
the model's own test file proves it); unknown keys fail by name."""

from __future__ import annotations

import ast
import copy
import dataclasses
import functools
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from baselines import MODELS, ModelConfig, NetSpec, build_model, check_model_spec, model_config, register
from baselines.registry import count_parameters
from pdebench.cli.common import CONFIG_DIR
from pdebench.data.grid import Grid
from pdebench.errors import InvalidSetting
from pdebench.training.config import train_config

TESTS = Path(__file__).parent

SPECS = {
    "1d-periodic": NetSpec(("u",), 2, 3, ("L", "nu", "dt"), Grid.uniform("periodic", (32,))),
    "2d-periodic": NetSpec(("vx", "vy", "p"), 1, 1, (), Grid.uniform("periodic", (32, 32))),
    "2d-box": NetSpec(("smoke",), 2, 1, ("buoyancy",), Grid.uniform("box", (32, 32))),
    "sphere": NetSpec(("h", "u", "v"), 2, 2, (), Grid.uniform("sphere", (16, 32))),
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def build_or_refusal(name: str, spec: NetSpec) -> torch.nn.Module | None:
    """The entry's tiny module for `spec`, or None after checking that its refusal is the one sentence asked for."""
    try:
        return build_model(MODELS[name].config.tiny(), spec)
    except ValueError as error:
        message = str(error)
        assert message.startswith(f"model {name} does not support grid kind '{spec.grid.kind}'"), message
        assert "\n" not in message
        return None


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_every_registered_model_runs_forward_and_backward(name: str, spec: NetSpec) -> None:
    torch.manual_seed(0)
    entry = MODELS[name]
    module = build_or_refusal(name, spec)
    if module is None or getattr(module, "needs_dataset_solver", False):  # the solver row: tested in test_evaluate
        return
    space = spec.grid.shape
    cond = torch.randn(2, spec.n_cond)
    if entry.trainable:  # a net: folded channels
        out = module(torch.randn(2, spec.in_channels, *space), cond)
        assert out.shape == (2, spec.out_channels, *space)
    else:  # a reference stepper: frames in physical units
        out = module(torch.randn(2, spec.n_fields, spec.history, *space), cond)
        assert out.shape == (2, spec.n_fields, spec.bundle, *space)
    assert torch.isfinite(out).all()
    parameters = [p for p in module.parameters() if p.requires_grad]
    assert bool(parameters) == entry.trainable
    if parameters:
        # against a target other than zero: a net whose last layer starts at zero (the conditioned U-Net, as its
        # reference) has a zero gradient of out.square() at initialisation
        (out - torch.ones_like(out)).square().mean().backward()
        grads = [p.grad for p in parameters if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_serves_1d_and_2d_or_is_made_for_the_sphere(name: str) -> None:
    served = {key for key, spec in SPECS.items() if build_or_refusal(name, spec) is not None}
    assert {"1d-periodic", "2d-periodic"} <= served or served == {"sphere"}, served


@functools.cache
def overfit_tests() -> tuple[tuple[str, str], ...]:
    """(file, function) of every test function named `*overfit*` in the other test files."""
    found = []
    for path in sorted(TESTS.glob("test_*.py")):
        if path.name != Path(__file__).name and "overfit" in (text := path.read_text()):
            found += [(path.name, node.name) for node in ast.walk(ast.parse(text))
                      if isinstance(node, ast.FunctionDef) and node.name.startswith("test") and "overfit" in node.name]
    return tuple(found)


def own_overfit_test(name: str) -> str | None:
    """`file::function` of the test that proves `name` overfits a tiny batch in another file, if there is one: a
    function named `*overfit*` in a file named for the model (`test_<name>.py`, or `test_<a>_<b>.py` for models
    tested together), or one named `test_<name>_*overfit*` in any test file."""
    for file, function in overfit_tests():
        if name in file.removesuffix(".py").split("_")[1:] or re.match(rf"test_{re.escape(name)}_", function):
            return f"{file}::{function}"
    return None


TRAINABLE = sorted(name for name, entry in MODELS.items() if entry.trainable)


def test_every_trainable_model_has_its_own_overfit_test() -> None:
    """A new model must prove it learns: its own test file (or a shared one named for it) overfits a tiny batch."""
    where = {name: own_overfit_test(name) for name in TRAINABLE}
    print("\n".join(f"{name}: {test}" for name, test in where.items()))
    missing = sorted(name for name, test in where.items() if test is None)
    assert not missing, f"no test shows that {', '.join(missing)} can overfit a tiny batch"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_builder_receives_its_typed_config(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = MODELS[name]
    seen = []
    spy = dataclasses.replace(entry, builder=lambda c, s: seen.append(c) or entry.builder(c, s))
    monkeypatch.setitem(MODELS, name, spy)
    build_model({"name": name}, SPECS["sphere" if name == "sfno" else "1d-periodic"])
    assert len(seen) == 1 and isinstance(seen[0], entry.config) and seen[0] == entry.config()


def test_unknown_model_key_fails_by_name() -> None:
    """`+model.widht=3` used to reach the builder and be silently ignored."""
    with pytest.raises(ValueError, match=r"model\.widht for model fno; valid keys: name, n_modes, hidden_channels"):
        model_config({"name": "fno", "widht": 3})
    with pytest.raises(ValueError, match=r"model\.hidden_channels for model fno"):
        model_config({"name": "fno", "hidden_channels": "wide"})
    with pytest.raises(KeyError, match=f"unknown model 'fnoo'; registered models: {', '.join(sorted(MODELS))}"):
        model_config({"name": "fnoo"})


def test_registering_needs_a_typed_config_named_like_the_entry() -> None:
    @dataclasses.dataclass
    class Wrong(ModelConfig):
        name: str = "other"

    with pytest.raises(ValueError, match="^model 'mine': Wrong.name defaults to 'other'; it must be 'mine'$"):
        register("mine", config=Wrong)
    with pytest.raises(ValueError, match="registered twice"):
        register("fno", config=MODELS["fno"].config)(lambda c, s: None)

    class Plain:  # neither a dataclass nor a ModelConfig
        name = "mine"

    @dataclasses.dataclass
    class Untyped:  # a dataclass, but not a ModelConfig
        name: str = "mine"

    for config in (Plain, Untyped, ModelConfig()):
        with pytest.raises(TypeError, match="^model 'mine': config must be a dataclass deriving from ModelConfig$"):
            register("mine", config=config)
    with pytest.raises(ValueError, match=r"^model 'mine': kind must be one of \('net', 'stepper'\), got 'row'$"):
        register("mine", config=dataclasses.make_dataclass("Mine", [("name", str, "mine")], bases=(ModelConfig,)),
                 kind="row")
    assert "mine" not in MODELS


def test_a_registered_entry_keeps_its_builder_config_and_kind() -> None:
    """What `register` stores is what `build_model` calls: the builder returned unchanged, a stepper not trainable."""
    mine = dataclasses.make_dataclass("MineConfig", [("name", str, "mine_stepper")], bases=(ModelConfig,))

    def builder(config: ModelConfig, spec: NetSpec) -> torch.nn.Module:
        return torch.nn.Identity()

    assert register("mine_stepper", config=mine, kind="stepper")(builder) is builder
    try:
        entry = MODELS["mine_stepper"]
        assert (entry.name, entry.builder, entry.config, entry.kind, entry.trainable) == (
            "mine_stepper", builder, mine, "stepper", False)
        assert MODELS["fno"].trainable and MODELS["fno"].kind == "net"
        spec = NetSpec(("u",), 1, 1, (), Grid.uniform("periodic", (8,)))
        assert isinstance(build_model({"name": "mine_stepper"}, spec), torch.nn.Identity)
        typed = model_config({"name": "mine_stepper"})
        assert type(typed) is mine and model_config(typed) is typed
        # the defaults: no paper, any target and any data; `tiny` is the default config
        assert mine.published_sizes() == () and mine.tiny() == mine()
        assert typed.check_target("derivative") is None and typed.check_spec(spec) is None
    finally:
        del MODELS["mine_stepper"]


def test_a_model_config_without_a_name_lists_the_registered_models() -> None:
    with pytest.raises(InvalidSetting, match=re.escape(
            f"the model config has no 'name'; registered models: {', '.join(sorted(MODELS))}")):
        model_config({"width": 3})


def test_only_trainable_parameters_are_counted() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))  # 16 + 10 parameters
    net[0].requires_grad_(False)
    assert count_parameters(net) == 10


def test_persistence_repeats_the_last_input_frame() -> None:
    spec = NetSpec(("u", "v"), 3, 2, ("a",), Grid.uniform("periodic", (16,)))
    stepper = build_model({"name": "persistence"}, spec)
    frames = torch.randn(4, 2, 3, 16)
    out = stepper(frames, torch.zeros(4, 1))
    assert out.shape == (4, 2, 2, 16)
    assert torch.equal(out[:, :, 0], frames[:, :, -1]) and torch.equal(out[:, :, 1], frames[:, :, -1])


# --- grids at the edge of what a model serves: refused before building, or adapted ------------------------------

# Grids at the edge of what the tiny configs serve (`ModelConfig.tiny()`): the U-Net and SineNet halve every axis
# twice, MP-PDE's radius is 2 grid spacings, SFNO keeps degrees < 8 and orders < 8, FNO 12 Fourier modes.
EDGE_SPECS = {
    "1d-periodic-4": NetSpec(("u",), 1, 1, ("a",), Grid.uniform("periodic", (4,))),
    "1d-periodic-6": NetSpec(("u",), 2, 1, ("a",), Grid.uniform("periodic", (6,))),
    "1d-periodic-5": NetSpec(("u",), 1, 2, (), Grid.uniform("periodic", (5,))),
    "2d-box-4x12": NetSpec(("u", "v"), 1, 1, ("a",), Grid.uniform("box", (4, 12))),
    "sphere-6x12": NetSpec(("h",), 1, 1, (), Grid.gaussian(6, 12)),
}
NOT_HALVABLE_TWICE = ("1d-periodic-6", "1d-periodic-5", "sphere-6x12")
REFUSED = {  # (model, spec) -> how its one sentence starts; every other pair builds and runs
    ("mpnn", "1d-periodic-4"): "model mpnn's neighbourhood (model.radius=2 grid spacings) reaches half-way round the "
                               "periodic axis x of 4 points",
    **{(name, spec): f"model {name} halves the grid 2 times" for name in ("unet", "sinenet")
       for spec in NOT_HALVABLE_TWICE},
    **{("pderefiner", spec): "the backbone of model pderefiner (settings under model.backbone) refuses the data: "
                             "model unet halves the grid 2 times" for spec in NOT_HALVABLE_TWICE},
    **{("dyffusion", spec): "the backbone of model dyffusion (settings under model.backbone) refuses the data: "
                            "model unet halves the grid 2 times" for spec in NOT_HALVABLE_TWICE},
    **{("sfno", spec): f"model sfno does not support grid kind '{EDGE_SPECS[spec].grid.kind}'"
       for spec in EDGE_SPECS if EDGE_SPECS[spec].grid.kind != "sphere"},
    ("t1", "sphere-6x12"): "model t1 does not support grid kind 'sphere'",
}


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("spec_id", EDGE_SPECS)
def test_a_model_serves_a_grid_or_refuses_it_in_one_sentence_before_building(
        name: str, spec_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `ModelConfig.check_spec` passes builds and runs forward and backward; what it refuses, `build_model`
    refuses with the same sentence before the builder runs."""
    torch.manual_seed(0)
    spec, config, expected = EDGE_SPECS[spec_id], MODELS[name].config.tiny(), REFUSED.get((name, spec_id))
    if expected is not None:
        with pytest.raises(InvalidSetting) as refused:
            check_model_spec(config, spec)
        message = str(refused.value)
        assert message.startswith(expected) and "\n" not in message, message
        monkeypatch.setitem(MODELS, name, dataclasses.replace(MODELS[name], builder=None))  # never reached
        with pytest.raises(InvalidSetting, match=re.escape(message)):
            build_model(config, spec)
        return
    check_model_spec(config, spec)
    net = build_model(config, spec)
    if not MODELS[name].trainable:
        return
    out = net(torch.randn(2, spec.in_channels, *spec.grid.shape), torch.randn(2, spec.n_cond))
    assert out.shape == (2, spec.out_channels, *spec.grid.shape) and torch.isfinite(out).all()
    (out - 1).square().mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_the_divisibility_refusal_says_how_often_the_grid_halves() -> None:
    from baselines.layers import evenly_halvable

    assert [evenly_halvable(s) for s in ((12, 24), (16, 32), (6,), (5, 8), (96, 192))] == [2, 4, 1, 0, 5]
    with pytest.raises(InvalidSetting, match=r"the grid shape \(12, 24\) is not \(it halves evenly at most 2 times\)$"):
        check_model_spec({"name": "unet"}, NetSpec(("u",), 1, 1, (), Grid.uniform("periodic", (12, 24))))
    with pytest.raises(InvalidSetting, match=r"the grid shape \(6,\) is not \(it halves evenly at most 1 time\)$"):
        check_model_spec({"name": "sinenet"}, NetSpec(("u",), 1, 1, (), Grid.uniform("periodic", (6,))))


def test_mp_pde_is_refused_where_its_radius_reaches_half_way_round_an_even_periodic_axis() -> None:
    """Why: at radius 3 on 6 periodic points the opposite point is 3 spacings away both ways, and the graph records
    it at offset -3 around nodes 0, 1, 2 but +3 around nodes 3, 4, 5 (no longer the same graph around every node);
    just below, every node sees the same offsets. An odd axis has no opposite point, and the box does not wrap."""
    from baselines.graphs import grid_graph

    def offsets_around(graph, node: int) -> list[float]:
        return sorted(np.round(graph.offset[graph.edge_index[1] == node, 0], 6).tolist())

    grid = Grid.uniform("periodic", (6,))
    at_half = grid_graph(grid, 3.0, 32)
    assert offsets_around(at_half, 0) == [-3, -2, -1, 1, 2] and offsets_around(at_half, 3) == [-2, -1, 1, 2, 3]
    below = grid_graph(grid, 2.9, 32)
    assert all(offsets_around(below, node) == [-2, -1, 1, 2] for node in range(6))
    spec = NetSpec(("u",), 1, 1, (), grid)
    with pytest.raises(InvalidSetting, match=r"^model mpnn's neighbourhood \(model.radius=3 grid spacings\) reaches "
                                             r"half-way round the periodic axis x of 6 points, .* use model.radius "
                                             r"below 3 on this grid$"):
        check_model_spec({"name": "mpnn", "radius": 3.0}, spec)
    check_model_spec({"name": "mpnn", "radius": 2.9}, spec)
    check_model_spec({"name": "mpnn", "radius": 3.0}, NetSpec(("u",), 1, 1, (), Grid.uniform("periodic", (7,))))
    check_model_spec({"name": "mpnn", "radius": 3.0}, NetSpec(("u",), 1, 1, (), Grid.uniform("box", (6,))))


def perturbed(net: torch.nn.Module, keys: list[str], index: tuple) -> torch.nn.Module:
    """A copy of `net` with 1 added to the entries `index` of the state-dict tensors `keys`."""
    state = {key: value.clone() for key, value in net.state_dict().items()}
    for key in keys:
        state[key][index] += 1.0
    other = copy.deepcopy(net)
    other.load_state_dict(state)
    return other


def spectral_weight_keys(net: torch.nn.Module) -> list[str]:
    return [key for key in net.state_dict() if key.endswith("convs.0.weight.tensor") or
            key.endswith("convs.1.weight.tensor")]


def test_sfno_keeps_the_spherical_harmonic_modes_a_coarse_grid_holds() -> None:
    """On the 16 x 32 Gaussian grid (degrees < 16 and orders < 17 resolved), SFNO asking for degrees < 32 and orders
    < 32 (n_modes 32 x 64, the reference) is the SFNO asking for exactly what the grid holds (16 x 34) with the same
    weights for those degrees: same parameters, the same output to round-off; its weights for degrees 16..31 change
    nothing on this grid, those for degree 15 do."""
    from baselines.sfno import SFNOConfig, spherical_modes_in_use

    assert spherical_modes_in_use((32, 64), (16, 32)) == (16, 17) == spherical_modes_in_use((16, 34), (16, 32))
    assert spherical_modes_in_use((32, 64), (48, 96)) == (32, 32)
    spec = NetSpec(("h", "u", "v"), 2, 1, ("a",), Grid.gaussian(16, 32))
    torch.manual_seed(0)
    reference = build_model(SFNOConfig(n_modes=[32, 64], hidden_channels=8, n_layers=2), spec)
    held = build_model(SFNOConfig(n_modes=[16, 34], hidden_channels=8, n_layers=2), spec)
    weights = spectral_weight_keys(reference)
    assert len(weights) == 2 and reference.state_dict()[weights[0]].shape[2] == 32
    held.load_state_dict({key: value[:, :, :16] if key in weights else value
                          for key, value in reference.state_dict().items()})
    x, cond = torch.randn(2, 6, 16, 32), torch.randn(2, 1)
    out = reference(x, cond)
    assert out.shape == (2, 3, 16, 32) and torch.allclose(out, held(x, cond), rtol=0, atol=1e-6)
    assert torch.equal(perturbed(reference, weights, (slice(None), slice(None), slice(16, None)))(x, cond), out)
    changed = perturbed(reference, weights[:1], (slice(None), slice(None), 15))(x, cond)
    assert (changed - out).abs().max() > 1e-2


def test_sfno_convolution_is_neuraloperators_where_the_grid_holds_every_mode() -> None:
    from neuralop.layers.spherical_convolution import SphericalConv

    from baselines.sfno import GridSphericalConv

    torch.manual_seed(0)
    ours = GridSphericalConv(4, 5, (8, 16), factorization="dense", sht_grids="legendre-gauss")
    theirs = SphericalConv(4, 5, (8, 16), factorization="dense", sht_grids="legendre-gauss")
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(3, 4, 16, 32)
    assert torch.equal(ours(x), theirs(x))
    with pytest.raises(RuntimeError, match="einsum"):  # what neuraloperator does on a grid holding fewer orders
        SphericalConv(4, 5, (8, 64), factorization="dense", sht_grids="legendre-gauss")(x)
    assert ours.__class__(4, 5, (8, 64), factorization="dense", sht_grids="legendre-gauss")(x).shape == (3, 5, 16, 32)


def test_fno_keeps_the_fourier_modes_a_coarse_grid_holds() -> None:
    """neuraloperator's FNO on 16 periodic points (9 non-negative frequencies) asking for 64 modes (33 non-negative
    frequencies) is the FNO asking for 16 with the weights of the 9 lowest frequencies; the weights of the others
    change nothing on this grid, that of frequency 8 does."""
    from baselines.fno import FNOConfig

    spec = NetSpec(("u",), 1, 1, ("a",), Grid.uniform("periodic", (16,)))
    torch.manual_seed(0)
    reference = build_model(FNOConfig(n_modes=[64], hidden_channels=8, n_layers=2), spec)
    held = build_model(FNOConfig(n_modes=[16], hidden_channels=8, n_layers=2), spec)
    weights = spectral_weight_keys(reference)
    assert len(weights) == 2 and reference.state_dict()[weights[0]].shape[-1] == 33
    held.load_state_dict({key: value[..., :9] if key in weights else value
                          for key, value in reference.state_dict().items()})
    x, cond = torch.randn(2, 1, 16), torch.randn(2, 1)
    out = reference(x, cond)
    assert torch.allclose(out, held(x, cond), rtol=0, atol=1e-6)
    assert torch.equal(perturbed(reference, weights, (Ellipsis, slice(9, None)))(x, cond), out)
    assert (perturbed(reference, weights[:1], (Ellipsis, 8))(x, cond) - out).abs().max() > 1e-3


# --- experiment presets -----------------------------------------------------------------------------------------

EXPERIMENTS = sorted(path.stem for path in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_preset_composes_and_validates(compose_cfg, name: str) -> None:
    cfg = compose_cfg("train", [f"experiment={name}"])
    typed = train_config(cfg).model  # as pdebench-train loads it: every node and the model's own settings
    assert MODELS[typed.name].trainable
    # every row trains with its dataset's recipe, on the recipe's budget of optimiser steps (tests/test_recipes.py)
    assert cfg["recipe"]["name"] == cfg["data"]["pde"] and cfg["trainer"]["max_epochs"] == -1
    if name.startswith(f"{cfg['data']['pde']}_"):  # <dataset>_<model>[_<variant>]
        assert name[len(cfg["data"]["pde"]) + 1:].split("_")[0] == typed.name
    if typed.name == "pderefiner":
        assert cfg["objective"]["name"] == "pderefiner"


@pytest.mark.slow
def test_every_trainable_model_has_a_preset_on_every_dataset_it_serves() -> None:
    """`<dataset>_<model>.yaml` for every dataset of conf/data and every net that serves the dataset's grid kind."""
    from pdebench.cli.models import dataset_info, dataset_names

    missing = []
    for dataset in dataset_names():
        kind = dataset_info(dataset).grid.kind
        for name in TRAINABLE:
            serves = build_or_refusal(name, SPECS["sphere" if kind == "sphere" else "2d-box" if kind == "box"
                                                    else "2d-periodic"]) is not None
            if serves and f"{dataset}_{name}" not in EXPERIMENTS:
                missing.append(f"{dataset}_{name}")
    assert not missing, f"no experiment preset for: {', '.join(missing)}"


# --- pdebench-models --------------------------------------------------------------------------------------------


def zoo_rows(capsys: pytest.CaptureFixture, argv: list[str]) -> dict[str, list[str]]:
    from pdebench.cli.models import main

    main(argv)
    rows = [line.strip("|").split(" | ") for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows}


@pytest.mark.slow
def test_pdebench_models_prints_grids_and_reference_parameter_counts(capsys: pytest.CaptureFixture) -> None:
    from pdebench.cli.models import dataset_info, reference_config

    rows = zoo_rows(capsys, ["--model", "fno", "--model", "sfno", "--model", "persistence", "--dataset", "ks"])
    assert rows["model"] == ["kind", "grids", "ks (256)"]
    assert rows["fno"][:2] == ["net", "1-D periodic, 2-D periodic, 2-D box, sphere"]
    assert rows["sfno"] == ["net", "sphere", "—"]  # refuses the periodic KS grid
    assert rows["persistence"] == ["stepper", "1-D periodic, 2-D periodic, 2-D box, sphere", "0"]
    ks = dataset_info("ks")
    assert (ks.fields, ks.grid.kind, ks.grid.shape) == (("u",), "periodic", (256,))
    assert ks.parameters == ("L", "nu", "dt", "dx")
    net = build_model(reference_config("fno"), NetSpec(ks.fields, 1, 1, ks.parameters, ks.grid))
    assert rows["fno"][2] == f"{sum(p.numel() for p in net.parameters()) / 1e6:.2f}M"


@pytest.mark.slow
def test_zoo_counts_are_the_reference_configs_built_for_each_dataset(capsys: pytest.CaptureFixture) -> None:
    """The zoo table builds `conf/model/<name>.yaml` for the dataset's fields and conditioning (SineNet on smoke
    conditions on its five scalars, so it is not the unconditioned published setting); the published settings
    themselves are held exactly by `test_reference_table_holds_every_published_count`."""
    from pdebench.cli.models import dataset_info, format_count, reference_config, reference_objective

    rows = zoo_rows(capsys, ["--model", "sinenet", "--model", "mpnn", "--dataset", "smoke", "--dataset", "ks"])
    for dataset, column in (("smoke", 2), ("ks", 3)):
        info = dataset_info(dataset)
        for name in ("sinenet", "mpnn"):
            objective = reference_objective(name)
            spec = NetSpec(info.fields, objective["history"], objective["bundle"], info.parameters, info.grid)
            net = build_model(reference_config(name), spec)
            assert rows[name][column] == format_count(sum(p.numel() for p in net.parameters())), (name, dataset)
    mpnn = reference_config("mpnn")
    assert (mpnn["hidden_channels"], mpnn["n_layers"]) == (128, 6)


def test_pdebench_models_names_an_unknown_model(capsys: pytest.CaptureFixture) -> None:
    from pdebench.cli.models import main

    with pytest.raises(SystemExit) as info:
        main(["--model", "fnoo", "--dataset", "ks"])
    assert info.value.code == 1
    assert capsys.readouterr().err.strip().startswith("error: unknown model 'fnoo'; registered models: ")


def reference_rows(capsys: pytest.CaptureFixture, argv: list[str]) -> list[list[str]]:
    """The body rows of `pdebench-models --reference argv...`: model, setting, ours, published, source."""
    from pdebench.cli.models import main

    main(["--reference", *argv])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert lines[0] == "| model | setting | ours | published | source |"
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[1:]]


@pytest.mark.slow
def test_reference_table_holds_every_published_count(capsys: pytest.CaptureFixture) -> None:
    """Every model's every published setting is a row, and our count there equals the reference code's."""
    rows = reference_rows(capsys, [])
    expected = [(name, size.setting) for name in sorted(MODELS) for size in MODELS[name].config.published_sizes()]
    assert [(row[0], row[1]) for row in rows] == expected
    assert {"mpnn", "unet", "sinenet"} <= {row[0] for row in rows}
    unequal = [f"{row[0]} ({row[1]}): ours {row[2]}, published {row[3]}" for row in rows if row[2] != row[3]]
    assert not unequal, "\n".join(unequal)


def test_reference_table_mp_pde_row_is_the_e3_count(capsys: pytest.CaptureFixture) -> None:
    rows = {row[1].split(":")[0]: row for row in reference_rows(capsys, ["--model", "mpnn"])}
    e3 = rows["MP-PDE E3"]
    assert e3[0] == "mpnn" and e3[2] == e3[3] == "639,737"
    assert "alpha, beta, gamma" in e3[1] and "time window 25" in e3[1]
    assert e3[4].startswith("brandstetter-johannes/MP-Neural-PDE-Solvers: experiments/models_gnn.py MP_PDE_Solver")
    assert rows["MP-PDE E1"][2] == rows["MP-PDE E1"][3] == "634,745"
    rows = reference_rows(capsys, ["--model", "fno"])
    assert rows == []
