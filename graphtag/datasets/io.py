"""Readers and writers for SNAP-style community graphs.

Two text formats, as distributed by the SNAP "networks with ground-truth communities" collection:

* ``*.ungraph.txt[.gz]``: ``#`` comment lines, then one undirected edge a line as ``u<TAB>v``;
* ``*.cmty.txt[.gz]``: one community a line, its node ids separated by whitespace.

Parsing is vectorised (pandas' C parser for edges) because edge lists reach tens of millions of
lines. On malformed input the file is rescanned line by line only to name the first bad line.
"""

from __future__ import annotations

import gzip
import io
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "DataFormatError",
    "read_communities",
    "read_edge_list",
    "write_communities",
    "write_edge_list",
]


class DataFormatError(ValueError):
    """A data file is malformed; the message names the file, the line and a remedy."""


def _open_text(path: str | os.PathLike) -> io.TextIOBase:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _open_write(path: Path, gz: bool) -> io.TextIOBase:
    if gz:
        # mtime=0 keeps the bytes reproducible; level 6 is ~3x faster than 9 for ~2% size.
        raw = gzip.GzipFile(path, "wb", compresslevel=6, mtime=0)
        return io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
    return open(path, "w", encoding="utf-8", newline="\n")


def _first_bad_edge_line(path: Path) -> tuple[int, str, str]:
    with _open_text(path) as f:
        for lineno, line in enumerate(f, start=1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            parts = s.split()
            if len(parts) != 2:
                return lineno, s, f"expected 2 node ids, found {len(parts)} fields"
            for p in parts:
                try:
                    v = int(p)
                except ValueError:
                    return lineno, s, f"{p!r} is not an integer node id"
                if v < 0:
                    return lineno, s, f"node id {v} is negative"
    return 0, "", "unknown parse failure"


def read_edge_list(path: str | os.PathLike, *, dedupe: bool = True) -> np.ndarray:
    """Read an undirected SNAP edge list.

    Parameters
    ----------
    path
        ``.txt`` or ``.txt.gz`` file: ``#`` comments, then ``u v`` (tab or space separated).
    dedupe
        Remove self-loops and duplicate edges (``u v`` and ``v u`` count as one), warning
        with their counts. This is the documented fix-up; GNN code adds self-loops itself.

    Returns
    -------
    numpy.ndarray
        ``(2, E)`` int64 array of original node ids, each undirected edge once with
        ``u < v`` when ``dedupe`` is true.

    Raises
    ------
    DataFormatError
        On a line that is not two non-negative integers, naming the file and line.
    """
    import pandas as pd

    path = Path(path)
    try:
        with _open_text(path) as f:
            df = pd.read_csv(
                f,
                sep=r"\s+",
                comment="#",
                header=None,
                dtype=np.int64,
                engine="c",
            )
        if df.shape[1] != 2:
            raise ValueError("wrong column count")
        edges = df.to_numpy(dtype=np.int64).T.copy()
    except pd.errors.EmptyDataError:
        edges = np.empty((2, 0), dtype=np.int64)
    except (ValueError, pd.errors.ParserError) as err:
        lineno, line, why = _first_bad_edge_line(path)
        raise DataFormatError(
            f"{path}, line {lineno}: {why}: {line!r}. Each non-comment line must be two "
            "integer node ids 'u<TAB>v'; fix or delete that line (comments start with '#')."
        ) from err
    if edges.size and edges.min() < 0:
        lineno, line, why = _first_bad_edge_line(path)
        raise DataFormatError(f"{path}, line {lineno}: {why}: {line!r}. Node ids must be >= 0.")
    if edges.shape[1] == 0:
        raise DataFormatError(f"{path}: no edges found. Is this an edge list ('u<TAB>v' lines)?")
    if dedupe:
        edges = canonical_edges(edges, source=str(path))
    return edges


def canonical_edges(edges: np.ndarray, source: str = "edge list") -> np.ndarray:
    """Drop self-loops and duplicates of an undirected ``(2, E)`` edge array; ``u < v`` after.

    Warns with the number of removed self-loops and duplicates (naming ``source``).
    """
    loops = edges[0] == edges[1]
    n_loops = int(loops.sum())
    e = edges[:, ~loops]
    lo, hi = np.minimum(e[0], e[1]), np.maximum(e[0], e[1])
    # One int64 key per edge keeps np.unique a single radix-friendly sort.
    span = int(hi.max()) + 1 if hi.size else 1
    if span < 2**31:
        key = lo * span + hi
        uniq = np.unique(key)
        out = np.stack([uniq // span, uniq % span])
    else:
        out = np.unique(np.stack([lo, hi]), axis=1)
    n_dup = e.shape[1] - out.shape[1]
    if n_loops or n_dup:
        warnings.warn(
            f"{source}: removed {n_loops} self-loop(s) and {n_dup} duplicate edge(s) "
            "(undirected: 'u v' and 'v u' are the same edge).",
            stacklevel=3,
        )
    return out.astype(np.int64, copy=False)


def read_communities(path: str | os.PathLike) -> list[np.ndarray]:
    """Read a SNAP community file: one community a line, node ids separated by whitespace.

    Empty lines are skipped with a warning (they would be tasks without positives). Duplicate
    ids inside one line are merged. Duplicate *communities* are kept here; deduplication is a
    dataset-level choice (see :func:`graphtag.datasets.build_community_tasks`).

    Returns
    -------
    list of numpy.ndarray
        Sorted unique int64 node ids of each non-empty line, in file order.

    Raises
    ------
    DataFormatError
        On a token that is not a non-negative integer, naming the file and line.
    """
    path = Path(path)
    out: list[np.ndarray] = []
    empty: list[int] = []
    with _open_text(path) as f:
        for lineno, line in enumerate(f, start=1):
            s = line.strip()
            if not s or s.startswith("#"):
                if not s:
                    empty.append(lineno)
                continue
            try:
                ids = np.array(s.split(), dtype=np.int64)
            except (ValueError, OverflowError):
                bad = next(t for t in s.split() if not t.lstrip("-").isdigit())
                raise DataFormatError(
                    f"{path}, line {lineno}: {bad!r} is not an integer node id. A community file "
                    "holds one community a line as whitespace-separated integer node ids."
                ) from None
            if ids.min() < 0:
                raise DataFormatError(
                    f"{path}, line {lineno}: negative node id {int(ids.min())}; ids must be >= 0."
                )
            out.append(np.unique(ids))
    if empty:
        warnings.warn(
            f"{path}: skipped {len(empty)} empty line(s) (first at line {empty[0]}).",
            stacklevel=2,
        )
    if not out:
        raise DataFormatError(f"{path}: no communities found (the file is empty).")
    return out


def write_edge_list(
    path: str | os.PathLike, edges: np.ndarray, *, header: Sequence[str] = (), chunk: int = 1 << 22
) -> None:
    """Write a ``(2, E)`` edge array in SNAP format (gzip if ``path`` ends in ``.gz``).

    Written in chunks to a temporary file then renamed, so a reader never sees half a file.
    """
    import pandas as pd

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with _open_write(tmp, gz=path.suffix == ".gz") as f:
        for h in header:
            f.write(f"# {h}\n")
        for s in range(0, edges.shape[1], chunk):
            block = pd.DataFrame(edges[:, s : s + chunk].T)
            block.to_csv(f, sep="\t", header=False, index=False, lineterminator="\n")
    os.replace(tmp, path)


def write_communities(path: str | os.PathLike, communities: Iterable[np.ndarray]) -> None:
    """Write communities one a line, tab-separated (gzip if ``path`` ends in ``.gz``)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with _open_write(tmp, gz=path.suffix == ".gz") as f:
        for c in communities:
            f.write("\t".join(map(str, np.asarray(c).tolist())) + "\n")
    os.replace(tmp, path)
