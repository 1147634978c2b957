"""Training and evaluation of multitask node classifiers.

:class:`Trainer` trains one model; :func:`train_run` runs a whole :class:`TrainConfig` into a
resumable run folder (``graphtag train``) and :func:`train_groups` trains one model (or head)
per task group.
"""

import importlib as _importlib
from typing import TYPE_CHECKING, Any

from graphtag.training.losses import masked_bce_per_task
from graphtag.training.metrics import constant_predictor_f1, multitask_scores
from graphtag.training.trainer import Trainer, seed_everything

if TYPE_CHECKING:
    from graphtag.training.grouped import train_groups
    from graphtag.training.run import TrainConfig, build_trainer, train_run

# The run-level entry points import graphtag.datasets and graphtag.models: loaded on first use.
_LAZY = {"TrainConfig": "run", "build_trainer": "run", "train_run": "run",
         "train_groups": "grouped"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(_importlib.import_module(f"graphtag.training.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "TrainConfig",
    "Trainer",
    "build_trainer",
    "constant_predictor_f1",
    "masked_bce_per_task",
    "multitask_scores",
    "seed_everything",
    "train_groups",
    "train_run",
]
