"""Rollout evaluation: scoring a Stepper on a test split step by step, reducing the per-step metrics to a summary
with intervals, and the result records the leaderboard reads.

Names are imported on first use (`pdebench.exports`): the leaderboard imports the result-record modules of this
package and must not import the models through `evaluation`.
"""

from pdebench.exports import lazy_exports

# public name -> the module of this package that defines it
_HOMES = {
    # evaluation runs (what `pdebench-evaluate` calls)
    "evaluate_all": "pdebench.rollout.evaluation",
    "evaluate": "pdebench.rollout.evaluation",
    "evaluate_config": "pdebench.rollout.config",
    "Result": "pdebench.rollout.evaluation",
    # scoring a Stepper on trajectories, and the summary
    "score": "pdebench.rollout.scoring",
    "summarize": "pdebench.rollout.scoring",
    "ScoringSpec": "pdebench.rollout.scoring",
    "Scores": "pdebench.rollout.scoring",
    "RolloutSample": "pdebench.rollout.scoring",
    # per-step metrics and their reductions
    "step_errors": "pdebench.rollout.step_metrics",
    "energy": "pdebench.rollout.step_metrics",
    "invariant": "pdebench.rollout.step_metrics",
    "ensemble_scores": "pdebench.rollout.step_metrics",
    "summarize_rollout": "pdebench.rollout.reductions",
    "bootstrap_intervals": "pdebench.rollout.reductions",
    "high_correlation_time": "pdebench.rollout.reductions",
    "geometric_mean_over_steps": "pdebench.rollout.reductions",
    "GridSpectrum": "pdebench.rollout.spectra",
    # cost against accuracy
    "FrontierPoint": "pdebench.rollout.frontier",
    "pareto_front": "pdebench.rollout.frontier",
    "speedup_at_equal_accuracy": "pdebench.rollout.frontier",
    "place_on_frontier": "pdebench.rollout.frontier",
    "RolloutKind": "pdebench.rollout.frontier",
    "rollout_kind": "pdebench.rollout.frontier",
    # result records and their metric keys
    "ResultRecord": "pdebench.rollout.record",
    "read_record": "pdebench.rollout.results",
    "MetricKey": "pdebench.rollout.keys",
    "format_key": "pdebench.rollout.keys",
    "parse_key": "pdebench.rollout.keys",
    "ResultError": "pdebench.rollout.result_content",
    "check_content": "pdebench.rollout.result_content",
    "read_result": "pdebench.rollout.results",
    "write_result": "pdebench.rollout.results",
}

__all__ = sorted(_HOMES)
__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
