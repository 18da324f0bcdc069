"""The Hydra tree composes for every app, and bad keys or values fail up front, by name."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from pdebench.config.location import CONFIG_DIR


@pytest.mark.parametrize(
    ("app", "overrides"),
    [
        ("train", []),
        ("train", ["experiment=ks_fno"]),
        ("train", ["trainer=ddp", "trainer.devices=8", "trainer.num_nodes=2"]),
        ("train", ["logger=wandb"]),
        ("evaluate", ["model=persistence", "data=ks"]),
        ("generate", ["pde=ks_visc", "preset=paper"]),
        ("leaderboard", []),
    ],
)
def test_every_app_composes(compose_cfg, app: str, overrides: list[str]) -> None:
    cfg = compose_cfg(app, overrides)
    assert cfg


def test_data_preset_switches_every_path(compose_cfg) -> None:
    cfg = compose_cfg("train", ["data=ks", "data.preset=tiny"])
    assert cfg["run_dir"] == "runs/ks-tiny/fno/seed0"
    assert compose_cfg("train", ["data=ks"])["data"]["preset"] == "small"


def test_experiment_is_a_preset_of_groups(compose_cfg) -> None:
    cfg = compose_cfg("train", ["experiment=ks_fno", "seed=2"])
    assert cfg["model"]["name"] == "fno" and cfg["data"]["pde"] == "ks" and cfg["seed"] == 2


def test_experiment_overrides_top_level_keys(compose_cfg) -> None:
    cfg = compose_cfg("train", ["experiment=ks_fno_quickstart"])
    assert cfg["label"] == "fno-quickstart" and cfg["run_dir"] == "runs/ks-small/fno-quickstart/seed0"


def test_viscosity_variant_varies_nu(compose_cfg) -> None:
    """The PDEArena mistake: a 'conditioned' dataset whose parameter never varied because of a key typo."""
    solver = compose_cfg("generate", ["pde=ks_visc"])["pde"]["solver"]
    assert solver["nu_range"] == [0.5, 1.5]


@pytest.mark.parametrize(
    ("override", "error", "names"),
    [
        ("model.n_mode=3", ConfigCompositionException, "model.n_mode"),
        ("trainer.max_epochs=many", ConfigCompositionException, "trainer.max_epochs"),
    ],
)
def test_misspelt_key_or_wrong_type_fails(compose_cfg, override: str, error: type, names: str) -> None:
    with pytest.raises(error) as info:
        compose_cfg("train", [override])
    text = str(info.value) + str(info.value.__cause__)
    assert names in text


def test_schema_rejects_unknown_key_in_a_config_file(compose_cfg) -> None:
    """A typo inside a YAML file (not only on the command line) is caught by the structured schema."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(group="experiment", name="typo", node={"model": {"hiden_channels": 8}},
                                 package="_global_")
    with pytest.raises((ConfigCompositionException, ConfigKeyError, ValidationError)) as info:
        compose_cfg("train", ["experiment=typo"])
    assert "hiden_channels" in str(info.value) + str(info.value.__cause__)


def test_unknown_group_option_lists_choices(compose_cfg) -> None:
    with pytest.raises(MissingConfigException) as info:
        compose_cfg("train", ["model=fnoo"])
    assert "fnoo" in str(info.value) and "persistence" in str(info.value)


def test_help_stand_ins_never_replace_a_registered_schema() -> None:
    """`--help` registers untyped stand-ins only where no schema is registered: a later help in the same process
    (a test, a notebook) must leave the typed schemas in place, so that the next run still checks its types."""
    from hydra.core.config_store import ConfigStore

    from baselines.fno import FNOConfig
    from pdebench.cli.hydra_setup import register_configs

    register_configs()
    register_configs(models=False, generators=False)
    node = ConfigStore.instance().load("schema/model/fno.yaml").node
    assert OmegaConf.get_type(node) is FNOConfig


def test_config_store_is_filled_from_the_registries() -> None:
    """A model registered anywhere appears in Hydra's ConfigStore without editing the config schemas."""
    import dataclasses

    from hydra.core.config_store import ConfigStore

    from baselines.registry import MODELS, ModelConfig, register
    from data_gen.registry import GENERATORS
    from pdebench.cli.hydra_setup import register_configs

    @dataclasses.dataclass
    class ProbeConfig(ModelConfig):
        name: str = "probe_net"
        width: int = 3

    register("probe_net", config=ProbeConfig)(lambda config, spec: None)
    try:
        register_configs()
        repo = ConfigStore.instance().repo["schema"]
        assert "probe_net.yaml" in repo["model"] and set(f"{m}.yaml" for m in MODELS) <= set(repo["model"])
        assert {f"{g}.yaml" for g in GENERATORS} <= set(repo["pde"])
    finally:
        del MODELS["probe_net"]


def test_every_registry_entry_has_its_yaml() -> None:
    from baselines.registry import MODELS
    from data_gen.registry import GENERATORS

    conf = Path(CONFIG_DIR)
    assert {p.stem for p in (conf / "model").glob("*.yaml")} == set(MODELS)
    generators = {line.split(":")[1].strip() for p in (conf / "pde").glob("*.yaml")
                  for line in p.read_text().splitlines() if line.startswith("generator:")}
    assert set(GENERATORS) <= generators


def test_solver_settings_are_typed(compose_cfg, tmp_path) -> None:
    from data_gen.generate import generate_dataset

    with pytest.raises(ConfigCompositionException):
        compose_cfg("generate", ["pde.solver.n_points=many"])
    pde = compose_cfg("generate", ["pde=ks"])["pde"]
    pde["presets"]["tiny"]["solver"] = {"n_pionts": 64}  # a typo in a preset's solver overrides
    with pytest.raises(ValueError, match=r"pde.solver.n_pionts for the ks generator; valid keys: n_points"):
        generate_dataset(pde, "tiny", tmp_path, progress=False)
    pde["presets"]["tiny"]["solver"] = {"n_points": 63}
    with pytest.raises(ValueError, match=r"^pde\.solver\.n_points=63 for the ks generator is not valid: expected a "
                                         r"number of grid points, an even whole number >= 8"):
        generate_dataset(pde, "tiny", tmp_path, progress=False)


PDE_CONFIGS = sorted(path.stem for path in (Path(CONFIG_DIR) / "pde").glob("*.yaml"))


@pytest.mark.parametrize("pde", PDE_CONFIGS)
def test_every_pde_config_plans_each_of_its_presets(compose_cfg, pde: str, tmp_path: Path) -> None:
    """Every `conf/pde/*.yaml` composes and types (its solver settings by its generator's dataclass), and every
    preset's solver overrides type on top of them and build the generator, whose grid and fields agree with the
    planned files; nothing is generated. A new PDE gets this for free."""
    from data_gen.config import generate_config
    from data_gen.plan import plan_dataset

    cfg = generate_config(compose_cfg("generate", [f"pde={pde}"]))
    assert cfg.pde.name == pde and set(cfg.pde.presets) >= {"tiny", "small", "paper"}
    for preset, sizes in cfg.pde.presets.items():
        plan = plan_dataset(cfg.pde, preset, tmp_path, seed=0)
        assert plan.generator.pde and plan.generator.fields, (pde, preset)
        for split in ("train", "valid", "test"):
            layout = plan.layouts[split]
            assert (layout.n_traj, layout.n_frames) == (getattr(sizes, split).n_traj, getattr(sizes, split).n_frames)
            assert layout.grid == plan.generator.grid and layout.pde == pde and layout.preset == preset


# --- `load_config` and `typed_settings` on small schemas of their own: the sentences a user reads ---


@dataclass
class _Steps:
    rate: float = 0.1
    steps: int = 3

    def __post_init__(self) -> None:
        from pdebench.config.checks import SettingError

        if isinstance(self.steps, int) and self.steps < 1:
            raise SettingError("steps", self.steps, "is not valid: expected a whole number >= 1")


@dataclass
class _Run:
    name: str = "a"
    inner: _Steps = field(default_factory=_Steps)
    count: int = 2
    windows: list[list[int]] = field(default_factory=list)


@pytest.mark.parametrize(("cfg", "message"), [
    ({"foo": 1}, "unknown config key foo; valid keys at the top level: name, inner, count, windows"),
    ({"inner": {"foo": 1}}, "unknown config key inner.foo; valid keys under inner: rate, steps"),
    ({"count": "q"}, "count=q is not valid: Value 'q' of type 'str' could not be converted to Integer"),
    ({"inner": {"steps": "x"}},
     "inner.steps=x is not valid: Value 'x' of type 'str' could not be converted to Integer"),
    ({"inner": {"rate": [1, 2]}},
     "inner.rate=[1,2] is not valid: Value '[1, 2]' of type 'ListConfig' could not be converted to Float"),
    ({"inner": {"steps": 0}}, "inner.steps=0 is not valid: expected a whole number >= 1"),
    ({"windows": [[1, 2], [3, "x"]]},  # the value is found through the list indices of the key
     "windows[1]=[3,x] is not valid: Value 'x' (str) is incompatible with type hint 'int'"),
    ({"inner": None}, "inner=null is not valid: field 'inner' is not Optional"),
    # an error OmegaConf raises without a key (a scalar where a section belongs) still reads as one sentence
    ({"inner": 5}, "?=null is not valid: Merge error: int is not a subclass of _Steps. value: 5"),
])
def test_load_config_refuses_in_one_sentence_naming_the_full_key_and_value(cfg: dict, message: str) -> None:
    """The full dotted key, the value as given and OmegaConf's reason (its first line only)."""
    from pdebench.config.loading import ConfigError, load_config

    with pytest.raises(ConfigError) as info:
        load_config(cfg, _Run)
    assert str(info.value) == message


def test_load_config_types_a_plain_mapping_and_refuses_a_foreign_dataclass() -> None:
    from pdebench.config.loading import load_config

    run = load_config({"inner": {"steps": 5}, "count": 4}, _Run)
    assert run == _Run(inner=_Steps(steps=5), count=4)
    assert load_config(run, _Run) is run
    with pytest.raises(TypeError) as info:
        load_config(_Steps(), _Run)
    assert str(info.value) == "expected a _Run or a plain mapping, got a _Steps"


def test_plain_config_turns_dataclasses_inside_mappings_and_lists_into_builtins() -> None:
    from pdebench.config.loading import plain_config

    plain = plain_config({"runs": [_Run(count=7)], "steps": _Steps(rate=0.5), "n": 3})
    assert plain == {"runs": [{"name": "a", "inner": {"rate": 0.1, "steps": 3}, "count": 7, "windows": []}],
                     "steps": {"rate": 0.5, "steps": 3}, "n": 3}
    assert plain_config(_Steps) is _Steps  # a class is a plain value, not a config


@pytest.mark.parametrize(("settings", "owner", "message"), [
    ({"b": 1, "a": 2}, None, "unknown key(s) model.a, model.b; valid keys: rate, steps"),
    ({"b": 1}, "model fno", "unknown key(s) model.b for model fno; valid keys: rate, steps"),
    ({"steps": "x"}, None, "model.steps: Value 'x' of type 'str' could not be converted to Integer"),
    ({"steps": "x"}, "model fno",
     "model.steps for model fno: Value 'x' of type 'str' could not be converted to Integer"),
    ({"steps": 0}, "model fno", "model.steps=0 for model fno is not valid: expected a whole number >= 1"),
])
def test_typed_settings_refuse_naming_the_key_as_written_and_its_owner(settings: dict, owner: str | None,
                                                                       message: str) -> None:
    from pdebench.config.loading import ConfigError, typed_settings

    with pytest.raises(ConfigError) as info:
        typed_settings(_Steps, settings, "model", owner)
    assert str(info.value) == message


def test_typed_settings_name_a_keyless_error_with_a_question_mark() -> None:
    """A scalar where a nested section belongs: OmegaConf gives no key, so `?` stands for it."""
    from pdebench.config.loading import ConfigError, typed_settings

    with pytest.raises(ConfigError) as info:
        typed_settings(_Run, {"inner": 5}, "pde.solver", "the ks generator")
    assert str(info.value) == ("pde.solver.? for the ks generator: Merge error: int is not a subclass of _Steps. "
                               "value: 5")
    assert typed_settings(_Steps, {"steps": 9}, "model") == _Steps(steps=9)
