"""Benchmark the grouping SDP solvers: cvxpy (SCS) against Burer–Monteiro (BM).

Planted instances (``graphtag.grouping.planted_affinity``, ``k`` groups, noise 1.0, seed 0) of
``n`` tasks. For each, both solvers' wall time (CPU time of this process in brackets: the
machine is shared, and the difference is time spent waiting for a core), objective ``<A, X>``
and largest constraint violation (``sdp_violation``), and the objective of the rounded
(integral) grouping that users get (``round_groups`` then ``grouping_objective``).

Comparisons are at equal feasibility or err against BM. BM returns an exactly feasible ``X``
(violation ~1e-14). SCS with default settings (as ``sdp_groups`` runs it) violates the
constraints by about 1e-5, which lets its objective exceed the true optimum by up to ~5e-5
(relative; checked against SCS with ``eps=1e-8`` at ``n <= 100``, too slow to run here by
default: 140 s at n = 100, k = 5). The gap ``(cvxpy - BM) / |cvxpy|`` therefore overstates
BM's distance to the optimum by up to that much. "BM certified gap" is BM's own duality gap, a
rigorous bound on its distance to the optimum that needs no cvxpy (the only check at
``n = 500``). cvxpy is skipped above ``--cvxpy-max-n`` (SCS's dense ``n x n`` PSD cone costs
``n^3`` per iteration). Prints markdown.

    python bench/grouping.py                       # n in {50, 100, 150, 200, 500}, k in {5, 10}
    python bench/grouping.py --sizes 50 100 --ks 5  # quicker
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from graphtag.grouping import planted_affinity, round_groups, sdp_cvxpy
from graphtag.grouping.sdp import grouping_objective, sdp_bm_solve, sdp_violation


def _timed(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` with its wall and process CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _rounded(A: np.ndarray, X: np.ndarray, k: int) -> float:
    """Objective of the k-means rounding of ``X``."""
    return grouping_objective(A, round_groups(X, k))


def main() -> None:
    """Run the benchmark and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 150, 200, 500])
    parser.add_argument("--ks", type=int, nargs="+", default=[5, 10])
    parser.add_argument("--noise", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cvxpy-max-n", type=int, default=200)
    args = parser.parse_args()

    print(
        f"CPU: {platform.processor() or platform.machine()}, torch threads "
        f"{torch.get_num_threads()} (BM runs single-threaded: sdp_bm_solve(threads=1)), "
        f"noise={args.noise}, seed={args.seed}\n"
    )
    print(
        "| n | k | cvxpy time s (cpu) | BM time s (cpu) | cvxpy objective | BM objective "
        "| gap BM vs cvxpy | BM certified gap | cvxpy violation | BM violation "
        "| rounded cvxpy | rounded BM |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        for k in args.ks:
            A, _ = planted_affinity(n, k, noise=args.noise, seed=args.seed)
            res, t_b, c_b = _timed(sdp_bm_solve, A, k)
            if n <= args.cvxpy_max_n:
                (Xc, obj_c), t_c, c_c = _timed(sdp_cvxpy, A, k)
                cvx = (
                    f"{t_c:.2f} ({c_c:.2f})",
                    f"{obj_c:.4f}",
                    f"{(obj_c - res.objective) / abs(obj_c):.1e}",
                    f"{sdp_violation(Xc, k):.1e}",
                    f"{_rounded(A, Xc, k):.4f}",
                )
            else:
                cvx = ("skipped", "–", "–", "–", "–")
            cells = (
                str(n),
                str(k),
                cvx[0],
                f"{t_b:.2f} ({c_b:.2f})",
                cvx[1],
                f"{res.objective:.4f}",
                cvx[2],
                f"{res.gap:.1e}" + ("" if res.converged else " (not converged)"),
                cvx[3],
                f"{res.violation:.1e}",
                cvx[4],
                f"{_rounded(A, res.X, k):.4f}",
            )
            print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
