"""Fixed-size computation trees for per-sample GNN gradients.

A node's output under an ``L``-layer GraphSAGE depends on its ``L``-hop neighbourhood. For
per-sample gradients each seed gets its own computation tree (Hamilton et al.'s original
formulation): ``fanouts[0]`` neighbours of the seed, ``fanouts[1]`` neighbours of each of those,
and so on, drawn uniformly *with replacement*. Every tree then has the same shape, so a batch of
trees is a set of dense tensors ``(B, f1, ..., fl)`` per level, which ``torch.func.vmap`` can
differentiate sample by sample with no Python loop. Nodes without neighbours get masked
placeholder children (their mean aggregation is then 0, as in PyG's ``SAGEConv``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["ComputationTrees", "csr_from_edge_index", "sample_trees"]


def csr_from_edge_index(edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
    """``(rowptr, col)`` of the graph, neighbours of ``u`` in ``col[rowptr[u]:rowptr[u+1]]``."""
    row, col = edge_index
    order = torch.argsort(row * num_nodes + col)
    row, col = row[order], col[order]
    rowptr = torch.zeros(num_nodes + 1, dtype=torch.long)
    rowptr[1:] = torch.cumsum(torch.bincount(row, minlength=num_nodes), 0)
    return rowptr, col


@dataclass
class ComputationTrees:
    """Per-level node ids and validity masks of a batch of trees.

    ``nodes[l]`` has shape ``(B, f1, ..., fl)``; ``mask[l]`` is ``False`` for placeholder
    children (of a node with no neighbour, or below a placeholder).
    """

    nodes: list[Tensor]
    mask: list[Tensor]

    @property
    def batch_size(self) -> int:
        return int(self.nodes[0].shape[0])

    def features(self, x: Tensor) -> list[Tensor]:
        """Gather the features of every tree node, level by level: ``(B, f1..fl, F)``."""
        return [x[n] for n in self.nodes]

    def tree_graph(self, i: int) -> tuple[Tensor, Tensor]:
        """Tree ``i`` as an explicit graph: ``(node_ids, edge_index)`` over its valid nodes,
        edges child -> parent, the root at position 0 (for reference computations)."""
        ids = [self.nodes[0][i : i + 1]]
        valid = [torch.ones(1, dtype=torch.bool)]
        for n, m in zip(self.nodes[1:], self.mask[1:], strict=True):
            ids.append(n[i].reshape(-1))
            valid.append(m[i].reshape(-1))
        sizes = [v.numel() for v in valid]
        starts = torch.tensor([0, *sizes]).cumsum(0)
        src, dst = [], []
        for lvl in range(1, len(sizes)):
            fan = self.nodes[lvl].shape[-1]
            child = torch.arange(sizes[lvl]) + starts[lvl]
            parent = torch.arange(sizes[lvl]) // fan + starts[lvl - 1]
            keep = valid[lvl]
            src.append(child[keep])
            dst.append(parent[keep])
        all_ids = torch.cat(ids)
        all_valid = torch.cat(valid)
        remap = torch.full((all_ids.numel(),), -1, dtype=torch.long)
        remap[all_valid] = torch.arange(int(all_valid.sum()))
        ei = torch.stack([remap[torch.cat(src)], remap[torch.cat(dst)]])
        return all_ids[all_valid], ei


def sample_trees(
    rowptr: Tensor,
    col: Tensor,
    seeds: Tensor,
    fanouts: tuple[int, ...] | list[int],
    generator: torch.Generator | None = None,
) -> ComputationTrees:
    """Sample one computation tree per seed (vectorised; see the module docstring).

    Parameters
    ----------
    rowptr, col
        CSR adjacency from :func:`csr_from_edge_index`.
    seeds
        ``(B,)`` root node ids.
    fanouts
        Children per node at each level (one entry per GNN layer, outermost first).
    generator
        Seeded generator for reproducible trees.
    """
    if any(f < 1 for f in fanouts):
        raise ValueError(f"fanouts must be >= 1 (got {list(fanouts)}).")
    nodes = [seeds.long()]
    mask = [torch.ones_like(nodes[0], dtype=torch.bool)]
    deg_all = rowptr[1:] - rowptr[:-1]
    for f in fanouts:
        u = nodes[-1].reshape(-1)
        deg = deg_all[u]
        r = torch.rand(u.numel(), f, generator=generator, dtype=torch.float64)
        off = (r * deg[:, None]).long().clamp_max((deg[:, None] - 1).clamp_min(0))
        idx = (rowptr[u][:, None] + off).clamp_max(max(col.numel() - 1, 0))
        child = col[idx] if col.numel() else u[:, None].expand(-1, f)
        valid = (deg > 0)[:, None] & mask[-1].reshape(-1, 1)
        valid = valid.expand(-1, f)
        child = torch.where(valid, child, u[:, None].expand(-1, f))
        shape = (*nodes[-1].shape, f)
        nodes.append(child.reshape(shape))
        mask.append(valid.reshape(shape))
    return ComputationTrees(nodes, mask)
