"""Forecasting, shared by training and evaluation: the Stepper protocol, targets, the Forecaster and rollouts."""

from pdebench.forecast.forecaster import Forecaster
from pdebench.forecast.rollout import rollout
from pdebench.forecast.stepper import EnsembleStepper, Stepper
from pdebench.forecast.targets import TARGETS, DifferenceTarget, StateTarget, Target, make_target

__all__ = ["TARGETS", "DifferenceTarget", "EnsembleStepper", "Forecaster", "StateTarget", "Stepper", "Target",
           "make_target", "rollout"]
