"""The leaderboard as one static HTML page: every table, sortable, with its plots inline and provenance one click
away.

The page is self-contained (no network, no external files): plots are embedded as base64 PNG `data:` URLs, the
table sorter is a few lines of inline JavaScript (click a header; click again to reverse), a table wider than the
window scrolls sideways inside its own box with the model and label columns kept in view (CSS `position: sticky`,
:data:`KEY_COLUMNS`), and each row's provenance
(source file, dataset manifest hash, git commit, package version, checkpoint hash, device and the full evaluation
config of every seed) sits in a `<details>` element. A link such as `index.html#sort=<table id>:<column>:desc`
opens the page with that table sorted.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pdebench
from pdebench.leaderboard.loading import SOURCE_KEY
from pdebench.leaderboard.render import LEAD_HEADERS, column_digits, lead_cells, sort_note, value_cells
from pdebench.leaderboard.tables import Table

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
h1 { margin-bottom: 0.2rem; }
section { margin-top: 2.5rem; }
.scroll { overflow-x: auto; }
table.board { border-collapse: separate; border-spacing: 0; font-size: 0.85rem; border-top: 1px solid #ccc;
  border-left: 1px solid #ccc; }
table.board th, table.board td { border-right: 1px solid #ccc; border-bottom: 1px solid #ccc;
  padding: 0.25rem 0.45rem; vertical-align: top; background: #fff; }
table.board th { background: #eef2f7; cursor: pointer; user-select: none; }
table.board tbody tr:nth-child(even) td { background: #fafafa; }
table.board .key { position: sticky; z-index: 1; overflow-wrap: break-word; }
table.board th.key { z-index: 2; }
table.board .key-model { left: 0; width: 7rem; min-width: 7rem; max-width: 7rem; box-sizing: border-box; }
table.board .key-label { left: 7rem; min-width: 8rem; max-width: 16rem; box-shadow: inset -2px 0 0 #8a97a8; }
table.board th[data-dir="asc"]::after { content: " \\25B2"; }
table.board th[data-dir="desc"]::after { content: " \\25BC"; }
table.board td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
details pre { max-width: 60rem; max-height: 24rem; overflow: auto; font-size: 0.75rem; background: #f6f6f6; }
figure { display: inline-block; margin: 0.6rem; }
figure img { max-width: 100%; border: 1px solid #ddd; }
.note { color: #555; font-size: 0.9rem; max-width: 70rem; }
.warn { color: #8a3b00; }
"""

_SCRIPT = """
function sortTable(th, dir) {
  const table = th.closest('table'), body = table.tBodies[0], col = th.cellIndex;
  dir = dir || (th.dataset.dir === 'desc' ? 'asc' : 'desc');
  table.querySelectorAll('th').forEach(h => delete h.dataset.dir);
  th.dataset.dir = dir;
  const key = td => td.dataset.sort === undefined ? td.textContent.trim()
                  : (td.dataset.sort === '' ? null : parseFloat(td.dataset.sort));
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = key(a.cells[col]), y = key(b.cells[col]);
    if (x === null || y === null) return (x === null) - (y === null);
    const c = typeof x === 'number' ? x - y : String(x).localeCompare(String(y));
    return dir === 'asc' ? c : -c;
  }).forEach(r => body.appendChild(r));
}
document.querySelectorAll('table.board th').forEach(th => th.addEventListener('click', () => sortTable(th)));
const wanted = /sort=([^:&]+):(\\d+):(asc|desc)/.exec(decodeURIComponent(location.hash));
if (wanted) {
  const th = document.querySelector('#' + CSS.escape(wanted[1]) + ' thead th:nth-child(' + (+wanted[2] + 1) + ')');
  if (th) sortTable(th, wanted[3]);
}
"""

PROVENANCE_KEYS = ("seed", SOURCE_KEY, "manifest_sha256", "git_commit", "package_version", "checkpoint_sha256",
                   "checkpoint", "device", "n_processes", "n_trajectories", "n_steps")


def table_id(name: str) -> str:
    """The HTML id of a table (`table-` plus the name with characters other than letters, digits, `-_` as `-`)."""
    return "table-" + re.sub(r"[^A-Za-z0-9_-]", "-", name)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _provenance(row: Mapping[str, Any]) -> str:
    parts = [f"<details><summary>{len(row['results'])} result file{'s' if len(row['results']) > 1 else ''}"
             "</summary>"]
    for result in row["results"]:
        items = "".join(f"<dt>{_e(k)}</dt><dd><code>{_e(result.get(k))}</code></dd>" for k in PROVENANCE_KEYS)
        config = json.dumps({"config": result.get("config"), "objective": result.get("objective"),
                             "benchmark": result.get("benchmark"), "run": result.get("run")}, indent=1,
                            default=str)
        parts.append(f"<dl>{items}</dl><details><summary>config (seed {_e(result.get('seed'))})</summary>"
                     f"<pre>{_e(config)}</pre></details>")
    parts.append("</details>")
    return "".join(parts)


def _prose(text: str) -> str:
    """Escaped text with Markdown's `code` spans as <code> elements."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", _e(text))


def _sort_value(cell: Mapping[str, Any]) -> str:
    return "" if cell.get("mean") is None else repr(float(cell["mean"]))


KEY_COLUMNS = LEAD_HEADERS[:2]
"""The identity columns that stay in view while a wide table scrolls sideways (CSS `position: sticky`): the first
two, model (a fixed width) and label (placed after it)."""


def _key_class(header: str) -> str:
    return f' class="key key-{header}"' if header in KEY_COLUMNS else ""


def table_html(table: Table) -> str:
    """One table as an HTML `<table class="board">`: identity columns (model and label stay in view while the table
    scrolls sideways), value columns (numeric cells carry their mean in `data-sort`), and a provenance column."""
    head = "".join([*(f"<th{_key_class(h)}>{_e(h)}</th>" for h in LEAD_HEADERS),
                    *(f"<th>{_e(h)}</th>" for h in (*(c.header for c in table.columns), "provenance"))])
    body = []
    digits = column_digits(table)
    for row in table.rows:
        *texts, seeds = lead_cells(row)
        cells = [f"<td{_key_class(h)}>{_e(text)}</td>" for h, text in zip(LEAD_HEADERS, texts, strict=False)]
        cells.append(f'<td class="num" data-sort="{row["seeds"]}">{_e(seeds)}</td>')
        cells += [f'<td class="num" data-sort="{_sort_value(row[c.key])}">{_e(text)}</td>'
                  for c, text in zip(table.columns, value_cells(table, row, digits), strict=True)]
        cells.append(f"<td>{_provenance(row)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="board" id="{table_id(table.name)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


SHOWN_SCALE = {"": 0.62, "wide": 0.85}
"""Shown width of a plot on the page, as a fraction of its pixel width: figures of one panel at 0.62 (two fit
side by side at 1,400 px), the sample and spectra panels (`wide`) larger, so that every plot's text shows at about
the same size whatever the figure's width."""


def _figure_class(path: Path) -> str:
    """Spectra and sample plots have several panels and are shown larger (:data:`SHOWN_SCALE`)."""
    return "wide" if Path(path).stem.endswith(("_spectra", "_sample")) else ""


def _png_width(data: bytes) -> int | None:
    """The pixel width a PNG's header records (None if `data` is not a PNG)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big")


def _figure(caption: str, path: Path) -> str:
    """One plot as a `<figure>`: the PNG inline, shown at :data:`SHOWN_SCALE` of its width, and its caption."""
    data = Path(path).read_bytes()
    kind = _figure_class(path)
    width = _png_width(data)
    style = f' style="width: {round(width * SHOWN_SCALE[kind])}px"' if width else ""
    css_class = f' class="{kind}"' if kind else ""
    src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return (f'<figure{css_class}><img alt="{_e(caption)}"{style} src="{src}"><figcaption>{_e(caption)}'
            "</figcaption></figure>")


def leaderboard_page(tables: Sequence[Table], plots: Mapping[str, Sequence[tuple[str, Path]]],
                     downloads: Mapping[str, Sequence[tuple[str, str]]], skipped: Sequence[str] = ()) -> str:
    """The whole page.

    Args:
        tables: the tables, in page order.
        plots: table name -> (caption, PNG path) pairs, embedded in that order.
        downloads: table name -> (text, relative link) pairs (the table's Markdown, CSV and LaTeX files).
        skipped: messages of result files left out, listed at the top.
    """
    nav = " · ".join(f'<a href="#section-{_e(table_id(t.name))}">{_e(t.name)}</a>' for t in tables)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>pdebench leaderboard</title><style>{_STYLE}</style></head><body>",
             "<h1>pdebench leaderboard</h1>",
             f'<p class="note">pdebench {_e(pdebench.__version__)}; {len(tables)} table{"s" * (len(tables) != 1)}. '
             f"Click a column header to sort. {nav}</p>"]
    if skipped:
        items = "".join(f"<li>{_e(m)}</li>" for m in skipped)
        parts.append(f'<details class="warn" open><summary>{len(skipped)} result file{"s" * (len(skipped) != 1)} '
                     f"skipped</summary><ul>{items}</ul></details>")
    for table in tables:
        links = " · ".join(f'<a href="{_e(href)}">{_e(text)}</a>' for text, href in downloads.get(table.name, ()))
        figures = "".join(_figure(caption, path) for caption, path in plots.get(table.name, ()))
        parts.append(
            f'<section id="section-{_e(table_id(table.name))}"><h2>{_e(table.name)}</h2>'
            f'<p class="note">Dataset <code>{_e(table.dataset)}</code> (PDE <code>{_e(table.pde)}</code>), manifest '
            f"<code>{_e(table.manifest)}</code>. {_prose(sort_note(table))}</p>"
            f'<p class="note">Download: {links}</p><div class="scroll">{table_html(table)}</div>'
            f"<div>{figures}</div></section>")
    parts += [f"<script>{_SCRIPT}</script>", "</body></html>"]
    return "\n".join(parts) + "\n"
