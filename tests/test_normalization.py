"""`pdebench.data.normalization`: exact standardisation formulas and train-split statistics.

Every expected value is computed by hand (statistics are powers of two, so float32 arithmetic is exact and
the comparisons can be exact too): an inverted formula, swapped mean/std, a wrong broadcast axis or a
sample instead of a population std fails a test.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from pdebench.data import normalization
from pdebench.data.normalization import Normalizer, compute_train_statistics
from pdebench.data.reader import TrajectoryFile
from pdebench.data.schema import Coordinate, DatasetError, DatasetLayout, FieldSpec, ParameterSpec
from pdebench.data.writer import TrajectoryWriter

# Two channels and two parameters with different, non-identity statistics (exact in float32).
FIELD_MEAN, FIELD_STD = [1.0, -2.0], [2.0, 0.5]
PARAM_MEAN, PARAM_STD = [0.5, 10.0], [0.25, 4.0]
STAT_NAMES = ("field_mean", "field_std", "param_mean", "param_std")


@pytest.fixture()
def norm() -> Normalizer:
    """Built in each test (cheap): mutmut runs a mutant of `__init__` only with the tests that called it."""
    return Normalizer(FIELD_MEAN, FIELD_STD, PARAM_MEAN, PARAM_STD)


def t(values: object) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


# --- exact values -------------------------------------------------------------------------------------------
def test_normalize_fields_exact_values(norm: Normalizer) -> None:
    # x: [B=2, C=2, X=2]; channel 0 is (x - 1) / 2, channel 1 is (x + 2) / 0.5.
    x = t([[[3.0, 5.0], [-2.0, -1.0]], [[1.0, -3.0], [-2.5, 0.0]]])
    expected = t([[[1.0, 2.0], [0.0, 2.0]], [[0.0, -2.0], [-1.0, 4.0]]])
    assert torch.equal(norm.normalize_fields(x), expected)


def test_denormalize_fields_exact_values(norm: Normalizer) -> None:
    # channel 0 is z * 2 + 1, channel 1 is z * 0.5 - 2.
    z = t([[[1.0, -1.0], [2.0, 0.0]], [[0.5, 0.0], [-4.0, 6.0]]])
    expected = t([[[3.0, -1.0], [-1.0, -2.0]], [[2.0, 1.0], [-4.0, 1.0]]])
    assert torch.equal(norm.denormalize_fields(z), expected)


def test_normalize_params_exact_values(norm: Normalizer) -> None:
    # p: [B=3, P=2]; entry 0 is (p - 0.5) / 0.25, entry 1 is (p - 10) / 4.
    p = t([[1.0, 2.0], [0.0, 18.0], [0.5, 10.0]])
    expected = t([[2.0, -2.0], [-2.0, 2.0], [0.0, 0.0]])
    assert torch.equal(norm.normalize_params(p), expected)


@pytest.mark.parametrize("shape", [(2, 2), (3, 2, 5), (2, 2, 3, 4), (1, 2, 2, 3, 2)], ids=lambda s: f"{len(s)}d")
def test_fields_are_standardised_along_the_channel_axis(norm: Normalizer, shape: tuple[int, ...]) -> None:
    """Channel c is axis 1 whatever the number of spatial axes (0-D to 3-D fields); other axes broadcast."""
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    mean = t(FIELD_MEAN).view(1, 2, *([1] * (len(shape) - 2)))
    std = t(FIELD_STD).view(1, 2, *([1] * (len(shape) - 2)))
    out = norm.normalize_fields(x)
    assert out.shape == x.shape
    assert torch.equal(out, (x - mean) / std)
    assert torch.equal(norm.denormalize_fields(x), x * std + mean)


# --- round trips ---------------------------------------------------------------------------------------------
def test_field_round_trip_with_non_identity_statistics(norm: Normalizer) -> None:
    gen = torch.Generator().manual_seed(1)
    x = 3.0 * torch.randn(4, 2, 5, 6, generator=gen) + 7.0
    z = norm.normalize_fields(x)
    assert not torch.allclose(z, x)  # the statistics really act
    torch.testing.assert_close(norm.denormalize_fields(z), x, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(norm.normalize_fields(norm.denormalize_fields(z)), z, rtol=1e-6, atol=1e-5)


def test_param_round_trip_against_the_statistics(norm: Normalizer) -> None:
    p = torch.randn(6, 2, generator=torch.Generator().manual_seed(2)) * 5.0
    z = norm.normalize_params(p)
    torch.testing.assert_close(z * t(PARAM_STD) + t(PARAM_MEAN), p, rtol=1e-6, atol=1e-5)


def test_statistics_are_float32_whatever_they_are_given_as() -> None:
    """float64 statistics (numpy arrays or tensors) are stored as float32, so float32 data stays float32."""
    norm = Normalizer(
        np.array(FIELD_MEAN), torch.tensor(FIELD_STD, dtype=torch.float64), np.array(PARAM_MEAN), np.array(PARAM_STD)
    )
    assert {name: getattr(norm, name).dtype for name in STAT_NAMES} == dict.fromkeys(STAT_NAMES, torch.float32)
    x = t([[[3.0], [-1.0]]])
    assert norm.normalize_fields(x).dtype == torch.float32 and norm.denormalize_fields(x).dtype == torch.float32
    assert norm.normalize_params(t([[1.0, 2.0]])).dtype == torch.float32
    assert torch.equal(norm.normalize_fields(x), t([[[1.0], [2.0]]]))


def test_identity_is_a_no_op() -> None:
    ident = Normalizer.identity(n_fields=2, n_params=3)
    assert ident.stats() == {
        "field_mean": [0.0, 0.0],
        "field_std": [1.0, 1.0],
        "param_mean": [0.0, 0.0, 0.0],
        "param_std": [1.0, 1.0, 1.0],
    }
    x = torch.randn(2, 2, 7, generator=torch.Generator().manual_seed(3))
    p = torch.randn(2, 3, generator=torch.Generator().manual_seed(4))
    assert torch.equal(ident.normalize_fields(x), x) and torch.equal(ident.denormalize_fields(x), x)
    assert torch.equal(ident.normalize_params(p), p)


def test_stats_round_trip_and_checkpoint_buffers(norm: Normalizer) -> None:
    stats = norm.stats()
    assert list(stats) == list(STAT_NAMES)
    assert stats == {"field_mean": FIELD_MEAN, "field_std": FIELD_STD, "param_mean": PARAM_MEAN, "param_std": PARAM_STD}
    assert json.loads(json.dumps(stats)) == stats  # plain lists of floats
    assert Normalizer.from_stats(stats).stats() == stats
    state = norm.state_dict()
    assert set(state) == set(STAT_NAMES) and all(v.dtype == torch.float32 for v in state.values())
    restored = Normalizer.identity(2, 2)
    restored.load_state_dict(state)
    assert restored.stats() == stats


# --- statistics of the train split -------------------------------------------------------------------------
N_TRAJ, N_FRAMES, NX = 3, 4, 5
CONSTANT_C = 2.5


@pytest.fixture(scope="module")
def train_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A train split written by `TrajectoryWriter` (two blocks) and the float32 / float64 values it holds."""
    rng = np.random.default_rng(11)
    fields = {
        "u": (4.0 + 3.0 * rng.standard_normal((N_TRAJ, N_FRAMES, NX))).astype(np.float32),
        "v": rng.uniform(-0.1, 0.3, size=(N_TRAJ, N_FRAMES, NX)).astype(np.float32),  # std well below 1
        "w": np.full((N_TRAJ, N_FRAMES, NX), -1.5, dtype=np.float32),  # constant field
    }
    params = {"nu": np.array([0.01, 0.02, 0.04]), "c": np.full(N_TRAJ, CONSTANT_C), "dt": np.array([1.0, 3.0, 8.0])}
    layout = DatasetLayout(
        pde="ks",
        preset="tiny",
        split="train",
        n_traj=N_TRAJ,
        n_frames=N_FRAMES,
        frame_interval=0.5,
        grid="periodic",
        coordinates=(Coordinate("x", np.arange(NX, dtype=np.float64), "m"),),
        fields=tuple(FieldSpec(name, "1", "periodic") for name in fields),
        parameters=tuple(ParameterSpec(name, "1") for name in params),
    )
    path = tmp_path_factory.mktemp("norm") / "train.h5"
    with TrajectoryWriter(path, layout) as writer:
        for lo, hi in ((0, 1), (1, N_TRAJ)):
            writer.append(
                {k: v[lo:hi] for k, v in fields.items()},
                {k: v[lo:hi] for k, v in params.items()},
                np.arange(lo, hi),
            )
        writer.finalize()
    return path, fields, params


def test_train_statistics_match_numpy(train_file: tuple[Path, dict, dict]) -> None:
    path, fields, params = train_file
    with TrajectoryFile(path) as tf:
        stats = compute_train_statistics(tf)
    assert list(stats) == list(STAT_NAMES)
    assert json.loads(json.dumps(stats)) == stats  # plain lists of floats (stored in checkpoints and results)

    # Independently: numpy over (traj, time, space) of the stored float32 values, population std (ddof=0).
    u, v = fields["u"].astype(np.float64), fields["v"].astype(np.float64)
    np.testing.assert_allclose(stats["field_mean"], [u.mean(), v.mean(), -1.5], rtol=1e-12)
    np.testing.assert_allclose(stats["field_std"][:2], [u.std(ddof=0), v.std(ddof=0)], rtol=1e-9)
    assert stats["field_std"][2] == 1.0  # a constant field gets std 1, not 0
    assert stats["field_std"][1] < 0.2  # (a std clamped to >= 1 would fail here)

    nu = params["nu"]
    np.testing.assert_allclose(stats["param_mean"], [nu.mean(), CONSTANT_C, 4.0], rtol=1e-12)
    np.testing.assert_allclose(stats["param_std"][0], nu.std(ddof=0), rtol=1e-12)
    np.testing.assert_allclose(stats["param_std"][2], np.sqrt(26.0 / 3.0), rtol=1e-12)  # dt = 1, 3, 8 by hand
    assert stats["param_std"][1] == 1.0  # a constant parameter gets std 1, so it standardises to 0


def test_train_statistics_standardise_the_train_split(train_file: tuple[Path, dict, dict]) -> None:
    """The statistics turn the train split into zero-mean, unit-std data (constant entries into 0)."""
    path, fields, params = train_file
    with TrajectoryFile(path) as tf:
        norm = Normalizer.from_stats(compute_train_statistics(tf))
    x = torch.from_numpy(np.stack([fields[n] for n in ("u", "v", "w")], axis=1))  # [B, C, T, X]
    z = norm.normalize_fields(x).double()
    torch.testing.assert_close(z.mean(dim=(0, 2, 3)), torch.zeros(3, dtype=torch.float64), rtol=0, atol=1e-5)
    torch.testing.assert_close(z[:, :2].std(dim=(0, 2, 3), correction=0), torch.ones(2, dtype=torch.float64))
    assert torch.equal(z[:, 2], torch.zeros_like(z[:, 2]))
    p = torch.from_numpy(np.stack([params[n] for n in ("nu", "c", "dt")], axis=1)).float()
    zp = norm.normalize_params(p).double()
    torch.testing.assert_close(zp.mean(dim=0), torch.zeros(3, dtype=torch.float64), rtol=0, atol=1e-5)
    assert torch.equal(zp[:, 1], torch.zeros(N_TRAJ, dtype=torch.float64))


def write_train(path: Path, u: np.ndarray, params: dict[str, np.ndarray] | None = None) -> Path:
    """A train split of one field `u` `[traj, time, x]` on a 1-D periodic grid and these per-trajectory parameters."""
    params = params or {}
    n_traj, n_frames, nx = u.shape
    layout = DatasetLayout(
        pde="ks",
        preset="tiny",
        split="train",
        n_traj=n_traj,
        n_frames=n_frames,
        frame_interval=0.5,
        grid="periodic",
        coordinates=(Coordinate("x", np.arange(float(nx)), "m"),),
        fields=(FieldSpec("u", "1", "periodic"),),
        parameters=tuple(ParameterSpec(name, "1") for name in params),
    )
    with TrajectoryWriter(path, layout) as writer:
        writer.append({"u": u}, params, np.arange(n_traj))
        return writer.finalize()


def test_train_statistics_without_parameters(tmp_path: Path) -> None:
    """The format allows a split without per-trajectory parameters; its statistics have empty param lists."""
    path = write_train(tmp_path / "train.h5", np.arange(12.0).reshape(2, 2, 3))
    with TrajectoryFile(path) as tf:
        stats = compute_train_statistics(tf)
    assert stats["param_mean"] == [] and stats["param_std"] == []
    np.testing.assert_allclose(stats["field_mean"], [5.5], rtol=1e-12)  # 0..11
    np.testing.assert_allclose(stats["field_std"], [np.arange(12.0).std()], rtol=1e-12)
    assert Normalizer.from_stats(stats).normalize_params(torch.zeros(2, 0)).shape == (2, 0)


@pytest.mark.parametrize(
    ("values", "statistic"),
    [([1e308, 1e308], "param_mean"),  # the sum overflows
     ([1e200, -1e200], "param_std"),  # the mean is 0, the squares overflow
     # numpy sums 16 values in 8 running sums: one reaches +inf, the next -inf, and their sum is NaN ("invalid")
     ([1e308, -1e308, 0, 0, 0, 0, 0, 0] * 2, "param_mean")],
)
def test_a_non_finite_statistic_is_refused_by_name_without_a_numpy_warning(
    tmp_path: Path, values: list[float], statistic: str
) -> None:
    """Statistics that overflow float64 stop with a DatasetError naming the file and the statistic, before the std
    floor could turn them into 1; numpy's own overflow warning is silenced, as the error reports it."""
    path = write_train(tmp_path / "train.h5", np.zeros((len(values), 2, 3)), {"k": np.array(values, dtype=float)})
    with TrajectoryFile(path) as tf, warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning would be raised instead of the DatasetError
        with pytest.raises(DatasetError) as caught:
            compute_train_statistics(tf)
    message = str(caught.value)
    assert message.startswith(f"{path}: the train statistic {statistic} is not finite (")
    assert message.endswith("expected finite field and parameter values of moderate size")


def test_a_std_at_the_floor_counts_as_constant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A std equal to the floor is replaced by 1 (the floor itself is excluded), one just above it is kept."""
    # u in {0, 4} and k in {0, 4}: mean 2, std 2 exactly
    path = write_train(tmp_path / "train.h5", np.array([0.0, 4.0]).reshape(2, 1, 1) * np.ones((2, 2, 3)),
                       {"k": np.array([0.0, 4.0])})
    with TrajectoryFile(path) as tf:
        monkeypatch.setattr(normalization, "_MIN_STD", 2.0)
        at_floor = compute_train_statistics(tf)
        monkeypatch.setattr(normalization, "_MIN_STD", 1.999)
        above = compute_train_statistics(tf)
    assert (at_floor["field_std"], at_floor["param_std"]) == ([1.0], [1.0])
    assert (above["field_std"], above["param_std"]) == ([2.0], [2.0])
