"""MATLAB ``.mat`` files with ``network`` (adjacency) and ``group`` (node x label)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from graphtag.datasets.io import DataFormatError
from graphtag.datasets.readers.arrays import GraphArrays, _check_features

__all__ = ["mat_graph_arrays"]


def mat_graph_arrays(mat: dict[str, Any], path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(edges, y)`` from a loaded ``.mat`` dict, as :func:`read_mat_graph` returns them.

    Raises
    ------
    DataFormatError
        A missing variable, or a non-square ``network`` / row count unlike ``group``'s.
    """
    for key in ("network", "group"):
        if key not in mat:
            found = sorted(k for k in mat if not k.startswith("__"))
            raise DataFormatError(
                f"{path}: variable {key!r} missing (found {found}); expected 'network' "
                "(adjacency) and 'group' (node x label)."
            )
    import scipy.sparse as sp

    adj = sp.coo_matrix(mat["network"])
    group = mat["group"]
    group = group.toarray() if sp.issparse(group) else np.asarray(group)
    if group.ndim != 2 or adj.shape[0] != adj.shape[1] or adj.shape[0] != group.shape[0]:
        raise DataFormatError(
            f"{path}: network is {adj.shape} and group is {group.shape}; network must be "
            "square with as many rows as group."
        )
    n_loops = int((adj.row == adj.col).sum())
    sym = (adj + adj.T).tocoo()
    asym = (abs(adj - adj.T) > 0).nnz
    if n_loops or asym:
        warnings.warn(
            f"{path}: removed {n_loops} self-loop(s); {asym} asymmetric entr(ies) made "
            "undirected.",
            stacklevel=3,
        )
    keep = sym.row < sym.col  # a symmetric matrix lists each undirected edge twice
    edges = np.stack([sym.row[keep], sym.col[keep]]).astype(np.int64)
    return edges, (group != 0).astype(np.uint8)


_MAT_FEATURES = ("features", "attributes", "feature", "X")


def _read_mat(path: Path) -> GraphArrays:
    import scipy.io
    import scipy.sparse as sp

    try:
        mat = scipy.io.loadmat(path)
    except Exception as err:  # scipy raises ValueError, OSError, MatReadError, zlib.error...
        raise DataFormatError(
            f"{path}: not a readable MATLAB .mat file ({type(err).__name__}: {err}); it may be "
            "truncated, or saved as v7.3 (HDF5): re-save with scipy.io.savemat or MATLAB -v7."
        ) from err
    edges, y = mat_graph_arrays(mat, path)
    n = y.shape[0]
    g = GraphArrays(edges, y, np.arange(n, dtype=np.int64),
                    [f"label {i}" for i in range(y.shape[1])], source=path.name,
                    task_index=np.arange(y.shape[1]))
    key = next((k for k in _MAT_FEATURES if k in mat), None)
    if key is not None:
        x = mat[key]
        g.x = _check_features(x.toarray() if sp.issparse(x) else np.asarray(x), n,
                              f"{path}: variable {key!r}", g.node_ids)
    return g
