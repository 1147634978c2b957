"""PCGrad, "gradient surgery", computed in Gram space.

Yu, Kumar, Gupta, Levine, Hausman, Finn, *Gradient Surgery for Multi-Task Learning*,
NeurIPS 2020. For every task ``i``, with the other tasks ``j`` in random order, the current
``g_i^PC`` is projected off the *original* ``g_j`` whenever they conflict::

    if g_i^PC . g_j < 0:   g_i^PC <- g_i^PC - (g_i^PC . g_j) / ||g_j||^2  g_j

and the update is ``sum_i g_i^PC``. Each ``g_i^PC`` stays a linear combination
``c_i^T J`` of the original gradients, and every quantity the rule reads is an inner product
with an original gradient, ``g_i^PC . g_j = (G c_i)_j``. So the surgery runs on coefficient
vectors and the Gram matrix alone, never on ``p``-dimensional vectors: all ``K`` tasks advance
together, one projection each per sweep, ``K - 1`` sweeps of ``O(K^2)`` each (``O(K^3)``
total, independent of ``p``; about 0.1 s at ``K = 500`` on one CPU thread, a few ms at
``K = 100``). The update is ``sum_i c_i^T J = w^T J`` with ``w = C^T 1``.

The order of the outer loop over tasks ``i`` does not matter here (each ``g_i^PC`` is built
against the original gradients only), so only the inner orders are random.
"""

from __future__ import annotations

import torch
from torch import Tensor

from graphtag.optim.weighting import GramCombiner, _as_gram

__all__ = ["PCGrad", "pcgrad_coefficients", "pcgrad_order"]


def pcgrad_order(K: int, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None) -> Tensor:
    """Random projection orders: row ``i`` is a uniform permutation of ``{0..K-1} - {i}``.

    Returns a ``(K, K - 1)`` long tensor drawn from ``generator`` (the global torch RNG when
    ``None``).
    """
    keys = torch.rand(K, K, generator=generator)
    keys.fill_diagonal_(2.0)  # above every uniform draw: task i sorts last in its own row
    return keys.argsort(dim=1)[:, : K - 1].to(device)


def pcgrad_coefficients(
    G: Tensor, order: Tensor | None = None, generator: torch.Generator | None = None
) -> Tensor:
    """Coefficients ``C`` with ``g_i^PC = C[i] @ J``, from the Gram matrix ``G = J J^T``.

    Parameters
    ----------
    G
        ``(K, K)`` Gram matrix of the task gradients.
    order
        ``(K, K - 1)`` long tensor: row ``i`` lists the other tasks in the order ``g_i`` is
        projected against them. Drawn by :func:`pcgrad_order` from ``generator`` if ``None``.
    generator
        Source of the random order.

    Returns
    -------
    torch.Tensor
        ``(K, K)`` float64. PCGrad's update is ``C.sum(0) @ J``. A task with a zero gradient
        is never projected against (its direction is undefined).
    """
    G = _as_gram(G)
    K = G.size(0)
    if order is None:
        order = pcgrad_order(K, generator, G.device)
    order = order.to(G.device)
    if order.shape != (K, max(K - 1, 0)):
        raise ValueError(f"order must have shape ({K}, {K - 1}), got {tuple(order.shape)}.")
    C = torch.eye(K, dtype=G.dtype, device=G.device)
    R = G.clone()  # R[i, j] = g_i^PC . g_j for the current g_i^PC
    sq = G.diagonal()
    # 1 / ||g_j||^2, and 0 for zero gradients so that they are never projected against.
    inv = torch.where(sq > 0, 1.0 / sq.clamp_min(torch.finfo(G.dtype).tiny), 0.0)
    rows = torch.arange(K, device=G.device)
    for s in range(K - 1):
        j = order[:, s]
        a = R[rows, j].clamp(max=0.0) * inv[j]  # 0 where there is no conflict
        C[rows, j] -= a
        # Dense update of every row (a = 0 rows included): cheaper than boolean indexing.
        R.addcmul_(a[:, None], G.index_select(0, j), value=-1.0)
    return C


class PCGrad(GramCombiner):
    """PCGrad on the shared parameters (or representation), in Gram space.

    The order in which each task is projected against the others is redrawn every step.

    Parameters
    ----------
    seed
        Seed of a private :class:`torch.Generator` for the random orders. ``None`` (default)
        draws from the global torch RNG, which the Trainer seeds and checkpoints, so training
        is reproducible and resumable either way; a private generator is not checkpointed.
    rep_grad, chunk_size
        See :class:`~graphtag.optim.GramCombiner`.

    Attributes
    ----------
    last_coefficients_ : torch.Tensor
        ``(K, K)`` coefficients of the latest step (see :func:`pcgrad_coefficients`).
    """

    def __init__(self, *, seed: int | None = None, rep_grad: bool = False,
                 chunk_size: int | None = 64) -> None:
        super().__init__(rep_grad=rep_grad, chunk_size=chunk_size)
        self.seed = seed
        self.generator = None if seed is None else torch.Generator().manual_seed(seed)

    def weights(self, G: Tensor) -> Tensor:
        C = pcgrad_coefficients(G, generator=self.generator)
        self.last_coefficients_ = C
        return C.sum(0)

    def _params_repr(self) -> str:
        return f"seed={self.seed}, {super()._params_repr()}"
