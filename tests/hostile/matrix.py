"""The hostile-input matrix: damaged files, manifests, checkpoints and config abuses, each run through the commands
a user would run, each expected to stop with one sentence that names what is wrong.

Every case is one parametrised row `(damage, command, expected fragments)`. `run_command` runs a command the way
its console script does, but in-process through its library entry point (`generate`, `train`, `evaluate`,
`make_leaderboard`; `check` through the module's `main`), and returns the error message a user
would see. A command that succeeds, or fails with anything but a user error (a traceback), fails the test.

Commands: check (`python -m pdebench.data check`), generate, train, evaluate, leaderboard. Tests get a private copy
of the tiny KS dataset to damage from the `work` fixture (tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
from collections.abc import Callable
from pathlib import Path

import pytest
from compose import compose_config

from pdebench.cli.common import USER_ERRORS

COMMANDS = ("check", "generate", "train", "evaluate", "leaderboard")

# A run as small as training gets: a few batches of a tiny FNO.
TRAIN_OVERRIDES = ["data=ks", "data.preset=tiny", "trainer=debug", "trainer.enable_progress_bar=false",
                   "data.batch_size=8", "model.hidden_channels=8", "model.n_modes=[8]", "validation.rollout_steps=2"]


def dataset_dir(work: Path) -> Path:
    return work / "data" / "ks-tiny"


def _check(work: Path, overrides: list[str]) -> None:
    from pdebench.data.__main__ import main
    from pdebench.data.schema import DatasetError

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(["check", *overrides, *sorted(str(p) for p in dataset_dir(work).glob("*.h5"))])
    if status != 0:  # the checker's report, as the user error it stands for
        raise DatasetError(out.getvalue().strip())


def _generate(work: Path, overrides: list[str]) -> None:
    from data_gen.generate import generate

    generate(compose_config("generate", ["pde=ks", "preset=tiny", f"root={work / 'data'}", "batch_size=4",
                                         "device=cpu", *overrides]), progress=False)


def _train(work: Path, overrides: list[str]) -> None:
    from pdebench.training.run import train

    train(compose_config("train", [*TRAIN_OVERRIDES, f"data.root={work / 'data'}", f"run_dir={work / 'runs'}",
                                   *overrides]))


def _evaluate(work: Path, overrides: list[str]) -> None:
    from pdebench.rollout.evaluation import evaluate

    has_subject = any(o.startswith(("ckpt=", "model=")) for o in overrides)
    subject = [] if has_subject else ["model=persistence", "data=ks", "data.preset=tiny"]
    evaluate(compose_config("evaluate", [*subject, f"data.root={work / 'data'}", f"results_dir={work / 'results'}",
                                         "rollout.device=cpu", *overrides]), progress=False)


def _leaderboard(work: Path, overrides: list[str]) -> None:
    from pdebench.leaderboard import make_leaderboard

    make_leaderboard(compose_config("leaderboard", [f"results=[{work / 'results'}]", f"out_dir={work / 'board'}",
                                                    *overrides]))


RUNNERS: dict[str, Callable[[Path, list[str]], None]] = {
    "check": _check, "generate": _generate, "train": _train, "evaluate": _evaluate, "leaderboard": _leaderboard,
}


def run_command(command: str, work: Path, *overrides: str) -> str:
    """Run `command` in `work` with Hydra-style `overrides`; return its one-sentence error (the test fails if the
    command succeeds or raises anything but a user error)."""
    try:
        RUNNERS[command](work, list(overrides))
    except USER_ERRORS as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
        return str(message)
    raise AssertionError(f"{command} {' '.join(overrides)} succeeded; expected it to stop with an error")


def assert_one_sentence(message: str, *fragments: str) -> None:
    """The error names everything in `fragments` and is no stack trace."""
    assert "Traceback" not in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"


# A command that opened a FIFO or /dev/zero would block or read for ever, inside HDF5 or torch with the GIL held (a
# thread could not time out): such rows run the command in a forked child that is killed when it does not answer.
NO_ANSWER_TIMEOUT_S = 120


def _answer(connection, command: str, work: Path, overrides: tuple[str, ...]) -> None:  # runs in the child
    try:
        connection.send(("message", run_command(command, work, *overrides)))
    except BaseException as error:  # noqa: BLE001 - everything goes back to the parent, which fails the test
        connection.send(("error", f"{type(error).__name__}: {error}"))


def run_command_without_blocking(command: str, work: Path, *overrides: str) -> str:
    """`run_command` in a forked child; the test fails if it does not answer within `NO_ANSWER_TIMEOUT_S`."""
    context = multiprocessing.get_context("fork")
    parent, child = context.Pipe(duplex=False)
    process = context.Process(target=_answer, args=(child, command, work, overrides), daemon=True)
    process.start()
    try:
        if not parent.poll(NO_ANSWER_TIMEOUT_S):
            pytest.fail(f"{command} did not answer within {NO_ANSWER_TIMEOUT_S} s (blocked opening a FIFO?)")
        kind, text = parent.recv()
    finally:
        process.kill()
        process.join()
    if kind != "message":
        pytest.fail(text)
    return text
