"""The leaderboard's HTML page renders in a real browser (headless Chromium) and shows every table and plot.

Chromium is Debian's `chromium` package; it is installed here when missing (apt-get, as root), and these tests skip,
saying why, only where that is impossible.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from system_packages import one_apt_at_a_time
from test_leaderboard import _plain, _result, _solver, _spectra

from pdebench.leaderboard import build_tables, table_html, write_tables
from pdebench.leaderboard.html import table_id
from pdebench.leaderboard.render import LEAD_HEADERS

BROWSER_TIMEOUT_S = 120


def _find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of a Chromium binary, installing Debian's `chromium` package when none is found."""
    found = _find_chromium()
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        pytest.skip("chromium is not installed and cannot be installed here (needs apt-get run as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install_command = [apt, "install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=300", "chromium"]
    with one_apt_at_a_time():
        install = subprocess.run(install_command, env=env, capture_output=True, text=True, timeout=900)
        if install.returncode != 0:
            subprocess.run([apt, "update"], env=env, capture_output=True, timeout=600)
            install = subprocess.run(install_command, env=env, capture_output=True, text=True, timeout=900)
    found = _find_chromium()
    if found is None:
        pytest.skip(f"chromium could not be installed: apt-get said {install.stderr.strip()[-300:]!r}")
    return found


def _browse(chromium: str, url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--virtual-time-budget=5000", *args, url],
                          capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S, check=True)


class _Page(HTMLParser):
    """Collects the tables (id, header texts, body rows as cell texts), images and <details> of a DOM dump."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, dict] = {}
        self.images: list[dict[str, str]] = []
        self.details = 0
        self._table: dict | None = None
        self._cell: list[str] | None = None
        self._depth = 0  # <td> nesting, so provenance <details> text stays in its cell
        self._in_head = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and "board" in (a.get("class") or ""):
            self._table = self.tables.setdefault(a["id"], {"head": [], "rows": []})
        elif tag == "thead":
            self._in_head = True
        elif tag == "tbody":
            self._in_head = False
        elif tag == "tr" and self._table is not None and not self._in_head:
            self._table["rows"].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._depth += 1
            if self._depth == 1:
                self._cell = []
        elif tag == "img":
            self.images.append(a)
        elif tag == "details":
            self.details += 1

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._table is not None:
            self._depth -= 1
            if self._depth == 0 and self._cell is not None:
                text = " ".join("".join(self._cell).split())
                (self._table["head"] if tag == "th" else self._table["rows"][-1]).append(text)
                self._cell = None
        elif tag == "table" and self._depth == 0:
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory):
    """Two datasets (one with solver rows, spectra and a 1-D sample rollout), written as a leaderboard."""
    rng = np.random.default_rng(0)
    true = rng.standard_normal((5, 16))
    sample = {"trajectory": 0, "field": "u", "time": [0.8, 1.6, 2.4, 3.2, 4.0], "true": true, "pred": true * 0.9}
    results = [
        _result("fno", 0, 10.0, 0.5, spectra=_spectra(0.9), sample=sample),
        _result("fno", 1, 12.0, 0.7, spectra=_spectra(0.8)),
        _result("unet", 0, 14.0, 0.4, spectra=_spectra(1.1)),
        _solver("solver", 20.0, 100.0, stored=True), _solver("solver-n64", 8.0, 2000.0, stored=False),
        _result("a", 0, 1.0, 0.2, "burgers-small", "burgers"), _result("b", 0, 1.0, 0.9, "burgers-small", "burgers"),
    ]
    tables = build_tables([_plain(r) for r in results])
    out = tmp_path_factory.mktemp("board")
    written = write_tables(tables, out, skipped=["skipped runs/x.json: not valid JSON"])
    return tables, written, out


@pytest.mark.slow
@pytest.mark.subprocess
def test_page_shows_every_table_and_plot_in_chromium(chromium, board):
    tables, written, out = board
    page = out / "index.html"
    dom = _browse(chromium, page.as_uri(), "--dump-dom").stdout
    parsed = _Page()
    parsed.feed(dom)
    assert set(parsed.tables) == {table_id(t.name) for t in tables}
    for table in tables:
        shown = parsed.tables[table_id(table.name)]
        assert len(shown["head"]) == len(LEAD_HEADERS) + len(table.columns) + 1  # identity, values, provenance
        assert [row[1] for row in shown["rows"]] == [row["name"] for row in table.rows]  # ranked order
    pngs = [p for p in written if p.suffix == ".png"]
    assert {p.stem.split("_")[-1] for p in pngs if p.stem.startswith("ks-small")} == {
        "corr", "nrmse", "spectra", "sample", "frontier"}
    assert len(parsed.images) == len(pngs)
    embedded = {base64.b64decode(img["src"].removeprefix("data:image/png;base64,")) for img in parsed.images}
    assert embedded == {p.read_bytes() for p in pngs}  # every plot, inline
    # provenance one click away: one <details> per row, one per seed's config, plus the skipped-files list
    n_rows = sum(len(t.rows) for t in tables)
    n_results = sum(len(row["results"]) for t in tables for row in t.rows)
    assert parsed.details == n_rows + n_results + 1
    assert "a" * 64 in dom and "f" * 40 in dom and "skipped runs/x.json" in dom

    shot = out / "screenshot.png"
    _browse(chromium, page.as_uri(), f"--screenshot={shot}", "--window-size=1400,2400")
    image = shot.read_bytes()
    assert image[:8] == b"\x89PNG\r\n\x1a\n" and len(image) > 50_000  # a blank page compresses to a few kB


@pytest.mark.slow
@pytest.mark.subprocess
def test_headers_sort_the_table_in_the_browser(chromium, board):
    """The inline sorter runs: `#sort=<table>:<column>:<dir>` sorts on load as a header click does."""
    tables, _, out = board
    ks = next(t for t in tables if t.name == "ks-small")
    column = len(LEAD_HEADERS) + [c.key for c in ks.columns].index("corr_time_0.8")
    url = f"{(out / 'index.html').as_uri()}#sort={table_id(ks.name)}:{column}:asc"
    parsed = _Page()
    parsed.feed(_browse(chromium, url, "--dump-dom").stdout)
    shown = [row[1] for row in parsed.tables[table_id(ks.name)]["rows"]]
    expected = [row["name"] for row in sorted(ks.rows, key=lambda r: r["corr_time_0.8"]["mean"])]
    assert shown == expected and shown != [row["name"] for row in ks.rows]


def test_model_and_label_cells_are_sticky_in_the_markup(board):
    """The model and label columns (header and every row) carry the sticky classes, and the page's style makes them
    stick at the left edge; no other column does."""
    tables, _, out = board
    page = (out / "index.html").read_text()
    assert "table.board .key { position: sticky;" in page and ".key-model { left: 0;" in page
    assert ".key-label { left: 7rem;" in page
    for table in tables:
        markup = table_html(table)
        assert markup.count('class="key key-model"') == markup.count('class="key key-label"') == len(table.rows) + 1
        assert markup.count('class="key ') == 2 * (len(table.rows) + 1)
        assert markup.startswith('<table class="board" id="') and '<th class="key key-model">model</th>' in markup


_MEASURE = """<script>
const out = {};
document.querySelectorAll('.scroll').forEach(box => {
  box.scrollLeft = box.scrollWidth;
  box.scrollIntoView();  // elementFromPoint sees only what is in the viewport
  const table = box.querySelector('table'), frame = box.getBoundingClientRect();
  const cells = Array.from(table.tBodies[0].rows[0].cells), rect = c => c.getBoundingClientRect();
  const hit = c => { const r = rect(c); return document.elementFromPoint(r.left + 3, r.top + 3) === c; };
  out[table.id] = {scrolled: box.scrollLeft, left: frame.left, right: frame.right,
                   cells: cells.map(c => [rect(c).left, rect(c).right, hit(c)])};
});
document.body.dataset.measured = JSON.stringify(out);
</script></body>"""


@pytest.mark.slow
@pytest.mark.subprocess
def test_model_columns_stay_in_view_when_a_wide_table_scrolls_in_chromium(chromium, board):
    """At 1,400 px the ks table is wider than the page: scrolled to its right end, the model and label cells still
    sit at the left edge of the scrolling box, on top (a point inside each hits that cell), while the next identity
    column and the first value column have scrolled out under them."""
    tables, _, out = board
    scrolled = out / "scrolled.html"
    scrolled.write_text((out / "index.html").read_text().replace("</body>", _MEASURE))
    dom = _browse(chromium, scrolled.as_uri(), "--dump-dom", "--window-size=1400,1000").stdout
    found = re.search(r'data-measured="([^"]*)"', dom)
    assert found, "the page did not run its measuring script"
    measured = json.loads(html.unescape(found.group(1)))
    ks = measured[table_id("ks-small")]
    assert ks["scrolled"] > 200  # the table is wider than the page, so it scrolled
    (model_left, model_right, model_on_top), (label_left, label_right, label_on_top) = ks["cells"][:2]
    assert abs(model_left - ks["left"]) <= 1.5 and model_on_top
    assert abs(label_left - model_right) <= 1.5 and label_on_top and label_right < ks["right"]
    objective_left, _, objective_on_top = ks["cells"][2]
    assert objective_left < label_left and not objective_on_top  # scrolled under the sticky columns
    assert not ks["cells"][len(LEAD_HEADERS)][2]
