"""The configurations of ``graphtag train`` and ``graphtag run``: the one declaration of every
setting.

:class:`TrainConfig` (one training run) and :class:`RunConfig` (the whole Grad-TAG job) are
dataclasses whose fields carry, in ``metadata``, everything an interface needs: the help
text, the allowed values (read from the registries that define them, e.g. the models of
:data:`graphtag.models.MODELS` or the combiners of :data:`graphtag.optim.COMBINERS`), the
option group and any older command-line spelling. The command line
(:mod:`graphtag.cli.options`) is generated from them, so a default or a choice is written
once, here or in its registry. Validation happens at construction (``__post_init__``),
before anything is loaded or trained.

This module imports neither torch nor PyG (registries are read on first use), so building
the command line stays fast.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from graphtag._settings import Registry, choices_of, setting
from graphtag.grouping.registry import RUN_GROUPINGS

__all__ = [
    "COMBINER_METHODS",
    "GROUPING_METHODS",
    "METHODS",
    "STAGE_KEYS",
    "Registry",
    "RunConfig",
    "TrainConfig",
    "choices_of",
    "default_fanout",
    "parse_pos_weight",
    "setting",
]

#: Task groupings a run can train and compare: Grad-TAG, two baselines on the same affinity,
#: single-task learning, the grouping peers DMTG and TAG, and the true-affinity oracle (a
#: model trained per task subset, :class:`~graphtag.affinity.TrueAffinity`); the ones
#: :data:`graphtag.grouping.registry.GROUPINGS` marks for runs, in its order.
GROUPING_METHODS = tuple(RUN_GROUPINGS)
#: Gradient-combination peers: one model on all tasks, trained with that combiner.
COMBINER_METHODS = ("pcgrad", "fairgrad", "mtgd", "gradproj")
#: Everything ``methods`` may list (MTL, the base model itself, is always reported).
METHODS = GROUPING_METHODS + COMBINER_METHODS


def default_fanout(num_layers: int) -> tuple[int, ...]:
    """Neighbours sampled per layer when ``num_neighbors`` is not given: 15, 10, then 5 for
    every further layer (empty for an invalid ``num_layers``, which validation reports)."""
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
        return ()
    return (15, 10, *([5] * max(num_layers - 2, 0)))[:num_layers]


def parse_pos_weight(text: str) -> float | str | None:
    """``pos_weight`` from text: ``auto``, ``none`` or a number."""
    low = text.strip().lower()
    if low == "auto":
        return "auto"
    if low == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"--pos-weight {text!r} is not 'auto', 'none' or a number.") from None


_MODELS = Registry("graphtag.models.factory", "MODELS")


@dataclass
class TrainConfig:
    """Everything that determines a training run (stored as ``config.json``).

    Every field is a ``graphtag train`` (and ``graphtag run``) option of the same name with
    dashes (``num_layers``: ``--num-layers``, also spelled ``--layers``); see ``graphtag train
    --help``. ``num_neighbors=None`` means :func:`default_fanout` of ``num_layers``.
    """

    # data
    dataset: str = setting(
        "amazon-top100", "dataset name (see 'graphtag datasets list') or a data path (see "
        "--data); default: the shipped amazon-top100", group="data", metavar="NAME")
    root: str = setting("data", "folder for raw and processed data", group="data",
                        metavar="DIR")
    num_tasks: int | None = setting(
        None, "number of tasks (communities/labels); default 100 for SNAP, all for .mat",
        group="data", flags=("--tasks",), metavar="T")
    features: str = setting(
        "spectral", "node features computed when the data has none: %(choices)s",
        group="data", choices=Registry("graphtag.datasets.features", "FEATURE_KINDS"),
        metavar="KIND")
    num_features: int = setting(64, "dimension of the computed node features", group="data")
    split: tuple[float, float, float] = setting(
        (0.6, 0.2, 0.2), "train, val and test fractions of the random node split (data with "
        "a split of its own keeps it)", group="data", metavar=("TRAIN", "VAL", "TEST"))
    # model
    model: str = setting("sage", "one of %(choices)s", group="model", choices=_MODELS,
                         metavar="MODEL")
    hidden_channels: int = setting(128, "hidden units per layer", group="model",
                                   flags=("--hidden",))
    num_layers: int = setting(2, "GNN layers (hops for sign)", group="model",
                              flags=("--layers",))
    dropout: float = setting(0.5, "dropout probability, in [0, 1)", group="model")
    # training
    epochs: int = setting(50, "maximum training epochs", group="training")
    batch_size: int = setting(512, "training nodes per minibatch", group="training")
    num_neighbors: tuple[int, ...] | None = setting(
        None, "neighbours sampled per layer, one per layer, e.g. --fanout 15 10 (-1: all); "
        "default: 15, 10, then 5 per further layer", group="training", flags=("--fanout",),
        metavar="K")
    lr: float = setting(0.01, "learning rate (Adam)", group="training")
    weight_decay: float = setting(0.0, "weight decay (Adam)", group="training")
    patience: int | None = setting(
        10, "epochs without validation improvement before stopping ('none': never stop "
        "early)", group="training")
    pos_weight: float | str | None = setting(
        "auto", "positive-class weight of the loss: 'auto' (#neg/#pos per task), 'none', or "
        "a number", group="training", parse=parse_pos_weight, metavar="W")
    full_batch: bool = setting(False, "no neighbour sampling", group="training")
    combiner: str = setting(
        "equal", "how per-task gradients combine (graphtag.optim): %(choices)s; 'equal' is "
        "the plain sum", group="training",
        choices=Registry("graphtag.optim.registry", "COMBINERS"), metavar="NAME")
    seed: int = setting(0, "seeds the split, features, sampling and models", group="data")
    device: str = setting("cpu", "torch device, e.g. cpu, cuda, cuda:1", group="training")
    # your own data (see graphtag.datasets.files): the labels file of an edge list, and
    # what to do with labelled ids missing from the graph and with single-class tasks
    labels: str | None = setting(
        None, "labels of an edge list (with --data): a node x label table (CSV/TSV with a "
        "header and a node-id column), node,label pairs, or one community a line",
        group="files", metavar="PATH")
    labels_format: str = setting(
        "auto", "format of --labels", group="files",
        choices=Registry("graphtag.datasets.files", "LABEL_FORMATS"))
    unknown_nodes: str = setting(
        "error", "labelled node ids missing from the graph: refuse (error), drop their "
        "labels, or add them as nodes without edges", group="files",
        choices=Registry("graphtag.datasets.files", "UNKNOWN_NODE_POLICIES"))
    constant_tasks: str = setting(
        "error", "tasks with no positive (or no negative) node: refuse (error) or drop them",
        group="files",
        choices=Registry("graphtag.datasets.files", "CONSTANT_TASK_POLICIES"),
        const_flags={"--drop-constant-tasks": "drop"})

    def __post_init__(self) -> None:
        self._derive_defaults()
        from graphtag.training.checks import raise_problems, train_problems

        raise_problems(train_problems(self), "training config")

    def _derive_defaults(self) -> None:
        """Fill the settings whose default depends on others (before validation)."""
        if self.num_neighbors is None:
            self.num_neighbors = default_fanout(self.num_layers)

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["split"], d["num_neighbors"] = list(self.split), list(self.num_neighbors)
        for k, v in _DATA_DEFAULTS.items():  # at their defaults they are left out, so the
            if d[k] == v:                     # configs of earlier runs compare equal
                del d[k]
        return d

    def data_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`graphtag.load_dataset` this config sets."""
        return dict(features=self.features, num_features=self.num_features, split=self.split,
                    seed=self.seed, labels=self.labels, labels_format=self.labels_format,
                    unknown_nodes=self.unknown_nodes, constant_tasks=self.constant_tasks)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}; known: {sorted(names)}.")
        d = dict(d)
        if "split" in d:
            d["split"] = tuple(d["split"])
        if d.get("num_neighbors") is not None:
            d["num_neighbors"] = tuple(d["num_neighbors"])
        return cls(**d)


_DATA_DEFAULTS = {"labels": None, "labels_format": "auto", "unknown_nodes": "error",
                  "constant_tasks": "error"}

#: Models ``graphtag run`` can take per-sample gradients of.
_GRADIENT_MODELS = Registry("graphtag.pipeline.run", "GRADIENT_MODELS")


@dataclass
class RunConfig(TrainConfig):
    """Everything that determines a ``graphtag run`` (stored as ``config.json``).

    The :class:`TrainConfig` fields set the data and every model trained (base model, group
    models, baselines: one budget for all). The rest configure Grad-TAG (see
    :class:`~graphtag.pipeline.GradTAG`) and the comparison. Every field is a ``graphtag
    run`` option (``graphtag run --help``).

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

    # the main job's default is the benchmark where grouping is known to matter
    dataset: str = setting(
        "amazon-families", "dataset name (see 'graphtag datasets list') or a data path (see "
        "--data); default: amazon-families (the shipped Amazon graph, 10 communities each "
        "with 7 noisy copies: 80 tasks in 10 known groups); amazon-top100 is the shipped "
        "100-community set", group="data", metavar="NAME")
    # the base model: only models with per-sample gradients (the field keeps its place)
    model: str = setting("sage", "one of %(choices)s (models with per-sample gradients)",
                         group="model", choices=_GRADIENT_MODELS, metavar="MODEL")
    # gradients
    proj_dim: int = setting(256, "gradient projection dimension d", group="gradients")
    proj_nnz: int = setting(4, "non-zeros per column of the sparse gradient projection",
                            group="gradients")
    grad_params: str = setting(
        "shared", "parameters whose gradients are projected: the shared encoder, or all "
        "(with the task heads)", group="gradients",
        choices=Registry("graphtag.pipeline.gradtag", "PARAMS"))
    grad_fanouts: tuple[int, ...] | None = setting(
        None, "computation-tree fan-outs of the per-node gradients, one per layer; default "
        "10 per layer", group="gradients", metavar="K")
    max_fit_nodes: int | None = setting(
        2000, "training nodes sampled for the fits (0 or 'none': all)", group="gradients",
        zero_is_none=True)
    max_score_nodes: int | None = setting(
        2000, "validation nodes sampled for scoring (0 or 'none': all)", group="gradients",
        zero_is_none=True)
    # subset fits and affinity
    num_subsets: int | None = setting(
        None, "random task subsets fitted; default: enough for about 6 draws of each task "
        "pair, at least 1000", group="affinity", flags=("--subsets",), metavar="M")
    subset_size: int | None = setting(
        None, "tasks per subset; default: T/20 within 5..25", group="affinity", metavar="S")
    lam: float = setting(0.01, "ridge weight of the subset fits (per labelled pair)",
                         group="affinity")
    fit_method: str = setting(
        "stats", "subset fits from per-task sufficient statistics (stats, fast) or by exact "
        "batched Newton (exact, the reference)", group="affinity",
        choices=Registry("graphtag.affinity", "FIT_METHODS"))
    fit_refine: int = setting(2, "refinement steps after the statistics fit's Newton step",
                              group="affinity")
    offset: bool = setting(False, "use the base model's logits as offsets in the subset fits",
                           group="affinity")
    metric: str = setting("neg_logloss", "validation score averaged into the affinity",
                          group="affinity",
                          choices=Registry("graphtag.pipeline.gradtag", "METRICS"))
    scoring: str = setting(
        "linearized", "score subsets with the linearised logits or by mapping the fit back "
        "into the network", group="affinity",
        choices=Registry("graphtag.pipeline.gradtag", "SCORINGS"))
    # grouping and grouped training
    num_groups: int = setting(10, "number of task groups k", group="grouping",
                              flags=("--groups",), metavar="K")
    solver: str = setting("auto", "SDP solver of the grouping", group="grouping",
                          choices=Registry("graphtag.grouping.sdp", "Solver"))
    methods: tuple[str, ...] = setting(
        ("gradtag", "spectral", "random"), "groupings and peers to train and compare, "
        "comma-separated from %(choices)s (MTL is always reported)", group="grouping",
        choices=METHODS, metavar="M,M,...")
    group_mode: str = setting(
        "models", "one model per group, or a shared encoder with one head per group",
        group="grouping", choices=Registry("graphtag.training.grouped", "GROUP_MODES"))
    # peers
    peer_epochs: int | None = setting(
        None, "epochs of DMTG's and TAG's own training; default: 100 and 20", group="peers")
    tag_lookaheads: int | None = setting(
        100, "TAG lookaheads, evenly spaced over its steps (0 or 'none': every step)",
        group="peers", zero_is_none=True)
    rep_grad: bool = setting(
        False, "combiners (pcgrad, ...) use gradients of the shared representation",
        group="peers")
    # the oracle (true affinity)
    oracle_mode: str = setting(
        "finetune", "fine-tune the base model on each subset, or train from scratch",
        group="oracle", choices=Registry("graphtag.affinity.oracle", "ORACLE_MODES"))
    oracle_subsets: int = setting(100, "task subsets trained", group="oracle")
    oracle_subset_size: int | None = setting(
        None, "tasks per subset; default: T/20 within 5..25", group="oracle")
    oracle_epochs: int | None = setting(
        None, "epochs per subset; default: 5 fine-tuning, 20 from scratch", group="oracle")

    def __post_init__(self) -> None:
        self._derive_defaults()
        bad = [m for m in self.methods if m not in METHODS]
        if bad:
            raise ValueError(f"methods {bad} unknown; choose from {METHODS} (MTL, the base "
                             "model, is always reported).")
        from graphtag.pipeline.run import check_gradient_model

        check_gradient_model(self.model)
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

#: Stages of ``graphtag run`` in order, with the config keys each one reads. ``device`` is
#: in none: a run moved between CPU and GPU keeps its results.
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
