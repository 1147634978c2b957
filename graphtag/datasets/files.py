"""Your own data: multi-label node datasets from files, validated before anything trains.

:func:`read_graph` parses and validates one dataset into :class:`GraphArrays` (numpy arrays,
no features, no split); :func:`load_file` adds task selection, node features, a split and a
processed-data cache and returns a PyG :class:`~torch_geometric.data.Data` like every other
loader. :func:`graphtag.load_dataset` sends paths here.

Formats (:func:`detect_format`, from the file name):

``mat``
    MATLAB ``.mat`` with ``network`` (adjacency) and ``group`` (node x label), any file name;
    an optional ``features`` (or ``attributes``) variable holds node features.
``edgelist``
    ``.txt``/``.csv``/``.tsv``/``.edges`` (optionally ``.gz``): one edge a line, two node ids
    (any strings or integers; extra columns such as weights are ignored; ``#`` starts a
    comment), plus a labels file: a node x label table (header row, a node-id column, one 0/1
    column per label, empty cell = unknown), ``(node, label)`` pairs, or one community a line.
``snap``
    ``*.ungraph.txt[.gz]`` with its ``*.cmty.txt[.gz]`` (found beside it when not given):
    treated like a named SNAP graph (distinct communities, top ``num_tasks``, induced
    subgraph).
``pyg``
    ``.pt``/``.pth`` written by ``torch.save`` of a PyG ``Data`` (or a dict of tensors) with
    ``edge_index`` and ``y`` of shape ``n x T``; ``x``, ``train_mask``/``val_mask``/
    ``test_mask`` and ``label_mask`` are used when present.
``graphml``, ``gml``
    networkx formats; labels from a labels file, or from a node attribute ``labels``.
``ogb``
    an OGB node-property dataset folder (``.../ogbn_proteins`` with ``raw/`` and ``split/``),
    see :mod:`graphtag.datasets.benchmarks`.

Every problem found is a :class:`~graphtag.datasets.DataFormatError` naming the file, the line
(or row, or tensor entry) and the fix, raised before features are computed.

This module is the dispatcher (:func:`read_graph`) and the cached loader (:func:`load_file`);
each format's reader, the labels files, the text utilities and the cache live in
:mod:`graphtag.datasets.readers`, and OGB folders in :mod:`graphtag.datasets.benchmarks`.
"""


from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from graphtag.datasets.io import DataFormatError

# Private helpers that graphtag.datasets.benchmarks imports from here.
from graphtag.datasets.readers.arrays import (  # noqa: F401
    GraphArrays,
    _check_features,
    _undirected,
    select_tasks,
    summarize,
)
from graphtag.datasets.readers.cache import (
    _cache_paths,
    _load_cache,
    _save_cache,
    _source_files,
    source_fingerprint,
)
from graphtag.datasets.readers.edgelist import (
    _first_ids_are_ints,
    _read_edgelist,
    _read_snap,
    read_edge_table,
)
from graphtag.datasets.readers.formats import (
    CONSTANT_TASK_POLICIES,
    DATA_SUFFIXES,
    LABEL_FORMATS,
    UNKNOWN_NODE_POLICIES,
    _base_name,
    detect_format,
    detect_kind,
    is_data_path,
)
from graphtag.datasets.readers.graphml import _read_networkx
from graphtag.datasets.readers.labels import read_labels
from graphtag.datasets.readers.matfile import _read_mat, mat_graph_arrays
from graphtag.datasets.readers.pyg import _read_pyg, pyg_arrays
from graphtag.datasets.readers.text import _reading  # noqa: F401

__all__ = [
    "CONSTANT_TASK_POLICIES",
    "DATA_SUFFIXES",
    "LABEL_FORMATS",
    "UNKNOWN_NODE_POLICIES",
    "GraphArrays",
    "detect_format",
    "detect_kind",
    "is_data_path",
    "load_file",
    "mat_graph_arrays",
    "pyg_arrays",
    "read_edge_table",
    "read_graph",
    "read_labels",
    "select_tasks",
    "source_fingerprint",
    "summarize",
]


def _check_policies(labels_format: str, unknown_nodes: str, constant_tasks: str) -> None:
    if labels_format not in LABEL_FORMATS:
        raise ValueError(f"labels_format must be one of {LABEL_FORMATS} (got {labels_format!r}).")
    if unknown_nodes not in UNKNOWN_NODE_POLICIES:
        raise ValueError(f"unknown_nodes must be one of {UNKNOWN_NODE_POLICIES} "
                         f"(got {unknown_nodes!r}).")
    if constant_tasks not in CONSTANT_TASK_POLICIES:
        raise ValueError(f"constant_tasks must be one of {CONSTANT_TASK_POLICIES} "
                         f"(got {constant_tasks!r}).")


def read_graph(
    source: str | os.PathLike,
    labels: str | os.PathLike | None = None,
    *,
    labels_format: str = "auto",
    unknown_nodes: str = "error",
    num_tasks: int | None = None,
    root: str | os.PathLike = "data",
) -> GraphArrays:
    """Parse and validate a dataset file (or OGB folder or benchmark name), no features.

    Parameters
    ----------
    source
        A path in one of the formats of :func:`detect_format`, or a benchmark name of
        :data:`graphtag.datasets.benchmarks.BENCHMARKS` (``"ogbn-proteins"``, ``"yelp"``, ...).
    labels
        The labels file of an edge list, SNAP graph or GraphML/GML graph.
    labels_format
        ``"auto"`` (from the name and first lines), ``"table"``, ``"pairs"`` or
        ``"communities"``.
    unknown_nodes
        Labelled node ids the graph lacks: ``"error"``, ``"drop"`` (ignore their labels) or
        ``"add"`` (keep them as nodes without edges).
    num_tasks
        Only used by SNAP graphs, where it picks the communities before the induced subgraph
        (default 100); elsewhere see :func:`select_tasks`.
    root
        Where benchmark names are downloaded.

    Raises
    ------
    DataFormatError
        Malformed, truncated or inconsistent input (the message names file, line and fix).
    FileNotFoundError
        A path that does not exist.
    """
    from graphtag.datasets.benchmarks import BENCHMARKS, read_benchmark

    _check_policies(labels_format, unknown_nodes, "error")
    if isinstance(source, str) and source in BENCHMARKS:
        return read_benchmark(source, root)
    path = Path(source)
    fmt = detect_format(path)
    lab = Path(labels) if labels is not None else None
    if lab is not None and not lab.is_file():
        raise FileNotFoundError(f"{lab}: no such labels file")
    if lab is not None and fmt in ("mat", "pyg", "ogb"):
        raise DataFormatError(f"{path}: a {fmt} dataset carries its own labels; drop --labels.")
    if fmt == "edgelist" and lab is not None and labels_format in ("auto", "communities") \
            and _base_name(path).endswith(".txt") and _base_name(lab).endswith(".cmty.txt") \
            and _first_ids_are_ints(path):
        fmt = "snap"  # integer edge list + SNAP community file: the SNAP route
    if fmt == "snap":
        return _read_snap(path, lab, num_tasks, unknown_nodes)
    if fmt == "edgelist":
        return _read_edgelist(path, lab, labels_format, unknown_nodes)
    if fmt == "mat":
        return _read_mat(path)
    if fmt == "pyg":
        return _read_pyg(path)
    if fmt in ("graphml", "gml"):
        return _read_networkx(path, fmt, lab, labels_format, unknown_nodes)
    from graphtag.datasets.benchmarks import read_ogb_folder

    return read_ogb_folder(path)


def load_file(
    source: str | os.PathLike,
    labels: str | os.PathLike | None = None,
    num_tasks: int | None = None,
    *,
    features: str = "spectral",
    num_features: int = 64,
    split: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 0,
    labels_format: str = "auto",
    unknown_nodes: str = "error",
    constant_tasks: str = "error",
    root: str | os.PathLike = "data",
    cache: bool = True,
    log: bool = True,
) -> Any:
    """Load a dataset file as a multitask PyG ``Data``, using a processed cache when valid.

    The processed result is cached next to the source (``.graphtag-cache/`` beside the file,
    or ``<root>/cache/`` where that folder is read-only) under a fingerprint of the source
    bytes and every option here, so an edited file or a changed option is processed anew.

    Parameters
    ----------
    source, labels, labels_format, unknown_nodes, root
        As in :func:`read_graph`.
    num_tasks, constant_tasks
        As in :func:`select_tasks` (``None``: all tasks; 100 for SNAP files).
    features, num_features
        Label-free features (:func:`graphtag.datasets.node_features`), used only when the
        file has none.
    split, seed
        Random train/val/test fractions and seed, used only when the file has no masks.
    cache
        Read and write the processed cache.
    log
        Print where the processed data was read from or written to.

    Returns
    -------
    torch_geometric.data.Data
        ``x``, ``edge_index``, ``y`` (``n x T``), the three masks, ``label_mask`` when some
        labels are unknown, ``community_index`` (each task's index among the file's labels),
        ``node_ids`` for integer ids, and ``ogb_name`` for OGB datasets.
    """
    from graphtag.datasets.benchmarks import BENCHMARKS, benchmark_folder
    from graphtag.datasets.features import FEATURE_KINDS

    _check_policies(labels_format, unknown_nodes, constant_tasks)
    if features not in FEATURE_KINDS:
        raise ValueError(f"features={features!r} is not one of {FEATURE_KINDS}.")
    root = Path(root)
    if isinstance(source, str) and source in BENCHMARKS:
        src = benchmark_folder(source, root)  # downloads once; the cache keys on its files
    else:
        src = Path(source)
        detect_format(src)
    files = _source_files(src) + ([Path(labels)] if labels is not None else [])
    opts = dict(source=str(source), labels_format=labels_format, unknown_nodes=unknown_nodes,
                constant_tasks=constant_tasks, num_tasks=num_tasks, features=features,
                num_features=num_features, split=list(split), seed=seed,
                has_labels=labels is not None)
    if labels is not None and not Path(labels).is_file():
        raise FileNotFoundError(f"{labels}: no such labels file")
    candidates = _cache_paths(src, source_fingerprint(files, opts), root) if cache else []
    data = _load_cache(candidates)
    if data is not None:
        return data
    g = read_graph(source, labels, labels_format=labels_format, unknown_nodes=unknown_nodes,
                   num_tasks=num_tasks, root=root)
    g = select_tasks(g, None if detect_kind(src) == "snap" else num_tasks, constant_tasks)
    data = g.to_data(features=features, num_features=num_features, split=split, seed=seed)
    if cache:
        where = _save_cache(data, candidates)
        if log and where is not None:
            print(f"graphtag: processed {src.name} -> {where}")
    return data
