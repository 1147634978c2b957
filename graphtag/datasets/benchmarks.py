"""Public multi-label node benchmarks through their own packages: OGB and PyG.

``ogbn-proteins`` (112 binary tasks, species split) takes its metadata (``master.csv``), its
download and its scoring from the ``ogb`` package: :func:`ogb_rocauc` reports the official
:class:`ogb.nodeproppred.Evaluator` ROC-AUC next to graphtag's macro-F1. PyG's multi-label
datasets (``yelp``: 100 tasks, ``amazon-products``: 107, ``ppi-pyg``: 121 over 24 graphs)
go through their PyG classes. Both download on first use into ``<root>``; this module stays
thin because those downloads cannot be exercised offline (the OGB folder reader is tested on
a tiny OGB-format fixture).

ogb's ``NodePropPredDataset`` is not used to read the files: it prompts on stdin when a
folder lacks its ``RELEASE_v*.txt``, reloads its processed file with a ``torch.load`` that
newer torch refuses (numpy arrays under ``weights_only``), and parses every raw file,
including edge features graphtag does not use (8 x 39.6M numbers for ogbn-proteins). The
raw CSVs it needs are read here in OGB's documented layout.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from graphtag.datasets.io import DataFormatError

__all__ = ["BENCHMARKS", "benchmark_folder", "benchmark_on_disk", "ogb_rocauc", "read_benchmark",
           "read_ogb_folder", "union_graphs"]

#: Benchmark name -> (package, class or OGB name).
BENCHMARKS: dict[str, tuple[str, str]] = {
    "ogbn-proteins": ("ogb", "ogbn-proteins"),
    "yelp": ("pyg", "Yelp"),
    "amazon-products": ("pyg", "AmazonProducts"),
    "ppi-pyg": ("pyg", "PPI"),
}


def _ogb_meta(name: str) -> Any:
    import pandas as pd
    from ogb import nodeproppred

    master = pd.read_csv(Path(nodeproppred.__file__).parent / "master.csv", index_col=0,
                         keep_default_na=False)
    if name not in master:
        raise DataFormatError(f"{name!r} is not an OGB node-property dataset; known: "
                              f"{list(master.columns)}.")
    return master[name]


def benchmark_folder(name: str, root: str | os.PathLike) -> Path:
    """The benchmark's folder under ``root``, downloaded first if missing."""
    pkg, cls = BENCHMARKS[name]
    root = Path(root)
    if pkg == "ogb":
        folder = root / name.replace("-", "_")
        if not (folder / "raw").is_dir():
            _download_ogb(name, root)
        return folder
    folder = root / cls
    if not (folder / "processed").is_dir():
        _pyg_dataset(cls, folder)  # downloads and processes
    return folder


def benchmark_on_disk(name: str, root: str | os.PathLike) -> bool:
    """Whether the benchmark's files are already under ``root`` (no download needed)."""
    pkg, cls = BENCHMARKS[name]
    root = Path(root)
    if pkg == "ogb":
        return (root / name.replace("-", "_") / "raw").is_dir()
    return (root / cls / "processed").is_dir()


def _download_ogb(name: str, root: Path) -> None:
    import shutil

    from ogb.utils.url import download_url, extract_zip

    meta = _ogb_meta(name)
    root.mkdir(parents=True, exist_ok=True)
    path = download_url(meta["url"], str(root))
    extract_zip(path, str(root))
    os.unlink(path)
    shutil.move(str(root / meta["download_name"]), str(root / name.replace("-", "_")))


def read_ogb_folder(folder: str | os.PathLike) -> Any:
    """Read an OGB node-property dataset folder (``raw/``, ``split/``) as GraphArrays.

    The dataset name comes from the folder name (``ogbn_proteins`` -> ``ogbn-proteins``);
    labels must be binary (OGB's "binary classification" task type). Node features are used
    when the dataset has them (ogbn-proteins has none: graphtag's features apply).

    Raises
    ------
    DataFormatError
        An unknown or non-binary dataset, missing or inconsistent files (label rows unlike the
        node count, split indices out of range).
    """
    from ogb.io.read_graph_raw import read_binary_graph_raw

    from graphtag.datasets.files import GraphArrays, _check_features, _undirected

    folder = Path(folder)
    name = folder.name.replace("_", "-")
    meta = _ogb_meta(name)
    if meta["task type"] != "binary classification" or meta["is hetero"] == "True":
        raise DataFormatError(
            f"{folder}: {name} is a {meta['task type']} dataset"
            f"{' (heterogeneous)' if meta['is hetero'] == 'True' else ''}; graphtag loads "
            "binary multi-label node datasets (e.g. ogbn-proteins)."
        )
    raw = folder / "raw"
    try:
        if meta["binary"] == "True":
            with contextlib.redirect_stdout(io.StringIO()):  # ogb prints progress
                graph = read_binary_graph_raw(str(raw), add_inverse_edge=False)[0]
            y = np.load(raw / "node-label.npz")["node_label"]
        else:
            graph = _read_csv_graph(raw)
            y = _read_csv_gz(raw / "node-label.csv.gz")
    except (RuntimeError, FileNotFoundError, OSError, KeyError) as err:
        raise DataFormatError(f"{raw}: not a complete OGB raw folder ({err}); download the "
                              "dataset again.") from err
    n = int(graph["num_nodes"])
    if y.ndim != 2 or y.shape[0] != n:
        raise DataFormatError(f"{raw / 'node-label.csv.gz'}: labels have shape {y.shape} but "
                              f"the graph has {n} nodes (num-node-list); one row per node.")
    yf = y.astype(np.float64)
    if not np.isin(yf[~np.isnan(yf)], (0, 1)).all():
        raise DataFormatError(f"{raw / 'node-label.csv.gz'}: labels other than 0/1.")
    ei = np.asarray(graph["edge_index"], dtype=np.int64)
    if ei.size and (ei.min() < 0 or ei.max() >= n):
        raise DataFormatError(f"{raw / 'edge.csv.gz'}: node index {int(ei.max())} out of range "
                              f"0..{n - 1}.")
    known = ~np.isnan(yf)
    g = GraphArrays(_undirected(ei), (yf == 1).astype(np.uint8), np.arange(n, dtype=np.int64),
                    [f"task {i}" for i in range(y.shape[1])],
                    label_mask=None if known.all() else known, source=name,
                    meta={"ogb_name": name}, task_index=np.arange(y.shape[1]))
    if graph.get("node_feat") is not None:
        g.x = _check_features(graph["node_feat"], n, str(raw / "node-feat.csv.gz"), g.node_ids)
    split = folder / "split" / meta["split"]
    masks = []
    for part in ("train", "valid", "test"):
        f = split / f"{part}.csv.gz"
        if not f.is_file():
            raise DataFormatError(f"{f}: missing; an OGB dataset folder has split/"
                                  f"{meta['split']}/{{train,valid,test}}.csv.gz.")
        idx = _read_csv_gz(f).ravel().astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise DataFormatError(f"{f}: node index {int(idx.max())} out of range 0..{n - 1}.")
        m = np.zeros(n, dtype=bool)
        m[idx] = True
        masks.append(m)
    g.masks = (masks[0], masks[1], masks[2])
    return g


def _read_csv_graph(raw: Path) -> dict[str, Any]:
    """The parts of OGB's CSV raw format graphtag uses (one graph).

    Like ``ogb.io.read_csv_graph_raw`` without its edge features and additional files, which
    graphtag does not use: ogbn-proteins' edge-feature table alone is 8 x 39.6M numbers.
    """
    num_nodes = _read_csv_gz(raw / "num-node-list.csv.gz").ravel()
    if num_nodes.size != 1:
        raise DataFormatError(f"{raw / 'num-node-list.csv.gz'}: {num_nodes.size} graphs; "
                              "graphtag loads single-graph node datasets.")
    edges = _read_csv_gz(raw / "edge.csv.gz")
    if edges.ndim != 2 or edges.shape[1] != 2:
        raise DataFormatError(f"{raw / 'edge.csv.gz'}: {edges.shape[1]} columns; OGB edge "
                              "files hold 'u,v' lines.")
    feat = None
    if (raw / "node-feat.csv.gz").is_file():
        feat = _read_csv_gz(raw / "node-feat.csv.gz")
    return {"num_nodes": int(num_nodes[0]), "edge_index": edges.T.astype(np.int64),
            "node_feat": feat}


def _read_csv_gz(path: Path) -> np.ndarray:
    import pandas as pd

    from graphtag.datasets.files import _reading

    with _reading(path):
        return pd.read_csv(path, compression="gzip", header=None).to_numpy()


def _pyg_dataset(cls: str, folder: Path, split: str = "train") -> Any:
    import torch_geometric.datasets as pyg

    klass = getattr(pyg, cls)
    return klass(str(folder), split=split) if cls == "PPI" else klass(str(folder))


def read_benchmark(name: str, root: str | os.PathLike) -> Any:
    """A benchmark of :data:`BENCHMARKS` as GraphArrays (downloading it first if needed)."""
    from graphtag.datasets.files import pyg_arrays

    pkg, cls = BENCHMARKS[name]
    folder = benchmark_folder(name, root)
    if pkg == "ogb":
        return read_ogb_folder(folder)
    if cls == "PPI":  # 24 graphs in three splits: one graph of disjoint parts, split masks
        parts = {s: list(_pyg_dataset(cls, folder, s)) for s in ("train", "val", "test")}
        g = pyg_arrays(union_graphs(parts), name)
    else:
        g = pyg_arrays(_pyg_dataset(cls, folder)[0], name)
    g.source = name
    return g


def union_graphs(parts: dict[str, list[Any]]) -> dict[str, Any]:
    """Disjoint union of split-wise graph lists (``{"train": [...], "val": ..., "test":
    ...}``) as one dict with ``x``, ``edge_index``, ``y`` and the three split masks."""
    import torch

    xs, ys, eis, masks = [], [], [], {s: [] for s in ("train", "val", "test")}
    offset = 0
    for split in ("train", "val", "test"):
        for d in parts[split]:
            n = int(d.num_nodes)
            xs.append(d.x)
            ys.append(d.y)
            eis.append(d.edge_index + offset)
            for s in masks:
                masks[s].append(torch.full((n,), s == split))
            offset += n
    return {"x": torch.cat(xs), "y": torch.cat(ys), "edge_index": torch.cat(eis, 1),
            **{f"{s}_mask": torch.cat(m) for s, m in masks.items()}}


def ogb_rocauc(name: str, y_true: Any, y_score: Any) -> float | None:
    """OGB's official ROC-AUC (``Evaluator(name)``), or None where it does not apply (the
    evaluator needs all of the dataset's tasks, in order)."""
    from ogb.nodeproppred import Evaluator

    ev = Evaluator(name)
    if ev.eval_metric != "rocauc" or y_true.shape[1] != ev.num_tasks:
        return None
    try:
        return float(ev.eval({"y_true": y_true, "y_pred": y_score})["rocauc"])
    except RuntimeError:  # no task with both classes among the nodes given
        return None
