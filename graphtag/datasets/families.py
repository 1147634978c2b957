"""A benchmark where the right grouping is known and matters: families of noisy community copies.

Each family is one real community of the graph and several independently corrupted copies of
it (members dropped, random non-members added). All tasks of a family have the same best
predictor, the clean community, so training them together pools their labels and cancels
their independent noise: positive transfer by construction. Tasks of different families
share nothing but the graph, so a group that mixes families gets none of that pooling and
spends its capacity on unrelated tasks. The planted families are stored as ``task_group``
(the pipeline reports each grouping's adjusted Rand index against them), and task order is
shuffled so that a contiguous split of the task ids is no better than chance.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch stays unimported until a family dataset is built (CLI start-up)
    from torch_geometric.data import Data

__all__ = ["FAMILY_DATASETS", "community_families"]

#: Named family benchmarks :func:`graphtag.datasets.load_dataset` builds: name ->
#: (base dataset, keyword arguments of :func:`community_families`).
FAMILY_DATASETS: dict[str, tuple[str, dict]] = {
    "amazon-families": ("amazon-top100", {"num_families": 10, "copies": 8}),
}


def community_families(
    data: Data,
    num_families: int = 10,
    copies: int = 8,
    *,
    keep: float = 0.5,
    noise: float = 0.5,
    seed: int = 0,
) -> Data:
    """Replace ``data``'s tasks by ``num_families`` families of ``copies`` tasks each.

    Family ``f`` is built on task ``f`` of ``data`` (for SNAP graphs: the ``f``-th largest
    community): its first task is that community unchanged, the other ``copies - 1`` keep each
    member with probability ``keep`` and add ``noise`` times the community's size of random
    non-members, drawn independently per copy.

    Parameters
    ----------
    data
        A multi-label graph (``y`` of shape ``(n, T)`` with ``T >= num_families``), e.g.
        ``load_dataset("amazon-top100")``. Features, split and graph are kept.
    num_families, copies
        Families and tasks per family (``copies >= 1``).
    keep
        Probability that a corrupted copy keeps a member, in ``(0, 1]``.
    noise
        Random non-members added to each corrupted copy, as a fraction of the community size.
    seed
        Seeds the corruption and the task order.

    Returns
    -------
    Data
        A shallow copy of ``data`` with ``y`` of shape ``(n, num_families * copies)`` in a
        shuffled task order and ``task_group`` (the family of each task).
    """
    import torch

    y0 = data.y
    if y0 is None or y0.dim() != 2:
        raise ValueError("data.y must be an (n, T) label matrix.")
    if not 1 <= num_families <= y0.size(1):
        raise ValueError(f"num_families must lie in [1, {y0.size(1)}] (got {num_families}).")
    if copies < 1:
        raise ValueError(f"copies must be >= 1 (got {copies}).")
    if not 0 < keep <= 1 or noise < 0:
        raise ValueError(f"keep must lie in (0, 1] and noise be >= 0 (got {keep}, {noise}).")
    # a stream of its own: default_rng(seed).permutation(T) is also how random groups are
    # drawn, and sharing it would make "random" groups equal the planted ones
    rng = np.random.default_rng([seed, 0x46414D])
    base = (y0[:, :num_families] > 0).cpu().numpy()
    n = base.shape[0]
    T = num_families * copies
    order = rng.permutation(T)  # column of (family f, copy j) is order[f * copies + j]
    y = np.zeros((n, T), dtype=np.float32)
    family = np.empty(T, dtype=np.int64)
    for f in range(num_families):
        members = np.flatnonzero(base[:, f])
        others = np.flatnonzero(~base[:, f])
        for j in range(copies):
            col = order[f * copies + j]
            family[col] = f
            if j == 0:
                y[members, col] = 1
                continue
            kept = members[rng.random(members.size) < keep]
            extra = rng.choice(others, size=min(others.size, round(noise * members.size)),
                               replace=False)
            y[kept, col] = 1
            y[extra, col] = 1
    out = data.clone()
    out.y = torch.from_numpy(y).to(y0.dtype)
    for key in ("community_index", "label_mask"):
        if key in out:
            del out[key]
    out.task_group = torch.from_numpy(family)
    return out
