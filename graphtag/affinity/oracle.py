"""True task affinity (the oracle): train a model on each task subset's tasks and score it.

Grad-TAG (:class:`~graphtag.pipeline.GradTAG`) *estimates* how well each task does when a
model is trained on a subset of the tasks, from a first-order expansion around the base model.
:class:`TrueAffinity` measures it: for every subset it actually trains a model on the subset's
tasks only, scores each of them on held-out (validation) nodes and averages the scores into the
same affinity matrix (:func:`~graphtag.affinity.affinity_matrix`). Two kinds of training:

``"finetune"``
    a copy of the trained base model, all parameters trainable, fine-tuned on the subset: the
    quantity Grad-TAG approximates (its "true affinity", Li, Sharma & Zhang, KDD 2024);
``"scratch"``
    a fresh, seeded model of the same architecture trained on the subset alone: the
    higher-order task affinity of Li et al., "Boosting Multitask Learning on Graphs through
    Higher-Order Task Affinities", KDD 2023.

The oracle costs one training run per subset, so it is a yardstick for the estimate on small
graphs, not a replacement for it. Its own reliability (how well two oracle runs on disjoint
subsets and seeds agree) bounds what any estimate can reach, and it needs budget (subsets,
epochs) to be high; see ``bench/affinity.py``.

The subset training itself is :mod:`graphtag.training.subsets` (re-exported here), which
``bench/affinity.py`` also fine-tunes its ground truth with.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from tqdm.auto import tqdm

from graphtag.affinity.scores import affinity_matrix, task_scores
from graphtag.affinity.subsets import sample_subsets, subset_coverage, subset_plan
from graphtag.distributed import (
    all_gather_object,
    barrier,
    get_rank,
    get_world_size,
    is_main,
    shard,
)
from graphtag.training.subsets import (
    ModelInputs,
    exact_logits,
    model_inputs,
    sample_nodes,
    subset_logits,
    task_head,
    train_batches,
    train_on_tasks,
)

__all__ = [
    "DEFAULT_EPOCHS",
    "ORACLE_MODES",
    "ModelInputs",
    "OracleAffinity",
    "TrueAffinity",
    "exact_logits",
    "model_inputs",
    "subset_logits",
    "train_batches",
    "train_on_tasks",
]

#: How :class:`TrueAffinity` trains a subset's model: fine-tuned from the base model, or from
#: a fresh initialisation.
ORACLE_MODES = ("finetune", "scratch")

#: Default epochs per subset and mode (see :class:`TrueAffinity`).
DEFAULT_EPOCHS = {"finetune": 5, "scratch": 20}


def _labels(data: Data, nodes: Tensor) -> np.ndarray:
    """``(n, T)`` int8 labels of ``nodes``, -1 where unknown (as the gradient stores keep them)."""
    lab = data.y[nodes].to(torch.int8)
    lm = data.get("label_mask")
    if lm is not None:
        lab[~lm[nodes]] = -1
    return lab.numpy()


class TrueAffinity:
    """True (trained) task affinity and grouping, scikit-learn style.

    For each task subset, train a model on the subset's tasks only (``mode``), score each of
    them on the validation nodes (minus the mean log-loss, or F1) and average the scores into
    the affinity matrix, as :class:`~graphtag.pipeline.GradTAG` does with its estimated scores.

    Parameters
    ----------
    num_groups
        Groups for :attr:`groups_` (None: only the affinity; call :meth:`group` later).
    mode
        ``"finetune"``: a copy of the trained base model, all parameters trainable (what
        Grad-TAG estimates); ``"scratch"``: a fresh model of the same architecture, seeded per
        subset (the higher-order affinity of Li et al., KDD 2023).
    num_subsets, subset_size
        Number ``m`` and size ``s`` of the subsets. ``num_subsets`` defaults to 200, far fewer
        than Grad-TAG's (each is a training run); ``subset_size`` None takes
        :func:`~graphtag.affinity.subset_plan`'s size (5 at 100 tasks). Ignored when
        :meth:`fit` is given ``subsets``.
    epochs
        Passes over the training nodes per subset (None: 5 for ``"finetune"``, 20 for
        ``"scratch"``). With ``full_batch`` an epoch is one step.
    lr
        Adam learning rate.
    batch_size, num_neighbors, full_batch
        Minibatches as the :class:`~graphtag.training.Trainer` makes them (give the base
        model's settings).
    max_score_nodes
        Cap on the validation nodes scored on (a seeded sample, the same draw as GradTAG's at
        equal ``seed``; None: all).
    metric
        ``"neg_logloss"`` or ``"f1"`` (see :func:`~graphtag.affinity.task_scores`).
    solver
        SDP solver for :meth:`group`.
    device
        Where the subset models train.
    seed
        Seeds the subsets, the score nodes, and each subset's training (subset ``k`` from
        ``seed`` and ``k``, so results do not depend on blocks, ranks or resumes).
    common_init
        Train every subset from the same initialisation, batch order and dropout draws
        (seeded by ``seed`` alone: common random numbers). Differences between subsets then
        come from their tasks, not from training noise, which otherwise swamps the small
        transfer effects the affinity averages (see ``bench/oracle.py``).
    progress
        Progress bar over the subsets.

    Attributes
    ----------
    subsets_ : ndarray of shape (m, s)
        The task subsets.
    coverage_ : dict
        Task and pair coverage of the subsets.
    score_nodes_ : Tensor
        The validation nodes scored on.
    scores_ : Tensor of shape (m, s)
        float64 score of task ``subsets_[k, j]`` under the model trained on subset ``k``.
    base_scores_ : ndarray of shape (T,)
        Each task's score under the given model (the base model in ``"finetune"`` mode).
    affinity_ : ndarray of shape (T, T)
        Normalised, symmetric affinity, zero diagonal.
    groups_ : list of list of int
        Task groups (when ``num_groups`` is set).
    timings_ : dict
        ``train`` and ``score`` seconds over the subsets this process trained (blocks loaded
        from a checkpoint are not counted), ``subsets_trained`` and ``seconds_per_subset``.

    Notes
    -----
    Cost: one training run per subset, plus an exact full-graph pass to score it. On
    amazon-top100 (4,336 nodes, 2,602 training nodes; GraphSAGE at the ``graphtag run``
    defaults: hidden 128, batches of 512, fan-outs 15/10, so 6 minibatches per epoch) a
    fine-tuning epoch is about 0.3 s on one CPU thread: 1.6 s per subset at the default 5
    epochs, 6 s from scratch at 20 (20 full-batch steps: 1.1 s), measured on a loaded 2-core
    machine, where two threads were 4-6 times slower than one.

    Examples
    --------
    >>> oracle = TrueAffinity(3, num_subsets=40, epochs=3).fit(model, data)  # doctest: +SKIP
    >>> oracle.affinity_.shape, oracle.groups_                               # doctest: +SKIP
    """

    #: Subsets per resumable block (the unit saved and shared over ranks).
    block: int = 8

    def __init__(
        self,
        num_groups: int | None = None,
        *,
        mode: str = "finetune",
        num_subsets: int | None = 200,
        subset_size: int | None = None,
        epochs: int | None = None,
        lr: float = 0.01,
        batch_size: int = 512,
        num_neighbors: Sequence[int] = (15, 10),
        full_batch: bool = False,
        max_score_nodes: int | None = 2000,
        metric: str = "neg_logloss",
        solver: str = "auto",
        device: str | torch.device = "cpu",
        seed: int = 0,
        common_init: bool = False,
        progress: bool = True,
    ) -> None:
        self.num_groups = num_groups
        self.mode = mode
        self.num_subsets = num_subsets
        self.subset_size = subset_size
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.num_neighbors = num_neighbors
        self.full_batch = full_batch
        self.max_score_nodes = max_score_nodes
        self.metric = metric
        self.solver = solver
        self.device = device
        self.seed = seed
        self.common_init = common_init
        self.progress = progress

    @property
    def epochs_(self) -> int:
        """The epochs per subset in effect."""
        return DEFAULT_EPOCHS.get(self.mode, 0) if self.epochs is None else int(self.epochs)

    def _check_params(self, num_tasks: int) -> None:
        if self.mode not in ORACLE_MODES:
            raise ValueError(f"mode must be one of {ORACLE_MODES} (got {self.mode!r}).")
        if self.num_subsets is not None and self.num_subsets < 1:
            raise ValueError(f"num_subsets must be >= 1 or None (got {self.num_subsets}).")
        if self.subset_size is not None and not 1 <= self.subset_size <= num_tasks:
            raise ValueError(f"subset_size must lie in [1, {num_tasks}] (got "
                             f"{self.subset_size}).")
        if self.epochs_ < 1:
            raise ValueError(f"epochs must be >= 1 or None (got {self.epochs}).")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0 (got {self.lr}).")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 (got {self.batch_size}).")
        if self.max_score_nodes is not None and self.max_score_nodes < 1:
            raise ValueError(f"max_score_nodes must be >= 1 or None (got "
                             f"{self.max_score_nodes}).")
        if self.metric not in ("neg_logloss", "f1"):
            raise ValueError(f"metric must be 'neg_logloss' or 'f1' (got {self.metric!r}).")
        if self.num_groups is not None and not 1 <= self.num_groups <= num_tasks:
            raise ValueError(f"num_groups must lie in [1, {num_tasks}] (got {self.num_groups}).")

    def _subsets(self, T: int, subsets: Any) -> np.ndarray:
        if subsets is None:
            m, s = subset_plan(T, self.num_subsets, self.subset_size)
            return sample_subsets(T, m, s, seed=self.seed)
        subs = np.asarray(subsets, dtype=np.int64)
        if subs.ndim != 2 or subs.size == 0:
            raise ValueError(f"subsets must be a non-empty 2-D (m, s) array, got shape "
                             f"{subs.shape}.")
        if subs.min() < 0 or subs.max() >= T:
            raise ValueError(f"subset entries must lie in [0, {T}).")
        if any(len(set(r.tolist())) != subs.shape[1] for r in subs):
            raise ValueError("each subset must hold distinct tasks.")
        return subs

    # ------------------------------------------------------------------ fit
    def fit(self, model: nn.Module, data: Data, checkpoint_dir: str | os.PathLike | None = None,
            *, subsets: Any | None = None, score_nodes: Any | None = None) -> TrueAffinity:
        """Train and score every subset; sets the fitted attributes (and :attr:`groups_`).

        Parameters
        ----------
        model
            The base model trained on all tasks (``"finetune"``), or any model of the wanted
            architecture (``"scratch"`` re-initialises it); not modified.
        data
            The graph with ``train_mask`` (trained on) and ``val_mask`` (scored on).
        checkpoint_dir
            Finished blocks of :attr:`block` subsets are saved there (``scores_*.npy``) and
            reused, so an interrupted fit resumes. Blocks saved under other settings, subsets,
            base weights or data are discarded.
        subsets
            ``(m, s)`` task subsets to train (default: sampled as in ``num_subsets``).
        score_nodes
            Node ids to score on (default: the seeded sample of validation nodes).

        Notes
        -----
        Under a process group every rank calls this; rank ``r`` trains blocks ``b`` with
        ``b % world == r`` (into ``checkpoint_dir``, which must then be shared, or exchanged
        through the process group without one) and every rank ends with all the attributes,
        equal to a single-process fit.
        """
        T = int(data.y.size(1))
        self._check_params(T)
        task_head(model)
        self.subsets_ = self._subsets(T, subsets)
        self.coverage_ = subset_coverage(self.subsets_, T)
        if score_nodes is None:
            nodes = sample_nodes(data.val_mask, self.max_score_nodes, self.seed * 7 + 2)
        else:
            sel = torch.as_tensor(np.asarray(score_nodes))
            nodes = sel.nonzero().flatten() if sel.dtype == torch.bool else sel.long()
        if nodes.numel() == 0:
            raise ValueError("no nodes to score on: data has no validation nodes (val_mask).")
        self.score_nodes_ = nodes
        labels = _labels(data, nodes)

        dev = torch.device(self.device)
        work = copy.deepcopy(model).to(dev)
        base_state = copy.deepcopy(work.state_dict())
        inputs = model_inputs(work, data, dev)
        self.base_scores_ = task_scores(exact_logits(work, data, nodes, inputs=inputs)[None],
                                        labels, np.arange(T)[None], metric=self.metric
                                        )[0].numpy()

        ck = Path(checkpoint_dir) if checkpoint_dir is not None else None
        if ck is not None:
            ck.mkdir(parents=True, exist_ok=True)
            if is_main():
                self._check_dir(ck, model, data, nodes)
            barrier()
        m = self.subsets_.shape[0]
        bounds = [(lo, min(lo + self.block, m)) for lo in range(0, m, self.block)]
        rank, world = get_rank(), get_world_size()

        def ck_file(lo: int, hi: int) -> Path | None:
            return ck / f"scores_{lo:07d}_{hi:07d}.npy" if ck is not None else None

        # subsets train independently (each seeded by its row), so any split of the blocks
        # over ranks gives the single-process result
        mine = shard(range(len(bounds)), rank, world)
        done: dict[int, np.ndarray] = {}
        t_train = t_score = 0.0
        trained = 0
        bar = tqdm(total=sum(bounds[b][1] - bounds[b][0] for b in mine), unit="subset",
                   desc=f"oracle ({self.mode})" if world == 1
                   else f"oracle ({self.mode}, rank 0 of {world})",
                   disable=not (self.progress and is_main()))
        for b in mine:
            lo, hi = bounds[b]
            f = ck_file(lo, hi)
            if f is not None and f.exists():
                done[b] = np.load(f)
                bar.update(hi - lo)
                continue
            logits = []
            for k in range(lo, hi):
                tasks = torch.from_numpy(self.subsets_[k])
                t0 = time.perf_counter()
                self._train_one(work, base_state, data, tasks, k, inputs)
                t1 = time.perf_counter()
                logits.append(exact_logits(work, data, nodes, tasks, inputs=inputs))
                t_train += t1 - t0
                t_score += time.perf_counter() - t1
                trained += 1
                bar.update(1)
            sc = task_scores(torch.stack(logits), labels, self.subsets_[lo:hi],
                             metric=self.metric).numpy()
            if f is not None:
                tmp = f.with_name(f.stem + ".tmp.npy")
                np.save(tmp, sc)
                os.replace(tmp, f)
            done[b] = sc
        bar.close()
        if world > 1:
            if ck is not None:  # every block is in the shared folder once all ranks are here
                barrier()
                done = {b: np.load(ck_file(*bounds[b])) for b in range(len(bounds))}
            else:  # no shared folder: exchange the blocks themselves
                done = {b: sc for part in all_gather_object(done) for b, sc in part.items()}
        self.scores_ = torch.from_numpy(np.concatenate([done[b] for b in range(len(bounds))]))
        self.affinity_ = affinity_matrix(self.subsets_, self.scores_, T)
        self.timings_ = {"train": t_train, "score": t_score, "subsets_trained": trained,
                         "seconds_per_subset": (t_train + t_score) / trained if trained
                         else None}
        if self.num_groups is not None:
            self.group()
        return self

    def _train_one(self, work: nn.Module, base_state: dict[str, Tensor], data: Data,
                   tasks: Tensor, k: int, inputs: ModelInputs) -> None:
        """Train ``work`` on subset ``k``'s tasks, from the base weights or from scratch."""
        seed = self.seed * 1_000_003 + (0 if self.common_init else k)
        if self.mode == "finetune":
            work.load_state_dict(base_state)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                work.reset_parameters()
        train_on_tasks(work, data, tasks, epochs=self.epochs_, lr=self.lr,
                       batch_size=self.batch_size, num_neighbors=self.num_neighbors,
                       full_batch=self.full_batch, seed=seed, inputs=inputs)

    def _check_dir(self, ck: Path, model: nn.Module, data: Data, nodes: Tensor) -> None:
        """Saved blocks are reused only for the same subsets, settings, weights and data; the
        others are removed so they cannot be picked up by mistake."""
        h = hashlib.sha256()
        for name, t in sorted(model.state_dict().items()):
            h.update(name.encode())
            if self.mode == "scratch":  # re-initialised per subset: only the shapes matter
                h.update(str(tuple(t.shape)).encode())
            else:
                h.update(t.detach().cpu().contiguous().numpy().tobytes())
        y = data.y
        lm = data.get("label_mask")
        summary = {  # cheap to compute on large graphs, and changes when the labels do
            "n": int(data.num_nodes), "y": list(y.shape),
            "pos": (y > 0).sum(0).tolist(),
            "known": None if lm is None else lm.sum(0).tolist(),
            "train": int(data.train_mask.sum()),
        }
        key = hashlib.sha256(json.dumps({
            "subsets": self.subsets_.tolist(), "mode": self.mode, "epochs": self.epochs_,
            "lr": self.lr, "batch_size": self.batch_size,
            "num_neighbors": list(self.num_neighbors), "full_batch": self.full_batch,
            "metric": self.metric, "seed": self.seed,
            "common_init": self.common_init, "nodes": nodes.tolist(),
            "model": h.hexdigest(), "data": summary,
        }, sort_keys=True, default=str).encode()).hexdigest()
        f = ck / "oracle.json"
        old = json.loads(f.read_text()).get("key") if f.exists() else None
        if old != key:
            for stale in ck.glob("scores_*.npy"):
                stale.unlink()
            tmp = f.with_name(f.name + ".tmp")
            tmp.write_text(json.dumps({"key": key}))
            os.replace(tmp, f)

    def group(self, k: int | None = None, solver: str | None = None) -> list[list[int]]:
        """Group the tasks by the clustering SDP on :attr:`affinity_`; sets :attr:`groups_`."""
        from graphtag.grouping import sdp_groups

        k = self.num_groups if k is None else k
        if k is None:
            raise ValueError("give k (or num_groups when constructing TrueAffinity).")
        self.groups_ = sdp_groups(self.affinity_, k, solver=solver or self.solver,
                                  seed=self.seed)
        return self.groups_


#: Alias: the oracle of the task-affinity estimate.
OracleAffinity = TrueAffinity
