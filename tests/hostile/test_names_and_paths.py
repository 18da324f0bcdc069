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
from pdebench.data.names import UnsafeNameError, check_name, check_seed, inside, missing_or_kind
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
