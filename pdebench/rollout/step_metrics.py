"""Per-step rollout metrics: one predicted frame against its reference, tensors in and tensors out, in float64.

Conventions used throughout:

* Every error is defined per trajectory and per channel of one step; spatial means come first (weighted by the
  grid's quadrature weights where given), and averages over channels, trajectories and steps happen later, in
  `pdebench.rollout.reductions`.
* A non-finite prediction is a failed prediction: its errors are ``inf`` and its correlation is 0 (below every
  threshold). Nothing here raises because of NaN/inf in a prediction.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

ERROR_METRICS = ("mse", "rmse", "nrmse", "vrmse")
"""Metrics where lower is better; a non-finite prediction scores ``inf``."""

STEP_METRICS = (*ERROR_METRICS, "corr")
"""Every name returned by :func:`step_errors`."""


def _flatten_space(x: Tensor, name: str) -> Tensor:
    if x.dim() < 3:
        raise ValueError(f"{name} must have shape [B, C, *space] (>= 1 space axis), got {tuple(x.shape)}")
    return x.detach().reshape(x.shape[0], x.shape[1], -1).to(torch.float64)


def step_errors(
    pred: Tensor, target: Tensor, eps: float = 1e-7, weights: Tensor | None = None
) -> dict[str, Tensor]:
    """Errors of one predicted frame against the reference, per trajectory and channel.

    Args:
        pred, target: ``[B, C, *space]`` (1-D or 2-D space; any number of space axes works).
        eps: guard of the denominators, *relative* to each one's own scale (a factor ``1 + eps``, below), so a
            field is scored the same in any units: a perfect prediction of a field of spatial std 1e-3 has ``corr``
            ``1 / (1 + eps)`` and ``vrmse`` 0 (an absolute 1e-7 would give it ``corr`` 0.909).
        weights: optional non-negative quadrature weights of shape ``space`` (the grid's, `Grid.weights`). They
            are normalised to mean 1, so uniform weights reproduce the unweighted definitions exactly. ``None``
            means uniform.

    Returns:
        name -> ``[B, C]`` float64 tensor, with ``d = p - y``, ``mean`` the (weighted) mean over space, and the
        target's spatial variance ``var(y) = mean((y - mean(y))^2)`` and mean square ``mean(y^2)``:

        * ``mse = mean(d^2)``, ``rmse = sqrt(mse)``;
        * ``nrmse = sqrt(mse / ((1 + eps) mean(y^2)))`` (= ``||d||_2 / ||y||_2`` up to the guard);
        * ``vrmse = sqrt(mse / ((1 + eps) var(y)))``, the population variance, so predicting the spatial mean of
          ``y`` scores ``1 / sqrt(1 + eps)``; The Well's VRMSE is ``sqrt(mse / (var_s(y) + 1e-7))`` with the
          sample variance ``var_s = n / (n - 1) var`` of the unweighted field and an absolute 1e-7;
        * ``corr = cov(p, y) / ((1 + eps) std(p) std(y))``, the centred Pearson correlation over space, clipped
          to [-1, 1]; a perfect prediction scores ``1 / (1 + eps)``.

        Where the denominator's scale is 0 (``var(y) = 0`` or ``var(p) = 0``: a field constant over space;
        ``mean(y^2) = 0``: an all-zero target) the ratio has no scale to measure by: ``nrmse``/``vrmse`` are 0 for
        an exact prediction and ``inf`` otherwise, ``corr`` is 0 (below every threshold). Each field is centred about
        its own first value first, so a constant field has a variance of exactly 0. Where a prediction has any
        non-finite value in a (trajectory, channel), the errors are ``inf`` and ``corr`` is 0; a correlation that is
        otherwise not finite (overflow) is 0 too.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    p = _flatten_space(pred, "pred")
    y = _flatten_space(target, "target").to(p.device)
    if weights is None:
        w = torch.ones(p.shape[-1], dtype=torch.float64, device=p.device)
    else:
        if tuple(weights.shape) != tuple(pred.shape[2:]):
            raise ValueError(
                f"weights must have the space shape {tuple(pred.shape[2:])}, got {tuple(weights.shape)}"
            )
        w = weights.detach().reshape(-1).to(device=p.device, dtype=torch.float64)
        if not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or float(w.sum()) <= 0:
            raise ValueError("weights must be finite, non-negative and not all zero")
        w = w / w.mean()

    def wmean(x: Tensor) -> Tensor:
        return (x * w).mean(dim=-1)

    d = p - y
    mse = wmean(d * d)
    rmse = torch.sqrt(mse)
    nrmse = _scaled_root(mse, (1.0 + eps) * wmean(y * y))
    y_c, p_c = _centred(y, wmean), _centred(p, wmean)
    var_y, var_p = wmean(y_c * y_c), wmean(p_c * p_c)
    vrmse = _scaled_root(mse, (1.0 + eps) * var_y)
    scale = torch.sqrt(var_p) * torch.sqrt(var_y)
    corr = wmean(p_c * y_c) / ((1.0 + eps) * torch.where(scale > 0, scale, torch.ones_like(scale)))
    corr = torch.where(scale > 0, corr, torch.zeros_like(corr))

    bad = ~torch.isfinite(p).all(dim=-1)
    inf = torch.full_like(mse, math.inf)
    out = {name: torch.where(bad, inf, value) for name, value in
           (("mse", mse), ("rmse", rmse), ("nrmse", nrmse), ("vrmse", vrmse))}
    corr = torch.where(bad | ~torch.isfinite(corr), torch.zeros_like(corr), corr)
    out["corr"] = corr.clamp(-1.0, 1.0)
    return out


def _centred(x: Tensor, wmean: Callable[[Tensor], Tensor]) -> Tensor:
    """`x [B, C, n]` minus its (weighted) spatial mean, taken about its first value: a field constant over space
    comes out exactly zero (a mean taken directly rounds, leaving a variance of ~1e-32 x^2 that a ratio would
    amplify), and a large offset does not cost digits of the variance."""
    shifted = x - x[..., :1]
    return shifted - wmean(shifted).unsqueeze(-1)


def _scaled_root(mse: Tensor, scale: Tensor) -> Tensor:
    """`sqrt(mse / scale)`; where `scale` is 0: 0 for `mse` 0, else inf (an error with nothing to measure it by)."""
    ratio = torch.sqrt(mse / torch.where(scale > 0, scale, torch.ones_like(scale)))
    return torch.where(scale > 0, ratio, torch.where(mse > 0, torch.full_like(mse, math.inf), torch.zeros_like(mse)))


def unstable(pred: Tensor, bound: Tensor | float) -> Tensor:
    """Flag blown-up predictions.

    Args:
        pred: ``[B, C, *space]`` predicted frame.
        bound: ``[B]`` (or a scalar) upper bound on ``max |p|``, e.g. a multiple of the reference's
            maximum absolute value.

    Returns:
        ``[B]`` bool: the prediction has a non-finite value or ``max |p|`` over channels and space
        exceeds ``bound``.
    """
    if pred.dim() < 2:
        raise ValueError(f"pred must have shape [B, C, *space], got {tuple(pred.shape)}")
    flat = pred.detach().reshape(pred.shape[0], -1).to(torch.float64)
    nonfinite = ~torch.isfinite(flat).all(dim=-1)
    max_abs = flat.abs().nan_to_num(nan=math.inf).amax(dim=-1)
    b = torch.as_tensor(bound, dtype=torch.float64, device=flat.device).detach().reshape(-1)
    return nonfinite | (max_abs > b)


def _space_weights(weights: Tensor | None, space: tuple[int, ...], device: torch.device) -> Tensor:
    """Flattened float64 quadrature weights normalised to mean 1 (all ones when `weights` is None)."""
    n = int(np.prod(space))
    if weights is None:
        return torch.ones(n, dtype=torch.float64, device=device)
    if tuple(weights.shape) != tuple(space):
        raise ValueError(f"weights must have the space shape {tuple(space)}, got {tuple(weights.shape)}")
    w = weights.detach().reshape(-1).to(device=device, dtype=torch.float64)
    return w / w.mean()


def energy(x: Tensor, weights: Tensor | None = None) -> Tensor:
    """Spatial energy of a frame: `[B, C, *space] -> [B]`, the weighted mean of `x^2` over space, summed over channels.

    A frame with a non-finite value has energy ``inf``. Units: the fields' units squared.
    """
    flat = _flatten_space(x, "x")
    w = _space_weights(weights, tuple(x.shape[2:]), flat.device)
    e = (flat * flat * w).mean(dim=-1).sum(dim=-1)
    return torch.where(torch.isfinite(flat).all(dim=-1).all(dim=-1), e, torch.full_like(e, math.inf))


def unstable_energy(pred: Tensor, bound: Tensor | float, weights: Tensor | None = None) -> Tensor:
    """Flag blown-up predictions by an energy bound.

    Args:
        pred: ``[B, C, *space]`` predicted frame.
        bound: ``[B]`` (or a scalar) upper bound on :func:`energy`, e.g. a factor times the largest energy of the
            trajectory's stored frames. For a bounded chaotic system (KS, Kolmogorov flow) the energy stays within
            a band, so this bound binds, while ``max |p|`` below twice the largest stored value is met by noise of
            many times the true energy.
        weights: quadrature weights ``[*space]`` (None: uniform).

    Returns:
        ``[B]`` bool: non-finite, or energy above ``bound``.
    """
    e = energy(pred, weights)
    b = torch.as_tensor(bound, dtype=torch.float64, device=e.device).detach().reshape(-1)
    return ~torch.isfinite(e) | (e > b)


INVARIANTS = ("mean", "mass")
"""Conserved quantities the evaluator knows; both are the weighted spatial mean of each conserved field (``mass``
is the mean density times the domain measure, a constant factor that drops out of a drift measured in mean units)."""


def invariant(x: Tensor, kind: str, weights: Tensor | None = None) -> Tensor:
    """The conserved quantity `kind` of a frame, per trajectory and channel: `[B, C, *space] -> [B, C]` float64."""
    if kind not in INVARIANTS:
        raise ValueError(f"unknown conserved quantity {kind!r}; known: {', '.join(INVARIANTS)}")
    flat = _flatten_space(x, "x")
    w = _space_weights(weights, tuple(x.shape[2:]), flat.device)
    return (flat * w).mean(dim=-1)


def ensemble_scores(samples: Tensor, target: Tensor, weights: Tensor | None = None) -> dict[str, Tensor]:
    """Probabilistic scores of an ensemble forecast of one frame, per trajectory and channel.

    Args:
        samples: ``[M, B, C, *space]``, M >= 2 members; target: ``[B, C, *space]``.
        weights: quadrature weights ``[*space]``; every spatial mean is weighted.

    Returns:
        name -> ``[B, C]`` float64:

        * ``crps``: spatial mean of the ensemble CRPS at each point,
          ``mean_i |x_i - y| - (1 / (2 M^2)) sum_{i,j} |x_i - x_j|`` (the plain, not the "fair", estimator);
        * ``spread2``: spatial mean of the unbiased ensemble variance (divisor M - 1);
        * ``ens_mse``: spatial mean of the squared error of the ensemble mean.

        The spread-skill ratio of a step is ``sqrt((M + 1) / M * mean(spread2) / mean(ens_mse))`` over trajectories
        (1 for a statistically consistent ensemble; see `pdebench.rollout.reductions.spread_skill_ratio`). A member
        with a non-finite value makes every score of its (trajectory, channel) ``inf``.
    """
    if samples.dim() != target.dim() + 1 or samples.shape[1:] != target.shape or samples.shape[0] < 2:
        raise ValueError(f"samples must be [M >= 2, *target.shape] for target {tuple(target.shape)}, "
                         f"got {tuple(samples.shape)}")
    m = samples.shape[0]
    x = samples.detach().reshape(m, samples.shape[1], samples.shape[2], -1).to(torch.float64)
    y = target.detach().reshape(target.shape[0], target.shape[1], -1).to(device=x.device, dtype=torch.float64)
    w = _space_weights(weights, tuple(target.shape[2:]), x.device)
    skill = (x - y).abs().mean(dim=0)
    spread = torch.zeros_like(skill)
    for i in range(m):  # sum_{i,j} |x_i - x_j| without an [M, M, ...] temporary
        spread += (x - x[i]).abs().sum(dim=0)
    crps = ((skill - spread / (2 * m * m)) * w).mean(dim=-1)
    var = x.var(dim=0, unbiased=True)
    spread2 = (var * w).mean(dim=-1)
    ens_mse = (((x.mean(dim=0) - y) ** 2) * w).mean(dim=-1)
    bad = ~torch.isfinite(x).all(dim=-1).all(dim=0)
    inf = torch.full_like(crps, math.inf)
    return {name: torch.where(bad, inf, v) for name, v in (("crps", crps), ("spread2", spread2), ("ens_mse", ens_mse))}
