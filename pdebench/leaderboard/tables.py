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

A row is also one rollout (:class:`pdebench.rollout.frontier.RolloutKind`: steps scored, time per step, gmean steps
and device kind): the same label evaluated on 3 steps and on 11 is two rows, named apart. Where a table's rows were
scored on different rollouts (models of different history on a short trajectory: ceilings of 12 and 18 time units),
their accuracies and time ceilings do not compare: every row's name says its rollout, the rows of each rollout are
ranked among themselves, and a note gives each rollout's length in time units.

Speed-ups come from the table's own `solver` rows (the dataset's numerical solver at the stored and at coarser
settings): speed-up at equal accuracy reads the solver throughput that reaches a row's headline value off the solver
frontier (`pdebench.rollout.frontier`), speed-up at equal grid divides by the stored-setting solver. Only solver rows
scored on the same rollout and measured on the same kind of device (cpu, cuda, ...) count: a row without such solver
rows gets no speed-up, and a table note says why ("no solver rows at 11 steps on cuda (solver rows: ...)").

Every result is read through its typed record (`pdebench.rollout.record.ResultRecord`) and every metric key through
`pdebench.rollout.keys`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from pdebench.config import ObjectiveConfig
from pdebench.leaderboard.loading import SOURCE_KEY, skip
from pdebench.rollout.frontier import (
    SOLVER_MODEL,
    FrontierPoint,
    RolloutKind,
    differing,
    is_stored_setting,
    place_on_frontier,
    rollout_kind,
)
from pdebench.rollout.keys import MetricKey, format_key, parse_key, threshold_key, window_key
from pdebench.rollout.record import ResultRecord
from pdebench.rollout.results import ResultError

__all__ = ["DEFAULT_HEADLINE", "DERIVED", "SOLVER_MODEL", "SPEEDUP_ACCURACY", "SPEEDUP_GRID", "Column", "Table",
           "aggregate", "build_tables", "headline_of", "leaderboard_rows", "objective_text", "recipe_text",
           "value_columns"]

DEFAULT_HEADLINE: tuple[str, str] = ("vrmse_mean", "asc")
"""(summary key, "asc" | "desc") for results that record no benchmark facts."""

DERIVED = "_derived"
"""Key of the speed-ups :func:`build_tables` attaches to a result (a result file's own value is dropped)."""

SPEEDUP_ACCURACY = "speedup_equal_accuracy"
SPEEDUP_GRID = "speedup_equal_grid"

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
    notes: sentences shown under the heading (several manifests, rows scored on different rollouts, rows without a
    speed-up and why).
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
        """The solver rows, as `{"name", "accuracy", "throughput", "device", "stored", "rollout"}` (means over
        seeds; `rollout`: the row's :class:`RolloutKind`)."""
        return [p for p in (_solver_point(row, self.headline[0]) for row in self.rows) if p is not None]


@dataclass
class _Member:
    """One result of a table: the dict as given (without a file's own `_derived`), its typed record, how it was
    measured, and the speed-ups the table derives for it."""

    data: dict[str, Any]
    record: ResultRecord
    kind: RolloutKind
    derived: dict[str, Any] = field(default_factory=dict)


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


def _summary_keys(records: Sequence[ResultRecord]) -> list[MetricKey]:
    return [parse_key(key) for key in sorted({key for r in records for key in r.summary})]


def _windows(keys: Sequence[MetricKey]) -> list[tuple[int, int]]:
    """Windows of the nRMSE window means, by first step; the one-step window is left out (it equals
    `one_step_nrmse`)."""
    return sorted({k.window for k in keys if k.name == "nrmse" and k.window is not None and k.window != (1, 1)})


def _has_value(records: Sequence[ResultRecord], key: str) -> bool:
    return any(_number(r.summary.get(key)) is not None for r in records)


def value_columns(results: Sequence[dict]) -> tuple[Column, ...]:
    """The value columns of one table, from what its results hold.

    Parameters; the headline metric (if none of the following); one-step nRMSE; nRMSE window means (those some
    result has a value for: a window that starts past the rollout's end is left out); the nRMSE
    geometric mean; the high-correlation time of every threshold the results were scored with, with the median
    first crossing of the lowest; the rollout length (the ceiling of every time metric); the stable horizon against
    its ceiling; CRPS and spread-skill where some result is an ensemble; throughput, the two speed-ups and the
    train time. The high-correlation times and the headline show their bootstrap intervals.
    """
    records = [ResultRecord.from_json(r) for r in results]
    return _columns(records, headline_of(results)[0])


def _columns(records: Sequence[ResultRecord], headline: str) -> tuple[Column, ...]:
    keys = _summary_keys(records)
    gmean_steps = {r.summary.get("nrmse_gmean_steps") for r in records if r.summary.get("nrmse_gmean_steps")}
    gmean_title = "nRMSE gmean" + (f" steps 1-{gmean_steps.pop()}" if len(gmean_steps) == 1 else "")
    thresholds = sorted({k.threshold for k in keys if k.name == "corr_time" and k.threshold is not None})
    columns = [Column("n_parameters", "parameters"), Column("one_step_nrmse", "one-step nRMSE")]
    for window in _windows(keys):
        key = format_key(MetricKey("nrmse", window=window))
        if _has_value(records, key):
            columns.append(Column(key, f"nRMSE steps {window_key(window)}"))
    columns.append(Column("nrmse_gmean", gmean_title))
    for t in thresholds:
        time = MetricKey("corr_time", threshold=t)
        columns.append(Column(format_key(time), f"corr > {threshold_key(t)} time", ceiling=time.ceiling,
                              interval=True))
    if thresholds:
        median = MetricKey("corr_time_median", threshold=thresholds[0])
        columns.append(Column(format_key(median), f"median time to corr ≤ {threshold_key(thresholds[0])}",
                              ceiling=median.ceiling))
    columns.append(Column("time_ceiling", "rollout length"))
    stable = MetricKey("stable_horizon_median")
    columns.append(Column(format_key(stable), "stable horizon / ceiling", ceiling=stable.ceiling))
    names = {format_key(k) for k in keys}
    if "crps_mean" in names:
        columns.append(Column("crps_mean", "CRPS"))
    if "spread_skill_ratio" in names:
        columns.append(Column("spread_skill_ratio", "spread/skill"))
    columns += [Column("throughput_traj_steps_per_s", "throughput", "traj-steps/s"),
                Column(SPEEDUP_ACCURACY, "speed-up at equal accuracy", "x"),
                Column(SPEEDUP_GRID, "speed-up at equal grid", "x"),
                Column("train_time_s", "train time", "s")]
    if headline not in {c.key for c in columns}:
        columns.insert(1, Column(headline, headline, interval=True))
    else:
        columns = [replace(c, interval=True) if c.key == headline else c for c in columns]
    return tuple(columns)


def objective_text(result: dict | ResultRecord) -> str:
    """The objective a row was trained with, short: its name and the settings that differ from the defaults, e.g.
    `onestep target=difference`; `reference` (plus differing settings) for a row without a checkpoint."""
    record = result if isinstance(result, ResultRecord) else ResultRecord.from_json(result)
    objective = record.objective
    changed = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(objective.items())
               if k != "name" and k in _OBJECTIVE_DEFAULTS and v != _OBJECTIVE_DEFAULTS[k]]
    name = str(objective.get("name", "?")) if record.checkpoint_sha256 else "reference"
    return " ".join([name, *changed])


_TUNED_SHOWN = ("lr", "weight_decay")
"""Tuned settings a recipe cell shows (the whole tuning record is in the page's provenance)."""


def _tuning_text(tuning: Any) -> str:
    """`untuned` as recorded, or `tuned (20 trials): lr=0.0003, weight_decay=1e-05` from a tuning record (every
    entry where it holds neither lr nor weight_decay)."""
    if not isinstance(tuning, dict):
        return str(tuning)
    shown = [k for k in _TUNED_SHOWN if k in tuning] or sorted(tuning)
    trials = f" ({tuning['n_trials']} trials)" if "n_trials" in tuning and "n_trials" not in shown else ""
    values = ", ".join(f"{k}={tuning[k]:g}" if isinstance(tuning[k], float) else f"{k}={tuning[k]}" for k in shown)
    return f"tuned{trials}: {values}"


def recipe_text(record: ResultRecord) -> str:
    """How a row's training departs from its dataset's recipe, from its run record
    (`pdebench.config.recipes.recipe_record`): the deviations (`run.deviations`, e.g. `bundle: 25 (MP-PDE temporal
    bundling)`) joined by `; ` (`recipe <name>` where there are none), then the tuning (`run.tuning`, see
    :func:`_tuning_text`). Empty where the run records none of them (a reference row, a checkpoint of an older
    pdebench). The text comes from a result file: every format escapes it."""
    run = record.run if isinstance(record.run, dict) else {}
    recipe, deviations, tuning = run.get("recipe"), run.get("deviations"), run.get("tuning")
    parts = []
    if deviations:
        parts.append("; ".join(str(d) for d in deviations))
    elif recipe is not None:
        parts.append(f"recipe {recipe}")
    if tuning is not None:
        parts.append(_tuning_text(tuning))
    return "; ".join(parts)


def _row_key(member: _Member) -> tuple[str, str, str, RolloutKind]:
    objective = json.dumps(member.record.objective, sort_keys=True)
    return (member.record.label, member.record.model, objective, replace(member.kind, manifest=None))


def _value(member: _Member, key: str) -> Any:
    if key in member.record.summary:
        return member.record.summary[key]
    if key in member.derived:
        return member.derived[key]
    return member.record.value(key)


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


def _interval(group: Sequence[_Member], key: str) -> list[float] | None:
    """Seed means of the ends of the bootstrap interval of `key`; None unless every seed has one."""
    ends = []
    for member in group:
        iv = member.record.intervals.get(key)
        if not isinstance(iv, (list, tuple)) or len(iv) != 2 or any(_number(v) is None for v in iv):
            return None
        ends.append([float(iv[0]), float(iv[1])])
    return np.asarray(ends).mean(axis=0).tolist() if ends else None


def _cell(group: Sequence[_Member], column: Column) -> dict[str, Any]:
    cell: dict[str, Any] = aggregate([_value(m, column.key) for m in group])
    cell["interval"] = _interval(group, column.key) if cell["mean"] is not None else None
    cell["ceiling"] = aggregate([_value(m, column.ceiling) for m in group])["mean"] if column.ceiling else None
    statuses = {m.derived.get(f"{column.key}_status") for m in group} - {None}
    cell["status"] = statuses.pop() if len(statuses) == 1 else ("mixed" if statuses else None)
    return cell


def _solver_point(row: dict, metric: str) -> dict[str, Any] | None:
    if row["model"] != SOLVER_MODEL:
        return None
    accuracy, throughput = row[metric]["mean"], row["throughput_traj_steps_per_s"]["mean"]
    if accuracy is None or throughput is None:
        return None
    record = row["records"][0]
    return {"name": row["name"], "accuracy": accuracy, "throughput": throughput, "device": record.device_kind,
            "stored": is_stored_setting(record.solver_setting), "rollout": row["rollout"]}


def _solver_points(members: Sequence[_Member], metric: str) -> list[FrontierPoint]:
    """One frontier point per solver row (label and rollout): seed means of `metric` and of the throughput."""
    groups: dict[tuple[str, RolloutKind], list[_Member]] = {}
    for m in members:
        if m.record.model == SOLVER_MODEL:
            groups.setdefault((m.record.label, m.kind), []).append(m)
    points = []
    for (label, kind), group in groups.items():
        accuracy = aggregate([_value(m, metric) for m in group])["mean"]
        throughput = aggregate([m.record.throughput_traj_steps_per_s for m in group])["mean"]
        if accuracy is not None and throughput is not None:
            stored = is_stored_setting(group[0].record.solver_setting)
            points.append(FrontierPoint(label, accuracy, throughput, kind, stored))
    return points


def _derive_speedups(members: Sequence[_Member], headline: tuple[str, str]) -> None:
    """Attach speed-ups (and where none, why) to every non-solver member, against the solver rows scored on the same
    rollout and measured on the same kind of device (`pdebench.rollout.frontier.place_on_frontier`)."""
    metric, direction = headline
    goal = "max" if direction == "desc" else "min"
    points = _solver_points(members, metric)
    for m in members:
        if m.record.model == SOLVER_MODEL:
            continue
        throughput = _number(m.record.throughput_traj_steps_per_s)
        m.derived = {SPEEDUP_ACCURACY: None, SPEEDUP_GRID: None}
        if throughput is None or not points:
            continue
        place = place_on_frontier(points, m.kind, _number(_value(m, metric)), throughput, goal)
        m.derived[SPEEDUP_ACCURACY], m.derived[f"{SPEEDUP_ACCURACY}_status"] = place["speedup"], place["status"]
        m.derived[SPEEDUP_GRID] = place["speedup_at_equal_grid"]
        if place["status"] == "unmatched":
            m.derived["reason"] = place["reason"]


def _sort_key(row: dict, metric: str, direction: str) -> tuple:
    mean = row[metric]["mean"]
    tie = (row["label"], row["model"], row["objective"], row["name"])
    if mean is None:
        return (1, 0.0, *tie)
    return (0, -mean if direction == "desc" else mean, *tie)


def _table_name(dataset: str, manifest: str | None, several: bool) -> str:
    return f"{dataset}@{(manifest or 'unknown')[:8]}" if several else dataset


def _rollout_fields(kinds: Sequence[RolloutKind]) -> tuple[str, ...]:
    """The :class:`RolloutKind` fields on which `kinds` differ in what was scored (steps, time per step, gmean
    steps), so that their accuracies do not compare; the device (which only changes throughput) is left out."""
    return tuple(f for f in differing(kinds) if f not in ("device", "manifest"))


def _row_names(keys: Sequence[tuple[str, str, str, RolloutKind]], objectives: dict) -> dict:
    """Each row's shown name: its label, with `[model, objective]` where a label has several rows that differ in
    them (`fno [persistence, reference]`), and with its rollout where the table's rows were scored on different
    rollouts (`unet [at 2 steps]`) or a label has several rows measured differently (`solver [at 3 steps on cpu]`)."""
    names = {}
    scored = _rollout_fields([k[3] for k in keys])
    for key in keys:
        label, model, objective, kind = key
        same = [k for k in keys if k[0] == label]
        parts = []
        if len({k[1:3] for k in same}) > 1:
            parts.append(f"{model}, {objectives[key]}")
        shown = set(differing([k[3] for k in same])) | set(scored)
        if shown:
            parts.append(kind.describe(tuple(shown)))
        names[key] = f"{label} [{'; '.join(parts)}]" if parts else label
    return names


def _ceiling(kind: RolloutKind) -> float | None:
    """A rollout's length in time units (steps x time per step), None where either is unknown."""
    return kind.n_steps * kind.step_time if kind.n_steps is not None and kind.step_time is not None else None


def _scored(kind: RolloutKind, fields: Sequence[str]) -> RolloutKind:
    """`kind` with only the scored `fields` kept (the others, and the device, blanked): rows of one group compare."""
    return replace(kind, device="", **{f: None for f in ("manifest", "n_steps", "step_time", "gmean_steps")
                                        if f not in fields})


def _group_rollouts(rows: Sequence[dict]) -> None:
    """Set each row's `rollout_group`: the rank of its scored rollout (:func:`_rollout_fields`) in the table, the
    rollout holding most rows first, then the longer one (0 for every row where all rows share one rollout)."""
    fields = _rollout_fields([row["rollout"] for row in rows])
    counts: dict[RolloutKind, int] = {}
    for row in rows:
        group = _scored(row["rollout"], fields)
        counts[group] = counts.get(group, 0) + 1
    order = sorted(counts, key=lambda g: (-counts[g], -(_ceiling(g) or 0.0), g.describe(fields)))
    for row in rows:
        row["rollout_group"] = order.index(_scored(row["rollout"], fields))


def _check_seeds(group: Sequence[_Member], label: str, model: str, name: str) -> None:
    by_seed: dict[str, _Member] = {}
    for m in group:
        seed = repr(m.record.seed)
        if seed in by_seed:
            raise ResultError(
                f"{by_seed[seed].data.get(SOURCE_KEY, '?')} and {m.data.get(SOURCE_KEY, '?')} are both seed "
                f"{m.record.seed} of row {label!r} (model {model}) in table {name!r}; pass each evaluation once")
        by_seed[seed] = m


def _recipe(group: Sequence[_Member]) -> str:
    """The row's recipe text; the seeds' distinct texts joined by ` | ` where they differ."""
    return " | ".join(dict.fromkeys(recipe_text(m.record) for m in group))


def _rows(members: list[_Member], columns: tuple[Column, ...], headline: tuple[str, str], name: str) -> list[dict]:
    groups: dict[tuple[str, str, str, RolloutKind], list[_Member]] = {}
    for m in members:
        groups.setdefault(_row_key(m), []).append(m)
    objectives = {key: objective_text(group[0].record) for key, group in groups.items()}
    names = _row_names(list(groups), objectives)
    rows = []
    for key, group in groups.items():
        label, model, _, kind = key
        _check_seeds(group, label, model, name)
        group = sorted(group, key=lambda m: repr(m.record.seed))
        row: dict[str, Any] = {
            "name": names[key], "label": label, "model": model, "objective": objectives[key],
            "objective_config": group[0].record.objective, "recipe": _recipe(group),
            "seeds": len(group), "seed_values": sorted((m.record.seed for m in group), key=repr),
            "headline": headline, "columns": tuple(c.key for c in columns), "rollout": kind,
            "results": [m.data for m in group], "records": [m.record for m in group],
            "unmatched": sorted({m.derived["reason"] for m in group if "reason" in m.derived}),
        }
        for column in columns:
            row[column.key] = _cell(group, column)
        rows.append(row)
    _group_rollouts(rows)
    rows.sort(key=lambda row: (row["rollout_group"], *_sort_key(row, *headline)))
    return rows


def _notes(rows: Sequence[dict], dataset: str, manifest: str | None, n_manifests: int) -> list[str]:
    """The table's notes: several manifests, rows scored on different rollouts, rows without a speed-up and why."""
    notes = []
    if n_manifests > 1:
        notes.append(f"{dataset} has results from {n_manifests} dataset manifests (the dataset was regenerated); this "
                     f"table holds those of manifest {manifest}, each manifest has its own table.")
    shown = _rollout_fields([row["rollout"] for row in rows])
    if shown:
        by_rollout: dict[str, dict[str, None]] = {}
        for row in rows:  # in table order: by rollout group
            ceiling = _ceiling(row["rollout"])
            length = f" (rollout length {ceiling:.4g} time units)" if ceiling is not None else ""
            by_rollout.setdefault(row["rollout"].describe(shown) + length, {})[row["label"]] = None
        notes.append("Rows were scored on different rollouts, whose accuracies and time ceilings do not compare: each "
                     "row's name says its rollout, and the rows of each rollout are ranked among themselves: "
                     + "; ".join(f"{text}: {', '.join(labels)}" for text, labels in by_rollout.items()) + ".")
    for row in rows:
        for reason in row["unmatched"]:
            notes.append(f"{row['name']}: no speed-up, {reason}.")
    return notes


def _members(results: Sequence[dict], dataset: str, headline: str) -> list[_Member]:
    """The results that hold the headline metric, as members (a file's own `_derived` dropped); the others are
    skipped with a warning."""
    members = []
    for r in results:
        data = {k: v for k, v in r.items() if k != DERIVED}  # the speed-ups are ours alone
        record = ResultRecord.from_json(data, f"result {data.get(SOURCE_KEY, '?')}")
        if headline not in record.summary and headline not in data:
            skip(f"skipped: result file {data.get(SOURCE_KEY, '?')}: its summary lacks the headline metric "
                 f"{headline!r} of dataset {dataset} (a partial result file)")
            continue
        members.append(_Member(data, record, rollout_kind(record)))
    return members


def build_tables(results: Sequence[dict]) -> list[Table]:
    """Group results into tables (one per dataset manifest) of aggregated, ranked rows.

    Each row holds `name` (the label, or `label [model, objective; rollout]` where a label has several rows),
    `label`, `model`, `objective` (see :func:`objective_text`), `objective_config`, `recipe` (see
    :func:`recipe_text`), `seeds` (count), `seed_values`, `headline`, `columns` (keys), `rollout` (its
    :class:`RolloutKind`), `results` (its result dicts, by seed), `records` (the same as typed records),
    `unmatched` (why it has no speed-up, where no solver row matches it), `rollout_group` (the rank of its rollout in
    the table, 0 where all rows share one; rows are sorted by it first) and, per column key,
    `{"mean", "std", "interval": [low, high] | None, "ceiling": float | None, "status": str | None}` (`status`: where
    a speed-up at equal accuracy sits on the solver frontier, see `pdebench.rollout.frontier`).

    Warns:
        SkippedResultWarning: a result lacks its table's headline metric (a partial file); it is left out.

    Raises:
        ResultError: two results of one row have the same seed, one table's results disagree on the headline, or a
            result dict lacks an identity key.
    """
    by_dataset: dict[str, dict[str | None, list[dict]]] = {}
    for r in results:
        by_dataset.setdefault(str(r["dataset"]), {}).setdefault(r.get("manifest_sha256"), []).append(r)
    tables = []
    for dataset in sorted(by_dataset):
        manifests = by_dataset[dataset]
        for manifest in sorted(manifests, key=lambda m: m or ""):
            headline = headline_of(manifests[manifest])
            members = _members(manifests[manifest], dataset, headline[0])
            if not members:
                continue
            name = _table_name(dataset, manifest, len(manifests) > 1)
            _derive_speedups(members, headline)
            for m in members:
                if m.record.model != SOLVER_MODEL:
                    m.data[DERIVED] = m.derived
            columns = _columns([m.record for m in members], headline[0])
            rows = _rows(members, columns, headline, name)
            tables.append(Table(name, dataset, members[0].record.pde, manifest, headline, columns, rows,
                                [m.data for m in members], _notes(rows, dataset, manifest, len(manifests))))
    return tables


def leaderboard_rows(results: Sequence[dict]) -> dict[str, list[dict]]:
    """Table name -> its ranked rows (see :func:`build_tables`); tables in sorted order."""
    return {table.name: table.rows for table in build_tables(results)}
