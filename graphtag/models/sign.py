"""SIGN: precomputed propagation, then an MLP (Frasca et al., 2020).

Features are propagated once, ``[X, A X, A^2 X, ..., A^K X]`` with the GCN-normalised adjacency
``A = D^-1/2 (A + I) D^-1/2``, and training is plain minibatch MLP training over nodes: no
neighbour sampling, which is what makes it the model of choice for the largest graphs (the
Grad-TAG paper uses it there).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_sparse import SparseTensor

__all__ = ["SIGN", "sign_propagate"]


def sign_propagate(
    x: Tensor, edge_index: Tensor, num_hops: int = 2, num_nodes: int | None = None
) -> Tensor:
    """Return the ``(N, num_hops + 1, F)`` stack ``[X, A X, ..., A^K X]``.

    ``A`` is the symmetric GCN normalisation with self-loops, applied by torch-sparse SpMM
    (``O(E * F)`` time per hop, ``O(E + N * F)`` memory).
    """
    if num_hops < 0:
        raise ValueError(f"num_hops must be >= 0 (got {num_hops}).")
    n = num_nodes if num_nodes is not None else x.size(0)
    if x.size(0) != n:
        raise ValueError(f"x has {x.size(0)} rows but the graph has {n} nodes.")
    adj = SparseTensor.from_edge_index(edge_index, sparse_sizes=(n, n)).fill_value(1.0)
    adj = adj.set_diag()  # self-loops
    deg = adj.sum(dim=1)
    dinv = deg.pow(-0.5)
    adj = adj.mul(dinv.view(-1, 1)).mul(dinv.view(1, -1))
    out = [x]
    for _ in range(num_hops):
        out.append(adj @ out[-1])
    return torch.stack(out, dim=1)


class SIGN(nn.Module):
    """SIGN model over precomputed hops, with a multitask head.

    Parameters
    ----------
    in_channels
        Feature size ``F`` of each hop.
    hidden_channels
        Width of the per-hop projections and of the embedding fed to the head.
    num_tasks
        Number of binary tasks.
    num_hops
        ``K``: the input is ``(N, K + 1, F)`` from :func:`sign_propagate`.
    dropout
        Dropout after the per-hop projections and in the MLP.
    head
        As in :class:`~graphtag.models.MultitaskGNN`.
    """

    uses_graph = False

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int = 128,
        num_tasks: int = 1,
        num_hops: int = 2,
        dropout: float = 0.5,
        head: nn.Module | None = None,
    ) -> None:
        super().__init__()
        from graphtag.models.heads import MultiLabelHead

        self.num_hops = num_hops
        self.dropout = dropout
        self.hops = nn.ModuleList(nn.Linear(in_channels, hidden_channels)
                                  for _ in range(num_hops + 1))
        self.mix = nn.Linear((num_hops + 1) * hidden_channels, hidden_channels)
        self.head = head if head is not None else MultiLabelHead(hidden_channels, num_tasks)
        self.num_tasks = getattr(self.head, "num_tasks", num_tasks)

    def reset_parameters(self) -> None:
        for lin in self.hops:
            lin.reset_parameters()
        self.mix.reset_parameters()
        self.head.reset_parameters()

    def embed(self, xs: Tensor) -> Tensor:
        """Embedding before the head, from ``xs`` of shape ``(N, K + 1, F)``."""
        if xs.dim() != 3 or xs.size(1) != self.num_hops + 1:
            raise ValueError(
                f"SIGN expects (N, {self.num_hops + 1}, F) propagated features, got "
                f"{tuple(xs.shape)}; build them with sign_propagate(x, edge_index, "
                f"num_hops={self.num_hops})."
            )
        h = torch.cat([lin(xs[:, k]) for k, lin in enumerate(self.hops)], dim=-1)
        h = F.dropout(h.relu(), p=self.dropout, training=self.training)
        return self.mix(h).relu()

    def forward(self, xs: Tensor) -> Tensor:
        h = self.embed(xs)
        return self.head(F.dropout(h, p=self.dropout, training=self.training))
