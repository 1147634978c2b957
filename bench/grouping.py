"""Benchmark the grouping SDP solvers: cvxpy (SCS) against Burer–Monteiro.

Planted instances (``graphtag.grouping.planted_affinity``, ``k`` groups, noise 1.0) of
``n`` tasks; for each, wall time and objective ``<A, X>`` of both solvers, the objective
ratio BM / cvxpy and the adjusted Rand index of the rounded BM grouping against the plant.
cvxpy is skipped above ``--cvxpy-max-n`` (SCS's dense ``n x n`` PSD cone scales as ``n^3`` per
iteration). Prints markdown.

    python bench/grouping.py                 # n in {50, 100, 200, 500}, k = 10
    python bench/grouping.py --sizes 50 100  # quicker
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from sklearn.metrics import adjusted_rand_score

from graphtag.grouping import planted_affinity, round_groups, sdp_burer_monteiro, sdp_cvxpy


def main() -> None:
    """Run the benchmark and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 500])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--noise", type=float, default=1.0)
    parser.add_argument("--cvxpy-max-n", type=int, default=200)
    args = parser.parse_args()

    print(
        f"CPU: {platform.processor() or platform.machine()}, torch threads "
        f"{torch.get_num_threads()}, k={args.k}, noise={args.noise}\n"
    )
    print(
        "| n | cvxpy/SCS time (s) | cvxpy objective | BM time (s) | BM objective "
        "| BM / cvxpy | BM rounded ARI |"
    )
    print("|---|---|---|---|---|---|---|")
    for n in args.sizes:
        A, labels = planted_affinity(n, args.k, noise=args.noise, seed=0)
        if n <= args.cvxpy_max_n:
            start = time.perf_counter()
            _, obj_c = sdp_cvxpy(A, args.k)
            t_c = f"{time.perf_counter() - start:.2f}"
            obj_c_s = f"{obj_c:.4f}"
        else:
            obj_c, t_c, obj_c_s = None, "skipped (> 60 s expected)", "–"
        start = time.perf_counter()
        X, obj_b = sdp_burer_monteiro(A, args.k)
        t_b = time.perf_counter() - start
        pred = np.empty(n, dtype=int)
        for g, members in enumerate(round_groups(X, args.k)):
            pred[members] = g
        ari = adjusted_rand_score(labels, pred)
        ratio = f"{obj_b / obj_c:.5f}" if obj_c is not None else "–"
        print(f"| {n} | {t_c} | {obj_c_s} | {t_b:.2f} | {obj_b:.4f} | {ratio} | {ari:.3f} |")


if __name__ == "__main__":
    main()
