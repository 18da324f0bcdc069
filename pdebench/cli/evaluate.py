"""`pdebench-evaluate ckpt=PATH` or `pdebench-evaluate model=persistence data=ks`: long rollouts on the test split."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

import pdebench
from baselines.registry import NetShape, build_model, model_entry
from pdebench.cli.common import CONFIG_DIR, HYDRA_VERSION_BASE, git_commit, report_user_errors, to_container
from pdebench.data.dataset import TrajectoryDataset
from pdebench.data.manifest import file_sha256, manifest_hash
from pdebench.data.normalization import Normalizer
from pdebench.data.reader import TrajectoryFile, open_dataset_dir, split_path
from pdebench.devices import resolve_device
from pdebench.rollout.evaluator import evaluate_rollouts
from pdebench.rollout.metrics import threshold_key
from pdebench.rollout.results import RESULT_FORMAT, RESULT_FORMAT_VERSION, write_result
from pdebench.training.checkpoint import CheckpointError, load_checkpoint
from pdebench.training.forecaster import Forecaster


def _trained_model(cfg: dict[str, Any], dataset_name: str, manifest: str) -> dict[str, Any]:
    """The forecaster and provenance of a checkpoint, refusing one trained on another dataset or frame stride."""
    ckpt = Path(cfg["ckpt"])
    module, meta = load_checkpoint(ckpt)
    info = module.hparams.data_info
    if info["dataset"] != dataset_name:
        raise CheckpointError(
            f"checkpoint {ckpt} was trained on dataset {info['dataset']}, but the evaluation data is "
            f"{dataset_name}; choose the matching data (e.g. data.preset=...)"
        )
    if info["frame_stride"] != cfg["data"]["frame_stride"]:
        raise CheckpointError(
            f"checkpoint {ckpt} steps {info['frame_stride']} stored frames per model step, but "
            f"data.frame_stride={cfg['data']['frame_stride']}"
        )
    if info["manifest_sha256"] != manifest:
        print(f"warning: {dataset_name} was regenerated since checkpoint {ckpt} was trained "
              "(manifest hash differs)", file=sys.stderr)
    return {
        "forecaster": module.forecaster,
        "history": module.hparams.objective["history"],
        "model": meta["model"],
        "model_config": module.hparams.model,
        "label": meta["label"],
        "n_parameters": meta["n_parameters"],
        "train_time_s": meta["train_time_s"],
        "checkpoint_sha256": file_sha256(ckpt),
    }


def _reference_model(cfg: dict[str, Any], test: TrajectoryFile) -> dict[str, Any]:
    """A parameter-free reference row (persistence) built directly from the data's shape."""
    name = cfg["model"]["name"]
    if model_entry(name).trainable:
        raise ValueError(f"model={name} must be trained first: pass ckpt=PATH (a checkpoint from pdebench-train)")
    objective = cfg["objective"]
    shape = NetShape(len(test.field_names), objective["history"], objective["bundle"],
                     len(test.parameter_names), len(test.spatial_shape))
    normalizer = Normalizer.identity(len(test.field_names), len(test.parameter_names))
    forecaster = Forecaster(build_model(cfg["model"], shape), normalizer, shape)
    return {"forecaster": forecaster, "history": objective["history"], "model": name, "model_config": cfg["model"],
            "label": name, "n_parameters": sum(p.numel() for p in forecaster.parameters()),
            "train_time_s": None, "checkpoint_sha256": None}


def evaluate(cfg: dict[str, Any], progress: bool = True) -> tuple[Path, dict[str, Any]]:
    """Roll out the test split, write the result file; returns its path and content."""
    data = cfg["data"]
    dataset_dir = open_dataset_dir(data["root"], data["pde"], data["preset"])
    test_path = split_path(dataset_dir, "test")
    manifest = manifest_hash(dataset_dir)
    if cfg["ckpt"]:
        model = _trained_model(cfg, dataset_dir.name, manifest)
    else:
        model = _reference_model(cfg, TrajectoryFile(test_path))
    device = resolve_device(cfg["rollout"]["device"])
    forecaster = model["forecaster"].to(device).eval()
    rollout_cfg = cfg["rollout"]
    dataset = TrajectoryDataset(test_path, data["frame_stride"])
    report = evaluate_rollouts(
        forecaster, dataset, model["history"], batch_size=rollout_cfg["batch_size"],
        max_steps=rollout_cfg["max_steps"], thresholds=tuple(rollout_cfg["thresholds"]),
        gmean_steps=rollout_cfg["gmean_steps"], stability_factor=rollout_cfg["stability_factor"],
        device=device, progress=progress,
    )
    label = cfg["label"] or model["label"]
    result = {
        "format": RESULT_FORMAT,
        "format_version": RESULT_FORMAT_VERSION,
        "dataset": dataset_dir.name,
        "pde": data["pde"],
        "preset": data["preset"],
        "model": model["model"],
        "label": label,
        "seed": cfg["seed"],
        "n_parameters": model["n_parameters"],
        "train_time_s": model["train_time_s"],
        "step_time": float(report.step_time.mean()),
        "n_trajectories": len(dataset),
        "n_steps": report.n_steps,
        "summary": report.summary,
        "curves": report.curves,
        "throughput_traj_steps_per_s": report.throughput,
        "device": str(device),
        "config": {**cfg, "model": model["model_config"]},
        "checkpoint": cfg["ckpt"],
        "checkpoint_sha256": model["checkpoint_sha256"],
        "manifest_sha256": manifest,
        "package_version": pdebench.__version__,
        "git_commit": git_commit(),
    }
    path = write_result(Path(cfg["results_dir"]) / dataset_dir.name / f"{label}-seed{cfg['seed']}.json", result)
    return path, result


def _number(value: float | None, spec: str) -> str:
    """A summary value for the terminal; None (undefined, e.g. after a blow-up) prints as n/a."""
    return "n/a" if value is None else format(value, spec)


@hydra.main(config_path=CONFIG_DIR, config_name="evaluate", version_base=HYDRA_VERSION_BASE)
@report_user_errors
def main(cfg: DictConfig) -> None:
    path, result = evaluate(to_container(cfg))
    summary = result["summary"]
    threshold = threshold_key(cfg.rollout.thresholds[0])
    print(f"{result['label']} on {result['dataset']}: {result['n_trajectories']} trajectories x "
          f"{result['n_steps']} steps; high-correlation time (>{threshold}) "
          f"{_number(summary[f'corr_time_{threshold}'], '.2f')}, "
          f"one-step nRMSE {_number(summary['one_step_nrmse'], '.3g')}, "
          f"{result['throughput_traj_steps_per_s']:.0f} trajectory-steps/s")
    print(f"result written: {path}")


if __name__ == "__main__":
    main()
