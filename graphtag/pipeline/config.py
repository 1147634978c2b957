"""The configuration of a ``graphtag run`` and which stage reads which setting."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from graphtag.training.run import TrainConfig

__all__ = ["COMBINER_METHODS", "GROUPING_METHODS", "METHODS", "STAGE_KEYS", "RunConfig"]

#: Task groupings a run can train and compare: Grad-TAG, two baselines on the same affinity,
#: single-task learning, the grouping peers DMTG and TAG, and the true-affinity oracle (a
#: model trained per task subset, :class:`~graphtag.affinity.TrueAffinity`).
GROUPING_METHODS = ("gradtag", "spectral", "random", "stl", "dmtg", "tag", "oracle")
#: Gradient-combination peers: one model on all tasks, trained with that combiner.
COMBINER_METHODS = ("pcgrad", "fairgrad", "mtgd", "gradproj")
#: Everything ``methods`` may list (MTL, the base model itself, is always reported).
METHODS = GROUPING_METHODS + COMBINER_METHODS


@dataclass
class RunConfig(TrainConfig):
    """Everything that determines a ``graphtag run`` (stored as ``config.json``).

    The :class:`~graphtag.training.run.TrainConfig` fields set the data and every model
    trained (base model, group models, baselines: one budget for all). The rest configure
    Grad-TAG (see :class:`~graphtag.pipeline.GradTAG`) and the comparison.

    The peers' own budgets: ``peer_epochs`` trains DMTG's and TAG's networks (None: their
    defaults, 100 and 20 epochs); ``tag_lookaheads`` caps TAG's lookaheads, evenly spaced
    over its steps (None: one every step, which dominates the run at hundreds of tasks);
    ``rep_grad`` makes the gradient combiners (PCGrad, FairGrad, ...) work on gradients of
    the shared representation instead of the shared parameters.

    The ``oracle`` method's budget (:class:`~graphtag.affinity.TrueAffinity`):
    ``oracle_mode`` (``"finetune"`` the base model or train from ``"scratch"``),
    ``oracle_subsets`` task subsets of ``oracle_subset_size`` (None: Grad-TAG's size rule),
    each trained ``oracle_epochs`` epochs (None: 5 fine-tuning, 20 from scratch) with the
    base model's learning rate and minibatches, scored on the ``max_score_nodes`` validation
    nodes with ``metric``. The defaults keep it to a few minutes on the shipped default; an
    oracle that is to judge an estimate needs more (see ``bench/affinity.py``).
    """

    # gradients
    proj_dim: int = 64
    proj_nnz: int = 4
    grad_params: str = "shared"
    grad_fanouts: tuple[int, ...] | None = None
    max_fit_nodes: int | None = 2000
    max_score_nodes: int | None = 2000
    # subset fits and affinity
    num_subsets: int | None = None
    subset_size: int | None = None
    lam: float = 0.1
    fit_method: str = "stats"
    fit_refine: int = 2
    offset: bool = False
    metric: str = "neg_logloss"
    scoring: str = "linearized"
    # grouping and grouped training
    num_groups: int = 10
    solver: str = "auto"
    methods: tuple[str, ...] = ("gradtag", "spectral", "random")
    group_mode: str = "models"
    # peers
    peer_epochs: int | None = None
    tag_lookaheads: int | None = 100
    rep_grad: bool = False
    # the oracle (true affinity)
    oracle_mode: str = "finetune"
    oracle_subsets: int = 100
    oracle_subset_size: int | None = None
    oracle_epochs: int | None = None

    def __post_init__(self) -> None:
        bad = [m for m in self.methods if m not in METHODS]
        if bad:
            raise ValueError(f"methods {bad} unknown; choose from {METHODS} (MTL, the base "
                             "model, is always reported).")
        from graphtag.affinity import FIT_METHODS

        if self.fit_method not in FIT_METHODS:
            raise ValueError(f"fit_method must be one of {FIT_METHODS} (got "
                             f"{self.fit_method!r}).")
        if self.fit_refine < 0:
            raise ValueError(f"fit_refine must be >= 0 (got {self.fit_refine}).")
        if self.num_groups < 1:
            raise ValueError(f"num_groups must be >= 1 (got {self.num_groups}).")
        for name in ("peer_epochs", "tag_lookaheads", "oracle_subset_size", "oracle_epochs"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ValueError(f"{name} must be >= 1 or None (got {v}).")
        from graphtag.affinity.oracle import ORACLE_MODES

        if self.oracle_mode not in ORACLE_MODES:
            raise ValueError(f"oracle_mode must be one of {ORACLE_MODES} (got "
                             f"{self.oracle_mode!r}).")
        if self.oracle_subsets < 1:
            raise ValueError(f"oracle_subsets must be >= 1 (got {self.oracle_subsets}).")
        from graphtag.pipeline.validate import validate_run_config

        validate_run_config(self)  # every other setting, before anything trains

    def to_json(self) -> dict[str, Any]:
        d = super().to_json()
        d["methods"] = list(self.methods)
        d["grad_fanouts"] = None if self.grad_fanouts is None else list(self.grad_fanouts)
        for k, v in _ORACLE_DEFAULTS.items():  # at their defaults they are left out, so the
            if d[k] == v:                       # configs of earlier runs compare equal
                del d[k]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RunConfig:
        d = dict(d)
        for key in ("methods", "grad_fanouts"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        return super().from_json(d)  # type: ignore[return-value]

    def train_config(self) -> TrainConfig:
        """The model/training part, for the base model and the group models."""
        names = [f.name for f in dataclasses.fields(TrainConfig)]
        return TrainConfig(**{n: getattr(self, n) for n in names})

    def stage_values(self, stage: str) -> dict[str, Any]:
        """The settings ``stage`` depends on directly (earlier stages' come via the chain)."""
        d = self.to_json()
        # keys left out of to_json at their defaults (the data options) are left out here
        # too, so fingerprints of earlier runs still match
        return {k: d[k] for k in STAGE_KEYS[stage] if k in d}


_ORACLE_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunConfig)
                    if f.name.startswith("oracle_")}
_TRAIN_KEYS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name != "device")

#: Stages in order, with the config keys each one reads. ``device`` is in none: a run moved
#: between CPU and GPU keeps its results.
STAGE_KEYS: dict[str, tuple[str, ...]] = {
    "base": _TRAIN_KEYS,
    "gradients": ("proj_dim", "proj_nnz", "grad_params", "grad_fanouts", "max_fit_nodes",
                  "max_score_nodes"),
    "affinity": ("num_subsets", "subset_size", "lam", "fit_method", "fit_refine", "offset",
                 "metric", "scoring"),
    "grouping": ("num_groups", "solver", "methods", "peer_epochs", "tag_lookaheads",
                 "oracle_mode", "oracle_subsets", "oracle_subset_size", "oracle_epochs"),
    "train": ("group_mode", "methods", "rep_grad"),
}
