"""Grad-TAG task affinity: sampled task subsets, batched linearised fits, affinity matrix; and
the true affinity it estimates (:class:`TrueAffinity`: a model trained per task subset)."""

from graphtag.affinity.oracle import ORACLE_MODES, OracleAffinity, TrueAffinity
from graphtag.affinity.regression import fit_subsets, linearized_logits
from graphtag.affinity.scores import affinity_matrix, affinity_stderr, task_scores
from graphtag.affinity.statistics import (
    TaskStatistics,
    centered_statistics,
    fit_subsets_stats,
    subset_lam,
    task_statistics,
)
from graphtag.affinity.subsets import PAIR_DRAWS, sample_subsets, subset_coverage, subset_plan

__all__ = [
    "FIT_METHODS",
    "ORACLE_MODES",
    "PAIR_DRAWS",
    "OracleAffinity",
    "TaskStatistics",
    "TrueAffinity",
    "affinity_matrix",
    "affinity_stderr",
    "centered_statistics",
    "fit_subsets",
    "fit_subsets_stats",
    "linearized_logits",
    "sample_subsets",
    "subset_coverage",
    "subset_lam",
    "subset_plan",
    "task_scores",
    "task_statistics",
]

#: How :class:`~graphtag.pipeline.GradTAG` solves the subset regressions: ``"stats"`` from
#: per-task sufficient statistics (:func:`fit_subsets_stats`), ``"exact"`` by batched Newton to
#: convergence (:func:`fit_subsets`, the reference).
FIT_METHODS = ("stats", "exact")
