"""Message-passing encoders and the multitask GNN (encoder + task head)."""

from __future__ import annotations

import contextlib
import itertools
import warnings
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GCNConv, GINConv, SAGEConv
from torch_geometric.typing import Adj

__all__ = ["CONVS", "GNNEncoder", "MultitaskGNN"]

CONVS = ("sage", "gcn", "gin")


@contextlib.contextmanager
def _quiet_sparse(adj: Adj) -> Iterator[None]:
    """Silence torch's notices about CSR tensors while convolving over a ``SparseTensor``.

    torch-sparse's SpMM goes through torch's CSR tensors, which announce themselves on first
    use ("Sparse CSR tensor support is in beta", "Sparse invariant checks are implicitly
    disabled"); the messages are about torch internals, not about anything a user can act on.
    The filter holds only inside the block (importing graphtag changes no warning filter).
    """
    if isinstance(adj, Tensor):  # an edge_index: no CSR tensor is built
        yield
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")
        yield


def _make_conv(kind: str, in_ch: int, out_ch: int) -> nn.Module:
    if kind == "sage":
        return SAGEConv(in_ch, out_ch)
    if kind == "gcn":
        return GCNConv(in_ch, out_ch, cached=False)
    if kind == "gin":
        mlp = nn.Sequential(nn.Linear(in_ch, out_ch), nn.ReLU(), nn.Linear(out_ch, out_ch))
        return GINConv(mlp, train_eps=True)
    raise ValueError(f"conv={kind!r} is not one of {CONVS}.")


class GNNEncoder(nn.Module):
    """A stack of ``num_layers`` graph convolutions with ReLU and dropout between them.

    The output embedding (size ``hidden_channels``) goes through a final ReLU, so a linear
    head on top sees non-negative features, as in GraphSAGE's node classification setup.

    Parameters
    ----------
    in_channels, hidden_channels
        Input feature size and the width of every layer.
    num_layers
        Number of convolutions (the receptive field in hops).
    conv
        ``"sage"`` (GraphSAGE, mean aggregation), ``"gcn"`` or ``"gin"``.
    dropout
        Dropout on the input of every layer after the first.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int = 128,
        num_layers: int = 2,
        conv: str = "sage",
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1 (got {num_layers}).")
        self.conv_kind = conv
        self.num_layers = num_layers
        self.out_channels = hidden_channels
        self.dropout = dropout
        dims = [in_channels] + [hidden_channels] * num_layers
        self.convs = nn.ModuleList(_make_conv(conv, a, b) for a, b in itertools.pairwise(dims))

    def reset_parameters(self) -> None:
        for c in self.convs:
            c.reset_parameters()

    def forward(self, x: Tensor, edge_index: Adj) -> Tensor:
        with _quiet_sparse(edge_index):
            for i, conv in enumerate(self.convs):
                if i > 0:
                    x = F.dropout(x, p=self.dropout, training=self.training)
                x = conv(x, edge_index).relu()
        return x

    @torch.no_grad()
    def inference(self, x: Tensor, adj_t: Adj) -> Tensor:
        """Layer-wise full-graph inference: every layer once over all nodes.

        Pass a ``torch_sparse.SparseTensor`` (transposed adjacency) so aggregation is a fused
        sparse-dense product: memory ``O(E + N * hidden)``, never ``O(E * hidden)``. Exact
        (no neighbour sampling), unlike minibatch inference.
        """
        with _quiet_sparse(adj_t):
            for conv in self.convs:
                x = conv(x, adj_t).relu()
        return x


class MultitaskGNN(nn.Module):
    """A GNN encoder with a multitask head: one logit per (node, task).

    Parameters
    ----------
    in_channels, hidden_channels, num_layers, conv, dropout
        See :class:`GNNEncoder`.
    num_tasks
        Number of binary tasks.
    head
        A module mapping ``(N, hidden_channels)`` to ``(N, num_tasks)``; default
        :class:`~graphtag.models.MultiLabelHead`. Pass a
        :class:`~graphtag.models.GroupedHeads` for one head per task group.

    Examples
    --------
    >>> model = MultitaskGNN(64, 128, num_tasks=100)
    >>> model(torch.randn(5, 64), torch.tensor([[0, 1], [1, 0]])).shape
    torch.Size([5, 100])
    """

    uses_graph = True

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int = 128,
        num_tasks: int = 1,
        num_layers: int = 2,
        conv: str = "sage",
        dropout: float = 0.5,
        head: nn.Module | None = None,
    ) -> None:
        super().__init__()
        from graphtag.models.heads import MultiLabelHead

        self.encoder = GNNEncoder(in_channels, hidden_channels, num_layers, conv, dropout)
        self.head = head if head is not None else MultiLabelHead(hidden_channels, num_tasks)
        self.num_tasks = getattr(self.head, "num_tasks", num_tasks)

    def reset_parameters(self) -> None:
        self.encoder.reset_parameters()
        self.head.reset_parameters()

    def forward(self, x: Tensor, edge_index: Adj) -> Tensor:
        return self.head(self.encoder(x, edge_index))

    def embed(self, x: Tensor, edge_index: Adj) -> Tensor:
        """Node embeddings before the head."""
        return self.encoder(x, edge_index)

    @torch.no_grad()
    def inference(self, x: Tensor, adj_t: Adj) -> Tensor:
        """Full-graph logits, layer by layer (see :meth:`GNNEncoder.inference`)."""
        return self.head(self.encoder.inference(x, adj_t))
