"""Datasets: SNAP community graphs, ``.mat`` multi-label benchmarks and a planted generator.

Your own files go through :mod:`graphtag.datasets.files` (``load_dataset(path)``). Every
loader yields a PyG :class:`~torch_geometric.data.Data` with ``x``, ``edge_index``,
``y`` (``n x T`` float, one column per task), ``train_mask``/``val_mask``/``test_mask`` and,
for partially labelled tasks, ``label_mask``.
"""

from __future__ import annotations

import os

from torch_geometric.data import Data

from graphtag.datasets.benchmarks import BENCHMARKS
from graphtag.datasets.download import ChecksumError, download_url, sha256sum
from graphtag.datasets.features import FEATURE_KINDS, node_features
from graphtag.datasets.files import GraphArrays, is_data_path, load_file, read_graph
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
    "BENCHMARKS",
    "DATASETS",
    "FEATURE_KINDS",
    "MAT_GRAPHS",
    "SNAP_GRAPHS",
    "ChecksumError",
    "CommunityTasks",
    "DataFormatError",
    "GraphArrays",
    "MultiLabelMat",
    "SNAPCommunities",
    "SyntheticCommunities",
    "build_community_tasks",
    "bundled_path",
    "download_url",
    "load_dataset",
    "load_file",
    "make_multitask_data",
    "node_features",
    "random_node_split",
    "read_communities",
    "read_edge_list",
    "read_graph",
    "read_mat_graph",
    "sha256sum",
    "synthetic_communities",
    "write_communities",
    "write_edge_list",
]

#: Every dataset name :func:`load_dataset` accepts.
DATASETS: tuple[str, ...] = (*SNAP_GRAPHS, *MAT_GRAPHS, "synthetic")


def load_dataset(
    name: str | os.PathLike,
    root: str | os.PathLike = "data",
    num_tasks: int | None = None,
    *,
    features: str = "spectral",
    num_features: int = 64,
    split: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 0,
    log: bool = True,
    labels: str | os.PathLike | None = None,
    labels_format: str = "auto",
    unknown_nodes: str = "error",
    constant_tasks: str = "error",
) -> Data:
    """Load any supported dataset, by name or from your own files, and return its graph.

    ``name`` is a key of :data:`SNAP_GRAPHS` or :data:`MAT_GRAPHS`, ``"synthetic"`` (a
    2,000-node planted-group graph, ``num_tasks`` tasks in 4 groups), a benchmark of
    :data:`BENCHMARKS` (``"ogbn-proteins"``, ``"yelp"``, ``"amazon-products"``,
    ``"ppi-pyg"``; downloaded into ``root``), the name of a SNAP-format graph whose files sit
    in ``<root>/<name>/raw``, or a path: a ``.mat`` file, an edge list with ``labels``, a SNAP
    ``*.ungraph.txt[.gz]``, a ``torch.save``'d PyG ``Data``, a GraphML/GML file or an OGB
    dataset folder (see :mod:`graphtag.datasets.files`). ``num_tasks=None`` means 100 for SNAP
    graphs and all labels otherwise.

    ``labels``, ``labels_format``, ``unknown_nodes`` and ``constant_tasks`` apply to files,
    see :func:`graphtag.datasets.files.load_file`. Files are validated before any feature is
    computed; bad input raises :class:`DataFormatError` naming the file, line and fix.
    """
    common = dict(features=features, num_features=num_features, split=split, seed=seed)
    key = os.fspath(name)
    # a bare name with SNAP files in <root>/<name>/raw keeps its old meaning
    legacy = "/" not in key and os.sep not in key and os.path.isdir(os.path.join(root, key, "raw"))
    if key in BENCHMARKS or (key not in DATASETS and is_data_path(key) and not legacy):
        return load_file(key, labels, num_tasks, labels_format=labels_format,
                         unknown_nodes=unknown_nodes, constant_tasks=constant_tasks,
                         root=root, log=log, **common)
    if labels is not None:
        raise ValueError(f"labels={labels!r} is for files; dataset {key!r} has its own labels.")
    if key in MAT_GRAPHS:
        return MultiLabelMat(root, key, num_tasks, log=log, **common)[0]
    if key == "synthetic":
        syn = synthetic_communities(num_tasks=num_tasks or 20, seed=seed)
        return syn.to_data(**common)
    if key not in SNAP_GRAPHS and not os.path.isdir(os.path.join(root, key, "raw")):
        raise ValueError(
            f"unknown dataset {key!r}: use one of {list(DATASETS)}, a benchmark of "
            f"{list(BENCHMARKS)}, a data file path (.mat, .pt, an edge list with labels, ...), "
            f"or put SNAP-format files in {os.path.join(root, key, 'raw')}."
        )
    return SNAPCommunities(root, key, num_tasks or 100, log=log, **common)[0]
