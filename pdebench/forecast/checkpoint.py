"""Rebuilding a trained Forecaster and its run record from a training checkpoint, without Lightning.

A checkpoint written by `pdebench-train` holds, besides Lightning's own entries:

* `hyper_parameters`: `model`, `objective`, `optim`, `validation` (plain dicts), `data_info` (dataset, pde,
  preset, frame_stride, manifest_sha256, fields, parameters, grid record, train statistics) and `run` (label, seed,
  git_commit) — plain containers, so it loads with `torch.load(weights_only=True)`;
* `state_dict`: the forecaster's tensors under `forecaster.`;
* `pdebench`: `train_time_s` and `n_parameters`.

`run_record` is the checkpoint's identity: a result's label, seed, data and objective come from it, never from
the evaluate command's defaults.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from baselines.registry import ModelConfig, build_model, model_config
from pdebench.config import ObjectiveConfig
from pdebench.data.grid import Grid
from pdebench.data.names import missing_or_kind
from pdebench.data.netspec import NetSpec
from pdebench.data.normalization import Normalizer
from pdebench.errors import UserError
from pdebench.forecast.forecaster import Forecaster, make_forecaster
from pdebench.forecast.targets import objective_config, target_from_config

STATE_PREFIX = "forecaster."


class CheckpointError(UserError, ValueError):
    """A checkpoint is missing, unreadable, not ours, or does not fit what it is used for."""


def net_spec(objective: ObjectiveConfig, data_info: dict[str, Any]) -> NetSpec:
    """The NetSpec a run's data and objective fix."""
    return NetSpec(tuple(data_info["fields"]), objective.history, objective.bundle, tuple(data_info["parameters"]),
                   Grid.from_record(data_info["grid"]))


def build_forecaster(model: Mapping[str, Any] | ModelConfig, objective: Mapping[str, Any] | ObjectiveConfig,
                     data_info: dict[str, Any]) -> Forecaster:
    """A fresh (untrained) Forecaster for a run's model, objective and data (an EnsembleForecaster when the net
    can draw samples).

    `model` and `objective` are typed here when given as a checkpoint's plain records (a setting an older record
    lacks takes the schema's default; one the schema refuses is an InvalidSetting); `data_info` is the run's data
    record.
    """
    model, objective = model_config(model), objective_config(objective)
    spec = net_spec(objective, data_info)
    target = target_from_config(objective, int(data_info.get("frame_stride") or 1))  # a derivative label's spacing
    return make_forecaster(build_model(model, spec), Normalizer.from_stats(data_info["stats"]), target, spec)


def run_record(hparams: dict[str, Any]) -> dict[str, Any]:
    """label, seed, git commit, data (without statistics), model and objective of a run, from its hyper-parameters."""
    data = {k: v for k, v in hparams["data_info"].items() if k not in ("stats", "grid")}
    return {**hparams["run"], "data": data, "model": hparams["model"], "objective": hparams["objective"]}


def _load_refusal(path: Path, error: Exception) -> str:
    """One sentence for a checkpoint that `torch.load(weights_only=True)` refused or could not read.

    torch's own message spans a dozen lines and suggests retrying with `weights_only=False`, which is exactly what
    must not be done with a file whose origin is unknown; this names the refused global or the damage instead.
    """
    text = str(error)
    refused = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if isinstance(error, pickle.UnpicklingError) and refused:
        return (f"checkpoint {path} holds a Python object ({refused.group(1)}) other than tensors and plain "
                "containers, so it was not loaded: unpickling it could run arbitrary code")
    first = (text.strip().splitlines() or [type(error).__name__])[0].split(". ")[0].rstrip(".")
    if isinstance(error, PermissionError):
        reason = "permission denied"
    elif isinstance(error, EOFError) or not text.strip():
        reason = "the file is empty or ends early"
    elif isinstance(error, pickle.UnpicklingError):
        reason = "its bytes are not a PyTorch checkpoint"
    elif isinstance(error, (OSError, RuntimeError)):  # torch's zip reader: EINVAL or "failed reading zip archive"
        reason = f"the file is damaged or truncated: {first}"
    else:
        reason = first
    return f"checkpoint {path} is not a readable PyTorch checkpoint ({reason})"


def load_checkpoint_weights_only(path: str | Path, map_location: Any = "cpu") -> Any:
    """`torch.load` restricted to tensors and plain containers, whatever the torch release or the environment says.

    torch's default for `weights_only` is True only from 2.6 on, and `TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1` turns it
    off for every call that leaves it unset; only an explicit `weights_only=True` holds in every case. Raises
    CheckpointError (one sentence) for an unreadable file or one that holds other objects.
    """
    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except Exception as error:  # torch raises many types for a corrupt or foreign file
        raise CheckpointError(_load_refusal(path, error)) from None


@dataclass
class TrainedForecaster:
    """A checkpoint's forecaster (eval mode, on the CPU) and what it records about its run."""

    forecaster: Forecaster
    record: dict[str, Any]
    n_parameters: int
    train_time_s: float | None
    path: Path


def load_forecaster(path: str | Path) -> TrainedForecaster:
    """Rebuild the trained forecaster of a `pdebench-train` checkpoint (loaded with `weights_only=True`)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(missing_or_kind(path, "checkpoint"))
    checkpoint = load_checkpoint_weights_only(path)
    if not isinstance(checkpoint, dict) or "pdebench" not in checkpoint or "hyper_parameters" not in checkpoint:
        raise CheckpointError(f"checkpoint {path} was not written by pdebench-train (no 'pdebench' metadata)")
    hparams = checkpoint["hyper_parameters"]
    if "run" not in hparams:
        raise CheckpointError(f"checkpoint {path} has no run record (written by an older pdebench); retrain it")
    try:
        forecaster = build_forecaster(hparams["model"], hparams["objective"], hparams["data_info"])
        state = {k[len(STATE_PREFIX):]: v for k, v in checkpoint["state_dict"].items() if k.startswith(STATE_PREFIX)}
        forecaster.load_state_dict(state)
    except (TypeError, KeyError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"checkpoint {path} does not match this version of its model: {error}") from None
    meta = checkpoint["pdebench"]
    return TrainedForecaster(forecaster.eval(), run_record(hparams), int(meta["n_parameters"]),
                             meta.get("train_time_s"), path)
