"""Writing split files: trajectories solved block by block and appended, resumably, to their files.

A file's trajectories are appended in blocks of `batch_size` counted from its first trajectory, which fixes the
file's bytes whatever the number of processes solving them (`data_gen.parallel`) and wherever a run was
interrupted (`pdebench.data.TrajectoryWriter` resumes after the last complete block). A solver blow-up stops the
generation with `GenerationDiverged`, one sentence naming the split, trajectory, seed and time, and what was kept.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data_gen.base import GeneratedBatch, SolverDiverged
from data_gen.parallel import BlockSolver
from pdebench.console import progress_bar
from pdebench.data.schema import DatasetError, DatasetLayout
from pdebench.data.writer import TrajectoryWriter, partial_path


class GenerationDiverged(DatasetError):
    """The solver blew up; the message names the split, trajectory index, seed and time, and what was kept."""


def _stopped(layout: DatasetLayout, path: Path, where: str, when: str, reason: str,
             n_kept: int) -> GenerationDiverged:
    return GenerationDiverged(
        f"generation of {layout.dataset_name} stopped: the solver diverged in split '{layout.split}' at {where} "
        f"at {when} ({reason}); the {n_kept} trajectories written before it are kept in {partial_path(path)}, and "
        f"rerunning the same command resumes there"
    )


def _diverged_error(error: SolverDiverged, layout: DatasetLayout, path: Path, block_seeds: Sequence[int],
                    block_index: int, n_kept: int) -> GenerationDiverged:
    """One sentence for a `SolverDiverged` in the block of `block_seeds`, whose first trajectory has split index
    `block_index`."""
    positions = [i for i, s in enumerate(block_seeds) if int(s) in set(error.seeds)]
    if positions:
        where = f"trajectory {block_index + positions[0]} (seed {int(block_seeds[positions[0]])})"
        if len(positions) > 1:
            where += f" and {len(positions) - 1} more of its block"
    else:
        where = f"seed(s) {', '.join(map(str, error.seeds))}"
    return _stopped(layout, path, where, f"t = {error.time:g}", error.reason, n_kept)


def _nonfinite_error(batch: GeneratedBatch, layout: DatasetLayout, path: Path, block_seeds: Sequence[int],
                     block_index: int, n_kept: int) -> GenerationDiverged | None:
    """The same sentence for a block whose fields hold NaN or inf (a blow-up the solver did not notice), naming
    the first such trajectory and stored frame; None if every value is finite."""
    for name, values in batch.fields.items():
        values = np.asarray(values)
        if values.shape[:2] != (len(block_seeds), int(layout.n_frames)) or values.dtype.kind not in "fc":
            continue  # the writer names a wrong shape or dtype
        finite = np.isfinite(values).reshape(len(block_seeds), int(layout.n_frames), -1).all(axis=2)
        if not finite.all():
            position, frame = (int(i) for i in np.argwhere(~finite)[0])
            where = f"trajectory {block_index + position} (seed {int(block_seeds[position])})"
            when = f"stored frame {frame} (t = {frame * layout.frame_interval:g} after frame 0)"
            return _stopped(layout, path, where, when, f"non-finite values in field '{name}'", n_kept)
    return None


@dataclass(frozen=True)
class SplitJob:
    """One file to write: a split file, or a split's part in a shard file.

    seeds: `[layout.n_traj]`, one per trajectory of the file. first_index: the split index of the file's first
    trajectory (non-zero for a shard), used to name a trajectory whose solve diverged (`GenerationDiverged`).
    """

    path: Path
    layout: DatasetLayout
    seeds: np.ndarray
    first_index: int = 0


def generate_files(jobs: Sequence[SplitJob], batch_size: int, solver: BlockSolver, progress: bool = True,
                   desc: str | None = None) -> list[Path]:
    """Write the files of `jobs` (resuming each after its last complete block of an interrupted run), solving
    all of them together on `solver`'s processes; returns their paths.

    Trajectories are appended in blocks of `batch_size` counted from the file's first trajectory, which fixes the
    file's bytes whatever the number of processes. Each file is finished (renamed into place) as soon as its last
    block is written; a divergence stops everything with `GenerationDiverged`, keeping every block written so far.
    One progress bar counts the trajectories of all files (`desc`, default the dataset name); off a terminal it is
    a plain line every `pdebench.console.PROGRESS_EVERY_N_SECONDS` and one at the end (`pdebench.console.progress_bar`).
    """
    solver.start()  # a forked worker must not inherit the open split files
    with contextlib.ExitStack() as stack:
        writers = [stack.enter_context(TrajectoryWriter(job.path, job.layout)) for job in jobs]
        starts = [range(w.n_done, int(job.layout.n_traj), batch_size) for w, job in zip(writers, jobs, strict=True)]
        blocks = [[np.asarray(job.seeds[lo : lo + batch_size]) for lo in run]
                  for job, run in zip(jobs, starts, strict=True)]
        written = [0] * len(jobs)  # blocks written per file by this run
        total = sum(int(job.layout.n_traj) for job in jobs)
        desc = desc or (jobs[0].layout.dataset_name if jobs else "")
        with progress_bar(total, desc, "traj", enabled=progress, initial=sum(w.n_done for w in writers)) as bar:

            def postfix() -> None:
                bar.set_postfix_str(" ".join(f"{job.layout.split} {w.n_done}/{job.layout.n_traj}"
                                             for job, w in zip(jobs, writers, strict=True)), refresh=False)

            postfix()
            streams = [(b, int(job.layout.n_frames)) for b, job in zip(blocks, jobs, strict=True)]
            for writer, todo in zip(writers, blocks, strict=True):
                if not todo:  # complete, but interrupted before it was renamed into place
                    writer.finalize()
            with contextlib.closing(solver.solve_streams(streams, bar.update)) as solved:
                while True:
                    try:
                        index, batch = next(solved)
                    except StopIteration:
                        break
                    except SolverDiverged as error:
                        index = _failed_stream(error, blocks, written)
                        job, block = jobs[index], blocks[index][written[index]]
                        raise _diverged_error(error, job.layout, job.path, block,
                                              job.first_index + starts[index][written[index]],
                                              writers[index].n_done) from None
                    job, writer, block = jobs[index], writers[index], blocks[index][written[index]]
                    lo = starts[index][written[index]]
                    blow_up = _nonfinite_error(batch, job.layout, job.path, block, job.first_index + lo, writer.n_done)
                    if blow_up is not None:
                        raise blow_up
                    writer.append(batch.fields, batch.parameters, block)
                    written[index] += 1
                    postfix()
                    if written[index] == len(blocks[index]):
                        writer.finalize()
    return [job.path for job in jobs]


def _failed_stream(error: SolverDiverged, blocks: Sequence[Sequence[np.ndarray]], written: Sequence[int]) -> int:
    """The stream whose next block holds the seeds the solver diverged on (the first unfinished one if none)."""
    diverged = {int(s) for s in error.seeds}
    unfinished = [i for i, b in enumerate(blocks) if written[i] < len(b)]
    for index in unfinished:
        if diverged & {int(s) for s in blocks[index][written[index]]}:
            return index
    return unfinished[0]
