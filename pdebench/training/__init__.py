"""Training: one Lightning module for every net, composable objectives, and `fit`, which `pdebench-train` calls.

Names are imported on first use (`pdebench.exports`), like the other packages of the library.
"""

from pdebench.exports import lazy_exports

# public name -> the module of this package that defines it
_HOMES = {
    "train": "pdebench.training.run",
    "fit": "pdebench.training.run",
    "train_config": "pdebench.training.config",
    "SurrogateModule": "pdebench.training.module",
    "TrainingDiverged": "pdebench.training.module",
    "OBJECTIVES": "pdebench.training.objectives",
    "Objective": "pdebench.training.objectives",
    "register_objective": "pdebench.training.objectives",
    "make_objective": "pdebench.training.objectives",
    "window_spec": "pdebench.training.objectives",
}

__all__ = sorted(_HOMES)
__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
