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
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graphtag.datasets.io import (
    DataFormatError,
    _open_text,
    _unique_pairs,
    canonical_edges,
    read_communities,
    read_edge_list,
    reading_guard,
    sorted_unique,
)

__all__ = [
    "CONSTANT_TASK_POLICIES",
    "DATA_SUFFIXES",
    "LABEL_FORMATS",
    "UNKNOWN_NODE_POLICIES",
    "GraphArrays",
    "detect_format",
    "is_data_path",
    "load_file",
    "mat_graph_arrays",
    "read_graph",
    "select_tasks",
    "source_fingerprint",
]

LABEL_FORMATS = ("auto", "table", "pairs", "communities")
#: What to do with labelled node ids the graph does not have.
UNKNOWN_NODE_POLICIES = ("error", "drop", "add")
#: What to do with tasks that have no positive or no negative node.
CONSTANT_TASK_POLICIES = ("error", "drop")
_EDGE_SUFFIXES = (".txt", ".csv", ".tsv", ".edges", ".edgelist", ".el")
#: File name endings :func:`detect_format` recognises (each also with ``.gz`` where text).
DATA_SUFFIXES = (".mat", ".pt", ".pth", ".graphml", ".gml", *_EDGE_SUFFIXES)
#: Bumped when processing changes, so older caches are not reused.
_CACHE_VERSION = 1

_INT_RE = re.compile(r"[+-]?\d+")
_NODE_HEADER = {"node", "nodeid", "node_id", "id", "vertex", "name", "nodes"}
_LABEL_HEADER = {"label", "labels", "task", "tasks", "class", "community", "group", "category",
                 "tag"}
_EDGE_HEADER = {"src", "dst", "source", "target", "u", "v", "from", "to", "node1", "node2",
                "id1", "id2", "fromnodeid", "tonodeid", "head", "tail"}


# ----------------------------------------------------------------------------- the result
@dataclass
class GraphArrays:
    """A parsed, validated multi-label graph before features and splits.

    Attributes
    ----------
    edges
        ``(2, E)`` int64 in ``0..n-1``, each undirected edge once with ``u < v``.
    y
        ``(n, T)`` uint8 labels (0 where unknown).
    node_ids
        ``(n,)`` the file's id of each node (int64, or str objects).
    task_names
        One name per task (label column, label value or community line).
    x
        ``(n, F)`` float32 node features from the file, or None.
    label_mask
        ``(n, T)`` bool, False where a label is unknown; None when all are known.
    masks
        ``(train, val, test)`` bool node masks from the file, or None.
    source
        Names the input in messages.
    meta
        Extra attributes put on the ``Data`` (e.g. ``ogb_name``).
    task_index
        Index of each task among the file's labels (before selection).
    """

    edges: np.ndarray
    y: np.ndarray
    node_ids: np.ndarray
    task_names: list[str]
    x: np.ndarray | None = None
    label_mask: np.ndarray | None = None
    masks: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    source: str = "dataset"
    meta: dict[str, Any] = field(default_factory=dict)
    task_index: np.ndarray | None = None

    @property
    def num_nodes(self) -> int:
        return int(self.y.shape[0])

    @property
    def num_tasks(self) -> int:
        return int(self.y.shape[1])

    def positives(self) -> np.ndarray:
        """Known positives of each task, int64."""
        y = self.y if self.label_mask is None else self.y & self.label_mask
        return y.sum(0, dtype=np.int64)

    def known(self) -> np.ndarray:
        """Nodes with a known label, per task, int64."""
        if self.label_mask is None:
            return np.full(self.num_tasks, self.num_nodes, dtype=np.int64)
        return self.label_mask.sum(0, dtype=np.int64)

    def to_data(
        self,
        *,
        features: str = "spectral",
        num_features: int = 64,
        split: tuple[float, float, float] = (0.6, 0.2, 0.2),
        seed: int = 0,
    ) -> Any:
        """The PyG ``Data`` (features from the file when it has them, else ``features``)."""
        import torch

        from graphtag.datasets.tasks import make_multitask_data

        extra: dict[str, Any] = dict(self.meta)
        if self.node_ids.dtype.kind in "iu":  # string ids stay off Data (see read_graph)
            extra["node_ids"] = torch.from_numpy(self.node_ids.astype(np.int64))
        if self.task_index is not None:
            extra["community_index"] = torch.from_numpy(self.task_index.astype(np.int64))
        return make_multitask_data(
            self.edges, self.y, features=features, num_features=num_features, split=split,
            seed=seed, label_mask=self.label_mask, source=self.source, x=self.x,
            masks=self.masks, **extra,
        )


# ------------------------------------------------------------------------ format detection
def _base_name(path: Path) -> str:
    name = path.name.lower()
    return name[:-3] if name.endswith(".gz") else name


def is_data_path(name: str | os.PathLike) -> bool:
    """Whether ``name`` is meant as a path (not a dataset name): it has a folder part, a data
    file ending, or exists."""
    s = os.fspath(name)
    return (os.sep in s or "/" in s or _base_name(Path(s)).endswith(DATA_SUFFIXES)
            or os.path.exists(s))


def detect_format(path: str | os.PathLike) -> str:
    """The format of ``path`` from its name: one of ``mat``, ``pyg``, ``graphml``, ``gml``,
    ``snap``, ``edgelist`` or ``ogb`` (a dataset folder).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    DataFormatError
        The file type is not one of them.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or folder")
    if p.is_dir():
        if (p / "raw" / "edge.csv.gz").exists() or (p / "raw" / "data.npz").exists():
            return "ogb"
        raise DataFormatError(
            f"{p}: a folder, but not an OGB dataset folder (no raw/edge.csv.gz); pass the data "
            "file itself (.mat, .pt, an edge list with --labels, ...)."
        )
    base = _base_name(p)
    if base.endswith(".mat"):
        return "mat"
    if base.endswith((".pt", ".pth")):
        return "pyg"
    if base.endswith(".graphml"):
        return "graphml"
    if base.endswith(".gml"):
        return "gml"
    if base.endswith(".ungraph.txt"):
        return "snap"
    if base.endswith(_EDGE_SUFFIXES):
        return "edgelist"
    raise DataFormatError(
        f"{p}: unrecognised file type; use a .mat file, a torch.save'd PyG Data (.pt), an edge "
        "list (.txt/.csv/.tsv, optionally .gz) with --labels, a SNAP *.ungraph.txt[.gz], "
        "GraphML/GML, or an OGB dataset folder."
    )


# ------------------------------------------------------------------------- text utilities
_reading = reading_guard


def _data_lines(path: Path, limit: int | None = None) -> Iterator[tuple[int, str]]:
    """Non-blank, non-comment lines as ``(1-based line number, stripped text)``."""
    with _reading(path), _open_text(path) as f:
        k = 0
        for lineno, line in enumerate(f, start=1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            yield lineno, s
            k += 1
            if limit is not None and k >= limit:
                return


def _sniff_sep(line: str) -> str:
    return "\t" if "\t" in line else "," if "," in line else r"\s+"


def _split(line: str, sep: str) -> list[str]:
    if sep == r"\s+":
        return line.split()
    return [t.strip().strip('"') for t in next(csv.reader([line], delimiter=sep))]


def _is_int(tok: str) -> bool:
    return bool(_INT_RE.fullmatch(tok.strip()))


def _norm(tok: str) -> str:
    return re.sub(r"[^a-z0-9_]", "", tok.lower())


def _as_ids(tokens: np.ndarray) -> np.ndarray:
    """int64 ids when every token is an integer that fits, else stripped str objects.

    Ids beyond int64 (e.g. 64-bit hashes) are kept as strings rather than refused: to a
    graph, an id is only a name. (Python-level string methods cost ~1 s per million ids, so
    stripping runs only when a sample shows padding, and integers parse in one numpy call.)
    """
    arr = np.asarray(tokens, dtype=object)
    if arr.size == 0:
        return arr
    if any(str(t) != str(t).strip() for t in arr[:1000]):
        arr = np.asarray([str(t).strip() for t in arr], dtype=object)
    if _is_int(str(arr[0])):
        try:
            return arr.astype(np.int64)
        except (ValueError, OverflowError, TypeError):
            pass
    return arr


def _line_of_row(path: Path, row: int, header: bool) -> int:
    """Physical line number of 0-based data row ``row`` (after a header, if any)."""
    skip = 1 if header else 0
    for k, (lineno, _) in enumerate(_data_lines(path)):
        if k == row + skip:
            return lineno
    return -1


def _first_short_line(path: Path, sep: str, need: int, header: bool) -> tuple[int, str, int]:
    """First data line with fewer than ``need`` fields (line 0: none found)."""
    for k, (lineno, s) in enumerate(_data_lines(path)):
        if header and k == 0:
            continue
        n = len(_split(s, sep))
        if n < need:
            return lineno, s, n
    return 0, "", 0


def _first_bad_count(path: Path, sep: str, need: int, header: bool) -> tuple[int, str, int]:
    """First data line with other than ``need`` fields (line 0: none found)."""
    for k, (lineno, s) in enumerate(_data_lines(path)):
        if header and k == 0:
            continue
        n = len(_split(s, sep))
        if n != need:
            return lineno, s, n
    return 0, "", 0


def _show(ids: Sequence[Any], k: int = 3) -> str:
    shown = ", ".join(repr(str(i)) for i in list(ids)[:k])
    return shown + (", ..." if len(ids) > k else "")


# ----------------------------------------------------------------------------- edge lists
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


def _index_nodes(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(2, E)`` positions and the node ids: sorted for integers, first appearance else."""
    import pandas as pd

    if u.dtype.kind in "iu":
        ids = sorted_unique(np.concatenate([u, v]))
        return np.stack([np.searchsorted(ids, u), np.searchsorted(ids, v)]), ids
    codes, uniques = pd.factorize(np.concatenate([u, v]))
    return codes.reshape(2, -1).astype(np.int64), np.asarray(uniques, dtype=object)


def _lookup(node_ids: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Position of each ``query`` id among ``node_ids`` (-1: unknown)."""
    import pandas as pd

    if node_ids.dtype.kind in "iu" and query.dtype.kind in "iu":
        pos = np.searchsorted(node_ids, query)
        pos = np.minimum(pos, max(node_ids.size - 1, 0))
        hit = node_ids[pos] == query if node_ids.size else np.zeros(query.size, bool)
        return np.where(hit, pos, -1)
    a = node_ids.astype(str) if node_ids.dtype.kind != "O" else node_ids
    b = query.astype(str) if query.dtype.kind != "O" else query
    return pd.Index(a).get_indexer(pd.Index(b))


# --------------------------------------------------------------------------------- labels
@dataclass
class _Labels:
    """Parsed labels: ``(node token, task)`` memberships or a dense table."""

    path: Path
    kind: str  # "table" | "pairs" | "communities"
    nodes: np.ndarray  # per membership (pairs/communities) or per row (table)
    task_names: list[str]
    tasks: np.ndarray | None = None  # pairs/communities: task of each membership
    values: np.ndarray | None = None  # table: (rows, T) float, nan = unknown
    header: bool = False
    row_lines: np.ndarray | None = None  # communities: line of each membership

    def line_of(self, i: int) -> int:
        if self.row_lines is not None:
            return int(self.row_lines[i])
        return _line_of_row(self.path, i, self.header)


def _detect_label_format(path: Path) -> str:
    if _base_name(path).endswith(".cmty.txt"):
        return "communities"
    head = list(_data_lines(path, 50))
    if not head:
        raise DataFormatError(f"{path}: no labels found (the file is empty or only comments).")
    sep = _sniff_sep(head[0][1])
    rows = [_split(s, sep) for _, s in head]
    if sep == r"\s+" and {len(r) for r in rows} != {2}:
        return "communities"
    first = rows[0]
    if len(first) >= 3:
        return "table"
    if len(first) == 2:
        if _norm(first[1]) in _LABEL_HEADER:
            return "pairs"
        header_like = _norm(first[0]) in _NODE_HEADER or not _is_int(first[1])
        binary = len(rows) > 1 and all(r[1] in ("0", "1", "") for r in rows[1:] if len(r) > 1)
        return "table" if header_like and binary else "pairs"
    return "communities"


def _read_table(path: Path) -> _Labels:
    import pandas as pd

    head = list(_data_lines(path, 1))
    sep = _sniff_sep(head[0][1])
    names = _split(head[0][1], sep)
    dup = sorted({c for c in names if names.count(c) > 1})
    if dup:
        raise DataFormatError(
            f"{path}, line {head[0][0]}: duplicate column name(s) {dup} in the header; give each "
            "label column a distinct name."
        )
    id_col = next((i for i, c in enumerate(names) if _norm(c) in _NODE_HEADER), 0)
    label_cols = [c for i, c in enumerate(names) if i != id_col]
    if not label_cols:
        raise DataFormatError(f"{path}: the table has a node-id column but no label columns.")
    na = ["", "nan", "NaN", "NA", "?"]
    try:
        with _reading(path), _open_text(path) as f:
            df = pd.read_csv(
                f, sep=sep, header=0, comment="#", skip_blank_lines=True, engine="c",
                dtype={**{c: "float64" for c in label_cols}, names[id_col]: str},
                keep_default_na=False, na_values={c: na for c in label_cols},
            )
    except pd.errors.ParserError as err:
        lineno, line, n = _first_bad_count(path, sep, len(names), True)
        raise DataFormatError(
            f"{path}, line {lineno}: {n} fields but the header has {len(names)}: {line!r}. "
            "Every row needs a node id and one value per label column."
        ) from err
    except ValueError as err:  # a cell that is not a number
        raise _bad_cell(path, sep, names, id_col, na) from err
    vals = df[label_cols].to_numpy(dtype=np.float64)
    bad = ~(np.isnan(vals) | (vals == 0) | (vals == 1))
    if bad.any():
        r, c = (int(i) for i in np.argwhere(bad)[0])
        raise DataFormatError(
            f"{path}, line {_line_of_row(path, r, True)}, column {label_cols[c]!r}: value "
            f"{vals[r, c]:g} is not a label; use 1 (positive), 0 (negative) or an empty cell "
            "(unknown)."
        )
    ids = df[names[id_col]].to_numpy(dtype=object)
    empty = np.flatnonzero(pd.isna(ids) | (ids == ""))
    if empty.size:
        raise DataFormatError(
            f"{path}, line {_line_of_row(path, int(empty[0]), True)}: empty node id in column "
            f"{names[id_col]!r}; every row must name its node."
        )
    return _Labels(path, "table", _as_ids(ids), label_cols, values=vals, header=True)


def _bad_cell(path: Path, sep: str, names: list[str], id_col: int,
              na: list[str]) -> DataFormatError:
    for k, (lineno, s) in enumerate(_data_lines(path)):
        if k == 0:
            continue
        for c, tok in enumerate(_split(s, sep)):
            if c == id_col or tok in na:
                continue
            try:
                float(tok)
            except ValueError:
                col = names[c] if c < len(names) else f"#{c + 1}"
                return DataFormatError(
                    f"{path}, line {lineno}, column {col!r}: {tok!r} is not a label; use 1 "
                    "(positive), 0 (negative) or an empty cell (unknown)."
                )
    return DataFormatError(f"{path}: a label cell is not a number; use 1, 0 or an empty cell.")


def _read_pairs(path: Path) -> _Labels:
    import pandas as pd

    head = list(_data_lines(path, 1))
    if not head:
        raise DataFormatError(f"{path}: no labels found (the file is empty or only comments).")
    sep = _sniff_sep(head[0][1])
    first = _split(head[0][1], sep)
    header = _norm(first[-1]) in _LABEL_HEADER or (
        len(first) > 1 and _norm(first[0]) in _NODE_HEADER)
    try:
        with _reading(path), _open_text(path) as f:
            df = pd.read_csv(f, sep=sep, header=0 if header else None, comment="#",
                             skip_blank_lines=True, engine="c", dtype=str,
                             keep_default_na=False)
    except pd.errors.ParserError as err:
        lineno, line, n = _first_bad_count(path, sep, len(first), header)
        raise DataFormatError(
            f"{path}, line {lineno}: {n} fields where the first line has {len(first)}: "
            f"{line!r}. Write one 'node<TAB>label' pair a line."
        ) from err
    if df.shape[1] != 2:
        raise DataFormatError(
            f"{path}: {df.shape[1]} columns; (node, label) pairs have two. For a node x label "
            "table pass labels_format='table' (--labels-format table)."
        )
    nodes, tasks = df.iloc[:, 0].to_numpy(dtype=object), df.iloc[:, 1].to_numpy(dtype=object)
    missing = np.flatnonzero(pd.isna(nodes) | pd.isna(tasks) | (nodes == "") | (tasks == ""))
    if missing.size:
        lineno, line, n = _first_short_line(path, sep, 2, header)
        if lineno == 0:
            lineno, line = _line_of_row(path, int(missing[0]), header), ""
        raise DataFormatError(
            f"{path}, line {lineno}: expected a node id and a label, found {line!r}. Write one "
            "'node<TAB>label' pair a line."
        )
    codes, names = pd.factorize(pd.Series(tasks).astype(str).str.strip())
    return _Labels(path, "pairs", _as_ids(nodes), [str(n) for n in names],
                   tasks=codes.astype(np.int64), header=header)


def _read_community_lines(path: Path) -> _Labels:
    nodes: list[str] = []
    tasks: list[int] = []
    lines: list[int] = []
    names: list[str] = []
    for lineno, s in _data_lines(path):
        toks = s.replace(",", " ").split()
        nodes.extend(toks)
        tasks.extend([len(names)] * len(toks))
        lines.extend([lineno] * len(toks))
        names.append(f"line {lineno}")
    if not names:
        raise DataFormatError(f"{path}: no communities found (the file is empty).")
    return _Labels(path, "communities", _as_ids(np.asarray(nodes, dtype=object)), names,
                   tasks=np.asarray(tasks, dtype=np.int64), row_lines=np.asarray(lines))


def read_labels(path: str | os.PathLike, labels_format: str = "auto") -> _Labels:
    """Parse a labels file (see the module docstring) without matching it to a graph."""
    path = Path(path)
    if labels_format not in LABEL_FORMATS:
        raise ValueError(f"labels_format must be one of {LABEL_FORMATS} (got {labels_format!r}).")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such labels file")
    fmt = _detect_label_format(path) if labels_format == "auto" else labels_format
    return {"table": _read_table, "pairs": _read_pairs,
            "communities": _read_community_lines}[fmt](path)


def _attach_labels(
    edges: np.ndarray, node_ids: np.ndarray, lab: _Labels, unknown_nodes: str, source: str,
) -> GraphArrays:
    """Match the labels' node ids to the graph's and build ``y`` (and ``label_mask``)."""
    import pandas as pd

    pos = _lookup(node_ids, lab.nodes)
    unknown = pos < 0
    if unknown.all():
        raise DataFormatError(
            f"{lab.path}: none of its {lab.nodes.size} labelled node ids occur in the graph "
            f"(labels name {_show(pd.unique(lab.nodes))}; the graph has "
            f"{_show(node_ids)}). The labels must use the graph's node ids."
        )
    if unknown.any():
        bad = np.flatnonzero(unknown)
        names = pd.unique(lab.nodes[bad])
        if unknown_nodes == "error":
            raise DataFormatError(
                f"{lab.path}, line {lab.line_of(int(bad[0]))}: node {str(lab.nodes[bad[0]])!r} "
                f"is not in the graph ({names.size} such node id(s): {_show(names)}). Fix the "
                "ids, or pass unknown_nodes='drop' (--unknown-nodes drop) to ignore those "
                "labels or 'add' to keep them as nodes without edges."
            )
        if unknown_nodes == "drop":
            warnings.warn(f"{lab.path}: ignored labels of {names.size} node id(s) not in the "
                          f"graph ({_show(names)}).", stacklevel=3)
        else:  # "add": isolated nodes, after the graph's own
            warnings.warn(f"{lab.path}: added {names.size} labelled node(s) without edges "
                          f"({_show(names)}).", stacklevel=3)
            if node_ids.dtype.kind != lab.nodes.dtype.kind:
                node_ids = node_ids.astype(str).astype(object)
                names = names.astype(str)
            new = np.arange(node_ids.size, node_ids.size + names.size)
            q = lab.nodes[bad]
            pos[bad] = new[pd.Index(np.asarray(names, dtype=object)).get_indexer(
                q.astype(str) if names.dtype.kind == "U" else q)]
            node_ids = np.concatenate([node_ids, np.asarray(names, dtype=node_ids.dtype)])
            unknown[:] = False
    n, T = node_ids.size, len(lab.task_names)
    keep = ~unknown
    y = np.zeros((n, T), dtype=np.uint8)
    label_mask = None
    if lab.kind == "table":
        rows = pos[keep]
        counts = np.bincount(rows, minlength=n)
        if (counts > 1).any():
            node = int(np.flatnonzero(counts > 1)[0])
            where = np.flatnonzero(keep)[rows == node][:2]
            raise DataFormatError(
                f"{lab.path}: node {str(node_ids[node])!r} has two rows (lines "
                f"{lab.line_of(int(where[0]))} and {lab.line_of(int(where[1]))}); give each "
                "node one row (merge or delete the duplicate)."
            )
        vals = lab.values[keep]
        y[rows] = vals == 1
        known = np.zeros((n, T), dtype=bool)
        known[rows] = ~np.isnan(vals)
        if not known.all():  # nodes without a row, or empty cells: unknown, not negative
            label_mask = known
    else:
        y[pos[keep], lab.tasks[keep]] = 1
    return GraphArrays(edges, y, node_ids, list(lab.task_names), label_mask=label_mask,
                       source=source, task_index=np.arange(T))


# ---------------------------------------------------------------------- per-format readers
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


def _check_features(x: np.ndarray, n: int, where: str, node_ids: np.ndarray) -> np.ndarray:
    """``x`` as ``(n, F)`` float32, refusing shape mismatches and NaN/inf entries."""
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] != n:
        raise DataFormatError(
            f"{where}: node features have shape {tuple(x.shape)} but the graph has {n} nodes; "
            "give one row per node."
        )
    if x.dtype.kind not in "biuf":
        raise DataFormatError(f"{where}: node features are {x.dtype}, not numbers.")
    with np.errstate(over="ignore"):
        x32 = x.astype(np.float32)
    bad = ~np.isfinite(x32)
    if bad.any():
        r, c = (int(i) for i in np.argwhere(bad)[0])
        raise DataFormatError(
            f"{where}: node features row {r} (node {str(node_ids[r])!r}), column {c} is "
            f"{float(x[r, c])!r}{' (too large for float32)' if np.isfinite(x[r, c]) else ''}; "
            f"{int(bad.sum())} non-finite value(s) in {int(bad.any(1).sum())} row(s). Replace "
            "them (e.g. by the column mean) or remove the features so graphtag computes its own."
        )
    return x32


def _undirected(ei: np.ndarray) -> np.ndarray:
    """Each undirected edge once (``u < v``); both-direction storage is PyG's norm, so no
    warning, and self-loops are dropped (GNN layers add their own)."""
    lo, hi = np.minimum(ei[0], ei[1]), np.maximum(ei[0], ei[1])
    keep = lo != hi
    return _unique_pairs(lo[keep], hi[keep])


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


def _read_networkx(path: Path, fmt: str, labels: Path | None, labels_format: str,
                   unknown_nodes: str) -> GraphArrays:
    import networkx as nx

    try:
        with _reading(path):
            G = nx.read_graphml(path) if fmt == "graphml" else nx.read_gml(path, label="id")
    except (nx.NetworkXError, ValueError, SyntaxError) as err:
        raise DataFormatError(f"{path}: not a readable {fmt.upper()} file ({err}).") from err
    except Exception as err:  # xml.etree ParseError and friends
        raise DataFormatError(f"{path}: not a readable {fmt.upper()} file ({err}).") from err
    nodes = list(G.nodes)
    node_ids = _as_ids(np.asarray([str(v) for v in nodes], dtype=object))
    index = {v: i for i, v in enumerate(nodes)}
    ei = np.array([[index[a], index[b]] for a, b in G.edges()], dtype=np.int64).reshape(-1, 2).T
    edges = canonical_edges(ei, str(path)) if ei.size else np.empty((2, 0), np.int64)
    if labels is not None:
        return _attach_labels(edges, node_ids, read_labels(labels, labels_format),
                              unknown_nodes, path.name)
    # Labels as a node attribute: a list, or names separated by ',', ';' or whitespace.
    attr = next((a for a in ("labels", "label") if any(a in d for _, d in G.nodes(data=True))),
                None)
    if attr is None:
        raise DataFormatError(
            f"{path}: no node attribute 'labels'; store each node's labels there (e.g. "
            "'sports,music') or pass a labels file (--labels FILE)."
        )
    members: list[tuple[int, str]] = []
    for v, d in G.nodes(data=True):
        val = d.get(attr)
        toks = val if isinstance(val, list) else re.split(r"[,;\s]+", str(val or "").strip())
        members.extend((index[v], str(t)) for t in toks if str(t))
    import pandas as pd

    codes, names = pd.factorize(np.asarray([t for _, t in members], dtype=object))
    y = np.zeros((len(nodes), len(names)), dtype=np.uint8)
    y[[i for i, _ in members], codes] = 1
    return GraphArrays(edges, y, node_ids, [str(s) for s in names], source=path.name,
                       task_index=np.arange(len(names)))


# ---------------------------------------------------------------------------- entry points
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


def _first_ids_are_ints(path: Path) -> bool:
    head = list(_data_lines(path, 1))
    return bool(head) and all(_is_int(t) for t in _split(head[0][1], _sniff_sep(head[0][1])))


def select_tasks(
    g: GraphArrays, num_tasks: int | None = None, constant_tasks: str = "error",
) -> GraphArrays:
    """Keep the ``num_tasks`` tasks with most known positives, then refuse (or drop) tasks
    that have no positive or no negative node.

    Ranking counts in int64 (a count stored in ``uint8`` and negated would wrap), ties kept
    in file order.

    Raises
    ------
    ValueError
        ``num_tasks`` outside ``1..T``.
    DataFormatError
        With ``constant_tasks="error"``: a task without positives or without negatives
        (among its known labels), naming the tasks and the fix.
    """
    if constant_tasks not in CONSTANT_TASK_POLICIES:
        raise ValueError(f"constant_tasks must be one of {CONSTANT_TASK_POLICIES} "
                         f"(got {constant_tasks!r}).")
    T = g.num_tasks
    order = np.arange(T)
    if num_tasks is not None:
        if not 1 <= num_tasks <= T:
            raise ValueError(f"{g.source}: num_tasks={num_tasks} but the data has {T} tasks; "
                             f"use 1..{T}.")
        order = np.argsort(-g.positives(), kind="stable")[:num_tasks]
    pos, known = g.positives()[order], g.known()[order]
    empty, full = order[pos == 0], order[(pos == known) & (pos > 0)]
    if empty.size or full.size:
        what = []
        if empty.size:
            what.append(f"{empty.size} task(s) without a positive node "
                        f"({_show([g.task_names[i] for i in empty])})")
        if full.size:
            what.append(f"{full.size} task(s) whose every labelled node is positive "
                        f"({_show([g.task_names[i] for i in full])})")
        msg = (f"{g.source}: {' and '.join(what)}; a task needs positive and negative nodes "
               "to be learned.")
        if constant_tasks == "error":
            raise DataFormatError(msg + " Remove those labels, or pass constant_tasks='drop' "
                                  "(--drop-constant-tasks) to skip them.")
        warnings.warn(msg + " Skipped them.", stacklevel=2)
        order = order[~np.isin(order, np.concatenate([empty, full]))]
        if order.size == 0:
            raise DataFormatError(f"{g.source}: no task has both positive and negative nodes.")
    if order.size == T and (order == np.arange(T)).all():
        return g
    base = g.task_index if g.task_index is not None else np.arange(T)
    return GraphArrays(
        g.edges, np.ascontiguousarray(g.y[:, order]), g.node_ids,
        [g.task_names[i] for i in order], g.x,
        None if g.label_mask is None else np.ascontiguousarray(g.label_mask[:, order]),
        g.masks, g.source, g.meta, base[order],
    )


# --------------------------------------------------------------------------------- caching
def _source_files(source: Path) -> list[Path]:
    if source.is_dir():
        # not the folders written while loading (ogb/PyG "processed", our cache)
        return sorted(p for p in source.rglob("*") if p.is_file() and not any(
            part == "processed" or part.startswith(".") for part in p.relative_to(source).parts))
    return [source]


def source_fingerprint(files: Sequence[str | os.PathLike], options: dict[str, Any]) -> str:
    """blake2b (16 bytes, hex) of the files' bytes, in order, and the JSON of ``options``."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"graphtag-data-v{_CACHE_VERSION}".encode())
    for f in files:
        h.update(b"\0file\0")
        with open(f, "rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 22), b""):
                h.update(block)
    h.update(json.dumps(options, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _cache_paths(source: Path, fp: str, root: Path) -> list[Path]:
    stem = _base_name(source).split(".")[0] or "data"
    name = f"{stem}.{fp}.pt"
    base = source if source.is_dir() else source.parent
    return [base / ".graphtag-cache" / name, root / "cache" / name]


def _save_cache(data: Any, candidates: list[Path]) -> Path | None:
    """Write the processed Data to the first writable candidate (temp file, then rename)."""
    import torch

    for path in candidates:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + f".tmp{os.getpid()}")
            torch.save(data.to_dict(), tmp)
            os.replace(tmp, path)
            return path
        except OSError:
            continue
    return None


def _load_cache(candidates: list[Path]) -> Any | None:
    import torch
    from torch_geometric.data import Data

    for path in candidates:
        if path.is_file():
            try:
                return Data.from_dict(torch.load(path, map_location="cpu", weights_only=True))
            except Exception:  # a damaged cache is rebuilt, never trusted
                continue
    return None


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


def detect_kind(src: Path) -> str:
    """:func:`detect_format`, or ``"benchmark"`` for a downloaded benchmark folder."""
    try:
        return detect_format(src)
    except DataFormatError:
        return "benchmark"


def summarize(g: GraphArrays) -> dict[str, Any]:
    """Statistics printed by ``graphtag datasets info``: sizes, positives per task
    (min/median/max), label density (positives among known labels), isolated nodes and
    connected components."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    n, T = g.num_nodes, g.num_tasks
    pos, known = g.positives(), g.known()
    deg = np.bincount(g.edges.ravel(), minlength=n)
    adj = sp.coo_matrix((np.ones(g.edges.shape[1], np.int8), (g.edges[0], g.edges[1])),
                        shape=(n, n))
    comps = connected_components(adj, directed=False)[0] if n else 0
    return {
        "source": g.source, "nodes": n, "edges": int(g.edges.shape[1]), "tasks": T,
        "positives_min": int(pos.min()) if T else 0,
        "positives_median": float(np.median(pos)) if T else 0.0,
        "positives_max": int(pos.max()) if T else 0,
        "label_density": float(pos.sum() / max(int(known.sum()), 1)),
        "unknown_labels": float(1 - known.sum() / max(n * T, 1)),
        "isolated_nodes": int((deg == 0).sum()),
        "components": int(comps),
        "features": None if g.x is None else int(g.x.shape[1]),
        "masks": g.masks is not None,
    }
