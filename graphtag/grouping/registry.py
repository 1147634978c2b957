"""The grouping methods by name: one registry for the library, the pipeline and the CLI.

:data:`GROUPINGS` maps a name to a :class:`GroupingMethod`: what the method reads (an
affinity matrix, the data, or a trained model and its data), the keyword options it takes,
whether ``graphtag run`` offers it, and a callable with one signature for all,
``method(source, k, seed, **options) -> groups``. Derived from it:

* :data:`RUN_GROUPINGS`, the names ``graphtag run --methods`` accepts for groupings
  (:data:`graphtag.config.GROUPING_METHODS`);
* :data:`GROUPING_METHODS`, the methods of an affinity as plain functions ``(A, k, seed)``
  (``"mtl"``/``"stl"`` ignore ``k``, ``"random"`` ignores the affinity values).

This module imports nothing heavy (each method imports its implementation when called), so
the configuration and the command line can read the names cheaply.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "GROUPINGS",
    "GROUPING_METHODS",
    "RUN_GROUPINGS",
    "GroupingFn",
    "GroupingMethod",
    "planted_groups",
]

GroupingFn = Callable[..., list[list[int]]]


@dataclass(frozen=True)
class GroupingMethod:
    """One grouping method of :data:`GROUPINGS`.

    Attributes
    ----------
    name
        Its registry key (also the method's name in run folders and reports).
    reads
        What ``source`` is: ``"affinity"`` (an ``(n, n)`` task affinity), ``"data"`` (a PyG
        ``Data``; the method trains networks of its own) or ``"model"`` (a ``(model, data)``
        pair: a trained base model and its data).
    fn
        ``fn(source, k, seed, **options) -> groups``, a partition of the tasks.
    options
        The keyword options ``fn`` takes.
    run
        Whether ``graphtag run`` offers it (:data:`RUN_GROUPINGS`).
    summary
        One line for listings.
    """

    name: str
    reads: Literal["affinity", "data", "model"]
    fn: GroupingFn
    options: tuple[str, ...] = ()
    run: bool = False
    summary: str = ""

    def __call__(self, source: Any, k: int, seed: int = 0, **options: Any) -> list[list[int]]:
        """Group the tasks of ``source`` into ``k`` groups (see :attr:`reads`)."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise TypeError(f"grouping method {self.name!r} takes no option(s) {unknown}; "
                            f"its options are {list(self.options)}.")
        return self.fn(source, k, seed, **options)

    def select(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The entries of ``options`` that this method takes."""
        return {key: v for key, v in options.items() if key in self.options}


# ------------------------------------------------------------------- affinity methods
def _sdp(A: Any, k: int, seed: int = 0, solver: str = "auto") -> list[list[int]]:
    from graphtag.grouping.sdp import sdp_groups

    return sdp_groups(A, k, solver=solver, seed=seed)


def _sdp_cvxpy(A: Any, k: int, seed: int = 0) -> list[list[int]]:
    return _sdp(A, k, seed, "cvxpy")


def _sdp_bm(A: Any, k: int, seed: int = 0) -> list[list[int]]:
    return _sdp(A, k, seed, "bm")


def _spectral(A: Any, k: int, seed: int = 0) -> list[list[int]]:
    from graphtag.grouping.baselines import spectral_groups

    return spectral_groups(A, k, seed)


def _num_tasks(A: Any) -> int:
    import numpy as np

    return int(np.shape(A)[0])


def _random(A: Any, k: int, seed: int = 0) -> list[list[int]]:
    from graphtag.grouping.baselines import random_groups

    return random_groups(_num_tasks(A), k, seed)


def _mtl(A: Any, k: int, seed: int = 0) -> list[list[int]]:
    from graphtag.grouping.baselines import one_group

    return one_group(_num_tasks(A))


def _stl(A: Any, k: int, seed: int = 0) -> list[list[int]]:
    from graphtag.grouping.baselines import singleton_groups

    return singleton_groups(_num_tasks(A))


# ------------------------------------------------- methods that train networks of their own
_PEER_OPTIONS = ("model", "hidden_channels", "num_layers", "epochs", "device", "progress")


def _dmtg(data: Any, k: int, seed: int = 0, **options: Any) -> list[list[int]]:
    from graphtag.grouping.dmtg import dmtg_groups

    return dmtg_groups(data, k, seed=seed, **options).groups


def _tag(data: Any, k: int, seed: int = 0, **options: Any) -> list[list[int]]:
    from graphtag.grouping.tag import tag_groups

    return tag_groups(data, k, seed=seed, **options).groups


def planted_groups(data: Any) -> list[list[int]]:
    """The known task groups of ``data`` (``data.task_group``: one group id per task)."""
    import numpy as np

    tg = data.get("task_group") if hasattr(data, "get") else getattr(data, "task_group", None)
    if tg is None:
        raise ValueError("this dataset has no known task groups (no task_group): drop "
                         "'planted' from --methods, or use a dataset with planted groups "
                         "(amazon-families, or 'graphtag datasets list').")
    tg = np.asarray(tg)
    return [np.flatnonzero(tg == g).tolist() for g in np.unique(tg)]


def _planted(data: Any, k: int, seed: int = 0) -> list[list[int]]:
    return planted_groups(data)


_ORACLE_OPTIONS = ("mode", "num_subsets", "subset_size", "epochs", "lr", "batch_size",
                   "num_neighbors", "full_batch", "max_score_nodes", "metric", "solver",
                   "device", "progress")


def _oracle(source: Any, k: int, seed: int = 0, **options: Any) -> list[list[int]]:
    from graphtag.affinity.oracle import TrueAffinity

    model, data = source
    return TrueAffinity(k, seed=seed, **options).fit(model, data).group(k)


_METHODS = (
    GroupingMethod("gradtag", "affinity", _sdp, ("solver",), run=True,
                   summary="clustering SDP on the given (Grad-TAG) affinity"),
    GroupingMethod("spectral", "affinity", _spectral, run=True,
                   summary="spectral clustering of the affinity"),
    GroupingMethod("random", "affinity", _random, run=True,
                   summary="random balanced groups (ignores the affinity values)"),
    GroupingMethod("stl", "affinity", _stl, run=True,
                   summary="one group per task (single-task learning)"),
    GroupingMethod("dmtg", "data", _dmtg, _PEER_OPTIONS, run=True,
                   summary="DMTG (Gao et al. 2024): groups learned with the network"),
    GroupingMethod("tag", "data", _tag, (*_PEER_OPTIONS, "solver", "num_lookaheads"),
                   run=True, summary="TAG (Fifty et al. 2021) lookahead affinity, then the SDP"),
    GroupingMethod("oracle", "model", _oracle, _ORACLE_OPTIONS, run=True,
                   summary="true affinity from models trained per task subset, then the SDP"),
    GroupingMethod("planted", "data", _planted, run=True,
                   summary="the dataset's known task groups (task_group; ignores k), the "
                   "yardstick where grouping is known to matter"),
    GroupingMethod("sdp", "affinity", _sdp, summary="clustering SDP (solver by size)"),
    GroupingMethod("sdp_cvxpy", "affinity", _sdp_cvxpy, summary="clustering SDP, cvxpy/SCS"),
    GroupingMethod("sdp_bm", "affinity", _sdp_bm, summary="clustering SDP, Burer-Monteiro"),
    GroupingMethod("mtl", "affinity", _mtl, summary="all tasks in one group"),
)

#: Every grouping method by name.
GROUPINGS: dict[str, GroupingMethod] = {m.name: m for m in _METHODS}

#: The groupings ``graphtag run`` can compute and compare, in registry order.
RUN_GROUPINGS: tuple[str, ...] = tuple(name for name, m in GROUPINGS.items() if m.run)

#: The methods of an affinity matrix as functions ``(A, k, seed) -> groups``.
GROUPING_METHODS: dict[str, GroupingFn] = {
    name: m.fn for name, m in GROUPINGS.items() if m.reads == "affinity"
}
