"""The result-file format: one JSON file per (dataset, model label, seed) evaluation.

A result is a JSON object with at least :data:`REQUIRED_KEYS`::

    {"format": "pdebench-result", "format_version": 1, "dataset": "ks-small", "pde": "ks",
     "preset": "small", "model": "fno", "label": "fno", "seed": 0, "n_parameters": 12345,
     "train_time_s": 61.2, "step_time": 0.8, "n_trajectories": 16, "n_steps": 150,
     "summary": {...}, "curves": {...}, "throughput_traj_steps_per_s": 1234.0, "config": {...},
     "checkpoint_sha256": "...", "manifest_sha256": "...", "package_version": "0.1.0", "git_commit": "..."}

The fields are those of the typed record :class:`pdebench.rollout.record.ResultRecord`, which the evaluator writes
and the leaderboard reads; :func:`read_record` reads a file into one. ``summary`` and ``curves`` are the two outputs
of :func:`pdebench.rollout.reductions.summarize_rollout`. Optional fields the evaluator adds (``spectra``,
``sample``, ...) are described in docs/metrics.md; ``sample`` holds one test trajectory's subsampled rollout next to
the truth, which the leaderboard draws. Non-finite floats are stored as ``null`` (strict JSON has no NaN/Infinity),
so readers treat ``None`` as "undefined or not finite".
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pdebench.data.atomic import atomic_write_text
from pdebench.data.names import shown
from pdebench.rollout.record import RESULT_FORMAT, RESULT_FORMAT_VERSION, ResultRecord
from pdebench.rollout.result_content import ResultError, check_content

__all__ = ["RESULT_FORMAT", "RESULT_FORMAT_VERSION", "REQUIRED_KEYS", "ResultError", "ResultRecord", "read_record",
           "read_result", "to_jsonable", "try_read_result", "write_result"]

REQUIRED_KEYS = ("format", "format_version", "dataset", "pde", "model", "label", "seed", "summary", "curves")


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
            f"Result file {path} has key 'format' = {shown(result['format'])}, expected {RESULT_FORMAT!r}."
        )
    version = result["format_version"]
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= RESULT_FORMAT_VERSION:
        raise ResultError(
            f"Result file {path} has key 'format_version' = {shown(version)}, "
            f"this pdebench reads versions 1..{RESULT_FORMAT_VERSION}."
        )
    for key in ("summary", "curves"):
        if not isinstance(result[key], dict):
            raise ResultError(f"Result file {path} has key {key!r} that is not a JSON object.")
    return result


MAX_JSON_DEPTH = 64
"""Deepest nesting of JSON arrays and objects in a result file; a real one nests fewer than 10 levels, and deeper
data would exhaust Python's recursion limit in whatever walks it next (json.dumps of the config on the page)."""


def _nested_deeper_than(data: Any, limit: int) -> bool:
    """Whether arrays and objects in `data` nest more than `limit` levels (walked without recursion)."""
    stack = [(data, 1)] if isinstance(data, (dict, list)) else []
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        children = value.values() if isinstance(value, dict) else value
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def write_result(path: Path, result: dict | ResultRecord) -> Path:
    """Write ``result`` (a record, or its JSON object as a dict) as JSON to ``path`` atomically and durably
    (:func:`pdebench.data.atomic.atomic_write_text`).

    ``format``/``format_version`` are filled in when absent; parent directories are created; numpy
    and torch values are converted and non-finite floats are written as ``null``.

    Raises:
        ResultError: the result lacks a required key or names another format, or the file system refused the write
            (a full disk, no permission): one sentence, and a previous result at `path` is kept whole.
    """
    path = Path(path)
    if isinstance(result, ResultRecord):
        result = result.to_json()
    full = {"format": RESULT_FORMAT, "format_version": RESULT_FORMAT_VERSION, **result}
    data = _validate(to_jsonable(full), path)
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write_text(path, text)
    except OSError as error:
        kept = "the previous result there is kept" if path.is_file() else "nothing was written"
        raise ResultError(f"result file {path} could not be written ({error.strerror or error}); {kept}") from None


def _load_json(path: Path) -> Any:
    """The JSON in `path`; a ResultError naming the file for anything Python's json module cannot read or
    :data:`MAX_JSON_DEPTH` forbids."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ResultError(f"Result file {path} cannot be read ({e}).") from e
    deep = ResultError(f"Result file {path} is JSON nested more than {MAX_JSON_DEPTH} levels deep (a result file "
                       "nests fewer than 10).")
    try:
        # NaN/Infinity are not strict JSON; accept them from foreign writers but read them as None.
        data = json.loads(text, parse_constant=lambda _name: None)
    except json.JSONDecodeError as e:
        raise ResultError(f"Result file {path} is not valid JSON ({e}).") from e
    except RecursionError:
        raise deep from None
    except ValueError:  # the only other ValueError: an integer longer than Python converts
        raise ResultError(f"Result file {path} holds an integer of more than {sys.get_int_max_str_digits()} "
                          "digits, too long to read.") from None
    if _nested_deeper_than(data, MAX_JSON_DEPTH):
        raise deep
    return data


def read_result(path: Path) -> dict:
    """Read and validate one result file.

    Raises:
        ResultError: the file is unreadable, not valid JSON (or nested too deeply, or holding an integer too long
            to read), of another format/version, misses one of :data:`REQUIRED_KEYS`, or holds what no evaluation
            writes: a label, model, dataset or pde that is not a name or a seed that is not a seed
            (`pdebench.data.names`), a value of the wrong type or outside what its metric allows
            (`pdebench.rollout.result_content`), a sample or spectra of the
            wrong shape. The message names the file and the key.
    """
    path = Path(path)
    return check_content(_validate(_load_json(path), path), path)


def read_record(path: Path) -> ResultRecord:
    """:func:`read_result`, typed: the checked file as a :class:`ResultRecord` (same errors)."""
    return ResultRecord.from_json(read_result(path), f"Result file {path}")


def try_read_result(path: Path) -> dict | None:
    """Read ``path`` if it is a result file, else return ``None``.

    Valid JSON of another kind (not an object, no ``format`` key, or another format) gives ``None``;
    a file that is not valid JSON, or a result (``format`` = :data:`RESULT_FORMAT`) that fails
    validation (see :func:`read_result`), raises :class:`ResultError` naming the file.
    """
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, dict) or data.get("format") != RESULT_FORMAT:
        return None
    return check_content(_validate(data, path), path)
