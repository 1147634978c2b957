"""Training batches, one implementation for every trainer, split across ranks.

An epoch is a sequence of *global batches*: ``batch_size`` training nodes taken in order
from one shuffle of the training nodes (``gen``). Graph models see each global batch's
neighbour-sampled subgraph, sampled with a seed drawn from ``gen`` per batch, so the
subgraph does not depend on who samples it; SIGN models see rows of the precomputed hops;
``full_batch`` graph models see the whole graph with all training nodes as one batch.

With ``world > 1`` ranks, every rank draws the same shuffle and sampling seeds and takes
its share of each global batch: seed positions ``rank, rank + world, ...``. A graph model's
share is the part of the global subgraph those seeds' outputs depend on (every node within
``num_layers + 1`` hops upstream, every edge into a node within ``num_layers`` hops), so the
share's logits equal the rows of the global batch's logits. :class:`NodeBatch` carries the
per-task weights that turn a share's mean loss into its part of the global batch's mean
(:attr:`NodeBatch.weight`) and the global row of every input row, which
:class:`RowDropout` uses to drop exactly what a one-process run drops.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.overrides import TorchFunctionMode
from torch_geometric.data import Data

__all__ = ["NodeBatch", "RowDropout", "batch_seed", "iter_batches", "upstream_subgraph"]


@dataclass
class NodeBatch:
    """One training batch (this rank's share of a global batch).

    Attributes
    ----------
    args : tuple of torch.Tensor
        Positional model inputs: ``(xs,)`` for SIGN, ``(x, edge_index)`` for graph models.
    rows : torch.Tensor or slice
        Rows of the model output that are the batch's (seed) training nodes.
    y : torch.Tensor
        ``(B, T)`` float labels of those rows.
    label_mask : torch.Tensor or None
        ``(B, T)`` bool, ``False`` where a label is missing.
    weight : torch.Tensor or None
        ``(T,)``: this share's labelled rows per task over the global batch's (0 where the
        global batch has none); multiplying the share's per-task mean loss by it gives its
        part of the global batch's mean, so the parts sum to it over the ranks. ``None`` when
        the share is the whole batch (one process).
    ids : torch.Tensor or None
        Global row of every input row (``args[0]``'s rows) in the global batch's input;
        ``None``: the input is the global batch's own.
    num_global : int
        Rows of the global batch's input.
    """

    args: tuple[Tensor, ...]
    rows: Tensor | slice
    y: Tensor
    label_mask: Tensor | None
    weight: Tensor | None = None
    ids: Tensor | None = None
    num_global: int = 0


def batch_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from integers (e.g. run seed, epoch, batch)."""
    state = np.random.SeedSequence([int(p) % 2**63 for p in parts]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def _sampler(data: Data, num_neighbors: Sequence[int], cache: dict):
    if "sampler" not in cache:
        from torch_geometric.sampler import NeighborSampler

        with warnings.catch_warnings():
            # pyg-lib has no wheels here; torch-sparse's sampler is the supported fallback.
            warnings.filterwarnings("ignore", message=".*pyg-lib.*")
            cache["sampler"] = NeighborSampler(data, list(num_neighbors))
    return cache["sampler"]


def _sample(data: Data, seeds: Tensor, num_neighbors: Sequence[int], seed: int,
            cache: dict) -> tuple[Tensor, Tensor]:
    """The neighbour-sampled subgraph of ``seeds`` (they come first): ``(nodes, edge_index)``
    with local indices, drawn from torch's generator seeded with ``seed`` (then restored)."""
    from torch_geometric.sampler import NodeSamplerInput

    sampler = _sampler(data, num_neighbors, cache)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out = sampler.sample_from_nodes(NodeSamplerInput(None, seeds))
    return out.node, torch.stack([out.row, out.col])


def upstream_subgraph(edge_index: Tensor, num_nodes: int, seeds: Tensor,
                      num_layers: int) -> tuple[Tensor, Tensor]:
    """The part of a graph that ``num_layers`` message-passing layers need for ``seeds``.

    Returns ``(ids, edge_index)``: the kept nodes (``seeds`` first, then the others in
    increasing order) and the kept edges relabelled to positions in ``ids``, in their
    original order. Kept are every edge into a node within ``num_layers`` hops upstream of
    ``seeds`` and both its ends, so those nodes keep all their in-edges (their degree, which
    GCN's normalisation reads) and the seeds' outputs equal those on the whole graph.
    """
    src, dst = edge_index
    need = torch.zeros(num_nodes, dtype=torch.bool)
    need[seeds] = True
    for _ in range(num_layers):
        need[src[need[dst]]] = True
    keep = need[dst]
    nodes = need.clone()
    nodes[src[keep]] = True
    nodes[seeds] = False
    ids = torch.cat([seeds, nodes.nonzero().flatten()])
    local = torch.full((num_nodes,), -1, dtype=torch.long)
    local[ids] = torch.arange(ids.numel())
    return ids, local[edge_index[:, keep]]


def _share(n: int, rank: int, world: int) -> tuple[Tensor, bool]:
    """Positions ``rank, rank + world, ...`` of a global batch of ``n``; an empty share
    becomes position 0 with ``False`` (a stand-in that carries no loss)."""
    pos = torch.arange(rank, n, world)
    if pos.numel() == 0:
        return torch.zeros(1, dtype=torch.long), False
    return pos, True


def _weight(lm: Tensor | None, nodes: Tensor, pos: Tensor, real: bool, T: int) -> Tensor:
    """Per-task labelled rows of the share ``nodes[pos]`` over those of ``nodes``."""
    if not real:
        return torch.zeros(T)
    if lm is None:
        return torch.full((T,), pos.numel() / nodes.numel())
    total = lm[nodes].sum(0, dtype=torch.float64)
    part = lm[nodes[pos]].sum(0, dtype=torch.float64)
    return (part / total.clamp_min(1)).float()


def iter_batches(
    data: Data,
    *,
    uses_graph: bool,
    xs: Tensor | None,
    full_batch: bool,
    batch_size: int,
    num_neighbors: Sequence[int],
    gen: torch.Generator,
    device: torch.device,
    cache: dict,
    rank: int = 0,
    world: int = 1,
    num_layers: int | None = None,
) -> Iterator[NodeBatch]:
    """Yield one epoch of training batches: this rank's share of each global batch.

    ``gen`` shuffles the training nodes (and, for neighbour sampling, draws one sampling
    seed per global batch), identically on every rank. SIGN (``uses_graph=False``) gets rows
    of ``xs``. Graph models get the whole graph when ``full_batch``, else the subgraph of
    ``num_neighbors`` fan-outs (one per layer) around the batch's seeds. ``num_layers``
    (default ``len(num_neighbors)``) is the model's receptive field, used to cut a rank's
    share out of the global subgraph. ``cache`` keeps the sampler and the full-batch share
    across epochs. See the module docstring.
    """
    lm = data.get("label_mask")
    T = data.y.size(1)
    L = len(num_neighbors) if num_layers is None else num_layers
    if "train" not in cache:
        cache["train"] = data.train_mask.nonzero().flatten()
    train = cache["train"]

    def labels(nodes: Tensor) -> tuple[Tensor, Tensor | None]:
        return (data.y[nodes].float().to(device),
                None if lm is None else lm[nodes].to(device))

    if uses_graph and full_batch:
        if "full" not in cache:
            cache["full"] = _full_batch(data, train, rank, world, L, device, labels)
        yield cache["full"]
        return
    idx = train[torch.randperm(train.numel(), generator=gen)]
    nb = math.ceil(idx.numel() / batch_size)
    seeds = torch.randint(0, 2**62, (nb,), generator=gen).tolist() if uses_graph else None
    for i in range(nb):
        b = idx[i * batch_size : (i + 1) * batch_size]
        pos, real = _share(b.numel(), rank, world)
        w = None if world == 1 else _weight(lm, b, pos, real, T).to(device)
        if not uses_graph:
            assert xs is not None
            mine = b if world == 1 else b[pos]
            yield NodeBatch((xs[mine].to(device),), slice(None), *labels(mine), w,
                            None if world == 1 else pos.to(device), b.numel())
            continue
        nodes, ei = _sample(data, b, num_neighbors, seeds[i], cache)
        n_g = nodes.numel()
        if world == 1:
            yield NodeBatch((data.x[nodes].to(device), ei.to(device)),
                            slice(0, b.numel()), *labels(b), None, None, n_g)
            continue
        ids, ei = upstream_subgraph(ei, n_g, pos, L)
        yield NodeBatch((data.x[nodes[ids]].to(device), ei.to(device)),
                        slice(0, pos.numel()), *labels(b[pos]), w, ids.to(device), n_g)


def _full_batch(data, train, rank, world, L, device, labels) -> NodeBatch:
    """The full-graph batch: every training node one process; a rank's share otherwise."""
    n = data.num_nodes
    if world == 1:
        return NodeBatch((data.x.to(device), data.edge_index.to(device)), train.to(device),
                         *labels(train), None, None, n)
    pos, real = _share(train.numel(), rank, world)
    w = _weight(data.get("label_mask"), train, pos, real, data.y.size(1)).to(device)
    ids, ei = upstream_subgraph(data.edge_index, n, train[pos], L)
    return NodeBatch((data.x[ids].to(device), ei.to(device)), slice(0, pos.numel()),
                     *labels(train[pos]), w, ids.to(device), n)


def _dropout_args(input: Tensor, p: float = 0.5, training: bool = True,
                  inplace: bool = False) -> tuple[Tensor, float, bool]:
    return input, p, training


class RowDropout(TorchFunctionMode):
    """Within the block, :func:`torch.nn.functional.dropout` (also behind ``nn.Dropout``)
    draws its mask per *global* row, so a rank's share of a global batch gets the rows of
    the mask a one-process run draws for the whole batch.

    Every dropout call draws ``(batch.num_global, ...)`` uniforms from a generator seeded by
    ``seed`` and the call's number, and keeps the rows of its input: ``batch.ids`` for an
    input with one row per input node, ``ids[batch.rows]`` for one with a row per loss row
    (a head restricted to those rows). The draw is the same on every rank, so it does not
    depend on how a global batch is split. Dropout on other tensors (not one row per node)
    is left to torch in one process and refused on a rank's share.
    """

    def __init__(self, batch: NodeBatch, seed: int) -> None:
        super().__init__()
        self.batch, self.seed, self.calls = batch, seed, 0
        self.num_input = batch.args[0].size(0)
        rows = batch.rows
        self.num_rows = (len(range(*rows.indices(self.num_input))) if isinstance(rows, slice)
                         else int(rows.sum()) if rows.dtype == torch.bool else rows.numel())

    def _global_rows(self, k: int) -> Tensor | slice | None:
        """The global rows of an input of ``k`` rows; None when they are not node rows."""
        ids, rows = self.batch.ids, self.batch.rows
        if k == self.num_input:
            return slice(0, k) if ids is None else ids
        if k == self.num_rows:
            return rows if ids is None else ids[rows]
        return None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is not F.dropout:
            return func(*args, **kwargs)
        x, p, training = _dropout_args(*args, **kwargs)
        if not training or p == 0.0:
            return func(*args, **kwargs)
        where = self._global_rows(x.size(0)) if x.dim() > 0 else None
        if where is None:  # e.g. dropout on edges: fine in one process, unsplittable in N
            if self.batch.ids is None:
                return func(*args, **kwargs)
            raise RuntimeError(
                f"dropout on a tensor of {x.size(0) if x.dim() else 0} rows, neither the "
                f"batch's {self.num_input} input rows nor its {self.num_rows} loss rows; "
                "data-parallel training cannot split it across ranks.")
        if p >= 1.0:
            return x * 0.0
        g = torch.Generator(device=x.device)
        g.manual_seed(batch_seed(self.seed, self.calls))
        self.calls += 1
        u = torch.rand((self.batch.num_global, *x.shape[1:]), generator=g, device=x.device,
                       dtype=x.dtype)
        keep = u[where] >= p
        return x * keep.to(x.dtype) * (1.0 / (1.0 - p))
