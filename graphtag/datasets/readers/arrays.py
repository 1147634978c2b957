"""The parsed graph (:class:`GraphArrays`), its checks, task selection and summary."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graphtag.datasets.io import DataFormatError, _unique_pairs
from graphtag.datasets.readers.formats import CONSTANT_TASK_POLICIES
from graphtag.datasets.readers.text import _show

__all__ = ["GraphArrays", "select_tasks", "summarize"]


@dataclass
class GraphArrays:
    """A parsed, validated multi-label graph before features and splits.

    Attributes
    ----------
    edges
        ``(2, E)`` int64 in ``0..n-1``, each undirected edge once with ``u < v``.
    y
        ``(n, T)`` uint8 labels (0 where unknown).
    node_ids
        ``(n,)`` the file's id of each node (int64, or str objects).
    task_names
        One name per task (label column, label value or community line).
    x
        ``(n, F)`` float32 node features from the file, or None.
    label_mask
        ``(n, T)`` bool, False where a label is unknown; None when all are known.
    masks
        ``(train, val, test)`` bool node masks from the file, or None.
    source
        Names the input in messages.
    meta
        Extra attributes put on the ``Data`` (e.g. ``ogb_name``).
    task_index
        Index of each task among the file's labels (before selection).
    """

    edges: np.ndarray
    y: np.ndarray
    node_ids: np.ndarray
    task_names: list[str]
    x: np.ndarray | None = None
    label_mask: np.ndarray | None = None
    masks: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    source: str = "dataset"
    meta: dict[str, Any] = field(default_factory=dict)
    task_index: np.ndarray | None = None

    @property
    def num_nodes(self) -> int:
        return int(self.y.shape[0])

    @property
    def num_tasks(self) -> int:
        return int(self.y.shape[1])

    def positives(self) -> np.ndarray:
        """Known positives of each task, int64."""
        y = self.y if self.label_mask is None else self.y & self.label_mask
        return y.sum(0, dtype=np.int64)

    def known(self) -> np.ndarray:
        """Nodes with a known label, per task, int64."""
        if self.label_mask is None:
            return np.full(self.num_tasks, self.num_nodes, dtype=np.int64)
        return self.label_mask.sum(0, dtype=np.int64)

    def to_data(
        self,
        *,
        features: str = "spectral",
        num_features: int = 64,
        split: tuple[float, float, float] = (0.6, 0.2, 0.2),
        seed: int = 0,
    ) -> Any:
        """The PyG ``Data`` (features from the file when it has them, else ``features``)."""
        import torch

        from graphtag.datasets.tasks import make_multitask_data

        extra: dict[str, Any] = dict(self.meta)
        if self.node_ids.dtype.kind in "iu":  # string ids stay off Data (see read_graph)
            extra["node_ids"] = torch.from_numpy(self.node_ids.astype(np.int64))
        if self.task_index is not None:
            extra["community_index"] = torch.from_numpy(self.task_index.astype(np.int64))
        return make_multitask_data(
            self.edges, self.y, features=features, num_features=num_features, split=split,
            seed=seed, label_mask=self.label_mask, source=self.source, x=self.x,
            masks=self.masks, **extra,
        )


def _check_features(x: np.ndarray, n: int, where: str, node_ids: np.ndarray) -> np.ndarray:
    """``x`` as ``(n, F)`` float32, refusing shape mismatches and NaN/inf entries."""
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] != n:
        raise DataFormatError(
            f"{where}: node features have shape {tuple(x.shape)} but the graph has {n} nodes; "
            "give one row per node."
        )
    if x.dtype.kind not in "biuf":
        raise DataFormatError(f"{where}: node features are {x.dtype}, not numbers.")
    with np.errstate(over="ignore"):
        x32 = x.astype(np.float32)
    bad = ~np.isfinite(x32)
    if bad.any():
        r, c = (int(i) for i in np.argwhere(bad)[0])
        raise DataFormatError(
            f"{where}: node features row {r} (node {str(node_ids[r])!r}), column {c} is "
            f"{float(x[r, c])!r}{' (too large for float32)' if np.isfinite(x[r, c]) else ''}; "
            f"{int(bad.sum())} non-finite value(s) in {int(bad.any(1).sum())} row(s). Replace "
            "them (e.g. by the column mean) or remove the features so graphtag computes its own."
        )
    return x32


def _undirected(ei: np.ndarray) -> np.ndarray:
    """Each undirected edge once (``u < v``); both-direction storage is PyG's norm, so no
    warning, and self-loops are dropped (GNN layers add their own)."""
    lo, hi = np.minimum(ei[0], ei[1]), np.maximum(ei[0], ei[1])
    keep = lo != hi
    return _unique_pairs(lo[keep], hi[keep])


def select_tasks(
    g: GraphArrays, num_tasks: int | None = None, constant_tasks: str = "error",
) -> GraphArrays:
    """Keep the ``num_tasks`` tasks with most known positives, then refuse (or drop) tasks
    that have no positive or no negative node.

    Ranking counts in int64 (a count stored in ``uint8`` and negated would wrap), ties kept
    in file order.

    Raises
    ------
    ValueError
        ``num_tasks`` outside ``1..T``.
    DataFormatError
        With ``constant_tasks="error"``: a task without positives or without negatives
        (among its known labels), naming the tasks and the fix.
    """
    if constant_tasks not in CONSTANT_TASK_POLICIES:
        raise ValueError(f"constant_tasks must be one of {CONSTANT_TASK_POLICIES} "
                         f"(got {constant_tasks!r}).")
    T = g.num_tasks
    order = np.arange(T)
    if num_tasks is not None:
        if not 1 <= num_tasks <= T:
            raise ValueError(f"{g.source}: num_tasks={num_tasks} but the data has {T} tasks; "
                             f"use 1..{T}.")
        order = np.argsort(-g.positives(), kind="stable")[:num_tasks]
    pos, known = g.positives()[order], g.known()[order]
    empty, full = order[pos == 0], order[(pos == known) & (pos > 0)]
    if empty.size or full.size:
        what = []
        if empty.size:
            what.append(f"{empty.size} task(s) without a positive node "
                        f"({_show([g.task_names[i] for i in empty])})")
        if full.size:
            what.append(f"{full.size} task(s) whose every labelled node is positive "
                        f"({_show([g.task_names[i] for i in full])})")
        msg = (f"{g.source}: {' and '.join(what)}; a task needs positive and negative nodes "
               "to be learned.")
        if constant_tasks == "error":
            raise DataFormatError(msg + " Remove those labels, or pass constant_tasks='drop' "
                                  "(--drop-constant-tasks) to skip them.")
        warnings.warn(msg + " Skipped them.", stacklevel=2)
        order = order[~np.isin(order, np.concatenate([empty, full]))]
        if order.size == 0:
            raise DataFormatError(f"{g.source}: no task has both positive and negative nodes.")
    if order.size == T and (order == np.arange(T)).all():
        return g
    base = g.task_index if g.task_index is not None else np.arange(T)
    return GraphArrays(
        g.edges, np.ascontiguousarray(g.y[:, order]), g.node_ids,
        [g.task_names[i] for i in order], g.x,
        None if g.label_mask is None else np.ascontiguousarray(g.label_mask[:, order]),
        g.masks, g.source, g.meta, base[order],
    )


def summarize(g: GraphArrays) -> dict[str, Any]:
    """Statistics printed by ``graphtag datasets info``: sizes, positives per task
    (min/median/max), label density (positives among known labels), isolated nodes and
    connected components."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    n, T = g.num_nodes, g.num_tasks
    pos, known = g.positives(), g.known()
    deg = np.bincount(g.edges.ravel(), minlength=n)
    adj = sp.coo_matrix((np.ones(g.edges.shape[1], np.int8), (g.edges[0], g.edges[1])),
                        shape=(n, n))
    comps = connected_components(adj, directed=False)[0] if n else 0
    return {
        "source": g.source, "nodes": n, "edges": int(g.edges.shape[1]), "tasks": T,
        "positives_min": int(pos.min()) if T else 0,
        "positives_median": float(np.median(pos)) if T else 0.0,
        "positives_max": int(pos.max()) if T else 0,
        "label_density": float(pos.sum() / max(int(known.sum()), 1)),
        "unknown_labels": float(1 - known.sum() / max(n * T, 1)),
        "isolated_nodes": int((deg == 0).sum()),
        "components": int(comps),
        "features": None if g.x is None else int(g.x.shape[1]),
        "masks": g.masks is not None,
    }
