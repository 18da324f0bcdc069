"""Solve blocks of trajectories on every core: this process and `workers - 1` worker processes solve contiguous
parts of the blocks side by side (whole blocks while there are enough, smaller parts at the end), and the parts are
joined back in trajectory order.

A trajectory's content depends only on its seed (the `TrajectoryGenerator` contract), never on the batch it is
solved in or on the thread count (solvers that would round differently with several threads, like the spectral
ones, run single-threaded: `data_gen.spectral.single_threaded`). So a block solved as parts in several processes
holds exactly the bytes of the same block solved at once in one process, and files written from it are bitwise
identical to a one-worker run.

Workers are fresh Python interpreters (`python -c ...`, never a `fork` of a process whose torch thread pool may be
running) that import only `data_gen` and the generator's own module: `multiprocessing`'s spawn would also re-import
the parent's main script, and with it the whole command-line stack, in every worker. Starting one costs about as
much CPU as importing torch; this process solves parts meanwhile, so the start-up is mostly hidden. A worker gets
the parent's import path and the generator itself (pickled), so any generator class importable by module works,
registered or not, and talks to the parent over two pipes of its own (its stdout and stderr stay the parent's); a
thread of the parent receives its answers as they come. A worker whose parent dies reads end-of-file and exits.
"""

from __future__ import annotations

import math
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
import torch

from data_gen.base import GeneratedBatch, SolverDiverged, TrajectoryGenerator

__all__ = ["BlockSolver", "WorkerFailed", "available_cores", "join_batches", "resolve_workers"]

# Sub-batches sent to a worker ahead of the one it is solving: it never waits for the parent between two of them.
_QUEUED_PER_WORKER = 2


class WorkerFailed(RuntimeError):
    """A worker process died or raised an error that could not be sent back as itself."""


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one, else every core)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def resolve_workers(workers: int | None, device: torch.device) -> int:
    """Processes to solve trajectories with (this one included): `workers` as given, or for None every available
    core on a CPU and one otherwise (a GPU is already parallel; several processes would only share it)."""
    if workers is not None:
        return int(workers)
    return available_cores() if device.type == "cpu" else 1


def join_batches(parts: Sequence[GeneratedBatch]) -> GeneratedBatch:
    """Concatenate sub-batches (in order) along the trajectory axis: fields `[B, T, *space]`, parameters `[B]`."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    return GeneratedBatch(
        fields={name: np.concatenate([p.fields[name] for p in parts]) for name in first.fields},
        parameters={name: np.concatenate([p.parameters[name] for p in parts]) for name in first.parameters},
    )


# --- the worker side ----------------------------------------------------------------------------------------------
def _picklable(error: BaseException) -> BaseException | None:
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return None
    return error


def worker_main(read_fd: int, write_fd: int) -> None:
    """Body of a worker process: read `(threads, device, pickled generator)`, then solve each `(seeds, n_frames)`
    it is sent, answering `("ok", GeneratedBatch)`, `("diverged", (seeds, time, reason))` or
    `("error", (exception or None, traceback text))`; stops on `None` or end-of-file."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent handles it
    inbox, outbox = Connection(read_fd, writable=False), Connection(write_fd, readable=False)
    try:
        threads, device, generator_bytes = inbox.recv()
    except EOFError:
        return
    torch.set_num_threads(threads)
    generator: TrajectoryGenerator = pickle.loads(generator_bytes)
    while True:
        try:
            message = inbox.recv()
        except EOFError:
            return
        if message is None:
            return
        seeds, n_frames = message
        try:
            reply: tuple[str, Any] = ("ok", generator.generate(seeds, n_frames, torch.device(device)))
        except SolverDiverged as error:  # its three-argument constructor does not survive pickling as itself
            reply = ("diverged", (error.seeds, error.time, error.reason))
        except Exception as error:
            reply = ("error", (_picklable(error), traceback.format_exc()))
        try:
            outbox.send(reply)
        except (BrokenPipeError, OSError):
            return


# --- the parent side ----------------------------------------------------------------------------------------------
def _solve_here(generator: TrajectoryGenerator, seeds: list[int], n_frames: int, device: torch.device,
                threads: int) -> tuple[str, Any]:
    """Solve one part in this process with the workers' thread count; the answer a worker would send."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return "ok", generator.generate(seeds, n_frames, device)
    except SolverDiverged as error:
        return "diverged", (error.seeds, error.time, error.reason)
    except Exception as error:
        return "error", (error, traceback.format_exc())
    finally:
        torch.set_num_threads(previous)


class _Worker:
    """One worker process, its two pipes, and a thread of this process that receives its answers as they come (a
    worker never waits for the parent to read a large result), putting `(worker, answer)` on `answers`."""

    def __init__(self, init: tuple[Any, ...], answers: queue.Queue[tuple[_Worker, Any]]) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        code = f"from data_gen.parallel import worker_main; worker_main({to_child_r}, {from_child_w})"
        # The parent's import path, so that the worker imports this very `data_gen` and the generator's module.
        path = os.pathsep.join(p or os.getcwd() for p in sys.path)
        env = {**os.environ, "PYTHONPATH": path}
        try:
            self.process = subprocess.Popen([sys.executable, "-c", code], pass_fds=(to_child_r, from_child_w),
                                            stdin=subprocess.DEVNULL, env=env)
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self.inbox = Connection(to_child_w, readable=False)  # parent -> worker
        self.outbox = Connection(from_child_r, writable=False)  # worker -> parent
        self.inbox.send(init)
        self.pending: deque[int] = deque()  # part indices sent and not answered yet, in order
        self._reader = threading.Thread(target=self._receive, args=(answers,), daemon=True)
        self._reader.start()

    def _receive(self, answers: queue.Queue[tuple[_Worker, Any]]) -> None:
        while True:
            try:
                answer = self.outbox.recv()
            except (EOFError, OSError):
                answers.put((self, None))  # the worker is gone (or this side was closed)
                return
            answers.put((self, answer))

    def died(self) -> WorkerFailed:
        code = self.process.wait()
        return WorkerFailed(f"a generation worker process (pid {self.process.pid}) exited with code {code} before "
                            f"answering (killed, or out of memory?)")

    def close(self, kill: bool) -> None:
        if kill:
            self.process.kill()
        else:
            try:
                self.inbox.send(None)
            except OSError:
                pass
        self.inbox.close()
        self.process.wait()
        self._reader.join()  # it sees end-of-file once the worker has exited
        self.outbox.close()


class BlockSolver:
    """Solves blocks of seeds with one generator: in this process alone (`workers == 1`), or in this process and
    `workers - 1` worker processes side by side.

    Use as a context manager; the worker processes start on the first block that needs them (this process solves
    parts meanwhile, so their start-up costs little) and stop on exit, or are killed if the solve was abandoned
    (e.g. after a divergence).
    """

    def __init__(self, generator: TrajectoryGenerator, device: torch.device, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.generator, self.device, self.workers = generator, device, workers
        self.threads = max(1, available_cores() // workers)  # torch threads of each process solving parts
        self._pool: list[_Worker] = []
        self._answers: queue.Queue[tuple[_Worker, Any]] = queue.Queue()
        self._abandoned = False

    def _start(self) -> list[_Worker]:
        if self._abandoned:  # workers of an abandoned solve may still be busy with its parts: start afresh
            self.close()
        if not self._pool:
            init = (self.threads, str(self.device), pickle.dumps(self.generator))
            self._answers = queue.Queue()
            self._pool = [_Worker(init, self._answers) for _ in range(self.workers - 1)]
        return self._pool

    def solve(self, blocks: Sequence[np.ndarray], n_frames: int,
              on_progress: Callable[[int], None] = lambda n: None) -> Iterator[GeneratedBatch]:
        """Yield one `GeneratedBatch` per block of seeds, in order; `on_progress(n)` as `n` more trajectories finish.

        Raises `SolverDiverged` when it reaches a block in which the solver diverged; every block before it has been
        yielded by then.
        """
        if self.workers == 1:
            for block in blocks:
                batch = self.generator.generate([int(s) for s in block], n_frames, self.device)
                on_progress(len(block))
                yield batch
            return
        yield from self._solve_in_workers(blocks, n_frames, on_progress)

    def _solve_in_workers(self, blocks: Sequence[np.ndarray], n_frames: int,
                          on_progress: Callable[[int], None]) -> Iterator[GeneratedBatch]:
        pool = self._start()
        # A process solves parts as large as a block (the batch one process would solve: small batches cost nearly
        # as much per step as large ones), smaller only when too few trajectories are left to keep every process
        # busy. Parts never straddle blocks; block b is parts first[b] .. first[b + 1] - 1.
        n_seeds = sum(len(block) for block in blocks)
        size = max(1, min(max((len(block) for block in blocks), default=1), math.ceil(n_seeds / self.workers)))
        parts: list[list[int]] = []
        first = [0]
        for block in blocks:
            parts += [[int(s) for s in block[i : i + size]] for i in range(0, len(block), size)]
            first.append(len(parts))
        answers: dict[int, tuple[str, Any]] = {}
        next_part = 0

        def send_more(max_depth: int) -> None:
            """Queue the next parts on the least busy workers (one round per queue depth, up to `max_depth`)."""
            nonlocal next_part
            for depth in range(1, max_depth + 1):
                for worker in pool:
                    if len(worker.pending) < depth and next_part < len(parts):
                        worker.inbox.send((parts[next_part], n_frames))
                        worker.pending.append(next_part)
                        next_part += 1

        def take(block: bool) -> None:
            """Move answers that arrived into `answers` (waiting for one if `block`)."""
            while True:
                try:
                    worker, answer = self._answers.get(block=block)
                except queue.Empty:
                    return
                if answer is None:
                    raise worker.died()
                index = worker.pending.popleft()
                answers[index] = answer
                if answer[0] == "ok":
                    on_progress(len(parts[index]))
                block = False

        # This process solves at most this many parts ahead of the oldest block not yet handed out (memory bound).
        ahead = self.workers * (_QUEUED_PER_WORKER + 1)
        finished = False
        try:
            for b in range(len(blocks)):
                mine = range(first[b], first[b + 1])
                while True:
                    take(block=False)
                    if all(k in answers for k in mine):
                        break
                    send_more(1)
                    if next_part < len(parts) and next_part < first[b] + ahead:  # this process solves a part,
                        here = next_part  # after giving every worker a second part to go on with meanwhile
                        next_part += 1
                        send_more(_QUEUED_PER_WORKER)
                        answers[here] = _solve_here(self.generator, parts[here], n_frames, self.device, self.threads)
                        if answers[here][0] == "ok":
                            on_progress(len(parts[here]))
                    else:
                        take(block=True)
                batches = []
                for k in mine:
                    status, payload = answers.pop(k)
                    if status == "diverged":
                        raise SolverDiverged(*payload)
                    if status == "error":
                        error, text = payload
                        raise (error or WorkerFailed("a generation worker failed")) from WorkerFailed(text)
                    batches.append(payload)
                yield join_batches(batches)
            finished = True
        finally:
            if not finished:  # abandoned (divergence, error, interrupt): the queued work must not run on
                self._abandoned = True

    def close(self) -> None:
        """Stop the worker processes: asked to exit after a complete solve, killed after an abandoned one."""
        for worker in self._pool:
            worker.close(kill=self._abandoned)
        self._pool, self._abandoned = [], False

    def __enter__(self) -> BlockSolver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
