"""What a published board (`pdebench-board`) reports beside its tables: each entry against a baseline entry on the
headline metric, and each ensemble's spread against its error over rollout time, read from the result files.

Everything here is computed from result records (`pdebench-evaluate`'s JSON), so every number `board.json` and
`board.md` hold comes from a result file the board's command wrote. Seeds are averaged as the tables average them:
values by their mean, 95% interval ends by the mean of each end.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pdebench.leaderboard.render import md_code, md_escape

# The steps at which an ensemble's spread and error are listed (those past the rollout's end are left out).
SPREAD_STEPS = (1, 5, 10, 25, 50, 100)


def _mean(values: Sequence[float | None]) -> float | None:
    """The mean of `values`, None where any is missing or not finite (a diverged seed is never averaged away)."""
    if not values or any(v is None or not math.isfinite(v) for v in values):
        return None
    return float(np.mean(values))


def _seed_mean(results: Sequence[Mapping[str, Any]], key: str) -> float | None:
    return _mean([r["summary"].get(key) for r in results])


def _seed_interval(results: Sequence[Mapping[str, Any]], key: str) -> list[float] | None:
    ends = [(r.get("intervals") or {}).get(key) for r in results]
    if any(e is None for e in ends):
        return None
    low, high = _mean([e[0] for e in ends]), _mean([e[1] for e in ends])
    return None if low is None or high is None else [low, high]


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def row_summary(label: str, results: Sequence[Mapping[str, Any]], headline: str) -> dict[str, Any]:
    """One entry's numbers over its seeds: headline and interval, one-step nRMSE, throughput, speed-ups off the
    solver frontier, training time and parameters."""
    frontiers = [r.get("frontier") or {} for r in results]
    return {
        "label": label, "seeds": sorted(int(r["seed"]) for r in results),
        headline: _seed_mean(results, headline), f"{headline}_interval": _seed_interval(results, headline),
        "one_step_nrmse": _seed_mean(results, "one_step_nrmse"),
        "throughput_traj_steps_per_s": _mean([r.get("throughput_traj_steps_per_s") for r in results]),
        "speedup_at_equal_accuracy": _mean([f.get("speedup") for f in frontiers]),
        "frontier_status": sorted({str(f.get("status")) for f in frontiers}),
        "speedup_at_equal_grid": _mean([f.get("speedup_at_equal_grid") for f in frontiers]),
        "train_time_s": _mean([r.get("train_time_s") for r in results]),
        "n_parameters": results[0].get("n_parameters"),
    }


def against_baseline(rows: Sequence[Mapping[str, Any]], baseline: str, headline: str) -> list[dict[str, Any]]:
    """Each row's headline over the baseline row's (`baseline`, a label), with a conservative interval of the
    ratio: the ends of the two 95% intervals divided crosswise (low over high, high over low), wider than a paired
    bootstrap would give, so a ratio whose interval excludes 1 is a difference this test set resolves."""
    base = next((r for r in rows if r["label"] == baseline), None)
    if base is None:
        raise KeyError(f"no row labelled {baseline!r} among {[r['label'] for r in rows]}")
    b, b_ci = base[headline], base[f"{headline}_interval"]
    out = []
    for row in rows:
        a, a_ci = row[headline], row[f"{headline}_interval"]
        ci = None
        if a_ci is not None and b_ci is not None and b_ci[0] > 0:
            ci = [a_ci[0] / b_ci[1], a_ci[1] / b_ci[0]]
        out.append({"label": row["label"], "over": baseline, "ratio": _ratio(a, b), "ratio_interval": ci})
    return out


def spread_against_error(label: str, results: Sequence[Mapping[str, Any]], horizon: int) -> dict[str, Any] | None:
    """An ensemble's spread (std of its members about their mean, from `curves.spread2`) against the error of its
    mean (RMSE, from `curves.ens_mse`) over rollout steps, seeds averaged: their Pearson correlation over the first
    `horizon` steps (before the errors saturate) and over the whole rollout, the spread/skill ratio, and both at
    `SPREAD_STEPS`. None for a deterministic row (no `spread2` curve)."""
    if any("spread2" not in r["curves"] or "ens_mse" not in r["curves"] for r in results):
        return None
    spread = np.mean([np.sqrt(np.asarray(r["curves"]["spread2"], dtype=float)) for r in results], axis=0)
    error = np.mean([np.sqrt(np.asarray(r["curves"]["ens_mse"], dtype=float)) for r in results], axis=0)
    steps = np.asarray(results[0]["curves"]["step"])

    def pearson(n: int) -> float | None:
        s, e = spread[:n], error[:n]
        if len(s) < 3 or not (np.all(np.isfinite(s)) and np.all(np.isfinite(e))) or s.std() == 0 or e.std() == 0:
            return None
        return float(np.corrcoef(s, e)[0, 1])

    at = [int(k) for k in SPREAD_STEPS if k <= int(steps[-1])]
    index = {int(k): i for i, k in enumerate(steps)}
    return {
        "label": label, "members": results[0].get("scoring", {}).get("ensemble"),
        "crps_mean": _seed_mean(results, "crps_mean"),
        "spread_skill_ratio": _seed_mean(results, "spread_skill_ratio"), "horizon_steps": horizon,
        "correlation_first_steps": pearson(horizon), "correlation_all_steps": pearson(len(spread)),
        "steps": at, "spread": [float(spread[index[k]]) for k in at], "error": [float(error[index[k]]) for k in at],
    }


def board_report(results_by_label: Mapping[str, Sequence[Mapping[str, Any]]], baseline: str) -> dict[str, Any]:
    """The `comparisons` of `board.json`: every row's summary, its headline over `baseline`'s, and the ensembles'
    spread against error. `results_by_label` maps each learned row's label to its seeds' result records."""
    if not results_by_label:
        raise ValueError("no results to report on")
    first = next(iter(results_by_label.values()))[0]
    headline = first["benchmark"]["headline"]
    horizon = int(first["benchmark"]["gmean_steps"])
    rows = [row_summary(label, results, headline) for label, results in results_by_label.items()]
    spreads = [s for label, results in results_by_label.items()
               if (s := spread_against_error(label, results, horizon)) is not None]
    return {"headline": headline, "baseline": baseline, "rows": rows,
            "against_baseline": against_baseline(rows, baseline, headline), "ensembles": spreads}


def _fmt(value: Any, spec: str = ".4g") -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    return format(float(value), spec)


def _interval(ci: Sequence[float] | None) -> str:
    return "" if ci is None else f" [{_fmt(ci[0])}, {_fmt(ci[1])}]"


def _at_steps(steps: Sequence[int], values: Sequence[float]) -> str:
    return ", ".join(f"{k}: {_fmt(v, '.3g')}" for k, v in zip(steps, values, strict=True))


def render_board_md(record: Mapping[str, Any]) -> str:
    """`board.md`: `board.json` as a page, every number printed from that record. Every text of the record
    (labels, departures, commits, the command: read from result files and the command line) is written as literal
    Markdown (`md_escape`, `md_code`), never as markup."""
    comp = record["comparisons"]
    headline = comp["headline"]
    machine = record["machine"]
    lines = [
        f"# {md_escape(record['board'])} board, {md_escape(record['scale'])} scale: how it was built",
        "",
        "Written by `pdebench-board` from the result files in `results/` (every number below is in `board.json` "
        "or a result file). The narrative is in `README.md`.",
        "",
        f"- command: {md_code(record['command'])}",
        f"- dataset: {md_code(record['dataset'])}, manifest sha256 "
        f"{', '.join(md_code(h) for h in record['manifest_sha256'])}",
        f"- source: git commit {md_code(str(record['git_commit']))}, built {md_escape(record['date'])}",
        f"- machine: {md_escape(machine['cpu'])}, {machine['logical_cpus']} logical CPUs, "
        f"{md_escape(machine['system'])}, Python {md_escape(machine['python'])}; "
        f"launcher {md_escape(record['launcher'])}",
        f"- seeds: {', '.join(map(str, record['seeds']))}; training overrides of every entry: "
        f"{', '.join(md_code(o) for o in record['train_overrides']) or 'none'}",
        "- wall time of each step (s; the last time it had work): "
        + ", ".join(f"{md_escape(k)} {_fmt(v, '.0f')}" for k, v in record["step_wall_s"].items()),
        "",
        "## Entries",
        "",
        "| entry | label | seed | parameters | training wall time (s) | trained at, evaluated at | departures from the "
        "recipe |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for e in record["entries"]:
        commits = ", ".join(md_code(str(c)[:7]) if c else "—" for c in (e.get("train_commit"), e["git_commit"]))
        departures = md_escape("; ".join(e["deviations"] or [])) or "—"
        lines.append(f"| {md_escape(e['entry'])} | {md_escape(e['label'])} | {e['seed']} | {_fmt(e['n_parameters'])} | "
                     f"{_fmt(e['train_time_s'], '.0f')} | {commits} | {departures} |")
    ratios = {r["label"]: r for r in comp["against_baseline"]}
    metric, baseline = md_escape(headline), md_escape(comp["baseline"])
    lines += ["", f"## {metric} against {baseline}", "",
              "Seed means; brackets: 95% intervals (bootstrap over test trajectories; the ratio's interval divides "
              "the two intervals' ends crosswise, so it is conservative).", "",
              f"| label | {metric} | ratio over {baseline} | one-step nRMSE | throughput (traj-steps/s) | "
              "speed-up at equal accuracy (x) | frontier | speed-up at equal grid (x) |",
              "|---|---:|---:|---:|---:|---:|---|---:|"]
    for row in comp["rows"]:
        ratio = ratios[row["label"]]
        lines.append(f"| {md_escape(row['label'])} | {_fmt(row[headline])}{_interval(row[f'{headline}_interval'])} | "
                     f"{_fmt(ratio['ratio'])}{_interval(ratio['ratio_interval'])} | {_fmt(row['one_step_nrmse'])} | "
                     f"{_fmt(row['throughput_traj_steps_per_s'])} | {_fmt(row['speedup_at_equal_accuracy'])} | "
                     f"{md_escape(', '.join(row['frontier_status']))} | {_fmt(row['speedup_at_equal_grid'])} |")
    if comp["ensembles"]:
        lines += ["", "## Ensembles: spread against error over rollout time", "",
                  "Spread: RMS std of the members about their mean; error: RMSE of the ensemble mean (both "
                  "trajectory means, seed means). Correlation: Pearson's over steps.", "",
                  "| label | members | CRPS | spread/skill | corr(spread, error), first steps | all steps | "
                  "spread at steps | error at steps |", "|---|---:|---:|---:|---:|---:|---|---|"]
        for s in comp["ensembles"]:
            lines.append(f"| {md_escape(s['label'])} | {s['members']} | {_fmt(s['crps_mean'])} | "
                         f"{_fmt(s['spread_skill_ratio'])} | "
                         f"{_fmt(s['correlation_first_steps'], '.3f')} ({s['horizon_steps']} steps) | "
                         f"{_fmt(s['correlation_all_steps'], '.3f')} | {_at_steps(s['steps'], s['spread'])} | "
                         f"{_at_steps(s['steps'], s['error'])} |")
    lines += ["", "## Scales of this board", "", "| scale | preset | seeds | entries | training overrides |",
              "|---|---|---|---|---|"]
    for name, scale in record["scales"].items():
        group = scale["entry_group"]
        entries = f"`+{group}=<entry>`" if group and _GROUP.fullmatch(group) else (
            md_escape(f"+{group}=<entry>") if group else "`experiment=<entry>`")
        lines.append(f"| {md_escape(name)} | {md_escape(scale['preset'])} | {', '.join(map(str, scale['seeds']))} | "
                     f"{entries} | {', '.join(md_code(o) for o in scale['train'])} |")
    return "\n".join(lines) + "\n"


# A number as the tables print it: digits with thousands commas, a decimal part, an exponent; not part of a name
# (`unet-w16`, `solver-n48-dt4x`, a hash), which the look-behind and look-ahead leave out; a full stop or comma after it
# ends it.
_NUMBER = re.compile(r"(?<![\w.\-])-?\d(?:\d|,(?=\d))*(?:\.\d+)?(?:e[-+]?\d+)?(?!\w|\.\d)")
_GROUP = re.compile(r"[\w/.-]+")  # a config group's name: safe inside a code span
_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)
# Arrays of a result that no table prints: left out of the sources, so that a number typed by hand cannot match
# one of their many thousands of values by chance.
_ARRAYS = ("curves", "sample", "spectra")


def _collect(value: Any, out: list[float], key: str = "") -> None:
    if key in _ARRAYS:
        return
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        if math.isfinite(value):
            out.append(float(value))
    elif isinstance(value, str):
        out.extend(float(t.replace(",", "")) for t in _NUMBER.findall(value))
    elif isinstance(value, Mapping):
        for k, v in value.items():
            _collect(v, out, str(k))
    elif isinstance(value, (list, tuple)):
        for v in value:
            _collect(v, out, key)


def source_numbers(records: Sequence[Any]) -> np.ndarray:
    """Every number of `records` (result files, `board.json`, the board file) a table may print: their values
    (the arrays of `_ARRAYS` left out), the numbers inside their strings, and per label of result records the seed
    std of each summary value (the tables print `mean ± std`; seed means are matched through the seeds' values)."""
    out: list[float] = []
    by_label: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        _collect(record, out)
        if isinstance(record, Mapping) and "summary" in record and "label" in record:
            by_label.setdefault(f"{record.get('dataset')}/{record['label']}", []).append(record)
    for seeds in by_label.values():
        if len(seeds) > 1:
            for key in seeds[0]["summary"]:
                values = [s["summary"].get(key) for s in seeds]
                if all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
                    out.extend([float(np.mean(values)), float(np.std(values, ddof=1))])
    return np.unique(np.asarray(out, dtype=np.float64))


def _printed_as(token: str, sources: np.ndarray, scale: float = 1.0) -> bool:
    """Whether some source value times `scale` prints as `token`: within half a unit of its last printed digit
    (`scale` 100 for a percentage)."""
    text = token.replace(",", "")
    value = float(text) / scale
    mantissa, _, exponent = text.lower().partition("e")
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    half = 0.5 * 10.0 ** (-decimals + (int(exponent) if exponent else 0)) / scale
    i = np.searchsorted(sources, value - half * (1 + 1e-9))
    return bool(i < len(sources) and sources[i] <= value + half * (1 + 1e-9))


def untraceable_numbers(markdown: str, sources: np.ndarray) -> list[str]:
    """The numbers printed in `markdown` that no value of `sources` (`source_numbers`) prints as: numbers typed by
    hand, or a table gone stale against its result files. Empty when every number is traceable. Code (fenced
    blocks and `spans`) is left out: it holds commands, overrides and commit hashes, names rather than results."""
    markdown = _CODE.sub(" ", markdown)
    missing = []
    for match in _NUMBER.finditer(markdown):
        token = match.group()
        percent = markdown[match.end():match.end() + 1] == "%"  # `95%` is the 0.95 of a record
        if not (_printed_as(token, sources) or percent and _printed_as(token, sources, 100.0)):
            missing.append(token + ("%" if percent else ""))
    return missing
