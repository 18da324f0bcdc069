"""The result record, typed: what one evaluation of one row (dataset, label, seed) writes and the leaderboard reads.

:class:`ResultRecord` is the one description of a result file's fields. The evaluator builds one and writes
:meth:`ResultRecord.to_json`; the leaderboard reads every result through :meth:`ResultRecord.from_json`. On disk it
is the JSON object of format ``pdebench-result`` version 1 (`pdebench.rollout.results`), key for key as before the
record existed, so every file written since version 1 reads. Keys a file holds that the record does not know (a newer
writer's, the leaderboard's ``source``) are kept in :attr:`ResultRecord.extra` and written back unchanged.

Metric keys inside ``summary``, ``intervals`` and ``curves`` are spelled by `pdebench.rollout.keys`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from pdebench.rollout.result_content import ResultError

RESULT_FORMAT = "pdebench-result"
RESULT_FORMAT_VERSION = 1

IDENTITY_KEYS = ("dataset", "pde", "model", "label", "seed")
"""Keys a result cannot be read without (with `summary` and `curves`, the format's required keys)."""



@dataclass
class ResultRecord:
    """One result, field by field (docs/metrics.md has every field's meaning and units).

    Identity: dataset (`<pde>-<preset>`), pde, preset, model (registry name), label (the row's name), seed.
    What was evaluated: objective (the training objective's settings), benchmark (the PDE's facts as the dataset
    manifest records them), n_parameters (trainable parameters; 0 for the solver), train_time_s (None for a
    reference row), run (the checkpoint's run record: label, seed, data, model, objective, and the recipe's
    `recipe`, `deviations` and `tuning` where training recorded them; None for a reference row), solver_setting (a
    solver row's `resolution`, `time_step_factor`, ...; None otherwise).
    What was measured: step_time (time units per model step, mean over trajectories), n_trajectories, n_steps
    (model steps scored per trajectory), summary (metric key -> number or None), intervals (metric key -> [low,
    high] or None), interval_method, curves (per-step lists), spectra, scoring (what was scored: bands, conserved
    quantity, stability rule, ensemble size, gmean steps, windows), sample (one trajectory for the plot),
    throughput_traj_steps_per_s, device (`cpu`, `cuda:0`, ...), n_processes, frontier (a surrogate's place on the
    solver frontier, `pdebench.rollout.frontier.place_on_frontier`; None for solver rows).
    Provenance: config (the evaluation's settings), checkpoint, checkpoint_sha256, manifest_sha256,
    package_version, git_commit.
    """

    dataset: str
    pde: str
    model: str
    label: str
    seed: int
    summary: dict[str, Any]
    curves: dict[str, Any]
    preset: str | None = None
    objective: dict[str, Any] = field(default_factory=dict)
    benchmark: dict[str, Any] = field(default_factory=dict)
    n_parameters: int | None = None
    train_time_s: float | None = None
    step_time: float | None = None
    n_trajectories: int | None = None
    n_steps: int | None = None
    intervals: dict[str, Any] = field(default_factory=dict)
    interval_method: dict[str, Any] | None = None
    spectra: dict[str, Any] | None = None
    scoring: dict[str, Any] | None = None
    sample: dict[str, Any] | None = None
    throughput_traj_steps_per_s: float | None = None
    device: str | None = None
    n_processes: int | None = None
    config: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] | None = None
    checkpoint: str | None = None
    checkpoint_sha256: str | None = None
    manifest_sha256: str | None = None
    package_version: str | None = None
    git_commit: str | None = None
    solver_setting: dict[str, Any] | None = None
    frontier: dict[str, Any] | None = None
    format: str = RESULT_FORMAT
    format_version: int = RESULT_FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The result file's JSON object (values as given: `pdebench.rollout.results.write_result` converts numpy
        and torch values): format keys first, unknown keys last; `solver_setting` only for a solver row (where it is
        set) and `frontier` (null where no solver rows were found) for every other row."""
        out: dict[str, Any] = {"format": self.format, "format_version": self.format_version}
        for f in fields(self):
            if f.name in ("format", "format_version", "extra"):
                continue
            value = getattr(self, f.name)
            if f.name == ("frontier" if self.solver_setting is not None else "solver_setting") and value is None:
                continue
            out[f.name] = value
        return {**out, **{k: v for k, v in self.extra.items() if k not in out}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: str = "result") -> ResultRecord:
        """The record of a result's JSON object (as `pdebench.rollout.results.read_result` returns it, or a result
        dict given to the leaderboard directly). Values are taken as they are: the file checks
        (`pdebench.rollout.result_content`) are `read_result`'s job. A key absent from an older file takes its
        default; `null` objects read as empty.

        Raises:
            ResultError: `data` lacks one of :data:`IDENTITY_KEYS` (`source` names it in the message).
        """
        missing = [key for key in IDENTITY_KEYS if key not in data]
        if missing:
            raise ResultError(f"{source} is missing the required key {missing[0]!r}.")
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {key: value for key, value in data.items() if key in known}
        for key in ("summary", "curves", "objective", "benchmark", "intervals", "config"):
            values[key] = values.get(key) or {}
        extra = {key: value for key, value in data.items() if key not in known}
        return cls(**values, extra=extra)

    @property
    def device_kind(self) -> str:
        """The kind of device the throughput was measured on: `cpu`, `cuda`, `mps` (`unknown` when not recorded)."""
        return str(self.device or "unknown").split(":")[0]

    def value(self, key: str) -> Any:
        """A summary value, else a top-level field or unknown key of that name (`n_parameters`, ...); None if absent."""
        if key in self.summary:
            return self.summary[key]
        if key in {f.name for f in fields(self)} - {"extra"}:
            return getattr(self, key)
        return self.extra.get(key)
