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
