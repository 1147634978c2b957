"""``torch.save``'d PyG ``Data`` (or a dict of tensors), loaded with ``weights_only``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from graphtag.datasets.io import DataFormatError
from graphtag.datasets.readers.arrays import GraphArrays, _check_features, _undirected

__all__ = ["pyg_arrays"]


def _tensor_np(v: Any) -> np.ndarray:
    return v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)


def _pyg_globals() -> list[Any]:
    """PyG's data containers a pickled ``Data`` names: plain attribute holders, safe to
    allow under ``weights_only`` (PyG registers ``Data`` itself but not all of these)."""
    from torch_geometric.data import Data
    from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.storage import EdgeStorage, GlobalStorage, NodeStorage

    return [Data, DataEdgeAttr, DataTensorAttr, GlobalStorage, NodeStorage, EdgeStorage]


def _read_pyg(path: Path) -> GraphArrays:
    import pickle

    import torch

    try:
        with torch.serialization.safe_globals(_pyg_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        m = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        what = f" (it names {m.group(1)})" if m else ""
        raise DataFormatError(
            f"{path}: holds Python objects that torch will not load safely with "
            f"weights_only=True{what}; save only a PyG Data or a dict of tensors: "
            "torch.save(data, path) or torch.save(data.to_dict(), path)."
        ) from err
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise DataFormatError(
            f"{path}: not a readable torch.save file ({str(err).splitlines()[0]}); it may be "
            "truncated: save it again with torch.save(data, path)."
        ) from err
    return pyg_arrays(obj, str(path))


def pyg_arrays(obj: Any, where: str) -> GraphArrays:
    """Validate a PyG ``Data`` (or dict of tensors) and turn it into :class:`GraphArrays`.

    Raises
    ------
    DataFormatError
        Missing ``edge_index``/``y``, 1-D (multi-class) ``y``, labels other than 0/1/NaN,
        shape mismatches between ``y``, ``x``, masks and ``num_nodes``, edge ids out of range,
        non-finite features, or only some of the three split masks.
    """
    if isinstance(obj, (list, tuple)) and len(obj) == 1:
        obj = obj[0]
    if hasattr(obj, "to_dict") and not isinstance(obj, dict):
        if type(obj).__name__ == "HeteroData":
            raise DataFormatError(f"{where}: a HeteroData; graphtag needs one node type (Data).")
        obj = obj.to_dict()
    if not isinstance(obj, dict):
        raise DataFormatError(
            f"{where}: holds a {type(obj).__name__}; expected a PyG Data (torch.save(data, "
            "path)) or a dict with 'edge_index' and 'y'."
        )
    for key in ("edge_index", "y"):
        if obj.get(key) is None:
            raise DataFormatError(f"{where}: no {key!r}; a dataset needs 'edge_index' (2 x E) "
                                  "and 'y' (n x T, 0/1).")
    y = _tensor_np(obj["y"])
    if y.ndim != 2:
        raise DataFormatError(
            f"{where}: y has shape {tuple(y.shape)}; graphtag needs n x T binary labels (one "
            "column per task). For class indices use torch.nn.functional.one_hot(y).float()."
        )
    n = int(obj.get("num_nodes") or y.shape[0])
    if y.shape[0] != n:
        raise DataFormatError(f"{where}: y has {y.shape[0]} rows but num_nodes is {n}; "
                              "give one label row per node.")
    yf = y.astype(np.float64)
    nan = np.isnan(yf)
    bad = ~(nan | (yf == 0) | (yf == 1))
    if bad.any():
        r, c = (int(i) for i in np.argwhere(bad)[0])
        raise DataFormatError(f"{where}: y[{r}, {c}] = {yf[r, c]:g}; labels must be 0 or 1 "
                              "(NaN: unknown).")
    known = ~nan
    if obj.get("label_mask") is not None:
        lm = _tensor_np(obj["label_mask"]).astype(bool)
        if lm.shape != y.shape:
            raise DataFormatError(f"{where}: label_mask has shape {tuple(lm.shape)}, y has "
                                  f"{tuple(y.shape)}; they must match.")
        known &= lm
    ei = _tensor_np(obj["edge_index"])
    if ei.ndim != 2 or ei.shape[0] != 2 or ei.dtype.kind not in "iu":
        raise DataFormatError(f"{where}: edge_index has shape {tuple(ei.shape)} and dtype "
                              f"{ei.dtype}; it must be 2 x E integers.")
    if ei.size and (int(ei.min()) < 0 or int(ei.max()) >= n):
        v = int(ei.max()) if int(ei.max()) >= n else int(ei.min())
        col = int(np.flatnonzero((ei == v).any(0))[0])
        raise DataFormatError(
            f"{where}: edge_index[:, {col}] names node {v}, but the graph has {n} nodes (rows "
            f"of y); node indices must lie in 0..{n - 1}."
        )
    g = GraphArrays(_undirected(ei.astype(np.int64)), (yf == 1).astype(np.uint8),
                    np.arange(n, dtype=np.int64), [f"task {i}" for i in range(y.shape[1])],
                    label_mask=None if known.all() else known, source=Path(where).name,
                    task_index=np.arange(y.shape[1]))
    if obj.get("x") is not None:
        g.x = _check_features(_tensor_np(obj["x"]), n, where, g.node_ids)
    names = ("train_mask", "val_mask", "test_mask")
    given = [k for k in names if obj.get(k) is not None]
    if given and len(given) < 3:
        raise DataFormatError(
            f"{where}: has {given} but not {[k for k in names if k not in given]}; save all "
            "three split masks, or none (graphtag then draws a random split)."
        )
    if given:
        masks = []
        for k in names:
            m = _tensor_np(obj[k])
            if m.dtype != bool:  # node indices
                idx = m.astype(np.int64)
                m = np.zeros(n, dtype=bool)
                m[idx] = True
            if m.shape != (n,):
                raise DataFormatError(f"{where}: {k} has shape {tuple(m.shape)}; it must be "
                                      f"({n},) bool or node indices.")
            masks.append(m)
        g.masks = (masks[0], masks[1], masks[2])
    return g
