"""The solver row's own pieces (`baselines.solver`): its settings and their refusals, the rows they make, their
labels, and the stepper that steps an attached solver; test_solver_settings.py checks the rows on the KS solver."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
import torch
from torch import Tensor

from baselines import NetSpec
from baselines.solver import SolverConfig, SolverStepper, setting_label
from pdebench.config.checks import SettingError
from pdebench.data.grid import Grid


@pytest.mark.parametrize(
    ("settings", "key", "message"),
    [({"resolutions": [64, 1]}, "resolutions",
      "resolutions=[64,1] is not valid: expected grid point counts, each a whole number >= 2"),
     ({"resolutions": [2.5]}, "resolutions",
      "resolutions=[2.5] is not valid: expected grid point counts, each a whole number >= 2"),
     ({"time_step_factors": []}, "time_step_factors",
      "time_step_factors=[] is not valid: expected a non-empty list of finite numbers > 0"),
     ({"time_step_factors": [1.0, 0.0]}, "time_step_factors",
      "time_step_factors=[1.0,0.0] is not valid: expected a non-empty list of finite numbers > 0"),
     ({"time_step_factors": [float("inf")]}, "time_step_factors",
      "time_step_factors=[inf] is not valid: expected a non-empty list of finite numbers > 0")],
)
def test_bad_settings_are_refused_in_one_sentence(settings: dict, key: str, message: str) -> None:
    with pytest.raises(SettingError) as caught:
        SolverConfig(**settings)
    assert (caught.value.key, str(caught.value)) == (key, message)
    assert caught.value.value == next(iter(settings.values()))


def test_the_smallest_settings_are_accepted() -> None:
    """A 2-point grid and any positive finite factor are rows (the bounds are inclusive and exclusive as said)."""
    config = SolverConfig(resolutions=[2], time_step_factors=[1e-3])
    assert config.settings((8,)) == [(None, 1e-3), ((2,), 1e-3)]


def test_rows_are_the_stored_grid_then_each_coarser_grid_once_at_every_time_step() -> None:
    """Counts at or above the stored 64 make no row (and do not end the list); a 3-point axis scaled to 16/64 keeps
    at least one point; the second axis keeps the stored aspect ratio, rounded."""
    config = SolverConfig(resolutions=[128, 64, 32, 16, 32], time_step_factors=[1.0, 4])
    assert config.settings((64, 3)) == [
        (None, 1.0), (None, 4.0), ((32, 2), 1.0), ((32, 2), 4.0), ((16, 1), 1.0), ((16, 1), 4.0)]


@pytest.mark.parametrize(
    ("resolution", "factor", "label"),
    [(None, 1.0, "solver"), ((64,), 1.0, "solver-n64"), (None, 0.5, "solver-dt0.5x"),
     ((32, 16), 4.0, "solver-n32x16-dt4x")],
)
def test_labels_name_the_grid_and_the_time_step_factor(resolution, factor: float, label: str) -> None:
    assert setting_label(resolution, factor) == label


class Shift:
    """A stand-in solver: each stored frame adds the parameter `a` to the state; it records its calls."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def advance(self, fields: Tensor, params: Mapping[str, Tensor], n_frames: int) -> Tensor:
        self.calls.append(n_frames)
        return fields + n_frames * params["a"][:, None, None]


def stepper(history: int = 2, bundle: int = 3) -> SolverStepper:
    return SolverStepper(NetSpec(("u", "v"), history, bundle, ("b", "a"), Grid.uniform("periodic", (5,))))


def test_an_unattached_solver_row_refuses_to_run() -> None:
    row = stepper()
    assert row.extra_repr() == "history=2, bundle=3, frames_per_step=1"
    with pytest.raises(RuntimeError) as caught:
        row(torch.zeros(1, 2, 2, 5), torch.zeros(1, 2))
    assert str(caught.value) == ("the solver row has no solver attached: it steps the dataset's own solver, which "
                                 "pdebench-evaluate model=solver builds from the split file")


def test_each_output_frame_is_one_more_model_step_from_the_last_input_frame() -> None:
    """`[B=4, C=2, history=2, X=5]` -> `[4, 2, bundle=3, 5]`: frame k is the last input frame advanced (k + 1) times
    by `frames_per_step` stored frames, with the parameters read by name from `cond`."""
    reference = Shift()
    row = stepper().attach(reference, 2)
    frames = torch.randint(-9, 9, (4, 2, 2, 5)).double()  # whole numbers: the sums below are exact
    a = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    cond = torch.stack([torch.full((4,), 100.0, dtype=torch.float64), a], dim=1)  # ("b", "a")
    out = row(frames, cond)
    assert out.shape == (4, 2, 3, 5) and reference.calls == [2, 2, 2]
    for k in range(3):
        torch.testing.assert_close(out[:, :, k], frames[:, :, -1] + 2 * (k + 1) * a[:, None, None], rtol=0, atol=0)
    assert row.extra_repr() == "history=2, bundle=3, frames_per_step=2"
