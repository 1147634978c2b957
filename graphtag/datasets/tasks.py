"""Turn a graph and a list of communities into a multitask node-labeling problem.

One binary task per community: node ``v`` is positive for task ``t`` when it is a member of
community ``t``. This module holds the dataset-independent steps (validation, deduplication,
top-k selection, induced subgraph, relabelling, label matrix, splits) shared by every loader.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from graphtag.datasets.io import sorted_unique

if TYPE_CHECKING:  # torch is imported by the functions that build tensors, so that
    import torch  # build_community_tasks (used by `graphtag datasets info`) stays light
    from torch_geometric.data import Data

__all__ = ["CommunityTasks", "build_community_tasks", "make_multitask_data", "random_node_split"]


@dataclass
class CommunityTasks:
    """The result of :func:`build_community_tasks`.

    Attributes
    ----------
    edge_index
        ``(2, E)`` int64, relabelled to ``0..num_nodes-1``, each undirected edge once.
    y
        ``(num_nodes, num_tasks)`` uint8 labels.
    node_ids
        Original id of each relabelled node.
    community_index
        For each task, the index of its community among the non-empty lines of the input.
    """

    edge_index: np.ndarray
    y: np.ndarray
    node_ids: np.ndarray
    community_index: np.ndarray

    @property
    def num_nodes(self) -> int:
        return int(self.node_ids.shape[0])

    @property
    def num_tasks(self) -> int:
        return int(self.y.shape[1])


def build_community_tasks(
    edges: np.ndarray,
    communities: Sequence[np.ndarray],
    num_tasks: int | None,
    *,
    induced: bool = True,
    dedupe: bool = True,
    min_size: int = 1,
    source: str = "communities",
) -> CommunityTasks:
    """Select the top-``num_tasks`` communities and build the label matrix.

    Steps, each a documented fix-up:

    1. member ids absent from the graph are dropped (warning with the count);
    2. communities left with fewer than ``min_size`` members are dropped (warning);
    3. identical communities are merged, keeping the first (SNAP's com-Amazon top-5000 file
       holds only 1,517 distinct ones), when ``dedupe`` is true;
    4. the ``num_tasks`` largest remaining communities are kept (ties: file order);
    5. with ``induced``, the graph is restricted to the subgraph induced by their members;
    6. nodes are relabelled to ``0..n-1`` in increasing original-id order.

    Parameters
    ----------
    edges
        ``(2, E)`` undirected edges, original ids (from :func:`read_edge_list`).
    communities
        Node-id arrays, one per community.
    num_tasks
        How many communities to keep; ``None`` keeps all.
    induced
        Keep only the subgraph induced by the selected communities' members.
    dedupe
        Merge identical communities before ranking.
    min_size
        Smallest community kept.
    source
        Name used in warnings and errors (e.g. the file path).

    Raises
    ------
    ValueError
        When ``num_tasks`` exceeds the number of usable communities, naming both numbers.
    """
    if num_tasks is not None and num_tasks < 1:
        raise ValueError(f"num_tasks must be >= 1 (got {num_tasks}).")
    graph_nodes = sorted_unique(edges)
    # Membership tests and relabelling go through a lookup table over the id range (O(1) a
    # query) when it is at most a few times the number of graph nodes; binary search else.
    top = int(graph_nodes[-1]) + 1 if graph_nodes.size else 0
    table = top <= 4 * max(graph_nodes.size, 1 << 20)
    kept: list[np.ndarray] = []
    index: list[int] = []
    n_missing = n_small = n_dup = 0
    first_missing = -1
    seen: dict[bytes, list[int]] = {}  # content digest -> positions in ``kept``
    # One vectorised membership test for all communities; per-community loops stay O(size).
    comms = [sorted_unique(np.asarray(c, dtype=np.int64)) for c in communities]
    flat = np.concatenate(comms) if comms else np.empty(0, dtype=np.int64)
    if table:
        in_graph = np.zeros(top + 1, dtype=bool)  # slot ``top``: ids outside the range
        in_graph[graph_nodes] = True
        flat_present = in_graph[np.where((flat >= 0) & (flat < top), flat, top)]
        del in_graph
    else:
        pos = np.minimum(np.searchsorted(graph_nodes, flat), max(graph_nodes.size - 1, 0))
        flat_present = (graph_nodes[pos] == flat if graph_nodes.size
                        else np.zeros(flat.size, bool))
    del flat
    bounds = np.cumsum([0] + [c.size for c in comms])
    for i, c in enumerate(comms):
        present = flat_present[bounds[i] : bounds[i + 1]]
        if not present.all():
            n_missing += int((~present).sum())
            if first_missing < 0:
                first_missing = i
            c = c[present]
        if c.size < min_size or c.size == 0:
            n_small += 1
            continue
        if dedupe:
            c = np.ascontiguousarray(c)
            key = hashlib.blake2b(memoryview(c), digest_size=16).digest()
            if any(np.array_equal(kept[j], c) for j in seen.get(key, ())):
                n_dup += 1
                continue
            seen.setdefault(key, []).append(len(kept))
        kept.append(c)
        index.append(i)
    if n_missing:
        warnings.warn(
            f"{source}: dropped {n_missing} member id(s) absent from the graph (first in "
            f"community #{first_missing}, 0-based). Check that the graph and community files "
            "belong together.",
            stacklevel=2,
        )
    if n_small:
        warnings.warn(
            f"{source}: dropped {n_small} communit(ies) with fewer than {max(min_size, 1)} "
            "member(s) in the graph.",
            stacklevel=2,
        )
    if n_dup:
        warnings.warn(
            f"{source}: merged {n_dup} duplicate communit(ies); {len(kept)} distinct remain.",
            stacklevel=2,
        )
    if num_tasks is None:
        num_tasks = len(kept)
    if num_tasks > len(kept):
        raise ValueError(
            f"{source}: asked for num_tasks={num_tasks} but only {len(kept)} distinct usable "
            f"communities exist; lower num_tasks to at most {len(kept)}."
        )
    sizes = np.array([c.size for c in kept])
    order = np.argsort(-sizes, kind="stable")[:num_tasks]
    chosen = [kept[i] for i in order]
    community_index = np.asarray(index, dtype=np.int64)[order]

    if induced:
        node_ids = sorted_unique(np.concatenate(chosen))
        if table:
            member = np.zeros(top, dtype=bool)
            member[node_ids] = True
            keep = member[edges[0]]
            keep &= member[edges[1]]
            del member
        else:
            keep = np.isin(edges[0], node_ids) & np.isin(edges[1], node_ids)
        if not keep.all():
            edges = edges[:, keep]
        del keep
    else:
        node_ids = graph_nodes
    if table:
        relabel = np.full(top, -1, dtype=np.int64)
        relabel[node_ids] = np.arange(node_ids.size)
        edge_index = relabel[edges]
    else:
        relabel = None
        edge_index = np.searchsorted(node_ids, edges)
    y = np.zeros((node_ids.size, num_tasks), dtype=np.uint8)
    for t, c in enumerate(chosen):
        y[relabel[c] if relabel is not None else np.searchsorted(node_ids, c), t] = 1
    return CommunityTasks(edge_index, y, node_ids, community_index)


def random_node_split(
    num_nodes: int,
    split: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Seeded disjoint train/val/test boolean node masks with the given fractions.

    Fractions must be non-negative and sum to at most 1 (the remainder is unused).
    """
    import torch

    fr = np.asarray(split, dtype=float)
    if fr.shape != (3,) or (fr < 0).any() or fr.sum() > 1 + 1e-9:
        raise ValueError(
            f"split must be three non-negative fractions summing to <= 1, got {tuple(split)}."
        )
    perm = torch.randperm(num_nodes, generator=torch.Generator().manual_seed(seed))
    n_tr, n_va = round(fr[0] * num_nodes), round(fr[1] * num_nodes)
    n_te = min(round(fr[2] * num_nodes), num_nodes - n_tr - n_va)
    masks = []
    for lo, hi in ((0, n_tr), (n_tr, n_tr + n_va), (n_tr + n_va, n_tr + n_va + n_te)):
        m = torch.zeros(num_nodes, dtype=torch.bool)
        m[perm[lo:hi]] = True
        masks.append(m)
    return masks[0], masks[1], masks[2]


def make_multitask_data(
    edge_index: np.ndarray,
    y: np.ndarray,
    *,
    features: str = "spectral",
    num_features: int = 64,
    split: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 0,
    label_mask: np.ndarray | None = None,
    source: str = "dataset",
    x: np.ndarray | torch.Tensor | None = None,
    masks: Sequence[np.ndarray | torch.Tensor] | None = None,
    **extra: object,
) -> Data:
    """Assemble a PyG :class:`~torch_geometric.data.Data` for multitask node labeling.

    The result has ``x`` (features, see :func:`graphtag.datasets.node_features`),
    ``edge_index`` (both directions), ``y`` (float, ``n x T``), ``train_mask``/``val_mask``/
    ``test_mask`` and, when given, ``label_mask`` (``n x T`` bool, ``False`` = label unknown).
    Tasks with no positive in some split are reported in a warning; metrics skip such
    (task, split) pairs (see :func:`graphtag.training.evaluate`).

    ``x`` (``n x F``) replaces the computed features and ``masks`` (train, val, test bool
    node masks) the random split, for datasets that come with their own.
    """
    import torch
    from torch_geometric.data import Data
    from torch_geometric.utils import to_undirected

    from graphtag.datasets.features import node_features

    num_nodes = int(y.shape[0])
    ei = torch.as_tensor(edge_index, dtype=torch.long)
    ei = to_undirected(ei, num_nodes=num_nodes)
    if x is None:
        x = node_features(ei, num_nodes, kind=features, dim=num_features, seed=seed)
    else:
        x = torch.as_tensor(x, dtype=torch.float32)
        if x.shape[0] != num_nodes:
            raise ValueError(f"x has {x.shape[0]} rows for {num_nodes} nodes.")
    if masks is None:
        train, val, test = random_node_split(num_nodes, split, seed)
    else:
        train, val, test = (torch.as_tensor(m, dtype=torch.bool) for m in masks)
    data = Data(x=x, edge_index=ei, y=torch.as_tensor(y, dtype=torch.float32), num_nodes=num_nodes)
    data.train_mask, data.val_mask, data.test_mask = train, val, test
    if label_mask is not None:
        if label_mask.shape != y.shape:
            raise ValueError(f"label_mask shape {label_mask.shape} != y shape {y.shape}.")
        data.label_mask = torch.as_tensor(label_mask, dtype=torch.bool)
    for k, v in extra.items():
        data[k] = v
    _warn_empty_tasks(data, source)
    return data


def positives_per_task(y: torch.Tensor, mask: torch.Tensor, label_mask: torch.Tensor | None,
                        chunk: int = 1 << 16) -> torch.Tensor:
    """Known positives of each task among the ``mask`` rows, summed over row chunks.

    Equals ``(y[mask] * label_mask[mask]).sum(0)`` without materialising the masked rows
    (2.5 GB for the training split of a 2.1M-node, 500-task float32 label matrix).
    """
    import torch

    pos = torch.zeros(y.size(1), dtype=torch.float64)
    for lo in range(0, y.size(0), chunk):
        m = mask[lo : lo + chunk]
        if not bool(m.any()):
            continue
        yc = y[lo : lo + chunk][m]
        if label_mask is not None:
            yc = yc * label_mask[lo : lo + chunk][m]
        pos += yc.sum(0, dtype=torch.float64)
    return pos


def _warn_empty_tasks(data: Data, source: str) -> None:
    import torch

    lm = data.get("label_mask")
    for name in ("train_mask", "val_mask", "test_mask"):
        m = data[name]
        empty = torch.nonzero(positives_per_task(data.y, m, lm) == 0).flatten().tolist()
        if empty and int(m.sum()) > 0:
            shown = ", ".join(map(str, empty[:10])) + (" ..." if len(empty) > 10 else "")
            warnings.warn(
                f"{source}: {len(empty)} task(s) have no positive node in {name[:-5]} "
                f"(tasks {shown}); their F1/AUC on that split is skipped. Use more nodes per "
                "split or larger communities to avoid it.",
                stacklevel=3,
            )
