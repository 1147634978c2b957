"""The clustering SDP solved exactly by cvxpy (SCS), for up to about a hundred tasks."""

from __future__ import annotations

import numpy as np

from graphtag.grouping._validation import validate_affinity

__all__ = ["sdp_cvxpy"]


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
