"""Running the console scripts the way a user does: the installed script in a fresh interpreter (`run_cli`), or the
`main` it calls, in this process (`run_main`).

A fresh interpreter costs an interpreter start and every import of the command (seconds each, many times that on a
busy machine), so a test that only reads what a command prints and its exit status runs it in-process; each console
script keeps one test through its installed entry point (tests/test_cli_errors.py), which is what proves the wiring
pip writes.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # the test extra installs tomli on 3.10
    import tomli as tomllib

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]
# A tiny FNO and a few training batches: enough to exercise every stage of the pipeline.
TINY_TRAIN = [
    "data.preset=tiny",
    "trainer=debug",
    "trainer.enable_progress_bar=false",
    "data.batch_size=8",
    "model.hidden_channels=16",
    "model.n_modes=[16]",
    "validation.rollout_steps=4",
]


def run_cli(command: str, *args: str, cwd: Path, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `pdebench-<command> args...` in `cwd` (with `env` added to the environment); with `check`, fail the test
    showing its output."""
    env = {**os.environ, "MPLBACKEND": "Agg", "HYDRA_FULL_ERROR": "0", **(env or {})}
    proc = subprocess.run([str(BIN / f"pdebench-{command}"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"pdebench-{command} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def console_scripts() -> dict[str, str]:
    """The project's console scripts, `{"pdebench-train": "pdebench.cli.train:main", ...}`, as pyproject.toml's
    `[project.scripts]` declares them (what `make setup` installs; it installs again when pyproject.toml changes).
    Read from the source tree, not from installed metadata, which a stale `pdebench.egg-info` beside the sources
    would shadow."""
    with open(REPO / "pyproject.toml", "rb") as fh:
        return dict(tomllib.load(fh)["project"]["scripts"])


def script_main(command: str) -> Callable[[], object]:
    """The function the console script `pdebench-<command>` calls."""
    module, _, name = console_scripts()[f"pdebench-{command}"].partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Finished:
    """What a command run in-process left: the status its console script would exit with, and what it printed
    (named as `subprocess.CompletedProcess` names them, so a test reads either alike)."""

    returncode: int
    stdout: str
    stderr: str


def exit_status(code: object) -> int:
    """The process exit status of `sys.exit(code)`: 0 for None, the number itself, 1 for anything else (a message)."""
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def run_main(command: str, *args: str, cwd: Path, monkeypatch: pytest.MonkeyPatch,
             capsys: pytest.CaptureFixture[str], env: dict[str, str] | None = None) -> Finished:
    """`pdebench-<command> args...` in this process, as its console script runs it (`sys.exit(main())`, Hydra and
    argparse reading `sys.argv`), in `cwd` with `env` added to the environment, as `run_cli` sets it; all three
    restored by `monkeypatch` when the test ends. Only what this command prints is returned."""
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", [f"pdebench-{command}", *args])
    for name, value in {"MPLBACKEND": "Agg", "HYDRA_FULL_ERROR": "0", **(env or {})}.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()  # what the test printed before is not this command's
    try:
        status = exit_status(script_main(command)())
    except SystemExit as stop:
        status = exit_status(stop.code)
        if stop.code is not None and not isinstance(stop.code, int):
            print(stop.code, file=sys.stderr)  # as the interpreter prints the message of sys.exit("message")
    out, err = capsys.readouterr()
    return Finished(status, out, err)
