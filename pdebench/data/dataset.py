"""Torch datasets over one split file: training windows and whole trajectories for rollouts.

Both read lazily through `TrajectoryFile` (one HDF5 handle per worker process), so memory does not grow with the
file size. Tensors are in physical units; standardisation happens on the model's device (`Normalizer`). A damaged
file (NaN/inf, a failed chunk checksum) stops an item with `LoaderDatasetError`, whose message stays one sentence
even when the item was read in a DataLoader worker process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from pdebench.data.batch import TrajectoryBatch, WindowBatch
from pdebench.data.reader import TrajectoryFile
from pdebench.data.schema import DatasetError


class LoaderDatasetError(DatasetError):
    """A `DatasetError` raised while reading a dataset item, possibly inside a DataLoader worker process.

    torch re-raises a worker's exception in the main process as `type(exc)("Caught ... in DataLoader worker process
    N.\nOriginal Traceback ...\n<module>.LoaderDatasetError: <sentence>")`; this class takes the reader's one
    sentence back out of that text, so a user sees which file is damaged instead of a worker's stack trace.
    """

    def __init__(self, message: str) -> None:
        marker = f"{type(self).__module__}.{type(self).__qualname__}: "
        if message.startswith("Caught ") and marker in message:
            message = message.rsplit(marker, 1)[1].strip()
        super().__init__(message)


@dataclass(frozen=True)
class WindowSpec:
    """`history` input and `bundle` target frames, `frame_stride` stored frames apart (one model step)."""

    history: int = 1
    bundle: int = 1
    frame_stride: int = 1

    def __post_init__(self) -> None:
        for name in ("history", "bundle", "frame_stride"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")

    @property
    def span(self) -> int:
        """Stored frames covered by one window, first to last inclusive."""
        return (self.history + self.bundle - 1) * self.frame_stride + 1


def trajectory_parameters(file: TrajectoryFile) -> np.ndarray:
    """Per-trajectory conditioning values `[n_traj, P]` float32, columns in `file.parameter_names` order."""
    params = file.parameters()
    if not file.parameter_names:
        return np.zeros((file.n_traj, 0), dtype=np.float32)
    return np.stack([params[name] for name in file.parameter_names], axis=1).astype(np.float32)


class WindowDataset(Dataset):
    """Training samples: every admissible window of every trajectory.

    Item: a `WindowBatch` of unbatched tensors (`inputs [C, history, *space]`, `targets [C, bundle, *space]`,
    `cond [P]`, `step_time []`, `index []`), float32, physical units; batch them with `pdebench.data.batch.collate`.
    """

    def __init__(self, path: str | Path, spec: WindowSpec) -> None:
        self.file = TrajectoryFile(path)
        self.spec = spec
        self.windows_per_traj = self.file.n_frames - spec.span + 1
        if self.windows_per_traj < 1:
            raise DatasetError(
                f"{self.file.path}: trajectories have {self.file.n_frames} frames, but a window of history="
                f"{spec.history}, bundle={spec.bundle}, frame_stride={spec.frame_stride} needs {spec.span}"
            )
        self.params = torch.from_numpy(trajectory_parameters(self.file))
        self.step_times = torch.from_numpy(self.file.frame_intervals() * spec.frame_stride)

    def __len__(self) -> int:
        return self.file.n_traj * self.windows_per_traj

    def __getitem__(self, index: int) -> WindowBatch:
        traj, start = divmod(index, self.windows_per_traj)
        try:
            window = self.file.read_window(traj, start, start + self.spec.span, self.spec.frame_stride)
        except DatasetError as exc:
            raise LoaderDatasetError(str(exc)) from exc
        window = torch.from_numpy(window)
        return WindowBatch(window[:, : self.spec.history], window[:, self.spec.history :], self.params[traj],
                           self.step_times[traj], torch.tensor(traj))


class TrajectoryDataset(Dataset):
    """Rollout view: whole trajectories subsampled to model steps.

    Item: a `TrajectoryBatch` of unbatched tensors (`frames [C, J, *space]`, `cond [P]`, `step_time []` time units
    per model step, `index []`), J = (n_frames - 1) // frame_stride + 1.
    """

    def __init__(self, path: str | Path, frame_stride: int, max_trajectories: int | None = None) -> None:
        self.file = TrajectoryFile(path)
        self.frame_stride = frame_stride
        self.n_traj = self.file.n_traj if max_trajectories is None else min(max_trajectories, self.file.n_traj)
        self.params = torch.from_numpy(trajectory_parameters(self.file))
        self.step_times = torch.from_numpy(self.file.frame_intervals() * frame_stride)  # time units per model step

    @property
    def n_model_frames(self) -> int:
        return (self.file.n_frames - 1) // self.frame_stride + 1

    def __len__(self) -> int:
        return self.n_traj

    def __getitem__(self, traj: int) -> TrajectoryBatch:
        if not 0 <= traj < self.n_traj:
            raise IndexError(f"trajectory {traj} out of range for {self.n_traj} trajectories of {self.file.path}")
        try:
            frames = self.file.read_window(traj, 0, self.file.n_frames, self.frame_stride)
        except DatasetError as exc:
            raise LoaderDatasetError(str(exc)) from exc
        frames = torch.from_numpy(frames)
        return TrajectoryBatch(frames, self.params[traj], self.step_times[traj], torch.tensor(traj))
