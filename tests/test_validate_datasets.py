"""`scripts/validate_datasets.py` on the `tiny` preset of every PDE config: each has a validator, whose tables print
with finite figures and read back from `--json`; without data the script says how to make it."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from script_module import load_script

from data_gen.validation import VALIDATORS
from pdebench.config.location import CONFIG_DIR

PDE_CONFIGS = sorted(p.stem for p in (Path(CONFIG_DIR) / "pde").glob("*.yaml"))
# Words that the tables of each generator's validator must contain (titles and column names, any case): the
# figures its dataset card quotes.
KEY_FIGURES = {
    "ks": ("burn-in", "seeds", "energy", "mean u", "share", "frame 0", "correlation"),
    "swe": ("jet", "frame 0", "non-zonal"),
    "smoke": ("phiflow", "mass"),
    "kolmogorov": ("enstrophy", "spectrum"),
}


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return load_script("validate_datasets")


def generator_of(pde: str) -> str:
    """The generator a PDE config names, following `defaults` to the config it extends (`ks_visc` -> `ks`)."""
    doc = yaml.safe_load((Path(CONFIG_DIR) / "pde" / f"{pde}.yaml").read_text(encoding="utf-8"))
    if "generator" in doc:
        return str(doc["generator"])
    parent = next(d for d in doc["defaults"] if isinstance(d, str) and d != "_self_")
    return generator_of(parent)


@pytest.fixture(scope="module")
def tiny_root(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root for the tiny datasets this module generates (ks-tiny, made once per session, is linked in)."""
    root = tmp_path_factory.mktemp("validate")
    (root / "ks-tiny").symlink_to(data_root / "ks-tiny", target_is_directory=True)
    return root


def test_every_pde_config_is_found() -> None:
    assert {"ks", "ks_visc", "swe", "kolmogorov", "smoke"} <= set(PDE_CONFIGS)
    assert generator_of("ks_visc") == "ks" and generator_of("smoke_buoyancy") == "smoke"


def _finite_cells(table: dict, pde: str) -> list[float]:
    numbers = []
    for row in table["rows"]:
        assert len(row) == len(table["columns"]), (pde, table["title"])
        for cell in row:
            if isinstance(cell, bool):
                continue
            if isinstance(cell, int | float):
                assert math.isfinite(cell), f"{pde}: table {table['title']!r} holds {cell} in row {row}"
                numbers.append(float(cell))
    return numbers


@pytest.mark.parametrize("pde", PDE_CONFIGS)
def test_validation_prints_finite_key_figures_for_tiny(pde: str, script: ModuleType, tiny_root: Path,
                                                       tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generator = generator_of(pde)
    assert generator in VALIDATORS, (f"no validator for the datasets of pde={pde}: data_gen/validation/{generator}.py "
                                     f"must register one with @register_validator({generator!r})")
    out_json = tmp_path / "figures.json"
    rc = script.main(["--pde", pde, "--preset", "tiny", "--root", str(tiny_root), "--generate", "--json",
                      str(out_json)])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    assert printed.out.startswith(f"{pde}-tiny: train, valid, test from {tiny_root / f'{pde}-tiny'}\n")
    tables = json.loads(out_json.read_text())
    assert tables and all(set(t) == {"title", "columns", "rows", "note"} for t in tables)
    for table in tables:  # a column is found by its name
        assert len(set(table["columns"])) == len(table["columns"]), (pde, table["title"], table["columns"])
    numbers = []
    for table in tables:
        assert table["title"] in printed.out and table["rows"], (pde, table["title"])
        numbers += _finite_cells(table, pde)
    assert numbers, f"{pde}: the tables hold no figure"
    text = " ".join(t["title"] + " " + " ".join(t["columns"]) for t in tables).lower()
    missing = [word for word in KEY_FIGURES.get(generator, ()) if word not in text]
    assert not missing, f"{pde}: no table names {missing}"


def test_ks_tiny_figures_are_those_of_its_files(script: ModuleType, tiny_root: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Spot checks of the KS tables against the files themselves: trajectory and frame counts, seeds, burn-in."""

    from pdebench.data.reader import TrajectoryFile

    out_json = tmp_path / "ks.json"
    assert script.main(["--pde", "ks", "--preset", "tiny", "--root", str(tiny_root), "--json", str(out_json)]) == 0
    capsys.readouterr()
    draws = {row[0]: dict(zip(t["columns"], row, strict=True)) for t in json.loads(out_json.read_text())
             if t["title"].startswith("KS draws") for row in t["rows"]}
    assert set(draws) == {"train", "valid", "test"}
    for split, row in draws.items():
        with TrajectoryFile(tiny_root / "ks-tiny" / f"{split}.h5") as tf:
            assert (row["n_traj"], row["n_frames"]) == (tf.n_traj, tf.n_frames)
            assert row["distinct seeds"] == len(set(tf.seeds().tolist())) == tf.n_traj
            dt = tf.parameters()["dt"]
            burn = yaml.safe_load(tf.attrs["generation_config"])["solver"]["burn_in_frames"]
        assert row["seeds in other splits"] == 0 and burn == 100  # tiny's own burn-in, not small's 360
        assert row["burn-in frames min"] == row["burn-in frames max"] == burn
        assert (row["dt min"], row["dt max"]) == (pytest.approx(dt.min()), pytest.approx(dt.max()))
        assert (row["burn-in t min"], row["burn-in t max"]) == (pytest.approx(burn * dt.min()),
                                                                pytest.approx(burn * dt.max()))


def test_no_data_is_one_sentence_saying_how_to_make_it(script: ModuleType, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert script.main(["--pde", "ks_visc", "--preset", "tiny", "--root", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"error: no split file in {tmp_path / 'ks_visc-tiny'}; generate it with `pdebench-generate pde=ks_visc "
        f"preset=tiny root={tmp_path}` or pass --generate\n")
    assert script.main(["--pde", "ks", "--preset", "small", "--root", str(tmp_path), "--shard", "1",
                        "--n-shards", "4"]) == 2
    assert capsys.readouterr().err == (
        f"error: no split file in {tmp_path / 'ks-small' / 'shards' / '1-of-4'}; generate it with "
        f"`pdebench-generate pde=ks preset=small root={tmp_path} shard=1 n_shards=4` or pass --generate\n")
    assert not any(tmp_path.iterdir())  # nothing was generated


def test_ks_band_shares_and_shift_correlations_on_known_states() -> None:
    """The two measures the KS tables are built on, on states whose answers are known by hand."""
    import numpy as np

    from data_gen.validation.ks import band_shares, max_shift_correlations, spatial_energy

    x = np.arange(64) / 64
    # energies 1/2 * amplitude^2 per sine: 0.5 (m = 3), 2 (m = 7), 0.125 (m = 20) and a constant that counts for none
    u = 0.7 + np.sin(2 * np.pi * 3 * x) + 2 * np.cos(2 * np.pi * 7 * x + 0.4) + 0.5 * np.sin(2 * np.pi * 20 * x)
    np.testing.assert_allclose(band_shares(u, (5, 12)), np.array([0.5, 2.0, 0.125]) / 2.625, atol=1e-12)
    assert band_shares(u[None, None], (4, 8)).shape == (1, 1, 3)
    # Modes on the band edges belong to the band they open, and the Nyquist mode (its own conjugate) counts once:
    # energies 0.5 (m = 1) | 0.18 (m = 5) + 0.32 (m = 11) | 0.72 (m = 12) + 0.25 (m = 32, amplitude 0.5)
    i = np.arange(64)
    edges_and_nyquist = (np.sin(2 * np.pi * x) + 0.6 * np.cos(2 * np.pi * 5 * x) + 0.8 * np.sin(2 * np.pi * 11 * x)
                         + 1.2 * np.sin(2 * np.pi * 12 * x + 0.3) + 0.5 * (-1.0) ** i)
    np.testing.assert_allclose(band_shares(edges_and_nyquist, (5, 12)), np.array([0.5, 0.5, 0.97]) / 1.97,
                               atol=1e-12)
    np.testing.assert_array_equal(band_shares(np.full((2, 64), 3.0), (5, 12)), np.zeros((2, 3)))
    assert spatial_energy(u) == pytest.approx(0.49 + 2.625, rel=1e-12)
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal(64), rng.standard_normal(64)
    states = np.stack([a, np.roll(a, 17), b])
    plain, shifted = max_shift_correlations(states, shifts=False), max_shift_correlations(states)
    assert shifted[0, 1] == pytest.approx(1.0, abs=1e-12) and plain[0, 1] < 0.5  # a shifted copy: 1 at its shift
    assert plain[0, 2] == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-12)
    assert abs(plain[0, 2]) <= shifted[0, 2] < 0.9 and np.allclose(np.diag(shifted), 1.0)


@pytest.mark.parametrize("record", ["[1, 2]", "generator: ks\n", "{{not yaml"])
def test_a_damaged_generation_record_is_one_sentence_naming_the_file(
        script: ModuleType, data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], record: str) -> None:
    """The validator rebuilds its generator from the file's `generation_config` attribute: anything but a mapping
    with a generator name and solver settings is refused naming the file and the attribute."""
    import shutil

    import h5py

    dataset = tmp_path / "ks-tiny"
    dataset.mkdir()
    shutil.copy(data_root / "ks-tiny" / "test.h5", dataset / "test.h5")
    with h5py.File(dataset / "test.h5", "r+") as f:
        f.attrs["generation_config"] = record
    assert script.main(["--pde", "ks", "--preset", "tiny", "--root", str(tmp_path), "--splits", "test"]) == 2
    assert capsys.readouterr().err == (
        f"error: {dataset / 'test.h5'}: root attribute 'generation_config' is missing or is not the YAML record of a "
        "generation (a mapping with 'generator' and 'solver'); was the file written by pdebench-generate?\n")
