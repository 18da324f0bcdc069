"""The Hydra tree composes for every app, and bad keys or values fail up front, by name."""

from __future__ import annotations

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
