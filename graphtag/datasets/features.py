"""Node features for graphs that have none (SNAP community graphs).

Choices (``kind``):

``"spectral"`` (default)
    Top singular vectors of the symmetric normalised adjacency ``D^-1/2 (A + I) D^-1/2``,
    scaled by their singular values and standardised. Computed with a randomized SVD
    (Halko et al.), so the cost is a few sparse products, linear in the edges. Community
    structure lives in the leading eigenvectors, which makes this the strongest label-free
    choice for community tasks.
``"degree"``
    Structural features: log-degree, mean and max log-degree of the neighbours, and the
    number of 2-hop walks (log), standardised. Cheap and size-independent.
``"random"``
    i.i.d. Gaussian features (a control: the GNN must learn from structure alone).
``"spectral+degree"``
    Concatenation of the two.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["FEATURE_KINDS", "node_features"]

FEATURE_KINDS = ("spectral", "degree", "random", "spectral+degree")


def _adjacency(edge_index: torch.Tensor, num_nodes: int) -> sp.csr_matrix:
    ei = edge_index.cpu().numpy()
    a = sp.coo_matrix((np.ones(ei.shape[1], dtype=np.float32), (ei[0], ei[1])),
                      shape=(num_nodes, num_nodes)).tocsr()
    a.data[:] = 1.0  # duplicates summed by tocsr are clipped back to a 0/1 adjacency
    return a


def _standardise(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(0, keepdims=True)
    std = x.std(0, keepdims=True)
    return x / np.where(std > 0, std, 1.0)


def spectral_embedding(edge_index: torch.Tensor, num_nodes: int, dim: int, seed: int = 0
                       ) -> np.ndarray:
    """Randomized-SVD embedding of the normalised adjacency with self-loops; ``(n, dim)``."""
    from sklearn.utils.extmath import randomized_svd

    dim = min(dim, max(num_nodes - 1, 1))
    a = _adjacency(edge_index, num_nodes) + sp.identity(num_nodes, dtype=np.float32, format="csr")
    deg = np.asarray(a.sum(1)).ravel()
    dinv = sp.diags(1.0 / np.sqrt(deg))
    norm = (dinv @ a @ dinv).tocsr().astype(np.float32)
    u, s, _ = randomized_svd(norm, n_components=dim, n_iter=6, random_state=seed)
    return _standardise(u * s).astype(np.float32)


def degree_features(edge_index: torch.Tensor, num_nodes: int) -> np.ndarray:
    """Log-degree, mean/max neighbour log-degree and log 2-hop walk count; ``(n, 4)``."""
    a = _adjacency(edge_index, num_nodes)
    deg = np.asarray(a.sum(1)).ravel()
    logd = np.log1p(deg)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_nb = np.where(deg > 0, (a @ logd) / np.maximum(deg, 1), 0.0)
    max_nb = np.zeros(num_nodes)
    if a.nnz:
        rows = np.repeat(np.arange(num_nodes), np.diff(a.indptr))
        np.maximum.at(max_nb, rows, logd[a.indices])
    walks2 = np.log1p(a @ deg)
    return _standardise(np.stack([logd, mean_nb, max_nb, walks2], 1)).astype(np.float32)


def node_features(
    edge_index: torch.Tensor,
    num_nodes: int,
    kind: str = "spectral",
    dim: int = 64,
    seed: int = 0,
) -> torch.Tensor:
    """Compute label-free node features; see the module docstring for the ``kind`` choices.

    Returns a ``(num_nodes, F)`` float32 tensor (``F = dim`` for spectral/random, 4 for
    degree, ``dim + 4`` for ``"spectral+degree"``). Deterministic given ``seed``.
    """
    if kind not in FEATURE_KINDS:
        raise ValueError(f"features={kind!r} is not one of {FEATURE_KINDS}.")
    if dim < 1:
        raise ValueError(f"num_features must be >= 1 (got {dim}).")
    parts = []
    if kind in ("spectral", "spectral+degree"):
        parts.append(spectral_embedding(edge_index, num_nodes, dim, seed))
    if kind in ("degree", "spectral+degree"):
        parts.append(degree_features(edge_index, num_nodes))
    if kind == "random":
        rng = np.random.default_rng(seed)
        parts.append(rng.standard_normal((num_nodes, dim), dtype=np.float32))
    return torch.from_numpy(np.concatenate(parts, 1).astype(np.float32))
