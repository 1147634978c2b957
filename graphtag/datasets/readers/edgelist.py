"""Edge lists with arbitrary node ids plus a labels file, and SNAP ``*.ungraph.txt`` files."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from graphtag.datasets.io import (
    DataFormatError,
    _open_text,
    canonical_edges,
    read_communities,
    read_edge_list,
    sorted_unique,
)
from graphtag.datasets.readers.arrays import GraphArrays
from graphtag.datasets.readers.formats import _base_name
from graphtag.datasets.readers.labels import _attach_labels, read_labels
from graphtag.datasets.readers.text import (
    _EDGE_HEADER,
    _as_ids,
    _data_lines,
    _first_bad_count,
    _first_short_line,
    _index_nodes,
    _is_int,
    _line_of_row,
    _lookup,
    _norm,
    _reading,
    _show,
    _sniff_sep,
    _split,
)

__all__ = ["read_edge_table"]


def read_edge_table(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Both endpoint columns of an edge list with arbitrary node ids, in file order.

    Tab, comma or whitespace separated (sniffed from the first data line); a header row is
    recognised when its fields are column names (``source,target``, ``u v``, ...); further
    columns (weights) are ignored. The ids are int64 when all are integers that fit, else
    strings.

    Raises
    ------
    DataFormatError
        Empty file, or a line with fewer than two fields (naming the line).
    """
    import pandas as pd

    path = Path(path)
    head = list(_data_lines(path, 2))
    if not head:
        raise DataFormatError(f"{path}: no edges found (the file is empty or only comments).")
    sep = _sniff_sep(head[0][1])
    first = _split(head[0][1], sep)
    if len(first) < 2:
        raise DataFormatError(
            f"{path}, line {head[0][0]}: expected two node ids, found 1 field: {head[0][1]!r}. "
            "Write one edge a line as 'u<TAB>v', 'u,v' or 'u v'."
        )
    header = not (_is_int(first[0]) and _is_int(first[1])) and (
        {_norm(first[0]), _norm(first[1])} <= _EDGE_HEADER
        or (len(head) > 1 and all(_is_int(t) for t in _split(head[1][1], sep)[:2]))
    )
    ints = _is_int(first[0]) and _is_int(first[1])
    kw: dict[str, Any] = dict(sep=sep, header=0 if header else None, comment="#",
                              skip_blank_lines=True, usecols=[0, 1], engine="c")
    df = None
    with _reading(path):
        if ints:
            try:
                with _open_text(path) as f:
                    df = pd.read_csv(f, dtype=np.int64, **kw)
            except (ValueError, OverflowError, pd.errors.ParserError):
                df = None  # a non-integer, overflowing or missing id: read them as strings
        if df is None:
            try:
                with _open_text(path) as f:
                    df = pd.read_csv(f, dtype=str, keep_default_na=False, **kw)
            except pd.errors.ParserError as err:
                lineno, line, n = _first_bad_count(path, sep, len(first), header)
                raise DataFormatError(
                    f"{path}, line {lineno}: {n} fields where the first line has {len(first)}: "
                    f"{line!r}. Give every line the same columns (u, v, optional weight)."
                ) from err
            except pd.errors.EmptyDataError:
                df = pd.DataFrame({0: [], 1: []})
    u, v = df.iloc[:, 0].to_numpy(), df.iloc[:, 1].to_numpy()
    if u.dtype == object:
        missing = pd.isna(u) | pd.isna(v) | (u == "") | (v == "")
        if missing.any():
            lineno, line, n = _first_short_line(path, sep, 2, header)
            if lineno == 0:
                lineno = _line_of_row(path, int(np.flatnonzero(missing)[0]), header)
                line, n = "", 1
            raise DataFormatError(
                f"{path}, line {lineno}: expected two node ids, found {n} field(s): {line!r}. "
                "Write one edge a line; delete or complete that line."
            )
        u, v = _as_ids(u), _as_ids(v)
        if (u.dtype == object) != (v.dtype == object):
            u, v = u.astype(str).astype(object), v.astype(str).astype(object)
    if u.size == 0:
        raise DataFormatError(f"{path}: no edges found (only a header or comments).")
    return u, v


def _read_edgelist(path: Path, labels: Path | None, labels_format: str,
                   unknown_nodes: str) -> GraphArrays:
    if labels is None:
        raise DataFormatError(
            f"{path}: an edge list carries no labels; pass the labels file too (--labels FILE, "
            "or labels=...): a node x label table, (node, label) pairs or one community a line."
        )
    lab = read_labels(labels, labels_format)
    u, v = read_edge_table(path)
    pos, node_ids = _index_nodes(u, v)
    del u, v
    edges = canonical_edges(pos, str(path))
    return _attach_labels(edges, node_ids, lab, unknown_nodes, f"{path.name}")


def _find_cmty(path: Path) -> Path:
    stem = _base_name(path)[: -len(".ungraph.txt")]
    found = sorted(p for p in path.parent.iterdir()
                   if p.name.startswith(stem + ".") and _base_name(p).endswith(".cmty.txt"))
    if not found:
        raise DataFormatError(
            f"{path}: no {stem}.*.cmty.txt[.gz] beside it; pass the community file with "
            "--labels FILE."
        )
    top = [p for p in found if ".top5000." in p.name]
    return (top or found)[0]


def _read_snap(path: Path, labels: Path | None, num_tasks: int | None,
               unknown_nodes: str) -> GraphArrays:
    from graphtag.datasets.tasks import build_community_tasks

    cmty = labels or _find_cmty(path)
    edges = read_edge_list(path)
    comms = read_communities(cmty)
    flat = np.concatenate(comms)
    graph_nodes = sorted_unique(edges)
    hit = _lookup(graph_nodes, flat) >= 0
    if not hit.any():
        raise DataFormatError(
            f"{cmty}: none of its node ids occur in {path.name} (communities name "
            f"{_show(flat)}; the graph has {_show(graph_nodes)}); the files must belong together."
        )
    if not hit.all() and unknown_nodes == "error":
        first = int(np.flatnonzero(~hit)[0])
        line = int(np.searchsorted(np.cumsum([c.size for c in comms]), first, side="right"))
        raise DataFormatError(
            f"{cmty}: node {int(flat[first])} (community #{line}, 0-based) is not in the graph "
            f"({int((~hit).sum())} such member(s)). Pass unknown_nodes='drop' "
            "(--unknown-nodes drop) to drop them."
        )
    want = 100 if num_tasks is None else num_tasks
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*absent from the graph")  # allowed above
        try:
            t = build_community_tasks(edges, comms, want, induced=True, source=str(cmty))
        except ValueError:
            if num_tasks is not None:
                raise
            t = build_community_tasks(edges, comms, None, induced=True, source=str(cmty))
    return GraphArrays(t.edge_index, t.y, t.node_ids,
                       [f"community {i}" for i in t.community_index], source=path.name,
                       task_index=t.community_index)


def _first_ids_are_ints(path: Path) -> bool:
    head = list(_data_lines(path, 1))
    return bool(head) and all(_is_int(t) for t in _split(head[0][1], _sniff_sep(head[0][1])))
