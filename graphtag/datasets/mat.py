"""MATLAB ``.mat`` multi-label node benchmarks (BlogCatalog, PPI) as a PyG dataset.

These files hold ``network`` (sparse adjacency) and ``group`` (sparse node x label matrix), the
format of the DeepWalk / node2vec releases.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import scipy.io
import torch
from torch_geometric.data import Data

from graphtag.datasets._named import NamedTaskDataset
from graphtag.datasets.download import download_url
from graphtag.datasets.files import mat_graph_arrays
from graphtag.datasets.io import DataFormatError

__all__ = ["MAT_GRAPHS", "MultiLabelMat", "mat_graph_arrays", "read_mat_graph"]

# name -> (file name, URL, sha256 of the file)
MAT_GRAPHS: dict[str, tuple[str, str, str]] = {
    "blogcatalog": (
        "blogcatalog.mat",
        "https://github.com/phanein/deepwalk/raw/6e6dff245e4692e9bea47e9017c1034e51afbf29/"
        "example_graphs/blogcatalog.mat",
        "d4f4fb89ce1ccd4b7e2a183386c000773cc9362cc61f1be5b246a6d9c259da8f",
    ),
    "ppi": (
        "Homo_sapiens.mat",
        "http://snap.stanford.edu/node2vec/Homo_sapiens.mat",
        "8a32b88b0576276f02d7aaa3fd282e8617a3e6db8d39abb6212a283363bf1183",
    ),
}


def read_mat_graph(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read ``network`` and ``group`` from a ``.mat`` file.

    Returns ``(edges, y)``: ``(2, E)`` int64 undirected edges, each once with ``u < v``
    (self-loops removed and an asymmetric adjacency symmetrised, with a warning), and a dense
    ``(n, L)`` uint8 label matrix.
    """
    try:
        mat = scipy.io.loadmat(path)
    except Exception as err:  # ValueError, OSError, MatReadError, zlib.error on bad bytes
        raise DataFormatError(
            f"{path}: not a readable MATLAB .mat file ({type(err).__name__}: {err}); it may be "
            "truncated, or saved as v7.3 (HDF5): re-save with scipy.io.savemat or MATLAB -v7."
        ) from err
    return mat_graph_arrays(mat, path)


class MultiLabelMat(NamedTaskDataset):
    """BlogCatalog (39 labels) or PPI Homo sapiens (50 labels) as a multitask dataset.

    Parameters
    ----------
    root
        Folder holding ``<root>/<name>/raw/<file>.mat`` (used as is if present, else
        downloaded and checked against its SHA-256).
    name
        ``"blogcatalog"`` or ``"ppi"``.
    num_tasks
        Keep the ``num_tasks`` most frequent labels (``None``: all).
    features, num_features, split, seed, transform, pre_transform, force_reload, log
        As in :class:`graphtag.datasets.SNAPCommunities`.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        name: str = "blogcatalog",
        num_tasks: int | None = None,
        *,
        features: str = "spectral",
        num_features: int = 64,
        split: tuple[float, float, float] = (0.6, 0.2, 0.2),
        seed: int = 0,
        transform: Callable[[Data], Data] | None = None,
        pre_transform: Callable[[Data], Data] | None = None,
        force_reload: bool = False,
        log: bool = True,
    ) -> None:
        if name not in MAT_GRAPHS:
            raise ValueError(f"name={name!r} is not one of {sorted(MAT_GRAPHS)}.")
        super().__init__(root, name, num_tasks, features, num_features, split, seed, transform,
                         pre_transform, force_reload, log)

    @property
    def raw_file_names(self) -> list[str]:
        return [MAT_GRAPHS[self.name][0]]

    @property
    def processed_file_names(self) -> list[str]:
        return [self._processed_name(f"tasks{self.num_tasks_requested}_")]

    def download(self) -> None:
        fname, url, digest = MAT_GRAPHS[self.name]
        download_url(url, self.raw_dir, fname, sha256=digest)

    def process(self) -> None:
        edges, y = read_mat_graph(self.raw_paths[0])
        label_index = np.arange(y.shape[1])
        if self.num_tasks_requested is not None:
            if not 1 <= self.num_tasks_requested <= y.shape[1]:
                raise ValueError(
                    f"{self.name}: num_tasks={self.num_tasks_requested} but the file has "
                    f"{y.shape[1]} labels; use 1..{y.shape[1]}."
                )
            # int64 counts: y is uint8, and a negated unsigned count wraps (0 would rank first)
            counts = y.sum(0, dtype=np.int64)
            label_index = np.argsort(-counts, kind="stable")[: self.num_tasks_requested]
            y = y[:, label_index]
        self._save_processed(edges, y, source=self.name,
                             community_index=torch.from_numpy(label_index))
