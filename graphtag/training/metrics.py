"""Multitask evaluation metrics (scikit-learn underneath)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score, roc_auc_score
from torch import Tensor

__all__ = ["constant_predictor_f1", "multitask_scores"]


def _np(t: Tensor | np.ndarray) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, Tensor) else np.asarray(t)


def multitask_scores(
    y_true: Tensor | np.ndarray,
    logits: Tensor | np.ndarray,
    label_mask: Tensor | np.ndarray | None = None,
    threshold: float = 0.0,
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

    Returns
    -------
    dict
        ``macro_f1`` (mean over tasks with at least one positive), ``micro_f1`` (over all
        labelled entries), ``per_task_f1`` (list, ``nan`` for tasks without positives),
        ``roc_auc`` (macro over tasks with both classes, ``nan`` if none) and
        ``num_scored_tasks``. Tasks without a positive in the evaluated nodes are skipped in
        the macro averages: their F1 is undefined.
    """
    y = _np(y_true).astype(np.int8)
    s = _np(logits).astype(np.float64)
    if y.shape != s.shape or y.ndim != 2:
        raise ValueError(f"y_true {y.shape} and logits {s.shape} must be equal (N, T) shapes.")
    pred = (s > threshold).astype(np.int8)
    mask = np.ones_like(y, dtype=bool) if label_mask is None else _np(label_mask).astype(bool)
    T = y.shape[1]
    per_task = np.full(T, np.nan)
    aucs = []
    if label_mask is None:
        has_pos = y.sum(0) > 0
        # sklearn reads a single column as a binary problem, so one task needs its own call.
        if has_pos.sum() > 1:
            per_task[has_pos] = f1_score(y[:, has_pos], pred[:, has_pos], average=None,
                                         zero_division=0)
        elif has_pos.sum() == 1:
            t = int(np.flatnonzero(has_pos)[0])
            per_task[t] = f1_score(y[:, t], pred[:, t], zero_division=0)
        both = has_pos & (y.sum(0) < y.shape[0])
        if both.sum() > 1:
            aucs = list(roc_auc_score(y[:, both], s[:, both], average=None))
        elif both.sum() == 1:
            t = int(np.flatnonzero(both)[0])
            aucs = [roc_auc_score(y[:, t], s[:, t])]
    else:
        for t in range(T):
            m = mask[:, t]
            yt, pt = y[m, t], pred[m, t]
            if yt.sum() > 0:
                per_task[t] = f1_score(yt, pt, zero_division=0)
                if yt.sum() < yt.size:
                    aucs.append(roc_auc_score(yt, s[m, t]))
    micro = f1_score(y[mask], pred[mask], zero_division=0) if mask.any() else float("nan")
    scored = ~np.isnan(per_task)
    return {
        "macro_f1": float(per_task[scored].mean()) if scored.any() else float("nan"),
        "micro_f1": float(micro),
        "roc_auc": float(np.mean(aucs)) if len(aucs) else float("nan"),
        "per_task_f1": per_task.tolist(),
        "num_scored_tasks": int(scored.sum()),
    }


def constant_predictor_f1(y_true: Tensor | np.ndarray) -> float:
    """Macro-F1 of the best constant predictor (all positive), the floor a model must beat."""
    y = _np(y_true)
    return float(multitask_scores(y, np.ones_like(y, dtype=np.float64))["macro_f1"])

