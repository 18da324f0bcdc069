"""Training plumbing: the learning-rate schedule and the loggers (CSV default, wandb offline)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from lightning.pytorch.loggers import CSVLogger

from pdebench.training.module import warmup_cosine
from pdebench.training.objectives import loss_function
from pdebench.training.run import make_logger


def test_warmup_then_cosine_to_the_floor() -> None:
    total, warmup, floor = 100, 10, 0.01
    assert warmup_cosine(0, total, warmup, floor) == pytest.approx(0.1)
    assert warmup_cosine(9, total, warmup, floor) == pytest.approx(1.0)
    assert warmup_cosine(10, total, warmup, floor) == pytest.approx(1.0)
    halfway = warmup + (total - warmup) // 2
    assert warmup_cosine(halfway, total, warmup, floor) == pytest.approx(floor + (1 - floor) * 0.5)
    assert warmup_cosine(total, total, warmup, floor) == pytest.approx(floor)
    quarter = warmup + (total - warmup) // 4  # 32: progress 22/90 through the cosine
    expected = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * 22 / 90))
    assert warmup_cosine(quarter, total, warmup, floor) == pytest.approx(expected)


def test_unknown_loss_names_the_choices() -> None:
    with pytest.raises(ValueError, match="objective.loss='l1'.*mse, rel_l2"):
        loss_function("l1")


def test_csv_is_the_default_logger(compose_cfg, tmp_path: Path) -> None:
    cfg = compose_cfg("train", [])
    assert cfg["logger"]["name"] == "csv"
    assert isinstance(make_logger(cfg["logger"], tmp_path), CSVLogger)


def test_wandb_logs_offline_without_network(compose_cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    cfg = compose_cfg("train", ["logger=wandb"])
    assert cfg["logger"]["offline"] is True
    logger = make_logger(cfg["logger"], tmp_path)
    logger.log_metrics({"train/loss": 1.0}, step=0)
    logger.experiment.finish()
    assert list((tmp_path / "wandb").glob("offline-run-*")), "no offline run directory was written"
