"""Labels, seeds and paths: rows of the hostile-input matrix (tests/hostile/matrix.py) for everything that turns into a
file name.

A label names a run folder, a result file and a leaderboard row; it comes from the command line, from a checkpoint's
run record and from result files. One rule holds for all of them (`pdebench.data.names`): a short name of letters,
digits, `.`, `_`, `-`, never a path, never the environment; a seed is a whole number in [0, 2**32 - 1] wherever it
comes from. Each row checks the one-sentence refusal and that nothing was written, inside the working directory or
where the hostile value pointed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from cli import run_main
from compose import compose_config
from matrix import assert_one_sentence, run_command, run_command_without_blocking
from test_config_and_checkpoints import snapshot

from pdebench.cli.common import check_command_line
from pdebench.data import names
from pdebench.data.names import UnsafeNameError, check_name, check_seed, inside, missing_or_kind, path_kind, shown
from pdebench.rollout.config import evaluate_config
from pdebench.training.config import train_config

NAME_RULE = "letters, digits, '.', '_' or '-'"
LONG = "a" * 300


VERIFIED_CACHE = ".manifest-verified.json"  # the dataset check's cache (a row may verify the data before refusing)


def outputs(work: Path) -> dict:
    return outputs_before(snapshot(work))


def outputs_before(before: dict) -> dict:
    return {path: stat for path, stat in before.items() if not path.endswith(VERIFIED_CACHE)}


def escape_target(tmp_path: Path) -> Path:
    """A folder outside the working directory (`work` is `tmp_path`) where an escaping path would land."""
    return tmp_path.parent / f"{tmp_path.name}-escaped"


# (overrides, command, fragments); `{escape}` is replaced by a path outside the working directory
LABEL_ROWS = [
    (["label=../../../../{escape}/x"], "evaluate", ("label=../../../../", NAME_RULE)),
    (["label={escape}/x"], "evaluate", ("label=/", "is not a name", NAME_RULE)),
    (["label=../.."], "train", ("label=../..", "is not a name")),
    (["label=.."], "evaluate", ("label=..", "is not a name")),
    (["label=.hidden"], "train", ("label=.hidden", "starting with a letter or digit")),
    ([f"label={LONG}"], "train", ("label=aaaa", "is 300 characters long", "1 to 64 characters")),
    ([f"label={LONG}"], "evaluate", ("is 300 characters long",)),
    (["label=a b"], "evaluate", ("label=a b", "is not a name")),
    (["model=solver", "data=ks", "data.preset=tiny", f"label={'s' * 60}"], "evaluate",
     ("with the solver setting", "characters long")),
    # the other names that become folders: <root>/<pde>-<preset>, runs/<pde>-<preset>/<label>
    (["data.preset=../../../{escape}"], "train", ("data.preset=../../../", "is not a name")),
    (["data.preset=../../../{escape}"], "evaluate", ("data.preset=../../../", "is not a name")),
    (["preset=../../{escape}"], "generate", ("preset=../../", "is not a name")),
    (["pde.name=../{escape}"], "generate", ("pde.name=../", "is not a name")),
    (["rollout.bootstrap_resamples=1000000000"], "evaluate",
     ("rollout.bootstrap_resamples=1000000000", "from 1 to 100,000")),
]


@pytest.mark.parametrize(("overrides", "command", "fragments"), LABEL_ROWS,
                         ids=[f"{c}[{' '.join(o)[:40]}]" for o, c, _ in LABEL_ROWS])
def test_a_label_is_a_name_not_a_path(work: Path, overrides: list[str], command: str,
                                      fragments: tuple[str, ...]) -> None:
    escape = escape_target(work)
    before = snapshot(work)
    message = run_command(command, work, *(o.replace("{escape}", str(escape)) for o in overrides))
    assert_one_sentence(message, *fragments)
    assert "\n" not in message and len(message) < 400, message
    assert outputs(work) == outputs_before(before), "the command wrote something before it refused its label"
    assert not escape.exists()


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["model=persistence", "data=ks", "label=${oc.env:HOME}"], ("label=${oc.env:HOME} reads the environment",)),
        (["model=persistence", "data=ks", "label=x${oc.env:PATH}"], ("label=x${oc.env:PATH} reads the environment",)),
        # an environment value that would pass as a name is refused all the same, directly or through a setting
        (["model=persistence", "data=ks", "label=${oc.env:PDEBENCH_SAFE_LOOKING}"], ("reads the environment",)),
        (["model=persistence", "data=ks", "results_dir=${oc.env:PDEBENCH_SAFE_LOOKING}", "label=${results_dir}"],
         ("label=${results_dir} reads the environment",)),
    ],
)
def test_a_label_never_reads_the_environment(monkeypatch: pytest.MonkeyPatch, argv: list[str],
                                             fragments: tuple[str, ...]) -> None:
    monkeypatch.setenv("PDEBENCH_SAFE_LOOKING", "fno")
    with pytest.raises(ValueError) as refused:
        check_command_line("evaluate", evaluate_config, argv)
    assert_one_sentence(str(refused.value), *fragments)
    assert os.environ["PATH"] not in str(refused.value)


@pytest.mark.parametrize("full_error", ["0", "1"], ids=["checked-before-hydra", "checked-in-the-job"])
def test_the_environment_label_is_refused_by_the_command(tmp_path: Path, full_error: str,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """As a user runs it (its console script's main, in-process): one line on stderr, exit 1, no result file
    anywhere (HOME points into the test folder); with HYDRA_FULL_ERROR=1 the command-line check is skipped and the
    job's own check refuses it."""
    home = tmp_path / "home"
    proc = run_main("evaluate", "model=persistence", "data=ks", "data.preset=tiny", "label=${oc.env:HOME}",
                    cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys,
                    env={"HOME": str(home), "HYDRA_FULL_ERROR": full_error})
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: label=${oc.env:HOME} reads the environment; a label becomes part of file names and result files, "
        "so write the name itself (letters, digits, '.', '_', '-')"]
    assert not list(tmp_path.rglob("*.json")) and not Path(f"{home}-seed0.json").exists()


def test_train_refuses_the_environment_in_its_label() -> None:
    with pytest.raises(ValueError, match=r"label=\$\{oc.env:USER\} reads the environment"):
        check_command_line("train", train_config, ["data=ks", "label=${oc.env:USER}"])
    check_command_line("train", train_config, ["data=ks", "label=fno-wide"])  # a literal name passes


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints whose run record was rewritten (saved again with torch.save: still a weights-only checkpoint)


def rewritten(checkpoint: Path, out: Path, **run: object) -> Path:
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    state["hyper_parameters"]["run"].update(run)
    torch.save(state, out)
    return out


@pytest.mark.slow
@pytest.mark.parametrize(
    ("run", "fragments"),
    [
        ({"label": "../../../../../{escape}/x"}, ("label='../../../../../", "from the run record of checkpoint",
                                                  NAME_RULE)),
        ({"label": "/{escape}"}, ("label='/", "is not a name")),
        ({"label": "x" * 5000}, ("is 5000 characters long", "(5002 characters)")),
        ({"label": ["fno"]}, ("label=['fno']", "is not a name (list)")),
        ({"seed": "0/../../../x"}, ("seed='0/../../../x'", "is not a valid seed")),
        ({"seed": -5}, ("seed=-5", "from the run record of checkpoint", "is not a valid seed")),
        ({"seed": 2**40}, ("seed=1099511627776", "is not a valid seed")),
    ],
    ids=["relative-label", "absolute-label", "long-label", "list-label", "path-seed", "negative-seed", "huge-seed"],
)
def test_a_checkpoints_run_record_is_untrusted(work: Path, trained_checkpoint: Path, run: dict,
                                               fragments: tuple[str, ...]) -> None:
    escape = escape_target(work)
    run = {k: v.replace("{escape}", str(escape).lstrip("/")) if isinstance(v, str) else v for k, v in run.items()}
    ckpt = rewritten(trained_checkpoint, work / "hostile.ckpt", **run)
    before = snapshot(work)
    message = run_command("evaluate", work, f"ckpt={ckpt}")
    assert_one_sentence(message, *fragments, str(ckpt))
    assert len(message) < 500, message
    assert snapshot(work) == before and not escape.exists()


@pytest.mark.slow
def test_a_checkpoints_dataset_names_are_checked(work: Path, trained_checkpoint: Path) -> None:
    state = torch.load(trained_checkpoint, map_location="cpu", weights_only=True)
    state["hyper_parameters"]["data_info"]["preset"] = "../../tiny"
    torch.save(state, work / "hostile.ckpt")
    assert_one_sentence(run_command("evaluate", work, f"ckpt={work / 'hostile.ckpt'}"),
                        "data.preset='../../tiny'", "is not a name")


# ---------------------------------------------------------------------------------------------------------------
# Checkpoint paths that are not files


def _fifo(work: Path) -> Path:
    os.mkfifo(work / "pipe.ckpt")
    return work / "pipe.ckpt"


def _device(work: Path) -> Path:
    (work / "zero.ckpt").symlink_to("/dev/zero")
    return work / "zero.ckpt"


def _loop(work: Path) -> Path:
    (work / "a.ckpt").symlink_to(work / "b.ckpt")
    (work / "b.ckpt").symlink_to(work / "a.ckpt")
    return work / "a.ckpt"


@pytest.mark.parametrize(("make", "kind"), [(_fifo, "is a named pipe (FIFO), not a regular file"),
                                            (_device, "is a character device, not a regular file"),
                                            (_loop, "is a symbolic link loop, not a regular file")],
                         ids=["fifo", "dev-zero", "symlink-loop"])
def test_a_checkpoint_that_is_no_file_says_what_it_is(work: Path, make, kind: str) -> None:
    ckpt = make(work)
    assert_one_sentence(run_command_without_blocking("evaluate", work, f"ckpt={ckpt}"), f"checkpoint {ckpt} {kind}")


# ---------------------------------------------------------------------------------------------------------------
# The rules themselves


def test_inside_refuses_every_way_out(tmp_path: Path) -> None:
    root = tmp_path / "results"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    assert inside(root, "ks-tiny", "fno-seed0.json") == root / "ks-tiny" / "fno-seed0.json"
    for parts in (("..", "x.json"), ("/tmp/x.json",), ("ks", "..", "..", "x"), ("link", "x.json")):
        with pytest.raises(UnsafeNameError, match="outside"):
            inside(root, *parts)


@pytest.mark.parametrize("good", ["fno", "unet-difference", "solver-n48-dt0.5x", "a" * 64, "0", "A_b.c-1"])
def test_names_the_suite_makes_are_names(good: str) -> None:
    assert check_name(good) == good


@pytest.mark.parametrize("bad", ["", ".", "..", "-x", "_x", "a" * 65, "a/b", "a\\b", "a\nb", "é", "a:b", None, 3])
def test_everything_else_is_refused(bad: object) -> None:
    with pytest.raises(UnsafeNameError, match="label="):
        check_name(bad, "label", "a test")


@pytest.mark.parametrize("bad", [-1, 2**32, True, 1.0, "0", None])
def test_seeds_are_whole_numbers_in_range(bad: object) -> None:
    assert check_seed(0) == 0 and check_seed(2**32 - 1) == 2**32 - 1
    with pytest.raises(UnsafeNameError, match="is not a valid seed"):
        check_seed(bad, "seed", "a test")


def test_a_missing_path_is_still_called_missing(tmp_path: Path) -> None:
    missing = tmp_path / "none.ckpt"
    assert missing_or_kind(missing, "checkpoint") == f"checkpoint {missing} does not exist"
    (tmp_path / "dangling").symlink_to(tmp_path / "none")
    assert "a broken symbolic link" in missing_or_kind(tmp_path / "dangling", "checkpoint")


def test_a_refusal_is_the_whole_sentence_with_its_defaults() -> None:
    """The defaults say what was refused and where it came from: a label and a seed from the command line."""
    with pytest.raises(UnsafeNameError) as refused:
        check_name("../x")
    assert str(refused.value) == ("label='../x' (from the command line) is not a name: expected 1 to 64 characters of "
                                  "letters, digits, '.', '_' or '-', starting with a letter or digit")
    with pytest.raises(UnsafeNameError) as refused:
        check_seed(-1)
    assert str(refused.value) == ("seed=-1 (from the command line) is not a valid seed: expected a whole number from 0 "
                                  "to 4294967295")


def test_a_quoted_value_is_cut_after_80_characters() -> None:
    """A repr of exactly 80 characters is quoted whole; one character more is cut to 80 and its length is given."""
    whole, cut = "a" * 78, "a" * 79  # reprs of 80 and 81 characters
    assert shown(whole) == repr(whole)
    assert shown(cut) == repr(cut)[:80] + "... (81 characters)"


def test_inside_names_the_path_where_it_resolves_and_the_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    Path("results").mkdir()
    with pytest.raises(UnsafeNameError) as refused:
        inside("results", "..", "x.json")
    assert str(refused.value) == (f"'results/../x.json' resolves to {shown(str(tmp_path / 'x.json'))}, outside "
                                  "'results'; the suite writes only inside its folders")


def _unix_socket(tmp_path: Path) -> Path:
    import socket

    path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))  # the node stays after the socket is closed
    server.close()
    return path


def _fifo_at(tmp_path: Path) -> Path:
    os.mkfifo(tmp_path / "pipe")
    return tmp_path / "pipe"


def _loop_at(tmp_path: Path) -> Path:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    return tmp_path / "a"


def _dangling(tmp_path: Path) -> Path:
    (tmp_path / "dangling").symlink_to(tmp_path / "none")
    return tmp_path / "dangling"


@pytest.mark.parametrize(("make", "kind"), [
    (_fifo_at, "a named pipe (FIFO)"),
    (lambda tmp: Path("/dev/null"), "a character device"),
    (_unix_socket, "a socket"),
    (_loop_at, "a symbolic link loop"),
    (_dangling, "a broken symbolic link"),
    (lambda tmp: tmp, None),
    (lambda tmp: tmp / "missing", None),
], ids=["fifo", "char-device", "socket", "loop", "dangling", "directory", "missing"])
def test_path_kind_says_what_a_path_is(tmp_path: Path, make, kind: str | None) -> None:
    (tmp_path / "file").write_text("x")
    assert path_kind(tmp_path / "file") is None
    assert path_kind(make(tmp_path)) == kind


@pytest.mark.parametrize(("mode", "kind"), [(0o060600, "a block device"), (0o000600, "not a regular file")],
                         ids=["block-device", "unknown-type"])
def test_path_kind_of_kinds_a_test_cannot_make(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mode: int,
                                               kind: str) -> None:
    """A block device needs privileges to create, and no file has type bits that are none of the known ones: the
    mode `os.stat` reports is stood in for."""
    monkeypatch.setattr(names.os, "stat", lambda path: os.stat_result((mode, 0, 0, 1, 0, 0, 0, 0, 0, 0)))
    assert path_kind(tmp_path / "x") == kind


def test_an_unreadable_path_gives_the_systems_reason(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def refuse(path: object) -> os.stat_result:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(names.os, "stat", refuse)
    assert path_kind(tmp_path / "x") == "unreadable (Permission denied)"


def test_missing_or_kind_names_what_was_wanted_and_what_is_there(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    pipe, file = _fifo_at(tmp_path), tmp_path / "file"
    assert missing_or_kind(pipe, "checkpoint") == f"checkpoint {pipe} is a named pipe (FIFO), not a regular file"
    assert missing_or_kind(pipe, "folder", directory=True) == f"folder {pipe} is a named pipe (FIFO), not a directory"
    assert missing_or_kind(file, "folder", directory=True) == f"folder {file} is a regular file, not a directory"
    assert missing_or_kind(tmp_path, "checkpoint") == f"checkpoint {tmp_path} is a directory, not a file"
    assert missing_or_kind(file, "checkpoint") == f"checkpoint {file} does not exist"  # a file wanted is no case for it


@pytest.mark.slow  # composes every experiment preset
def test_every_shipped_label_is_a_name() -> None:
    """The rule refuses only abuse: the default labels of every experiment the repository ships pass it."""
    experiments = sorted(p.stem for p in (Path(__file__).parents[2] / "conf" / "experiment").glob("*.yaml"))
    assert experiments
    for experiment in experiments:
        cfg = compose_config("train", [f"experiment={experiment}"])
        assert check_name(cfg["label"]) == cfg["label"]


# ---------------------------------------------------------------------------------------------------------------
# Evaluate on a full disk


def test_evaluate_on_a_full_disk_keeps_the_old_result_and_says_so_in_one_sentence(work: Path) -> None:
    from disk import fill_disk, small_disk

    with small_disk(work / "results", "1m") as disk:
        from pdebench.rollout.evaluation import evaluate

        args = ["model=persistence", "data=ks", "data.preset=tiny", f"data.root={work / 'data'}",
                f"results_dir={disk}", "rollout.device=cpu"]
        first = evaluate(compose_config("evaluate", args), progress=False)
        before = first.path.read_bytes()
        fill_disk(disk, leave=0)
        message = run_command("evaluate", work, f"results_dir={disk}")
        assert_one_sentence(message, f"result file {first.path} could not be written", "No space left on device",
                            "the previous result there is kept")
        assert "\n" not in message
        assert first.path.read_bytes() == before
        assert sorted(p.name for p in first.path.parent.iterdir()) == [first.path.name]  # no temporary left behind
