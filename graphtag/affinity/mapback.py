"""Map-back scoring: evaluate the real network at ``W* + P^T z`` for every subset.

The subset fits live in the projected space: the linearised logit is ``b + (P g) . z``. Since
``(P g) . z = g . (P^T z)``, the parameter change ``delta = P^T z`` of the full network has the
same first-order effect. Map-back loads ``W* + delta`` into the network and runs exact
inference, so the scores include the network's curvature that the linear model leaves out,
at the cost of one forward pass over the graph per subset (the linearised scores need only a
``d``-vector product per node and task).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters
from torch_geometric.data import Data
from torch_sparse import SparseTensor
from tqdm.auto import tqdm

from graphtag.affinity.regression import _check_subsets, _node_index
from graphtag.models.sign import sign_propagate

__all__ = ["mapback_logits"]


@torch.no_grad()
def _forward_all(model: nn.Module, x: Tensor, adj_t: SparseTensor | None) -> Tensor:
    if adj_t is None:  # SIGN: x is the (N, K+1, F) propagated features
        return model(x)
    return model.inference(x, adj_t)


def _prefix(params: list[nn.Parameter], numel: int) -> list[nn.Parameter]:
    """The leading parameters whose sizes add up to ``numel``."""
    out, total = [], 0
    for p in params:
        if total == numel:
            break
        out.append(p)
        total += p.numel()
    return out


@torch.no_grad()
def mapback_logits(
    model: nn.Module,
    data: Data,
    projector: Any,
    z_subsets: Tensor,
    subsets: Any,
    *,
    nodes: Any,
    offset: bool = True,
    chunk: int = 64,
    progress: bool = False,
) -> Tensor:
    """Logits of the mapped-back networks ``f(W* + P^T z_k)`` for each subset's tasks.

    Parameters
    ----------
    model
        The base network (:class:`~graphtag.models.MultitaskGNN` or
        :class:`~graphtag.models.SIGN`) at ``W*``; it is not modified (a copy is used).
    data
        Its graph.
    projector
        The projector the gradients were made with (``transpose`` must map ``(m, d)`` to
        ``(m, p)``, ``p`` the number of trainable parameters).
    z_subsets, subsets
        ``(m, d)`` fits and ``(m, s)`` task ids from :func:`~graphtag.affinity.fit_subsets`.
    nodes
        Boolean mask or index array of the nodes to score (e.g. validation nodes).
    offset
        Must match the fit. With ``offset=False`` the linear model had no base logit, so the
        matching nonlinear quantity is ``f(W* + delta) - f(W*)``, and that is returned.
    chunk
        Subsets lifted to parameter space at a time (``chunk * p`` floats).
    progress
        Show a bar over subsets.

    Returns
    -------
    torch.Tensor
        ``(m, n, s)`` float64, aligned with :func:`~graphtag.affinity.linearized_logits`.
    """
    subs = _check_subsets(subsets, int(model.num_tasks))
    z = torch.as_tensor(z_subsets, dtype=torch.float64)
    m, s = subs.shape
    params = list(model.parameters())
    n_all, n_shared = sum(p.numel() for p in params), sum(
        p.numel() for n, p in model.named_parameters() if not n.startswith("head."))
    if projector.in_dim not in (n_all, n_shared):
        raise ValueError(f"projector.in_dim={projector.in_dim} but the model has {n_all} "
                         f"parameters ({n_shared} shared).")
    # a shared-only projector (head parameters last) moves the shared parameters only
    n_moved = len(_prefix(params, projector.in_dim))
    w0 = parameters_to_vector(params[:n_moved]).detach()
    if z.shape != (m, projector.out_dim):
        raise ValueError(f"z_subsets must have shape {(m, projector.out_dim)}.")
    idx = torch.from_numpy(_node_index(nodes, data.num_nodes))
    net = copy.deepcopy(model).eval()
    n = data.num_nodes
    if getattr(model, "uses_graph", True):
        x = data.x
        adj_t = SparseTensor.from_edge_index(data.edge_index, sparse_sizes=(n, n)).t()
    else:  # SIGN rows are independent: propagate once, keep the scored rows only
        xs = data.get("xs")
        x = xs if xs is not None else sign_propagate(data.x, data.edge_index, model.num_hops, n)
        x, adj_t = x[idx], None
    sel = idx if adj_t is not None else slice(None)
    base = _forward_all(net, x, adj_t)[sel].double() if not offset else None
    out = torch.empty(m, idx.numel(), s, dtype=torch.float64)
    s_idx = torch.from_numpy(subs)
    bar = tqdm(total=m, desc="map-back", unit="subset", disable=not progress)
    for lo in range(0, m, chunk):
        hi = min(lo + chunk, m)
        delta = projector.transpose(z[lo:hi].to(w0.dtype))
        for k in range(hi - lo):
            vector_to_parameters(w0 + delta[k], list(net.parameters())[:n_moved])
            u = _forward_all(net, x, adj_t)[sel].double()
            if base is not None:
                u = u - base
            out[lo + k] = u[:, s_idx[lo + k]]
        bar.update(hi - lo)
    bar.close()
    return out
