"""Per-subset task scores and the task-affinity matrix built from them."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["affinity_matrix", "affinity_stderr", "task_scores"]

_METRICS = ("neg_logloss", "f1")


def task_scores(
    lin_logits: Tensor,
    labels: Any,
    subsets: Any,
    *,
    metric: str = "neg_logloss",
    nodes: Any | None = None,
) -> Tensor:
    """Score every task of every subset's linearised model on held-out labels.

    Parameters
    ----------
    lin_logits
        ``(m, n, s)`` logits from :func:`~graphtag.affinity.linearized_logits` on the
        evaluation nodes.
    labels
        ``(N, T)`` labels in {0, 1}, -1 where unknown (ignored). If ``nodes`` is given, the rows
        ``labels[nodes]`` are used (the same ``nodes`` given to ``linearized_logits``);
        otherwise ``N`` must equal ``n``.
    subsets
        ``(m, s)`` task ids.
    metric
        ``"neg_logloss"``: minus the mean log-loss over the known labels (higher is better);
        ``"f1"``: F1 of the prediction ``logit > 0`` (0 when there are no positives, true or
        predicted, as in scikit-learn's ``zero_division=0``).
    nodes
        Boolean mask or index array selecting label rows.

    Returns
    -------
    torch.Tensor
        ``(m, s)`` float64 scores, ``nan`` for a task with no known label among the nodes.
    """
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {_METRICS} (got {metric!r}).")
    lab = torch.as_tensor(np.array(labels)).to(torch.float64)
    if nodes is not None:
        sel = np.asarray(nodes)
        lab = lab[torch.from_numpy(np.flatnonzero(sel) if sel.dtype == bool else sel)]
    subs = torch.as_tensor(np.asarray(subsets, dtype=np.int64))
    u = torch.as_tensor(lin_logits, dtype=torch.float64)
    if u.shape[0] != subs.shape[0] or u.shape[2] != subs.shape[1] or u.shape[1] != lab.shape[0]:
        raise ValueError(
            f"lin_logits {tuple(u.shape)} does not match subsets {tuple(subs.shape)} and "
            f"{lab.shape[0]} label rows."
        )
    y = lab[:, subs].permute(1, 0, 2)  # (m, n, s), aligned with u
    known = y >= 0
    y = y.clamp(min=0)
    cnt = known.sum(1).to(torch.float64)
    if metric == "neg_logloss":
        loss = u.clamp(min=0) + torch.log1p(torch.exp(-u.abs())) - y * u
        out = -(loss * known).sum(1) / cnt
    else:
        pred = (u > 0) & known
        pos = (y > 0) & known
        tp = (pred & pos).sum(1).to(torch.float64)
        denom = (pred.sum(1) + pos.sum(1)).to(torch.float64)  # 2tp + fp + fn
        out = torch.where(denom > 0, 2 * tp / denom.clamp(min=1), torch.zeros_like(tp))
    return torch.where(cnt > 0, out, torch.full_like(out, float("nan")))


def affinity_matrix(
    subsets: Any,
    scores: Any,
    num_tasks: int,
    normalize: bool = True,
    *,
    symmetric: bool = True,
    fill: float | None = None,
) -> np.ndarray:
    """Task-affinity matrix from per-subset scores (Grad-TAG's ``T``).

    ``A[i, j]`` is the mean score of task ``i`` over the subsets that contain both ``i`` and
    ``j`` (``nan`` scores are skipped). The raw ``(m, s)`` scores are not stored here: callers
    keep the ``scores`` they pass in if they need them (e.g. for other aggregations).

    Parameters
    ----------
    subsets
        ``(m, s)`` task ids.
    scores
        ``(m, s)`` score of task ``subsets[k, j]`` in subset ``k`` (higher is better), e.g. from
        :func:`task_scores`.
    num_tasks
        Number of tasks ``T``.
    normalize
        Subtract each task's baseline, its mean score over all subsets containing it, from its
        row, so that rows of tasks with different difficulty are comparable. Then, before
        symmetrising, every row ``i`` has co-occurrence-weighted mean zero:
        ``sum_j n_ij A[i, j] = 0`` with ``n_ij`` the number of subsets holding both with a
        valid score for ``i``.
    symmetric
        Return ``(A + A^T) / 2``.
    fill
        Value for pairs never together. None (default) fills with the row's baseline, i.e.
        "no evidence either way": 0 when normalised, task ``i``'s mean score otherwise (rows
        of tasks that never had a valid score get 0).

    Returns
    -------
    np.ndarray
        ``(T, T)`` float64 with zero diagonal.

    Raises
    ------
    ValueError
        When no score is finite: the matrix would be all fill, and grouping it would return
        an arbitrary (contiguous) split dressed up as a result.

    Warns
    -----
    UserWarning
        When some scores are NaN/inf (left out), naming the tasks they belong to.
    """
    subs = np.asarray(subsets, dtype=np.int64)
    sc = np.asarray(scores.cpu() if isinstance(scores, Tensor) else scores, dtype=np.float64)
    if subs.ndim != 2 or sc.shape != subs.shape:
        raise ValueError(f"scores {sc.shape} must match subsets {subs.shape} (m, s).")
    if subs.min() < 0 or subs.max() >= num_tasks:
        raise ValueError(f"subset entries must lie in [0, {num_tasks}).")
    finite = np.isfinite(sc)
    if not finite.any():
        raise ValueError(
            f"all {sc.size} subset scores are NaN or infinite, so there is no task affinity to "
            "group by; check that the scoring nodes have known labels for the tasks and that "
            "the subset fits converged (finite logits)."
        )
    if not finite.all():
        bad = np.unique(subs[~finite])
        shown = ", ".join(map(str, bad[:10])) + (" ..." if bad.size > 10 else "")
        warnings.warn(
            f"{int((~finite).sum())} of {sc.size} subset scores are NaN or infinite (tasks "
            f"{shown}) and are left out of the affinity.",
            stacklevel=2,
        )
    m = subs.shape[0]
    inc = np.zeros((m, num_tasks))  # task in subset
    np.put_along_axis(inc, subs, 1.0, axis=1)
    valid = np.zeros((m, num_tasks))  # task in subset with a usable score
    np.put_along_axis(valid, subs, np.isfinite(sc).astype(np.float64), axis=1)
    placed = np.zeros((m, num_tasks))
    np.put_along_axis(placed, subs, np.nan_to_num(sc, nan=0.0, posinf=0.0, neginf=0.0), axis=1)
    total = placed.T @ inc  # [i, j]: sum of i's scores over subsets holding i and j
    count = valid.T @ inc
    n_i = valid.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        aff = total / count
        base = np.where(n_i > 0, placed.sum(0) / np.maximum(n_i, 1), 0.0)
    if normalize:
        aff = aff - base[:, None]
    never = count == 0
    if fill is None:
        row_fill = np.zeros(num_tasks) if normalize else base
        aff = np.where(never, row_fill[:, None], aff)
    else:
        aff[never] = fill
    np.fill_diagonal(aff, 0.0)
    if symmetric:
        aff = (aff + aff.T) / 2
    return aff


def affinity_stderr(subsets: Any, scores: Any, num_tasks: int, *, symmetric: bool = True
                    ) -> np.ndarray:
    """Standard error of each entry of :func:`affinity_matrix`, from the scores it averages.

    ``A[i, j]`` is a mean of task ``i``'s scores over the ``n_ij`` subsets holding ``i`` and
    ``j``; its standard error is their sample standard deviation over ``sqrt(n_ij)``. The
    per-task baseline subtracted by ``normalize`` averages all of ``i``'s subsets, many more
    than ``n_ij``, and its own error is left out. With ``symmetric``, the error of
    ``(A[i, j] + A[j, i]) / 2`` treats the two directions as independent.

    Returns
    -------
    np.ndarray
        ``(T, T)`` float64, ``nan`` where fewer than two subsets hold the pair with a finite
        score (no spread to estimate), 0 on the diagonal.
    """
    subs = np.asarray(subsets, dtype=np.int64)
    sc = np.asarray(scores.cpu() if isinstance(scores, Tensor) else scores, dtype=np.float64)
    if subs.ndim != 2 or sc.shape != subs.shape:
        raise ValueError(f"scores {sc.shape} must match subsets {subs.shape} (m, s).")
    m = subs.shape[0]
    finite = np.isfinite(sc)
    x = np.where(finite, sc, 0.0)
    inc = np.zeros((m, num_tasks))
    np.put_along_axis(inc, subs, 1.0, axis=1)
    placed, placed2, valid = (np.zeros((m, num_tasks)) for _ in range(3))
    np.put_along_axis(placed, subs, x, axis=1)
    np.put_along_axis(placed2, subs, x * x, axis=1)
    np.put_along_axis(valid, subs, finite.astype(np.float64), axis=1)
    n = valid.T @ inc
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (placed.T @ inc) / n
        var = np.maximum((placed2.T @ inc) - n * mean * mean, 0.0) / (n - 1)
        se = np.where(n >= 2, np.sqrt(var / n), np.nan)
    if symmetric:
        se = 0.5 * np.sqrt(se * se + se.T * se.T)
    np.fill_diagonal(se, 0.0)
    return se
