"""Shared plumbing of the literature grouping baselines (:mod:`~graphtag.grouping.dmtg`,
:mod:`~graphtag.grouping.tag`): argument checks, seeded RNG scopes and training batches.

Both baselines train a network on all tasks of a PyG ``Data`` (``x``, ``edge_index``, ``y``
``(N, T)``, ``train_mask``, optional ``label_mask``) and read task groups off that training.
SIGN models see node minibatches of precomputed hops; graph models (``"sage"``, ...) see the
full graph (default) or :class:`~torch_geometric.loader.NeighborLoader` minibatches.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.loader import NeighborLoader

from graphtag.models.sign import sign_propagate

__all__ = [
    "NodeBatch",
    "check_positive",
    "check_task_data",
    "iter_batches",
    "seeded",
    "sign_inputs",
]


@dataclass
class NodeBatch:
    """One training batch: model inputs and the labels of the rows that carry the loss.

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
    """

    args: tuple[Tensor, ...]
    rows: Tensor | slice
    y: Tensor
    label_mask: Tensor | None


def check_task_data(data: Data) -> int:
    """Validate the fields the baselines need; return the number of tasks ``T``."""
    for key in ("x", "edge_index", "y", "train_mask"):
        if data.get(key) is None:
            raise ValueError(f"data has no {key!r}; load it with graphtag.datasets.")
    if data.y.dim() != 2 or data.y.size(0) != data.num_nodes:
        raise ValueError(
            f"data.y must be (num_nodes, T) = ({data.num_nodes}, T), got {tuple(data.y.shape)}."
        )
    if int(data.train_mask.sum()) == 0:
        raise ValueError("data.train_mask selects no node; nothing to train on.")
    return int(data.y.size(1))


def check_positive(**values: float) -> None:
    """Raise a ValueError naming the first argument that is not > 0."""
    for name, v in values.items():
        if isinstance(v, bool) or not v > 0:
            raise ValueError(f"{name} must be > 0, got {v!r}.")


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's global RNG (init, dropout, neighbour sampling) inside the block only.

    The caller's RNG state is restored afterwards, so a baseline run neither depends on nor
    disturbs the randomness of the surrounding program.
    """
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def sign_inputs(data: Data, num_hops: int) -> Tensor:
    """``data.xs`` when present with the right hop count, else :func:`sign_propagate`."""
    xs = data.get("xs")
    if xs is not None and xs.dim() == 3 and xs.size(1) == num_hops + 1:
        return xs
    return sign_propagate(data.x, data.edge_index, num_hops, data.num_nodes)


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
) -> Iterator[NodeBatch]:
    """Yield one epoch of training batches (shuffled by ``gen``).

    SIGN (``uses_graph=False``) gets ``batch_size`` rows of ``xs`` per batch. Graph models get
    the whole graph with the training nodes as rows when ``full_batch``, else NeighborLoader
    subgraphs around ``batch_size`` seed nodes (``num_neighbors`` fan-outs, one per layer);
    the loader is kept in ``cache`` so its worker state survives across epochs.
    """
    lm = data.get("label_mask")
    if not uses_graph:
        assert xs is not None
        idx = data.train_mask.nonzero().flatten()
        idx = idx[torch.randperm(idx.numel(), generator=gen)]
        for s in range(0, idx.numel(), batch_size):
            b = idx[s : s + batch_size]
            yield NodeBatch(
                (xs[b].to(device),), slice(None), data.y[b].float().to(device),
                None if lm is None else lm[b].to(device),
            )
        return
    if full_batch:
        if "full" not in cache:
            m = data.train_mask
            cache["full"] = NodeBatch(
                (data.x.to(device), data.edge_index.to(device)),
                m.nonzero().flatten().to(device), data.y[m].float().to(device),
                None if lm is None else lm[m].to(device),
            )
        yield cache["full"]
        return
    if "loader" not in cache:
        with warnings.catch_warnings():
            # pyg-lib has no wheels here; torch-sparse's sampler is the supported fallback.
            warnings.filterwarnings("ignore", message=".*pyg-lib.*")
            cache["loader"] = NeighborLoader(
                data, num_neighbors=list(num_neighbors), batch_size=batch_size,
                input_nodes=data.train_mask, shuffle=True, generator=gen,
            )
    for batch in cache["loader"]:
        bs = batch.batch_size
        blm = batch.get("label_mask")
        yield NodeBatch(
            (batch.x.to(device), batch.edge_index.to(device)), slice(0, bs),
            batch.y[:bs].float().to(device), None if blm is None else blm[:bs].to(device),
        )
