r"""MTGD-style head mixing on one shared encoder, after multi-task gradient descent (MTGD).

Bai, Ong, He, Gupta, *Multi-task gradient descent for multi-task learning*, Memetic Computing
12(4), 2020 (see also Bai, Gupta, Ong, *Multi-task learning with multi-task optimization*).
In the paper every task ``k`` has its own parameters ``theta_k``; each step it takes a
weighted average of all tasks' parameters with a row-stochastic *transfer matrix* ``M`` and
a gradient step on its own loss (:func:`mtgd_step`, ``order="cta"``):

.. math::
    \theta_k \leftarrow \sum_j M_{kj} \theta_j - \eta \nabla L_k(\theta_k).

``M = I`` is independent per-task gradient descent. ``order="atc"`` gives the
adapt-then-combine variant ``theta_k <- sum_j M_kj (theta_j - eta grad L_j(theta_j))`` of the
diffusion-strategy literature (Sayed, 2014).

What the Trainer combiner (:class:`MTGD`) keeps, since ``K`` copies of a GNN encoder are not
practical at hundreds of tasks:

* **Task heads: exact per-task copies.** Row ``k`` of a linear multitask head (weight row and
  bias) already belongs to task ``k`` alone, so the ``K`` head copies are free. After every
  optimiser step (the Trainer's ``after_step`` hook) the rows are mixed, ``W <- M W``,
  ``b <- M b``. With the optimiser step in between this is the adapt-then-combine order;
  with ``M = I`` both orders are the same.
* **Shared encoder: one consensus copy.** If all ``K`` copies equal ``theta``, one
  adapt-then-combine step moves copy ``k`` to ``theta - eta sum_j M_kj g_j``; their mean, the
  consensus, is ``theta - (eta / K) sum_j (sum_k M_kj) g_j``. The combiner applies this
  consensus update: weights ``w_j = sum_k M_kj`` (column sums of ``M``, which total ``K``,
  the scale of equal weighting) on the shared gradients, i.e. tasks that many others draw on
  get more weight. ``M = I`` gives ``w = 1``: equal weighting.

The transfer matrix is given, or rebuilt every step from the Gram matrix of the shared
gradients (:func:`transfer_matrix`): ``M = (1 - lambda) I + lambda S`` with ``S`` a softmax over
the other tasks of the gradient cosine similarities divided by a temperature.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from graphtag.optim.weighting import GramCombiner, _as_gram

__all__ = ["MTGD", "mtgd_step", "transfer_matrix"]


def transfer_matrix(G: Tensor, transfer: float = 0.1, temperature: float = 0.1) -> Tensor:
    """Row-stochastic ``M = (1 - transfer) I + transfer * softmax_{j != k}(cos_kj / T)``.

    Parameters
    ----------
    G
        ``(K, K)`` Gram matrix of the task gradients; ``cos_kj = G_kj / sqrt(G_kk G_jj)``
        (0 when either gradient is zero).
    transfer
        Mass each task draws from the others, in ``[0, 1]``; 0 gives ``M = I``.
    temperature
        Softmax temperature, ``> 0``: small values send the mass to the most similar tasks.

    Returns
    -------
    torch.Tensor
        ``(K, K)`` float64, nonnegative, rows summing to 1.
    """
    if not 0.0 <= transfer <= 1.0:
        raise ValueError(f"transfer must be in [0, 1] (got {transfer}).")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 (got {temperature}).")
    G = _as_gram(G)
    K = G.size(0)
    eye = torch.eye(K, dtype=G.dtype, device=G.device)
    if K == 1 or transfer == 0.0:
        return eye
    norms = G.diagonal().clamp_min(0.0).sqrt()
    inv = torch.where(norms > 0, 1.0 / norms.clamp_min(torch.finfo(G.dtype).tiny), 0.0)
    cos = (G * inv[:, None] * inv[None, :]).clamp(-1.0, 1.0)
    S = (cos / temperature).fill_diagonal_(-float("inf")).softmax(dim=1)
    return (1.0 - transfer) * eye + transfer * S


def _check_transfer(M: Tensor, K: int | None = None) -> Tensor:
    if M.dim() != 2 or M.size(0) != M.size(1) or (K is not None and M.size(0) != K):
        want = "square" if K is None else f"({K}, {K})"
        raise ValueError(f"transfer matrix must be {want}, got shape {tuple(M.shape)}.")
    M = M.double()
    if bool((M < 0).any()) or not torch.allclose(M.sum(1), M.new_ones(M.size(0)), atol=1e-6):
        raise ValueError("transfer matrix must be nonnegative with rows summing to 1.")
    return M


def mtgd_step(theta: Tensor, grads: Tensor, M: Tensor, lr: float, order: str = "cta") -> Tensor:
    """One MTGD step on ``K`` parameter copies (rows of ``theta``).

    Parameters
    ----------
    theta, grads
        ``(K, ...)``: copy ``k`` and the gradient of ``L_k`` at copy ``k``.
    M
        ``(K, K)`` row-stochastic transfer matrix.
    lr
        Step size ``eta``.
    order
        ``"cta"`` (combine then adapt, the paper's recursion):
        ``M theta - lr grads``; ``"atc"`` (adapt then combine): ``M (theta - lr grads)``.

    Returns
    -------
    torch.Tensor
        The new copies, same shape and dtype as ``theta``.
    """
    if order not in ("cta", "atc"):
        raise ValueError(f"order must be 'cta' or 'atc' (got {order!r}).")
    if theta.shape != grads.shape:
        raise ValueError(f"theta {tuple(theta.shape)} and grads {tuple(grads.shape)} differ.")
    K = theta.size(0)
    M = _check_transfer(M, K).to(theta.dtype)
    flat, g = theta.reshape(K, -1), grads.reshape(K, -1)
    out = M @ flat - lr * g if order == "cta" else M @ (flat - lr * g)
    return out.reshape(theta.shape)


def _task_rows(head: nn.Module) -> list[tuple[nn.Linear, list[int]]]:
    """Linear layers whose output rows are the tasks' own parameters, with their task ids."""
    if isinstance(head, nn.Linear):
        return [(head, list(range(head.out_features)))]
    lin = getattr(head, "lin", None)
    if isinstance(lin, nn.Linear):  # MultiLabelHead
        return [(lin, list(range(lin.out_features)))]
    groups, heads = getattr(head, "groups", None), getattr(head, "heads", None)
    if groups is not None and heads is not None and all(isinstance(h, nn.Linear) for h in heads):
        return [(h, list(g)) for h, g in zip(heads, groups, strict=True)]  # GroupedHeads
    raise TypeError(
        f"MTGD can mix task heads only when each task owns a row of a linear layer "
        f"(MultiLabelHead, linear GroupedHeads); got {type(head).__name__}. "
        "Use MTGD(transfer_heads=False)."
    )


class MTGD(GramCombiner):
    """MTGD-style head mixing with one shared encoder, not the paper's ``K`` copies (see the
    module docstring: exact for the per-task head rows, a consensus weighting for the encoder).

    Parameters
    ----------
    transfer, temperature
        Build ``M`` every step from the gradient cosines (:func:`transfer_matrix`).
    transfer_matrix
        A fixed ``(K, K)`` row-stochastic matrix instead (``transfer``/``temperature`` are
        then unused).
    transfer_heads
        Mix the head rows after every optimiser step (needs the Trainer's ``after_step``
        hook and a linear per-task head).
    rep_grad, chunk_size
        See :class:`~graphtag.optim.GramCombiner` (the source of ``G`` for ``M``).

    Attributes
    ----------
    transfer_ : torch.Tensor
        ``(K, K)`` transfer matrix of the latest step.
    """

    def __init__(
        self,
        transfer: float = 0.1,
        temperature: float = 0.1,
        *,
        transfer_matrix: Tensor | None = None,
        transfer_heads: bool = True,
        rep_grad: bool = False,
        chunk_size: int | None = 64,
    ) -> None:
        if not 0.0 <= transfer <= 1.0:
            raise ValueError(f"transfer must be in [0, 1] (got {transfer}).")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0 (got {temperature}).")
        super().__init__(rep_grad=rep_grad, chunk_size=chunk_size)
        self.transfer = float(transfer)
        self.temperature = float(temperature)
        self.fixed_matrix = None if transfer_matrix is None else _check_transfer(transfer_matrix)
        self.transfer_heads = bool(transfer_heads)

    def weights(self, G: Tensor) -> Tensor:
        if self.fixed_matrix is not None:
            M = _check_transfer(self.fixed_matrix, G.size(0)).to(G.device)
        else:
            M = transfer_matrix(G, self.transfer, self.temperature)
        self.transfer_ = M
        return M.sum(0)

    @torch.no_grad()
    def after_step(self, model: nn.Module) -> None:
        """Mix the task-specific head rows: ``W <- M W``, ``b <- M b`` (task order)."""
        M = getattr(self, "transfer_", None)
        if not self.transfer_heads or M is None:
            return
        head = getattr(model, "head", None)
        if head is None:
            raise TypeError("MTGD(transfer_heads=True) needs a model with a .head module.")
        rows = _task_rows(head)
        K = sum(len(t) for _, t in rows)
        if K != M.size(0):
            raise ValueError(f"head has {K} task rows but the transfer matrix is "
                             f"{tuple(M.shape)}.")
        first = rows[0][0].weight
        W = first.new_empty(K, first.size(1))
        has_bias = all(lin.bias is not None for lin, _ in rows)
        b = first.new_empty(K)
        for lin, tasks in rows:
            W[tasks] = lin.weight
            if has_bias:
                b[tasks] = lin.bias
        Mf = M.to(W.dtype)
        W = Mf @ W
        b = Mf @ b
        for lin, tasks in rows:
            lin.weight.copy_(W[tasks])
            if has_bias:
                lin.bias.copy_(b[tasks])

    def _params_repr(self) -> str:
        m = "given" if self.fixed_matrix is not None else (
            f"transfer={self.transfer}, temperature={self.temperature}")
        return f"{m}, transfer_heads={self.transfer_heads}, {super()._params_repr()}"
