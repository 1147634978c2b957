"""Combiners whose update is a weighted sum of task gradients, weights read off the Gram matrix.

In the spirit of torchjd's aggregators, a *weighting* maps the ``K x K`` Gram matrix
``G = J J^T`` of the task gradients (rows of the task Jacobian ``J``) to a weight vector ``w``,
and the update of the shared parameters is ``w^T J``. Every method here fits this mould:

* equal weighting: ``w = 1``;
* PCGrad: ``w = sum_i c_i`` where ``c_i`` expresses the projected ``g_i`` in the original
  gradients (:func:`~graphtag.optim.pcgrad_coefficients`);
* FairGrad: ``w`` solves ``G w = w^(-1/alpha)`` (:func:`~graphtag.optim.fairgrad_weights`);
* consensus-cosine weighting, after Bohn et al. (:func:`~graphtag.optim.gradproj_weights`);
* MTGD-style consensus update of one shared encoder: ``w`` = column sums of the transfer
  matrix.

Working from ``G`` makes the weighting cost independent of the number ``p`` of shared
parameters: only forming ``J`` and ``G`` (``O(K^2 p)``) and the final ``w^T J`` touch ``p``.

Two sources for ``J`` (:class:`GramCombiner` ``rep_grad``):

* ``rep_grad=False``: per-task gradients of the shared parameters, ``J`` is ``(K, p)``;
* ``rep_grad=True`` (as LibMTL's ``rep_grad``): per-task gradients of the shared
  representation ``Z`` (the ``(B, H)`` input of the head), ``J`` is ``(K, B H)``; the combined
  representation gradient ``w^T J`` is then pulled back through the encoder once. Cheaper when
  ``p >> B H``; an approximation of the parameter-space method otherwise (the Gram matrix of
  representation gradients differs from that of parameter gradients).

Task-specific (head) parameters always get their plain gradients, ``sum_k dL_k/dtheta_head``
(each head row only sees its own task, so weighting it would only rescale its step).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from graphtag.optim.base import LossCombiner
from graphtag.optim.jacobian import gram_matrix, task_jacobian

__all__ = ["GramCombiner"]


class GramCombiner(LossCombiner):
    """Base class: shared-parameter update ``w^T J`` with ``w = self.weights(G)``.

    Subclasses implement :meth:`weights`. :meth:`backward` forms the task Jacobian ``J``
    (parameters or representation), ``G = J J^T`` (float64), the weights, and fills ``.grad``:
    shared parameters (or the representation, pulled back) get ``w^T J``, every other
    parameter its plain gradient of ``sum_k L_k``. One extra ordinary backward pass does both.

    Parameters
    ----------
    rep_grad
        Use gradients of the shared representation instead of the shared parameters (the
        Trainer then passes ``rep=``; see the module docstring).
    chunk_size
        Tasks per batched backward pass when forming ``J`` (bounds memory).

    Attributes
    ----------
    last_weights_ : torch.Tensor
        ``(K,)`` weights of the latest step (float64, on the losses' device).
    """

    def __init__(self, *, rep_grad: bool = False, chunk_size: int | None = 64) -> None:
        self.rep_grad = bool(rep_grad)
        self.chunk_size = chunk_size

    @property
    def needs_representation(self) -> bool:  # type: ignore[override]
        return self.rep_grad

    def weights(self, G: Tensor) -> Tensor:
        """``(K,)`` weights from the ``(K, K)`` Gram matrix of the task gradients."""
        raise NotImplementedError

    def jacobian(
        self, losses: Tensor, shared: Sequence[nn.Parameter], rep: Tensor | None = None
    ) -> tuple[Tensor, list[Tensor]]:
        """The task Jacobian ``J`` and the tensors its columns belong to."""
        if self.rep_grad:
            if rep is None:
                raise ValueError(
                    f"{self.__class__.__name__}(rep_grad=True) needs the shared representation: "
                    "call backward(losses, shared, rep=z) with z the head's input (the Trainer "
                    "does so because needs_representation is True)."
                )
            inputs = [rep]
        else:
            inputs = [p for p in shared if p.requires_grad]
        return task_jacobian(losses, inputs, self.chunk_size), inputs

    def backward(
        self, losses: Tensor, shared: Sequence[nn.Parameter], rep: Tensor | None = None
    ) -> Tensor:
        losses = losses.reshape(-1)
        J, inputs = self.jacobian(losses, shared, rep)
        w = self.weights(gram_matrix(J)).to(losses.device)
        self.last_weights_ = w.detach()
        update = w.to(J.dtype) @ J
        # Swap the incoming gradient of each input for its slice of w^T J during one ordinary
        # backward of sum(L): heads get plain gradients, shared inputs the combined one
        # (pulled back through the encoder when the input is the representation).
        handles, offset = [], 0
        for x in inputs:
            piece = update[offset : offset + x.numel()].view_as(x)
            offset += x.numel()
            handles.append(x.register_hook(lambda _g, piece=piece: piece))
        try:
            losses.sum().backward()
        finally:
            for h in handles:
                h.remove()
        return (w.to(losses.dtype) * losses.detach()).sum()

    def _params_repr(self) -> str:
        return f"rep_grad={self.rep_grad}"

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self._params_repr()})"


def _as_gram(G: Tensor) -> Tensor:
    """Validate a Gram matrix and return it in float64."""
    if G.dim() != 2 or G.size(0) != G.size(1):
        raise ValueError(f"G must be a square (K, K) matrix, got shape {tuple(G.shape)}.")
    if not torch.isfinite(G).all():
        raise ValueError("G has non-finite entries (NaN or inf task gradients?).")
    return G.double()
