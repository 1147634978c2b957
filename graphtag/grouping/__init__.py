"""Grad-TAG task grouping: split tasks into ``k`` groups of high mutual affinity.

:mod:`graphtag.grouping.sdp` solves the clustering SDP relaxation (cvxpy or a scalable
Burer–Monteiro solver) and rounds it; :mod:`graphtag.grouping.baselines` has spectral, random,
one-group (MTL) and singleton (STL) groupings. ``GROUPING_METHODS`` maps a method name to a
function ``(A, k, seed) -> groups`` with one signature for all (``"mtl"``/``"stl"`` ignore
``k``, ``"random"`` ignores the affinity values).

Two baselines from the literature learn their groups from a training run on the data rather
than from a given affinity, so they are functions of ``data`` and not in ``GROUPING_METHODS``:
:func:`tag_groups` (TAG lookahead affinity, Fifty et al. 2021, grouped by the SDP;
:mod:`graphtag.grouping.tag`) and :func:`dmtg_groups` (DMTG, Gao et al. 2024;
:mod:`graphtag.grouping.dmtg`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

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
from graphtag.grouping.significance import group_pvalues

if TYPE_CHECKING:
    from graphtag.grouping.dmtg import DMTGNetwork, DMTGResult, dmtg_groups
    from graphtag.grouping.tag import TAGResult, lookahead_affinity, tag_affinity, tag_groups

# The training-based baselines import graphtag.models and graphtag.training; loading them on
# first use keeps ``graphtag.grouping`` (imported by the pipeline and the CLI) free of cycles.
_LAZY = {
    "DMTGNetwork": "dmtg", "DMTGResult": "dmtg", "dmtg_groups": "dmtg",
    "TAGResult": "tag", "lookahead_affinity": "tag", "tag_affinity": "tag", "tag_groups": "tag",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"graphtag.grouping.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

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
    "DMTGNetwork",
    "DMTGResult",
    "GroupingFn",
    "TAGResult",
    "balanced_split",
    "dmtg_groups",
    "group_pvalues",
    "is_degenerate_affinity",
    "lookahead_affinity",
    "one_group",
    "planted_affinity",
    "random_groups",
    "round_groups",
    "sdp_burer_monteiro",
    "sdp_cvxpy",
    "sdp_groups",
    "singleton_groups",
    "spectral_groups",
    "tag_affinity",
    "tag_groups",
    "validate_affinity",
]
