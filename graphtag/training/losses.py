"""Masked multitask binary cross-entropy."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["masked_bce_per_task"]


def masked_bce_per_task(
    logits: Tensor,
    y: Tensor,
    label_mask: Tensor | None = None,
    pos_weight: Tensor | None = None,
) -> Tensor:
    r"""Per-task mean BCE-with-logits over the nodes whose label is known.

    .. math::
        L_t = \frac{\sum_v m_{vt}\, \ell(z_{vt}, y_{vt})}{\max(1, \sum_v m_{vt})}

    Parameters
    ----------
    logits, y
        ``(N, T)`` logits and {0, 1} labels.
    label_mask
        ``(N, T)`` bool, ``False`` where a label is missing; ``None`` means all known.
    pos_weight
        ``(T,)`` weight of the positive term of each task (``None``: 1).

    Returns
    -------
    torch.Tensor
        ``(T,)`` losses; a task with no labelled node in the batch gets 0 (and no gradient).
    """
    if logits.shape != y.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and y {tuple(y.shape)} differ in shape.")
    y = y.to(logits.dtype)
    elem = F.binary_cross_entropy_with_logits(logits, y, pos_weight=pos_weight, reduction="none")
    if label_mask is None:
        return elem.mean(dim=0)
    m = label_mask.to(logits.dtype)
    return (elem * m).sum(dim=0) / m.sum(dim=0).clamp_min(1.0)
