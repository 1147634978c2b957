"""Task grouping by the clustering SDP relaxation (Peng & Wei, 2007).

A grouping of ``n`` tasks into ``k`` groups ``G_1..G_k`` is encoded by the normalised
co-membership matrix ``X = sum_g 1_g 1_g^T / |G_g|``, and the grouping score is

    <A, X> = sum_g (1 / |G_g|) sum_{i, j in G_g} A_ij = sum_g |G_g| * mean affinity in G_g,

i.e. the size-weighted average within-group affinity. Every such ``X`` satisfies ``X ⪰ 0``,
``X >= 0``, ``X 1 = 1`` and ``trace X = k``; relaxing to *all* such matrices gives the SDP

    maximise <A, X>  s.t.  X ⪰ 0,  X >= 0,  X 1 = 1,  trace X = k,

solved here exactly with cvxpy (:func:`sdp_cvxpy`) or, for hundreds of tasks, with a
non-negative low-rank Burer–Monteiro factorisation (:func:`sdp_burer_monteiro`). The relaxed
solution is rounded to ``k`` groups by :func:`round_groups`.

Two useful invariances (both follow from ``1^T X 1 = n`` and ``trace X = k``): adding ``c``
to every entry of ``A`` adds ``c * n`` to the objective, and adding ``c I`` adds ``c * k``.
Neither changes the optimiser, so an affinity of the form ``a 11^T + b I`` (in particular a
constant one) makes every grouping equally good.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

__all__ = [
    "BMResult",
    "balanced_split",
    "grouping_objective",
    "is_degenerate_affinity",
    "repair_feasible",
    "round_groups",
    "sdp_bm_solve",
    "sdp_burer_monteiro",
    "sdp_cvxpy",
    "sdp_groups",
    "sdp_violation",
    "validate_affinity",
]

Solver = Literal["auto", "cvxpy", "bm"]

#: ``sdp_groups(solver="auto")`` uses cvxpy up to this many tasks, Burer–Monteiro above.
AUTO_CVXPY_MAX_N = 100


def balanced_split(n: int, k: int) -> list[list[int]]:
    """Deterministic balanced partition of ``range(n)`` into ``k`` contiguous chunks.

    Parameters
    ----------
    n, k : int
        Number of tasks and of groups, ``1 <= k <= n``.

    Returns
    -------
    list of list of int
        ``k`` groups whose sizes differ by at most one.
    """
    return [chunk.tolist() for chunk in np.array_split(np.arange(n), k)]


def is_degenerate_affinity(A: np.ndarray, rtol: float = 1e-12) -> bool:
    """Whether ``A`` (symmetric) has the form ``a 11^T + b I``, so all groupings score equally.

    Parameters
    ----------
    A : numpy.ndarray
        Symmetric ``(n, n)`` affinity.
    rtol : float
        Entries closer than ``rtol * max|A|`` count as equal.

    Returns
    -------
    bool
    """
    n = A.shape[0]
    tol = rtol * max(1.0, float(np.abs(A).max(initial=0.0)))
    diag = np.diag(A)
    off = A[~np.eye(n, dtype=bool)]
    return bool(np.ptp(diag) <= tol and (off.size == 0 or np.ptp(off) <= tol))


def validate_affinity(A: np.ndarray, k: int) -> np.ndarray:
    """Check a task-affinity matrix and group count; return the symmetrised affinity.

    Parameters
    ----------
    A : array_like
        ``(n, n)`` task affinity, higher = tasks help each other. Need not be symmetric.
    k : int
        Number of groups, ``1 <= k <= n``.

    Returns
    -------
    numpy.ndarray
        ``(A + A^T) / 2`` as float64.

    Raises
    ------
    ValueError
        If ``A`` is not a non-empty square matrix, has NaN/inf entries, or ``k`` is out of range.

    Warns
    -----
    UserWarning
        If ``A`` is degenerate (constant, or more generally ``a 11^T + b I``): every grouping
        then has the same score, and the grouping functions return the deterministic balanced
        split :func:`balanced_split` instead of solving.
    """
    A = np.asarray(A, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] == 0:
        raise ValueError(
            f"A must be a non-empty square (n, n) affinity matrix, got shape {A.shape}; "
            "pass the task-by-task affinity."
        )
    if not np.isfinite(A).all():
        raise ValueError(
            "A contains NaN or infinite entries; impute or drop those tasks before grouping."
        )
    n = A.shape[0]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise ValueError(f"k must be an integer with 1 <= k <= n = {n}, got k={k!r}.")
    A = (A + A.T) / 2
    if is_degenerate_affinity(A):
        warnings.warn(
            "affinity is constant (of the form a*11^T + b*I): every grouping scores the same; "
            "returning the deterministic balanced split.",
            UserWarning,
            stacklevel=2,
        )
    return A


def sdp_cvxpy(
    A: np.ndarray, k: int, solver: str | None = None, **solver_kwargs: object
) -> tuple[np.ndarray, float]:
    """Solve the clustering SDP exactly with cvxpy.

    Parameters
    ----------
    A : array_like
        ``(n, n)`` task affinity.
    k : int
        Number of groups.
    solver : str, optional
        cvxpy solver name; default ``"SCS"`` (the only installed one handling PSD cones at scale).
    **solver_kwargs
        Passed to ``Problem.solve`` (e.g. ``eps=1e-6``).

    Returns
    -------
    X : numpy.ndarray
        ``(n, n)`` symmetric solution.
    objective : float
        ``<A, X>`` evaluated on the returned ``X``.
    """
    import cvxpy as cp  # imported lazily: cvxpy is slow to import and only needed here

    A = validate_affinity(A, k)
    n = A.shape[0]
    X = cp.Variable((n, n), PSD=True)
    constraints = [X >= 0, X @ np.ones(n) == np.ones(n), cp.trace(X) == k]
    prob = cp.Problem(cp.Maximize(cp.sum(cp.multiply(A, X))), constraints)
    prob.solve(solver=solver or "SCS", **solver_kwargs)
    if X.value is None:
        raise RuntimeError(f"cvxpy failed to solve the grouping SDP (status {prob.status}).")
    Xv = (X.value + X.value.T) / 2
    return Xv, float(np.sum(A * Xv))


def sdp_violation(X: np.ndarray, k: int) -> float:
    """Largest violation of the clustering SDP's constraints by ``X``.

    Parameters
    ----------
    X : array_like
        ``(n, n)`` candidate solution.
    k : int
        Number of groups.

    Returns
    -------
    float
        ``max(max|X 1 - 1|, |trace X - k| / k, max(-X), -lambda_min((X + X^T) / 2), 0)``; zero
        for a feasible ``X``.
    """
    X = np.asarray(X, dtype=np.float64)
    return max(
        float(np.abs(X.sum(1) - 1.0).max()),
        abs(float(np.trace(X)) - k) / k,
        float(-X.min()),
        float(-np.linalg.eigvalsh((X + X.T) / 2)[0]),
        0.0,
    )


def grouping_objective(A: np.ndarray, groups: list[list[int]]) -> float:
    """SDP objective ``<A, X>`` of an integral grouping (size-weighted mean in-group affinity).

    Parameters
    ----------
    A : array_like
        ``(n, n)`` task affinity (symmetrised internally).
    groups : list of list of int
        Partition of ``range(n)``, e.g. from :func:`round_groups`.

    Returns
    -------
    float
        ``sum_g (1 / |G_g|) sum_{i, j in G_g} A_ij``: the objective of the integral ``X`` of
        the grouping, so at most the relaxation's optimum.
    """
    A = np.asarray(A, dtype=np.float64)
    A = (A + A.T) / 2
    return float(sum(A[np.ix_(g, g)].sum() / len(g) for g in groups if len(g)))


@dataclass
class BMResult:
    """Outcome of :func:`sdp_bm_solve`.

    Attributes
    ----------
    X : numpy.ndarray
        ``(n, n)`` solution, feasible up to floating-point rounding (:attr:`violation`).
    objective : float
        ``<A, X>``, a lower bound on the SDP optimum since ``X`` is feasible.
    upper_bound : float
        Upper bound on the SDP optimum certified by the dual multipliers (weak duality).
    gap : float
        ``(upper_bound - objective) / max(|objective|, max|A|)``: the optimum lies in
        ``[objective, upper_bound]``.
    violation : float
        :func:`sdp_violation` of ``X``.
    rank : int
        Columns of the Burer–Monteiro factor when the solver stopped.
    iters : int
        Augmented-Lagrangian outer iterations run.
    converged : bool
        Whether ``gap <= tol`` was reached within the iteration limit.
    """

    X: np.ndarray
    objective: float
    upper_bound: float
    gap: float
    violation: float
    rank: int
    iters: int
    converged: bool

    def factor(self) -> np.ndarray:
        """A factor ``V`` with ``X = V V^T``, from the eigendecomposition of ``X``.

        Returns
        -------
        numpy.ndarray
            ``(n, m)`` with ``m`` the numerical rank of ``X``.
        """
        w, Q = np.linalg.eigh(self.X)
        keep = w > 1e-12 * max(float(w[-1]), 1.0)
        return Q[:, keep] * np.sqrt(w[keep])


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


def repair_feasible(X: np.ndarray, k: int) -> np.ndarray:
    """An exactly feasible matrix near a symmetric PSD ``X`` (e.g. a solver's output).

    Parameters
    ----------
    X : numpy.ndarray
        ``(n, n)`` symmetric PSD matrix, nearly feasible for the clustering SDP (clip negative
        eigenvalues first if it is only PSD up to rounding).
    k : int
        Number of groups, ``1 <= k <= n``.

    Returns
    -------
    numpy.ndarray
        ``(n, n)`` matrix satisfying every constraint to floating-point rounding.

    Notes
    -----
    Three steps, each keeping ``X`` PSD: (1) for every negative entry ``X_ij`` add
    ``|X_ij| (e_i + e_j)(e_i + e_j)^T``, i.e. ``X + N + diag(N 1)`` with ``N = max(0, -X)``
    off the diagonal (a signless Laplacian, PSD), which zeroes the negative entries while
    adding only each row's negative mass (a uniform shift ``beta 11^T`` adds ``n max|X_ij|``
    per row, 10-30x more on the solver's iterates); (2) symmetric Sinkhorn scaling
    ``X <- D X D`` to unit row sums (``D`` diagonal positive, so PSD and signs are kept);
    (3) mix with ``J / n`` (trace 1) if the trace is above ``k`` or with ``I`` (trace ``n``) if
    below, which keeps the row sums and fixes the trace. The objective lost is of the order of
    the violation repaired.
    """
    X = _validate_quiet(X, k)
    n = X.shape[0]
    N = np.maximum(-X, 0.0)
    np.fill_diagonal(N, 0.0)
    X = X + N
    X[np.diag_indices(n)] += N.sum(1)
    if float(X.sum(1).min()) <= 0.0:  # a zero row: Sinkhorn needs positive row sums
        X = X + 1e-12
    d = np.ones(n)
    for _ in range(2000):
        Xd = X @ d
        if np.abs(d * Xd - 1.0).max() <= 1e-14:
            break
        d = np.sqrt(d / Xd)  # fixed point of the symmetric scaling d * (X d) = 1
    X = d[:, None] * X * d[None, :]
    tau = float(np.trace(X))
    if tau > k:  # then tau > 1 as k >= 1
        a = (k - 1.0) / (tau - 1.0)
        X = a * X + (1.0 - a) / n
    elif tau < k:
        a = (n - k) / (n - tau)
        X = a * X
        X[np.diag_indices(n)] += 1.0 - a
    return (X + X.T) / 2


@contextmanager
def _thread_limit(threads: int | None) -> Iterator[None]:
    """Cap torch's and the BLAS libraries' thread pools inside the block (``None``: no cap)."""
    if threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(old)


def sdp_bm_solve(
    A: np.ndarray,
    k: int,
    rank: int | None = None,
    iters: int = 300,
    seed: int = 0,
    tol: float = 1e-4,
    inner_iters: int = 25,
    sigma0: float = 10.0,
    max_rank: int | None = None,
    threads: int | None = 1,
) -> BMResult:
    """Solve the clustering SDP by a low-rank Burer–Monteiro augmented Lagrangian.

    Substituting ``X = V V^T`` (``V`` of shape ``(n, r)``, any sign) makes ``X ⪰ 0``
    automatic; the ``n + 1`` equalities ``X 1 = 1``, ``trace X = k`` and the ``n^2``
    inequalities ``X >= 0`` are handled by the classical augmented Lagrangian method
    (Burer & Monteiro, 2003). Each outer step runs ``inner_iters`` preconditioned L-BFGS steps
    (torch, float64, value and gradient in closed form, ``O(n^2 r)`` each) on

        -<A, X> + y^T e + z t + (sigma / 2)(||e||^2 + t^2)
              + (||max(0, L - sigma X)||^2 - ||L||^2) / (2 sigma),
        e = c_e (X 1 - 1),  t = c_t (trace X - k)

    (normalised constraints, see ``_bm_lagrangian``), then updates ``y += sigma e``,
    ``z += sigma t``, ``L = max(0, L - sigma X)``. Short inner solves with frequent multiplier
    updates were several times faster than near-exact inner solves at equal final accuracy.

    Stopping rule: a certified duality gap. After every outer step the solver computes

    * a lower bound: the objective of ``V V^T`` repaired to satisfy every constraint exactly
      (:func:`repair_feasible`);
    * an upper bound: for the dual slack ``S = -A - L + c_e (y 1^T + 1 y^T) / 2 + c_t z I``,
      weak duality gives ``<A, X> <= c_e 1^T y + c_t k z + k max(0, -lambda_min(S))`` for every
      feasible ``X`` (in units of ``A / max|A|``);

    and stops once ``(upper - lower) / max(|lower|, max|A|) <= tol``, returning the best
    repaired point. (The earlier stopping rule, primal feasibility alone, ended 1-1.3 % below
    the optimum on the noisy bench instances.)

    Penalty: the gap splits into a primal part (objective of ``V V^T`` minus the lower bound:
    infeasibility) and a dual part (upper bound minus that objective). ``sigma`` is doubled
    while the primal part dominates and the violation shrinks by less than 4x, and halved (not
    below ``sigma0``) while the dual part dominates, since large penalties make the
    multipliers, and so the upper bound, converge slowly.

    Rank: the optimal ``X`` of noisy instances has rank far above ``k`` (0.4 n to 0.6 n at
    ``n <= 200`` for planted affinities with noise 1, by cvxpy), and a rank-saturated factor
    stalls below the optimum (the earlier fixed rank ``2 k + 10`` was one cause of the gap).
    When ``lambda_min(S) < -0.1 tol max(|lower|, 1) / k`` (scaled units: then it matters for the
    certificate), ``X`` can still improve along the negative eigenvectors of ``S``; ``V`` is
    truncated to its numerical rank and those eigenvectors ``u`` (at most ``max(4, r / 2)``) are
    appended as columns ``sqrt(-lambda / sigma) u``, a step of the size the quadratic model
    suggests.

    Known gap: none measurable against cvxpy on the bench instances. With the default
    ``tol = 1e-4`` the result is certified within 0.01 % of the optimum, and it is 3e-5 to
    1.2e-4 below SCS's (slightly infeasible, violation ~1e-5) objective for ``n <= 200``,
    ``k in {5, 10}``, noise 1 (``bench/grouping.py``); the rounded groupings coincide. What
    remains is cost: the rank the optimum needs grows with the noise and ``k`` (about 100 at
    ``n = 500, k = 10``, 350 at ``k = 50``), each L-BFGS step costs ``O(n^2 r)`` and each outer
    step a dense ``O(n^3)`` eigendecomposition for the certificate, so ``n`` in the thousands
    would want a Lanczos ``lambda_min`` instead. A sign-constrained factor ``V >= 0`` would be
    simpler but limits ``X`` to completely positive matrices, which loses 2-4 % on noisy
    affinities.

    Parameters
    ----------
    A : array_like
        ``(n, n)`` task affinity.
    k : int
        Number of groups.
    rank : int, optional
        Initial columns ``r`` of ``V``; default ``min(n, 2 k + 10)``. Grows as needed.
    iters : int
        Maximum augmented-Lagrangian outer iterations.
    seed : int
        Seed of the random start.
    tol : float
        Target certified relative duality gap, ``(upper - lower) / max(|lower|, max|A|)``.
    inner_iters : int
        L-BFGS iterations per outer step.
    sigma0 : float
        Initial (and minimum) penalty, on ``A / max|A|``.
    max_rank : int, optional
        Cap on the factor's columns; default ``n``.
    threads : int or None
        Threads for torch and BLAS during the solve (restored afterwards); ``None`` keeps the
        current settings. Default 1: the kernels are small (``n x n``, ``n <= ~1000``), and on
        a shared 2-core machine two threads made the solve 20-500x slower (threads spinning
        at barriers while the other core is busy) for little gain on an idle one.

    Returns
    -------
    BMResult
        Feasible solution, its objective, the certified upper bound and gap.
    """
    A = validate_affinity(A, k)
    n = A.shape[0]
    r = min(n, 2 * k + 10) if rank is None else int(rank)
    if r < 1:
        raise ValueError(f"rank must be >= 1, got {rank!r}.")
    if iters < 1 or inner_iters < 1:
        raise ValueError(f"iters and inner_iters must be >= 1, got {iters!r}, {inner_iters!r}.")
    max_rank = n if max_rank is None else max(int(max_rank), r)
    if k in (1, n):  # then 11^T / n resp. I is the only feasible point
        X = np.full((n, n), 1.0 / n) if k == 1 else np.eye(n)
        obj = float(np.sum(A * X))
        return BMResult(X, obj, obj, 0.0, sdp_violation(X, k), 1 if k == 1 else n, 0, True)
    with _thread_limit(threads):
        return _bm_loop(A, k, r, max_rank, iters, seed, tol, inner_iters, sigma0)


def _bm_loop(
    A: np.ndarray,
    k: int,
    r: int,
    max_rank: int,
    iters: int,
    seed: int,
    tol: float,
    inner_iters: int,
    sigma0: float,
) -> BMResult:
    """The outer loop of :func:`sdp_bm_solve` on a validated affinity."""
    n = A.shape[0]
    # Work on A / max|A| so that sigma and tolerances do not depend on the affinity's units.
    scale = float(np.abs(A).max()) or 1.0
    An = A / scale
    At = torch.from_numpy(An)
    ce, ct = (2.0 / n) ** 0.5, n**-0.5
    gen = torch.Generator().manual_seed(seed)
    V = torch.rand(n, r, generator=gen, dtype=torch.float64)
    V *= (k / float((V * V).sum())) ** 0.5
    y = torch.zeros(n, dtype=torch.float64)
    lam = torch.zeros(n, n, dtype=torch.float64)
    z, lam_sq, sigma, prev_res = 0.0, 0.0, sigma0, np.inf
    gtol = 1e-3  # L-BFGS gradient tolerance, tightened with the violation
    best_lb, best_X, ub, gap = -np.inf, np.eye(n), np.inf, np.inf
    outer = 0
    while outer < iters:
        outer += 1
        V = _inner_solve(V, At, k, y, z, lam, lam_sq, sigma, gtol, inner_iters)
        X = V @ V.T
        e = X.sum(1) - 1.0
        t = float(X.diagonal().sum()) - k
        res = max(float(e.abs().max()), abs(t) / k, float((-X).max()))
        raw = _vdot(At, X)  # objective of the (slightly infeasible) iterate
        y = y + sigma * ce * e
        z += sigma * ct * t
        lam = torch.clamp(lam - sigma * X, min=0.0)
        lam_sq = _vdot(lam, lam)

        # lower bound: objective of the nearest exactly feasible point (keep the best one)
        Xp = repair_feasible(X.numpy(), k)
        lb = float(np.sum(An * Xp))
        if lb > best_lb:
            best_lb, best_X = lb, Xp
        # S is also the augmented Lagrangian's X-gradient at V, so S V = 0 at a stationary point
        S = -At - lam + 0.5 * ce * (y[:, None] + y[None, :])
        S.diagonal().add_(ct * z)
        evals, evecs = torch.linalg.eigh(S)
        # weak duality, with z shifted by -lambda_min(S) to make S PSD (trace X = k prices it)
        ub = min(ub, ce * float(y.sum()) + ct * k * z + k * max(0.0, -float(evals[0])))
        denom = max(abs(best_lb), 1.0)
        gap = max(0.0, ub - best_lb) / denom
        if gap <= tol:
            break

        thresh = -0.1 * tol * denom / k
        if float(evals[0]) < thresh:  # staircase step, see the docstring
            U, sv, _ = torch.linalg.svd(V, full_matrices=False)
            keep = int((sv > 1e-4 * sv[0]).sum())
            add = min(int((evals < thresh).sum()), max(4, V.shape[1] // 2), max_rank - keep)
            if add > 0:
                step = (-evals[:add] / sigma).sqrt()
                V = torch.cat([U[:, :keep] * sv[:keep], step * evecs[:, :add]], 1)
        # balance the gap's primal (infeasibility) and dual parts, see the docstring
        primal, dual = raw - lb, ub - raw
        if primal > dual and res > 0.25 * prev_res:
            sigma = min(2.0 * sigma, 1e5)
        elif dual > primal:
            sigma = max(0.5 * sigma, sigma0)
        prev_res = res
        gtol = min(gtol, max(1e-8, 0.1 * res))

    X = best_X
    obj = float(np.sum(A * X))
    return BMResult(
        X=X,
        objective=obj,
        upper_bound=ub * scale,
        gap=gap,
        violation=sdp_violation(X, k),
        rank=int(V.shape[1]),
        iters=outer,
        converged=gap <= tol,
    )


def sdp_burer_monteiro(
    A: np.ndarray,
    k: int,
    rank: int | None = None,
    iters: int = 300,
    seed: int = 0,
    tol: float = 1e-4,
    inner_iters: int = 25,
    return_factor: bool = False,
    sigma0: float = 10.0,
    threads: int | None = 1,
) -> tuple[np.ndarray, float]:
    """Solve the clustering SDP at scale: :func:`sdp_bm_solve` with a short return value.

    Parameters
    ----------
    A, k, rank, iters, seed, tol, inner_iters, sigma0, threads
        As in :func:`sdp_bm_solve`.
    return_factor : bool
        Return a factor ``V`` with ``X = V V^T`` (:meth:`BMResult.factor`) instead of ``X``.

    Returns
    -------
    X or V : numpy.ndarray
        ``(n, n)`` feasible solution, or a factor of it.
    objective : float
        ``<A, X>``; when converged, certified within ``tol`` (relative) of the SDP optimum.
    """
    res = sdp_bm_solve(
        A,
        k,
        rank=rank,
        iters=iters,
        seed=seed,
        tol=tol,
        inner_iters=inner_iters,
        sigma0=sigma0,
        threads=threads,
    )
    return (res.factor() if return_factor else res.X), res.objective


def _canonical(labels: np.ndarray) -> list[list[int]]:
    """Groups from labels, each sorted, groups ordered by smallest member."""
    groups = [np.flatnonzero(labels == g).tolist() for g in np.unique(labels)]
    return sorted(groups, key=lambda g: g[0])


def round_groups(X: np.ndarray, k: int, seed: int = 0) -> list[list[int]]:
    """Round a relaxed SDP solution to exactly ``k`` non-empty groups.

    Rule: k-means (k-means++, 10 restarts, fixed ``seed``) on the rows of ``X``. For an
    integral solution the rows of tasks in the same group are identical and rows of different
    groups are orthogonal, so k-means recovers the grouping exactly; near it, rows stay close
    to their group's row. If k-means leaves fewer than ``k`` distinct groups (duplicate rows),
    the task farthest from its group's centroid in the largest group is split off into a new
    group, repeatedly, until there are ``k``.

    Parameters
    ----------
    X : array_like
        ``(n, n)`` relaxed solution (e.g. from :func:`sdp_cvxpy`).
    k : int
        Number of groups, ``1 <= k <= n``.
    seed : int
        k-means seed (the result is deterministic given it).

    Returns
    -------
    list of list of int
        Partition of ``range(n)`` into ``k`` non-empty groups, each sorted, ordered by their
        smallest task.
    """
    from sklearn.cluster import KMeans

    X = _validate_quiet(X, k)
    n = X.shape[0]
    if k == 1:
        return [list(range(n))]
    if k == n:
        return [[i] for i in range(n)]
    with warnings.catch_warnings():
        # duplicate rows make sklearn warn about fewer distinct clusters; handled below
        warnings.simplefilter("ignore")
        labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(X)
    labels = np.unique(labels, return_inverse=True)[1]
    while labels.max() + 1 < k:
        sizes = np.bincount(labels)
        big = int(np.argmax(sizes))
        members = np.flatnonzero(labels == big)
        dist = ((X[members] - X[members].mean(0)) ** 2).sum(1)
        labels[members[int(np.argmax(dist))]] = labels.max() + 1
    return _canonical(labels)


def _validate_quiet(X: np.ndarray, k: int) -> np.ndarray:
    """Shape/finiteness/``k`` checks of :func:`validate_affinity` without the constant warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return validate_affinity(X, k)


def sdp_groups(A: np.ndarray, k: int, solver: Solver = "auto", seed: int = 0) -> list[list[int]]:
    """Group tasks by the clustering SDP and k-means rounding.

    Parameters
    ----------
    A : array_like
        ``(n, n)`` task affinity (symmetrised internally).
    k : int
        Number of groups.
    solver : {"auto", "cvxpy", "bm"}
        ``"auto"`` uses cvxpy/SCS for ``n <= 100`` and Burer–Monteiro above.
    seed : int
        Seed of the Burer–Monteiro start and of the rounding.

    Returns
    -------
    list of list of int
        Partition of ``range(n)`` into ``k`` non-empty groups (the deterministic balanced split
        if ``A`` is degenerate, see :func:`validate_affinity`).
    """
    A = validate_affinity(A, k)
    n = A.shape[0]
    if is_degenerate_affinity(A):
        return balanced_split(n, k)
    if solver == "auto":
        solver = "cvxpy" if n <= AUTO_CVXPY_MAX_N else "bm"
    if solver == "cvxpy":
        X, _ = sdp_cvxpy(A, k)
    elif solver == "bm":
        X, _ = sdp_burer_monteiro(A, k, seed=seed)
    else:
        raise ValueError(f"solver must be 'auto', 'cvxpy' or 'bm', got {solver!r}.")
    return round_groups(X, k, seed=seed)
