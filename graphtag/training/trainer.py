"""Minibatch multitask training with early stopping, checkpoints and resume."""

from __future__ import annotations

import copy
import json
import math
import os
import random
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.loader import NeighborLoader
from torch_geometric.sampler import NeighborSampler
from torch_sparse import SparseTensor
from tqdm.auto import tqdm

from graphtag import distributed as gdist
from graphtag.datasets.tasks import positives_per_task
from graphtag.models.sign import sign_propagate
from graphtag.optim.base import EqualWeighting, LossCombiner
from graphtag.training.losses import masked_bce_per_task
from graphtag.training.metrics import multitask_scores

__all__ = ["Trainer", "seed_everything"]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) RNGs."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002  (user code may draw from the legacy global RNG)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(),  # noqa: NPY002
            "torch": torch.get_rng_state()}


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    torch.set_rng_state(state["torch"])


def _atomic_save(obj: object, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class Trainer:
    """Train a multitask model on all tasks at once.

    Graph models (``model.uses_graph``, e.g. :class:`~graphtag.models.MultitaskGNN`) train on
    :class:`~torch_geometric.loader.NeighborLoader` minibatches (or the full graph with
    ``full_batch=True``); :class:`~graphtag.models.SIGN` trains on node minibatches of its
    precomputed hops. The loss is the masked per-task BCE
    (:func:`~graphtag.training.masked_bce_per_task`) combined by ``combiner``; Adam
    optimises it; training stops early when validation macro-F1 has not improved for
    ``patience`` epochs, and the best epoch's weights are restored.

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
    same data. Each epoch the training nodes are shuffled by the shared seeded generator
    (identically on all ranks), padded by wrapping around to a multiple of the world size,
    and rank ``r`` takes positions ``r, r + world, ...``: equal shares, hence the same number
    of batches per rank, so the collectives line up. A rank's batch is
    ``ceil(batch_size / world)`` nodes, so a step still sees about ``batch_size`` nodes in
    all and an epoch has about as many steps as in one process. With the default combiner
    the model is wrapped in :class:`~torch.nn.parallel.DistributedDataParallel`; another
    combiner is applied to each rank's local batch and the resulting gradients are averaged
    over the ranks (a data-parallel variant, not the combiner on the union batch). Rank 0
    evaluates, decides early stopping and writes the checkpoints; the others receive its
    numbers, so every rank takes the same decisions and ends with the same weights. Dropout
    and neighbour sampling draw from per-rank streams (seed offset by the rank). The result
    matches a one-process run only statistically: batch composition differs, so it cannot
    be bit-identical; a resume with the same world size continues exactly.

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

    def _sign_inputs(self, data: Data) -> Tensor:
        xs = data.get("xs")
        if xs is None:
            # Keyed by the graph object: a trainer may evaluate graphs other than its own.
            key = ("xs", id(data.edge_index), id(data.x))
            if key not in self._cache:
                self._cache[key] = sign_propagate(
                    data.x, data.edge_index, self.model.num_hops, data.num_nodes
                )
            xs = self._cache[key]
        return xs

    def _adj_t(self, data: Data) -> SparseTensor:
        key = ("adj_t", id(data.edge_index))
        if key not in self._cache:
            n = data.num_nodes
            self._cache[key] = SparseTensor.from_edge_index(
                data.edge_index, sparse_sizes=(n, n)
            ).t().to(self.device)
        return self._cache[key]

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
    @torch.no_grad()
    def predict_logits(self, data: Data, nodes: Tensor | None = None,
                       batch_size: int = 65536) -> Tensor:
        """Logits of the nodes ``nodes`` (index or bool mask; None: every node) for every
        task, ``(len(nodes), T)``, with exact full-graph inference.

        Graph models run layer-wise over the whole graph (no sampling) and keep the requested
        rows; SIGN runs over its precomputed hops of just those rows, in chunks written into
        one preallocated output (no concatenation copy: 4 GB at 2M nodes x 500 tasks).
        """
        if nodes is not None and nodes.dtype == torch.bool:
            nodes = nodes.nonzero().flatten()
        was_training = self.model.training
        self.model.eval()
        try:
            if self._uses_graph:
                x = data.x.to(self.device)
                out = self.model.inference(x, self._adj_t(data)).cpu()
                return out if nodes is None else out[nodes]
            xs = self._sign_inputs(data)
            n = xs.size(0) if nodes is None else nodes.numel()
            out = None
            for i in range(0, n, batch_size):
                rows = slice(i, i + batch_size) if nodes is None else nodes[i : i + batch_size]
                chunk = self.model(xs[rows].to(self.device)).cpu()
                if out is None:
                    out = torch.empty(n, chunk.size(1), dtype=chunk.dtype)
                out[i : i + chunk.size(0)] = chunk
            if out is None:  # no rows asked for
                out = torch.empty(0, self.model(xs[:1].to(self.device)).size(1))
            return out
        finally:
            self.model.train(was_training)

    def evaluate(self, data: Data, split: str = "test", logits: Tensor | None = None, *,
                 roc_auc: bool = True) -> dict[str, object]:
        """Scores on ``split`` (``"train"``, ``"val"`` or ``"test"``): see
        :func:`~graphtag.training.multitask_scores`, plus ``loss`` (mean masked BCE).

        ``logits`` are all nodes' logits (from :meth:`predict_logits`); None predicts only the
        split's nodes. ``roc_auc=False`` skips the per-task ROC-AUC (reported ``nan``).
        """
        mask = data.get(f"{split}_mask")
        if mask is None:
            raise ValueError(f"split={split!r}: data has no '{split}_mask'.")
        rows = mask.nonzero().flatten()
        out = self.predict_logits(data, rows) if logits is None else logits[rows]
        lm = data.get("label_mask")
        lm_s = lm[rows] if lm is not None else None
        y = data.y[rows]
        scores = multitask_scores(y, out, lm_s, roc_auc=roc_auc)
        scores["loss"] = float(masked_bce_per_task(out, y.to(out.dtype), lm_s).mean())
        return scores

    # ----------------------------------------------------------------- training
    def _rank_nodes(self, data: Data, gen: torch.Generator | None) -> Tensor:
        """This rank's share of the training nodes for one epoch (distributed training).

        The shuffle (when ``gen`` is given) is the same on every rank; padding by wrapping
        around gives every rank ``ceil(n / world)`` nodes.
        """
        idx = data.train_mask.nonzero().flatten()
        if gen is not None:
            idx = idx[torch.randperm(idx.numel(), generator=gen)]
        world = gdist.get_world_size()
        total = math.ceil(idx.numel() / world) * world
        if total > idx.numel():
            idx = idx.repeat(math.ceil(total / idx.numel()))[:total]
        return idx[gdist.get_rank()::world]

    def _batches(self, data: Data, gen: torch.Generator):
        """Yield ``(logits, y, label_mask)`` for the seed nodes of each training batch."""
        if self._sync is not None:
            yield from self._rank_batches(data, gen)
            return
        lm = data.get("label_mask")
        dev = self.device
        if not self._uses_graph:
            xs = self._sign_inputs(data)
            idx = data.train_mask.nonzero().flatten()
            idx = idx[torch.randperm(idx.numel(), generator=gen)]
            for s in range(0, idx.numel(), self.batch_size):
                b = idx[s : s + self.batch_size]
                yield (self.model(xs[b].to(dev)), data.y[b].to(dev),
                       None if lm is None else lm[b].to(dev))
            return
        if self.full_batch:
            m = data.train_mask.to(dev)
            out = self._forward_rows(
                lambda: self.model(data.x.to(dev), data.edge_index.to(dev)), m)
            yield out, data.y.to(dev)[m], None if lm is None else lm.to(dev)[m]
            return
        self._check_fanouts()
        if "loader" not in self._cache:
            with warnings.catch_warnings():
                # pyg-lib has no wheels here; torch-sparse's sampler is the supported fallback.
                warnings.filterwarnings("ignore", message=".*pyg-lib.*")
                self._cache["loader"] = NeighborLoader(
                    data, num_neighbors=self.num_neighbors, batch_size=self.batch_size,
                    input_nodes=data.train_mask, shuffle=True, generator=gen,
                )
        for batch in self._cache["loader"]:
            bs = batch.batch_size
            out = self._forward_rows(
                lambda batch=batch: self.model(batch.x.to(dev), batch.edge_index.to(dev)),
                slice(0, bs))
            blm = batch.get("label_mask")
            yield out, batch.y[:bs].to(dev), None if blm is None else blm[:bs].to(dev)

    def _rank_batches(self, data: Data, gen: torch.Generator):
        """:meth:`_batches` of distributed training: this rank's share, ``ceil(batch_size /
        world)`` nodes per batch, through the (DDP-wrapped) module."""
        lm = data.get("label_mask")
        dev, net = self.device, self._net
        bs = math.ceil(self.batch_size / gdist.get_world_size())
        if self._uses_graph and self.full_batch:
            if "rank_rows" not in self._cache:  # a fixed share: the step sees the whole graph
                self._cache["rank_rows"] = self._rank_nodes(data, None).to(dev)
            rows = self._cache["rank_rows"]
            out = self._forward_rows(lambda: net(data.x.to(dev), data.edge_index.to(dev)), rows)
            yield out, data.y.to(dev)[rows], None if lm is None else lm.to(dev)[rows]
            return
        idx = self._rank_nodes(data, gen)
        if not self._uses_graph:
            xs = self._sign_inputs(data)
            for s in range(0, idx.numel(), bs):
                b = idx[s : s + bs]
                yield (net(xs[b].to(dev)), data.y[b].to(dev),
                       None if lm is None else lm[b].to(dev))
            return
        self._check_fanouts()
        if "sampler" not in self._cache:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*pyg-lib.*")
                self._cache["sampler"] = NeighborSampler(data, self.num_neighbors)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*pyg-lib.*")
            loader = NeighborLoader(data, num_neighbors=self.num_neighbors, batch_size=bs,
                                    input_nodes=idx, shuffle=False,
                                    neighbor_sampler=self._cache["sampler"])
        for batch in loader:
            n = batch.batch_size
            out = self._forward_rows(
                lambda batch=batch: net(batch.x.to(dev), batch.edge_index.to(dev)),
                slice(0, n))
            blm = batch.get("label_mask")
            yield out, batch.y[:n].to(dev), None if blm is None else blm[:n].to(dev)

    def _check_fanouts(self) -> None:
        if len(self.num_neighbors) != getattr(self.model.encoder, "num_layers", 0):
            raise ValueError(
                f"num_neighbors has {len(self.num_neighbors)} entries but the model has "
                f"{self.model.encoder.num_layers} layers; give one fan-out per layer."
            )

    def _average_gradients(self) -> None:
        """Average ``.grad`` over the ranks (distributed training without DDP's hooks)."""
        params = list(self.model.parameters())
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                          for p in params])
        torch.distributed.all_reduce(flat)
        flat /= gdist.get_world_size()
        pos = 0
        for p in params:
            n = p.numel()
            p.grad = flat[pos : pos + n].view_as(p).clone()
            pos += n

    def fit(self, data: Data, *, resume: bool = False) -> Trainer:
        """Train on ``data`` (see the class docstring); returns ``self``.

        With ``resume=True`` and a ``checkpoint_dir`` holding ``last.pt``, training continues
        from the epoch after the saved one, with the saved optimiser and RNG states, so an
        interrupted run ends with the same result as an uninterrupted one.
        """
        self._check_data(data)
        self._cache.clear()
        self.model.to(self.device)
        self._sync = self._sync_mode()
        rank = gdist.get_rank() if self._sync else 0
        opt = torch.optim.Adam(self.model.parameters(), lr=self.lr,
                               weight_decay=self.weight_decay)
        pos_weight = self._pos_weight(data)
        gen = torch.Generator().manual_seed(self.seed)  # the shuffle: the same on all ranks
        # dropout and neighbour sampling: a stream per rank (rank 0 keeps the plain seed)
        seed_everything(self.seed + 1_000_003 * rank)
        start, bad = 1, 0
        self.history_: list[dict[str, float]] = []
        self.best_score_, self.best_epoch_ = -float("inf"), 0
        best_state = copy.deepcopy(self.model.state_dict())
        last = self.checkpoint_dir / "last.pt" if self.checkpoint_dir else None
        if last is not None:
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        ck = self._load_last(last) if resume and last is not None else None
        if ck is not None:
            self.model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            best_state, bad = ck["best_state"], ck["bad_epochs"]
            self.history_, self.best_score_, self.best_epoch_ = (
                ck["history"], ck["best_score"], ck["best_epoch"])
            rngs = ck.get("rng_ranks")
            # each rank its own streams when the world size is the one that saved them
            same_world = rngs is not None and len(rngs) == gdist.get_world_size()
            _set_rng_state(rngs[rank] if self._sync and same_world else ck["rng"])
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
                   disable=not self.progress or rank != 0,
                   initial=start - 1, total=self.epochs)
        if self._sync == "ddp":
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index if self.device.index is not None
                   else torch.cuda.current_device()] if self.device.type == "cuda" else None
            self._net = DistributedDataParallel(self.model, device_ids=ids)
        try:
            self._train_epochs(data, bar, opt, gen, pos_weight, shared, after_step,
                               best_state, bad, last)
        finally:
            if handle is not None:
                handle.remove()
            self._rep_capture, self._rep = False, None
            self._net, self._sync = self.model, None
        return self

    def _sync_mode(self) -> str | None:
        """How gradients meet across ranks: None (one process, or ``distributed=False``),
        ``"ddp"`` (plain sum: DistributedDataParallel) or ``"allreduce"`` (a combiner that
        computes its own gradients, which DDP's backward hooks would not see)."""
        if self.distributed is False or not gdist.is_distributed():
            return None
        plain = type(self.combiner) is EqualWeighting
        return "ddp" if plain else "allreduce"

    def _load_last(self, last: Path) -> dict[str, Any] | None:
        """The ``last.pt`` checkpoint, or None. Distributed: rank 0 reads it and sends it,
        so the other ranks never depend on seeing a file another node wrote."""
        if self._sync is None:
            if not last.exists():
                return None
            return torch.load(last, weights_only=False, map_location=self.device)
        return gdist.on_main(lambda: torch.load(last, weights_only=False, map_location="cpu")
                             if last.exists() else None)

    def _train_epochs(self, data, bar, opt, gen, pos_weight, shared, after_step,
                      best_state, bad, last) -> None:
        """The epoch loop of :meth:`fit` (split out so the head hook is always removed)."""
        writes = self._sync is None or gdist.is_main()  # distributed: rank 0 checkpoints
        for epoch in bar:
            t0 = time.perf_counter()
            self.model.train()
            total, nb = 0.0, 0
            for out, y, lm in self._batches(data, gen):
                opt.zero_grad(set_to_none=True)
                losses = masked_bce_per_task(out, y, lm, pos_weight)
                if self._rep_capture:
                    rep, self._rep = self._rep, None
                    self.combiner.backward(losses, shared, rep=rep)
                else:
                    self.combiner.backward(losses, shared)
                if self._sync == "allreduce":
                    self._average_gradients()
                opt.step()
                if after_step is not None:
                    after_step(self.model)
                total += float(losses.detach().mean())
                nb += 1
            if self._sync is not None:
                # the mean over every rank's batches; validation once, on rank 0, for all
                parts = gdist.all_gather_object((total, nb))
                total, nb = sum(t for t, _ in parts), sum(n for _, n in parts)
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
                    _atomic_save(best_state, self.checkpoint_dir / "best.pt")
            else:
                bad += 1
            stop = self.patience is not None and bad >= self.patience
            bar.set_postfix(loss=f"{rec['loss']:.4f}", val_f1=f"{rec['val_macro_f1']:.4f}")
            if last is not None:
                rng = _rng_state()
                rngs = gdist.all_gather_object(rng) if self._sync else None
                if writes:
                    _atomic_save({
                        "epoch": epoch, "model": self.model.state_dict(),
                        "optimizer": opt.state_dict(), "best_state": best_state,
                        "bad_epochs": bad, "history": self.history_,
                        "best_score": self.best_score_, "best_epoch": self.best_epoch_,
                        "rng": rng, "rng_ranks": rngs, "gen": gen.get_state(),
                        "finished": stop or epoch == self.epochs,
                    }, last)
            if stop:
                break
        bar.close()
        self.model.load_state_dict(best_state)

    def save_history(self, path: str | os.PathLike) -> None:
        """Write :attr:`history_` as JSON."""
        Path(path).write_text(json.dumps(self.history_, indent=1))
