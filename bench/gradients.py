"""Projected per-sample gradients per second: vectorised vs the per-sample autograd loop.

Usage::

    python bench/gradients.py                    # com-DBLP top-100 from ../shared/data
    python bench/gradients.py --dataset amazon-top100 --loop-nodes 4 --vec-nodes 64   # quick

For each model (SIGN and 2-layer GraphSAGE; GCN and GIN with ``--models``) the same nodes and
trees go through ``GradientModel.projected_gradients`` (the model's own forward pass with
hooks, vectorised over the batch) and through
``per_sample_gradients_loop`` (one ``autograd.grad`` per (node, task), as the Grad-TAG public
code does) followed by the same sparse projection. A "sample" is one (node, task) gradient.
Prints a markdown table for ``bench/RESULTS.md``. ``--loop-nodes 0`` skips the loop columns and
``--strategies factored`` times only the fast path (for before/after comparisons of it).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from _data import REPO, load

from graphtag.gradients import GradientModel, kronecker_projector, per_sample_gradients_loop
from graphtag.models import SIGN, MultitaskGNN
from graphtag.projection import SparseProjector

CLOCK = time.perf_counter  # --cpu-time: time.process_time (steadier on a shared machine)


def timeit(fn, repeat: int = 3) -> float:
    fn()  # warm-up
    ts = []
    for _ in range(repeat):
        t0 = CLOCK()
        fn()
        ts.append(CLOCK() - t0)
    return sorted(ts)[len(ts) // 2]


def bench_model(label, model, data, nodes, T, args) -> None:
    """One model's table rows: the same nodes and trees through each path."""
    gm = GradientModel(model, data, args.fanouts[:2] if isinstance(model, MultitaskGNN)
                       else None)
    sparse = SparseProjector(gm.num_params, args.dim, nnz=8, seed=0)
    kron = kronecker_projector(model, args.dim, nnz=4, seed=0)
    slabs = gm.head_slabs(sparse)
    gen = torch.Generator().manual_seed(0)
    vec_nodes = nodes[: args.vec_nodes]
    batches = [gm.inputs(vec_nodes[s : s + args.batch_size], gen)
               for s in range(0, vec_nodes.numel(), args.batch_size)]
    loop_inp = gm.inputs(nodes[: max(args.loop_nodes, 1)], torch.Generator().manual_seed(1))

    def loop(P, loop_inp=loop_inp):
        full = per_sample_gradients_loop(gm, loop_inp)
        P.project(full.reshape(-1, gm.num_params))

    # The Grad-TAG public code's projection: a dense float64 Gaussian p x d matrix.
    rate = {"dense": float("nan"), "sparse": float("nan"), "kron": float("nan")}
    if args.loop_nodes > 0:
        R = torch.randn(gm.num_params, args.dim, dtype=torch.float64) / args.dim**0.5

        def loop_dense(loop_inp=loop_inp, R=R):
            full = per_sample_gradients_loop(gm, loop_inp)
            full.reshape(-1, gm.num_params).double() @ R
        rate["dense"] = args.loop_nodes * T / timeit(loop_dense, repeat=1)
        del R
        rate["sparse"] = args.loop_nodes * T / timeit(lambda: loop(sparse), repeat=1)
        rate["kron"] = args.loop_nodes * T / timeit(lambda: loop(kron), repeat=1)
    for strategy, P, pname in (("encoder", sparse, "sparse"), ("per_task", sparse, "sparse"),
                               ("factored", kron, "kron")):
        if strategy not in args.strategies:
            continue
        def vec(strategy=strategy, P=P):
            for inp in batches:
                gm.projected_gradients(inp, P, strategy,
                                       head_slabs=slabs if P is sparse else None)
        vec_rate = vec_nodes.numel() * T / timeit(vec, repeat=args.repeat)
        what = "SJLT" if pname == "sparse" else "Kronecker SJLT"
        print(f"| {label} | {gm.num_params:,} | {strategy} ({what}) | {vec_rate:,.0f} | "
              f"{rate[pname]:,.0f} | {rate['dense']:,.0f} | {vec_rate / rate[pname]:.1f}x | "
              f"{vec_rate / rate['dense']:.1f}x |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="dblp")
    ap.add_argument("--root", default=str(REPO / "data"))
    ap.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--dim", type=int, default=256, help="projection dimension d")
    ap.add_argument("--fanouts", type=int, nargs="+", default=[10, 5])
    ap.add_argument("--vec-nodes", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--loop-nodes", type=int, default=8, help="0: skip the loop columns")
    ap.add_argument("--strategies", nargs="+", default=["encoder", "per_task", "factored"],
                    choices=["encoder", "per_task", "factored"])
    ap.add_argument("--models", nargs="+", default=["sign", "sage"],
                    choices=["sign", "sage", "gcn", "gin"])
    ap.add_argument("--repeat", type=int, default=1,
                    help="timed repeats of the vectorised paths (the median is reported)")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time with the process's CPU time instead of the wall clock")
    args = ap.parse_args()
    if args.cpu_time:
        global CLOCK
        CLOCK = time.process_time
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", 0)) or os.cpu_count() or 1)

    data = load(args.dataset, Path(args.root), Path(args.shared))
    T = data.y.size(1)
    nodes = data.train_mask.nonzero().flatten()
    torch.manual_seed(0)
    make = {
        "sign": ("SIGN (2 hops)", lambda: SIGN(data.num_features, args.hidden, T, num_hops=2)),
        "sage": ("SAGE (2 layers)",
                 lambda: MultitaskGNN(data.num_features, args.hidden, T, num_layers=2)),
        "gcn": ("GCN (2 layers)", lambda: MultitaskGNN(data.num_features, args.hidden, T,
                                                       num_layers=2, conv="gcn")),
        "gin": ("GIN (2 layers)", lambda: MultitaskGNN(data.num_features, args.hidden, T,
                                                       num_layers=2, conv="gin")),
    }
    models = {}
    for key in args.models:
        label, build = make[key]
        models[label] = build()
    print(f"{args.dataset}: {data.num_nodes:,} nodes, {T} tasks; hidden {args.hidden}, "
          f"d = {args.dim}, tree fan-outs {args.fanouts}, {torch.get_num_threads()} threads\n")
    print("| model | params p | strategy (projector) | vectorised samples/s | loop samples/s, "
          "same projector | loop + dense f64 samples/s | vs loop | vs loop + dense f64 |")
    print("|---|---|---|---|---|---|---|---|")
    for label, model in models.items():
        bench_model(label, model, data, nodes, T, args)


if __name__ == "__main__":
    main()
