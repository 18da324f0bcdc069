"""FNO, TFNO and SFNO through neuraloperator: modes per axis in 1-D and 2-D, tensor factorization, padding of the
non-periodic axes only, periodic translation equivariance, conditioning, learning a tiny batch, the sphere."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from baselines import MODELS, NetSpec, build_model, model_config
from baselines.fno import broadcast_cond
from baselines.sfno import latitude_quadrature
from pdebench.data.grid import SPHERE_AXES, Grid

SPHERE = Grid.uniform("sphere", (16, 32))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def fno(spec: NetSpec, **settings) -> torch.nn.Module:
    return build_model({"name": "fno", "n_modes": [8], "hidden_channels": 8, "n_layers": 2, **settings}, spec)


def spectral_weights(net: torch.nn.Module) -> list:
    return [conv.weight for conv in net.fno.fno_blocks.convs]


def test_n_modes_are_per_axis_and_one_entry_serves_every_axis() -> None:
    spec = NetSpec(("u",), 1, 1, (), Grid.uniform("periodic", (32, 16)))
    assert tuple(fno(spec, n_modes=[12, 6]).fno.n_modes) == (12, 6)
    assert tuple(fno(spec, n_modes=[8]).fno.n_modes) == (8, 8)
    with pytest.raises(ValueError, match="model.n_modes has 3 entries but the data has 2 spatial dims"):
        fno(spec, n_modes=[8, 8, 8])


@pytest.mark.parametrize("spatial_dims", [1, 2])
def test_fno_is_periodic_translation_equivariant(spatial_dims: int) -> None:
    """Rolling the input rolls the output (no positional embedding); with the grid embedding it does not. In 2-D the
    axes differ in length and shift (32 by 5, 24 by 3), so a net that mixed them up would fail."""
    torch.manual_seed(0)
    shape = (32, 24)[:spatial_dims]
    spec = NetSpec(("u",), 1, 1, ("a", "b"), Grid.uniform("periodic", shape))
    x, cond = torch.randn(2, 1, *shape), torch.randn(2, 2)
    dims, shifts = tuple(range(2, 2 + spatial_dims)), (5, 3)[:spatial_dims]
    for embedding, equivariant in ((False, True), (True, False)):
        net = fno(spec, positional_embedding=embedding)
        with torch.no_grad():
            rolled_in = net(torch.roll(x, shifts, dims), cond)
            rolled_out = torch.roll(net(x, cond), shifts, dims)
        assert torch.allclose(rolled_in, rolled_out, rtol=1e-4, atol=1e-5) == equivariant


def test_tfno_factorizes_the_spectral_weights() -> None:
    spec = NetSpec(("u", "v"), 2, 1, ("a",), Grid.uniform("periodic", (32, 32)))
    dense = fno(spec, hidden_channels=16)
    tucker = fno(spec, hidden_channels=16, factorization="tucker", rank=0.1)
    assert all(type(w).__name__ == "DenseTensor" for w in spectral_weights(dense))
    assert all(type(w).__name__ == "TuckerTensor" for w in spectral_weights(tucker))
    n_dense, n_tucker = (sum(p.numel() for p in net.parameters()) for net in (dense, tucker))
    assert n_tucker < 0.5 * n_dense
    out = tucker(torch.randn(2, 4, 32, 32), torch.randn(2, 1))
    assert out.shape == (2, 2, 32, 32)
    out.square().mean().backward()
    assert all(p.grad is not None for p in tucker.parameters())
    buffer = io.BytesIO()
    torch.save(tucker.state_dict(), buffer)
    buffer.seek(0)
    restored = fno(spec, hidden_channels=16, factorization="tucker", rank=0.1)
    restored.load_state_dict(torch.load(buffer, weights_only=True))


@pytest.mark.parametrize(("kind", "shape", "padding"), [
    ("periodic", (32, 32), None), ("box", (32, 32), [0.25, 0.25]), ("sphere", (16, 32), [0.25, 0.0]),
])
def test_only_non_periodic_axes_are_padded(kind: str, shape: tuple[int, int], padding: list | None) -> None:
    net = fno(NetSpec(("u",), 1, 1, (), Grid.uniform(kind, shape)), domain_padding=0.25)
    assert (net.fno.domain_padding and net.fno.domain_padding.domain_padding) == padding
    assert net(torch.randn(1, 1, *shape), torch.zeros(1, 0)).shape == (1, 1, *shape)


def test_fno_uses_its_conditioning_and_serves_none() -> None:
    torch.manual_seed(0)
    spec = NetSpec(("u",), 1, 1, ("a",), Grid.uniform("periodic", (32,)))
    net, x = fno(spec), torch.randn(2, 1, 32)
    assert not torch.allclose(net(x, torch.zeros(2, 1)), net(x, torch.ones(2, 1)))
    bare = fno(NetSpec(("u",), 1, 1, (), Grid.uniform("periodic", (32,))))
    assert bare(x, torch.zeros(2, 0)).shape == (2, 1, 32)


def test_conditioning_is_cast_to_the_inputs_dtype() -> None:
    """Conditioning in another dtype than the inputs (float64 scalars, a float32 net) joins the input in the inputs'
    dtype, after the input channels, one constant channel per scalar."""
    torch.manual_seed(0)
    spec = NetSpec(("u",), 1, 1, ("a", "b"), Grid.uniform("periodic", (16,)))
    net = fno(spec)
    x, cond = torch.randn(2, 1, 16), torch.randn(2, 2, dtype=torch.float64)
    out = net(x, cond)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, net(x, cond.float()), rtol=0, atol=0)
    joined = broadcast_cond(x, cond)
    assert joined.dtype == torch.float32 and joined.shape == (2, 3, 16)
    assert torch.equal(joined[:, 0], x[:, 0]) and torch.equal(joined[:, 1:], cond.float()[:, :, None].expand(2, 2, 16))
    assert broadcast_cond(x, torch.zeros(2, 0)) is x

def overfit(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, cond: torch.Tensor, steps: int) -> float:
    """Ratio of the initial to the final MSE after `steps` Adam steps on one batch."""
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    initial = torch.nn.functional.mse_loss(net(x, cond), y).item()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(net(x, cond), y)
        loss.backward()
        optimizer.step()
    return initial / loss.item()


@pytest.mark.slow  # trains for hundreds of steps
def test_fno_overfits_one_tiny_batch() -> None:
    torch.manual_seed(0)
    spec = NetSpec(("u",), 1, 1, ("a",), Grid.uniform("periodic", (32,)))
    net = build_model(MODELS["fno"].config.tiny(), spec)
    grid = torch.linspace(0, 2 * torch.pi, 33)[:-1]
    x = torch.stack([torch.sin(k * grid) for k in (1, 2, 3, 4)]).unsqueeze(1)
    y = torch.roll(x, 3, dims=-1) * 0.5 + x**2
    assert overfit(net, x, y, torch.randn(4, 1), 300) > 100


# --- SFNO ------------------------------------------------------------------------------------------------------


def sfno(spec: NetSpec, **settings) -> torch.nn.Module:
    return build_model({"name": "sfno", "n_modes": [8, 16], "hidden_channels": 16, "n_layers": 2, **settings}, spec)


def test_sfno_maps_shapes_learns_and_uses_its_conditioning() -> None:
    torch.manual_seed(0)
    spec = NetSpec(("h", "u", "v"), 2, 1, ("a",), SPHERE)
    net = sfno(spec)
    x = torch.randn(2, 6, 16, 32)
    out = net(x, torch.zeros(2, 1))
    assert out.shape == (2, 3, 16, 32)
    assert not torch.allclose(out, net(x, torch.ones(2, 1)))
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_sfno_is_equivariant_to_longitude_shifts() -> None:
    torch.manual_seed(0)
    net = sfno(NetSpec(("h",), 1, 1, (), SPHERE)).double()
    x = torch.randn(2, 1, 16, 32, dtype=torch.float64)
    cond = torch.zeros(2, 0, dtype=torch.float64)
    torch.testing.assert_close(net(torch.roll(x, 8, -1), cond), torch.roll(net(x, cond), 8, -1), rtol=0, atol=1e-5)


@pytest.mark.slow  # trains for hundreds of steps
def test_sfno_overfits_one_tiny_batch() -> None:
    torch.manual_seed(0)
    lat, lon = np.meshgrid(*(np.deg2rad(c) for c in SPHERE.coordinates), indexing="ij")
    fields = [np.cos(lat) * np.sin(m * lon + p) for m, p in ((1, 0.0), (2, 1.0), (3, 2.0))]
    x = torch.tensor(np.stack(fields), dtype=torch.float32)[:, None]
    y = torch.roll(x, 4, dims=-1) + 0.5 * x**2
    net = build_model(MODELS["sfno"].config.tiny(), NetSpec(("h",), 1, 1, ("a",), SPHERE))
    assert overfit(net, x, y, torch.randn(3, 1), 300) > 100


def test_sfno_factorizes_its_spherical_weights_at_the_rank_asked_for() -> None:
    """`factorization: tucker` gives Tucker-factorised spherical weights whose size follows `rank` (0.1 fewer
    parameters than 0.5, both fewer than dense), and the factorised net still maps the sphere to itself."""
    spec = NetSpec(("h",), 1, 1, ("a",), SPHERE)
    torch.manual_seed(0)
    dense, tucker, wider = (sfno(spec, **settings) for settings in (
        {}, {"factorization": "tucker", "rank": 0.1}, {"factorization": "tucker", "rank": 0.5}))
    assert all(type(conv.weight).__name__ == "ComplexDenseTensor" for conv in dense.sfno.fno_blocks.convs)
    assert all(type(conv.weight).__name__ == "ComplexTuckerTensor" for conv in tucker.sfno.fno_blocks.convs)
    n_dense, n_tucker, n_wider = (sum(p.numel() for p in net.parameters()) for net in (dense, tucker, wider))
    assert n_tucker < n_wider < n_dense
    out = tucker(torch.randn(2, 1, 16, 32), torch.randn(2, 1))
    assert out.shape == (2, 1, 16, 32) and torch.isfinite(out).all()


@pytest.mark.parametrize(("settings", "output_shape"), [
    ({"factorization": "dense", "sht_norm": "schmidt", "sht_grids": ["equiangular", "legendre-gauss"], "bias": False},
     (12, 24)),
    ({"factorization": "tucker", "rank": 0.5, "implementation": "factorized", "sht_grids": "equiangular"}, None),
])
def test_sfno_convolution_is_neuraloperators_for_other_settings(settings: dict, output_shape: tuple | None) -> None:
    """Where the grid holds every mode, the grid-adapted spherical convolution is neuraloperator's forward for any
    normalisation, input and output quadrature, output shape, bias or none and factorised contraction."""
    from neuralop.layers.spherical_convolution import SphericalConv

    from baselines.sfno import GridSphericalConv

    torch.manual_seed(0)
    ours = GridSphericalConv(4, 5, (8, 16), **settings)
    theirs = SphericalConv(4, 5, (8, 16), **settings)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(3, 4, 16, 32)
    out = ours(x, output_shape=output_shape)
    assert out.shape == (3, 5, *(output_shape or (16, 32)))
    assert torch.equal(out, theirs(x, output_shape=output_shape))


def test_sfno_reads_the_latitude_quadrature_off_the_grid() -> None:
    gauss = np.rad2deg(np.arcsin(np.polynomial.legendre.leggauss(16)[0]))[::-1]
    gaussian = Grid("sphere", SPHERE_AXES, (gauss, SPHERE.coordinates[1]))
    assert latitude_quadrature(gaussian) == "legendre-gauss"
    assert latitude_quadrature(SPHERE) == "equiangular"
    net = sfno(NetSpec(("h",), 1, 1, (), gaussian))
    assert net.sfno.fno_blocks.convs[0].sht_grids == ["legendre-gauss", "legendre-gauss"]


@pytest.mark.parametrize("kind", ["periodic", "box"])
def test_sfno_refuses_grids_other_than_the_sphere(kind: str) -> None:
    with pytest.raises(ValueError) as error:
        sfno(NetSpec(("u",), 1, 1, (), Grid.uniform(kind, (16, 32))))
    assert str(error.value) == (f"model sfno does not support grid kind '{kind}': its spherical-harmonic layers need a "
                                "sphere grid (lat, lon); use model=fno on periodic and box grids")


@pytest.mark.parametrize(("settings", "message"), [
    ({"name": "fno", "hidden_channels": 0},
     "model.hidden_channels=0 for model fno is not valid: expected a number of channels, a whole number >= 1"),
    ({"name": "fno", "n_layers": 0},
     "model.n_layers=0 for model fno is not valid: expected a number of Fourier layers, a whole number >= 1"),
    ({"name": "fno", "n_modes": []}, "model.n_modes=[] for model fno is not valid: expected a non-empty list of kept "
                                     "Fourier modes per axis, each a whole number >= 1"),
    ({"name": "fno", "n_modes": [8, 0]}, "model.n_modes=[8,0] for model fno is not valid: expected a non-empty list of "
                                         "kept Fourier modes per axis, each a whole number >= 1"),
    ({"name": "fno", "factorization": "qr"},
     "model.factorization=qr for model fno is not valid: expected null (dense) or one of dense, tucker, cp, tt"),
    ({"name": "fno", "rank": 0.0}, "model.rank=0.0 for model fno is not valid: expected the factorised weights' share "
                                   "of the dense parameter count, a finite number > 0"),
    ({"name": "fno", "domain_padding": 1.5}, "model.domain_padding=1.5 for model fno is not valid: expected the padded "
                                             "fraction of each non-periodic axis, a finite number >= 0 and <= 1"),
    ({"name": "fno", "domain_padding": -0.1},
     "model.domain_padding=-0.1 for model fno is not valid: expected the padded fraction of each non-periodic axis, a "
     "finite number >= 0 and <= 1"),
    ({"name": "sfno", "hidden_channels": 0},
     "model.hidden_channels=0 for model sfno is not valid: expected a whole number >= 1"),
    ({"name": "sfno", "n_layers": 0}, "model.n_layers=0 for model sfno is not valid: expected a whole number >= 1"),
    ({"name": "sfno", "n_modes": [4, 4, 4]}, "model.n_modes=[4,4,4] for model sfno is not valid: expected one or two "
                                             "(lat, lon) mode counts, each a whole number >= 1"),
    ({"name": "sfno", "n_modes": [8, 0]}, "model.n_modes=[8,0] for model sfno is not valid: expected one or two "
                                          "(lat, lon) mode counts, each a whole number >= 1"),
    ({"name": "sfno", "sht_grid": "healpix"},
     "model.sht_grid=healpix for model sfno is not valid: expected null or one of equiangular, legendre-gauss"),
    ({"name": "sfno", "rank": 0.0}, "model.rank=0.0 for model sfno is not valid: expected a finite number > 0"),
])
def test_bad_settings_are_refused_by_name(settings: dict, message: str) -> None:
    """The whole sentence: the key, its value, the model and what a valid value is."""
    with pytest.raises(ValueError) as error:
        build_model(settings, NetSpec(("h",), 1, 1, (), SPHERE))
    assert str(error.value) == message


def test_settings_at_their_bounds_are_accepted() -> None:
    """Domain padding 0 (none) and 1 (a whole axis each side), a factorization named in any case, one or two SFNO
    mode counts, a single mode per axis (the least either net keeps) and either quadrature."""
    assert model_config({"name": "fno", "n_modes": [1, 3]}).n_modes == [1, 3]
    assert model_config({"name": "sfno", "n_modes": [1, 1]}).n_modes == [1, 1]
    for padding in (0.0, 1.0):
        assert model_config({"name": "fno", "domain_padding": padding}).domain_padding == padding
    assert model_config({"name": "fno", "factorization": "Tucker"}).factorization == "Tucker"
    for modes in ([8], [8, 16]):
        assert model_config({"name": "sfno", "n_modes": modes}).n_modes == modes
    for grid in ("equiangular", "legendre-gauss"):
        assert model_config({"name": "sfno", "sht_grid": grid}).sht_grid == grid


def test_an_n_modes_that_fits_no_axis_is_refused_in_one_sentence() -> None:
    with pytest.raises(ValueError) as error:
        fno(NetSpec(("u",), 1, 1, (), Grid.uniform("periodic", (32,))), n_modes=[8, 8])
    assert str(error.value) == ("model.n_modes has 2 entries but the data has 1 spatial dims (model fno: give one "
                                "entry, or one per axis)")


def test_the_fno_module_built_directly_refuses_an_n_modes_that_fits_no_axis_in_the_same_sentence() -> None:
    """`ConditionedFNO` built without `build_model`'s check names its model in the refusal all the same."""
    from baselines.fno import ConditionedFNO, FNOConfig

    with pytest.raises(ValueError) as error:
        ConditionedFNO(NetSpec(("u",), 1, 1, (), Grid.uniform("periodic", (32, 32))), FNOConfig(n_modes=[8, 8, 8]))
    assert str(error.value) == ("model.n_modes has 3 entries but the data has 2 spatial dims (model fno: give one "
                                "entry, or one per axis)")
