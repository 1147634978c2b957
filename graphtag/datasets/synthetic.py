"""Synthetic community graphs with planted task groups (a known right answer for grouping).

Nodes fall into ``num_groups`` latent clusters (a fraction ``overlap`` of them into a second
cluster too). Edges are drawn cluster-assortatively: each edge starts at a uniform node and ends
inside one of that node's clusters with probability ``p_in``, else anywhere. Tasks are split
into ``num_groups`` planted groups; each task of group ``g`` is a community made of the members
of cluster ``g``, each kept with a task-specific probability, plus a few outside nodes. Tasks of
one group therefore share structure (they are all "find cluster g"), while tasks of different
groups want different representations.

Everything is vectorised numpy: the cost is O(edges + tasks x cluster size), so the generator
scales to tens of millions of edges.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Data

from graphtag.datasets.io import write_communities, write_edge_list
from graphtag.datasets.tasks import make_multitask_data

__all__ = ["SyntheticCommunities", "synthetic_communities"]


@dataclass
class SyntheticCommunities:
    """A generated graph: edges, communities (one per task) and the planted task groups."""

    edge_index: np.ndarray
    communities: list[np.ndarray]
    task_group: np.ndarray
    num_nodes: int

    @property
    def num_tasks(self) -> int:
        return len(self.communities)

    def labels(self) -> np.ndarray:
        """Dense ``(num_nodes, num_tasks)`` uint8 label matrix."""
        y = np.zeros((self.num_nodes, self.num_tasks), dtype=np.uint8)
        for t, c in enumerate(self.communities):
            y[c, t] = 1
        return y

    def to_data(
        self,
        features: str = "spectral",
        num_features: int = 32,
        split: tuple[float, float, float] = (0.6, 0.2, 0.2),
        seed: int = 0,
    ) -> Data:
        """PyG ``Data`` in the same layout as :class:`SNAPCommunities` (plus ``task_group``)."""
        return make_multitask_data(
            self.edge_index,
            self.labels(),
            features=features,
            num_features=num_features,
            split=split,
            seed=seed,
            source="synthetic",
            task_group=torch.from_numpy(self.task_group),
        )

    def write_snap(self, folder: str | os.PathLike, name: str = "synthetic") -> tuple[Path, Path]:
        """Write ``com-<name>.ungraph.txt.gz`` and ``com-<name>.top5000.cmty.txt.gz``.

        The files are readable by :class:`SNAPCommunities` (``name=name``) placed in
        ``<root>/<name>/raw``. The planted groups go to ``com-<name>.groups.txt``.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        g = folder / f"com-{name}.ungraph.txt.gz"
        c = folder / f"com-{name}.top5000.cmty.txt.gz"
        write_edge_list(
            g,
            self.edge_index,
            header=(f"Synthetic planted-group graph {name}",
                    f"Nodes: {self.num_nodes} Edges: {self.edge_index.shape[1]}",
                    "FromNodeId\tToNodeId"),
        )
        write_communities(c, self.communities)
        np.savetxt(folder / f"com-{name}.groups.txt", self.task_group, fmt="%d")
        return g, c


def synthetic_communities(
    num_nodes: int = 2000,
    num_tasks: int = 20,
    num_groups: int = 4,
    avg_degree: float = 10.0,
    seed: int = 0,
    *,
    p_in: float = 0.85,
    overlap: float = 0.1,
    keep: tuple[float, float] = (0.6, 0.95),
    outside: float = 0.002,
) -> SyntheticCommunities:
    """Generate a graph whose tasks come in ``num_groups`` planted groups.

    Parameters
    ----------
    num_nodes, num_tasks, num_groups
        Sizes; ``num_groups <= num_tasks``. Task ``t`` belongs to group
        ``t * num_groups // num_tasks`` (contiguous blocks).
    avg_degree
        Target mean degree; ``num_nodes * avg_degree / 2`` undirected edges are drawn before
        duplicates and self-loops are removed (a few percent at sparse settings).
    seed
        Seed of every random draw.
    p_in
        Probability that an edge stays inside one of its start node's clusters.
    overlap
        Fraction of nodes that belong to a second cluster.
    keep
        Range of the per-task probability of keeping each member of its group's cluster.
    outside
        Probability that a node outside the cluster is added to a task's community.
    """
    if not 1 <= num_groups <= num_tasks:
        raise ValueError(f"need 1 <= num_groups <= num_tasks (got {num_groups}, {num_tasks}).")
    if num_nodes < 2 * num_groups:
        raise ValueError(f"num_nodes={num_nodes} too small for {num_groups} groups.")
    if avg_degree <= 0 or not 0 <= p_in <= 1 or not 0 <= overlap <= 1:
        raise ValueError("need avg_degree > 0, 0 <= p_in <= 1 and 0 <= overlap <= 1.")
    rng = np.random.default_rng(seed)
    n = num_nodes
    primary = rng.integers(num_groups, size=n)
    second = np.where(rng.random(n) < overlap, rng.integers(num_groups, size=n), -1)

    # Membership list (node, cluster), sorted by cluster for O(1) "random member of cluster".
    mem_node = np.concatenate([np.arange(n), np.flatnonzero(second >= 0)])
    mem_cl = np.concatenate([primary, second[second >= 0]])
    order = np.argsort(mem_cl, kind="stable")
    mem_node, mem_cl = mem_node[order], mem_cl[order]
    start = np.searchsorted(mem_cl, np.arange(num_groups))
    size = np.bincount(mem_cl, minlength=num_groups)

    m = round(n * avg_degree / 2)
    u = rng.integers(n, size=m)
    use_second = (second[u] >= 0) & (rng.random(m) < 0.5)
    cl = np.where(use_second, second[u], primary[u])
    v_in = mem_node[start[cl] + (rng.random(m) * size[cl]).astype(np.int64)]
    v = np.where(rng.random(m) < p_in, v_in, rng.integers(n, size=m))
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    key = np.unique((lo * n + hi)[lo != hi])
    edges = np.stack([key // n, key % n]).astype(np.int64)

    task_group = (np.arange(num_tasks) * num_groups // num_tasks).astype(np.int64)
    members = [mem_node[start[g] : start[g] + size[g]] for g in range(num_groups)]
    communities = []
    for g in task_group:
        p_keep = rng.uniform(*keep)
        inside = members[g][rng.random(members[g].size) < p_keep]
        extra = rng.integers(n, size=rng.binomial(n, outside))
        communities.append(np.unique(np.concatenate([inside, extra])))
    return SyntheticCommunities(edges, communities, task_group, n)
