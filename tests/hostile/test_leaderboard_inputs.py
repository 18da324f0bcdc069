"""Hostile result files against the leaderboard (issue 17, round two), one row per case.

* **Skipped rows**: a results folder holds one good result file and one hostile `bad.json`. The leaderboard must be
  built from the good one and skip the bad one with one :class:`SkippedResultWarning` naming the file and what is
  wrong (a name that breaks the name rule, a value outside its metric's range, a wrongly typed field, JSON nested
  200,000 deep, a 5,000-digit integer), never stop with a traceback or rank the bad file.
* **Rendered rows**: text a result file may legally carry (an objective's name, a sample's field name, a spectrum's
  unit) is shown literally: no Markdown/HTML markup, no spreadsheet formula, no matplotlib mathtext.
* **Library rows**: `write_leaderboard` takes result dicts that no file check has seen, so every Markdown text cell
  is escaped and every CSV text cell neutralised there too.
* **Output rows**: the board is replaced as a whole: a SIGKILL while plotting or a full disk leaves the previous
  board byte for byte, files the board did not write stay, a symlink planted in `out_dir` is never followed.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from compose import compose_config
from disk import fill_disk, small_disk
from matrix import assert_one_sentence, run_command
from test_leaderboard import KS_FACTS, _plain, _result

from pdebench.leaderboard import (
    Leaderboard,
    SkippedResultWarning,
    build_tables,
    load_results,
    make_leaderboard,
    write_leaderboard,
)
from pdebench.rollout.results import RESULT_FORMAT, RESULT_FORMAT_VERSION

REPO = Path(__file__).resolve().parents[2]
MARKUP = "<img src=x onerror=alert(1)>"
MATHTEXT = "$\\foo{$"


# --- result files -------------------------------------------------------------------------------------------------
def result_file(label: str = "cnn", **changes) -> dict:
    """A valid result file's content (as `pdebench-evaluate` writes it) with top-level fields replaced."""
    data = {"format": RESULT_FORMAT, "format_version": RESULT_FORMAT_VERSION, **_plain(_result(label, 0, 10.0, 0.5))}
    data.update(changes)
    return data


def changed(part: str, **values) -> dict:
    """A valid result file with keys of its `summary`, `curves`, `intervals`, ... replaced."""
    data = result_file()
    data[part] = {**data[part], **values}
    return data


def raw_field(key: str, raw: str) -> str:
    """The text of a valid result file whose field `key` is the raw JSON `raw` (what json.dumps cannot write)."""
    data = result_file()
    data.pop(key, None)
    return json.dumps(data)[:-1] + f', "{key}": {raw}}}'


def sample(**changes) -> dict:
    truth = [[0.0, 1.0, 0.5], [0.2, 0.9, 0.4]]
    return {"trajectory": 0, "field": "u", "time": [0.8, 1.6], "true": truth, "pred": truth, **changes}


def spectra(**changes) -> dict:
    true = [[[1.0, 0.5, 0.25, 0.1]], [[1.0, 0.4, 0.2, 0.05]]]  # [steps, channels, shells]
    return {"steps": [1, 3], "shell": [0, 1, 2, 3], "shell_unit": "mode number |m|", "band_edges": [1, 2],
            "pred": true, "true": true, **changes}


def objective(name: str) -> dict:
    return {**_result("x", 0, 1.0, 0.1)["objective"], "name": name}


def solver_row(**changes) -> dict:
    fields = {"model": "solver", "checkpoint_sha256": None, "n_parameters": 0, "train_time_s": None,
              "solver_setting": {"resolution": None, "time_step_factor": 1.0}, **changes}
    return result_file("solver", **fields)


# --- running the leaderboard --------------------------------------------------------------------------------------
def leaderboard_cfg(work: Path) -> dict:
    return compose_config("leaderboard", [f"results=[{work / 'results'}]", f"out_dir={work / 'board'}", "print=false"])


def write_results(work: Path, files: dict[str, str | dict]) -> None:
    results = work / "results"
    results.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (results / name).write_text(content if isinstance(content, str) else json.dumps(content))


def build(work: Path, files: dict[str, str | dict]) -> tuple[Leaderboard, list[str]]:
    """Write `files` (and one good result, `good.json`) into work/results and build the board into work/board;
    return it and the messages of the files it skipped."""
    write_results(work, {"good.json": result_file("fno"), **files})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        board = make_leaderboard(leaderboard_cfg(work), progress=False)
    return board, [str(w.message) for w in caught if issubclass(w.category, SkippedResultWarning)]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (relative name -> bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- skipped rows -------------------------------------------------------------------------------------------------
DEEP = 200_000
SKIPPED = [
    # names: one rule (pdebench.data.names) for the label, model, dataset, pde and seed of a result file
    pytest.param(result_file(MARKUP), (f"label={MARKUP!r}", "is not a name"), id="label-html"),
    pytest.param(result_file(model="<script>alert(1)</script>"), ("model='<script>alert(1)</script>'",),
                 id="model-script"),
    pytest.param(result_file("cnn\n# injected"), ("label='cnn\\n# injected'", "is not a name"), id="label-newline"),
    pytest.param(result_file(MATHTEXT), ("label='$\\\\foo{$'", "is not a name"), id="label-mathtext"),
    pytest.param(result_file("../../x"), ("label='../../x'", "is not a name"), id="label-path"),
    pytest.param(result_file(dataset="../../evil"), ("dataset='../../evil'", "is not a name"), id="dataset-path"),
    pytest.param(result_file(pde="<b>ks</b>"), ("pde='<b>ks</b>'", "is not a name"), id="pde-markup"),
    pytest.param(result_file(seed=-1), ("seed=-1", "is not a valid seed"), id="seed-negative"),
    pytest.param(result_file(seed=2**32), ("seed=4294967296", "is not a valid seed"), id="seed-too-large"),
    pytest.param(result_file(seed="0"), ("seed='0'", "is not a valid seed"), id="seed-text"),
    pytest.param(result_file(seed=True), ("seed=True", "is not a valid seed"), id="seed-bool"),
    pytest.param(result_file(seed=0.5), ("seed=0.5", "is not a valid seed"), id="seed-float"),
    # what Python's json module cannot read
    pytest.param(raw_field("config", "[" * DEEP + "]" * DEEP), ("nested more than", "levels deep"),
                 id="json-200000-deep"),
    pytest.param(raw_field("n_parameters", "9" * 5000), ("an integer of more than 4300 digits",),
                 id="integer-5000-digits"),
    pytest.param(raw_field("n_parameters", "9" * 400), ("'n_parameters'", "too large for a float"),
                 id="integer-beyond-float"),
    # values outside what their metric allows
    pytest.param(changed("summary", **{"time_ceiling": 8.43, "corr_time_0.8": 1e308}),
                 ("summary 'corr_time_0.8' = 1e+308", "allowed range [0, 8.43]", "'time_ceiling'"),
                 id="corr-time-above-its-ceiling"),
    pytest.param(changed("summary", one_step_nrmse=-0.5), ("summary 'one_step_nrmse' = -0.5", "[0, inf)"),
                 id="negative-error"),
    pytest.param(changed("summary", stable_fraction=1.5), ("summary 'stable_fraction' = 1.5", "[0, 1]"),
                 id="fraction-above-one"),
    pytest.param(changed("curves", corr=[3.0] * 50), ("curves 'corr'", "3.0", "[-1, 1]"), id="correlation-above-one"),
    pytest.param(changed("intervals", **{"corr_time_0.8": [12.0, 9.0]}), ("intervals 'corr_time_0.8'", "low end"),
                 id="interval-reversed"),
    pytest.param(solver_row(throughput_traj_steps_per_s=0), ("'throughput_traj_steps_per_s' = 0", "(0, inf)"),
                 id="solver-throughput-zero"),
    # wrongly typed fields
    pytest.param(changed("summary", nrmse_gmean_steps=[25]), ("summary 'nrmse_gmean_steps'", "not a number"),
                 id="summary-value-a-list"),
    pytest.param(result_file(curves={"step": [1], "time": "soon", "corr": {"a": 1}}), ("curves 'time'",),
                 id="curves-wrongly-typed"),
    pytest.param(result_file(sample=sample(true="x", pred="y")), ("sample 'true'",), id="sample-wrongly-typed"),
    pytest.param(result_file(sample=sample(true=[[1.0, 2.0], [3.0]])), ("sample 'true'",), id="sample-ragged"),
    pytest.param(result_file(sample=sample(time=[0.8])), ("sample 'time'",), id="sample-time-too-short"),
    pytest.param(result_file(sample=sample(axes=[{"name": "x", "units": "m", "values": [0.0, 0.5]}])),
                 ("sample 'axes'[0] 'values' of 2 numbers for an axis of 3 points",), id="sample-axes-too-short"),
    pytest.param(result_file(sample=sample(axes=[{"name": "x", "units": "m", "values": [0.0, 0.5, 1.0]}] * 2)),
                 ("sample 'axes'", "not a list of 1 axis records"), id="sample-axes-too-many"),
    pytest.param(result_file(intervals=[1, 2]), ("'intervals'", "not a JSON object"), id="intervals-a-list"),
    pytest.param(result_file(spectra=spectra(steps=["a"])), ("spectra 'steps'",), id="spectra-wrongly-typed"),
    pytest.param(result_file(objective="onestep"), ("'objective'", "not a JSON object"), id="objective-a-string"),
    pytest.param(result_file(benchmark={**KS_FACTS, "headline": "<img src=x>"}), ("benchmark.headline=",),
                 id="headline-markup"),
    pytest.param(result_file(benchmark={**KS_FACTS, "headline_goal": "sideways"}), ("headline_goal", "'sideways'"),
                 id="headline-goal-unknown"),
    pytest.param(result_file(manifest_sha256="../../etc"), ("'manifest_sha256'", "hexadecimal"),
                 id="manifest-not-a-hash"),
    pytest.param(solver_row(solver_setting={"resolution": None, "time_step_factor": "fast"}),
                 ("solver_setting", "time_step_factor"), id="solver-setting-wrongly-typed"),
]


@pytest.mark.parametrize(("bad", "fragments"), SKIPPED)
def test_a_bad_result_file_is_skipped_and_named(tmp_path: Path, bad: str | dict, fragments: tuple[str, ...]) -> None:
    """Each case read and ranked as the leaderboard does; the board itself is written once for all of them below."""
    write_results(tmp_path, {"good.json": result_file("fno"), "bad.json": bad})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tables = build_tables(load_results([tmp_path / "results"]))
    skipped = [str(w.message) for w in caught if issubclass(w.category, SkippedResultWarning)]
    assert len(skipped) == 1, skipped
    assert_one_sentence(skipped[0], "bad.json", *fragments)
    assert "\n" not in skipped[0]
    assert [row["label"] for t in tables for row in t.rows] == ["fno"]  # the good file, alone


def test_the_board_ranks_the_good_file_and_its_page_lists_every_bad_one(tmp_path: Path) -> None:
    """Every bad file of the cases above in one results folder: the board is written from the good file alone, and
    its page lists each skip message (escaped), those make_leaderboard returns and warns."""
    bad = {f"bad{i:02d}.json": param.values[0] for i, param in enumerate(SKIPPED)}
    board, skipped = build(tmp_path, bad)
    assert sorted(board.skipped) == sorted(skipped) and len(skipped) == len(bad), skipped
    assert [row["label"] for t in board.tables for row in t.rows] == ["fno"]
    page = (tmp_path / "board" / "index.html").read_text()
    assert f"{len(bad)} result files skipped" in page
    assert all(f"<li>{html.escape(message)}</li>" in page for message in skipped)
    assert all(str(tmp_path / "results" / name) in page for name in bad)


# --- rendered rows: text a valid result file carries is shown literally ------------------------------------------
def _table_lines(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("| ")]


def _unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)(?:\\\\)*\|", line))


def assert_plain_markdown(markdown: str) -> None:
    """No raw HTML, no link, every table row one line with as many cells as the header."""
    assert "<" not in markdown and not re.search(r"(?<!\\)\]\(", markdown), markdown
    lines = _table_lines(markdown)
    assert {_unescaped_pipes(line) for line in lines} == {_unescaped_pipes(lines[0])}, markdown
    assert not any(line.startswith("#") and not line.startswith("## ") for line in markdown.splitlines()), markdown


def test_markup_in_an_objective_name_is_escaped(tmp_path: Path) -> None:
    name = f"{MARKUP}|`x`\\ [a](javascript:alert(1))\n# injected"
    board, skipped = build(tmp_path, {"bad.json": result_file(objective=objective(name))})
    assert skipped == []
    markdown = (tmp_path / "board" / "ks-small.md").read_text()
    assert_plain_markdown(markdown)
    assert "&lt;img src=x onerror=alert(1)&gt;" in markdown or "&lt;img src=x onerror=alert(1)>" in markdown
    assert "\\|\\`x\\`\\\\ [a]\\(javascript:alert(1)) # injected" in markdown
    assert MARKUP not in (tmp_path / "board" / "index.html").read_text()  # the page escaped it already
    assert len(board.tables[0].rows) == 2


FORMULAS = ("=HYPERLINK(\"http://x\",\"y\")", "+1+2", "-2+3", "@SUM(A1)")


def test_spreadsheet_formulas_are_neutralised_and_numbers_stay_numbers(tmp_path: Path) -> None:
    files: dict[str, str | dict] = {f"f{i}.json": result_file(objective=objective(f)) for i, f in enumerate(FORMULAS)}
    skill = result_file("skill", dataset="skill-set", benchmark={"headline": "skill_score", "headline_goal": "max"})
    skill["summary"]["skill_score"] = -0.25
    files["skill.json"] = skill
    _, skipped = build(tmp_path, files)
    assert skipped == []
    rows = list(csv.DictReader(io.StringIO((tmp_path / "board" / "ks-small.csv").read_text())))
    objectives = {row["objective"] for row in rows}
    assert {f"'{f}" for f in FORMULAS} <= objectives and not any(o.startswith(tuple("=+-@")) for o in objectives)
    (row,) = csv.DictReader(io.StringIO((tmp_path / "board" / "skill-set.csv").read_text()))
    assert row["skill_score_mean"] == "-0.25"  # a negative number is a number, not a formula


@pytest.mark.parametrize("bad", [
    pytest.param(result_file("fno", objective=objective(MATHTEXT)), id="objective"),  # a row named "fno [fno, $...]"
    pytest.param(result_file(sample=sample(field=MATHTEXT)), id="sample-field"),
    pytest.param(result_file(spectra=spectra(shell_unit=MATHTEXT)), id="spectrum-unit"),
])
def test_dollar_signs_are_plotted_literally(tmp_path: Path, bad: dict) -> None:
    """matplotlib would read `$...$` as mathtext (and stop on `$\\foo{$`); plot labels are shown as written."""
    board, skipped = build(tmp_path, {"bad.json": bad})
    assert skipped == []
    pngs = [p for p in board.written if p.suffix == ".png"]
    assert pngs and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_a_file_cannot_set_what_the_leaderboard_derives(tmp_path: Path) -> None:
    """A result file's own `_derived` speed-ups and `source` are not the leaderboard's: it computes and records them."""
    forged = solver_row(_derived={"speedup_equal_accuracy": 1e9, "speedup_equal_accuracy_status": "interpolated"},
                        source="/somewhere/else.json")
    write_results(tmp_path, {"solver.json": forged})
    (table,) = build_tables(load_results([tmp_path / "results"]))
    (row,) = table.rows
    assert row["speedup_equal_accuracy"]["mean"] is None and row["speedup_equal_accuracy"]["status"] is None
    assert row["results"][0]["source"] == str(tmp_path / "results" / "solver.json")


# --- library rows: dicts no file check has seen -------------------------------------------------------------------
def test_every_markdown_text_cell_is_escaped_for_result_dicts(tmp_path: Path) -> None:
    labels = [MARKUP, "<script>alert(1)</script>", "two\nlines # injected", "p|q", "`code`", "back\\slash",
              "x](javascript:alert(1))", "=1+2", MATHTEXT]
    results = [_plain(_result(label, 0, 10.0, 0.5, model=f"m{i}<b>")) for i, label in enumerate(labels)]
    written = write_leaderboard(results, tmp_path / "board")
    markdown = (tmp_path / "board" / "ks-small.md").read_text()
    assert_plain_markdown(markdown)
    assert len(_table_lines(markdown)) == len(labels) + 1  # the header, then one line per row
    assert "two lines # injected" in markdown and "p\\|q" in markdown and "\\`code\\`" in markdown
    table = (tmp_path / "board" / "ks-small.csv").read_text()
    labels_csv = {row["label"] for row in csv.DictReader(io.StringIO(table))}
    assert "'=1+2" in labels_csv and "two\nlines # injected" in labels_csv  # a quoted CSV cell may hold a newline
    assert all(p.is_file() and p.stat().st_size > 0 for p in written)


# --- output rows: the board is replaced as a whole ----------------------------------------------------------------
def test_out_dir_that_is_a_file_is_one_sentence(tmp_path: Path) -> None:
    write_results(tmp_path, {"good.json": result_file("fno")})
    (tmp_path / "board").write_text("not a folder")
    assert_one_sentence(run_command("leaderboard", tmp_path), str(tmp_path / "board"), "not a directory")
    assert (tmp_path / "board").read_text() == "not a folder"


@pytest.mark.parametrize("out_dir", [".", ".."])
def test_out_dir_that_holds_the_project_is_one_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         out_dir: str) -> None:
    """The board replaces its folder as a whole: never the current folder (the user's project) or one above."""
    write_results(tmp_path, {"good.json": result_file("fno")})
    monkeypatch.chdir(tmp_path / "results")
    before = snapshot(tmp_path)
    with pytest.raises(ValueError) as error:
        make_leaderboard({"results": ["."], "out_dir": out_dir, "print": False}, progress=False)
    assert_one_sentence(str(error.value), f"out_dir {out_dir} is the current folder or one above it")
    assert snapshot(tmp_path) == before and sorted(os.listdir(tmp_path)) == ["results"]


def test_board_files_of_a_former_build_go_and_other_files_stay(tmp_path: Path) -> None:
    burgers = result_file("b", dataset="burgers-small", pde="burgers", benchmark={})
    build(tmp_path, {"burgers.json": burgers})
    out = tmp_path / "board"
    assert (out / "burgers-small.md").is_file()
    (out / "notes.txt").write_text("mine")
    (out / "mine").mkdir()
    (out / "mine" / "data.csv").write_text("1,2\n")
    (tmp_path / "results" / "burgers.json").unlink()
    board = make_leaderboard(leaderboard_cfg(tmp_path), progress=False)
    assert not list(out.glob("burgers-small*")), sorted(os.listdir(out))
    assert (out / "notes.txt").read_text() == "mine" and (out / "mine" / "data.csv").read_text() == "1,2\n"
    assert sorted(p.name for p in board.written) == sorted(p for p in os.listdir(out)
                                                           if not p.startswith(".") and p not in ("notes.txt", "mine"))
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".board")]  # no staging folder left


def test_a_symlink_planted_in_out_dir_is_not_followed(tmp_path: Path) -> None:
    build(tmp_path, {})
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"precious")
    plot = tmp_path / "board" / "ks-small_corr.png"
    plot.unlink()
    plot.symlink_to(victim)
    make_leaderboard(leaderboard_cfg(tmp_path), progress=False)
    assert victim.read_bytes() == b"precious"
    assert not plot.is_symlink() and plot.read_bytes()[:4] == b"\x89PNG"


_KILLED_WHILE_PLOTTING = """
import os, signal, sys
from matplotlib.figure import Figure

def savefig(self, fname, *args, **kwargs):  # the first plot's bytes are half written when the process dies
    if hasattr(fname, "write"):
        fname.write(b"\\x89PNG half")
    else:
        with open(fname, "wb") as fh:
            fh.write(b"\\x89PNG half")
    os.kill(os.getpid(), signal.SIGKILL)

Figure.savefig = savefig
from pdebench.leaderboard import make_leaderboard
make_leaderboard({"results": [sys.argv[1]], "out_dir": sys.argv[2], "print": False}, progress=False)
"""


@pytest.mark.slow
@pytest.mark.subprocess
def test_sigkill_while_plotting_leaves_the_previous_board(tmp_path: Path) -> None:
    build(tmp_path, {})
    before = snapshot(tmp_path / "board")
    write_results(tmp_path, {"unet.json": result_file("unet")})  # the new board would differ
    killed = subprocess.run([sys.executable, "-c", _KILLED_WHILE_PLOTTING, str(tmp_path / "results"),
                             str(tmp_path / "board")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    assert snapshot(tmp_path / "board") == before


def test_full_disk_is_one_sentence_and_the_previous_board_stays(tmp_path: Path) -> None:
    write_results(tmp_path, {"good.json": result_file("fno")})
    with small_disk(tmp_path / "disk") as disk:
        cfg = {"results": [str(tmp_path / "results")], "out_dir": str(disk / "board"), "print": False}
        make_leaderboard(cfg, progress=False)
        before = snapshot(disk / "board")
        write_results(tmp_path, {"unet.json": result_file("unet")})
        fill_disk(disk, leave=48 << 10)  # room for the new tables, not for their plots: the build fails midway
        with pytest.raises(ValueError) as error:
            make_leaderboard(cfg, progress=False)
        assert_one_sentence(str(error.value), str(disk / "board"), "No space left on device",
                            "previous leaderboard")
        assert snapshot(disk / "board") == before
        assert sorted(os.listdir(disk)) == ["board", "filler"]  # no staging folder left behind
