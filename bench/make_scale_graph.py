"""Generate a planted-group SNAP-format graph of a given edge count (issue 7 scale runs).

Usage::

    python bench/make_scale_graph.py --edges 21e6 --tasks 500 --out /tmp/scale/data/s21m/raw

writes ``com-s21m.ungraph.txt.gz``, ``com-s21m.top5000.cmty.txt.gz`` and
``com-s21m.groups.txt`` into ``--out``, so that ``load_dataset("s21m", "/tmp/scale/data",
num_tasks=500)`` reads it back with the SNAP loader. The dataset name is the folder above
``raw`` (or ``--name``). Prints the sizes, the generation and write times and the peak RSS as
one JSON line; :func:`make_scale_graph` does the same without the command line.

The graph is :func:`graphtag.datasets.synthetic_communities` with ``num_nodes = 2 * edges /
avg_degree`` and the draws inflated by ``slack`` so that at least ``edges`` distinct undirected
edges remain after self-loops and duplicates are dropped.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path
from typing import Any

from graphtag.datasets import synthetic_communities


def make_scale_graph(
    edges: float,
    tasks: int,
    out: str | Path,
    *,
    name: str | None = None,
    avg_degree: float = 20.0,
    groups: int = 20,
    seed: int = 0,
    slack: float = 0.005,
    compresslevel: int = 1,
) -> dict[str, Any]:
    """Generate and write one graph; returns its statistics and costs.

    Parameters
    ----------
    edges
        Minimum number of distinct undirected edges.
    tasks
        Number of tasks (communities); they come in ``groups`` planted groups.
    out
        The ``raw`` folder to write (``<root>/<name>/raw``).
    name
        Dataset name in the file names (default: the folder above ``raw``).
    avg_degree
        Mean degree; fixes the node count ``round(2 * edges / avg_degree)``.
    groups
        Planted task groups (the generator's ``num_groups``).
    seed
        Generator seed.
    slack
        Extra fraction of edge draws to cover removed duplicates and self-loops.
    compresslevel
        gzip level of the written files (1 is ~6x faster than 6 for ~7 % more bytes).

    Returns
    -------
    dict
        ``name``, ``nodes``, ``edges``, ``tasks``, ``positives`` (community members summed over
        tasks), ``seconds_generate``, ``seconds_write``, ``bytes`` and ``peak_rss_gib`` (of this
        process: ``ru_maxrss``, so the figure covers everything it did so far).
    """
    out = Path(out)
    if name is None:
        name = out.parent.name if out.name == "raw" else out.name
    target = int(edges)
    nodes = round(2 * target / avg_degree)
    t0 = time.perf_counter()
    syn = synthetic_communities(nodes, tasks, groups, avg_degree=avg_degree * (1 + slack),
                                seed=seed)
    t1 = time.perf_counter()
    if syn.edge_index.shape[1] < target:
        raise RuntimeError(f"only {syn.edge_index.shape[1]} edges after deduplication; raise "
                           f"slack (now {slack}).")
    g, c = syn.write_snap(out, name, compresslevel=compresslevel)
    t2 = time.perf_counter()
    return {
        "name": name,
        "nodes": nodes,
        "edges": int(syn.edge_index.shape[1]),
        "tasks": tasks,
        "groups": groups,
        "positives": int(sum(x.size for x in syn.communities)),
        "seconds_generate": round(t1 - t0, 2),
        "seconds_write": round(t2 - t1, 2),
        "bytes": g.stat().st_size + c.stat().st_size,
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--edges", type=float, required=True, help="e.g. 21e6")
    ap.add_argument("--tasks", type=int, required=True)
    ap.add_argument("--out", required=True, help="<root>/<name>/raw")
    ap.add_argument("--name", default=None)
    ap.add_argument("--avg-degree", type=float, default=20.0)
    ap.add_argument("--groups", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compresslevel", type=int, default=1)
    a = ap.parse_args(argv)
    stats = make_scale_graph(a.edges, a.tasks, a.out, name=a.name, avg_degree=a.avg_degree,
                             groups=a.groups, seed=a.seed, compresslevel=a.compresslevel)
    print(json.dumps(stats))


if __name__ == "__main__":
    main()
