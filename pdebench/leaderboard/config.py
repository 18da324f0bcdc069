"""`leaderboard_config`: a resolved `pdebench-leaderboard` config as the typed `LeaderboardConfig`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pdebench.config import LeaderboardConfig, load_config


def leaderboard_config(cfg: Mapping[str, Any] | LeaderboardConfig) -> LeaderboardConfig:
    """`cfg` checked and typed once (`load_config`); the leaderboard has no registry-typed settings."""
    return load_config(cfg, LeaderboardConfig)
