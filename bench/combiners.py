"""Time per training step of each gradient combiner, at 10 / 100 / 500 tasks, on SIGN.

Usage::

    python bench/combiners.py                          # default, about 2-3 min on 2 cores
    python bench/combiners.py --tasks 10 100 --steps 5 # quicker
    python bench/combiners.py --batch-size 512 --hidden 128 --steps 5   # heavier

Data: ``synthetic_communities`` with 500 tasks (the first ``K`` are used for ``K`` tasks),
propagated once with ``sign_propagate``. A step is exactly the Trainer's: forward on a
minibatch, masked per-task BCE, ``combiner.backward``, Adam step, ``after_step`` (MTGD). For
``rep_grad`` combiners the head's input is captured by a forward pre-hook, as the Trainer does.
Every combiner is timed on the same batches in the same run as equal weighting, and the table
gives the median ms/step and the ratio to equal weighting. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from graphtag.datasets import synthetic_communities
from graphtag.models import SIGN, sign_propagate
from graphtag.optim import make_combiner
from graphtag.training import masked_bce_per_task

METHODS = ("equal", "pcgrad", "fairgrad", "mtgd", "gradproj")


def time_steps(model, combiner, xs, y, batches, warmup: int) -> float:
    """Median seconds per training step over ``batches`` (after ``warmup`` steps)."""
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    shared = [p for n, p in model.named_parameters() if not n.startswith("head.")]
    needs_rep = bool(getattr(combiner, "needs_representation", False))
    after_step = getattr(combiner, "after_step", None)
    captured = {}

    def hook(module, args):
        captured["rep"] = args[0]

    handle = model.head.register_forward_pre_hook(hook) if needs_rep else None
    times = []
    try:
        for i, b in enumerate(batches):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            losses = masked_bce_per_task(model(xs[b]), y[b])
            if needs_rep:
                combiner.backward(losses, shared, rep=captured.pop("rep"))
            else:
                combiner.backward(losses, shared)
            opt.step()
            if after_step is not None:
                after_step(model)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    finally:
        if handle is not None:
            handle.remove()
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", type=int, nargs="+", default=[10, 100, 500])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--nodes", type=int, default=3000)
    ap.add_argument("--features", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=3, help="timed steps per combiner")
    ap.add_argument("--steps-small", type=int, default=10, help="timed steps when K <= 100")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--chunk-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads (default: torch's own choice)")
    args = ap.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    max_k = max(args.tasks)
    data = synthetic_communities(args.nodes, max(max_k, 500), num_groups=10,
                                 seed=args.seed).to_data(num_features=args.features)
    xs = sign_propagate(data.x, data.edge_index, 2, data.num_nodes)
    gen = torch.Generator().manual_seed(args.seed)
    print(f"# {args.nodes} nodes, F={args.features}, hidden={args.hidden}, "
          f"batch={args.batch_size}, SIGN 2 hops, torch threads={torch.get_num_threads()}, "
          f"chunk_size={args.chunk_size}\n")
    print("| K | method | path | ms/step | x equal |")
    print("|---|---|---|---|---|")
    for K in args.tasks:
        y = data.y[:, :K].float()
        steps = args.steps_small if K <= 100 else args.steps
        perm = torch.randperm(data.num_nodes, generator=gen)
        batches = [perm[(i * args.batch_size) % data.num_nodes:][: args.batch_size]
                   for i in range(args.warmup + steps)]
        torch.manual_seed(args.seed)
        init = SIGN(args.features, args.hidden, K, num_hops=2).state_dict()
        base = None
        for name in args.methods:
            for rep in ([False] if name == "equal" else [False, True]):
                kw = {} if name == "equal" else {"rep_grad": rep, "chunk_size": args.chunk_size}
                model = SIGN(args.features, args.hidden, K, num_hops=2)
                model.load_state_dict(init)
                torch.manual_seed(args.seed)
                sec = time_steps(model, make_combiner(name, **kw), xs, y, batches, args.warmup)
                if name == "equal":
                    base = sec
                ratio = f"{sec / base:.1f}" if base else "-"
                path = "-" if name == "equal" else ("rep" if rep else "param")
                print(f"| {K} | {name} | {path} | {1000 * sec:.1f} | {ratio} |", flush=True)
    n_shared = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("head."))
    print(f"\nshared parameters p = {n_shared}, representation B x H = "
          f"{args.batch_size * args.hidden}; total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
