"""Row layout of a per-sample gradient batch: independent samples as the rows of the model's
input (:class:`RowBatch`), from independent rows (:func:`rows_batch`) or from computation
trees laid out as one graph, level by level (:func:`graph_batch`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from graphtag.gradients.trees import ComputationTrees

__all__ = ["RowBatch", "graph_batch", "rows_batch"]


@dataclass
class RowBatch:
    """A batch of ``B`` independent samples laid out as the rows of the model's input.

    ``row_of[b, j]`` is the row of sample ``b``'s position ``j`` (every sample has the same
    ``n`` positions); row sets a layer may see are prefixes of ``sizes`` rows (the roots are
    always the first ``B`` rows).
    """

    args: tuple
    B: int
    row_of: Tensor  # (B, n)
    tree_of_row: Tensor  # (N,)
    pos_of_row: Tensor  # (N,)
    level_sizes: list[int] = field(default_factory=list)  # rows per level (graphs)
    edge_level: Tensor | None = None  # level of each edge's target (graphs)

    @property
    def n(self) -> int:
        return int(self.row_of.shape[1])

    @property
    def num_rows(self) -> int:
        return int(self.tree_of_row.numel())

    def level_bounds(self) -> list[int]:
        """Row where each level after the first starts."""
        out, s = [], 0
        for n in self.level_sizes[:-1]:
            s += n
            out.append(s)
        return out


def rows_batch(x: Tensor) -> RowBatch:
    """Independent rows (SIGN, MLPs over precomputed features): sample ``b`` is row ``b``."""
    B = x.shape[0]
    ar = torch.arange(B)
    return RowBatch((x,), B, ar[:, None], ar, torch.zeros(B, dtype=torch.long), [B])


def graph_batch(trees: ComputationTrees, x: Tensor) -> RowBatch:
    """The trees as one graph of disjoint trees, edges child -> parent, level by level:
    all roots, then all level-1 nodes (tree by tree), ... Placeholder children are kept as
    isolated nodes, so every tree has the same positions."""
    B = trees.batch_size
    ids, tree, pos, sizes = [], [], [], []
    src, dst, elev = [], [], []
    start, pstart = 0, 0
    for lvl, (nodes, mask) in enumerate(zip(trees.nodes, trees.mask, strict=True)):
        per = int(nodes[0].numel()) if lvl else 1
        ids.append(nodes.reshape(-1))
        tree.append(torch.arange(B).repeat_interleave(per))
        pos.append(pstart + torch.arange(per).repeat(B))
        sizes.append(B * per)
        if lvl:
            fan = nodes.shape[-1]
            child = torch.arange(B * per)
            parent = child // fan  # row within the previous level (b-major in both)
            keep = mask.reshape(-1)
            src.append((child + start)[keep])
            dst.append((parent + start - sizes[-2])[keep])
            elev.append(torch.full((int(keep.sum()),), lvl - 1, dtype=torch.long))
        start += B * per
        pstart += per
    tree_of_row, pos_of_row = torch.cat(tree), torch.cat(pos)
    n = pstart
    row_of = torch.empty(B, n, dtype=torch.long)
    row_of[tree_of_row, pos_of_row] = torch.arange(start)
    ei = torch.stack([torch.cat(src), torch.cat(dst)]) if src else \
        torch.zeros(2, 0, dtype=torch.long)
    lev = torch.cat(elev) if elev else torch.zeros(0, dtype=torch.long)
    return RowBatch((x[torch.cat(ids)], ei), B, row_of, tree_of_row, pos_of_row, sizes, lev)


def _prefix_sizes(batch: RowBatch) -> set[int]:
    s, out = 0, {batch.B}
    for n in batch.level_sizes:
        s += n
        out.add(s)
    return out
