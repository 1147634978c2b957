"""Labels files (node x label table, ``(node, label)`` pairs, one community a line) and their
matching to a graph's node ids."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from graphtag.datasets.io import DataFormatError, _open_text
from graphtag.datasets.readers.arrays import GraphArrays
from graphtag.datasets.readers.formats import LABEL_FORMATS, _base_name
from graphtag.datasets.readers.text import (
    _LABEL_HEADER,
    _NODE_HEADER,
    _as_ids,
    _data_lines,
    _first_bad_count,
    _first_short_line,
    _is_int,
    _line_of_row,
    _lookup,
    _norm,
    _reading,
    _show,
    _sniff_sep,
    _split,
)

__all__ = ["read_labels"]


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
