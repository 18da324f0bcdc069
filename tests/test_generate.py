"""The generation driver: per-trajectory seeds, resume after an interruption, bad settings named."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from data_gen.config import generate_config, pde_config
from data_gen.generate import generate_dataset
from data_gen.ks import KSGenerator, sample_trajectory
from data_gen.plan import plan_dataset, trajectory_seeds
from data_gen.registry import make_generator
from pdebench.data.manifest import manifest_hash
from pdebench.data.reader import TrajectoryFile
from pdebench.errors import InvalidSetting, UnknownName


def test_seeds_depend_only_on_name_split_and_index() -> None:
    train = trajectory_seeds(0, "train", 10, "ks")
    assert np.array_equal(trajectory_seeds(0, "train", 4, "ks"), train[:4])
    assert not set(train) & set(trajectory_seeds(0, "test", 10, "ks"))
    assert not set(train) & set(trajectory_seeds(1, "train", 10, "ks"))
    assert not set(train) & set(trajectory_seeds(0, "train", 10, "ks_visc"))
    # the name enters as the first 8 bytes of its sha256 (stable across processes, unlike hash())
    word = int.from_bytes(hashlib.sha256(b"ks_visc").digest()[:8], "little")
    expected = np.random.SeedSequence([0, word, 2, 3]).generate_state(1)[0]
    assert trajectory_seeds(0, "test", 4, "ks_visc")[3] == expected


def test_ks_and_ks_visc_start_from_different_draws(compose_cfg, ks_tiny: Path, tmp_path: Path) -> None:
    """The two KS datasets share every setting but nu's range; with their own seeds their domain lengths, frame
    intervals and initial states differ too. The files hold the seeds their plan gives, split by split."""
    plans = {name: plan_dataset(pde_config(compose_cfg("generate", [f"pde={name}", "preset=tiny"])["pde"]), "tiny",
                                tmp_path, 0) for name in ("ks", "ks_visc")}
    for split in ("train", "valid", "test"):
        ks, visc = plans["ks"].seeds(split), plans["ks_visc"].seeds(split)
        assert not set(ks) & set(visc), split
        with TrajectoryFile(ks_tiny / f"{split}.h5") as tf:
            assert np.array_equal(tf.seeds(), ks)
    config = plans["ks"].generator.config
    first = [sample_trajectory(int(plans[name].seeds("train")[0]), config) for name in ("ks", "ks_visc")]
    assert first[0]["L"] != first[1]["L"] and not np.array_equal(first[0]["amplitudes"], first[1]["amplitudes"])


def test_interrupted_generation_resumes_to_the_same_file(compose_cfg, ks_tiny: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Kill generation after its first block; the rerun keeps that block and ends with the reference file.

    The reference was generated in blocks of 4, this run in blocks of 3: trajectories must not depend on batching.
    """
    pde = compose_cfg("generate", ["pde=ks", "preset=tiny"])["pde"]
    original = KSGenerator.generate
    calls = {"n": 0}

    def crash_on_second_block(self, seeds, n_frames, device):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(self, seeds, n_frames, device)

    monkeypatch.setattr(KSGenerator, "generate", crash_on_second_block)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(pde, "tiny", tmp_path, batch_size=3, device="cpu", progress=False)
    partial = tmp_path / "ks-tiny" / "train.h5.partial"
    assert partial.exists() and not (tmp_path / "ks-tiny" / "train.h5").exists()

    monkeypatch.setattr(KSGenerator, "generate", original)
    generate_dataset(pde, "tiny", tmp_path, batch_size=3, device="cpu", progress=False)
    assert not partial.exists()
    for split in ("train", "valid", "test"):
        name = f"{split}.h5"
        with TrajectoryFile(ks_tiny / name) as ref, TrajectoryFile(tmp_path / "ks-tiny" / name) as new:
            assert np.array_equal(ref.read_field("u", slice(None)), new.read_field("u", slice(None)))
            assert np.array_equal(ref.seeds(), new.seeds())
            for name in ref.parameter_names:
                assert np.array_equal(ref.parameters()[name], new.parameters()[name])


def test_a_typed_pde_config_writes_the_dataset_its_plain_mapping_does(compose_cfg, ks_tiny: Path,
                                                                     tmp_path: Path) -> None:
    """The session's ks-tiny was generated from the plain `pde` mapping; the typed config is the same dataset."""
    typed = generate_config(compose_cfg("generate", ["pde=ks", "preset=tiny"])).pde
    out = generate_dataset(typed, "tiny", tmp_path, batch_size=4, device="cpu", progress=False)
    assert manifest_hash(out) == manifest_hash(ks_tiny)


def test_an_unknown_preset_is_a_user_error_listing_the_presets(compose_cfg, tmp_path: Path) -> None:
    pde = compose_cfg("generate", ["pde=ks"])["pde"]
    with pytest.raises(UnknownName, match="unknown preset 'huge' for pde=ks; available presets: tiny, small, paper"):
        generate_dataset(pde, "huge", tmp_path, progress=False)
    assert not (tmp_path / "ks-huge").exists()


def test_unknown_solver_setting_is_named() -> None:
    with pytest.raises(ValueError, match=r"unknown key\(s\) pde.solver.n_point for the ks generator; valid keys: n_po"):
        make_generator("ks", {"n_point": 128})
    with pytest.raises(ValueError, match="unknown generator 'heat'"):
        make_generator("heat", {})


GRID_POINTS = "a number of grid points, an even whole number >= 8 (the spectral solver is written for even grids)"
DT_RANGE = ("a range of times dt between stored frames, a pair [low, high] of finite numbers with 0 < low <= "
            "high")


@pytest.mark.parametrize(("overrides", "message"), [
    ({"n_points": True}, f"n_points=true is not valid: expected {GRID_POINTS}"),
    ({"n_points": 7}, f"n_points=7 is not valid: expected {GRID_POINTS}"),
    ({"amplitude": float("nan")},
     "amplitude=nan is not valid: expected the largest amplitude of an initial sine, a finite number >= 0"),
    ({"dt_range": (0.0, 0.2)}, f"dt_range=[0.0,0.2] is not valid: expected {DT_RANGE}"),
    ({"dt_range": "ab"}, f"dt_range=ab is not valid: expected {DT_RANGE}"),
])
def test_solver_settings_are_refused_in_one_sentence_naming_the_field(overrides: dict, message: str) -> None:
    """The generic checks of `pdebench.config.checks`, here through KS's settings built directly."""
    from data_gen.ks import KSConfig
    from pdebench.config.checks import SettingError

    with pytest.raises(SettingError) as info:  # a user error: one sentence, no traceback
        KSConfig(**overrides)
    assert str(info.value) == message


def test_solver_settings_from_a_config_are_refused_naming_the_key_and_the_generator() -> None:
    """A settings error through `make_generator` (the path of a user's config) names `pde.solver.<key>` as typed."""
    with pytest.raises(InvalidSetting) as info:
        make_generator("ks", {"n_points": 7})
    assert str(info.value) == f"pde.solver.n_points=7 for the ks generator is not valid: expected {GRID_POINTS}"
    with pytest.raises(InvalidSetting) as info:
        make_generator("ks", {"n_points": 64, "max_mode": 22})
    assert str(info.value) == ("pde.solver.max_mode=22 for the ks generator is not valid: expected a mode below 22, "
                               "the 2/3-rule cutoff of n_points=64 (the solver drops every mode from it on)")


def test_a_registered_generator_is_built_from_its_typed_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """`@register_generator` files the class and its settings dataclass under the name; `make_generator` then builds
    the class from settings typed by that dataclass. A config that is not a dataclass class is refused by name."""
    from dataclasses import dataclass

    from data_gen import registry
    from pdebench.registry import Registry

    monkeypatch.setattr(registry, "GENERATORS", Registry("generator"))  # the real generators stay untouched

    @dataclass
    class ProbeConfig:
        n: int = 2

    class Probe:
        def __init__(self, config: ProbeConfig) -> None:
            self.config = config

    assert registry.register_generator("probe", config=ProbeConfig)(Probe) is Probe
    assert registry.generator_entry("probe") == registry.GeneratorEntry("probe", Probe, ProbeConfig)
    built = registry.make_generator("probe", {"n": 6})
    assert type(built) is Probe and built.config == ProbeConfig(n=6)
    for not_a_dataclass in (dict, ProbeConfig()):  # a plain class; an instance of the dataclass
        with pytest.raises(TypeError) as info:
            registry.register_generator("other", config=not_a_dataclass)
        assert str(info.value) == "generator 'other': config must be a dataclass"
    assert list(registry.GENERATORS) == ["probe"]


def test_a_generate_request_without_seeds_or_frames_is_refused_with_its_reason() -> None:
    from data_gen.base import check_generate_request

    check_generate_request([7], 1)  # one seed, one frame: the smallest request
    with pytest.raises(ValueError) as info:
        check_generate_request([7], 0)
    assert str(info.value) == "n_frames must be >= 1, got 0"
    with pytest.raises(ValueError) as info:
        check_generate_request([], 3)
    assert str(info.value) == "seeds must not be empty"


def test_an_even_setting_accepts_its_minimum_and_refuses_the_even_number_below() -> None:
    from data_gen.ks import KSConfig
    from pdebench.config.checks import SettingError

    assert KSConfig(contour_points=4).contour_points == 4
    with pytest.raises(SettingError) as info:
        KSConfig(contour_points=2)
    assert str(info.value) == ("contour_points=2 is not valid: expected a number of contour points, an even whole "
                               "number >= 4 (the ETDRK4 coefficients are averaged over complex-conjugate pairs of "
                               "points on the unit circle)")


def test_a_diverged_solver_names_the_time_and_every_seed() -> None:
    """The driver reads `seeds`, `time` and `reason` to name the failed trajectories; the message says it all."""
    from data_gen.base import SolverDiverged

    error = SolverDiverged(np.array([3, 11]), np.float32(0.75), "non-finite values in u")
    assert (error.seeds, error.time, error.reason) == ([3, 11], 0.75, "non-finite values in u")
    assert type(error.seeds[0]) is int and type(error.time) is float
    assert str(error) == "the solver diverged at t = 0.75 for seed(s) 3, 11: non-finite values in u"
