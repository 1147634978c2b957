"""Grad-TAG task grouping: split tasks into ``k`` groups of high mutual affinity.

:mod:`graphtag.grouping.sdp` solves the clustering SDP relaxation (cvxpy or a scalable
Burer–Monteiro solver) and rounds it; :mod:`graphtag.grouping.baselines` has spectral, random,
one-group (MTL) and singleton (STL) groupings.

:mod:`graphtag.grouping.registry` names every method: ``GROUPINGS`` maps a name to a
:class:`~graphtag.grouping.registry.GroupingMethod` (what it reads, its options, a callable
``(source, k, seed, **options)``); ``graphtag run`` offers ``RUN_GROUPINGS`` of them and
dispatches through it. ``GROUPING_METHODS`` maps the names of the methods of an affinity to
functions ``(A, k, seed) -> groups`` with one signature for all (``"mtl"``/``"stl"`` ignore
``k``, ``"random"`` ignores the affinity values).

Two baselines from the literature learn their groups from a training run on the data rather
than from a given affinity, so they are functions of ``data`` and not in ``GROUPING_METHODS``:
:func:`tag_groups` (TAG lookahead affinity, Fifty et al. 2021, grouped by the SDP;
:mod:`graphtag.grouping.tag`) and :func:`dmtg_groups` (DMTG, Gao et al. 2024;
:mod:`graphtag.grouping.dmtg`).

Every name loads its module on first use (PEP 562): the registry is read by the configuration
and the command line, which should not pay for importing torch, cvxpy or scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from graphtag.grouping.registry import (
    GROUPING_METHODS,
    GROUPINGS,
    RUN_GROUPINGS,
    GroupingFn,
    GroupingMethod,
)

if TYPE_CHECKING:
    from graphtag.grouping.baselines import (
        one_group,
        planted_affinity,
        random_groups,
        singleton_groups,
        spectral_groups,
    )
    from graphtag.grouping.dmtg import DMTGNetwork, DMTGResult, dmtg_groups
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
    from graphtag.grouping.tag import TAGResult, lookahead_affinity, tag_affinity, tag_groups

_LAZY = {
    "one_group": "baselines", "planted_affinity": "baselines", "random_groups": "baselines",
    "singleton_groups": "baselines", "spectral_groups": "baselines",
    "DMTGNetwork": "dmtg", "DMTGResult": "dmtg", "dmtg_groups": "dmtg",
    "balanced_split": "sdp", "is_degenerate_affinity": "sdp", "round_groups": "sdp",
    "sdp_burer_monteiro": "sdp", "sdp_cvxpy": "sdp", "sdp_groups": "sdp",
    "validate_affinity": "sdp",
    "group_pvalues": "significance",
    "TAGResult": "tag", "lookahead_affinity": "tag", "tag_affinity": "tag", "tag_groups": "tag",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"graphtag.grouping.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "GROUPINGS",
    "GROUPING_METHODS",
    "RUN_GROUPINGS",
    "DMTGNetwork",
    "DMTGResult",
    "GroupingFn",
    "GroupingMethod",
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
