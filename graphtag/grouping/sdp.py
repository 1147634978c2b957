"""Task grouping by the clustering SDP relaxation (Peng & Wei, 2007).

A grouping of ``n`` tasks into ``k`` groups ``G_1..G_k`` is encoded by the normalised
co-membership matrix ``X = sum_g 1_g 1_g^T / |G_g|``, and the grouping score is

    <A, X> = sum_g (1 / |G_g|) sum_{i, j in G_g} A_ij = sum_g |G_g| * mean affinity in G_g,

i.e. the size-weighted average within-group affinity. Every such ``X`` satisfies ``X ⪰ 0``,
``X >= 0``, ``X 1 = 1`` and ``trace X = k``; relaxing to *all* such matrices gives the SDP

    maximise <A, X>  s.t.  X ⪰ 0,  X >= 0,  X 1 = 1,  trace X = k,

solved here exactly with cvxpy (:func:`sdp_cvxpy`) or, for hundreds of tasks, with a
non-negative low-rank Burer–Monteiro factorisation (:func:`sdp_burer_monteiro`). The relaxed
solution is rounded to ``k`` groups by :func:`round_groups`.

Two useful invariances (both follow from ``1^T X 1 = n`` and ``trace X = k``): adding ``c``
to every entry of ``A`` adds ``c * n`` to the objective, and adding ``c I`` adds ``c * k``.
Neither changes the optimiser, so an affinity of the form ``a 11^T + b I`` (in particular a
constant one) makes every grouping equally good.

The pieces live in modules with one job each: the checks in
:mod:`graphtag.grouping._validation`, the cvxpy solve in :mod:`graphtag.grouping._sdp_cvxpy`,
the Burer–Monteiro solver in :mod:`graphtag.grouping._burer_monteiro` (its augmented Lagrangian
in :mod:`graphtag.grouping._bm_lagrangian`, the feasibility repair in
:mod:`graphtag.grouping._repair`) and the rounding in :mod:`graphtag.grouping.rounding`. This
module keeps the public entry points.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from graphtag.grouping._burer_monteiro import BMResult, sdp_bm_solve, sdp_burer_monteiro
from graphtag.grouping._repair import repair_feasible
from graphtag.grouping._sdp_cvxpy import sdp_cvxpy
from graphtag.grouping._validation import (
    balanced_split,
    grouping_objective,
    is_degenerate_affinity,
    sdp_violation,
    validate_affinity,
)
from graphtag.grouping.rounding import round_groups

__all__ = [
    "BMResult",
    "balanced_split",
    "grouping_objective",
    "is_degenerate_affinity",
    "repair_feasible",
    "round_groups",
    "sdp_bm_solve",
    "sdp_burer_monteiro",
    "sdp_cvxpy",
    "sdp_groups",
    "sdp_violation",
    "validate_affinity",
]

Solver = Literal["auto", "cvxpy", "bm"]

#: ``sdp_groups(solver="auto")`` uses cvxpy up to this many tasks, Burer–Monteiro above.
AUTO_CVXPY_MAX_N = 100


def sdp_groups(A: np.ndarray, k: int, solver: Solver = "auto", seed: int = 0) -> list[list[int]]:
    """Group tasks by the clustering SDP and k-means rounding.

    Parameters
    ----------
    A : array_like
        ``(n, n)`` task affinity (symmetrised internally).
    k : int
        Number of groups.
    solver : {"auto", "cvxpy", "bm"}
        ``"auto"`` uses cvxpy/SCS for ``n <= 100`` and Burer–Monteiro above.
    seed : int
        Seed of the Burer–Monteiro start and of the rounding.

    Returns
    -------
    list of list of int
        Partition of ``range(n)`` into ``k`` non-empty groups (the deterministic balanced split
        if ``A`` is degenerate, see :func:`validate_affinity`).
    """
    A = validate_affinity(A, k)
    n = A.shape[0]
    if is_degenerate_affinity(A):
        return balanced_split(n, k)
    if solver == "auto":
        solver = "cvxpy" if n <= AUTO_CVXPY_MAX_N else "bm"
    if solver == "cvxpy":
        X, _ = sdp_cvxpy(A, k)
    elif solver == "bm":
        X, _ = sdp_burer_monteiro(A, k, seed=seed)
    else:
        raise ValueError(f"solver must be 'auto', 'cvxpy' or 'bm', got {solver!r}.")
    return round_groups(X, k, seed=seed)
