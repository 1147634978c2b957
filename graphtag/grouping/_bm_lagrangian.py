"""The Burer–Monteiro augmented Lagrangian and its preconditioned L-BFGS inner solve.

Used by the outer loop in :mod:`graphtag.grouping._burer_monteiro`.
"""

from __future__ import annotations

import torch


def _vdot(a: torch.Tensor, b: torch.Tensor) -> float:
    """Frobenius inner product without a temporary ``n x n`` product."""
    return float(torch.vdot(a.reshape(-1), b.reshape(-1)))


def _bm_lagrangian(
    V: torch.Tensor,
    A: torch.Tensor,
    k: int,
    y: torch.Tensor,
    z: float,
    lam: torch.Tensor,
    lam_sq: float,
    sigma: float,
) -> tuple[float, torch.Tensor]:
    """Augmented Lagrangian of the BM problem and its gradient in ``V`` (closed form).

    The equalities are normalised so that each constraint's ``X``-gradient has Frobenius norm
    about 1, like each ``X_ij >= 0``: ``e = c_e (X 1 - 1)``, ``t = c_t (trace X - k)`` with
    ``c_e = sqrt(2 / n)``, ``c_t = 1 / sqrt(n)``. Unnormalised, the row-sum penalty is ``n``
    times stiffer than the sign penalties and L-BFGS stalls. ``lam_sq = ||lam||^2`` is passed
    in as it only changes between outer steps. Five passes over ``n x n`` arrays plus two
    ``n x n x r`` products per call.
    """
    n = V.shape[0]
    ce, ct = (2.0 / n) ** 0.5, n**-0.5
    X = V @ V.T
    s = V.sum(0)  # V^T 1: X 1 = V s costs O(n r) instead of another pass over X
    e = ce * (V @ s - 1.0)
    t = ct * (float(V.pow(2).sum()) - k)  # trace X = ||V||_F^2
    # X >= 0 enters through the standard inequality term (||max(0, lam - sigma X)||^2 -
    # ||lam||^2) / (2 sigma), whose X-gradient is -max(0, lam - sigma X).
    P = torch.sub(lam, X, alpha=sigma).clamp_(min=0.0)
    f = (
        -_vdot(A, X)
        + float(y @ e)
        + z * t
        + 0.5 * sigma * (float(e @ e) + t * t)
        + (_vdot(P, P) - lam_sq) / (2.0 * sigma)
    )
    # X-gradient G = -(A + P) + (w 1^T + 1 w^T) / 2 + c_t (z + sigma t) I; form G V directly
    w = ce * (y + sigma * e)
    low_rank = 0.5 * (torch.outer(w, s) + (w @ V).expand(n, -1))
    GV = torch.addmm(low_rank, P.add_(A), V, alpha=-1.0)
    GV.add_(V, alpha=ct * (z + sigma * t))
    return f, 2.0 * GV  # d/dV of f(V V^T) = 2 G V


def _inner_solve(
    V: torch.Tensor,
    A: torch.Tensor,
    k: int,
    y: torch.Tensor,
    z: float,
    lam: torch.Tensor,
    lam_sq: float,
    sigma: float,
    gtol: float,
    max_iter: int,
) -> torch.Tensor:
    """A few preconditioned L-BFGS steps on the augmented Lagrangian; return the new ``V``.

    L-BFGS runs on ``W = V R^{-1}`` with ``R = (V^T V + delta I)^{-1/2}`` fixed at the start
    (``delta = 1e-2 ||V||_2^2``), i.e. scaled gradient descent for factorisations: the columns
    of ``V`` carry eigenvalues of ``X`` spread over orders of magnitude, and without the
    rescaling the small ones (which the noisy optima have many of) barely move.
    """
    evals, Q = torch.linalg.eigh(V.T @ V)
    evals = evals.clamp(min=0.0) + 1e-2 * float(evals[-1].clamp(min=1e-12))
    R = (Q * evals.rsqrt()) @ Q.T
    W = (V @ ((Q * evals.sqrt()) @ Q.T)).requires_grad_(True)  # V R^{-1}

    def closure() -> torch.Tensor:
        f, g = _bm_lagrangian(W.detach() @ R, A, k, y, z, lam, lam_sq, sigma)
        W.grad = g @ R  # chain rule through V = W R (R symmetric)
        return torch.tensor(f, dtype=torch.float64)

    # a fresh L-BFGS per outer step: the curvature pairs change with the multipliers
    torch.optim.LBFGS(
        [W],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=gtol,
        tolerance_change=1e-15,
        history_size=10,
        line_search_fn="strong_wolfe",
    ).step(closure)
    return W.detach() @ R
