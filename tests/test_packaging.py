"""A regular (non-editable) install carries the Hydra configs and runs `pdebench-generate` away from the checkout.

The project is copied to a temporary directory (a setuptools build writes `build/` and `*.egg-info` next to the
sources, which must not land in the checkout) and installed with `pip install --target`, without dependencies,
build isolation or an index, so the test is offline and takes seconds; the dependencies come from the running
environment. Everything then runs from another temporary directory with only the install on PYTHONPATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# What a build of the project reads: the metadata, the code packages and the config tree mapped to pdebench/conf.
SOURCES = ("pyproject.toml", "README.md", "pdebench", "data_gen", "baselines", "conf")
CODE_PACKAGES = ("pdebench", "data_gen", "baselines")
# A config group that exists only in the copy: proves that a new (nested) group ships without editing pyproject.
PROBE_CONFIG = Path("zz_packaging_probe") / "nested" / "probe.yaml"
TIMEOUT_S = 180


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command, failing the test with its output (not just its exit status) when it fails."""
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, f"{cmd} exited with {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project installed non-editable into a temporary `--target` directory, returned."""
    src = tmp_path_factory.mktemp("src")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in SOURCES:
        origin = REPO / name
        if origin.is_dir():
            shutil.copytree(origin, src / name, ignore=ignore)
        else:
            shutil.copy2(origin, src / name)
    probe = src / "conf" / PROBE_CONFIG
    probe.parent.mkdir(parents=True)
    probe.write_text("probe: true\n", encoding="utf-8")

    target = tmp_path_factory.mktemp("site")
    _run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
         "--no-deps", "--no-build-isolation", "--no-index", "--no-compile", "--target", str(target), str(src)],
        cwd=src,
    )
    return target


def _env_with(pythonpath: Path) -> dict[str, str]:
    """The current environment with only `pythonpath` on PYTHONPATH (nothing from the checkout)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH", "PYTHONHOME")}
    env["PYTHONPATH"] = str(pythonpath)
    env["MPLBACKEND"] = "Agg"
    env["HYDRA_FULL_ERROR"] = "1"
    return env


@pytest.mark.slow
@pytest.mark.subprocess
def test_install_holds_every_config_and_every_module(installed: Path) -> None:
    """Each YAML of conf/ (any depth, new groups too) is under pdebench/conf; each package's modules are installed."""
    configs = sorted(p.relative_to(REPO / "conf") for p in (REPO / "conf").rglob("*.yaml"))
    assert Path("hydra/launcher/slurm.yaml") in configs
    missing = [str(p) for p in [*configs, PROBE_CONFIG] if not (installed / "pdebench" / "conf" / p).is_file()]
    assert not missing, f"configs missing from the install: {missing}"

    modules = sorted(
        p.relative_to(REPO)
        for top in CODE_PACKAGES
        for p in (REPO / top).rglob("*.py")
        if "__pycache__" not in p.parts
    )
    missing = [str(p) for p in modules if not (installed / p).is_file()]
    assert not missing, (
        f"modules missing from the install: {missing}; add their package to [tool.setuptools] packages in "
        f"pyproject.toml"
    )
    assert (installed / "bin" / "pdebench-generate").is_file(), "console scripts were not installed"


@pytest.mark.slow
@pytest.mark.subprocess
def test_installed_generate_runs_from_another_directory(installed: Path, tmp_path: Path) -> None:
    """`python -m pdebench.cli.generate` finds its configs in the install and writes a dataset."""
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = _env_with(installed)

    probe = _run(
        [sys.executable, "-c",
         "import baselines, data_gen, pdebench; from pdebench.cli.common import CONFIG_DIR; "
         "print(pdebench.__file__); print(data_gen.__file__); print(baselines.__file__); print(CONFIG_DIR)"],
        cwd=workdir, env=env,
    )
    origins = [Path(line).resolve() for line in probe.stdout.split("\n") if line.strip()]
    assert len(origins) == 4, probe.stdout
    for origin in origins:
        assert origin.is_relative_to(installed.resolve()), f"{origin} is not from the install {installed}"
        assert not origin.is_relative_to(REPO), f"{origin} comes from the checkout"
    assert origins[-1] == (installed / "pdebench" / "conf").resolve()

    root = tmp_path / "data"
    _run(
        [sys.executable, "-m", "pdebench.cli.generate", "pde=ks", "preset=tiny", f"root={root}", "batch_size=4",
         "device=cpu"],
        cwd=workdir, env=env,
    )
    dataset = root / "ks-tiny"
    written = sorted(p.name for p in dataset.iterdir())
    for name in ("manifest.json", "test.h5", "train.h5", "valid.h5"):
        assert name in written, f"{name} not written; {dataset} holds {written}"
    assert not [n for n in written if n.endswith((".partial", ".tmp"))], written
