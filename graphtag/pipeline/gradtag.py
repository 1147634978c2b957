"""Grad-TAG as an estimator: projected gradients -> subset fits -> task affinity -> groups.

Li, Sharma & Zhang, "Scalable Multitask Learning Using Gradient-based Estimation of Task
Affinity", KDD 2024. Given a base model trained on all tasks, the estimator

1. collects projected per-node gradients of every task's logit (Kronecker-factored sparse
   JL projection, :mod:`graphtag.gradients`) on (a sample of) the training nodes, to fit on,
   and on the validation nodes, to score on;
2. samples ``num_subsets`` random task subsets of size ``subset_size`` and fits, for all of
   them at once, a logistic regression of the subset's labels on the projected gradients
   (:func:`~graphtag.affinity.fit_subsets`): a first-order surrogate of fine-tuning the
   network on that subset;
3. scores every task of every subset on the validation nodes, with the linearised logits or
   by mapping the fit back into the network (``scoring``);
4. averages the scores into a task-affinity matrix and groups tasks by the clustering SDP.
"""

from __future__ import annotations

import inspect
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor, nn
from torch_geometric.data import Data

from graphtag.affinity import (
    affinity_matrix,
    affinity_stderr,
    centered_statistics,
    fit_subsets,
    fit_subsets_stats,
    sample_subsets,
    subset_coverage,
    subset_lam,
    subset_plan,
)
from graphtag.distributed import is_distributed
from graphtag.gradients.persample import kronecker_projector
from graphtag.gradients.store import GradientStore, collect_gradients
from graphtag.grouping import sdp_groups
from graphtag.pipeline._gradtag_checks import METRICS, PARAMS, SCORINGS, _ChecksMixin
from graphtag.pipeline._gradtag_io import _FITTED_FILES as _FITTED_FILES
from graphtag.pipeline._gradtag_io import _PersistenceMixin
from graphtag.pipeline._gradtag_scoring import _ScoringMixin
from graphtag.training.subsets import sample_nodes

__all__ = ["METRICS", "PARAMS", "SCORINGS", "GradTAG"]


class GradTAG(_ChecksMixin, _ScoringMixin, _PersistenceMixin):
    """Grad-TAG task affinity and grouping, scikit-learn style.

    Parameters
    ----------
    num_groups
        Groups for :attr:`groups_` (None: only the affinity is estimated; call
        :meth:`group` later).
    num_subsets, subset_size
        Number ``m`` and size ``s`` of the random task subsets. Each pair of tasks is seen
        together in about ``m s (s - 1) / (T (T - 1))`` subsets; None (default) chooses
        them so that this is about 6 (:func:`~graphtag.affinity.subset_plan`: 3,000 subsets
        of 5 at 100 tasks, 2,500 of 25 at 500). A fixed 1,000 subsets of 5 leave 92 % of
        the pairs of 500 tasks unseen, and the groups found on planted groups are then no
        better than chance (``bench/scale.py``).
    proj_dim, proj_nnz
        Dimension ``d`` and non-zeros per column of the gradient projection. Default
        ``d = 256`` (with ``lam = 0.01``), set from measurements at equal capacity over 5
        seeds (``bench/groups.py``, ``bench/estimator.py``; ``bench/RESULTS.md``): against
        the former ``d = 64, lam = 0.1`` it doubles the agreement with the known groups of
        ``amazon-families`` (ARI 0.47 vs 0.22) and the gain of Grad-TAG's groups over random
        ones there (+0.045 vs +0.021 macro-F1), and on BlogCatalog turns an insignificant
        gain into a significant one (+0.0057, p = 0.01, vs +0.0036, p = 0.15). On com-DBLP,
        where random groups match an MTL model of their size (no task structure to exploit at
        that capacity), neither beats random (d = 256: -0.012, p = 0.08; d = 64: -0.002).
        It costs a gradient store 4x as large and subset fits about 7x as slow (seconds at
        100 tasks).
    lam
        Ridge weight per labelled (node, task) pair: the fits minimise the **mean** log-loss
        over the subset's labelled pairs plus ``lam * ||z||^2`` (each subset by its own count
        of labelled pairs, so a label mask weighs every subset alike). A weaker ridge than
        0.1 lets the larger projection's fits use their extra dimensions.
    fit_method
        ``"stats"`` (default): each subset's fit from per-task sufficient statistics taken at
        the all-task fit, one Newton step from there plus ``fit_refine`` refinement steps
        (:func:`~graphtag.affinity.fit_subsets_stats`); ``"exact"``: batched Newton to
        convergence (:func:`~graphtag.affinity.fit_subsets`), the reference. On the shipped
        default the statistics path is the faster by a factor and gives the same groups
        (``bench/fits.py``; figures in ``bench/RESULTS.md``).
    fit_refine
        Refinement steps of ``fit_method="stats"`` (each a gradient pass, ``d`` times cheaper
        than an exact Newton iteration).
    offset
        Use the base model's logits as offsets in the fits (the first-order expansion around
        the base model). Default False, as in the paper's public code: with a base model
        trained on all tasks, the residual effect of fine-tuning on a subset is small, and on
        planted task groups the affinity with offsets barely beats chance (see
        "Planted groups" in ``bench/RESULTS.md``), while without it the fits learn each subset
        from the gradient features and recover the groups. With the offset the scores are a
        first-order estimate of fine-tuning from the base model; ``bench/affinity.py`` measures
        how close that is (at ``proj_dim=64``: no closer than the base scores themselves;
        ``proj_dim >= 256`` starts to rank subsets).
    metric
        ``"neg_logloss"`` or ``"f1"``: the validation score averaged into the affinity.
    scoring
        ``"linearized"``: logits ``b + g . z`` from projected validation gradients;
        ``"mapback"``: run the network at ``W* + P^T z`` (exact, one forward pass per subset).
    fanouts
        Computation-tree fan-outs of the per-node gradients (graph models); default 10 per
        layer.
    max_fit_nodes, max_score_nodes
        Cap on training nodes fitted on and validation nodes scored on (a seeded sample;
        None: all).
    params
        ``"shared"`` (default): gradients of the parameters all tasks share (the encoder);
        ``"all"``: also the task-specific head. Head rows of different tasks are disjoint, so
        in parameter space they cannot help each other, but a random projection gives them
        spurious overlaps (see :func:`~graphtag.gradients.kronecker_projector`); on planted
        groups including them drops the adjusted Rand index from 1.0 to 0.0-0.6
        ("Planted groups" in ``bench/RESULTS.md``).
    solver
        SDP solver for :meth:`group` (``"auto"``, ``"cvxpy"``, ``"bm"``).
    batch_size
        Nodes per vectorised gradient batch.
    fit_block
        Subsets fitted per resumable block in :meth:`estimate` (the unit saved to the
        checkpoint folder and shared over ranks); ``fit_method="stats"`` uses 8 times as many.
    grad_chunk
        Nodes per resumable gradient chunk in :meth:`collect` (the unit shared over ranks).
    seed
        Seeds the node samples, projector, subsets and grouping.
    progress
        Progress bars.

    Every parameter is stored unchanged as an attribute of the same name and checked when
    fitting (scikit-learn's estimator contract): :meth:`get_params`, :meth:`set_params` and
    ``sklearn.base.clone`` work. Fitted attributes (trailing underscore) exist only once
    :meth:`fit` (or its steps, or :meth:`load_fitted`) has set them.

    Attributes
    ----------
    projector_ : KroneckerProjector
        The gradient projector (:meth:`collect`, or :meth:`estimate` with a model).
    subsets_ : ndarray of shape (m, s)
        The sampled task subsets.
    coverage_ : dict
        Task and pair coverage of the subsets (:func:`~graphtag.affinity.subset_coverage`).
    coef_ : Tensor of shape (m, d)
        Fitted projected parameter changes, one row per subset.
    scores_ : Tensor of shape (m, s)
        Validation score of task ``subsets_[k, j]`` under subset ``k``'s model: the raw
        higher-order affinities.
    base_scores_ : ndarray of shape (T,)
        Each task's validation score under the base model.
    affinity_ : ndarray of shape (T, T)
        Normalised, symmetric pairwise affinity, zero diagonal.
    affinity_se_ : ndarray of shape (T, T)
        Standard error of each affinity entry from the subset scores it averages
        (:func:`~graphtag.affinity.affinity_stderr`; ``nan`` for pairs drawn together fewer
        than twice). An entry is only evidence where it is several of these from 0.
    groups_ : list of list of int
        Task groups (when ``num_groups`` is set).
    timings_ : dict
        Seconds per step.
    """

    def __init__(
        self,
        num_groups: int | None = None,
        *,
        num_subsets: int | None = None,
        subset_size: int | None = None,
        proj_dim: int = 256,
        proj_nnz: int = 4,
        lam: float = 0.01,
        fit_method: str = "stats",
        fit_refine: int = 2,
        offset: bool = False,
        metric: str = "neg_logloss",
        scoring: str = "linearized",
        fanouts: tuple[int, ...] | None = None,
        max_fit_nodes: int | None = 2000,
        max_score_nodes: int | None = 2000,
        params: str = "shared",
        solver: str = "auto",
        batch_size: int = 32,
        fit_block: int = 250,
        grad_chunk: int = 512,
        seed: int = 0,
        progress: bool = True,
    ) -> None:
        self.num_groups = num_groups
        self.num_subsets = num_subsets
        self.subset_size = subset_size
        self.proj_dim = proj_dim
        self.proj_nnz = proj_nnz
        self.lam = lam
        self.fit_method = fit_method
        self.fit_refine = fit_refine
        self.offset = offset
        self.metric = metric
        self.scoring = scoring
        self.fanouts = fanouts
        self.max_fit_nodes = max_fit_nodes
        self.max_score_nodes = max_score_nodes
        self.params = params
        self.solver = solver
        self.batch_size = batch_size
        self.fit_block = fit_block
        self.grad_chunk = grad_chunk
        self.seed = seed
        self.progress = progress

    # ------------------------------------------------------- estimator contract
    @classmethod
    def _get_param_names(cls) -> list[str]:
        """The ``__init__`` parameters, in order (all of them are hyperparameters)."""
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The hyperparameters, as given to ``__init__`` (or :meth:`set_params`).

        With ``deep``, a parameter that is itself an estimator contributes its own
        parameters as ``name__param`` too (as in scikit-learn).
        """
        out: dict[str, Any] = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{k}", v) for k, v in value.get_params(deep=True).items())
            out[name] = value
        return out

    def set_params(self, **params: Any) -> GradTAG:
        """Set hyperparameters by name (``name__param`` for a nested estimator's); returns
        ``self``. Values are checked when fitting, as those of ``__init__``."""
        valid = self._get_param_names()
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, sep, sub = key.partition("__")
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for estimator GradTAG; valid "
                                 f"parameters are {sorted(valid)}.")
            if sep:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            getattr(self, name).set_params(**sub_params)
        return self

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in
                    inspect.signature(type(self).__init__).parameters.values()}
        changed = [f"{k}={v!r}" for k, v in self.get_params(deep=False).items()
                   if not (isinstance(v, type(defaults.get(k))) and v == defaults.get(k))]
        return f"{type(self).__name__}({', '.join(changed)})"

    # ----------------------------------------------------------------- steps
    def make_projector(self, model: nn.Module) -> Any:
        """The gradient projector for ``model`` (deterministic given ``seed``)."""
        return kronecker_projector(model, self.proj_dim, self.proj_nnz, self.seed,
                                   shared_only=self.params == "shared")

    def collect(self, model: nn.Module, data: Data, work_dir: str | os.PathLike
                ) -> tuple[GradientStore, GradientStore]:
        """Step 1: projected gradients on the fit and score nodes (resumable stores).

        Writes ``work_dir/train`` and ``work_dir/val`` and sets :attr:`projector_`.
        """
        self._check_params(int(data.y.size(1)))
        t0 = time.perf_counter()
        self.projector_ = self.make_projector(model)
        work = Path(work_dir)
        stores = []
        for name, mask, cap, k in (("train", data.train_mask, self.max_fit_nodes, 1),
                                   ("val", data.val_mask, self.max_score_nodes, 2)):
            nodes = sample_nodes(mask, cap, self.seed * 7 + k)
            if nodes.numel() == 0:
                raise ValueError(f"data has no {name} nodes; Grad-TAG fits on training nodes "
                                 "and scores on validation nodes.")
            stores.append(collect_gradients(
                model, data, nodes, self.projector_, work / name, fanouts=self.fanouts,
                batch_size=self.batch_size, chunk_size=self.grad_chunk, seed=self.seed + k,
                progress=self.progress))
        self.timings_ = {"gradients": time.perf_counter() - t0}
        return stores[0], stores[1]

    def estimate(
        self,
        fit_store: GradientStore,
        score_store: GradientStore,
        *,
        model: nn.Module | None = None,
        data: Data | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        block: int | None = None,
    ) -> GradTAG:
        """Steps 2-3: subset fits, per-subset scores and the affinity matrix.

        Subsets are fitted ``block`` (default :attr:`fit_block`) at a time; with
        ``checkpoint_dir``, finished blocks are saved there and reused, so an interrupted
        estimate resumes. ``model`` and ``data``
        are needed for ``scoring="mapback"``; with ``model``, the projector is made here
        when :meth:`collect` has not run in this object (it depends only on the model's
        structure and the parameters, so it is the one the stores were collected with).

        Under a process group every rank calls this; rank ``r`` fits blocks ``b`` with
        ``b % world == r`` (into ``checkpoint_dir``, which must then be shared, or exchanged
        through the process group without one) and every rank ends with all the fitted
        attributes, equal to a single-process estimate.
        """
        T = fit_store.num_tasks
        self._check_params(T)
        if model is not None and not hasattr(self, "projector_"):
            self.projector_ = self.make_projector(model)
        t0 = time.perf_counter()
        m, s = subset_plan(T, self.num_subsets, self.subset_size)
        self.subsets_ = sample_subsets(T, m, s, seed=self.seed)
        self.coverage_ = subset_coverage(self.subsets_, T)
        labels = fit_store.labels
        # the fits minimise a sum over labelled pairs; ours is a mean, per subset
        lam_sum = subset_lam(self.lam, (np.asarray(labels) >= 0).sum(0), self.subsets_)
        ck = Path(checkpoint_dir) if checkpoint_dir is not None else None
        # statistics fits are cheap per subset, and larger blocks make their passes over the
        # data fewer and their per-task products larger
        block = block or (self.fit_block * (8 if self.fit_method == "stats" else 1))
        stats, t_stats = None, 0.0

        def fit_block(lo: int, hi: int) -> Tensor:
            nonlocal stats, t_stats
            if self.fit_method == "stats":
                if stats is None:  # once, and only when some block is left to fit
                    ts = time.perf_counter()
                    stats = centered_statistics(fit_store.grads, fit_store.logits, labels,
                                                lam=self.lam, offset=self.offset)
                    t_stats = time.perf_counter() - ts
                return fit_subsets_stats(stats, self.subsets_[lo:hi], lam=lam_sum[lo:hi],
                                         refine=self.fit_refine, grads=fit_store.grads,
                                         logits=fit_store.logits, labels=labels)
            return fit_subsets(fit_store.grads, fit_store.logits, labels, self.subsets_[lo:hi],
                               lam=lam_sum[lo:hi], offset=self.offset)

        self.coef_ = self._fit_blocks(fit_block, fit_store, ck, block)
        t1 = time.perf_counter()
        self.scores_ = self._score(score_store, model, data)
        self.base_scores_ = self._base_scores(score_store)
        self.affinity_ = affinity_matrix(self.subsets_, self.scores_, T)
        self.affinity_se_ = affinity_stderr(self.subsets_, self.scores_, T)
        t2 = time.perf_counter()
        self.timings_ = {**getattr(self, "timings_", {}), "fits": t1 - t0,
                         "fit_statistics": t_stats, "scores": t2 - t1}
        return self

    def group(self, k: int | None = None, solver: str | None = None) -> list[list[int]]:
        """Step 4: group the tasks by the clustering SDP on :attr:`affinity_`; sets
        :attr:`groups_`."""
        k = self.num_groups if k is None else k
        if k is None:
            raise ValueError("give k (or num_groups when constructing GradTAG).")
        t0 = time.perf_counter()
        self.groups_ = sdp_groups(self.affinity_, k, solver=solver or self.solver,
                                  seed=self.seed)
        self.timings_ = {**getattr(self, "timings_", {}), "grouping": time.perf_counter() - t0}
        return self.groups_

    # ------------------------------------------------------------------ all
    def fit(self, model: nn.Module, data: Data, work_dir: str | os.PathLike | None = None
            ) -> GradTAG:
        """Run every step on a trained base ``model`` and its ``data``.

        Gradient stores go to ``work_dir`` (kept, resumable), or to a temporary folder that is
        removed afterwards.
        """
        if work_dir is None:
            if is_distributed():
                raise ValueError("GradTAG.fit under a process group needs a work_dir that all "
                                 "ranks share (the gradient store is written by all of them).")
            with tempfile.TemporaryDirectory(prefix="graphtag-") as tmp:
                return self.fit(model, data, tmp)
        fit_store, score_store = self.collect(model, data, Path(work_dir) / "gradients")
        self.estimate(fit_store, score_store, model=model, data=data,
                      checkpoint_dir=Path(work_dir) / "fits")
        if self.num_groups is not None:
            self.group()
        return self
