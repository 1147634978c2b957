"""Baseline task groupings and a planted-structure affinity generator.

All grouping functions return a partition of ``range(n)``: a list of non-empty task lists,
each sorted, ordered by their smallest task.
"""

from __future__ import annotations

import warnings

import numpy as np

from graphtag.grouping.sdp import balanced_split, is_degenerate_affinity, validate_affinity

__all__ = [
    "one_group",
    "planted_affinity",
    "random_groups",
    "singleton_groups",
    "spectral_groups",
]


def _canonical(groups: list[list[int]]) -> list[list[int]]:
    """Sort each group and order groups by their smallest task."""
    return sorted((sorted(int(i) for i in g) for g in groups), key=lambda g: g[0])


def spectral_groups(A: np.ndarray, k: int, seed: int = 0) -> list[list[int]]:
    """Group tasks by spectral clustering of the affinity graph.

    scikit-learn's ``SpectralClustering`` needs a non-negative similarity, so the (symmetrised)
    affinity is shifted to ``A - min(A)``. A constant shift does not change which grouping is
    best for the SDP objective (it adds ``c * n`` to every grouping's score), and unlike
    clipping it keeps the order of all affinities; the price is a dense background graph,
    which spectral clustering tolerates as long as the block structure stands out.

    Parameters
    ----------
    A : array_like
        ``(n, n)`` task affinity.
    k : int
        Number of groups, ``1 <= k <= n``.
    seed : int
        Seed of the eigensolver start and the k-means label assignment.

    Returns
    -------
    list of list of int
        Partition of ``range(n)`` into ``k`` groups (the deterministic balanced split if ``A``
        is degenerate). Spectral clustering itself may return fewer non-empty groups on
        pathological inputs; they are then padded by splitting off tasks from the largest
        group, as in :func:`graphtag.grouping.round_groups`.
    """
    from sklearn.cluster import SpectralClustering

    A = validate_affinity(A, k)
    n = A.shape[0]
    if is_degenerate_affinity(A) or k == 1 or k == n:
        return balanced_split(n, k)
    S = A - A.min()
    with warnings.catch_warnings():
        # "graph is not fully connected" is harmless here; the result is still a partition
        warnings.simplefilter("ignore", UserWarning)
        labels = SpectralClustering(
            n_clusters=k, affinity="precomputed", random_state=seed, assign_labels="kmeans"
        ).fit_predict(S)
    labels = np.unique(labels, return_inverse=True)[1]
    while labels.max() + 1 < k:
        big = int(np.argmax(np.bincount(labels)))
        members = np.flatnonzero(labels == big)
        # split off the member least tied to its own group
        weakest = members[int(np.argmin(S[np.ix_(members, members)].sum(1)))]
        labels[weakest] = labels.max() + 1
    return _canonical([np.flatnonzero(labels == g).tolist() for g in range(k)])


def random_groups(n: int, k: int, seed: int = 0) -> list[list[int]]:
    """Random balanced partition of ``range(n)`` into ``k`` groups (sizes differ by <= 1).

    Parameters
    ----------
    n, k : int
        Number of tasks and groups, ``1 <= k <= n``.
    seed : int
        Seed of the permutation.

    Returns
    -------
    list of list of int
    """
    if not 1 <= k <= n:
        raise ValueError(f"k must satisfy 1 <= k <= n = {n}, got k={k}.")
    perm = np.random.default_rng(seed).permutation(n)
    return _canonical([chunk.tolist() for chunk in np.array_split(perm, k)])


def one_group(n: int) -> list[list[int]]:
    """All tasks in one group: plain multitask learning (MTL)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}.")
    return [list(range(n))]


def singleton_groups(n: int) -> list[list[int]]:
    """Every task on its own: single-task learning (STL)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}.")
    return [[i] for i in range(n)]


def planted_affinity(
    n: int, k: int, noise: float = 0.3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic affinity with ``k`` planted task groups, for tests and benchmarks.

    ``A_ij = 1[labels_i == labels_j] + noise * G_ij`` with ``G`` symmetric standard Gaussian;
    labels are a random balanced assignment (so groups are not contiguous index blocks).

    Parameters
    ----------
    n, k : int
        Number of tasks and planted groups.
    noise : float
        Standard deviation of the symmetric Gaussian noise.
    seed : int
        Seed of labels and noise.

    Returns
    -------
    A : numpy.ndarray
        ``(n, n)`` symmetric affinity.
    labels : numpy.ndarray
        ``(n,)`` planted group of each task.
    """
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % k)
    G = rng.standard_normal((n, n))
    A = (labels[:, None] == labels[None, :]).astype(np.float64) + noise * (G + G.T) / np.sqrt(2)
    return A, labels
