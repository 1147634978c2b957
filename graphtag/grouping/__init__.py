"""Grad-TAG task grouping: split tasks into ``k`` groups of high mutual affinity.

:mod:`graphtag.grouping.sdp` solves the clustering SDP relaxation (cvxpy or a scalable
Burer–Monteiro solver) and rounds it; :mod:`graphtag.grouping.baselines` has spectral, random,
one-group (MTL) and singleton (STL) groupings. ``GROUPING_METHODS`` maps a method name to a
function ``(A, k, seed) -> groups`` with one signature for all (``"mtl"``/``"stl"`` ignore
``k``, ``"random"`` ignores the affinity values).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from graphtag.grouping.baselines import (
    one_group,
    planted_affinity,
    random_groups,
    singleton_groups,
    spectral_groups,
)
from graphtag.grouping.sdp import (
    balanced_split,
    is_degenerate_affinity,
    round_groups,
    sdp_burer_monteiro,
    sdp_cvxpy,
    sdp_groups,
    validate_affinity,
)

GroupingFn = Callable[[np.ndarray, int, int], list[list[int]]]

GROUPING_METHODS: dict[str, GroupingFn] = {
    "sdp": lambda A, k, seed: sdp_groups(A, k, seed=seed),
    "sdp_cvxpy": lambda A, k, seed: sdp_groups(A, k, solver="cvxpy", seed=seed),
    "sdp_bm": lambda A, k, seed: sdp_groups(A, k, solver="bm", seed=seed),
    "spectral": spectral_groups,
    "random": lambda A, k, seed: random_groups(np.shape(A)[0], k, seed),
    "mtl": lambda A, k, seed: one_group(np.shape(A)[0]),
    "stl": lambda A, k, seed: singleton_groups(np.shape(A)[0]),
}

__all__ = [
    "GROUPING_METHODS",
    "GroupingFn",
    "balanced_split",
    "is_degenerate_affinity",
    "one_group",
    "planted_affinity",
    "random_groups",
    "round_groups",
    "sdp_burer_monteiro",
    "sdp_cvxpy",
    "sdp_groups",
    "singleton_groups",
    "spectral_groups",
    "validate_affinity",
]
