"""What a method trained in stages needs from a training run, whatever the method (DYffusion is the first user).

* **Stages** (`stages`, `StageConfig`): one `pdebench-train` runs the stages in order, each as a run of its own into
  `<run_dir>/<stage name>` with the run's settings but for `objective.name`; `stage=<name>` runs one stage alone.
  Each stage resumes from its own `last.ckpt`, so rerunning an interrupted multi-stage run finishes the stage it was
  in and goes on (a stage whose budget is spent only validates again). The last stage's best checkpoint is the row's.
* **Frozen sub-networks** (`frozen`, `FrozenConfig`): a run builds the whole net, then loads named sub-networks from
  another run's checkpoint (weights-only; its data record must be this run's dataset and frames) and freezes them:
  no gradient, eval mode, left out of the weight average. A stage names an earlier stage instead of a path.
* **Stage metrics** (`StageMetric`): an objective whose stage trains something that is not a Stepper (an
  interpolator) scores validation itself; its metric is what `best.ckpt` is chosen on for that stage.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn

from pdebench.config import TrainConfig
from pdebench.config.schemas import FrozenConfig, StageConfig
from pdebench.data.batch import TrajectoryBatch
from pdebench.errors import InvalidSetting
from pdebench.forecast.checkpoint import STATE_PREFIX, CheckpointError, load_checkpoint_weights_only, run_record
from pdebench.forecast.forecaster import Forecaster

# The parts of a run's data record (`data_info`) a frozen sub-network must share with the run that loads it: the same
# dataset (its manifest's hash), model step and layout. The train statistics follow from the manifest.
MATCHING_DATA = ("pde", "preset", "manifest_sha256", "frame_stride", "fields", "parameters", "grid")
# ... and of its objective record: the frames its net was built to read and write.
MATCHING_OBJECTIVE = ("history", "bundle")
BEST_CHECKPOINT = Path("checkpoints") / "best.ckpt"


@runtime_checkable
class StageMetric(Protocol):
    """An objective that validates its stage itself: `validation_errors(forecaster, batch) -> [B]`, one error per
    validation trajectory (lower is better when `goal == "min"`), logged as `val/<metric>` and averaged over all
    trajectories into the selection score."""

    metric: str
    goal: str

    def validation_errors(self, forecaster: Forecaster, batch: TrajectoryBatch) -> Tensor: ...


def stage_selection(objective: object) -> dict[str, Any] | None:
    """The selection record (`pdebench.training.module.selection_record`'s keys) of an objective that validates its
    stage itself, or None for one validated by rolling out the forecaster."""
    if not isinstance(objective, StageMetric):
        return None
    return {"metric": objective.metric, "goal": objective.goal, "gmean_steps": 1}


def check_stages(cfg: TrainConfig) -> None:
    """Refuse, in one sentence naming the key, stages that cannot run: a repeated name, a `stage` no stage has, a
    frozen sub-network read from a stage that does not run before it."""
    names = [stage.name for stage in cfg.stages]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InvalidSetting(f"stages names stage {repeated[0]} twice; give every stage its own name")
    if cfg.stage is not None and cfg.stage not in names:
        known = ", ".join(names) if names else "none (this run has no stages)"
        raise InvalidSetting(f"stage={cfg.stage} is not a stage of this run; its stages: {known}")
    if any(frozen.stage is not None for frozen in cfg.frozen):
        raise InvalidSetting("frozen[].stage names a stage, which only a stage's own frozen list can; give the run's "
                             "frozen sub-networks a checkpoint path")
    for position, stage in enumerate(cfg.stages):
        for frozen in stage.frozen:
            if frozen.stage is not None and frozen.stage not in names[:position]:
                raise InvalidSetting(f"stage {stage.name} loads {frozen.module} from stage {frozen.stage}, which does "
                                     f"not run before it; name one of the earlier stages: "
                                     f"{', '.join(names[:position]) or 'none'}")


def stage_dir(cfg: TrainConfig, name: str) -> Path:
    """The folder stage `name` of run `cfg` trains into."""
    return Path(cfg.run_dir) / name


def stage_run(cfg: TrainConfig, stage: StageConfig) -> TrainConfig:
    """The run config of one stage: the run's, with the stage's objective, its frozen sub-networks (an earlier stage
    resolved to that stage's best checkpoint) after the run's own, its own folder, and `stage` naming it."""
    frozen = [dataclasses.replace(f, checkpoint=str(stage_dir(cfg, f.stage) / BEST_CHECKPOINT), stage=None)
              if f.stage is not None else f for f in stage.frozen]
    return dataclasses.replace(cfg, objective=dataclasses.replace(cfg.objective, name=stage.objective),
                               frozen=[*cfg.frozen, *frozen], run_dir=str(stage_dir(cfg, stage.name)),
                               stage=stage.name)


def run_stages(cfg: TrainConfig, fit_one: Callable[[TrainConfig], tuple[Path, float]]) -> tuple[Path, float]:
    """Run the stages of `cfg` in order (or only `cfg.stage`) with `fit_one`; the last one's (best checkpoint, best
    selection score)."""
    check_stages(cfg)
    chosen = [s for s in cfg.stages if cfg.stage is None or s.name == cfg.stage]
    result: tuple[Path, float] | None = None
    for stage in chosen:
        result = fit_one(stage_run(cfg, stage))
    assert result is not None  # check_stages: a named stage exists, and `stages` is not empty here
    return result


# --- frozen sub-networks ------------------------------------------------------------------------------------------


def freeze(module: nn.Module) -> None:
    """No gradient and eval mode for `module` (the training module keeps it in eval mode, `frozen_modules`)."""
    module.requires_grad_(False)
    module.eval()


def check_frozen_present(frozen: list[FrozenConfig]) -> None:
    """Refuse, before any data loads, a frozen sub-network whose checkpoint does not exist (yet)."""
    for entry in frozen:
        if entry.checkpoint is not None and not Path(entry.checkpoint).is_file():
            raise CheckpointError(f"frozen sub-network {entry.module}: checkpoint {entry.checkpoint} does not exist; "
                                  "train the run (or stage) it comes from first")


def _checked_checkpoint(frozen: FrozenConfig, data_info: dict[str, Any], objective: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint `frozen.checkpoint`, loaded weights-only and checked to be a pdebench-train checkpoint of this
    run's dataset and frames."""
    assert frozen.checkpoint is not None  # `stage_run` resolves a stage to its checkpoint
    check_frozen_present([frozen])
    path = Path(frozen.checkpoint)
    where = f"frozen sub-network {frozen.module}: checkpoint {path}"
    checkpoint = load_checkpoint_weights_only(path)
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not isinstance(hparams, dict) or "pdebench" not in checkpoint or "data_info" not in hparams:
        raise CheckpointError(f"{where} was not written by pdebench-train (no 'pdebench' metadata)")
    theirs = hparams["data_info"] if isinstance(hparams["data_info"], dict) else {}
    their_objective = hparams.get("objective") if isinstance(hparams.get("objective"), dict) else {}
    differing = [f"data {key}" for key in MATCHING_DATA if theirs.get(key) != data_info.get(key)]
    differing += [f"objective.{key}" for key in MATCHING_OBJECTIVE if their_objective.get(key) != objective.get(key)]
    if differing:
        raise CheckpointError(f"{where} was trained with another {', '.join(differing)} than this run "
                              f"(dataset {theirs.get('dataset')!r}, this run: {data_info.get('dataset')!r}); load a "
                              "sub-network trained on this dataset with these frames")
    return checkpoint


def load_frozen(net: nn.Module, frozen: list[FrozenConfig], data_info: dict[str, Any],
                objective: dict[str, Any]) -> list[dict[str, Any]]:
    """Load each `frozen` sub-network of `net` from its checkpoint and `freeze` it.

    `data_info` is this run's data record and `objective` its objective as a plain dict; a checkpoint of another
    dataset, model step, field layout or history and bundle is refused (`CheckpointError`), as is one whose
    sub-network's weights do not fit. Returns one provenance record per sub-network (`module`, `source`,
    `checkpoint`, and the source run's `label` and `seed`), which the run record keeps.
    """
    records = []
    for entry in frozen:
        try:
            target = net.get_submodule(entry.module)
        except AttributeError:
            children = ", ".join(name for name, _ in net.named_children()) or "none"
            raise InvalidSetting(f"frozen.module={entry.module} is not a sub-network of this run's net; its "
                                 f"sub-networks: {children}") from None
        checkpoint = _checked_checkpoint(entry, data_info, objective)
        source = entry.source or entry.module
        prefix = f"{STATE_PREFIX}net.{source}."
        state = {key[len(prefix):]: value for key, value in checkpoint["state_dict"].items()
                 if key.startswith(prefix)}
        if not state:
            raise CheckpointError(f"frozen sub-network {entry.module}: checkpoint {entry.checkpoint} holds no "
                                  f"sub-network {source}")
        try:
            target.load_state_dict(state)
        except RuntimeError as error:
            reason = (str(error).strip().splitlines() or ["the weights differ"])[0].rstrip(":. ")
            raise CheckpointError(f"frozen sub-network {entry.module}: the weights of {source} in checkpoint "
                                  f"{entry.checkpoint} do not fit this run's net ({reason})") from None
        freeze(target)
        source_run = run_record(checkpoint["hyper_parameters"]) if "run" in checkpoint["hyper_parameters"] else {}
        records.append({"module": entry.module, "source": source, "checkpoint": str(entry.checkpoint),
                        "label": source_run.get("label"), "seed": source_run.get("seed")})
    return records


@contextlib.contextmanager
def frozen_in_eval_mode(frozen: bool) -> Iterator[None]:
    """Silence, while a run with frozen sub-networks fits, Lightning's warning that modules are in eval mode when
    training starts: they are the frozen ones, kept there on purpose (`freeze`)."""
    with warnings.catch_warnings():
        if frozen:
            warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode", category=UserWarning)
        yield
