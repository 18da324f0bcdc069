"""Render leaderboard tables as text: cell formatting shared by every format, then Markdown, CSV and LaTeX.

A cell reads `mean ± std` over seeds (just the mean with one seed), then the 95% bootstrap interval over test
trajectories in brackets where the result files hold one, then ` / ceiling` for the stable horizon. A time metric
that sits at its ceiling is printed as `≥ value`: the rollout ended before the model failed, so the true value is at
least that. A speed-up that lies off the solver frontier is a bound: `≤` when even the cheapest solver setting is as
accurate, `≥` when no setting is. `—` marks a value that is missing or not finite in some seed.

Each column prints its means with as many significant digits as it takes to tell its distinct values apart (3 at
least, :data:`MAX_DIGITS` at most; :func:`column_digits`): two solver settings whose errors agree to 4 digits show
5, where 3 would print the same number twice.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable
from typing import Any

from pdebench.leaderboard.tables import SPEEDUP_ACCURACY, Column, Table

MISSING = "—"

MIN_DIGITS, MAX_DIGITS = 3, 8
"""Significant digits a cell's mean is shown with: at least MIN_DIGITS, more where rows would otherwise look equal."""

_BOUND = {"below_frontier": "≤ ", "above_frontier": "≥ ", "mixed": "~ "}


def _fixed_decimals(x: float, sig: int) -> int | None:
    """Decimals that show `sig` significant digits in fixed point, or None if scientific is better."""
    magnitude = math.floor(math.log10(abs(x)))
    if -3 <= magnitude < 5:
        return max(sig - 1 - magnitude, 0)
    return None


def format_number(x: float | None, sig: int = 3) -> str:
    """`x` with `sig` significant digits, fixed-point for 1e-3 <= |x| < 1e5, else scientific; `—` for None/inf."""
    if x is None or not math.isfinite(x):
        return MISSING
    if x == 0:
        return "0"
    decimals = _fixed_decimals(x, sig)
    return f"{x:.{sig - 1}e}" if decimals is None else f"{x:.{decimals}f}"


def format_mean_std(mean: float, std: float, sig: int = MIN_DIGITS) -> str:
    """`"mean ± std"`: std with 2 significant digits, mean with `sig` and at least to the std's last digit.

    E.g. `(1000.5, 0.707) -> "1000.50 ± 0.71"`, `(11.0, 1.414) -> "11.0 ± 1.4"`.
    """
    if not math.isfinite(mean) or not math.isfinite(std) or std == 0 or mean == 0:
        return f"{format_number(mean, sig)} ± {format_number(std, 2)}"
    mean_decimals, std_decimals = _fixed_decimals(mean, sig), _fixed_decimals(std, 2)
    if mean_decimals is None or std_decimals is None:
        return f"{format_number(mean, sig)} ± {format_number(std, 2)}"
    decimals = min(max(mean_decimals, std_decimals), mean_decimals + 3)
    return f"{mean:.{decimals}f} ± {std:.{std_decimals}f}"


def _at_ceiling(cell: dict[str, Any]) -> bool:
    ceiling = cell.get("ceiling")
    return ceiling is not None and cell["mean"] is not None and cell["mean"] >= ceiling * (1 - 1e-9)


def column_digits(table: Table) -> dict[str, int]:
    """Column key -> significant digits of its means: the fewest from :data:`MIN_DIGITS` that print as many distinct
    texts as :data:`MAX_DIGITS` do (values that differ only beyond MAX_DIGITS do not widen the column)."""
    digits = {}
    for column in table.columns:
        values = {row[column.key]["mean"] for row in table.rows} - {None}
        most = len({format_number(v, MAX_DIGITS) for v in values})
        digits[column.key] = next(sig for sig in range(MIN_DIGITS, MAX_DIGITS + 1)
                                  if len({format_number(v, sig) for v in values}) == most)
    return digits


def cell_text(column: Column, cell: dict[str, Any], seeds: int, sig: int = MIN_DIGITS) -> str:
    """The text of one cell (see the module docstring), its mean to `sig` significant digits."""
    mean, std = cell["mean"], cell["std"]
    if mean is None:
        return MISSING
    if column.key == "n_parameters":
        text = f"{round(mean):,}"
        return text if not std else f"{text} ± {round(std):,}"
    text = format_number(mean, sig) if seeds < 2 or not std else format_mean_std(mean, std, sig)
    if column.key == SPEEDUP_ACCURACY:
        text = _BOUND.get(cell.get("status") or "", "") + text
    if column.interval and cell.get("interval"):
        low, high = cell["interval"]
        text += f" [{format_number(low)}, {format_number(high)}]"
    if _at_ceiling(cell):
        text = "≥ " + text
    if column.key == "stable_horizon_median" and cell.get("ceiling") is not None:
        text += f" / {format_number(cell['ceiling'])}"
    return text


def sort_note(table: Table, code: Callable[[str], str] = "`{}`".format, text: Callable[[str], str] = str) -> str:
    """One paragraph under a table's heading: sort order, what cells mean, the table's notes.

    `code` and `text` render what comes from result files (the headline metric as code, the notes, which name the
    dataset and manifest) for the target format; as they are, the paragraph is Markdown-like prose for the HTML page,
    which escapes it whole.
    """
    metric, direction = table.headline
    better = "higher" if direction == "desc" else "lower"
    note = (f"Sorted by {code(metric)} ({better} is better). Values are mean ± std over seeds (sample std); brackets: "
            "95% bootstrap interval over test trajectories (seed mean of its ends). Times are in PDE time units after "
            "the last input frame; `≥` marks a time at its ceiling (the rollout length). Each column shows as many "
            "significant digits as tell its values apart. Speed-ups are over the dataset's solver rows scored on the "
            "same rollout and the same kind of device; `≤`/`≥` mark bounds off the solver frontier.")
    return " ".join([note, *map(text, table.notes)])


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MD_SPECIAL = {"\\": "\\\\", "`": "\\`", "|": "\\|", "&": "&amp;", "<": "&lt;"}


def md_escape(text: str) -> str:
    """`text` as literal Markdown (CommonMark/GitHub) on one line, safe in a table cell: control characters and line
    breaks become spaces, `<` and `&` HTML entities (no tag, no entity trick), `\\`, `` ` `` and `|` are
    backslash-escaped, and `](` becomes `]\\(` (no link or image). `>` stays: it opens markup only at the start of a
    line, and every line written starts with text of the suite's own."""
    escaped = "".join(_MD_SPECIAL.get(ch, ch) for ch in _CONTROL.sub(" ", str(text)))
    return escaped.replace("](", "]\\(")


def md_code(text: str) -> str:
    """`text` as a Markdown code span, or as escaped text (:func:`md_escape`) where it holds a character that
    escaping would change (a backtick would end the span, and inside one an entity shows as written)."""
    plain = _CONTROL.sub(" ", str(text))
    return f"`{plain}`" if md_escape(plain) == plain else md_escape(plain)


LEAD_HEADERS = ("model", "label", "objective", "recipe", "seeds")
"""The text columns before the values; `recipe`: how the row's training departs from its dataset's recipe
(`pdebench.leaderboard.tables.recipe_text`)."""


def lead_cells(row: dict[str, Any]) -> list[str]:
    """The row's :data:`LEAD_HEADERS` cells, unescaped (text from result files: each format escapes it)."""
    return [row["model"], row["name"], row["objective"], row["recipe"] or MISSING, str(row["seeds"])]


def value_cells(table: Table, row: dict[str, Any], digits: dict[str, int]) -> list[str]:
    """The row's value cells (:func:`cell_text`, with the table's :func:`column_digits`)."""
    return [cell_text(c, row[c.key], row["seeds"], digits[c.key]) for c in table.columns]


def to_markdown(table: Table) -> str:
    """One table as a Markdown section: heading, manifest, sort note and the table."""
    lines = [f"## {md_escape(table.name)}", "",
             f"Dataset {md_code(table.dataset)} (PDE {md_code(table.pde)}), manifest {md_code(str(table.manifest))}.",
             "", sort_note(table, md_code, md_escape), ""]
    headers = [*LEAD_HEADERS, *(c.header for c in table.columns)]
    lines.append("| " + " | ".join(md_escape(h) for h in headers) + " |")
    lines.append("|" + "|".join(["---"] * len(LEAD_HEADERS) + ["---:"] * len(table.columns)) + "|")
    digits = column_digits(table)
    for row in table.rows:
        cells = [*lead_cells(row), *value_cells(table, row, digits)]
        lines.append("| " + " | ".join(md_escape(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def csv_header(table: Table) -> list[str]:
    """CSV columns: identity (with the recipe), `n_parameters`, then per value column `<key>_mean`, `<key>_std`, and
    where it applies `<key>_ci_low`, `<key>_ci_high` (bootstrap interval), `<key>_ceiling`, `<key>_status`
    (speed-up at equal accuracy); last the dataset and its manifest hash."""
    header = ["label", "model", "objective", "recipe", "seeds", "seed_values", "n_parameters"]
    for column in table.columns[1:]:
        header += [f"{column.key}_mean", f"{column.key}_std"]
        if any(row[column.key]["interval"] is not None for row in table.rows):
            header += [f"{column.key}_ci_low", f"{column.key}_ci_high"]
        if column.ceiling:
            header.append(f"{column.key}_ceiling")
        if column.key == SPEEDUP_ACCURACY:
            header.append(f"{column.key}_status")
    return [*header, "dataset", "manifest_sha256"]


def _csv_number(x: float | None) -> str:
    return "" if x is None else repr(float(x))


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_text(value: Any) -> str:
    """A text cell that a spreadsheet will not run: one starting with `=`, `+`, `-`, `@`, tab or carriage return
    gets a leading `'` (OWASP's advice against CSV injection). Numbers are written by their own columns and stay
    numbers (a negative mean is `-0.25`, not `'-0.25`)."""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


_TEXT_COLUMNS = ("label", "model", "objective", "recipe", "seed_values", "dataset", "manifest_sha256")


def to_csv(table: Table) -> str:
    """One table as CSV (:func:`csv_header` columns; an empty cell is a value missing or not finite)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    header = csv_header(table)
    writer.writerow([csv_text(h) for h in header])
    for row in table.rows:
        values: dict[str, Any] = {"label": row["label"], "model": row["model"], "objective": row["objective"],
                                  "recipe": row["recipe"], "seeds": row["seeds"],
                                  "seed_values": " ".join(map(str, row["seed_values"])),
                                  "dataset": table.dataset, "manifest_sha256": table.manifest or ""}
        values.update({key: csv_text(values[key]) for key in _TEXT_COLUMNS})
        params = row["n_parameters"]["mean"]
        values["n_parameters"] = "" if params is None else round(params)
        for column in table.columns[1:]:
            cell = row[column.key]
            values[f"{column.key}_mean"], values[f"{column.key}_std"] = map(_csv_number, (cell["mean"], cell["std"]))
            interval = cell["interval"] or (None, None)
            values[f"{column.key}_ci_low"], values[f"{column.key}_ci_high"] = map(_csv_number, interval)
            values[f"{column.key}_ceiling"] = _csv_number(cell["ceiling"])
            values[f"{column.key}_status"] = csv_text(cell.get("status") or "")
        writer.writerow([values[h] for h in header])
    return buf.getvalue()


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_LATEX_SYMBOLS = {"±": r"$\pm$", "≥": r"$\geq$", "≤": r"$\leq$", "—": "--"}


def latex_escape(text: str) -> str:
    """`text` with LaTeX's special characters escaped, ± ≥ ≤ — as math/text commands, control characters and line
    breaks as spaces (a blank line would end the paragraph inside a table)."""
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in _CONTROL.sub(" ", text))
    for symbol, command in _LATEX_SYMBOLS.items():
        out = out.replace(symbol, command)
    return out


def to_latex(table: Table) -> str:
    """One table as a LaTeX `table` environment (needs `\\usepackage{booktabs}`), caption with the sort order."""
    metric, direction = table.headline
    headers = [*LEAD_HEADERS, *(c.header for c in table.columns)]
    lines = [
        "% pdebench leaderboard; needs \\usepackage{booktabs}",
        "\\begin{table}[t]", "\\centering", "\\scriptsize",
        f"\\caption{{{latex_escape(table.name)}: sorted by {latex_escape(metric)} "
        f"({'higher' if direction == 'desc' else 'lower'} is better); mean $\\pm$ std over seeds, "
        "[95\\% bootstrap interval over test trajectories].}",
        f"\\label{{tab:{latex_label(table.name)}}}",
        "\\begin{tabular}{" + "l" * len(LEAD_HEADERS) + "r" * len(table.columns) + "}",
        "\\toprule",
        " & ".join(latex_escape(h) for h in headers) + " \\\\",
        "\\midrule",
    ]
    digits = column_digits(table)
    for row in table.rows:
        cells = [*lead_cells(row), *value_cells(table, row, digits)]
        lines.append(" & ".join(latex_escape(c) for c in cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def latex_label(name: str) -> str:
    """A LaTeX label key from a table name (letters, digits, `-`, `.`, `:` only)."""
    return "".join(ch if ch.isalnum() or ch in "-.:" else "-" for ch in name)
