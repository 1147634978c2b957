"""Shared plumbing of the literature grouping baselines (:mod:`~graphtag.grouping.dmtg`,
:mod:`~graphtag.grouping.tag`): argument checks, seeded RNG scopes and training batches.

Both baselines train a network on all tasks of a PyG ``Data`` (``x``, ``edge_index``, ``y``
``(N, T)``, ``train_mask``, optional ``label_mask``) and read task groups off that training.
SIGN models see node minibatches of precomputed hops; graph models (``"sage"``, ...) see the
full graph (default) or neighbour-sampled minibatches; the batches are
those of :func:`graphtag.training.batching.iter_batches`, as in the trainer.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor
from torch_geometric.data import Data

from graphtag.models.sign import sign_propagate

# One batching implementation for the trainer and the baselines (re-exported here).
from graphtag.training.batching import NodeBatch, iter_batches

__all__ = [
    "NodeBatch",
    "batch_inputs",
    "check_positive",
    "check_task_data",
    "iter_batches",
    "seeded",
    "sign_inputs",
]


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


def batch_inputs(data: Data, model: str, *, num_layers: int, full_batch: bool,
                 num_neighbors: Sequence[int], batch_size: int,
                 ) -> tuple[bool, Tensor | None, int]:
    """What a baseline's :func:`iter_batches` needs: ``(uses_graph, xs, steps_per_epoch)``.

    ``uses_graph`` is False for SIGN, whose hop features ``xs`` are computed here (None for
    graph models); an epoch is one step for a full-batch graph model, else one per
    ``batch_size`` training nodes. Neighbour sampling needs one fan-out per layer.
    """
    uses_graph = model != "sign"
    if uses_graph and not full_batch and len(num_neighbors) != num_layers:
        raise ValueError(f"num_neighbors needs one fan-out per layer ({num_layers}), "
                         f"got {list(num_neighbors)}.")
    steps = 1 if uses_graph and full_batch else math.ceil(int(data.train_mask.sum())
                                                          / batch_size)
    xs = None if uses_graph else sign_inputs(data, num_layers)
    return uses_graph, xs, steps


def sign_inputs(data: Data, num_hops: int) -> Tensor:
    """``data.xs`` when present with the right hop count, else :func:`sign_propagate`."""
    xs = data.get("xs")
    if xs is not None and xs.dim() == 3 and xs.size(1) == num_hops + 1:
        return xs
    return sign_propagate(data.x, data.edge_index, num_hops, data.num_nodes)
