"""Combiners by name, for configuration files and the command line."""

from __future__ import annotations

from typing import Any

from graphtag.optim.base import EqualWeighting, LossCombiner
from graphtag.optim.fairgrad import FairGrad
from graphtag.optim.gradproj import GradProj
from graphtag.optim.mtgd import MTGD
from graphtag.optim.pcgrad import PCGrad

__all__ = ["COMBINERS", "make_combiner"]

COMBINERS: dict[str, type[LossCombiner]] = {
    "equal": EqualWeighting,
    "pcgrad": PCGrad,
    "fairgrad": FairGrad,
    "mtgd": MTGD,
    "gradproj": GradProj,
}


def make_combiner(name: str, **kwargs: Any) -> LossCombiner:
    """Build the combiner registered as ``name`` (case-insensitive) with ``kwargs``.

    Examples
    --------
    >>> make_combiner("fairgrad", alpha=1.0)
    FairGrad(alpha=1.0, ridge=0.0001, rep_grad=False)
    """
    key = str(name).strip().lower()
    if key not in COMBINERS:
        raise ValueError(f"unknown combiner {name!r}; choose one of: {', '.join(COMBINERS)}.")
    cls = COMBINERS[key]
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise TypeError(f"make_combiner({name!r}, ...): {err}") from None
