"""Task heads: map node embeddings ``(N, H)`` to one logit per task ``(N, T)``.

Heads are separate modules so one encoder can carry one head for all tasks (MTL), one head per
group of tasks (Grad-TAG groups) or one per task (STL) without changing the encoder.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["GroupedHeads", "MultiLabelHead"]


class MultiLabelHead(nn.Module):
    """One linear logit per task: ``logits = h W^T + b``.

    Being linear, the per-task gradients of a node share the encoder Jacobian, which the
    gradient-projection stage exploits.
    """

    def __init__(self, in_channels: int, num_tasks: int) -> None:
        super().__init__()
        if num_tasks < 1:
            raise ValueError(f"num_tasks must be >= 1 (got {num_tasks}).")
        self.num_tasks = num_tasks
        self.lin = nn.Linear(in_channels, num_tasks)

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()

    def forward(self, h: Tensor) -> Tensor:
        return self.lin(h)


class GroupedHeads(nn.Module):
    """One head per group of tasks; logits come back in the original task order.

    Parameters
    ----------
    in_channels
        Embedding size.
    groups
        A partition of ``range(num_tasks)``: each task in exactly one group.
    hidden_channels
        If set, each group head is a two-layer MLP (``in -> hidden -> |group|``) so groups do
        not share their last hidden layer; else a linear layer per group.
    """

    def __init__(
        self,
        in_channels: int,
        groups: Sequence[Sequence[int]],
        hidden_channels: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        flat = sorted(int(t) for g in groups for t in g)
        if not groups or any(len(g) == 0 for g in groups):
            raise ValueError("groups must be a non-empty list of non-empty task lists.")
        if flat != list(range(len(flat))):
            raise ValueError(
                "groups must partition the tasks 0..T-1: every task in exactly one group "
                f"(got {len(flat)} entries, {len(set(flat))} distinct, max {max(flat)})."
            )
        self.num_tasks = len(flat)
        self.groups = [list(map(int, g)) for g in groups]
        heads = []
        for g in self.groups:
            if hidden_channels:
                heads.append(nn.Sequential(
                    nn.Linear(in_channels, hidden_channels), nn.ReLU(), nn.Dropout(dropout),
                    nn.Linear(hidden_channels, len(g)),
                ))
            else:
                heads.append(nn.Linear(in_channels, len(g)))
        self.heads = nn.ModuleList(heads)
        perm = torch.tensor([t for g in self.groups for t in g])
        self.register_buffer("inverse", torch.argsort(perm), persistent=False)

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                m.reset_parameters()

    def forward(self, h: Tensor) -> Tensor:
        out = torch.cat([head(h) for head in self.heads], dim=-1)
        return out[..., self.inverse]
