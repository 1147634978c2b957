"""Line-level text utilities and node-id matching shared by the text readers."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from graphtag.datasets.io import _open_text, reading_guard, sorted_unique

_INT_RE = re.compile(r"[+-]?\d+")
_NODE_HEADER = {"node", "nodeid", "node_id", "id", "vertex", "name", "nodes"}
_LABEL_HEADER = {"label", "labels", "task", "tasks", "class", "community", "group", "category",
                 "tag"}
_EDGE_HEADER = {"src", "dst", "source", "target", "u", "v", "from", "to", "node1", "node2",
                "id1", "id2", "fromnodeid", "tonodeid", "head", "tail"}


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
