"""`evaluate(cfg) -> Result`: build the stepper (a checkpoint, or a reference row), score the test split, summarise,
write the result file. The `pdebench-evaluate` command only parses and prints around it.

`model=solver` gives one row per solver setting (`evaluate_all` returns them all). With `trainer.devices=N` (or
under torchrun) the test trajectories are sharded over N processes with no duplicates (trajectory i goes to rank
i mod N), each rank scores its shard in batches padded to the full batch size, rank 0 gathers the per-trajectory
arrays, joins them by trajectory index, summarises once and writes one result file per row. The result's `sample`
(the first field of test trajectory 0, rolled out and subsampled) is kept only by the rank that scores trajectory 0
and travels to rank 0 with its scores.

A result's identity (label, seed, data, objective) comes from the checkpoint's run record. A value given in the
evaluate config that contradicts the checkpoint is an error naming both values; a value left out (null) is taken
from the checkpoint.
"""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

import pdebench
from baselines.registry import ModelConfig, build_model, model_entry
from baselines.solver import SolverConfig, SolverStepper, setting_label
from pdebench.config import (
    BenchmarkConfig,
    DataConfig,
    EvaluateConfig,
    ObjectiveConfig,
    ObjectiveOverrides,
    RolloutConfig,
    TrainerConfig,
    plain_config,
)
from pdebench.console import quiet_third_party
from pdebench.data.dataset import TrajectoryDataset
from pdebench.data.manifest import benchmark_facts, benchmark_settings, file_sha256, manifest_hash, verify_dataset
from pdebench.data.names import check_name, check_seed, inside
from pdebench.data.netspec import NetSpec
from pdebench.data.reader import TrajectoryFile, open_dataset_dir, split_path
from pdebench.data.schema import MANIFEST_NAME, DatasetError
from pdebench.devices import resolve_device
from pdebench.errors import InvalidSetting
from pdebench.forecast.checkpoint import CheckpointError, load_forecaster
from pdebench.forecast.stepper import Stepper
from pdebench.provenance import git_commit
from pdebench.rollout.config import evaluate_config
from pdebench.rollout.frontier import place_on_frontier, rollout_kind, solver_point
from pdebench.rollout.record import ResultRecord
from pdebench.rollout.reductions import (
    INTERVAL_LEVEL,
    MIN_INTERVAL_TRAJECTORIES,
    bootstrap_intervals,
    interval_notes,
    rollout_windows,
)
from pdebench.rollout.results import ResultError, read_result, try_read_result, write_result
from pdebench.rollout.scoring import RolloutSample, Scores, ScoringSpec, conserved_channels, score, summarize
from pdebench.rollout.spectra import GridSpectrum
from pdebench.rollout.step_metrics import INVARIANTS

REFERENCE_SEED = 0
"""The seed a reference row's result is filed under when `seed` is not given (it has no training seed)."""


@dataclass
class Result:
    """What one evaluation wrote: the result file's path and typed record, and the per-trajectory scores."""

    path: Path
    record: ResultRecord
    scores: Scores

    @property
    def content(self) -> dict[str, Any]:
        """The result file's JSON object (`ResultRecord.to_json`; a new dict on every access: change `record`)."""
        return self.record.to_json()


@dataclass
class _Subject:
    """The stepper under evaluation and the identity its result gets.

    model and objective are plain records (a checkpoint's, or a reference row's settings); pde, preset and
    frame_stride name the data (frame_stride null: the PDE's model step).
    """

    stepper: Stepper
    label: str
    seed: int
    model: dict[str, Any]
    objective: dict[str, Any]
    pde: str | None
    preset: str | None
    frame_stride: int | None
    n_parameters: int
    train_time_s: float | None
    checkpoint_sha256: str | None
    run: dict[str, Any] | None
    solver_setting: dict[str, Any] | None = None


def _agree(given: Any, recorded: Any, key: str, ckpt: Path) -> Any:
    """`recorded`, after checking that `given` (null: not given) does not contradict it."""
    if given is not None and given != recorded:
        raise CheckpointError(
            f"{key}={given!r} contradicts checkpoint {ckpt}, which was trained with {key}={recorded!r}; "
            f"leave {key} out to use the checkpoint's"
        )
    return recorded


def _checked_record(record: Mapping[str, Any], ckpt: Path) -> Mapping[str, Any]:
    """`record` once the parts of it that name files (label, seed, pde, preset) are checked: a checkpoint is
    untrusted input, and its label or seed would otherwise become a path (`label='../../x'`)."""
    source = f"the run record of checkpoint {ckpt}"
    check_name(record.get("label"), "label", source)
    check_seed(record.get("seed"), "seed", source)
    data = record.get("data")
    for key in ("pde", "preset"):
        check_name(data.get(key) if isinstance(data, Mapping) else None, f"data.{key}", source)
    return record


def _overrides(objective: ObjectiveOverrides) -> dict[str, Any]:
    """evaluate's `objective.*` by key, null where not given."""
    return {f.name: getattr(objective, f.name) for f in fields(objective)}


def _from_checkpoint(cfg: EvaluateConfig) -> _Subject:
    trained = load_forecaster(cfg.ckpt)
    ckpt = trained.path
    record = _checked_record(trained.record, ckpt)
    if cfg.model is not None:
        _agree(cfg.model.name, record["model"]["name"], "model", ckpt)
    agreed = {key: _agree(given, record["objective"].get(key), f"objective.{key}", ckpt)
              for key, given in _overrides(cfg.objective).items()}
    data = {key: _agree(getattr(cfg.data, key), record["data"][key], f"data.{key}", ckpt)
            for key in ("pde", "preset", "frame_stride")}
    return _Subject(
        stepper=trained.forecaster,
        label=_agree(cfg.label, record["label"], "label", ckpt),
        seed=_agree(cfg.seed, record["seed"], "seed", ckpt),
        model=record["model"], objective={**record["objective"], **agreed}, **data,
        n_parameters=trained.n_parameters, train_time_s=trained.train_time_s,
        checkpoint_sha256=file_sha256(ckpt), run=record,
    )


def reference_objective(given: ObjectiveOverrides) -> dict[str, Any]:
    """The objective a reference row is rolled out with: evaluate's `objective.*`, each null replaced by the
    `ObjectiveConfig` default (the result records these keys)."""
    defaults = ObjectiveConfig()
    return {key: getattr(defaults, key) if value is None else value for key, value in _overrides(given).items()}


def _reference_model(cfg: EvaluateConfig) -> ModelConfig:
    """The reference row named by `model`; a refusal when there is none or it needs training."""
    if cfg.model is None:
        raise InvalidSetting("nothing to evaluate: pass ckpt=PATH (a checkpoint from pdebench-train) or "
                             "model=<reference row> (e.g. model=persistence); model=solver runs the dataset's own "
                             "solver")
    if model_entry(cfg.model.name).trainable:
        raise InvalidSetting(f"model={cfg.model.name} must be trained first: pass ckpt=PATH (a checkpoint from "
                             "pdebench-train)")
    return cfg.model


def _reference_rows(cfg: EvaluateConfig, test: TrajectoryFile, frame_stride: int) -> list[_Subject]:
    """The reference row named by `model` (persistence: one row; solver: one row per setting)."""
    typed = _reference_model(cfg)
    objective = reference_objective(cfg.objective)
    spec = NetSpec(test.field_names, objective["history"], objective["bundle"], test.conditioning_names, test.grid)
    seed = REFERENCE_SEED if cfg.seed is None else cfg.seed
    row = {"seed": seed, "model": plain_config(typed), "objective": objective, "pde": cfg.data.pde,
           "preset": cfg.data.preset, "frame_stride": cfg.data.frame_stride, "train_time_s": None,
           "checkpoint_sha256": None, "run": None}
    if not isinstance(typed, SolverConfig):
        stepper = build_model(typed, spec)
        return [_Subject(stepper=stepper, label=cfg.label or typed.name,
                         n_parameters=sum(p.numel() for p in stepper.parameters()), **row)]
    return _solver_rows(cfg, typed, spec, test, frame_stride, row)


def _solver_rows(cfg: EvaluateConfig, typed: SolverConfig, spec: NetSpec, test: TrajectoryFile, frame_stride: int,
                 row: dict[str, Any]) -> list[_Subject]:
    """One row per solver setting the dataset's reference solver can run (`row`: what every row shares)."""
    generator = _dataset_generator(test)
    rows = []
    for resolution, factor in typed.settings(test.grid.shape):
        try:
            reference = generator.reference_solver(resolution, factor)
        except ValueError as exc:
            if resolution is None and factor == 1.0:  # the stored grid with the generator's own step must always run
                raise InvalidSetting(f"model=solver: {exc}") from None
            if _world()[0] == 0:  # one list of settings serves every dataset: skip what this solver cannot do
                print(f"warning: model=solver skips {setting_label(resolution, factor)} on {test.path}: {exc}",
                      file=sys.stderr)
            continue
        stepper = build_model(typed, spec)
        assert isinstance(stepper, SolverStepper)
        stepper.attach(reference, frame_stride)
        label = setting_label(resolution, factor)
        if cfg.label:
            label = check_name(label.replace("solver", str(cfg.label), 1), "label",
                               f"label={cfg.label} with the solver setting {label}")
        setting = {"resolution": None if resolution is None else list(resolution), "time_step_factor": factor,
                   "stored_resolution": list(test.grid.shape), "generator": test.attrs.get("solver")}
        rows.append(_Subject(stepper=stepper, label=label, n_parameters=0, solver_setting=setting, **row))
    return rows


def _dataset_generator(test: TrajectoryFile) -> Any:
    """The generator recorded in the split file (`solver` attribute, `generation_config`), if it has a reference
    solver; otherwise a one-sentence error naming the file."""
    from data_gen.registry import GENERATORS, make_generator

    name = test.attrs.get("solver")
    if name not in GENERATORS:
        raise DatasetError(f"{test.path}: root attribute 'solver' is {name!r}, not a generator of this pdebench "
                           f"({', '.join(sorted(GENERATORS))}); the solver row cannot be built")
    try:
        recorded = yaml.safe_load(str(test.attrs.get("generation_config", ""))) or {}
    except yaml.YAMLError:
        recorded = {}
    settings = recorded.get("solver") if isinstance(recorded, dict) else None
    if not isinstance(settings, dict):
        raise DatasetError(f"{test.path}: root attribute 'generation_config' records no solver settings; "
                           f"the solver row cannot be built")
    generator = make_generator(name, settings)
    if not callable(getattr(generator, "reference_solver", None)):
        raise InvalidSetting(f"model=solver: the {name} generator has no reference solver yet (it needs a "
                             f"`reference_solver` method, see data_gen.base.HasReferenceSolver)")
    return generator


def _dataset_of(pde: str | None, preset: str | None, root: str) -> Path:
    """The dataset folder `<root>/<pde>-<preset>` (preset null: `DataConfig`'s), checked to hold a test split."""
    if pde is None:
        raise InvalidSetting("no dataset given: pass data=<name> (e.g. data=ks), or ckpt=PATH to use the "
                             "checkpoint's")
    return verify_dataset(open_dataset_dir(root, pde, preset or DataConfig.preset), ("test",))


def scoring_spec(bench: BenchmarkConfig, rollout: RolloutConfig, test: TrajectoryFile,
                 manifest_path: Path) -> ScoringSpec:
    """What to score besides pointwise errors, from the PDE's benchmark facts and the rollout config
    (`rollout.stability_factor`, where given, overrides the PDE's `stability_energy_factor`)."""
    conserved = bench.conserved
    if conserved is not None and conserved not in INVARIANTS:
        raise DatasetError(f"{manifest_path}: benchmark.conserved={conserved!r} is not a quantity the evaluator "
                           f"knows ({', '.join(INVARIANTS)}, or null)")
    channels = conserved_channels(test.field_names, conserved, bench.conserved_fields, Path(manifest_path))
    factor = bench.stability_energy_factor if rollout.stability_factor is None else rollout.stability_factor
    return ScoringSpec(
        energy_factor=float(factor),
        band_edges=tuple(float(e) for e in bench.spectral_bands),
        spectrum_steps=tuple(int(k) for k in bench.spectrum_steps),
        conserved=conserved, conserved_channels=channels,
        ensemble=int(rollout.ensemble),
    )


def _world() -> tuple[int, int]:
    """`(rank, world size)` of the process group, `(0, 1)` without one."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def shard(n: int, rank: int, world: int) -> list[int]:
    """Trajectories of rank `rank` among `world`: every `world`-th index from `rank` (disjoint, covering 0..n-1)."""
    return list(range(rank, n, world))


def gather_scores(scores: Scores) -> Scores | None:
    """Join every rank's scores on rank 0 by trajectory index (None on the other ranks; `scores` without a group)."""
    rank, world = _world()
    if world == 1:
        return scores
    parts: list[Scores] | None = [scores] * world if rank == 0 else None
    torch.distributed.gather_object(scores, parts, dst=0)
    if rank != 0:
        return None
    assert parts is not None
    return Scores.join(parts)


def _spectra(scores: Scores, spectrum: GridSpectrum, steps: Sequence[int]) -> dict[str, Any] | None:
    """Trajectory-mean energy spectra at the chosen steps and their ratio predicted / true (None where true is 0)."""
    if "spectrum_pred" not in scores.extra:
        return None
    pred = scores.extra["spectrum_pred"].mean(axis=0)  # [S, C, K]
    true = scores.extra["spectrum_true"].mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(true > 0, pred / true, np.nan)
    kept = [int(k) for k in steps if 1 <= k <= scores.n_steps]
    return {"steps": kept, "shell": spectrum.shells.tolist(), "shell_unit": "spherical-harmonic degree"
            if spectrum.grid.kind == "sphere" else "mode number |m|", "band_edges": list(spectrum.band_edges),
            "pred": pred, "true": true, "ratio": ratio}


def _sample(sample: RolloutSample | None, file: TrajectoryFile) -> dict[str, Any] | None:
    """The result's `sample` (docs/metrics.md): float32 values as nested lists, with the kept points' coordinates
    and units per spatial axis (`axes`, for the plot's axes); None where no trajectory was kept."""
    if sample is None:
        return None
    axes = [{"name": name, "units": file.coordinate_units(name), "values": file.coordinate(name)[::stride].tolist()}
            for name, stride in zip(file.coordinate_names, sample.space_stride, strict=True)]
    return {"trajectory": sample.trajectory, "field": file.field_names[sample.channel], "step": sample.step.tolist(),
            "time": sample.time.tolist(), "time_stride": sample.time_stride,
            "space_stride": list(sample.space_stride), "axes": axes, "pred": _float32_lists(sample.pred),
            "true": _float32_lists(sample.true)}


def _float32_lists(values: np.ndarray) -> list[Any]:
    """Nested lists of the shortest decimals that read back as the same float32 values (non-finite: None)."""
    flat = [float(str(v)) if np.isfinite(v) else None for v in np.asarray(values, dtype=np.float32).ravel()]
    for n in reversed(values.shape[1:]):
        flat = [flat[i : i + n] for i in range(0, len(flat), n)]
    return flat


def _frontier(results_dir: Path, record: ResultRecord, bench: BenchmarkConfig) -> dict[str, Any] | None:
    """A surrogate's place on the solver frontier (`pdebench.rollout.frontier.place_on_frontier`), from the solver
    result files of the same dataset manifest in `results_dir`; only those scored on the same rollout and kind of
    device count (`status` `unmatched` and a `reason` where none is). None where there are no solver rows."""
    metric = bench.headline
    points = []
    for path in sorted(results_dir.glob("*.json")):
        try:
            found = try_read_result(path)
        except ResultError:
            continue
        point = solver_point(ResultRecord.from_json(found, str(path)), metric) if found is not None else None
        if point is not None and point.kind is not None and point.kind.manifest == record.manifest_sha256:
            points.append(point)
    if not points:
        return None
    out = place_on_frontier(points, rollout_kind(record), record.summary.get(metric),
                            record.throughput_traj_steps_per_s, bench.headline_goal)
    return {"metric": metric, **out}


def _distributed_request(trainer: TrainerConfig | None) -> dict[str, Any] | None:
    """Fabric settings when more than one process is asked for (trainer.devices / num_nodes, or torchrun)."""
    env_world = int(os.environ.get("WORLD_SIZE", "1"))
    if trainer is None:
        if env_world <= 1:
            return None
        local = int(os.environ.get("LOCAL_WORLD_SIZE", env_world))
        return {"accelerator": "auto", "devices": local, "num_nodes": env_world // local, "strategy": "ddp"}
    devices = trainer.devices
    many = (isinstance(devices, int) and devices > 1) or isinstance(devices, (list, tuple)) and len(devices) > 1
    if not many and trainer.num_nodes <= 1 and env_world <= 1:
        return None
    return {"accelerator": trainer.accelerator, "devices": devices, "num_nodes": trainer.num_nodes,
            "strategy": "ddp" if trainer.strategy == "auto" else trainer.strategy}


def _launched(fabric: Any, cfg: EvaluateConfig, progress: bool) -> list[Result]:
    """Rank 0's rows without their `sample`: a spawned process returns through a pipe that is read only after it
    exits, so a large return would block it forever; `evaluate_all` reads the sample back from the written file."""
    rows = _evaluate_rows(cfg, progress and fabric.global_rank == 0, fabric.device)
    out = []
    for row in rows:
        scores = copy.copy(row.scores)
        scores.sample = None
        out.append(Result(row.path, replace(row.record, sample=None), scores))
    return out


def checkpoint_of(given: str | Path) -> Path:
    """`ckpt=` as given: a checkpoint file, or a training run folder, which stands for its `best` checkpoint
    (`<run>/checkpoints/best.ckpt`, chosen on the PDE's headline validation metric)."""
    path = Path(given)
    if not path.is_dir():
        return path
    best = path / "checkpoints" / "best.ckpt"
    if not best.is_file():
        raise CheckpointError(f"ckpt={given} is a folder without checkpoints/best.ckpt: pass a checkpoint file or "
                              "the folder of a pdebench-train run")
    return best


def evaluate_all(cfg: EvaluateConfig | Mapping[str, Any], progress: bool = True) -> list[Result]:
    """Every row `cfg` asks for (one, or one per solver setting); on several processes, rank 0 gets the results and
    the other ranks an empty list. A plain mapping is checked and typed first (`evaluate_config`)."""
    cfg = evaluate_config(cfg)
    if cfg.ckpt:
        cfg = replace(cfg, ckpt=str(checkpoint_of(cfg.ckpt)))
    request = _distributed_request(cfg.trainer)
    if request is None:
        return _evaluate_rows(cfg, progress, None)
    from lightning.fabric import Fabric

    quiet_third_party()  # Lightning's lines that ask nothing of the user (the `srun` hint)

    fabric = Fabric(precision="32-true", **request)
    results = fabric.launch(_launched, cfg, progress) or []
    for row in results:
        row.record.sample = read_result(row.path).get("sample")
    return results


def evaluate(cfg: EvaluateConfig | Mapping[str, Any], progress: bool = True) -> Result:
    """Roll out the test split with a checkpoint (`ckpt`) or a reference row (`model`), write the result file.

    `cfg` is an `EvaluateConfig` (or a mapping of its shape, typed by `evaluate_config`). The result goes to
    `<results_dir>/<dataset>/<label>-seed<seed>.json`. Unknown keys and out-of-range values (e.g. empty
    `rollout.thresholds`, a `rollout.device` this machine lacks) fail before anything is loaded. For `model=solver`
    this returns the stored-resolution row (see `evaluate_all` for all of them).
    """
    results = evaluate_all(cfg, progress)
    if not results:
        raise RuntimeError("this process is not rank 0 of the evaluation: its results are on rank 0")
    return results[0]


@dataclass(frozen=True)
class _Setting:
    """What every row of one evaluation shares: the dataset, its benchmark facts (as the manifest records them,
    and typed), what is scored, and the device."""

    dataset_dir: Path
    manifest: str
    facts: dict[str, Any]
    bench: BenchmarkConfig
    spec: ScoringSpec
    device: torch.device


def _evaluate_rows(cfg: EvaluateConfig, progress: bool, device: torch.device | None) -> list[Result]:
    if cfg.ckpt:
        subject = _from_checkpoint(cfg)
        dataset_dir = _dataset_of(subject.pde, subject.preset, cfg.data.root)
        manifest = manifest_hash(dataset_dir)
        if subject.run["data"]["manifest_sha256"] != manifest and _world()[0] == 0:
            print(f"warning: {dataset_dir.name} was regenerated since checkpoint {cfg.ckpt} was trained "
                  "(manifest hash differs)", file=sys.stderr)
        subjects = [subject]
    else:
        dataset_dir = _dataset_of(cfg.data.pde, cfg.data.preset, cfg.data.root)
        manifest = manifest_hash(dataset_dir)
        subjects = None
    facts = benchmark_facts(dataset_dir)
    bench = benchmark_settings(facts, dataset_dir / MANIFEST_NAME)
    test = TrajectoryFile(split_path(dataset_dir, "test"))
    if subjects is None:
        subjects = _reference_rows(cfg, test, cfg.data.frame_stride or bench.frame_stride)
    spec = scoring_spec(bench, cfg.rollout, test, dataset_dir / MANIFEST_NAME)
    setting = _Setting(dataset_dir, manifest, facts, bench, spec,
                       device if device is not None else resolve_device(cfg.rollout.device))
    rows = [_evaluate_one(cfg, subject, setting, progress) for subject in subjects]
    return [row for row in rows if row is not None]


SummarySettings = tuple[tuple[float, ...], int, list[tuple[int, int]] | None]
"""`(thresholds, gmean_steps, windows)`: what `summarize` and `bootstrap_intervals` reduce a rollout with (windows
None: The Well's windows for the rollout length, `pdebench.rollout.reductions.well_windows`)."""


def summary_settings(rollout: RolloutConfig, bench: BenchmarkConfig) -> SummarySettings:
    """The thresholds, geometric-mean steps and windows of a result's summary: the rollout config's, with a null
    `rollout.gmean_steps` taking the PDE's `benchmark.gmean_steps` and null `rollout.windows` The Well's windows."""
    gmean_steps = rollout.gmean_steps if rollout.gmean_steps is not None else bench.gmean_steps
    windows = None if rollout.windows is None else [(int(w[0]), int(w[1])) for w in rollout.windows]
    return tuple(rollout.thresholds), int(gmean_steps), windows


def _evaluate_one(cfg: EvaluateConfig, subject: _Subject, setting: _Setting, progress: bool) -> Result | None:
    """Score `subject` on this rank's share of the test split; on rank 0, summarise and write its result file."""
    frame_stride = subject.frame_stride or setting.bench.frame_stride
    dataset = TrajectoryDataset(split_path(setting.dataset_dir, "test"), frame_stride)
    rank, world = _world()
    stepper = subject.stepper.to(setting.device) if hasattr(subject.stepper, "to") else subject.stepper
    part = score(stepper, dataset, shard(len(dataset), rank, world), max_steps=cfg.rollout.max_steps,
                 batch_size=cfg.rollout.batch_size, spec=setting.spec, device=setting.device, progress=progress,
                 sample_trajectory=0)
    scores = gather_scores(part)
    if scores is None:
        return None
    record = _content(cfg, subject, setting, dataset, scores, frame_stride, world)
    if subject.solver_setting is None:
        record.frontier = _frontier(Path(cfg.results_dir) / setting.dataset_dir.name, record, setting.bench)
    path = inside(cfg.results_dir, setting.dataset_dir.name, f"{subject.label}-seed{subject.seed}.json")
    return Result(write_result(path, record), record, scores)


def _content(cfg: EvaluateConfig, subject: _Subject, setting: _Setting, dataset: TrajectoryDataset, scores: Scores,
             frame_stride: int, world: int) -> ResultRecord:
    """The result record of `subject` (docs/metrics.md), without its `frontier`."""
    rollout, spec = cfg.rollout, setting.spec
    thresholds, gmean_steps, windows = summary_settings(rollout, setting.bench)
    summary, curves = summarize(scores, thresholds, gmean_steps, windows, n_members=spec.ensemble)
    intervals = bootstrap_intervals(scores.per_step, scores.unstable, scores.step_time, thresholds, gmean_steps,
                                    windows, spec.ensemble, n_resamples=rollout.bootstrap_resamples,
                                    seed=rollout.bootstrap_seed, level=INTERVAL_LEVEL)
    spectrum = GridSpectrum(dataset.file.grid, spec.band_edges) if spec.band_edges is not None else None
    data = {"pde": dataset.file.pde, "preset": dataset.file.preset, "frame_stride": frame_stride,
            "root": cfg.data.root}
    return ResultRecord(
        dataset=setting.dataset_dir.name,
        pde=dataset.file.pde,
        preset=dataset.file.preset,
        model=subject.model["name"],
        label=subject.label,
        seed=subject.seed,
        objective=subject.objective,
        benchmark=setting.facts,
        n_parameters=subject.n_parameters,
        train_time_s=subject.train_time_s,
        step_time=float(scores.step_time.mean()),
        n_trajectories=len(scores),
        n_steps=scores.n_steps,
        summary=summary,
        intervals=intervals,
        interval_method={"kind": "percentile bootstrap over test trajectories", "level": INTERVAL_LEVEL,
                         "n_resamples": rollout.bootstrap_resamples, "seed": rollout.bootstrap_seed,
                         "min_trajectories": MIN_INTERVAL_TRAJECTORIES, "notes": interval_notes(summary, len(scores))},
        curves=curves,
        spectra=_spectra(scores, spectrum, spec.spectrum_steps) if spectrum is not None else None,
        scoring={"channels": "scored per channel, then averaged", "band_edges": list(spec.band_edges or []),
                 "conserved": spec.conserved, "stability": f"energy > {spec.energy_factor:g} x the trajectory's "
                 "largest stored energy, or non-finite", "stability_energy_factor": spec.energy_factor,
                 "ensemble": spec.ensemble, "ensemble_scored": "mean" if spec.ensemble > 1 else None,
                 "gmean_steps": gmean_steps, "windows": [list(w) for w in rollout_windows(windows, scores.n_steps)]},
        sample=_sample(scores.sample, dataset.file),
        throughput_traj_steps_per_s=scores.throughput,
        device=str(setting.device),
        n_processes=world,
        config={"data": data, "model": subject.model, "objective": subject.objective,
                "rollout": plain_config(rollout), "ckpt": cfg.ckpt, "label": subject.label,
                "seed": subject.seed, "results_dir": cfg.results_dir},
        run=subject.run,
        checkpoint=cfg.ckpt,
        checkpoint_sha256=subject.checkpoint_sha256,
        manifest_sha256=setting.manifest,
        package_version=pdebench.__version__,
        git_commit=git_commit(),
        solver_setting=subject.solver_setting,
    )
