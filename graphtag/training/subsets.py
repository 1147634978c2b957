"""Training a model on a subset of its tasks, and the minibatches and logits that takes.

The true-affinity oracle (:class:`~graphtag.affinity.TrueAffinity`) trains one model per task
subset with these, and ``bench/affinity.py`` fine-tunes its ground truth with them: only the
subset's head rows get a loss, on the same kind of minibatches the
:class:`~graphtag.training.Trainer` makes (neighbour-sampled subgraphs, or node batches of
precomputed SIGN hops).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data

from graphtag.training.losses import masked_bce_per_task

__all__ = ["ModelInputs", "exact_logits", "model_inputs", "sample_nodes", "subset_logits",
           "task_head", "train_batches", "train_on_tasks"]




@dataclass
class ModelInputs:
    """What a model reads besides the minibatches, built once per graph by
    :func:`model_inputs`: SIGN's propagated hops ``xs`` ``(N, K + 1, F)``, or a graph model's
    features ``x`` and transposed adjacency ``adj_t`` (for exact full-graph passes) and its
    neighbour samplers by fan-out (shared by every epoch's loader: the graph is indexed
    once)."""

    uses_graph: bool
    device: torch.device
    xs: Tensor | None = None
    x: Tensor | None = None
    adj_t: Any = None
    samplers: dict[tuple[int, ...], Any] = field(default_factory=dict)


def model_inputs(model: nn.Module, data: Data, device: str | torch.device = "cpu"
                 ) -> ModelInputs:
    """The :class:`ModelInputs` of ``model`` on ``data`` (``data.xs`` / ``data.adj_t`` are
    used when present, else computed)."""
    dev = torch.device(device)
    if not getattr(model, "uses_graph", True):
        xs = data.get("xs")
        if xs is None:
            from graphtag.models.sign import sign_propagate

            xs = sign_propagate(data.x, data.edge_index, model.num_hops, data.num_nodes)
        return ModelInputs(False, dev, xs=xs.to(dev))
    adj_t = data.get("adj_t")
    if adj_t is None:
        from torch_sparse import SparseTensor

        n = data.num_nodes
        adj_t = SparseTensor.from_edge_index(data.edge_index, sparse_sizes=(n, n)).t()
    return ModelInputs(True, dev, x=data.x.to(dev), adj_t=adj_t.to(dev))


def subset_logits(model: nn.Module, h: Tensor, tasks: Tensor) -> Tensor:
    """Logits of ``tasks`` only, from embeddings ``h`` (the other head rows are not used)."""
    lin = task_head(model)
    return F.linear(h, lin.weight[tasks], lin.bias[tasks])


def task_head(model: nn.Module) -> nn.Linear:
    """The multitask head's linear layer, whose row ``t`` is task ``t``'s; a clear error for
    models without one."""
    lin = getattr(getattr(model, "head", None), "lin", None)
    if not isinstance(lin, nn.Linear) or not hasattr(model, "embed"):
        raise ValueError(f"training on task subsets needs a model with .embed and a "
                         f"MultiLabelHead (.head.lin), as build_model makes; got "
                         f"{type(model).__name__}.")
    return lin


@torch.no_grad()
def exact_logits(model: nn.Module, data: Data, nodes: Tensor, tasks: Tensor | None = None,
                 *, inputs: ModelInputs | None = None) -> Tensor:
    """Eval-mode logits ``(n, |tasks|)`` at ``nodes`` with exact full-graph inference.

    Parameters
    ----------
    model
        A :class:`~graphtag.models.MultitaskGNN` or :class:`~graphtag.models.SIGN` with a
        :class:`~graphtag.models.MultiLabelHead`; left in eval mode.
    data
        The graph.
    nodes
        Node ids.
    tasks
        Task ids (None: all tasks).
    inputs
        From :func:`model_inputs` (built here when None).
    """
    model.eval()
    inp = inputs if inputs is not None else model_inputs(model, data,
                                                          next(model.parameters()).device)
    nodes = nodes.to(inp.device)
    if inp.uses_graph:
        h = model.encoder.inference(inp.x, inp.adj_t)[nodes]
    else:
        h = model.embed(inp.xs[nodes])
    lin = task_head(model)
    out = h @ lin.weight.T + lin.bias if tasks is None else subset_logits(model, h, tasks)
    return out.cpu()


def train_batches(model: nn.Module, data: Data, gen: torch.Generator, *,
                  batch_size: int = 512, num_neighbors: Sequence[int] = (15, 10),
                  full_batch: bool = False, inputs: ModelInputs | None = None
                  ) -> Iterator[tuple[Tensor, int, Tensor, Tensor | None]]:
    """One epoch of training minibatches, as :class:`~graphtag.training.Trainer` makes them:
    ``(embeddings, number of seed nodes, their labels, their label mask)``.

    SIGN: node minibatches of the precomputed hops (dropout on the embedding, as in its
    forward). Graph models: :class:`~torch_geometric.loader.NeighborLoader` subgraphs, whose
    embeddings cover every sampled node with the seed nodes first; with ``full_batch`` one
    step on the whole graph, the training nodes first. ``gen`` draws the shuffle; neighbour
    sampling and dropout draw from torch's global generator.
    """
    inp = inputs if inputs is not None else model_inputs(model, data,
                                                          next(model.parameters()).device)
    dev = inp.device
    lm = data.get("label_mask")
    idx = data.train_mask.nonzero().flatten()
    if not inp.uses_graph:
        idx = idx[torch.randperm(idx.numel(), generator=gen)]
        for s in range(0, idx.numel(), batch_size):
            b = idx[s:s + batch_size]
            h = F.dropout(model.embed(inp.xs[b.to(dev)]), p=model.dropout,
                          training=model.training)
            yield h, b.numel(), data.y[b].to(dev), None if lm is None else lm[b].to(dev)
        return
    if full_batch:
        h = model.embed(inp.x, inp.adj_t)[idx.to(dev)]
        yield h, idx.numel(), data.y[idx].to(dev), None if lm is None else lm[idx].to(dev)
        return
    from torch_geometric.loader import NeighborLoader
    from torch_geometric.sampler import NeighborSampler

    with warnings.catch_warnings():
        # pyg-lib has no wheels here; torch-sparse's sampler is the supported fallback.
        warnings.filterwarnings("ignore", message=".*pyg-lib.*")
        fan = tuple(int(v) for v in num_neighbors)
        if fan not in inp.samplers:
            inp.samplers[fan] = NeighborSampler(data, list(fan))
        loader = NeighborLoader(data, num_neighbors=list(fan), batch_size=batch_size,
                                input_nodes=idx, shuffle=True, generator=gen,
                                neighbor_sampler=inp.samplers[fan])
    for batch in loader:
        bs = batch.batch_size
        blm = batch.get("label_mask")
        yield (model.embed(batch.x.to(dev), batch.edge_index.to(dev)), bs,
               batch.y[:bs].to(dev), None if blm is None else blm[:bs].to(dev))


def train_on_tasks(model: nn.Module, data: Data, tasks: Tensor | None, *, epochs: int,
                   lr: float = 0.01, batch_size: int = 512,
                   num_neighbors: Sequence[int] = (15, 10), full_batch: bool = False,
                   seed: int = 0, max_steps: int | None = None,
                   inputs: ModelInputs | None = None) -> int:
    """Train ``model`` in place with Adam on the mean masked BCE of ``tasks``; returns the steps.

    All parameters are trainable; the loss reads only the head rows of ``tasks``, on the seed
    nodes of each batch (:func:`train_batches`). ``tasks=None`` is a step of all-task training
    as the Trainer computes it (every task's logit on every embedded node, the seed rows kept).
    The shuffle, neighbour sampling and dropout are seeded by ``seed``; the caller's global
    torch generator is left as it was.

    Parameters
    ----------
    model
        As for :func:`exact_logits`; left in train mode.
    data
        The graph, with ``train_mask``.
    tasks
        Task ids, or None for all.
    epochs
        Passes over the training nodes.
    lr
        Adam learning rate.
    batch_size, num_neighbors, full_batch
        Minibatches as the :class:`~graphtag.training.Trainer` makes them.
    seed
        Seeds the shuffle, neighbour sampling and dropout.
    max_steps
        Stop after this many steps (None: all ``epochs``).
    inputs
        From :func:`model_inputs` (built here when None; pass it to share it between calls).
    """
    inp = inputs if inputs is not None else model_inputs(model, data,
                                                          next(model.parameters()).device)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    sel = None if tasks is None else tasks.to(inp.device)
    steps = 0
    devices = [inp.device.index or 0] if inp.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)  # dropout and neighbour sampling
        for _ in range(epochs):
            for h, bs, y, lm in train_batches(model, data, gen, batch_size=batch_size,
                                              num_neighbors=num_neighbors,
                                              full_batch=full_batch, inputs=inp):
                if sel is None:
                    out, yy, mm = model.head(h)[:bs], y, lm
                else:
                    out, yy = subset_logits(model, h[:bs], sel), y[:, sel]
                    mm = None if lm is None else lm[:, sel]
                loss = masked_bce_per_task(out, yy.to(out.dtype), mm).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                steps += 1
                if max_steps is not None and steps >= max_steps:
                    return steps
    return steps


def sample_nodes(mask: Tensor, max_nodes: int | None, seed: int) -> Tensor:
    """Sorted indices of ``mask``'s nodes, at most ``max_nodes`` of them (a seeded sample).

    GradTAG and the oracle both draw their score nodes with it (seed ``seed * 7 + 2``), so at
    equal seeds and caps they score on the same validation nodes.
    """
    idx = mask.nonzero().flatten()
    if max_nodes is not None and idx.numel() > max_nodes:
        gen = torch.Generator().manual_seed(seed)
        idx = idx[torch.randperm(idx.numel(), generator=gen)[:max_nodes]].sort().values
    return idx
