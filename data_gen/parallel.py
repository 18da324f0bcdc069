"""Solve blocks of trajectories on every core: this process and `workers - 1` worker processes take whole blocks
(of every split at once, longest first) from one pool of work as they become free, and each split's blocks come back
in order.

A trajectory's content depends only on its seed (the `TrajectoryGenerator` contract), never on the batch it is
solved in or on the thread count (solvers that would round differently with several threads, like the spectral
ones, run single-threaded: `data_gen.spectral.single_threaded`). So a block solved in any process, whole or as
parts, holds exactly the bytes of the same block solved in one process, and files written from it are bitwise
identical to a one-worker run.

Workers are forked from this process when each process runs one torch thread on a CPU under Linux (the default of
one process per core; see `can_fork_workers`), which costs milliseconds. Otherwise they are fresh Python
interpreters (`python -c ...`) that import only `data_gen` and the generator's own module (`multiprocessing`'s spawn
would also re-import the parent's main script, and with it the whole command-line stack), which costs about as much
CPU as importing torch; this process solves parts meanwhile. A worker gets the generator itself (pickled), so any
generator class importable by module works, registered or not, and talks to the parent over two pipes of its own
(its stdout and stderr stay the parent's); a thread of the parent receives its answers as they come and hands it
its next part at once. A worker whose parent dies reads end-of-file and exits.
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
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


def _die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when its parent dies (Linux), so that a worker in the middle of a long
    solve never outlives a killed parent; elsewhere a worker exits at the end of its current part."""
    if sys.platform != "linux":
        return
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def worker_main(read_fd: int, write_fd: int, parent: int) -> None:
    """Body of a worker process of parent process `parent`: read `(threads, device, pickled generator)`, then solve
    each `(seeds, n_frames)` it is sent, answering `("ok", GeneratedBatch)`, `("diverged", (seeds, time, reason))`
    or `("error", (exception or None, traceback text))`; stops on `None` or end-of-file."""
    _die_with_parent(parent)
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


class _ForkedProcess:
    """The `subprocess.Popen` calls a `_Worker` uses (pid, wait, kill), for a worker made by `os.fork`."""

    def __init__(self, pid: int) -> None:
        self.pid, self.returncode = pid, None

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


def can_fork_workers(device: torch.device, threads: int) -> bool:
    """Whether workers may be forked from this process rather than started as fresh interpreters.

    A fork costs milliseconds instead of an interpreter importing torch (about 2 CPU seconds), but it is safe only
    where the child never uses what a fork cannot copy: on Linux (macOS forbids some system libraries after a
    fork), on a CPU (a forked process cannot use CUDA once the parent has), and with a single torch thread per
    process, so the child never enters an OpenMP parallel region (whose thread pool, if the parent had one, does not
    survive a fork). That is the case whenever every core runs its own process (`workers` = cores, the default).
    """
    return sys.platform == "linux" and device.type == "cpu" and threads == 1


class _Worker:
    """One worker process, its two pipes, and a thread of this process that receives its answers as they come (a
    worker never waits for the parent to read a large result) and hands each to `handler(worker, answer)`; the
    answer is None once the worker is gone. `listen()` starts that thread.

    The process is forked from this one when `fork` (see `can_fork_workers`), closing in the child `other_fds`
    (the pipes of the workers forked before it, so that each worker's pipes have exactly two ends and a worker sees
    end-of-file when the parent is gone); it leaves only through `os._exit`, never running this process's clean-up
    (open HDF5 files, locks). Otherwise it is a fresh interpreter.
    """

    def __init__(self, init: tuple[Any, ...], fork: bool = False, other_fds: Sequence[int] = ()) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        self.process: subprocess.Popen[bytes] | _ForkedProcess
        try:
            if fork:
                self.process = self._fork(to_child_r, from_child_w, [to_child_w, from_child_r, *other_fds])
            else:
                self.process = self._spawn(to_child_r, from_child_w)
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        self.inbox = Connection(to_child_w, readable=False)  # parent -> worker
        self.outbox = Connection(from_child_r, writable=False)  # worker -> parent
        self.inbox.send(init)
        self.pending: deque[int] = deque()  # part indices sent and not answered yet, in order
        self.handler: Callable[[_Worker, Any], None] = lambda worker, answer: None
        self._reader = threading.Thread(target=self._receive, daemon=True)

    @staticmethod
    def _spawn(read_fd: int, write_fd: int) -> subprocess.Popen[bytes]:
        code = f"from data_gen.parallel import worker_main; worker_main({read_fd}, {write_fd}, {os.getpid()})"
        # The parent's import path, so that the worker imports this very `data_gen` and the generator's module.
        path = os.pathsep.join(p or os.getcwd() for p in sys.path)
        env = {**os.environ, "PYTHONPATH": path}
        return subprocess.Popen([sys.executable, "-c", code], pass_fds=(read_fd, write_fd),
                                stdin=subprocess.DEVNULL, env=env)

    @staticmethod
    def _fork(read_fd: int, write_fd: int, close_fds: Sequence[int]) -> _ForkedProcess:
        parent = os.getpid()
        pid = os.fork()
        if pid:
            return _ForkedProcess(pid)
        code = 0  # the child
        try:
            for fd in close_fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            worker_main(read_fd, write_fd, parent)
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)

    @property
    def fds(self) -> tuple[int, int]:
        return self.inbox.fileno(), self.outbox.fileno()

    def listen(self) -> None:
        self._reader.start()

    def _receive(self) -> None:
        while True:
            try:
                answer = self.outbox.recv()
            except (EOFError, OSError):
                self.handler(self, None)  # the worker is gone (or this side was closed)
                return
            self.handler(self, answer)

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
        if self._reader.is_alive():
            self._reader.join()  # it sees end-of-file once the worker has exited
        self.outbox.close()


class _Part:
    """Seeds `seeds` (block `block` of stream `stream`, or a contiguous part of it) to solve for `n_frames` frames;
    `cost` is its block's (trajectories x frames)."""

    __slots__ = ("block", "cost", "n_frames", "seeds", "stream")

    def __init__(self, stream: int, block: int, seeds: list[int], n_frames: int, cost: float) -> None:
        self.stream, self.block, self.seeds, self.n_frames, self.cost = stream, block, seeds, n_frames, cost


def plan_parts(streams: Sequence[tuple[Sequence[np.ndarray], int]], processes: int) -> tuple[list[_Part], list[int]]:
    """Cut the blocks of `streams` into parts for `processes` processes, and order them for handing out.

    Returns `(parts, order)`: parts stream by stream, block by block (block `b` of a stream is a run of consecutive
    parts), and `order`, the part indices longest block first. The cost of a block is trajectories x frames. A
    block costing more than a process's fair share (the total over `processes`) is cut into that many equal
    parts, so a dataset of fewer blocks than processes still keeps every process busy; otherwise blocks stay
    whole (a smaller batch costs nearly as much per step for solvers dominated by per-step overhead). Parts keep
    their block's cost for ordering, so within a stream blocks are handed out in order (the last, shorter block
    last) and a finished block never waits long for an earlier one.
    """
    total = sum(len(block) * n_frames for blocks, n_frames in streams for block in blocks)
    share = max(total / processes, 1)
    parts: list[_Part] = []
    for index, (blocks, n_frames) in enumerate(streams):
        for number, block in enumerate(blocks):
            seeds = [int(s) for s in block]
            cost = len(seeds) * n_frames
            pieces = min(len(seeds), max(1, math.ceil(cost / share - 1e-9)))
            size = math.ceil(len(seeds) / pieces)
            parts += [_Part(index, number, seeds[i : i + size], n_frames, cost) for i in range(0, len(seeds), size)]
    order = sorted(range(len(parts)), key=lambda i: -parts[i].cost)  # stable: ties keep stream and block order
    return parts, order


class _Schedule:
    """One `solve_streams` over this process and the solver's worker processes.

    Work-stealing: the parts wait in `order`; a worker's receiving thread hands it the next part as soon as it
    answers (so a worker never waits for this process), keeping up to `_QUEUED_PER_WORKER` parts queued with it
    while many remain and one near the end (so no process sits idle while another still holds two). This process
    takes the next part itself whenever it is not yielding a finished block. At most `held_limit` answered parts
    wait to be yielded (memory bound); since every stream's parts are handed out in order, each of them waits only
    for parts already being solved.
    """

    def __init__(self, solver: BlockSolver, streams: Sequence[tuple[Sequence[np.ndarray], int]],
                 on_progress: Callable[[int], None]) -> None:
        self.solver, self.on_progress = solver, on_progress
        self.parts, order = plan_parts(streams, solver.workers)
        self.queue: deque[int] = deque(order)
        self.answers: dict[int, tuple[str, Any]] = {}
        self.arrived: list[int] = []  # answered parts whose progress is not reported yet
        self.gone: list[_Worker] = []
        self.held_limit = solver.workers * (_QUEUED_PER_WORKER + 2)
        self.changed = threading.Condition()
        # block b of stream s is parts blocks[s][b][0] .. blocks[s][b][1] - 1
        self.blocks: list[list[tuple[int, int]]] = [[] for _ in streams]
        for k, part in enumerate(self.parts):  # parts are stream by stream, block by block
            ranges = self.blocks[part.stream]
            if len(ranges) == part.block:
                ranges.append((k, k + 1))
            else:
                ranges[-1] = (ranges[-1][0], k + 1)

    # --- called with self.changed held ----------------------------------------------------------------------------
    def _take(self) -> int | None:
        """The next part to solve, unless none is left or too many answers wait to be yielded."""
        if not self.queue or len(self.answers) >= self.held_limit:
            return None
        return self.queue.popleft()

    def _feed(self, worker: _Worker) -> None:
        depth = _QUEUED_PER_WORKER if len(self.queue) > 2 * self.solver.workers else 1
        while len(worker.pending) < depth and (index := self._take()) is not None:
            part = self.parts[index]
            try:
                worker.inbox.send((part.seeds, part.n_frames))
            except OSError:  # the worker is gone: its receiving thread reports it
                self.queue.appendleft(index)
                return
            worker.pending.append(index)

    def _answered(self, worker: _Worker, answer: Any) -> None:
        """A worker's receiving thread: keep the answer, give the worker more work, wake the yielding thread."""
        with self.changed:
            if answer is None:
                self.gone.append(worker)
            elif worker.pending:
                index = worker.pending.popleft()
                self.answers[index] = answer
                self.arrived.append(index)
                self._feed(worker)
            self.changed.notify_all()

    # --- the yielding thread ----------------------------------------------------------------------------------------
    def run(self) -> Iterator[tuple[int, GeneratedBatch]]:
        solver = self.solver
        pool = solver._start()
        next_block = [0] * len(self.blocks)
        failed: tuple[int, SolverDiverged | BaseException] | None = None
        finished = False
        try:
            with self.changed:
                for worker in pool:
                    worker.handler = self._answered
                mine = self._take()  # this process starts at once on the longest part; workers are still starting
                for worker in pool:
                    self._feed(worker)
            while True:
                ready: list[tuple[int, GeneratedBatch]] = []
                with self.changed:
                    self._report_progress()
                    if self.gone:
                        raise self.gone[0].died()
                    for stream, blocks in enumerate(self.blocks):  # after a failure: what the others have ready
                        while (failed is None or failed[0] != stream) and next_block[stream] < len(blocks):
                            lo, hi = blocks[next_block[stream]]
                            if not all(k in self.answers for k in range(lo, hi)):
                                break
                            outcome = self._join([self.answers.pop(k) for k in range(lo, hi)])
                            if isinstance(outcome, BaseException):
                                failed = failed or (stream, outcome)
                                break
                            ready.append((stream, outcome))
                            next_block[stream] += 1
                    if not ready and failed is None and mine is None:
                        if all(n == len(b) for n, b in zip(next_block, self.blocks, strict=True)):
                            finished = True
                            return
                        mine = self._take()
                        if mine is None:
                            self.changed.wait()
                            continue
                    for worker in pool:  # room for more answers after yielding: idle workers get work again
                        self._feed(worker)
                yield from ready
                if failed is not None:
                    raise failed[1]
                if mine is not None and not ready:
                    part = self.parts[mine]
                    answer = _solve_here(solver.generator, part.seeds, part.n_frames, solver.device, solver.threads)
                    with self.changed:
                        self.answers[mine] = answer
                        self.arrived.append(mine)
                        mine = None
        finally:
            with self.changed:
                for worker in pool:
                    worker.handler = lambda worker, answer: None
            if not finished:  # abandoned (divergence, error, interrupt): the queued work must not run on
                solver._abandoned = True

    def _report_progress(self) -> None:
        for index in self.arrived:
            if self.answers.get(index, ("",))[0] == "ok":
                self.on_progress(len(self.parts[index].seeds))
        self.arrived.clear()

    @staticmethod
    def _join(answers: list[tuple[str, Any]]) -> GeneratedBatch | BaseException:
        """The block's batch from its parts' answers, or the exception the first failed part stands for."""
        for status, payload in answers:
            if status == "diverged":
                return SolverDiverged(*payload)
            if status == "error":
                error, text = payload
                failure = error or WorkerFailed("a generation worker failed")
                failure.__cause__ = WorkerFailed(text)
                return failure
        return join_batches([payload for _, payload in answers])


class BlockSolver:
    """Solves blocks of seeds with one generator: in this process alone (`workers == 1`), or in this process and
    `workers - 1` worker processes side by side.

    Use as a context manager; the worker processes start with `start()` or on the first solve (this process solves
    parts meanwhile, so their start-up costs little) and stop on exit, or are killed if the solve was abandoned
    (e.g. after a divergence).
    """

    def __init__(self, generator: TrajectoryGenerator, device: torch.device, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.generator, self.device, self.workers = generator, device, workers
        self.threads = max(1, available_cores() // workers)  # torch threads of each process solving parts
        self._pool: list[_Worker] = []
        self._abandoned = False

    def start(self) -> None:
        """Start the worker processes now (else the first solve does): before opening files a forked worker
        should not hold."""
        if self.workers > 1:
            self._start()

    def _start(self) -> list[_Worker]:
        if self._abandoned:  # workers of an abandoned solve may still be busy with its parts: start afresh
            self.close()
        if not self._pool:
            init = (self.threads, str(self.device), pickle.dumps(self.generator))
            fork = can_fork_workers(self.device, self.threads)
            for _ in range(self.workers - 1):  # every fork before any receiving thread starts
                self._pool.append(_Worker(init, fork, [fd for worker in self._pool for fd in worker.fds]))
            for worker in self._pool:
                worker.listen()
        return self._pool

    def solve_streams(self, streams: Sequence[tuple[Sequence[np.ndarray], int]],
                      on_progress: Callable[[int], None] = lambda n: None) -> Iterator[tuple[int, GeneratedBatch]]:
        """Solve several streams of blocks (e.g. the train, valid and test splits of a dataset) side by side.

        streams: `(blocks of seeds, n_frames)` each. Yields `(stream index, GeneratedBatch)` for every block, each
        stream's blocks in their order (streams interleave); `on_progress(n)` as `n` more trajectories finish.
        With one process the streams are solved one after the other. With several, all blocks of all streams form
        one pool of work handed out longest first (so a long test block starts early and short train blocks fill
        the gaps at the end) to whichever process is free; a block is cut into parts only when it alone is more
        than a process's fair share of the whole. Raises `SolverDiverged` when a stream reaches a block in which
        the solver diverged, after yielding every block of every stream that was ready by then.
        """
        if self.workers == 1:
            for index, (blocks, n_frames) in enumerate(streams):
                for block in blocks:
                    batch = self.generator.generate([int(s) for s in block], n_frames, self.device)
                    on_progress(len(block))
                    yield index, batch
            return
        yield from _Schedule(self, streams, on_progress).run()

    def close(self) -> None:
        """Stop the worker processes: asked to exit after a complete solve, killed after an abandoned one."""
        for worker in self._pool:
            worker.close(kill=self._abandoned)
        self._pool, self._abandoned = [], False

    def __enter__(self) -> BlockSolver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
