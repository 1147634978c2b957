"""How reliable is the true-affinity oracle, and how close is Grad-TAG's estimate to it?

Usage::

    python3 bench/oracle.py --run runs/bench-groups/amazon-families/seed0          # 24 tasks
    python3 bench/oracle.py --run RUN --tasks 24 --subsets 600 --subset-size 8 --epochs 30
    python3 bench/oracle.py --run RUN --grad-dir RUN/bench/estimator/d256-shared --lam 0.01

Reads a finished ``graphtag run`` folder (its ``config.json``, base model and gradient
stores; ``bench/groups.py`` makes them) and, on a slice of its tasks:

1. draws ``2 m`` seeded subsets of the slice and splits them into two disjoint halves;
2. trains the oracle (:class:`graphtag.affinity.TrueAffinity`) on each half with its own seed:
   a model per subset (``--mode scratch``: fresh, of width ``--hidden``; ``finetune``: the
   base model), in the run's minibatches (or ``--full-batch``), with common random numbers
   inside a half (every subset of a half starts from the same initialisation and sees the
   same batches), scored on Grad-TAG's validation nodes;
3. estimates the same subsets' scores with Grad-TAG's statistics fits on the run's gradients
   (``--grad-dir`` for other stores, e.g. those of ``bench/estimator.py``);
4. prints, over the slice's task pairs (off-diagonal entries of the symmetric affinity):

   * the oracle's **split-half reliability**: Spearman between the two halves' affinities
     (disjoint subsets, other seeds) and its Spearman-Brown value for the pooled oracle;
   * the estimate's Spearman with each half and with the pooled oracle, and the share of the
     oracle's reliability it reaches (``Spearman(estimate, half) / split-half``);
   * adjusted Rand index of SDP groups: estimate vs pooled oracle, and each against the
     dataset's planted groups where it has them;
   * costs: oracle seconds per subset and in all, estimate seconds.

The slice keeps the oracle affordable: the affinity of a task pair averages the subsets that
hold both, about ``m s (s - 1) / (n (n - 1))`` of them in ``n`` tasks, so a reliable oracle
over all tasks costs ``n^2`` training runs. On a dataset with planted groups the slice is
whole groups (``--tasks`` rounded down to a multiple of the group size); otherwise a seeded
sample of tasks. Trained halves are kept under ``<run>/bench/oracle/<tag>/`` (resumable).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.metrics import adjusted_rand_score

from graphtag.affinity import (
    TrueAffinity,
    affinity_matrix,
    centered_statistics,
    fit_subsets_stats,
    linearized_logits,
    sample_subsets,
    task_scores,
)
from graphtag.affinity.statistics import subset_lam
from graphtag.datasets import load_dataset
from graphtag.gradients.store import GradientStore
from graphtag.grouping import sdp_groups
from graphtag.grouping.registry import planted_groups
from graphtag.models import build_model
from graphtag.pipeline import RunConfig
from graphtag.pipeline.run import load_base_model


def task_slice(data, n: int, seed: int) -> np.ndarray:
    """``n`` tasks: whole planted groups (smallest group ids first), else a seeded sample."""
    T = int(data.y.size(1))
    if n >= T:
        return np.arange(T)
    if data.get("task_group") is not None:
        out: list[int] = []
        for members in planted_groups(data):
            if len(out) + len(members) > n:
                break
            out += members
        if out:
            return np.asarray(out)
    return np.sort(np.random.default_rng(seed).choice(T, n, replace=False))


def labels_of(groups: list[list[int]], n: int) -> np.ndarray:
    lab = np.empty(n, dtype=np.int64)
    for i, g in enumerate(groups):
        lab[g] = i
    return lab


def estimate_scores(grad_dir: Path, subsets: np.ndarray, lam: float, refine: int,
                    offset: bool = False) -> tuple[torch.Tensor, float]:
    """Grad-TAG's statistics fits and linearised scores on exactly these subsets."""
    fit, val = GradientStore(grad_dir / "train"), GradientStore(grad_dir / "val")
    t0 = time.perf_counter()
    labels = fit.labels
    stats = centered_statistics(fit.grads, fit.logits, labels, lam=lam, offset=offset)
    lam_sum = subset_lam(lam, (np.asarray(labels) >= 0).sum(0), subsets)
    z = fit_subsets_stats(stats, subsets, lam=lam_sum, refine=refine, grads=fit.grads,
                          logits=fit.logits, labels=labels)
    sc = task_scores(linearized_logits(val.grads, val.logits, z, subsets, offset=offset),
                     val.labels, subsets)
    return sc, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="a finished graphtag run folder")
    ap.add_argument("--tasks", type=int, default=24, help="tasks in the slice")
    ap.add_argument("--subsets", type=int, default=600, help="subsets per half")
    ap.add_argument("--subset-size", type=int, default=8)
    ap.add_argument("--mode", choices=("scratch", "finetune"), default="scratch")
    ap.add_argument("--hidden", type=int, default=None,
                    help="scratch models' width (default: the run's)")
    ap.add_argument("--epochs", type=int, default=30, help="epochs per subset")
    ap.add_argument("--batch-size", type=int, default=None,
                    help="minibatch size (default: the run's)")
    ap.add_argument("--full-batch", action="store_true", help="one step per epoch")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--groups", type=int, default=None,
                    help="SDP groups on the slice (default: its planted groups, else 3)")
    ap.add_argument("--grad-dir", default=None, help="gradient stores (default: <run>/gradients)")
    ap.add_argument("--lam", type=float, default=None, help="Grad-TAG ridge (default: the run's)")
    ap.add_argument("--refine", type=int, default=None)
    ap.add_argument("--offset", action="store_true",
                    help="estimate with the base logits as offsets (first-order fine-tuning)")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    command = "python3 bench/oracle.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    t_start = time.perf_counter()

    run = Path(args.run)
    cfg = RunConfig.from_json(json.loads((run / "config.json").read_text()))
    data = load_dataset(cfg.dataset, cfg.root, cfg.num_tasks, features=cfg.features,
                        num_features=cfg.num_features, split=cfg.split, seed=cfg.seed, log=False)
    T = int(data.y.size(1))
    sl = task_slice(data, args.tasks, cfg.seed)
    n = sl.size
    truth = None if data.get("task_group") is None else data.task_group.numpy()[sl]
    k = args.groups or (np.unique(truth).size if truth is not None else 3)
    hidden = args.hidden or cfg.hidden_channels
    batch = args.batch_size or cfg.batch_size
    grad_dir = Path(args.grad_dir) if args.grad_dir else run / "gradients"
    lam = cfg.lam if args.lam is None else args.lam
    refine = cfg.fit_refine if args.refine is None else args.refine
    nodes = np.array(GradientStore(grad_dir / "val").nodes, dtype=np.int64)

    local = sample_subsets(n, 2 * args.subsets, args.subset_size, seed=cfg.seed + 99)
    halves = [sl[local[: args.subsets]], sl[local[args.subsets:]]]
    if args.mode == "scratch":
        torch.manual_seed(cfg.seed)
        model = build_model(cfg.model, data.num_features, T, hidden_channels=hidden,
                            num_layers=cfg.num_layers, dropout=0.0)
    else:
        model = load_base_model(cfg, data, run / "base")
    tag = hashlib.sha256(json.dumps([sl.tolist(), args.subsets, args.subset_size, args.mode,
                                     hidden, args.epochs, args.lr, args.full_batch, batch]
                                    ).encode()).hexdigest()[:10]
    work = run / "bench" / "oracle" / tag

    oracle_A, secs_per_subset, oracle_s = [], [], 0.0
    for h, subs in enumerate(halves):
        o = TrueAffinity(mode=args.mode, epochs=args.epochs, lr=args.lr,
                         full_batch=args.full_batch, batch_size=batch,
                         num_neighbors=cfg.num_neighbors,
                         seed=h + 1, common_init=True, progress=sys.stderr.isatty())
        t0 = time.perf_counter()
        o.fit(model, data, work / f"half{h}", subsets=subs, score_nodes=nodes)
        oracle_s += time.perf_counter() - t0
        if o.timings_["seconds_per_subset"] is not None:
            secs_per_subset.append(o.timings_["seconds_per_subset"])
        oracle_A.append(o.affinity_[np.ix_(sl, sl)])
        print(f"oracle half {h}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    pooled = (oracle_A[0] + oracle_A[1]) / 2

    sc, est_s = estimate_scores(grad_dir, np.concatenate(halves), lam, refine, args.offset)
    est = affinity_matrix(np.concatenate(halves), sc, T)[np.ix_(sl, sl)]
    est_half = [affinity_matrix(halves[h], sc[h * args.subsets:(h + 1) * args.subsets],
                                T)[np.ix_(sl, sl)] for h in (0, 1)]

    iu = np.triu_indices(n, 1)

    def rho(a: np.ndarray, b: np.ndarray) -> float:
        return float(spearmanr(a[iu], b[iu]).statistic)

    r_oo = rho(*oracle_A)
    r_eo = [rho(est, A) for A in oracle_A]
    g_est, g_or = sdp_groups(est, k, seed=cfg.seed), sdp_groups(pooled, k, seed=cfg.seed)
    res = {
        "command": command, "dataset": cfg.dataset, "seed": cfg.seed, "slice": sl.tolist(),
        "tasks": int(n), "subsets_per_half": args.subsets, "subset_size": args.subset_size,
        "pair_draws_per_half": args.subsets * args.subset_size * (args.subset_size - 1)
        / (n * (n - 1)),
        "mode": args.mode, "hidden": hidden, "epochs": args.epochs,
        "batch_size": None if args.full_batch else batch,
        "proj_dim": GradientStore(grad_dir / "train").dim, "lam": lam,
        "offset": args.offset,
        "oracle_split_half": r_oo, "oracle_pooled_reliability": 2 * r_oo / (1 + r_oo),
        "estimate_split_half": rho(*est_half),
        "estimate_vs_halves": r_eo, "estimate_vs_pooled": rho(est, pooled),
        "share_of_oracle_reliability": float(np.mean(r_eo)) / r_oo if r_oo > 0 else None,
        "groups": int(k), "ari_estimate_vs_oracle": float(adjusted_rand_score(
            labels_of(g_or, n), labels_of(g_est, n))),
        "oracle_seconds_per_subset": float(np.mean(secs_per_subset)) if secs_per_subset
        else None,
        "oracle_seconds": oracle_s, "estimate_seconds": est_s,
    }
    if truth is not None:
        res["ari_oracle_vs_planted"] = float(adjusted_rand_score(truth, labels_of(g_or, n)))
        res["ari_estimate_vs_planted"] = float(adjusted_rand_score(truth, labels_of(g_est, n)))
        same = (truth[:, None] == truth[None, :])[iu]
        for name, A in (("oracle", pooled), ("estimate", est)):
            v = A[iu]
            res[f"{name}_within_minus_across"] = float(v[same].mean() - v[~same].mean())
    name = f"result-d{res['proj_dim']}-lam{lam}" + ("-offset" if args.offset else "") + ".json"
    (work / name).write_text(json.dumps(res, indent=1))

    print(f"Command: `{command}` ({(time.perf_counter() - t_start) / 60:.1f} min)\n")
    print(f"{cfg.dataset} seed {cfg.seed}: {n} of {T} tasks, 2 x {args.subsets} subsets of "
          f"{args.subset_size} ({res['pair_draws_per_half']:.1f} draws per pair per half); "
          f"oracle {args.mode}, width {hidden}, {args.epochs} epochs "
          f"({'full batch' if args.full_batch else f'batches of {batch}'}); estimate "
          f"d = {res['proj_dim']}, lam = {lam}, {refine} refinement step(s), offset "
          f"{'on' if args.offset else 'off'}.\n")
    print("| measure | value |\n|---|---|")
    rows = [
        ("oracle split-half Spearman (disjoint subsets, other seeds)", f"{r_oo:.3f}"),
        ("oracle pooled reliability (Spearman-Brown)", f"{res['oracle_pooled_reliability']:.3f}"),
        ("estimate split-half Spearman", f"{res['estimate_split_half']:.3f}"),
        ("Spearman(estimate, oracle half 0 / half 1)", f"{r_eo[0]:.3f} / {r_eo[1]:.3f}"),
        ("Spearman(estimate, pooled oracle)", f"{res['estimate_vs_pooled']:.3f}"),
        ("share of the oracle's reliability", "n/a" if res["share_of_oracle_reliability"]
         is None else f"{res['share_of_oracle_reliability']:.0%}"),
        (f"ARI, {k} SDP groups: estimate vs pooled oracle",
         f"{res['ari_estimate_vs_oracle']:.3f}"),
    ]
    if truth is not None:
        rows += [("ARI vs planted: oracle / estimate",
                  f"{res['ari_oracle_vs_planted']:.3f} / {res['ari_estimate_vs_planted']:.3f}"),
                 ("within - across planted groups: oracle / estimate",
                  f"{res['oracle_within_minus_across']:.4f} / "
                  f"{res['estimate_within_minus_across']:.4f}")]
    per = res["oracle_seconds_per_subset"]
    rows += [("oracle cost", f"{2 * args.subsets} runs, {oracle_s:.0f} s"
              + (f" ({per:.2f} s each)" if per else "")),
             ("estimate cost (fits + scores on the same subsets)", f"{est_s:.1f} s")]
    for a, b in rows:
        print(f"| {a} | {b} |")


if __name__ == "__main__":
    main()
