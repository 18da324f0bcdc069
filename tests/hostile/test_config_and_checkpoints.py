"""Hostile config values and checkpoints: rows of the hostile-input matrix (tests/hostile/matrix.py).

Config abuses: a key no schema knows (`+foo=1` at every level), a value out of range, a device this machine lacks.
Each must stop its command with one sentence naming the key, before any data is read or any file written; the
rows check the message and that the working directory is byte for byte what it was before the command ran.

Checkpoints: random bytes, an empty file, a truncated real checkpoint, a foreign one, one from another config and
a crafted one whose unpickling writes a file (a `__reduce__` payload), given to evaluate as `ckpt=` and planted as
`last.ckpt` for train to resume from, all with `TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1` set: whatever the environment
says, no checkpoint is unpickled beyond tensors and plain containers.

`check` (`python -m pdebench.data check FILES`) takes no config and no checkpoint, so it has no rows here.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from compose import compose_config
from matrix import TRAIN_OVERRIDES, assert_one_sentence, run_command

RESUME_HINT = "pass resume=false to start the run over"
MARKER = "pwned"  # the file the crafted checkpoint's payload writes into the working directory


def snapshot(work: Path) -> dict[str, tuple[int, int] | None]:
    """Every path under `work` with its size and modification time (None for a directory)."""
    return {str(p.relative_to(work)): None if p.is_dir() else (p.stat().st_size, p.stat().st_mtime_ns)
            for p in work.rglob("*")}


def without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine as one without a GPU, whatever it has (so the device rows run on a GPU machine too)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    if getattr(torch.backends, "mps", None) is not None:
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def unknown(key: str, level: str, sample: str) -> tuple[str, ...]:
    return (f"unknown config key {key}", level, sample)


FNO_SUBJECT = ["model=fno", "data=ks", "data.preset=tiny"]  # evaluate's reference-row runner would add persistence

# (overrides, command, fragments of the one-sentence error)
CONFIG_ROWS = [
    # keys no schema knows, at every level, through every command that reads that level
    (["+foo=1"], "generate", unknown("foo", "valid keys at the top level", "overwrite")),
    (["+foo=1"], "train", unknown("foo", "valid keys at the top level", "run_dir")),
    (["+foo=1"], "evaluate", unknown("foo", "valid keys at the top level", "results_dir")),
    (["+foo=1"], "leaderboard", unknown("foo", "valid keys at the top level", "out_dir")),
    (["+data.foo=1"], "train", unknown("data.foo", "valid keys under data", "batch_size")),
    (["+data.foo=1"], "evaluate", unknown("data.foo", "valid keys under data", "batch_size")),
    (["+rollout.foo=1"], "evaluate", unknown("rollout.foo", "valid keys under rollout", "thresholds")),
    (["+objective.foo=1"], "evaluate", unknown("objective.foo", "valid keys under objective", "history")),
    (["+trainer.foo=1"], "train", unknown("trainer.foo", "valid keys under trainer", "max_epochs")),
    (["+optim.foo=1"], "train", unknown("optim.foo", "valid keys under optim", "lr")),
    (["+pde.foo=1"], "generate", unknown("pde.foo", "valid keys under pde", "presets")),
    (["+pde.presets.tiny.foo=1"], "generate",
     unknown("pde.presets.tiny.foo", "under pde.presets.tiny", "train, valid, test, solver")),
    (["+model.foo=1"], "train", ("model.foo for model fno", "hidden_channels")),
    (["+model.foo=1"], "evaluate", ("model.foo for model persistence", "valid keys: name")),
    # values out of range: the trainer (Lightning would raise deep inside, after the data loaded)
    (["trainer.max_epochs=-5"], "train", ("trainer.max_epochs=-5", "a whole number >= -1")),
    (["trainer.max_steps=-2"], "train", ("trainer.max_steps=-2", "a whole number >= -1")),
    (["trainer.limit_train_batches=1.5"], "train", ("trainer.limit_train_batches=1.5", "between 0.0 and 1.0")),
    (["trainer.log_every_n_steps=0"], "train", ("trainer.log_every_n_steps=0", ">= 1")),
    (["trainer.precision=64bit"], "train", ("Lightning refuses the trainer.* settings", "Precision '64bit'")),
    (["trainer.strategy=bogus"], "train", ("Lightning refuses the trainer.* settings", "strategy='bogus'")),
    # the model (neuraloperator would fail with a RuntimeError once the net is built)
    (["model.hidden_channels=-1"], "train", ("model.hidden_channels=-1 for model fno", "a whole number >= 1")),
    (["model.n_layers=0"], "train", ("model.n_layers=0 for model fno", "a whole number >= 1")),
    (["model.n_modes=[0]"], "train", ("model.n_modes=[0] for model fno", "each a whole number >= 1")),
    (["model.n_modes=[]"], "train", ("model.n_modes=[] for model fno", "non-empty")),
    (["model.rank=0"], "train", ("model.rank=0", "a finite number > 0")),
    (["model.factorization=svd"], "train", ("model.factorization=svd for model fno", "tucker")),
    ([*FNO_SUBJECT, "model.hidden_channels=-1"], "evaluate", ("model.hidden_channels=-1 for model fno",)),
    # data, objective, optimiser, validation, seeds
    (["data.batch_size=0"], "train", ("data.batch_size=0", ">= 1")),
    (["data.batch_size=0"], "evaluate", ("data.batch_size=0", ">= 1")),
    (["data.frame_stride=0"], "train", ("data.frame_stride=0", ">= 1 (or null)")),
    (["data.num_workers=-1"], "train", ("data.num_workers=-1", ">= 0")),
    (["objective.history=0"], "train", ("objective.history=0", ">= 1")),
    (["objective.history=0"], "evaluate", ("objective.history=0", ">= 1")),
    (["objective.target_scale=0"], "train", ("objective.target_scale=0", "> 0")),
    (["optim.lr=0"], "train", ("optim.lr=0", "a learning rate")),
    (["optim.warmup_fraction=2"], "train", ("optim.warmup_fraction=2", "between 0 and 1")),
    (["validation.rollout_steps=0"], "train", ("validation.rollout_steps=0", ">= 1")),
    (["seed=-1"], "train", ("seed=-1", "not a valid seed", "4294967295")),
    (["seed=4294967296"], "train", ("seed=4294967296", "not a valid seed")),
    (["seed=-1"], "evaluate", ("seed=-1", "not a valid seed")),
    (["seed=-1"], "generate", ("seed=-1", "not a valid seed")),
    (["batch_size=0"], "generate", ("batch_size=0", ">= 1")),
    (["pde.presets.tiny.train.n_traj=0"], "generate", ("pde.presets.tiny.train.n_traj=0", ">= 1")),
    (["pde.benchmark.headline_goal=lowest"], "generate", ("pde.benchmark.headline_goal=lowest", "min or max")),
    # the rollout (an empty threshold list used to fail only after the result file was written)
    (["rollout.thresholds=[]"], "evaluate", ("rollout.thresholds=[]", "non-empty list", "strictly between 0 and 1")),
    (["rollout.thresholds=[0.8,1.2]"], "evaluate", ("rollout.thresholds=[0.8,1.2]", "strictly between 0 and 1")),
    (["rollout.gmean_steps=0"], "evaluate", ("rollout.gmean_steps=0", ">= 1")),
    (["rollout.batch_size=0"], "evaluate", ("rollout.batch_size=0", ">= 1")),
    (["rollout.max_steps=0"], "evaluate", ("rollout.max_steps=0", ">= 1 (or null)")),
    (["rollout.stability_factor=0.5"], "evaluate", ("rollout.stability_factor=0.5", ">= 1")),
    (["rollout.device=tpu9"], "evaluate", ("rollout.device=tpu9", "not a device torch knows")),
    (["results=[]"], "leaderboard", ("results=[]", "non-empty list")),
]

NO_CUDA = "no CUDA device is available"
# (overrides, command, fragments) run as on a machine without CUDA: torch would fail with an AssertionError inside
DEVICE_ROWS = [
    (["device=cuda"], "generate", ("device=cuda", NO_CUDA, "use device=cpu or auto")),
    (["rollout.device=cuda"], "evaluate", ("rollout.device=cuda", NO_CUDA, "use rollout.device=cpu or auto")),
    (["rollout.device=cuda:1"], "evaluate", ("rollout.device=cuda:1", NO_CUDA)),
    (["trainer.accelerator=gpu"], "train", ("trainer.accelerator=gpu", NO_CUDA, "use trainer.accelerator=cpu or auto")),
    (["trainer.accelerator=cuda"], "train", ("trainer.accelerator=cuda", NO_CUDA)),
]


@pytest.mark.parametrize(
    ("app", "overrides"),
    [
        ("train", []),
        ("train", ["experiment=ks_fno"]),
        ("train", ["experiment=ks_fno_quickstart"]),
        ("train", ["trainer=ddp", "trainer.devices=8", "trainer.num_nodes=2"]),
        ("train", ["logger=wandb", "trainer=debug", "model.factorization=tucker", "model.rank=0.5"]),
        ("evaluate", ["model=persistence", "data=ks", "rollout.device=cuda:0", "rollout.max_steps=10"]),
        ("generate", ["pde=ks_visc", "preset=paper", "device=cuda"]),
        ("leaderboard", []),
    ],
)
def test_every_shipped_config_passes_validation(monkeypatch: pytest.MonkeyPatch, app: str,
                                                overrides: list[str]) -> None:
    """The checks refuse only abuse: every config the repository ships validates (on a machine with a GPU)."""
    from data_gen.config import generate_config
    from pdebench.leaderboard.config import leaderboard_config
    from pdebench.rollout.config import evaluate_config
    from pdebench.training.config import train_config

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    load = {"train": train_config, "evaluate": evaluate_config, "generate": generate_config,
            "leaderboard": leaderboard_config}[app]
    cfg = compose_config(app, overrides)
    load(cfg)  # as the command loads it: every node, the model's and the solver's settings included
    assert cfg == compose_config(app, overrides)  # read only


def _row_id(overrides: list[str], command: str) -> str:
    return f"{command}[{' '.join(overrides)}]"


@pytest.mark.parametrize(
    ("overrides", "command", "fragments", "no_cuda"),
    [pytest.param(o, c, f, False, id=_row_id(o, c)) for o, c, f in CONFIG_ROWS]
    + [pytest.param(o, c, f, True, id="no-cuda-" + _row_id(o, c)) for o, c, f in DEVICE_ROWS],
)
def test_config_abuse_stops_the_command_before_any_work(
    work: Path, monkeypatch: pytest.MonkeyPatch, overrides: list[str], command: str, fragments: tuple[str, ...],
    no_cuda: bool,
) -> None:
    if no_cuda:
        without_cuda(monkeypatch)
    before = snapshot(work)
    message = run_command(command, work, *overrides)
    assert_one_sentence(message, *fragments)
    assert "\n" not in message, message
    assert snapshot(work) == before, "the command wrote something before it refused its config"


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints


class Crafted:
    """Unpickling this runs `exec`, which writes MARKER into the directory the test names."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str]]:
        return exec, (f"open({str(self.directory / MARKER)!r}, 'w').write('code ran')",)


def write_crafted(path: Path, marker_dir: Path) -> None:
    """A file torch.save wrote, shaped like a training checkpoint, holding the payload."""
    torch.save({"state_dict": {}, "pdebench": {}, "hyper_parameters": {}, "payload": Crafted(marker_dir)}, path)


@pytest.fixture(scope="module")
def real_run(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checkpoints directory of one real (minimal) training run: TRAIN_OVERRIDES, model.hidden_channels=8."""
    from pdebench.training.run import train

    run_dir = tmp_path_factory.mktemp("real_run")
    train(compose_config("train", [*TRAIN_OVERRIDES, f"data.root={data_root}", f"run_dir={run_dir}"]))
    return run_dir / "checkpoints"


def random_bytes(path: Path, request: pytest.FixtureRequest) -> list[str]:
    path.write_bytes(random.Random(0).randbytes(4096))
    return []


def empty_file(path: Path, request: pytest.FixtureRequest) -> list[str]:
    path.write_bytes(b"")
    return []


def truncated_checkpoint(path: Path, request: pytest.FixtureRequest) -> list[str]:
    real = (request.getfixturevalue("real_run") / "last.ckpt").read_bytes()
    path.write_bytes(real[: len(real) // 2])
    return []


def foreign_checkpoint(path: Path, request: pytest.FixtureRequest) -> list[str]:
    torch.save({"weights": torch.zeros(3)}, path)
    return []


def crafted_checkpoint(path: Path, request: pytest.FixtureRequest) -> list[str]:
    write_crafted(path, path.parent)
    return []


def checkpoint_of_another_config(path: Path, request: pytest.FixtureRequest) -> list[str]:
    path.write_bytes((request.getfixturevalue("real_run") / "last.ckpt").read_bytes())
    return ["model.hidden_channels=16"]  # the checkpoint's net has 8


UNREADABLE = "is not a readable PyTorch checkpoint"
# (damage writing the checkpoint file, command, fragments): evaluate gets it as ckpt=, train resumes from it
CHECKPOINT_ROWS = [
    (random_bytes, "evaluate", (UNREADABLE, "bytes are not a PyTorch checkpoint")),
    (empty_file, "evaluate", (UNREADABLE, "empty or ends early")),
    (truncated_checkpoint, "evaluate", (UNREADABLE, "damaged or truncated")),
    (foreign_checkpoint, "evaluate", ("not written by pdebench-train",)),
    (crafted_checkpoint, "evaluate", ("holds a Python object (exec)", "could run arbitrary code")),
    (random_bytes, "train", ("cannot resume", UNREADABLE, "bytes are not a PyTorch checkpoint", RESUME_HINT)),
    (empty_file, "train", ("cannot resume", UNREADABLE, "empty or ends early", RESUME_HINT)),
    (truncated_checkpoint, "train", ("cannot resume", UNREADABLE, "damaged or truncated", RESUME_HINT)),
    (foreign_checkpoint, "train", ("cannot resume", "not written by pdebench-train", RESUME_HINT)),
    (crafted_checkpoint, "train", ("cannot resume", "holds a Python object (exec)", "could run arbitrary code",
                                   RESUME_HINT)),
    (checkpoint_of_another_config, "train", ("cannot resume", "trained with label=fno-w8, model.hidden_channels=8",
                                             "asks for label=fno-w16, model.hidden_channels=16", RESUME_HINT)),
]


@pytest.mark.parametrize(
    ("damage", "command", "fragments"),
    [pytest.param(d, c, f, id=f"{c}-{d.__name__}") for d, c, f in CHECKPOINT_ROWS],
)
def test_bad_checkpoint_stops_the_command(
    work: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, damage, command: str,
    fragments: tuple[str, ...],
) -> None:
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # torch.load's default turned unsafe
    if command == "evaluate":
        path = work / "given.ckpt"
        overrides = [f"ckpt={path}"]
    else:
        path = work / "runs" / "checkpoints" / "last.ckpt"
        path.parent.mkdir(parents=True)
        overrides = []
    overrides += damage(path, request)
    before = snapshot(work)
    message = run_command(command, work, *overrides)
    assert_one_sentence(message, str(path), *fragments)
    assert not (work / "runs" / "checkpoints" / MARKER).exists() and not (work / MARKER).exists(), "code ran"
    assert snapshot(work) == before, "the command wrote something before it refused the checkpoint"


def test_the_crafted_checkpoint_is_live(tmp_path: Path) -> None:
    """The rows above mean something: unpickled without weights_only, the crafted file does run its payload."""
    write_crafted(tmp_path / "crafted.ckpt", tmp_path)
    torch.load(tmp_path / "crafted.ckpt", weights_only=False)
    assert (tmp_path / MARKER).read_text() == "code ran"


def test_every_trainer_checkpoint_load_is_weights_only(
    compose_cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lightning's own loads (resume, ckpt_path="best") go through the plugin, which forces weights_only=True even
    with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1, where Lightning's default TorchCheckpointIO would run the payload."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from pdebench.forecast.checkpoint import CheckpointError
    from pdebench.training.config import train_config
    from pdebench.training.run import WeightsOnlyCheckpointIO, make_trainer

    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    write_crafted(tmp_path / "crafted.ckpt", tmp_path)
    cfg = compose_cfg("train", ["trainer=debug", "trainer.enable_progress_bar=false", f"run_dir={tmp_path / 'run'}"])
    trainer = make_trainer(train_config(cfg), tmp_path / "run", [ModelCheckpoint(dirpath=tmp_path / "run")])
    assert isinstance(trainer.strategy.checkpoint_io, WeightsOnlyCheckpointIO)
    with pytest.raises(CheckpointError, match=r"holds a Python object \(exec\)"):
        trainer.strategy.load_checkpoint(tmp_path / "crafted.ckpt")
    assert not (tmp_path / MARKER).exists()
    assert not (tmp_path / "run").exists()  # building the Trainer wrote nothing


@pytest.mark.slow
def test_a_sound_checkpoint_still_resumes(compose_cfg, real_run: Path, data_root: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The resume checks refuse only what is wrong: the real run's own last.ckpt loads weights-only and agrees."""
    from pdebench.training.config import train_config
    from pdebench.training.run import WeightsOnlyCheckpointIO, resume_checkpoint

    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    run_dir = real_run.parent
    cfg = compose_cfg("train", [*TRAIN_OVERRIDES, f"data.root={data_root}", f"run_dir={run_dir}"])
    assert resume_checkpoint(train_config(cfg), run_dir) == real_run / "last.ckpt"
    assert resume_checkpoint(train_config({**cfg, "resume": False}), run_dir) is None
    assert WeightsOnlyCheckpointIO().load_checkpoint(real_run / "last.ckpt")["global_step"] > 0


@pytest.mark.skipif(os.name != "posix", reason="permission bits are POSIX")
def test_result_file_gets_the_umask_like_other_outputs(work: Path) -> None:
    """A result written by evaluate is shared like datasets are: mode 0o666 minus the umask, not owner-only."""
    from pdebench.rollout.evaluation import evaluate

    cfg = compose_config("evaluate", ["model=persistence", "data=ks", "data.preset=tiny", f"data.root={work / 'data'}",
                                      f"results_dir={work / 'results'}", "rollout.device=cpu"])
    umask = os.umask(0o027)
    try:
        result = evaluate(cfg, progress=False)
    finally:
        os.umask(umask)
    assert result.path.stat().st_mode & 0o777 == 0o640
