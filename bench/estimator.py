"""Grad-TAG estimator variants on a known grouping: adjusted Rand index of the SDP groups.

Usage::

    python3 bench/estimator.py --run runs/bench-groups/amazon-families/seed0

Reads a finished ``graphtag run`` folder (its ``config.json`` and base model; made by
``bench/groups.py``), collects projected gradients for each (d, params) variant into
``<run>/bench/estimator/`` (kept, resumable), and for each estimator variant (lam, offset,
subset count and size, refinement steps) prints the adjusted Rand index of the Grad-TAG
groups against the dataset's planted ``task_group`` and the gap between the mean affinity
within and across planted groups. With the statistics fits each variant costs seconds, so the
grid is cheap next to one base model.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch
from sklearn.metrics import adjusted_rand_score

from graphtag.datasets import load_dataset
from graphtag.gradients.store import GradientStore
from graphtag.pipeline import RunConfig
from graphtag.pipeline.run import gradtag_from_config, load_base_model

#: (proj_dim, params, lam, offset, num_subsets, subset_size, refine); None: the run's value.
VARIANTS = [
    (64, "shared", 0.1, False, None, None, 1),
    (64, "shared", 0.1, False, 30_000, None, 0),
    (64, "shared", 0.01, False, 6_400, 2, 0),
    (64, "shared", 0.1, True, None, None, 1),
    (256, "shared", 0.01, False, None, None, 1),
    (256, "all", 0.01, False, None, None, 1),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="a finished graphtag run folder")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    run = Path(args.run)
    cfg = RunConfig.from_json(json.loads((run / "config.json").read_text()))
    data = load_dataset(cfg.dataset, cfg.root, cfg.num_tasks, features=cfg.features,
                        num_features=cfg.num_features, split=cfg.split, seed=cfg.seed, log=False)
    if data.get("task_group") is None:
        raise SystemExit(f"{cfg.dataset} has no planted task groups to score against.")
    truth = data.task_group.numpy()
    T = truth.size
    model = load_base_model(cfg, data, run / "base")
    same = truth[:, None] == truth[None, :]
    off = ~np.eye(T, dtype=bool)
    print(f"{cfg.dataset}, seed {cfg.seed}, {T} tasks, {cfg.num_groups} groups")
    print("| d | gradients | lam | offset | subsets | size | refine | ARI | within - across "
          "| fit + score s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for d, params, lam, offset, m, s, refine in VARIANTS:
        c = dataclasses.replace(cfg, proj_dim=d, grad_params=params, lam=lam, offset=offset,
                                num_subsets=m, subset_size=s, fit_refine=refine)
        folder = run / "bench" / "estimator" / f"d{d}-{params}"
        gt = gradtag_from_config(c, progress=False)
        if not (folder / "val" / "manifest.json").exists():
            gt.collect(model, data, folder)
        t0 = time.perf_counter()
        gt.estimate(GradientStore(folder / "train"), GradientStore(folder / "val"))
        groups = gt.group(cfg.num_groups)
        secs = time.perf_counter() - t0
        lab = np.empty(T, dtype=np.int64)
        for i, g in enumerate(groups):
            lab[g] = i
        A = gt.affinity_
        gap = A[same & off].mean() - A[~same].mean()
        mm, ss = gt.subsets_.shape
        print(f"| {d} | {params} | {lam} | {offset} | {mm} | {ss} | {refine} | "
              f"{adjusted_rand_score(truth, lab):.3f} | {gap:.4f} | {secs:.1f} |", flush=True)


if __name__ == "__main__":
    main()
