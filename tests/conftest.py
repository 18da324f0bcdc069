"""Shared fixtures: Hydra composition of the real config tree, one tiny KS dataset and one trained FNO per session."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from compose import compose_config, share_compositions

from data_gen.generate import generate_dataset
from pdebench.cli.common import CONFIG_DIR


@pytest.fixture(scope="session", autouse=True)
def _fresh_compositions(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Each test run composes afresh, and its pytest-xdist workers share what they compose (the folder above a
    worker's own base folder is the run's). Mutation testing runs many test runs in one process, each with one
    function of the product changed: a composition kept from an earlier run would hide that change."""
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "compositions"
    folder.mkdir(exist_ok=True)
    share_compositions(folder)


@pytest.fixture(autouse=True)
def _tuned_settings_untouched() -> Iterator[None]:
    """No test writes into the config tree's `tuned/` folder, where tuning writes by default (tests name their own
    `recipe.tuned_dir`). A test that does fails, and the folder is put back as it was: later tests, and the later
    mutants of a mutation run (which share one copy of the tree), still read the tree as committed."""
    folder = Path(CONFIG_DIR) / "tuned"

    def files() -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in folder.glob("*") if p.is_file()}

    existed, before = folder.exists(), files()
    yield
    after = files()
    if after != before or folder.exists() != existed:
        if not existed:
            shutil.rmtree(folder)
        else:
            folder.mkdir(exist_ok=True)  # a test may have removed it whole
        for name in after.keys() - before.keys():
            (folder / name).unlink(missing_ok=True)
        for name, content in before.items():
            (folder / name).write_bytes(content)
        changed = sorted(name for name in after.keys() | before.keys() if after.get(name) != before.get(name))
        pytest.fail(f"the test wrote into {folder}: {', '.join(changed) or 'the folder'} (put back as committed)")


@pytest.fixture(scope="session")
def compose_cfg() -> Callable[..., dict[str, Any]]:
    return compose_config


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root holding `ks-tiny`, generated once per session exactly as `pdebench-generate` would."""
    root = tmp_path_factory.mktemp("data")
    cfg = compose_config("generate", ["pde=ks", "preset=tiny"])
    generate_dataset(cfg["pde"], "tiny", root, seed=cfg["seed"], batch_size=4, device="cpu", progress=False)
    return root


@pytest.fixture(scope="session")
def ks_tiny(data_root: Path) -> Path:
    return data_root / "ks-tiny"


# A small FNO trained long enough on ks-tiny to beat persistence one step ahead (difference target, as PDE-Refiner's
# MSE baseline); seed 1, so that identity tests can tell the checkpoint's seed from evaluate's default.
TRAINED_OVERRIDES = [
    "data=ks", "data.preset=tiny", "data.batch_size=8", "model=fno", "model.hidden_channels=16", "model.n_modes=[16]",
    "objective.target=difference", "objective.target_scale=0.3", "optim.lr=3e-3", "trainer.max_epochs=8",
    "trainer.enable_progress_bar=false", "validation.rollout_steps=4", "seed=1", "label=fno-tiny",
]


# Under pytest-xdist (`make test` and `make test-fast` run two workers on two cores) each worker keeps torch on one
# thread: two workers of two threads each on two cores make every op wait for a descheduled thread (docs/testing.md).
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def trained_checkpoint(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`best.ckpt` of the run `TRAINED_OVERRIDES` describes, trained through the library entry point.

    On one torch thread, whatever the module that first asks for it has set: the weights (and every number a test
    reads from them) would otherwise depend on test order and on the machine's core count, since one and two threads
    round differently; and two threads on two busy cores make each step about 50 times slower."""
    from pdebench.training.run import train

    run_dir = tmp_path_factory.mktemp("trained") / "run"
    cfg = compose_config("train", [*TRAINED_OVERRIDES, f"data.root={data_root}", f"run_dir={run_dir}"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train(cfg)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture()
def work(data_root: Path, tmp_path: Path) -> Path:
    """A working directory whose `data/ks-tiny` is a private copy of the session's tiny KS dataset (to damage)."""
    shutil.copytree(data_root / "ks-tiny", tmp_path / "data" / "ks-tiny")
    return tmp_path


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Torch on one thread for a whole test module (`pytestmark = pytest.mark.usefixtures("one_torch_thread")`): tiny
    nets are dominated by per-op overhead, and on a busy machine extra threads make every step many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
