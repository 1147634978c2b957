"""The values :class:`~graphtag.pipeline.GradTAG`'s choice hyperparameters take, and the
check of every hyperparameter at fitting time."""

from __future__ import annotations

from typing import get_args

from graphtag.affinity import FIT_METHODS
from graphtag.affinity.scores import _METRICS
from graphtag.grouping.sdp import Solver

#: How subsets are scored (``scoring``).
SCORINGS = ("linearized", "mapback")
#: Validation scores averaged into the affinity (``metric``).
METRICS = _METRICS
#: Parameters whose gradients are projected (``params``).
PARAMS = ("shared", "all")


class _ChecksMixin:
    """:class:`~graphtag.pipeline.GradTAG`'s hyperparameter check (scikit-learn checks when
    fitting, not in ``__init__``)."""

    def _check_params(self, num_tasks: int) -> None:
        """Check every hyperparameter (at fitting time, not in ``__init__``)."""
        for name in ("proj_dim", "proj_nnz", "batch_size", "fit_block", "grad_chunk"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1 (got {v!r}).")
        for name in ("max_fit_nodes", "max_score_nodes"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"{name} must be an integer >= 1 or None (got {v!r}).")
        if self.solver not in get_args(Solver):
            raise ValueError(f"solver must be one of {get_args(Solver)} (got {self.solver!r}).")
        if self.fit_method not in FIT_METHODS:
            raise ValueError(f"fit_method must be one of {FIT_METHODS} (got "
                             f"{self.fit_method!r}).")
        if self.fit_refine < 0:
            raise ValueError(f"fit_refine must be >= 0 (got {self.fit_refine}).")
        if self.scoring not in SCORINGS:
            raise ValueError(f"scoring must be one of {SCORINGS} (got {self.scoring!r}).")
        if self.params not in PARAMS:
            raise ValueError(f"params must be one of {PARAMS} (got {self.params!r}).")
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS} (got {self.metric!r}).")
        if self.num_subsets is not None and self.num_subsets < 1:
            raise ValueError(f"num_subsets must be >= 1 or None (got {self.num_subsets}).")
        if self.subset_size is not None and not 1 <= self.subset_size <= num_tasks:
            raise ValueError(f"subset_size must lie in [1, {num_tasks}] (got "
                             f"{self.subset_size}).")
        if self.lam < 0:
            raise ValueError(f"lam must be >= 0 (got {self.lam}).")
        if self.num_groups is not None and not 1 <= self.num_groups <= num_tasks:
            raise ValueError(f"num_groups must lie in [1, {num_tasks}] (got {self.num_groups}).")
