"""1 vs N processes on the sharded steps of ``graphtag run``: gradient collection and subset fits.

Every process runs this script; the base model is trained once (by one process) and cached, so
all runs collect gradients of the same model::

    OMP_NUM_THREADS=1 python bench/distributed.py --out /tmp/bd1
    OMP_NUM_THREADS=1 torchrun --standalone --nproc_per_node=2 bench/distributed.py --out /tmp/bd2
    python bench/distributed.py --compare /tmp/bd1 /tmp/bd2   # same bytes, same affinity?

Rank 0 prints one JSON line: processes, threads per process, seconds for the gradient stores
(fit and score nodes) and for the subset fits plus scoring, measured between barriers.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from graphtag import distributed as gd
from graphtag.datasets import load_dataset
from graphtag.gradients.store import GradientStore
from graphtag.models import build_model
from graphtag.pipeline import GradTAG
from graphtag.training import Trainer

FILES = ("grads.npy", "logits.npy", "labels.npy", "nodes.npy")


def _base_model(args: argparse.Namespace, data) -> torch.nn.Module:
    """The cached base model (trained here by rank 0 the first time)."""
    path = Path(args.base)

    def train() -> None:
        if path.exists():
            return
        torch.manual_seed(0)
        m = build_model("sage", data.num_features, data.y.size(1),
                        hidden_channels=args.hidden, dropout=0.5)
        Trainer(m, epochs=args.base_epochs, patience=None, pos_weight="auto",
                progress=False).fit(data)
        torch.save(m.state_dict(), path)

    gd.on_main(train)
    model = build_model("sage", data.num_features, data.y.size(1),
                        hidden_channels=args.hidden, dropout=0.5)
    model.load_state_dict(torch.load(path, weights_only=True))
    return model.eval()


def run(args: argparse.Namespace) -> None:
    gd.init_from_env()
    out = Path(args.out)
    if gd.is_main() and out.exists():
        shutil.rmtree(out)  # a fresh store: otherwise collection would just resume
    gd.barrier()
    with gd.main_first():
        data = load_dataset(args.dataset, args.root, seed=0, log=False)
    model = _base_model(args, data)
    gt = GradTAG(num_subsets=args.subsets, subset_size=5, proj_dim=args.proj_dim,
                 max_fit_nodes=args.fit_nodes, max_score_nodes=args.score_nodes, lam=0.1,
                 progress=False)
    gd.barrier()
    t0 = time.perf_counter()
    gt.collect(model, data, out / "gradients")
    gd.barrier()
    t1 = time.perf_counter()
    gt.estimate(GradientStore(out / "gradients" / "train"),
                GradientStore(out / "gradients" / "val"), checkpoint_dir=out / "fits")
    gd.barrier()
    t2 = time.perf_counter()
    if gd.is_main():
        np.save(out / "affinity.npy", gt.affinity_)
        print(json.dumps({
            "dataset": args.dataset, "tasks": int(data.y.size(1)),
            "fit_nodes": GradientStore(out / "gradients" / "train").num_nodes,
            "score_nodes": GradientStore(out / "gradients" / "val").num_nodes,
            "subsets": args.subsets, "proj_dim": args.proj_dim,
            "processes": gd.get_world_size(), "threads": torch.get_num_threads(),
            "gradients_s": round(t1 - t0, 2), "fits_s": round(t2 - t1, 2),
            "total_s": round(t2 - t0, 2)}), flush=True)
    gd.destroy()


def compare(a: Path, b: Path) -> int:
    same = True
    for split in ("train", "val"):
        for f in FILES:
            eq = (a / "gradients" / split / f).read_bytes() == \
                (b / "gradients" / split / f).read_bytes()
            same &= eq
            print(f"{split}/{f}: {'identical bytes' if eq else 'DIFFERENT'}")
    A, B = np.load(a / "affinity.npy"), np.load(b / "affinity.npy")
    print(f"affinity max |difference|: {np.abs(A - B).max():.3g}")
    return 0 if same and np.allclose(A, B) else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="/tmp/graphtag-bench-dist")
    ap.add_argument("--compare", nargs=2, metavar="RUN", default=None)
    ap.add_argument("--dataset", default="amazon-top100")
    ap.add_argument("--root", default="data")
    ap.add_argument("--base", default="/tmp/graphtag-bench-dist-base.pt",
                    help="cached base model (trained on first use)")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--base-epochs", type=int, default=10)
    ap.add_argument("--subsets", type=int, default=1000)
    ap.add_argument("--proj-dim", type=int, default=64)
    ap.add_argument("--fit-nodes", type=int, default=2000)
    ap.add_argument("--score-nodes", type=int, default=2000)
    args = ap.parse_args()
    if args.compare:
        return compare(Path(args.compare[0]), Path(args.compare[1]))
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
