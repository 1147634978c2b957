"""File types (:func:`detect_format`, from the name) and the option values of the readers."""

from __future__ import annotations

import os
from pathlib import Path

from graphtag.datasets.io import DataFormatError

__all__ = [
    "CONSTANT_TASK_POLICIES",
    "DATA_SUFFIXES",
    "LABEL_FORMATS",
    "UNKNOWN_NODE_POLICIES",
    "detect_format",
    "detect_kind",
    "is_data_path",
]


LABEL_FORMATS = ("auto", "table", "pairs", "communities")
#: What to do with labelled node ids the graph does not have.
UNKNOWN_NODE_POLICIES = ("error", "drop", "add")
#: What to do with tasks that have no positive or no negative node.
CONSTANT_TASK_POLICIES = ("error", "drop")
_EDGE_SUFFIXES = (".txt", ".csv", ".tsv", ".edges", ".edgelist", ".el")
#: File name endings :func:`detect_format` recognises (each also with ``.gz`` where text).
DATA_SUFFIXES = (".mat", ".pt", ".pth", ".graphml", ".gml", *_EDGE_SUFFIXES)


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


def detect_kind(src: Path) -> str:
    """:func:`detect_format`, or ``"benchmark"`` for a downloaded benchmark folder."""
    try:
        return detect_format(src)
    except DataFormatError:
        return "benchmark"
