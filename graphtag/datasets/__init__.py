"""Datasets: SNAP community graphs, ``.mat`` multi-label benchmarks and a planted generator.

Your own files go through :mod:`graphtag.datasets.files` (``load_dataset(path)``). Every
loader yields a PyG :class:`~torch_geometric.data.Data` with ``x``, ``edge_index``,
``y`` (``n x T`` float, one column per task), ``train_mask``/``val_mask``/``test_mask`` and,
for partially labelled tasks, ``label_mask``.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

# Eager: the torch-free parts (file parsing and checks), so `graphtag datasets info --data`
# answers without importing torch or PyG (seconds on a small machine). The rest loads on
# first use through __getattr__.
from graphtag.datasets.benchmarks import BENCHMARKS
from graphtag.datasets.download import ChecksumError, download_url, sha256sum
from graphtag.datasets.families import FAMILY_DATASETS, community_families
from graphtag.datasets.files import GraphArrays, is_data_path, load_file, read_graph
from graphtag.datasets.io import (
    DataFormatError,
    read_communities,
    read_edge_list,
    write_communities,
    write_edge_list,
)

if TYPE_CHECKING:
    from torch_geometric.data import Data

    from graphtag.datasets.features import FEATURE_KINDS, node_features
    from graphtag.datasets.mat import MAT_GRAPHS, MultiLabelMat, read_mat_graph
    from graphtag.datasets.snap import SNAP_GRAPHS, SNAPCommunities, bundled_path
    from graphtag.datasets.synthetic import SyntheticCommunities, synthetic_communities
    from graphtag.datasets.tasks import (
        CommunityTasks,
        build_community_tasks,
        make_multitask_data,
        random_node_split,
    )

_LAZY = {
    "FEATURE_KINDS": "features", "node_features": "features",
    "MAT_GRAPHS": "mat", "MultiLabelMat": "mat", "read_mat_graph": "mat",
    "SNAP_GRAPHS": "snap", "SNAPCommunities": "snap", "bundled_path": "snap",
    "SyntheticCommunities": "synthetic", "synthetic_communities": "synthetic",
    "CommunityTasks": "tasks", "build_community_tasks": "tasks",
    "make_multitask_data": "tasks", "random_node_split": "tasks",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"graphtag.datasets.{_LAZY[name]}"), name)
    if name == "DATASETS":
        return _dataset_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _dataset_names() -> tuple[str, ...]:
    """Every dataset name :func:`load_dataset` accepts (``DATASETS``)."""
    from graphtag.datasets.mat import MAT_GRAPHS
    from graphtag.datasets.snap import SNAP_GRAPHS

    return (*SNAP_GRAPHS, *MAT_GRAPHS, *FAMILY_DATASETS, "synthetic")


__all__ = [
    "BENCHMARKS",
    "DATASETS",
    "FAMILY_DATASETS",
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
    "community_families",
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
    from graphtag.datasets.mat import MAT_GRAPHS, MultiLabelMat
    from graphtag.datasets.snap import SNAP_GRAPHS, SNAPCommunities
    from graphtag.datasets.synthetic import synthetic_communities

    DATASETS = _dataset_names()
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
    if key in FAMILY_DATASETS:  # a fixed corruption (seed 0); ``seed`` still sets the split
        base, kw = FAMILY_DATASETS[key]
        if num_tasks is not None and num_tasks != kw["num_families"] * kw["copies"]:
            raise ValueError(f"{key} has {kw['num_families'] * kw['copies']} tasks by "
                             f"construction (got num_tasks={num_tasks}); leave it unset.")
        return community_families(load_dataset(base, root, log=log, **common), **kw)
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
