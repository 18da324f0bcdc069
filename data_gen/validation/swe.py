"""What an `swe` dataset holds: its jets' speeds against the drawn ones, how unsteady the first stored frame is, and
the kinetic-energy budget over the stored frames (the figures of `docs/pde_swe.md`).

Per trajectory, from the stored fields and the stored jet records (`data_gen.swe.JET_PARAMETERS`):

- peak jet speed: the largest wind speed `|u|` within each jet's band `c - w < lat < c + w`, drawn (`u_max`), held
  by the truncated grid at the start (the balanced initial jet, before any step), and at frame 0 (after the
  spin-up) both at the stored grid points and between them (the truncated field on a 4x finer grid);
- unsteadiness: the non-zonal share of the kinetic energy (`data_gen.swe.nonzonal_energy_share`) at frame 0, over
  the whole sphere and within each jet's band, and at the last frame; the criterion is the whole-sphere share at
  frame 0 >= `MIN_FRAME0_NONZONAL_SHARE`; beside it the relative change of the wind over the first frame interval
  (what persistence misses in one step);
- kinetic energy `integral h |u|^2 / 2 dA` per unit mass at frame 0 and its relative change over the stored frames,
  beside the change of the total energy (which the potential energy of the 10 km layer dominates) and the energy
  lost (to the hyperdiffusion, the only loss) as a share of the kinetic energy at frame 0.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from data_gen.swe import (
    SphericalShallowWater,
    SWEGenerator,
    balanced_state,
    gaussian_latitudes,
    jet_initial_grids,
    jets_from_parameters,
    kinetic_energy,
    nonzonal_energy_share,
)
from data_gen.validation import ValidationInput, ValidationTable, register_validator

__all__ = ["MIN_FRAME0_NONZONAL_SHARE", "validate_swe"]

# The unsteadiness criterion of a trajectory: the non-zonal share of its kinetic energy at frame 0. A jet whose
# instability has grown to 5% is meandering visibly and rolls up within a day; below ~1e-3 the flow is the zonal
# jet, which persistence forecasts almost exactly.
MIN_FRAME0_NONZONAL_SHARE = 0.05
# Days after frame 0 at which the kinetic-energy table reports the change (those the stored frames reach).
KE_DAYS = (5.0, 10.0)


def _weighted_rms(x: np.ndarray, weights: np.ndarray) -> float:
    """Area-weighted root mean square of `[..., n_lat, n_lon]` (Gauss weights `[n_lat]`)."""
    return float(math.sqrt((np.square(x).mean(axis=-1) * weights).sum() / weights.sum() / np.prod(x.shape[:-2])))


def _trajectory(generator: SWEGenerator, solver: SphericalShallowWater, fields: dict[str, np.ndarray],
                jets: dict[str, np.ndarray], hours: np.ndarray) -> dict[str, Any]:
    """The figures of one trajectory: fields `[n_frames, n_lat, n_lon]` float32, `hours` `[n_frames]` since frame 0."""
    c = generator.config
    lat, weights = gaussian_latitudes(c.n_lat)
    h, u, v = (fields[n].astype(np.float64) for n in ("height", "u", "v"))
    latitude, half_width = jets["latitude"], jets["half_width"]
    bands = [(lat > lc - w) & (lat < lc + w) for lc, w in zip(latitude, half_width, strict=True)]
    # The balanced jets as the truncated grid holds them at the start (the bump is in the height only).
    no_bump = {**jets, "bump_height": np.zeros_like(jets["bump_height"])}
    zonal, bump = jet_initial_grids(no_bump, solver.latitudes.cpu().numpy(), solver.n_lon)
    start = balanced_state(solver, torch.from_numpy(zonal)[None], torch.from_numpy(bump)[None], c.mean_height)
    frame0 = solver.from_grid(torch.from_numpy(h[:1]), torch.from_numpy(np.stack([u[:1], v[:1]], axis=1)))
    c_t, w_t = torch.from_numpy(latitude)[None], torch.from_numpy(half_width)[None]
    speed0 = np.sqrt(u[0] ** 2 + v[0] ** 2)
    ke = kinetic_energy(h, u, v, weights, c.radius)
    mass = (h.mean(axis=-1) * weights).sum(axis=-1) * 2 * math.pi * c.radius**2
    total = ke + 0.5 * c.gravity * (np.square(h).mean(axis=-1) * weights).sum(axis=-1) * 2 * math.pi * c.radius**2
    wind = np.stack([u, v], axis=1)  # [n_frames, 2, n_lat, n_lon]
    change = (_weighted_rms(wind[1] - wind[0], weights) / _weighted_rms(wind[0], weights)
              if len(wind) > 1 else None)
    ke_change = {}
    for day in KE_DAYS:
        k = int(np.argmin(np.abs(hours - 24 * day)))
        ke_change[day] = float(ke[k] / ke[0] - 1) if abs(hours[k] - 24 * day) < 1e-6 else None
    return {
        "drawn": jets["speed"],
        "held": solver.jet_peak_speeds(start, c_t, w_t)[0].cpu().numpy(),
        "frame0_grid": np.array([speed0[band].max() for band in bands]),
        "frame0_fine": solver.jet_peak_speeds(frame0, c_t, w_t)[0].cpu().numpy(),
        "share0": float(nonzonal_energy_share(u[0], v[0], weights)),
        "share0_bands": [float(nonzonal_energy_share(u[0][band], v[0][band], weights[band])) for band in bands],
        "share_last": float(nonzonal_energy_share(u[-1], v[-1], weights)),
        "change": change,
        "ke_per_mass0": float(ke[0] / mass[0]),
        "ke_change": ke_change,
        "ke_change_last": float(ke[-1] / ke[0] - 1),
        "total_change_last": float(total[-1] / total[0] - 1),
        "dissipated_last": float((total[0] - total[-1]) / ke[0]),
        "ke_share_of_total": float(ke[0] / total[0]),
        "days": float(hours[-1] / 24),
    }


@register_validator("swe")
def validate_swe(inputs: ValidationInput) -> list[ValidationTable]:
    """Jet speeds, frame-0 unsteadiness and the kinetic-energy budget of every trajectory of `inputs`' files."""
    generator = inputs.generator
    if not isinstance(generator, SWEGenerator):
        raise TypeError(f"the swe validator needs files the swe generator wrote, got {type(generator).__name__}")
    solver = generator.solver("cpu")
    jet_rows, unsteady_rows, energy_rows = [], [], []
    summary: dict[str, list[float]] = {"drawn speed (m/s)": [], "held at start / drawn": [], "frame 0 / drawn": [],
                                       "non-zonal share at frame 0": [], "KE change to last frame": [],
                                       "energy lost / KE at frame 0": []}
    for split in inputs.files:
        with inputs.open(split) as f:
            params, seeds, intervals = f.parameters(), f.seeds(), f.frame_intervals()
            for i in range(len(seeds)):  # one trajectory in memory at a time
                jets = jets_from_parameters(params, i)
                fields = {name: f.read_field(name, i) for name in ("height", "u", "v")}
                r = _trajectory(generator, solver, fields, jets, np.arange(f.n_frames) * float(intervals[i]))
                key = (split, i, int(seeds[i]))
                for k in range(len(r["drawn"])):
                    jet_rows.append((*key, k + 1, float(params[f"jet{k + 1}_latitude"][i]),
                                     float(params[f"jet{k + 1}_half_width"][i]),
                                     float(r["drawn"][k]), float(r["held"][k]), float(r["frame0_grid"][k]),
                                     float(r["frame0_fine"][k]), float(r["frame0_fine"][k] / r["drawn"][k])))
                    summary["drawn speed (m/s)"].append(float(r["drawn"][k]))
                    summary["held at start / drawn"].append(float(r["held"][k] / r["drawn"][k]))
                    summary["frame 0 / drawn"].append(float(r["frame0_fine"][k] / r["drawn"][k]))
                bands = r["share0_bands"] + [None] * (2 - len(r["share0_bands"]))
                unsteady_rows.append((*key, len(r["drawn"]), r["share0"], *bands, r["share_last"], r["change"],
                                      "yes" if r["share0"] >= MIN_FRAME0_NONZONAL_SHARE else "NO"))
                summary["non-zonal share at frame 0"].append(r["share0"])
                energy_rows.append((*key, r["ke_per_mass0"], r["ke_share_of_total"], *r["ke_change"].values(),
                                    r["ke_change_last"], r["days"], r["total_change_last"], r["dissipated_last"]))
                summary["KE change to last frame"].append(r["ke_change_last"])
                summary["energy lost / KE at frame 0"].append(r["dissipated_last"])
    c = generator.config
    tables = [
        ValidationTable(
            "Jet peak speeds (m/s): drawn, held by the grid at the start, at frame 0",
            ("split", "traj", "seed", "jet", "lat", "half width", "drawn", "held at start", "frame 0 (grid)",
             "frame 0 (between)", "frame 0 / drawn"),
            jet_rows,
            note=("Largest |u| within each jet's band c - w < lat < c + w. 'held at start': the balanced initial jet "
                  "as the truncated grid holds it (between grid points); 'frame 0': after the "
                  f"{c.spin_up_hours:g} h spin-up, at the stored grid points and between them (4x finer grid). "
                  "By frame 0 the instability has redistributed the jet's momentum, so frame 0 / drawn is not the "
                  "hyperdiffusion criterion (a jet without its bump keeps >= 98% through the spin-up: "
                  "tests/test_swe.py)."),
        ),
        ValidationTable(
            "Unsteadiness: non-zonal share of the kinetic energy",
            ("split", "traj", "seed", "jets", "frame 0", "frame 0 jet1 band", "frame 0 jet2 band", "last frame",
             "wind change over frame 0->1", f">= {MIN_FRAME0_NONZONAL_SHARE:g} at frame 0"),
            unsteady_rows,
            note=("Share of the wind's kinetic energy not in its zonal mean (area-weighted, Gauss weights): 0 for "
                  "a steady zonal jet. Criterion: >= "
                  f"{MIN_FRAME0_NONZONAL_SHARE:g} at frame 0 for every trajectory. 'wind change': area-weighted rms "
                  "of the wind's change over the first frame interval over the rms wind at frame 0."),
        ),
        ValidationTable(
            "Kinetic energy budget over the stored frames",
            ("split", "traj", "seed", "KE per mass at frame 0 (m^2/s^2)", "KE / total energy",
             *(f"KE change to day {d:g}" for d in KE_DAYS), "KE change to last frame", "days stored",
             "total energy change to last frame", "energy lost / KE at frame 0"),
            energy_rows,
            note=("KE = integral of h |u|^2 / 2 dA, per unit mass: divided by the integral of h. Changes are "
                  "relative to frame 0 ('-': not stored that long). The total energy adds g h^2 / 2, which for a "
                  "10 km layer is 100-1000x the kinetic energy ('KE / total energy'), so its change hides the "
                  "kinetic energy's. The total is conserved but for the hyperdiffusion: 'energy lost' is the part "
                  "of the KE change the hyperdiffusion took; the rest went into potential energy."),
        ),
    ]
    rows = [(name, len(a), float(np.min(a)), float(np.median(a)), float(np.max(a))) for name, a in summary.items()]
    tables.append(ValidationTable("Summary", ("quantity", "n", "min", "median", "max"), rows,
                                  note="Over all jets (speeds) or all trajectories (shares, energy) of the files "
                                       "read."))
    return tables
