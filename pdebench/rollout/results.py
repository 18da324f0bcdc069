"""The result-file format: one JSON file per (dataset, model label, seed) evaluation.

A result is a JSON object with at least :data:`REQUIRED_KEYS`::

    {"format": "pdebench-result", "format_version": 1, "dataset": "ks-small", "pde": "ks",
     "preset": "small", "model": "fno", "label": "fno", "seed": 0, "n_parameters": 12345,
     "train_time_s": 61.2, "step_time": 0.8, "n_trajectories": 16, "n_steps": 150,
     "summary": {...}, "curves": {...}, "throughput_traj_steps_per_s": 1234.0, "config": {...},
     "checkpoint_sha256": "...", "manifest_sha256": "...", "package_version": "0.1.0", "git_commit": "..."}

``summary`` and ``curves`` are the two outputs of :func:`pdebench.rollout.metrics.summarize_rollout`.
Optional fields the evaluator adds (``spectra``, ``sample``, ...) are described in docs/metrics.md; ``sample``
holds one test trajectory's subsampled rollout next to the truth, which the leaderboard draws.
Non-finite floats are stored as ``null`` (strict JSON has no NaN/Infinity), so readers treat ``None``
as "undefined or not finite".
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pdebench.data.atomic import atomic_write_text

RESULT_FORMAT = "pdebench-result"
RESULT_FORMAT_VERSION = 1
REQUIRED_KEYS = ("format", "format_version", "dataset", "pde", "model", "label", "seed", "summary", "curves")


class ResultError(ValueError):
    """A result file is unreadable, not valid JSON, of another format or missing a required key."""


def to_jsonable(obj: Any) -> Any:
    """Recursively convert numpy/torch scalars and arrays, tuples and paths to plain JSON types.

    Non-finite floats become ``None``.
    """
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if hasattr(obj, "detach") and hasattr(obj, "cpu") and hasattr(obj, "tolist"):  # torch.Tensor
        return to_jsonable(obj.detach().cpu().tolist())
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot store a value of type {type(obj).__name__} in a result file")


def _validate(result: Any, path: Path) -> dict:
    if not isinstance(result, dict):
        raise ResultError(f"Result file {path} does not hold a JSON object at the top level.")
    for key in REQUIRED_KEYS:
        if key not in result:
            raise ResultError(f"Result file {path} is missing the required key {key!r}.")
    if result["format"] != RESULT_FORMAT:
        raise ResultError(
            f"Result file {path} has key 'format' = {result['format']!r}, expected {RESULT_FORMAT!r}."
        )
    version = result["format_version"]
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= RESULT_FORMAT_VERSION:
        raise ResultError(
            f"Result file {path} has key 'format_version' = {version!r}, "
            f"this pdebench reads versions 1..{RESULT_FORMAT_VERSION}."
        )
    for key in ("summary", "curves"):
        if not isinstance(result[key], dict):
            raise ResultError(f"Result file {path} has key {key!r} that is not a JSON object.")
    return result


def write_result(path: Path, result: dict) -> Path:
    """Write ``result`` as JSON to ``path`` atomically and durably (:func:`pdebench.data.atomic.atomic_write_text`).

    ``format``/``format_version`` are filled in when absent; parent directories are created; numpy
    and torch values are converted and non-finite floats are written as ``null``.

    Raises:
        ResultError: the result lacks a required key or names another format.
    """
    path = Path(path)
    full = {"format": RESULT_FORMAT, "format_version": RESULT_FORMAT_VERSION, **result}
    data = _validate(to_jsonable(full), path)
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, text)


def _load_json(path: Path) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ResultError(f"Result file {path} cannot be read ({e}).") from e
    try:
        # NaN/Infinity are not strict JSON; accept them from foreign writers but read them as None.
        return json.loads(text, parse_constant=lambda _name: None)
    except json.JSONDecodeError as e:
        raise ResultError(f"Result file {path} is not valid JSON ({e}).") from e


def read_result(path: Path) -> dict:
    """Read and validate one result file.

    Raises:
        ResultError: the file is unreadable, not valid JSON, of another format/version, or misses one
            of :data:`REQUIRED_KEYS` (the message names the file and the key).
    """
    path = Path(path)
    return _validate(_load_json(path), path)


def try_read_result(path: Path) -> dict | None:
    """Read ``path`` if it is a result file, else return ``None``.

    Valid JSON of another kind (not an object, no ``format`` key, or another format) gives ``None``;
    a file that is not valid JSON, or a result (``format`` = :data:`RESULT_FORMAT`) that fails
    validation, raises :class:`ResultError` naming the file.
    """
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, dict) or data.get("format") != RESULT_FORMAT:
        return None
    return _validate(data, path)
