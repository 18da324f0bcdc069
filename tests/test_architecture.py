"""The structure holds: import layers (import-linter), commands whose `--help` imports no model, user errors told
from bugs.

The layers themselves are written once, as import-linter contracts in pyproject.toml, and `make test` runs
`lint-imports`. Here a copy of the source tree with one planted backward import shows that the contracts refuse
it (a contract that passes everything would pass the real tree too), and the start-up and error-reporting promises
of the commands are checked as a user meets them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("pdebench", "baselines", "data_gen")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
ZOO = ("baselines", "data_gen", "torch_geometric", "torch_harmonics", "neuralop")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on the packages under `root`, with `root`'s pyproject.toml (no cache: each tree is new)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture
def source_copy(tmp_path: Path) -> Path:
    """The three packages and pyproject.toml, copied so that a test may plant an import in them."""
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def plant(root: Path, module: str, line: str) -> None:
    path = root / (module.replace(".", "/") + ".py")
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")


@pytest.mark.slow
@pytest.mark.subprocess
def test_the_source_tree_keeps_its_layers() -> None:
    proc = lint_imports(REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout or "broken" not in proc.stdout.split("Contracts:")[-1], proc.stdout


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize(("module", "line", "refusal"), [
    # the data layer reaching up to the commands (the hint that once imported pdebench.cli.common)
    ("pdebench.data.reader", "import pdebench.cli.common", "pdebench.data is not allowed to import pdebench.cli"),
    # a model reaching into training
    ("baselines.fno", "import pdebench.training.module", "baselines is not allowed to import pdebench.training"),
    # the config schemas importing the zoo to fill Hydra's ConfigStore, as they once did
    ("pdebench.config.schemas", "import baselines", "pdebench.config is not allowed to import baselines"),
    # the leaderboard importing a torch model library, even through a module of its own layer
    ("pdebench.leaderboard.render", "import torch_geometric", "pdebench.leaderboard is not allowed to import "
                                                              "torch_geometric"),
])
def test_a_backward_import_breaks_a_contract(source_copy: Path, module: str, line: str, refusal: str) -> None:
    plant(source_copy, module, line)
    proc = lint_imports(source_copy)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert refusal in " ".join(proc.stdout.split()), proc.stdout


def imported_by(command: str, *args: str) -> set[str]:
    """The top-level packages of `ZOO` that `pdebench-<command> args...` imports before it exits."""
    script = textwrap.dedent(f"""
        import runpy, sys
        sys.argv = ["pdebench-{command}", *{list(args)!r}]
        try:
            runpy.run_module("pdebench.cli.{command}", run_name="__main__")
        except SystemExit:
            pass
        print("imported:" + ",".join(sorted({{name.split(".")[0] for name in sys.modules}} & set({ZOO!r}))))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=REPO,
                          env={**os.environ, "MPLBACKEND": "Agg", "HYDRA_FULL_ERROR": "0"})
    assert "imported:" in proc.stdout, proc.stderr
    return set(filter(None, proc.stdout.rpartition("imported:")[2].strip().split(",")))


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize("command", ["leaderboard", "evaluate", "train", "generate"])
def test_help_imports_no_model_or_solver(command: str) -> None:
    assert imported_by(command, "--help") == set()


@pytest.mark.slow
@pytest.mark.subprocess
def test_help_shows_the_composed_model_settings() -> None:
    # help composes against untyped stand-ins of the model schemas: every setting of the model still shows
    proc = subprocess.run([str(LINT_IMPORTS.parent / "pdebench-train"), "--help", "model=unet"], capture_output=True,
                          text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    model = proc.stdout.split("model:\n", 1)[1]
    for setting in ("name: unet", "hidden_channels:", "channel_multipliers:", "norm_groups:", "mid_attention:"):
        assert setting in model, proc.stdout


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_command_that_runs_imports_the_models_it_needs(tmp_path: Path) -> None:
    # the same probe sees the zoo once the command composes a model to run (here it stops at the missing dataset)
    assert {"baselines", "neuralop"} <= imported_by("train", "data.preset=tiny", f"data.root={tmp_path}",
                                                    f"run_dir={tmp_path / 'run'}")


def run_leaderboard_with(error: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`pdebench-leaderboard` in `tmp_path` with `make_leaderboard` replaced by one that raises `error`."""
    script = textwrap.dedent(f"""
        import sys
        import pdebench.leaderboard
        from pdebench.errors import InvalidSetting

        def planted(cfg):
            raise {error}

        pdebench.leaderboard.make_leaderboard = planted
        from pdebench.cli.leaderboard import main
        sys.argv = ["pdebench-leaderboard"]
        main()
    """)
    env = {**os.environ, "MPLBACKEND": "Agg", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env=env)


@pytest.mark.slow
@pytest.mark.subprocess
def test_an_internal_error_keeps_its_traceback(tmp_path: Path) -> None:
    # a bug that happens to raise ValueError, KeyError or FileNotFoundError is not a user's mistake
    proc = run_leaderboard_with('KeyError("planted")', tmp_path)
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "in planted" in proc.stderr, proc.stderr
    assert "KeyError: 'planted'" in proc.stderr
    assert "error: planted" not in proc.stderr


def test_a_user_error_is_one_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    # the console script's main in-process (the interpreter start adds nothing to a one-line check)
    from cli import run_main

    from pdebench.cli import leaderboard
    from pdebench.errors import InvalidSetting

    def planted(cfg: object) -> None:
        raise InvalidSetting("results=x is not valid: planted")

    monkeypatch.setattr(leaderboard, "make_leaderboard", planted)
    proc = run_main("leaderboard", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: results=x is not valid: planted", proc.stderr
