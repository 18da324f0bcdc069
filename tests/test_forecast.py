"""The forecast layer: a Forecaster is a Stepper in physical units, targets encode and decode, rollouts chain, and
what a rollout carries between model steps (ab2's last rate) is each trajectory's own and each rollout's own."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from baselines import build_model
from pdebench.config import ObjectiveConfig
from pdebench.data.batch import WindowBatch
from pdebench.data.grid import Grid
from pdebench.data.netspec import NetSpec
from pdebench.data.normalization import Normalizer
from pdebench.forecast import DifferenceTarget, Forecaster, StateTarget, Stepper, make_target, rollout
from pdebench.forecast.checkpoint import CheckpointError, load_checkpoint_weights_only, load_forecaster
from pdebench.forecast.rollout_state import current_rollout, rollout_scope
from pdebench.training.objectives import OneStep

FIELD_MEAN, FIELD_STD = [1.0, -2.0], [2.0, 0.5]
PARAM_MEAN, PARAM_STD = [3.0], [4.0]


class Affine(nn.Module):
    """net(x, c) = 2 x + c, broadcast over channels and space: simple enough to predict by hand."""

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        return 2 * x + cond.view(-1, 1, *([1] * (x.dim() - 2)))


def forecaster(target_name: str = "state", scale: float = 1.0) -> Forecaster:
    spec = NetSpec(("u", "v"), 1, 1, ("nu",), Grid.uniform("periodic", (3,)))
    norm = Normalizer(FIELD_MEAN, FIELD_STD, PARAM_MEAN, PARAM_STD)
    return Forecaster(Affine(), norm, make_target(target_name, scale), spec)


FRAMES = torch.tensor([[[[3.0, 1.0, 5.0]], [[-2.5, -1.0, -2.0]]]])  # [B=1, C=2, history=1, X=3], physical
COND = torch.tensor([[7.0]])  # physical nu = 7 -> standardised (7 - 3) / 4 = 1


def test_state_forecast_is_in_physical_units() -> None:
    # u: x_n = (u - 1) / 2 = [1, 0, 2]; out_n = 2 x_n + 1 = [3, 1, 5]; u' = 2 out_n + 1 = [7, 3, 11]
    # v: x_n = (v + 2) / 0.5 = [-1, 2, 0]; out_n = [-1, 5, 1]; v' = 0.5 out_n - 2 = [-2.5, 0.5, -1.5]
    out = forecaster()(FRAMES, COND)
    expected = torch.tensor([[[[7.0, 3.0, 11.0]], [[-2.5, 0.5, -1.5]]]])
    torch.testing.assert_close(out, expected)
    assert isinstance(forecaster(), Stepper)


def test_difference_forecast_adds_the_scaled_output_to_the_last_state() -> None:
    # u: x_n + 0.5 (2 x_n + 1) = [2.5, 0.5, 4.5] -> u' = [6, 2, 10]; v: [-1.5, 4.5, 0.5] -> v' = [-2.75, 0.25, -1.75]
    out = forecaster("difference", 0.5)(FRAMES, COND)
    expected = torch.tensor([[[[6.0, 2.0, 10.0]], [[-2.75, 0.25, -1.75]]]])
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("target", [StateTarget(), DifferenceTarget(0.3)])
def test_targets_decode_what_they_encode(target) -> None:
    torch.manual_seed(0)
    inputs, targets = torch.randn(2, 3, 2, 8), torch.randn(2, 3, 4, 8)
    torch.testing.assert_close(target.decode(inputs, target.encode(inputs, targets)), targets)


def test_difference_label_is_the_scaled_change_from_the_last_input() -> None:
    inputs = torch.tensor([[[[0.0], [1.0]]]])  # last input frame = 1
    targets = torch.tensor([[[[1.6], [0.4]]]])
    label = DifferenceTarget(0.3).encode(inputs, targets)
    torch.testing.assert_close(label, torch.tensor([[[[2.0], [-2.0]]]]))


def test_unknown_target_and_bad_scale_are_named() -> None:
    with pytest.raises(ValueError, match="objective.target='derivate'.*state, difference"):
        make_target("derivate")
    with pytest.raises(ValueError, match="objective.target_scale must be positive"):
        make_target("difference", 0.0)


@pytest.mark.parametrize("target_name", ["state", "difference"])
def test_one_step_loss_is_zero_for_the_exact_next_state(target_name: str) -> None:
    """The objective standardises the batch and compares the net output with the target's label."""
    fc = forecaster(target_name, 0.5)
    truth = fc(FRAMES, COND).detach()  # what the net's output decodes to is the label's frames
    batch = WindowBatch(FRAMES, truth, COND, torch.ones(1), torch.zeros(1, dtype=torch.long))
    assert OneStep(ObjectiveConfig()).loss(fc, batch).item() == pytest.approx(0.0, abs=1e-12)
    wrong = WindowBatch(FRAMES, truth + 1.0, COND, torch.ones(1), torch.zeros(1, dtype=torch.long))
    assert OneStep(ObjectiveConfig()).loss(fc, wrong).item() > 0.1


def test_rollout_feeds_predictions_back_and_cuts_the_last_bundle() -> None:
    calls = []

    def add_one(frames: Tensor, cond: Tensor) -> Tensor:
        calls.append(frames.clone())
        return frames[:, :, -1:].repeat(1, 1, 3, 1) + torch.arange(1, 4).view(1, 1, 3, 1)

    start = torch.zeros(2, 1, 2, 4)
    start[:, :, 1] = 10.0
    frames = list(rollout(add_one, start, torch.zeros(2, 0), n_steps=5))
    assert [f[0, 0, 0].item() for f in frames] == [11, 12, 13, 14, 15]
    assert len(calls) == 2 and calls[1][0, 0, :, 0].tolist() == [12, 13]  # window = last `history` predictions


def test_persistence_is_a_stepper_that_needs_no_normaliser() -> None:
    spec = NetSpec(("u",), 2, 3, (), Grid.uniform("periodic", (4,)))
    stepper = build_model({"name": "persistence"}, spec)
    assert isinstance(stepper, Stepper) and (stepper.history, stepper.bundle) == (2, 3)
    frames = torch.arange(8.0).view(1, 1, 2, 4)
    assert torch.equal(stepper(frames, torch.zeros(1, 0)), frames[:, :, 1:].expand(1, 1, 3, 4))


class LastPlusStep(nn.Module):
    """Reads the documented field-major folding (channel `c * history + t`) and predicts, for each field, its last
    input frame plus k for the k-th bundled frame (k = 1..bundle), written back field-major."""

    def __init__(self, n_fields: int, history: int, bundle: int) -> None:
        super().__init__()
        self.n_fields, self.history, self.bundle = n_fields, history, bundle

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        batch, space = x.shape[0], x.shape[2:]
        last = x.reshape(batch, self.n_fields, self.history, *space)[:, :, -1:]
        steps = torch.arange(1.0, self.bundle + 1).view(1, 1, self.bundle, *([1] * len(space)))
        return (last + steps).reshape(batch, self.n_fields * self.bundle, *space)


def test_history_and_bundle_are_folded_field_major() -> None:
    """Two fields, history 2, bundle 3: each field's own last frame comes back, shifted by 1, 2, 3."""
    spec = NetSpec(("u", "v"), 2, 3, (), Grid.uniform("periodic", (2,)))
    fc = Forecaster(LastPlusStep(2, 2, 3), Normalizer.identity(2, 0), StateTarget(), spec)
    frames = torch.tensor([[[[0.0, 1.0], [10.0, 11.0]], [[20.0, 21.0], [30.0, 31.0]]]])  # [1, C=2, history=2, X=2]
    out = fc(frames, torch.zeros(1, 0))
    expected = torch.tensor([[[[11.0, 12.0], [12.0, 13.0], [13.0, 14.0]], [[31.0, 32.0], [32.0, 33.0], [33.0, 34.0]]]])
    torch.testing.assert_close(out, expected)


# ---------------------------------------------------------------- checkpoints (the layout pdebench-train writes)

TOY_GRID = Grid.uniform("periodic", (32,))
TOY_STATS = {"field_mean": FIELD_MEAN, "field_std": FIELD_STD, "param_mean": PARAM_MEAN, "param_std": PARAM_STD}
TOY_MODEL = {"name": "fno", "n_modes": [8], "hidden_channels": 8, "n_layers": 1, "factorization": None, "rank": 1.0}
TOY_OBJECTIVE = {"name": "onestep", "history": 2, "bundle": 3, "loss": "mse", "target": "difference",
                 "target_scale": 0.5}
TOY_DATA = {"dataset": "toy-tiny", "pde": "toy", "preset": "tiny", "frame_stride": 2, "manifest_sha256": "ab" * 32,
            "fields": ["u", "v"], "parameters": ["nu"], "grid": TOY_GRID.to_record(), "stats": TOY_STATS}
TOY_RUN = {"label": "toy-fno", "seed": 3, "git_commit": "c0ffee"}


def toy_forecaster() -> Forecaster:
    """Built by hand (not by `build_forecaster`), so that a checkpoint round trip checks the loader against it."""
    spec = NetSpec(("u", "v"), 2, 3, ("nu",), TOY_GRID)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return Forecaster(build_model(TOY_MODEL, spec), Normalizer.from_stats(TOY_STATS), DifferenceTarget(0.5), spec)


def save_checkpoint(path: Path, forecaster: nn.Module, objective: dict | None = None, **replace) -> Path:
    """A checkpoint as `pdebench-train` writes it (see `pdebench.forecast.checkpoint`), entries replaced as asked."""
    hparams = {"model": TOY_MODEL, "objective": objective or TOY_OBJECTIVE, "optim": {"lr": 1e-3},
               "validation": {"rollout_steps": 2}, "data_info": TOY_DATA, "run": TOY_RUN}
    state = {f"forecaster.{key}": value for key, value in forecaster.state_dict().items()}
    state["ema.weight"] = torch.ones(3)  # another part of the Lightning module, not the forecaster's
    n_parameters = sum(p.numel() for p in forecaster.parameters())
    checkpoint = {"epoch": 3, "hyper_parameters": hparams, "state_dict": state,
                  "pdebench": {"train_time_s": 12.5, "n_parameters": n_parameters}}
    torch.save({**checkpoint, **replace}, path)
    return path


def test_a_checkpoint_rebuilds_its_forecaster_and_run_record(tmp_path: Path) -> None:
    original = toy_forecaster().eval()
    path = save_checkpoint(tmp_path / "best.ckpt", original)
    trained = load_forecaster(str(path))
    fc = trained.forecaster
    assert isinstance(fc, Forecaster) and not fc.training
    assert fc.spec == original.spec and (fc.history, fc.bundle) == (2, 3)
    assert isinstance(fc.target, DifferenceTarget) and fc.target.scale == 0.5
    frames, cond = torch.randn(4, 2, 2, 32), torch.randn(4, 1)
    with torch.no_grad():
        assert torch.equal(fc(frames, cond), original(frames, cond))
    data = {key: value for key, value in TOY_DATA.items() if key not in ("stats", "grid")}
    assert trained.record == {**TOY_RUN, "data": data, "model": TOY_MODEL, "objective": TOY_OBJECTIVE}
    assert trained.n_parameters == sum(p.numel() for p in original.parameters()) > 0
    assert trained.train_time_s == 12.5 and trained.path == path


def test_checkpoint_objective_defaults_to_a_state_target_of_scale_one(tmp_path: Path) -> None:
    """A run record without `target` (or `target_scale`) stands for the plain next-state target of scale 1."""
    objective = {key: value for key, value in TOY_OBJECTIVE.items() if key not in ("target", "target_scale")}
    net = toy_forecaster().eval()
    fc = load_forecaster(save_checkpoint(tmp_path / "state.ckpt", net, objective)).forecaster
    assert isinstance(fc.target, StateTarget)
    fc = load_forecaster(save_checkpoint(tmp_path / "diff.ckpt", net, {**objective, "target": "difference"})).forecaster
    assert isinstance(fc.target, DifferenceTarget) and fc.target.scale == 1.0
    trained = load_forecaster(save_checkpoint(tmp_path / "untimed.ckpt", net, pdebench={"n_parameters": 7}))
    assert trained.train_time_s is None and trained.n_parameters == 7


def test_a_checkpoint_that_is_not_ours_or_does_not_fit_is_refused_by_name(tmp_path: Path) -> None:
    net = toy_forecaster()
    hparams = {"model": TOY_MODEL, "objective": TOY_OBJECTIVE, "data_info": TOY_DATA}
    cases = {
        "list.ckpt": ([1, 2], "not written by pdebench-train"),
        "no_meta.ckpt": ({"hyper_parameters": {**hparams, "run": TOY_RUN}}, "not written by pdebench-train"),
        "no_hparams.ckpt": ({"pdebench": {"n_parameters": 1}}, "not written by pdebench-train"),
        "no_run.ckpt": ({"hyper_parameters": hparams, "pdebench": {"n_parameters": 1}}, "no run record"),
    }
    for name, (content, message) in cases.items():
        torch.save(content, tmp_path / name)
        with pytest.raises(CheckpointError, match=message):
            load_forecaster(tmp_path / name)
    wider_model = {**TOY_MODEL, "hidden_channels": 16}
    wider = save_checkpoint(tmp_path / "wider.ckpt", net, hyper_parameters={
        "model": wider_model, "objective": TOY_OBJECTIVE, "data_info": TOY_DATA, "run": TOY_RUN})
    partial = save_checkpoint(tmp_path / "partial.ckpt", net, state_dict={"forecaster.net.x": torch.ones(1)})
    for path in (wider, partial):
        with pytest.raises(CheckpointError, match="does not match this version of its model"):
            load_forecaster(path)
    (tmp_path / "garbage.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.ckpt is not a readable PyTorch checkpoint"):
        load_forecaster(tmp_path / "garbage.ckpt")
    with pytest.raises(CheckpointError, match="is a directory, not a file"):
        load_forecaster(tmp_path)  # a directory is not a checkpoint file
    with pytest.raises(CheckpointError, match="none.ckpt does not exist"):
        load_forecaster(tmp_path / "none.ckpt")


class Payload:
    """An arbitrary picklable object: a checkpoint holding one must never be unpickled by the loader."""


def test_a_checkpoint_with_arbitrary_pickled_objects_is_refused(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "pickled.ckpt", toy_forecaster(), callbacks=Payload())
    with pytest.raises(CheckpointError, match=r"pickled.ckpt holds a Python object \(test_forecast.Payload\).*could "
                                              "run arbitrary code"):
        load_forecaster(path)


def test_rollout_hands_the_conditioning_to_every_step() -> None:
    """Affine standardised: cond 7 -> 1, so each step maps x_n to 2 x_n + 1; three steps from u = 3 (x_n = 1)."""
    frames = list(rollout(forecaster(), FRAMES, COND, n_steps=3))
    # x_n: 1 -> 3 -> 7 -> 15, u = 2 x_n + 1: 7, 15, 31
    assert [f[0, 0, 0].item() for f in frames] == [7.0, 15.0, 31.0]


def test_a_difference_target_made_without_a_scale_adds_the_raw_output() -> None:
    inputs, output = torch.tensor([[[[1.0], [2.0]]]]), torch.tensor([[[[0.5]]]])
    torch.testing.assert_close(make_target("difference").decode(inputs, output), torch.tensor([[[[2.5]]]]))


def test_an_unreadable_checkpoint_is_refused_in_one_sentence_naming_the_damage(tmp_path: Path) -> None:
    good = save_checkpoint(tmp_path / "good.ckpt", toy_forecaster())
    damaged = {"empty.ckpt": b"", "noise.ckpt": bytes(range(256)) * 16, "half.ckpt": good.read_bytes()[:2000]}
    reasons = {"empty.ckpt": "(the file is empty or ends early)",
               "noise.ckpt": "(its bytes are not a PyTorch checkpoint)",
               "half.ckpt": "(the file is damaged or truncated: PytorchStreamReader failed reading zip archive"}
    for name, content in damaged.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError) as info:
            load_forecaster(tmp_path / name)
        message = str(info.value)
        assert message.startswith(f"checkpoint {tmp_path / name} is not a readable PyTorch checkpoint {reasons[name]}")
        assert message.endswith(")") and "\n" not in message and "internal miniz error" not in message  # 1 sentence
    with pytest.raises(CheckpointError, match=r"holds a Python object .* could run arbitrary code$"):
        load_forecaster(save_checkpoint(tmp_path / "pickled.ckpt", toy_forecaster(), callbacks=Payload()))


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (PermissionError(13, "Permission denied"), "permission denied"),  # what root cannot be shown by chmod
        (EOFError("Ran out of input"), "the file is empty or ends early"),
        (ValueError("unexpected end of data."), "unexpected end of data"),
        (ValueError("bad magic number. The file was written by another program.\nDetails follow."), "bad magic number"),
    ],
)
def test_other_read_errors_are_named_by_their_first_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception, reason: str
) -> None:
    path = save_checkpoint(tmp_path / "best.ckpt", toy_forecaster())

    def failing_load(*args, **kwargs):
        raise error

    monkeypatch.setattr(torch, "load", failing_load)
    with pytest.raises(CheckpointError) as info:
        load_forecaster(path)
    assert str(info.value) == f"checkpoint {path} is not a readable PyTorch checkpoint ({reason})"


def test_weights_only_loading_holds_even_when_the_environment_turns_it_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # makes torch.load unsafe wherever it is left unset
    path = save_checkpoint(tmp_path / "pickled.ckpt", toy_forecaster(), callbacks=Payload())
    with pytest.raises(CheckpointError, match="could run arbitrary code"):
        load_checkpoint_weights_only(path)
    with pytest.raises(CheckpointError, match=r"checkpoint .*missing\.ckpt does not exist"):
        load_checkpoint_weights_only(tmp_path / "missing.ckpt")



class PolynomialRate(nn.Module):
    """A pointwise 'rate' net, (0.2 + 0.1 c) x (1 - x / 4), counting its calls: each row's output depends on that
    row alone, through products and sums that round the same whatever the batch around it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        self.calls += 1
        return (0.2 + 0.1 * cond.view(-1, 1, *([1] * (x.dim() - 2)))) * x * (1.0 - 0.25 * x)


def ab2_forecaster(substeps: int = 2) -> Forecaster:
    spec = NetSpec(("u", "v"), 1, 1, ("nu",), Grid.uniform("periodic", (3,)))
    norm = Normalizer(FIELD_MEAN, FIELD_STD, PARAM_MEAN, PARAM_STD)
    return Forecaster(PolynomialRate(), norm, make_target("derivative", 1.0, 1, "ab2", substeps), spec).double()


def trajectories(seed: int, batch: int = 4) -> tuple[Tensor, Tensor]:
    """Random initial windows `[batch, 2, 1, 3]` and conditioning `[batch, 1]`, physical units, float64."""
    generator = torch.Generator().manual_seed(seed)
    frames = torch.randn(batch, 2, 1, 3, generator=generator, dtype=torch.float64) * 2.0
    return frames, torch.rand(batch, 1, generator=generator, dtype=torch.float64) * 8.0


def rolled_out(stepper: Stepper, frames: Tensor, cond: Tensor, n_steps: int) -> Tensor:
    return torch.stack(list(rollout(stepper, frames, cond, n_steps)), dim=2)


def test_ab2_rollouts_are_batch_invariant() -> None:
    """Each trajectory carries its own last rate: rolled out alone, or in a batch with others in any order, it
    gives bitwise the same frames."""
    frames, cond = trajectories(0)
    batch = rolled_out(ab2_forecaster(), frames, cond, 6)
    order = torch.tensor([3, 0, 2, 1])
    shuffled = rolled_out(ab2_forecaster(), frames[order], cond[order], 6)
    for row in range(4):
        alone = rolled_out(ab2_forecaster(), frames[row:row + 1], cond[row:row + 1], 6)
        assert torch.equal(alone[0], batch[row])
        assert torch.equal(alone[0], shuffled[int((order == row).nonzero())])


def test_a_rollout_starts_fresh_after_another() -> None:
    """A second rollout of the same forecaster, here from the middle of the first one's trajectory, starts with a
    self-started step (what a bare call gives) and equals the same rollout on a fresh forecaster: nothing the first
    one carried reaches it."""
    fc = ab2_forecaster()
    frames, cond = trajectories(1)
    first = rolled_out(fc, frames, cond, 5)
    middle = first[:, :, 2:3]
    second = rolled_out(fc, middle, cond, 3)
    assert torch.equal(second, rolled_out(ab2_forecaster(), middle, cond, 3))
    assert torch.equal(second[:, :, 0], fc(middle, cond)[:, :, 0])
    assert not torch.allclose(second[:, :, 0], first[:, :, 3])  # the continued trajectory took another (AB2) step


def test_interleaved_rollouts_keep_their_own_state() -> None:
    fc = ab2_forecaster()
    (frames_a, cond_a), (frames_b, cond_b) = trajectories(2), trajectories(3, batch=2)
    a, b = rollout(fc, frames_a, cond_a, 4), rollout(fc, frames_b, cond_b, 4)
    steps_a, steps_b = [], []
    for _ in range(4):
        steps_a.append(next(a))
        steps_b.append(next(b))
    assert torch.equal(torch.stack(steps_a, dim=2), rolled_out(ab2_forecaster(), frames_a, cond_a, 4))
    assert torch.equal(torch.stack(steps_b, dim=2), rolled_out(ab2_forecaster(), frames_b, cond_b, 4))
    assert current_rollout() is None  # a generator between steps leaves no rollout current


def test_outside_a_rollout_every_call_starts_fresh_and_a_scope_carries() -> None:
    """Bare calls are pure functions of the window (3 net calls each at 2 substeps: Heun's start, then AB2); a loop
    inside `rollout_scope` carries the rate as `rollout` does (2 calls a model step after the first)."""
    fc = ab2_forecaster(substeps=2)
    frames, cond = trajectories(4)
    assert torch.equal(fc(frames, cond), fc(frames, cond)) and fc.net.calls == 6
    fc.net.calls = 0
    window, steps = frames, []
    with rollout_scope():
        for _ in range(3):
            window = fc(window, cond)
            steps.append(window)
    assert fc.net.calls == 3 * 2 + 1
    assert torch.equal(torch.cat(steps, dim=2), rolled_out(ab2_forecaster(substeps=2), frames, cond, 3))


def test_a_raw_difference_forecast_scales_each_field_by_its_train_std() -> None:
    """`raw_difference` with scale 1 is a difference target of scale 1 / std per field (the forecaster binds its
    normaliser): u (std 2) adds half the output, v (std 0.5) twice it."""
    # u: x_n = [1, 0, 2], out = [3, 1, 5], x_n + out / 2 = [2.5, 0.5, 4.5] -> u' = [6, 2, 10]
    # v: x_n = [-1, 2, 0], out = [-1, 5, 1], x_n + 2 out = [-3, 12, 2] -> v' = 0.5 [-3, 12, 2] - 2 = [-3.5, 4, -1]
    out = forecaster("raw_difference", 1.0)(FRAMES, COND)
    torch.testing.assert_close(out, torch.tensor([[[[6.0, 2.0, 10.0]], [[-3.5, 4.0, -1.0]]]]))


class AffineDraws(nn.Module):
    """net(x, c) = 2 x + c; its draw k adds k, plus `noise` times normal noise from the generator it is given."""

    def __init__(self, noise: float = 0.0) -> None:
        super().__init__()
        self.noise = noise

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        return 2 * x + cond.view(-1, 1, *([1] * (x.dim() - 2)))

    def sample(self, x: Tensor, cond: Tensor, n: int, generator: torch.Generator | None) -> Tensor:
        mean = self.forward(x, cond)
        draws = [mean + k + self.noise * torch.randn(mean.shape, generator=generator) for k in range(n)]
        return torch.stack(draws)


def ensemble(noise: float = 0.0, target_name: str = "difference", scale: float = 0.5) -> Forecaster:
    from pdebench.forecast.forecaster import make_forecaster

    spec = NetSpec(("u", "v"), 1, 1, ("nu",), Grid.uniform("periodic", (3,)))
    norm = Normalizer(FIELD_MEAN, FIELD_STD, PARAM_MEAN, PARAM_STD)
    return make_forecaster(AffineDraws(noise), norm, make_target(target_name, scale), spec)


def test_an_ensemble_forecaster_decodes_each_draw_against_its_own_trajectory() -> None:
    """Two trajectories (the second is the first plus 2 in u), three draws: draw k of trajectory b is the difference
    forecast of b with k added to the output, in physical units: u' = forecast + 2 * 0.5 k, v' = forecast +
    0.5 * 0.5 k."""
    from pdebench.forecast.forecaster import EnsembleForecaster

    model = ensemble()
    assert isinstance(model, EnsembleForecaster) and not isinstance(forecaster(), EnsembleForecaster)
    frames = torch.cat([FRAMES, FRAMES + torch.tensor([2.0, 0.0]).view(1, 2, 1, 1)])
    cond = torch.cat([COND, COND])
    draws = model.sample(frames, cond, 3)
    assert draws.shape == (3, 2, 2, 1, 3)
    mean = model(frames, cond)
    torch.testing.assert_close(mean[0], torch.tensor([[[6.0, 2.0, 10.0]], [[-2.75, 0.25, -1.75]]]))
    for k in range(3):
        shift = torch.tensor([1.0 * k, 0.25 * k]).view(1, 2, 1, 1)
        torch.testing.assert_close(draws[k], mean + shift)


def test_an_ensemble_seed_repeats_its_draws_and_another_seed_does_not() -> None:
    model = ensemble(noise=0.1)
    first, again = model.sample(FRAMES, COND, 4, seed=3), model.sample(FRAMES, COND, 4, seed=3)
    assert torch.equal(first, again) and not torch.equal(first, model.sample(FRAMES, COND, 4, seed=4))
    torch.manual_seed(11)
    unseeded = model.sample(FRAMES, COND, 4)
    torch.manual_seed(11)
    assert torch.equal(unseeded, model.sample(FRAMES, COND, 4))  # without a seed: the global stream
