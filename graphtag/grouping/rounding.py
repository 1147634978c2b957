"""Rounding a relaxed SDP solution to exactly ``k`` groups (k-means on its rows)."""

from __future__ import annotations

import warnings

import numpy as np

from graphtag.grouping._validation import _validate_quiet

__all__ = ["round_groups"]


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
