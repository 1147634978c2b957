"""Per-sample gradients of each task's logit, projected, and their on-disk store."""

from graphtag.gradients.persample import (
    GradientModel,
    kronecker_projector,
    parameter_layout,
    per_sample_gradients_loop,
)
from graphtag.gradients.store import (
    GradientStore,
    StoreMismatchError,
    collect_gradients,
    model_fingerprint,
)
from graphtag.gradients.trees import ComputationTrees, csr_from_edge_index, sample_trees

__all__ = [
    "ComputationTrees",
    "GradientModel",
    "GradientStore",
    "StoreMismatchError",
    "collect_gradients",
    "csr_from_edge_index",
    "kronecker_projector",
    "model_fingerprint",
    "parameter_layout",
    "per_sample_gradients_loop",
    "sample_trees",
]
