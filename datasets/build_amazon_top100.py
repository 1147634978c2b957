"""Rebuild the shipped ``amazon-top100`` subset from SNAP's full com-Amazon files.

Usage::

    python datasets/build_amazon_top100.py --graph com-amazon.ungraph.txt.gz \
        --communities com-amazon.top5000.cmty.txt --out datasets/amazon-top100

Keeps the 100 largest *distinct* communities of the top-5000 file and the subgraph induced by
their members, with SNAP's original node ids, in SNAP's own formats.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

from graphtag.datasets import build_community_tasks, read_communities, read_edge_list
from graphtag.datasets.io import write_communities, write_edge_list


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graph", required=True, help="com-amazon.ungraph.txt[.gz]")
    ap.add_argument("--communities", required=True, help="com-amazon.top5000.cmty.txt[.gz]")
    ap.add_argument("--out", default=str(Path(__file__).parent / "amazon-top100"))
    ap.add_argument("--num-tasks", type=int, default=100)
    args = ap.parse_args()

    edges = read_edge_list(args.graph)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the 3,483 duplicate lines are expected here
        comms = read_communities(args.communities)
        tasks = build_community_tasks(edges, comms, args.num_tasks, induced=True)
    ids = tasks.node_ids
    sub_edges = ids[tasks.edge_index]
    chosen = [ids[np.flatnonzero(tasks.y[:, t])] for t in range(tasks.num_tasks)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    k = args.num_tasks
    write_edge_list(
        out / f"com-amazon-top{k}.ungraph.txt.gz",
        sub_edges,
        header=(f"Undirected graph: com-Amazon induced on its top-{k} distinct communities",
                "Amazon", f"Nodes: {ids.size} Edges: {sub_edges.shape[1]}",
                "FromNodeId\tToNodeId"),
    )
    write_communities(out / f"com-amazon-top{k}.top{k}.cmty.txt.gz", chosen)
    print(f"wrote {out}: {ids.size} nodes, {sub_edges.shape[1]} edges, {k} communities")


if __name__ == "__main__":
    main()
