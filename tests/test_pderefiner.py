"""PDE-Refiner: the noise schedule and its gap to the public code's, the difference scaled in data units, which
refinement step training draws, what inference calls, ensembles from seeds, learning a tiny batch, 1-D and 2-D
grids, the published KS size, and a run through training and evaluation from its checkpoint."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from baselines import MODELS, NetSpec, build_model
from baselines.pderefiner import DEFAULT_SIGMA_MIN, PDERefiner, PDERefinerConfig
from pdebench.config import ObjectiveConfig
from pdebench.data.batch import WindowBatch
from pdebench.data.grid import Grid
from pdebench.data.normalization import Normalizer
from pdebench.forecast.checkpoint import load_forecaster
from pdebench.forecast.forecaster import EnsembleForecaster, make_forecaster
from pdebench.forecast.stepper import EnsembleStepper
from pdebench.forecast.targets import DifferenceTarget, RawDifferenceTarget, StateTarget, make_target
from pdebench.training.objectives import check_objective_fits, make_objective

SPEC_1D = NetSpec(("u",), 1, 1, ("nu",), Grid.uniform("periodic", (32,)))
SPEC_2D = NetSpec(("vx", "vy"), 2, 1, ("buoyancy",), Grid.uniform("periodic", (16, 16)))
FNO_BACKBONE = {"name": "fno", "n_modes": [8], "hidden_channels": 8, "n_layers": 2}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def refiner(spec: NetSpec, backbone: dict | None = None, steps: int = 3, sigma_min: float = DEFAULT_SIGMA_MIN
            ) -> PDERefiner:
    return build_model({"name": "pderefiner", "backbone": backbone or FNO_BACKBONE, "refinement_steps": steps,
                        "sigma_min": sigma_min}, spec)


class BackboneCalls:
    """Records, per backbone call, the refinement step k it was told (the last cond column times K) and its input."""

    def __init__(self, net: PDERefiner) -> None:
        self.steps: list[Tensor] = []
        self.inputs: list[Tensor] = []
        net.backbone.register_forward_hook(self.record)
        self.k = net.refinement_steps

    def record(self, module: nn.Module, args: tuple[Tensor, Tensor], output: Tensor) -> None:
        x, cond = args
        self.inputs.append(x.detach().clone())
        self.steps.append(torch.round(cond[:, -1] * self.k).long())


def tiny_batch(n: int = 4) -> WindowBatch:
    grid = torch.linspace(0, 2 * torch.pi, 33)[:-1]
    x = torch.stack([torch.sin(k * grid) for k in range(1, n + 1)])[:, None, None]  # [B, C=1, history=1, X]
    y = torch.roll(x, 3, dims=-1) * 0.5 + x**2
    return WindowBatch(x, y, torch.linspace(-1, 1, n)[:, None], torch.ones(n), torch.arange(n))


def test_noise_stds_fall_geometrically_to_sigma_min_as_a_std() -> None:
    net = refiner(SPEC_1D)
    # the stds the public implementation effectively used (its 4e-7 acting as a variance): 0.086, 0.0074, 6.3e-4
    torch.testing.assert_close(net.noise_std[1:], torch.tensor([0.0858, 0.00737, 6.32e-4]), rtol=2e-3, atol=0)
    literal = refiner(SPEC_1D, sigma_min=4e-7)
    assert literal.noise_std[-1].item() == pytest.approx(4e-7, rel=1e-5)
    assert literal.noise_std[1].item() == pytest.approx(4e-7 ** (1 / 3), rel=1e-5)


def public_code_noise_stds(min_noise_std: float, k: int) -> Tensor:
    """The noise std of refinement steps 1..K in the public code: its DDPM scheduler takes the betas
    `min_noise_std ** (j / K)` for diffusion steps j = K..0 as float32, and step k = K - j noises with
    `sqrt(1 - prod_{i <= j} (1 - beta_i))`, all in float32 (diffusers 0.17.1)."""
    betas = torch.tensor([min_noise_std ** (j / k) for j in reversed(range(k + 1))], dtype=torch.float32)
    alpha_bar = torch.cumprod(1.0 - betas, dim=0)
    return torch.stack([(1.0 - alpha_bar[k - step]).sqrt() for step in range(1, k + 1)])


def test_noise_stds_are_within_the_stated_gap_of_the_public_codes() -> None:
    """0.37%, 0.39% and 2.1% below the public code's stds (the module docstring's numbers); each gap is read to
    0.01 percentage points, so a default off by a few per mille either way fails."""
    public = public_code_noise_stds(4e-7, 3)
    torch.testing.assert_close(public, torch.tensor([0.0861533, 0.0073971, 6.45935e-4]), rtol=1e-5, atol=0)
    gap = (refiner(SPEC_1D).noise_std[1:].double() / public.double() - 1.0) * 100.0
    torch.testing.assert_close(gap, torch.tensor([-0.367, -0.393, -2.087], dtype=torch.float64), rtol=0, atol=0.01)


def test_the_backbone_is_conditioned_on_the_refinement_step() -> None:
    net = refiner(SPEC_1D)
    # input frames + estimate folded (1 + 1 channels) plus nu and refinement_step broadcast as channels
    assert net.backbone.fno.in_channels == SPEC_1D.n_fields * (SPEC_1D.history + SPEC_1D.bundle) + SPEC_1D.n_cond + 1
    x, cond = torch.randn(2, 1, 32), torch.randn(2, 1)
    estimate = torch.randn(2, 1, 32)
    outputs = [net.denoiser(x, estimate, torch.full((2,), k), cond) for k in range(4)]
    for k in range(1, 4):
        assert not torch.allclose(outputs[0], outputs[k])


def test_training_draws_every_refinement_step_uniformly() -> None:
    torch.manual_seed(0)
    spec = NetSpec(("u",), 1, 1, ("nu",), Grid.uniform("periodic", (8,)))
    net = refiner(spec, {"name": "fno", "n_modes": [4], "hidden_channels": 4, "n_layers": 1})
    calls = BackboneCalls(net)
    forecaster = make_forecaster(net, Normalizer.identity(1, 1), StateTarget(), spec)
    objective = make_objective(ObjectiveConfig(name="pderefiner"))
    batch = WindowBatch(torch.randn(32, 1, 1, 8), torch.randn(32, 1, 1, 8), torch.randn(32, 1), torch.ones(32),
                        torch.arange(32))
    with torch.no_grad():
        for _ in range(50):
            objective.loss(forecaster, batch)
    assert len(calls.steps) == 50  # one backbone call per batch, whatever mix of steps it holds
    counts = Counter(torch.cat(calls.steps).tolist())
    assert sorted(counts) == [0, 1, 2, 3]
    assert all(abs(n - 400) < 80 for n in counts.values()), counts  # 1600 draws of U{0..3}: 400 +- 17 each


def test_training_pairs_match_the_paper() -> None:
    """Step 0: empty estimate, goal = label. Step k: estimate = label + sigma_k noise, goal = noise."""
    torch.manual_seed(0)
    net = refiner(SPEC_1D)
    calls = BackboneCalls(net)
    x, cond, label, noise = torch.randn(4, 1, 32), torch.randn(4, 1), torch.randn(4, 1, 32), torch.randn(4, 1, 32)
    step = torch.tensor([0, 1, 2, 3])
    _, goal = net.refinement_pair(x, cond, label, step, noise)
    estimate = calls.inputs[0][:, 1]  # channel 0: the input frame, channel 1: the estimate
    torch.testing.assert_close(calls.inputs[0][:, 0], x[:, 0])
    assert torch.equal(estimate[0], torch.zeros(32)) and torch.equal(goal[0], label[0])
    for k in (1, 2, 3):
        torch.testing.assert_close(estimate[k], label[k, 0] + net.noise_std[k] * noise[k, 0])
        assert torch.equal(goal[k], noise[k])
    assert calls.steps[0].tolist() == [0, 1, 2, 3]


def test_inference_makes_exactly_k_plus_one_backbone_calls() -> None:
    for k in (1, 3, 5):
        net = refiner(SPEC_1D, steps=k).eval()
        calls = BackboneCalls(net)
        with torch.no_grad():
            out = net(torch.randn(3, 1, 32), torch.randn(3, 1))
        assert out.shape == (3, 1, 32)
        assert len(calls.steps) == k + 1
        assert [s.unique().tolist() for s in calls.steps] == [[i] for i in range(k + 1)]
        assert torch.equal(calls.inputs[0][:, 1], torch.zeros(3, 32))  # the first call sees an empty estimate


class LinearDenoiser(nn.Module):
    """A stand-in backbone with a known answer: per field and frame, `0.5 * estimate + 0.25 * last input frame +
    refinement_step + 0.1 * first conditioning value`, for 2 fields, history 2 and bundle 2 (inputs field-major:
    u_x0, u_x1, u_e0, u_e1, v_x0, ...)."""

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        frames = x.view(x.shape[0], 2, 4, *x.shape[2:])
        shift = (cond[:, -1] + 0.1 * cond[:, 0]).view(-1, 1, 1, *([1] * (x.dim() - 2)))
        return (0.5 * frames[:, :, 2:] + 0.25 * frames[:, :, 1:2] + shift).flatten(1, 2)


SPEC_2F = NetSpec(("u", "v"), 2, 2, ("nu",), Grid.uniform("periodic", (6,)))


def test_the_backbone_sees_history_and_estimate_frames_per_field_and_the_step_last() -> None:
    """Two fields, history 2, bundle 2, four distinct frames each: the backbone's input is, field by field, the two
    input frames then the two estimate frames; its conditioning is the data's, then k / K."""
    net = refiner(SPEC_2F, steps=4)
    calls = BackboneCalls(net)
    seen_cond = []
    net.backbone.register_forward_hook(lambda module, args, output: seen_cond.append(args[1]))
    x, estimate = torch.randn(3, 4, 6), torch.randn(3, 4, 6)
    cond = torch.tensor([[0.3], [-0.7], [1.1]])
    net.denoiser(x, estimate, torch.tensor([0, 1, 3]), cond)
    expected = torch.cat([x[:, 0:2], estimate[:, 0:2], x[:, 2:4], estimate[:, 2:4]], dim=1)
    torch.testing.assert_close(calls.inputs[0], expected, rtol=0, atol=0)
    torch.testing.assert_close(seen_cond[0], torch.tensor([[0.3, 0.0], [-0.7, 0.25], [1.1, 0.75]]))


def test_inference_noises_and_denoises_the_estimate_k_times_as_the_paper_writes() -> None:
    """With a backbone whose answer is known, one forecast equals the chain written out: e = D(x, 0, 0), then for
    k = 1..K: noisy = e + sigma_k n_k, e = noisy - sigma_k D(x, noisy, k), with the noise n_k drawn in that order
    from the same generator in the inputs' precision (float64 here); sigma_k = sigma_min ** (k / K), here
    0.2 ** (k / 3)."""
    net = refiner(SPEC_2F, steps=3, sigma_min=0.2)
    net.backbone = LinearDenoiser()
    x, cond = torch.randn(2, 4, 6, dtype=torch.float64), torch.tensor([[0.4], [-1.0]], dtype=torch.float64)
    last = torch.stack([x[:, 1], x[:, 1], x[:, 3], x[:, 3]], dim=1)  # the last input frame of each field

    def denoise(estimate: Tensor, k: int) -> Tensor:
        return 0.5 * estimate + 0.25 * last + (k / 3 + 0.1 * cond[:, :1]).view(2, 1, 1)

    draws = torch.Generator().manual_seed(5)
    estimate = denoise(torch.zeros(2, 4, 6, dtype=torch.float64), 0)
    for k in (1, 2, 3):
        sigma = 0.2 ** (k / 3)
        noisy = estimate + sigma * torch.randn(2, 4, 6, generator=draws, dtype=torch.float64)
        estimate = noisy - sigma * denoise(noisy, k)
    out = net(x, cond, torch.Generator().manual_seed(5))
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, estimate, rtol=1e-6, atol=1e-6)  # the schedule is stored in float32
    assert (out - denoise(torch.zeros(2, 4, 6, dtype=torch.float64), 0)).abs().max() > 0.05  # refined the guess


def test_samples_refine_each_input_and_one_sample_is_the_forecast() -> None:
    """`sample(x, cond, n)[i, b]` is a forecast of input b; with one sample it is `forward` with the same noise."""
    net = refiner(SPEC_2F, steps=1, sigma_min=1e-3)
    net.backbone = LinearDenoiser()
    x, cond = torch.randn(3, 4, 6), torch.tensor([[0.4], [-1.0], [2.0]])
    one = net.sample(x, cond, 1, torch.Generator().manual_seed(2))
    torch.testing.assert_close(one[0], net(x, cond, torch.Generator().manual_seed(2)))
    many = net.sample(x, cond, 4, torch.Generator().manual_seed(3))
    assert many.shape == (4, 3, 4, 6)
    # one refinement step of std 1e-3: members differ from a forecast of their own input by a few 1e-3, while the
    # forecasts of different inputs differ by more than 0.1 (their conditioning alone shifts them by 0.14 or more)
    single = net(x, cond, torch.Generator().manual_seed(3))
    for i in range(4):
        torch.testing.assert_close(many[i], single, rtol=0, atol=0.01)
    assert (single[1:] - single[:-1]).abs().amax(dim=(1, 2)).min() > 0.1
    assert 1e-5 < (many[0] - many[1]).abs().max() < 0.01


@pytest.fixture(scope="module")
def ensemble() -> EnsembleForecaster:
    torch.manual_seed(0)
    norm = Normalizer([1.0, -1.0], [2.0, 0.5], [0.5], [2.0])
    forecaster = make_forecaster(refiner(SPEC_2D, steps=2, sigma_min=0.05), norm, DifferenceTarget(0.3), SPEC_2D)
    return forecaster.eval()


def test_seeds_give_reproducible_and_different_samples(ensemble: EnsembleForecaster) -> None:
    assert isinstance(ensemble, EnsembleStepper)
    frames, cond = torch.randn(3, 2, 2, 16, 16), torch.randn(3, 1)
    with torch.no_grad():
        first = ensemble.sample(frames, cond, 4, seed=0)
        again = ensemble.sample(frames, cond, 4, seed=0)
        other = ensemble.sample(frames, cond, 4, seed=1)
        single = ensemble(frames, cond)
    assert first.shape == (4, 3, 2, 1, 16, 16) and single.shape == (3, 2, 1, 16, 16)
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)
    assert not torch.allclose(first[0], first[1])  # members of one ensemble differ
    # the spread comes from the refinement noise only: members agree to a few sigma_min in physical units
    spread = (first - first.mean(0)).abs().max()
    assert 0 < spread < 1.0


def test_a_plain_net_makes_a_plain_forecaster() -> None:
    net = build_model({"name": "fno", "n_modes": [8], "hidden_channels": 8, "n_layers": 1}, SPEC_1D)
    forecaster = make_forecaster(net, Normalizer.identity(1, 1), StateTarget(), SPEC_1D)
    assert not isinstance(forecaster, EnsembleForecaster) and not hasattr(forecaster, "sample")


@pytest.mark.parametrize("spec", [SPEC_1D, SPEC_2D], ids=["1d", "2d"])
def test_unet_backbone_runs_in_1d_and_2d(spec: NetSpec) -> None:
    net = refiner(spec, asdict(MODELS["unet"].config.tiny()), steps=2)
    x = torch.randn(2, spec.in_channels, *spec.grid.shape)
    cond = torch.randn(2, spec.n_cond)
    out = net(x, cond)
    assert out.shape == (2, spec.out_channels, *spec.grid.shape)
    out.square().mean().backward()
    assert all(p.grad is not None for p in net.parameters())
    assert net.sample(x, cond, 3).shape == (3, 2, spec.out_channels, *spec.grid.shape)


@pytest.mark.slow  # trains for hundreds of steps
def test_overfits_one_tiny_batch() -> None:
    """Trained with its own objective, the refined forecast's error on the batch falls at least 100x."""
    torch.manual_seed(0)
    net = refiner(SPEC_1D, {"name": "fno", "n_modes": [12], "hidden_channels": 16, "n_layers": 2}, steps=2)
    forecaster = make_forecaster(net, Normalizer.identity(1, 1), StateTarget(), SPEC_1D)
    objective = make_objective(ObjectiveConfig(name="pderefiner"))
    batch = tiny_batch()

    def forecast_error() -> float:
        with torch.no_grad():
            return (forecaster.sample(batch.inputs, batch.cond, 4, seed=0) - batch.targets).pow(2).mean().item()

    initial = forecast_error()
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, 400, eta_min=1e-4)
    for _ in range(400):
        optimizer.zero_grad()
        objective.loss(forecaster, batch).backward()
        optimizer.step()
        schedule.step()
    assert forecast_error() < initial / 100


def test_objective_and_model_must_fit_each_other() -> None:
    plain = build_model({"name": "fno", "n_modes": [8], "hidden_channels": 8, "n_layers": 1}, SPEC_1D)
    with pytest.raises(ValueError, match=r"objective=pderefiner cannot train model=fno, whose net has no "
                                         r"refinement_pair\(\); wrap it in PDE-Refiner instead: model=pderefiner "
                                         r"model.backbone.name=fno"):
        check_objective_fits("pderefiner", make_objective(ObjectiveConfig(name="pderefiner")), plain, "fno")
    with pytest.raises(ValueError, match="model=pderefiner is trained with objective=pderefiner, not "
                                         "objective=onestep; pass objective=pderefiner"):
        check_objective_fits("onestep", make_objective(ObjectiveConfig()), refiner(SPEC_1D),
                             "pderefiner")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"backbone": {"name": "persistence"}}, "model.backbone.name=persistence for model pderefiner is not valid"),
        ({"backbone": {"name": "pderefiner"}}, "model.backbone.name=pderefiner for model pderefiner is not valid"),
        ({"backbone": {"name": "fnoo"}}, "model.backbone.name=fnoo for model pderefiner is not valid"),
        ({"backbone": {"name": "fno", "widht": 3}}, "unknown key.s. model.backbone.widht for the backbone fno"),
        ({"refinement_steps": 0}, "model.refinement_steps=0 for model pderefiner is not valid"),
        ({"sigma_min": 0.0}, "model.sigma_min=0.0 for model pderefiner is not valid"),
        ({"sigma_min": 1.5}, "model.sigma_min=1.5 for model pderefiner is not valid"),
        ({"sigma_min": 1.0}, "model.sigma_min=1.0 for model pderefiner is not valid: expected the last refinement "
                             "step's noise std, a number strictly between 0 and 1"),
    ],
)
def test_bad_settings_are_refused_by_name(settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_model({"name": "pderefiner", **settings}, SPEC_1D)


def test_a_data_parameter_named_like_the_step_is_refused() -> None:
    spec = NetSpec(("u",), 1, 1, ("refinement_step",), Grid.uniform("periodic", (32,)))
    with pytest.raises(ValueError, match="already has a conditioning scalar named 'refinement_step'"):
        refiner(spec)


def test_sample_count_must_be_positive() -> None:
    with pytest.raises(ValueError, match="number of samples must be a whole number >= 1, got 0"):
        refiner(SPEC_1D).sample(torch.randn(1, 1, 32), torch.randn(1, 1), 0)


@pytest.mark.slow
def test_trains_on_ks_and_evaluates_from_its_checkpoint(compose_cfg, data_root: Path, tmp_path: Path) -> None:
    from pdebench.rollout.evaluation import evaluate
    from pdebench.training.run import train

    best = train(compose_cfg("train", [
        "data=ks", "data.preset=tiny", f"data.root={data_root}", "data.batch_size=4", "model=pderefiner",
        "objective=pderefiner", "++model.backbone={name:unet,hidden_channels:8,channel_multipliers:[1,2],"
        "blocks_per_level:1,norm_groups:4}", "model.refinement_steps=2", "trainer.max_epochs=1",
        "trainer.limit_train_batches=2", "trainer.enable_progress_bar=false", "validation.rollout_steps=2",
        "validation.max_trajectories=2", f"run_dir={tmp_path}/run", "label=refiner-tiny",
    ]))
    trained = load_forecaster(best)
    assert isinstance(trained.forecaster, EnsembleForecaster)
    assert trained.record["objective"]["name"] == "pderefiner" and trained.record["model"]["refinement_steps"] == 2
    # the public code's target: the raw difference / 0.3, its std read from the checkpoint's own normaliser
    target = trained.forecaster.target
    assert isinstance(target, RawDifferenceTarget) and target.normalizer is trained.forecaster.normalizer
    result = evaluate(compose_cfg("evaluate", [
        f"ckpt={best}", f"data.root={data_root}", f"results_dir={tmp_path}/results", "rollout.device=cpu",
        "rollout.max_steps=3",
    ]), progress=False).content
    assert result["label"] == "refiner-tiny" and result["model"] == "pderefiner"
    assert result["n_parameters"] == sum(p.numel() for p in trained.forecaster.parameters())
    assert result["n_steps"] == 3 and result["summary"]["one_step_nrmse"] > 0


def test_the_wrong_objective_is_refused_when_training_starts(compose_cfg, data_root: Path, tmp_path: Path) -> None:
    from pdebench.training.run import train

    with pytest.raises(ValueError, match="model=pderefiner is trained with objective=pderefiner"):
        train(compose_cfg("train", ["data=ks", "data.preset=tiny", f"data.root={data_root}", "model=pderefiner",
                                    "++model.backbone={name:fno,n_modes:[8],hidden_channels:8,n_layers:1}",
                                    f"run_dir={tmp_path}/run"]))


def test_the_raw_difference_divides_the_difference_in_data_units_by_the_scale() -> None:
    """Two fields of train std 2 and 0.5: the raw_difference label is the physical change / 0.3 whatever the std;
    the difference label is that divided by the std; both decode back to the physical next state."""
    norm = Normalizer([1.0, -1.0], [2.0, 0.5], [0.5], [2.0])
    now = torch.tensor([[[[1.0, 2.0]], [[0.0, -1.0]]]])  # [B=1, C=2, 1, X=2], physical
    later = torch.tensor([[[[1.6, 1.4]], [[0.3, -1.3]]]])
    change = torch.tensor([[[[0.6, -0.6]], [[0.3, -0.3]]]])
    spec = NetSpec(("u", "v"), 1, 1, ("nu",), Grid.uniform("periodic", (2,)))
    for target, label in [(make_target("raw_difference", 0.3), change / 0.3),
                          (make_target("difference", 0.3), change / 0.3 / torch.tensor([2.0, 0.5]).view(1, 2, 1, 1))]:
        forecaster = make_forecaster(nn.Identity(), norm, target, spec)
        encoded = target.encode(norm.normalize_fields(now), norm.normalize_fields(later))
        torch.testing.assert_close(encoded, label)
        decoded = norm.denormalize_fields(target.decode(norm.normalize_fields(now), encoded))
        torch.testing.assert_close(decoded, later)
        assert forecaster.target is target


def test_the_raw_difference_follows_the_forecasters_normaliser() -> None:
    """The std is read from the bound normaliser when used: in float64 after `.double()`, and the loaded
    statistics after `load_state_dict`; unbound, the target refuses in one sentence."""
    target = RawDifferenceTarget(0.3)
    frames = torch.zeros(1, 1, 1, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="objective.target=raw_difference applies its scale to the data's own units, "
                                         "so it needs the train statistics"):
        target.decode(frames, frames)
    spec = NetSpec(("u",), 1, 1, (), Grid.uniform("periodic", (4,)))
    forecaster = make_forecaster(nn.Identity(), Normalizer([0.0], [1.0], [], []), target, spec).double()
    forecaster.load_state_dict({"normalizer.field_mean": torch.zeros(1), "normalizer.field_std": torch.full((1,), 4.0),
                                "normalizer.param_mean": torch.zeros(0), "normalizer.param_std": torch.zeros(0)})
    out = target.decode(frames, torch.ones(1, 1, 1, 4, dtype=torch.float64))
    assert out.dtype == torch.float64 and torch.equal(out, torch.full_like(out, 0.3 / 4.0))


class LabelRecorder(nn.Module):
    """A stand-in net for the refinement objective: records the label it is given, predicts zero."""

    refinement_steps = 3

    def __init__(self) -> None:
        super().__init__()
        self.labels: list[Tensor] = []

    def refinement_pair(self, x: Tensor, cond: Tensor, label: Tensor, step: Tensor, noise: Tensor
                        ) -> tuple[Tensor, Tensor]:
        self.labels.append(label)
        return torch.zeros_like(label), label


def test_the_refinement_objective_trains_on_the_raw_difference() -> None:
    """objective=pderefiner with target raw_difference: the label the refinement steps noise is the physical change
    of one model step divided by 0.3, not that divided by the field's std (here 2.5)."""
    net = LabelRecorder()
    spec = NetSpec(("u",), 1, 1, ("nu",), Grid.uniform("periodic", (4,)))
    norm = Normalizer([0.5], [2.5], [0.0], [1.0])
    objective = make_objective(ObjectiveConfig(name="pderefiner", target="raw_difference", target_scale=0.3))
    forecaster = make_forecaster(net, norm, make_target("raw_difference", 0.3), spec)
    inputs, targets = torch.randn(3, 1, 1, 4), torch.randn(3, 1, 1, 4)
    objective.loss(forecaster, WindowBatch(inputs, targets, torch.zeros(3, 1), torch.ones(3), torch.arange(3)))
    torch.testing.assert_close(net.labels[0], ((targets - inputs) / 0.3)[:, :, 0])


@pytest.mark.parametrize("size", PDERefinerConfig.published_sizes(), ids=lambda size: size.setting.split(":")[0])
def test_pderefiner_has_the_published_ks_parameter_count(size) -> None:
    """The whole PDE-Refiner at its defaults on the KS setting: the backbone's parameters, the public code's count."""
    assert PDERefinerConfig.published_sizes() == (size,)  # read again when the test runs, not only at collection
    assert size.config == PDERefinerConfig()
    assert size.spec == NetSpec(("u",), 1, 1, ("dt", "dx"), Grid.uniform("periodic", (256,)))
    # the row `pdebench-models --reference` prints, and where its count comes from
    assert size.setting == ("PDE-Refiner on KS: 1-D, 256 points, 1 field, 1 history frame in, 1 frame out, "
                            "conditioned on dt and dx (the backbone also on the refinement step), K = 3, backbone "
                            "Unetmod-1d-64")
    assert size.source == ("github.com/pdearena/pdearena: pdearena/models/pderefiner.py PDERefiner with "
                           "configs/kuramotosivashinsky1d.yaml (Unetmod-1d-64, param_conditioning=scalar_2, "
                           "time_history=1, time_future=1, num_refinement_steps=3)")
    assert size.count() == size.published == 53_924_225
