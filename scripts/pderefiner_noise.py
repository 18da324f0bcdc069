"""PDE-Refiner's noise-to-signal ratio per refinement step, per dataset and field (the table in docs/models.md).

Refinement step k adds noise of std `sigma_k = sigma_min ** (k / K)` to the label, the scaled difference of one
model step. What that noise does depends on how large the label is, so per field this prints, from the train split
of each dataset given:

* `std`: the field's train std (the normaliser's), and `rms_du`: the root mean square of `u(t + 1) - u(t)` over
  every pair of frames one model step (`frame_stride` stored frames) apart, in the data's own units;
* the label's rms for `objective.target=raw_difference` (`rms_du / scale`, the scale in data units, as PDE-Refiner's
  public code has it) and for `objective.target=difference` (`rms_du / (scale * std)`, the scale in units of std);
* `sigma_k / rms(label)` for k = 1..K under each.

Usage: python scripts/pderefiner_noise.py --root DATA ks-small ks_visc-small smoke-small ...
       (each name a dataset directory under DATA, as `pdebench-generate pde=<pde> preset=<preset> root=DATA` writes)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from baselines.pderefiner import DEFAULT_SIGMA_MIN
from pdebench.data.normalization import compute_train_statistics
from pdebench.data.reader import TrajectoryFile

KS_SCALE = 0.3  # the public code's difference weight on KS (objective.target_scale in conf/objective/pderefiner.yaml)


def step_rms(train: TrajectoryFile, frame_stride: int) -> np.ndarray:
    """Per field, the rms of `u(t + frame_stride) - u(t)` over every trajectory, start frame and grid point."""
    total = np.zeros(len(train.field_names))
    count = 0
    for traj in range(train.n_traj):
        frames = train.read_window(traj, 0, train.n_frames).astype(np.float64)  # [C, T, *space]
        diff = (frames[:, frame_stride:] - frames[:, :-frame_stride]).reshape(len(total), -1)
        total += (diff**2).sum(axis=1)
        count += diff.shape[1]
    return np.sqrt(total / count)


def dataset_rows(directory: Path, scale: float, sigmas: list[float]) -> list[dict[str, object]]:
    """One row per field of the dataset in `directory`: its std, step rms and both noise-to-signal ratios."""
    manifest = json.loads((directory / "manifest.json").read_text())
    frame_stride = int(manifest["config"]["benchmark"]["frame_stride"])
    train = TrajectoryFile(directory / "train.h5")
    stds = compute_train_statistics(train)["field_std"]
    rows = []
    for name, std, rms in zip(train.field_names, stds, step_rms(train, frame_stride), strict=True):
        raw, standardised = rms / scale, rms / (scale * std)
        rows.append({"dataset": directory.name, "field": name, "frame_stride": frame_stride, "std": std,
                     "rms_du": rms, "raw": [s / raw for s in sigmas], "standardised": [s / standardised
                                                                              for s in sigmas]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="+", help="dataset directories under --root (e.g. ks-small)")
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--scale", type=float, default=KS_SCALE)
    parser.add_argument("--sigma-min", type=float, default=DEFAULT_SIGMA_MIN)
    parser.add_argument("--steps", type=int, default=3, help="K, the number of refinement steps")
    args = parser.parse_args()
    sigmas = [args.sigma_min ** (k / args.steps) for k in range(1, args.steps + 1)]
    print(f"scale {args.scale}, sigma_k = {', '.join(f'{s:.3g}' for s in sigmas)} (k = 1..{args.steps})")
    steps = " / ".join(str(k) for k in range(1, args.steps + 1))
    print(f"| dataset | field | train std | rms du | raw_difference, k = {steps} | difference, k = {steps} |")
    print("|---|---|---|---|---|---|")
    for name in args.datasets:
        for row in dataset_rows(args.root / name, args.scale, sigmas):
            raw = " / ".join(f"{r:.2e}" for r in row["raw"])  # type: ignore[attr-defined]
            std_units = " / ".join(f"{r:.2e}" for r in row["standardised"])  # type: ignore[attr-defined]
            print(f"| {row['dataset']} | {row['field']} | {row['std']:.4g} | {row['rms_du']:.4g} | {raw} | "
                  f"{std_units} |")


if __name__ == "__main__":
    main()
