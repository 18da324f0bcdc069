"""What a person reads in a log file: progress lines from the first training step on and by time, plain lines (no
carriage returns) from generation and evaluation, none of Lightning's or torch's noise, numbers that keep their
digits, and no run folder left by a run that fails before training starts."""

from __future__ import annotations

import io
import os
import re
import stat
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from cli import run_cli
from lightning.pytorch.callbacks import Timer

from pdebench.cli import train as train_cli
from pdebench.cli.evaluate import summary_line
from pdebench.console import PlainProgress, progress_bar, rate_text, significant
from pdebench.training.callbacks import LineProgress, summary_table

# The distinctive text of each line a clean run must not show (Lightning 2.4-2.6, torch 2.6+).
NOISE = {
    "GPU availability": "GPU available:",
    "TPU availability": "TPU available:",
    "HPU availability": "HPU available:",
    "litlogger advertisement": "litlogger",
    "srun hint": "The `srun` command is available",
    "LeafSpec deprecation": "LeafSpec",
    "FLOPs column": "FLOPs",
    "FLOPs total": "Total Flops",
    "batch limit of 1.0": "was configured so 100% of the batches",
    "short-epoch logging claim": "is smaller than the logging interval",
    "stepping-batch estimate": "to estimate number of stepping batches",
}


class FakeTimer:
    """A clock that reads whatever the test sets."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# --- training progress lines ---------------------------------------------------------------------------------------


def _fake_trainer(max_epochs: int = -1, total: float = 20.0, batches: int = 7) -> Any:
    return SimpleNamespace(global_step=0, current_epoch=0, max_epochs=max_epochs, estimated_stepping_batches=total,
                           num_training_batches=batches, callbacks=[], is_global_zero=True, sanity_checking=False,
                           callback_metrics={})


def test_line_progress_prints_after_the_first_step_then_by_count_and_by_time() -> None:
    """Steps end every 4 s; a line per 5 steps or per 10 s: step 1 (the first), 4 (12 s after step 1's line), 5 (count),
    8 (12 s after step 5's), 10 (count); the rate is over the steps since the previous line, the ETA from the mean."""
    timer, out = FakeTimer(), io.StringIO()
    progress = LineProgress(every_n_steps=5, every_n_seconds=10.0, stream=out, timer=timer)
    trainer, module = _fake_trainer(), SimpleNamespace(last_loss=0.5)
    progress.on_train_start(trainer, module)
    for step in range(1, 11):
        timer.now, trainer.global_step = 4.0 * step, step
        module.last_loss = 1.0 / step
        progress.on_train_batch_end(trainer, module, None, None, (step - 1) % 7)
    lines = out.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == ["1/20", "4/20", "5/20", "8/20", "10/20"]
    assert lines[0] == "step 1/20 epoch 1 (batch 1/7) loss 1 4.00 s/step elapsed 0:04 eta 1:16"
    # steps 6-8 in 12 s: 4 s/step; 32 s for 8 steps, 12 to go: 48 s
    assert lines[3] == "step 8/20 epoch 1 (batch 1/7) loss 0.125 4.00 s/step elapsed 0:32 eta 0:48"


def test_line_progress_rules_switch_off_and_epochs_show_their_total() -> None:
    """0 turns a rule off (the first step's line stays); a bounded run shows `epoch k/K`, a faster one steps per
    second; a repeated call at the same step (gradient accumulation) prints nothing."""
    timer, out = FakeTimer(), io.StringIO()
    progress = LineProgress(every_n_steps=0, every_n_seconds=0, stream=out, timer=timer)
    trainer, module = _fake_trainer(max_epochs=3, total=21), SimpleNamespace(last_loss=None)
    progress.on_train_start(trainer, module)
    for step in (1, 1, 2, 3):
        timer.now, trainer.global_step = 0.25 * step, step
        progress.on_train_batch_end(trainer, module, None, None, step - 1)
    assert out.getvalue().splitlines() == ["step 1/21 epoch 1/3 (batch 1/7) loss ? 4.00 step/s elapsed 0:00 eta 0:05"]


def test_model_summary_has_no_flops() -> None:
    columns = [(" ", ["0"]), ("Name", ["forecaster"]), ("Type", ["Forecaster"]), ("Params", ["82.9 K"]),
               ("Mode", ["train"]), ("FLOPs", ["0"])]
    text = summary_table(columns, 82_900, 80_000, 0.3316)
    assert "FLOPs" not in text and "forecaster | Forecaster | 82.9 K | train" in text
    assert text.splitlines()[-1] == "82.9 K parameters (2.9 K not trainable), 0.332 MB"


@pytest.fixture(scope="module")
def training_log(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """stdout and stderr of a short `pdebench-train` run written to pipes (not a terminal), with an `srun` on the
    PATH (as on a SLURM machine) so that Lightning's hint would show, and weight averaging, with which Lightning
    announces that it reads the train loader early (for the learning-rate schedule's length)."""
    work = tmp_path_factory.mktemp("log")
    fake_bin = work / "bin"
    fake_bin.mkdir()
    (fake_bin / "srun").write_text("#!/bin/sh\nexit 0\n")
    (fake_bin / "srun").chmod(stat.S_IRWXU)
    env = {"PATH": f"{fake_bin}{os.pathsep}{os.environ.get('PATH', '')}", "OMP_NUM_THREADS": "1"}
    proc = run_cli("train", "data=ks", "data.preset=tiny", f"data.root={data_root}", "data.batch_size=4",
                   "model=fno", "model.hidden_channels=8", "model.n_modes=[8]", "trainer.max_epochs=1",
                   "trainer.limit_train_batches=3", "validation.rollout_steps=2", "validation.max_trajectories=2",
                   "optim.ema_decay=0.9", "progress_every_n_steps=0", "progress_every_n_seconds=1e-6",
                   f"run_dir={work}/run",
                   cwd=work, env=env)
    return proc.stdout + proc.stderr


@pytest.mark.slow
@pytest.mark.subprocess
def test_training_log_starts_progress_at_the_first_step_and_adds_lines_by_time(training_log: str) -> None:
    """With no lines by count, the first progress line is step 1's and the next ones come from the time rule."""
    assert "\r" not in training_log
    steps = [line for line in training_log.splitlines() if line.startswith("step ")]
    assert [line.split()[1] for line in steps] == ["1/3", "2/3", "3/3"], training_log
    assert re.fullmatch(r"step 1/3 epoch 1/1 \(batch 1/3\) loss \S+ \S+ (step/s|s/step) elapsed \d+:\d\d "
                        r"eta \d+:\d\d", steps[0]), steps[0]
    summary = training_log.index("parameters (all trainable)")
    assert summary < training_log.index(steps[0]) < training_log.index("epoch 1/1 done at step 3/3: val/")


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize("what", sorted(NOISE))
def test_training_log_holds_no_noise(training_log: str, what: str) -> None:
    assert NOISE[what] not in training_log, training_log


@pytest.mark.slow
@pytest.mark.subprocess
def test_lightning_lines_that_remain_are_printed_once(training_log: str) -> None:
    assert training_log.count("`Trainer.fit` stopped") == 1, training_log


# --- generation and evaluation -------------------------------------------------------------------------------------


def test_plain_progress_prints_by_time_and_at_the_end() -> None:
    """Updates every 10 s with a line due every 25 s: lines at 30 s and 60 s (the first update 25 s after the last
    line), then the final one at close; the rate and ETA count this run's work only (`initial` was done before)."""
    timer, out = FakeTimer(), io.StringIO()
    with PlainProgress(100, "ks-tiny", "traj", initial=10, every_n_seconds=25, stream=out, timer=timer) as bar:
        for second in range(10, 80, 10):
            timer.now = float(second)
            bar.set_postfix_str(f"train {bar.n + 5}/100")
            bar.update(5)
    assert out.getvalue().splitlines() == [
        "ks-tiny: 25/100 traj (25%) 2.00 s/traj elapsed 0:30 eta 2:30 train 25/100",
        "ks-tiny: 40/100 traj (40%) 2.00 s/traj elapsed 1:00 eta 2:00 train 40/100",
        "ks-tiny: 45/100 traj (45%) 2.00 s/traj elapsed 1:10 eta 1:50 train 45/100",
    ]
    again = io.StringIO()
    with PlainProgress(4, "x", stream=again, every_n_seconds=1, timer=timer) as bar:
        timer.now += 2
        bar.update(4)
    assert len(again.getvalue().splitlines()) == 1  # the line at 4/4 is the last: close adds none


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_is_tqdm_on_a_terminal_and_plain_lines_elsewhere() -> None:
    from tqdm import tqdm

    terminal = _Terminal()
    with progress_bar(4, "rollout", "step", stream=terminal) as bar:
        assert isinstance(bar, tqdm)
        bar.update(4)
    assert "\r" in terminal.getvalue()
    log = io.StringIO()
    with progress_bar(4, "rollout", "step", stream=log) as bar:
        assert isinstance(bar, PlainProgress)
        bar.update(4)
    assert log.getvalue().startswith("rollout: 4/4 step (100%) ") and "\r" not in log.getvalue()
    silent = io.StringIO()
    with progress_bar(4, "rollout", "step", enabled=False, stream=silent) as bar:
        bar.update(4)
    assert silent.getvalue() == ""


def test_generation_log_has_plain_lines(compose_cfg, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from data_gen.generate import generate_dataset

    cfg = compose_cfg("generate", ["pde=ks", "preset=tiny"])
    generate_dataset(cfg["pde"], "tiny", tmp_path, seed=cfg["seed"], batch_size=4, device="cpu", progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err
    assert err.splitlines()[-1].startswith("ks-tiny: 16/16 traj (100%) ")
    assert err.splitlines()[-1].endswith(" train 8/8 valid 4/4 test 4/4")


@pytest.mark.filterwarnings("ignore:.*too few for a bootstrap interval")
def test_evaluation_log_has_plain_lines(compose_cfg, data_root: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from pdebench.rollout.evaluation import evaluate

    cfg = compose_cfg("evaluate", ["model=persistence", "data=ks", "data.preset=tiny", f"data.root={data_root}",
                                   f"results_dir={tmp_path}", "rollout.bootstrap_resamples=10"])
    result = evaluate(cfg, progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err
    total = result.record.n_trajectories * result.record.n_steps
    assert f"rollout: {total}/{total} traj-step (100%) " in err


# --- numbers ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "text"), [
    (0.067, "0.0670"), (0.06749, "0.0675"), (12.34, "12.3"), (1234.5, "1,234"), (0.099996, "0.100"), (9.9996, "10.0"),
    (0.0, "0"),
])
def test_significant_digits(value: float, text: str) -> None:
    assert significant(value) == text


def test_rates_below_one_per_second_read_as_seconds_per_unit() -> None:
    assert rate_text(3, 2.0, "step") == "1.50 step/s"
    assert rate_text(1, 15.0, "traj") == "15.0 s/traj"
    assert rate_text(0, 1.0, "step") == "? step/s"


def test_evaluate_prints_a_slow_throughput_with_its_digits() -> None:
    result = {"label": "solver", "seed": 0, "dataset": "ks-small", "n_trajectories": 8, "n_steps": 40,
              "summary": {"corr_time_0.8": 12.5, "time_ceiling": 20.0, "one_step_nrmse": 0.0123},
              "intervals": {"corr_time_0.8": [11.0, 14.25]}, "throughput_traj_steps_per_s": 0.067}
    line = summary_line(result, 0.8)
    assert line.endswith("one-step nRMSE 0.0123, 0.0670 trajectory-steps/s"), line
    assert "(>0.8) 12.50 [11.00, 14.25] of 20.00" in line


# --- run folders -----------------------------------------------------------------------------------------------------


def test_a_run_that_fails_before_training_leaves_no_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """No dataset under data.root: one error line, exit 1, and neither the run folder nor `runs/` remains; the same
    failure in a run folder that existed before keeps it and what it held."""
    import logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    args = ["pdebench-train", "data=ks", "data.preset=tiny", f"data.root={tmp_path / 'nodata'}", "run_dir=runs/mine"]
    try:
        monkeypatch.setattr(sys, "argv", args)
        with pytest.raises(SystemExit) as stopped:
            train_cli.main()
        assert stopped.value.code == 1
        assert "ks-tiny does not exist" in capsys.readouterr().err
        assert sorted(p.name for p in tmp_path.iterdir()) == []
        kept = tmp_path / "runs" / "mine"
        kept.mkdir(parents=True)
        (kept / "notes.txt").write_text("mine")
        with pytest.raises(SystemExit):
            train_cli.main()
        assert (kept / "notes.txt").read_text() == "mine" and (kept / ".hydra" / "config.yaml").is_file()
    finally:
        root.handlers[:], root.level = handlers, level


def test_only_hydras_record_in_a_new_folder_is_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outer = tmp_path / "runs"
    folder = outer / "ks-tiny" / "fno" / "seed0"
    monkeypatch.setattr(train_cli, "_NEW_FOLDERS", [folder, folder.parent, folder.parent.parent, outer])

    def hydra_record() -> None:
        (folder / ".hydra").mkdir(parents=True, exist_ok=True)
        for name in train_cli.HYDRA_RECORD:
            (folder / ".hydra" / name).write_text("x")

    hydra_record()
    (folder / ".train.lock").write_text("")  # training began: kept whole
    assert not train_cli.remove_unused_run_folder(folder, ".hydra")
    assert (folder / ".hydra" / "config.yaml").is_file()
    (folder / ".train.lock").unlink()
    (outer / "other").mkdir()  # another run's folder beside it: the shared parent stays
    assert train_cli.remove_unused_run_folder(folder, ".hydra")
    assert not (outer / "ks-tiny").exists() and (outer / "other").is_dir()
    train_cli._NEW_FOLDERS[:] = [folder.parent]  # the run folder itself was there before this run
    hydra_record()
    assert not train_cli.remove_unused_run_folder(folder, ".hydra") and folder.is_dir()


class _EndlessTrainer:
    """A trainer whose length Lightning cannot estimate (an iterable dataset): `estimated_stepping_batches` raises."""

    def __init__(self, callbacks: list[Any]) -> None:
        self.global_step, self.current_epoch, self.max_epochs = 0, 0, None
        self.num_training_batches = float("inf")
        self.callbacks, self.is_global_zero, self.sanity_checking, self.callback_metrics = callbacks, True, False, {}

    @property
    def estimated_stepping_batches(self) -> float:
        raise ValueError("an iterable dataset has no length")


class _FixedTimer(Timer):
    """Lightning's `Timer` that reports a fixed time left (`trainer.max_time`)."""

    def __init__(self, left: float) -> None:
        super().__init__(duration="00:01:00:00")
        self.left = left

    def time_remaining(self, stage: str = "train") -> float:
        return self.left


def test_a_run_of_unknown_length_shows_no_total_and_its_eta_comes_from_max_time() -> None:
    """Without a step total the line has no `/total`, the batch no `/batches` and the epoch no bound; the ETA is
    what `max_time` leaves (125 s: 2:05), and `?` without a `Timer`."""
    timer, out = FakeTimer(), io.StringIO()
    progress = LineProgress(every_n_steps=1, every_n_seconds=0, stream=out, timer=timer)
    module = SimpleNamespace(last_loss=0.25)
    for callbacks in ([_FixedTimer(125.0)], []):
        trainer = _EndlessTrainer(callbacks)
        progress.on_train_start(trainer, module)
        timer.now, trainer.global_step = timer.now + 2.0, 1
        progress.on_train_batch_end(trainer, module, None, None, 0)
    assert out.getvalue().splitlines() == ["step 1 epoch 1 (batch 1) loss 0.25 2.00 s/step elapsed 0:02 eta 2:05",
                                           "step 1 epoch 1 (batch 1) loss 0.25 2.00 s/step elapsed 0:02 eta ?"]


@pytest.mark.parametrize(("left", "eta"), [(30.0, "0:30"), (600.0, "1:16")])
def test_the_eta_is_the_sooner_of_the_mean_step_time_and_max_time(left: float, eta: str) -> None:
    """One step in 4 s with 19 to go is 76 s: `max_time` leaving 30 s cuts it, leaving 600 s does not."""
    timer, out = FakeTimer(), io.StringIO()
    progress = LineProgress(every_n_steps=0, every_n_seconds=0, stream=out, timer=timer)
    trainer, module = _fake_trainer(), SimpleNamespace(last_loss=None)
    trainer.callbacks = [_FixedTimer(left)]
    progress.on_train_start(trainer, module)
    timer.now, trainer.global_step = 4.0, 1
    progress.on_train_batch_end(trainer, module, None, None, 0)
    assert out.getvalue().splitlines()[0].endswith(f" eta {eta}")


def test_a_resumed_run_counts_its_rate_and_eta_from_where_it_resumed() -> None:
    """Resumed at step 10 of 20, its first step (11) comes 3 s later: that is its first line, and its rate and ETA
    come from this run's one step (3 s/step, 9 to go: 27 s), not from the 11 steps since step 0."""
    timer, out = FakeTimer(), io.StringIO()
    progress = LineProgress(every_n_steps=0, every_n_seconds=0, stream=out, timer=timer)
    trainer, module = _fake_trainer(), SimpleNamespace(last_loss=2.0)
    timer.now, trainer.global_step = 100.0, 10
    progress.on_train_start(trainer, module)
    timer.now, trainer.global_step = 103.0, 11
    progress.on_train_batch_end(trainer, module, None, None, 3)
    timer.now, trainer.global_step = 106.0, 12
    progress.on_train_batch_end(trainer, module, None, None, 4)
    assert out.getvalue().splitlines() == ["step 11/20 epoch 1 (batch 4/7) loss 2 3.00 s/step elapsed 0:03 eta 0:27"]


def test_an_epoch_line_shows_the_validation_metrics_sorted_and_none_after_the_sanity_check() -> None:
    """Only scalar `val/` metrics, sorted by name, to 4 significant digits; the sanity check's validation prints
    nothing, and neither does a rank other than 0 or a disabled progress."""
    timer, out = FakeTimer(), io.StringIO()
    progress = LineProgress(every_n_steps=0, every_n_seconds=0, stream=out, timer=timer)
    trainer, module = _fake_trainer(max_epochs=2, total=20), SimpleNamespace(last_loss=None)
    progress.on_train_start(trainer, module)
    trainer.callback_metrics = {"val/selection": torch.tensor(2.345678), "train/loss": torch.tensor(0.5),
                                "val/corr_time_0.8": torch.tensor(12.0), "val/curve": torch.ones(3)}
    timer.now, trainer.global_step, trainer.current_epoch = 40.0, 10, 0
    trainer.sanity_checking = True
    progress.on_validation_end(trainer, module)
    assert out.getvalue() == ""
    trainer.sanity_checking = False
    progress.on_validation_end(trainer, module)
    assert out.getvalue().splitlines() == ["epoch 1/2 done at step 10/20: val/corr_time_0.8=12 val/selection=2.346 "
                                           "eta 0:40"]
    trainer.is_global_zero = False
    progress.on_validation_end(trainer, module)
    trainer.is_global_zero = True
    progress.disable()
    progress.on_validation_end(trainer, module)
    assert len(out.getvalue().splitlines()) == 1
    progress.enable()
    progress.on_validation_end(trainer, module)
    assert len(out.getvalue().splitlines()) == 2


def test_a_model_without_frozen_weights_is_all_trainable_and_the_rules_span_the_widest_line() -> None:
    """Columns are as wide as their widest cell, the rules as long as the widest line, and the totals say `all
    trainable` (1.2 M parameters, the size to three decimals with a thousands separator)."""
    columns = [(" ", ["0", "1"]), ("Name", ["net", "normalizer"]), ("Params", ["1.2 M", "0"]), ("FLOPs", ["0", "0"])]
    assert summary_table(columns, 1_200_000, 1_200_000, 1234.5678).splitlines() == [
        "  | Name       | Params",
        "-----------------------",
        "0 | net        | 1.2 M",
        "1 | normalizer | 0",
        "-----------------------",
        "1.2 M parameters (all trainable), 1,234.568 MB",
    ]


def test_progress_follows_stdout_unless_told_and_keeps_both_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """Left to decide, bars when stdout is a terminal and lines when it is not, with the step and time rules given."""
    from lightning.pytorch.callbacks import TQDMProgressBar

    from pdebench.training.callbacks import progress_callback

    monkeypatch.setattr(sys, "stdout", _Terminal())
    assert isinstance(progress_callback(True, 5, 12.5), TQDMProgressBar)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    lines = progress_callback(True, 5, 12.5)
    assert isinstance(lines, LineProgress) and (lines.every_n_steps, lines.every_n_seconds) == (5, 12.5)
    assert isinstance(progress_callback(True, 5, 12.5, interactive=True), TQDMProgressBar)


def test_the_model_summary_prints_the_table_once(capsys: pytest.CaptureFixture[str]) -> None:
    from pdebench.training.callbacks import ParameterSummary

    columns = [(" ", ["0"]), ("Name", ["net"]), ("Params", ["10"]), ("FLOPs", ["0"])]
    ParameterSummary.summarize(columns, 10, 10, 0.00004, {"train": 1, "eval": 0}, total_flops=0)
    assert capsys.readouterr().out == summary_table(columns, 10, 10, 0.00004) + "\n"


class _FlushCounter(io.StringIO):
    """A log file that counts how often it was flushed."""

    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


def test_a_one_epoch_run_ends_at_eta_zero_and_each_line_reaches_the_log_at_once() -> None:
    """`max_epochs=1` is a bound (`epoch 1/1`); the last step of the run and its epoch line leave nothing to wait
    for (eta 0:00); every line is flushed as it is printed, so a log followed as it grows shows it at once."""
    timer, out = FakeTimer(), _FlushCounter()
    progress = LineProgress(every_n_steps=2, every_n_seconds=0, stream=out, timer=timer)
    trainer, module = _fake_trainer(max_epochs=1, total=4, batches=4), SimpleNamespace(last_loss=0.5)
    progress.on_train_start(trainer, module)
    for step in range(1, 5):
        timer.now, trainer.global_step = 3.0 * step, step
        progress.on_train_batch_end(trainer, module, None, None, step - 1)
    trainer.callback_metrics = {"val/loss": torch.tensor(0.25)}
    progress.on_validation_end(trainer, module)
    assert out.getvalue().splitlines() == [
        "step 1/4 epoch 1/1 (batch 1/4) loss 0.5 3.00 s/step elapsed 0:03 eta 0:09",
        "step 2/4 epoch 1/1 (batch 2/4) loss 0.5 3.00 s/step elapsed 0:06 eta 0:06",
        "step 4/4 epoch 1/1 (batch 4/4) loss 0.5 3.00 s/step elapsed 0:12 eta 0:00",
        "epoch 1/1 done at step 4/4: val/loss=0.25 eta 0:00",
    ]
    assert out.flushes == 4


def test_a_line_comes_when_exactly_the_interval_has_passed_and_once_per_step() -> None:
    """Steps every 5 s, a line per 10 s: step 1 (the first), then step 3, exactly 10 s after step 1's line; a second
    call at the same step (gradient accumulation) adds no line even when the count rule would print one; a module
    that has logged no loss shows `?`."""
    timer, out = FakeTimer(), io.StringIO()
    progress = LineProgress(every_n_steps=0, every_n_seconds=10.0, stream=out, timer=timer)
    trainer, module = _fake_trainer(), SimpleNamespace()
    progress.on_train_start(trainer, module)
    for step in (1, 2, 3, 4):
        timer.now, trainer.global_step = 5.0 * step, step
        progress.on_train_batch_end(trainer, module, None, None, step - 1)
    assert [line.split()[1] for line in out.getvalue().splitlines()] == ["1/20", "3/20"]
    assert " loss ? " in out.getvalue()
    counted, out = LineProgress(every_n_steps=1, every_n_seconds=0, stream=io.StringIO(), timer=timer), None
    counted.on_train_start(trainer, module)
    for step in (5, 5, 6, 6):
        timer.now, trainer.global_step = timer.now + 1.0, step
        counted.on_train_batch_end(trainer, module, None, None, 0)
    assert [line.split()[1] for line in counted.stream.getvalue().splitlines()] == ["5/20", "6/20"]


def test_an_epoch_line_before_any_step_of_this_run_has_no_eta() -> None:
    """Validation that ends before this run took a step (a run resumed at the end of an epoch) has no step time to
    estimate from: `eta ?`."""
    timer, out = FakeTimer(), io.StringIO()
    progress = LineProgress(every_n_steps=0, every_n_seconds=0, stream=out, timer=timer)
    trainer, module = _fake_trainer(max_epochs=3, total=21), SimpleNamespace(last_loss=None)
    trainer.global_step, trainer.current_epoch = 7, 1
    progress.on_train_start(trainer, module)
    timer.now, trainer.callback_metrics = 5.0, {"val/loss": torch.tensor(0.25)}
    progress.on_validation_end(trainer, module)
    trainer.callback_metrics = {"train/loss": torch.tensor(0.5)}  # no validation metric: the line has none either
    progress.on_validation_end(trainer, module)
    assert out.getvalue().splitlines() == ["epoch 2/3 done at step 7/21: val/loss=0.25 eta ?",
                                           "epoch 2/3 done at step 7/21: eta ?"]


def test_the_model_summary_reaches_the_log_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from pdebench.training.callbacks import ParameterSummary

    out = _FlushCounter()
    monkeypatch.setattr(sys, "stdout", out)
    ParameterSummary.summarize([("Name", ["net"])], 1, 1, 0.0, {"train": 1})
    assert out.getvalue() == "Name\n----\nnet\n----\n1 parameters (all trainable), 0.000 MB\n" and out.flushes == 1
