"""Bad input stops each command with one clear sentence (exit 1, no stack trace), naming what was wrong.

The conditions themselves are tested through the library (test_evaluate, test_training, test_config); these run
each command's `main` in this process (`cli.run_main`: the function its console script calls, with `sys.argv` as a
user's command line sets it) to check the wiring that turns an error into one line on stderr and exit status 1. Each
installed console script also runs once in a fresh interpreter (`test_the_installed_command_prints_one_line`), which
proves the entry point itself; a fresh interpreter and its imports cost seconds per run, many times that on a busy
machine, so the other refusals stay in-process.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import pytest
import torch
import yaml
from cli import Finished, console_scripts, run_cli, run_main
from hydra.errors import MissingConfigException

from data_gen.config import generate_config
from pdebench.cli import common
from pdebench.cli.common import check_command_line
from pdebench.config.location import CONFIG_DIR
from pdebench.data.schema import DatasetError
from pdebench.leaderboard.config import leaderboard_config
from pdebench.rollout.config import evaluate_config
from pdebench.training.config import train_config
from pdebench.training.run import train


def assert_one_clear_error(finished: Finished, *fragments: str) -> None:
    """Exit status 1 and, on stderr, exactly one line: `error: ` and a sentence holding every fragment."""
    assert finished.returncode == 1, finished.stdout + finished.stderr
    lines = [line for line in finished.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), finished.stderr
    assert "Traceback" not in finished.stderr + finished.stdout
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    """A working directory whose `data/` holds a copy of ks-tiny stamped with an unsupported schema version."""
    work = tmp_path_factory.mktemp("errors")
    shutil.copytree(data_root / "ks-tiny", work / "data" / "ks-old")
    for split in ("train", "valid", "test"):
        with h5py.File(work / "data" / "ks-old" / f"{split}.h5", "r+") as f:
            f.attrs["schema_version"] = "0.9"
    return work


def test_generate_unknown_preset(workdir: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    finished = run_main("generate", "pde=ks", "preset=huge", cwd=workdir, monkeypatch=monkeypatch, capsys=capsys)
    assert_one_clear_error(finished, "unknown preset 'huge'", "tiny, small, paper")


def test_train_unknown_model_key_appended_with_plus(workdir: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    finished = run_main("train", "data.preset=old", "+model.widht=3", cwd=workdir, monkeypatch=monkeypatch,
                        capsys=capsys)
    assert_one_clear_error(finished, "model.widht for model fno", "hidden_channels")
    assert not (workdir / "runs").exists()


def test_evaluate_unsupported_schema_version(workdir: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    finished = run_main("evaluate", "model=persistence", "data=ks", "data.preset=old", cwd=workdir,
                        monkeypatch=monkeypatch, capsys=capsys)
    assert_one_clear_error(finished, "test.h5", "0.9")
    assert not (workdir / "results").exists()


def test_missing_dataset_directory_names_the_command(compose_cfg, tmp_path: Path) -> None:
    cfg = compose_cfg("train", ["data=ks", "data.preset=small", f"data.root={tmp_path}", f"run_dir={tmp_path}/run"])
    with pytest.raises(DatasetError, match="ks-small does not exist.*pdebench-generate pde=ks preset=small"):
        train(cfg)


# ---------------------------------------------------------------------------------------------------------------
# Config errors Hydra raises while composing the command line: one line, exit 1, nothing written. In-process: the
# console scripts call these `main` functions, and Hydra reads sys.argv.

LOADERS = {"train": train_config, "evaluate": evaluate_config, "generate": generate_config,
           "leaderboard": leaderboard_config}
# The lists the refusals name, as the config tree holds them (a new model or PDE changes them, not this file).
MODELS = ", ".join(sorted(path.stem for path in (Path(CONFIG_DIR) / "model").glob("*.yaml")))
DATASETS = ", ".join(sorted(path.stem for path in (Path(CONFIG_DIR) / "data").glob("*.yaml")))
PDES = ", ".join(sorted(path.stem for path in (Path(CONFIG_DIR) / "pde").glob("*.yaml")))


def without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine as one without a GPU, whatever it has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


def refusal(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cwd: Path, command: str,
            *args: str) -> str:
    """The one line `pdebench-<command> args...` refuses with: exit code 1, exactly one non-empty stderr line
    starting with `error:`, no traceback, and nothing written in the (empty) working directory."""
    finished = run_main(command, *args, cwd=cwd, monkeypatch=monkeypatch, capsys=capsys)
    assert_one_clear_error(finished)
    assert not list(cwd.iterdir()), f"{command} wrote {sorted(p.name for p in cwd.iterdir())} before refusing"
    return finished.stderr.strip()


# (command, arguments, fragments of the one line)
COMPOSE_ROWS = [
    # an unknown choice of a config group, with the valid choices
    ("train", ["model=fnoo", "data.preset=tiny"], ("error: model=fnoo is not a model (did you mean model=fno?)",
                                                   f"choose one of: {MODELS}")),
    ("train", ["objective=pushfoward"], ("objective=pushfoward is not an objective", "pushforward", "onestep")),
    ("train", ["data=kss"], ("data=kss is not a dataset", DATASETS)),
    ("train", ["experiment=ksfno"], ("experiment=ksfno is not an experiment", "ks_fno_quickstart")),
    ("train", ["hydra/launcher=nope"], ("hydra/launcher=nope is not a launcher", "slurm, slurm_cpu, submitit_local")),
    ("train", ["data=null"], ("data=null: a config group takes the name of one of its configs", "ks_visc", "~data")),
    # a misspelt key, with the valid keys at its level
    ("train", ["optim.lrr=3"], ("error: optim.lrr is not a setting of optim (did you mean optim.lr?); valid keys: "
                                "lr, weight_decay, warmup_fraction, min_lr_ratio, ema_decay",)),
    ("train", ["model.widht=3"], ("model.widht is not a setting of model", "hidden_channels")),
    # an unknown config group is an unknown top-level key
    ("train", ["foo=bar"], ("foo is not a setting or config group of pdebench-train", "valid keys: data, model")),
    # a value of the wrong type, with the type expected
    ("train", ["data.preset=tiny", "optim.lr=abc"], ("error: optim.lr=abc: expected a number (float), got 'abc'",)),
    ("train", ["seed=abc"], ("seed=abc: expected a whole number (int), got 'abc'",)),
    ("train", ["optim.lr=null"], ("optim.lr=null: expected a number (float), got null",)),
    ("train", ["trainer.deterministic=maybe"], ("trainer.deterministic=maybe: expected true or false",)),
    ("train", ["model.n_modes=x"], ("model.n_modes=x: expected a list, each a whole number (int), got 'x'",)),
    ("train", ["optim=3"], ("optim=3: expected a group of settings (lr, weight_decay",)),
    ("train", ["~optim.lr"], ("~optim.lr: optim.lr cannot be removed",)),
    # an override Hydra's grammar cannot read; a sweep without -m
    ("train", ["seed=[1"], ("seed=[1 is not a valid override", "key=[a,b]")),
    ("train", ["seed=0,1"], ("seed=0,1 is a sweep; add -m (--multirun)", "seed=[a,b]")),
    # the same in -m sweeps: every choice of a group, every value of a setting, each group choice as its own job
    ("train", ["-m", "model=fno,fnoo"], ("model=fnoo is not a model", MODELS)),
    ("train", ["-m", "seed=range(0,3)", "objective=onestep,pushfoward"], ("objective=pushfoward is not an objective",)),
    ("train", ["-m", "seed=0,1", "optim.lr=1e-3,abc"], ("optim.lr=abc: expected a number (float), got 'abc'",)),
    ("train", ["-m", "seed=0,1", "optim.lrr=3"], ("optim.lrr is not a setting of optim",)),
    # a value the setting's own checks refuse, wherever it stands in the sweep (a range: either end)
    ("train", ["-m", "seed=0,1,-1"], ("seed=-1 is not a valid seed: expected a whole number from 0",)),
    ("train", ["-m", "seed=range(2,-2,-1)"], ("seed=-1 is not a valid seed",)),
    ("train", ["-m", "model=fno,unet", "optim.lr=1e-3,0"], ("optim.lr=0.0 is not valid: expected a learning rate",)),
    ("train", ["-m", "model=fno,unet", "model.n_modes=[8]"],
     ("in the job with model=unet: model.n_modes is not a setting of model", "valid keys: name, hidden_channels")),
    ("train", ["-m", "optim.lr=interval(1e-4,1e-2)"], ("optim.lr=interval(1e-4,1e-2) is a range only a searching "
                                                       "sweeper samples", "hydra/sweeper=optuna")),
    ("train", ["-m", "hydra.job.chdir=true,false"], ("Hydra's own settings cannot be swept",)),
    # the library's own checks run before Hydra writes the run folder
    ("train", ["+optim.foo=1"], ("unknown config key optim.foo; valid keys under optim: lr",)),
    ("train", ["trainer.max_epochs=-5"], ("trainer.max_epochs=-5", "a whole number >= -1")),
    # the other commands
    ("evaluate", ["model=persistance", "data=ks"], ("model=persistance is not a model (did you mean "
                                                    "model=persistence?)", MODELS)),
    ("evaluate", ["model=persistence", "data.batchsize=3"],
     ("data.batchsize is not a setting of data (did you mean data.batch_size?)",)),
    ("evaluate", ["model=persistence", "data=ks", "rollout.thresholds=abc"],
     ("rollout.thresholds=abc: expected a list, each a number (float), got 'abc'",)),
    ("evaluate", ["ckpt=run", "trainer=dpp"], ("trainer=dpp is not a trainer (did you mean trainer=ddp?)", "cpu")),
    ("generate", ["pde=navier", "preset=tiny"], ("pde=navier is not a PDE", PDES)),
    ("generate", ["workers=many"], ("workers=many: expected a whole number (int) or null, got 'many'",)),
    ("generate", ["-m", "shard=range(0,2)", "n_shards=2", "batch_size=4,x"], ("batch_size=x: expected a whole",)),
    ("generate", ["pde.presets.tiny.train.n_trajs=3"],
     ("pde.presets.tiny.train.n_trajs is not a setting of pde.presets.tiny.train", "valid keys: n_traj, n_frames")),
    ("leaderboard", ["print=maybe"], ("print=maybe: expected true or false, got 'maybe'",)),
    ("leaderboard", ["out_dirr=x"], ("out_dirr is not a setting or config group of pdebench-leaderboard (did you "
                                     "mean out_dir?)", "results, out_dir, print")),
]


@pytest.mark.parametrize(("command", "args", "fragments"),
                         [pytest.param(c, a, f, id=f"{c}[{' '.join(a)}]") for c, a, f in COMPOSE_ROWS])
def test_config_error_is_one_line_before_anything_is_written(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str,
    args: list[str], fragments: tuple[str, ...],
) -> None:
    without_cuda(monkeypatch)
    line = refusal(monkeypatch, capsys, tmp_path, command, *args)
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in: {line}"


@pytest.mark.parametrize(("command", "args", "fragments"), [
    ("models", ["--model", "fnoo"], ("error: unknown model 'fnoo'; registered models: ", MODELS)),
    ("tune", ["ks", "--trials", "0"], ("error: --trials=0 is not valid: expected a number of trials >= 1",)),
    ("tune", ["kss"], ("error: dataset 'kss' has no recipe; recipes: ", "ks, ks_visc")),
], ids=["models-unknown-model", "tune-no-trials", "tune-unknown-dataset"])
def test_the_argparse_commands_refuse_in_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path, command: str, args: list[str],
                                                  fragments: tuple[str, ...]) -> None:
    line = refusal(monkeypatch, capsys, tmp_path, command, *args)
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in: {line}"


def test_gpu_request_on_a_machine_without_one_is_refused_before_the_run_folder(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    without_cuda(monkeypatch)
    line = refusal(monkeypatch, capsys, tmp_path, "train", "trainer.accelerator=gpu")
    assert "trainer.accelerator=gpu" in line and "no CUDA device is available" in line


# Command lines the check must let through untouched: sweep syntax, sampled ranges for a searching sweeper,
# launchers, appends, and settings for a machine other than this one (a SLURM sweep, a printed config).
ACCEPTED = [
    ("train", ["-m", "model=fno,unet", "seed=range(0,4)", "optim.lr=choice(1e-3,1e-2)"]),
    ("train", ["-m", "model=glob(f*)", "seed=0,1"]),
    ("train", ["-m", "hydra/sweeper=tune_lr", "hydra.sweeper.n_trials=2", "optim.lr=tag(log, interval(1e-4, 1e-2))"]),
    ("train", ["-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10", "seed=0,1"]),
    ("train", ["-m", "hydra/launcher=slurm", "hydra.launcher.partition=gpu", "trainer=gpu", "seed=0,1"]),
    ("train", ["--cfg", "hydra", "hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2"]),
    ("train", ["--cfg", "job", "trainer=gpu"]),
    ("train", ["--info", "defaults", "model=unet"]),
    ("train", ["experiment=ks_fno", "model.hidden_channels=16", "++optim.lr=0.01", "+hydra.job.env_set.FOO=1"]),
    ("evaluate", ["model=persistence", "data=ks", "rollout.thresholds=[0.8,0.9]"]),
    ("generate", ["-m", "pde=ks", "preset=paper", "n_shards=4", "shard=range(0,4)", "hydra/launcher=slurm_cpu"]),
    ("leaderboard", ["results=[results,runs/multirun]"]),
]


@pytest.mark.parametrize(("command", "args"), [pytest.param(c, a, id=f"{c}[{' '.join(a)}]") for c, a in ACCEPTED])
def test_valid_command_lines_pass_the_check(monkeypatch: pytest.MonkeyPatch, command: str, args: list[str]) -> None:
    without_cuda(monkeypatch)
    check_command_line(command, LOADERS[command], args)


def test_cfg_job_still_prints_the_config(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    finished = run_main("train", "--cfg", "job", "model=unet", "seed=3", cwd=tmp_path, monkeypatch=monkeypatch,
                        capsys=capsys)
    assert finished.returncode == 0, finished.stderr
    printed = yaml.safe_load(finished.stdout)
    assert printed["model"]["name"] == "unet" and printed["seed"] == 3
    assert not list(tmp_path.iterdir())


def test_hydra_full_error_keeps_hydras_own_exception(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """For developers, HYDRA_FULL_ERROR=1 shows Hydra's exception and its whole stack trace, as it always did."""
    with pytest.raises(MissingConfigException, match="model/fnoo"):
        run_main("train", "model=fnoo", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys,
                 env={"HYDRA_FULL_ERROR": "1"})


# Each console script once as installed, on a command line it refuses: (arguments, the whole of stderr, `{cwd}`
# standing for the working directory). The entry point pip wrote, in a fresh interpreter whose only state is the
# command line (Hydra's own error handling armed, no handler or patch of this test process), prints that one line and
# exits 1, writing nothing. Refusals early in each command, so that a run costs little more than its imports.
INSTALLED_REFUSALS = {
    # composed and checked as the training multirun will be, in a fresh process (schemas registered by the command)
    "board": (["ks", "model.nosuch=1"], "error: model.nosuch is not a setting of model; valid keys: name, n_modes, "
                                        "hidden_channels, n_layers, factorization, rank, positional_embedding, "
                                        "domain_padding"),
    "evaluate": (["model=persistance", "data=ks"],
                 f"error: model=persistance is not a model (did you mean model=persistence?); choose one of: {MODELS}"),
    "generate": (["pde=ks", "preset=huge"], "error: unknown preset 'huge' for pde=ks; available presets: tiny, small, "
                                            "paper"),
    "leaderboard": (["print=maybe"], "error: print=maybe: expected true or false, got 'maybe'"),
    "models": (["--model", "fnoo"], f"error: unknown model 'fnoo'; registered models: {MODELS}"),
    "train": (["-m", "model=fno,fnoo", "seed=0,1"], f"error: model=fnoo is not a model (did you mean model=fno?); "
                                                    f"choose one of: {MODELS}"),
    "tune": (["ks", "--trials", "0"], "error: --trials=0 is not valid: expected a number of trials >= 1"),
    "import": (["the_well", "nowhere"], "error: {cwd}/nowhere is not a dataset directory of The Well: it has no "
                                        "data/train, data/valid or data/test directory of .hdf5 files"),
    "export": (["the_well", "nowhere", "out"], "error: manifest nowhere/manifest.json does not exist; rerun "
                                               "`pdebench-generate` to rewrite it (finished split files are checked "
                                               "and kept)"),
}


def test_every_console_script_has_its_installed_refusal() -> None:
    assert sorted(f"pdebench-{command}" for command in INSTALLED_REFUSALS) == sorted(console_scripts())


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize("command", sorted(INSTALLED_REFUSALS))
def test_the_installed_command_prints_one_line(tmp_path: Path, command: str) -> None:
    args, line = INSTALLED_REFUSALS[command]
    proc = run_cli(command, *args, cwd=tmp_path, check=False)
    assert (proc.returncode, proc.stderr.splitlines()) == (1, [line.format(cwd=tmp_path)]), proc.stdout + proc.stderr
    assert not list(tmp_path.iterdir())


def test_a_check_that_cannot_decide_leaves_the_command_line_to_hydra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The check only ever adds a clearer refusal: if it fails for a reason of its own, Hydra runs as without it."""

    def undecided(*args: object) -> None:
        raise RuntimeError("cannot tell")

    monkeypatch.setattr(common, "_check_overrides", undecided)
    finished = run_main("train", "--cfg", "job", "seed=3", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert finished.returncode == 0 and yaml.safe_load(finished.stdout)["seed"] == 3
