"""Which groups stand out from chance: a permutation test on within-group affinity."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["group_pvalues"]


def group_pvalues(affinity: np.ndarray, groups: Sequence[Sequence[int]], *,
                  num_draws: int = 2000, seed: int = 0) -> list[float]:
    """p-value of each group's mean within-group affinity against random task sets.

    For a group of ``n`` tasks the statistic is the mean of ``A[i, j]`` over its pairs; the
    null distribution is the same statistic for ``num_draws`` sets of ``n`` tasks drawn
    uniformly without replacement. The p-value, ``(1 + #{null >= statistic}) / (1 +
    num_draws)``, says how often a random grouping of that size looks at least as coherent:
    a small value marks a group that the affinity distinguishes from a random one.
    Singletons have no pairs and get ``nan``.

    Parameters
    ----------
    affinity
        ``(T, T)`` symmetric task affinity.
    groups
        Task groups (any partition or family of task sets).
    num_draws
        Random sets per group size.
    seed
        Seeds the draws.
    """
    A = np.asarray(affinity, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"affinity must be a square matrix, got shape {A.shape}.")
    if num_draws < 1:
        raise ValueError(f"num_draws must be >= 1 (got {num_draws}).")
    T = A.shape[0]
    rng = np.random.default_rng(seed)
    null: dict[int, np.ndarray] = {}

    def stat(idx: np.ndarray) -> np.ndarray:  # idx (..., n): mean off-diagonal affinity
        sub = A[idx[..., :, None], idx[..., None, :]]
        n = idx.shape[-1]
        return (sub.sum((-1, -2)) - np.trace(sub, axis1=-2, axis2=-1)) / (n * (n - 1))

    out = []
    for g in groups:
        idx = np.asarray(g, dtype=np.int64)
        if idx.size < 2:
            out.append(float("nan"))
            continue
        if idx.min() < 0 or idx.max() >= T:
            raise ValueError(f"group {list(g)} names tasks outside [0, {T}).")
        n = idx.size
        if n not in null:
            draws = np.argsort(rng.random((num_draws, T)), axis=1)[:, :n]
            null[n] = stat(draws)
        out.append(float((1 + (null[n] >= stat(idx)).sum()) / (1 + num_draws)))
    return out
