"""Synthetic community graphs with planted task groups (a known right answer for grouping).

Nodes fall into ``num_groups`` latent clusters (a fraction ``overlap`` of them into a second
cluster too). Edges are drawn cluster-assortatively: each edge starts at a uniform node and ends
inside one of that node's clusters with probability ``p_in``, else anywhere. Tasks are split
into ``num_groups`` planted groups; each task of group ``g`` is a community made of the members
of cluster ``g``, each kept with a task-specific probability, plus a few outside nodes. Tasks of
one group therefore share structure (they are all "find cluster g"), while tasks of different
groups want different representations.

Everything is vectorised numpy: the cost is O(edges + tasks x cluster size), so the generator
scales to tens of millions of edges. Edges are drawn in blocks of :data:`EDGE_BLOCK` draws, the
first from the generator seeded with ``seed`` and block ``b >= 1`` from its own stream
``SeedSequence(seed, spawn_key=(b,))``, so the draws never depend on how the work is chunked
(and graphs of at most :data:`EDGE_BLOCK` draws are exactly those of the single-block
generator). Duplicates are removed per range of start nodes (``chunk_size``), which bounds the
working memory to about one ``int64`` key per drawn edge plus the ``(2, E)`` result.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Data

from graphtag.datasets.io import sorted_unique, write_communities, write_edge_list
from graphtag.datasets.tasks import make_multitask_data

__all__ = ["EDGE_BLOCK", "SyntheticCommunities", "synthetic_communities"]

#: Edge draws per random-number block (part of the generator's definition: changing it changes
#: the graphs of more than this many draws).
EDGE_BLOCK: int = 1 << 21


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

    def write_snap(
        self, folder: str | os.PathLike, name: str = "synthetic", *, compresslevel: int = 6
    ) -> tuple[Path, Path]:
        """Write ``com-<name>.ungraph.txt.gz`` and ``com-<name>.top5000.cmty.txt.gz``.

        The files are readable by :class:`SNAPCommunities` (``name=name``) placed in
        ``<root>/<name>/raw``. The planted groups go to ``com-<name>.groups.txt``.

        Parameters
        ----------
        folder
            Output folder (created if missing).
        name
            Dataset name used in the file names.
        compresslevel
            gzip level, 1 (fastest: about 6x faster than 6 on edge lists, files ~7 % larger)
            to 9.

        Returns
        -------
        tuple of pathlib.Path
            The edge-list and community file paths.
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
            compresslevel=compresslevel,
        )
        write_communities(c, self.communities, compresslevel=compresslevel)
        np.savetxt(folder / f"com-{name}.groups.txt", self.task_group, fmt="%d")
        return g, c


@dataclass(frozen=True)
class _EdgeContext:
    """What an edge draw needs: node count, ``p_in`` and the sorted cluster membership."""

    n: int
    p_in: float
    primary: np.ndarray
    second: np.ndarray
    mem_node: np.ndarray
    start: np.ndarray
    size: np.ndarray


def _draw_block(ctx: _EdgeContext, m: int, rng: np.random.Generator) -> np.ndarray:
    """``m`` edge draws from ``rng``; returns their keys ``lo * n + hi``, self-loops removed."""
    n = ctx.n
    u = rng.integers(n, size=m)
    use_second = (ctx.second[u] >= 0) & (rng.random(m) < 0.5)
    cl = np.where(use_second, ctx.second[u], ctx.primary[u])
    del use_second
    v_in = ctx.mem_node[ctx.start[cl] + (rng.random(m) * ctx.size[cl]).astype(np.int64)]
    del cl
    v = np.where(rng.random(m) < ctx.p_in, v_in, rng.integers(n, size=m))
    del v_in
    lo = np.minimum(u, v)
    np.maximum(u, v, out=v)
    del u
    keep = lo != v
    lo *= n
    lo += v
    return lo[keep]


def _draw_edges(
    ctx: _EdgeContext, m: int, rng: np.random.Generator, seed: int, chunk_size: int | None
) -> np.ndarray:
    """Draw ``m`` edges block by block; return the sorted unique ``(2, E)`` int64 edges.

    Keys are scattered into ``ceil(m / chunk_size)`` buckets by start-node range, so each
    bucket is sorted and deduplicated on its own and the buckets concatenate in key order: the
    result equals one global ``np.unique`` whatever ``chunk_size`` is.
    """
    n = ctx.n
    nb = 1 if chunk_size is None else max(1, -(-m // chunk_size))
    buckets: list[list[np.ndarray]] = [[] for _ in range(nb)]
    for b, first in enumerate(range(0, m, EDGE_BLOCK)):
        brng = rng if b == 0 else np.random.default_rng(
            np.random.SeedSequence(seed, spawn_key=(b,)))
        key = _draw_block(ctx, min(EDGE_BLOCK, m - first), brng)
        if nb == 1:
            buckets[0].append(key)
            continue
        # Start-node range: every key of bucket i is below every key of bucket i + 1.
        which = ((key // n) * nb // n).astype(np.uint16 if nb < 1 << 16 else np.int64)
        order = np.argsort(which, kind="stable")  # radix sort for uint16
        bounds = np.searchsorted(which[order], np.arange(nb + 1))
        key = key[order]
        del which, order
        for i in range(nb):
            if bounds[i + 1] > bounds[i]:
                buckets[i].append(key[bounds[i] : bounds[i + 1]].copy())
        del key
    uniq: list[np.ndarray] = []
    for i in range(nb):
        k = np.concatenate(buckets[i]) if buckets[i] else np.empty(0, np.int64)
        buckets[i] = []
        k.sort()
        if k.size:
            k = k[np.concatenate([[True], k[1:] != k[:-1]])]
        uniq.append(k)
    edges = np.empty((2, sum(k.size for k in uniq)), dtype=np.int64)
    pos = 0
    for i, k in enumerate(uniq):
        np.divmod(k, n, out=(edges[0, pos : pos + k.size], edges[1, pos : pos + k.size]))
        pos += k.size
        uniq[i] = k[:0]
    return edges


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
    chunk_size: int | None = 1 << 23,
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
    chunk_size
        Deduplicate edges in ranges of start nodes holding about this many drawn edges (None:
        all at once). Only memory depends on it, never the result.

    Returns
    -------
    SyntheticCommunities
        Edges (``(2, E)`` int64, ``u < v``, sorted, unique), communities and planted groups.
    """
    if not 1 <= num_groups <= num_tasks:
        raise ValueError(f"need 1 <= num_groups <= num_tasks (got {num_groups}, {num_tasks}).")
    if num_nodes < 2 * num_groups:
        raise ValueError(f"num_nodes={num_nodes} too small for {num_groups} groups.")
    if avg_degree <= 0 or not 0 <= p_in <= 1 or not 0 <= overlap <= 1:
        raise ValueError("need avg_degree > 0, 0 <= p_in <= 1 and 0 <= overlap <= 1.")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1 or None (got {chunk_size}).")
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
    ctx = _EdgeContext(n, p_in, primary, second, mem_node, start, size)
    edges = _draw_edges(ctx, m, rng, seed, chunk_size)

    task_group = (np.arange(num_tasks) * num_groups // num_tasks).astype(np.int64)
    members = [mem_node[start[g] : start[g] + size[g]] for g in range(num_groups)]
    communities = []
    for g in task_group:
        p_keep = rng.uniform(*keep)
        inside = members[g][rng.random(members[g].size) < p_keep]
        extra = rng.integers(n, size=rng.binomial(n, outside))
        communities.append(sorted_unique(np.concatenate([inside, extra])))
    return SyntheticCommunities(edges, communities, task_group, n)
