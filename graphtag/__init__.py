"""graphtag: multitask learning on graphs with hundreds of node-labeling tasks.

The package is split by stage: :mod:`graphtag.datasets` (graphs and tasks),
:mod:`graphtag.models` (multitask GNNs, SIGN, task heads), :mod:`graphtag.training`
(minibatch training and evaluation), :mod:`graphtag.optim` (how per-task losses combine),
:mod:`graphtag.projection` (sparse random projections), :mod:`graphtag.gradients`
(projected per-sample gradients), :mod:`graphtag.affinity` (Grad-TAG subset regressions and
task affinity, and the true affinity :class:`TrueAffinity` it estimates),
:mod:`graphtag.grouping` (SDP grouping, baselines, DMTG, TAG),
:mod:`graphtag.pipeline` (the :class:`GradTAG` estimator and the resumable ``graphtag run``)
and :mod:`graphtag.cli`.
"""

import importlib as _importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graphtag.affinity import TrueAffinity
    from graphtag.config import RunConfig, TrainConfig
    from graphtag.datasets import (
        MultiLabelMat,
        SNAPCommunities,
        load_dataset,
        synthetic_communities,
    )
    from graphtag.models import SIGN, GroupedHeads, MultiLabelHead, MultitaskGNN, build_model
    from graphtag.optim import EqualWeighting, LossCombiner, make_combiner
    from graphtag.pipeline import GradTAG, run_pipeline
    from graphtag.training import (
        Trainer,
        multitask_scores,
        seed_everything,
        train_groups,
        train_run,
    )

# Names load their module on first use (PEP 562), so `import graphtag` and commands that need
# no model (`graphtag datasets info --data FILE`) do not pay for importing torch and PyG.
_LAZY = {
    "TrueAffinity": "graphtag.affinity",
    "MultiLabelMat": "graphtag.datasets", "SNAPCommunities": "graphtag.datasets",
    "load_dataset": "graphtag.datasets", "synthetic_communities": "graphtag.datasets",
    "SIGN": "graphtag.models", "GroupedHeads": "graphtag.models",
    "MultiLabelHead": "graphtag.models", "MultitaskGNN": "graphtag.models",
    "build_model": "graphtag.models",
    "EqualWeighting": "graphtag.optim", "LossCombiner": "graphtag.optim",
    "make_combiner": "graphtag.optim",
    "GradTAG": "graphtag.pipeline", "run_pipeline": "graphtag.pipeline",
    "RunConfig": "graphtag.config", "TrainConfig": "graphtag.config",
    "Trainer": "graphtag.training", "multitask_scores": "graphtag.training",
    "seed_everything": "graphtag.training", "train_groups": "graphtag.training",
    "train_run": "graphtag.training",
}


_SUBPACKAGES = {"affinity", "cli", "config", "datasets", "distributed", "gradients", "grouping",
                "models", "optim", "pipeline", "projection", "training"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(_importlib.import_module(_LAZY[name]), name)
    if name in _SUBPACKAGES:  # `import graphtag; graphtag.models...` as before
        return _importlib.import_module(f"graphtag.{name}")
    raise AttributeError(f"module 'graphtag' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | _SUBPACKAGES)


__version__ = "0.1.0"

__all__ = [
    "SIGN",
    "EqualWeighting",
    "GradTAG",
    "GroupedHeads",
    "LossCombiner",
    "MultiLabelHead",
    "MultiLabelMat",
    "MultitaskGNN",
    "RunConfig",
    "SNAPCommunities",
    "TrainConfig",
    "Trainer",
    "TrueAffinity",
    "__version__",
    "build_model",
    "load_dataset",
    "make_combiner",
    "multitask_scores",
    "run_pipeline",
    "seed_everything",
    "synthetic_communities",
    "train_groups",
    "train_run",
]
