"""Minibatch multitask training with early stopping, checkpoints and resume.

Batches come from :mod:`graphtag.training.batching`, checkpoint files and RNG state from
:mod:`graphtag.training.checkpoint`, the gradient exchange of data-parallel training from
:mod:`graphtag.training.parallel` and inference from :mod:`graphtag.training.inference`;
this module has the training loop and early stopping.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from tqdm.auto import tqdm

from graphtag import distributed as gdist
from graphtag.datasets.tasks import positives_per_task
from graphtag.optim.base import EqualWeighting, LossCombiner
from graphtag.training import inference
from graphtag.training.batching import NodeBatch, RowDropout, batch_seed, iter_batches
from graphtag.training.checkpoint import (
    atomic_save,
    load_last,
    rng_state,
    seed_everything,
    set_rng_state,
)
from graphtag.training.losses import masked_bce_per_task
from graphtag.training.parallel import average_gradients, sync_mode, wrap_ddp

__all__ = ["Trainer", "seed_everything"]


class Trainer:
    """Train a multitask model on all tasks at once.

    Graph models (``model.uses_graph``, e.g. :class:`~graphtag.models.MultitaskGNN`) train on
    neighbour-sampled minibatches (or the full graph with ``full_batch=True``);
    :class:`~graphtag.models.SIGN` trains on node minibatches of its precomputed hops. The
    loss is the masked per-task BCE (:func:`~graphtag.training.masked_bce_per_task`)
    combined by ``combiner``; Adam optimises it; training stops early when validation
    macro-F1 has not improved for ``patience`` epochs, and the best epoch's weights are
    restored.

    Parameters
    ----------
    model
        The model to train (updated in place).
    lr, weight_decay
        Adam settings.
    epochs
        Maximum number of epochs.
    batch_size
        Seed nodes per minibatch.
    num_neighbors
        Fan-out per layer for neighbour sampling (``-1``: all neighbours).
    patience
        Early-stopping patience in epochs (``None``: never stop early).
    combiner
        How per-task losses become the update; default :class:`~graphtag.optim.EqualWeighting`.
        If it has ``needs_representation = True``, its ``backward`` also gets ``rep=``: the
        input of ``model.head`` for the loss rows (captured by a forward pre-hook, so the
        forward pass is unchanged). If it defines ``after_step(model)``, that is called after
        every optimiser step.
    pos_weight
        ``None``, a float, or ``"auto"`` (per task ``#neg / #pos`` on the training nodes,
        clipped to ``[1, 50]``), weighting positives in the BCE to counter rare labels.
    full_batch
        Train on the whole graph each step instead of sampled minibatches.
    device
        ``"cpu"``, ``"cuda"`` or a :class:`torch.device`.
    seed
        Seeds model-independent randomness (sampling, shuffling, dropout).
    checkpoint_dir
        If set, ``last.pt`` is written there after every epoch (atomically) and ``best.pt``
        when validation improves; ``fit(..., resume=True)`` continues from ``last.pt``.
    progress
        Show a tqdm bar over epochs.
    distributed
        Data-parallel training over the ranks of an initialised process group (see
        :mod:`graphtag.distributed`): ``None`` (default) when one with more than one rank is
        initialised, ``False`` never (each process trains on its own, e.g. a different model
        per rank). See Notes.

    Notes
    -----
    Distributed training. Every rank builds the same model and calls :meth:`fit` with the
    same data. Every rank sees the same global batches (shuffle and sampling seeds from the
    shared generator) and takes its share of each: seeds ``r, r + world, ...`` and the part
    of the sampled subgraph they depend on, with dropout drawn per global row
    (:mod:`graphtag.training.batching`). Its per-task losses are weighted by its share of
    the batch's labelled rows, so they sum over the ranks to the global batch's; with the
    default combiner :class:`~torch.nn.parallel.DistributedDataParallel` sums the gradients
    and each update is the one-process update: the same model on any number of processes,
    to floating-point rounding. Another combiner is applied to each rank's local mean losses
    and the gradients are averaged (close to, not equal to, a one-process run). Rank 0
    evaluates, decides early stopping and writes the checkpoints, so every rank takes the
    same decisions; a resume continues on any number of processes.

    Attributes
    ----------
    history_ : list of dict
        One entry per epoch: ``epoch``, ``loss``, ``val_macro_f1``, ``val_loss``, ``seconds``.
    best_epoch_ : int
        Epoch whose weights were restored.
    best_score_ : float
        Validation macro-F1 at ``best_epoch_``.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        lr: float = 0.01,
        weight_decay: float = 0.0,
        epochs: int = 50,
        batch_size: int = 512,
        num_neighbors: Sequence[int] = (15, 10),
        patience: int | None = 10,
        combiner: LossCombiner | None = None,
        pos_weight: float | str | None = None,
        full_batch: bool = False,
        device: str | torch.device = "cpu",
        seed: int = 0,
        checkpoint_dir: str | os.PathLike | None = None,
        progress: bool = True,
        distributed: bool | None = None,
    ) -> None:
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1 (got {epochs}).")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 (got {batch_size}).")
        if isinstance(pos_weight, str) and pos_weight != "auto":
            raise ValueError(f"pos_weight must be None, a number or 'auto' (got {pos_weight!r}).")
        self.model = model
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.num_neighbors = list(num_neighbors)
        self.patience = patience
        self.combiner = combiner if combiner is not None else EqualWeighting()
        self.pos_weight = pos_weight
        self.full_batch = full_batch
        self.device = torch.device(device)
        self.seed = seed
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.progress = progress
        self.distributed = distributed
        self._cache: dict[str, Any] = {}
        # The module batches are run through: the model, or its DDP wrapper during fit.
        self._net: nn.Module = model
        self._sync: str | None = None  # None, "ddp" or "allreduce" (set by fit)
        self._rank, self._world = 0, 1  # this process's share of every batch (set by fit)
        # Representation capture for combiners that need it (see _capture_representation).
        self._rep_capture = False
        self._rep_rows: Any = None
        self._rep: Tensor | None = None

    # ------------------------------------------------------------------ helpers
    @property
    def _uses_graph(self) -> bool:
        return bool(getattr(self.model, "uses_graph", True))

    def _shared_parameters(self) -> list[nn.Parameter]:
        enc = getattr(self.model, "encoder", None)
        if enc is not None:
            return list(enc.parameters())
        head_ids = {id(p) for p in getattr(self.model, "head", nn.Module()).parameters()}
        return [p for p in self.model.parameters() if id(p) not in head_ids]

    def _capture_representation(self):
        """Register a forward pre-hook on ``model.head`` that records its input.

        The hook also restricts the head's input to the loss rows (``self._rep_rows``, set by
        :meth:`_forward_rows`), so the representation handed to the combiner has only the
        rows whose gradients are nonzero (seed nodes, training nodes).
        """
        head = getattr(self.model, "head", None)
        if not isinstance(head, nn.Module):
            raise ValueError(
                f"{self.combiner!r} needs the shared representation, i.e. a model with a "
                f".head module (MultitaskGNN, SIGN); {type(self.model).__name__} has none."
            )

        def hook(module: nn.Module, args: tuple) -> tuple | None:
            if not torch.is_grad_enabled():  # inference: leave it alone
                return None
            h = args[0]
            if self._rep_rows is not None:
                h = h[self._rep_rows]
            self._rep = h
            return (h, *args[1:])

        return head.register_forward_pre_hook(hook)

    def _forward_rows(self, forward, rows) -> Tensor:
        """``forward()[rows]``; with representation capture the head only sees ``rows``."""
        if not self._rep_capture:
            return forward()[rows]
        self._rep_rows = rows
        try:
            return forward()
        finally:
            self._rep_rows = None

    def _check_data(self, data: Data) -> None:
        for key in ("x", "y", "train_mask", "val_mask"):
            if data.get(key) is None:
                raise ValueError(f"data has no {key!r}; load it with graphtag.datasets.")
        T = getattr(self.model, "num_tasks", data.y.size(1))
        if data.y.size(1) != T:
            raise ValueError(f"data has {data.y.size(1)} tasks but the model has {T} outputs.")

    def _check_fanouts(self) -> None:
        if len(self.num_neighbors) != getattr(self.model.encoder, "num_layers", 0):
            raise ValueError(
                f"num_neighbors has {len(self.num_neighbors)} entries but the model has "
                f"{self.model.encoder.num_layers} layers; give one fan-out per layer."
            )

    def _pos_weight(self, data: Data) -> Tensor | None:
        if self.pos_weight is None:
            return None
        T = data.y.size(1)
        if self.pos_weight == "auto":
            # chunked: data.y[train_mask] would copy most of the label matrix (3 GB at scale)
            pos = positives_per_task(data.y, data.train_mask, None).float()
            neg = int(data.train_mask.sum()) - pos
            w = (neg / pos.clamp_min(1)).clamp(1.0, 50.0)
        else:
            w = torch.full((T,), float(self.pos_weight))
        return w.to(self.device)

    # ---------------------------------------------------------------- inference
    def predict_logits(self, data: Data, nodes: Tensor | None = None,
                       batch_size: int = 65536) -> Tensor:
        """Logits of the nodes ``nodes`` (index or bool mask; None: every node) for every
        task, ``(len(nodes), T)``, with exact full-graph inference.

        Graph models run layer-wise over the whole graph (no sampling) and keep the requested
        rows; SIGN runs over its precomputed hops of just those rows, in chunks written into
        one preallocated output (no concatenation copy: 4 GB at 2M nodes x 500 tasks).
        """
        return inference.predict_logits(self.model, data, nodes, batch_size=batch_size,
                                        device=self.device, cache=self._cache)

    def evaluate(self, data: Data, split: str = "test", logits: Tensor | None = None, *,
                 roc_auc: bool = True) -> dict[str, object]:
        """Scores on ``split`` (``"train"``, ``"val"`` or ``"test"``): see
        :func:`~graphtag.training.multitask_scores`, plus ``loss`` (mean masked BCE).

        ``logits`` are all nodes' logits (from :meth:`predict_logits`); None predicts only the
        split's nodes. ``roc_auc=False`` skips the per-task ROC-AUC (reported ``nan``).
        """
        return inference.evaluate(data, split, lambda rows: self.predict_logits(data, rows),
                                  logits, roc_auc=roc_auc)

    # ----------------------------------------------------------------- training
    def _batches(self, data: Data, gen: torch.Generator) -> Iterator[NodeBatch]:
        """One epoch of this process's training batches (its share of every global batch)."""
        if self._uses_graph and not self.full_batch:
            self._check_fanouts()
        layers = getattr(getattr(self.model, "encoder", None), "num_layers", None)
        return iter_batches(
            data, uses_graph=self._uses_graph,
            xs=None if self._uses_graph else inference.sign_inputs(self.model, data, self._cache),
            full_batch=self.full_batch, batch_size=self.batch_size,
            num_neighbors=self.num_neighbors, gen=gen, device=self.device, cache=self._cache,
            rank=self._rank, world=self._world, num_layers=layers)

    def fit(self, data: Data, *, resume: bool = False) -> Trainer:
        """Train on ``data`` (see the class docstring); returns ``self``.

        With ``resume=True`` and a ``checkpoint_dir`` holding ``last.pt``, training continues
        from the epoch after the saved one, with the saved optimiser and RNG states, so an
        interrupted run ends with the same result as an uninterrupted one.
        """
        self._check_data(data)
        self._cache.clear()
        self.model.to(self.device)
        self._sync = sync_mode(self.distributed, self.combiner)
        self._rank, self._world = ((gdist.get_rank(), gdist.get_world_size()) if self._sync
                                   else (0, 1))
        opt = torch.optim.Adam(self.model.parameters(), lr=self.lr,
                               weight_decay=self.weight_decay)
        pos_weight = self._pos_weight(data)
        gen = torch.Generator().manual_seed(self.seed)  # batches: the same on all ranks
        seed_everything(self.seed)  # anything else random (combiners): the same on all ranks
        start, bad = 1, 0
        self.history_: list[dict[str, float]] = []
        self.best_score_, self.best_epoch_ = -float("inf"), 0
        best_state = copy.deepcopy(self.model.state_dict())
        last = self.checkpoint_dir / "last.pt" if self.checkpoint_dir else None
        if last is not None:
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        ck = (load_last(last, self.device, shared=self._sync is not None)
              if resume and last is not None else None)
        if ck is not None:
            self.model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            best_state, bad = ck["best_state"], ck["bad_epochs"]
            self.history_, self.best_score_, self.best_epoch_ = (
                ck["history"], ck["best_score"], ck["best_epoch"])
            set_rng_state(ck["rng"])
            gen.set_state(ck["gen"])
            start = ck["epoch"] + 1
            if ck.get("finished"):
                start = self.epochs + 1
        shared = self._shared_parameters()
        needs_rep = bool(getattr(self.combiner, "needs_representation", False))
        after_step = getattr(self.combiner, "after_step", None)
        handle = self._capture_representation() if needs_rep else None
        self._rep_capture = needs_rep
        bar = tqdm(range(start, self.epochs + 1), desc="train",
                   disable=not self.progress or self._rank != 0,
                   initial=start - 1, total=self.epochs)
        if self._sync == "ddp":
            self._net = wrap_ddp(self.model, self.device)
        try:
            self._train_epochs(data, bar, opt, gen, pos_weight, shared, after_step,
                               best_state, bad, last)
        finally:
            if handle is not None:
                handle.remove()
            self._rep_capture, self._rep = False, None
            self._net, self._sync = self.model, None
            self._rank, self._world = 0, 1
        return self

    def _step(self, b: NodeBatch, seed: int, pos_weight: Tensor | None,
              shared: list[nn.Parameter]) -> Tensor:
        """Forward and backward of one batch; returns its per-task losses (this rank's part
        of the global batch's, in data-parallel training with the default combiner)."""
        with RowDropout(b, seed):
            out = self._forward_rows(lambda: self._net(*b.args), b.rows)
        losses = masked_bce_per_task(out, b.y, b.label_mask, pos_weight)
        if b.weight is not None and self._sync != "allreduce":
            losses = losses * b.weight  # the parts sum to the global batch's mean over ranks
        if self._rep_capture:
            rep, self._rep = self._rep, None
            self.combiner.backward(losses, shared, rep=rep)
        else:
            self.combiner.backward(losses, shared)
        if self._sync == "allreduce":
            average_gradients(self.model)
        return losses.detach()

    def _train_epochs(self, data, bar, opt, gen, pos_weight, shared, after_step,
                      best_state, bad, last) -> None:
        """The epoch loop of :meth:`fit` (split out so the head hook is always removed)."""
        writes = self._sync is None or gdist.is_main()  # distributed: rank 0 checkpoints
        for epoch in bar:
            t0 = time.perf_counter()
            self.model.train()
            total, nb = 0.0, 0
            for i, b in enumerate(self._batches(data, gen)):
                opt.zero_grad(set_to_none=True)
                losses = self._step(b, batch_seed(self.seed, epoch, i), pos_weight, shared)
                opt.step()
                if after_step is not None:
                    after_step(self.model)
                total += float(losses.mean())
                nb += 1
            if self._sync is not None:
                # the global batches' losses (ddp: the ranks' parts sum to them; allreduce:
                # the mean of the ranks' local losses); validation once, on rank 0, for all
                parts = gdist.all_gather_object(total)
                total = sum(parts) / (len(parts) if self._sync == "allreduce" else 1)
                val = gdist.on_main(lambda: self.evaluate(data, "val", roc_auc=False))
            else:
                val = self.evaluate(data, "val", roc_auc=False)
            rec = {"epoch": epoch, "loss": total / max(nb, 1), "val_loss": val["loss"],
                   "val_macro_f1": val["macro_f1"], "seconds": time.perf_counter() - t0}
            self.history_.append(rec)
            score = val["macro_f1"] if not np.isnan(val["macro_f1"]) else -val["loss"]
            if score > self.best_score_:
                self.best_score_, self.best_epoch_, bad = score, epoch, 0
                best_state = copy.deepcopy(self.model.state_dict())
                if self.checkpoint_dir is not None and writes:
                    atomic_save(best_state, self.checkpoint_dir / "best.pt")
            else:
                bad += 1
            stop = self.patience is not None and bad >= self.patience
            bar.set_postfix(loss=f"{rec['loss']:.4f}", val_f1=f"{rec['val_macro_f1']:.4f}")
            if last is not None and writes:
                atomic_save({
                    "epoch": epoch, "model": self.model.state_dict(),
                    "optimizer": opt.state_dict(), "best_state": best_state,
                    "bad_epochs": bad, "history": self.history_,
                    "best_score": self.best_score_, "best_epoch": self.best_epoch_,
                    "rng": rng_state(), "gen": gen.get_state(),
                    "finished": stop or epoch == self.epochs,
                }, last)
            if stop:
                break
        bar.close()
        self.model.load_state_dict(best_state)

    def save_history(self, path: str | os.PathLike) -> None:
        """Write :attr:`history_` as JSON."""
        Path(path).write_text(json.dumps(self.history_, indent=1))
