"""Torch datasets over one split file: training windows and whole trajectories for rollouts.

Both read lazily through `TrajectoryFile` (one HDF5 handle per worker process) by default, so memory does not grow
with the file size. With `preload` they read the split's fields once into one in-memory tensor instead (through
`TrajectoryFile.read_field`, with the same finiteness and checksum checks) and serve windows by indexing it;
`preload="auto"` does so only when the fields fit under `preload_limit_bytes`. Both modes give identical items and
batches. `__getitems__` (which torch's DataLoader calls with a batch's indices) returns the whole batch, gathered
from the tensor in one indexing operation per tensor when preloaded; `pdebench.data.batch.collate` passes it
through. Forked DataLoader workers share the preloaded tensor copy-on-write (it is only read, so no page is
copied); under the `spawn` start method torch moves it to shared memory when the dataset is sent to the workers.

Tensors are in physical units; standardisation happens on the model's device (`Normalizer`). A damaged file (NaN/inf,
a failed chunk checksum) stops an item with `LoaderDatasetError`, whose message stays one sentence even when the
item was read in a DataLoader worker process; in preload mode the same sentence comes from the constructor.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from pdebench.config.checks import is_whole_number
from pdebench.console import progress_bar
from pdebench.data.batch import TrajectoryBatch, WindowBatch, collate
from pdebench.data.reader import TrajectoryFile
from pdebench.data.schema import DatasetError
from pdebench.errors import InvalidSetting


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
    """`history` input and `bundle` target frames, `frame_stride` stored frames apart (one model step), and the
    stored frames at `label_offsets`: offsets in stored frames from the last input frame (the current state),
    negative before it, which a label finer than the model step reads (a finite difference on the stored frames).

    `bundle` may be 0 when the objective's label comes from `label_offsets` alone. The window grows to hold every
    frame: `lead` stored frames before the first input frame, `span` stored frames in all.
    """

    history: int = 1
    bundle: int = 1
    frame_stride: int = 1
    label_offsets: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for name, least in (("history", 1), ("bundle", 0), ("frame_stride", 1)):
            value = getattr(self, name)
            if not (is_whole_number(value) and value >= least):
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
        offsets = tuple(self.label_offsets)
        if not all(is_whole_number(o) for o in offsets):
            raise ValueError(f"label_offsets must be whole numbers of stored frames, got {self.label_offsets!r}")
        object.__setattr__(self, "label_offsets", offsets)

    @property
    def lead(self) -> int:
        """Stored frames a label reads before the first input frame (0 without labels)."""
        current = (self.history - 1) * self.frame_stride
        return max(0, -min((current + o for o in self.label_offsets), default=0))

    @property
    def frame_positions(self) -> tuple[int, ...]:
        """Index within the window's stored frames of each input and target frame (history + bundle of them)."""
        return tuple(self.lead + k * self.frame_stride for k in range(self.history + self.bundle))

    @property
    def label_positions(self) -> tuple[int, ...]:
        """Index within the window's stored frames of each label frame, in `label_offsets` order."""
        current = self.lead + (self.history - 1) * self.frame_stride
        return tuple(current + o for o in self.label_offsets)

    @property
    def span(self) -> int:
        """Stored frames covered by one window, first to last inclusive."""
        return max((self.frame_positions[-1], *self.label_positions)) + 1


def split_window(block: Tensor, spec: WindowSpec) -> tuple[Tensor, Tensor, Tensor | None]:
    """`(inputs [C, history, ...], targets [C, bundle, ...], labels [C, K, ...] or None)` of one window from all
    of its stored frames `block [C, span, *space]` (the one place the window layout is cut, for every read path)."""
    frames = block[:, spec.lead :: spec.frame_stride][:, : spec.history + spec.bundle]
    labels = block[:, list(spec.label_positions)] if spec.label_offsets else None
    return frames[:, : spec.history], frames[:, spec.history : spec.history + spec.bundle], labels


def read_window_item(file: TrajectoryFile, traj: int, start: int, spec: WindowSpec) -> tuple[Tensor, Tensor,
                                                                                                Tensor | None]:
    """`split_window` of the window of `traj` starting at stored frame `start`: a strided read of the model frames
    alone when no label frames are asked for, else one contiguous read of the window's stored frames."""
    if spec.label_offsets:
        return split_window(torch.from_numpy(file.read_window(traj, start, start + spec.span, 1)), spec)
    frames = torch.from_numpy(file.read_window(traj, start, start + spec.span, spec.frame_stride))
    return frames[:, : spec.history], frames[:, spec.history :], None


def trajectory_parameters(file: TrajectoryFile) -> np.ndarray:
    """Per-trajectory conditioning values `[n_traj, P]` float32, columns in `file.conditioning_names` order (a
    parameter that only records what a trajectory drew, `ParameterSpec.conditioning=False`, is left out)."""
    params = file.parameters()
    if not file.conditioning_names:
        return np.zeros((file.n_traj, 0), dtype=np.float32)
    return np.stack([params[name] for name in file.conditioning_names], axis=1).astype(np.float32)


# --- preloading -----------------------------------------------------------------------------------------------------
Preload = bool | Literal["auto"]
PRELOAD_CHOICES: tuple[Preload, ...] = ("auto", True, False)
# `preload="auto"` loads a split when its fields take at most this fraction of the memory free when the run starts,
# divided among the training processes of one node (each DDP process holds its own copy; forked DataLoader workers
# share their process's). The other three quarters stay for the model, optimiser state, activations, batches in
# flight, the validation split and the page cache; a split above the limit is read lazily, as before.
PRELOAD_MEMORY_FRACTION = 0.25
# Bytes read per HDF5 call while preloading: the one temporary copy a read makes stays small next to the split.
_PRELOAD_READ_BYTES = 64 << 20
# cgroup v1 reports "no limit" as a number near 2**63.
_CGROUP_UNLIMITED = 1 << 60


def _meminfo_available() -> int | None:
    """Linux `MemAvailable` (what new allocations can take without swapping) in bytes, else free physical pages."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def _cgroup_headroom() -> int | None:
    """Bytes this process's memory cgroup (a SLURM job's `--mem`, a container's limit) may still allocate: the
    smallest `limit - usage` from its cgroup up to the root; None when no limit is set or cgroups are unreadable."""
    root = Path("/sys/fs/cgroup")
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    candidates: list[tuple[Path, str, str]] = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":  # cgroup v2
            candidates.append((root / path.lstrip("/"), "memory.max", "memory.current"))
        elif "memory" in controllers.split(","):  # cgroup v1
            candidates.append((root / "memory" / path.lstrip("/"), "memory.limit_in_bytes", "memory.usage_in_bytes"))
    headroom: int | None = None
    for start, limit_name, usage_name in candidates:
        for directory in (start, *start.parents):
            if not directory.is_relative_to(root):
                break
            try:
                limit = (directory / limit_name).read_text().strip()
                usage = int((directory / usage_name).read_text().strip())
            except (OSError, ValueError):
                continue
            if limit.isdigit() and int(limit) < _CGROUP_UNLIMITED:
                room = max(0, int(limit) - usage)
                headroom = room if headroom is None else min(headroom, room)
    return headroom


def memory_headroom_bytes() -> int | None:
    """Bytes this process can still allocate: the smaller of the system's available memory and its cgroup's
    headroom; None when neither is known."""
    known = [v for v in (_meminfo_available(), _cgroup_headroom()) if v is not None]
    return min(known) if known else None


def preload_limit_bytes(processes: int = 1) -> int:
    """Largest split, in field bytes, that `preload="auto"` loads into memory: `PRELOAD_MEMORY_FRACTION` of the
    memory headroom divided among `processes` training processes of the node; 0 (always lazy) when unknown."""
    headroom = memory_headroom_bytes()
    if headroom is None:
        return 0
    return int(headroom * PRELOAD_MEMORY_FRACTION / max(1, processes))


def split_field_bytes(file: TrajectoryFile, n_traj: int | None = None) -> int:
    """Bytes every field of the first `n_traj` trajectories (all by default) takes as float32 in memory."""
    n = file.n_traj if n_traj is None else n_traj
    return 4 * n * len(file.field_names) * file.n_frames * math.prod(file.spatial_shape)


def resolve_preload(preload: Preload, nbytes: int, limit_bytes: int | None = None) -> bool:
    """Whether to preload a split whose fields take `nbytes`: `True`/`False` as given; `"auto"` when `nbytes` is at
    most `limit_bytes` (default `preload_limit_bytes()`)."""
    if preload is True or preload is False:
        return preload
    if preload != "auto":
        raise InvalidSetting(f"preload={preload!r} is not valid; expected 'auto', True or False")
    return nbytes <= (preload_limit_bytes() if limit_bytes is None else limit_bytes)


def load_fields(file: TrajectoryFile, n_traj: int | None = None, progress: bool = False) -> Tensor:
    """Every field of the first `n_traj` trajectories (all by default), float32 `[n_traj, C, n_frames, *space]`.

    Read through `TrajectoryFile.read_field` a block of trajectories at a time, so a NaN/inf or a failed chunk
    checksum raises the reader's one-sentence `DatasetError` naming file, field, trajectory (and frame). Closes the
    file's HDF5 handle afterwards, so that forked workers inherit none.
    """
    n = file.n_traj if n_traj is None else n_traj
    per_traj = 4 * file.n_frames * math.prod(file.spatial_shape)
    block = max(1, _PRELOAD_READ_BYTES // per_traj)
    loaded = torch.empty((n, len(file.field_names), file.n_frames, *file.spatial_shape), dtype=torch.float32)
    bar = progress_bar(n * len(file.field_names), f"loading {file.path.name}", "traj", enabled=progress)
    try:
        for c, name in enumerate(file.field_names):
            for first in range(0, n, block):
                last = min(n, first + block)
                loaded[first:last, c] = torch.from_numpy(file.read_field(name, slice(first, last)))
                bar.update(last - first)
    finally:
        bar.close()
        file.close()
    return loaded


def gather_frames(fields: Tensor, traj: Tensor, frames: Tensor) -> Tensor:
    """`out[b, :, t] = fields[traj[b], :, frames[b, t]]`: `[B, C, T, *space]` from `fields [N, C, F, *space]`,
    `traj [B]` and `frames [B, T]` (int64), in one `index_select` over the rows of `fields` (contiguous result)."""
    n, c, f = fields.shape[:3]
    rows = (traj[:, None, None] * c + torch.arange(c)[None, :, None]) * f + frames[:, None, :]
    picked = fields.view(n * c * f, -1).index_select(0, rows.reshape(-1))
    return picked.view(len(traj), c, frames.shape[1], *fields.shape[3:])


def _index_tensor(indices: Sequence[int], size: int, what: str) -> Tensor:
    """`indices` as int64 `[B]`, negatives counted from the end; IndexError naming `what` (the indexed items, plural)
    when one is out of range."""
    index = torch.as_tensor(indices, dtype=torch.int64).reshape(-1)
    if index.numel() and (int(index.min()) < -size or int(index.max()) >= size):
        raise IndexError(f"index out of range for the {size} {what}")
    return torch.where(index < 0, index + size, index)


class WindowDataset(Dataset):
    """Training samples: every admissible window of every trajectory.

    Item: a `WindowBatch` of unbatched tensors (`inputs [C, history, *space]`, `targets [C, bundle, *space]`,
    `cond [P]`, `step_time []`, `index []`, `labels [C, K, *space]` when `spec.label_offsets` asks for K label
    frames, else None), float32, physical units; batch them with `pdebench.data.batch.collate`. `__getitems__`
    returns the batch of several windows directly.

    `preload`: read lazily from the file (`False`), from one in-memory tensor of the whole split (`True`), or the
    latter when the split's fields take at most `memory_limit` bytes (`"auto"`; default `preload_limit_bytes()`).
    `self.preloaded` says which was chosen.
    """

    def __init__(self, path: str | Path, spec: WindowSpec, preload: Preload = False, memory_limit: int | None = None,
                 progress: bool = False) -> None:
        self.file = TrajectoryFile(path)
        self.spec = spec
        self.windows_per_traj = self.file.n_frames - spec.span + 1
        if self.windows_per_traj < 1:
            raise DatasetError(
                f"{self.file.path}: trajectories have {self.file.n_frames} frames, but a window of history="
                f"{spec.history}, bundle={spec.bundle}, frame_stride={spec.frame_stride}"
                + (f", label_offsets={list(spec.label_offsets)}" if spec.label_offsets else "")
                + f" needs {spec.span}"
            )
        self.params = torch.from_numpy(trajectory_parameters(self.file))
        self.step_times = torch.from_numpy(self.file.frame_intervals() * spec.frame_stride)
        self.preloaded = resolve_preload(preload, split_field_bytes(self.file), memory_limit)
        # [n_traj, C, n_frames, *space] when preloaded
        self.fields: Tensor | None = load_fields(self.file, progress=progress) if self.preloaded else None
        # stored frames of the inputs, targets and labels of a window, counted from its first stored frame
        positions = torch.tensor(spec.frame_positions, dtype=torch.int64)
        self._input_frames, self._target_frames = positions[: spec.history], positions[spec.history :]
        self._label_frames = torch.tensor(spec.label_positions, dtype=torch.int64) if spec.label_offsets else None

    def __len__(self) -> int:
        return self.file.n_traj * self.windows_per_traj

    def __getitem__(self, index: int) -> WindowBatch:
        if self.fields is not None:
            batch = self.__getitems__([index])
            return WindowBatch(**{f.name: None if getattr(batch, f.name) is None else getattr(batch, f.name)[0]
                                  for f in fields(WindowBatch)})
        traj, start = divmod(index, self.windows_per_traj)
        try:
            inputs, targets, labels = read_window_item(self.file, traj, start, self.spec)
        except DatasetError as exc:
            raise LoaderDatasetError(str(exc)) from exc
        return WindowBatch(inputs, targets, self.params[traj], self.step_times[traj], torch.tensor(traj), labels)

    def __getitems__(self, indices: Sequence[int]) -> WindowBatch:
        """The batch of windows `indices`, equal to `collate` of their items: when preloaded, one gather from the
        in-memory tensor per batch tensor, else one read per window. torch's DataLoader calls this (when a dataset
        has it) with a batch's indices instead of `__getitem__` per index, and hands the result to `collate_fn`."""
        if len(indices) == 0:
            raise ValueError(f"no window indices given to batch from {self.file.path}")
        if self.fields is None:
            return collate([self[i] for i in indices])
        index = _index_tensor(indices, len(self), f"windows of {self.file.path}")
        traj, start = index // self.windows_per_traj, (index % self.windows_per_traj)[:, None]
        inputs = gather_frames(self.fields, traj, start + self._input_frames)
        targets = gather_frames(self.fields, traj, start + self._target_frames)
        labels = None if self._label_frames is None else gather_frames(self.fields, traj, start + self._label_frames)
        return WindowBatch(inputs, targets, self.params[traj], self.step_times[traj], traj, labels)


class TrajectoryDataset(Dataset):
    """Rollout view: whole trajectories subsampled to model steps.

    Item: a `TrajectoryBatch` of unbatched tensors (`frames [C, J, *space]`, `cond [P]`, `step_time []` time units
    per model step, `index []`), J = (n_frames - 1) // frame_stride + 1. `preload`, `memory_limit` and `progress` as
    for `WindowDataset` (only the first `max_trajectories` trajectories are loaded).
    """

    def __init__(self, path: str | Path, frame_stride: int, max_trajectories: int | None = None,
                 preload: Preload = False, memory_limit: int | None = None, progress: bool = False) -> None:
        self.file = TrajectoryFile(path)
        self.frame_stride = frame_stride
        self.n_traj = self.file.n_traj if max_trajectories is None else min(max_trajectories, self.file.n_traj)
        self.params = torch.from_numpy(trajectory_parameters(self.file))
        self.step_times = torch.from_numpy(self.file.frame_intervals() * frame_stride)  # time units per model step
        self.preloaded = resolve_preload(preload, split_field_bytes(self.file, self.n_traj), memory_limit)
        # [n_traj, C, n_frames, *space] when preloaded
        self.fields: Tensor | None = load_fields(self.file, self.n_traj, progress) if self.preloaded else None

    @property
    def n_model_frames(self) -> int:
        return (self.file.n_frames - 1) // self.frame_stride + 1

    def __len__(self) -> int:
        return self.n_traj

    def __getitem__(self, traj: int) -> TrajectoryBatch:
        if not 0 <= traj < self.n_traj:
            raise IndexError(f"trajectory {traj} out of range for {self.n_traj} trajectories of {self.file.path}")
        if self.fields is not None:
            return TrajectoryBatch(self.fields[traj, :, :: self.frame_stride].clone(), self.params[traj],
                                   self.step_times[traj], torch.tensor(traj))
        try:
            frames = self.file.read_window(traj, 0, self.file.n_frames, self.frame_stride)
        except DatasetError as exc:
            raise LoaderDatasetError(str(exc)) from exc
        frames = torch.from_numpy(frames)
        return TrajectoryBatch(frames, self.params[traj], self.step_times[traj], torch.tensor(traj))

    def __getitems__(self, indices: Sequence[int]) -> TrajectoryBatch:
        """The batch of trajectories `indices` (what `collate` makes of their items): one gather when preloaded."""
        if len(indices) == 0:
            raise ValueError(f"no trajectory indices given to batch from {self.file.path}")
        if self.fields is None:
            return collate([self[i] for i in indices])
        traj = _index_tensor(indices, self.n_traj, f"trajectories of {self.file.path}")
        frames = torch.arange(0, self.file.n_frames, self.frame_stride).expand(len(traj), -1)
        return TrajectoryBatch(gather_frames(self.fields, traj, frames), self.params[traj], self.step_times[traj],
                               traj)
