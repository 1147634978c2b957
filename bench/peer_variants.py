"""Why FairGrad and MTGD-style head mixing lose: test macro-F1 of combiner variants.

Reproduces the variant table of ``bench/RESULTS.md`` ("Why FairGrad and MTGD lose here"),
which ad-hoc scripts made first. Every variant is one SIGN model on all tasks trained exactly
as ``bench/community.py`` trains its combiner rows (same RunConfig, data, split, seed,
``rep_grad=True``); only the combiner's settings differ. Variants:

* ``mtl``: equal weighting;
* ``fairgrad``: alpha 2, ridge 1e-4 (the community table's row); ``fairgrad-a1``,
  ``fairgrad-a0.5``, ``fairgrad-a0.1``: other alphas; ``fairgrad-ridge1``: ridge 1;
  ``fairgrad-params``: alpha 2 on parameter gradients (``rep_grad=False``, slow);
* ``mtgd``: transfer 0.1 (the table's row); ``mtgd-t0.01``: transfer 0.01;
  ``mtgd-noheads``: ``transfer_heads=False``.

Usage::

    python3 bench/peer_variants.py                       # blogcatalog, seeds 0-2 (~5 min)
    python3 bench/peer_variants.py --datasets amazon-top100 --variants mtl fairgrad-ridge1
    python3 bench/peer_variants.py --datasets dblp --seeds 0   # slow: minutes per model

Not reproduced here: the weight spans and head-cosine diagnostics quoted in that section.
Prints a markdown table (mean ± std over seeds).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch
from _data import REPO, SHARED, prepare
from community import DATASETS

from graphtag.datasets import load_dataset
from graphtag.optim import make_combiner
from graphtag.pipeline.config import RunConfig
from graphtag.training.run import build_trainer

VARIANTS = {
    "mtl": ("equal", {}),
    "fairgrad": ("fairgrad", {"alpha": 2.0}),
    "fairgrad-a1": ("fairgrad", {"alpha": 1.0}),
    "fairgrad-a0.5": ("fairgrad", {"alpha": 0.5}),
    "fairgrad-a0.1": ("fairgrad", {"alpha": 0.1}),
    "fairgrad-ridge1": ("fairgrad", {"alpha": 2.0, "ridge": 1.0}),
    "fairgrad-params": ("fairgrad", {"alpha": 2.0, "rep_grad": False}),
    "mtgd": ("mtgd", {"transfer": 0.1}),
    "mtgd-t0.01": ("mtgd", {"transfer": 0.01}),
    "mtgd-noheads": ("mtgd", {"transfer": 0.1, "transfer_heads": False}),
}
DEFAULT = [v for v in VARIANTS if v != "fairgrad-params"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["blogcatalog"], choices=list(DATASETS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--variants", nargs="+", default=DEFAULT, choices=list(VARIANTS))
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--root", default=str(REPO / "data"))
    ap.add_argument("--shared", default=str(SHARED))
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows: dict[tuple[str, str], list[float]] = {}
    for name in args.datasets:
        if not prepare(name, Path(args.root), Path(args.shared)):
            print(f"skipping {name}: its files are not in {args.shared}")
            continue
        spec = DATASETS[name]
        for seed in args.seeds:
            cfg = RunConfig(dataset=name, root=args.root, num_tasks=spec.num_tasks, model="sign",
                            hidden_channels=64, num_layers=2, dropout=0.0, epochs=args.epochs,
                            batch_size=spec.batch_size, lr=0.01, patience=args.patience,
                            seed=seed, num_groups=spec.num_groups)
            data = load_dataset(name, cfg.root, cfg.num_tasks, features=cfg.features,
                                num_features=cfg.num_features, split=cfg.split, seed=seed,
                                log=False)
            for v in args.variants:
                method, kw = VARIANTS[v]
                kw = {"rep_grad": True, **kw} if method != "equal" else {}
                t0 = time.perf_counter()
                tr = build_trainer(cfg.train_config(), data.num_features, int(data.y.size(1)),
                                   progress=False, combiner=make_combiner(method, **kw))
                tr.fit(data)
                f1 = float(tr.evaluate(data, "test")["macro_f1"])
                rows.setdefault((name, v), []).append(f1)
                print(f"{name} seed {seed} {v}: test macro-F1 {f1:.4f} "
                      f"({time.perf_counter() - t0:.1f} s)", flush=True)
    print("\n| dataset | variant | test macro-F1 | seeds |\n|---|---|---|---|")
    for (name, v), f1s in rows.items():
        sd = f" ± {statistics.stdev(f1s):.3f}" if len(f1s) > 1 else ""
        print(f"| {name} | {v} | {statistics.mean(f1s):.3f}{sd} | {len(f1s)} |")


if __name__ == "__main__":
    main()
