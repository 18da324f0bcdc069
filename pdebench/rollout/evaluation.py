"""`evaluate(cfg) -> Result`: build the stepper (a checkpoint, or a reference row), score the test split, summarise,
write the result file. The `pdebench-evaluate` command only parses and prints around it.

A result's identity (label, seed, data, objective) comes from the checkpoint's run record. A value given in the
evaluate config that contradicts the checkpoint is an error naming both values; a value left out (null) is taken
from the checkpoint.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pdebench
from baselines.registry import build_model, model_config, model_entry
from pdebench.config import EvaluateConfig, validate_config
from pdebench.data.dataset import TrajectoryDataset
from pdebench.data.manifest import benchmark_facts, file_sha256, manifest_hash, verify_dataset
from pdebench.data.netspec import NetSpec
from pdebench.data.reader import TrajectoryFile, open_dataset_dir, split_path
from pdebench.devices import resolve_device
from pdebench.forecast.checkpoint import CheckpointError, load_forecaster
from pdebench.forecast.stepper import Stepper
from pdebench.provenance import git_commit
from pdebench.rollout.results import RESULT_FORMAT, RESULT_FORMAT_VERSION, write_result
from pdebench.rollout.scoring import Scores, score, summarize

# The objective a reference row is rolled out with when evaluate's `objective.*` leaves a value null.
REFERENCE_OBJECTIVE = {"name": "onestep", "history": 1, "bundle": 1, "loss": "mse", "target": "state",
                       "target_scale": 1.0}


@dataclass
class Result:
    """What one evaluation wrote: the result file's path and content, and the per-trajectory scores."""

    path: Path
    content: dict[str, Any]
    scores: Scores


@dataclass
class _Subject:
    """The stepper under evaluation and the identity its result gets."""

    stepper: Stepper
    label: str
    seed: int
    model: dict[str, Any]
    objective: dict[str, Any]
    data: dict[str, Any]  # pde, preset, frame_stride (null: the PDE's)
    n_parameters: int
    train_time_s: float | None
    checkpoint_sha256: str | None
    run: dict[str, Any] | None


def _agree(given: Any, recorded: Any, key: str, ckpt: Path) -> Any:
    """`recorded`, after checking that `given` (null: not given) does not contradict it."""
    if given is not None and given != recorded:
        raise CheckpointError(
            f"{key}={given!r} contradicts checkpoint {ckpt}, which was trained with {key}={recorded!r}; "
            f"leave {key} out to use the checkpoint's"
        )
    return recorded


def _from_checkpoint(cfg: Mapping[str, Any]) -> _Subject:
    trained = load_forecaster(cfg["ckpt"])
    record, ckpt = trained.record, trained.path
    if cfg.get("model") is not None:
        _agree(cfg["model"].get("name"), record["model"]["name"], "model", ckpt)
    objective = {key: _agree(given, record["objective"].get(key), f"objective.{key}", ckpt)
                 for key, given in cfg["objective"].items()}
    objective = {**record["objective"], **objective}
    data = {key: _agree(cfg["data"].get(key), record["data"][key], f"data.{key}", ckpt)
            for key in ("pde", "preset", "frame_stride")}
    return _Subject(
        stepper=trained.forecaster,
        label=_agree(cfg.get("label"), record["label"], "label", ckpt),
        seed=_agree(cfg.get("seed"), record["seed"], "seed", ckpt),
        model=record["model"], objective=objective, data=data,
        n_parameters=trained.n_parameters, train_time_s=trained.train_time_s,
        checkpoint_sha256=file_sha256(ckpt), run=record,
    )


def _reference_row(cfg: Mapping[str, Any], test: TrajectoryFile) -> _Subject:
    if cfg.get("model") is None:
        raise ValueError("nothing to evaluate: pass ckpt=PATH (a checkpoint from pdebench-train) or "
                         "model=<reference row> (e.g. model=persistence)")
    typed = model_config(cfg["model"])
    if model_entry(typed.name).trainable:
        raise ValueError(f"model={typed.name} must be trained first: pass ckpt=PATH (a checkpoint from pdebench-train)")
    objective = {key: REFERENCE_OBJECTIVE[key] if value is None else value
                 for key, value in cfg["objective"].items()}
    spec = NetSpec(test.field_names, objective["history"], objective["bundle"], test.parameter_names, test.grid)
    stepper = build_model(typed, spec)
    return _Subject(
        stepper=stepper, label=cfg.get("label") or typed.name,
        seed=0 if cfg.get("seed") is None else cfg["seed"],
        model=asdict(typed), objective=objective,
        data={key: cfg["data"].get(key) for key in ("pde", "preset", "frame_stride")},
        n_parameters=sum(p.numel() for p in stepper.parameters()), train_time_s=None,
        checkpoint_sha256=None, run=None,
    )


def _dataset_of(data: Mapping[str, Any], root: str) -> Path:
    if data.get("pde") is None:
        raise ValueError("no dataset given: pass data=<name> (e.g. data=ks), or ckpt=PATH to use the checkpoint's")
    return verify_dataset(open_dataset_dir(root, data["pde"], data.get("preset") or "small"), ("test",))


def evaluate(cfg: Mapping[str, Any], progress: bool = True) -> Result:
    """Roll out the test split with a checkpoint (`ckpt`) or a reference row (`model`), write the result file.

    `cfg` has the shape of `pdebench.config.EvaluateConfig` (plain containers). The result goes to
    `<results_dir>/<dataset>/<label>-seed<seed>.json`. Unknown keys and out-of-range values (e.g. empty
    `rollout.thresholds`, a `rollout.device` this machine lacks) fail before anything is loaded.
    """
    validate_config(cfg, EvaluateConfig)
    if cfg.get("ckpt"):
        subject = _from_checkpoint(cfg)
        dataset_dir = _dataset_of(subject.data, cfg["data"]["root"])
        manifest = manifest_hash(dataset_dir)
        if subject.run["data"]["manifest_sha256"] != manifest:
            print(f"warning: {dataset_dir.name} was regenerated since checkpoint {cfg['ckpt']} was trained "
                  "(manifest hash differs)", file=sys.stderr)
    else:
        dataset_dir = _dataset_of(cfg["data"], cfg["data"]["root"])
        manifest = manifest_hash(dataset_dir)
        subject = _reference_row(cfg, TrajectoryFile(split_path(dataset_dir, "test")))
    facts = benchmark_facts(dataset_dir)
    frame_stride = subject.data["frame_stride"] or int(facts["frame_stride"])
    dataset = TrajectoryDataset(split_path(dataset_dir, "test"), frame_stride)
    rollout_cfg = cfg["rollout"]
    device = resolve_device(rollout_cfg["device"])
    stepper = subject.stepper.to(device) if hasattr(subject.stepper, "to") else subject.stepper
    scores = score(stepper, dataset, max_steps=rollout_cfg["max_steps"], batch_size=rollout_cfg["batch_size"],
                   stability_factor=rollout_cfg["stability_factor"], device=device, progress=progress)
    summary, curves = summarize(scores, thresholds=tuple(rollout_cfg["thresholds"]),
                                gmean_steps=rollout_cfg["gmean_steps"])
    data = {**subject.data, "frame_stride": frame_stride, "pde": dataset.file.pde, "preset": dataset.file.preset,
            "root": cfg["data"]["root"]}
    content = {
        "format": RESULT_FORMAT,
        "format_version": RESULT_FORMAT_VERSION,
        "dataset": dataset_dir.name,
        "pde": dataset.file.pde,
        "preset": dataset.file.preset,
        "model": subject.model["name"],
        "label": subject.label,
        "seed": subject.seed,
        "objective": subject.objective,
        "benchmark": facts,
        "n_parameters": subject.n_parameters,
        "train_time_s": subject.train_time_s,
        "step_time": float(scores.step_time.mean()),
        "n_trajectories": len(scores),
        "n_steps": scores.n_steps,
        "summary": summary,
        "curves": curves,
        "throughput_traj_steps_per_s": scores.throughput,
        "device": str(device),
        "config": {"data": data, "model": subject.model, "objective": subject.objective,
                   "rollout": dict(rollout_cfg), "ckpt": cfg.get("ckpt"), "label": subject.label,
                   "seed": subject.seed, "results_dir": cfg["results_dir"]},
        "run": subject.run,
        "checkpoint": cfg.get("ckpt"),
        "checkpoint_sha256": subject.checkpoint_sha256,
        "manifest_sha256": manifest,
        "package_version": pdebench.__version__,
        "git_commit": git_commit(),
    }
    path = Path(cfg["results_dir"]) / dataset_dir.name / f"{subject.label}-seed{subject.seed}.json"
    return Result(write_result(path, content), content, scores)
