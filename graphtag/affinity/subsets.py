"""Random task subsets for Grad-TAG, balanced so every task is seen about equally often."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["PAIR_DRAWS", "sample_subsets", "subset_coverage", "subset_plan"]

#: Mean number of subsets each task pair is drawn together in, for :func:`subset_plan`.
#: On planted task groups (``bench/scale.py``), 2 draws per pair recovered the groups at an
#: adjusted Rand index of 0.67 (100 tasks), 0.08 draws at 0.003 (500 tasks), and 6-10 draws
#: at 0.98-1.0 for both.
PAIR_DRAWS = 6.0


def subset_plan(num_tasks: int, num_subsets: int | None = None,
                subset_size: int | None = None, pair_draws: float = PAIR_DRAWS
                ) -> tuple[int, int]:
    """``(num_subsets, subset_size)`` with None filled in so task pairs are covered.

    An affinity entry ``(i, j)`` averages the subsets that hold both ``i`` and ``j``: about
    ``m s (s - 1) / (T (T - 1))`` of them. A fixed budget (the paper's 2,000 subsets of 5)
    leaves most pairs of 500 tasks unseen. The defaults grow the subsets with the task count,
    ``s = clip(round(T / 20), 5, 25)`` (at most ``max(T / 2, 2)``), and draw enough of them for
    ``pair_draws`` joint draws per pair on average, at least 1,000: 3,000 subsets of 5 at
    100 tasks, 2,500 of 25 at 500 (the fits cost about ``m s``).

    Parameters
    ----------
    num_tasks
        Number of tasks ``T``.
    num_subsets, subset_size
        Fixed values; None chooses as above (``num_subsets`` for the given or chosen size).
    pair_draws
        Target mean joint draws per pair.
    """
    T = int(num_tasks)
    if T < 1:
        raise ValueError(f"num_tasks must be >= 1 (got {num_tasks}).")
    s = subset_size
    if s is None:
        s = min(max(5, round(T / 20)), 25, max(T // 2, 2), T)
    m = num_subsets
    if m is None:
        pairs = T * (T - 1) / 2
        per_subset = s * (s - 1) / 2
        m = 1000 if per_subset == 0 else max(1000, math.ceil(pair_draws * pairs / per_subset))
        m = int(math.ceil(m / 10) * 10)
    return int(m), int(s)


def sample_subsets(num_tasks: int, num_subsets: int, subset_size: int, seed: int = 0) -> np.ndarray:
    """Draw ``num_subsets`` random subsets of ``subset_size`` distinct tasks each.

    Rows are filled from a stream of concatenated random permutations of the tasks. A task that
    is already in the row being filled is skipped but stays at the head of the stream, so it goes
    into the next row instead; every task is therefore used about once per permutation, and the
    appearance counts differ by at most a small constant (about ``m * s / T`` each).

    Parameters
    ----------
    num_tasks
        Number of tasks ``T``.
    num_subsets
        Number of subsets ``m`` (>= 1).
    subset_size
        Tasks per subset ``s`` (1 <= s <= T).
    seed
        Seed of the random generator; equal seeds give equal subsets.

    Returns
    -------
    np.ndarray
        ``(m, s)`` int64, each row sorted ascending with distinct entries.
    """
    if num_tasks < 1:
        raise ValueError(f"num_tasks must be >= 1 (got {num_tasks}).")
    if num_subsets < 1:
        raise ValueError(f"num_subsets must be >= 1 (got {num_subsets}).")
    if subset_size < 1:
        raise ValueError(f"subset_size must be >= 1 (got {subset_size}).")
    if subset_size > num_tasks:
        raise ValueError(
            f"subset_size={subset_size} exceeds num_tasks={num_tasks}: a subset holds distinct "
            "tasks."
        )
    rng = np.random.default_rng(seed)
    out = np.empty((num_subsets, subset_size), dtype=np.int64)
    pool: list[int] = []
    for k in range(num_subsets):
        row: list[int] = []
        taken: set[int] = set()
        i = 0
        while len(row) < subset_size:
            if i >= len(pool):
                pool.extend(rng.permutation(num_tasks).tolist())
            t = pool[i]
            if t in taken:
                i += 1  # leave it in the pool: the next row takes it, keeping counts balanced
                continue
            row.append(pool.pop(i))
            taken.add(t)
        out[k] = sorted(row)
    return out


def subset_coverage(subsets: np.ndarray, num_tasks: int) -> dict[str, Any]:
    """How well a family of subsets covers the tasks and the task pairs.

    Parameters
    ----------
    subsets
        ``(m, s)`` task ids, distinct within a row.
    num_tasks
        Number of tasks ``T``.

    Returns
    -------
    dict
        ``tasks_covered`` (tasks in at least one subset), ``pairs_covered`` (unordered pairs
        ``i < j`` together in at least one subset), ``pair_fraction`` (that over
        ``T (T - 1) / 2``), ``task_min``/``task_mean``/``task_max`` (appearances per task, over
        all ``T`` tasks) and ``pair_min``/``pair_mean``/``pair_max`` (joint appearances per
        covered pair; 0 when no pair is covered).
    """
    subsets = np.asarray(subsets, dtype=np.int64)
    if subsets.ndim != 2:
        raise ValueError(f"subsets must be 2-D (m, s), got shape {subsets.shape}.")
    if subsets.size and (subsets.min() < 0 or subsets.max() >= num_tasks):
        raise ValueError(f"subset entries must lie in [0, {num_tasks}).")
    inc = np.zeros((subsets.shape[0], num_tasks), dtype=np.int64)
    np.put_along_axis(inc, subsets, 1, axis=1)
    per_task = inc.sum(0)
    co = inc.T @ inc
    iu = np.triu_indices(num_tasks, k=1)
    pairs = co[iu]
    covered = pairs[pairs > 0]
    n_pairs = num_tasks * (num_tasks - 1) // 2
    return {
        "tasks_covered": int((per_task > 0).sum()),
        "pairs_covered": int(covered.size),
        "pair_fraction": float(covered.size / n_pairs) if n_pairs else 1.0,
        "task_min": int(per_task.min()),
        "task_mean": float(per_task.mean()),
        "task_max": int(per_task.max()),
        "pair_min": int(covered.min()) if covered.size else 0,
        "pair_mean": float(covered.mean()) if covered.size else 0.0,
        "pair_max": int(covered.max()) if covered.size else 0,
    }
