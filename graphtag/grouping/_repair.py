"""Feasibility repair: the exactly feasible SDP point nearest a solver's iterate."""

from __future__ import annotations

import numpy as np

from graphtag.grouping._validation import _validate_quiet

__all__ = ["repair_feasible"]


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
