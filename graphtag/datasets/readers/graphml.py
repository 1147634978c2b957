"""GraphML and GML files (networkx), labels from a labels file or a node attribute."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from graphtag.datasets.io import DataFormatError, canonical_edges
from graphtag.datasets.readers.arrays import GraphArrays
from graphtag.datasets.readers.labels import _attach_labels, read_labels
from graphtag.datasets.readers.text import _as_ids, _reading


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
