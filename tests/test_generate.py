"""The generation driver: per-trajectory seeds, resume after an interruption, bad settings named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data_gen.generate import generate_dataset, make_generator, trajectory_seeds
from data_gen.ks import KSGenerator
from pdebench.data.reader import TrajectoryFile


def test_seeds_depend_only_on_split_and_index() -> None:
    train = trajectory_seeds(0, "train", 10)
    assert np.array_equal(trajectory_seeds(0, "train", 4), train[:4])
    assert not set(train) & set(trajectory_seeds(0, "test", 10))
    assert not set(train) & set(trajectory_seeds(1, "train", 10))


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


def test_unknown_solver_setting_is_named() -> None:
    with pytest.raises(ValueError, match=r"unknown key\(s\) pde.solver.n_point for the ks generator; valid keys: n_po"):
        make_generator("ks", {"n_point": 128})
    with pytest.raises(ValueError, match="unknown generator 'heat'"):
        make_generator("heat", {})


@pytest.mark.parametrize(("overrides", "message"), [
    ({"n_points": True}, "KSConfig.n_points must be an integer >= 8, got True"),
    ({"amplitude": float("nan")}, "KSConfig.amplitude must be a finite number >= 0, got nan"),
    ({"dt_range": (0.0, 0.2)}, "KSConfig.dt_range must satisfy 0 < low <= high (finite), got (0.0, 0.2)"),
    ({"dt_range": "ab"}, "KSConfig.dt_range must be a (low, high) pair of numbers, got 'ab'"),
])
def test_solver_settings_are_refused_in_one_sentence_naming_config_and_key(overrides: dict, message: str) -> None:
    """The checks every generator config shares (`data_gen.base.check_*`), here through KS's."""
    from data_gen.ks import KSConfig

    with pytest.raises(ValueError) as info:
        KSConfig(**overrides)
    assert str(info.value) == message
