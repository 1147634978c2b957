"""How per-task losses become one parameter update.

The :class:`~graphtag.training.Trainer` computes a vector of per-task losses each step and hands
it to a combiner, whose :meth:`LossCombiner.backward` fills the parameters' ``.grad``. The
default, :class:`EqualWeighting`, back-propagates the plain sum. Gradient-surgery and
task-weighting methods (:mod:`graphtag.optim.weighting` and the modules beside it) subclass
:class:`LossCombiner` and work from per-task gradients of the shared parameters, or of the
shared representation (``rep_grad=True``).

Two optional hooks extend the protocol without breaking older combiners:

* ``needs_representation`` (a bool attribute, default ``False``): when true the Trainer passes
  ``rep=`` (the tensor fed to ``model.head``) to :meth:`LossCombiner.backward`;
* ``after_step(model)``: when a combiner defines it, the Trainer calls it after every
  optimiser step (used by :class:`~graphtag.optim.MTGD` to mix task-specific parameters).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

__all__ = ["EqualWeighting", "LossCombiner"]


class LossCombiner:
    """Base class: turn per-task losses into gradients on the model parameters."""

    #: Whether :meth:`backward` needs the shared representation (``rep=``) from the Trainer.
    needs_representation: bool = False

    def backward(
        self, losses: Tensor, shared: Sequence[nn.Parameter], rep: Tensor | None = None
    ) -> Tensor:
        """Fill ``.grad`` of every parameter from ``losses`` (shape ``(T,)``).

        Parameters
        ----------
        losses
            Per-task losses of the current minibatch, each a differentiable scalar.
        shared
            Parameters shared by all tasks (the encoder's): the ones whose per-task gradients
            conflict. Task-specific head parameters get their plain gradients.
        rep
            The shared representation (the input of the model's head), passed by the Trainer
            only when :attr:`needs_representation` is true.

        Returns
        -------
        torch.Tensor
            The scalar that was (effectively) minimised, for logging.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}()"


class EqualWeighting(LossCombiner):
    """The reference: back-propagate ``sum_t L_t``."""

    def backward(
        self, losses: Tensor, shared: Sequence[nn.Parameter], rep: Tensor | None = None
    ) -> Tensor:
        total = losses.sum()
        total.backward()
        return total.detach()
