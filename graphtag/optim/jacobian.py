"""Per-task gradients (the task Jacobian) and their Gram matrix."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["gram_matrix", "task_jacobian"]


def task_jacobian(
    losses: Tensor,
    inputs: Sequence[Tensor],
    chunk_size: int | None = 64,
    retain_graph: bool = True,
) -> Tensor:
    """The ``(K, p)`` matrix ``J`` whose row ``k`` is ``d losses[k] / d inputs``, flattened.

    Rows come from batched vector-Jacobian products (``torch.autograd.grad`` with
    ``is_grads_batched=True`` on one-hot cotangents), ``chunk_size`` tasks per backward pass, so
    the autograd intermediates hold ``chunk_size`` copies of the activations at most, instead
    of ``K`` separate backward passes. If an op in the graph has no batching rule, it falls
    back to one backward pass per task.

    Parameters
    ----------
    losses
        ``(K,)`` differentiable per-task losses.
    inputs
        Tensors to differentiate against (shared parameters, or a representation); their
        gradients are concatenated in order. Inputs a loss does not reach get zeros.
    chunk_size
        Tasks per batched backward pass; ``None`` does all ``K`` at once.
    retain_graph
        Keep the autograd graph (the combiner back-propagates once more afterwards).

    Returns
    -------
    torch.Tensor
        ``(K, sum(x.numel() for x in inputs))``, dtype and device of ``losses``.
    """
    losses = losses.reshape(-1)
    K = losses.numel()
    inputs = list(inputs)
    p = sum(x.numel() for x in inputs)
    J = losses.new_empty(K, p)
    if K == 0 or p == 0:
        return J.zero_()
    step = K if chunk_size is None else max(1, int(chunk_size))
    eye = torch.eye(K, dtype=losses.dtype, device=losses.device)
    for s in range(0, K, step):
        e = min(s + step, K)
        last = e == K
        try:
            grads = torch.autograd.grad(
                losses, inputs, grad_outputs=eye[s:e], is_grads_batched=True,
                retain_graph=retain_graph or not last, allow_unused=True,
                materialize_grads=True,
            )
        except RuntimeError as err:  # an op without a vmap rule: one pass per task
            warnings.warn(f"batched per-task gradients failed ({err}); looping over tasks.",
                          RuntimeWarning, stacklevel=2)
            return _task_jacobian_loop(losses, inputs, retain_graph)
        J[s:e] = torch.cat([g.reshape(e - s, -1) for g in grads], dim=1)
    return J


def _task_jacobian_loop(losses: Tensor, inputs: list[Tensor], retain_graph: bool) -> Tensor:
    K = losses.numel()
    rows = []
    for k in range(K):
        grads = torch.autograd.grad(losses[k], inputs, retain_graph=retain_graph or k < K - 1,
                                    allow_unused=True, materialize_grads=True)
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


def gram_matrix(J: Tensor) -> Tensor:
    """``G = J J^T`` in float64 (the product itself runs in ``J``'s dtype, for speed)."""
    return (J @ J.T).double()
