"""Training benchmark: NeighborLoader vs full-batch epochs, and MTL vs STL test macro-F1.

Usage::

    python bench/train.py                      # amazon-top100 (shipped) + com-DBLP top-100
    python bench/train.py --datasets amazon-top100 --epochs 3 --stl-tasks 3   # quick

com-DBLP is read from ``--shared`` (default ``../shared/data`` beside the repo); it is skipped
with a note when absent. Prints markdown tables for ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from _data import REPO, load

from graphtag.models import MultitaskGNN
from graphtag.training import Trainer, seed_everything


def epoch_times(data, *, full_batch: bool, epochs: int, hidden: int, seed: int):
    seed_everything(seed)
    model = MultitaskGNN(data.num_features, hidden, data.y.size(1))
    tr = Trainer(model, epochs=epochs, batch_size=512, num_neighbors=(15, 10),
                 full_batch=full_batch, patience=None, pos_weight="auto", seed=seed,
                 progress=False)
    # Time the optimisation steps only: evaluation is the same for both and timed apart.
    opt_times = []
    orig_eval = tr.evaluate

    def timed_eval(*a, **k):
        opt_times.append(time.perf_counter() - timed_eval.t0)
        r = orig_eval(*a, **k)
        timed_eval.t0 = time.perf_counter()
        return r

    timed_eval.t0 = time.perf_counter()
    tr.evaluate = timed_eval
    tr.fit(data)
    tr.evaluate = orig_eval
    t0 = time.perf_counter()
    test = tr.evaluate(data, "test")
    t_inf = time.perf_counter() - t0
    return statistics.median(opt_times[1:] or opt_times), t_inf, test["macro_f1"]


def mtl_vs_stl(data, tasks, *, epochs: int, hidden: int, seed: int):
    seed_everything(seed)
    mtl = MultitaskGNN(data.num_features, hidden, data.y.size(1))
    tr = Trainer(mtl, epochs=epochs, num_neighbors=(15, 10), pos_weight="auto", seed=seed,
                 progress=False).fit(data)
    mtl_f1 = tr.evaluate(data, "test")["per_task_f1"]
    t_mtl = sum(h["seconds"] for h in tr.history_)
    rows, t_stl = [], 0.0
    for t in tasks:
        d = data.clone()
        d.y = data.y[:, [t]]
        seed_everything(seed)
        stl = MultitaskGNN(data.num_features, hidden, 1)
        s = Trainer(stl, epochs=epochs, num_neighbors=(15, 10), pos_weight="auto", seed=seed,
                    progress=False).fit(d)
        t_stl += sum(h["seconds"] for h in s.history_)
        rows.append((t, mtl_f1[t], s.evaluate(d, "test")["per_task_f1"][0]))
    return rows, t_mtl, t_stl


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["amazon-top100", "dblp"])
    ap.add_argument("--root", default=str(REPO / "data"))
    ap.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--epochs", type=int, default=5, help="epochs per timing run")
    ap.add_argument("--mtl-epochs", type=int, default=30)
    ap.add_argument("--stl-tasks", type=int, default=5)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} cores, SAGE hidden {args.hidden}, fan-out 15-10, batch 512\n")
    print("| dataset | nodes | edges | train nodes | mode | s/epoch | train nodes/s | "
          "full-graph inference s | test macro-F1 |")
    print("|---|---|---|---|---|---|---|---|---|")
    loaded = {}
    for name in args.datasets:
        data = load(name, Path(args.root), Path(args.shared))
        if data is None:
            print(f"| {name} | - | - | - | skipped: files not in {args.shared} | | | | |")
            continue
        loaded[name] = data
        n_train = int(data.train_mask.sum())
        for full in (False, True):
            sec, t_inf, f1 = epoch_times(data, full_batch=full, epochs=args.epochs,
                                         hidden=args.hidden, seed=args.seed)
            mode = "full-batch" if full else "NeighborLoader"
            print(f"| {name} | {data.num_nodes:,} | {data.edge_index.size(1) // 2:,} | "
                  f"{n_train:,} | {mode} | {sec:.3f} | {n_train / sec:,.0f} | {t_inf:.3f} | "
                  f"{f1:.4f} |", flush=True)

    print(f"\nMTL (one model, all 100 tasks) vs STL (one model per task), {args.mtl_epochs} "
          "epochs max, early stopping on val macro-F1, same splits:\n")
    print("| dataset | task | MTL test F1 | STL test F1 |")
    print("|---|---|---|---|")
    for name, data in loaded.items():
        sizes = data.y[data.train_mask].sum(0)
        # Spread over the size range: largest, smallest and evenly between.
        order = torch.argsort(sizes, descending=True)
        pick = order[torch.linspace(0, len(order) - 1, args.stl_tasks).long()].tolist()
        rows, t_mtl, t_stl = mtl_vs_stl(data, pick, epochs=args.mtl_epochs, hidden=args.hidden,
                                        seed=args.seed)
        for t, a, b in rows:
            print(f"| {name} | {t} | {a:.4f} | {b:.4f} |")
        ma = statistics.mean(r[1] for r in rows)
        mb = statistics.mean(r[2] for r in rows)
        print(f"| {name} | **mean** | **{ma:.4f}** | **{mb:.4f}** |")
        print(f"| {name} | train time | {t_mtl:.1f} s (all 100 tasks) | {t_stl:.1f} s "
              f"({len(rows)} tasks) |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
