"""Property-based hostile inputs (hypothesis): generated result files through the whole leaderboard, generated labels
through every table format, generated names, seeds and path parts through the name rules of `pdebench.data.names`.

Each generated result file is a valid one with up to three fields replaced by junk: text with markup, newlines, `$`
and path separators; huge or negative integers; floats including NaN, infinities and 1e308; wrong types; nesting
up to 120 deep; or a raw file no `json.dumps` writes (200,000-deep arrays, a 5,000-digit integer). Whatever it holds,
`make_leaderboard` ends in one of three ways: a correct board, a board with the file skipped under a one-line
warning naming it, or a one-sentence error; never a traceback, never a file outside `out_dir`, and nothing a result
file says becomes Markdown/HTML markup, a split table row or a spreadsheet formula.

Runs derandomized (the same examples every time, no example database), so CI is reproducible.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matrix import assert_one_sentence
from test_leaderboard import _plain, _result
from test_leaderboard_inputs import raw_field, result_file, sample, spectra

from pdebench.data.names import MAX_NAME_LENGTH, MAX_SEED, NAME_PATTERN, UnsafeNameError, check_name, check_seed, inside
from pdebench.leaderboard import SkippedResultWarning, build_tables, make_leaderboard, to_csv, to_latex, to_markdown
from pdebench.leaderboard.html import table_html

SETTINGS = {"derandomize": True, "database": None, "deadline": None,
            "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}

# --- junk ---------------------------------------------------------------------------------------------------------
NASTY_TEXT = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "$\\foo{$", "$x$", "a\nb", "a\r\n# h",
              "../../x", "/tmp/x", "a/b", "=1+2", "+1", "-1", "@SUM(A1)", "|", "`", "\\", "](javascript:alert(1))",
              "", " ", ".", "..", "fno", "solver", "ks-small", "x" * 65, "é", "\x00", "\u2028", "&amp;", "--help"]
texts = st.one_of(st.sampled_from(NASTY_TEXT), st.text(max_size=12))
numbers = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from([10**400, -(10**400), MAX_SEED + 1, -1, 0, 1]),
                    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e308, -1e308, 5e-324]))


def nested(depth: int) -> list:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


wrong_types = st.one_of(st.none(), st.booleans(), st.lists(st.integers(), max_size=3),
                        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                        st.integers(1, 120).map(nested))
junk = st.one_of(texts, numbers, wrong_types)
cells = st.one_of(numbers, st.none())
curves = st.lists(cells, max_size=60)
arrays = st.lists(st.lists(cells, min_size=1, max_size=4), min_size=1, max_size=4)  # may be ragged
arrays3 = st.lists(arrays, min_size=1, max_size=3)

# --- result files -------------------------------------------------------------------------------------------------
TOP_LEVEL = ["label", "model", "dataset", "pde", "seed", "summary", "curves", "intervals", "sample", "spectra",
             "objective", "benchmark", "manifest_sha256", "solver_setting", "n_parameters", "train_time_s",
             "throughput_traj_steps_per_s", "device", "config", "format_version", "source", "_derived"]
SUMMARY_KEYS = [*_result("x", 0, 1.0, 0.1)["summary"], "skill", "corr_time_0.5"]


def _at(part: str, keys: list[str], values: st.SearchStrategy) -> st.SearchStrategy:
    return st.tuples(st.sampled_from(keys).map(lambda key: (part, key)), values)


edits = st.one_of(
    st.tuples(st.sampled_from(TOP_LEVEL).map(lambda key: (key,)), junk),
    _at("summary", SUMMARY_KEYS, junk),
    _at("curves", ["corr", "nrmse", "time", "step"], st.one_of(junk, curves)),
    _at("intervals", ["corr_time_0.8", "one_step_nrmse"], st.one_of(junk, st.lists(cells, min_size=2, max_size=2))),
    _at("sample", ["true", "pred", "time", "field", "trajectory"], st.one_of(junk, arrays)),
    _at("spectra", ["steps", "shell", "pred", "true", "band_edges", "shell_unit"], st.one_of(junk, arrays3)),
    _at("benchmark", ["headline", "headline_goal"], junk),
    _at("objective", ["name", "target"], texts),
)
DEFAULTS = {"sample": sample, "spectra": spectra}
RAW_FILES = [raw_field("config", "[" * 200_000 + "]" * 200_000), raw_field("n_parameters", "9" * 5000), "{", "",
             "[]", "null", json.dumps({"format": "pdebench-result"})]


def apply(edit_list: list[tuple[tuple[str, ...], Any]]) -> dict:
    """A valid result file with each (path, value) of `edit_list` set (an edit below a field an earlier edit turned
    into something other than an object is dropped)."""
    data = result_file()
    for path, value in edit_list:
        target = data
        for key in path[:-1]:
            if not isinstance(target.get(key), dict):
                target[key] = DEFAULTS[key]() if key in DEFAULTS else {}
            target = target[key]
        target[path[-1]] = copy.deepcopy(value)
    return data


bad_files = st.one_of(st.lists(edits, min_size=1, max_size=3).map(lambda e: json.dumps(apply(e))),
                      st.sampled_from(RAW_FILES))


# --- what every board must satisfy --------------------------------------------------------------------------------
def _unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)(?:\\\\)*\|", line))


def assert_safe_markdown(markdown: str) -> None:
    """No raw `<`, every table row one line with as many cells as the header, no heading but the table's."""
    assert "<" not in markdown, markdown
    lines = markdown.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("|---"))
    rows = lines[rule - 1:rule] + lines[rule + 1:]
    assert all(row.startswith("| ") and row.endswith(" |") for row in rows), markdown
    assert len({_unescaped_pipes(row) for row in rows}) == 1, markdown
    assert [line for line in lines if line.startswith("#")] == [lines[0]], markdown


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def assert_safe_csv(text: str) -> None:
    """No cell a spreadsheet would run: one starting with = + - @ is a number."""
    for row in csv.reader(io.StringIO(text)):
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")) or _is_number(cell), cell


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.mark.slow  # 20 boards built from drawn result files
@settings(max_examples=20, **SETTINGS)
@given(bad=bad_files)
def test_generated_result_files_never_break_the_board(bad: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "results").mkdir()
        (root / "results" / "good.json").write_text(json.dumps(result_file("fno")))
        (root / "results" / "bad.json").write_text(bad)
        before = files_under(root)
        cfg = {"results": [str(root / "results")], "out_dir": str(root / "board"), "print": False}
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                board = make_leaderboard(cfg, progress=False)
        except (ValueError, FileNotFoundError) as error:  # a user error: one sentence, nothing written
            assert_one_sentence(str(error))
            assert "\n" not in str(error) and not (root / "board").exists()
            assert files_under(root) == before
            return
        skipped = [str(w.message) for w in caught if issubclass(w.category, SkippedResultWarning)]
        assert all("bad.json" in m and "\n" not in m and "Traceback" not in m for m in skipped), skipped
        out = (root / "board").resolve()
        assert all(out in p.resolve().parents for p in board.written)
        assert {p for p in files_under(root) - before if out not in p.resolve().parents} == {root / "board"}
        for table in board.tables:
            for row in table.rows:  # what the board shows passed the name rules
                check_name(row["model"], "model")
                check_name(row["label"], "label")
                assert all(check_seed(seed) == seed for seed in row["seed_values"])
        for path in board.written:
            if path.suffix == ".md":
                assert_safe_markdown(path.read_text())
            elif path.suffix == ".csv":
                assert_safe_csv(path.read_text())
            elif path.suffix == ".png":
                assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@settings(max_examples=60, **SETTINGS)
@given(labels=st.lists(texts, min_size=1, max_size=4, unique=True), model=texts, objective_name=texts,
       dataset=texts)
def test_generated_labels_render_as_plain_text(labels: list[str], model: str, objective_name: str,
                                               dataset: str) -> None:
    """Result dicts no file check has seen (`write_leaderboard`'s input): every text cell escaped, every format."""
    results = []
    for label in labels:
        result = _plain(_result(label, 0, 10.0, 0.5, dataset=dataset, model=model))
        result["objective"]["name"] = objective_name
        results.append(result)
    (table,) = build_tables(results)
    assert_safe_markdown(to_markdown(table))
    assert_safe_csv(to_csv(table))
    page = table_html(table)
    assert "<script" not in page and "<img" not in page
    tex = to_latex(table)
    assert "\n\n" not in tex and tex.count("\\\\\n") == len(labels) + 1  # header and one line per row


@settings(max_examples=300, **SETTINGS)
@given(value=st.one_of(junk, st.from_regex(NAME_PATTERN, fullmatch=True)))
def test_the_name_rule_accepts_only_names_that_stay_inside(value: Any) -> None:
    try:
        name = check_name(value, "label", "result file x.json")
    except UnsafeNameError as error:
        assert_one_sentence(str(error), "label=", "result file x.json")
        assert "\n" not in str(error)
        return
    assert name == value and NAME_PATTERN.fullmatch(name) and len(name) <= MAX_NAME_LENGTH
    root = Path(tempfile.gettempdir()) / "pdebench-names"
    assert root.resolve() in inside(root, name, f"{name}.md").resolve().parents


@settings(max_examples=200, **SETTINGS)
@given(value=st.one_of(junk, st.integers(0, MAX_SEED)))
def test_the_seed_rule(value: Any) -> None:
    try:
        seed = check_seed(value, "seed", "result file x.json")
    except UnsafeNameError as error:
        assert_one_sentence(str(error), "seed=", "result file x.json")
        assert "\n" not in str(error)
        return
    assert type(seed) is int and 0 <= seed <= MAX_SEED


@settings(max_examples=200, **SETTINGS)
@given(parts=st.lists(st.one_of(texts, st.sampled_from(["..", "/", "/etc/passwd", "a/../..", "../x", "~"])),
                      min_size=1, max_size=3))
def test_inside_never_returns_a_path_outside_its_root(parts: list[str]) -> None:
    root = Path(tempfile.gettempdir()) / "pdebench-inside" / "root"
    try:
        path = inside(root, *parts)
    except ValueError as error:  # UnsafeNameError, or the OS's own refusal of a NUL byte
        assert_one_sentence(str(error))
        return
    resolved, top = path.resolve(), root.resolve()
    assert resolved == top or top in resolved.parents


def test_inside_refuses_a_part_with_a_line_break_on_one_line() -> None:
    with pytest.raises(UnsafeNameError) as error:
        inside(Path(tempfile.gettempdir()) / "root", "..", "a\nb")
    assert "\n" not in str(error.value)
