"""Scale-out of the generation driver: shards merged into the bytes of one job, worker processes that change no bit,
a SIGKILLed run resumed to the same file, solver blow-ups named, shards on the submitit and SLURM launchers.

Everything runs on KS `tiny` and on a synthetic 2-D generator (two fields on a box grid, any generator works)."""

from __future__ import annotations

import filecmp
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch
import xarray
from cli import BIN, run_cli
from compose import compose_config

from data_gen import parallel
from data_gen.base import GeneratedBatch, SolverDiverged
from data_gen.generate import generate, generate_dataset, merge_shards
from data_gen.parallel import available_cores, plan_parts, resolve_workers
from data_gen.plan import trajectory_seeds
from data_gen.registry import GENERATORS, GeneratorEntry
from data_gen.shards import SHARDS_DIR, shard_range
from data_gen.writing import GenerationDiverged
from pdebench.cli.common import USER_ERRORS
from pdebench.data.check import check_file
from pdebench.data.manifest import manifest_hash
from pdebench.data.schema import MANIFEST_NAME, SPLITS, Coordinate, DatasetError, FieldSpec, ParameterSpec
from pdebench.data.writer import partial_path

REPO = Path(__file__).resolve().parents[1]


# --- a synthetic generator: two fields on a 2-D box, content from the seed alone ----------------------------------
@dataclass
class WavesConfig:
    """n_x, n_y: grid points; diverge_seeds: seeds whose solve raises SolverDiverged at t = 0.75 (a blow-up);
    nan_seeds: seeds whose field `b` turns NaN from stored frame 3 on (a blow-up the solver does not notice)."""

    n_x: int = 6
    n_y: int = 5
    diverge_seeds: list[int] = field(default_factory=list)
    nan_seeds: list[int] = field(default_factory=list)


class BoxWaves:
    """`a` = amp * sin(k x + w t + phase) and `b` = a * a on a box grid; amp, k, phase from the seed."""

    pde = "waves"
    grid = "box"
    frame_interval = 0.25
    fields = (FieldSpec("a", "1", "box"), FieldSpec("b", "1", "box"))
    parameters = (ParameterSpec("amp", "1", "amplitude"),)

    def __init__(self, config: WavesConfig) -> None:
        self.config = config

    def coordinates(self) -> tuple[Coordinate, ...]:
        return (Coordinate("x", np.arange(self.config.n_x) / self.config.n_x, "1"),
                Coordinate("y", np.arange(self.config.n_y) / self.config.n_y, "1"))

    def solver_settings(self) -> dict[str, Any]:
        return {"solver": "closed form"}

    def generate(self, seeds: Sequence[int], n_frames: int, device: torch.device) -> GeneratedBatch:
        bad = [int(s) for s in seeds if int(s) in self.config.diverge_seeds]
        if bad:
            raise SolverDiverged(bad, 0.75, "non-finite values in a")
        x = np.arange(self.config.n_x)[:, None] / self.config.n_x + 0 * np.arange(self.config.n_y)[None, :]
        t = np.arange(n_frames)[:, None, None] * self.frame_interval
        amps, waves = [], []
        for seed in seeds:
            rng = np.random.default_rng(int(seed))
            amp, k, phase = rng.uniform(0.5, 2.0), rng.integers(1, 3), rng.uniform(0, 2 * np.pi)
            amps.append(amp)
            waves.append(amp * np.sin(2 * np.pi * k * x[None] + 3.0 * t + phase))
        a = np.stack(waves).astype(np.float32)
        b = a * a
        b[[int(s) in self.config.nan_seeds for s in seeds], 3:] = np.nan
        return GeneratedBatch({"a": a, "b": b}, {"amp": np.array(amps)})


def waves_pde(**solver: Any) -> dict[str, Any]:
    sizes = {"train": {"n_traj": 7, "n_frames": 5}, "valid": {"n_traj": 3, "n_frames": 6},
             "test": {"n_traj": 2, "n_frames": 6}}
    return {"name": "waves", "generator": "waves", "solver": solver, "benchmark": {"frame_stride": 1},
            "presets": {"tiny": sizes}}


@pytest.fixture(scope="module", autouse=True)
def waves_registered() -> Iterator[None]:
    """The synthetic generator, registered for this module only (the registry itself refuses to forget a name)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(GENERATORS, "waves", GeneratorEntry("waves", BoxWaves, WavesConfig))
        yield


def ks_pde() -> dict[str, Any]:
    return compose_config("generate", ["pde=ks", "preset=tiny"])["pde"]


def assert_same_files(a: Path, b: Path) -> None:
    """Every split file and the manifest's identity are bitwise the same."""
    for split in SPLITS:
        assert filecmp.cmp(a / f"{split}.h5", b / f"{split}.h5", shallow=False), split
    assert manifest_hash(a) == manifest_hash(b)


def assert_usable(dataset: Path) -> None:
    for split in SPLITS:
        path = dataset / f"{split}.h5"
        assert check_file(path) == [], check_file(path)
        with xarray.open_dataset(path, engine="h5netcdf") as ds:
            assert ds.sizes["traj"] >= 1


# --- shards -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("n_traj", "n_shards"), [(8, 4), (7, 3), (2, 4), (1, 1), (640, 16)])
def test_shard_ranges_are_contiguous_and_cover_every_trajectory_once(n_traj: int, n_shards: int) -> None:
    ranges = [shard_range(n_traj, i, n_shards) for i in range(n_shards)]
    assert [i for r in ranges for i in r] == list(range(n_traj))
    assert max(map(len, ranges)) - min(map(len, ranges)) <= 1


def test_four_ks_shards_merged_are_bitwise_the_single_job(ks_tiny: Path, tmp_path: Path) -> None:
    """ks-tiny of the session: one job, blocks of 4. Here: 4 shards in blocks of 3, merged in blocks of 4."""
    pde = ks_pde()
    for shard in range(4):
        generate_dataset(pde, "tiny", tmp_path, batch_size=3, device="cpu", progress=False, shard=shard, n_shards=4)
    dataset = tmp_path / "ks-tiny"
    assert sorted(p.name for p in (dataset / SHARDS_DIR).iterdir()) == ["0-of-4", "1-of-4", "2-of-4", "3-of-4"]
    assert not (dataset / MANIFEST_NAME).exists() and not (dataset / "train.h5").exists()
    assert merge_shards(pde, "tiny", tmp_path, batch_size=4, progress=False) == dataset  # n_shards found on disk
    assert_same_files(ks_tiny, dataset)
    assert not (dataset / SHARDS_DIR).exists()
    assert_usable(dataset)


def test_waves_shards_merged_are_bitwise_the_single_job(tmp_path: Path) -> None:
    """Two fields: the merged file's chunks are allocated in the same order as a single job's (same blocks)."""
    pde = waves_pde()
    single = generate_dataset(pde, "tiny", tmp_path / "one", batch_size=2, progress=False)
    for shard in (2, 0, 1):  # any order
        generate_dataset(pde, "tiny", tmp_path / "sharded", batch_size=5, progress=False, shard=shard, n_shards=3)
    merged = merge_shards(pde, "tiny", tmp_path / "sharded", batch_size=2, progress=False, n_shards=3)
    assert_same_files(single, merged)
    assert_usable(merged)


def test_merge_with_a_missing_shard_names_it_and_writes_nothing(tmp_path: Path) -> None:
    pde = waves_pde()
    for shard in (0, 1, 3):
        generate_dataset(pde, "tiny", tmp_path, progress=False, shard=shard, n_shards=4)
    with pytest.raises(DatasetError) as info:
        merge_shards(pde, "tiny", tmp_path, progress=False)
    message = str(info.value)
    assert "shard 2 of 4 of split 'train'" in message and "does not exist" in message
    assert "`pdebench-generate pde=waves preset=tiny shard=2 n_shards=4`" in message
    dataset = tmp_path / "waves-tiny"
    assert not any((dataset / f"{split}.h5").exists() for split in SPLITS)
    assert not (dataset / MANIFEST_NAME).exists()


def test_merge_refuses_shards_of_another_configuration(tmp_path: Path) -> None:
    pde = waves_pde()
    for shard in range(2):
        generate_dataset(pde, "tiny", tmp_path, seed=1, progress=False, shard=shard, n_shards=2)
    with pytest.raises(DatasetError, match=r"was not written for shard 0 of 2 of waves-tiny with the configuration "
                                           r"asked for now.*shard=0 n_shards=2 overwrite=true"):
        merge_shards(pde, "tiny", tmp_path, seed=0, progress=False)


def test_shard_jobs_of_a_finished_dataset_do_nothing_and_merging_again_keeps_it(tmp_path: Path) -> None:
    pde = waves_pde()
    for shard in range(2):
        generate_dataset(pde, "tiny", tmp_path, progress=False, shard=shard, n_shards=2)
    dataset = merge_shards(pde, "tiny", tmp_path, progress=False)
    before = {split: (dataset / f"{split}.h5").stat().st_mtime_ns for split in SPLITS}
    generate_dataset(pde, "tiny", tmp_path, progress=False, shard=1, n_shards=2)
    assert not (dataset / SHARDS_DIR).exists()
    assert merge_shards(pde, "tiny", tmp_path, progress=False) == dataset
    with pytest.raises(DatasetError, match="no shards of waves-tiny to merge"):  # nothing to redo it from:
        merge_shards(pde, "tiny", tmp_path, progress=False, overwrite=True)  # the dataset must stay
    assert before == {split: (dataset / f"{split}.h5").stat().st_mtime_ns for split in SPLITS}
    assert (dataset / MANIFEST_NAME).exists()


def test_merge_without_shards_says_how_to_make_them(tmp_path: Path) -> None:
    (tmp_path / "waves-tiny").mkdir()
    with pytest.raises(DatasetError, match=r"no shards of waves-tiny to merge .* -m shard='range\(0,4\)'"):
        merge_shards(waves_pde(), "tiny", tmp_path, progress=False)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["shard=1"], "shard=1 needs n_shards"),
        (["shard=4", "n_shards=4"], "shard must be an integer in 0 .. n_shards - 1 = 3, got 4"),
        (["n_shards=4"], "n_shards=4 needs shard=<index>"),
        (["merge=true", "shard=0", "n_shards=2"], "merge=true joins every shard of the dataset, so it takes no shard"),
        (["workers=0"], "workers=0 is not valid"),
        (["n_shards=0", "merge=true"], "n_shards=0 is not valid"),
    ],
)
def test_bad_scaleout_arguments_are_named_before_anything_is_written(tmp_path: Path, overrides: list[str],
                                                                     fragment: str) -> None:
    cfg = compose_config("generate", ["pde=ks", "preset=tiny", f"root={tmp_path / 'data'}", *overrides])
    with pytest.raises(USER_ERRORS) as info:
        generate(cfg, progress=False)
    assert fragment in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "data").exists()


# --- every core, same bits ----------------------------------------------------------------------------------------
def test_workers_default_to_every_core_on_a_cpu_and_one_on_a_gpu() -> None:
    assert resolve_workers(None, torch.device("cpu")) == available_cores() >= 1
    assert resolve_workers(None, torch.device("cuda")) == 1
    assert resolve_workers(3, torch.device("cpu")) == 3
    assert compose_config("generate", ["pde=ks"])["workers"] is None  # the command's default: every core


@pytest.fixture(params=["fork", pytest.param("spawn", marks=[pytest.mark.slow, pytest.mark.subprocess])])
def start_method(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Workers forked from this process (the default on Linux with one torch thread per process) or started as
    fresh interpreters (the fallback everywhere else; `slow`, since each worker imports torch anew)."""
    if request.param == "fork" and not parallel.can_fork_workers(torch.device("cpu"), 1):
        pytest.skip("workers are forked only on Linux")
    monkeypatch.setattr(parallel, "can_fork_workers", lambda device, threads: request.param == "fork")
    return request.param


def test_two_workers_write_the_bytes_of_one(ks_tiny: Path, tmp_path: Path, start_method: str) -> None:
    """Blocks of 4 solved by 2 processes: the files of the session's one-process run."""
    out = generate_dataset(ks_pde(), "tiny", tmp_path, batch_size=4, device="cpu", progress=False, workers=2)
    assert_same_files(ks_tiny, out)


class KilledInWorkers(BoxWaves):
    """Solves like `BoxWaves` in the process that built it; any other process (a worker) is killed on its first
    block, as by the out-of-memory killer."""

    def __init__(self, config: WavesConfig) -> None:
        super().__init__(config)
        self.parent = os.getpid()

    def generate(self, seeds: Sequence[int], n_frames: int, device: torch.device) -> GeneratedBatch:
        if os.getpid() != self.parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().generate(seeds, n_frames, device)


def test_a_killed_worker_stops_the_solve_with_its_exit_code(start_method: str) -> None:
    blocks = [np.arange(lo, lo + 2) for lo in range(0, 8, 2)]
    with parallel.BlockSolver(KilledInWorkers(WavesConfig()), torch.device("cpu"), 2) as solver:
        with pytest.raises(parallel.WorkerFailed, match=r"generation worker process \(pid \d+\) exited with code -9"):
            list(solver.solve_streams([(blocks, 3)]))


class Sleeping(BoxWaves):
    def generate(self, seeds: Sequence[int], n_frames: int, device: torch.device) -> GeneratedBatch:
        time.sleep(600)
        raise AssertionError("unreachable")


_ORPHAN_SCRIPT = """
import numpy as np, torch
from data_gen import parallel
from test_generate_scaleout import Sleeping, WavesConfig
parallel.can_fork_workers = lambda device, threads: {fork}
solver = parallel.BlockSolver(Sleeping(WavesConfig()), torch.device("cpu"), 3)
solver.start()
print(*[worker.process.pid for worker in solver._pool], flush=True)
list(solver.solve_streams([([np.arange(i, i + 1) for i in range(6)], 2)]))
"""


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.subprocess
def test_workers_exit_when_their_parent_is_killed(start_method: str) -> None:
    """Each worker holds the only other end of its pipes (a forked one closes those of its siblings), so a parent
    killed by SIGKILL leaves no worker behind."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc to watch the workers")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])}
    parent = subprocess.Popen([sys.executable, "-c", _ORPHAN_SCRIPT.format(fork=start_method == "fork")],
                              stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        assert parent.stdout is not None
        pids = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(pids) == 2 and all(_running(pid) for pid in pids)
        time.sleep(0.5)  # the workers are inside the solve
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 30
    while any(_running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_running(pid) for pid in pids), "a worker outlived its parent"


def _blocks(n_traj: int, size: int) -> list[np.ndarray]:
    return [np.arange(lo, min(lo + size, n_traj)) for lo in range(0, n_traj, size)]


def test_blocks_stay_whole_unless_one_is_more_than_a_fair_share_and_go_out_longest_first() -> None:
    """Train: blocks of 4, 4, 2 trajectories x 5 frames; test: one block of 3 x 40 frames. Of the total 170, a fair
    share of 2 processes is 85: the test block (120) is cut in two parts (2 + 1 trajectories), which go out first;
    the train blocks stay whole and keep their order."""
    parts, order = plan_parts([(_blocks(10, 4), 5), (_blocks(3, 4), 40)], processes=2)
    assert [(p.stream, p.seeds) for p in parts] == [(0, [0, 1, 2, 3]), (0, [4, 5, 6, 7]), (0, [8, 9]),
                                                     (1, [0, 1]), (1, [2])]
    assert order == [3, 4, 0, 1, 2]
    parts, order = plan_parts([(_blocks(10, 4), 5), (_blocks(3, 4), 40)], processes=1)
    assert len(parts) == 4 and order == [3, 0, 1, 2]  # one process: nothing is cut


def test_two_workers_cutting_a_block_write_the_bytes_of_one(tmp_path: Path) -> None:
    """One block of train (7 trajectories) is more than half the work: cut in two, solved in two processes while
    the other splits go on, the files are those of one process."""
    one = generate_dataset(waves_pde(), "tiny", tmp_path / "one", batch_size=8, progress=False, workers=1)
    two = generate_dataset(waves_pde(), "tiny", tmp_path / "two", batch_size=8, progress=False, workers=2)
    assert_same_files(one, two)


# --- blow-ups -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("workers", [1, 2])
def test_divergence_names_split_trajectory_seed_and_time_and_keeps_written_blocks(tmp_path: Path,
                                                                                 workers: int) -> None:
    seed = int(trajectory_seeds(0, "train", 7, "waves")[5])
    pde = waves_pde(diverge_seeds=[seed])
    with pytest.raises(GenerationDiverged) as info:
        generate_dataset(pde, "tiny", tmp_path, batch_size=2, progress=False, workers=workers)
    message = str(info.value)
    assert isinstance(info.value, USER_ERRORS) and "\n" not in message
    for fragment in ("split 'train'", f"trajectory 5 (seed {seed})", "t = 0.75", "non-finite values in a",
                     "the 4 trajectories written before it are kept"):
        assert fragment in message, message
    partial = partial_path(tmp_path / "waves-tiny" / "train.h5")
    with h5py.File(partial, "r") as f:
        assert int(np.asarray(f.attrs["n_traj_complete"]).reshape(-1)[0]) == 4
        assert np.isfinite(f["a"][:4]).all() and list(f["seed"][:4]) == list(trajectory_seeds(0, "train", 4, "waves"))


def test_non_finite_output_stops_like_a_divergence_naming_the_frame(tmp_path: Path) -> None:
    seed = int(trajectory_seeds(0, "valid", 3, "waves")[1])
    with pytest.raises(GenerationDiverged) as info:
        generate_dataset(waves_pde(nan_seeds=[seed]), "tiny", tmp_path, batch_size=2, progress=False)
    message = str(info.value)
    for fragment in ("split 'valid'", f"trajectory 1 (seed {seed})", "stored frame 3 (t = 0.75 after frame 0)",
                     "non-finite values in field 'b'", "the 0 trajectories written before it are kept"):
        assert fragment in message, message
    assert (tmp_path / "waves-tiny" / "train.h5").exists()  # the finished split stays


def test_divergence_in_a_shard_names_the_split_index(tmp_path: Path) -> None:
    seed = int(trajectory_seeds(0, "train", 7, "waves")[6])
    with pytest.raises(GenerationDiverged, match=rf"trajectory 6 \(seed {seed}\)"):
        generate_dataset(waves_pde(diverge_seeds=[seed]), "tiny", tmp_path, progress=False, shard=2, n_shards=3)


# --- interruption -------------------------------------------------------------------------------------------------
# Long enough (a burn-in of 500 frame intervals, ~100 time units) that a block of 2 trajectories takes a noticeable
# time.
SLOW_KS = ["pde=ks", "preset=tiny", "pde.presets.tiny.solver.burn_in_frames=500", "batch_size=2", "device=cpu",
           "workers=1"]


def _complete(partial: Path) -> int:
    """`n_traj_complete` of a split file being written by another process (0 while unreadable)."""
    try:
        with h5py.File(partial, "r", locking=False) as f:
            return int(np.asarray(f.attrs["n_traj_complete"]).reshape(-1)[0])
    except (OSError, KeyError):
        return 0


@pytest.mark.slow
@pytest.mark.subprocess
def test_sigkilled_generation_resumes_to_the_same_file(tmp_path: Path) -> None:
    reference = generate(compose_config("generate", [*SLOW_KS, f"root={tmp_path / 'ref'}"]), progress=False)
    root = tmp_path / "data"
    proc = subprocess.Popen([str(BIN / "pdebench-generate"), *SLOW_KS, f"root={root}"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    partial = partial_path(root / "ks-tiny" / "train.h5")
    try:
        deadline = time.monotonic() + 300
        while _complete(partial) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    kept = _complete(partial)
    assert 2 <= kept < 8 and not (root / "ks-tiny" / "train.h5").exists(), kept
    generate(compose_config("generate", [*SLOW_KS, f"root={root}"]), progress=False)  # the same command again
    assert_same_files(reference, root / "ks-tiny")
    assert not partial.exists()


# --- launchers ----------------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.subprocess
def test_shards_run_as_submitit_jobs_and_merge_into_the_single_job(ks_tiny: Path, tmp_path: Path) -> None:
    common = ["pde=ks", "preset=tiny", "device=cpu", "workers=1", f"root={tmp_path / 'data'}"]
    run_cli("generate", "-m", *common, "batch_size=3", "shard=range(0,2)", "hydra/launcher=submitit_local",
            cwd=tmp_path)  # each job takes the shard count from the sweep
    assert len(list(tmp_path.glob("runs/multirun/*/.submitit/*"))) >= 2  # real submitit jobs ran the shards
    assert sorted(p.name for p in (tmp_path / "data" / "ks-tiny" / SHARDS_DIR).iterdir()) == ["0-of-2", "1-of-2"]
    generate(compose_config("generate", [*common, "batch_size=4", "merge=true"]), progress=False)
    assert_same_files(ks_tiny, tmp_path / "data" / "ks-tiny")


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_sweep_of_shards_that_is_not_0_to_n_minus_1_stops_every_job(tmp_path: Path) -> None:
    proc = run_cli("generate", "-m", "pde=ks", "preset=tiny", f"root={tmp_path / 'data'}", "shard=1,2",
                   cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert "error: shard=1,2 sweeps the shards [1, 2], but the shards of a dataset are 0 .. n - 1" in proc.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.slow
@pytest.mark.subprocess
def test_slurm_launcher_composes_for_generation(tmp_path: Path) -> None:
    """`--cfg hydra` shows the launcher a `-m ... hydra/launcher=slurm` sweep of shards would submit through."""
    proc = run_cli("generate", "pde=ks", "preset=paper", "n_shards=16", "shard=3", "hydra/launcher=slurm",
                   "hydra.launcher.partition=gpu", "--cfg", "hydra", cwd=tmp_path)
    out = proc.stdout
    assert "_target_: hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher" in out
    assert "partition: gpu" in out and "- shard=3" in out and "- n_shards=16" in out
    assert not (tmp_path / "data").exists()


# --- make datasets ------------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.subprocess
def test_make_datasets_generates_every_pde_config_by_default() -> None:
    if subprocess.run(["make", "--version"], capture_output=True).returncode != 0:
        pytest.skip("make is not installed")
    proc = subprocess.run(["make", "-n", "datasets", "PRESET=tiny", "DATA=somewhere"], cwd=REPO, capture_output=True,
                          text=True, check=True)
    names = sorted(p.stem for p in (REPO / "conf" / "pde").glob("*.yaml"))
    line = next(li for li in proc.stdout.splitlines() if "pdebench-generate" in li)
    assert f"for pde in {' '.join(names)};" in line and "preset=tiny root=somewhere" in line


def test_progress_bar_shows_trajectories_done_and_eta(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generate_dataset(waves_pde(), "tiny", tmp_path, batch_size=2, progress=True)
    err = capsys.readouterr().err
    # off a terminal: plain lines, no carriage returns, with the count, rate, elapsed time and ETA
    assert "\r" not in err and "waves-tiny: 12/12 traj (100%)" in err
    assert "traj/s" in err and "elapsed" in err and "eta" in err
    assert "train 7/7 valid 3/3 test 2/2" in err  # how far each split is
