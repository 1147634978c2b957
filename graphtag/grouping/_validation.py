"""Checks and scores shared by the SDP solvers and the baselines.

:func:`validate_affinity` checks an affinity matrix and group count (and warns when every
grouping scores the same, :func:`is_degenerate_affinity`); :func:`sdp_violation` and
:func:`grouping_objective` measure a relaxed or integral solution.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = [
    "balanced_split",
    "grouping_objective",
    "is_degenerate_affinity",
    "sdp_violation",
    "validate_affinity",
]


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


def _validate_quiet(X: np.ndarray, k: int) -> np.ndarray:
    """Shape/finiteness/``k`` checks of :func:`validate_affinity` without the constant warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return validate_affinity(X, k)


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
