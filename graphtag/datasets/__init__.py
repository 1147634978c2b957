"""Datasets: SNAP community graphs, ``.mat`` multi-label benchmarks and a planted generator.

Every loader yields a PyG :class:`~torch_geometric.data.Data` with ``x``, ``edge_index``,
``y`` (``n x T`` float, one column per task), ``train_mask``/``val_mask``/``test_mask`` and,
for partially labelled tasks, ``label_mask``.
"""

from __future__ import annotations

import os

from torch_geometric.data import Data

from graphtag.datasets.download import ChecksumError, download_url, sha256sum
from graphtag.datasets.features import FEATURE_KINDS, node_features
from graphtag.datasets.io import (
    DataFormatError,
    read_communities,
    read_edge_list,
    write_communities,
    write_edge_list,
)
from graphtag.datasets.mat import MAT_GRAPHS, MultiLabelMat, read_mat_graph
from graphtag.datasets.snap import SNAP_GRAPHS, SNAPCommunities, bundled_path
from graphtag.datasets.synthetic import SyntheticCommunities, synthetic_communities
from graphtag.datasets.tasks import (
    CommunityTasks,
    build_community_tasks,
    make_multitask_data,
    random_node_split,
)

__all__ = [
    "DATASETS",
    "FEATURE_KINDS",
    "MAT_GRAPHS",
    "SNAP_GRAPHS",
    "ChecksumError",
    "CommunityTasks",
    "DataFormatError",
    "MultiLabelMat",
    "SNAPCommunities",
    "SyntheticCommunities",
    "build_community_tasks",
    "bundled_path",
    "download_url",
    "load_dataset",
    "make_multitask_data",
    "node_features",
    "random_node_split",
    "read_communities",
    "read_edge_list",
    "read_mat_graph",
    "sha256sum",
    "synthetic_communities",
    "write_communities",
    "write_edge_list",
]

#: Every dataset name :func:`load_dataset` accepts.
DATASETS: tuple[str, ...] = (*SNAP_GRAPHS, *MAT_GRAPHS, "synthetic")


def load_dataset(
    name: str,
    root: str | os.PathLike = "data",
    num_tasks: int | None = None,
    *,
    features: str = "spectral",
    num_features: int = 64,
    split: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 0,
    log: bool = True,
) -> Data:
    """Load any supported dataset by name and return its single graph.

    ``name`` is a key of :data:`SNAP_GRAPHS` or :data:`MAT_GRAPHS`, ``"synthetic"`` (a
    2,000-node planted-group graph, ``num_tasks`` tasks in 4 groups), or the name of a SNAP-format
    graph whose files sit in ``<root>/<name>/raw``. ``num_tasks=None`` means 100 for SNAP graphs
    and all labels for ``.mat`` files.
    """
    common = dict(features=features, num_features=num_features, split=split, seed=seed)
    if name in MAT_GRAPHS:
        return MultiLabelMat(root, name, num_tasks, log=log, **common)[0]
    if name == "synthetic":
        syn = synthetic_communities(num_tasks=num_tasks or 20, seed=seed)
        return syn.to_data(**common)
    if name not in SNAP_GRAPHS and not os.path.isdir(os.path.join(root, name, "raw")):
        raise ValueError(
            f"unknown dataset {name!r}: use one of {list(DATASETS)}, or put SNAP-format files "
            f"in {os.path.join(root, name, 'raw')}."
        )
    return SNAPCommunities(root, name, num_tasks or 100, log=log, **common)[0]
