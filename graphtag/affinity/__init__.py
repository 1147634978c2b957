"""Grad-TAG task affinity: sampled task subsets, batched linearised fits, affinity matrix."""

from graphtag.affinity.regression import fit_subsets, linearized_logits
from graphtag.affinity.scores import affinity_matrix, task_scores
from graphtag.affinity.subsets import PAIR_DRAWS, sample_subsets, subset_coverage, subset_plan

__all__ = [
    "PAIR_DRAWS",
    "affinity_matrix",
    "fit_subsets",
    "linearized_logits",
    "sample_subsets",
    "subset_coverage",
    "subset_plan",
    "task_scores",
]
