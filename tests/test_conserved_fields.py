"""Which fields a PDE's invariant belongs to: the shipped facts name them, the evaluator checks them against the
dataset and averages the conservation drift over them only; a manifest written before the key existed still works."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from data_gen.registry import generator_entry
from pdebench.cli.common import CONFIG_DIR
from pdebench.config import BenchmarkConfig, ConfigError, load_config
from pdebench.data.schema import DatasetError
from pdebench.errors import InvalidSetting
from pdebench.rollout.scoring import ConservedFieldsWarning, conserved_channels

PDES = sorted(p.stem for p in (Path(CONFIG_DIR) / "pde").glob("*.yaml"))
EXPECTED = {"ks": ["u"], "ks_visc": ["u"], "kolmogorov": ["vorticity"], "swe": ["height"], "smoke": None,
            "smoke_midpoint": None, "smoke_buoyancy": None}


@pytest.mark.parametrize("pde", PDES)
def test_every_shipped_invariant_names_fields_its_generator_writes(compose_cfg, pde: str) -> None:
    cfg = compose_cfg("generate", [f"pde={pde}", "preset=tiny"])["pde"]
    bench = load_config(cfg["benchmark"], BenchmarkConfig)
    assert bench.conserved_fields == EXPECTED[pde]
    assert (bench.conserved is None) == (bench.conserved_fields is None)
    written = [f.name for f in generator_entry(cfg["generator"]).generator.fields]
    assert set(bench.conserved_fields or []) <= set(written)


@pytest.mark.parametrize(("facts", "problem"), [
    ({"conserved_fields": ["height"]}, "conserved_fields=[height] is not valid: it names the fields of an invariant, "
                                       "but conserved is null"),
    ({"conserved": "mass", "conserved_fields": []}, "conserved_fields=[] is not valid: expected a non-empty list"),
    ({"conserved": "mass", "conserved_fields": ["u", "u"]}, "conserved_fields=[u,u] is not valid: expected a "
                                                            "non-empty list of distinct field names"),
])
def test_conserved_fields_that_cannot_be_meant_are_refused_by_name(facts: dict, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        load_config({"frame_stride": 1, **facts}, BenchmarkConfig)


def test_the_drift_channels_are_the_named_fields_in_the_files_order(tmp_path: Path) -> None:
    manifest = tmp_path / "swe-tiny" / "manifest.json"
    fields = ("height", "u", "v")
    assert conserved_channels(fields, "mass", ["height"], manifest) == (0,)
    assert conserved_channels(fields, "mass", ["v", "height"], manifest) == (2, 0)
    assert conserved_channels(fields, None, None, manifest) is None
    with pytest.raises(DatasetError) as info:
        conserved_channels(fields, "mass", ["h"], manifest)
    assert str(info.value) == (f"{manifest}: benchmark.conserved_fields names ['h'], which the dataset lacks (its "
                               f"fields: height, u, v)")


def test_a_manifest_without_the_key_averages_every_field_and_says_how_to_record_it(tmp_path: Path) -> None:
    manifest = tmp_path / "swe-tiny" / "manifest.json"
    with pytest.warns(ConservedFieldsWarning) as caught:
        assert conserved_channels(("height", "u", "v"), "mass", None, manifest) is None
    message = str(caught[0].message)
    assert "averages every field (height, u, v)" in message
    assert "rerun `pdebench-generate pde=swe preset=tiny` to rewrite the manifest" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one field: nothing else it could mean
        assert conserved_channels(("u",), "mean", None, manifest) is None


def test_generation_refuses_a_conserved_field_its_generator_does_not_write(compose_cfg, tmp_path: Path) -> None:
    """A typo in `conserved_fields` fails before any data is generated, naming the fields the generator writes."""
    from data_gen.config import generate_config
    from data_gen.plan import plan_dataset

    cfg = generate_config(compose_cfg("generate", ["pde=swe", "preset=tiny", "pde.benchmark.conserved_fields=[h]",
                                                   f"root={tmp_path}"]))
    with pytest.raises(InvalidSetting, match=r"conserved_fields=\['h'\] for pde swe names h, which the swe generator "
                                             r"does not write \(its fields: height, u, v\)"):
        plan_dataset(cfg.pde, "tiny", tmp_path, 0)
    assert not any(tmp_path.iterdir())
