"""Forecasting, shared by training and evaluation: the Stepper protocol, targets, the Forecaster and rollouts."""

from pdebench.forecast.forecaster import Forecaster
from pdebench.forecast.rollout import rollout
from pdebench.forecast.rollout_state import rollout_scope
from pdebench.forecast.stepper import EnsembleStepper, Stepper
from pdebench.forecast.targets import TARGETS, DifferenceTarget, RawDifferenceTarget, StateTarget, Target, make_target

__all__ = ["TARGETS", "DifferenceTarget", "EnsembleStepper", "Forecaster", "RawDifferenceTarget", "StateTarget",
           "Stepper", "Target", "make_target", "rollout", "rollout_scope"]
