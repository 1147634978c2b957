r"""Consensus-cosine task weighting (after Bohn et al. 2024; not their algorithm, see below).

What is implemented (:func:`gradproj_weights`), from the Gram matrix ``G = J J^T``:

.. math::
    d = \sum_k \frac{g_k}{\lVert g_k \rVert} \ (\text{``normalized''}) \quad\text{or}\quad
    d = \sum_k g_k \ (\text{``sum''}),

    c_k = \frac{\max(0,\ g_k \cdot d)}{\lVert g_k \rVert\, \lVert d \rVert}, \qquad
    w_k = K \frac{c_k}{\sum_j c_j}, \qquad \text{update} = \sum_k w_k g_k.

Tasks aligned with the consensus direction get more weight; tasks pointing against it get none.
All inner products come from ``G``: ``g_k . d = (G n)_k`` and ``||d||^2 = n^T G n`` with
``n_k = 1 / ||g_k||`` (or ``n = 1``). If ``d = 0`` (perfect cancellation) or no task has a
positive projection, the weights fall back to ``w = 1`` (equal weighting).

What this is not: the method was asked for as Bohn, Freeman, Tercan, Meisen, *Task
Weighting through Gradient Projection for Multitask Learning* (arXiv:2409.01793, 2024), the
reason for the registry name ``"gradproj"``. From that paper's abstract, its method is
different: it keeps PCGrad's projections and makes task priorities a *probability
distribution over which gradient gets projected when two tasks conflict*, leaving
non-conflicting tasks untouched. The formula above weights tasks by their cosine to the
consensus direction; it is not a reproduction of that paper's algorithm, and results with it
say nothing about Bohn et al.'s method.
"""

from __future__ import annotations

import torch
from torch import Tensor

from graphtag.optim.weighting import GramCombiner, _as_gram

__all__ = ["GradProj", "gradproj_weights"]

DIRECTIONS = ("normalized", "sum")


def gradproj_weights(G: Tensor, direction: str = "normalized") -> Tensor:
    """Weights ``w_k = K c_k / sum_j c_j`` with ``c_k = max(0, cos(g_k, d))``.

    Parameters
    ----------
    G
        ``(K, K)`` Gram matrix of the task gradients.
    direction
        ``"normalized"``: ``d = sum_k g_k / ||g_k||`` (every task's direction counts equally);
        ``"sum"``: ``d = sum_k g_k`` (the equal-weighting update).

    Returns
    -------
    torch.Tensor
        ``(K,)`` float64, nonnegative, summing to ``K`` (tasks with a zero gradient get 0).
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction={direction!r} is not one of {DIRECTIONS}.")
    G = _as_gram(G)
    K = G.size(0)
    norms = G.diagonal().clamp_min(0.0).sqrt()
    inv = torch.where(norms > 0, 1.0 / norms.clamp_min(torch.finfo(G.dtype).tiny), 0.0)
    n = inv if direction == "normalized" else (norms > 0).to(G.dtype)
    gd = G @ n  # g_k . d
    dd = float(n @ gd)  # ||d||^2
    if not dd > 0:
        return torch.ones(K, dtype=G.dtype, device=G.device)
    c = (gd * inv).clamp_min(0.0) / dd**0.5
    total = c.sum()
    if not total > 0:
        return torch.ones(K, dtype=G.dtype, device=G.device)
    return K * c / total


class GradProj(GramCombiner):
    """Consensus-cosine weighting: shared update ``sum_k w_k g_k`` with :func:`gradproj_weights`
    (after Bohn et al., not their algorithm: see the module notes).

    Parameters
    ----------
    direction
        ``"normalized"`` (default) or ``"sum"``, the common direction ``d``.
    rep_grad, chunk_size
        See :class:`~graphtag.optim.GramCombiner`.
    """

    def __init__(self, direction: str = "normalized", *, rep_grad: bool = False,
                 chunk_size: int | None = 64) -> None:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction={direction!r} is not one of {DIRECTIONS}.")
        super().__init__(rep_grad=rep_grad, chunk_size=chunk_size)
        self.direction = direction

    def weights(self, G: Tensor) -> Tensor:
        return gradproj_weights(G, self.direction)

    def _params_repr(self) -> str:
        return f"direction={self.direction!r}, {super()._params_repr()}"
