"""graphtag: multitask learning on graphs with hundreds of node-labeling tasks.

The package is split by stage: :mod:`graphtag.datasets` (graphs and tasks),
:mod:`graphtag.models` (multitask GNNs, SIGN, task heads), :mod:`graphtag.training`
(minibatch training and evaluation), :mod:`graphtag.optim` (how per-task losses combine),
:mod:`graphtag.projection` (sparse random projections), :mod:`graphtag.gradients`
(projected per-sample gradients), :mod:`graphtag.affinity` (Grad-TAG subset regressions and
task affinity), :mod:`graphtag.grouping` (SDP grouping, baselines, DMTG, TAG),
:mod:`graphtag.pipeline` (the :class:`GradTAG` estimator and the resumable ``graphtag run``)
and :mod:`graphtag.cli`.
"""

import warnings as _warnings

from graphtag.datasets import (
    MultiLabelMat,
    SNAPCommunities,
    load_dataset,
    synthetic_communities,
)
from graphtag.models import SIGN, GroupedHeads, MultiLabelHead, MultitaskGNN, build_model
from graphtag.optim import EqualWeighting, LossCombiner, make_combiner
from graphtag.pipeline import GradTAG, RunConfig, run_pipeline
from graphtag.training import Trainer, multitask_scores, seed_everything

__version__ = "0.1.0"

# torch-sparse's SpMM goes through torch's CSR tensors, which announce themselves on first use;
# the messages are about torch internals, not about anything a user can act on.
_warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
_warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")

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
    "Trainer",
    "__version__",
    "build_model",
    "load_dataset",
    "make_combiner",
    "multitask_scores",
    "run_pipeline",
    "seed_everything",
    "synthetic_communities",
]
