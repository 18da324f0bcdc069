"""DYffusion: its schedule and sampling loop against a hand-written walk, seeded dropout (reproducible per seed,
different across seeds), the two stage objectives (which frames they score, what they leave untrained), learning a
tiny batch, the interpolation metric, and the two-stage run on ks-tiny and kolmogorov-tiny through evaluation with an
ensemble; with the shared pieces it brought: frozen sub-networks from a checkpoint, stages, and the EMA of the
trainable parameters only."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from baselines import NetSpec, build_model
from baselines.dyffusion import DYffusion, SeededDropout, dropout_sites
from pdebench.config import ObjectiveConfig
from pdebench.config.schemas import FrozenConfig
from pdebench.data.batch import TrajectoryBatch, WindowBatch
from pdebench.data.grid import Grid
from pdebench.data.netspec import fold_frames
from pdebench.data.normalization import Normalizer
from pdebench.errors import InvalidSetting
from pdebench.forecast.checkpoint import CheckpointError, load_checkpoint_weights_only, load_forecaster
from pdebench.forecast.forecaster import EnsembleForecaster, make_forecaster
from pdebench.forecast.stepper import EnsembleStepper
from pdebench.forecast.targets import StateTarget
from pdebench.training import dyffusion_objectives  # noqa: F401 (registers the two stage objectives)
from pdebench.training.callbacks import TrainableAveragedModel
from pdebench.training.objectives import make_objective
from pdebench.training.stages import freeze, load_frozen

SPEC_1D = NetSpec(("u",), 1, 4, ("nu",), Grid.uniform("periodic", (32,)))
UNET = {"name": "unet", "hidden_channels": 8, "channel_multipliers": [1, 2], "blocks_per_level": 1, "norm_groups": 4}
UNET_OVERRIDE = "++model.backbone={name:unet,hidden_channels:8,channel_multipliers:[1,2],blocks_per_level:1," \
                "norm_groups:4}"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def dyffusion(spec: NetSpec = SPEC_1D, **settings: object) -> DYffusion:
    """A tiny DYffusion whose zero-initialised output layers (the conditioned U-Net's) are randomised, so that its
    outputs depend on its inputs and its dropout before any training."""
    torch.manual_seed(0)
    net = build_model({"name": "dyffusion", "backbone": UNET, **settings}, spec)
    with torch.no_grad():
        for parameter in net.parameters():
            if not parameter.abs().sum():
                parameter.normal_(0.0, 0.3)
    return net.eval()


def trajectory_batch(n: int = 3, frames: int = 9, spec: NetSpec = SPEC_1D) -> TrajectoryBatch:
    """Smooth travelling waves, one amplitude per trajectory: `[B, 1, frames, 32]`."""
    x = torch.linspace(0, 2 * torch.pi, 33)[:-1]
    t = torch.arange(frames, dtype=torch.float32)
    waves = torch.stack([(0.5 + k) * torch.sin(x[None] - 0.3 * t[:, None] * (k + 1)) for k in range(n)])
    return TrajectoryBatch(waves[:, None], torch.linspace(-1, 1, n)[:, None], torch.ones(n), torch.arange(n))


def window_batch(spec: NetSpec = SPEC_1D) -> WindowBatch:
    frames = trajectory_batch(4, spec.history + spec.bundle, spec).frames
    return WindowBatch(frames[:, :, :spec.history], frames[:, :, spec.history:], torch.linspace(-1, 1, 4)[:, None],
                       torch.ones(4), torch.arange(4))


# --- the schedule and the sampling loop --------------------------------------------------------------------------


@pytest.mark.parametrize(("extra", "times"), [(0, [0, 1, 2, 3]), (2, [0, 1 / 3, 2 / 3, 1, 2, 3])])
def test_the_schedule_maps_steps_to_interpolation_times(extra: int, times: list[float]) -> None:
    net = dyffusion(extra_steps=extra)
    assert net.n_steps == 4 + extra
    torch.testing.assert_close(net.step_time(torch.arange(net.n_steps)), torch.tensor(times, dtype=torch.float32))


def hand_walk(net: DYffusion, frames: Tensor, cond: Tensor, cold: bool, refine: bool,
              times: list[float] | None = None) -> Tensor:
    """Algorithm 1 of the paper, written out with the net's two calls over the steps' interpolation `times` (default
    0..h-1, k = 0); the states reached at the whole times 1..h-1 are the intermediate frames."""
    h, batch = net.horizon, frames.shape[0]
    times = list(range(h)) if times is None else times
    x0 = frames[:, :, -1:]

    def at(t: float) -> Tensor:
        return torch.full((batch,), float(t))

    state, reached = x0, {}
    for s in range(len(times)):
        forecast = net.forecast(state, frames, at(times[s]), cond)
        if s == len(times) - 1:
            break
        upcoming = net.interpolate(frames, forecast, at(times[s + 1]), cond)
        current = x0 if s == 0 else net.interpolate(frames, forecast, at(times[s]), cond)
        state = state - current + upcoming if cold else upcoming
        if times[s + 1] in range(1, h):
            reached[int(times[s + 1])] = state
    if refine:
        reached = {i: net.interpolate(frames, forecast, at(i), cond) for i in range(1, h)}
    return torch.cat([*(reached[i] for i in range(1, h)), forecast], dim=2)


@pytest.mark.parametrize("sampling", ["cold", "naive"])
@pytest.mark.parametrize("refine", [True, False])
def test_sampling_walks_the_schedule_as_algorithm_1(sampling: str, refine: bool) -> None:
    """With dropout off, one call equals the hand-written walk; cold and naive sampling, and refining the
    intermediate frames, each change the frames before x_h (and only those: x_h is the last forecast either way)."""
    net = dyffusion(dropout=0.0, sampling=sampling, refine_intermediate=refine)
    batch = trajectory_batch(2, 1)
    frames, cond = batch.frames, batch.cond
    with torch.no_grad():
        out = net(fold_frames(frames), cond)
        expected = hand_walk(net, frames, cond, sampling == "cold", refine)
        other = hand_walk(net, frames, cond, sampling != "cold", refine)
    torch.testing.assert_close(out, fold_frames(expected), rtol=0, atol=0)
    assert out.shape == (2, 4, 32)
    if not refine:  # refined frames read only the last forecast, which the walk's kind does not change
        assert (expected[:, :, :-1] - other[:, :, :-1]).abs().max() > 1e-3


@pytest.mark.parametrize("sampling", ["cold", "naive"])
@pytest.mark.parametrize("refine", [True, False])
def test_sampling_with_extra_steps_walks_the_fractional_times_first(sampling: str, refine: bool) -> None:
    """k = 2 auxiliary steps: one call equals the hand-written walk over the times 0, 1/3, 2/3, 1, 2, 3, whose frames
    at 1, 2 and 3 are the states reached there (or the refined ones); the extra steps change the forecast."""
    net = dyffusion(dropout=0.0, sampling=sampling, refine_intermediate=refine, extra_steps=2)
    batch = trajectory_batch(2, 1)
    frames, cond = batch.frames, batch.cond
    with torch.no_grad():
        out = net(fold_frames(frames), cond)
        expected = hand_walk(net, frames, cond, sampling == "cold", refine, [0, 1 / 3, 2 / 3, 1, 2, 3])
        without = hand_walk(net, frames, cond, sampling == "cold", refine)
    torch.testing.assert_close(out, fold_frames(expected), rtol=0, atol=1e-6)
    assert (expected[:, :, -1] - without[:, :, -1]).abs().max() > 1e-3


@pytest.mark.parametrize(("extra", "sampling", "refine", "calls"), [
    (0, "cold", True, (4, 1 + 2 + 2 + 3)),
    (0, "naive", False, (4, 3)),
    (2, "cold", False, (6, 1 + 4 * 2)),
    (2, "naive", True, (6, 5 + 3)),
])
def test_a_sample_calls_each_net_only_for_the_frames_it_uses(
        extra: int, sampling: str, refine: bool, calls: tuple[int, int]) -> None:
    """The cost of one sample (h = 4, N = 4 + k steps): N forecaster calls, and interpolator calls for each step's
    move but the last (cold: two, the first step one; naive: one) plus h - 1 when refining; the last step's forecast
    is the frame at h, with no move after it, and time 0 is never refined (it is the input)."""
    net = dyffusion(dropout=0.0, sampling=sampling, refine_intermediate=refine, extra_steps=extra)
    counts = {"forecaster": 0, "interpolator": 0}
    for name in counts:
        getattr(net, name).register_forward_hook(lambda *args, name=name: counts.__setitem__(name, counts[name] + 1))
    batch = trajectory_batch(2, 1)
    with torch.no_grad():
        net(fold_frames(batch.frames), batch.cond)
    assert (counts["forecaster"], counts["interpolator"]) == calls


def test_refining_changes_the_intermediate_frames_only() -> None:
    batch = trajectory_batch(2, 1)
    with torch.no_grad():
        refined = dyffusion(dropout=0.0, refine_intermediate=True)(fold_frames(batch.frames), batch.cond)
        walked = dyffusion(dropout=0.0, refine_intermediate=False)(fold_frames(batch.frames), batch.cond)
    torch.testing.assert_close(refined[:, -1], walked[:, -1], rtol=0, atol=0)
    assert (refined[:, :-1] - walked[:, :-1]).abs().max() > 1e-3


# --- seeded dropout -----------------------------------------------------------------------------------------------


def ensemble(net: DYffusion, spec: NetSpec = SPEC_1D) -> EnsembleForecaster:
    forecaster = make_forecaster(net, Normalizer.identity(spec.n_fields, spec.n_cond), StateTarget(), spec)
    assert isinstance(forecaster, EnsembleForecaster) and isinstance(forecaster, EnsembleStepper)
    return forecaster


def test_samples_are_reproducible_per_seed_and_differ_across_seeds() -> None:
    forecaster = ensemble(dyffusion())
    batch = trajectory_batch(2, 1)
    with torch.no_grad():
        first = forecaster.sample(batch.frames, batch.cond, 3, seed=5)
        again = forecaster.sample(batch.frames, batch.cond, 3, seed=5)
        other = forecaster.sample(batch.frames, batch.cond, 3, seed=6)
    assert first.shape == (3, 2, 1, 4, 32)
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    assert (first - other).abs().max() > 1e-3
    assert (first[0] - first[1]).abs().max() > 1e-3  # members of one ensemble differ
    # the spread is the interpolator's dropout: without it the members agree
    quiet = ensemble(dyffusion(dropout=0.0)).sample(batch.frames, batch.cond, 3, seed=5).detach()
    torch.testing.assert_close(quiet[0], quiet[2], rtol=0, atol=0)


def test_the_interpolator_drops_out_in_evaluation_and_the_forecaster_only_in_training() -> None:
    net = dyffusion()
    batch = trajectory_batch(2, 5)
    frames, last, time = batch.frames[:, :, :1], batch.frames[:, :, 4:5], torch.full((2,), 2.0)

    def twice(call: object) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            return call(torch.Generator().manual_seed(0)), call(torch.Generator().manual_seed(1))

    def interpolate(generator: torch.Generator) -> Tensor:
        with net.random_stream(generator):
            return net.interpolate(frames, last, time, batch.cond)

    def forecast(generator: torch.Generator) -> Tensor:
        with net.random_stream(generator):
            return net.forecast(last, frames, time, batch.cond)

    a, b = twice(interpolate)
    assert (a - b).abs().max() > 1e-3
    a, b = twice(forecast)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    net.train()
    a, b = twice(forecast)
    assert (a - b).abs().max() > 1e-3


def test_after_a_seeded_block_the_masks_come_from_the_global_stream_again() -> None:
    """`random_stream(generator)` holds only inside its block: afterwards the interpolator's masks follow the global
    torch seed again (two calls after the same `manual_seed` agree), not the block's generator."""
    net = dyffusion()
    batch = trajectory_batch(2, 5)
    frames, last, time = batch.frames[:, :, :1], batch.frames[:, :, 4:5], torch.full((2,), 2.0)
    with torch.no_grad():
        with net.random_stream(torch.Generator().manual_seed(7)):
            net.interpolate(frames, last, time, batch.cond)
        torch.manual_seed(11)
        first = net.interpolate(frames, last, time, batch.cond)
        torch.manual_seed(11)
        again = net.interpolate(frames, last, time, batch.cond)
    torch.testing.assert_close(first, again, rtol=0, atol=0)


def test_dropout_sites_are_the_backbones_activations_outside_its_embedding_and_sfno_layers() -> None:
    net = dyffusion()
    sites = dropout_sites(net.interpolator)
    # the tiny U-Net's 8 residual blocks (2 down, 2 middle, 4 up; each applies its one GELU module twice) and its
    # head; none of the embedding MLPs' GELUs
    assert len(sites) == 9 and all(isinstance(s, nn.GELU) for s in sites)
    embedding = {id(m) for m in net.interpolator.embedding.modules()}
    assert not any(id(s) in embedding for s in sites)
    sphere = NetSpec(("h",), 1, 2, (), Grid.gaussian(16, 32))
    sfno = build_model({"name": "dyffusion", "backbone": {"name": "sfno", "n_modes": [8, 16], "hidden_channels": 8,
                                                          "n_layers": 2}}, sphere)
    assert [type(s).__name__ for s in dropout_sites(sfno.interpolator)] == ["FNOBlocks"]
    assert sfno(torch.randn(2, 1, 16, 32), torch.zeros(2, 0)).shape == (2, 2, 16, 32)


class Recorder(nn.Module):
    """A stand-in net that records what it is called with and returns its input's first `n_out` channels."""

    def __init__(self, n_out: int) -> None:
        super().__init__()
        self.n_out, self.calls = n_out, []

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        self.calls.append((x, cond))
        return x[:, :self.n_out]


def test_the_two_nets_read_their_frames_and_the_interpolation_time_over_the_horizon() -> None:
    """History 2 and horizon 4 on two fields (u, v): the interpolator reads each field's input frames then x_h, the
    forecaster the estimate at time i then (with `data` conditioning) the input frames, or the estimate alone
    (`none`); both read the data's conditioning followed by i / h, field-major."""
    spec = NetSpec(("u", "v"), 2, 4, ("nu",), Grid.uniform("periodic", (8,)))
    frames, last, state = torch.randn(3, 2, 2, 8), torch.randn(3, 2, 1, 8), torch.randn(3, 2, 1, 8)
    cond, time = torch.randn(3, 1), torch.tensor([1.0, 2.0, 3.0])
    expected_cond = torch.cat([cond, torch.tensor([[0.25], [0.5], [0.75]])], dim=1)
    for conditioning in ("data", "none"):
        net = build_model({"name": "dyffusion", "backbone": UNET, "forward_conditioning": conditioning}, spec)
        net.interpolator, net.forecaster = Recorder(2), Recorder(2)
        net.interpolate(frames, last, time, cond)
        net.forecast(state, frames, time, cond)
        (x_interpolator, c_interpolator), = net.interpolator.calls
        (x_forecaster, c_forecaster), = net.forecaster.calls
        u, v = (torch.cat([frames[:, f], last[:, f]], dim=1) for f in (0, 1))
        torch.testing.assert_close(x_interpolator, torch.cat([u, v], dim=1), rtol=0, atol=0)
        inputs = [torch.cat([state[:, f], frames[:, f]], dim=1) if conditioning == "data" else state[:, f]
                  for f in (0, 1)]
        torch.testing.assert_close(x_forecaster, torch.cat(inputs, dim=1), rtol=0, atol=0)
        for seen in (c_interpolator, c_forecaster):
            torch.testing.assert_close(seen, expected_cond, rtol=0, atol=0)
    net.forecast(state, frames, torch.tensor(2.0), cond)  # one time for the whole batch
    torch.testing.assert_close(net.forecaster.calls[-1][1][:, 1], torch.full((3,), 0.5), rtol=0, atol=0)


def test_the_interpolation_time_is_divided_in_the_conditionings_precision() -> None:
    """A double-precision caller passing its times as float32 or as whole step numbers gets i / h computed in double
    precision (h = 3: 1/3 and 2/3 to the last bit), not rounded to float32 first."""
    spec = NetSpec(("u",), 1, 3, ("nu",), Grid.uniform("periodic", (8,)))
    net = build_model({"name": "dyffusion", "backbone": UNET}, spec)
    net.interpolator = Recorder(1)
    frames, last = torch.randn(2, 1, 1, 8, dtype=torch.float64), torch.randn(2, 1, 1, 8, dtype=torch.float64)
    cond = torch.zeros(2, 1, dtype=torch.float64)
    for time in (torch.tensor([1.0, 2.0]), torch.tensor([1, 2])):
        net.interpolate(frames, last, time, cond)
        seen = net.interpolator.calls[-1][1]
        torch.testing.assert_close(seen[:, 1], torch.tensor([1 / 3, 2 / 3], dtype=torch.float64), rtol=0, atol=0)


def test_seeded_dropout_keeps_the_draws_at_or_above_p_and_scales_by_one_over_one_minus_p() -> None:
    """The mask is `rand >= p` drawn from the given generator, the kept values divided by 1 - p (inverted dropout);
    switched off, the activation's output passes unchanged; p = 0 places nothing."""
    net = nn.Sequential(nn.Linear(4, 6), nn.GELU())
    dropout = SeededDropout(net, 0.25)
    assert dropout.n_sites == 1
    x = torch.randn(5, 4)
    with torch.no_grad():
        plain = net(x)
        dropout.active, dropout.generator = True, torch.Generator().manual_seed(3)
        dropped = net(x)
    keep = torch.rand((5, 6), generator=torch.Generator().manual_seed(3)) >= 0.25
    torch.testing.assert_close(dropped, plain * keep / 0.75, rtol=0, atol=1e-7)
    assert 0 < int(keep.sum()) < 30
    assert SeededDropout(nn.Sequential(nn.GELU()), 0.0).n_sites == 0
    # at the boundary: with p equal to the first draw, that draw is kept (at or above p) and scaled
    p = torch.rand(1, generator=torch.Generator().manual_seed(3)).item()
    at_p = SeededDropout(net, p)
    dropout.active = False
    at_p.active, at_p.generator = True, torch.Generator().manual_seed(3)
    with torch.no_grad():
        dropped = net(x)
    assert dropped[0, 0].item() == pytest.approx(plain[0, 0].item() / (1 - p), rel=1e-6) and plain[0, 0].abs() > 1e-3


# --- the two objectives -------------------------------------------------------------------------------------------


def test_the_interpolator_objective_scores_the_frame_at_the_drawn_time() -> None:
    """A stand-in interpolator that returns the window's true frame at the time it is asked for scores zero, and one
    a frame off does not: the objective pairs each drawn time with its frame."""
    net = dyffusion()
    batch = window_batch()
    truth = torch.cat([batch.inputs, batch.targets], dim=2)
    calls: list[Tensor] = []

    def exact(frames: Tensor, last: Tensor, time: Tensor, cond: Tensor, shift: int = 0) -> Tensor:
        calls.append(time.clone())
        torch.testing.assert_close(last, batch.targets[:, :, -1:])
        index = time.long() + shift
        return truth[torch.arange(4), :, index].unsqueeze(2)

    forecaster = ensemble(net)
    objective = make_objective(ObjectiveConfig(name="dyffusion_interpolator", bundle=4))
    objective.start_batch(3)
    net.interpolate = exact  # type: ignore[method-assign]
    assert objective.loss(forecaster, batch).item() == 0.0
    assert set(calls[0].tolist()) <= {1.0, 2.0, 3.0}
    net.interpolate = lambda *args: exact(*args, shift=1)  # type: ignore[method-assign]
    assert objective.loss(forecaster, batch).item() > 0.01


def test_the_forecaster_objective_trains_the_forecaster_only() -> None:
    """The first term's interpolator pass takes no gradient; the second term's does pass through the interpolator's
    input into the first prediction (as the reference code), so stage 2 freezes the interpolator, and then gradients
    reach the forecaster only. With lambda_2 = 0 the second term's interpolator call is not made."""
    batch = window_batch()
    for weights, frozen, calls_per_loss in (([1.0, 0.0], False, 1), ([0.5, 0.5], True, 2)):
        net = dyffusion(reconstruction_weights=weights).train()
        if frozen:
            freeze(net.interpolator)
        forecaster = ensemble(net)
        counted: list[int] = []
        net.interpolator.register_forward_hook(lambda *args, calls=counted: calls.append(1))
        objective = make_objective(ObjectiveConfig(name="dyffusion_forecaster", bundle=4))
        objective.start_batch(11)
        loss = objective.loss(forecaster, batch)
        loss.backward()
        assert all(p.grad is None for p in net.interpolator.parameters())
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.forecaster.parameters())
        assert len(counted) == calls_per_loss
    # the second term adds to the loss: the same batch and draws with lambda_2 = 0.5 and 0 differ
    weighted = []
    for weights in ([0.5, 0.5], [0.5, 0.0]):
        objective.start_batch(11)
        weighted.append(objective.loss(ensemble(dyffusion(reconstruction_weights=weights).train()), batch).item())
    assert weighted[0] > weighted[1] > 0


@pytest.mark.slow  # trains both nets for hundreds of steps
def test_dyffusion_overfits_a_tiny_batch() -> None:
    """Stage 1 then stage 2 on one batch: the interpolation error and the sampled forecast's error fall 10x."""
    net = dyffusion(dropout=0.05, forecaster_dropout=0.0).train()
    forecaster = ensemble(net)
    batch = window_batch()
    truth = batch.targets

    def errors() -> tuple[float, float]:
        with torch.no_grad():
            net.eval()
            interpolation = net.interpolate(batch.inputs, truth[:, :, -1:], torch.full((4,), 2.0), batch.cond)
            sample = forecaster.sample(batch.inputs, batch.cond, 2, seed=0)
            net.train()
        return ((interpolation - truth[:, :, 1:2]).pow(2).mean().item(), (sample - truth).pow(2).mean().item())

    start = errors()
    for stage, parameters in (("dyffusion_interpolator", net.interpolator.parameters()),
                              ("dyffusion_forecaster", net.forecaster.parameters())):
        objective = make_objective(ObjectiveConfig(name=stage, bundle=4))
        optimizer = torch.optim.Adam(parameters, lr=3e-3)
        for step in range(150):
            objective.start_batch(step)
            optimizer.zero_grad()
            objective.loss(forecaster, batch).backward()
            optimizer.step()
    end = errors()
    assert end[0] < start[0] / 10 and end[1] < start[1] / 10, (start, end)


def test_the_interpolation_metric_is_the_nrmse_over_every_complete_window() -> None:
    """With a stand-in interpolator that draws the straight line between x_0 and x_h, the metric equals the
    nRMSE of that line against the frames in between, over the windows starting at 0 and h (11 frames, h = 4: the
    window at 2h would need 13)."""
    net = dyffusion()
    batch = trajectory_batch(3, 11)

    def line(frames: Tensor, last: Tensor, time: Tensor, cond: Tensor) -> Tensor:
        w = (time / 4).view(-1, 1, 1, 1)
        return frames[:, :, -1:] * (1 - w) + last * w

    net.interpolate = line  # type: ignore[method-assign]
    errors = make_objective(ObjectiveConfig(name="dyffusion_interpolator", bundle=4)).validation_errors(
        ensemble(net), batch)
    x = batch.frames
    err, ref = torch.zeros(3), torch.zeros(3)
    for start in (0, 4):
        for i in (1, 2, 3):
            guess = x[:, :, start] * (1 - i / 4) + x[:, :, start + 4] * (i / 4)
            err += (guess - x[:, :, start + i]).pow(2).flatten(1).sum(1)
            ref += x[:, :, start + i].pow(2).flatten(1).sum(1)
    torch.testing.assert_close(errors, (err / ref).sqrt())
    assert errors.min() > 0.05


NETS = "expected a trainable net of the zoo, one of fno, mpnn, sfno, sinenet, t1, unet"
DROPOUT = "expected a dropout probability in [0, 1)"
WEIGHTS = "expected [lambda_1, lambda_2], lambda_1 > 0 and lambda_2 >= 0"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        *(({"backbone": {"name": name}}, f"model.backbone.name={name} for model dyffusion is not valid: {NETS}")
          for name in ("persistence", "pderefiner", "dyffusion", "resnet")),
        ({"dropout": 1.0}, f"model.dropout=1.0 for model dyffusion is not valid: {DROPOUT}"),
        ({"dropout": -0.1}, f"model.dropout=-0.1 for model dyffusion is not valid: {DROPOUT}"),
        ({"forecaster_dropout": 1.0}, f"model.forecaster_dropout=1.0 for model dyffusion is not valid: {DROPOUT}"),
        ({"sampling": "warm"}, "model.sampling=warm for model dyffusion is not valid: expected one of cold, naive"),
        ({"forward_conditioning": "all"},
         "model.forward_conditioning=all for model dyffusion is not valid: expected one of data, none"),
        ({"reconstruction_weights": [0.0, 1.0]},
         f"model.reconstruction_weights=[0.0,1.0] for model dyffusion is not valid: {WEIGHTS}"),
        ({"reconstruction_weights": [1.0, -0.5]},
         f"model.reconstruction_weights=[1.0,-0.5] for model dyffusion is not valid: {WEIGHTS}"),
        ({"reconstruction_weights": [1.0]},
         f"model.reconstruction_weights=[1.0] for model dyffusion is not valid: {WEIGHTS}"),
        ({"extra_steps": -1}, "model.extra_steps=-1 for model dyffusion is not valid: expected a number of auxiliary "
                              "sampling steps, a whole number >= 0"),
        ({"backbone": {"name": "unet", "widht": 8}},
         "unknown key(s) model.backbone.widht for the backbone unet of dyffusion; valid keys: name, hidden_channels, "
         "channel_multipliers, blocks_per_level, mid_attention, attention_heads, norm_groups, head_norm_groups, "
         "scale_shift"),
        ({"backbone": {"name": "unet", "hidden_channels": 0}},
         "model.backbone.hidden_channels=0 for the backbone unet of dyffusion is not valid: expected a whole number "
         ">= 1"),
    ],
)
def test_bad_settings_are_refused_by_name(settings: dict, message: str) -> None:
    """The whole sentence: the key, its value and what a valid value is."""
    with pytest.raises(ValueError) as error:
        build_model({"name": "dyffusion", **settings}, SPEC_1D)
    assert str(error.value) == message


def test_settings_at_their_bounds_are_accepted() -> None:
    """No dropout at all, no second loss term, no extra step, and the other sampling and conditioning choices."""
    net = build_model({"name": "dyffusion", "backbone": UNET, "dropout": 0.0, "forecaster_dropout": 0.0,
                       "reconstruction_weights": [1.0, 0.0], "extra_steps": 0, "sampling": "naive",
                       "forward_conditioning": "none"}, SPEC_1D)
    assert net.interpolator_dropout.n_sites == net.forecaster_dropout.n_sites == 0
    assert net.reconstruction_weights == (1.0, 0.0) and net.sampling == "naive"
    assert net.forecaster.lift.conv.in_channels == 1  # the estimate alone, no input frames


def test_the_data_a_backbone_refuses_is_refused_naming_the_backbone() -> None:
    """A grid the backbone cannot halve, a grid kind it does not serve, and data that already use the name of the
    interpolation time: each one sentence naming DYffusion and its backbone settings."""
    with pytest.raises(InvalidSetting) as error:
        build_model({"name": "dyffusion", "backbone": UNET}, NetSpec(("u",), 1, 4, (), Grid.uniform("periodic", (9,))))
    assert str(error.value) == ("the backbone of model dyffusion (settings under model.backbone) refuses the data: "
                                "model unet halves the grid 1 times (len(model.channel_multipliers)=2), so every grid "
                                "axis must be divisible by 2; the grid shape (9,) is not (it halves evenly at most 0 "
                                "times)")
    with pytest.raises(InvalidSetting) as error:
        build_model({"name": "dyffusion", "backbone": {"name": "sfno"}}, SPEC_1D)
    assert str(error.value) == ("model dyffusion does not support grid kind 'periodic' with backbone sfno (settings "
                                "under model.backbone): model sfno does not support grid kind 'periodic': its "
                                "spherical-harmonic layers need a sphere grid (lat, lon); use model=fno on periodic "
                                "and box grids")
    with pytest.raises(ValueError) as error:
        build_model({"name": "dyffusion", "backbone": UNET}, NetSpec(("u",), 1, 4, ("interpolation_time",),
                                                                     SPEC_1D.grid))
    assert str(error.value) == ("the data already has a conditioning scalar named 'interpolation_time', which model "
                                "dyffusion appends itself; rename that parameter")


def test_a_backbone_without_dropout_sites_is_refused_unless_dropout_is_off() -> None:
    """T1 has no activation layer (its GELU and sine are functions) nor neuraloperator layer stack: DYffusion cannot
    place either net's dropout there, and says how to go on; with both probabilities 0 it builds."""
    t1 = {"name": "t1", "hidden_channels": 4, "n_modes": [4], "n_layers": 1, "head_channels": 4}
    for settings in ({}, {"dropout": 0.0}, {"forecaster_dropout": 0.0}):
        with pytest.raises(InvalidSetting) as error:
            build_model({"name": "dyffusion", "backbone": t1, **settings}, SPEC_1D)
        assert str(error.value) == ("model dyffusion cannot place dropout in backbone T1: it has no activation layer "
                                    "nor neuraloperator layer stack; set model.dropout=0 and "
                                    "model.forecaster_dropout=0 or choose another backbone")
    net = build_model({"name": "dyffusion", "backbone": t1, "dropout": 0.0, "forecaster_dropout": 0.0}, SPEC_1D)
    assert net(torch.randn(2, 1, 32), torch.randn(2, 1)).shape == (2, 4, 32)


def test_other_objectives_targets_and_horizons_are_refused(compose_cfg) -> None:
    from pdebench.training.config import train_config

    with pytest.raises(InvalidSetting) as error:
        train_config(compose_cfg("train", ["model=dyffusion"]))
    assert str(error.value) == ("model=dyffusion is trained in two stages by objective=dyffusion_interpolator then "
                                "objective=dyffusion_forecaster, not objective=onestep; use "
                                "experiment=<dataset>_dyffusion, which runs both")
    with pytest.raises(InvalidSetting) as error:
        train_config(compose_cfg("train", ["experiment=ks_dyffusion", "objective.target=difference"]))
    assert str(error.value) == ("objective.target=difference cannot be decoded from model dyffusion, whose nets "
                                "interpolate and forecast states; use objective.target=state")
    with pytest.raises(InvalidSetting, match="objective.bundle=1 leaves DYffusion's interpolator no frame"):
        make_objective(ObjectiveConfig(name="dyffusion_interpolator", bundle=1))
    with pytest.raises(InvalidSetting, match="stage=forecster is not a stage of this run; its stages: "
                                             "interpolator, forecaster"):
        from pdebench.training.run import fit

        fit(compose_cfg("train", ["experiment=ks_dyffusion", "stage=forecster"]))


# --- shared pieces: EMA of trainable parameters, frozen sub-networks ----------------------------------------------


def test_the_average_skips_frozen_parameters_and_matches_torch_on_the_rest() -> None:
    """After three updates the trainable parameters' average equals torch's `AveragedModel` bit for bit; the frozen
    parameter is never touched (it keeps the value it had when the average was made, even if someone changes it)."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    model[0].requires_grad_(False)
    frozen_at_start = model[0].weight.detach().clone()
    ours = TrainableAveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9))
    reference = AveragedModel(copy.deepcopy(model), multi_avg_fn=get_ema_multi_avg_fn(0.9))
    for step in range(3):
        with torch.no_grad():
            model[1].weight.add_(0.5 + step)
            model[0].weight.add_(1.0)  # a frozen parameter never changes in training; the average ignores it
        ours.update_parameters(model)
        reference_model = copy.deepcopy(model)
        reference.update_parameters(reference_model)
    torch.testing.assert_close(ours.module[1].weight, reference.module[1].weight, rtol=0, atol=0)
    torch.testing.assert_close(ours.module[0].weight, frozen_at_start, rtol=0, atol=0)
    assert not torch.equal(reference.module[0].weight, frozen_at_start)  # torch would have averaged it


# --- the two-stage run, end to end --------------------------------------------------------------------------------

RUN = ["data.batch_size=4", "trainer.max_steps=3", "trainer.enable_progress_bar=false", "validation.rollout_steps=2",
       "validation.max_trajectories=2", UNET_OVERRIDE]


@pytest.fixture(scope="module")
def kolmogorov_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from compose import compose_config

    from data_gen.generate import generate_dataset

    root = tmp_path_factory.mktemp("kolmogorov")
    cfg = compose_config("generate", ["pde=kolmogorov", "preset=tiny"])
    generate_dataset(cfg["pde"], "tiny", root, seed=cfg["seed"], batch_size=4, device="cpu", progress=False)
    return root


def interpolator_state(path: Path) -> dict[str, Tensor]:
    prefix = "forecaster.net.interpolator."
    return {k: v for k, v in load_checkpoint_weights_only(path)["state_dict"].items() if k.startswith(prefix)}


def forecaster_state(path: Path) -> dict[str, Tensor]:
    prefix = "forecaster.net.forecaster."
    return {k: v for k, v in load_checkpoint_weights_only(path)["state_dict"].items() if k.startswith(prefix)}


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["ks", "kolmogorov"])
def test_both_stages_train_in_one_run_and_evaluate_with_an_ensemble(
        compose_cfg, data_root: Path, kolmogorov_root: Path, tmp_path: Path, dataset: str) -> None:
    from pdebench.rollout.evaluation import evaluate
    from pdebench.training.run import fit

    root = data_root if dataset == "ks" else kolmogorov_root
    overrides = [f"experiment={dataset}_dyffusion", "data.preset=tiny", f"data.root={root}", *RUN,
                 f"run_dir={tmp_path}/run"]
    best, score = fit(compose_cfg("train", overrides))
    stage_one = tmp_path / "run" / "interpolator" / "checkpoints"
    assert best == tmp_path / "run" / "forecaster" / "checkpoints" / "best.ckpt"
    first, second = load_checkpoint_weights_only(stage_one / "best.ckpt"), load_checkpoint_weights_only(best)
    assert first["global_step"] == second["global_step"] == 3
    assert first["hyper_parameters"]["objective"]["name"] == "dyffusion_interpolator"
    assert first["hyper_parameters"]["selection"] == {"metric": "interpolation_nrmse", "goal": "min",
                                                      "gmean_steps": 1}
    assert second["hyper_parameters"]["objective"]["name"] == "dyffusion_forecaster"
    assert second["hyper_parameters"]["run"]["frozen"] == [{
        "module": "interpolator", "source": "interpolator", "checkpoint": str(stage_one / "best.ckpt"),
        "label": "dyffusion-w8", "seed": 0}]
    # the interpolator of stage 2 is stage 1's best, bit for bit, in both of its checkpoints; its forecaster trained
    loaded = interpolator_state(stage_one / "best.ckpt")
    for path in (best, best.with_name("last.ckpt")):
        state = interpolator_state(path)
        assert state.keys() == loaded.keys() and all(torch.equal(state[k], loaded[k]) for k in loaded)
    before, after = forecaster_state(stage_one / "best.ckpt"), forecaster_state(best)
    assert any(not torch.equal(before[k], after[k]) for k in before)

    # rerun: both stages resume from their last checkpoints, whose budgets are spent; nothing trains again
    again, _ = fit(compose_cfg("train", overrides))
    assert again == best and load_checkpoint_weights_only(best)["global_step"] == 3
    assert all(torch.equal(v, loaded[k]) for k, v in interpolator_state(best).items())

    trained = load_forecaster(best)
    assert isinstance(trained.forecaster, EnsembleForecaster)
    result = evaluate(compose_cfg("evaluate", [
        f"ckpt={best}", f"data.root={root}", f"results_dir={tmp_path}/results", "rollout.device=cpu",
        "rollout.max_steps=4", "rollout.ensemble=4",
    ]), progress=False).content
    summary = result["summary"]
    assert result["model"] == "dyffusion" and summary["n_members"] == 4
    assert summary["crps_mean"] > 0 and summary["spread_skill_ratio"] > 0
    assert len(result["curves"]["crps"]) == len(result["curves"]["spread_skill"]) == 4


def test_a_stage_alone_needs_the_stage_it_loads_from(compose_cfg, data_root: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """`stage=forecaster` before the interpolator stage ran: one sentence, before any split is read."""
    import pdebench.training.run as run
    from pdebench.training.run import fit

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the splits were loaded before the missing checkpoint was refused")

    monkeypatch.setattr(run, "load_splits", refuse)

    overrides = ["experiment=ks_dyffusion", "data.preset=tiny", f"data.root={data_root}", *RUN,
                 f"run_dir={tmp_path}/run", "stage=forecaster"]
    missing = tmp_path / "run" / "interpolator" / "checkpoints" / "best.ckpt"
    with pytest.raises(CheckpointError, match=f"frozen sub-network interpolator: checkpoint {missing} does not exist; "
                                              "train the run .or stage. it comes from first"):
        fit(compose_cfg("train", overrides))


@pytest.mark.slow
def test_a_frozen_sub_network_of_another_dataset_or_shape_is_refused(trained_checkpoint: Path) -> None:
    """The checkpoint's data record is checked before any weight is read: another dataset fails naming what
    differs; a sub-network the checkpoint lacks, or a path the net has not, fails naming it."""
    data_info = copy.deepcopy(load_checkpoint_weights_only(trained_checkpoint)["hyper_parameters"]["data_info"])
    objective = {"history": 1, "bundle": 4}
    net = dyffusion()
    with pytest.raises(CheckpointError, match=r"was trained with another objective.bundle than this run \(dataset "
                                              r"'ks-tiny', this run: 'ks-tiny'\)"):
        load_frozen(net, [FrozenConfig(module="interpolator", checkpoint=str(trained_checkpoint))], data_info,
                    objective)
    other = {**data_info, "manifest_sha256": "0" * 64, "dataset": "ks-small"}
    with pytest.raises(CheckpointError, match=r"another data manifest_sha256, objective.bundle than this run "
                                              r"\(dataset 'ks-tiny', this run: 'ks-small'\)"):
        load_frozen(net, [FrozenConfig(module="interpolator", checkpoint=str(trained_checkpoint))], other, objective)
    with pytest.raises(CheckpointError, match="holds no sub-network interpolator"):
        load_frozen(net, [FrozenConfig(module="interpolator", checkpoint=str(trained_checkpoint))], data_info,
                    {"history": 1, "bundle": 1})
    with pytest.raises(InvalidSetting, match="frozen.module=decoder is not a sub-network of this run's net; its "
                                             "sub-networks: interpolator, forecaster"):
        load_frozen(net, [FrozenConfig(module="decoder", checkpoint=str(trained_checkpoint))], data_info, objective)



def test_a_checkpoint_from_before_stages_resumes_and_one_of_another_stage_does_not(compose_cfg) -> None:
    """A checkpoint whose recorded config predates `frozen`, `stages` and `stage` ran with their defaults and resumes
    under them; a run that asks for stages does not resume a checkpoint recorded without."""
    from pdebench.config import plain_config
    from pdebench.training.config import train_config
    from pdebench.training.run import _resume_conflict

    plain = plain_config(train_config(compose_cfg("train", [])))
    older = {key: value for key, value in plain.items() if key not in ("frozen", "stages", "stage")}
    assert _resume_conflict(plain, {}, older) is None
    staged = plain_config(train_config(compose_cfg("train", ["experiment=ks_dyffusion"])))
    conflict = _resume_conflict(staged, {}, {key: v for key, v in staged.items() if key != "stages"})
    assert conflict is not None and conflict.startswith("stages=[] but this run asks for stages=")


def test_the_sizes_docs_models_sets_beside_the_reference() -> None:
    """docs/models.md: at the reference's Navier-Stokes setting (3 fields, 1 frame in, h = 16, no data
    conditioning, forward_conditioning none) the zoo U-Net at width 16 gives 9,171,683 (interpolator) and 9,171,251
    (forecaster) parameters, next to the reference's 10,270,339 and 10,270,147."""
    from baselines.registry import count_parameters

    spec = NetSpec(("vx", "vy", "p"), 1, 16, (), Grid.uniform("box", (64, 64)))
    net = build_model({"name": "dyffusion", "forward_conditioning": "none",
                       "backbone": {"name": "unet", "hidden_channels": 16}}, spec)
    assert (count_parameters(net.interpolator), count_parameters(net.forecaster)) == (9_171_683, 9_171_251)
    assert count_parameters(net) == 18_342_934
