"""Exact full-graph inference and split scores of a trained multitask model."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_sparse import SparseTensor

from graphtag.models.sign import sign_propagate
from graphtag.training.losses import masked_bce_per_task
from graphtag.training.metrics import multitask_scores

__all__ = ["evaluate", "predict_logits", "sign_inputs"]


def sign_inputs(model: nn.Module, data: Data, cache: dict[Any, Any]) -> Tensor:
    """``data.xs``, else SIGN's propagated hops of ``data``, computed once per graph."""
    xs = data.get("xs")
    if xs is None:
        # Keyed by the graph object: a trainer may evaluate graphs other than its own.
        key = ("xs", id(data.edge_index), id(data.x))
        if key not in cache:
            cache[key] = sign_propagate(data.x, data.edge_index, model.num_hops, data.num_nodes)
        xs = cache[key]
    return xs


def _adj_t(data: Data, device: torch.device, cache: dict[Any, Any]) -> SparseTensor:
    key = ("adj_t", id(data.edge_index))
    if key not in cache:
        n = data.num_nodes
        cache[key] = SparseTensor.from_edge_index(
            data.edge_index, sparse_sizes=(n, n)).t().to(device)
    return cache[key]


@torch.no_grad()
def predict_logits(model: nn.Module, data: Data, nodes: Tensor | None = None, *,
                   batch_size: int = 65536, device: torch.device,
                   cache: dict[Any, Any]) -> Tensor:
    """Logits of ``nodes`` (index or bool mask; None: every node) for every task; see
    :meth:`graphtag.training.Trainer.predict_logits`."""
    if nodes is not None and nodes.dtype == torch.bool:
        nodes = nodes.nonzero().flatten()
    was_training = model.training
    model.eval()
    try:
        if getattr(model, "uses_graph", True):
            out = model.inference(data.x.to(device), _adj_t(data, device, cache)).cpu()
            return out if nodes is None else out[nodes]
        xs = sign_inputs(model, data, cache)
        n = xs.size(0) if nodes is None else nodes.numel()
        out = None
        for i in range(0, n, batch_size):
            rows = slice(i, i + batch_size) if nodes is None else nodes[i : i + batch_size]
            chunk = model(xs[rows].to(device)).cpu()
            if out is None:
                out = torch.empty(n, chunk.size(1), dtype=chunk.dtype)
            out[i : i + chunk.size(0)] = chunk
        if out is None:  # no rows asked for
            out = torch.empty(0, model(xs[:1].to(device)).size(1))
        return out
    finally:
        model.train(was_training)


def evaluate(data: Data, split: str, logits_of, logits: Tensor | None = None, *,
             roc_auc: bool = True) -> dict[str, object]:
    """Scores on ``split``; ``logits_of(rows)`` predicts rows when ``logits`` (all nodes')
    is None. See :meth:`graphtag.training.Trainer.evaluate`."""
    mask = data.get(f"{split}_mask")
    if mask is None:
        raise ValueError(f"split={split!r}: data has no '{split}_mask'.")
    rows = mask.nonzero().flatten()
    out = logits_of(rows) if logits is None else logits[rows]
    lm = data.get("label_mask")
    lm_s = lm[rows] if lm is not None else None
    y = data.y[rows]
    scores = multitask_scores(y, out, lm_s, roc_auc=roc_auc)
    scores["loss"] = float(masked_bce_per_task(out, y.to(out.dtype), lm_s).mean())
    return scores
