"""Batched logistic regressions on projected gradients: one linearised model per task subset.

Grad-TAG approximates the model fine-tuned on a task subset ``S`` by its first-order Taylor
expansion around the base model: the logit of task ``t`` at node ``v`` becomes
``b_vt + g_vt . z`` with ``g_vt`` the (projected) gradient of that logit and ``z`` the (projected)
parameter change. Fitting ``z`` is a ridge-regularised logistic regression on the gradients,
solved here for all ``m`` subsets at once as one batched Newton problem.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["fit_subsets", "linearized_logits", "task_rows"]

ArrayLike = Any  # numpy array / memmap or torch tensor

_BLOCK_ELEMS = 1 << 22  # gathered (subsets x tasks x nodes x d) block: 32 MiB of float64
_ALPHAS = 2.0 ** -np.arange(16)  # trial Newton step sizes, evaluated in one pass
_ARMIJO = 1e-4


def _check_subsets(subsets: ArrayLike, num_tasks: int) -> np.ndarray:
    s = np.asarray(subsets.cpu() if isinstance(subsets, Tensor) else subsets, dtype=np.int64)
    if s.ndim != 2 or s.shape[0] < 1 or s.shape[1] < 1:
        raise ValueError(f"subsets must be a non-empty 2-D (m, s) array, got shape {s.shape}.")
    if s.min() < 0 or s.max() >= num_tasks:
        raise ValueError(f"subset entries must lie in [0, {num_tasks}).")
    return s


def _node_index(node_mask: ArrayLike | None, n: int) -> np.ndarray | None:
    """Sorted node indices from a boolean mask or an index list; None means all nodes."""
    if node_mask is None:
        return None
    a = np.asarray(node_mask.cpu() if isinstance(node_mask, Tensor) else node_mask)
    if a.dtype == bool:
        if a.shape != (n,):
            raise ValueError(f"boolean node_mask must have shape ({n},), got {a.shape}.")
        return np.flatnonzero(a)
    a = np.unique(a.astype(np.int64))
    if a.size and (a[0] < 0 or a[-1] >= n):
        raise ValueError(f"node indices must lie in [0, {n}).")
    return a


def _rows(arr: ArrayLike, sel: slice | np.ndarray, exact: bool = False) -> Tensor:
    """Rows of a tensor or (memmapped) array as a CPU tensor: float64, or with ``exact`` the
    narrowest of float32/float64 that holds the input exactly (gradient stores are float32 or
    float16, and widening them to float64 would only double the memory traffic)."""
    if isinstance(arr, Tensor):
        idx = sel if isinstance(sel, slice) else torch.from_numpy(sel)
        t = arr[idx].detach().cpu()
    else:
        t = torch.from_numpy(np.array(arr[sel]))  # a copy: memmaps are read-only
    if exact and t.dtype in (torch.float16, torch.bfloat16, torch.float32):
        return t.to(torch.float32)
    return t.to(torch.float64)


def _chunks(
    grads: ArrayLike,
    logits: ArrayLike,
    labels: ArrayLike | None,
    nodes: np.ndarray | None,
    chunk: int,
    offset: bool,
) -> Iterator[tuple[Tensor, Tensor, Tensor, Tensor]]:
    """Yield task-major node chunks ``G (T, n, d)``, ``b (T, n)``, ``y (T, n)``, ``w (T, n)``.

    ``w`` is 1 where the label is known (0 for -1, and everywhere when ``labels`` is None).
    ``G`` keeps float32 when the input is float32 or narrower; the rest is float64.
    """
    n_all = grads.shape[0] if nodes is None else nodes.size
    for lo in range(0, n_all, chunk):
        hi = min(lo + chunk, n_all)
        sel: slice | np.ndarray = slice(lo, hi) if nodes is None else nodes[lo:hi]
        g = _rows(grads, sel, exact=True).transpose(0, 1).contiguous()
        b = _rows(logits, sel).T.contiguous() if offset else torch.zeros(g.shape[:2],
                                                                          dtype=torch.float64)
        if labels is None:
            y = torch.zeros_like(b)
            w = torch.ones_like(b)
        else:
            lab = _rows(labels, sel).T.contiguous()
            w = (lab >= 0).to(torch.float64)
            y = lab.clamp(min=0)
        yield g, b, y, w


def task_rows(subsets: np.ndarray, num_tasks: int) -> list[tuple[Tensor, Tensor]]:
    """For each task ``t``, the rows ``k`` and columns ``j`` with ``subsets[k, j] == t``."""
    flat = np.asarray(subsets, dtype=np.int64).ravel()
    order = np.argsort(flat, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(flat, minlength=num_tasks))])
    s = subsets.shape[1]
    return [(torch.from_numpy(order[a:c] // s), torch.from_numpy(order[a:c] % s))
            for a, c in itertools.pairwise(bounds)]


def _blocks(m: int, per_subset: int) -> Iterator[slice]:
    size = max(1, _BLOCK_ELEMS // max(per_subset, 1))
    for lo in range(0, m, size):
        yield slice(lo, min(lo + size, m))


def _softplus(u: Tensor) -> Tensor:
    # exact log(1 + e^u); F.softplus switches to the identity above a threshold
    return u.clamp(min=0) + torch.log1p(torch.exp(-u.abs()))


def _newton_terms(
    data: list[tuple[Tensor, Tensor, Tensor, Tensor]] | Iterator,
    z: Tensor,
    subsets: np.ndarray,
    lam: Tensor,
) -> tuple[Tensor, Tensor, Tensor]:
    """Objective, gradient and Hessian of every subset's problem at ``z`` (one pass)."""
    m, d = z.shape
    s_idx = torch.from_numpy(subsets)
    f = torch.zeros(m, dtype=torch.float64)
    grad = torch.zeros(m, d, dtype=torch.float64)
    hess = torch.zeros(m, d, d, dtype=torch.float64)
    for g, b, y, w in data:
        n = g.shape[1]
        for blk in _blocks(m, subsets.shape[1] * n * d):
            si = s_idx[blk]
            mb = si.shape[0]
            g_in = g[si].reshape(mb, -1, d)  # (mb, s*n, d)
            gs = g_in.double()
            u = b[si].reshape(mb, -1) + torch.bmm(gs, z[blk, :, None]).squeeze(-1)
            yy, ww = y[si].reshape(mb, -1), w[si].reshape(mb, -1)
            f[blk] += (ww * (_softplus(u) - yy * u)).sum(1)
            sig = torch.sigmoid(u)
            grad[blk] += torch.bmm((ww * (sig - yy))[:, None, :], gs).squeeze(1)
            # The Hessian only shapes the step (objective and gradient stay float64, so the
            # optimum is unchanged): accumulate it in the input precision, the d-times
            # costlier product runs in float32 for float32 stores.
            h = (ww * sig * (1.0 - sig)).to(g_in.dtype)
            hess[blk] += torch.bmm(g_in.transpose(1, 2) * h[:, None, :], g_in).double()
    f += lam * (z * z).sum(1)
    grad += 2.0 * lam[:, None] * z
    hess.diagonal(dim1=1, dim2=2).add_(2.0 * lam[:, None])
    return f, grad, hess


def _line_values(
    data: list[tuple[Tensor, Tensor, Tensor, Tensor]] | Iterator,
    z: Tensor,
    p: Tensor,
    subsets: np.ndarray,
    lam: Tensor,
    alphas: Tensor,
) -> Tensor:
    """Objective at ``z + alpha p`` for every subset and every trial ``alpha`` (one pass)."""
    m, d = z.shape
    s_idx = torch.from_numpy(subsets)
    phi = torch.zeros(m, alphas.numel(), dtype=torch.float64)
    for g, b, y, w in data:
        n = g.shape[1]
        for blk in _blocks(m, subsets.shape[1] * n * d):
            si = s_idx[blk]
            mb = si.shape[0]
            gs = g[si].reshape(mb, -1, d).double()
            a = b[si].reshape(mb, -1) + torch.bmm(gs, z[blk, :, None]).squeeze(-1)
            c = torch.bmm(gs, p[blk, :, None]).squeeze(-1)
            u = a[..., None] + c[..., None] * alphas  # (mb, s*n, K)
            yy, ww = y[si].reshape(mb, -1, 1), w[si].reshape(mb, -1, 1)
            phi[blk] += (ww * (_softplus(u) - yy * u)).sum(1)
    zz = z[:, None, :] + alphas[None, :, None] * p[:, None, :]
    return phi + lam[:, None] * (zz * zz).sum(-1)


def _solve_spd(hess: Tensor, rhs: Tensor) -> Tensor:
    """Solve ``H x = rhs`` batched by Cholesky, adding growing jitter where it fails."""
    chol, info = torch.linalg.cholesky_ex(hess)
    bad = info > 0
    if bad.any():
        # only possible with lam = 0 and rank-deficient data: Levenberg-style diagonal shift
        eye = torch.eye(hess.shape[-1], dtype=hess.dtype)
        scale = hess.diagonal(dim1=1, dim2=2).abs().mean(1).clamp(min=1e-300)
        for eps in (1e-12, 1e-10, 1e-8, 1e-6, 1e-4, 1e-2, 1.0):
            idx = bad.nonzero().squeeze(1)
            c, inf = torch.linalg.cholesky_ex(hess[idx] + (eps * scale[idx])[:, None, None] * eye)
            chol[idx] = c
            bad[idx] = inf > 0
            if not bad.any():
                break
        if bad.any():
            raise FloatingPointError("Newton Hessian is not positive definite even with jitter.")
    return torch.cholesky_solve(rhs[..., None], chol).squeeze(-1)


def fit_subsets(
    grads: ArrayLike,
    logits: ArrayLike,
    labels: ArrayLike,
    subsets: ArrayLike,
    *,
    lam: float | ArrayLike = 1e-3,
    offset: bool = True,
    max_iter: int = 50,
    tol: float = 1e-8,
    node_mask: ArrayLike | None = None,
    chunk: int = 512,
    cache: bool = True,
) -> Tensor:
    """Fit the linearised model of every task subset, all as one batched Newton problem.

    For each subset ``S_k`` (row ``k`` of ``subsets``) this solves::

        z_k = argmin_z  sum_{v, t in S_k, y_vt known}  logloss(y_vt, b_vt + g_vt . z)
                        + lam * ||z||^2

    with ``logloss(y, u) = log(1 + e^u) - y u``. The loss is a **sum** over the (node, task)
    pairs with a known label, not a mean: ``lam`` therefore weighs less as more nodes are used
    (divide it by the number of known labels to compare with a mean-loss formulation).

    Parameters
    ----------
    grads
        ``(N, T, d)`` projected gradients of each task's logit (numpy memmap/array or tensor).
    logits
        ``(N, T)`` base-model logits ``b``.
    labels
        ``(N, T)`` labels in {0, 1}, or -1 where unknown (ignored).
    subsets
        ``(m, s)`` task ids (see :func:`~graphtag.affinity.sample_subsets`).
    lam
        Ridge weight (>= 0; with 0, singular Hessians get a diagonal jitter): a scalar, or one
        per subset (e.g. :func:`~graphtag.affinity.subset_lam`, for a mean-loss ridge under a
        label mask).
    offset
        Use the base logits as offsets; with False, ``b := 0``.
    max_iter
        Most Newton iterations.
    tol
        A subset stops once its Newton decrement ``lambda^2 / 2`` (the predicted remaining
        decrease) is at most ``tol * max(1, |f|)``; it takes that last step first.
    node_mask
        Boolean ``(N,)`` mask or index array of the nodes to fit on (e.g. training nodes);
        None uses all nodes.
    chunk
        Nodes read from ``grads`` at a time.
    cache
        Keep the selected nodes in memory as float64 between passes when they take at most
        512 MiB, instead of re-reading them from ``grads`` in every pass.

    Returns
    -------
    torch.Tensor
        ``(m, d)`` float64: row ``k`` is ``z_k``.

    Notes
    -----
    Each iteration makes two passes over the nodes. The first accumulates, per subset, the
    objective, gradient and ``(d, d)`` Hessian (batched ``bmm`` over subset blocks, so memory is
    ``O(m d^2)`` plus one node chunk and one gathered block). The Newton direction comes from a
    batched Cholesky solve (the ridge term keeps the Hessian positive definite). The second pass
    evaluates the objective at 16 step sizes ``1, 1/2, ..., 2^-15`` at once, and each subset takes
    the largest satisfying the Armijo condition (backtracking without extra passes). Converged
    subsets drop out of later passes. A warning reports subsets that hit ``max_iter`` or for
    which no trial step decreased the objective.
    """
    lam_all = torch.as_tensor(np.asarray(lam, dtype=np.float64))
    if (lam_all < 0).any() or not torch.isfinite(lam_all).all():
        raise ValueError(f"lam must be finite and >= 0 (got {lam}).")
    if max_iter < 1 or chunk < 1:
        raise ValueError("max_iter and chunk must be >= 1.")
    n_all, num_tasks, d = (int(x) for x in grads.shape)
    if tuple(logits.shape) != (n_all, num_tasks) or tuple(labels.shape) != (n_all, num_tasks):
        raise ValueError(
            f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} must have shape "
            f"{(n_all, num_tasks)} like grads[:, :, 0]."
        )
    subs = _check_subsets(subsets, num_tasks)
    nodes = _node_index(node_mask, n_all)
    n_used = n_all if nodes is None else nodes.size
    data: list | None = None
    itemsize = grads.element_size() if isinstance(grads, Tensor) else np.dtype(grads.dtype).itemsize
    g_bytes = 4 if itemsize <= 4 else 8  # cached as float32 or float64, see _rows
    if cache and n_used * num_tasks * (d * g_bytes + 24) <= 512 << 20:
        data = list(_chunks(grads, logits, labels, nodes, chunk, offset))

    def passes() -> Iterator[tuple[Tensor, Tensor, Tensor, Tensor]]:
        return iter(data) if data is not None else _chunks(grads, logits, labels, nodes, chunk,
                                                           offset)

    m = subs.shape[0]
    if lam_all.ndim == 0:
        lam_all = lam_all.expand(m)
    if lam_all.shape != (m,):
        raise ValueError(f"lam must be a scalar or have one entry per subset ({m}), got shape "
                         f"{tuple(lam_all.shape)}.")
    z = torch.zeros(m, d, dtype=torch.float64)
    alphas = torch.from_numpy(_ALPHAS)
    active = np.arange(m)
    stalled = np.zeros(m, dtype=bool)
    for _ in range(max_iter):
        if active.size == 0:
            break
        za, sa = z[active], subs[active]
        la = lam_all[torch.from_numpy(active)]
        f, grad, hess = _newton_terms(passes(), za, sa, la)
        p = -_solve_spd(hess, grad)
        dec = -(grad * p).sum(1)  # Newton decrement squared, g^T H^-1 g >= 0
        done = (dec / 2 <= tol * f.abs().clamp(min=1.0)).numpy()
        phi = _line_values(passes(), za, p, sa, la, torch.cat([alphas.new_zeros(1), alphas]))
        # compare with phi(0) from the same pass, so summation-order noise cannot fake progress
        ok = phi[:, 1:] <= phi[:, :1] - _ARMIJO * alphas * dec[:, None]
        has = ok.any(1)
        first = ok.to(torch.int8).argmax(1)
        step = torch.where(has, alphas[first], torch.zeros((), dtype=torch.float64))
        z[active] = za + step[:, None] * p
        stuck = (~has).numpy() & ~done
        stalled[active[stuck]] = True
        active = active[~(done | stuck)]
    if active.size or stalled.any():
        warnings.warn(
            f"fit_subsets: {active.size} of {m} subsets did not converge in {max_iter} Newton "
            f"iterations and {int(stalled.sum())} stalled (no decrease along the Newton "
            "direction); consider a larger lam.",
            RuntimeWarning,
            stacklevel=2,
        )
    return z


def linearized_logits(
    grads: ArrayLike,
    logits: ArrayLike,
    z_subsets: Tensor,
    subsets: ArrayLike,
    *,
    offset: bool = True,
    nodes: ArrayLike | None = None,
    chunk: int = 512,
) -> Tensor:
    """Logits of the linearised per-subset models, ``b_vt + g_vt . z_k`` for ``t`` in ``S_k``.

    Parameters
    ----------
    grads, logits
        ``(N, T, d)`` gradients and ``(N, T)`` base logits (e.g. of the validation nodes).
    z_subsets
        ``(m, d)`` from :func:`fit_subsets`.
    subsets
        ``(m, s)`` task ids the rows of ``z_subsets`` were fitted on.
    offset
        Add the base logits (use the value given to :func:`fit_subsets`).
    nodes
        Boolean mask or index array of the nodes to score; None scores all ``N``.
    chunk
        Nodes read at a time.

    Returns
    -------
    torch.Tensor
        ``(m, n, s)`` float64, ``n`` the number of scored nodes; entry ``[k, v, j]`` is the
        logit of task ``subsets[k, j]`` at node ``v``.
    """
    n_all, num_tasks, d = (int(x) for x in grads.shape)
    subs = _check_subsets(subsets, num_tasks)
    z = torch.as_tensor(z_subsets, dtype=torch.float64)
    if z.shape != (subs.shape[0], d):
        raise ValueError(f"z_subsets must have shape {(subs.shape[0], d)}, got {tuple(z.shape)}.")
    idx = _node_index(nodes, n_all)
    n_used = n_all if idx is None else idx.size
    m, s = subs.shape
    rows = task_rows(subs, num_tasks)
    out = torch.empty(m, n_used, s, dtype=torch.float64)
    lo = 0
    # task-major: one (n, d) x (d, c) product per task over the c subsets that hold it,
    # instead of gathering every subset's (s, n, d) block
    for g, b, _, _ in _chunks(grads, logits, None, idx, chunk, offset):
        n = g.shape[1]
        for t, (ks, js) in enumerate(rows):
            if ks.numel():
                u = b[t][:, None] + g[t].double() @ z[ks].T  # (n, c)
                out[ks, lo:lo + n, js] = u.T
        lo += n
    return out
