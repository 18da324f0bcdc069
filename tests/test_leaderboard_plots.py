"""Leaderboard plots a reader can use: legends beside the data, rows that draw nothing say why, frontier labels that
neither overlap nor leave the figure, and sample plots of truth, prediction and error rows with colourbars, ticks and
the grid's coordinates on their axes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from matplotlib.text import Text
from test_leaderboard import _plain, _result, _solver, _spectra

from pdebench.leaderboard import build_tables, plot_curves, plot_frontier, plot_sample, plot_spectra
from pdebench.leaderboard.plots import curves_figure, divergence_note, frontier_figure, sample_figure, spectra_figure

N_STEPS = 50  # as test_leaderboard's results


def _drawn(fig):
    """`fig` drawn (layout settled), with its renderer."""
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def _inside(inner, outer, slack: float = 0.5) -> bool:
    return (inner.x0 >= outer.x0 - slack and inner.x1 <= outer.x1 + slack and inner.y0 >= outer.y0 - slack
            and inner.y1 <= outer.y1 + slack)


def _legend_texts(legend) -> list[str]:
    return [t.get_text().replace("\n", " ") for t in legend.get_texts()]


def _diverged(label: str, seed: int, bad_from: int | None, **extra) -> dict:
    """A result whose nRMSE and correlation curves are not finite (None, as written) from 0-based index `bad_from`
    on (None: finite throughout)."""
    result = _plain(_result(label, seed, 10.0, 0.5, **extra))
    if bad_from is not None:
        for key in ("nrmse", "corr"):
            result["curves"][key][bad_from:] = [None] * (N_STEPS - bad_from)
    return result


def test_divergence_note_names_the_step_and_the_seeds() -> None:
    steps = np.arange(1.0, 7.0)
    nan = np.nan
    assert divergence_note(np.array([1.0, 2, 3, 4, 5, 6]), steps) == ""
    assert divergence_note(np.full(6, nan), steps) == " (no finite values)"
    assert divergence_note(np.array([1.0, 2, nan, nan, nan, nan]), steps) == " (diverged at step 3)"
    assert divergence_note(np.array([1.0, 2, 3, 4, nan, nan]), steps, 1, 3) == " (1 of 3 seeds diverged at step 5)"
    assert divergence_note(np.array([1.0, nan, 3, nan, 5, 6]), steps) == " (not finite at 2 of 6 steps)"
    assert divergence_note(np.array([1.0, 2, nan]), np.array([4.0, 8, 12])) == " (diverged at step 12)"


def test_curve_legends_sit_beside_the_axes_and_rows_that_draw_nothing_say_why(tmp_path) -> None:
    """Twelve rows: the legend lies outside the axes (so no curve is covered) and inside the figure; a solver row
    with no finite value is listed as such, one that blew up at step 8 says so and is marked where it stopped, and a
    row where one of two seeds diverged says which share."""
    results = [_plain(_result(f"model{i:02d}-with-a-long-label", 0, 10.0 + i, 0.5)) for i in range(9)]
    results += [_diverged("solver-dt4x", 0, 0, model="solver", checkpoint_sha256=None),
                _diverged("solver-n32", 0, 7, model="solver", checkpoint_sha256=None),
                _diverged("unet", 0, None), _diverged("unet", 1, 20)]
    table = build_tables(results)[0]
    for metric in ("nrmse", "corr"):
        fig = curves_figure(table, metric)
        renderer = _drawn(fig)
        (ax,) = fig.axes
        legend = ax.get_legend()
        box = legend.get_window_extent(renderer)
        assert not _overlap(box, ax.get_window_extent(renderer)), metric
        assert _inside(box, fig.bbox), metric
        texts = _legend_texts(legend)
        assert len(texts) == len(table.rows) + (metric == "corr")  # every row, and the reference line
        assert "solver-dt4x (1 seed) (no finite values)" in texts
        assert "solver-n32 (1 seed) (diverged at step 8)" in texts
        assert "unet (2 seeds) (1 of 2 seeds diverged at step 21)" in texts
        assert "model00-with-a-long-label (1 seed)" in texts
        # the last finite value of solver-n32 (step 7) is marked with a cross in its line's colour
        line = next(li for li in ax.get_lines() if li.get_label().startswith("solver-n32"))
        cross = [li for li in ax.get_lines() if li.get_marker() == "x"]
        assert any(c.get_color() == line.get_color() and c.get_xdata()[0] == pytest.approx(7 * 0.8) for c in cross)
    assert plot_curves(table, tmp_path / "nrmse.png", "nrmse").read_bytes()[:4] == b"\x89PNG"


def test_an_isolated_finite_value_is_drawn_as_a_dot() -> None:
    result = _diverged("solver", 0, 1, model="solver", checkpoint_sha256=None)
    fig = curves_figure(build_tables([result])[0], "nrmse")
    (ax,) = fig.axes
    dots = [li for li in ax.get_lines() if li.get_marker() == "."]
    assert len(dots) == 1 and list(dots[0].get_xdata()) == pytest.approx([0.8])


def test_spectra_legend_sits_beside_the_panels_and_names_rows_it_cannot_draw(tmp_path) -> None:
    blown = _spectra(1.0)
    blown["pred"] = np.full_like(blown["pred"], np.nan)
    late = _spectra(0.9)
    late["pred"][1] = np.nan  # finite at step 1, not at step 3
    other = _spectra(1.0)
    other["steps"] = [2, 4]
    results = [_result("fno", 0, 10.0, 0.5, spectra=_spectra(0.9)), _result("unet", 0, 9.0, 0.5, spectra=late),
               _result("solver-dt4x", 0, 8.0, 0.5, model="solver", checkpoint_sha256=None, spectra=blown),
               _result("mpnn", 0, 7.0, 0.5, spectra=other)]
    table = build_tables([_plain(r) for r in results])[0]
    fig = spectra_figure(table)
    renderer = _drawn(fig)
    panels = [ax for ax in fig.axes if ax.get_title().startswith("step ")]
    assert [ax.get_title() for ax in panels] == ["step 1", "step 3"]
    (legend,) = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    box = legend.get_window_extent(renderer)
    assert all(not _overlap(box, ax.get_window_extent(renderer)) for ax in panels)
    suptitle = next(t for t in fig.texts if t.get_text().startswith("ks-small: energy spectra"))
    assert _inside(box, fig.bbox) and not _overlap(box, suptitle.get_window_extent(renderer))
    assert _legend_texts(legend) == ["truth", "fno", "unet (no finite values at step 3)",
                                     "solver-dt4x (no finite values)",
                                     "mpnn (spectra kept at other steps or shells: not drawn)"]
    assert plot_spectra(table, tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def _crowded_table():
    """Eight solver settings packed into a corner of the plane (labels at fixed offsets would overprint each other),
    a long-named one at the far right edge, and two surrogates."""
    solver = [_solver(f"solver-n{48 + 8 * i}", 10.0 + 0.2 * i, 1000.0 * (1.0 + 0.03 * i), stored=i == 0)
              for i in range(8)]
    solver.append(_solver("solver-with-a-rather-long-setting-name-dt8x", 2.0, 1e6, stored=False))
    surrogates = [_result("fno", 0, 10.5, 0.5, throughput_traj_steps_per_s=1100.0),
                  _result("unet", 0, 30.0, 0.5, throughput_traj_steps_per_s=50.0),
                  _result("diverged", 0, 10.0, 0.5, throughput_traj_steps_per_s=2000.0)]
    results = [_plain(r) for r in (*solver, *surrogates)]
    results[-1]["summary"]["corr_time_0.8"] = None
    return build_tables(results)[0]


def test_frontier_labels_do_not_overlap_and_stay_inside_the_figure(tmp_path) -> None:
    table = _crowded_table()
    fig = frontier_figure(table)
    renderer = _drawn(fig)
    (ax,) = fig.axes
    notes = [t for t in ax.texts if t.get_text()]
    assert sorted(t.get_text() for t in notes) == sorted(row["name"] for row in table.rows
                                                         if row["name"] != "diverged")
    boxes = [Text.get_window_extent(t, renderer) for t in notes]  # the text alone, without its leader line
    frame = ax.get_window_extent(renderer)
    for (a, ta), (b, tb) in itertools.combinations(zip(boxes, notes, strict=True), 2):
        assert not _overlap(a, b), (ta.get_text(), tb.get_text())
    assert all(_inside(box, frame) for box in boxes)  # hence inside the figure, clear of the legend
    # no label covers a point
    points = ax.transData.transform([(row["throughput_traj_steps_per_s"]["mean"], row["corr_time_0.8"]["mean"])
                                     for row in table.rows if row["name"] != "diverged"])
    assert not any(b.x0 < x < b.x1 and b.y0 < y < b.y1 for b in boxes for x, y in points)
    assert any(t.arrow_patch is not None for t in notes)  # labels set off from a crowded point get a leader line
    legend = _legend_texts(ax.get_legend())
    assert "diverged (no finite corr_time_0.8: not drawn)" in legend
    assert _inside(ax.get_legend().get_window_extent(renderer), fig.bbox)
    assert plot_frontier(table, tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


def _sample_table(space: tuple[int, ...], axes: list | None = None, stride: list | None = None, pred_nan_from=None):
    rng = np.random.default_rng(1)
    true = rng.standard_normal((5, *space))
    pred = true + 0.1
    if pred_nan_from is not None:
        pred[pred_nan_from:] = np.nan
    sample = {"trajectory": 3, "field": "u", "step": [1, 3, 5, 7, 9], "time": [0.8, 2.4, 4.0, 5.6, 7.2],
              "time_stride": 2, "space_stride": stride or [1] * len(space), "true": true, "pred": pred}
    if axes is not None:
        sample["axes"] = axes
    return build_tables([_plain(_result("fno", 0, 10.0, 0.5, sample=sample))])[0], true


def _images_and_bars(fig):
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    images = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    return images, bars


def _check_readable(fig) -> None:
    """Every panel has ticks on both axes; no colourbar label overlaps a title or the suptitle."""
    renderer = _drawn(fig)
    images, bars = _images_and_bars(fig)
    shown = {ax.get_title(loc) for ax in images for loc in ("left", "center")} - {""}
    titles = [t.get_window_extent(renderer) for t in fig.findobj(Text)
              if t.get_text() and (t.get_text() in shown or t.get_text().startswith("ks-small: test trajectory"))]
    assert len(titles) == len(images) + 1  # every panel's title and the suptitle
    for ax in images:
        assert len(ax.get_xticks()) >= 2 and len(ax.get_yticks()) >= 2
        assert ax.xaxis.get_major_ticks()[0].tick1line.get_visible()
        assert ax.yaxis.get_major_ticks()[0].tick1line.get_visible()
    for bar in bars:
        label = bar.yaxis.label
        assert label.get_text()
        box = label.get_window_extent(renderer)
        assert not any(_overlap(box, title) for title in titles), label.get_text()
        assert _inside(box, fig.bbox)


def test_one_d_sample_rows_colourbars_and_coordinates(tmp_path) -> None:
    """A 1-D sample kept on every 2nd point of 256: three rows (truth, prediction, error) each with a colourbar;
    space runs along the stored coordinates, x in units of L from 0 to 255/256 (cell edges half a spacing beyond)."""
    x = np.arange(0, 256, 2) / 256
    table, true = _sample_table((128,), [{"name": "x", "units": "1 (fraction of L)", "values": x}], [2])
    fig = sample_figure(table)
    images, bars = _images_and_bars(fig)
    assert len(images) == 3 and len(bars) == 3
    assert [ax.get_title("left") for ax in images] == ["truth", "prediction: fno", "error"]
    assert [bar.yaxis.label.get_text() for bar in bars] == ["u", "u", "u: prediction − truth"]
    for ax in images:
        assert ax.get_ylabel() == "x (fraction of L)"
        assert ax.get_ylim() == pytest.approx((-1 / 256, 255 / 256))
    assert images[-1].get_xlabel() == "rollout time (PDE time units)"
    assert images[-1].get_xlim() == pytest.approx((0.0, 8.0))  # frames at 0.8 ... 7.2, 1.6 apart
    mesh = images[0].collections[0]
    np.testing.assert_allclose(mesh.get_array().reshape(128, 5), true.T)  # space up, time across
    error = images[2].collections[0]
    assert error.norm.vmin == pytest.approx(-error.norm.vmax) and error.norm.vmax == pytest.approx(0.1)
    _check_readable(fig)
    assert plot_sample(table, tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def test_a_sample_without_coordinates_counts_points_of_the_full_grid() -> None:
    """256 points kept every 2nd: the axis reads grid indices 0 to 254, not 0 to 127."""
    table, _ = _sample_table((128,), stride=[2])
    images, _ = _images_and_bars(sample_figure(table))
    assert images[0].get_ylabel() == "x (grid index)"
    assert images[0].get_ylim() == pytest.approx((-1.0, 255.0))
    # stored coordinates that do not fit the array are not used
    table, _ = _sample_table((128,), [{"name": "x", "units": "m", "values": [0.0, 1.0]}], [2])
    assert _images_and_bars(sample_figure(table))[0][0].get_ylabel() == "x (grid index)"


def test_two_d_sample_rows_colourbars_ticks_and_orientation(tmp_path) -> None:
    """A 2-D sample on a (x, y) box: 3 rows x 3 frames (first, middle, last), one colourbar per row, x across each
    panel and y up, axes in the file's units; a prediction that stops being finite says so in its row's title."""
    x, y = (np.arange(6) + 0.5) * 2.0, (np.arange(4) + 0.5) * 2.0
    axes = [{"name": "x", "units": "length units", "values": x}, {"name": "y", "units": "length units", "values": y}]
    table, true = _sample_table((6, 4), axes, pred_nan_from=3)
    fig = sample_figure(table)
    images, bars = _images_and_bars(fig)
    assert len(images) == 9 and len(bars) == 3
    assert [ax.get_title("left") for ax in images[::3]] == [
        "truth, t = 0.8", "prediction: fno (not finite from t = 5.6: blank), t = 0.8", "error, t = 0.8"]
    assert [ax.get_title("left") for ax in images[:3]] == ["truth, t = 0.8", "t = 4", "t = 7.2"]
    assert {ax.get_xlabel() for ax in images[6:]} == {"x (length units)"}
    assert {ax.get_ylabel() for ax in images[::3]} == {"y (length units)"}
    assert images[0].get_xlim() == pytest.approx((0.0, 12.0)) and images[0].get_ylim() == pytest.approx((0.0, 8.0))
    np.testing.assert_allclose(images[1].collections[0].get_array().reshape(4, 6), true[2].T)  # frame 2: [y, x]
    _check_readable(fig)
    # lat x lon: lon across, latitudes (north to south in the file) up
    lat, lon = np.array([60.0, 20.0, -20.0, -60.0]), np.arange(6) * 60.0
    sphere = [{"name": "lat", "units": "degrees_north", "values": lat},
              {"name": "lon", "units": "degrees_east", "values": lon}]
    table, true = _sample_table((4, 6), sphere)
    images, _ = _images_and_bars(sample_figure(table))
    assert images[-1].get_xlabel() == "lon (degrees_east)" and images[0].get_ylabel() == "lat (degrees_north)"
    assert images[0].get_ylim() == pytest.approx((-80.0, 80.0))
    np.testing.assert_allclose(images[0].collections[0].get_array().reshape(4, 6), true[0])
    assert plot_sample(table, tmp_path / "sphere.png").read_bytes()[:4] == b"\x89PNG"
