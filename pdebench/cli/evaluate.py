"""`pdebench-evaluate ckpt=PATH` or `pdebench-evaluate model=persistence data=ks`: long rollouts on the test split."""

from __future__ import annotations

from typing import Any

from pdebench.cli.common import hydra_app, lazy_loader
from pdebench.config import EvaluateConfig
from pdebench.console import significant


def _number(value: float | None, spec: str) -> str:
    """A summary value for the terminal; None (undefined, e.g. after a blow-up) prints as n/a."""
    return "n/a" if value is None else format(value, spec)


def summary_line(result: dict[str, Any], threshold: float) -> str:
    """The line `pdebench-evaluate` prints for one result file's content: its identity, the high-correlation time
    at `threshold` (the first of `rollout.thresholds`) with its interval and ceiling, the one-step nRMSE and the
    throughput, to three significant digits (a slow solver's 0.067 trajectory-steps/s never reads 0)."""
    from pdebench.rollout.keys import MetricKey, format_key, threshold_key

    key = format_key(MetricKey("corr_time", threshold=threshold))
    summary = result["summary"]
    interval = (result.get("intervals") or {}).get(key)
    ci = "" if interval is None else f" [{interval[0]:.2f}, {interval[1]:.2f}]"
    throughput = result["throughput_traj_steps_per_s"]
    return (f"{result['label']} (seed {result['seed']}) on {result['dataset']}: {result['n_trajectories']} "
            f"trajectories x {result['n_steps']} steps; high-correlation time (>{threshold_key(threshold)}) "
            f"{_number(summary.get(key), '.2f')}{ci} of {_number(summary.get('time_ceiling'), '.2f')}, "
            f"one-step nRMSE {_number(summary['one_step_nrmse'], '.3g')}, "
            f"{'n/a' if throughput is None else significant(throughput)} trajectory-steps/s")


@hydra_app("evaluate", lazy_loader("pdebench.rollout.config", "evaluate_config"), zoo_groups=("model",))
def main(cfg: EvaluateConfig) -> None:
    from pdebench.rollout.evaluation import evaluate_all  # the models and solvers: not for `--help`

    for written in evaluate_all(cfg):  # empty on every rank but 0 of a multi-process evaluation
        print(summary_line(written.content, cfg.rollout.thresholds[0]))
        print(f"result written: {written.path}")


if __name__ == "__main__":
    main()
