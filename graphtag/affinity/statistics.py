"""Subset fits from per-task sufficient statistics: Grad-TAG's fits in seconds.

A subset's regression (:func:`~graphtag.affinity.fit_subsets`) is a sum over its tasks' rows,
so everything a Newton step *at a point every subset shares* needs decomposes over tasks. With
``H_t`` and ``c_t`` the Hessian and gradient of task ``t``'s summed log-loss at a common point
``z0`` (computed once, ``O(T n d^2)``), the Newton step of subset ``S`` from there is::

    z_S = z0 - (sum_{t in S} H_t + 2 lam_S I)^{-1} (sum_{t in S} c_t + 2 lam_S z0)

which costs ``O(s d^2 + d^3)`` per subset instead of ``O(s n d^2)`` per Newton iteration. The
common point is the fit of all tasks together (:func:`centered_statistics`), near which every
subset's optimum lies. Refinement steps reuse the same factorised matrix with the subset's exact
gradient, one ``O(s n d)`` pass each (``d`` times cheaper than an exact Newton pass); a step
that raises a subset's objective is undone. ``bench/fits.py`` measures how close this lands to
the exact optimum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from graphtag.affinity.regression import (
    _check_subsets,
    _chunks,
    _node_index,
    _softplus,
    _solve_spd,
    task_rows,
)

__all__ = ["TaskStatistics", "centered_statistics", "fit_subsets_stats", "subset_lam",
           "task_statistics"]

ArrayLike = Any

_SUM_ELEMS = 1 << 24  # subset block of summed (d, d) matrices: 128 MiB of float64


@dataclass
class TaskStatistics:
    """Each task's log-loss at ``z = 0``, summed over its labelled nodes, to second order.

    Attributes
    ----------
    hess : Tensor of shape (T, d, d)
        Hessian ``G_t^T diag(w_t) G_t``, ``w = sigma(b)(1 - sigma(b))`` on labelled rows.
    grad : Tensor of shape (T, d)
        Gradient ``G_t^T (sigma(b_t) - y_t)`` over labelled rows.
    loss : Tensor of shape (T,)
        The summed log-loss itself.
    n_known : Tensor of shape (T,)
        Labelled rows per task.
    center : Tensor of shape (d,)
        The point ``z`` the statistics are taken at (0, or the all-task fit of
        :func:`centered_statistics`).
    offset : bool
        Whether the base logits were used as offsets.
    """

    hess: Tensor
    grad: Tensor
    loss: Tensor
    n_known: Tensor
    center: Tensor
    offset: bool

    @property
    def num_tasks(self) -> int:
        return int(self.grad.shape[0])

    @property
    def dim(self) -> int:
        return int(self.grad.shape[1])


def task_statistics(
    grads: ArrayLike,
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    offset: bool = False,
    node_mask: ArrayLike | None = None,
    chunk: int = 512,
    center: Tensor | None = None,
) -> TaskStatistics:
    """Per-task sufficient statistics of the subset fits (one pass over the gradients).

    Parameters
    ----------
    grads, logits, labels, offset, node_mask, chunk
        As in :func:`~graphtag.affinity.fit_subsets`.
    center
        ``(d,)`` point to take them at (default 0): logits ``b + G_t center``.

    Returns
    -------
    TaskStatistics
        Float64 statistics; memory ``T d^2`` doubles.
    """
    n_all, num_tasks, d = (int(x) for x in grads.shape)
    if tuple(logits.shape) != (n_all, num_tasks) or tuple(labels.shape) != (n_all, num_tasks):
        raise ValueError(
            f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} must have shape "
            f"{(n_all, num_tasks)} like grads[:, :, 0]."
        )
    nodes = _node_index(node_mask, n_all)
    c0 = torch.zeros(d, dtype=torch.float64) if center is None else \
        torch.as_tensor(center, dtype=torch.float64).reshape(d)
    hess = torch.zeros(num_tasks, d, d, dtype=torch.float64)
    grad = torch.zeros(num_tasks, d, dtype=torch.float64)
    loss = torch.zeros(num_tasks, dtype=torch.float64)
    n_known = torch.zeros(num_tasks, dtype=torch.float64)
    for g, b, y, w in _chunks(grads, logits, labels, nodes, chunk, offset):
        if center is not None:
            b = b + (g @ c0.to(g.dtype)).double()
        sig = torch.sigmoid(b)
        # (T, n, d) products in the store's precision, summed into float64 per chunk
        hw = (w * sig * (1.0 - sig)).to(g.dtype)
        hess += torch.bmm(g.transpose(1, 2) * hw[:, None, :], g).double()
        grad += torch.bmm((w * (sig - y))[:, None, :], g.double()).squeeze(1)
        loss += (w * (_softplus(b) - y * b)).sum(1)
        n_known += w.sum(1)
    return TaskStatistics(hess, grad, loss, n_known, c0, offset)


def centered_statistics(
    grads: ArrayLike,
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    lam: float,
    offset: bool = False,
    node_mask: ArrayLike | None = None,
    steps: int = 3,
    chunk: int = 512,
) -> TaskStatistics:
    """Statistics taken at the fit of all tasks together, where subset fits start closer.

    Every subset's optimum sits near the all-task fit (with sparse labels, most of each fit is
    the shared shift that makes logits negative), far from ``z = 0`` where the logistic
    weights are 1/4 instead of the few hundredths they are at the optimum. ``steps`` Newton
    steps on all tasks together, each one pass of :func:`task_statistics` (``O(T n d^2)``),
    give that point; the statistics there make each subset's single Newton step much closer to
    its exact solution (``bench/fits.py``).

    Parameters
    ----------
    lam
        Mean-loss ridge weight (as :class:`~graphtag.pipeline.GradTAG`'s ``lam``), scaled here
        by the number of labelled pairs of all tasks.
    steps
        Newton steps of the all-task fit (0: statistics at ``z = 0``).
    grads, logits, labels, offset, node_mask, chunk
        As in :func:`task_statistics`.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0 (got {steps}).")
    kw = dict(offset=offset, node_mask=node_mask, chunk=chunk)
    stats = task_statistics(grads, logits, labels, **kw)
    d = stats.dim
    eye = torch.eye(d, dtype=torch.float64)
    for _ in range(steps):
        ridge = 2.0 * lam * max(float(stats.n_known.sum()), 1.0)
        c = stats.center
        step = torch.linalg.solve(stats.hess.sum(0) + ridge * eye, stats.grad.sum(0) + ridge * c)
        stats = task_statistics(grads, logits, labels, center=c - step, **kw)
    return stats


def subset_lam(lam: float, n_known: ArrayLike, subsets: ArrayLike) -> np.ndarray:
    """Per-subset ridge weight of a mean-loss ``lam`` for a summed-loss fit.

    :func:`~graphtag.affinity.fit_subsets` minimises a sum over labelled pairs, so the mean-loss
    objective ``mean logloss + lam ||z||^2`` of subset ``S`` is its ``lam * n_S`` with ``n_S``
    the subset's own count of labelled pairs (under a label mask, counts differ by subset).
    """
    n = np.asarray(n_known, dtype=np.float64)
    subs = np.asarray(subsets, dtype=np.int64)
    return lam * np.maximum(n[subs].sum(1), 1.0)


def _lam_vector(lam: float | ArrayLike, m: int) -> Tensor:
    lam_t = torch.as_tensor(np.asarray(lam, dtype=np.float64))
    if lam_t.ndim == 0:
        lam_t = lam_t.expand(m)
    if lam_t.shape != (m,):
        raise ValueError(f"lam must be a scalar or have one entry per subset ({m}), got shape "
                         f"{tuple(lam_t.shape)}.")
    if (lam_t < 0).any() or not torch.isfinite(lam_t).all():
        raise ValueError("lam must be finite and >= 0.")
    return lam_t.clone()


def _summed(mats: Tensor, subs: Tensor) -> Tensor:
    """``sum_j mats[subs[:, j]]`` as one incidence-matrix product.

    A dense ``(mb, T) x (T, d^2)`` GEMM does ``T / s`` times the additions of a gather-and-sum
    but runs at BLAS speed, while gathering ``s`` copies of ``(mb, d, d)`` is bound by memory
    traffic (several times slower at 100-500 tasks, ``d >= 64``).
    """
    inc = torch.zeros(subs.shape[0], mats.shape[0], dtype=mats.dtype)
    inc.scatter_(1, subs, 1.0)
    return (inc @ mats.reshape(mats.shape[0], -1)).reshape(subs.shape[0], *mats.shape[1:])


def _refine_terms(data: list, z: Tensor, rows: list[tuple[Tensor, Tensor]]
                  ) -> tuple[Tensor, Tensor]:
    """Summed log-loss and its gradient for every subset at ``z`` (one pass, no Hessian).

    Task-major: each task's ``(n, d)`` gradients meet the ``c`` subsets that hold it in two
    ``(n, d) x (d, c)`` products, so nothing is gathered per subset.
    """
    mb, d = z.shape
    f = torch.zeros(mb, dtype=torch.float64)
    grad = torch.zeros(mb, d, dtype=torch.float64)
    for g, b, y, w in data:
        zz = z.to(g.dtype)
        for t, (ks, _) in enumerate(rows):
            if not ks.numel():
                continue
            gt = g[t]
            u = b[t][:, None] + (gt @ zz[ks].T).double()  # (n, c)
            yt, wt = y[t][:, None], w[t][:, None]
            f.index_add_(0, ks, (wt * (_softplus(u) - yt * u)).sum(0))
            r = (wt * (torch.sigmoid(u) - yt)).to(g.dtype)
            grad.index_add_(0, ks, (r.T @ gt).double())
    return f, grad


def fit_subsets_stats(
    stats: TaskStatistics,
    subsets: ArrayLike,
    *,
    lam: float | ArrayLike = 1e-3,
    refine: int = 0,
    grads: ArrayLike | None = None,
    logits: ArrayLike | None = None,
    labels: ArrayLike | None = None,
    node_mask: ArrayLike | None = None,
) -> Tensor:
    """Fit every subset's linearised model from per-task statistics.

    Solves the problem of :func:`~graphtag.affinity.fit_subsets` (summed log-loss plus
    ``lam ||z||^2``) approximately: one exact Newton step from ``stats.center`` assembled from
    ``stats``, then ``refine`` fixed-metric steps (the same matrix, the exact gradient), which
    need the data (``grads``, ``logits``, ``labels``, ``node_mask``: the same as for ``stats``).

    Parameters
    ----------
    stats
        From :func:`centered_statistics` (or :func:`task_statistics`).
    subsets
        ``(m, s)`` task ids.
    lam
        Ridge weight (summed-loss scale), a scalar or one per subset (:func:`subset_lam`).
    refine
        Refinement steps after the Newton step (0: statistics only, no pass over the data).
    grads, logits, labels, node_mask
        The data ``stats`` came from; needed only when ``refine > 0`` (then its selected rows
        are read into memory once: ``n T d`` floats).

    Returns
    -------
    torch.Tensor
        ``(m, d)`` float64, row ``k`` the fit of subset ``k``.

    Notes
    -----
    Cost ``O(m (s d^2 + d^3))`` for the Newton step (subset matrices summed and factorised a
    block at a time, so memory is bounded by one block of ``(d, d)`` matrices plus ``stats``),
    plus ``O(m s n d)`` per refinement step. Each pass checks the objective: a subset whose last
    step raised it goes back to its previous point (at worst the expansion point) and stops
    refining. The step after the last pass is not checked. Without offsets and at ``z = 0`` the
    matrix ``G^T G / 4`` is Böhning's bound on the Hessian, and every step descends.
    """
    subs_np = _check_subsets(subsets, stats.num_tasks)
    if refine < 0:
        raise ValueError(f"refine must be >= 0 (got {refine}).")
    m, d = subs_np.shape[0], stats.dim
    lam_t = _lam_vector(lam, m)
    data: list | None = None
    if refine > 0:
        if grads is None or logits is None or labels is None:
            raise ValueError("refine > 0 needs the data the statistics came from: pass grads, "
                             "logits and labels (and node_mask).")
        if tuple(grads.shape[1:]) != (stats.num_tasks, d):
            raise ValueError(f"grads {tuple(grads.shape)} do not match the statistics "
                             f"({stats.num_tasks} tasks, d = {d}).")
        nodes = _node_index(node_mask, int(grads.shape[0]))
        # the selected rows are held in memory for the passes anyway, so in one chunk: fewer,
        # larger products per task
        data = list(_chunks(grads, logits, labels, nodes, 1 << 62, stats.offset))
    subs = torch.from_numpy(subs_np)
    z = torch.zeros(m, d, dtype=torch.float64)
    T = stats.num_tasks
    eye = torch.eye(d, dtype=torch.float64)
    step = max(1, _SUM_ELEMS // (d * d))
    for lo in range(0, m, step):
        si, la = subs[lo:lo + step], lam_t[lo:lo + step]
        ridge = 2.0 * la[:, None, None] * eye
        h = _summed(stats.hess, si) + ridge
        zc = stats.center.expand(si.shape[0], d)
        c = _summed(stats.grad, si) + 2.0 * la[:, None] * zc
        chol, info = torch.linalg.cholesky_ex(h)
        if (info > 0).any():  # lam = 0 and rank-deficient gradients: jittered solve
            zb = zc - _solve_spd(h, c)
            chol = torch.linalg.cholesky(h + 1e-8 * h.diagonal(dim1=1, dim2=2).abs()
                                         .mean(1).clamp(min=1e-300)[:, None, None] * eye)
        else:
            zb = zc - torch.cholesky_solve(c[..., None], chol).squeeze(-1)
        if data is not None:
            rows = task_rows(subs_np[lo:lo + step], T)
            # objective at the expansion point: every step must stay below it
            prev_z = zc.clone()
            prev_f = _summed(stats.loss[:, None], si)[:, 0] + la * (zc * zc).sum(1)
            active = torch.ones(si.shape[0], dtype=torch.bool)
            for _ in range(refine):
                f, gz = _refine_terms(data, zb, rows)
                f = f + la * (zb * zb).sum(1)
                worse = active & (f > prev_f)
                # a step that raised the objective (the fixed metric is not a bound away from
                # z = 0 without offsets) is undone and that subset stops refining
                zb[worse] = prev_z[worse]
                active &= ~worse
                prev_z, prev_f = zb.clone(), torch.where(active, f, prev_f)
                gz += 2.0 * la[:, None] * zb
                delta = torch.cholesky_solve(gz[..., None], chol).squeeze(-1)
                zb = zb - torch.where(active[:, None], delta, torch.zeros_like(delta))
        z[lo:lo + step] = zb
    return z
