"""Per-field and per-conditioning-parameter standardisation, with statistics computed on the train split only."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from pdebench.data.reader import TrajectoryFile
from pdebench.data.schema import DatasetError

# Parameters that are constant across the train split get std 1, so they standardise to 0 instead of inf.
_MIN_STD = 1e-12


class Normalizer(nn.Module):
    """Affine maps between physical and standardised units.

    Fields are standardised per channel (`x: [B, C, ...]`), conditioning parameters per entry (`p: [B, P]`).
    Statistics are buffers, so they travel inside every checkpoint.
    """

    def __init__(
        self,
        field_mean: Sequence[float],
        field_std: Sequence[float],
        param_mean: Sequence[float],
        param_std: Sequence[float],
    ) -> None:
        super().__init__()
        self.register_buffer("field_mean", torch.as_tensor(field_mean, dtype=torch.float32))
        self.register_buffer("field_std", torch.as_tensor(field_std, dtype=torch.float32))
        self.register_buffer("param_mean", torch.as_tensor(param_mean, dtype=torch.float32))
        self.register_buffer("param_std", torch.as_tensor(param_std, dtype=torch.float32))

    @classmethod
    def identity(cls, n_fields: int, n_params: int) -> Normalizer:
        """No-op statistics, for reference models that never see standardised data."""
        return cls([0.0] * n_fields, [1.0] * n_fields, [0.0] * n_params, [1.0] * n_params)

    @classmethod
    def from_stats(cls, stats: dict[str, list[float]]) -> Normalizer:
        return cls(stats["field_mean"], stats["field_std"], stats["param_mean"], stats["param_std"])

    def stats(self) -> dict[str, list[float]]:
        """Plain lists (JSON- and `weights_only`-safe) that `from_stats` turns back into this module."""
        return {name: getattr(self, name).tolist() for name in ("field_mean", "field_std", "param_mean", "param_std")}

    def _field_shape(self, x: Tensor) -> tuple[int, ...]:
        return (1, -1) + (1,) * (x.dim() - 2)

    def normalize_fields(self, x: Tensor) -> Tensor:
        shape = self._field_shape(x)
        return (x - self.field_mean.view(shape)) / self.field_std.view(shape)

    def denormalize_fields(self, x: Tensor) -> Tensor:
        shape = self._field_shape(x)
        return x * self.field_std.view(shape) + self.field_mean.view(shape)

    def normalize_params(self, p: Tensor) -> Tensor:
        return (p - self.param_mean) / self.param_std


def compute_train_statistics(train: TrajectoryFile) -> dict[str, list[float]]:
    """Mean and std of every field (over trajectories, time and space) and every conditioning parameter
    (`TrajectoryFile.conditioning_names`, in that order).

    Streams one trajectory at a time in float64, so memory does not grow with the file size. Never returns NaN or
    inf: the reader refuses non-finite values (naming file, variable, trajectory and frame), and statistics that are
    still not finite (a parameter so large that its square overflows float64) raise DatasetError instead of
    reaching a checkpoint.
    """
    n_fields = len(train.field_names)
    total = np.zeros(n_fields)
    total_sq = np.zeros(n_fields)
    count = 0
    for traj in range(train.n_traj):
        window = train.read_window(traj, 0, train.n_frames).astype(np.float64)  # [C, T, *space]
        flat = window.reshape(n_fields, -1)
        total += flat.sum(axis=1)
        total_sq += (flat**2).sum(axis=1)
        count += flat.shape[1]
    field_mean = total / count
    field_std = np.sqrt(np.maximum(total_sq / count - field_mean**2, 0.0))
    names = train.conditioning_names  # the model inputs only: a record parameter is never standardised
    params = np.stack([train.parameters()[n] for n in names], axis=1) if names else np.zeros((train.n_traj, 0))
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported just below
        param_mean, param_std = params.mean(axis=0), params.std(axis=0)
    raw = {"field_mean": field_mean, "field_std": field_std, "param_mean": param_mean, "param_std": param_std}
    for name, values in raw.items():  # before the std floor below, which would turn a NaN std into 1
        if not np.isfinite(values).all():
            raise DatasetError(
                f"{train.path}: the train statistic {name} is not finite ({values.tolist()}); expected finite "
                f"field and parameter values of moderate size"
            )
    stats = {
        "field_mean": field_mean,
        "field_std": np.where(field_std > _MIN_STD, field_std, 1.0),
        "param_mean": param_mean,
        "param_std": np.where(param_std > _MIN_STD, param_std, 1.0),
    }
    return {name: values.tolist() for name, values in stats.items()}
