"""Leaderboard tables: group result files into tables and rows, aggregate seeds, rank by the headline metric.

Grouping rules (what makes two results comparable):

* A **table** is one dataset as generated once: results are grouped by (`dataset`, `manifest_sha256`). Results of a
  dataset that was regenerated (another manifest hash) go to a separate table named `<dataset>@<hash[:8]>`, never
  into the same rows or ranking.
* A **row** is one (label, model, objective) in one table; its results are the seeds. A persistence result labelled
  `fno` is a row of its own next to the FNO, never averaged with it. Two results with the same seed in one row are
  an error naming both files.

Aggregation (per row and column): `mean` over seeds and the sample standard deviation `std` (ddof=1; 0 for one
seed). If any seed lacks a value or has `None` (undefined or not finite, e.g. a diverged rollout) the cell is
`None`: a model is not credited with the seeds that survived. Where the result files carry a 95% bootstrap interval
over test trajectories (`intervals`), the cell holds the seed mean of its ends. Time metrics carry their ceiling
(the rollout length). Rows are sorted by the headline metric that the result files copied from the dataset's
manifest (`benchmark.headline`, `benchmark.headline_goal`; :data:`DEFAULT_HEADLINE` where a file records none);
`None` sorts last, ties by label.

Speed-ups come from the table's own `solver` rows (the dataset's numerical solver at the stored and at coarser
settings): speed-up at equal accuracy reads the solver throughput that reaches a row's headline value off the solver
frontier (`pdebench.rollout.frontier`), speed-up at equal grid divides by the stored-setting solver. Only solver rows
measured on the same kind of device (cpu, cuda, ...) count, since throughputs on different hardware do not compare.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from pdebench.config import ObjectiveConfig
from pdebench.leaderboard.loading import SOURCE_KEY, skip
from pdebench.rollout.frontier import FrontierPoint, speedup_at_equal_accuracy
from pdebench.rollout.results import ResultError

DEFAULT_HEADLINE: tuple[str, str] = ("vrmse_mean", "asc")
"""(summary key, "asc" | "desc") for results that record no benchmark facts."""

SOLVER_MODEL = "solver"
"""Model name of the numerical-solver reference rows, which make the accuracy-cost frontier."""

DERIVED = "_derived"
"""Key of the speed-ups :func:`build_tables` attaches to a result (a result file's own value is dropped)."""

SPEEDUP_ACCURACY = "speedup_equal_accuracy"
SPEEDUP_GRID = "speedup_equal_grid"

_CORR_TIME = re.compile(r"^corr_time_(\d+(?:\.\d+)?)$")
_WINDOW = re.compile(r"^nrmse_steps_(\d+)(?:-(\d+))?$")
_OBJECTIVE_DEFAULTS = asdict(ObjectiveConfig())


@dataclass(frozen=True)
class Column:
    """One value column of a table.

    key: summary key (or top-level result key such as `n_parameters`, or a derived speed-up key); title: header
    text; unit: shown in the header; ceiling: summary key of the ceiling this time metric is shown against.
    """

    key: str
    title: str
    unit: str = ""
    ceiling: str | None = None
    interval: bool = False

    @property
    def header(self) -> str:
        return f"{self.title} ({self.unit})" if self.unit else self.title


@dataclass
class Table:
    """One leaderboard table: the rows of one dataset manifest, ranked by `headline`.

    name: `dataset`, or `dataset@<manifest[:8]>` when the dataset has results from several manifests.
    rows: see :func:`build_tables`; results: the member result dicts (solver rows included).
    """

    name: str
    dataset: str
    pde: str
    manifest: str | None
    headline: tuple[str, str]
    columns: tuple[Column, ...]
    rows: list[dict[str, Any]]
    results: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    @property
    def frontier(self) -> list[dict[str, Any]]:
        """The solver rows, as `{"name", "accuracy", "throughput", "device"}` (means over seeds)."""
        return [p for p in (_solver_point(row, self.headline[0]) for row in self.rows) if p is not None]


def headline_of(results: Sequence[dict]) -> tuple[str, str]:
    """The (summary key, "asc" | "desc") one table's results are sorted by: the `benchmark` facts the result files
    copied from the dataset's manifest (`headline`, `headline_goal`), else :data:`DEFAULT_HEADLINE`.

    Raises:
        ResultError: results of one dataset record different headlines.
    """
    found = {(str(b["headline"]), "desc" if b.get("headline_goal") == "max" else "asc")
             for r in results if isinstance(b := r.get("benchmark"), dict) and b.get("headline")}
    if len(found) > 1:
        raise ResultError(f"results of dataset {results[0]['dataset']!r} disagree on the headline metric: {found}")
    return found.pop() if found else DEFAULT_HEADLINE


def _summary_keys(results: Sequence[dict]) -> set[str]:
    return {key for r in results for key in (r.get("summary") or {})}


def _windows(keys: set[str]) -> list[str]:
    """Window keys (`2-5`, `6-12`, ...) of the nRMSE window means, by first step; the one-step window is left out
    (it equals `one_step_nrmse`)."""
    found = [(int(m.group(1)), int(m.group(2) or m.group(1)), key) for key in keys if (m := _WINDOW.match(key))]
    return [key.removeprefix("nrmse_steps_") for first, last, key in sorted(found) if (first, last) != (1, 1)]


def value_columns(results: Sequence[dict]) -> tuple[Column, ...]:
    """The value columns of one table, from what its results hold.

    Parameters; the headline metric (if none of the following); one-step nRMSE; nRMSE window means (those some
    result has a value for: a window that starts past the rollout's end is left out); the nRMSE
    geometric mean; the high-correlation time of every threshold the results were scored with, with the median
    first crossing of the lowest; the rollout length (the ceiling of every time metric); the stable horizon against
    its ceiling; CRPS and spread-skill where some result is an ensemble; throughput, the two speed-ups and the
    train time. The high-correlation times and the headline show their bootstrap intervals.
    """
    keys = _summary_keys(results)
    gmean_steps = {r["summary"].get("nrmse_gmean_steps") for r in results if r["summary"].get("nrmse_gmean_steps")}
    gmean_title = "nRMSE gmean" + (f" steps 1-{gmean_steps.pop()}" if len(gmean_steps) == 1 else "")
    thresholds = sorted({m.group(1) for key in keys if (m := _CORR_TIME.match(key))}, key=float)
    columns = [Column("n_parameters", "parameters"), Column("one_step_nrmse", "one-step nRMSE")]
    columns += [Column(f"nrmse_steps_{w}", f"nRMSE steps {w}") for w in _windows(keys)
                if any(_number(r["summary"].get(f"nrmse_steps_{w}")) is not None for r in results)]
    columns.append(Column("nrmse_gmean", gmean_title))
    columns += [Column(f"corr_time_{t}", f"corr > {t} time", ceiling="time_ceiling",
                       interval=True) for t in thresholds]
    if thresholds:
        columns.append(Column(f"corr_time_median_{thresholds[0]}", f"median time to corr ≤ {thresholds[0]}",
                              ceiling="time_ceiling_median"))
    columns.append(Column("time_ceiling", "rollout length"))
    columns.append(Column("stable_horizon_median", "stable horizon / ceiling", ceiling="time_ceiling_median"))
    if "crps_mean" in keys:
        columns.append(Column("crps_mean", "CRPS"))
    if "spread_skill_ratio" in keys:
        columns.append(Column("spread_skill_ratio", "spread/skill"))
    columns += [Column("throughput_traj_steps_per_s", "throughput", "traj-steps/s"),
                Column(SPEEDUP_ACCURACY, "speed-up at equal accuracy", "x"),
                Column(SPEEDUP_GRID, "speed-up at equal grid", "x"),
                Column("train_time_s", "train time", "s")]
    headline = headline_of(results)[0]
    if headline not in {c.key for c in columns}:
        columns.insert(1, Column(headline, headline, interval=True))
    else:
        columns = [replace(c, interval=True) if c.key == headline else c for c in columns]
    return tuple(columns)


def objective_text(result: dict) -> str:
    """The objective a row was trained with, short: its name and the settings that differ from the defaults, e.g.
    `onestep target=difference`; `reference` (plus differing settings) for a row without a checkpoint."""
    objective = result.get("objective") or {}
    changed = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(objective.items())
               if k != "name" and k in _OBJECTIVE_DEFAULTS and v != _OBJECTIVE_DEFAULTS[k]]
    name = str(objective.get("name", "?")) if result.get("checkpoint_sha256") else "reference"
    return " ".join([name, *changed])


def _row_key(result: dict) -> tuple[str, str, str]:
    return (str(result["label"]), str(result["model"]), json.dumps(result.get("objective") or {}, sort_keys=True))


def _value(result: dict, key: str) -> Any:
    summary = result.get("summary") or {}
    if key in summary:
        return summary[key]
    derived = result.get(DERIVED) or {}
    if key in derived:
        return derived[key]
    return result.get(key)


def _number(v: Any) -> float | None:
    if v is None or isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def aggregate(values: Sequence[Any]) -> dict[str, float | None]:
    """`{"mean", "std"}` over seeds (sample std, 0 for one seed); both None if any value is missing or not finite."""
    numbers = [_number(v) for v in values]
    if not numbers or any(n is None for n in numbers):
        return {"mean": None, "std": None}
    arr = np.asarray(numbers, dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0}


def _interval(group: Sequence[dict], key: str) -> list[float] | None:
    """Seed means of the ends of the bootstrap interval of `key`; None unless every seed has one."""
    ends = []
    for r in group:
        iv = (r.get("intervals") or {}).get(key)
        if not isinstance(iv, (list, tuple)) or len(iv) != 2 or any(_number(v) is None for v in iv):
            return None
        ends.append([float(iv[0]), float(iv[1])])
    return np.asarray(ends).mean(axis=0).tolist() if ends else None


def _cell(group: Sequence[dict], column: Column) -> dict[str, Any]:
    cell: dict[str, Any] = aggregate([_value(r, column.key) for r in group])
    cell["interval"] = _interval(group, column.key) if cell["mean"] is not None else None
    cell["ceiling"] = aggregate([_value(r, column.ceiling) for r in group])["mean"] if column.ceiling else None
    statuses = {(r.get(DERIVED) or {}).get(f"{column.key}_status") for r in group} - {None}
    cell["status"] = statuses.pop() if len(statuses) == 1 else ("mixed" if statuses else None)
    return cell


def _device_kind(result: dict) -> str:
    return str(result.get("device") or "unknown").split(":")[0]


def _is_stored_setting(result: dict) -> bool:
    setting = result.get("solver_setting") or {}
    return setting.get("resolution") is None and float(setting.get("time_step_factor", 1.0)) == 1.0


def _solver_point(row: dict, metric: str) -> dict[str, Any] | None:
    if row["model"] != SOLVER_MODEL:
        return None
    accuracy, throughput = row[metric]["mean"], row["throughput_traj_steps_per_s"]["mean"]
    if accuracy is None or throughput is None:
        return None
    return {"name": row["name"], "accuracy": accuracy, "throughput": throughput,
            "device": _device_kind(row["results"][0]), "stored": _is_stored_setting(row["results"][0])}


def _derive_speedups(members: list[dict], headline: tuple[str, str]) -> None:
    """Attach `_derived` speed-ups to every non-solver result, against the solver rows of the same device kind."""
    metric, direction = headline
    goal = "max" if direction == "desc" else "min"
    solver_rows: dict[str, list[dict]] = {}
    for r in members:
        if r["model"] == SOLVER_MODEL:
            solver_rows.setdefault(r["label"], []).append(r)
    points: dict[str, list[FrontierPoint]] = {}
    stored: dict[str, float] = {}
    for label, group in solver_rows.items():
        accuracy = aggregate([_value(r, metric) for r in group])["mean"]
        throughput = aggregate([r.get("throughput_traj_steps_per_s") for r in group])["mean"]
        if accuracy is None or throughput is None:
            continue
        kind = _device_kind(group[0])
        points.setdefault(kind, []).append(FrontierPoint(label, accuracy, throughput))
        if _is_stored_setting(group[0]):
            stored[kind] = throughput
    for r in members:
        if r["model"] == SOLVER_MODEL:
            continue
        kind, throughput = _device_kind(r), _number(r.get("throughput_traj_steps_per_s"))
        derived: dict[str, Any] = {SPEEDUP_ACCURACY: None, SPEEDUP_GRID: None}
        if throughput is not None and points.get(kind):
            place = speedup_at_equal_accuracy(points[kind], _number(_value(r, metric)), throughput, goal)
            derived[SPEEDUP_ACCURACY], derived[f"{SPEEDUP_ACCURACY}_status"] = place["speedup"], place["status"]
        if throughput is not None and stored.get(kind):
            derived[SPEEDUP_GRID] = throughput / stored[kind]
        r[DERIVED] = derived


def _sort_key(row: dict, metric: str, direction: str) -> tuple:
    mean = row[metric]["mean"]
    tie = (row["label"], row["model"], row["objective"])
    if mean is None:
        return (1, 0.0, *tie)
    return (0, -mean if direction == "desc" else mean, *tie)


def _table_name(dataset: str, manifest: str | None, several: bool) -> str:
    return f"{dataset}@{(manifest or 'unknown')[:8]}" if several else dataset


def _rows(members: list[dict], columns: tuple[Column, ...], headline: tuple[str, str], name: str) -> list[dict]:
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for r in members:
        groups.setdefault(_row_key(r), []).append(r)
    labels = [key[0] for key in groups]
    rows = []
    for (label, model, _), group in groups.items():
        by_seed: dict[str, dict] = {}
        for r in group:
            seed = repr(r["seed"])
            if seed in by_seed:
                raise ResultError(
                    f"{by_seed[seed].get(SOURCE_KEY, '?')} and {r.get(SOURCE_KEY, '?')} are both seed {r['seed']} of "
                    f"row {label!r} (model {model}) in table {name!r}; pass each evaluation once")
            by_seed[seed] = r
        objective = objective_text(group[0])
        same_label = labels.count(label) > 1
        row: dict[str, Any] = {
            "name": f"{label} [{model}, {objective}]" if same_label else label,
            "label": label, "model": model, "objective": objective,
            "objective_config": group[0].get("objective"),
            "seeds": len(group), "seed_values": sorted((r["seed"] for r in group), key=repr),
            "headline": headline, "columns": tuple(c.key for c in columns),
            "results": sorted(group, key=lambda r: repr(r["seed"])),
        }
        for column in columns:
            row[column.key] = _cell(group, column)
        rows.append(row)
    rows.sort(key=lambda row: _sort_key(row, *headline))
    return rows


def build_tables(results: Sequence[dict]) -> list[Table]:
    """Group results into tables (one per dataset manifest) of aggregated, ranked rows.

    Each row holds `name` (the label, or `label [model, objective]` where a label has several rows), `label`,
    `model`, `objective` (see :func:`objective_text`), `objective_config`, `seeds` (count), `seed_values`,
    `headline`, `columns` (keys), `results` (its result dicts, by seed) and, per column key,
    `{"mean", "std", "interval": [low, high] | None, "ceiling": float | None, "status": str | None}` (`status`: where
    a speed-up at equal accuracy sits on the solver frontier, see `pdebench.rollout.frontier`).

    Warns:
        SkippedResultWarning: a result lacks its table's headline metric (a partial file); it is left out.

    Raises:
        ResultError: two results of one row have the same seed, or one table's results disagree on the headline.
    """
    by_dataset: dict[str, dict[str | None, list[dict]]] = {}
    for r in results:
        by_dataset.setdefault(str(r["dataset"]), {}).setdefault(r.get("manifest_sha256"), []).append(r)
    tables = []
    for dataset in sorted(by_dataset):
        manifests = by_dataset[dataset]
        for manifest in sorted(manifests, key=lambda m: m or ""):
            members = [{k: v for k, v in r.items() if k != DERIVED} for r in manifests[manifest]]  # ours alone
            headline = headline_of(members)
            kept = []
            for r in members:
                if headline[0] not in (r.get("summary") or {}) and headline[0] not in r:
                    skip(f"skipped: result file {r.get(SOURCE_KEY, '?')}: its summary lacks the headline metric "
                         f"{headline[0]!r} of dataset {dataset} (a partial result file)")
                else:
                    kept.append(r)
            if not kept:
                continue
            name = _table_name(dataset, manifest, len(manifests) > 1)
            _derive_speedups(kept, headline)
            columns = value_columns(kept)
            notes = []
            if len(manifests) > 1:
                notes.append(f"{dataset} has results from {len(manifests)} dataset manifests (the dataset was "
                             f"regenerated); this table holds those of manifest {manifest}, each manifest has its "
                             "own table.")
            tables.append(Table(name, dataset, str(kept[0]["pde"]), manifest, headline, columns,
                                _rows(kept, columns, headline, name), kept, notes))
    return tables


def leaderboard_rows(results: Sequence[dict]) -> dict[str, list[dict]]:
    """Table name -> its ranked rows (see :func:`build_tables`); tables in sorted order."""
    return {table.name: table.rows for table in build_tables(results)}

