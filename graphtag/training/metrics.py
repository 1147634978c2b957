"""Multitask evaluation metrics (scikit-learn underneath)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score
from torch import Tensor

__all__ = ["constant_predictor_f1", "multitask_scores"]


def _np(t: Tensor | np.ndarray) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, Tensor) else np.asarray(t)


def multitask_scores(
    y_true: Tensor | np.ndarray,
    logits: Tensor | np.ndarray,
    label_mask: Tensor | np.ndarray | None = None,
    threshold: float = 0.0,
    roc_auc: bool = True,
) -> dict[str, object]:
    """F1 and ROC-AUC of a multitask prediction.

    Parameters
    ----------
    y_true
        ``(N, T)`` {0, 1} labels of the evaluated nodes.
    logits
        ``(N, T)`` scores; a node is predicted positive for a task when its logit exceeds
        ``threshold`` (0 = probability 0.5).
    label_mask
        ``(N, T)`` bool, ``False`` where the label is unknown (excluded).
    roc_auc
        Compute ROC-AUC (a sort per task: most of the cost at hundreds of tasks). ``False``
        reports ``nan``; the per-epoch validation of :class:`~graphtag.training.Trainer` skips it.

    Returns
    -------
    dict
        ``macro_f1`` (mean over tasks with at least one positive), ``micro_f1`` (over all
        labelled entries), ``per_task_f1`` (list, ``nan`` for tasks without positives),
        ``roc_auc`` (macro over tasks with both classes, ``nan`` if none) and
        ``num_scored_tasks``. Tasks without a positive in the evaluated nodes are skipped in
        the macro averages: their F1 is undefined.
    """
    y = _np(y_true)
    s = _np(logits)
    if y.shape != s.shape or y.ndim != 2:
        raise ValueError(f"y_true {y.shape} and logits {s.shape} must be equal (N, T) shapes.")
    y = y > 0.5
    pred = s > threshold
    mask = None if label_mask is None else _np(label_mask).astype(bool)
    # F1 from per-task confusion counts: equals sklearn's f1_score(zero_division=0) without
    # its per-call validation, and needs no float64 copy of an (N, T) matrix.
    hit = y & pred
    if mask is not None:
        hit &= mask
        pos = (y & mask).sum(0)
        called = (pred & mask).sum(0)
    else:
        pos, called = y.sum(0), pred.sum(0)
    tp = hit.sum(0)
    denom = pos + called  # 2tp + fp + fn
    per_task = np.full(y.shape[1], np.nan)
    has_pos = pos > 0
    per_task[has_pos] = 2.0 * tp[has_pos] / denom[has_pos]
    total = int(denom.sum())
    micro = 2.0 * int(tp.sum()) / total if total else 0.0
    if mask is not None and not mask.any():
        micro = float("nan")
    aucs: list[float] = []
    if roc_auc:
        n_lab = y.shape[0] if mask is None else mask.sum(0)
        both = np.flatnonzero(has_pos & (pos < n_lab))
        for t in both:
            if mask is None:
                aucs.append(roc_auc_score(y[:, t], s[:, t]))
            else:
                m = mask[:, t]
                aucs.append(roc_auc_score(y[m, t], s[m, t]))
    scored = ~np.isnan(per_task)
    return {
        "macro_f1": float(per_task[scored].mean()) if scored.any() else float("nan"),
        "micro_f1": float(micro),
        "roc_auc": float(np.mean(aucs)) if len(aucs) else float("nan"),
        "per_task_f1": per_task.tolist(),
        "num_scored_tasks": int(scored.sum()),
    }


def constant_predictor_f1(y_true: Tensor | np.ndarray,
                          label_mask: Tensor | np.ndarray | None = None) -> float:
    """Macro-F1 of the best constant predictor (all positive), the floor a model must beat.

    Predicting every node positive gives a task with ``p`` positives among ``n`` labelled
    nodes precision ``p / n`` and recall 1, so F1 ``2 p / (p + n)``; computed from the
    counts (no ``(N, T)`` prediction matrix). ``label_mask`` as in :func:`multitask_scores`.
    """
    y = _np(y_true) > 0.5
    if y.ndim != 2:
        raise ValueError(f"y_true must be (N, T), got shape {y.shape}.")
    if label_mask is None:
        n = np.full(y.shape[1], float(y.shape[0]))
    else:
        m = _np(label_mask).astype(bool)
        y = y & m
        n = m.sum(0).astype(np.float64)
    pos = y.sum(0).astype(np.float64)
    has = pos > 0
    return float((2 * pos[has] / (pos[has] + n[has])).mean()) if has.any() else float("nan")
