"""Gradient-combination methods for multitask training (plugged into the Trainer).

A combiner turns the vector of per-task losses into gradients on the model. Beyond the plain
sum (:class:`EqualWeighting`), the methods here read the ``K x K`` Gram matrix of the task
gradients and return a weight vector ``w``; the shared update is ``w^T J`` (see
:mod:`graphtag.optim.weighting`). Pick one by name with :func:`make_combiner`.
"""

from graphtag.optim.base import EqualWeighting, LossCombiner
from graphtag.optim.fairgrad import FairGrad, fairgrad_weights
from graphtag.optim.gradproj import GradProj, gradproj_weights
from graphtag.optim.jacobian import gram_matrix, task_jacobian
from graphtag.optim.mtgd import MTGD, mtgd_step, transfer_matrix
from graphtag.optim.pcgrad import PCGrad, pcgrad_coefficients, pcgrad_order
from graphtag.optim.registry import COMBINERS, make_combiner
from graphtag.optim.weighting import GramCombiner

__all__ = [
    "COMBINERS",
    "MTGD",
    "EqualWeighting",
    "FairGrad",
    "GradProj",
    "GramCombiner",
    "LossCombiner",
    "PCGrad",
    "fairgrad_weights",
    "gradproj_weights",
    "gram_matrix",
    "make_combiner",
    "mtgd_step",
    "pcgrad_coefficients",
    "pcgrad_order",
    "task_jacobian",
    "transfer_matrix",
]
